//! Parity with `pg_dump`: a source holding every object kind `pg_dump` dumps is copied, and
//! `pg_dump --schema-only` of both sides (owners and privileges included, the state schema
//! left out) must be equal, lines sorted (ordering is the only normalisation). Publications
//! are the exception by design: not created, and named in the summary with their SQL.

use crate::support::{assert_success, describe, Howdah, TestDb};

/// Every object kind, owned by and granted to two roles (`{o}`, `{r}`).
pub(crate) const SOURCE: &str = r#"
CREATE SCHEMA app AUTHORIZATION {o};
COMMENT ON SCHEMA app IS 'the application';
GRANT USAGE ON SCHEMA app TO {r};
CREATE COLLATION app.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
COMMENT ON COLLATION app.nocase IS 'case-insensitive';
CREATE TYPE app.mood AS ENUM ('sad', 'happy');
COMMENT ON TYPE app.mood IS 'how it feels';
CREATE DOMAIN app.pos AS integer CONSTRAINT pos_check CHECK (VALUE > 0);
CREATE TYPE app.pair AS (a integer, b integer);
ALTER TYPE app.pair OWNER TO {o};
GRANT USAGE ON TYPE app.mood TO {r};
CREATE FUNCTION app.add2(integer, integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1 + $2';
ALTER FUNCTION app.add2(integer, integer) OWNER TO {o};
REVOKE EXECUTE ON FUNCTION app.add2(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.add2(integer, integer) TO {r};
CREATE AGGREGATE app.total(integer) (SFUNC = app.add2, STYPE = integer, INITCOND = '0', PARALLEL = SAFE);
COMMENT ON AGGREGATE app.total(integer) IS 'a sum';
CREATE FUNCTION app.smaller(integer, integer) RETURNS integer LANGUAGE sql IMMUTABLE STRICT AS 'SELECT least($1, $2)';
CREATE AGGREGATE app.smallest(integer) (SFUNC = app.smaller, STYPE = integer, SORTOP = <, COMBINEFUNC = app.smaller);
CREATE AGGREGATE app.share(VARIADIC "any" ORDER BY VARIADIC "any") (SFUNC = ordered_set_transition_multi, STYPE = internal,
  FINALFUNC = rank_final, FINALFUNC_EXTRA, HYPOTHETICAL);
CREATE FUNCTION app.abs_eq(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT abs($1) = abs($2)';
CREATE FUNCTION app.abs_lt(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT abs($1) < abs($2)';
CREATE FUNCTION app.abs_cmp(integer, integer) RETURNS integer LANGUAGE sql IMMUTABLE
  AS 'SELECT CASE WHEN abs($1) < abs($2) THEN -1 WHEN abs($1) > abs($2) THEN 1 ELSE 0 END';
CREATE OPERATOR app.=== (FUNCTION = app.abs_eq, LEFTARG = integer, RIGHTARG = integer,
  COMMUTATOR = OPERATOR(app.===), RESTRICT = eqsel, JOIN = eqjoinsel, MERGES);
COMMENT ON OPERATOR app.=== (integer, integer) IS 'equal in absolute value';
CREATE OPERATOR app.<<< (FUNCTION = app.abs_lt, LEFTARG = integer, RIGHTARG = integer);
CREATE OPERATOR FAMILY app.abs_fam USING btree;
COMMENT ON OPERATOR FAMILY app.abs_fam USING btree IS 'by absolute value';
CREATE OPERATOR CLASS app.abs_ops FOR TYPE integer USING btree FAMILY app.abs_fam AS
  OPERATOR 1 app.<<<, OPERATOR 3 app.===, FUNCTION 1 app.abs_cmp(integer, integer);
CREATE OPERATOR FAMILY app.loose_fam USING hash;
CREATE FUNCTION app.pair_sum(app.pair) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT ($1).a + ($1).b';
CREATE CAST (app.pair AS integer) WITH FUNCTION app.pair_sum(app.pair) AS ASSIGNMENT;
COMMENT ON CAST (app.pair AS integer) IS 'sum of the pair';
CREATE CONVERSION app.latin_utf FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
COMMENT ON CONVERSION app.latin_utf IS 'a conversion';
CREATE TEXT SEARCH DICTIONARY app.simple_en (TEMPLATE = pg_catalog.simple, STOPWORDS = english);
COMMENT ON TEXT SEARCH DICTIONARY app.simple_en IS 'simple, English stop words';
CREATE TEXT SEARCH CONFIGURATION app.docs (COPY = pg_catalog.english);
ALTER TEXT SEARCH CONFIGURATION app.docs ALTER MAPPING FOR word, asciiword WITH app.simple_en;
COMMENT ON TEXT SEARCH CONFIGURATION app.docs IS 'for documents';
CREATE ACCESS METHOD heap_two TYPE TABLE HANDLER heap_tableam_handler;
COMMENT ON ACCESS METHOD heap_two IS 'heap under another name';
CREATE SEQUENCE app.ticket START 100;
GRANT USAGE ON SEQUENCE app.ticket TO {r};
CREATE TABLE app.items (
  id integer PRIMARY KEY,
  n integer NOT NULL,
  body text COLLATE app.nocase,
  tenant name NOT NULL DEFAULT current_user,
  mood app.mood,
  qty app.pos
) WITH (fillfactor = 70);
ALTER TABLE app.items OWNER TO {o};
COMMENT ON TABLE app.items IS 'items';
INSERT INTO app.items SELECT g, g - 50, 'item ' || g, '{r}', 'happy', g FROM generate_series(1, 100) g;
CREATE INDEX items_abs ON app.items (n app.abs_ops);
ALTER TABLE app.items REPLICA IDENTITY FULL;
ALTER TABLE app.items ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.items FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON app.items FOR SELECT TO {r} USING (tenant = current_user);
COMMENT ON POLICY own_rows ON app.items IS 'tenants see their rows';
GRANT SELECT ON app.items TO {r};
GRANT UPDATE (body) ON app.items TO {r};
CREATE STATISTICS app.items_stats (dependencies, ndistinct) ON n, qty FROM app.items;
ALTER STATISTICS app.items_stats SET STATISTICS 500;
COMMENT ON STATISTICS app.items_stats IS 'n and qty move together';
CREATE TABLE app.logs (id integer PRIMARY KEY, msg text);
ALTER TABLE app.logs REPLICA IDENTITY USING INDEX logs_pkey;
CREATE RULE keep_logs AS ON DELETE TO app.logs DO INSTEAD NOTHING;
COMMENT ON RULE keep_logs ON app.logs IS 'logs are never deleted';
CREATE TABLE app.other_am (id integer) USING heap_two;
CREATE VIEW app.item_view AS SELECT id, n FROM app.items;
GRANT SELECT ON app.item_view TO {r};
CREATE FUNCTION app.view_insert() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER item_view_insert INSTEAD OF INSERT ON app.item_view FOR EACH ROW EXECUTE FUNCTION app.view_insert();
COMMENT ON TRIGGER item_view_insert ON app.item_view IS 'swallows inserts';
ALTER TABLE app.logs CLUSTER ON logs_pkey;
CREATE FOREIGN DATA WRAPPER dummy_fdw;
COMMENT ON FOREIGN DATA WRAPPER dummy_fdw IS 'does nothing';
CREATE SERVER far FOREIGN DATA WRAPPER dummy_fdw OPTIONS (host 'far.example', port '5432');
COMMENT ON SERVER far IS 'far away';
GRANT USAGE ON FOREIGN SERVER far TO {r};
CREATE USER MAPPING FOR {r} SERVER far OPTIONS (user 'remote', password 'parity-secret');
CREATE FOREIGN TABLE app.remote_items (id integer NOT NULL, label text) SERVER far OPTIONS (table_name 'items');
COMMENT ON FOREIGN TABLE app.remote_items IS 'over there';
ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA app GRANT SELECT ON TABLES TO {r};
ALTER DEFAULT PRIVILEGES FOR ROLE {o} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
CREATE FUNCTION app.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'ddl'; END$$;
CREATE EVENT TRIGGER app_ddl ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION app.on_ddl();
ALTER EVENT TRIGGER app_ddl DISABLE;
COMMENT ON EVENT TRIGGER app_ddl IS 'watches DDL';
CREATE PUBLICATION items_pub FOR TABLE app.items WITH (publish = 'insert, update');
"#;

/// `pg_dump --schema-only` with owners and privileges, lines sorted.
fn dump(db: &TestDb) -> Vec<String> {
    let out = std::process::Command::new("pg_dump")
        .args(["--schema-only", "--exclude-schema=howdah", "-d", &db.url()])
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim_end)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("--")
                && !l.starts_with('\\')
                && !l.starts_with("SELECT pg_catalog.set_config")
        })
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[test]
fn a_copy_matches_pg_dump_for_every_object_kind() {
    let pid = std::process::id();
    let (o, r) = (
        format!("howdah_test_po_{pid}"),
        format!("howdah_test_pr_{pid}"),
    );
    let src = TestDb::new("parity_src");
    src.exec(&format!(
        "DROP ROLE IF EXISTS {o}; DROP ROLE IF EXISTS {r}; CREATE ROLE {o}; CREATE ROLE {r};"
    ));
    let setup = src.try_exec(&SOURCE.replace("{o}", &o).replace("{r}", &r));
    let dst = TestDb::new("parity_dst");
    let out = Howdah::copy(&src.url(), &dst.url())
        .args(["--owners", "--grants", "--user-mapping-passwords"])
        .run();
    let plain = TestDb::new("parity_plain");
    let plain_out = Howdah::copy(&src.url(), &plain.url()).run();
    let plan = Howdah::new("plan")
        .args(["--source", &src.url(), "--target", &plain.url()])
        .run();
    let (a, b) = (dump(&src), dump(&dst));
    let facts = (
        dst.try_query("SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relname = 'other_am'"),
        dst.try_query("SELECT count(*) FROM app.items"),
        dst.try_query("SELECT count(*) FROM pg_publication"),
        plain.try_query("SELECT array_to_string(umoptions, ',') FROM pg_user_mappings"),
    );
    drop((dst, plain));
    let _ = src.try_exec(&format!(
        "DROP EVENT TRIGGER IF EXISTS app_ddl; DROP PUBLICATION IF EXISTS items_pub; \
         DROP USER MAPPING IF EXISTS FOR {r} SERVER far;"
    ));
    drop(src);
    crate::support::psql_admin(&format!(
        "DROP ROLE IF EXISTS {o}; DROP ROLE IF EXISTS {r};"
    ));
    setup.expect("the parity source builds");
    assert_success(&out, "copy of every object kind");
    assert_success(&plain_out, "copy without --owners --grants");
    for kind in [
        "CREATE AGGREGATE",
        "CREATE OPERATOR FAMILY",
        "CREATE OPERATOR CLASS",
        "CREATE CAST",
        "CREATE CONVERSION",
        "CREATE TEXT SEARCH",
        "CREATE STATISTICS",
        "CREATE EVENT TRIGGER",
        "CREATE SERVER",
        "CREATE USER MAPPING",
        "CREATE FOREIGN TABLE",
        "CREATE POLICY",
        "ALTER DEFAULT PRIVILEGES",
        "REPLICA IDENTITY",
        "CREATE RULE",
        "CREATE ACCESS METHOD",
        "FORCE ROW LEVEL SECURITY",
        "COMMENT ON OPERATOR",
        "GRANT UPDATE(body)",
    ] {
        assert!(
            a.iter().any(|l| l.contains(kind)),
            "the source's dump holds {kind}: the test covers it"
        );
    }
    // Publications are listed, not created.
    let expected: Vec<&String> = a.iter().filter(|l| !l.contains("PUBLICATION")).collect();
    let got: Vec<&String> = b.iter().collect();
    let missing: Vec<&&String> = expected.iter().filter(|l| !got.contains(l)).collect();
    let extra: Vec<&&String> = got.iter().filter(|l| !expected.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "pg_dump of the target differs from the source's\nmissing on target: {missing:#?}\nextra on target: {extra:#?}"
    );
    assert_eq!(
        facts.0,
        Ok("heap_two".into()),
        "the table access method arrives"
    );
    assert_eq!(facts.1, Ok("100".into()), "the rows arrive");
    assert_eq!(facts.2, Ok("0".into()), "publications are not created");
    assert_eq!(
        facts.3,
        Ok("user=remote".into()),
        "without the flag no password is copied"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("publication items_pub not created")
            && stdout.contains("CREATE PUBLICATION items_pub FOR TABLE app.items"),
        "the summary names the publication with its SQL\n{}",
        describe(&out)
    );
    assert!(
        !String::from_utf8_lossy(&plain_out.stdout).contains("parity-secret")
            && !String::from_utf8_lossy(&plan.stdout).contains("parity-secret"),
        "no password in a summary or a plan"
    );
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("CREATE PUBLICATION items_pub"),
        "the plan lists the publication with its SQL\n{}",
        describe(&plan)
    );
}

/// A `[[table]]` rule that renames and retypes a column changes the schema on purpose: the
/// rest of `pg_dump --schema-only` stays equal, row security follows the renamed column, and
/// what names the old column (extended statistics) is left out with a warning.
#[test]
fn a_mapped_copy_keeps_everything_the_mapping_does_not_change() {
    let src = TestDb::new("parity_map_src");
    src.exec(
        "CREATE SCHEMA app;
         CREATE TYPE app.kind AS ENUM ('a', 'b');
         CREATE TABLE app.items (id integer PRIMARY KEY, price numeric(10,2), kind app.kind, note text);
         INSERT INTO app.items SELECT g, g * 1.5, 'a', 'n' || g FROM generate_series(1, 50) g;
         CREATE INDEX items_price ON app.items (price);
         ALTER TABLE app.items ENABLE ROW LEVEL SECURITY;
         CREATE POLICY cheap ON app.items FOR SELECT USING (price < 40);
         CREATE STATISTICS app.items_stats ON price, kind FROM app.items;
         CREATE TABLE app.other (id integer PRIMARY KEY, v text);
         CREATE STATISTICS app.other_stats ON id, v FROM app.other;
         ALTER TABLE app.other REPLICA IDENTITY FULL;
         COMMENT ON TABLE app.other IS 'untouched';",
    );
    let dst = TestDb::new("parity_map_dst");
    let job = crate::support::job_file(
        "parity_map",
        "[[table]]\nname = \"app.items\"\n[[table.column]]\nname = \"price\"\nrename = \"amount\"\ntype = \"numeric(14,2)\"\n",
    );
    let out = Howdah::copy(&src.url(), &dst.url())
        .args(["--config", &job])
        .run();
    assert_success(&out, "mapped copy");
    let changed =
        |l: &String| l.contains("price") || l.contains("amount") || l.contains("items_stats");
    let (a, b) = (dump(&src), dump(&dst));
    let rest_a: Vec<&String> = a.iter().filter(|l| !changed(l)).collect();
    let rest_b: Vec<&String> = b.iter().filter(|l| !changed(l)).collect();
    assert_eq!(
        rest_b, rest_a,
        "everything the mapping does not touch is equal"
    );
    assert!(
        b.iter().any(|l| l.contains("amount numeric(14,2)")),
        "the renamed, retyped column: {b:#?}"
    );
    assert!(
        b.iter()
            .any(|l| l.contains("CREATE POLICY cheap") && l.contains("amount < ")),
        "the policy follows the renamed column: {b:#?}"
    );
    assert!(
        b.iter()
            .any(|l| l.contains("CREATE INDEX items_price") && l.contains("(amount)")),
        "the index follows the renamed column: {b:#?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("statistics app.items_stats is not created"),
        "the statistics over the old column are left out with a warning\n{}",
        describe(&out)
    );
}

/// Tablespaces: without `--tablespace`, tables and indexes go to the target's default and the
/// summary says so; `--tablespace OLD=NEW` puts them in NEW (here the same server's, kept).
#[test]
fn tablespaces_are_mapped_or_left_by_a_flag() {
    let pid = std::process::id();
    let ts = format!("howdah_test_ts_{pid}");
    let dir = std::env::temp_dir().join(format!("howdah-ts-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    // The server writes there: it must own the directory (tests run as root or as postgres).
    let owned = std::process::Command::new("chown")
        .args(["postgres:postgres", &dir.display().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(owned, "chown postgres {}", dir.display());
    crate::support::psql_admin(&format!(
        "CREATE TABLESPACE {ts} LOCATION '{}'",
        dir.display()
    ));
    let src = TestDb::new("ts_src");
    src.exec(&format!(
        "CREATE TABLE placed (id int PRIMARY KEY USING INDEX TABLESPACE {ts}, v text) TABLESPACE {ts};
         CREATE INDEX placed_v ON placed (v) TABLESPACE {ts};
         INSERT INTO placed SELECT g, 'v' || g FROM generate_series(1, 100) g;"
    ));
    let kept = TestDb::new("ts_kept");
    let kept_out = Howdah::copy(&src.url(), &kept.url())
        .args(["--tablespace", &format!("{ts}={ts}")])
        .run();
    let plain = TestDb::new("ts_plain");
    let plain_out = Howdah::copy(&src.url(), &plain.url()).run();
    let where_sql = "SELECT string_agg(c.relname || ':' || coalesce(t.spcname, 'default'), ' ' ORDER BY c.relname) \
        FROM pg_class c LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace \
        WHERE c.relname IN ('placed', 'placed_pkey', 'placed_v')";
    let results = (
        src.query(where_sql),
        kept.try_query(where_sql),
        plain.try_query(where_sql),
        kept.try_query("SELECT count(*) FROM placed"),
    );
    drop((src, kept, plain));
    crate::support::psql_admin(&format!("DROP TABLESPACE {ts}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert_success(&kept_out, "copy with --tablespace");
    assert_success(&plain_out, "copy without --tablespace");
    assert_eq!(
        results.1,
        Ok(results.0.clone()),
        "--tablespace OLD=OLD keeps every relation in place"
    );
    assert_eq!(
        results.2,
        Ok("placed:default placed_pkey:default placed_v:default".into()),
        "without --tablespace everything goes to the target's default"
    );
    assert_eq!(results.3, Ok("100".into()));
    assert!(
        String::from_utf8_lossy(&plain_out.stdout).contains(&format!(
            "3 relation(s) of source tablespace {ts} created in the target's default tablespace"
        )),
        "the summary says where they went\n{}",
        describe(&plain_out)
    );
}
