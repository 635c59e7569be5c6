//! Schemas that failed on real databases: objects that depend on each other across kinds
//! (functions over tables' row types, defaults and domain checks calling functions, views over
//! functions), user-defined collations, foreign keys that the copied data violates, and MySQL
//! zero dates in NOT NULL columns. Each is copied by the real binary, and the target must then
//! behave as the source does: the same functions return the same rows.

use std::process::Output;

use crate::schema::assert_same_dump;
use crate::support::{assert_error, assert_success, describe, job_file, Howdah, MyDb, TestDb};

fn copy(source: &str, dst: &TestDb, extra: &[&str]) -> Output {
    Howdah::copy(source, &dst.url()).args(extra).run()
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
    let plan = Howdah::new("plan")
        .args([
            "--source", &src_url, "--target", &dst_url, "--format", "json",
        ])
        .run();
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

    // --schema recreate drops what needs the tables (functions over their row types, the
    // default in the cycle) and creates it all again.
    let out = copy(&src.url(), &dst, &["--quiet", "--schema", "recreate"]);
    assert_success(&out, "recreate of a schema with functions over row types");
    assert_same_dump(&src, &dst);
    same_answers(&src, &dst, &["SELECT * FROM report.rich_rows()"]);

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

/// `howdah status --json` of the target's default job.
fn status_json(dst: &TestDb) -> serde_json::Value {
    let out = Howdah::new("status")
        .args(["--target", &dst.url(), "--json"])
        .run();
    assert_success(&out, "status");
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    jobs[0].clone()
}

/// Orphans: children whose parent is not on the target. The copy finishes every other step,
/// leaves the key NOT VALID, says so (exit 6), and so do `status` and `verify`; a rerun copies
/// nothing and validates the key once the orphans are fixed.
fn assert_key_left_not_valid(
    source: &str,
    dst: &TestDb,
    extra: &[&str],
    child: &str,
    constraint: &str,
    orphans: i64,
) {
    let out = copy(source, dst, extra);
    let err = assert_error(&out, 6, "copy whose rows violate a foreign key");
    assert!(
        err.contains(&format!(
            "foreign key {constraint} on {child} is NOT VALID: {orphans} row(s)"
        )) && err.contains("SELECT c.* FROM ONLY"),
        "the error names the key, its orphans and the query that lists them: {err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("total:"),
        "the summary is printed\n{stdout}"
    );
    assert_eq!(
        dst.query(&format!(
            "SELECT convalidated FROM pg_constraint WHERE conname = '{constraint}'"
        )),
        "f"
    );
    // The listing query (as recorded) finds exactly the orphans.
    let listing = dst.query(&format!(
        "SELECT orphans_query FROM howdah.invalid_keys WHERE constraint_name = '{constraint}'"
    ));
    assert_eq!(
        dst.query(&format!("SELECT count(*) FROM ({listing}) o")),
        orphans.to_string()
    );
    let status = status_json(dst);
    assert_eq!(status["phase"], "done");
    assert_eq!(status["invalid_foreign_keys"][0]["constraint"], constraint);
    assert_eq!(status["invalid_foreign_keys"][0]["orphans"], orphans);
    let text = Howdah::new("status").args(["--target", &dst.url()]).run();
    assert!(String::from_utf8_lossy(&text.stdout)
        .contains(&format!("foreign key {constraint} on {child} is NOT VALID")));

    // The same command again: nothing is copied, the same report, the same exit code.
    let chunks = "SELECT string_agg(rows_done || '/' || commits, ',' ORDER BY table_no, chunk_no) FROM howdah.chunks";
    let before = dst.query(chunks);
    let again = copy(source, dst, extra);
    let err2 = assert_error(&again, 6, "rerun with the orphans still there");
    assert!(err2.contains(&format!("{orphans} row(s)")), "{err2}");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing was copied again"),
        "{}",
        describe(&again)
    );
    assert_eq!(dst.query(chunks), before, "a rerun copies nothing");
}

