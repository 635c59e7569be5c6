//! `copy --follow`, `cutover` and `abort` against a source cluster of the test's own with
//! `wal_level = logical` (tests/integration/cluster.rs): a writer changes the source during the
//! copy and the follow; after cutover the target equals the source, sequences included, and the
//! slot is gone. Kills during catch-up, DDL, leftover slots and the retained-WAL limit.

use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, ClusterDb};
use crate::support::{assert_success, describe, Howdah, TestDb};

const SCHEMA: &str = "
    CREATE TABLE items (id bigserial PRIMARY KEY, k int NOT NULL, body text, doc text);
    CREATE TABLE pairs (a int, b text, v numeric, PRIMARY KEY (a, b));
    CREATE TABLE logs (msg text, n int);
    ALTER TABLE logs REPLICA IDENTITY FULL;
    CREATE SEQUENCE standalone;
    -- A value far over the TOAST threshold that compression cannot shrink below it.
    CREATE FUNCTION big(seed int) RETURNS text LANGUAGE sql AS
      $$ SELECT string_agg(md5(seed::text || ':' || g), '') FROM generate_series(1, 400) g $$;
    INSERT INTO items (k, body, doc)
      SELECT g, 'row ' || g, CASE WHEN g % 50 = 0 THEN big(g) END FROM generate_series(1, 20000) g;
    INSERT INTO pairs SELECT g, 'b' || g, g * 1.5 FROM generate_series(1, 2000) g;
    INSERT INTO logs SELECT 'log ' || (g % 100), g FROM generate_series(1, 3000) g;
";

/// The statements one writer round runs in one transaction: inserts, updates that leave the
/// TOASTed column alone, key moves, deletes, keyless changes, the standalone sequence.
fn writer_round(n: u64) -> String {
    format!(
        "BEGIN;
         INSERT INTO items (k, body, doc) VALUES ({n}, 'new {n}', CASE WHEN {n} % 3 = 0 THEN big({n}) END);
         UPDATE items SET body = 'upd {n}' WHERE id = (SELECT id FROM items WHERE doc IS NOT NULL ORDER BY id OFFSET ({n} * 7) % 300 LIMIT 1);
         UPDATE items SET id = id + 1000000 WHERE id = ({n} * 13) % 20000 + 1;
         DELETE FROM items WHERE id = ({n} * 31) % 20000 + 1;
         UPDATE pairs SET b = b || 'x', v = v + 1 WHERE a = ({n} * 17) % 2000 + 1;
         INSERT INTO pairs VALUES (100000 + {n}, 'p', {n}) ON CONFLICT DO NOTHING;
         DELETE FROM logs WHERE ctid = (SELECT ctid FROM logs WHERE n = ({n} * 11) % 3000 + 1 LIMIT 1);
         UPDATE logs SET msg = msg || '!' WHERE n = ({n} * 5) % 3000 + 1;
         INSERT INTO logs VALUES ('w {n}', {n});
         SELECT nextval('standalone');
         COMMIT;"
    )
}

/// A writer thread changing the source until stopped; returns its rounds.
fn writer(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    pg_writer(url, stop, writer_round)
}

/// A writer thread running `round(n)` (one transaction's SQL) for n = 1, 2, ... against `url`
/// until stopped, 5 ms apart; returns its rounds.
pub(crate) fn pg_writer(
    url: String,
    stop: Arc<AtomicBool>,
    round: fn(u64) -> String,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let client = crate::support::connect(&url).await;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                client
                    .batch_execute(&round(n))
                    .await
                    .unwrap_or_else(|e| panic!("writer round {n}: {e}"));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        })
    })
}

fn http_get(port: u16) -> String {
    crate::support::metrics_body(port)
}

/// A database the tests compare: the test cluster's or the machine server's.
trait Db {
    fn rows(&self, sql: &str) -> String;
}

impl Db for ClusterDb {
    fn rows(&self, sql: &str) -> String {
        self.query(sql)
    }
}

impl Db for TestDb {
    fn rows(&self, sql: &str) -> String {
        self.query(sql)
    }
}

