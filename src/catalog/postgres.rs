//! PostgreSQL introspection into the neutral [`Catalog`] model.
//!
//! Every query runs on the caller's connection, inside whatever transaction and snapshot the
//! caller set, so the catalog matches the data a run copies. `search_path` is emptied while
//! reading so that `format_type`, `pg_get_expr` and the `pg_get_*def` functions qualify every
//! name: the rendered DDL then means the same thing on a target whatever its `search_path`.

use std::collections::HashMap;

use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, Row};

use super::{
    quote_ident, quote_literal, Catalog, CatalogError, Column, Constraint, DdlObject, Dependency,
    Extension, Identity, Index, KeyColumn, ObjectRef, Policy, QualifiedName, SchemaObject,
    Sequence, Table, TableKind, TargetFacts, View,
};

/// Reads the whole user schema of the connected database (everything outside the system
/// schemas and howdah's own `howdah` state schema).
pub async fn load(client: &Client) -> Result<Catalog, CatalogError> {
    let old_path: String = one(
        client,
        "SELECT current_setting('search_path')",
        "search_path",
    )
    .await?
    .map_or(Ok(String::new()), |r| get(&r, 0, "search_path"))?;
    exec(
        client,
        "SELECT pg_catalog.set_config('search_path', '', false)",
        "search_path",
    )
    .await?;
    let result = load_inner(client).await;
    // Restore even when loading failed, so the caller's connection behaves as before.
    let restore = client
        .query(
            "SELECT pg_catalog.set_config('search_path', $1, false)",
            &[&old_path],
        )
        .await
        .map_err(query_err("search_path"));
    let cat = result?;
    restore?;
    Ok(cat)
}

/// `last_value` and `is_called` of each sequence, to be replayed with `setval` on the target.
pub async fn sequence_values(
    client: &Client,
    seqs: &[Sequence],
) -> Result<Vec<(QualifiedName, i64, bool)>, CatalogError> {
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let what = format!("last value of sequence {}", seq.name);
        let sql = format!("SELECT last_value, is_called FROM {}", seq.name.quoted());
        let row = client
            .query_one(&sql, &[])
            .await
            .map_err(query_err(&what))?;
        out.push((seq.name.clone(), get(&row, 0, &what)?, get(&row, 1, &what)?));
    }
    Ok(out)
}

/// Names of the objects already present on a target.
pub async fn target_facts(client: &Client) -> Result<TargetFacts, CatalogError> {
    let mut facts = TargetFacts::default();
    let what = "target schemas";
    for r in rows(
        client,
        &format!(
            "SELECT n.nspname FROM pg_namespace n WHERE {}",
            user_ns("n")
        ),
        what,
    )
    .await?
    {
        facts.schemas.insert(get(&r, 0, what)?);
    }
    let what = "target extensions";
    for r in rows(client, "SELECT extname FROM pg_extension", what).await? {
        facts.extensions.insert(get(&r, 0, what)?);
    }
    let what = "target collations";
    let sql = format!(
        "SELECT n.nspname, c.collname FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace \
         WHERE {}",
        user_ns("n")
    );
    for r in rows(client, &sql, what).await? {
        facts.collations.insert(QualifiedName::new(
            get::<String>(&r, 0, what)?,
            get::<String>(&r, 1, what)?,
        ));
    }
    let what = "target types";
    let sql = format!(
        "SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE {} AND t.typtype IN ('e','d','c','r','m') AND (t.typtype <> 'c' OR \
         EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))",
        user_ns("n")
    );
    for r in rows(client, &sql, what).await? {
        facts.types.insert(QualifiedName::new(
            get::<String>(&r, 0, what)?,
            get::<String>(&r, 1, what)?,
        ));
    }
    let what = "target functions";
    let sql = format!(
        "SELECT n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {}",
        user_ns("n")
    );
    for r in rows(client, &sql, what).await? {
        facts.functions.insert(QualifiedName::new(
            get::<String>(&r, 0, what)?,
            get::<String>(&r, 1, what)?,
        ));
    }
    let what = "target relations";
    let sql = format!(
        "SELECT n.nspname, c.relname, c.relkind IN ('r','p','f') FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {} AND c.relkind IN ('r','p','f','v','m','S')",
        user_ns("n")
    );
    for r in rows(client, &sql, what).await? {
        let name = QualifiedName::new(get::<String>(&r, 0, what)?, get::<String>(&r, 1, what)?);
        if get::<bool>(&r, 2, what)? {
            facts.tables.insert(name);
        } else {
            facts.relations.insert(name);
        }
    }
    Ok(facts)
}

/// Whether the table itself (not its children) holds at least one row.
pub async fn table_has_rows(client: &Client, name: &QualifiedName) -> Result<bool, CatalogError> {
    let what = format!("rows of {name}");
    let sql = format!("SELECT EXISTS (SELECT 1 FROM ONLY {})", name.quoted());
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(query_err(&what))?;
    get(&row, 0, &what)
}

/// SQL condition selecting user schemas for the namespace alias `n`.
fn user_ns(n: &str) -> String {
    format!(
        "{n}.nspname NOT IN ('pg_catalog', 'information_schema', 'howdah') \
         AND {n}.nspname NOT LIKE 'pg\\_toast%' AND {n}.nspname NOT LIKE 'pg\\_temp%'"
    )
}

/// SQL condition excluding members of extensions (their extension recreates them).
fn not_extension_member(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass \
         AND e.objid = {oid} AND e.deptype = 'e')"
    )
}

fn query_err(what: &str) -> impl FnOnce(tokio_postgres::Error) -> CatalogError + '_ {
    move |source| CatalogError::Query {
        what: what.to_string(),
        source,
    }
}

async fn rows(client: &Client, sql: &str, what: &str) -> Result<Vec<Row>, CatalogError> {
    client.query(sql, &[]).await.map_err(query_err(what))
}

async fn one(client: &Client, sql: &str, what: &str) -> Result<Option<Row>, CatalogError> {
    client.query_opt(sql, &[]).await.map_err(query_err(what))
}

async fn exec(client: &Client, sql: &str, what: &str) -> Result<(), CatalogError> {
    client
        .query(sql, &[])
        .await
        .map_err(query_err(what))
        .map(|_| ())
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize, what: &str) -> Result<T, CatalogError> {
    row.try_get(idx).map_err(query_err(what))
}

fn comment_stmt(kind: &str, target: &str, comment: &Option<String>) -> String {
    match comment {
        Some(c) => format!("COMMENT ON {kind} {target} IS {};\n", quote_literal(c)),
        None => String::new(),
    }
}

/// Orders items so that each comes after the items it depends on; cycles keep source order.
pub(crate) fn topo_order(deps: &[Vec<usize>]) -> Vec<usize> {
    fn visit(i: usize, deps: &[Vec<usize>], state: &mut [u8], out: &mut Vec<usize>) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        for &d in &deps[i] {
            if d != i {
                visit(d, deps, state, out);
            }
        }
        state[i] = 2;
        out.push(i);
    }
    let mut state = vec![0u8; deps.len()];
    let mut out = Vec::with_capacity(deps.len());
    for i in 0..deps.len() {
        visit(i, deps, &mut state, &mut out);
    }
    out
}

