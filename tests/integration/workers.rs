//! Several `howdah copy` processes on one job: they share the chunks and finish together; a
//! killed worker's chunk is taken over at once, a stalled one's when its lease runs out.

use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::support::{assert_same, describe, Howdah, TestDb};

const SETUP: &str = "
    CREATE TABLE big (id bigint PRIMARY KEY, v text NOT NULL, n int);
    INSERT INTO big SELECT g, md5(g::text), g % 1000 FROM generate_series(1, 400000) g;
    CREATE INDEX big_n_idx ON big (n);
    CREATE TABLE pairs (a int, b int, w text, PRIMARY KEY (a, b));
    INSERT INTO pairs SELECT g / 4, g % 4, repeat('x', 20) FROM generate_series(4, 300003) g;
    CREATE TABLE log (at timestamptz, what text);
    INSERT INTO log SELECT '2024-01-01'::timestamptz + g * interval '1 s', 'e' || g FROM generate_series(1, 60000) g;
    CREATE TABLE refs (id int PRIMARY KEY, big_id bigint REFERENCES big (id));
    INSERT INTO refs SELECT g, g * 3 FROM generate_series(1, 5000) g;
    ANALYZE;";

const TABLES: [&str; 4] = ["big", "pairs", "log", "refs"];

fn worker(src: &TestDb, dst: &TestDb, extra: &[&str]) -> Child {
    Howdah::copy(&src.url(), &dst.url())
        .args([
            "--jobs",
            "1",
            "--chunk-rows",
            "20000",
            "--commit-rows",
            "5000",
        ])
        .args(extra)
        .spawn()
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("wait for howdah")
}

fn assert_copied(src: &TestDb, dst: &TestDb) {
    for t in TABLES {
        assert_same(src, dst, &format!("SELECT * FROM {t}"));
    }
    // Post-data steps ran once: every index and the foreign key exist once.
    assert_eq!(
        dst.query("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'"),
        "big_n_idx,big_pkey,pairs_pkey,refs_pkey"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'refs'::regclass"),
        "1"
    );
}

/// Waits until some chunk of the job has committed rows and is still running.
fn wait_for_running_chunk(dst: &TestDb, child: &mut Child) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if child.try_wait().expect("poll howdah").is_some() {
            panic!("the worker ended before any chunk was caught running");
        }
        if dst.query("SELECT to_regclass('howdah.chunks') IS NOT NULL") == "t"
            && dst.query(
                "SELECT count(*) FROM howdah.chunks WHERE status = 'running' AND rows_done > 0",
            ) != "0"
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no chunk was seen running with committed rows");
}

/// After the first worker was stopped or killed: a chunk it left running, as
/// `table_no|chunk_no|rows_done`, if the stop did not land between two chunks.
fn left_running(dst: &TestDb) -> Option<String> {
    // A COMMIT already on its way to the server still lands.
    std::thread::sleep(Duration::from_millis(300));
    let row = dst.query(
        "SELECT table_no || '|' || chunk_no || '|' || rows_done FROM howdah.chunks \
         WHERE status = 'running' AND owner = 1 ORDER BY rows_done DESC LIMIT 1",
    );
    (!row.is_empty()).then_some(row)
}

#[test]
fn two_and_three_workers_share_a_job() {
    let src = TestDb::new("workers_src");
    src.exec(SETUP);
    for n in [2usize, 3] {
        let dst = TestDb::new("workers_dst");
        let children: Vec<Child> = (0..n).map(|_| worker(&src, &dst, &[])).collect();
        let outs: Vec<Output> = children.into_iter().map(finish).collect();
        for out in &outs {
            assert!(out.status.success(), "{n} workers: {}", describe(out));
        }
        assert_copied(&src, &dst);
        let owners =
            dst.query("SELECT count(DISTINCT owner) FROM howdah.chunks WHERE status = 'done'");
        assert_eq!(
            owners,
            n.to_string(),
            "each of the {n} workers copied some chunks: {}",
            dst.query("SELECT owner, count(*) FROM howdah.chunks GROUP BY owner")
        );
        for out in &outs {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                !stdout.contains("chunks copied by this worker: 0 of"),
                "{}",
                describe(out)
            );
        }
        // Every step ran once: each is recorded once, and nothing failed.
        assert_eq!(
            dst.query("SELECT count(*) FROM howdah.chunks WHERE status <> 'done'"),
            "0"
        );
        assert_eq!(dst.query("SELECT phase FROM howdah.jobs"), "done");
        // The status report lists the workers, all gone now.
        let status = Howdah::new("status")
            .args(["--target", &dst.url(), "--json"])
            .run();
        let text = String::from_utf8_lossy(&status.stdout);
        assert_eq!(
            text.matches("\"alive\": false").count(),
            n,
            "{}",
            describe(&status)
        );
    }
}

