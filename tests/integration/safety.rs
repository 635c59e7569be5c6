//! Cases where a careless copier loses, changes or destroys data without saying so.

use crate::support::{
    assert_error, assert_same, assert_success, describe, pg_base, Howdah, TestDb,
};

fn copy_as(src_url: &str, dst: &TestDb, extra: &[&str]) -> std::process::Output {
    Howdah::copy(src_url, &dst.url()).args(extra).run()
}

/// `--schema recreate` must not drop target objects that were not selected (CASCADE would).
#[test]
fn recreate_refuses_to_drop_unselected_dependents() {
    let src = TestDb::new("safe_rec_src");
    src.exec("CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1), (2);");
    let dst = TestDb::new("safe_rec_dst");
    dst.exec(
        "CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (7);
         CREATE TABLE keep_child (note text) INHERITS (parent); INSERT INTO keep_child VALUES (8, 'mine');
         CREATE VIEW keep_view AS SELECT id FROM ONLY parent;",
    );
    let out = copy_as(
        &src.url(),
        &dst,
        &["--schema", "recreate", "--tables", "public.parent"],
    );
    let line = assert_error(&out, 1, "recreate with unselected dependents");
    assert!(
        line.contains("depend"),
        "the error must say other objects depend on the table\n{}",
        describe(&out)
    );
    assert_eq!(
        dst.query("SELECT note FROM keep_child"),
        "mine",
        "the unselected child must survive"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM keep_view"),
        "1",
        "the unselected view must survive"
    );
}

/// Row-level security must never filter rows silently: the copy fails and says why.
#[test]
fn row_level_security_fails_loudly() {
    let src = TestDb::new("safe_rls_src");
    let role = format!("howdah_test_rls_{}", std::process::id());
    src.exec(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;
         CREATE TABLE secrets (id int PRIMARY KEY, owner text);
         INSERT INTO secrets VALUES (1, 'a'), (2, 'b'), (3, 'c');
         ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
         CREATE POLICY only_a ON secrets FOR SELECT USING (owner = 'a');
         GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT ON secrets TO {role};"
    ));
    let dst = TestDb::new("safe_rls_dst");
    let src_url = format!(
        "{}/{}?sslmode=disable",
        pg_base().replace("postgres@", &format!("{role}@")),
        src.name
    );
    let out = copy_as(&src_url, &dst, &[]);
    src.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role};"));
    let line = assert_error(
        &out,
        1,
        "copy of a table with row-level security by a role without BYPASSRLS",
    );
    assert!(
        line.contains("row-level security"),
        "the error must name row-level security\n{}",
        describe(&out)
    );
}

