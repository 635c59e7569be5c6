//! `howdah check-queries` against the real servers: a deliberate change on the target is
//! found; a query made slow by an index dropped on the target is reported slower with both
//! plans and the missing index named; writing statements are refused before anything runs
//! (by the guard) or by the server (the read-only transaction); the `pg_stat_statements`
//! path on a cluster of the test's own; MySQL/PostgreSQL query pairs on a MariaDB source.

use std::path::PathBuf;
use std::process::Output;

use crate::cluster::{Cluster, PG15_BIN};
use crate::support::{assert_error, assert_success, describe, job_file, Howdah, MyDb, TestDb};

/// `howdah check-queries --source <src> --target <dst> --queries <file> --json <extra...>`:
/// exit code, report (JSON null when stdout is not JSON), output.
pub(crate) fn check(
    src: &str,
    dst: &str,
    queries: &str,
    extra: &[&str],
) -> (i32, serde_json::Value, Output) {
    let out = Howdah::new("check-queries")
        .args(["--source", src, "--target", dst, "--json", "--runs", "3"])
        .args(["--queries", queries])
        .args(extra)
        .run();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, out)
}

/// The report's line for query `name` (JSON null when absent).
pub(crate) fn query<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["queries"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["name"] == name))
        .unwrap_or(&serde_json::Value::Null)
}

const SHOP: &str = "
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, total numeric(12,2), note text);
INSERT INTO orders SELECT i, i % 5000, (i % 997) / 10.0, 'order ' || i FROM generate_series(1, 300000) AS i;
CREATE INDEX orders_customer_idx ON orders (customer_id);
ANALYZE orders;
";

const QUERIES: &str = r#"
[[query]]
name = "orders of a customer"
sql = "SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY id"
params = [42]

[[query]]
name = "order 7"
sql = "SELECT * FROM orders WHERE id = $1"
params = [7]

[[query]]
name = "count"
sql = "SELECT count(*), sum(total) FROM orders"
"#;

#[test]
fn a_changed_row_and_a_dropped_index_are_found() {
    let src = TestDb::new("cq_src");
    src.exec(SHOP);
    let dst = TestDb::new("cq_dst");
    dst.exec(SHOP);
    // The deliberate changes: one value (keeping the sum) and the customer index.
    dst.exec(
        "UPDATE orders SET note = 'changed' WHERE id = 7; DROP INDEX orders_customer_idx; ANALYZE orders;",
    );
    let file = job_file("cq-shop", QUERIES);

    let (code, report, out) = check(&src.url(), &dst.url(), &file, &["--min-slowdown-ms", "1"]);
    assert_eq!(
        code,
        1,
        "a difference must fail the check\n{}",
        describe(&out)
    );
    assert_eq!(report["ok"], false);

    let changed = query(&report, "order 7");
    assert_eq!(changed["status"], "different", "{changed:#}");
    assert_eq!(changed["source"]["rows"], 1);
    assert_ne!(changed["source"]["checksum"], changed["target"]["checksum"]);
    // The differing row is shown as each side has it.
    let rows = &changed["rows_differ"];
    assert_eq!(
        rows["only_on_source"][0], "(7, 7, 0.70, order 7)",
        "{changed:#}"
    );
    assert_eq!(
        rows["only_on_target"][0], "(7, 7, 0.70, changed)",
        "{changed:#}"
    );

    let same = query(&report, "count");
    assert_eq!(same["answer"], "same", "{same:#}");

    let slow = query(&report, "orders of a customer");
    assert_eq!(slow["answer"], "same", "{slow:#}");
    assert_eq!(slow["status"], "slower", "{slow:#}");
    assert_eq!(slow["ordered"], true);
    let plan = &slow["plan"];
    let source_shape = plan["source_shape"].as_str().unwrap_or("");
    let target_shape = plan["target_shape"].as_str().unwrap_or("");
    assert!(source_shape.contains("orders_customer_idx"), "{plan:#}");
    assert!(
        target_shape.contains("Seq Scan on public.orders"),
        "{plan:#}"
    );
    let findings = plan["findings"].to_string();
    assert!(
        findings.contains("Seq Scan on public.orders")
            && findings.contains("public.orders_customer_idx is missing on the target")
            && findings.contains("CREATE INDEX orders_customer_idx"),
        "{plan:#}"
    );

    // The Markdown report says the same.
    let out = Howdah::new("check-queries")
        .args(["--source", &src.url(), "--target", &dst.url()])
        .args(["--queries", &file, "--runs", "1", "--min-slowdown-ms", "1"])
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text.contains("| order 7 | **different answer** | 1 / 1 |")
            && text.contains("1 row(s) only on the target: (7, 7, 0.70, changed)")
            && text.contains("## Slower on the target")
            && text.contains("is missing on the target")
            && text.contains("**NOT OK**"),
        "{text}"
    );

    // Once the index is back, everything but the changed row passes.
    dst.exec("CREATE INDEX orders_customer_idx ON orders (customer_id); UPDATE orders SET note = 'order 7' WHERE id = 7;");
    // (Timings aside: a loaded machine must not fail a check of answers.)
    let (code, report, out) = check(&src.url(), &dst.url(), &file, &["--max-slowdown", "1000"]);
    assert_eq!(code, 0, "equal answers must pass\n{}", describe(&out));
    assert_eq!(report["ok"], true);
}

