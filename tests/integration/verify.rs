//! `howdah verify` against the real servers: equal copies pass; a changed value, a missing
//! row, an extra row, NULL against an empty string and a timestamp off by a microsecond are
//! each found and located by key, for in-server checksums (PostgreSQL), streamed checks
//! (mapped tables) and MySQL sources.

use std::process::Output;

use crate::support::{assert_success, describe, job_file, Howdah, MyDb, TestDb};

/// `howdah verify --source <src> --target <dst> --json <extra...>`: its exit code, its report
/// (JSON null when stdout is not JSON) and its output.
pub(crate) fn verify(src: &str, dst: &TestDb, extra: &[&str]) -> (i32, serde_json::Value, Output) {
    let out = Howdah::new("verify")
        .args(["--source", src, "--target", &dst.url(), "--json"])
        .args(extra)
        .run();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, out)
}

/// The report's entry for table `name` (JSON null when it has none).
pub(crate) fn table<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == name))
        .unwrap_or(&serde_json::Value::Null)
}

/// Every key named in the mismatches of a table, by list.
fn keys(t: &serde_json::Value, list: &str) -> Vec<String> {
    t["mismatches"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m[list].as_array().cloned().unwrap_or_default())
        .filter_map(|k| k.as_str().map(String::from))
        .collect()
}

const SETUP: &str = "
CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(10,2), at timestamptz, doc jsonb);
INSERT INTO items SELECT i, 'item ' || i, i / 100.0, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute',
  jsonb_build_object('i', i) FROM generate_series(1, 50000) AS i;
CREATE TABLE pairs (a int, b text, PRIMARY KEY (a, b));
INSERT INTO pairs SELECT i % 100, 'k' || i FROM generate_series(1, 5000) AS i;
CREATE TABLE loose (x int, y text, j json);
INSERT INTO loose SELECT i, 'y' || i, '{\"a\": 1}' FROM generate_series(1, 2000) AS i;
";

#[test]
fn equal_copies_pass_and_planted_differences_are_located_by_key() {
    let src = TestDb::new("ver_src");
    src.exec(SETUP);
    let dst = TestDb::new("ver_dst");
    let out = Howdah::copy(&src.url(), &dst.url()).args(["-q"]).run();
    assert_success(&out, "copy");

    let (code, report, out) = verify(&src.url(), &dst, &["--chunk-rows", "10000"]);
    assert_eq!(code, 0, "equal copy must verify\n{}", describe(&out));
    assert_eq!(report["equal"], true);
    let items = table(&report, "public.items");
    assert_eq!(items["source_rows"], 50000);
    assert_eq!(items["target_rows"], 50000);
    assert_eq!(items["method"], "in-server");
    assert!(items["checked"].as_u64().unwrap_or(0) >= 1);

    dst.exec(
        "UPDATE items SET name = 'item 100 changed' WHERE id = 100;
         DELETE FROM items WHERE id = 2000;
         INSERT INTO items VALUES (60000, 'new', 1, now(), '{}');
         UPDATE items SET at = at + interval '1 microsecond' WHERE id = 31000;
         UPDATE pairs SET b = b WHERE false;
         DELETE FROM pairs WHERE a = 7 AND b = 'k7';
         UPDATE loose SET y = '' WHERE x = 10;",
    );
    src.exec("UPDATE loose SET y = NULL WHERE x = 10");
    let (code, report, out) = verify(&src.url(), &dst, &["--chunk-rows", "10000", "--drill-down"]);
    assert_eq!(code, 1, "differences must exit 1\n{}", describe(&out));
    assert_eq!(report["equal"], false);
    let items = table(&report, "public.items");
    assert_eq!(keys(items, "different"), vec!["id=100", "id=31000"]);
    assert_eq!(keys(items, "missing"), vec!["id=2000"]);
    assert_eq!(keys(items, "extra"), vec!["id=60000"]);
    let m = &items["mismatches"][0];
    assert!(
        m["range"].is_string() && m.get("lower").is_some() && m.get("upper").is_some(),
        "{m}"
    );
    let pairs = table(&report, "public.pairs");
    assert_eq!(keys(pairs, "missing"), vec!["a=7, b=k7"]);
    let loose = table(&report, "public.loose");
    assert_eq!(
        loose["mismatches"].as_array().map(Vec::len),
        Some(1),
        "NULL vs ''"
    );

    // The text report names the same.
    let out = Howdah::new("verify")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--drill-down",
        ])
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("missing on the target: id=2000"), "{text}");
    assert!(text.contains("source and target DIFFER"), "{text}");

    // --repair re-copies the mismatched ranges and checks them again.
    let (code, report, out) = verify(&src.url(), &dst, &["--chunk-rows", "10000", "--repair"]);
    assert_eq!(code, 0, "repaired ranges verify\n{}", describe(&out));
    let items = table(&report, "public.items");
    assert!(
        items["mismatches"][0]["repaired"]["matches"] == true,
        "{items}"
    );
    let (code, _, out) = verify(&src.url(), &dst, &[]);
    assert_eq!(code, 0, "a second verify finds nothing\n{}", describe(&out));
    assert_eq!(
        dst.query("SELECT name FROM items WHERE id = 100"),
        "item 100"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM items WHERE id IN (2000, 60000)"),
        "1"
    );

    // A sample checks a part of the chunks, the same ones each time.
    let (code, a, _) = verify(&src.url(), &dst, &["--chunk-rows", "5000", "--sample", "1"]);
    let (_, b, _) = verify(&src.url(), &dst, &["--chunk-rows", "5000", "--sample", "1"]);
    assert!(code == 0 || code == 1);
    let checked = |r: &serde_json::Value| table(r, "public.items")["checked"].clone();
    assert_eq!(checked(&a), checked(&b));
    assert!(
        checked(&a).as_u64().unwrap_or(0)
            < table(&a, "public.items")["chunks"].as_u64().unwrap_or(0)
    );

    // No answer is exit 2, not 1.
    let (code, _, out) = verify("postgres://postgres@127.0.0.1:1/nope", &dst, &[]);
    assert_eq!(code, 2, "{}", describe(&out));
}

