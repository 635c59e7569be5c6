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
