//! MySQL/MariaDB to PostgreSQL: every row of the type table arrives with its exact
//! PostgreSQL value, type rules by type and by column take effect, and bad values are
//! rejected one row at a time with table, key, column, value and reason, the counts adding up.

use std::process::Output;

use crate::support::{describe, job_file, Howdah, MyDb, TestDb};

fn copy(my: &MyDb, pg: &TestDb, extra: &[&str]) -> Output {
    Howdah::copy(&my.url(), &pg.url())
        .args(["--jobs", "2"])
        .args(extra)
        .run()
}

const TYPES: &str = "
SET time_zone = '+00:00';
CREATE TABLE types (
  id int PRIMARY KEY,
  b1 tinyint(1), ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
  mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned,
  dec1 decimal(10,2), dec2 decimal(30,10), f float, d double,
  bt1 bit(1), bt10 bit(10),
  c char(5), vc varchar(20), tx text, lt longtext CHARACTER SET latin1,
  bin binary(4), vb varbinary(10), bl blob,
  js json, en enum('small','medium','large'), st set('a','b','c'),
  dt date, dtm datetime(6), ts timestamp(3) NULL DEFAULT NULL, tm time(6), yr year,
  g point
);
INSERT INTO types VALUES
 (1, 1, -5, 200, -300, 60000, -8000000, 16000000, -2000000000, 4000000000,
  -9000000000000000000, 18000000000000000000,
  12.30, -0.0000000001, 0.1, 0.1, b'1', b'1000000001',
  'ab', 'héllo wörld', 'emoji 😀', CONVERT(UNHEX('80E99F') USING latin1),
  UNHEX('00010203'), UNHEX('FF'), UNHEX('DEADBEEF'),
  '{\"a\": [1, 2.50, \"x\"], \"b\": null}', 'medium', 'a,c',
  '2024-02-29', '2024-02-29 13:45:01.123456', '2024-03-01 00:00:01.500', '12:34:56.789', 2024,
  ST_GeomFromText('POINT(1 2)')),
 (2, 0, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
  -9223372036854775808, 18446744073709551615,
  -99999999.99, 99999999999999999999.9999999999, 1.5, -1.7976931348623157e308, b'0', b'0000000000',
  '', '', '', '',
  UNHEX('00000000'), UNHEX(''), UNHEX(''),
  '[]', 'small', '',
  '0001-01-01', '9999-12-31 23:59:59.999999', '1970-01-01 00:00:01.000', '23:59:59.999999', 1901,
  NULL),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL);
";

