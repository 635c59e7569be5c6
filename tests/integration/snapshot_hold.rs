//! What a running copy holds back on its source: `status --source`, the metrics and `plan`
//! show the age of the job's snapshot and the source's oldest xmin (PostgreSQL) or oldest
//! transaction and InnoDB history list length (MariaDB), with sensible values while a copy
//! that `--max-rate` keeps slow is running.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::{describe, Howdah, MyDb, TestDb};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The metrics page, or `None` when nothing answers yet.
fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The value of the sample `series` (name with labels, as printed) on a metrics page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A slow copy (a few hundred KB/s) of the job `default` (`plan` has no `--job`) serving
/// metrics on `port`.
fn slow_copy(source: &str, dst: &TestDb, port: u16) -> Child {
    Howdah::copy(source, &dst.url())
        .args([
            "--jobs",
            "1",
            "--commit-rows",
            "5000",
            "--max-rate",
            "300KB",
        ])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .spawn()
}

/// Waits until the copy has committed rows (its snapshot is open and held).
fn wait_for_rows(dst: &TestDb, child: &mut Child) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait().expect("poll howdah") {
            panic!("the copy ended early: {status}");
        }
        if dst.query("SELECT to_regclass('howdah.chunks') IS NOT NULL") == "t"
            && dst.query("SELECT coalesce(sum(rows_done), 0) > 0 FROM howdah.chunks") == "t"
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the copy committed no rows within 60 s");
}

/// `howdah status --source ... --json`: the job's `source_snapshot` object.
fn status_hold(source: &str, dst: &TestDb) -> serde_json::Value {
    let out = Howdah::new("status")
        .args(["--target", &dst.url(), "--source", source, "--json"])
        .run();
    assert!(out.status.success(), "{}", describe(&out));
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    jobs[0]["source_snapshot"].clone()
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {v}"))
}