fn compare(src: &dyn Db, dst: &dyn Db, sql: &str) {
    let a = src.rows(sql);
    let b = dst.rows(sql);
    let mut a: Vec<&str> = a.lines().collect();
    let mut b: Vec<&str> = b.lines().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a.len(), b.len(), "row counts differ for {sql}");
    assert!(a == b, "rows differ for {sql}");
}

fn assert_equal(src: &dyn Db, dst: &dyn Db) {
    compare(src, dst, "SELECT id, k, body, md5(doc) FROM items");
    compare(src, dst, "SELECT a, b, v FROM pairs");
    compare(src, dst, "SELECT msg, n FROM logs");
    for seq in ["items_id_seq", "standalone"] {
        let q = format!("SELECT last_value, is_called FROM {seq}");
        assert_eq!(src.rows(&q), dst.rows(&q), "sequence {seq}");
    }
}

/// Waits until the job's follow phase is `phase`.
fn wait_phase(dst: &dyn DbUrl, job: &str, phase: &str, timeout: Duration) {
    crate::support::wait_follow_phase(&dst.db_url(), job, phase, timeout);
}

/// A database's URL.
trait DbUrl {
    fn db_url(&self) -> String;
}

impl DbUrl for ClusterDb {
    fn db_url(&self) -> String {
        self.url()
    }
}

impl DbUrl for TestDb {
    fn db_url(&self) -> String {
        self.url()
    }
}

fn follow_copy(src: &ClusterDb, dst: &dyn DbUrl, job: &str) -> Howdah {
    Howdah::copy(&src.url(), &dst.db_url()).args([
        "--follow",
        "--job",
        job,
        "-j",
        "2",
        "--chunk-rows",
        "3000",
    ])
}

fn cutover(src: &ClusterDb, dst: &dyn DbUrl, job: &str) -> Output {
    Howdah::new("cutover")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.db_url(),
            "--job",
            job,
            "--timeout",
            "60",
        ])
        .run()
}

/// A proxy to `cluster`, and `src`'s URL through it.
fn proxy_to(cluster: &Cluster, src: &ClusterDb) -> (crate::proxy::Proxy, String) {
    let proxy = crate::proxy::Proxy::start(
        format!("127.0.0.1:{}", cluster.port)
            .parse()
            .expect("socket address"),
    );
    let via_proxy = src
        .url()
        .replace(&format!(":{}/", cluster.port), &format!(":{}/", proxy.port));
    (proxy, via_proxy)
}

fn finish(child: std::process::Child) -> Output {
    child.wait_with_output().expect("wait for copy --follow")
}

#[test]
fn follow_until_cutover_with_a_writer_throughout() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SCHEMA);
    let dst = TestDb::new("follow");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(src.url(), stop.clone());
    // A transaction open when the slot is created: the slot waits for it, and its rows arrive.
    let long = {
        let url = src.url();
        std::thread::spawn(move || {
            crate::support::psql(
                &url,
                &["-q"],
                "BEGIN; INSERT INTO items (k, body) VALUES (-1, 'long'); SELECT pg_sleep(2); COMMIT;",
            )
            .expect("long transaction");
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let metrics_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        l.local_addr().expect("local address").port()
    };
    let child = follow_copy(&src, &dst, "f")
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .spawn();
    wait_phase(&dst, "f", "follow", Duration::from_secs(90));
    long.join().expect("long transaction thread");
    std::thread::sleep(Duration::from_secs(3));
    // The follow's metrics, as the contract in src/metrics.rs lists them.
    let scrape = http_get(metrics_port);
    for (name, _, labels) in howdah::metrics::FOLLOW_ALL {
        let found = scrape.lines().any(|l| {
            l.starts_with(name) && labels.iter().all(|label| l.contains(&format!("{label}=")))
        });
        assert!(found, "no series {name} in\n{scrape}");
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = w.join().expect("writer");
    assert!(rounds > 10, "the writer ran only {rounds} rounds");
    let out = cutover(&src, &dst, "f");
    assert_success(&out, "cutover");
    let out = finish(child);
    assert_success(&out, "copy --follow");
    eprintln!("{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cut over"),
        "{}",
        describe(&out)
    );
    assert_equal(&src, &dst);
    assert_eq!(src.query("SELECT count(*) FROM items WHERE k = -1"), "1");
    assert_eq!(src.query("SELECT count(*) FROM pg_replication_slots"), "0");
    assert_eq!(src.query("SELECT count(*) FROM pg_publication"), "0");
    drop(cluster);
}

fn kill9(child: &mut std::process::Child) {
    crate::support::kill9(child);
}

/// Runs `rounds` writer rounds at once (a backlog for the follower).
fn backlog(src: &ClusterDb, from: u64, rounds: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = crate::support::connect(&src.url()).await;
        for n in from..from + rounds {
            client
                .batch_execute(&writer_round(n))
                .await
                .unwrap_or_else(|e| panic!("backlog round {n}: {e}"));
        }
    });
}

