//! `howdah verify` against the real servers: equal copies pass; a changed value, a missing
//! row, an extra row, NULL against an empty string and a timestamp off by a microsecond are
//! each found and located by key, for in-server checksums (PostgreSQL), streamed checks
//! (mapped tables) and MySQL sources.

use std::process::{Command, Output};

use crate::support::{assert_success, describe, job_file, MyDb, TestDb};

fn howdah(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_howdah"))
        .args(args)
        .env_remove("HOWDAH_SOURCE")
        .env_remove("HOWDAH_TARGET")
        .output()
        .expect("run howdah")
}

fn verify(src: &str, dst: &TestDb, extra: &[&str]) -> (i32, serde_json::Value, Output) {
    let url = dst.url();
    let mut args = vec!["verify", "--source", src, "--target", &url, "--json"];
    args.extend_from_slice(extra);
    let out = howdah(&args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, out)
}

fn table<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
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
    let out = howdah(&["copy", "--source", &src.url(), "--target", &dst.url(), "-q"]);
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
    let out = howdah(&[
        "verify",
        "--source",
        &src.url(),
        "--target",
        &dst.url(),
        "--drill-down",
    ]);
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
    let out = howdah(&[
        "copy",
        "--source",
        &src.url(),
        "--target",
        &dst.url(),
        "--config",
        &job,
        "-q",
    ]);
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
    let out = howdah(&["copy", "--source", &my.url(), "--target", &dst.url(), "-q"]);
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
    let out = howdah(&[
        "copy",
        "--source",
        &my.url(),
        "--target",
        &dst.url(),
        "--chunk-rows",
        "1000",
        "-q",
    ]);
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