/// After the orphans are fixed on the target, the same command validates the key: exit 0.
fn assert_rerun_validates(source: &str, dst: &TestDb, extra: &[&str], constraint: &str) {
    let out = copy(source, dst, extra);
    assert_success(&out, "rerun after fixing the orphans");
    assert!(String::from_utf8_lossy(&out.stdout).contains("they validate now"));
    assert_eq!(
        dst.query(&format!(
            "SELECT convalidated FROM pg_constraint WHERE conname = '{constraint}'"
        )),
        "t"
    );
    assert!(status_json(dst)["invalid_foreign_keys"]
        .as_array()
        .unwrap()
        .is_empty());
}

const PARENT_CHILD: &str = "
    CREATE TABLE parent (id int PRIMARY KEY, name text);
    CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent, note text);
    CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
    CREATE FUNCTION log_child() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN INSERT INTO audit (what) VALUES ('child ' || NEW.id); RETURN NEW; END $$;
    CREATE TRIGGER child_log AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION log_child();
    INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 10) g;
    INSERT INTO child (parent_id, note) SELECT 1 + g % 10, 'c' || g FROM generate_series(1, 100) g;";

#[test]
fn orphans_in_a_postgres_source_leave_the_key_not_valid() {
    let src = TestDb::new("orph_src");
    let dst = TestDb::new("orph_dst");
    src.exec(PARENT_CHILD);
    // Rows written while foreign keys were not enforced (a replica, a restore gone wrong).
    src.exec(
        "SET session_replication_role = replica; \
         INSERT INTO child (parent_id, note) VALUES (98, 'orphan'), (99, 'orphan'), (NULL, 'no parent')",
    );
    assert_key_left_not_valid(
        &src.url(),
        &dst,
        &["--quiet"],
        "public.child",
        "child_parent_id_fkey",
        2,
    );
    // Every other final step ran: the trigger exists, the sequence is set.
    assert_eq!(dst.query("SELECT count(*) FROM child"), "103");
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_trigger WHERE tgname = 'child_log'"),
        "1"
    );
    assert_eq!(dst.query("SELECT nextval('child_id_seq')"), "104");
    // verify: the rows are equal, and the table carries a note about the key.
    let (src_url, dst_url) = (src.url(), dst.url());
    let v = Howdah::new("verify")
        .args(["--source", &src_url, "--target", &dst_url])
        .run();
    assert_success(&v, "verify of a copy with a NOT VALID foreign key");
    assert!(
        String::from_utf8_lossy(&v.stdout).contains(
            "note: foreign key child_parent_id_fkey on public.child is NOT VALID: 2 row(s)"
        ),
        "{}",
        describe(&v)
    );

    dst.exec("DELETE FROM child WHERE parent_id > 10");
    assert_rerun_validates(&src.url(), &dst, &["--quiet"], "child_parent_id_fkey");
}

#[test]
fn rows_a_filter_leaves_out_leave_the_key_not_valid() {
    let src = TestDb::new("orphw_src");
    let dst = TestDb::new("orphw_dst");
    src.exec(PARENT_CHILD);
    let job = job_file(
        "orphans_where",
        "[[table]]\nname = \"public.parent\"\nwhere = \"id <= 8\"\n",
    );
    let extra = ["--quiet", "--config", job.as_str()];
    // Parents 9 and 10 stay behind: their 20 children become orphans.
    assert_key_left_not_valid(
        &src.url(),
        &dst,
        &extra,
        "public.child",
        "child_parent_id_fkey",
        20,
    );
    dst.exec("INSERT INTO parent VALUES (9, 'p9'), (10, 'p10')");
    assert_rerun_validates(&src.url(), &dst, &extra, "child_parent_id_fkey");
}