#[test]
fn a_killed_workers_chunk_is_taken_over_at_once() {
    let src = TestDb::new("takeover_src");
    src.exec(SETUP);
    for attempt in 0..5 {
        let dst = TestDb::new("takeover_dst");
        let mut first = worker(&src, &dst, &[]);
        wait_for_running_chunk(&dst, &mut first);
        first.kill().expect("kill -9 the first worker");
        let _ = finish(first);
        let Some(left) = left_running(&dst) else {
            eprintln!("attempt {attempt}: the kill landed between two chunks; again");
            continue;
        };
        let mut parts = left.split('|');
        let (table, chunk, committed) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        // The lease is 60 s by default: a takeover well within it shows the dead worker was
        // seen dead from its released liveness lock.
        let started = Instant::now();
        let out = finish(worker(&src, &dst, &[]));
        assert!(out.status.success(), "{}", describe(&out));
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "the second worker waited for the lease"
        );
        assert_copied(&src, &dst);
        let row = dst.query(&format!(
            "SELECT owner, claims, status, rows_done >= {committed} FROM howdah.chunks \
             WHERE table_no = {table} AND chunk_no = {chunk}"
        ));
        assert_eq!(
            row, "2|2|done|t",
            "the second worker finished the first one's chunk"
        );
        return;
    }
    panic!("no kill landed inside a chunk in 5 attempts");
}

#[test]
fn a_stalled_worker_loses_its_chunk_when_the_lease_runs_out() {
    let src = TestDb::new("lease_src");
    src.exec(SETUP);
    let lease = ["--lease-secs", "3"];
    for attempt in 0..5 {
        let dst = TestDb::new("lease_dst");
        let mut first = worker(&src, &dst, &lease);
        wait_for_running_chunk(&dst, &mut first);
        let pid = first.id().to_string();
        let signal = |sig: &str| {
            let ok = Command::new("kill")
                .args([sig, &pid])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "kill {sig} {pid}");
        };
        // Frozen: its sessions and liveness lock stay, its heartbeat stops.
        signal("-STOP");
        let Some(left) = left_running(&dst) else {
            signal("-CONT");
            let _ = finish(first);
            eprintln!("attempt {attempt}: the stop landed between two chunks; again");
            continue;
        };
        let mut parts = left.split('|');
        let (table, chunk) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let second = worker(&src, &dst, &lease);
        let started = Instant::now();
        let mut all_done = false;
        while started.elapsed() < Duration::from_secs(90) {
            if dst.query("SELECT count(*) FILTER (WHERE status <> 'done') FROM howdah.chunks")
                == "0"
            {
                all_done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Thawed: its next checkpoint finds the chunk taken over and rolls its batch back.
        signal("-CONT");
        assert!(
            all_done,
            "the second worker did not take the stalled chunk over"
        );
        let second = finish(second);
        let first = finish(first);
        assert!(second.status.success(), "{}", describe(&second));
        assert!(first.status.success(), "{}", describe(&first));
        assert!(
            String::from_utf8_lossy(&first.stderr).contains("was taken over by another"),
            "{}",
            describe(&first)
        );
        assert_copied(&src, &dst);
        assert_eq!(
            dst.query(&format!(
                "SELECT owner FROM howdah.chunks WHERE table_no = {table} AND chunk_no = {chunk}"
            )),
            "2"
        );
        return;
    }
    panic!("no stop landed inside a chunk in 5 attempts");
}