#[test]
fn writing_statements_are_refused() {
    let src = TestDb::new("cq_w_src");
    src.exec(
        "CREATE TABLE t (a int); INSERT INTO t VALUES (1);
         CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS 'UPDATE t SET a = a + 1 RETURNING a';",
    );
    let dst = TestDb::new("cq_w_dst");
    dst.exec(
        "CREATE TABLE t (a int); INSERT INTO t VALUES (1);
         CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS 'UPDATE t SET a = a + 1 RETURNING a';",
    );
    // Refused by the guard before anything runs: the first query is harmless, and yet
    // nothing runs at all.
    for (n, bad) in [
        "DELETE FROM t",
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "SELECT * FROM t FOR UPDATE",
        "SELECT 1; UPDATE t SET a = 5",
        "EXPLAIN ANALYZE UPDATE t SET a = 5",
    ]
    .iter()
    .enumerate()
    {
        let file = job_file(
            &format!("cq-w{n}"),
            &format!("[[query]]\nsql = \"SELECT a FROM t\"\n\n[[query]]\nname = \"writer\"\nsql = \"{bad}\"\n"),
        );
        let (_, _, out) = check(&src.url(), &dst.url(), &file, &[]);
        let line = assert_error(&out, 2, bad);
        assert!(
            line.contains("\"writer\"") && line.contains("refused"),
            "{line}"
        );
    }
    // A function that writes passes the guard; the read-only transaction stops it.
    let file = job_file(
        "cq-wf",
        "[[query]]\nname = \"bump\"\nsql = \"SELECT bump()\"\n",
    );
    let (code, report, out) = check(&src.url(), &dst.url(), &file, &[]);
    assert_eq!(code, 1, "{}", describe(&out));
    let q = query(&report, "bump");
    assert_eq!(q["status"], "error");
    assert!(
        q["error"]
            .as_str()
            .unwrap_or("")
            .contains("read-only transaction"),
        "{q:#}"
    );
    assert_eq!(src.query("SELECT a FROM t"), "1");
    assert_eq!(dst.query("SELECT a FROM t"), "1");

    // The statement timeout stops a run that takes too long.
    let file = job_file(
        "cq-slow",
        "[[query]]\nname = \"sleep\"\nsql = \"SELECT pg_sleep(30)\"\n",
    );
    let (code, report, out) = check(&src.url(), &dst.url(), &file, &["--statement-timeout", "1"]);
    assert_eq!(code, 1, "{}", describe(&out));
    let q = query(&report, "sleep");
    assert!(
        q["error"]
            .as_str()
            .unwrap_or("")
            .contains("statement timeout"),
        "{q:#}"
    );
}

