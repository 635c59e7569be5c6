//! Schemas that failed on real databases: objects that depend on each other across kinds
//! (functions over tables' row types, defaults and domain checks calling functions, views over
//! functions), user-defined collations, foreign keys that the copied data violates, and MySQL
//! zero dates in NOT NULL columns. Each is copied by the real binary, and the target must then
//! behave as the source does: the same functions return the same rows.

use std::process::Output;
use std::time::Duration;

use crate::schema::assert_same_dump;
use crate::support::{assert_success, howdah_with, TestDb};

const TIMEOUT: Duration = Duration::from_secs(120);

fn copy(source: &str, dst: &TestDb, extra: &[&str]) -> Output {
    let dst_url = dst.url();
    let mut args = vec!["copy", "--source", source, "--target", &dst_url];
    args.extend_from_slice(extra);
    howdah_with(&args, &[], TIMEOUT).0
}

/// Runs each query on both databases and asserts the same output, naming the query.
#[track_caller]
fn same_answers(src: &TestDb, dst: &TestDb, queries: &[&str]) {
    for q in queries {
        assert_eq!(
            src.query(q),
            dst.query(q),
            "the two databases answer differently: {q}"
        );
    }
}

#[test]
fn functions_over_row_types_views_and_domains_copy_and_behave_the_same() {
    let src = TestDb::new("rowtypes_src");
    let dst = TestDb::new("rowtypes_dst");
    src.exec(include_str!("fixtures/row_types.sql"));

    // The plan's rollback SQL, read before the copy, must undo it despite the dependencies.
    let (dst_url, src_url) = (dst.url(), src.url());
    let plan = howdah_with(
        &[
            "plan", "--source", &src_url, "--target", &dst_url, "--format", "json",
        ],
        &[],
        TIMEOUT,
    )
    .0;
    assert_success(&plan, "plan of a schema with functions over row types");
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let rollback = plan["execution"]["rollback_sql"]
        .as_str()
        .unwrap()
        .to_string();

    let out = copy(&src.url(), &dst, &["--quiet"]);
    assert_success(&out, "copy of a schema with functions over row types");
    assert_same_dump(&src, &dst);

    same_answers(
        &src,
        &dst,
        &[
            "SELECT * FROM shop.customer ORDER BY id",
            "SELECT * FROM shop.rich_customers(100)",
            "SELECT * FROM shop.boxed(100)",
            "SELECT shop.names_of(shop.all_customers()), shop.customer_count()",
            "SELECT shop.label(c), shop.amount_of(c.balance) FROM shop.customer c ORDER BY id",
            "SELECT * FROM report.rich ORDER BY id",
            "SELECT * FROM report.rich_labels ORDER BY 1",
            "SELECT * FROM report.rich_rows()",
            "SELECT n FROM report.rich_count",
            "SELECT * FROM shop.tagged ORDER BY id",
        ],
    );
    // Defaults, generated columns and the domain's sequence work on new rows alike.
    let writes = "WITH t AS (INSERT INTO shop.tagged (id) VALUES (3) RETURNING *), \
                  c AS (INSERT INTO shop.customer (id, name, score) VALUES (4, 'dee', 7) RETURNING *) \
                  SELECT t.*, c.* FROM t, c";
    same_answers(&src, &dst, &[writes]);
    assert_eq!(
        dst.query("SELECT code, double_score, ticket FROM shop.customer WHERE id = 4"),
        "C4|14|503"
    );
    // The domain's CHECK calls its function on the target too.
    let bad_sku =
        "DO $$ BEGIN INSERT INTO shop.item VALUES ('bad', 1); RAISE EXCEPTION 'accepted'; \
                   EXCEPTION WHEN check_violation THEN NULL; END $$";
    src.exec(bad_sku);
    dst.exec(bad_sku);

    dst.exec(&rollback);
    assert_eq!(
        dst.query(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('shop', 'report', 'howdah')"
        ),
        "0",
        "the rollback SQL removes everything the copy created:\n{rollback}"
    );
}

#[test]
fn user_collations_are_copied_before_what_uses_them() {
    let src = TestDb::new("coll_src");
    let dst = TestDb::new("coll_dst");
    src.exec(
        "CREATE SCHEMA app;
         CREATE COLLATION app.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
         COMMENT ON COLLATION app.ci IS 'case-insensitive';
         CREATE COLLATION public.german (provider = libc, locale = 'C');
         CREATE DOMAIN app.ci_text AS text COLLATE app.ci;
         CREATE TABLE app.tags (id int PRIMARY KEY, name text COLLATE app.ci NOT NULL, code app.ci_text,
                                plain text COLLATE public.german);
         CREATE UNIQUE INDEX tags_name ON app.tags (name);
         INSERT INTO app.tags VALUES (1, 'Tag', 'ABC', 'x'), (2, 'other', 'def', 'y');",
    );
    let out = copy(&src.url(), &dst, &["--quiet"]);
    assert_success(&out, "copy of tables using user collations");
    assert_same_dump(&src, &dst);
    same_answers(
        &src,
        &dst,
        &[
            "SELECT id FROM app.tags WHERE name = 'TAG'",
            "SELECT id FROM app.tags WHERE code = 'abc'",
            "SELECT obj_description('app.ci'::regcollation, 'pg_collation')",
        ],
    );
    // The unique index is case-insensitive on the target too.
    let dup = "DO $$ BEGIN INSERT INTO app.tags VALUES (3, 'TAG'); RAISE EXCEPTION 'accepted'; \
               EXCEPTION WHEN unique_violation THEN NULL; END $$";
    src.exec(dup);
    dst.exec(dup);
}

#[test]
fn objects_that_need_a_table_left_out_are_left_out_too() {
    let src = TestDb::new("rowtypes_sel_src");
    let dst = TestDb::new("rowtypes_sel_dst");
    src.exec(include_str!("fixtures/row_types.sql"));
    let out = copy(&src.url(), &dst, &["--tables", "shop.item"]);
    assert_success(
        &out,
        "copy of one table of a schema with functions over row types",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "function shop.rich_customers(min_amount numeric) not created: it needs table shop.customer"
        ) && stderr.contains("type shop.customer_box not created"),
        "the functions and types over the table left out are named\n{stderr}"
    );
    same_answers(&src, &dst, &["SELECT * FROM shop.item ORDER BY sku"]);
    assert_eq!(
        dst.query(
            "SELECT count(*) FROM pg_proc WHERE proname IN ('rich_customers', 'label', 'boxed', 'rich_rows')"
        ),
        "0"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_views WHERE schemaname = 'report'"),
        "0"
    );
}