#[test]
fn a_running_postgres_copy_shows_its_snapshot_age_and_the_oldest_xmin() {
    let src = TestDb::new("hold_src");
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 60000) g;",
    );
    let dst = TestDb::new("hold_dst");
    let port = free_port();
    let mut child = slow_copy(&src.url(), &dst, port);
    wait_for_rows(&dst, &mut child);
    std::thread::sleep(Duration::from_secs(2));

    let hold = status_hold(&src.url(), &dst);
    assert_eq!(hold["source"], "PostgreSQL", "{hold}");
    assert!(num(&hold, "job_sessions") >= 1.0, "{hold}");
    let age = num(&hold, "job_snapshot_age_seconds");
    assert!((1.0..600.0).contains(&age), "snapshot age {age}: {hold}");
    let job_xmin = num(&hold, "job_xmin_age");
    let oldest = num(&hold, "oldest_xmin_age");
    assert!(job_xmin >= 0.0 && oldest >= job_xmin, "{hold}");
    assert!(
        hold["oldest_holder"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{hold}"
    );
    assert!(
        num(&hold, "oldest_transaction_age_seconds") >= age - 1.0,
        "{hold}"
    );
    // The snapshot ages with the copy: a transaction the source commits meanwhile moves the
    // server's xid on, and the job's xmin grows older by it.
    src.exec("CREATE TABLE bump (i int); INSERT INTO bump VALUES (1);");
    let later = status_hold(&src.url(), &dst);
    assert!(num(&later, "job_snapshot_age_seconds") >= age, "{later}");
    assert!(
        num(&later, "job_xmin_age") > job_xmin,
        "{hold} then {later}"
    );

    let text = Howdah::new("status")
        .args(["--target", &dst.url(), "--source", &src.url()])
        .run();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("source: the job's source snapshot is")
            && text.contains("oldest xmin on the source:"),
        "{text}"
    );

    // The metrics: the sampler publishes at the start and every 10 s.
    let started = Instant::now();
    let page = loop {
        let page = scrape(port).unwrap_or_default();
        if sample(&page, "howdah_source_snapshot_age_seconds").is_some_and(|v| v > 0.0)
            && sample(&page, "howdah_source_xmin_age{scope=\"job\"}").is_some()
        {
            break page;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no snapshot metrics: {page}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let server = sample(&page, "howdah_source_xmin_age{scope=\"server\"}").expect("server xmin");
    let job = sample(&page, "howdah_source_xmin_age{scope=\"job\"}").expect("job xmin");
    assert!(server >= job && job >= 0.0, "{page}");
    assert!(page.contains("# TYPE howdah_source_oldest_transaction_age_seconds gauge"));

    // The plan of the same job sees the running copy's snapshot.
    let plan_dst = TestDb::new("hold_plan");
    let plan = Howdah::new("plan")
        .args(["--source", &src.url(), "--target", &plan_dst.url()])
        .args(["--tables", "public.t", "--format", "json"])
        .run();
    assert!(plan.status.success(), "{}", describe(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    let check = plan["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "source_snapshot")
        .cloned()
        .expect("a source_snapshot check");
    let detail = check["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("the job's source snapshot is")
            && detail.contains("oldest xmin on the source"),
        "{check}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_running_mariadb_copy_shows_its_snapshot_age_and_the_history_list() {
    let src = MyDb::new("hold_my_src");
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v text) ENGINE=InnoDB;
         INSERT INTO t SELECT seq, REPEAT(MD5(seq), 4) FROM seq_1_to_60000;",
    );
    let dst = TestDb::new("hold_my_dst");
    let port = free_port();
    let mut child = slow_copy(&src.url(), &dst, port);
    wait_for_rows(&dst, &mut child);
    std::thread::sleep(Duration::from_secs(2));

    let hold = status_hold(&src.url(), &dst);
    assert_eq!(hold["source"], "MySQL", "{hold}");
    assert!(num(&hold, "job_sessions") >= 1.0, "{hold}");
    let age = num(&hold, "job_snapshot_age_seconds");
    assert!((1.0..600.0).contains(&age), "snapshot age {age}: {hold}");
    assert!(
        num(&hold, "oldest_transaction_age_seconds") >= age - 1.0,
        "{hold}"
    );
    assert!(num(&hold, "history_list_length") >= 0.0, "{hold}");
    assert!(hold["job_xmin_age"].is_null(), "{hold}");

    let started = Instant::now();
    loop {
        let page = scrape(port).unwrap_or_default();
        if sample(&page, "howdah_source_snapshot_age_seconds").is_some_and(|v| v > 0.0)
            && sample(&page, "howdah_source_history_list_length").is_some()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no snapshot metrics: {page}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The advisory lock that holds the target's build of index `t_gated` (see
/// [`GATED_SOURCE`]).
const GATE: i64 = 4217;

/// A table whose index calls a function that waits for advisory lock [`GATE`]: nobody holds
/// it on the source, so the source builds the index at once; on the target the test holds it,
/// so the copy's index build waits there (after every row is in) until the test lets it go.
/// Plus five large objects.
const GATED_SOURCE: &str = "
    CREATE FUNCTION gated_key(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
      PERFORM pg_advisory_lock_shared(4217);
      PERFORM pg_advisory_unlock_shared(4217);
      RETURN i;
    END $$;
    CREATE TABLE t (id int PRIMARY KEY, v text);
    INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
    CREATE INDEX t_gated ON t (gated_key(id));
    SELECT lo_from_bytea(0, decode(repeat(md5(g::text), 2000), 'hex')) FROM generate_series(1, 5) g;";

/// A psql session on `db` holding advisory lock [`GATE`] until it is killed.
fn hold_gate(db: &TestDb) -> Child {
    use std::process::{Command, Stdio};
    let mut psql = Command::new("psql")
        .args(["-X", "-q", "-d", &db.url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start psql");
    let stdin = psql.stdin.as_mut().expect("psql's stdin is piped");
    writeln!(stdin, "SELECT pg_advisory_lock({GATE});").expect("write to psql");
    stdin.flush().expect("flush psql's stdin");
    let started = Instant::now();
    while db.query(&format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {GATE} AND granted"
    )) != "1"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "psql took no lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    psql
}

/// Waits until `sql` on `db` returns `t`; panics after `secs` or when the copy ends.
fn wait_until(db: &TestDb, sql: &str, copy: &mut Child, secs: u64) {
    let started = Instant::now();
    while db.try_query(sql).as_deref() != Ok("t") {
        if let Some(status) = copy.try_wait().expect("poll howdah") {
            panic!("the copy ended ({status}) before {sql}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {sql}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sessions of the copy on the source that hold a snapshot between statements (idle in a
/// transaction: the exporting session, a reader waiting for its next chunk). The sampler's
/// own short probe query is active, never idle, so it is not counted.
const IDLE_IN_SNAPSHOT: &str = "SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name LIKE 'howdah/%'
      AND state LIKE 'idle in transaction%'";

#[test]
fn the_source_snapshot_is_released_once_rows_and_large_objects_are_in() {
    let src = TestDb::new("release_src");
    src.exec(GATED_SOURCE);
    let dst = TestDb::new("release_dst");
    let mut gate = hold_gate(&dst);
    let mut copy = Howdah::copy(&src.url(), &dst.url())
        .args(["--jobs", "2"])
        .spawn();
    // Every row is in and the index build waits at the gate on the target.
    wait_until(
        &dst,
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
           AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND query ILIKE '%CREATE INDEX%')",
        &mut copy,
        120,
    );
    assert_eq!(dst.query("SELECT count(*) FROM t"), "20000");
    // While it waits, the large objects arrive and the source's snapshot is let go: no session
    // of the copy sits in a transaction on the source, and `status --source` says so.
    let started = Instant::now();
    let (idle, objects, hold) = loop {
        let idle = src.query(IDLE_IN_SNAPSHOT);
        let objects = dst.query("SELECT count(*) FROM pg_largeobject_metadata");
        let hold = status_hold(&src.url(), &dst);
        if (idle == "0" && objects == "5" && hold["job_snapshot_age_seconds"].is_null())
            || started.elapsed() > Duration::from_secs(60)
        {
            break (idle, objects, hold);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let sessions = src.query(
        "SELECT string_agg(application_name || ' ' || state || ' since ' || coalesce(xact_start::text, '-'), '; ')
           FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'howdah/%'",
    );
    // Meanwhile status says what is going on: the index builds, with an ETA for them.
    let status = Howdah::new("status")
        .args(["--target", &dst.url(), "--json"])
        .run();
    let job: serde_json::Value = serde_json::from_slice(&status.stdout)
        .map(|j: serde_json::Value| j[0].clone())
        .unwrap_or_default();
    let still_building = dst.query(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
           AND wait_event = 'advisory' AND query ILIKE '%CREATE INDEX%'",
    );
    // kill -9 in the index phase, after the snapshot was let go: a rerun finishes the job.
    crate::support::kill9(&mut copy);
    let _ = gate.kill();
    let _ = gate.wait();
    let rerun = Howdah::copy(&src.url(), &dst.url()).run();
    let (code, report, out) = crate::verify::verify(&src.url(), &dst, &[]);
    let index = dst.query("SELECT count(*) FROM pg_indexes WHERE indexname = 't_gated'");
    let objects_after = dst.query("SELECT count(*) FROM pg_largeobject_metadata");
    src.exec("SELECT lo_unlink(oid) FROM pg_largeobject_metadata");

    assert_eq!(
        still_building, "1",
        "the index build was still held while the source was looked at"
    );
    assert_eq!(
        idle, "0",
        "no session of the copy holds a snapshot on the source during the index builds: {sessions}"
    );
    assert!(
        hold["job_snapshot_age_seconds"].is_null(),
        "status --source: the job holds no snapshot during the index builds: {hold}"
    );
    assert_eq!(
        objects, "5",
        "the large objects are copied before the index builds end"
    );
    assert_eq!(job["stage"], "indexes", "{job}");
    assert!(
        num(&job, "index_bytes") > num(&job, "index_bytes_done"),
        "the gated index is not built yet: {job}"
    );
    assert!(
        num(&job, "eta_seconds") > 0.0 && num(&job, "data_eta_seconds") == 0.0,
        "the ETA is the index builds' alone: {job}"
    );
    crate::support::assert_success(&rerun, "the rerun after kill -9 in the index phase");
    assert_eq!(index, "1", "the rerun built the index");
    assert_eq!(objects_after, "5");
    assert_eq!(code, 0, "the copy verifies\n{}", describe(&out));
    assert_eq!(
        crate::verify::table(&report, "large objects")["source_rows"],
        5,
        "{report}"
    );
}
