//! Column mappings from the job file, against the real servers: renames, casts, defaults,
//! value maps, clean-ups, added columns, filters and type-wide rules give exactly the values
//! asked for; failed casts reject, null or default as configured; counts add up (source rows =
//! target rows + rejected rows); bad rules are refused before anything is written.

use std::process::Output;
use std::time::Duration;

use crate::support::{assert_error, assert_success, describe, job_file, Howdah, MyDb, TestDb};

fn copy(source: &str, dst: &TestDb, config: &str, extra: &[&str]) -> Output {
    Howdah::copy(source, &dst.url())
        .args(["--config", config])
        .args(extra)
        .run()
}

const ORDERS: &str = "
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  total numeric(12,4) NOT NULL,
  flag text,
  created timestamp,
  note varchar(20),
  qty text,
  secret text,
  code text,
  ratio double precision,
  active int
);
CREATE INDEX orders_total_idx ON orders (total);
CREATE INDEX orders_secret_idx ON orders (secret);
ALTER TABLE orders ADD CONSTRAINT total_pos CHECK (total >= 0);
INSERT INTO orders
SELECT i, i * 1.23455, CASE i % 3 WHEN 0 THEN 'Y' WHEN 1 THEN 'N' ELSE 'maybe' END,
       timestamp '2020-10-25 00:30' + i * interval '1 hour',
       CASE WHEN i % 5 = 0 THEN '  padded  ' ELSE 'n' || i END,
       CASE WHEN i % 7 = 0 THEN 'bad' ELSE (i % 100)::text END,
       's3cret', CASE WHEN i % 4 = 0 THEN '' WHEN i % 4 = 1 THEN NULL ELSE 'c' END,
       i + 0.5, i % 3
FROM generate_series(1, 1000) AS i;
";

const ORDERS_JOB: &str = r#"
[copy]
job = "shop"

[[table]]
name = "public.orders"
target = "sales.orders_v2"
exclude_columns = ["secret"]
where = "id <= 900"

[[table.column]]
name = "total"
rename = "amount"
type = "numeric(14,2)"

[[table.column]]
name = "flag"
type = "boolean"
map = { Y = true, N = false }
on_error = "null"

[[table.column]]
name = "created"
type = "timestamptz"
zone = "Europe/Paris"

[[table.column]]
name = "note"
trim = true

[[table.column]]
name = "qty"
type = "integer"

[[table.column]]
name = "code"
empty_as_null = true
default = "${job}"

[[table.column]]
name = "ratio"
type = "bigint"

[[table.column]]
name = "active"
type = "boolean"

[[table.add_column]]
name = "origin"
type = "text"
value = "legacy-${job}"
not_null = true
"#;

#[test]
fn mappings_rename_cast_default_and_clean_every_row() {
    let src = TestDb::new("map_src");
    src.exec(ORDERS);
    let dst = TestDb::new("map_dst");
    dst.exec("CREATE SCHEMA sales");
    let job = job_file("map", ORDERS_JOB);
    let out = copy(
        &src.url(),
        &dst,
        &job,
        &["--jobs", "2", "--chunk-rows", "1000"],
    );
    assert_success(&out, "mapped copy");

    // Exactly the values PostgreSQL's own casts give, computed on the source.
    let want = src.query(
        "SELECT id, round(total, 2), CASE flag WHEN 'Y' THEN 'true' WHEN 'N' THEN 'false' END, \
         (created AT TIME ZONE 'Europe/Paris') AT TIME ZONE 'UTC', btrim(note), qty::int, \
         coalesce(nullif(code, ''), 'shop'), ratio::bigint, active::boolean, 'legacy-shop' \
         FROM orders WHERE id <= 900 AND qty <> 'bad' ORDER BY id",
    );
    let got = dst.query(
        "SELECT id, amount, flag::text, created AT TIME ZONE 'UTC', note, qty, code, ratio, \
         active, origin FROM sales.orders_v2 ORDER BY id",
    );
    assert_eq!(got, want);

    // Types, the renamed column in its index and check, the left-out column's index gone.
    let cols = dst.query(
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) \
         FROM pg_attribute WHERE attrelid = 'sales.orders_v2'::regclass AND attnum > 0",
    );
    assert_eq!(
        cols,
        "id bigint, amount numeric(14,2), flag boolean, created timestamp with time zone, \
         note character varying(20), qty integer, code text, ratio bigint, active boolean, origin text"
    );
    let idx = dst.query(
        "SELECT string_agg(indexdef, ' | ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'orders_v2'",
    );
    assert!(
        idx.contains("orders_total_idx ON sales.orders_v2 USING btree (amount)"),
        "{idx}"
    );
    assert!(!idx.contains("secret"), "{idx}");
    let check = dst
        .query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'total_pos'");
    assert!(check.contains("amount"), "{check}");

    // Counts add up: the 900 filtered source rows are loaded or rejected, nothing else.
    let loaded: u64 = dst
        .query("SELECT count(*) FROM sales.orders_v2")
        .parse()
        .unwrap();
    let rejected: u64 = dst
        .query("SELECT count(*) FROM howdah.rejects WHERE table_name = 'sales.orders_v2'")
        .parse()
        .unwrap();
    assert_eq!(loaded + rejected, 900);
    assert_eq!(rejected, (1..=900).filter(|i| i % 7 == 0).count() as u64);
    let r =
        dst.query("SELECT key, column_name, value, reason FROM howdah.rejects WHERE key = 'id=7'");
    assert_eq!(
        r,
        "id=7|qty|bad|invalid input syntax for type integer: \"bad\""
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{rejected}")),
        "{}",
        describe(&out)
    );
}