/// Row-level security arrives with the table: `ENABLE`/`FORCE` and every policy (restrictive,
/// per command, per role, with comments), so on the target a tenant reads only its own rows,
/// as on the source; with or without `--grants`.
#[test]
fn row_level_security_is_copied() {
    let pid = std::process::id();
    let (a, b) = (
        format!("howdah_test_ta_{pid}"),
        format!("howdah_test_tb_{pid}"),
    );
    let src = TestDb::new("safe_rlsc_src");
    src.exec(&format!(
        "DROP ROLE IF EXISTS {a}; DROP ROLE IF EXISTS {b}; CREATE ROLE {a}; CREATE ROLE {b};
         CREATE TABLE docs (id int PRIMARY KEY, tenant name NOT NULL, body text, hidden bool DEFAULT false);
         INSERT INTO docs SELECT g, CASE WHEN g % 3 = 0 THEN '{a}' ELSE '{b}' END, 'doc ' || g, g % 10 = 0
           FROM generate_series(1, 300) g;
         ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
         ALTER TABLE docs FORCE ROW LEVEL SECURITY;
         CREATE POLICY tenant_rows ON docs USING (tenant = current_user) WITH CHECK (tenant = current_user);
         CREATE POLICY not_hidden ON docs AS RESTRICTIVE FOR SELECT TO {a}, {b} USING (NOT hidden);
         COMMENT ON POLICY tenant_rows ON docs IS 'one tenant, its rows';
         CREATE TABLE open_notes (id int PRIMARY KEY);
         GRANT SELECT, INSERT ON docs TO {a}, {b};"
    ));
    let dst = TestDb::new("safe_rlsc_dst");
    let out = copy_as(&src.url(), &dst, &["--grants"]);
    let plain = TestDb::new("safe_rlsc_plain");
    let plain_out = copy_as(&src.url(), &plain, &[]);
    let seen = |db: &TestDb, role: &str| {
        db.try_query(&format!(
            "SET ROLE {role}; SELECT count(*) || ' ' || count(*) FILTER (WHERE tenant <> current_user) FROM docs"
        ))
        .map(|s| s.trim_start_matches("SET\n").to_string())
    };
    let flags = "SELECT relrowsecurity::text || ' ' || relforcerowsecurity::text FROM pg_class WHERE relname = 'docs'";
    let policies = "SELECT string_agg(policyname || ':' || permissive || ':' || cmd || ':' || roles::text || ':' || coalesce(qual, '') || ':' || coalesce(with_check, ''), ' | ' ORDER BY policyname) FROM pg_policies";
    let comment =
        "SELECT obj_description(oid, 'pg_policy') FROM pg_policy WHERE polname = 'tenant_rows'";
    let results = (
        seen(&src, &a),
        seen(&dst, &a),
        seen(&dst, &b),
        dst.query(flags),
        plain.query(flags),
        (
            src.query(policies),
            dst.query(policies),
            plain.query(policies),
        ),
        dst.query(comment),
        dst.query("SELECT relrowsecurity FROM pg_class WHERE relname = 'open_notes'"),
        dst.query("SELECT count(*) FROM docs"),
    );
    drop((dst, plain));
    src.exec(&format!("DROP TABLE docs; DROP ROLE {a}; DROP ROLE {b};"));
    assert_success(
        &out,
        "copy with --grants of a table with row-level security",
    );
    assert_success(
        &plain_out,
        "copy without --grants of a table with row-level security",
    );
    assert_eq!(
        results.0,
        Ok("90 0".to_string()),
        "the source filters tenant a's rows"
    );
    assert_eq!(
        results.1, results.0,
        "on the target tenant a sees only its rows"
    );
    assert_eq!(
        results.2,
        Ok("180 0".to_string()),
        "tenant b sees only its rows"
    );
    assert_eq!(results.3, "true true", "ENABLE and FORCE arrive");
    assert_eq!(
        results.4, "true true",
        "row security does not wait for --grants"
    );
    assert_eq!(results.5 .1, results.5 .0, "the policies are the source's");
    assert_eq!(
        results.5 .2, results.5 .0,
        "the policies do not wait for --grants"
    );
    assert_eq!(
        results.6, "one tenant, its rows",
        "the policy's comment arrives"
    );
    assert_eq!(results.7, "f", "a table without row security gets none");
    assert_eq!(results.8, "300", "the loading superuser copied every row");
}

/// Tables with no column at all, or only generated columns, copy their rows.
#[test]
fn tables_without_copyable_columns() {
    let src = TestDb::new("safe_cols_src");
    src.exec(
        "CREATE TABLE nothing (); INSERT INTO nothing SELECT FROM generate_series(1, 5);
         CREATE TABLE only_gen (g int GENERATED ALWAYS AS (7) STORED); INSERT INTO only_gen SELECT FROM generate_series(1, 3);",
    );
    let dst = TestDb::new("safe_cols_dst");
    let out = copy_as(&src.url(), &dst, &[]);
    assert_success(&out, "copy of column-less tables");
    assert_eq!(dst.query("SELECT count(*) FROM nothing"), "5");
    assert_eq!(dst.query("SELECT count(*), sum(g) FROM only_gen"), "3|21");
}

