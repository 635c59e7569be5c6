//! Schemas with many tables on servers with small lock tables: the schema is created in
//! bounded transactions (resumable after a kill during it), the source locks what its lock
//! table allows, and readers end their transactions before they hold too many locks.
//!
//! The test's own cluster has `max_locks_per_transaction = 16` and `max_connections = 20`
//! (320 lock slots for all sessions, against PostgreSQL's default 6,400), so 600 tables with a
//! key, an index and a foreign key stand for the 10,000 of a real multi-tenant schema.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, PG15_BIN};
use crate::support::{assert_success, describe, Howdah};

const TABLES: usize = 600;

#[test]
fn six_hundred_tables_copy_resume_and_verify_within_a_small_lock_table() {
    let cluster = Cluster::start(
        PathBuf::from(PG15_BIN),
        &["max_locks_per_transaction=16", "max_connections=20"],
    );
    let src = cluster.db("many_src");
    let dst = cluster.db("many_dst");
    src.exec("CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent SELECT generate_series(1, 10);");
    // In transactions of 50 tables: the source's own lock table must hold its set-up.
    for first in (1..=TABLES).step_by(50) {
        src.exec(&format!(
            "DO $$ BEGIN FOR i IN {first}..{last} LOOP
               EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, p int REFERENCES parent (id), v text)', i);
               EXECUTE format('CREATE INDEX t%s_v ON t%s (v)', i, i);
               EXECUTE format('INSERT INTO t%s SELECT g, 1 + g %% 10, md5(g::text) FROM generate_series(1, 3) g', i);
             END LOOP; END $$;",
            last = first + 49
        ));
    }
    src.exec("ANALYZE");
    let copy = || Howdah::copy(&src.url(), &dst.url()).args(["--jobs", "2"]);

    // Killed while it creates the schema (some tables exist, not all), then resumed.
    let mut first = copy().spawn();
    let started = Instant::now();
    loop {
        let made: usize = dst
            .query(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't%'",
            )
            .parse()
            .unwrap_or(0);
        if made > 20 {
            break;
        }
        if let Some(status) = first.try_wait().expect("poll howdah") {
            let out = first.wait_with_output().expect("output");
            panic!(
                "the copy ended ({status}) before the schema was half made\n{}",
                describe(&out)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no table created in 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().expect("kill -9 howdah");
    let _ = first.wait();
    let partial: usize = dst
        .query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't%'")
        .parse()
        .expect("a count");
    assert!(
        partial < TABLES,
        "the kill landed after the schema was complete ({partial} tables): the test proves nothing"
    );

    let (out, _) = copy().run_timeout(Duration::from_secs(600));
    assert_success(&out, "the resumed copy of 600 tables");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("the schema was not complete; creating the rest"),
        "the resumed run says it finishes the schema\n{log}"
    );
    assert!(
        log.contains("are not locked on the source"),
        "the source's lock table cannot hold 600 locks for one session: the log says which are left unlocked\n{log}"
    );
    assert_eq!(
        dst.query(
            "SELECT count(*), count(*) FILTER (WHERE relhasindex) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 't%'"
        ),
        format!("{TABLES}|{TABLES}")
    );
    assert_eq!(
        dst.query(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
        ),
        TABLES.to_string(),
        "every foreign key"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE 't%\\_v'"),
        TABLES.to_string(),
        "every index"
    );
    // Counted 50 tables to a query: one query over all would not fit the lock table either.
    let mut rows = 0usize;
    for first in (1..=TABLES).step_by(50) {
        let union: Vec<String> = (first..first + 50)
            .map(|i| format!("SELECT count(*) AS n FROM t{i}"))
            .collect();
        let n: usize = dst
            .query(&format!(
                "SELECT sum(n) FROM ({}) x",
                union.join(" UNION ALL ")
            ))
            .parse()
            .expect("a count");
        rows += n;
    }
    assert_eq!(rows, TABLES * 3, "every row");

    let verify = Howdah::new("verify")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--jobs",
            "2",
        ])
        .run_timeout(Duration::from_secs(600))
        .0;
    assert_success(&verify, "verify of 600 tables");
    let status = Howdah::new("status").args(["--target", &dst.url()]).run();
    assert_success(&status, "status of a 600-table job");
}