#[test]
fn failed_casts_reject_null_or_default_as_configured() {
    let src = TestDb::new("onerr_src");
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, a text, b text, c text, d text NOT NULL);
         INSERT INTO t VALUES (1, '10', '10', '10', '5'), (2, 'x', 'y', 'z', '6'),
                              (3, NULL, NULL, NULL, 'w'), (4, '1e3', '  42 ', '3.7', '8');",
    );
    let dst = TestDb::new("onerr_dst");
    let job = job_file(
        "onerr",
        r#"
[[table]]
name = "t"
[[table.column]]
name = "a"
type = "integer"
on_error = "null"
[[table.column]]
name = "b"
type = "integer"
on_error = "default"
default = -1
[[table.column]]
name = "c"
type = "numeric(5,0)"
on_error = "default"
[[table.column]]
name = "d"
type = "smallint"
"#,
    );
    let out = copy(&src.url(), &dst, &job, &[]);
    assert_success(&out, "copy with on_error rules");
    assert_eq!(
        dst.query("SELECT id, a, b, c, d FROM t ORDER BY id"),
        "1|10|10|10|5\n2||-1||6\n4||42|4|8"
    );
    assert_eq!(
        dst.query("SELECT key, column_name, value FROM howdah.rejects"),
        "id=3|d|w"
    );
}

#[test]
fn type_wide_casts_apply_and_column_rules_win() {
    let src = TestDb::new("tcast_src");
    src.exec(
        "CREATE TABLE ev (id int PRIMARY KEY, at timestamp, seen timestamp, n numeric(10,3));
         INSERT INTO ev VALUES (1, '2021-07-01 12:00', '2021-07-01 12:00', 1.2345);",
    );
    let dst = TestDb::new("tcast_dst");
    let job = job_file(
        "tcast",
        r#"
[[cast]]
from = "timestamp"
to = "timestamptz"
zone = "America/New_York"
[[cast]]
from = "numeric(10,3)"
to = "numeric(10,1)"
[[table]]
name = "ev"
[[table.column]]
name = "seen"
type = "timestamptz"
zone = "Asia/Tokyo"
"#,
    );
    let out = copy(&src.url(), &dst, &job, &[]);
    assert_success(&out, "copy with type-wide casts");
    assert_eq!(
        dst.query("SELECT at AT TIME ZONE 'UTC', seen AT TIME ZONE 'UTC', n FROM ev"),
        "2021-07-01 16:00:00|2021-07-01 03:00:00|1.2"
    );
}