#[test]
fn orphans_in_a_mariadb_source_leave_the_key_not_valid() {
    let my = MyDb::new("orph_my");
    let dst = TestDb::new("orph_mydst");
    my.exec(
        "CREATE TABLE parent (id int PRIMARY KEY, name varchar(20)) ENGINE=InnoDB;
         CREATE TABLE child (id int AUTO_INCREMENT PRIMARY KEY, parent_id int, note varchar(20),
           CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id)) ENGINE=InnoDB;
         INSERT INTO parent VALUES (1, 'a'), (2, 'b');
         INSERT INTO child (parent_id, note) VALUES (1, 'x'), (2, 'y');
         SET foreign_key_checks = 0;
         INSERT INTO child (parent_id, note) VALUES (7, 'orphan'), (7, 'orphan'), (8, 'orphan');
         SET foreign_key_checks = 1;",
    );
    assert_key_left_not_valid(
        &my.url(),
        &dst,
        &["--quiet"],
        "public.child",
        "fk_child_parent",
        3,
    );
    assert_eq!(dst.query("SELECT count(*) FROM child"), "5");
    dst.exec("INSERT INTO parent VALUES (7, 'g'), (8, 'h')");
    assert_rerun_validates(&my.url(), &dst, &["--quiet"], "fk_child_parent");
}

/// MariaDB rows with zero dates in NOT NULL columns, written under a permissive sql_mode as
/// old applications did, and dates in year 0000 that are real dates (month and day set).
const ZERO_DATES: &str = "
    SET sql_mode = '';
    CREATE TABLE author (
      id int PRIMARY KEY,
      name varchar(20) NOT NULL,
      created datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
      born date NOT NULL,
      seen date NOT NULL DEFAULT '0000-00-00',
      legacy date NULL,
      first_day date NULL DEFAULT '0000-01-01',
      first_at datetime(3) NULL
    ) ENGINE=InnoDB;
    CREATE TABLE book (id int PRIMARY KEY, author_id int NOT NULL, title varchar(20),
      CONSTRAINT fk_book_author FOREIGN KEY (author_id) REFERENCES author (id)) ENGINE=InnoDB;
    INSERT INTO author VALUES
      (1, 'ann', '0000-00-00 00:00:00', '1970-01-01', '2020-05-00', NULL, '0000-01-01', '0000-06-15 10:00:00.250'),
      (2, 'bob', '2024-01-02 03:04:05', '1980-02-29', '0000-00-00', '0000-00-00', '0000-02-28', NULL),
      (3, 'cy', '2024-05-06 07:08:09', '1990-12-31', '2024-01-01', '2024-01-01', NULL, '2024-01-01 00:00:00');
    INSERT INTO author (id, name, born) VALUES (4, 'dee', '2000-01-01');
    INSERT INTO book VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c'), (4, 4, 'd');";

