//! `--schema existing` against target columns of other types: binary COPY does not convert,
//! it hands the bytes to the target type's receive function, so a same-width type of another
//! meaning would load silently (time as timestamp, integer as oid, bigint as money). Every
//! column whose type differs from what the copy sends is refused, by name; spellings of the
//! same type and widenings that keep every value load.

use std::process::Output;

use crate::support::{assert_error, assert_same, assert_success, Howdah, TestDb};

fn copy_existing(src: &TestDb, dst: &TestDb) -> Output {
    Howdah::copy(&src.url(), &dst.url())
        .args(["--schema", "existing", "-q"])
        .run()
}

#[test]
fn existing_columns_of_another_type_are_refused_by_name() {
    let src = TestDb::new("extype_src");
    src.exec(
        "CREATE TABLE m (id int PRIMARY KEY, t time, n integer, amt bigint, d date);
         INSERT INTO m VALUES (1, '10:30:00', -1, 1234, '2024-01-01'), (2, '23:59:59.5', 42, 100, NULL);",
    );
    let dst = TestDb::new("extype_dst");
    dst.exec("CREATE TABLE m (id int PRIMARY KEY, t timestamp, n oid, amt money, d date)");
    let out = copy_existing(&src, &dst);
    let msg = assert_error(&out, 2, "target columns of other types");
    for expected in [
        "public.m.t is timestamp without time zone on the target but time without time zone from the source",
        "public.m.n is oid on the target but integer from the source",
        "public.m.amt is money on the target but bigint from the source",
        "ALTER TABLE \"public\".\"m\" ALTER COLUMN \"t\" TYPE time without time zone",
    ] {
        assert!(msg.contains(expected), "missing {expected:?} in: {msg}");
    }
    assert!(!msg.contains("public.m.d "), "date is the same type: {msg}");
    assert_eq!(dst.query("SELECT count(*) FROM m"), "0");
}

#[test]
fn existing_columns_of_the_same_or_a_wider_type_load() {
    let src = TestDb::new("exwide_src");
    src.exec(
        "CREATE TABLE w (id int4 PRIMARY KEY, v varchar(10), n numeric(8,2), ts timestamp(3),
           tz timestamptz(0), a int[], b varchar(5)[]);
         INSERT INTO w VALUES (1, 'abc', 123456.78, '2024-01-01 10:00:00.123', '2024-01-01 10:00:01+00',
           '{1,2}', '{x,yy}'), (2, NULL, NULL, NULL, NULL, NULL, NULL);",
    );
    let dst = TestDb::new("exwide_dst");
    dst.exec(
        "CREATE TABLE w (id integer PRIMARY KEY, v text, n numeric(12,2), ts timestamp,
           tz timestamp(3) with time zone, a integer[], b character varying(9)[])",
    );
    let out = copy_existing(&src, &dst);
    assert_success(&out, "spellings and widenings of the same types");
    assert_same(&src, &dst, "SELECT * FROM w");
}
