//! Metrics, logs and the demo: `/metrics` during a real copy has every documented series with
//! its type and labels, counters only grow and end at the rows copied; a real Prometheus
//! scrapes it and answers every query of the Grafana dashboard; JSON logs are JSON; no
//! password reaches logs, metrics or state; `howdah demo` builds, copies and checks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{admin_url, assert_same, describe, psql, psql_admin, Howdah, TestDb};

const SETUP: &str = "
    CREATE TABLE events (id bigint PRIMARY KEY, kind int NOT NULL, body text);
    INSERT INTO events SELECT g, g % 7, md5(g::text) || md5((g * 3)::text) FROM generate_series(1, 1200000) g;
    CREATE INDEX events_kind_idx ON events (kind);
    CREATE TABLE tags (name text PRIMARY KEY, n int);
    INSERT INTO tags SELECT 'tag' || g, g FROM generate_series(1, 20000) g;
    CREATE TABLE raw (v text);
    INSERT INTO raw SELECT 'r' || g FROM generate_series(1, 50000) g;
    ANALYZE;";
const ROWS: u64 = 1_200_000 + 20_000 + 50_000;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// GET over plain HTTP/1.0; the body, or `None` when nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

fn copy_with_metrics(src: &TestDb, dst: &TestDb, port: u16, extra: &[&str]) -> Child {
    Howdah::copy(&src.url(), &dst.url())
        .args([
            "--jobs",
            "1",
            "--chunk-rows",
            "100000",
            "--commit-rows",
            "20000",
        ])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .args(extra)
        .spawn()
}

/// One scrape: `# TYPE` of each metric, and samples as (name, labels, value).
struct Scrape {
    types: HashMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn parse(text: &str) -> Scrape {
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(n), Some(t)) = (it.next(), it.next()) {
                types.insert(n.to_string(), t.to_string());
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels: BTreeMap<String, String> = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        samples.push((name.to_string(), labels, value.parse().unwrap_or(f64::NAN)));
    }
    Scrape { types, samples }
}

impl Scrape {
    fn sum(&self, name: &str, label: (&str, &str)) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && l.get(label.0).map(String::as_str) == Some(label.1))
            .map(|(_, _, v)| v)
            .sum()
    }
}

#[test]
fn metrics_endpoint_serves_every_documented_series() {
    let src = TestDb::new("metrics_src");
    src.exec(SETUP);
    let dst = TestDb::new("metrics_dst");
    let port = free_port();
    let mut child = copy_with_metrics(&src, &dst, port, &["--metrics-linger-secs", "2"]);
    let mut scrapes = Vec::new();
    let started = Instant::now();
    while child.try_wait().expect("poll howdah").is_none()
        && started.elapsed() < Duration::from_secs(120)
    {
        if let Some(body) = http_get(port, "/metrics") {
            scrapes.push(parse(&body));
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let out = child.wait_with_output().expect("wait for howdah");
    assert!(out.status.success(), "{}", describe(&out));
    assert_same(&src, &dst, "SELECT * FROM events");
    assert!(
        scrapes.len() >= 5,
        "only {} scrapes answered",
        scrapes.len()
    );
    let last = scrapes.last().expect("a scrape");

    for (name, kind, labels) in howdah::metrics::ALL {
        assert_eq!(
            last.types.get(*name).map(String::as_str),
            Some(*kind),
            "# TYPE of {name}"
        );
        let series = if *kind == "histogram" {
            format!("{name}_count")
        } else {
            (*name).to_string()
        };
        let want: BTreeSet<&str> = labels.iter().copied().collect();
        let found = last.samples.iter().any(|(n, l, _)| {
            *n == series && l.keys().map(String::as_str).collect::<BTreeSet<_>>() == want
        });
        assert!(found, "no sample of {series} with labels {want:?}");
    }
    // Counters never go down between scrapes.
    for pair in scrapes.windows(2) {
        let before: HashMap<(String, BTreeMap<String, String>), f64> = pair[0]
            .samples
            .iter()
            .filter(|(n, _, _)| {
                n.ends_with("_total") || n.ends_with("_count") || n.ends_with("_sum")
            })
            .map(|(n, l, v)| ((n.clone(), l.clone()), *v))
            .collect();
        for (n, l, v) in &pair[1].samples {
            if let Some(b) = before.get(&(n.clone(), l.clone())) {
                assert!(v >= b, "{n}{l:?} went from {b} to {v}");
            }
        }
    }
    // At the end, the committed rows are the rows copied, table by table and in all.
    assert_eq!(
        last.sum("howdah_rows_total", ("stage", "committed")),
        ROWS as f64
    );
    assert_eq!(
        last.samples
            .iter()
            .find(|(n, l, _)| n == "howdah_rows_total"
                && l.get("table").map(String::as_str) == Some("public.events")
                && l.get("stage").map(String::as_str) == Some("committed"))
            .map(|s| s.2),
        Some(1_200_000.0)
    );
    assert_eq!(last.sum("howdah_tables", ("state", "done")), 3.0);
    assert!(
        last.sum("howdah_chunks", ("state", "done")) >= 12.0,
        "events is cut into chunks"
    );
}

/// Kills the child process when dropped.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dashboard_exprs() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/grafana/dashboards/howdah.json");
    let text = std::fs::read_to_string(&path).expect("read the dashboard");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&json, &mut out);
    out
}

