//! `howdah copy` end to end: real binary, real source and target databases.

use crate::support::{
    assert_error, assert_same, assert_same_ordered, assert_success, describe, Howdah, TestDb,
};

/// Runs `howdah copy --source <src> --target <dst> <extra...>`.
fn copy(src: &TestDb, dst: &TestDb, extra: &[&str]) -> std::process::Output {
    Howdah::copy(&src.url(), &dst.url()).args(extra).run()
}

/// Runs a copy and panics with the binary's output unless it succeeded.
#[track_caller]
fn copy_ok(src: &TestDb, dst: &TestDb, extra: &[&str]) -> std::process::Output {
    let out = copy(src, dst, extra);
    assert_success(&out, &format!("howdah copy {}", extra.join(" ")));
    out
}

/// Names of the columns of `table` whose values differ between source and target (rows
/// ordered by `order_by`), for a precise failure message.
fn differing_columns(src: &TestDb, dst: &TestDb, table: &str, order_by: &str) -> Vec<String> {
    let cols = src.query(&format!(
        "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = '{table}'::regclass \
         AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
    ));
    let parts: Vec<String> = cols
        .lines()
        .map(|c| {
            format!(
                "SELECT {lit}, md5(string_agg(coalesce(t.{c}::text, '<NULL>'), '|' ORDER BY {order_by})) \
                 FROM {table} t",
                lit = sql_literal(c)
            )
        })
        .collect();
    let sql = parts.join(" UNION ALL ");
    let sorted = |db: &TestDb| {
        let mut v: Vec<String> = db.query(&sql).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let (a, b) = (sorted(src), sorted(dst));
    a.iter()
        .filter(|x| !b.contains(x))
        .map(|x| x.split('|').next().unwrap_or_default().to_string())
        .collect()
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Row text of `table` ordered by id; the generated copies (id > 100) and very long rows are
/// replaced by their md5.
fn rows_text_sql(table: &str) -> String {
    format!(
        "SELECT id, CASE WHEN id > 100 OR length(t::text) > 200000 THEN 'md5:' || md5(t::text) || ' len:' || \
         length(t::text) ELSE t::text END FROM {table} t ORDER BY id"
    )
}

#[test]
fn round_trip_every_type() {
    let src = TestDb::new("types_src");
    let dst = TestDb::new("types_dst");
    src.exec(include_str!("fixtures/all_types.sql"));

    // 1000 is the smallest chunk size the binary accepts; 2927 rows give 3 chunks.
    copy_ok(&src, &dst, &["--chunk-rows", "1000", "--jobs", "2"]);

    // Types on the target: same column types, same enum labels in the same order, domain check.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute \
         WHERE attrelid = 'all_types'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    );
    assert_same_ordered(
        &src,
        &dst,
        "SELECT enumlabel FROM pg_enum WHERE enumtypid = 'mood'::regtype ORDER BY enumsortorder",
    );
    assert_same_ordered(
        &src,
        &dst,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE contypid = 'short_text'::regtype ORDER BY 1",
    );

    let count = dst.query("SELECT count(*) FROM all_types");
    assert_eq!(count, "2927", "row count on the target");

    let diff = differing_columns(&src, &dst, "all_types", "id");
    assert!(
        diff.is_empty(),
        "columns whose values differ after the copy: {diff:?}"
    );
    assert_same_ordered(&src, &dst, &rows_text_sql("all_types"));
    assert_same_ordered(
        &src,
        &dst,
        "SELECT md5(string_agg(t::text, E'\\n' ORDER BY id)), sum(length(t::text)) FROM all_types t",
    );
    // Exact bytes of the big bytea and of the binary-ish values.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT id, length(c_bytea), md5(c_bytea), c_real::float8::text, \
         float8send(c_double), float4send(c_real) FROM all_types ORDER BY id",
    );
}

