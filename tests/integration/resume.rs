//! Exactly-once resume: kill -9 at seeded moments, Ctrl-C drain, refused config changes.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::proxy::Proxy;
use crate::support::{assert_same, describe, Howdah, TestDb};

const SETUP: &str = "
    CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, note text, at timestamptz);
    INSERT INTO orders SELECT g, g % 997, md5(g::text), '2020-01-01'::timestamptz + g * interval '1 minute'
      FROM generate_series(1, 1000000) g;
    CREATE INDEX orders_customer_idx ON orders (customer);
    CREATE TABLE lines (order_id bigint, line int, qty int, PRIMARY KEY (order_id, line));
    INSERT INTO lines SELECT g / 3, g % 3, g % 17 FROM generate_series(3, 600002) g;
    CREATE TABLE events (at timestamptz, what text);
    INSERT INTO events SELECT '2021-01-01'::timestamptz + g * interval '1 second', 'e' || g FROM generate_series(1, 40000) g;
    CREATE TABLE tags (name text PRIMARY KEY, weight int);
    INSERT INTO tags SELECT 'tag-' || g, g FROM generate_series(1, 30000) g;
    ANALYZE;";

const TABLES: [&str; 4] = ["orders", "lines", "events", "tags"];
const COMMIT_ROWS: u64 = 5000;
const JOBS: u64 = 2;

fn spawn(src: &TestDb, dst: &TestDb, extra: &[&str]) -> Child {
    spawn_jobs(src, dst, "2", extra)
}

fn spawn_jobs(src: &TestDb, dst: &TestDb, jobs: &str, extra: &[&str]) -> Child {
    Howdah::copy(&src.url(), &dst.url())
        .args([
            "--jobs",
            jobs,
            "--commit-rows",
            "5000",
            "--chunk-rows",
            "60000",
        ])
        .args(extra)
        .spawn()
}

fn finish(child: Child) -> std::process::Output {
    child.wait_with_output().expect("wait for howdah")
}

/// A small deterministic generator, so a failing sequence of kill points can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next_ms(&mut self, max: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % max
    }
}

fn inserted_on_target(dst: &TestDb) -> u64 {
    // Counts rows written by every transaction, committed or not.
    std::thread::sleep(Duration::from_millis(1500));
    let list = TABLES.map(|t| format!("'{t}'")).join(",");
    dst.query(&format!(
        "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname IN ({list})"
    ))
    .parse()
    .unwrap_or(0)
}

