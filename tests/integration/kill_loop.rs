//! Kill loops: copies killed with SIGKILL at random moments while a writer keeps changing the
//! source, then resumed to the end, for a PostgreSQL and a MariaDB source, keyed and keyless
//! tables, a mapped table that rejects rows.
//!
//! What must hold however the kills fall (a copy of a live source without change capture is
//! not one image of the source, but it must be exact where a resume can make it so):
//! - keyed tables: no row twice, no row the writer never deleted missing, no row that never
//!   existed;
//! - a keyless table: equal to one image of the source (the writer keeps its row count, its
//!   tags unique and the sum of its values constant in every transaction, so a row lost or
//!   copied twice shows);
//! - the rejected rows (never touched by the writer) are exactly those of an uninterrupted
//!   run, and every table's committed row count in the job state equals its rows on the target.
//!
//! `HOWDAH_KILL_SEED` replays a sequence of kill points, `HOWDAH_KILL_ROUNDS` sets how many
//! kills (default 6); `benches/killloop.sh` runs many seeds for longer.

use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::{assert_success, describe, job_file, Howdah, MyDb, TestDb};

/// A small deterministic generator, so a failing sequence of kill points can be replayed.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, max: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % max
    }
}

fn seed() -> u64 {
    std::env::var("HOWDAH_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261206)
}

fn rounds() -> u64 {
    std::env::var("HOWDAH_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

/// Starts the copy `spawn` gives, kills it (SIGKILL) after a random delay within the time an
/// uninterrupted run took (`calm`), `rounds` times, then runs it to the end; the number of
/// kills that landed.
fn kill_then_finish(
    spawn: impl Fn() -> Child,
    rounds: u64,
    calm: Duration,
    copying: impl Fn() -> bool,
) -> u64 {
    let max_ms = (calm.as_millis() as u64 * 9 / 10).max(200);
    let seed = seed();
    let mut rng = Lcg(seed);
    let mut kills = 0;
    for round in 0..rounds {
        // A resumed run has less left to copy: later kills come sooner.
        let delay = Duration::from_millis(100 + rng.below(max_ms * 2 / (round + 2)));
        let mut child = spawn();
        let started = Instant::now();
        // The first kill lands once a chunk is committed (the data phase is under way),
        // whatever the machine's speed; later ones at random moments.
        let due = |elapsed: Duration| match round {
            0 => copying() || elapsed > Duration::from_secs(120),
            _ => elapsed >= delay,
        };
        while !due(started.elapsed()) && child.try_wait().expect("poll howdah").is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        if child.try_wait().expect("poll howdah").is_none() {
            child.kill().expect("kill -9 howdah");
            kills += 1;
        }
        let out = child.wait_with_output().expect("wait for howdah");
        if out.status.success() {
            return kills;
        }
        assert!(
            out.status.code().is_none(),
            "seed {seed}, round {round}: howdah failed instead of being killed\n{}",
            describe(&out)
        );
    }
    let out = spawn().wait_with_output().expect("wait for howdah");
    // The last kill may land after the job was recorded finished, before the process exited.
    let finished_before = String::from_utf8_lossy(&out.stderr).contains("already finished");
    if !finished_before {
        assert_success(&out, &format!("seed {seed}: the final resume"));
    }
    kills
}

/// The uninterrupted run, on the unchanged source: the rejects to expect (one row in 97 of
/// `bad`, for the reason `why`) and the time it took.
fn calm_run(copy: impl Fn(&TestDb) -> Howdah, tag: &str, why: &str) -> (String, Duration) {
    let calm = TestDb::new(tag);
    let (out, took) = copy(&calm).run_timeout(Duration::from_secs(300));
    assert_success(&out, "the uninterrupted copy");
    let expected = rejects(&calm);
    assert_eq!(expected.lines().count(), 20000 / 97, "{why}");
    (expected, took)
}

/// Whether the job in `dst` has committed a chunk.
fn chunk_done(dst: &TestDb) -> bool {
    dst.try_query("SELECT count(*) > 0 FROM howdah.chunks WHERE status = 'done'")
        .is_ok_and(|t| t == "t")
}

/// A thread that runs `step` until stopped or until a step fails; counts the steps.
struct Writer {
    stop: Arc<AtomicBool>,
    steps: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Writer {
    fn start(step: impl Fn() -> Result<(), String> + Send + 'static) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let steps = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), steps.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                step()?;
                n.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        Writer {
            stop,
            steps,
            thread: Some(thread),
        }
    }

    /// Stops the writer; how many steps it ran (a failed step fails the test).
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if let Err(e) = t.join().expect("the writer thread") {
                panic!("a writer step failed: {e}");
            }
        }
        self.steps.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    /// A test that fails with the writer running stops it before the source is dropped.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Rejected rows of the job in `dst`: table, key, column, reason, sorted.
fn rejects(dst: &TestDb) -> String {
    dst.query("SELECT table_name, key, column_name, reason FROM howdah.rejects ORDER BY 1, 2, 3")
}

/// Per table: the rows the job's chunks committed, and the rows on the target.
fn committed_vs_present(dst: &TestDb, tables: &[&str]) {
    for t in tables {
        let state = dst.query(&format!(
            "SELECT coalesce(sum(rows_done), 0) FROM howdah.chunks WHERE table_name = '{t}'"
        ));
        let present = dst.query(&format!("SELECT count(*) FROM {t}"));
        assert_eq!(
            state, present,
            "{t}: the job state says {state} rows were committed, the target holds {present}"
        );
    }
}

const PG_SOURCE: &str = "
    CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL, pad text)
      WITH (fillfactor = 100);
    INSERT INTO accounts SELECT g, 1000, repeat(md5(g::text), 3) FROM generate_series(1, 150000) g;
    CREATE SEQUENCE items_new START 10000001;
    CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, pad text) WITH (fillfactor = 100);
    INSERT INTO items SELECT g, 0, repeat('i', 80) FROM generate_series(1, 100000) g;
    CREATE SEQUENCE ledger_new START 10000001;
    CREATE TABLE ledger (tag bigint NOT NULL, v bigint NOT NULL, pad text) WITH (fillfactor = 100);
    INSERT INTO ledger SELECT g, 100, repeat('l', 120) FROM generate_series(1, 100000) g;
    CREATE INDEX ledger_tag ON ledger (tag);
    CREATE TABLE bad (id int PRIMARY KEY, n text);
    INSERT INTO bad SELECT g, CASE WHEN g % 97 = 0 THEN 'x' || g ELSE g::text END
      FROM generate_series(1, 20000) g;
    -- One step of the writer: a transfer between two accounts (both rows move to other pages),
    -- an item deleted, one inserted and one updated, and in the keyless ledger a transfer and a
    -- tag replaced by a new one carrying its value: row count, tags and sum stay constant.
    CREATE FUNCTION writer_step() RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
      a bigint := 1 + floor(random() * 150000);
      b bigint := 1 + floor(random() * 150000);
      d bigint := 1 + floor(random() * 50);
      gone bigint := 50001 + floor(random() * 50000);
      kept bigint := 1 + floor(random() * 50000);
      r1 bigint := floor(random() * 100000);
      r2 bigint := floor(random() * 100000);
      t1 bigint; t2 bigint; moved bigint;
    BEGIN
      UPDATE accounts SET balance = balance - d, pad = repeat('a', 40 + floor(random() * 300)::int) WHERE id = a;
      UPDATE accounts SET balance = balance + d, pad = repeat('b', 40 + floor(random() * 300)::int) WHERE id = b;
      DELETE FROM items WHERE id = gone;
      INSERT INTO items VALUES (nextval('items_new'), 1, repeat('n', 80));
      UPDATE items SET v = v + 1, pad = repeat('u', 40 + floor(random() * 300)::int)
        WHERE id = kept;
      SELECT tag INTO t1 FROM ledger WHERE tag >= r1 ORDER BY tag LIMIT 1;
      SELECT tag INTO t2 FROM ledger WHERE tag >= r2 ORDER BY tag LIMIT 1;
      IF t1 IS NOT NULL AND t2 IS NOT NULL AND t1 <> t2 THEN
        UPDATE ledger SET v = v - d, pad = repeat('m', 40 + floor(random() * 300)::int) WHERE tag = t1;
        UPDATE ledger SET v = v + d WHERE tag = t2;
        DELETE FROM ledger WHERE tag = t2 RETURNING v INTO moved;
        INSERT INTO ledger VALUES (nextval('ledger_new'), moved, repeat('r', 120));
      END IF;
    END $$;
    ANALYZE;";

const PG_JOB: &str = r#"
[[table]]
name = "public.bad"

[[table.column]]
name = "n"
type = "integer"
"#;

#[test]
fn postgresql_source_killed_at_random_under_a_writer_ends_exact() {
    let src = TestDb::new("kl_pg_src");
    src.exec(PG_SOURCE);
    let dst = TestDb::new("kl_pg_dst");
    let job = job_file("kill_loop_pg", PG_JOB);
    let copy = |dst: &TestDb| {
        Howdah::copy(&src.url(), &dst.url()).args([
            "--config",
            &job,
            "--jobs",
            "2",
            "--chunk-rows",
            "20000",
            "--commit-rows",
            "4000",
        ])
    };
    let (expected_rejects, took) =
        calm_run(copy, "kl_pg_calm", "every 97th row of bad is rejected");

    let url = src.url();
    let writer = Writer::start(move || {
        crate::support::psql(&url, &["-q"], "SELECT writer_step(); SELECT writer_step();")
            .map(|_| ())
    });
    let kills = kill_then_finish(|| copy(&dst).spawn(), rounds(), took, || chunk_done(&dst));
    let steps = writer.stop();
    assert!(
        kills >= 1,
        "seed {}: only {kills} kills landed before the copy finished",
        seed()
    );
    assert!(steps >= 3, "the writer ran only {steps} steps");
    eprintln!("seed {}: {kills} kills, {steps} writer steps", seed());

    // Keyed: every account once; no item twice, none of the never-deleted ones missing, none
    // that never existed.
    assert_eq!(
        dst.query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM accounts"),
        "150000|150000|1|150000"
    );
    assert_eq!(
        dst.query(
            "SELECT count(*) - count(DISTINCT id), count(*) FILTER (WHERE id <= 50000), \
             count(*) FILTER (WHERE id > 100000 AND id < 10000001) FROM items"
        ),
        "0|50000|0"
    );
    let issued: i64 = src
        .query("SELECT last_value FROM items_new")
        .parse()
        .expect("a number");
    let beyond: i64 = dst
        .query(&format!("SELECT count(*) FROM items WHERE id > {issued}"))
        .parse()
        .expect("a number");
    assert_eq!(beyond, 0, "items the writer never inserted");
    // Keyless: one image of the source.
    assert_eq!(
        dst.query("SELECT count(*), count(DISTINCT tag), sum(v) FROM ledger"),
        "100000|100000|10000000",
        "seed {}: the keyless ledger lost or repeated rows ({kills} kills, {steps} writer steps)",
        seed()
    );
    assert_eq!(
        rejects(&dst),
        expected_rejects,
        "the rejects of an uninterrupted run"
    );
    committed_vs_present(
        &dst,
        &[
            "public.accounts",
            "public.items",
            "public.ledger",
            "public.bad",
        ],
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM bad"),
        (20000 - 20000 / 97).to_string()
    );
}

const MY_SOURCE: &str = "
    SET SESSION sql_mode = '';
    CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL, pad varchar(400));
    CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, pad varchar(400));
    CREATE TABLE bad (id int PRIMARY KEY, t varchar(20));
    CREATE TABLE seq (n bigint NOT NULL);
    INSERT INTO seq VALUES (0);
    INSERT INTO accounts SELECT seq, 1000, REPEAT(MD5(seq), 3) FROM seq_1_to_150000;
    INSERT INTO items SELECT seq, 0, REPEAT('i', 80) FROM seq_1_to_100000;
    INSERT INTO bad SELECT seq, IF(seq % 97 = 0, CONCAT('a', CHAR(0), seq), CONCAT('t', seq))
      FROM seq_1_to_20000;
    DELIMITER //
    CREATE PROCEDURE writer_step()
    BEGIN
      DECLARE a bigint DEFAULT 1 + FLOOR(RAND() * 150000);
      DECLARE b bigint DEFAULT 1 + FLOOR(RAND() * 150000);
      DECLARE d bigint DEFAULT 1 + FLOOR(RAND() * 50);
      DECLARE gone bigint DEFAULT 50001 + FLOOR(RAND() * 50000);
      DECLARE kept bigint DEFAULT 1 + FLOOR(RAND() * 50000);
      START TRANSACTION;
      UPDATE accounts SET balance = balance - d, pad = REPEAT('a', 40 + FLOOR(RAND() * 300)) WHERE id = a;
      UPDATE accounts SET balance = balance + d, pad = REPEAT('b', 40 + FLOOR(RAND() * 300)) WHERE id = b;
      DELETE FROM items WHERE id = gone;
      UPDATE seq SET n = n + 1;
      INSERT INTO items SELECT 10000000 + n, 1, REPEAT('n', 80) FROM seq;
      UPDATE items SET v = v + 1, pad = REPEAT('u', 40 + FLOOR(RAND() * 300)) WHERE id = kept;
      COMMIT;
    END //
    DELIMITER ;
    ANALYZE TABLE accounts, items, bad;";