fn reorder<T>(items: Vec<T>, order: &[usize]) -> Vec<T> {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(|&i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

async fn load_inner(client: &Client) -> Result<Catalog, CatalogError> {
    let mut cat = Catalog::default();
    let what = "server version";
    if let Some(r) = one(
        client,
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int4",
        what,
    )
    .await?
    {
        cat.server_version = get(&r, 0, what)?;
        cat.server_version_num = get(&r, 1, what)?;
    }
    cat.schemas = load_schemas(client).await?;
    cat.extensions = load_extensions(client).await?;
    cat.collations = load_collations(client, cat.server_version_num).await?;
    cat.types = load_types(client).await?;
    cat.functions = load_functions(client).await?;
    let (tables, view_columns, matview_indexes) = load_tables(client).await?;
    cat.tables = tables;
    cat.sequences = load_sequences(client, &mut cat.tables).await?;
    cat.views = load_views(client, view_columns, matview_indexes).await?;
    cat.dependencies = load_dependencies(client).await?;
    let others = super::objects::load(client, cat.server_version_num).await?;
    cat.others = others.create;
    cat.not_created = others.manual;
    let what = "large objects";
    if let Some(r) = one(client, "SELECT count(*) FROM pg_largeobject_metadata", what).await? {
        cat.large_objects = get(&r, 0, what)?;
    }
    Ok(cat)
}

async fn load_schemas(client: &Client) -> Result<Vec<SchemaObject>, CatalogError> {
    let what = "schemas";
    let sql = format!(
        "SELECT n.nspname, pg_get_userbyid(n.nspowner), obj_description(n.oid, 'pg_namespace') \
         FROM pg_namespace n WHERE {} AND {} ORDER BY n.oid",
        user_ns("n"),
        not_extension_member("pg_namespace", "n.oid")
    );
    rows(client, &sql, what)
        .await?
        .iter()
        .map(|r| {
            Ok(SchemaObject {
                name: get(r, 0, what)?,
                owner: get(r, 1, what)?,
                comment: get(r, 2, what)?,
            })
        })
        .collect()
}

async fn load_extensions(client: &Client) -> Result<Vec<Extension>, CatalogError> {
    let what = "extensions";
    let sql = "SELECT e.extname, n.nspname, e.extversion FROM pg_extension e \
               JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY e.oid";
    rows(client, sql, what)
        .await?
        .iter()
        .map(|r| {
            Ok(Extension {
                name: get(r, 0, what)?,
                schema: get(r, 1, what)?,
                version: get(r, 2, what)?,
            })
        })
        .collect()
}

async fn load_collations(client: &Client, version: i32) -> Result<Vec<DdlObject>, CatalogError> {
    let what = "collations";
    // PostgreSQL 15 keeps an ICU locale in colliculocale, 17 renamed it colllocale; before 15
    // it is collcollate. ICU tailoring rules arrived in 16.
    let locale = match version {
        v if v >= 170000 => "c.colllocale",
        v if v >= 150000 => "c.colliculocale",
        _ => "NULL::text",
    };
    let rules = if version >= 160000 {
        "c.collicurules"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT c.oid, n.nspname, c.collname, c.collprovider::text, c.collisdeterministic, \
           c.collcollate, c.collctype, {locale}, {rules}, obj_description(c.oid, 'pg_collation') \
         FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace \
         WHERE {} AND {} ORDER BY c.oid",
        user_ns("n"),
        not_extension_member("pg_collation", "c.oid")
    );
    let mut out = Vec::new();
    for r in rows(client, &sql, what).await? {
        let oid: u32 = get(&r, 0, what)?;
        let name = QualifiedName::new(get::<String>(&r, 1, what)?, get::<String>(&r, 2, what)?);
        let provider: String = get(&r, 3, what)?;
        let collate: Option<String> = get(&r, 5, what)?;
        let ctype: Option<String> = get(&r, 6, what)?;
        let locale: Option<String> = get::<Option<String>>(&r, 7, what)?.or(collate.clone());
        let lit = |v: &Option<String>| quote_literal(v.as_deref().unwrap_or(""));
        let mut opts = match provider.as_str() {
            "i" => vec![
                "provider = icu".to_string(),
                format!("locale = {}", lit(&locale)),
            ],
            "b" => vec![
                "provider = builtin".to_string(),
                format!("locale = {}", lit(&locale)),
            ],
            "c" if collate == ctype => {
                vec![
                    "provider = libc".to_string(),
                    format!("locale = {}", lit(&collate)),
                ]
            }
            "c" => vec![
                "provider = libc".to_string(),
                format!("lc_collate = {}", lit(&collate)),
                format!("lc_ctype = {}", lit(&ctype)),
            ],
            _ => {
                tracing::warn!(collation = %name, "collation with provider {provider} not recreated");
                continue;
            }
        };
        if !get::<bool>(&r, 4, what)? {
            opts.push("deterministic = false".into());
        }
        if let Some(rules) = get::<Option<String>>(&r, 8, what)? {
            opts.push(format!("rules = {}", quote_literal(&rules)));
        }
        let q = name.quoted();
        let mut ddl = format!("CREATE COLLATION {q} ({});\n", opts.join(", "));
        ddl.push_str(&comment_stmt("COLLATION", &q, &get(&r, 9, what)?));
        out.push(DdlObject {
            name,
            ddl,
            id: Some(ObjectRef::Collation(oid)),
        });
    }
    Ok(out)
}

/// What each user object needs before it can be created, from `pg_depend`: both ends resolved
/// to the objects howdah creates (a column's default to its table, a view's rewrite rule to
/// the view, a domain's CHECK to the domain, a row type or an array of it to its relation).
/// Only dependencies between objects created after `initdb` (OID 16384 and up) are read;
/// ends that are not objects of the catalog (extension members) are dropped by the caller.
async fn load_dependencies(client: &Client) -> Result<Vec<Dependency>, CatalogError> {
    let what = "object dependencies";
    let sql = "SELECT DISTINCT o.kind, o.oid, o.attnum, r.kind, r.oid \
         FROM pg_depend d \
         CROSS JOIN LATERAL ( \
           SELECT CASE WHEN c.relkind = 'c' THEN 't' ELSE 'r' END AS kind, \
                  CASE WHEN c.relkind = 'c' THEN c.reltype ELSE c.oid END AS oid, NULL::int2 AS attnum \
             FROM pg_class c WHERE d.classid = 'pg_class'::regclass AND c.oid = d.objid \
              AND c.relkind IN ('r','p','v','m','c') \
           UNION ALL SELECT 't', d.objid, NULL WHERE d.classid = 'pg_type'::regclass \
           UNION ALL SELECT 'f', d.objid, NULL WHERE d.classid = 'pg_proc'::regclass \
           UNION ALL SELECT 'r', a.adrelid, a.adnum FROM pg_attrdef a \
             WHERE d.classid = 'pg_attrdef'::regclass AND a.oid = d.objid \
           UNION ALL SELECT 't', k.contypid, NULL FROM pg_constraint k \
             WHERE d.classid = 'pg_constraint'::regclass AND k.oid = d.objid AND k.contypid <> 0 \
           UNION ALL SELECT 'r', w.ev_class, NULL FROM pg_rewrite w \
             WHERE d.classid = 'pg_rewrite'::regclass AND w.oid = d.objid) o \
         CROSS JOIN LATERAL ( \
           SELECT CASE WHEN c.relkind = 'c' THEN 't' ELSE 'r' END AS kind, \
                  CASE WHEN c.relkind = 'c' THEN c.reltype ELSE c.oid END AS oid \
             FROM pg_class c WHERE d.refclassid = 'pg_class'::regclass AND c.oid = d.refobjid \
           UNION ALL SELECT CASE WHEN rc.relkind IS NULL OR rc.relkind = 'c' THEN 't' ELSE 'r' END, \
                  CASE WHEN rc.relkind IS NULL OR rc.relkind = 'c' THEN b.oid ELSE rc.oid END \
             FROM pg_type t LEFT JOIN pg_type e ON e.oid = t.typelem AND e.typarray = t.oid \
             JOIN pg_type b ON b.oid = coalesce(e.oid, t.oid) \
             LEFT JOIN pg_class rc ON rc.oid = b.typrelid \
             WHERE d.refclassid = 'pg_type'::regclass AND t.oid = d.refobjid \
           UNION ALL SELECT 'f', d.refobjid WHERE d.refclassid = 'pg_proc'::regclass \
           UNION ALL SELECT 'c', d.refobjid WHERE d.refclassid = 'pg_collation'::regclass) r \
         WHERE d.deptype IN ('n', 'a') AND d.objid >= 16384 AND d.refobjid >= 16384 \
           AND d.classid IN ('pg_class'::regclass, 'pg_type'::regclass, 'pg_proc'::regclass, \
                             'pg_attrdef'::regclass, 'pg_constraint'::regclass, 'pg_rewrite'::regclass) \
           AND d.refclassid IN ('pg_class'::regclass, 'pg_type'::regclass, 'pg_proc'::regclass, \
                                'pg_collation'::regclass) \
           AND (o.kind, o.oid) IS DISTINCT FROM (r.kind, r.oid) \
         ORDER BY 1, 2, 3, 4, 5";
    let object = |kind: &str, oid: u32| match kind {
        "t" => ObjectRef::Type(oid),
        "f" => ObjectRef::Function(oid),
        "c" => ObjectRef::Collation(oid),
        _ => ObjectRef::Relation(oid),
    };
    rows(client, sql, what)
        .await?
        .iter()
        .map(|r| {
            Ok(Dependency {
                object: object(&get::<String>(r, 0, what)?, get(r, 1, what)?),
                column: get(r, 2, what)?,
                needs: object(&get::<String>(r, 3, what)?, get(r, 4, what)?),
            })
        })
        .collect()
}

const COLLATION_SQL: &str = "quote_ident(cn.nspname) || '.' || quote_ident(co.collname)";

async fn load_types(client: &Client) -> Result<Vec<DdlObject>, CatalogError> {
    let what = "types";
    let sql = format!(
        "SELECT t.oid, n.nspname, t.typname, t.typtype::text, obj_description(t.oid, 'pg_type'), \
           ARRAY(SELECT CASE WHEN et.typcategory = 'A' AND et.typelem <> 0 THEN et.typelem ELSE et.oid END \
                 FROM pg_type et WHERE et.oid IN ( \
                   SELECT t.typbasetype \
                   UNION ALL SELECT a.atttypid FROM pg_attribute a \
                     WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped \
                   UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid))::oid[] \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         LEFT JOIN pg_class rc ON rc.oid = t.typrelid \
         WHERE {} AND t.typtype IN ('e','d','c','r') AND (t.typtype <> 'c' OR rc.relkind = 'c') AND {} \
         ORDER BY t.oid",
        user_ns("n"),
        not_extension_member("pg_type", "t.oid")
    );
    let type_rows = rows(client, &sql, what).await?;

    let labels = enum_labels(client).await?;
    let domains = domain_bases(client).await?;
    let domain_checks = domain_checks(client).await?;
    let attrs = composite_attributes(client).await?;
    let ranges = range_options(client).await?;
    let mut oids = Vec::with_capacity(type_rows.len());
    let mut objects = Vec::with_capacity(type_rows.len());
    let mut dep_oids = Vec::with_capacity(type_rows.len());
    for r in &type_rows {
        let oid: u32 = get(r, 0, what)?;
        let name = QualifiedName::new(get::<String>(r, 1, what)?, get::<String>(r, 2, what)?);
        let kind: String = get(r, 3, what)?;
        let comment: Option<String> = get(r, 4, what)?;
        dep_oids.push(get::<Vec<u32>>(r, 5, what)?);
        let q = name.quoted();
        let mut ddl = match kind.as_str() {
            "e" => {
                let l = labels
                    .get(&oid)
                    .map(|v| v.iter().map(|s| quote_literal(s)).collect::<Vec<_>>());
                format!(
                    "CREATE TYPE {q} AS ENUM ({});\n",
                    l.unwrap_or_default().join(", ")
                )
            }
            "d" => {
                let Some((base, notnull, default, coll)) = domains.get(&oid) else {
                    return Err(CatalogError::Unexpected {
                        what: what.into(),
                        detail: format!("domain {name} has no base type"),
                    });
                };
                let mut s = format!("CREATE DOMAIN {q} AS {base}");
                if let Some(c) = coll {
                    s.push_str(&format!(" COLLATE {c}"));
                }
                if let Some(d) = default {
                    s.push_str(&format!(" DEFAULT {d}"));
                }
                if *notnull {
                    s.push_str(" NOT NULL");
                }
                let mut later = String::new();
                for (cname, def, validated) in
                    domain_checks.get(&oid).map(Vec::as_slice).unwrap_or(&[])
                {
                    if *validated {
                        s.push_str(&format!(" CONSTRAINT {} {def}", quote_ident(cname)));
                    } else {
                        // CREATE DOMAIN cannot take NOT VALID constraints; ALTER DOMAIN can.
                        later.push_str(&format!(
                            "ALTER DOMAIN {q} ADD CONSTRAINT {} {def};\n",
                            quote_ident(cname)
                        ));
                    }
                }
                s.push_str(";\n");
                s.push_str(&later);
                s
            }
            "c" => format!(
                "CREATE TYPE {q} AS ({});\n",
                attrs.get(&oid).map(|v| v.join(", ")).unwrap_or_default()
            ),
            _ => format!(
                "CREATE TYPE {q} AS RANGE ({});\n",
                ranges.get(&oid).cloned().unwrap_or_default()
            ),
        };
        let comment_kind = if kind == "d" { "DOMAIN" } else { "TYPE" };
        ddl.push_str(&comment_stmt(comment_kind, &q, &comment));
        oids.push(oid);
        objects.push(DdlObject {
            name,
            ddl,
            id: Some(ObjectRef::Type(oid)),
        });
    }
    let index: HashMap<u32, usize> = oids.iter().enumerate().map(|(i, o)| (*o, i)).collect();
    let deps: Vec<Vec<usize>> = dep_oids
        .iter()
        .map(|d| d.iter().filter_map(|o| index.get(o).copied()).collect())
        .collect();
    Ok(reorder(objects, &topo_order(&deps)))
}

/// Each enum's labels in order, by type OID.
async fn enum_labels(client: &Client) -> Result<HashMap<u32, Vec<String>>, CatalogError> {
    let what_e = "enum labels";
    let mut labels: HashMap<u32, Vec<String>> = HashMap::new();
    for r in rows(
        client,
        "SELECT enumtypid, enumlabel::text FROM pg_enum ORDER BY enumtypid, enumsortorder",
        what_e,
    )
    .await?
    {
        labels
            .entry(get(&r, 0, what_e)?)
            .or_default()
            .push(get(&r, 1, what_e)?);
    }

    Ok(labels)
}

/// A domain's base type, NOT NULL, default and collation.
type DomainBase = (String, bool, Option<String>, Option<String>);

/// Each domain's base, by type OID.
async fn domain_bases(client: &Client) -> Result<HashMap<u32, DomainBase>, CatalogError> {
    let what_d = "domains";
    let sql = format!(
        "SELECT t.oid, format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault, \
           CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN {COLLATION_SQL} END \
         FROM pg_type t JOIN pg_type bt ON bt.oid = t.typbasetype \
         LEFT JOIN pg_collation co ON co.oid = t.typcollation \
         LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE t.typtype = 'd'"
    );
    let mut domains: HashMap<u32, DomainBase> = HashMap::new();
    for r in rows(client, &sql, what_d).await? {
        domains.insert(
            get(&r, 0, what_d)?,
            (
                get(&r, 1, what_d)?,
                get(&r, 2, what_d)?,
                get(&r, 3, what_d)?,
                get(&r, 4, what_d)?,
            ),
        );
    }
    Ok(domains)
}

/// Each domain's CHECK constraints (name, definition, validated), by type OID.
async fn domain_checks(
    client: &Client,
) -> Result<HashMap<u32, Vec<(String, String, bool)>>, CatalogError> {
    let what_dc = "domain constraints";
    let mut domain_checks: HashMap<u32, Vec<(String, String, bool)>> = HashMap::new();
    for r in rows(
        client,
        "SELECT contypid, conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint \
         WHERE contypid <> 0 AND contype = 'c' ORDER BY contypid, conname",
        what_dc,
    )
    .await?
    {
        domain_checks
            .entry(get(&r, 0, what_dc)?)
            .or_default()
            .push((
                get(&r, 1, what_dc)?,
                get(&r, 2, what_dc)?,
                get(&r, 3, what_dc)?,
            ));
    }

    Ok(domain_checks)
}

/// Each composite type's attribute definitions in order, by type OID.
async fn composite_attributes(client: &Client) -> Result<HashMap<u32, Vec<String>>, CatalogError> {
    let what_c = "composite type attributes";
    let sql = format!(
        "SELECT t.oid, a.attname, format_type(a.atttypid, a.atttypmod), \
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation THEN {COLLATION_SQL} END \
         FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid \
         JOIN pg_type at ON at.oid = a.atttypid \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
         WHERE t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY t.oid, a.attnum"
    );
    let mut attrs: HashMap<u32, Vec<String>> = HashMap::new();
    for r in rows(client, &sql, what_c).await? {
        let name: String = get(&r, 1, what_c)?;
        let ty: String = get(&r, 2, what_c)?;
        let coll: Option<String> = get(&r, 3, what_c)?;
        let mut def = format!("{} {ty}", quote_ident(&name));
        if let Some(c) = coll {
            def.push_str(&format!(" COLLATE {c}"));
        }
        attrs.entry(get(&r, 0, what_c)?).or_default().push(def);
    }

    Ok(attrs)
}

/// Each range type's `CREATE TYPE ... AS RANGE` options, by type OID.
async fn range_options(client: &Client) -> Result<HashMap<u32, String>, CatalogError> {
    let what_r = "range types";
    let sql = format!(
        "SELECT r.rngtypid, format_type(r.rngsubtype, NULL), \
           CASE WHEN r.rngsubdiff <> 0 THEN (SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.proname) \
             FROM pg_proc p JOIN pg_namespace pn ON pn.oid = p.pronamespace WHERE p.oid = r.rngsubdiff) END, \
           CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN {COLLATION_SQL} END, \
           (SELECT quote_ident(mn.nspname) || '.' || quote_ident(mt.typname) FROM pg_type mt \
             JOIN pg_namespace mn ON mn.oid = mt.typnamespace \
             WHERE mt.oid = (to_jsonb(r) ->> 'rngmultitypid')::oid), \
           r.rngcanonical <> 0 \
         FROM pg_range r JOIN pg_type st ON st.oid = r.rngsubtype \
         JOIN pg_type rt ON rt.oid = r.rngtypid JOIN pg_namespace rn ON rn.oid = rt.typnamespace \
         LEFT JOIN pg_collation co ON co.oid = r.rngcollation \
         LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
         WHERE {}",
        user_ns("rn")
    );
    let mut ranges: HashMap<u32, String> = HashMap::new();
    for r in rows(client, &sql, what_r).await? {
        let oid: u32 = get(&r, 0, what_r)?;
        let mut opts = vec![format!("SUBTYPE = {}", get::<String>(&r, 1, what_r)?)];
        if let Some(diff) = get::<Option<String>>(&r, 2, what_r)? {
            opts.push(format!("SUBTYPE_DIFF = {diff}"));
        }
        if let Some(coll) = get::<Option<String>>(&r, 3, what_r)? {
            opts.push(format!("COLLATION = {coll}"));
        }
        if let Some(multi) = get::<Option<String>>(&r, 4, what_r)? {
            opts.push(format!("MULTIRANGE_TYPE_NAME = {multi}"));
        }
        if get::<bool>(&r, 5, what_r)? {
            tracing::warn!(
                type_oid = oid,
                "range type has a canonical function, which howdah does not recreate"
            );
        }
        ranges.insert(oid, opts.join(", "));
    }

    Ok(ranges)
}

async fn load_functions(client: &Client) -> Result<Vec<DdlObject>, CatalogError> {
    let what = "functions";
    let sql = format!(
        "SELECT n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', \
           p.prokind::text, CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END, \
           obj_description(p.oid, 'pg_proc'), \
           quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')', \
           p.oid \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE {} AND {} \
           AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_proc'::regclass \
                           AND i.objid = p.oid AND i.deptype = 'i') \
         ORDER BY p.oid",
        user_ns("n"),
        not_extension_member("pg_proc", "p.oid")
    );
    // Functions with an internal dependency (range and multirange constructors) are created
    // by their type.
    let mut out = Vec::new();
    for r in rows(client, &sql, what).await? {
        let name = QualifiedName::new(get::<String>(&r, 0, what)?, get::<String>(&r, 1, what)?);
        let kind: String = get(&r, 2, what)?;
        // Aggregates have no pg_get_functiondef: objects.rs renders them.
        let Some(def) = get::<Option<String>>(&r, 3, what)? else {
            continue;
        };
        let mut ddl = def.trim_end().trim_end_matches(';').to_string();
        ddl.push_str(";\n");
        let sig: String = get(&r, 5, what)?;
        let kind = if kind == "p" { "PROCEDURE" } else { "FUNCTION" };
        ddl.push_str(&comment_stmt(kind, &sig, &get(&r, 4, what)?));
        out.push(DdlObject {
            name,
            ddl,
            id: Some(ObjectRef::Function(get(&r, 6, what)?)),
        });
    }
    Ok(out)
}

/// Column comments of views, by view OID.
type ViewColumns = HashMap<u32, Vec<(String, String)>>;
/// Index statements (with comments) of materialized views, by view OID.
type MatviewIndexes = HashMap<u32, Vec<String>>;

async fn load_tables(
    client: &Client,
) -> Result<(Vec<Table>, ViewColumns, MatviewIndexes), CatalogError> {
    let what = "tables";
    let sql = format!(
        "SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relpersistence = 'u', \
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, \
           CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END, \
           c.reltuples::float8, pg_relation_size(c.oid) / current_setting('block_size')::int8, \
           pg_table_size(c.oid), obj_description(c.oid, 'pg_class'), pg_get_userbyid(c.relowner), \
           c.relhassubclass, c.relrowsecurity, c.relforcerowsecurity, \
           CASE WHEN am.amname <> 'heap' THEN quote_ident(am.amname) END, \
           coalesce(c.reloptions, ARRAY[]::text[]), ts.spcname::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_am am ON am.oid = c.relam \
         LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace \
         WHERE c.relkind IN ('r','p','f') AND {} AND {} ORDER BY c.oid",
        user_ns("n"),
        not_extension_member("pg_class", "c.oid")
    );
    let mut tables: Vec<Table> = Vec::new();
    let mut bounds: HashMap<u32, String> = HashMap::new();
    for r in rows(client, &sql, what).await? {
        let oid: u32 = get(&r, 0, what)?;
        let name = QualifiedName::new(get::<String>(&r, 1, what)?, get::<String>(&r, 2, what)?);
        let relkind: String = get(&r, 3, what)?;
        if relkind == "f" {
            // Created by objects.rs, without rows: they live on their server.
            continue;
        }
        let kind = match get::<Option<String>>(&r, 5, what)? {
            Some(partition_key) if relkind == "p" => TableKind::Partitioned { partition_key },
            _ => TableKind::Ordinary,
        };
        if let Some(b) = get::<Option<String>>(&r, 6, what)? {
            bounds.insert(oid, b);
        }
        let reltuples: f64 = get(&r, 7, what)?;
        tables.push(Table {
            oid,
            name,
            kind,
            unlogged: get(&r, 4, what)?,
            estimated_rows: reltuples as i64,
            blocks: get(&r, 8, what)?,
            size_bytes: get(&r, 9, what)?,
            comment: get(&r, 10, what)?,
            owner: get(&r, 11, what)?,
            has_children: get(&r, 12, what)?,
            row_security: crate::catalog::RowSecurity {
                enabled: get(&r, 13, what)?,
                forced: get(&r, 14, what)?,
                policies: Vec::new(),
            },
            access_method: get(&r, 15, what)?,
            options: get(&r, 16, what)?,
            tablespace: get(&r, 17, what)?,
            ..Table::default()
        });
    }
    let by_oid: HashMap<u32, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();

    let what = "inheritance";
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    for r in rows(
        client,
        "SELECT inhrelid, inhparent FROM pg_inherits ORDER BY inhrelid, inhseqno",
        what,
    )
    .await?
    {
        let (child, parent): (u32, u32) = (get(&r, 0, what)?, get(&r, 1, what)?);
        let (Some(&ci), Some(&pi)) = (by_oid.get(&child), by_oid.get(&parent)) else {
            continue;
        };
        let pname = tables[pi].name.clone();
        parents[ci].push(pi);
        match bounds.get(&child) {
            Some(bound) => tables[ci].partition_of = Some((pname, bound.clone())),
            None => tables[ci].inherits.push(pname),
        }
    }

    let what = "columns";
    let sql = format!(
        "SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, \
           a.attnotnull, CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
           CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END, a.attidentity::text, \
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN {COLLATION_SQL} END, \
           col_description(a.attrelid, a.attnum), NOT a.attislocal, c.relkind IN ('v','m') \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
         WHERE c.relkind IN ('r','p','v','m') AND a.attnum > 0 AND NOT a.attisdropped AND {} \
         ORDER BY a.attrelid, a.attnum",
        user_ns("n")
    );
    let mut view_columns: ViewColumns = HashMap::new();
    for r in rows(client, &sql, what).await? {
        let rel: u32 = get(&r, 0, what)?;
        let name: String = get(&r, 2, what)?;
        let comment: Option<String> = get(&r, 10, what)?;
        if get::<bool>(&r, 12, what)? {
            if let Some(c) = comment {
                view_columns.entry(rel).or_default().push((name, c));
            }
            continue;
        }
        let Some(&ti) = by_oid.get(&rel) else {
            continue;
        };
        let identity: String = get(&r, 8, what)?;
        tables[ti].columns.push(Column {
            name,
            attnum: get(&r, 1, what)?,
            type_sql: get(&r, 3, what)?,
            type_oid: get(&r, 4, what)?,
            not_null: get(&r, 5, what)?,
            default: get(&r, 6, what)?,
            // The sequence is filled in by load_sequences, which knows identity sequences.
            identity: match identity.as_str() {
                "a" => Some(Identity {
                    always: true,
                    ..Identity::default()
                }),
                "d" => Some(Identity {
                    always: false,
                    ..Identity::default()
                }),
                _ => None,
            },
            generated: get(&r, 7, what)?,
            collation: get(&r, 9, what)?,
            comment,
            inherited: get(&r, 11, what)?,
            nullable_for_zero_dates: false,
        });
    }

    load_constraints(client, &mut tables, &by_oid).await?;
    let matview_indexes = load_indexes(client, &mut tables, &by_oid).await?;
    load_chunk_keys(client, &mut tables, &by_oid).await?;
    load_triggers(client, &mut tables, &by_oid).await?;
    load_grants(client, &mut tables, &by_oid).await?;
    load_policies(client, &mut tables, &by_oid).await?;

    let order = topo_order(&parents);
    Ok((reorder(tables, &order), view_columns, matview_indexes))
}

async fn load_constraints(
    client: &Client,
    tables: &mut [Table],
    by_oid: &HashMap<u32, usize>,
) -> Result<(), CatalogError> {
    let what = "constraints";
    let sql = format!(
        "SELECT co.conrelid, co.conname, co.contype::text, pg_get_constraintdef(co.oid), co.conislocal, \
           co.conparentid <> 0, fn.nspname, fc.relname, obj_description(co.oid, 'pg_constraint'), \
           pn.nspname, pc.relname, \
           CASE WHEN co.contype IN ('p','u') AND NOT co.condeferrable AND c.relkind = 'r' \
                AND ih.inhparent IS NULL THEN pg_get_indexdef(co.conindid) END, \
           (SELECT t.spcname::text FROM pg_class ci JOIN pg_tablespace t ON t.oid = ci.reltablespace \
             WHERE ci.oid = co.conindid) \
         FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_class fc ON fc.oid = co.confrelid \
         LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace \
         LEFT JOIN pg_inherits ih ON co.contype IN ('p','u','x') AND ih.inhrelid = co.conindid \
         LEFT JOIN pg_class pc ON pc.oid = ih.inhparent \
         LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
         WHERE co.contype IN ('p','u','c','x','f') AND c.relkind IN ('r','p') AND {} \
         ORDER BY co.conrelid, co.conname",
        user_ns("n")
    );
    for r in rows(client, &sql, what).await? {
        let Some(&ti) = by_oid.get(&get::<u32>(&r, 0, what)?) else {
            continue;
        };
        let contype: String = get(&r, 2, what)?;
        let local: bool = get(&r, 4, what)?;
        let cloned: bool = get(&r, 5, what)?;
        let references = match (
            get::<Option<String>>(&r, 6, what)?,
            get::<Option<String>>(&r, 7, what)?,
        ) {
            (Some(s), Some(n)) => Some(QualifiedName::new(s, n)),
            _ => None,
        };
        let attach_to = match (
            get::<Option<String>>(&r, 9, what)?,
            get::<Option<String>>(&r, 10, what)?,
        ) {
            (Some(s), Some(n)) => Some(QualifiedName::new(s, n)),
            _ => None,
        };
        let con = Constraint {
            name: get(&r, 1, what)?,
            definition: get(&r, 3, what)?,
            references,
            comment: get(&r, 8, what)?,
            attach_to,
            index_definition: get(&r, 11, what)?,
            tablespace: get(&r, 12, what)?,
        };
        match contype.as_str() {
            // A foreign key cloned onto a partition is recreated by the parent's foreign key.
            "f" if cloned => {}
            "f" => tables[ti].foreign_keys.push(con),
            // Index-backed constraints of partitions are kept: each partition builds its own
            // index after its data, then it is attached to the parent's index.
            "p" => tables[ti].primary_key = Some(con),
            "u" | "x" => tables[ti].constraints.push(con),
            // An inherited check constraint is recreated by the parent's recursing ADD CONSTRAINT.
            _ if !local => {}
            _ => tables[ti].constraints.push(con),
        }
    }
    Ok(())
}

async fn load_indexes(
    client: &Client,
    tables: &mut [Table],
    by_oid: &HashMap<u32, usize>,
) -> Result<MatviewIndexes, CatalogError> {
    let what = "indexes";
    let sql = format!(
        "SELECT i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class'), \
           pn.nspname, pc.relname, c.relkind = 'm', n.nspname, i.indisvalid OR c.relkind = 'p', \
           (SELECT spcname::text FROM pg_tablespace WHERE oid = ic.reltablespace) \
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_inherits ih ON ih.inhrelid = i.indexrelid \
         LEFT JOIN pg_class pc ON pc.oid = ih.inhparent \
         LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
         WHERE c.relkind IN ('r','p','m') AND {} \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid \
                           AND k.conrelid = i.indrelid AND k.contype IN ('p','u','x')) \
         ORDER BY i.indrelid, ic.relname",
        user_ns("n")
    );
    let mut matview: MatviewIndexes = HashMap::new();
    for r in rows(client, &sql, what).await? {
        let rel: u32 = get(&r, 0, what)?;
        let name: String = get(&r, 1, what)?;
        let definition: String = get(&r, 2, what)?;
        let comment: Option<String> = get(&r, 3, what)?;
        if !get::<bool>(&r, 8, what)? {
            tracing::warn!(index = %name, "invalid index (failed concurrent build) skipped");
            continue;
        }
        if get::<bool>(&r, 6, what)? {
            let schema: String = get(&r, 7, what)?;
            let q = QualifiedName::new(schema, name.as_str()).quoted();
            let stmt = format!("{definition};\n{}", comment_stmt("INDEX", &q, &comment));
            matview.entry(rel).or_default().push(stmt);
            continue;
        }
        let Some(&ti) = by_oid.get(&rel) else {
            continue;
        };
        let attach_to = match (
            get::<Option<String>>(&r, 4, what)?,
            get::<Option<String>>(&r, 5, what)?,
        ) {
            (Some(s), Some(n)) => Some(QualifiedName::new(s, n)),
            _ => None,
        };
        tables[ti].indexes.push(Index {
            name,
            definition,
            comment,
            attach_to,
            tablespace: get(&r, 9, what)?,
        });
    }
    Ok(matview)
}

async fn load_chunk_keys(
    client: &Client,
    tables: &mut [Table],
    by_oid: &HashMap<u32, usize>,
) -> Result<(), CatalogError> {
    let what = "key candidates";
    // Per key column: its number and the index's collation when it is not the column's. An
    // index whose operator class is not its type's default btree one orders and compares
    // otherwise than the type's operators that keyset predicates use: it is no key here.
    let sql = format!(
        "SELECT i.indrelid, ARRAY(SELECT k.n FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, ord) \
                                  WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)::int2[], \
           ARRAY(SELECT coalesce(CASE WHEN k.coll <> 0 AND k.coll IS DISTINCT FROM a.attcollation \
                                   THEN format('%I.%I', cn.nspname, co.collname) END, '') \
                 FROM unnest(i.indkey::int2[], i.indcollation::oid[]) WITH ORDINALITY k(n, coll, ord) \
                 LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n \
                 LEFT JOIN pg_collation co ON co.oid = k.coll \
                 LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
                 WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)::text[] \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL \
           AND c.relkind IN ('r','p') AND {} \
           AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) WITH ORDINALITY o(opc, ord) \
                           JOIN pg_opclass oc ON oc.oid = o.opc JOIN pg_am am ON am.oid = oc.opcmethod \
                           WHERE o.ord <= i.indnkeyatts AND NOT (oc.opcdefault AND am.amname = 'btree')) \
         ORDER BY i.indrelid, i.indisprimary DESC, i.indexrelid",
        user_ns("n")
    );
    for r in rows(client, &sql, what).await? {
        let Some(&ti) = by_oid.get(&get::<u32>(&r, 0, what)?) else {
            continue;
        };
        let table = &mut tables[ti];
        if table.chunk_key.is_some() {
            continue;
        }
        let attnums: Vec<i16> = get(&r, 1, what)?;
        let collations: Vec<String> = get(&r, 2, what)?;
        let key: Option<Vec<KeyColumn>> = attnums
            .iter()
            .zip(collations)
            .map(|(n, collation)| {
                table
                    .columns
                    .iter()
                    .find(|c| c.attnum == *n && c.not_null && c.generated.is_none())
                    .map(|c| KeyColumn {
                        name: c.name.clone(),
                        type_sql: c.type_sql.clone(),
                        collation: (!collation.is_empty()).then_some(collation),
                    })
            })
            .collect();
        if let Some(k) = key.filter(|k| !k.is_empty()) {
            table.chunk_key = Some(k);
        }
    }
    Ok(())
}