#[test]
fn kill_during_catch_up_resumes_exactly_once() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SCHEMA);
    let dst = TestDb::new("follow_kill");
    let mut child = follow_copy(&src, &dst, "k").spawn();
    wait_phase(&dst, "k", "follow", Duration::from_secs(90));
    kill9(&mut child);
    // A backlog written while nothing follows; then followers killed while catching up.
    let mut mid_catch_up = 0;
    for i in 0..3u64 {
        backlog(&src, 1000 * i + 1, 200);
        src.exec(
            "DO $$ BEGIN FOR t IN 1..20 LOOP \
               INSERT INTO items (k, body) SELECT g, 'bulk ' || t FROM generate_series(1, 3000) g; \
               INSERT INTO logs SELECT 'bulk', g FROM generate_series(1, 100) g; COMMIT; \
             END LOOP; END $$",
        );
        let before = dst.query("SELECT applied_lsn FROM howdah.follow WHERE job = 'k'");
        let mut child = follow_copy(&src, &dst, "k").spawn();
        // Killed as soon as it has committed something of the backlog.
        let started = Instant::now();
        while dst.query("SELECT applied_lsn FROM howdah.follow WHERE job = 'k'") == before {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the follower applied nothing"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        kill9(&mut child);
        let after = dst.query("SELECT applied_lsn FROM howdah.follow WHERE job = 'k'");
        let behind = src.query(&format!("SELECT pg_current_wal_lsn() > '{after}'::pg_lsn"));
        if after != before && behind == "t" {
            mid_catch_up += 1;
        }
        eprintln!("catch-up {i}: applied {before} -> {after}, still behind: {behind}");
    }
    assert!(
        mid_catch_up > 0,
        "no follower was killed in the middle of its catch-up"
    );
    let child = follow_copy(&src, &dst, "k").spawn();
    wait_phase(&dst, "k", "follow", Duration::from_secs(60));
    let out = cutover(&src, &dst, "k");
    assert_success(&out, "cutover");
    assert_success(&finish(child), "copy --follow");
    // The keyless table gets a plain INSERT per source insert: a repeated transaction would
    // show as a duplicate row here.
    assert_equal(&src, &dst);
}

#[test]
fn ddl_on_a_followed_table_stops_the_apply_with_its_name() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SCHEMA);
    let dst = TestDb::new("follow_ddl");
    let child = follow_copy(&src, &dst, "d").spawn();
    wait_phase(&dst, "d", "follow", Duration::from_secs(90));
    src.exec("INSERT INTO pairs VALUES (-1, 'before', 1)");
    src.exec(
        "ALTER TABLE pairs ADD COLUMN extra int; INSERT INTO pairs VALUES (-2, 'after', 2, 7)",
    );
    let started = Instant::now();
    let mut child = child;
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the follower did not stop on the DDL"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = finish(child);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("public.pairs") && err.contains("extra"),
        "{}",
        describe(&out)
    );
    assert_eq!(dst.query("SELECT count(*) FROM pairs WHERE a = -1"), "1");
    assert_eq!(dst.query("SELECT count(*) FROM pairs WHERE a = -2"), "0");
    let status = Howdah::new("status").args(["--target", &dst.url()]).run();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("extra"),
        "{}",
        describe(&status)
    );
    let out = Howdah::new("abort")
        .args(["--source", &src.url(), "--target", &dst.url(), "--job", "d"])
        .run();
    assert_success(&out, "abort");
    assert_eq!(src.query("SELECT count(*) FROM pg_replication_slots"), "0");
}