#[test]
fn mapped_tables_verify_as_the_target_should_hold_them() {
    let src = TestDb::new("vermap_src");
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, amount numeric(12,4), flag text, qty text);
         INSERT INTO t SELECT i, i * 1.23456, CASE WHEN i % 2 = 0 THEN 'Y' ELSE 'N' END,
           CASE WHEN i % 100 = 0 THEN 'bad' ELSE i::text END FROM generate_series(1, 20000) i;",
    );
    let dst = TestDb::new("vermap_dst");
    let job = job_file(
        "vermap",
        r#"
[[table]]
name = "t"
target = "public.t2"
[[table.column]]
name = "amount"
rename = "total"
type = "numeric(14,2)"
[[table.column]]
name = "flag"
type = "boolean"
map = { Y = true, N = false }
[[table.column]]
name = "qty"
type = "integer"
"#,
    );
    let out = Howdah::copy(&src.url(), &dst.url())
        .args(["--config", &job, "-q"])
        .run();
    assert_success(&out, "mapped copy");
    let (code, report, out) = verify(&src.url(), &dst, &["--config", &job]);
    assert_eq!(code, 0, "{}", describe(&out));
    let t = table(&report, "public.t2");
    assert_eq!(t["method"], "streamed");
    // Rejected rows are out of both sides.
    assert_eq!(t["source_rows"], 19800);
    assert_eq!(t["target_rows"], 19800);

    dst.exec("UPDATE t2 SET total = total + 0.01 WHERE id = 4242");
    let (code, report, out) = verify(&src.url(), &dst, &["--config", &job, "--drill-down"]);
    assert_eq!(code, 1, "{}", describe(&out));
    assert_eq!(
        keys(table(&report, "public.t2"), "different"),
        vec!["id=4242"]
    );
}