#[test]
fn multi_table_chunked() {
    let src = TestDb::new("multi_src");
    let dst = TestDb::new("multi_dst");
    src.exec(include_str!("fixtures/multi_table.sql"));

    copy_ok(
        &src,
        &dst,
        &["--chunk-rows", "10000", "--jobs", "3", "--index-jobs", "2"],
    );

    for table in [
        "customers",
        "orders",
        "line_items",
        "text_key",
        "uuid_key",
        "no_key",
        "audit",
    ] {
        assert_same(&src, &dst, &format!("SELECT * FROM {table}"));
    }
    // Exact multiset for the no-key table, with duplicates counted.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT v, w, count(*) FROM no_key GROUP BY v, w ORDER BY v, w NULLS FIRST",
    );

    // Table shapes: columns, types, defaults (serial defaults point at the right sequence).
    assert_same_ordered(
        &src,
        &dst,
        "SELECT table_name, column_name, data_type, is_nullable, column_default \
         FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    );
    // Indexes: same names and definitions.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    );
    // Constraints: PK, unique, check, FK, with their definitions and validity.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT conrelid::regclass::text, conname, contype, convalidated, pg_get_constraintdef(oid) \
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    );
    let fk = dst.query(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conname = 'orders_customer_fk' AND contype = 'f'",
    );
    assert_eq!(
        fk, "FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE",
        "foreign key orders_customer_fk on the target"
    );

    // Sequences: values equal (last_value and is_called), owned-by links kept.
    for seq in [
        "customers_id_seq",
        "orders_id_seq",
        "audit_id_seq",
        "ticket_seq",
        "unused_seq",
    ] {
        assert_same_ordered(
            &src,
            &dst,
            &format!("SELECT last_value, is_called FROM {seq}"),
        );
    }
    assert_same_ordered(
        &src,
        &dst,
        "SELECT sequencename, start_value, increment_by, data_type FROM pg_sequences \
         WHERE schemaname = 'public' ORDER BY 1",
    );
    assert_same_ordered(
        &src,
        &dst,
        "SELECT pg_get_serial_sequence('orders', 'id'), pg_get_serial_sequence('customers', 'id')",
    );
    // nextval continues where the source stopped.
    assert_eq!(
        dst.query("SELECT nextval('ticket_seq')"),
        "4247",
        "nextval('ticket_seq') on the target"
    );
    assert_eq!(
        dst.query("SELECT nextval('unused_seq')"),
        "77",
        "nextval('unused_seq') on the target"
    );

    // Comments on tables, columns and views.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c \
         WHERE c.relnamespace = 'public'::regnamespace AND obj_description(c.oid, 'pg_class') IS NOT NULL \
         ORDER BY 1",
    );
    assert_same_ordered(
        &src,
        &dst,
        "SELECT c.relname, a.attname, col_description(c.oid, a.attnum) FROM pg_class c \
         JOIN pg_attribute a ON a.attrelid = c.oid \
         WHERE c.relnamespace = 'public'::regnamespace AND col_description(c.oid, a.attnum) IS NOT NULL \
         ORDER BY 1, 2",
    );

    // Views and the materialized view (populated, with the same data and its index).
    assert_same_ordered(
        &src,
        &dst,
        "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
    );
    assert_same(&src, &dst, "SELECT * FROM customer_totals");
    assert_same(&src, &dst, "SELECT * FROM big_customers");
    assert_same_ordered(
        &src,
        &dst,
        "SELECT matviewname, ispopulated, definition FROM pg_matviews WHERE schemaname = 'public' ORDER BY 1",
    );
    assert_same(&src, &dst, "SELECT * FROM daily_orders");

    // Triggers present, and not fired by the load: the audit table holds exactly the source's
    // four rows, and no order note was rewritten by the BEFORE trigger.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger \
         WHERE NOT tgisinternal ORDER BY 1",
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM audit"),
        "4",
        "audit rows on the target (trigger fired during load?)"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM orders WHERE note LIKE '%(fired)'"),
        "1",
        "orders rewritten by the BEFORE trigger on the target (only the source's one row expected)"
    );
    // The triggers work on the target after the copy.
    dst.exec("INSERT INTO orders (customer_id, amount, created_at) VALUES (4, 1, '2031-01-01 00:00:00+00')");
    assert_eq!(
        dst.query("SELECT count(*) FROM audit"),
        "5",
        "audit trigger after the copy"
    );
    // And the FK is enforced.
    let bad = dst
        .try_exec("INSERT INTO orders (customer_id, amount, created_at) VALUES (999999, 1, now())");
    assert!(
        bad.is_err(),
        "the foreign key is not enforced on the target"
    );
}