#[test]
fn leftover_slot_is_reported_and_dropped_by_abort() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SCHEMA);
    let dst = TestDb::new("follow_left");
    let mut child = follow_copy(&src, &dst, "l").spawn();
    wait_phase(&dst, "l", "follow", Duration::from_secs(90));
    kill9(&mut child);
    backlog(&src, 1, 50);
    assert_eq!(
        src.query("SELECT count(*) FROM pg_replication_slots WHERE NOT active"),
        "1"
    );
    // Another job's start warns of the slot left behind, with its retained WAL.
    let other = TestDb::new("follow_other");
    let out = Howdah::copy(&src.url(), &other.url())
        .args(["--job", "other", "--tables", "public.logs"])
        .run();
    assert_success(&out, "plain copy");
    let out = follow_copy(&src, &other, "other2")
        .args(["--dry-run"])
        .run();
    assert_success(&out, "dry run");
    let third = TestDb::new("follow_third");
    let child = Howdah::copy(&src.url(), &third.url())
        .args([
            "--follow",
            "--job",
            "third",
            "--tables",
            "public.logs",
            "--max-retained-wal",
            "1KB",
        ])
        .spawn();
    wait_phase(&third, "third", "follow", Duration::from_secs(60));
    // WAL written while it follows: the slot retains it until the next restart point.
    backlog(&src, 5000, 20);
    let out = finish(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("replication slot howdah_l_") && err.contains("stopped howdah job"),
        "{}",
        describe(&out)
    );
    // --max-retained-wal: the third job's slot passed 1 KB and was dropped, with the reason.
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(err.contains("--max-retained-wal"), "{}", describe(&out));
    let status = Howdah::new("status").args(["--target", &dst.url()]).run();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("follow: follow (slot howdah_l_"),
        "{}",
        describe(&status)
    );
    let out = Howdah::new("abort")
        .args(["--source", &src.url(), "--target", &dst.url(), "--job", "l"])
        .run();
    assert_success(&out, "abort");
    assert_eq!(src.query("SELECT count(*) FROM pg_replication_slots"), "0");
    assert_eq!(src.query("SELECT count(*) FROM pg_publication"), "0");
}

#[test]
fn plan_says_what_following_the_source_needs() {
    let check = |out: &Output, name: &str| -> (String, String) {
        let plan: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", describe(out)));
        let c = plan["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no check {name}: {}", describe(out)))
            .clone();
        (
            c["status"].as_str().unwrap_or("").to_string(),
            c["detail"].as_str().unwrap_or("").to_string(),
        )
    };
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec("CREATE TABLE ok (id int PRIMARY KEY); CREATE TABLE bare (v int)");
    let dst = TestDb::new("follow_plan");
    let out = Howdah::new("plan")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--format",
            "json",
        ])
        .run();
    assert_success(&out, "plan");
    assert_eq!(check(&out, "follow_wal_level").0, "ok");
    assert_eq!(check(&out, "follow_replication_privilege").0, "ok");
    let (status, detail) = check(&out, "follow_replica_identity");
    assert_eq!(status, "warning");
    assert!(
        detail.contains("public.bare") && !detail.contains("public.ok"),
        "{detail}"
    );
    // The machine's server runs with wal_level = replica.
    let plain = TestDb::new("follow_plan_src");
    plain.exec("CREATE TABLE ok (id int PRIMARY KEY)");
    let out = Howdah::new("plan")
        .args([
            "--source",
            &plain.url(),
            "--target",
            &dst.url(),
            "--format",
            "json",
        ])
        .run();
    assert_success(&out, "plan");
    let (status, detail) = check(&out, "follow_wal_level");
    assert_eq!(status, "warning");
    assert!(detail.contains("wal_level = logical"), "{detail}");
    // And copy --follow refuses such a source before creating anything.
    let out = Howdah::copy(&plain.url(), &dst.url())
        .args(["--follow"])
        .run();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wal_level"),
        "{}",
        describe(&out)
    );
}