#[test]
fn mysql_sources_verify_against_their_postgresql_copy() {
    let my = MyDb::new("ver_my");
    my.exec(
        "CREATE TABLE orders (id int PRIMARY KEY, customer varchar(40), total decimal(10,2),
           placed datetime(3), paid tinyint(1), meta json, note text CHARACTER SET latin1);
         INSERT INTO orders VALUES
           (1, 'Ann', 10.50, '2024-01-02 03:04:05.678', 1, '{\"b\": 1, \"a\": [1, 2]}', 'café'),
           (2, 'Bob', 0.00, '0000-00-00 00:00:00', 0, NULL, NULL),
           (3, 'Cyd', 99999999.99, '2038-01-19 03:14:07.999', 1, '[]', '');
         CREATE TABLE log (at datetime, msg text);
         INSERT INTO log VALUES ('2024-01-01 00:00:00', 'a'), ('2024-01-01 00:00:00', 'a');",
    );
    let dst = TestDb::new("ver_my_dst");
    let out = Howdah::copy(&my.url(), &dst.url()).args(["-q"]).run();
    assert_success(&out, "MySQL copy");
    let (code, report, out) = verify(&my.url(), &dst, &[]);
    assert_eq!(code, 0, "{}", describe(&out));
    assert_eq!(table(&report, "public.orders")["method"], "streamed");
    assert_eq!(table(&report, "public.log")["target_rows"], 2);

    dst.exec("UPDATE orders SET placed = placed + interval '1 millisecond' WHERE id = 3; DELETE FROM log WHERE ctid = (SELECT min(ctid) FROM log)");
    let (code, report, out) = verify(&my.url(), &dst, &["--drill-down"]);
    assert_eq!(code, 1, "{}", describe(&out));
    assert_eq!(
        keys(table(&report, "public.orders"), "different"),
        vec!["id=3"]
    );
    assert_eq!(table(&report, "public.log")["target_rows"], 1);
    let (code, _, out) = verify(&my.url(), &dst, &["--repair"]);
    assert_eq!(code, 0, "{}", describe(&out));
    assert_eq!(dst.query("SELECT count(*) FROM log"), "2");
}

#[test]
fn mysql_binary_and_case_insensitive_text_keys_copy_and_verify_every_row() {
    let my = MyDb::new("ver_keys");
    my.exec(
        "CREATE TABLE bk (k varbinary(20) PRIMARY KEY, v int);
         INSERT INTO bk SELECT CONCAT('key', LPAD(seq, 5, '0')), seq FROM seq_1_to_3000;
         CREATE TABLE sk (k varchar(20) COLLATE utf8mb4_general_ci PRIMARY KEY, v int);
         INSERT INTO sk SELECT IF(seq % 2 = 0, CONCAT('B', LPAD(seq, 5, '0')), CONCAT('a', LPAD(seq, 5, '0'))), seq
           FROM seq_1_to_3000;",
    );
    let dst = TestDb::new("ver_keys_dst");
    let out = Howdah::copy(&my.url(), &dst.url())
        .args(["--chunk-rows", "1000", "-q"])
        .run();
    assert_success(&out, "copy with binary and text keys in chunks");
    assert_eq!(dst.query("SELECT count(*), sum(v) FROM bk"), "3000|4501500");
    assert_eq!(dst.query("SELECT count(*), sum(v) FROM sk"), "3000|4501500");
    let (code, report, out) = verify(&my.url(), &dst, &["--chunk-rows", "1000"]);
    assert_eq!(code, 0, "{}", describe(&out));
    assert_eq!(table(&report, "public.bk")["target_rows"], 3000);
    assert_eq!(table(&report, "public.sk")["target_rows"], 3000);
    // A repair of a text-keyed table never deletes rows it does not copy back.
    dst.exec("DELETE FROM sk WHERE v = 17");
    let (code, _, out) = verify(&my.url(), &dst, &["--chunk-rows", "1000", "--repair"]);
    assert_eq!(code, 0, "{}", describe(&out));
    assert_eq!(dst.query("SELECT count(*) FROM sk"), "3000");
}

/// Rows of `report`'s table `name` that its mismatches name as different.
fn different(report: &serde_json::Value, name: &str) -> Vec<String> {
    let mut k = keys(table(report, name), "different");
    k.sort();
    k
}