#[test]
fn kill_nine_at_seeded_moments_then_resume() {
    let src = TestDb::new("resume_src");
    src.exec(SETUP);
    let dst = TestDb::new("resume_dst");
    let seed = std::env::var("HOWDAH_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261125u64);
    let mut rng = Lcg(seed);
    let mut kills = 0u64;
    let mut finished = false;
    // Kill points spread over the whole run: schema, data, post-data steps.
    // Each attempt connects, plans and copies for a while; the copy as a whole takes about a
    // second, so short delays spread the kills over schema, data and post-data steps.
    for attempt in 0..10 {
        let delay = Duration::from_millis(80 + rng.next_ms(350) + attempt * 15);
        let mut child = spawn(&src, &dst, &[]);
        let started = Instant::now();
        while started.elapsed() < delay {
            if child.try_wait().expect("poll howdah").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if child.try_wait().expect("poll howdah").is_none() {
            child.kill().expect("kill -9 howdah");
            kills += 1;
        }
        let out = finish(child);
        if out.status.success() {
            finished = true;
            break;
        }
        assert!(
            out.status.code().is_none(),
            "seed {seed}, attempt {attempt}: howdah failed instead of being killed\n{}",
            describe(&out)
        );
    }
    if !finished {
        let out = finish(spawn(&src, &dst, &[]));
        assert!(
            out.status.success(),
            "seed {seed}: final resume failed\n{}",
            describe(&out)
        );
    }
    assert!(
        kills >= 5,
        "seed {seed}: only {kills} kills landed before the copy finished"
    );
    for t in TABLES {
        assert_same(&src, &dst, &format!("SELECT * FROM {t}"));
    }
    assert_eq!(
        dst.query("SELECT count(*) - count(DISTINCT (order_id, line)) FROM lines"),
        "0"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_customer_idx'"),
        "1"
    );
    let rows: u64 = 1000000 + 600000 + 40000 + 30000;
    // Each kill may lose at most one uncommitted batch per lane (or a whole keyless chunk).
    let bound = rows + kills * JOBS * COMMIT_ROWS.max(40000);
    let inserted = inserted_on_target(&dst);
    assert!(
        inserted <= bound,
        "seed {seed}: {inserted} rows written for {rows} rows of data and {kills} kills"
    );
}

#[test]
fn ctrl_c_drains_then_resume_completes() {
    let src = TestDb::new("drain_src");
    src.exec(SETUP);
    let dst = TestDb::new("drain_dst");
    let child = spawn_jobs(&src, &dst, "1", &[]);
    std::thread::sleep(Duration::from_millis(400));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = finish(child);
    if out.status.code() == Some(0) {
        eprintln!("the copy finished before the signal; nothing to drain");
    } else {
        assert_eq!(
            out.status.code(),
            Some(4),
            "a drained run exits 4\n{}",
            describe(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("run the same command again to resume"),
            "{}",
            describe(&out)
        );
        let out = finish(spawn_jobs(&src, &dst, "1", &[]));
        assert!(
            out.status.success(),
            "resume after Ctrl-C failed\n{}",
            describe(&out)
        );
    }
    for t in TABLES {
        assert_same(&src, &dst, &format!("SELECT * FROM {t}"));
    }
}

#[test]
fn changed_config_is_refused_and_finished_job_is_reported() {
    let src = TestDb::new("cfg_src");
    src.exec(SETUP);
    let dst = TestDb::new("cfg_dst");
    // An unfinished job (killed early) refuses other settings and names what changed.
    let mut child = spawn(&src, &dst, &["--tables", "public.orders"]);
    wait_for_copy(&dst, &mut child);
    child.kill().expect("kill -9 howdah");
    let _ = finish(child);
    let out = finish(spawn(
        &src,
        &dst,
        &["--tables", "public.orders", "--tables", "public.events"],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another configuration")
            && err.contains("tables:")
            && err.contains("--restart"),
        "{}",
        describe(&out)
    );
    // The same settings resume it to the end; running them again says it is finished.
    let out = finish(spawn(&src, &dst, &["--tables", "public.orders"]));
    assert!(out.status.success(), "{}", describe(&out));
    assert_same(&src, &dst, "SELECT * FROM orders");
    let out = finish(spawn(&src, &dst, &["--tables", "public.orders"]));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already finished"),
        "{}",
        describe(&out)
    );
    // After a finished job, other settings are a new copy.
    let out = finish(spawn(&src, &dst, &["--tables", "public.tags"]));
    assert!(
        out.status.success(),
        "a new copy after a finished job\n{}",
        describe(&out)
    );
    assert_same(&src, &dst, "SELECT * FROM tags");
    let out = finish(spawn(
        &src,
        &dst,
        &[
            "--tables",
            "public.tags",
            "--restart",
            "--schema",
            "recreate",
        ],
    ));
    assert!(
        out.status.success(),
        "--restart --schema recreate copies again\n{}",
        describe(&out)
    );
    assert_same(&src, &dst, "SELECT * FROM tags");
}

#[test]
fn state_of_an_earlier_version_is_found_not_ignored() {
    // An earlier version kept its state in a schema of another name. Found by the tables'
    // shape, so any name works here; the copy and status must say so and how to carry on,
    // never start a second, empty state beside it.
    let src = TestDb::new("legacy_src");
    src.exec(SETUP);
    let dst = TestDb::new("legacy_dst");
    let job =
        crate::support::job_file("legacy_state", "[copy]\nstate_schema = \"copy_state_v1\"\n");
    let out = finish(spawn(
        &src,
        &dst,
        &["--tables", "public.tags", "--config", &job],
    ));
    assert!(out.status.success(), "{}", describe(&out));

    let status = Howdah::new("status").args(["--target", &dst.url()]).run();
    let line = crate::support::assert_error(&status, 2, "status next to an old state schema");
    assert!(
        line.contains("\"copy_state_v1\"")
            && line.contains("ALTER SCHEMA \"copy_state_v1\" RENAME TO \"howdah\""),
        "{line}"
    );
    let out = finish(spawn(&src, &dst, &["--tables", "public.tags"]));
    let line = crate::support::assert_error(&out, 2, "copy next to an old state schema");
    assert!(line.contains("ALTER SCHEMA"), "{line}");
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'howdah'"),
        "0",
        "no second state schema is created"
    );

    // After the rename the job is found where this version looks for it.
    dst.exec("ALTER SCHEMA copy_state_v1 RENAME TO howdah");
    assert_eq!(status_json(&dst)[0]["phase"], "done");
    let out = finish(spawn(&src, &dst, &["--tables", "public.tags"]));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already finished"),
        "{}",
        describe(&out)
    );
}

/// Waits until rows are flowing into the target (the job's state exists by then).
fn wait_for_copy(dst: &TestDb, child: &mut Child) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let copying = dst.query(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'COPY%' AND state = 'active'",
            dst.name
        ));
        if copying != "0" || child.try_wait().expect("poll howdah").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status_json(dst: &TestDb) -> serde_json::Value {
    let target = dst.url().replace("postgres@", "postgres:SENTINEL-pw@");
    let out = Howdah::new("status")
        .args(["--target", &target, "--json"])
        .run();
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("SENTINEL"), "status printed the password");
    serde_json::from_str(&text).expect("status --json prints JSON")
}

