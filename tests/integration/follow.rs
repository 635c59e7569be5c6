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
                    .batch_execute(&writer_round(n))
                    .await
                    .unwrap_or_else(|e| panic!("writer round {n}: {e}"));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        })
    })
}

fn compare(src: &ClusterDb, dst: &TestDb, sql: &str) {
    let a = src.query(sql);
    let b = dst.query(sql);
    let mut a: Vec<&str> = a.lines().collect();
    let mut b: Vec<&str> = b.lines().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a.len(), b.len(), "row counts differ for {sql}");
    assert!(a == b, "rows differ for {sql}");
}

fn assert_equal(src: &ClusterDb, dst: &TestDb) {
    compare(src, dst, "SELECT id, k, body, md5(doc) FROM items");
    compare(src, dst, "SELECT a, b, v FROM pairs");
    compare(src, dst, "SELECT msg, n FROM logs");
    for seq in ["items_id_seq", "standalone"] {
        let q = format!("SELECT last_value, is_called FROM {seq}");
        assert_eq!(src.query(&q), dst.query(&q), "sequence {seq}");
    }
}

/// Waits until the job's follow phase is `phase`.
fn wait_phase(dst: &TestDb, job: &str, phase: &str, timeout: Duration) {
    let started = Instant::now();
    loop {
        let p = dst
            .try_query(&format!("SELECT phase FROM howdah.follow WHERE job = '{job}'"))
            .unwrap_or_default();
        if p == phase {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "job {job} did not reach phase {phase} (now {p:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn follow_copy(src: &ClusterDb, dst: &TestDb, job: &str) -> Howdah {
    Howdah::copy(&src.url(), &dst.url()).args(["--follow", "--job", job, "-j", "2", "--chunk-rows", "3000"])
}

fn cutover(src: &ClusterDb, dst: &TestDb, job: &str) -> Output {
    Howdah::new("cutover")
        .args(["--source", &src.url(), "--target", &dst.url(), "--job", job, "--timeout", "60"])
        .run()
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
    let child = follow_copy(&src, &dst, "f").spawn();
    wait_phase(&dst, "f", "follow", Duration::from_secs(90));
    long.join().expect("long transaction thread");
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let rounds = w.join().expect("writer");
    assert!(rounds > 10, "the writer ran only {rounds} rounds");
    let out = cutover(&src, &dst, "f");
    assert_success(&out, "cutover");
    let out = finish(child);
    assert_success(&out, "copy --follow");
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