#[test]
fn prometheus_scrapes_a_copy_and_every_dashboard_query_answers() {
    let exprs = dashboard_exprs();
    assert!(
        exprs.len() >= 15,
        "the dashboard has {} queries",
        exprs.len()
    );
    let prom_bin = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("the `prometheus` binary is missing: apt-get install prometheus (scripts/test.sh installs it)");
    let src = TestDb::new("prom_src");
    src.exec(SETUP);
    let dst = TestDb::new("prom_dst");
    let (metrics_port, prom_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!(
        "howdah-test-prom-{}-{prom_port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: howdah\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let prom = Killed(
        Command::new(prom_bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let started = Instant::now();
    while http_get(prom_port, "/-/ready").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "prometheus did not get ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = copy_with_metrics(&src, &dst, metrics_port, &["--metrics-linger-secs", "6"])
        .wait_with_output()
        .expect("wait for howdah");
    assert!(out.status.success(), "{}", describe(&out));
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
        - 2.0;
    let query = |q: &str| -> serde_json::Value {
        let enc = percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC);
        let body = http_get(prom_port, &format!("/api/v1/query?query={enc}&time={at}"))
            .expect("prometheus answers");
        serde_json::from_str(&body).expect("prometheus answers JSON")
    };
    for expr in &exprs {
        let q = expr
            .replace("$__rate_interval", "40s")
            .replace("$table", ".*");
        let answer = query(&q);
        assert_eq!(answer["status"], "success", "{q}: {answer}");
        // The follow panels have data only while a job follows (tests/integration/follow.rs
        // checks those series).
        // The InnoDB history list is a MySQL source's (tests/integration/snapshot_hold.rs).
        if q.contains("howdah_follow_") || q.contains("howdah_source_history_list_length") {
            continue;
        }
        let result = answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!result.is_empty(), "no data for the dashboard query {q}");
    }
    // Types as documented, from Prometheus' own view of the scrape.
    let meta_body = http_get(prom_port, "/api/v1/metadata").expect("metadata");
    let meta: serde_json::Value = serde_json::from_str(&meta_body).expect("metadata JSON");
    for (name, kind, _) in howdah::metrics::ALL {
        assert_eq!(
            meta["data"][*name][0]["type"], *kind,
            "type of {name} in Prometheus"
        );
    }
    // Prometheus holds the final count: every row copied, committed.
    let rows = query("sum(howdah_rows_total{stage=\"committed\"})");
    let v: f64 = rows["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    assert_eq!(v, ROWS as f64, "committed rows seen by Prometheus: {rows}");
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let src = TestDb::new("jsonlog_src");
    src.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000);");
    let dst = TestDb::new("jsonlog_dst");
    let out = Howdah::copy(&src.url(), &dst.url())
        .args(["--log-format", "json"])
        .run();
    assert!(out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{l}"
        );
    }
}