#[test]
fn top_queries_of_pg_stat_statements_are_checked_with_real_values() {
    let cluster = Cluster::start(
        PathBuf::from(PG15_BIN),
        &["shared_preload_libraries=pg_stat_statements"],
    );
    let src = cluster.db("app_src");
    let dst = cluster.db("app_dst");
    src.exec("CREATE EXTENSION pg_stat_statements");
    src.exec(SHOP);
    dst.exec(SHOP);
    dst.exec("DROP INDEX orders_customer_idx");
    // The application's traffic: each statement its own psql call, with its constants.
    for i in 0..20 {
        src.exec(&format!(
            "SELECT id, total FROM orders WHERE customer_id = {i} ORDER BY id"
        ));
    }
    for _ in 0..3 {
        src.exec("SELECT count(*) FROM orders o WHERE o.note LIKE 'order 12%'");
    }
    src.exec("SELECT 'x' || note FROM orders WHERE id = 5");
    src.exec("UPDATE orders SET note = note WHERE id < 1000");

    let out = Howdah::new("check-queries")
        .args(["--source", &src.url(), "--target", &dst.url(), "--json"])
        .args(["--from-stats", "5", "--runs", "3", "--min-slowdown-ms", "1"])
        .run();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let queries = report["queries"].as_array().cloned().unwrap_or_default();
    let customer = queries
        .iter()
        .find(|q| {
            q["source_sql"]
                .as_str()
                .unwrap_or("")
                .contains("customer_id =")
        })
        .unwrap_or_else(|| panic!("the customer query is checked: {report:#}"));
    assert!(
        customer["source_sql"]
            .as_str()
            .unwrap_or("")
            .contains("customer_id = '"),
        "{customer:#}"
    );
    assert!(
        customer["origin"]
            .as_str()
            .unwrap_or("")
            .contains("a value of public.orders.customer_id"),
        "{customer:#}"
    );
    assert_eq!(customer["status"], "slower", "{customer:#}");
    assert!(
        customer["plan"]["findings"]
            .to_string()
            .contains("orders_customer_idx is missing on the target"),
        "{customer:#}"
    );
    let like = queries
        .iter()
        .find(|q| q["source_sql"].as_str().unwrap_or("").contains("LIKE"))
        .unwrap_or_else(|| panic!("the LIKE query is checked: {report:#}"));
    assert_eq!(like["answer"], "same", "{like:#}");
    assert!(
        like["origin"]
            .as_str()
            .unwrap_or("")
            .contains("public.orders.note"),
        "{like:#}"
    );

    let skipped = report["skipped"].to_string();
    assert!(
        skipped.contains("UPDATE orders") && skipped.contains("not a read-only query"),
        "{skipped}"
    );
    assert!(skipped.contains("cannot tell a value for $1"), "{skipped}");

    // Without the extension: a clear error, nothing run.
    let plain = TestDb::new("cq_nostats");
    let out = Howdah::new("check-queries")
        .args(["--source", &plain.url(), "--target", &plain.url()])
        .args(["--from-stats", "5"])
        .run();
    let line = assert_error(&out, 2, "no pg_stat_statements");
    assert!(
        line.contains("CREATE EXTENSION pg_stat_statements"),
        "{line}"
    );
}

#[test]
fn mysql_and_postgresql_query_pairs_on_a_mariadb_source() {
    let my = MyDb::new("cq_my");
    my.exec(
        "CREATE TABLE items (id int PRIMARY KEY, name varchar(40), price decimal(10,2), ratio double,
           active tinyint(1), made datetime(6), seen date, doc json, raw varbinary(8), flags bit(3));
         INSERT INTO items VALUES
           (1, 'Ann', 10.50, 1e20, 1, '2024-01-02 03:04:05.250000', '2024-01-02', '{\"b\": 1, \"a\": [1, 2]}', X'0141', b'101'),
           (2, 'Bob', 0.00, 0.1, 2, '2024-01-02 00:00:00', '0000-00-00', '[]', X'', b'000'),
           (3, 'Cyd', NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL);",
    );
    let dst = TestDb::new("cq_my_dst");
    let out = Howdah::copy(&my.url(), &dst.url()).args(["-q"]).run();
    assert_success(&out, "copy from MariaDB");
    let file = job_file(
        "cq-my",
        r#"
[[query]]
name = "every item"
sql = "SELECT id, name, price, ratio, active, made, seen, doc, raw, flags FROM items ORDER BY id"

[[query]]
name = "price of an item"
mysql = "SELECT name, IFNULL(price, 0) AS price FROM items WHERE name = ?"
postgres = "SELECT name, COALESCE(price, 0) AS price FROM items WHERE name = $1"
params = ["Cyd"]

[[query]]
name = "active items"
mysql = "SELECT COUNT(*), SUM(active <> 0) FROM items"
postgres = "SELECT count(*), sum(active::int) FROM items"
"#,
    );
    let (code, report, out) = check(&my.url(), &dst.url(), &file, &["--max-slowdown", "1000"]);
    assert_eq!(
        code,
        0,
        "the copy's answers are the source's\n{}",
        describe(&out)
    );
    for name in ["every item", "price of an item", "active items"] {
        assert_eq!(query(&report, name)["answer"], "same", "{report:#}");
    }
    assert_eq!(query(&report, "every item")["source"]["rows"], 3);

    // A deliberate change on the target is found.
    dst.exec("UPDATE items SET made = made + interval '1 microsecond' WHERE id = 1");
    let (code, report, out) = check(&my.url(), &dst.url(), &file, &["--max-slowdown", "1000"]);
    assert_eq!(code, 1, "{}", describe(&out));
    assert_eq!(query(&report, "every item")["status"], "different");
    assert_eq!(query(&report, "price of an item")["status"], "ok");

    // The MySQL text goes through the guard in MySQL's dialect.
    let bad = job_file(
        "cq-my-bad",
        "[[query]]\nname = \"outfile\"\nmysql = \"SELECT * FROM items INTO OUTFILE '/tmp/x'\"\npostgres = \"SELECT * FROM items\"\n",
    );
    let (_, _, out) = check(&my.url(), &dst.url(), &bad, &[]);
    let line = assert_error(&out, 2, "INTO OUTFILE");
    assert!(
        line.contains("\"outfile\"") && line.contains("MySQL text is refused"),
        "{line}"
    );
}