#[test]
fn partitions_and_inheritance() {
    let src = TestDb::new("parts_src");
    let dst = TestDb::new("parts_dst");
    src.exec(include_str!("fixtures/partitions.sql"));

    copy_ok(&src, &dst, &["--chunk-rows", "2000", "--jobs", "3"]);

    // Each row exactly once, in the same leaf.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT tableoid::regclass::text, count(*) FROM measurements GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM measurements"),
        "30000",
        "rows in measurements"
    );
    assert_same(&src, &dst, "SELECT tableoid::regclass, * FROM measurements");
    for leaf in [
        "measurements_2022",
        "measurements_2023",
        "measurements_other",
    ] {
        assert_same_ordered(&src, &dst, &format!("SELECT count(*) FROM ONLY {leaf}"));
    }
    assert_eq!(
        dst.query("SELECT count(*) FROM ONLY measurements"),
        "0",
        "rows stored in the partitioned parent"
    );

    assert_eq!(
        dst.query("SELECT count(*) FROM ONLY animals"),
        "1000",
        "rows in ONLY animals (parent)"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM ONLY dogs"),
        "2000",
        "rows in dogs"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM ONLY cats"),
        "500",
        "rows in cats"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM animals"),
        "3500",
        "rows in animals with children"
    );
    assert_same(&src, &dst, "SELECT tableoid::regclass, * FROM animals");
    assert_same(&src, &dst, "SELECT * FROM dogs");
    assert_same(&src, &dst, "SELECT * FROM cats");

    // Structure: partition bounds, inheritance links, indexes.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT c.relname, c.relkind, c.relispartition, pg_get_expr(c.relpartbound, c.oid), \
         pg_get_partkeydef(c.oid) FROM pg_class c \
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1",
    );
    assert_same_ordered(
        &src,
        &dst,
        "SELECT inhrelid::regclass::text, inhparent::regclass::text FROM pg_inherits \
         WHERE inhrelid IN (SELECT oid FROM pg_class WHERE relkind IN ('r', 'p')) ORDER BY 1, 2",
    );
    assert_same_ordered(
        &src,
        &dst,
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    );
}

#[test]
fn table_filters() {
    let src = TestDb::new("filter_src");
    src.exec(include_str!("fixtures/filters.sql"));
    let tables_sql = "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                      WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'howdah') ORDER BY 1";

    let dst = TestDb::new("filter_dst");
    copy_ok(
        &src,
        &dst,
        &["--tables", "public.*", "--exclude", "public.tmp_*"],
    );
    assert_eq!(
        dst.query(tables_sql),
        "public.orders\npublic.tmpxdata\npublic.users",
        "tables on the target after --tables 'public.*' --exclude 'public.tmp_*' \
         (`_` is literal in a glob: tmpxdata must be copied; other.users must not)"
    );
    for table in ["public.users", "public.orders", "public.tmpxdata"] {
        assert_same(&src, &dst, &format!("SELECT * FROM {table}"));
    }
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'public.orders'::regclass"),
        "1",
        "foreign key orders -> users on the target"
    );

    // Several --tables, with `?`; the exact set is copied.
    let dst2 = TestDb::new("filter_dst2");
    copy_ok(
        &src,
        &dst2,
        &["--tables", "public.users", "--tables", "public.ord?rs"],
    );
    assert_eq!(
        dst2.query(tables_sql),
        "public.orders\npublic.users",
        "tables on the target after --tables public.users --tables 'public.ord?rs'"
    );
    assert_same(&src, &dst2, "SELECT * FROM public.orders");
}