#[test]
fn follow_from_15_into_16() {
    let old = Cluster::logical();
    let new = Cluster::pg16();
    let src = old.db("src");
    src.exec(SCHEMA);
    let dst = new.db("dst");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(src.url(), stop.clone());
    let child = follow_copy(&src, &dst, "up").spawn();
    wait_phase(&dst, "up", "follow", Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    w.join().expect("writer");
    let out = Howdah::new("cutover")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--job",
            "up",
            "--verify",
        ])
        .run();
    assert_success(&out, "cutover --verify");
    assert_success(&finish(child), "copy --follow");
    assert!(dst.query("SHOW server_version").starts_with("16."));
    assert_equal(&src, &dst);
}

#[test]
fn replication_connection_cut_through_a_proxy() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SCHEMA);
    let dst = TestDb::new("follow_cut");
    let (proxy, via_proxy) = proxy_to(&cluster, &src);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(src.url(), stop.clone());
    let child = Howdah::copy(&via_proxy, &dst.url())
        .args(["--follow", "--job", "cut"])
        .spawn();
    wait_phase(&dst, "cut", "follow", Duration::from_secs(90));
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        proxy.cut_all();
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    w.join().expect("writer");
    let out = cutover(&src, &dst, "cut");
    assert_success(&out, "cutover");
    let out = finish(child);
    assert_success(&out, "copy --follow");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resuming from the last applied position"),
        "{}",
        describe(&out)
    );
    assert!(
        proxy.cuts.load(Ordering::Relaxed) > 0,
        "no connection was cut"
    );
    assert_equal(&src, &dst);
}

#[test]
fn a_keyless_table_read_partly_in_a_resumed_copy_is_not_followed() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(
        "CREATE TABLE logs (msg text, n int); ALTER TABLE logs REPLICA IDENTITY FULL;
         INSERT INTO logs SELECT repeat(md5(g::text), 3), g FROM generate_series(1, 200000) g; ANALYZE logs;",
    );
    let dst = TestDb::new("follow_keyless_resume");
    dst.exec("CREATE TABLE logs (msg text, n int)");
    crate::held::install(
        &dst,
        "logs",
        "EXISTS (SELECT 1 FROM howdah.chunks WHERE status = 'done')",
    );
    let mut child = Howdah::copy(&src.url(), &dst.url())
        .args([
            "--follow",
            "--job",
            "kr",
            "--schema",
            "existing",
            "--chunk-rows",
            "70000",
            "-j",
            "1",
        ])
        .spawn();
    crate::held::wait_for(
        &dst,
        "SELECT EXISTS (SELECT 1 FROM howdah.chunks WHERE status = 'done')",
        &mut child,
        Duration::from_secs(60),
    );
    crate::held::kill(&mut child, &dst, "logs");
    src.exec("INSERT INTO logs VALUES ('after the kill', -1)");
    let out = Howdah::copy(&src.url(), &dst.url())
        .args([
            "--follow",
            "--job",
            "kr",
            "--schema",
            "existing",
            "--chunk-rows",
            "70000",
            "-j",
            "1",
        ])
        .run();
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("public.logs") && err.contains("--restart"),
        "{}",
        describe(&out)
    );
    let out = Howdah::new("abort")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--job",
            "kr",
        ])
        .run();
    assert_success(&out, "abort");
}