#[test]
fn in_server_checksums_tell_moved_and_look_alike_values_apart() {
    let src = TestDb::new("verid_src");
    src.exec(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE acct (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL);
         INSERT INTO acct SELECT g, 'user' || g, g * 100 FROM generate_series(1, 1000) g;
         CREATE TABLE fl (id int PRIMARY KEY, a float8, b real);
         INSERT INTO fl VALUES (1, NULL, 0), (2, 0, NULL), (3, NULL, NULL), (4, 0, 0), (5, 1, 1);
         CREATE TABLE iv (id int PRIMARY KEY, v interval);
         INSERT INTO iv VALUES (1, '1 day'), (2, '1 mon'), (3, '1 hour');
         CREATE TABLE arr (id int PRIMARY KEY, v int[], f float8[]);
         INSERT INTO arr VALUES (1, '{{1,2},{3,4}}', '{1}'), (2, '{1,2,3,4}', '{1}'), (3, '{5}', '{0}');
         CREATE TABLE num (id int PRIMARY KEY, v numeric, w numeric(10,2));
         INSERT INTO num VALUES (1, 1.5, 0), (2, 'NaN', 'NaN'), (3, 'Infinity', 1), (4, 2, 2);
         CREATE TABLE en (id int PRIMARY KEY, m mood, ms mood[]);
         INSERT INTO en VALUES (1, 'ok', '{sad,happy}'), (2, 'happy', NULL), (3, NULL, '{}');
         CREATE DOMAIN amount AS numeric;
         CREATE TYPE pair AS (a int, b numeric);
         CREATE TABLE misc (id int PRIMARY KEY, r numrange, m int4multirange, d amount, p pair,
           t text COLLATE \"und-x-icu\");
         INSERT INTO misc VALUES (1, '[1.5,2)', '{[1,3),[5,7)}', 1.5, '(1,1.5)', 'a'),
           (2, 'empty', '{}', 2, '(2,2)', 'b'), (3, NULL, NULL, NULL, '(3,3)', NULL);",
    );
    let dst = TestDb::new("verid_dst");
    let out = Howdah::copy(&src.url(), &dst.url()).args(["-q"]).run();
    assert_success(&out, "copy");
    // Enum values hash by label, not by the OID each database gave the label.
    let (code, report, out) = verify(&src.url(), &dst, &["--drill-down"]);
    assert_eq!(code, 0, "an exact copy verifies\n{}", describe(&out));
    assert_eq!(table(&report, "public.en")["method"], "in-server");

    dst.exec(
        "UPDATE acct SET balance = CASE id WHEN 1 THEN 200 ELSE 100 END WHERE id IN (1, 2);
         UPDATE acct SET owner = CASE id WHEN 10 THEN 'user20' ELSE 'user10' END,
                         balance = CASE id WHEN 10 THEN 2000 ELSE 1000 END WHERE id IN (10, 20);
         UPDATE fl SET a = CASE id WHEN 1 THEN 0 END, b = CASE id WHEN 2 THEN 0 END WHERE id IN (1, 2);
         UPDATE fl SET a = 0 WHERE id = 3;
         UPDATE fl SET a = '-0', b = '-0' WHERE id = 4;
         UPDATE iv SET v = CASE id WHEN 1 THEN interval '24 hours' ELSE interval '30 days' END WHERE id IN (1, 2);
         UPDATE arr SET v = CASE id WHEN 1 THEN '{1,2,3,4}'::int[] ELSE '[5:8]={1,2,3,4}'::int[] END WHERE id IN (1, 2);
         UPDATE arr SET f = '{-0}' WHERE id = 3;
         UPDATE num SET v = 1.50 WHERE id = 1;
         UPDATE num SET v = NULL, w = NULL WHERE id = 2;
         UPDATE num SET v = 'NaN' WHERE id = 3;
         UPDATE misc SET r = '[1.50,2)' WHERE id = 1;
         UPDATE misc SET d = 2.0 WHERE id = 2;
         UPDATE misc SET p = '(3,3.0)' WHERE id = 3;",
    );
    let (code, report, out) = verify(&src.url(), &dst, &["--drill-down"]);
    assert_eq!(
        code,
        1,
        "every planted difference is seen\n{}",
        describe(&out)
    );
    // Balances swapped, and whole payloads attached to the other key.
    assert_eq!(
        different(&report, "public.acct"),
        vec!["id=1", "id=10", "id=2", "id=20"]
    );
    // NULL and 0 swapped between rows; NULL became 0; 0 became -0.
    assert_eq!(
        different(&report, "public.fl"),
        vec!["id=1", "id=2", "id=3", "id=4"]
    );
    // Interval units.
    assert_eq!(different(&report, "public.iv"), vec!["id=1", "id=2"]);
    // Array shape, bounds, and -0 inside an array.
    assert_eq!(
        different(&report, "public.arr"),
        vec!["id=1", "id=2", "id=3"]
    );
    // Scale of an unconstrained numeric; NaN against NULL; Infinity against NaN.
    assert_eq!(
        different(&report, "public.num"),
        vec!["id=1", "id=2", "id=3"]
    );
    // Range bounds, a domain over numeric and a composite keep their scale too.
    assert_eq!(
        different(&report, "public.misc"),
        vec!["id=1", "id=2", "id=3"]
    );
    assert_eq!(
        table(&report, "public.en")["mismatches"],
        serde_json::json!([])
    );
}

#[test]
fn verify_reads_odd_types_in_its_snapshot_and_hashes_the_target_types_it_finds() {
    let src = TestDb::new("verprobe_src");
    src.exec(
        "CREATE SCHEMA \"My Schema\";
         CREATE TABLE \"My Schema\".t (id int PRIMARY KEY, j json, x xml, p point, c circle);
         INSERT INTO \"My Schema\".t VALUES (1, '{\"a\": 1}', '<a/>', '(1,2)', '<(0,0),1>'), (2, NULL, NULL, NULL, NULL);
         CREATE TABLE public.money_later (id int PRIMARY KEY, amt bigint);
         INSERT INTO public.money_later VALUES (1, 1234), (2, 100);
         CREATE TABLE public.zbig (id int PRIMARY KEY, pad text);
         INSERT INTO public.zbig SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 150000) g;
         ANALYZE;",
    );
    let dst = TestDb::new("verprobe_dst");
    let out = Howdah::copy(&src.url(), &dst.url()).args(["-q"]).run();
    assert_success(&out, "copy");
    // A table with json/xml/point columns before a table cut into ranges: the planning
    // session's transaction (and its exported snapshot) must survive.
    let (code, report, out) = verify(&src.url(), &dst, &["--chunk-rows", "50000"]);
    assert_eq!(code, 0, "{}", describe(&out));
    assert!(
        table(&report, "public.zbig")["chunks"]
            .as_u64()
            .unwrap_or(0)
            > 1,
        "{report}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("snapshot is gone"),
        "the readers import the verification's snapshot\n{}",
        describe(&out)
    );
    dst.exec("UPDATE \"My Schema\".t SET p = '(1,3)' WHERE id = 1");
    let (code, report, out) = verify(&src.url(), &dst, &["--drill-down"]);
    assert_eq!(code, 1, "{}", describe(&out));
    assert_eq!(different(&report, "My Schema.t"), vec!["id=1"]);

    // A target column of another type, without an extended hash: a difference, not an error.
    dst.exec(
        "UPDATE \"My Schema\".t SET p = '(1,2)' WHERE id = 1;
         ALTER TABLE money_later ALTER COLUMN amt TYPE money USING (amt::numeric / 100)::money;",
    );
    let (code, report, out) = verify(&src.url(), &dst, &[]);
    assert_eq!(code, 1, "{}", describe(&out));
    assert_eq!(
        table(&report, "public.money_later")["mismatches"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(
        table(&report, "My Schema.t")["mismatches"],
        serde_json::json!([])
    );
}

#[test]
fn mysql_json_verifies_by_value_with_exact_numbers() {
    let my = MyDb::new("ver_json");
    my.exec(
        r#"CREATE TABLE js (id int PRIMARY KEY, j json);
           INSERT INTO js VALUES (1, '{"a":1}'), (2, '{"a": 1}'), (3, '[1E2,1.50,-0,0.1e-2,"\\u00e9\\n"]'),
             (4, '{"b":{"y":[1,2],"x":null},"a":true}'), (5, '{"k":1,"k":2}'),
             (6, '[1e400, 12345678901234567890123, 0.1]'), (7, NULL);"#,
    );
    let dst = TestDb::new("ver_json_dst");
    let out = Howdah::copy(&my.url(), &dst.url()).args(["-q"]).run();
    assert_success(&out, "copy");
    let (code, report, out) = verify(&my.url(), &dst, &["--drill-down"]);
    assert_eq!(
        code,
        0,
        "compact MySQL JSON equals its jsonb copy\n{}",
        describe(&out)
    );
    assert_eq!(table(&report, "public.js")["target_rows"], 7);

    // Differences beyond a double's precision, and in the scale PostgreSQL keeps.
    dst.exec(
        "UPDATE js SET j = '[1e400, 12345678901234567890124, 0.1]' WHERE id = 6;
         UPDATE js SET j = '[100, 1.5, 0, 0.001, \"\\u00e9\\n\"]' WHERE id = 3;
         UPDATE js SET j = '{\"k\": 1}' WHERE id = 5;",
    );
    let (code, report, out) = verify(&my.url(), &dst, &["--drill-down"]);
    assert_eq!(code, 1, "{}", describe(&out));
    assert_eq!(
        different(&report, "public.js"),
        vec!["id=3", "id=5", "id=6"]
    );
    dst.exec(
        "UPDATE js SET j = '[1e400, 12345678901234567890123, 0.10000000000000001]' WHERE id = 6",
    );
    let (code, _, out) = verify(&my.url(), &dst, &["--repair"]);
    assert_eq!(code, 0, "{}", describe(&out));
    let (code, _, out) = verify(&my.url(), &dst, &[]);
    assert_eq!(code, 0, "{}", describe(&out));
}

#[test]
fn per_run_sql_values_verify_against_what_the_copy_stored() {
    let src = TestDb::new("verrun_src");
    src.exec(
        "CREATE TABLE orders (id int PRIMARY KEY, note text);
         INSERT INTO orders SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE 'n' || i END
           FROM generate_series(1, 2000) i;",
    );
    let dst = TestDb::new("verrun_dst");
    // The target rejects a row on the first run, so that run fails after recording the job.
    dst.exec(
        "CREATE TABLE orders (id int PRIMARY KEY, note text, migrated_at timestamptz NOT NULL,
           CHECK (id <> 1500));",
    );
    let job = job_file(
        "verrun",
        r#"
[[table]]
name = "public.orders"
[[table.column]]
name = "note"
default_sql = "now()::text"
[[table.add_column]]
name = "migrated_at"
type = "timestamptz"
value_sql = "now()"
"#,
    );
    let (src_url, url) = (src.url(), dst.url());
    let copy = |extra: &[&str]| {
        Howdah::copy(&src_url, &url)
            .args(["--config", &job, "--schema", "existing", "-q"])
            .args(extra)
            .run()
    };
    let out = copy(&[]);
    assert!(!out.status.success(), "{}", describe(&out));
    let between = dst.query("SELECT now()");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    dst.exec("ALTER TABLE orders DROP CONSTRAINT orders_id_check");
    let out = copy(&[]);
    assert_success(&out, "resumed copy");
    // The resumed run used the values its job recorded, not a new now().
    assert_eq!(
        dst.query(&format!(
            "SELECT count(DISTINCT migrated_at), bool_and(migrated_at < '{between}'),
                    count(DISTINCT note) FILTER (WHERE id % 3 = 0)
             FROM orders"
        )),
        "1|t|1"
    );

    let (code, report, out) = verify(&src.url(), &dst, &["--config", &job, "--drill-down"]);
    assert_eq!(code, 0, "{}", describe(&out));
    assert_eq!(
        table(&report, "public.orders")["not_compared"],
        serde_json::json!([])
    );
    dst.exec(
        "UPDATE orders SET migrated_at = now() WHERE id = 7;
         UPDATE orders SET note = 'x' WHERE id = 9;",
    );
    let (code, report, out) = verify(&src.url(), &dst, &["--config", &job, "--drill-down"]);
    assert_eq!(code, 1, "{}", describe(&out));
    assert_eq!(different(&report, "public.orders"), vec!["id=7", "id=9"]);
    let (code, _, out) = verify(&src.url(), &dst, &["--config", &job, "--repair"]);
    assert_eq!(code, 0, "{}", describe(&out));
    assert_eq!(
        dst.query("SELECT count(DISTINCT migrated_at), count(DISTINCT note) FILTER (WHERE id % 3 = 0) FROM orders"),
        "1|1"
    );

    // Without the job's state (another job name), such columns are left out, and said so.
    let (code, report, out) = verify(&src.url(), &dst, &["--config", &job, "--job", "other"]);
    assert_eq!(code, 0, "{}", describe(&out));
    assert_eq!(
        table(&report, "public.orders")["not_compared"],
        serde_json::json!(["note", "migrated_at"])
    );
    dst.exec("UPDATE orders SET migrated_at = now() WHERE id = 7");
    let (code, _, out) = verify(&src.url(), &dst, &["--config", &job, "--job", "other"]);
    assert_eq!(code, 0, "{}", describe(&out));
    let out = Howdah::new("verify")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--config",
            &job,
            "--job",
            "other",
        ])
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("not compared") && text.contains("migrated_at"),
        "{text}"
    );
}