async fn load_triggers(
    client: &Client,
    tables: &mut [Table],
    by_oid: &HashMap<u32, usize>,
) -> Result<(), CatalogError> {
    let what = "triggers";
    let sql = format!(
        "SELECT t.tgrelid, t.tgname, pg_get_triggerdef(t.oid, false), obj_description(t.oid, 'pg_trigger'), \
           t.tgenabled::text \
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND c.relkind IN ('r','p') AND {} \
         ORDER BY t.tgrelid, t.tgname",
        user_ns("n")
    );
    for r in rows(client, &sql, what).await? {
        let Some(&ti) = by_oid.get(&get::<u32>(&r, 0, what)?) else {
            continue;
        };
        let name: String = get(&r, 1, what)?;
        let table_q = tables[ti].name.quoted();
        let mut ddl = format!("{};\n", get::<String>(&r, 2, what)?);
        let target = format!("{} ON {table_q}", quote_ident(&name));
        ddl.push_str(&comment_stmt("TRIGGER", &target, &get(&r, 3, what)?));
        let enabled: String = get(&r, 4, what)?;
        let state = match enabled.as_str() {
            "D" => Some("DISABLE TRIGGER"),
            "R" => Some("ENABLE REPLICA TRIGGER"),
            "A" => Some("ENABLE ALWAYS TRIGGER"),
            _ => None,
        };
        if let Some(s) = state {
            ddl.push_str(&format!(
                "ALTER TABLE {table_q} {s} {};\n",
                quote_ident(&name)
            ));
        }
        let name = QualifiedName::new(tables[ti].name.schema.clone(), name);
        tables[ti].triggers.push(DdlObject {
            name,
            ddl,
            id: None,
        });
    }
    Ok(())
}