#[test]
fn zero_dates_in_not_null_columns_arrive_as_null_by_default() {
    let my = MyDb::new("zero_my");
    my.exec(ZERO_DATES);
    let dst = TestDb::new("zero_dst");
    let (my_url, dst_url) = (my.url(), dst.url());

    // The plan counts them and says what happens.
    let plan = Howdah::new("plan")
        .args([
            "--source", &my_url, "--target", &dst_url, "--format", "json",
        ])
        .run();
    assert_success(&plan, "plan");
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let probe = |column: &str, check: &str| {
        plan["data"]["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["column"] == column && p["check"] == check)
            .cloned()
            .unwrap_or_else(|| panic!("no {check} probe of {column}"))
    };
    let created = probe("created", "zero_dates");
    assert_eq!(created["count"], 2, "{created}");
    assert!(
        created["consequence"]
            .as_str()
            .unwrap()
            .contains("created nullable"),
        "{created}"
    );
    assert_eq!(probe("seen", "zero_dates")["count"], 3);
    assert_eq!(probe("first_day", "year_zero")["count"], 3);

    // The dry run names the columns created nullable.
    let dry = copy(&my_url, &dst, &["--dry-run"]);
    assert_success(&dry, "dry run");
    let dry_text = String::from_utf8_lossy(&dry.stdout);
    for column in ["created", "born", "seen"] {
        assert!(
            dry_text.contains(&format!(
                "zero dates: public.author.{column} is NOT NULL on the source"
            )),
            "{dry_text}"
        );
    }

    let out = copy(&my_url, &dst, &["--quiet"]);
    assert_success(&out, "copy with zero dates in NOT NULL columns");
    assert_eq!(
        dst.query("SELECT count(*) FROM author"),
        "4",
        "every row arrives"
    );
    assert_eq!(dst.query("SELECT count(*) FROM book"), "4");
    assert_eq!(dst.query("SELECT count(*) FROM howdah.rejects"), "0");
    assert_eq!(
        dst.query(
            "SELECT id, created, born, seen, legacy, first_day, first_at FROM author ORDER BY id"
        ),
        "1||1970-01-01|||0001-01-01 BC|0001-06-15 10:00:00.25 BC\n\
         2|2024-01-02 03:04:05|1980-02-29|||0001-02-28 BC|\n\
         3|2024-05-06 07:08:09|1990-12-31|2024-01-01|2024-01-01||2024-01-01 00:00:00\n\
         4||2000-01-01|||0001-01-01 BC|"
    );
    // Columns that received a zero date stay nullable; the clean one is NOT NULL again.
    assert_eq!(
        dst.query(
            "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = 'author'::regclass \
             AND attname IN ('created', 'born', 'seen') ORDER BY attname"
        ),
        "born|t\ncreated|f\nseen|f"
    );
    assert_eq!(
        dst.query(
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'author'::regclass"
        ),
        "'0001-01-01 BC'::date",
        "the zero-date defaults are dropped, the year-0000 one kept"
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    for line in [
        "zero dates loaded as NULL: public.author.created: 2 row(s)",
        "zero dates loaded as NULL: public.author.seen: 3 row(s)",
    ] {
        assert!(summary.contains(line), "{summary}");
    }
    assert!(!summary.contains("public.author.born"), "{summary}");
    let v = Howdah::new("verify")
        .args(["--source", &my_url, "--target", &dst_url])
        .run();
    assert_success(&v, "verify after a copy that loaded zero dates as NULL");
}

#[test]
fn zero_dates_reject_and_fixed_date_stay_options() {
    let my = MyDb::new("zero_opt_my");
    my.exec(ZERO_DATES);
    let my_url = my.url();

    // A fixed date: every row, the columns stay NOT NULL.
    let dst = TestDb::new("zero_fix_dst");
    let job = job_file("zero_fixed", "[mysql]\nzero_dates = \"1970-01-01\"\n");
    let out = copy(&my_url, &dst, &["--quiet", "--config", &job]);
    assert_success(&out, "copy with zero_dates = a date");
    assert_eq!(
        dst.query(
            "SELECT string_agg(id || ':' || created || ':' || seen, ',' ORDER BY id) FROM author"
        ),
        "1:1970-01-01 00:00:00:1970-01-01,2:2024-01-02 03:04:05:1970-01-01,\
         3:2024-05-06 07:08:09:2024-01-01,4:1970-01-01 00:00:00:1970-01-01"
    );
    assert_eq!(
        dst.query("SELECT bool_and(attnotnull) FROM pg_attribute WHERE attrelid = 'author'::regclass AND attname IN ('created', 'seen')"),
        "t"
    );

    // reject: the rows with zero dates are rejected (with their reason), the columns stay
    // NOT NULL, and the books of the rejected authors leave their key NOT VALID (exit 6).
    let dst = TestDb::new("zero_rej_dst");
    let job = job_file("zero_reject", "[mysql]\nzero_dates = \"reject\"\n");
    let out = copy(&my_url, &dst, &["--quiet", "--config", &job]);
    assert_error(&out, 6, "copy with zero_dates = reject");
    assert_eq!(
        dst.query("SELECT string_agg(id::text, ',' ORDER BY id) FROM author"),
        "3"
    );
    assert_eq!(
        dst.query(
            "SELECT string_agg(key || ' ' || column_name, ',' ORDER BY key) FROM howdah.rejects"
        ),
        "id=1 created,id=2 seen,id=4 created"
    );
}