/// A table the source never analyzed (reltuples = -1) is not cut into thousands of chunks.
#[test]
fn never_analyzed_table_gets_sane_chunks() {
    let src = TestDb::new("safe_noan_src");
    src.exec(
        "CREATE TABLE fresh (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
         INSERT INTO fresh SELECT g, md5(g::text) FROM generate_series(1, 20000) g;",
    );
    assert_eq!(
        src.query("SELECT reltuples FROM pg_class WHERE relname = 'fresh'"),
        "-1"
    );
    let dst = TestDb::new("safe_noan_dst");
    let out = copy_as(&src.url(), &dst, &["--chunk-rows", "1000"]);
    assert_success(&out, "copy of a never-analyzed table");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("public.fresh"))
        .unwrap_or_default();
    let chunks: usize = line
        .split_whitespace()
        .nth(3)
        .and_then(|c| c.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(
        chunks <= 2,
        "a 2 MB table must not become {chunks} chunks\n{stdout}"
    );
    assert_same(&src, &dst, "SELECT * FROM fresh");
}

/// `--schema existing`: triggers of the existing target tables do not rewrite copied rows.
#[test]
fn existing_schema_load_does_not_fire_target_triggers() {
    let src = TestDb::new("safe_trig_src");
    src.exec("CREATE TABLE t (id int PRIMARY KEY, stamp text); INSERT INTO t VALUES (1, 'source'), (2, 'source');");
    let dst = TestDb::new("safe_trig_dst");
    dst.exec(
        "CREATE TABLE t (id int PRIMARY KEY, stamp text);
         CREATE TABLE audit (id int);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN NEW.stamp := 'trigger'; INSERT INTO audit VALUES (NEW.id); RETURN NEW; END$$;
         CREATE TRIGGER touch BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch();",
    );
    let out = copy_as(
        &src.url(),
        &dst,
        &["--schema", "existing", "--tables", "public.t"],
    );
    assert_success(&out, "copy into an existing table with a trigger");
    assert_same(&src, &dst, "SELECT * FROM t");
    assert_eq!(
        dst.query("SELECT count(*) FROM audit"),
        "0",
        "the target trigger fired during the load"
    );
}

/// `--owners --grants` reproduce table owners and grants; without them the target keeps its
/// own defaults (the connecting role owns everything).
#[test]
fn owners_and_grants_when_asked() {
    let pid = std::process::id();
    let (owner, reader) = (
        format!("howdah_test_own_{pid}"),
        format!("howdah_test_rd_{pid}"),
    );
    let src = TestDb::new("safe_own_src");
    src.exec(&format!(
        "DROP ROLE IF EXISTS {owner}; DROP ROLE IF EXISTS {reader}; CREATE ROLE {owner}; CREATE ROLE {reader};
         CREATE TABLE owned (id int PRIMARY KEY, v text); INSERT INTO owned VALUES (1, 'a');
         ALTER TABLE owned OWNER TO {owner}; GRANT SELECT ON owned TO {reader};"
    ));
    let dst = TestDb::new("safe_own_dst");
    let out = copy_as(&src.url(), &dst, &["--owners", "--grants"]);
    let dst_plain = TestDb::new("safe_own_plain");
    let plain = copy_as(&src.url(), &dst_plain, &[]);
    let owner_sql = "SELECT tableowner FROM pg_tables WHERE tablename = 'owned'";
    let grant_sql = format!("SELECT has_table_privilege('{reader}', 'owned', 'SELECT')");
    let results = (
        dst.query(owner_sql),
        dst.query(&grant_sql),
        dst_plain.query(owner_sql),
        dst_plain.query(&grant_sql),
    );
    drop((dst, dst_plain));
    src.exec(&format!(
        "DROP TABLE owned; DROP ROLE {owner}; DROP ROLE {reader};"
    ));
    assert_success(&out, "copy with --owners --grants");
    assert_success(&plain, "copy without --owners --grants");
    assert_eq!(results.0, owner, "--owners keeps the owner");
    assert_eq!(results.1, "t", "--grants keeps the grant");
    assert_eq!(
        results.2, "postgres",
        "without --owners the connecting role owns the table"
    );
    assert_eq!(results.3, "f", "without --grants no grant is copied");
}