async fn load_grants(
    client: &Client,
    tables: &mut [Table],
    by_oid: &HashMap<u32, usize>,
) -> Result<(), CatalogError> {
    let what = "table privileges";
    let sql = format!(
        "SELECT c.oid, a.privilege_type, \
           CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
           a.is_grantable \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL aclexplode(c.relacl) a \
         WHERE c.relacl IS NOT NULL AND c.relkind IN ('r','p') AND a.grantee <> c.relowner AND {} \
         ORDER BY c.oid, 3, 2",
        user_ns("n")
    );
    for r in rows(client, &sql, what).await? {
        let Some(&ti) = by_oid.get(&get::<u32>(&r, 0, what)?) else {
            continue;
        };
        let privilege: String = get(&r, 1, what)?;
        let grantee: String = get(&r, 2, what)?;
        let option = if get::<bool>(&r, 3, what)? {
            " WITH GRANT OPTION"
        } else {
            ""
        };
        let stmt = format!(
            "GRANT {privilege} ON TABLE {} TO {grantee}{option}",
            tables[ti].name.quoted()
        );
        tables[ti].grants.push(stmt);
    }
    Ok(())
}

/// Row-level security policies, rendered as `pg_dump` writes them: permissive or
/// restrictive, the command, the roles (`PUBLIC` for 0), `USING` and `WITH CHECK`.
async fn load_policies(
    client: &Client,
    tables: &mut [Table],
    by_oid: &HashMap<u32, usize>,
) -> Result<(), CatalogError> {
    let what = "row-level security policies";
    let sql = "SELECT p.polrelid, p.polname, \
           CASE WHEN p.polpermissive THEN '' ELSE ' AS RESTRICTIVE' END \
           || CASE p.polcmd WHEN 'r' THEN ' FOR SELECT' WHEN 'a' THEN ' FOR INSERT' \
                WHEN 'w' THEN ' FOR UPDATE' WHEN 'd' THEN ' FOR DELETE' ELSE '' END \
           || ' TO ' || array_to_string(ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' \
                ELSE quote_ident(pg_get_userbyid(r)) END FROM unnest(p.polroles) r ORDER BY 1), ', ') \
           || COALESCE(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '') \
           || COALESCE(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', ''), \
           obj_description(p.oid, 'pg_policy') \
         FROM pg_policy p ORDER BY p.polrelid, p.polname";
    for r in rows(client, sql, what).await? {
        if let Some(&ti) = by_oid.get(&get::<u32>(&r, 0, what)?) {
            tables[ti].row_security.policies.push(Policy {
                name: get(&r, 1, what)?,
                clauses: get(&r, 2, what)?,
                comment: get(&r, 3, what)?,
            });
        }
    }
    Ok(())
}