#[test]
fn replica_identity_using_index_finds_rows_by_that_index() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(
        "CREATE TABLE accounts (id int PRIMARY KEY, code text NOT NULL, bal int);
         CREATE UNIQUE INDEX accounts_code ON accounts (code);
         ALTER TABLE accounts REPLICA IDENTITY USING INDEX accounts_code;
         CREATE TABLE tags (code text NOT NULL, label text);
         CREATE UNIQUE INDEX tags_code ON tags (code);
         ALTER TABLE tags REPLICA IDENTITY USING INDEX tags_code;
         INSERT INTO accounts SELECT g, 'c' || g, g FROM generate_series(1, 2000) g;
         INSERT INTO tags SELECT 't' || g, 'l' || g FROM generate_series(1, 2000) g;",
    );
    let dst = TestDb::new("follow_ident");
    let child = follow_copy(&src, &dst, "ri").spawn();
    wait_phase(&dst, "ri", "follow", Duration::from_secs(90));
    for n in 0..50 {
        src.exec(&format!(
            "BEGIN;
             UPDATE accounts SET bal = bal + 1 WHERE id = {a};
             UPDATE accounts SET code = code || 'x' WHERE id = {b};
             DELETE FROM accounts WHERE id = {c};
             INSERT INTO accounts VALUES (10000 + {n}, 'new{n}', {n});
             UPDATE tags SET label = label || '!' WHERE code = 't{a}';
             UPDATE tags SET code = code || 'y' WHERE code = 't{b}';
             DELETE FROM tags WHERE code = 't{c}';
             INSERT INTO tags VALUES ('n{n}', 'x');
             COMMIT;",
            a = n * 7 + 1,
            b = n * 11 + 2,
            c = n * 13 + 3,
        ));
    }
    let out = cutover(&src, &dst, "ri");
    assert_success(&out, "cutover");
    assert_success(&finish(child), "copy --follow");
    compare(&src, &dst, "SELECT id, code, bal FROM accounts");
    compare(&src, &dst, "SELECT code, label FROM tags");
}

#[test]
fn kill_between_target_commit_and_flush_confirmation() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SCHEMA);
    let dst = TestDb::new("follow_flush");
    let (proxy, via_proxy) = proxy_to(&cluster, &src);
    let follow = || {
        Howdah::copy(&via_proxy, &dst.url())
            .args(["--follow", "--job", "fl"])
            .spawn()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(src.url(), stop.clone());
    let mut child = follow();
    wait_phase(&dst, "fl", "follow", Duration::from_secs(90));
    // The phase says `follow` before the replication session starts: wait until it streams
    // (the follower committed a position past its start), or holding it would hold its start.
    let first = dst.query("SELECT applied_lsn FROM howdah.follow WHERE job = 'fl'");
    let started = Instant::now();
    while dst.query("SELECT applied_lsn FROM howdah.follow WHERE job = 'fl'") == first {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the follower applied nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The source hears nothing more from the follower's replication session, which keeps
    // receiving and committing: wait for a target commit whose position the source was not
    // told, and kill there.
    proxy.hold_replication(true);
    let started = Instant::now();
    loop {
        let applied = dst.query("SELECT applied_lsn FROM howdah.follow WHERE job = 'fl'");
        let ahead = src.query(&format!(
            "SELECT '{applied}'::pg_lsn > confirmed_flush_lsn FROM pg_replication_slots"
        ));
        if ahead == "t" {
            break;
        }

        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no target commit got ahead of the source's confirmed position"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill9(&mut child);
    // Cut before releasing: what the follower sent while held never reaches the source.
    proxy.cut_all();
    // The cut reaches each connection's task asynchronously: release only once it has.
    std::thread::sleep(Duration::from_secs(1));
    proxy.hold_replication(false);
    let confirmed = src.query("SELECT confirmed_flush_lsn FROM pg_replication_slots");
    let applied = dst.query("SELECT applied_lsn FROM howdah.follow WHERE job = 'fl'");
    assert_eq!(
        src.query(&format!(
            "SELECT '{applied}'::pg_lsn > '{confirmed}'::pg_lsn"
        )),
        "t",
        "the source was told the position after all"
    );
    // The slot resends what the target holds already: it must be skipped, not applied twice
    // (the keyless table would show a duplicate).
    let child = follow();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    w.join().expect("writer");
    let out = cutover(&src, &dst, "fl");
    assert_success(&out, "cutover");
    assert_success(&finish(child), "copy --follow");
    assert_equal(&src, &dst);
}

#[test]
fn follow_survives_a_target_restart() {
    let source_cluster = Cluster::logical();
    let target_cluster = Cluster::logical();
    let src = source_cluster.db("src");
    src.exec(SCHEMA);
    let dst = target_cluster.db("dst");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(src.url(), stop.clone());
    let child = follow_copy(&src, &dst, "tr").spawn();
    wait_phase(&dst, "tr", "follow", Duration::from_secs(90));
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(2));
        target_cluster.restart();
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    w.join().expect("writer");
    let out = cutover(&src, &dst, "tr");
    assert_success(&out, "cutover");
    let out = finish(child);
    assert_success(&out, "copy --follow");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resuming from the last applied position"),
        "{}",
        describe(&out)
    );
    assert_equal(&src, &dst);
}