#[test]
fn dry_run_shows_every_column_and_writes_nothing() {
    let src = TestDb::new("dry_src");
    src.exec(ORDERS);
    let dst = TestDb::new("dry_dst");
    let job = job_file("dry", ORDERS_JOB);
    let out = copy(&src.url(), &dst, &job, &["--dry-run"]);
    assert_success(&out, "dry run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "sales.orders_v2 (from public.orders):",
        "where id <= 900",
        "total numeric(12,4) -> amount numeric(14,2): cast numeric(12,4) -> numeric(14,2)",
        "flag text -> flag boolean: cast text -> boolean; map of 2 values; on error: NULL",
        "in zone Europe/Paris",
        "id bigint -> id bigint: passthrough",
        "(added) -> origin text: added, = legacy-shop",
    ] {
        assert!(
            stdout.contains(line),
            "missing {line:?}\n{}",
            describe(&out)
        );
    }
    assert!(!stdout.contains("secret"), "{stdout}");
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_namespace WHERE nspname IN ('howdah', 'sales')"),
        "0",
        "a dry run writes nothing"
    );
}

#[test]
fn bad_rules_are_refused_naming_file_table_column_and_fix() {
    let src = TestDb::new("badrule_src");
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, a text, b bytea, c int NOT NULL, d int);
         INSERT INTO t VALUES (1, 'x', '\\x00', 1, 2);
         CREATE TABLE pt (id int, k int) PARTITION BY RANGE (id);
         CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (100);",
    );
    let dst = TestDb::new("badrule_dst");
    let cases = [
        ("[[table]]\nname = \"nope\"\n", vec!["[[table]] \"nope\"", "no such table", "fix the name"]),
        (
            "[[table]]\nname = \"t\"\n[[table.column]]\nname = \"aa\"\ntype = \"int\"\n",
            vec!["[[table]] \"public.t\", column \"aa\"", "no such column", "columns: id, a, b, c, d"],
        ),
        (
            "[[table]]\nname = \"t\"\n[[table.column]]\nname = \"b\"\ntype = \"integer\"\n",
            vec!["column \"b\"", "no cast from bytea to integer"],
        ),
        (
            "[[table]]\nname = \"t\"\n[[table.column]]\nname = \"a\"\ntype = \"inet\"\n",
            vec!["column \"a\"", "cannot cast to \"inet\"", "supported types"],
        ),
        (
            "[[table]]\nname = \"t\"\n[[table.column]]\nname = \"c\"\ntype = \"bigint\"\non_error = \"null\"\n",
            vec!["column \"c\"", "NOT NULL", "on_error = \"reject\""],
        ),
        (
            "[[table]]\nname = \"t\"\n[[table.column]]\nname = \"a\"\nrename = \"d\"\n",
            vec!["two target columns are named \"d\""],
        ),
        (
            "[[table]]\nname = \"t\"\n[[table.column]]\nname = \"id\"\ntype = \"bigint\"\n",
            vec!["column \"id\"", "the table's key", "can be renamed but not cast"],
        ),
        (
            "[[table]]\nname = \"t\"\nexclude_columns = [\"id\"]\n",
            vec!["column \"id\"", "cannot be left out"],
        ),
        (
            "[[table]]\nname = \"t\"\n[[table.column]]\nname = \"d\"\ndefault = \"many\"\n",
            vec!["column \"d\"", "default \"many\" is not a valid integer"],
        ),
        (
            "[[table]]\nname = \"pt1\"\n[[table.column]]\nname = \"k\"\ntype = \"bigint\"\n",
            vec!["\"public.pt1\"", "partitioned, partition or inheritance", "ALTER TABLE"],
        ),
    ];
    for (i, (text, wants)) in cases.iter().enumerate() {
        let job = job_file(&format!("badrule{i}"), text);
        let out = copy(&src.url(), &dst, &job, &[]);
        let msg = assert_error(&out, 2, "a bad mapping rule");
        assert!(msg.contains(&job), "the file is named: {msg}");
        for w in wants {
            assert!(msg.contains(w), "case {i}: missing {w:?} in {msg}");
        }
    }
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_tables WHERE tablename = 't'"),
        "0",
        "nothing is created before the rules are checked"
    );
}