async fn load_sequences(
    client: &Client,
    tables: &mut [Table],
) -> Result<Vec<Sequence>, CatalogError> {
    let what = "sequences";
    let sql = format!(
        "SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, \
           s.seqmax, s.seqmin, s.seqcache, s.seqcycle, d.deptype::text, tn.nspname, tc.relname, \
           ta.attname, obj_description(c.oid, 'pg_class'), c.oid \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid \
           AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a','i') \
         LEFT JOIN pg_class tc ON tc.oid = d.refobjid \
         LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
         LEFT JOIN pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid \
         WHERE {} AND {} ORDER BY c.oid",
        user_ns("n"),
        not_extension_member("pg_class", "c.oid")
    );
    let by_name: HashMap<QualifiedName, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut out = Vec::new();
    for r in rows(client, &sql, what).await? {
        let name = QualifiedName::new(get::<String>(&r, 0, what)?, get::<String>(&r, 1, what)?);
        let type_sql: String = get(&r, 2, what)?;
        let (start, inc, max, min, cache): (i64, i64, i64, i64, i64) = (
            get(&r, 3, what)?,
            get(&r, 4, what)?,
            get(&r, 5, what)?,
            get(&r, 6, what)?,
            get(&r, 7, what)?,
        );
        let cycle = if get::<bool>(&r, 8, what)? {
            "CYCLE"
        } else {
            "NO CYCLE"
        };
        let opts = format!(
            "START WITH {start} INCREMENT BY {inc} MINVALUE {min} MAXVALUE {max} CACHE {cache} {cycle}"
        );
        let deptype: Option<String> = get(&r, 9, what)?;
        let owner = match (
            get::<Option<String>>(&r, 10, what)?,
            get::<Option<String>>(&r, 11, what)?,
            get::<Option<String>>(&r, 12, what)?,
        ) {
            (Some(s), Some(t), Some(col)) => Some((QualifiedName::new(s, t), col)),
            _ => None,
        };
        // An owning relation that is not a loaded table (foreign table, extension table) makes
        // the sequence standalone for howdah.
        let owner = owner.and_then(|(t, col)| by_name.get(&t).map(|&ti| (ti, t, col)));
        let comment = comment_stmt("SEQUENCE", &name.quoted(), &get(&r, 13, what)?);
        let oid: u32 = get(&r, 14, what)?;
        match (deptype.as_deref(), owner) {
            (Some("i"), Some((ti, table, col))) => {
                if let Some(id) = tables[ti]
                    .columns
                    .iter_mut()
                    .find(|c| c.name == col)
                    .and_then(|c| c.identity.as_mut())
                {
                    id.sequence = name.clone();
                    id.options = format!("SEQUENCE NAME {} {opts}", name.quoted());
                }
                out.push(Sequence {
                    oid,
                    name,
                    ddl: None,
                    owned_by: None,
                    owner_table: Some(table),
                    identity: true,
                });
            }
            (_, owner) => {
                let ddl = Some(format!(
                    "CREATE SEQUENCE IF NOT EXISTS {} AS {type_sql} {opts};\n{comment}",
                    name.quoted()
                ));
                let (owned_by, owner_table) = match owner {
                    Some((_, table, col)) => (
                        Some(format!(
                            "ALTER SEQUENCE {} OWNED BY {}.{}",
                            name.quoted(),
                            table.quoted(),
                            quote_ident(&col)
                        )),
                        Some(table),
                    ),
                    None => (None, None),
                };
                out.push(Sequence {
                    oid,
                    name,
                    ddl,
                    owned_by,
                    owner_table,
                    identity: false,
                });
            }
        }
    }
    Ok(out)
}