#[test]
fn no_password_is_printed() {
    let src = TestDb::new("cq_pw");
    src.exec("CREATE TABLE t (a int); INSERT INTO t VALUES (1);");
    // (max_slowdown: timings of a loaded machine must not fail this test.)
    let file = job_file(
        "cq-pw",
        "max_slowdown = 1000.0\n[[query]]\nsql = \"SELECT a FROM t\"\n",
    );
    let sentinel = "Sentinel-Pw-93x";
    // The local server trusts every login, so the password reaches the report's URLs.
    let url = src
        .url()
        .replace("postgres@", &format!("postgres:{sentinel}@"));
    for json in [true, false] {
        let mut cmd = Howdah::new("check-queries").args([
            "--source",
            &url,
            "--target",
            &url,
            "--queries",
            &file,
        ]);
        if json {
            cmd = cmd.args(["--json"]);
        }
        let out = cmd.run();
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("cq_pw"), "{all}");
        assert!(!all.contains(sentinel), "the password was printed:\n{all}");
    }
    // And on a failing path: a query that fails on the target.
    let file = job_file("cq-pw2", "[[query]]\nsql = \"SELECT a FROM missing\"\n");
    let out = Howdah::new("check-queries")
        .args(["--source", &url, "--target", &url, "--queries", &file])
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("does not exist") && !all.contains(sentinel),
        "{all}"
    );
}

#[test]
fn a_mariadb_index_the_target_lacks_is_named() {
    let my = MyDb::new("cq_myidx");
    my.exec(
        "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, total decimal(10,2), KEY by_customer (customer_id));
         INSERT INTO orders SELECT seq, seq % 5000, (seq % 997) / 10 FROM seq_1_to_200000;
         ANALYZE TABLE orders;",
    );
    let dst = TestDb::new("cq_myidx_dst");
    let out = Howdah::copy(&my.url(), &dst.url()).args(["-q"]).run();
    assert_success(&out, "copy from MariaDB");
    dst.exec("DROP INDEX by_customer; ANALYZE orders;");
    let file = job_file(
        "cq-myidx",
        "[[query]]\nname = \"orders of a customer\"\nmysql = \"SELECT id, total FROM orders WHERE customer_id = ? ORDER BY id\"\n\
         postgres = \"SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY id\"\nparams = [42]\n",
    );
    let (code, report, out) = check(&my.url(), &dst.url(), &file, &["--min-slowdown-ms", "1"]);
    assert_eq!(code, 1, "{}", describe(&out));
    let q = query(&report, "orders of a customer");
    assert_eq!(q["answer"], "same", "{q:#}");
    assert_eq!(q["status"], "slower", "{q:#}");
    assert!(
        q["plan"]["target_shape"]
            .as_str()
            .unwrap_or("")
            .contains("Seq Scan on public.orders"),
        "{q:#}"
    );
    assert!(
        q["plan"]["findings"]
            .to_string()
            .contains("the source's index by_customer (customer_id) has no counterpart there"),
        "{q:#}"
    );
}

#[test]
fn cutover_runs_the_query_file() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(
        "CREATE TABLE items (k int PRIMARY KEY, body text);
         INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 1000) AS i;",
    );
    let dst = TestDb::new("cq_cut");
    let child = Howdah::copy(&src.url(), &dst.url())
        .args(["--follow", "--job", "cq", "-q"])
        .spawn();
    let started = std::time::Instant::now();
    while crate::support::psql(
        &dst.url(),
        &["-A", "-t"],
        "SELECT phase FROM howdah.follow WHERE job = 'cq'",
    )
    .unwrap_or_default()
        != "follow"
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "the copy did not reach the follow phase"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    src.exec("UPDATE items SET body = 'changed' WHERE k = 7");
    let file = job_file(
        "cq-cut",
        // The file's own threshold: timings of a loaded machine must not fail this test.
        "max_slowdown = 1000.0\n[[query]]\nname = \"item 7\"\nsql = \"SELECT body FROM items WHERE k = $1\"\nparams = [7]\n",
    );
    let out = Howdah::new("cutover")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--job",
            "cq",
        ])
        .args(["--timeout", "60", "--check-queries", &file])
        .run();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text.contains("| item 7 | same, not slower | 1 / 1 |") && text.contains("**OK**"),
        "{text}"
    );
    let out = child.wait_with_output().expect("wait for copy --follow");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    drop(cluster);
}