#[test]
fn max_rejects_stops_the_copy_and_rejects_file_lists_them() {
    let src = TestDb::new("maxrej_src");
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT i, CASE WHEN i % 10 = 0 THEN 'x' || i ELSE i::text END
         FROM generate_series(1, 20000) i;",
    );
    let job = job_file(
        "maxrej",
        "[[table]]\nname = \"t\"\n[[table.column]]\nname = \"v\"\ntype = \"integer\"\n",
    );
    // 10% of the rows are bad: a limit of 100 rows stops the copy.
    let dst = TestDb::new("maxrej_dst");
    let out = copy(&src.url(), &dst, &job, &["--max-rejects", "100"]);
    let msg = assert_error(&out, 5, "too many rejects");
    assert!(msg.contains("max_rejects = 100"), "{msg}");
    assert!(
        msg.contains("public.t id="),
        "names the table and key: {msg}"
    );
    assert!(msg.contains("column v"), "{msg}");

    // A 20% limit lets it finish; the rejects file holds every rejected row once.
    let dst2 = TestDb::new("maxrej_dst2");
    let file =
        std::env::temp_dir().join(format!("howdah-test-{}-rejects.jsonl", std::process::id()));
    let out = copy(
        &src.url(),
        &dst2,
        &job,
        &[
            "--max-rejects",
            "20%",
            "--rejects-file",
            &file.display().to_string(),
        ],
    );
    assert_success(&out, "copy under the percent limit");
    let text = std::fs::read_to_string(&file).expect("rejects file");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2000);
    assert_eq!(lines[0]["table"], "public.t");
    assert_eq!(lines[0]["column"], "v");
    assert!(lines
        .iter()
        .any(|l| l["key"] == "id=10" && l["value"] == "x10"));
    assert_eq!(dst2.query("SELECT count(*) FROM t"), "18000");
    let _ = std::fs::remove_file(file);

    // A 5% limit is over: the copy finishes its tables, then says so.
    let dst3 = TestDb::new("maxrej_dst3");
    let out = copy(&src.url(), &dst3, &job, &["--max-rejects", "5%"]);
    let msg = assert_error(&out, 5, "percent over");
    assert!(msg.contains("max_rejects = 5%"), "{msg}");
}

#[test]
fn mapped_copy_survives_network_cuts_without_loss_or_duplicate_rejects() {
    let src = TestDb::new("mapcut_src");
    src.exec(
        "CREATE TABLE t (id bigint PRIMARY KEY, v text, pad text);
         INSERT INTO t SELECT i, CASE WHEN i % 1000 = 0 THEN 'bad' ELSE (i % 977)::text END,
                              repeat('p', 200)
         FROM generate_series(1, 300000) i;",
    );
    let dst = TestDb::new("mapcut_dst");
    let job = job_file(
        "mapcut",
        "[[table]]\nname = \"t\"\n[[table.column]]\nname = \"v\"\ntype = \"integer\"\n",
    );
    let proxy = crate::proxy::Proxy::to_postgres();
    let child = proxy
        .copy(&src, &dst)
        .args(["--config", &job])
        .args([
            "--jobs",
            "2",
            "--commit-rows",
            "5000",
            "--chunk-rows",
            "100000",
        ])
        .spawn();
    proxy.cut_during_copy(&dst, 2, Duration::from_secs(20));
    let out = child.wait_with_output().expect("wait for howdah");
    assert_success(&out, "mapped copy through cuts");
    assert_eq!(
        dst.query("SELECT count(*), count(DISTINCT id), sum(v) FROM t"),
        src.query("SELECT count(*), count(DISTINCT id), sum(v::int) FROM t WHERE v <> 'bad'")
    );
    assert_eq!(
        dst.query("SELECT count(*), count(DISTINCT key) FROM howdah.rejects"),
        "300|300",
        "every bad row rejected exactly once"
    );
}

#[test]
fn mysql_columns_map_through_the_same_rules() {
    let my = MyDb::new("map_my");
    my.exec(
        "CREATE TABLE items (id int PRIMARY KEY, active tinyint(1), label varchar(30), \
           price decimal(10,4), added datetime, legacy char(1));
         INSERT INTO items VALUES (1, 1, '  one ', 1.23456, '2022-03-27 02:30:00', 'Y'),
           (2, 0, 'two', 2.5, '2022-01-01 00:00:00', 'N'), (3, 7, '', NULL, NULL, '?');",
    );
    let dst = TestDb::new("map_my_dst");
    let job = job_file(
        "mapmy",
        r#"
[[table]]
name = "items"
target = "public.products"
[[table.column]]
name = "active"
type = "boolean"
[[table.column]]
name = "label"
rename = "title"
trim = true
empty_as_null = true
default = "untitled"
[[table.column]]
name = "price"
type = "numeric(10,2)"
default = 0
[[table.column]]
name = "added"
type = "timestamptz"
zone = "Europe/Paris"
[[table.column]]
name = "legacy"
type = "boolean"
map = { Y = true, N = false }
on_error = "null"
"#,
    );
    let out = copy(&my.url(), &dst, &job, &[]);
    assert_success(&out, "MySQL copy with mappings");
    assert_eq!(
        dst.query(
            "SELECT id, active, title, price, added AT TIME ZONE 'UTC', legacy FROM products ORDER BY id"
        ),
        "1|t|one|1.23|2022-03-27 01:30:00|t\n2|f|two|2.50|2021-12-31 23:00:00|f\n3|t|untitled|0.00||"
    );
}