#[test]
fn mariadb_source_killed_at_random_under_a_writer_ends_exact() {
    let src = MyDb::new("kl_my_src");
    src.exec(MY_SOURCE);
    let dst = TestDb::new("kl_my_dst");
    let copy = |dst: &TestDb| {
        Howdah::copy(&src.url(), &dst.url()).args([
            "--jobs",
            "2",
            "--chunk-rows",
            "20000",
            "--commit-rows",
            "4000",
        ])
    };
    let (expected_rejects, took) = calm_run(
        copy,
        "kl_my_calm",
        "every row of bad with a NUL byte is rejected",
    );

    let name = src.name.clone();
    let writer = Writer::start(move || {
        let step = "CALL writer_step();".repeat(5);
        let out = std::process::Command::new("mariadb")
            .args(["-uroot", "-h", "127.0.0.1", &name, "-e", &step])
            .output()
            .map_err(|e| e.to_string())?;
        match out.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    });
    let kills = kill_then_finish(|| copy(&dst).spawn(), rounds(), took, || chunk_done(&dst));
    let steps = writer.stop();
    assert!(
        kills >= 1,
        "seed {}: only {kills} kills landed before the copy finished",
        seed()
    );
    assert!(steps >= 3, "the writer ran only {steps} steps");
    eprintln!("seed {}: {kills} kills, {steps} writer steps", seed());
    assert_eq!(
        dst.query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM accounts"),
        "150000|150000|1|150000"
    );
    let issued: i64 = src
        .query("SELECT 10000000 + n FROM seq")
        .parse()
        .expect("a number");
    assert_eq!(
        dst.query(&format!(
            "SELECT count(*) - count(DISTINCT id), count(*) FILTER (WHERE id <= 50000), \
             count(*) FILTER (WHERE id > 100000 AND id <= 10000000), \
             count(*) FILTER (WHERE id > {issued}) FROM items"
        )),
        "0|50000|0|0"
    );
    assert_eq!(
        rejects(&dst),
        expected_rejects,
        "the rejects of an uninterrupted run"
    );
    committed_vs_present(&dst, &["public.accounts", "public.items", "public.bad"]);
}