#[test]
fn schema_modes() {
    let src = TestDb::new("modes_src");
    src.exec(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 500) AS i; \
         CREATE TABLE extra (id int PRIMARY KEY); INSERT INTO extra VALUES (1), (2);",
    );

    // 1. Default (--schema create) refuses when a selected table exists and is not empty.
    let dst = TestDb::new("modes_dst");
    dst.exec("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items VALUES (999, 'keep me');");
    let out = copy(&src, &dst, &[]);
    let line = assert_error(&out, 1, "--schema create on a target where items exists");
    assert!(
        line.contains("items"),
        "the error must name the table items\n{}",
        describe(&out)
    );
    let lower = line.to_lowercase();
    assert!(
        lower.contains("exist") || lower.contains("not empty"),
        "the error must say the table already exists / is not empty\n{}",
        describe(&out)
    );
    assert!(
        line.contains("--schema existing") || line.contains("--schema recreate"),
        "the error must suggest --schema existing or --schema recreate\n{}",
        describe(&out)
    );
    assert_eq!(
        dst.query("SELECT * FROM items"),
        "999|keep me",
        "target row after the refused copy"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_class WHERE relname = 'extra'"),
        "0",
        "a refused copy must not create other tables on the target\n{}",
        describe(&out)
    );

    // 2. --schema existing without --truncate refuses a non-empty table.
    let out = copy(
        &src,
        &dst,
        &["--schema", "existing", "--tables", "public.items"],
    );
    let line = assert_error(&out, 1, "--schema existing into a non-empty items");
    assert!(
        line.contains("items"),
        "the error must name the table items\n{}",
        describe(&out)
    );
    assert_eq!(
        dst.query("SELECT * FROM items"),
        "999|keep me",
        "target row after the refused copy"
    );

    // 3. --schema existing --truncate loads the same rows.
    copy_ok(
        &src,
        &dst,
        &[
            "--schema",
            "existing",
            "--truncate",
            "--tables",
            "public.items",
        ],
    );
    assert_same(&src, &dst, "SELECT * FROM items");
    assert_eq!(
        dst.query("SELECT count(*) FROM items WHERE id = 999"),
        "0",
        "old target row must be truncated"
    );
}

#[test]
fn schema_mode_existing_empty_and_recreate() {
    let src = TestDb::new("recreate_src");
    src.exec(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 500) AS i; \
         CREATE TABLE extra (id int PRIMARY KEY); INSERT INTO extra VALUES (1), (2);",
    );
    let dst2 = TestDb::new("recreate_dst");

    // The default mode refuses even an empty existing table.
    dst2.exec("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);");
    let out = copy(&src, &dst2, &["--tables", "public.items"]);
    let line = assert_error(&out, 1, "--schema create where an empty items exists");
    assert!(
        line.contains("items"),
        "the error must name the table items\n{}",
        describe(&out)
    );

    // --schema existing into an empty existing table works without --truncate.
    copy_ok(
        &src,
        &dst2,
        &["--schema", "existing", "--tables", "public.items"],
    );
    assert_same(&src, &dst2, "SELECT * FROM items");

    // --schema recreate refuses to drop a target-only view over a selected table (CASCADE
    // would destroy it silently) and names it; once it is gone, the table is replaced.
    dst2.exec(
        "DROP TABLE items; CREATE TABLE items (id text, payload jsonb, other int); \
         INSERT INTO items VALUES ('x', '{}', 1); \
         CREATE VIEW items_view AS SELECT id FROM items;",
    );
    let out = copy(&src, &dst2, &["--schema", "recreate"]);
    let line = assert_error(
        &out,
        1,
        "--schema recreate with a target-only view over items",
    );
    assert!(
        line.contains("items_view"),
        "the error must name the view\n{}",
        describe(&out)
    );
    assert_eq!(
        dst2.query("SELECT id FROM items_view"),
        "x",
        "the view and its table must be untouched"
    );
    dst2.exec("DROP VIEW items_view;");
    copy_ok(&src, &dst2, &["--schema", "recreate"]);
    assert_same(&src, &dst2, "SELECT * FROM items");
    assert_same(&src, &dst2, "SELECT * FROM extra");
    assert_same_ordered(
        &src,
        &dst2,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = 'items' ORDER BY ordinal_position",
    );
    assert_same_ordered(
        &src,
        &dst2,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'items'::regclass ORDER BY 1",
    );

    // Running the same recreate again is idempotent.
    copy_ok(&src, &dst2, &["--schema", "recreate"]);
    assert_same(&src, &dst2, "SELECT * FROM items");
}