#[test]
fn the_example_job_file_resolves_against_a_matching_source() {
    let src = TestDb::new("example_src");
    src.exec(
        "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12,4), status text,
           paid text, comment text, updated_at timestamptz, internal_note text,
           created_at timestamp NOT NULL);
         INSERT INTO orders VALUES (1, 9.999, ' A ', 'Y', 'hi', NULL, 'x', '2021-01-01 10:00');
         CREATE TABLE tmp_scratch (id int);",
    );
    let dst = TestDb::new("example_dst");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/example.toml");
    let out = copy(&src.url(), &dst, example, &["--dry-run"]);
    assert_success(&out, "dry run of configs/example.toml");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "sales.orders (from public.orders):",
        "where created_at >= '2020-01-01'",
        "total numeric(12,4) -> amount numeric(14,2)",
        "paid text -> paid boolean",
        "comment text -> comment character varying(200)",
        "created_at timestamp without time zone -> created_at timestamp with time zone",
        "(added) -> source_system text: added, = legacy-default",
    ] {
        assert!(
            stdout.contains(line),
            "missing {line:?}\n{}",
            describe(&out)
        );
    }
    assert!(
        !stdout.contains("tmp_scratch"),
        "excluded by the example's patterns: {stdout}"
    );
}

#[test]
fn an_existing_narrower_target_column_is_refused_then_cast_with_rejects() {
    let src = TestDb::new("narrow_src");
    src.exec(
        "CREATE TABLE m (id int PRIMARY KEY, v numeric(12,4));
         INSERT INTO m VALUES (1, 1.2345), (2, 12345678.9), (3, NULL);",
    );
    let dst = TestDb::new("narrow_dst");
    dst.exec("CREATE TABLE m (id int PRIMARY KEY, v numeric(6,2))");
    let out = Howdah::copy(&src.url(), &dst.url())
        .args(["--schema", "existing"])
        .run();
    let msg = assert_error(&out, 2, "a narrower existing column");
    assert!(
        msg.contains("public.m.v is numeric(6,2) on the target but numeric(12,4) from the source"),
        "{msg}"
    );
    assert_eq!(dst.query("SELECT count(*) FROM m"), "0");

    let job = job_file(
        "narrow",
        "[copy]\nschema = \"existing\"\n[[table]]\nname = \"m\"\n[[table.column]]\nname = \"v\"\ntype = \"numeric(6,2)\"\n",
    );
    let out = copy(&src.url(), &dst, &job, &[]);
    assert_success(&out, "copy with the target's type");
    assert_eq!(dst.query("SELECT id, v FROM m ORDER BY id"), "1|1.23\n3|");
    assert_eq!(
        dst.query("SELECT key, column_name, value FROM howdah.rejects"),
        "id=2|v|12345678.9000"
    );
}

