//! PostgreSQL versions: the upgrade direction (15 -> 16) and back (16 -> 15), copy and verify,
//! every type of the all-types fixture arriving with the same values after both legs.
//!
//! PostgreSQL 15 is the machine's server; PostgreSQL 16 is a cluster of the test's own, from
//! the PyPI package pgserver (scripts/test.sh installs it).

use crate::cluster::Cluster;
use crate::support::{assert_same_ordered, assert_success, Howdah, TestDb};

fn copy_and_verify(source: &str, target: &str, what: &str) {
    let out = Howdah::copy(source, target)
        .args(["--jobs", "2", "--chunk-rows", "1000"])
        .run();
    assert_success(&out, &format!("copy {what}"));
    let out = Howdah::new("verify")
        .args(["--source", source, "--target", target, "--jobs", "2"])
        .run();
    assert_success(&out, &format!("verify {what}"));
}

#[test]
fn every_type_copies_and_verifies_from_15_to_16_and_back() {
    let src = TestDb::new("v15_src");
    src.exec(include_str!("fixtures/all_types.sql"));
    // pgserver's PostgreSQL 16 is built without libxml: it cannot hold an xml value at all.
    src.exec("ALTER TABLE all_types DROP COLUMN c_xml");
    // PostgreSQL 16's binary input refuses the empty tsquery that 15 sends ("malformed tsquery:
    // operand not found"); the README lists it under the upgrade's known limits.
    src.exec("UPDATE all_types SET c_tsquery = NULL WHERE c_tsquery::text = ''");
    let pg16 = Cluster::pg16();
    let mid = pg16.db("mid");
    assert!(
        mid.query("SHOW server_version").starts_with("16."),
        "the middle cluster runs PostgreSQL 16"
    );
    copy_and_verify(&src.url(), &mid.url(), "from 15 into 16");
    let back = TestDb::new("v15_back");
    copy_and_verify(&mid.url(), &back.url(), "from 16 back into 15");

    // The same rows and the same column types after both legs, byte for byte where it matters.
    assert_same_ordered(
        &src,
        &back,
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute \
         WHERE attrelid = 'all_types'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    );
    assert_same_ordered(
        &src,
        &back,
        "SELECT md5(string_agg(t::text, E'\\n' ORDER BY id)), count(*) FROM all_types t",
    );
    assert_same_ordered(
        &src,
        &back,
        "SELECT id, md5(c_bytea), float8send(c_double), float4send(c_real) FROM all_types ORDER BY id",
    );
}
