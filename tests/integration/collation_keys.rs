//! Keyset ranges compare keys as the key's unique index does. A column with a nondeterministic
//! (case-insensitive) collation, made unique by an index `COLLATE "C"`, holds `tag1` and `TAG1`
//! as two keys; compared in the column's collation they are equal, so a resume after a
//! checkpoint on `tag1` (`WHERE name > 'tag1'`) skipped `TAG1` when it had not been sent.

use std::time::Duration;

use crate::held;
use crate::support::{assert_same, describe, Howdah, TestDb};

const CI: &str =
    "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);";

/// Eight case variants of each tag (`tag000001` .. `TAG000001`), equal in `ci`, distinct in
/// "C"; rows of one width, so every batch holds the same number of rows and the first
/// checkpoint falls inside a group of equals.
const TAGS: &str = "
    CREATE TABLE tags (name text COLLATE ci NOT NULL, v int NOT NULL, pad text);
    CREATE UNIQUE INDEX tags_name_c ON tags (name COLLATE \"C\");";

#[test]
fn keys_unique_under_the_index_collation_resume_without_skipping_rows() {
    let src = TestDb::new("collkey_src");
    src.exec(&format!(
        "{CI} {TAGS}
         INSERT INTO tags SELECT
             CASE WHEN m & 1 = 1 THEN 'T' ELSE 't' END || CASE WHEN m & 2 = 2 THEN 'A' ELSE 'a' END
               || CASE WHEN m & 4 = 4 THEN 'G' ELSE 'g' END || lpad(n::text, 6, '0'),
             n * 8 + m, repeat('x', 80)
           FROM generate_series(1, 5000) n, generate_series(0, 7) m;
         ANALYZE tags;"
    ));
    let dst = TestDb::new("collkey_dst");
    dst.exec(&format!("{CI} {TAGS}"));
    // Hold the copy once its first batch is committed.
    held::install(
        &dst,
        "tags",
        "EXISTS (SELECT 1 FROM howdah.chunks WHERE commits > 0)",
    );
    let job = crate::support::job_file("collkey", "[copy]\nbatch_bytes = 65536\n");
    let args = ["--jobs", "1", "--commit-rows", "1000", "--config", &job];
    let mut first = held::spawn_copy(&src, &dst, &args);
    held::wait_for(
        &dst,
        "SELECT EXISTS (SELECT 1 FROM howdah.chunks WHERE commits > 0)",
        &mut first,
        Duration::from_secs(60),
    );
    held::kill(&mut first, &dst, "tags");
    let committed: i64 = dst
        .query("SELECT count(*) FROM tags")
        .parse()
        .expect("a count");
    assert!(
        committed > 0 && committed < 40_000,
        "the first run must stop part-way, after one commit: {committed} rows"
    );

    let out = held::spawn_copy(&src, &dst, &args)
        .wait_with_output()
        .expect("wait for the resumed copy");
    assert!(out.status.success(), "resume failed\n{}", describe(&out));
    assert_same(&src, &dst, "SELECT name, v, pad FROM tags");
}

/// A unique index under an operator class that is not its type's default btree one orders
/// and compares otherwise than the predicates would: the table is not cut by that key.
#[test]
fn an_index_with_another_operator_class_is_no_chunk_key() {
    let src = TestDb::new("opclass_src");
    src.exec(&format!(
        "{CI} {TAGS}
         CREATE TABLE pat (name text NOT NULL, v int);
         CREATE UNIQUE INDEX pat_name ON pat (name text_pattern_ops);
         CREATE TABLE both_ (name text NOT NULL);
         CREATE UNIQUE INDEX both_a ON both_ (name text_pattern_ops);
         CREATE UNIQUE INDEX both_b ON both_ (name);"
    ));
    let dst = TestDb::new("opclass_dst");
    let file = std::env::temp_dir().join(format!("howdah-opclass-{}.json", std::process::id()));
    let (out, _) = Howdah::new("plan")
        .args(["--source", &src.url(), "--target", &dst.url()])
        .args(["--format", "json", "--output", &file.display().to_string()])
        .run_timeout(Duration::from_secs(60));
    crate::support::assert_success(&out, "howdah plan");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read the plan"))
            .expect("json");
    let _ = std::fs::remove_file(&file);
    let key = |table: &str| {
        let tables = plan
            .pointer("/strategy/tables")
            .or_else(|| plan.get("tables"));
        let found = tables
            .and_then(|t| t.as_array())
            .and_then(|t| t.iter().find(|x| x["target"] == table))
            .unwrap_or_else(|| panic!("{table} in the plan: {plan}"));
        found["key"].clone()
    };
    assert_eq!(key("public.pat"), serde_json::Value::Null);
    assert_eq!(key("public.both_"), serde_json::json!(["name"]));
    assert_eq!(key("public.tags"), serde_json::json!(["name"]));
}