/// A password in both URLs, with a failing chunk forced: it appears in no output, no log
/// line (at trace level), no metric and no state table.
#[test]
fn a_password_reaches_no_log_metric_or_state() {
    const SENTINEL: &str = "pw-sentinel-7Q2x";
    let src = TestDb::new("leak_src");
    src.exec("CREATE TABLE ok (id int PRIMARY KEY); INSERT INTO ok SELECT generate_series(1, 5000);
              CREATE TABLE bad (id int PRIMARY KEY, v int); INSERT INTO bad SELECT g, g FROM generate_series(1, 100) g;");
    let dst = TestDb::new("leak_dst");
    dst.exec("CREATE TABLE ok (id int PRIMARY KEY); CREATE TABLE bad (id int PRIMARY KEY, v int CHECK (v < 50));");
    let with_pw = |url: String| url.replacen("postgres@", &format!("postgres:{SENTINEL}@"), 1);
    let port = free_port();
    let mut child = Howdah::copy(&with_pw(src.url()), &with_pw(dst.url()))
        .args(["--schema", "existing", "--jobs", "1"])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .args(["--metrics-linger-secs", "3"])
        .env("RUST_LOG", "howdah=trace")
        .spawn();
    let mut metrics = String::new();
    while child.try_wait().expect("poll").is_none() {
        if let Some(body) = http_get(port, "/metrics") {
            metrics = body;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the bad chunk fails the run\n{}",
        describe(&out)
    );
    assert!(!metrics.is_empty(), "no scrape answered");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("public.bad"), "{}", describe(&out));
    for (what, text) in [
        ("stdout", stdout.as_ref()),
        ("stderr", stderr.as_ref()),
        ("metrics", metrics.as_str()),
    ] {
        assert!(!text.contains(SENTINEL), "the password is in {what}");
    }
    let state = dst.query(
        "SELECT concat_ws('|', (SELECT string_agg(j::text, ';') FROM howdah.jobs j), \
           (SELECT string_agg(c::text, ';') FROM howdah.chunks c), \
           (SELECT string_agg(w::text, ';') FROM howdah.workers w), \
           (SELECT string_agg(s::text, ';') FROM howdah.steps s))",
    );
    assert!(state.contains("public.bad"), "{state}");
    assert!(
        !state.contains(SENTINEL),
        "the password is in the state tables"
    );
    let status = Howdah::new("status")
        .args(["--target", &with_pw(dst.url()), "--json"])
        .run();
    assert!(status.status.success(), "{}", describe(&status));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(!all.contains(SENTINEL), "the password is in howdah status");
}

/// Drops the demo's databases when the test ends.
struct DemoDbs(String);
impl Drop for DemoDbs {
    fn drop(&mut self) {
        for side in ["src", "dst"] {
            // Never panics: this runs while a failed test unwinds too.
            let _ = psql(
                &admin_url(),
                &["-q"],
                &format!("DROP DATABASE IF EXISTS {}_{side} WITH (FORCE)", self.0),
            );
        }
    }
}

#[test]
fn demo_builds_copies_and_checks_then_refuses_foreign_databases() {
    // It drops databases: not while a cut link holds a backend (see `server_wide`).
    let _alone = crate::support::server_wide();
    let prefix = format!("howdah_test_demo_{}", std::process::id());
    let _cleanup = DemoDbs(prefix.clone());
    let port = free_port();
    let demo = |prefix: &str| {
        Howdah::new("demo")
            .args(["--server", &admin_url(), "--prefix", prefix])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .run()
    };
    for round in 0..2 {
        let out = demo(&prefix);
        assert!(out.status.success(), "round {round}: {}", describe(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "row counts match on every table",
            "ok   public.orders: 200000 / 200000",
            "howdah status --target",
            &format!("http://127.0.0.1:{port}/metrics"),
        ] {
            assert!(
                stdout.contains(needle),
                "round {round}: no \"{needle}\"\n{}",
                describe(&out)
            );
        }
    }
    // A database the demo did not create is never dropped.
    let prefix2 = format!("howdah_test_demoforeign_{}", std::process::id());
    let _cleanup2 = DemoDbs(prefix2.clone());
    psql_admin(&format!("CREATE DATABASE {prefix2}_src"));
    let out = demo(&prefix2);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was not created by howdah demo"),
        "{}",
        describe(&out)
    );
}