#[test]
fn status_reports_an_interrupted_and_a_finished_job() {
    let src = TestDb::new("status_src");
    src.exec(SETUP);
    let dst = TestDb::new("status_dst");
    let mut child = spawn(&src, &dst, &[]);
    wait_for_copy(&dst, &mut child);
    std::thread::sleep(Duration::from_millis(150));
    child.kill().expect("kill -9 howdah");
    let _ = finish(child);
    let jobs = status_json(&dst);
    let job = &jobs[0];
    assert_eq!(job["job"], "default");
    let rows = job["rows"].as_i64().unwrap_or(-1);
    if job["phase"] == "data" {
        assert!(rows < 1_670_000, "an interrupted job has rows left: {job}");
        let pending: i64 = job["tables"]
            .as_array()
            .map(|t| {
                t.iter()
                    .map(|t| {
                        t["chunks_pending"].as_i64().unwrap_or(0)
                            + t["chunks_running"].as_i64().unwrap_or(0)
                    })
                    .sum()
            })
            .unwrap_or(0);
        assert!(pending > 0, "an interrupted job has chunks left: {job}");
    }
    let out = finish(spawn(&src, &dst, &[]));
    assert!(out.status.success(), "{}", describe(&out));
    let jobs = status_json(&dst);
    assert_eq!(jobs[0]["phase"], "done");
    assert_eq!(jobs[0]["rows"].as_i64(), Some(1_670_000), "{}", jobs[0]);
    let text = Howdah::new("status")
        .args(["--target", &dst.url(), "--job", "nope"])
        .run();
    assert_eq!(text.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&text.stderr).contains("no job named \"nope\""),
        "{}",
        describe(&text)
    );
}