/// `(column, [row 1, row 2], PostgreSQL type)`; row 3 is NULL everywhere (empty in psql -A).
const EXPECTED: &[(&str, [&str; 2], &str)] = &[
    ("b1", ["true", "false"], "boolean"),
    ("ti", ["-5", "-128"], "smallint"),
    ("tiu", ["200", "255"], "smallint"),
    ("si", ["-300", "-32768"], "smallint"),
    ("siu", ["60000", "65535"], "integer"),
    ("mi", ["-8000000", "-8388608"], "integer"),
    ("miu", ["16000000", "16777215"], "integer"),
    ("i", ["-2000000000", "-2147483648"], "integer"),
    ("iu", ["4000000000", "4294967295"], "bigint"),
    (
        "bi",
        ["-9000000000000000000", "-9223372036854775808"],
        "bigint",
    ),
    (
        "biu",
        ["18000000000000000000", "18446744073709551615"],
        "numeric(20,0)",
    ),
    ("dec1", ["12.30", "-99999999.99"], "numeric(10,2)"),
    (
        "dec2",
        ["-0.0000000001", "99999999999999999999.9999999999"],
        "numeric(30,10)",
    ),
    ("f", ["0.1", "1.5"], "real"),
    ("d", ["0.1", "-1.7976931348623157e+308"], "double precision"),
    ("bt1", ["true", "false"], "boolean"),
    ("bt10", ["1000000001", "0000000000"], "bit varying(10)"),
    ("c", ["ab", ""], "character varying(5)"),
    ("vc", ["héllo wörld", ""], "character varying(20)"),
    ("tx", ["emoji 😀", ""], "text"),
    ("lt", ["€éŸ", ""], "text"),
    ("bin", ["\\x00010203", "\\x00000000"], "bytea"),
    ("vb", ["\\xff", "\\x"], "bytea"),
    ("bl", ["\\xdeadbeef", "\\x"], "bytea"),
    ("js", [r#"{"a": [1, 2.50, "x"], "b": null}"#, "[]"], "jsonb"),
    ("en", ["medium", "small"], "types_en"),
    ("st", ["{a,c}", "{}"], "text[]"),
    ("dt", ["2024-02-29", "0001-01-01"], "date"),
    (
        "dtm",
        ["2024-02-29 13:45:01.123456", "9999-12-31 23:59:59.999999"],
        "timestamp(6) without time zone",
    ),
    (
        "ts AT TIME ZONE 'UTC'",
        ["2024-03-01 00:00:01.5", "1970-01-01 00:00:01"],
        "",
    ),
    (
        "tm",
        ["12:34:56.789", "23:59:59.999999"],
        "time(6) without time zone",
    ),
    ("yr", ["2024", "1901"], "smallint"),
    (
        "g",
        ["\\x0101000000000000000000f03f0000000000000040", "<null>"],
        "bytea",
    ),
];

#[test]
fn every_mapping_round_trips_with_exact_values() {
    let my = MyDb::new("mytypes");
    my.exec(TYPES);
    let pg = TestDb::new("mytypes_dst");
    let out = copy(&my, &pg, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let mut wrong = Vec::new();
    for (col, rows, ty) in EXPECTED {
        let got = pg.query(&format!(
            "SELECT coalesce(({col})::text, '<null>') FROM types ORDER BY id"
        ));
        let want = format!("{}\n{}\n<null>", rows[0], rows[1]);
        if got != want {
            wrong.push(format!("{col}: got {got:?}, want {want:?}"));
        }
        if !ty.is_empty() {
            let got_ty = pg.query(&format!(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'types'::regclass AND attname = '{col}'"
            ));
            if got_ty != *ty {
                wrong.push(format!("{col}: type {got_ty}, want {ty}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        pg.query("SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'types_en'::regtype"),
        "small,medium,large"
    );
    assert_eq!(pg.query("SELECT count(*) FROM howdah.rejects"), "0");
}

#[test]
fn type_rules_by_type_and_by_column() {
    let my = MyDb::new("myrules");
    my.exec(
        "CREATE TABLE alt (id int PRIMARY KEY, u binary(16), us char(36), local datetime,
           size enum('s','m'), dur time, flag tinyint(1), other tinyint(1));
         INSERT INTO alt VALUES
          (1, UNHEX('123e4567e89b12d3a456426614174000'), '123e4567-e89b-12d3-a456-426614174000',
           '2024-07-01 12:00:00', 's', '838:59:59', 2, 2),
          (2, NULL, NULL, '2024-01-15 12:00:00', 'm', '-04:00:00', 0, 0);",
    );
    let pg = TestDb::new("myrules_dst");
    let cfg = job_file(
        "rules",
        r#"
[mysql]
[[mysql.cast]]
type = "binary(16)"
to = "uuid"
[[mysql.cast]]
column = "alt.us"
to = "uuid"
[[mysql.cast]]
type = "datetime"
to = "timestamptz"
zone = "Europe/Paris"
[[mysql.cast]]
type = "enum"
to = "text"
[[mysql.cast]]
type = "time"
to = "interval"
[[mysql.cast]]
column = "alt.flag"
to = "smallint"
"#,
    );
    let out = copy(&my, &pg, &["--config", &cfg]);
    assert!(out.status.success(), "{}", describe(&out));
    let row = |sql: &str| pg.query(sql);
    assert_eq!(
        row("SELECT u, us FROM alt WHERE id = 1"),
        "123e4567-e89b-12d3-a456-426614174000|123e4567-e89b-12d3-a456-426614174000"
    );
    // Paris is UTC+2 in July, UTC+1 in January.
    assert_eq!(
        row("SELECT string_agg((local AT TIME ZONE 'UTC')::text, ',' ORDER BY id) FROM alt"),
        "2024-07-01 10:00:00,2024-01-15 11:00:00"
    );
    assert_eq!(
        row("SELECT string_agg(dur::text, ',' ORDER BY id) FROM alt"),
        "838:59:59,-04:00:00"
    );
    assert_eq!(
        row("SELECT string_agg(flag::text || '/' || other::text, ',' ORDER BY id) FROM alt"),
        "2/true,0/false"
    );
    let types = row(
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) \
         FROM pg_attribute WHERE attrelid = 'alt'::regclass AND attnum > 0",
    );
    assert_eq!(
        types,
        "id integer, u uuid, us uuid, local timestamp with time zone, size text, dur interval, flag smallint, other boolean"
    );
    // The enum kept as text carries a CHECK on its labels.
    let insert = pg.try_exec("INSERT INTO alt (id, size) VALUES (9, 'xl')");
    assert!(insert.is_err(), "a label outside the enum is refused");
    let _ = std::fs::remove_file(cfg);
}

const BAD: &str = "
SET SESSION sql_mode = '';
CREATE TABLE bad (
  id int PRIMARY KEY, d date NOT NULL, dn date, j json, e enum('x','y'), t text, tm time,
  l varchar(10) CHARACTER SET latin1, big bigint unsigned
);
INSERT INTO bad SELECT seq, '2024-01-01', '2024-01-02', '{\"ok\": true}', 'x', 'fine', '01:00:00',
  'abc', 18446744073709551615 FROM seq_1_to_20;
UPDATE bad SET d = '0000-00-00' WHERE id = 3;
UPDATE bad SET d = '2020-00-15' WHERE id = 4;
UPDATE bad SET dn = '0000-00-00' WHERE id = 5;
UPDATE bad SET j = '{\"a\": \"\\\\u0000\"}' WHERE id = 6;
INSERT IGNORE INTO bad VALUES (21, '2024-01-01', NULL, NULL, 'nope', 'x', '00:00:00', 'a', 1);
UPDATE bad SET t = CONCAT('a', CHAR(0), 'b') WHERE id = 8;
UPDATE bad SET tm = '838:59:59' WHERE id = 9;
UPDATE bad SET l = CONVERT(UNHEX('809F') USING latin1) WHERE id = 10;
";

#[test]
fn bad_values_reject_only_their_rows_and_the_counts_add_up() {
    let my = MyDb::new("mybad");
    my.exec(BAD);
    assert_eq!(
        my.query("SELECT e FROM bad WHERE id = 21"),
        "",
        "INSERT IGNORE stored ''"
    );
    let pg = TestDb::new("mybad_dst");
    let out = copy(&my, &pg, &["--chunk-rows", "5000"]);
    assert!(out.status.success(), "{}", describe(&out));
    let source_rows: u64 = my.query("SELECT count(*) FROM bad").parse().unwrap();
    let copied: u64 = pg.query("SELECT count(*) FROM bad").parse().unwrap();
    let rejected: u64 = pg
        .query("SELECT count(*) FROM howdah.rejects")
        .parse()
        .unwrap();
    assert_eq!(source_rows, 21);
    assert_eq!(
        copied + rejected,
        source_rows,
        "every source row is copied or rejected"
    );
    let rejects = pg.query(
        "SELECT key || ' ' || column_name || ' ' || reason FROM howdah.rejects ORDER BY key",
    );
    for (key, col, reason) in [
        ("id=21", "e", "'' is not"),
        ("id=6", "j", "\\u0000"),
        ("id=8", "t", "NUL byte"),
        ("id=9", "tm", "interval"),
    ] {
        assert!(
            rejects
                .lines()
                .any(|l| l.starts_with(&format!("{key} {col} ")) && l.contains(reason)),
            "no reject {key} {col} ({reason}) in:\n{rejects}"
        );
    }
    assert_eq!(rejected, 4, "{rejects}");
    // Not bad: a zero date becomes NULL, in a NOT NULL column too (created nullable, as it
    // holds some); cp1252 bytes in latin1 decode.
    assert_eq!(
        pg.query("SELECT string_agg(id || ':' || coalesce(d::text, 'NULL') || ':' || coalesce(dn::text, 'NULL'), ',' ORDER BY id) FROM bad WHERE id IN (3, 4, 5)"),
        "3:NULL:2024-01-02,4:NULL:2024-01-02,5:2024-01-01:NULL"
    );
    assert_eq!(pg.query("SELECT l FROM bad WHERE id = 10"), "€Ÿ");
    assert_eq!(
        pg.query("SELECT DISTINCT big FROM bad"),
        "18446744073709551615"
    );
    // The value is recorded, cut and with NUL shown as \0.
    assert_eq!(
        pg.query("SELECT value FROM howdah.rejects WHERE key = 'id=8'"),
        "a\\0b"
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("public.bad"), "{summary}");
    let line = summary
        .lines()
        .find(|l| l.starts_with("public.bad"))
        .unwrap_or_default();
    assert!(
        line.trim_end().ends_with(" 4"),
        "the summary counts the rejects: {line}"
    );

    // Policies: zero dates become a chosen date, NUL bytes are stripped.
    let pg2 = TestDb::new("mybad_dst2");
    let cfg = job_file(
        "policies",
        "[mysql]\nzero_dates = \"1970-01-01\"\nnul_bytes = \"strip\"\n",
    );
    let out = copy(&my, &pg2, &["--config", &cfg]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        pg2.query("SELECT string_agg(id || ':' || d || ':' || coalesce(dn::text, '-'), ',' ORDER BY id) FROM bad WHERE id IN (3, 4, 5)"),
        "3:1970-01-01:2024-01-02,4:1970-01-01:2024-01-02,5:2024-01-01:1970-01-01"
    );
    assert_eq!(pg2.query("SELECT t FROM bad WHERE id = 8"), "ab");
    assert_eq!(pg2.query("SELECT count(*) FROM howdah.rejects"), "3");
    let _ = std::fs::remove_file(cfg);
}

#[test]
fn resume_after_a_kill_reads_mysql_from_the_last_key() {
    let my = MyDb::new("myresume");
    my.exec(
        "CREATE TABLE big (id bigint PRIMARY KEY, v varchar(64), n int);
         INSERT INTO big SELECT seq, MD5(seq), seq % 100 FROM seq_1_to_300000;
         CREATE TABLE words (w varchar(40) PRIMARY KEY, n int);
         INSERT INTO words SELECT CONCAT('w', LPAD(seq, 7, '0')), seq FROM seq_1_to_50000;",
    );
    let pg = TestDb::new("myresume_dst");
    let spawn = || {
        Howdah::copy(&my.url(), &pg.url())
            .args([
                "--jobs",
                "2",
                "--chunk-rows",
                "40000",
                "--commit-rows",
                "5000",
            ])
            .spawn()
    };
    let mut child = spawn();
    let started = std::time::Instant::now();
    loop {
        let committed = if pg.query("SELECT to_regclass('howdah.chunks') IS NOT NULL") == "t" {
            pg.query("SELECT coalesce(sum(rows_done), 0) FROM howdah.chunks")
        } else {
            String::new()
        };
        if committed.parse::<u64>().unwrap_or(0) > 30000 || started.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let out = spawn().wait_with_output().expect("resume");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        pg.query("SELECT count(*), count(DISTINCT id), sum(n) FROM big"),
        "300000|300000|14850000"
    );
    assert_eq!(
        pg.query("SELECT count(*), min(w), max(w) FROM words"),
        "50000|w0000001|w0050000"
    );
    assert_eq!(
        pg.query("SELECT md5(string_agg(v, ',' ORDER BY id)) = md5(string_agg(md5(id::text), ',' ORDER BY id)) FROM big"),
        "t"
    );
}

#[test]
fn mysql_connection_errors_are_clear_and_keep_the_password() {
    let pg = TestDb::new("myerr_dst");
    let run = |source: &str| {
        Howdah::copy(source, &pg.url())
            .env("RUST_LOG", "howdah=trace")
            .run()
    };
    let secret = "my-pw-sentinel-42";
    for (url, code, needle) in [
        (
            format!("mysql://root:{secret}@127.0.0.1:3306/mysql"),
            3,
            "Access denied",
        ),
        (
            format!("mysql://root:{secret}@127.0.0.1:1/x"),
            3,
            "cannot connect to source mysql://root@127.0.0.1:1/x",
        ),
        (
            "mysql://root@127.0.0.1:3306/howdah_test_no_such_db".to_string(),
            3,
            "howdah_test_no_such_db",
        ),
        (
            format!("mariadb://root:{secret}@127.0.0.1/x?ssl-mode=sometimes"),
            2,
            "invalid ssl-mode",
        ),
    ] {
        let out = run(&url);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "{url}: {}", describe(&out));
        assert!(
            all.contains(needle),
            "{url}: no \"{needle}\" in {}",
            describe(&out)
        );
        assert!(!all.contains(secret), "{url}: the password was printed");
    }
}

#[test]
fn spatial_columns_become_postgis_geometry_when_the_target_has_it() {
    let my = MyDb::new("mygis");
    my.exec(
        "CREATE TABLE places (id int PRIMARY KEY, p point, area polygon, g geometry);
         INSERT INTO places VALUES
          (1, ST_GeomFromText('POINT(1 2)', 4326),
              ST_GeomFromText('POLYGON((0 0, 4 0, 4 4, 0 4, 0 0))', 4326),
              ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0)')),
          (2, NULL, NULL, NULL);",
    );
    let pg = TestDb::new("mygis_dst");
    pg.exec("CREATE EXTENSION postgis");
    let out = copy(&my, &pg, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        pg.query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'places'::regclass AND attname = 'p'"),
        "geometry"
    );
    assert_eq!(
        pg.query("SELECT ST_AsText(p), ST_SRID(p), ST_Area(area), ST_SRID(area), ST_AsText(g) FROM places WHERE id = 1"),
        "POINT(1 2)|4326|16|4326|LINESTRING(0 0,1 1,2 0)"
    );
    assert_eq!(pg.query("SELECT count(*) FROM places WHERE p IS NULL"), "1");
    // Without PostGIS, the same columns arrive as WKB bytea.
    let plain = TestDb::new("mygis_plain");
    let out = copy(&my, &plain, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        plain.query("SELECT encode(p, 'hex') FROM places WHERE id = 1"),
        "0101000000000000000000f03f0000000000000040"
    );
}