#[test]
fn source_and_target_from_env() {
    let src = TestDb::new("env_src");
    let dst = TestDb::new("env_dst");
    src.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 1000) AS i;");
    // The server trusts 127.0.0.1, so the password is ignored by the server; it must still never
    // be printed, even with debug logging.
    let secret = "s3cr3t-SENTINEL";
    let with_pw = |db: &TestDb| {
        db.url()
            .replacen("postgres@", &format!("postgres:{secret}@"), 1)
    };
    let (src_url, dst_url) = (with_pw(&src), with_pw(&dst));
    let out = Howdah::new("copy")
        .env("HOWDAH_SOURCE", &src_url)
        .env("HOWDAH_TARGET", &dst_url)
        .env("PGPASSWORD", secret)
        .env("RUST_LOG", "debug")
        .run();
    assert_success(&out, "howdah copy with HOWDAH_SOURCE/HOWDAH_TARGET");
    assert_same(&src, &dst, "SELECT * FROM t");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains(secret),
        "the password appears in the output\n{}",
        describe(&out)
    );
}

#[test]
fn awkward_names_identity_generated() {
    let src = TestDb::new("awkward_src");
    let dst = TestDb::new("awkward_dst");
    src.exec(include_str!("fixtures/awkward.sql"));

    copy_ok(&src, &dst, &["--chunk-rows", "1000", "--jobs", "2"]);

    assert_same(&src, &dst, r#"SELECT * FROM "My Schema"."Order Items""#);
    assert_same(&src, &dst, r#"SELECT * FROM public."CamelCase""#);
    assert_same(&src, &dst, "SELECT * FROM public.by_default_identity");
    // Column shapes: identity, generated expression, defaults, order (the dropped column gone).
    assert_same_ordered(
        &src,
        &dst,
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
         a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid) \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE c.relnamespace IN ('public'::regnamespace, '\"My Schema\"'::regnamespace) \
         AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, a.attnum",
    );
    assert_same_ordered(
        &src,
        &dst,
        "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes \
         WHERE schemaname IN ('public', 'My Schema') ORDER BY 1, 2, 3",
    );
    // Identity sequences continue where the source stopped.
    assert_same_ordered(
        &src,
        &dst,
        "SELECT schemaname, sequencename, start_value, increment_by, last_value FROM pg_sequences \
         WHERE schemaname IN ('public', 'My Schema') ORDER BY 1, 2",
    );
    dst.exec(r#"INSERT INTO "My Schema"."Order Items" (qty, price) VALUES (2, 3.5)"#);
    assert_eq!(
        dst.query(r#"SELECT "Id", total FROM "My Schema"."Order Items" WHERE "select" = 'dflt'"#),
        "15010|7.00",
        "identity and generated column on the target after the copy"
    );
    assert_same_ordered(
        &src,
        &dst,
        r#"SELECT obj_description('"My Schema"."Order Items"'::regclass, 'pg_class')"#,
    );
}

#[test]
fn plain_copy_prints_no_warnings() {
    let src = TestDb::new("nowarn_src");
    let dst = TestDb::new("nowarn_dst");
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v text); \
         INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 100) AS i;",
    );
    let out = copy_ok(&src, &dst, &[]);
    assert_same(&src, &dst, "SELECT * FROM t");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert!(
        warnings.is_empty(),
        "a copy of one plain (int, text) table must not warn (about built-in types, etc.)\n{}",
        describe(&out)
    );
}