/// Backends of a running copy killed by the server (admin shutdown, as in a failover or an
/// operator's pg_terminate_backend): the chunk is retried from its last checkpoint and the
/// copy completes equal.
#[test]
fn terminated_connections_are_retried() {
    let src = TestDb::new("retry_src");
    src.exec(SETUP);
    let dst = TestDb::new("retry_dst");
    let child = spawn_jobs(
        &src,
        &dst,
        "1",
        &["--tables", "public.orders", "--tables", "public.lines"],
    );
    let started = Instant::now();
    let mut terminated = 0;
    // Cut the lane's target and source connections while they copy, a few times.
    while started.elapsed() < Duration::from_secs(6) && terminated < 3 {
        std::thread::sleep(Duration::from_millis(250));
        let n: usize = src
            .query(&format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name LIKE 'howdah/default/%' AND query LIKE 'COPY%' \
                 AND datname IN ('{}', '{}') AND state = 'active'",
                src.name, dst.name
            ))
            .parse()
            .unwrap_or(0);
        terminated += n;
    }
    let out = finish(child);
    assert!(
        out.status.success(),
        "the copy must survive terminated connections\n{}",
        describe(&out)
    );
    assert!(
        terminated > 0,
        "no connection was terminated: the copy was too quick"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("retrying from the last checkpoint"),
        "{}",
        describe(&out)
    );
    assert!(
        !stdout.contains("retried chunk attempts: 0"),
        "{}",
        describe(&out)
    );
    assert_same(&src, &dst, "SELECT * FROM orders");
    assert_same(&src, &dst, "SELECT * FROM lines");
}

/// A chunk that fails for good (a value the target rejects) is recorded; the other tables are
/// copied; the run exits 1 naming it; after the cause is fixed, a rerun copies only what is left.
#[test]
fn permanent_failure_lets_other_tables_finish_then_resumes() {
    let src = TestDb::new("perm_src");
    let tables = "CREATE TABLE ok1 (id int PRIMARY KEY, v int); CREATE TABLE bad (id int PRIMARY KEY, v int);
                  CREATE TABLE ok2 (id int PRIMARY KEY, v int);";
    src.exec(tables);
    src.exec(
        "INSERT INTO ok1 SELECT g, g FROM generate_series(1, 20000) g;
         INSERT INTO bad SELECT g, g FROM generate_series(1, 200) g;
         INSERT INTO ok2 SELECT g, g FROM generate_series(1, 20000) g;",
    );
    let dst = TestDb::new("perm_dst");
    dst.exec(tables);
    dst.exec("ALTER TABLE bad ADD CONSTRAINT small_v CHECK (v < 150);");
    let out = finish(spawn_jobs(&src, &dst, "1", &["--schema", "existing"]));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 chunk(s) failed") && err.contains("public.bad") && err.contains("small_v"),
        "{}",
        describe(&out)
    );
    assert_same(&src, &dst, "SELECT * FROM ok1");
    assert_same(&src, &dst, "SELECT * FROM ok2");
    assert_eq!(
        dst.query("SELECT count(*) FROM bad"),
        "0",
        "the failed chunk rolled back"
    );
    let status = Howdah::new("status").args(["--target", &dst.url()]).run();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("small_v") && text.contains("not finished"),
        "{}",
        describe(&status)
    );

    dst.exec("ALTER TABLE bad DROP CONSTRAINT small_v;");
    let out = finish(spawn_jobs(&src, &dst, "1", &["--schema", "existing"]));
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2 of 3 chunks already copied"),
        "{}",
        describe(&out)
    );
    for t in ["ok1", "bad", "ok2"] {
        assert_same(&src, &dst, &format!("SELECT * FROM {t}"));
    }
}

/// Source and target connections cut by the network mid-COPY (a proxy resets them): the copy
/// retries from its checkpoints and completes equal, and says how often it retried.
#[test]
fn network_cuts_are_retried() {
    let src = TestDb::new("cut_src");
    src.exec(SETUP);
    let dst = TestDb::new("cut_dst");
    let proxy = Proxy::to_postgres();
    let child = proxy
        .copy(&src, &dst)
        .args([
            "--jobs",
            "2",
            "--commit-rows",
            "5000",
            "--chunk-rows",
            "60000",
        ])
        .spawn();
    let cuts = proxy.cut_during_copy(&dst, 3, Duration::from_secs(10));
    let out = finish(child);
    assert!(cuts > 0, "no cut happened during a COPY");
    assert!(
        out.status.success(),
        "the copy must survive network cuts\n{}",
        describe(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("retried chunk attempts: 0"),
        "{}",
        describe(&out)
    );
    for t in TABLES {
        assert_same(&src, &dst, &format!("SELECT * FROM {t}"));
    }
    assert!(proxy.cuts.load(std::sync::atomic::Ordering::SeqCst) > 0);
}