#[test]
fn kill_during_the_bulk_copy_converges_after_resume() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(
        "CREATE TABLE items (id bigserial PRIMARY KEY, k int NOT NULL, body text, doc text);
         CREATE TABLE pairs (a int, b text, v numeric, PRIMARY KEY (a, b));
         INSERT INTO items (k, body, doc)
           SELECT g, 'row ' || g, CASE WHEN g % 500 = 0 THEN repeat(md5(g::text), 300) END
           FROM generate_series(1, 300000) g;
         INSERT INTO pairs SELECT g, 'b' || g, g * 1.5 FROM generate_series(1, 2000) g;
         ANALYZE;",
    );
    let dst = TestDb::new("follow_kill_copy");
    let copy = || {
        Howdah::copy(&src.url(), &dst.url())
            .args([
                "--follow",
                "--job",
                "kc",
                "-j",
                "1",
                "--commit-rows",
                "5000",
            ])
            .spawn()
    };
    // Changes before, during and after the kill: moved keys, updates, deletes, inserts.
    let stop = Arc::new(AtomicBool::new(false));
    let w = {
        let (url, stop) = (src.url(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                crate::support::psql(
                    &url,
                    &["-q"],
                    &format!(
                        "BEGIN;
                         UPDATE items SET body = 'upd {n}' WHERE id = ({n}::bigint * 7919) % 300000 + 1;
                         UPDATE items SET id = id + 1000000 WHERE id = ({n}::bigint * 104729) % 300000 + 1;
                         DELETE FROM items WHERE id = ({n}::bigint * 15485863) % 300000 + 1;
                         INSERT INTO items (k, body) VALUES (-{n}, 'new');
                         UPDATE pairs SET v = v + 1 WHERE a = {n} % 2000 + 1;
                         COMMIT;"
                    ),
                )
                .expect("writer round");
            }
            n
        })
    };
    let mut child = copy();
    // Killed once the items' chunk has committed rows and is still running.
    let running = "SELECT count(*) FROM howdah.chunks WHERE job = 'kc' AND status = 'running' \
                   AND rows_done > 0";
    let started = Instant::now();
    loop {
        let c = crate::support::psql(&dst.url(), &["-A", "-t"], running).unwrap_or_default();
        if c.parse::<u32>().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no chunk was seen running with committed rows"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill9(&mut child);
    let copied: u64 = dst.query("SELECT count(*) FROM items").parse().unwrap_or(0);
    assert!(
        copied < 290_000,
        "the copy was nearly done before the kill ({copied} rows)"
    );
    let child = copy();
    wait_phase(&dst, "kc", "follow", Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    assert!(w.join().expect("writer") > 5, "the writer barely ran");
    let out = cutover(&src, &dst, "kc");
    assert_success(&out, "cutover");
    assert_success(&finish(child), "copy --follow");
    compare(&src, &dst, "SELECT id, k, body, md5(doc) FROM items");
    compare(&src, &dst, "SELECT a, b, v FROM pairs");
}