#[test]
fn map_values_zones_renames_and_extreme_values_behave() {
    // A value map's result is read as the target's text, whatever the source type.
    let src = TestDb::new("edge_src");
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, flag smallint, date date CHECK (date > '2000-01-01'::date),
           at timestamp);
         INSERT INTO t VALUES (1, 2, '2020-01-01', '2020-06-01 12:00'),
           (2, 0, '2021-01-01', '4714-11-24 00:00:00 BC');",
    );
    let dst = TestDb::new("edge_dst");
    let job = job_file(
        "edge",
        r#"
[[table]]
name = "t"
[[table.column]]
name = "flag"
type = "boolean"
map = { "2" = false }
[[table.column]]
name = "date"
rename = "event_date"
[[table.column]]
name = "at"
type = "timestamptz"
zone = "Asia/Tokyo"
"#,
    );
    let out = copy(&src.url(), &dst, &job, &[]);
    assert_success(&out, "edge mappings");
    assert_eq!(
        dst.query("SELECT id, flag, event_date, at AT TIME ZONE 'UTC' FROM t"),
        "1|f|2020-01-01|2020-06-01 03:00:00"
    );
    assert_eq!(
        dst.query("SELECT key, column_name FROM howdah.rejects"),
        "id=2|at",
        "a timestamp at the end of the range is one rejected row, not a failed table"
    );

    // A MySQL DATETIME read in a zone keeps it when a clean-up sends the column through text.
    let my = MyDb::new("edge_my");
    my.exec(
        "CREATE TABLE o (id int PRIMARY KEY, placed datetime(3));
         INSERT INTO o VALUES (1, '2024-01-01 12:00:00'), (2, '2024-07-01 12:00:00.250');",
    );
    let dst2 = TestDb::new("edge_my_dst");
    let job = job_file(
        "edge_my",
        r#"
[[mysql.cast]]
column = "o.placed"
to = "timestamptz"
zone = "Europe/Paris"
[[table]]
name = "o"
[[table.column]]
name = "placed"
map_null = ["2024-07-01 10:00:00.25+00"]
"#,
    );
    let out = copy(&my.url(), &dst2, &job, &[]);
    assert_success(&out, "MySQL zone through text");
    assert_eq!(
        dst2.query("SELECT id, placed AT TIME ZONE 'UTC' FROM o ORDER BY id"),
        "1|2024-01-01 11:00:00\n2|"
    );
}

/// A `real` cast to an integer, double or numeric type gives what PostgreSQL's casts of the
/// float4 value give: its text (`1.2345679e+11`) read as a double would be another number
/// from 2^24 up.
#[test]
fn real_columns_cast_as_postgresql_casts_the_float4() {
    let src = TestDb::new("real_src");
    src.exec(
        "CREATE TABLE r (id int PRIMARY KEY, a real, b real, c real, d real, e real);
         INSERT INTO r VALUES (1, 123456789012, 2147483520, 100000008, 0.1, 16777217),
           (2, 2.5, 3.5, -2.5, -0.5, 1e30), (3, 16777217, 1e10, 33554436, 3.4028235e38, -0.0),
           (4, 0.5, 1.5, 987654321, 1e-45, 1234565), (5, NULL, -9.223372e18, -2147483520, NULL, 0.1);",
    );
    let job = job_file(
        "real",
        r#"
[[table]]
name = "public.r"
[[table.column]]
name = "a"
type = "bigint"
[[table.column]]
name = "b"
type = "bigint"
[[table.column]]
name = "c"
type = "integer"
[[table.column]]
name = "d"
type = "double precision"
[[table.column]]
name = "e"
type = "numeric"
"#,
    );
    let dst = TestDb::new("real_dst");
    let out = copy(&src.url(), &dst, &job, &[]);
    assert_success(&out, "copy of real columns cast to other number types");
    assert_eq!(
        dst.query("SELECT id, a, b, c, d, e FROM r ORDER BY id"),
        src.query(
            "SELECT id, a::bigint, b::bigint, c::integer, d::float8, e::numeric FROM r ORDER BY id"
        )
    );

    // MySQL FLOAT is a float4 too: the same casts of the same values.
    let my = MyDb::new("real_my");
    my.exec(
        "CREATE TABLE f (id int PRIMARY KEY, a float, d float, e float);
         INSERT INTO f VALUES (1, 123456789012, 0.1, 1234565), (2, 16777217, 3.3e38, 0.1),
           (3, -2.5, 1.5e-37, 123456789012);",
    );
    let job = job_file(
        "real_my",
        r#"
[[table]]
name = "f"
[[table.column]]
name = "a"
type = "bigint"
[[table.column]]
name = "d"
type = "double precision"
[[table.column]]
name = "e"
type = "numeric"
"#,
    );
    let dst = TestDb::new("real_my_dst");
    let out = copy(&my.url(), &dst, &job, &[]);
    assert_success(&out, "MySQL FLOAT columns cast to other number types");
    assert_eq!(
        dst.query("SELECT id, a, d, e FROM f ORDER BY id"),
        dst.query(
            "SELECT id, a::real::bigint, d::real::float8, e::real::numeric FROM (VALUES
               (1, '123456789012', '0.1', '1234565'), (2, '16777217', '3.3e38', '0.1'),
               (3, '-2.5', '1.5e-37', '123456789012')) v(id, a, d, e) ORDER BY id"
        )
    );
}