async fn load_views(
    client: &Client,
    view_columns: ViewColumns,
    matview_indexes: MatviewIndexes,
) -> Result<Vec<View>, CatalogError> {
    let what = "views";
    let sql = format!(
        "SELECT c.oid, n.nspname, c.relname, c.relkind = 'm', pg_get_viewdef(c.oid, true), \
           obj_description(c.oid, 'pg_class'), pg_get_userbyid(c.relowner), \
           array_to_string(c.reloptions, ', ') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('v','m') AND {} AND {} ORDER BY c.oid",
        user_ns("n"),
        not_extension_member("pg_class", "c.oid")
    );
    let view_rows = rows(client, &sql, what).await?;
    let what_d = "view dependencies";
    let mut deps: HashMap<u32, Vec<QualifiedName>> = HashMap::new();
    for r in rows(
        client,
        "SELECT DISTINCT r.ev_class, rn.nspname, rc.relname FROM pg_rewrite r \
         JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid \
           AND d.refclassid = 'pg_class'::regclass \
         JOIN pg_class rc ON rc.oid = d.refobjid JOIN pg_namespace rn ON rn.oid = rc.relnamespace \
         WHERE rc.oid <> r.ev_class AND rc.relkind IN ('r','p','v','m','f') \
         ORDER BY 1, 2, 3",
        what_d,
    )
    .await?
    {
        deps.entry(get(&r, 0, what_d)?)
            .or_default()
            .push(QualifiedName::new(
                get::<String>(&r, 1, what_d)?,
                get::<String>(&r, 2, what_d)?,
            ));
    }
    let mut views = Vec::with_capacity(view_rows.len());
    for r in &view_rows {
        let oid: u32 = get(r, 0, what)?;
        let name = QualifiedName::new(get::<String>(r, 1, what)?, get::<String>(r, 2, what)?);
        let materialized: bool = get(r, 3, what)?;
        let def: String = get(r, 4, what)?;
        let def = def.trim().trim_end_matches(';');
        let options: Option<String> = get(r, 7, what)?;
        let with = options
            .filter(|o| !o.is_empty())
            .map(|o| format!(" WITH ({o})"))
            .unwrap_or_default();
        let q = name.quoted();
        let (kind, tail) = if materialized {
            ("MATERIALIZED VIEW", "\n  WITH NO DATA")
        } else {
            ("VIEW", "")
        };
        let mut ddl = format!("CREATE {kind} {q}{with} AS\n{def}{tail};\n");
        ddl.push_str(&comment_stmt(kind, &q, &get(r, 5, what)?));
        for (col, c) in view_columns.get(&oid).map(Vec::as_slice).unwrap_or(&[]) {
            ddl.push_str(&comment_stmt(
                "COLUMN",
                &format!("{q}.{}", quote_ident(col)),
                &Some(c.clone()),
            ));
        }
        for stmt in matview_indexes.get(&oid).map(Vec::as_slice).unwrap_or(&[]) {
            ddl.push_str(stmt);
        }
        views.push(View {
            oid,
            name,
            materialized,
            ddl,
            depends_on: deps.remove(&oid).unwrap_or_default(),
            owner: get(r, 6, what)?,
        });
    }
    let index: HashMap<QualifiedName, usize> = views
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.clone(), i))
        .collect();
    let order_deps: Vec<Vec<usize>> = views
        .iter()
        .map(|v| {
            v.depends_on
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect()
        })
        .collect();
    let order = topo_order(&order_deps);
    Ok(reorder(views, &order))
}

/// Schema steps per transaction: a share of the target's lock table small enough to leave room
/// for its other sessions (a step takes a handful of locks: its relation, TOAST table and
/// index, types, the schema). 100 with PostgreSQL's defaults (64 locks x 100 connections).
pub async fn steps_per_transaction(target: &Client) -> Result<usize, CatalogError> {
    let slots = lock_slots(target).await?;
    Ok((slots / 64).clamp(1, 500) as usize)
}

/// The size of the server's lock table, shared by all its sessions:
/// `max_locks_per_transaction` x (`max_connections` + `max_prepared_transactions`).
pub async fn lock_slots(client: &Client) -> Result<i64, CatalogError> {
    let what = "the lock table size";
    let sql = "SELECT current_setting('max_locks_per_transaction')::int8 \
                * (current_setting('max_connections')::int8 \
                   + current_setting('max_prepared_transactions')::int8)";
    match one(client, sql, what).await? {
        Some(row) => get(&row, 0, what),
        None => Err(CatalogError::Unexpected {
            what: what.into(),
            detail: "no row".into(),
        }),
    }
}
