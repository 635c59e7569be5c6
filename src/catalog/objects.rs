//! The source's other object kinds, those `pg_dump` dumps besides schemas, types, functions,
//! tables, sequences and views: aggregates, operators, operator families and classes, casts,
//! conversions, text search dictionaries and configurations, foreign data wrappers, servers,
//! user mappings and foreign tables, extended statistics, rules, replica identities, event
//! triggers, default privileges, security labels, and the owners and privileges of objects
//! other than tables; plus publications and subscriptions, which are listed, not created.
//!
//! Invariants: read with an empty `search_path` (see [`super::postgres::load`]), so every name
//! in the rendered statements is schema-qualified by the server's own `regproc`,
//! `regoperator`, `format_type` output; members of extensions are left to their extension;
//! user mapping passwords are never read into a statement unless asked for.

use tokio_postgres::{Client, Row};

use super::{
    quote_ident, quote_literal, CatalogError, ManualObject, OtherObject, QualifiedName, Stage,
};

fn query_err(what: &str) -> impl FnOnce(tokio_postgres::Error) -> CatalogError + '_ {
    move |source| CatalogError::Query {
        what: what.to_string(),
        source,
    }
}

async fn rows(client: &Client, sql: &str, what: &str) -> Result<Vec<Row>, CatalogError> {
    client.query(sql, &[]).await.map_err(query_err(what))
}

fn text(row: &Row, idx: usize, what: &str) -> Result<String, CatalogError> {
    row.try_get::<_, Option<String>>(idx)
        .map(Option::unwrap_or_default)
        .map_err(query_err(what))
}

fn opt(row: &Row, idx: usize, what: &str) -> Result<Option<String>, CatalogError> {
    row.try_get(idx).map_err(query_err(what))
}

/// The relation named by columns `idx` (schema) and `idx + 1` (name) of `row`.
fn relation(row: &Row, idx: usize, what: &str) -> Result<Option<QualifiedName>, CatalogError> {
    let schema = text(row, idx, what)?;
    Ok((!schema.is_empty()).then(|| QualifiedName {
        schema,
        name: text(row, idx + 1, what).unwrap_or_default(),
    }))
}

/// `NOT EXISTS` an extension membership of `oid` in catalog `cat`.
fn own(cat: &str, oid: &str) -> String {
    format!(
        "{oid} >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_depend xd WHERE xd.classid = '{cat}'::regclass \
         AND xd.objid = {oid} AND xd.deptype = 'e')"
    )
}

fn comment(kind: &str, target: &str, text: Option<String>) -> Vec<String> {
    text.map(|c| format!("COMMENT ON {kind} {target} IS {}", quote_literal(&c)))
        .into_iter()
        .collect()
}

/// What the loaders found.
#[derive(Debug, Default)]
pub struct Others {
    /// Objects to create.
    pub create: Vec<OtherObject>,
    /// Objects listed with the SQL to create them by hand.
    pub manual: Vec<ManualObject>,
}

/// Reads every other object kind.
pub async fn load(client: &Client, version: i32) -> Result<Others, CatalogError> {
    let mut out = Others::default();
    access_methods(client, &mut out).await?;
    aggregates(client, &mut out).await?;
    operators(client, &mut out).await?;
    operator_families(client, &mut out).await?;
    casts_and_conversions(client, &mut out).await?;
    text_search(client, &mut out).await?;
    foreign_data(client, &mut out).await?;
    statistics(client, &mut out).await?;
    rules_and_replica_identity(client, &mut out).await?;
    event_triggers(client, &mut out).await?;
    owners_and_privileges(client, &mut out).await?;
    default_privileges(client, &mut out).await?;
    security_labels(client, &mut out).await?;
    publications(client, version, &mut out).await?;
    Ok(out)
}

fn object(kind: &'static str, name: String, stage: Stage, ddl: Vec<String>) -> OtherObject {
    OtherObject {
        kind,
        name,
        stage,
        ddl,
        owner: None,
        grants: Vec::new(),
        with_password: None,
        table: None,
    }
}

async fn access_methods(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "access methods";
    let sql = format!(
        "SELECT quote_ident(a.amname), CASE a.amtype WHEN 't' THEN 'TABLE' ELSE 'INDEX' END, \
           a.amhandler::regproc::text, obj_description(a.oid, 'pg_am') \
         FROM pg_am a WHERE {} ORDER BY a.oid",
        own("pg_am", "a.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let mut ddl = vec![format!(
            "CREATE ACCESS METHOD {name} TYPE {} HANDLER {}",
            text(&r, 1, what)?,
            text(&r, 2, what)?
        )];
        ddl.extend(comment("ACCESS METHOD", &name, opt(&r, 3, what)?));
        out.create
            .push(object("access method", name, Stage::BeforeTables, ddl));
    }
    Ok(())
}

async fn aggregates(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "aggregates";
    let sql = format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname), \
           pg_get_function_arguments(p.oid), pg_get_function_identity_arguments(p.oid), \
           a.aggkind::text, a.aggtransfn::regproc::text, format_type(a.aggtranstype, NULL), \
           NULLIF(a.aggfinalfn, 0)::regproc::text, a.agginitval, \
           NULLIF(a.aggcombinefn, 0)::regproc::text, NULLIF(a.aggserialfn, 0)::regproc::text, \
           NULLIF(a.aggdeserialfn, 0)::regproc::text, NULLIF(a.aggmtransfn, 0)::regproc::text, \
           NULLIF(a.aggminvtransfn, 0)::regproc::text, \
           CASE WHEN a.aggmtranstype <> 0 THEN format_type(a.aggmtranstype, NULL) END, \
           NULLIF(a.aggmfinalfn, 0)::regproc::text, a.aggminitval, a.aggfinalextra, a.aggmfinalextra, \
           a.aggfinalmodify::text, a.aggmfinalmodify::text, \
           (SELECT 'OPERATOR(' || quote_ident(sn.nspname) || '.' || so.oprname || ')' \
              FROM pg_operator so JOIN pg_namespace sn ON sn.oid = so.oprnamespace WHERE so.oid = a.aggsortop), \
           a.aggtransspace, a.aggmtransspace, p.proparallel::text, \
           obj_description(p.oid, 'pg_proc'), pg_get_userbyid(p.proowner) \
         FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid \
         JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {} ORDER BY p.oid",
        own("pg_proc", "p.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let args = text(&r, 1, what)?;
        let ident = text(&r, 2, what)?;
        let args = if args.is_empty() { "*".into() } else { args };
        let ident = if ident.is_empty() { "*".into() } else { ident };
        let mut opts = vec![
            format!("SFUNC = {}", text(&r, 4, what)?),
            format!("STYPE = {}", text(&r, 5, what)?),
        ];
        let mut push = |key: &str, v: Option<String>| {
            if let Some(v) = v {
                opts.push(format!("{key} = {v}"));
            }
        };
        push("SSPACE", {
            let s: i32 = r.try_get(21).map_err(query_err(what))?;
            (s > 0).then(|| s.to_string())
        });
        push("FINALFUNC", opt(&r, 6, what)?);
        push("INITCOND", opt(&r, 7, what)?.map(|v| quote_literal(&v)));
        push("COMBINEFUNC", opt(&r, 8, what)?);
        push("SERIALFUNC", opt(&r, 9, what)?);
        push("DESERIALFUNC", opt(&r, 10, what)?);
        push("MSFUNC", opt(&r, 11, what)?);
        push("MINVFUNC", opt(&r, 12, what)?);
        push("MSTYPE", opt(&r, 13, what)?);
        push("MSSPACE", {
            let s: i32 = r.try_get(22).map_err(query_err(what))?;
            (s > 0).then(|| s.to_string())
        });
        push("MFINALFUNC", opt(&r, 14, what)?);
        push("MINITCOND", opt(&r, 15, what)?.map(|v| quote_literal(&v)));
        let has_final = opt(&r, 6, what)?.is_some();
        let has_mfinal = opt(&r, 14, what)?.is_some();
        let modify = |m: String| match m.as_str() {
            "s" => Some("SHAREABLE".to_string()),
            "w" => Some("READ_WRITE".to_string()),
            _ => None,
        };
        if has_final {
            push("FINALFUNC_MODIFY", modify(text(&r, 18, what)?));
        }
        if has_mfinal {
            push("MFINALFUNC_MODIFY", modify(text(&r, 19, what)?));
        }
        push("SORTOP", opt(&r, 20, what)?);
        push(
            "PARALLEL",
            match text(&r, 23, what)?.as_str() {
                "s" => Some("SAFE".into()),
                "r" => Some("RESTRICTED".into()),
                _ => None,
            },
        );
        if r.try_get::<_, bool>(16).map_err(query_err(what))? {
            opts.push("FINALFUNC_EXTRA".into());
        }
        if r.try_get::<_, bool>(17).map_err(query_err(what))? {
            opts.push("MFINALFUNC_EXTRA".into());
        }
        if text(&r, 3, what)? == "h" {
            opts.push("HYPOTHETICAL".into());
        }
        let target = format!("{name}({ident})");
        let mut ddl = vec![format!(
            "CREATE AGGREGATE {name}({args}) (\n    {}\n)",
            opts.join(",\n    ")
        )];
        ddl.extend(comment("AGGREGATE", &target, opt(&r, 24, what)?));
        let mut o = object("aggregate", target.clone(), Stage::BeforeTables, ddl);
        o.owner = Some(format!(
            "ALTER AGGREGATE {target} OWNER TO {}",
            quote_ident(&text(&r, 25, what)?)
        ));
        out.create.push(o);
    }
    Ok(())
}

async fn operators(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "operators";
    let sql = format!(
        "SELECT 'OPERATOR(' || quote_ident(n.nspname) || '.' || o.oprname || ')', \
           quote_ident(n.nspname) || '.' || o.oprname, o.oprcode::regproc::text, \
           CASE WHEN o.oprleft <> 0 THEN format_type(o.oprleft, NULL) END, \
           CASE WHEN o.oprright <> 0 THEN format_type(o.oprright, NULL) END, \
           CASE WHEN o.oprcom <> 0 THEN (SELECT 'OPERATOR(' || quote_ident(cn.nspname) || '.' || c.oprname || ')' \
             FROM pg_operator c JOIN pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprcom) END, \
           CASE WHEN o.oprnegate <> 0 THEN (SELECT 'OPERATOR(' || quote_ident(cn.nspname) || '.' || c.oprname || ')' \
             FROM pg_operator c JOIN pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprnegate) END, \
           NULLIF(o.oprrest, 0)::regproc::text, NULLIF(o.oprjoin, 0)::regproc::text, o.oprcanhash, o.oprcanmerge, \
           obj_description(o.oid, 'pg_operator'), pg_get_userbyid(o.oprowner) \
         FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace \
         WHERE {} AND o.oprcode <> 0 ORDER BY o.oid",
        own("pg_operator", "o.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 1, what)?;
        let (left, right) = (opt(&r, 3, what)?, opt(&r, 4, what)?);
        let mut opts = vec![format!("FUNCTION = {}", text(&r, 2, what)?)];
        for (key, idx) in [
            ("LEFTARG", 3),
            ("RIGHTARG", 4),
            ("COMMUTATOR", 5),
            ("NEGATOR", 6),
            ("RESTRICT", 7),
            ("JOIN", 8),
        ] {
            if let Some(v) = opt(&r, idx, what)? {
                opts.push(format!("{key} = {v}"));
            }
        }
        if r.try_get::<_, bool>(9).map_err(query_err(what))? {
            opts.push("HASHES".into());
        }
        if r.try_get::<_, bool>(10).map_err(query_err(what))? {
            opts.push("MERGES".into());
        }
        let target = format!(
            "{name} ({}, {})",
            left.as_deref().unwrap_or("NONE"),
            right.as_deref().unwrap_or("NONE")
        );
        let mut ddl = vec![format!(
            "CREATE OPERATOR {name} (\n    {}\n)",
            opts.join(",\n    ")
        )];
        ddl.extend(comment("OPERATOR", &target, opt(&r, 11, what)?));
        let mut o = object("operator", target.clone(), Stage::BeforeTables, ddl);
        o.owner = Some(format!(
            "ALTER OPERATOR {target} OWNER TO {}",
            quote_ident(&text(&r, 12, what)?)
        ));
        out.create.push(o);
    }
    Ok(())
}

async fn operator_families(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "operator families and classes";
    // A family with its members that belong to no class ("loose" members).
    let sql = format!(
        "SELECT f.oid, quote_ident(n.nspname) || '.' || quote_ident(f.opfname), quote_ident(am.amname), \
           ARRAY(SELECT 'OPERATOR ' || ao.amopstrategy || ' ' || ao.amopopr::regoperator::text \
                   || CASE WHEN ao.amoppurpose = 'o' THEN ' FOR ORDER BY ' || ao.amopsortfamily::regclass::text ELSE '' END \
                 FROM pg_amop ao JOIN pg_depend d ON d.classid = 'pg_amop'::regclass AND d.objid = ao.oid \
                   AND d.refclassid = 'pg_opfamily'::regclass AND d.refobjid = f.oid \
                 WHERE ao.amopfamily = f.oid ORDER BY ao.amopstrategy, ao.oid) \
           || ARRAY(SELECT 'FUNCTION ' || ap.amprocnum || ' (' || format_type(ap.amproclefttype, NULL) || ', ' \
                   || format_type(ap.amprocrighttype, NULL) || ') ' || ap.amproc::regprocedure::text \
                 FROM pg_amproc ap JOIN pg_depend d ON d.classid = 'pg_amproc'::regclass AND d.objid = ap.oid \
                   AND d.refclassid = 'pg_opfamily'::regclass AND d.refobjid = f.oid \
                 WHERE ap.amprocfamily = f.oid ORDER BY ap.amprocnum, ap.oid), \
           obj_description(f.oid, 'pg_opfamily'), pg_get_userbyid(f.opfowner) \
         FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am am ON am.oid = f.opfmethod \
         WHERE {} ORDER BY f.oid",
        own("pg_opfamily", "f.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 1, what)?;
        let am = text(&r, 2, what)?;
        let loose: Vec<String> = r.try_get(3).map_err(query_err(what))?;
        let target = format!("{name} USING {am}");
        let mut ddl = vec![format!("CREATE OPERATOR FAMILY {target}")];
        if !loose.is_empty() {
            ddl.push(format!(
                "ALTER OPERATOR FAMILY {target} ADD\n    {}",
                loose.join(",\n    ")
            ));
        }
        ddl.extend(comment("OPERATOR FAMILY", &target, opt(&r, 4, what)?));
        let mut o = object("operator family", target.clone(), Stage::BeforeTables, ddl);
        o.owner = Some(format!(
            "ALTER OPERATOR FAMILY {target} OWNER TO {}",
            quote_ident(&text(&r, 5, what)?)
        ));
        out.create.push(o);
    }
    let sql = format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.opcname), quote_ident(am.amname), c.opcdefault, \
           format_type(c.opcintype, NULL), quote_ident(fn.nspname) || '.' || quote_ident(f.opfname), \
           CASE WHEN c.opckeytype <> 0 THEN format_type(c.opckeytype, NULL) END, \
           ARRAY(SELECT 'OPERATOR ' || ao.amopstrategy || ' ' || ao.amopopr::regoperator::text \
                   || CASE WHEN ao.amoppurpose = 'o' THEN ' FOR ORDER BY ' || ao.amopsortfamily::regclass::text ELSE '' END \
                 FROM pg_amop ao JOIN pg_depend d ON d.classid = 'pg_amop'::regclass AND d.objid = ao.oid \
                   AND d.refclassid = 'pg_opclass'::regclass AND d.refobjid = c.oid \
                 ORDER BY ao.amopstrategy, ao.oid) \
           || ARRAY(SELECT 'FUNCTION ' || ap.amprocnum || ' (' || format_type(ap.amproclefttype, NULL) || ', ' \
                   || format_type(ap.amprocrighttype, NULL) || ') ' || ap.amproc::regprocedure::text \
                 FROM pg_amproc ap JOIN pg_depend d ON d.classid = 'pg_amproc'::regclass AND d.objid = ap.oid \
                   AND d.refclassid = 'pg_opclass'::regclass AND d.refobjid = c.oid \
                 ORDER BY ap.amprocnum, ap.oid), \
           obj_description(c.oid, 'pg_opclass'), pg_get_userbyid(c.opcowner) \
         FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace JOIN pg_am am ON am.oid = c.opcmethod \
         JOIN pg_opfamily f ON f.oid = c.opcfamily JOIN pg_namespace fn ON fn.oid = f.opfnamespace \
         WHERE {} ORDER BY c.oid",
        own("pg_opclass", "c.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let am = text(&r, 1, what)?;
        let default = if r.try_get::<_, bool>(2).map_err(query_err(what))? {
            " DEFAULT"
        } else {
            ""
        };
        let mut items: Vec<String> = r.try_get(6).map_err(query_err(what))?;
        if let Some(storage) = opt(&r, 5, what)? {
            items.push(format!("STORAGE {storage}"));
        }
        let target = format!("{name} USING {am}");
        let mut ddl = vec![format!(
            "CREATE OPERATOR CLASS {name}{default} FOR TYPE {} USING {am} FAMILY {} AS\n    {}",
            text(&r, 3, what)?,
            text(&r, 4, what)?,
            items.join(",\n    ")
        )];
        ddl.extend(comment("OPERATOR CLASS", &target, opt(&r, 7, what)?));
        let mut o = object("operator class", target.clone(), Stage::BeforeTables, ddl);
        o.owner = Some(format!(
            "ALTER OPERATOR CLASS {target} OWNER TO {}",
            quote_ident(&text(&r, 8, what)?)
        ));
        out.create.push(o);
    }
    Ok(())
}

async fn casts_and_conversions(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "casts";
    let sql = format!(
        "SELECT format_type(c.castsource, NULL), format_type(c.casttarget, NULL), c.castmethod::text, \
           NULLIF(c.castfunc, 0)::regprocedure::text, c.castcontext::text, obj_description(c.oid, 'pg_cast') \
         FROM pg_cast c WHERE {} ORDER BY c.oid",
        own("pg_cast", "c.oid")
    );
    for r in rows(client, &sql, what).await? {
        let types = format!("({} AS {})", text(&r, 0, what)?, text(&r, 1, what)?);
        let how = match text(&r, 2, what)?.as_str() {
            "f" => format!("WITH FUNCTION {}", text(&r, 3, what)?),
            "i" => "WITH INOUT".into(),
            _ => "WITHOUT FUNCTION".into(),
        };
        let context = match text(&r, 4, what)?.as_str() {
            "a" => " AS ASSIGNMENT",
            "i" => " AS IMPLICIT",
            _ => "",
        };
        let mut ddl = vec![format!("CREATE CAST {types} {how}{context}")];
        ddl.extend(comment("CAST", &types, opt(&r, 5, what)?));
        out.create
            .push(object("cast", types, Stage::BeforeTables, ddl));
    }
    let what = "conversions";
    let sql = format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.conname), c.condefault, \
           pg_encoding_to_char(c.conforencoding), pg_encoding_to_char(c.contoencoding), \
           c.conproc::regproc::text, obj_description(c.oid, 'pg_conversion'), pg_get_userbyid(c.conowner) \
         FROM pg_conversion c JOIN pg_namespace n ON n.oid = c.connamespace WHERE {} ORDER BY c.oid",
        own("pg_conversion", "c.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let default = if r.try_get::<_, bool>(1).map_err(query_err(what))? {
            "DEFAULT "
        } else {
            ""
        };
        let mut ddl = vec![format!(
            "CREATE {default}CONVERSION {name} FOR {} TO {} FROM {}",
            quote_literal(&text(&r, 2, what)?),
            quote_literal(&text(&r, 3, what)?),
            text(&r, 4, what)?
        )];
        ddl.extend(comment("CONVERSION", &name, opt(&r, 5, what)?));
        let mut o = object("conversion", name.clone(), Stage::BeforeTables, ddl);
        o.owner = Some(format!(
            "ALTER CONVERSION {name} OWNER TO {}",
            quote_ident(&text(&r, 6, what)?)
        ));
        out.create.push(o);
    }
    Ok(())
}

async fn text_search(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "text search dictionaries";
    let sql = format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(d.dictname), \
           quote_ident(tn.nspname) || '.' || quote_ident(t.tmplname), d.dictinitoption, \
           obj_description(d.oid, 'pg_ts_dict'), pg_get_userbyid(d.dictowner) \
         FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace \
         JOIN pg_ts_template t ON t.oid = d.dicttemplate JOIN pg_namespace tn ON tn.oid = t.tmplnamespace \
         WHERE {} ORDER BY d.oid",
        own("pg_ts_dict", "d.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let options = opt(&r, 2, what)?
            .map(|o| format!(", {o}"))
            .unwrap_or_default();
        let mut ddl = vec![format!(
            "CREATE TEXT SEARCH DICTIONARY {name} (TEMPLATE = {}{options})",
            text(&r, 1, what)?
        )];
        ddl.extend(comment("TEXT SEARCH DICTIONARY", &name, opt(&r, 3, what)?));
        let mut o = object(
            "text search dictionary",
            name.clone(),
            Stage::BeforeTables,
            ddl,
        );
        o.owner = Some(format!(
            "ALTER TEXT SEARCH DICTIONARY {name} OWNER TO {}",
            quote_ident(&text(&r, 4, what)?)
        ));
        out.create.push(o);
    }
    let what = "text search configurations";
    let sql = format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.cfgname), \
           quote_ident(pn.nspname) || '.' || quote_ident(p.prsname), \
           ARRAY(SELECT 'ADD MAPPING FOR ' || quote_ident(tt.alias) || ' WITH ' \
                   || string_agg(m.mapdict::regdictionary::text, ', ' ORDER BY m.mapseqno) \
                 FROM pg_ts_config_map m JOIN ts_token_type(c.cfgparser) tt ON tt.tokid = m.maptokentype \
                 WHERE m.mapcfg = c.oid GROUP BY m.maptokentype, tt.alias ORDER BY m.maptokentype), \
           obj_description(c.oid, 'pg_ts_config'), pg_get_userbyid(c.cfgowner) \
         FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace \
         JOIN pg_ts_parser p ON p.oid = c.cfgparser JOIN pg_namespace pn ON pn.oid = p.prsnamespace \
         WHERE {} ORDER BY c.oid",
        own("pg_ts_config", "c.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let maps: Vec<String> = r.try_get(2).map_err(query_err(what))?;
        let mut ddl = vec![format!(
            "CREATE TEXT SEARCH CONFIGURATION {name} (PARSER = {})",
            text(&r, 1, what)?
        )];
        ddl.extend(
            maps.iter()
                .map(|m| format!("ALTER TEXT SEARCH CONFIGURATION {name} {m}")),
        );
        ddl.extend(comment(
            "TEXT SEARCH CONFIGURATION",
            &name,
            opt(&r, 3, what)?,
        ));
        let mut o = object(
            "text search configuration",
            name.clone(),
            Stage::BeforeTables,
            ddl,
        );
        o.owner = Some(format!(
            "ALTER TEXT SEARCH CONFIGURATION {name} OWNER TO {}",
            quote_ident(&text(&r, 4, what)?)
        ));
        out.create.push(o);
    }
    Ok(())
}

/// `OPTIONS (k 'v', ...)` of an options array (`k=v` items), empty when there are none;
/// `skip` leaves out one option by name.
const OPTIONS_SQL: &str =
    "CASE WHEN {a} IS NOT NULL AND cardinality({a}) > 0 THEN ' OPTIONS (' || \
    array_to_string(ARRAY(SELECT quote_ident(option_name) || ' ' || quote_literal(option_value) \
      FROM pg_options_to_table({a}) WHERE option_name <> '{skip}'), ', ') || ')' ELSE '' END";

fn options_sql(array: &str, skip: &str) -> String {
    OPTIONS_SQL.replace("{a}", array).replace("{skip}", skip)
}

async fn foreign_data(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "foreign data wrappers";
    let sql = format!(
        "SELECT quote_ident(w.fdwname), \
           CASE WHEN w.fdwhandler <> 0 THEN ' HANDLER ' || w.fdwhandler::regproc::text ELSE ' NO HANDLER' END \
           || CASE WHEN w.fdwvalidator <> 0 THEN ' VALIDATOR ' || w.fdwvalidator::regproc::text ELSE ' NO VALIDATOR' END \
           || {}, obj_description(w.oid, 'pg_foreign_data_wrapper'), pg_get_userbyid(w.fdwowner), \
           ARRAY(SELECT 'GRANT ' || a.privilege_type || ' ON FOREIGN DATA WRAPPER ' || quote_ident(w.fdwname) \
             || ' TO ' || CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END \
             FROM aclexplode(w.fdwacl) a WHERE a.grantee <> w.fdwowner) \
         FROM pg_foreign_data_wrapper w WHERE {} ORDER BY w.oid",
        options_sql("w.fdwoptions", ""),
        own("pg_foreign_data_wrapper", "w.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let mut ddl = vec![format!(
            "CREATE FOREIGN DATA WRAPPER {name}{}",
            text(&r, 1, what)?
        )];
        ddl.extend(comment("FOREIGN DATA WRAPPER", &name, opt(&r, 2, what)?));
        let mut o = object(
            "foreign data wrapper",
            name.clone(),
            Stage::BeforeTables,
            ddl,
        );
        o.owner = Some(format!(
            "ALTER FOREIGN DATA WRAPPER {name} OWNER TO {}",
            quote_ident(&text(&r, 3, what)?)
        ));
        o.grants = r.try_get(4).map_err(query_err(what))?;
        out.create.push(o);
    }
    let what = "foreign servers";
    let sql = format!(
        "SELECT quote_ident(s.srvname), \
           COALESCE(' TYPE ' || quote_literal(s.srvtype), '') || COALESCE(' VERSION ' || quote_literal(s.srvversion), '') \
           || ' FOREIGN DATA WRAPPER ' || quote_ident(w.fdwname) || {}, \
           obj_description(s.oid, 'pg_foreign_server'), pg_get_userbyid(s.srvowner), \
           ARRAY(SELECT 'GRANT ' || a.privilege_type || ' ON FOREIGN SERVER ' || quote_ident(s.srvname) \
             || ' TO ' || CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END \
             FROM aclexplode(s.srvacl) a WHERE a.grantee <> s.srvowner) \
         FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw \
         WHERE {} ORDER BY s.oid",
        options_sql("s.srvoptions", ""),
        own("pg_foreign_server", "s.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let mut ddl = vec![format!("CREATE SERVER {name}{}", text(&r, 1, what)?)];
        ddl.extend(comment("SERVER", &name, opt(&r, 2, what)?));
        let mut o = object("foreign server", name.clone(), Stage::BeforeTables, ddl);
        o.owner = Some(format!(
            "ALTER SERVER {name} OWNER TO {}",
            quote_ident(&text(&r, 3, what)?)
        ));
        o.grants = r.try_get(4).map_err(query_err(what))?;
        out.create.push(o);
    }
    // pg_user_mappings shows options only to whom may see them (superuser, the user).
    let what = "user mappings";
    let sql = format!(
        "SELECT CASE WHEN u.umuser = 0 THEN 'PUBLIC' ELSE quote_ident(u.usename) END, quote_ident(u.srvname), \
           {}, {}, EXISTS (SELECT 1 FROM pg_options_to_table(u.umoptions) WHERE option_name = 'password') \
         FROM pg_user_mappings u WHERE {} ORDER BY u.umid",
        options_sql("u.umoptions", "password"),
        options_sql("u.umoptions", ""),
        own("pg_user_mapping", "u.umid")
    );
    for r in rows(client, &sql, what).await? {
        let target = format!("FOR {} SERVER {}", text(&r, 0, what)?, text(&r, 1, what)?);
        let has_password: bool = r.try_get(4).map_err(query_err(what))?;
        let mut o = object(
            "user mapping",
            target.clone(),
            Stage::BeforeTables,
            vec![format!(
                "CREATE USER MAPPING {target}{}",
                text(&r, 2, what)?
            )],
        );
        if has_password {
            o.with_password = Some(format!(
                "CREATE USER MAPPING {target}{}",
                text(&r, 3, what)?
            ));
        }
        out.create.push(o);
    }
    let what = "foreign tables";
    let sql = format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
           array_to_string(ARRAY(SELECT quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) \
               || {} || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END \
             FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum), ',\n    '), \
           quote_ident(s.srvname), {}, obj_description(c.oid, 'pg_class'), pg_get_userbyid(c.relowner), \
           ARRAY(SELECT 'COMMENT ON COLUMN ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' \
               || quote_ident(a.attname) || ' IS ' || quote_literal(col_description(c.oid, a.attnum)) \
             FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
               AND col_description(c.oid, a.attnum) IS NOT NULL ORDER BY a.attnum), \
           n.nspname, c.relname \
         FROM pg_foreign_table f JOIN pg_class c ON c.oid = f.ftrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_foreign_server s ON s.oid = f.ftserver \
         WHERE {} ORDER BY c.oid",
        options_sql("a.attfdwoptions", ""),
        options_sql("f.ftoptions", ""),
        own("pg_class", "c.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let mut ddl = vec![format!(
            "CREATE FOREIGN TABLE {name} (\n    {}\n) SERVER {}{}",
            text(&r, 1, what)?,
            text(&r, 2, what)?,
            text(&r, 3, what)?
        )];
        ddl.extend(comment("FOREIGN TABLE", &name, opt(&r, 4, what)?));
        ddl.extend(r.try_get::<_, Vec<String>>(6).map_err(query_err(what))?);
        let mut o = object("foreign table", name.clone(), Stage::BeforeTables, ddl);
        o.table = relation(&r, 7, what)?;
        o.owner = Some(format!(
            "ALTER FOREIGN TABLE {name} OWNER TO {}",
            quote_ident(&text(&r, 5, what)?)
        ));
        out.create.push(o);
    }
    Ok(())
}

async fn statistics(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "extended statistics";
    let sql = format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(s.stxname), pg_get_statisticsobjdef(s.oid), \
           coalesce(s.stxstattarget::int4, -1), obj_description(s.oid, 'pg_statistic_ext'), pg_get_userbyid(s.stxowner), \
           tn.nspname, tc.relname \
         FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace \
         JOIN pg_class tc ON tc.oid = s.stxrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
         WHERE {} ORDER BY s.oid",
        own("pg_statistic_ext", "s.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let mut ddl = vec![text(&r, 1, what)?];
        let target: i32 = r.try_get(2).map_err(query_err(what))?;
        if target >= 0 {
            ddl.push(format!("ALTER STATISTICS {name} SET STATISTICS {target}"));
        }
        ddl.extend(comment("STATISTICS", &name, opt(&r, 3, what)?));
        let mut o = object("statistics", name.clone(), Stage::Final, ddl);
        o.table = relation(&r, 5, what)?;
        o.owner = Some(format!(
            "ALTER STATISTICS {name} OWNER TO {}",
            quote_ident(&text(&r, 4, what)?)
        ));
        out.create.push(o);
    }
    Ok(())
}

async fn rules_and_replica_identity(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "rules";
    let sql = format!(
        "SELECT quote_ident(w.rulename) || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
           pg_get_ruledef(w.oid), w.ev_enabled::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
           obj_description(w.oid, 'pg_rewrite'), n.nspname, c.relname \
         FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE w.rulename <> '_RETURN' AND {} ORDER BY w.oid",
        own("pg_rewrite", "w.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let mut ddl = vec![text(&r, 1, what)?
            .trim_end()
            .trim_end_matches(';')
            .to_string()];
        let table = text(&r, 3, what)?;
        let rule = name.split(" ON ").next().unwrap_or_default().to_string();
        match text(&r, 2, what)?.as_str() {
            "D" => ddl.push(format!("ALTER TABLE {table} DISABLE RULE {rule}")),
            "A" => ddl.push(format!("ALTER TABLE {table} ENABLE ALWAYS RULE {rule}")),
            "R" => ddl.push(format!("ALTER TABLE {table} ENABLE REPLICA RULE {rule}")),
            _ => {}
        }
        ddl.extend(comment("RULE", &name, opt(&r, 4, what)?));
        let mut o = object("rule", name, Stage::Final, ddl);
        o.table = relation(&r, 5, what)?;
        out.create.push(o);
    }
    let what = "clustered indexes and triggers on views";
    let sql = format!(
        "SELECT 'cluster index', quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
           'ALTER TABLE ONLY ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) \
             || ' CLUSTER ON ' || quote_ident(i.relname), NULL, n.nspname, c.relname \
         FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE x.indisclustered AND {} \
         UNION ALL \
         SELECT 'trigger', quote_ident(t.tgname) || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
           pg_get_triggerdef(t.oid), obj_description(t.oid, 'pg_trigger'), n.nspname, c.relname \
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'v' AND NOT t.tgisinternal AND {} ORDER BY 1, 2",
        own("pg_class", "c.oid"),
        own("pg_class", "c.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 1, what)?;
        let kind = if text(&r, 0, what)? == "trigger" {
            "trigger on a view"
        } else {
            "cluster index"
        };
        let mut ddl = vec![text(&r, 2, what)?];
        ddl.extend(comment("TRIGGER", &name, opt(&r, 3, what)?));
        let mut o = object(kind, name, Stage::Final, ddl);
        o.table = relation(&r, 4, what)?;
        out.create.push(o);
    }
    let what = "replica identities";
    let sql =
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relreplident::text, \
           (SELECT quote_ident(i.relname) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             WHERE x.indrelid = c.oid AND x.indisreplident), n.nspname, c.relname \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND c.relreplident <> 'd' AND c.oid >= 16384 \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'howdah') ORDER BY c.oid";
    for r in rows(client, sql, what).await? {
        let table = text(&r, 0, what)?;
        let identity = match (text(&r, 1, what)?.as_str(), opt(&r, 2, what)?) {
            ("f", _) => "FULL".to_string(),
            ("n", _) => "NOTHING".to_string(),
            ("i", Some(index)) => format!("USING INDEX {index}"),
            _ => continue,
        };
        let mut o = object(
            "replica identity",
            table.clone(),
            Stage::Final,
            vec![format!(
                "ALTER TABLE ONLY {table} REPLICA IDENTITY {identity}"
            )],
        );
        o.table = relation(&r, 3, what)?;
        out.create.push(o);
    }
    Ok(())
}

async fn event_triggers(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "event triggers";
    let sql = format!(
        "SELECT quote_ident(e.evtname), e.evtevent, \
           array_to_string(ARRAY(SELECT quote_literal(t) FROM unnest(e.evttags) t), ', '), \
           e.evtfoid::regproc::text, e.evtenabled::text, obj_description(e.oid, 'pg_event_trigger'), \
           pg_get_userbyid(e.evtowner) \
         FROM pg_event_trigger e WHERE {} ORDER BY e.oid",
        own("pg_event_trigger", "e.oid")
    );
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let tags = text(&r, 2, what)?;
        let when = if tags.is_empty() {
            String::new()
        } else {
            format!(" WHEN TAG IN ({tags})")
        };
        let mut ddl = vec![format!(
            "CREATE EVENT TRIGGER {name} ON {}{when} EXECUTE FUNCTION {}()",
            quote_ident(&text(&r, 1, what)?),
            text(&r, 3, what)?
        )];
        match text(&r, 4, what)?.as_str() {
            "D" => ddl.push(format!("ALTER EVENT TRIGGER {name} DISABLE")),
            "A" => ddl.push(format!("ALTER EVENT TRIGGER {name} ENABLE ALWAYS")),
            "R" => ddl.push(format!("ALTER EVENT TRIGGER {name} ENABLE REPLICA")),
            _ => {}
        }
        ddl.extend(comment("EVENT TRIGGER", &name, opt(&r, 5, what)?));
        let mut o = object("event trigger", name.clone(), Stage::Final, ddl);
        o.owner = Some(format!(
            "ALTER EVENT TRIGGER {name} OWNER TO {}",
            quote_ident(&text(&r, 6, what)?)
        ));
        out.create.push(o);
    }
    Ok(())
}

/// `GRANT`/`REVOKE` statements turning `acldefault(kind, owner)` into `acl`, for `target`
/// (`TABLE x`, `FUNCTION f(int)`...); `{acl}`, `{kind}`, `{owner}` are SQL expressions.
fn acl_sql(acl: &str, kind: &str, owner: &str, target: &str) -> String {
    format!(
        "ARRAY(SELECT 'REVOKE ' || d.privilege_type || ' ON ' || {target} || ' FROM ' \
             || CASE WHEN d.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(d.grantee)) END \
           FROM aclexplode(acldefault('{kind}', {owner})) d WHERE {acl} IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM aclexplode({acl}) a WHERE a.grantee = d.grantee AND a.privilege_type = d.privilege_type) \
           ORDER BY d.grantee, d.privilege_type) \
         || ARRAY(SELECT 'GRANT ' || a.privilege_type || ' ON ' || {target} || ' TO ' \
             || CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END \
             || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END \
           FROM aclexplode({acl}) a WHERE NOT EXISTS \
             (SELECT 1 FROM aclexplode(acldefault('{kind}', {owner})) d WHERE a.grantee = d.grantee \
               AND a.privilege_type = d.privilege_type AND a.is_grantable = d.is_grantable) \
           ORDER BY a.grantee, a.privilege_type)"
    )
}

/// Owners and privileges of the objects created by the other phases that carry none there
/// (functions and aggregates, types, standalone sequences, views, schemas, collations), and
/// column privileges: applied with `--owners` / `--grants`, after every object exists.
async fn owners_and_privileges(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "owners and privileges";
    let user = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'howdah') \
                AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";
    let queries = [
        // Routines (an aggregate's owner is set with it).
        format!(
            "SELECT 'routine', p.oid::regprocedure::text, \
               CASE WHEN p.prokind = 'a' THEN NULL ELSE 'ALTER ROUTINE ' || p.oid::regprocedure::text \
                 || ' OWNER TO ' || quote_ident(pg_get_userbyid(p.proowner)) END, {}, NULL::text, NULL::text \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {user} AND {} \
               AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_proc'::regclass \
                 AND i.objid = p.oid AND i.deptype = 'i') ORDER BY p.oid",
            acl_sql(
                "p.proacl",
                "f",
                "p.proowner",
                "CASE WHEN p.prokind = 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END || p.oid::regprocedure::text"
            ),
            own("pg_proc", "p.oid")
        ),
        // Types and domains (not row types, not arrays, not multiranges).
        format!(
            "SELECT 'type', format_type(t.oid, NULL), \
               CASE WHEN t.typtype = 'd' THEN 'ALTER DOMAIN ' ELSE 'ALTER TYPE ' END || format_type(t.oid, NULL) \
                 || ' OWNER TO ' || quote_ident(pg_get_userbyid(t.typowner)), {}, NULL::text, NULL::text \
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {user} AND {} \
               AND t.typtype IN ('e', 'd', 'c', 'r') \
               AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c') \
             ORDER BY t.oid",
            acl_sql(
                "t.typacl",
                "T",
                "t.typowner",
                "CASE WHEN t.typtype = 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || format_type(t.oid, NULL)"
            ),
            own("pg_type", "t.oid")
        ),
        // Sequences not owned by a column (those follow their table's owner), and privileges
        // of every sequence, view and materialized view.
        format!(
            "SELECT 'relation', quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
               CASE WHEN c.relkind = 'S' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                   AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) \
                 THEN 'ALTER SEQUENCE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) \
                   || ' OWNER TO ' || quote_ident(pg_get_userbyid(c.relowner)) END, {}, n.nspname::text, c.relname::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user} AND {} \
               AND c.relkind IN ('S', 'v', 'm', 'f') ORDER BY c.oid",
            acl_sql(
                "c.relacl",
                "r",
                "c.relowner",
                "CASE WHEN c.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
            )
            .replace("acldefault('r', c.relowner)", "acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner)"),
            own("pg_class", "c.oid")
        ),
        // Schemas (their owners are set where they are created).
        format!(
            "SELECT 'schema', quote_ident(n.nspname), NULL, {}, NULL::text, NULL::text \
             FROM pg_namespace n WHERE {user} AND {} AND n.nspname <> 'public' ORDER BY n.oid",
            acl_sql("n.nspacl", "n", "n.nspowner", "'SCHEMA ' || quote_ident(n.nspname)"),
            own("pg_namespace", "n.oid")
        ),
        // Collations.
        format!(
            "SELECT 'collation', quote_ident(n.nspname) || '.' || quote_ident(c.collname), \
               'ALTER COLLATION ' || quote_ident(n.nspname) || '.' || quote_ident(c.collname) \
                 || ' OWNER TO ' || quote_ident(pg_get_userbyid(c.collowner)), ARRAY[]::text[], NULL::text, NULL::text \
             FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE {user} AND {} \
             ORDER BY c.oid",
            own("pg_collation", "c.oid")
        ),
        // Column privileges of tables and views.
        format!(
            "SELECT 'column privileges', quote_ident(n.nspname) || '.' || quote_ident(c.relname), NULL, \
               ARRAY(SELECT 'GRANT ' || x.privilege_type || ' (' || quote_ident(a.attname) || ') ON TABLE ' \
                   || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' TO ' \
                   || CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END \
                   || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END \
                 FROM pg_attribute a, LATERAL aclexplode(a.attacl) x \
                 WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum, x.grantee, x.privilege_type), n.nspname::text, c.relname::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user} AND {} \
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL) \
             ORDER BY c.oid",
            own("pg_class", "c.oid")
        ),
    ];
    for sql in &queries {
        for r in rows(client, sql, what).await? {
            let grants: Vec<String> = r.try_get(3).map_err(query_err(what))?;
            let owner = opt(&r, 2, what)?;
            if grants.is_empty() && owner.is_none() {
                continue;
            }
            let mut o = object(
                "owner and privileges",
                text(&r, 1, what)?,
                Stage::AfterTables,
                vec![],
            );
            o.owner = owner;
            o.grants = grants;
            out.create.push(o);
        }
    }
    Ok(())
}

async fn default_privileges(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "default privileges";
    let sql = "SELECT 'FOR ROLE ' || quote_ident(pg_get_userbyid(d.defaclrole)) \
           || COALESCE(' IN SCHEMA ' || quote_ident(n.nspname), ''), \
           CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' \
             WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END, \
           ARRAY(SELECT 'REVOKE ' || x.privilege_type || ' ON {objs} FROM ' \
               || CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END \
             FROM aclexplode(acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole)) x \
             WHERE d.defaclnamespace = 0 AND NOT EXISTS (SELECT 1 FROM aclexplode(d.defaclacl) a \
               WHERE a.grantee = x.grantee AND a.privilege_type = x.privilege_type) \
             ORDER BY x.grantee, x.privilege_type) \
           || ARRAY(SELECT 'GRANT ' || a.privilege_type || ' ON {objs} TO ' \
               || CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END \
               || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END \
             FROM aclexplode(d.defaclacl) a WHERE d.defaclnamespace <> 0 OR NOT EXISTS \
               (SELECT 1 FROM aclexplode(acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole)) x \
                 WHERE a.grantee = x.grantee AND a.privilege_type = x.privilege_type AND a.is_grantable = x.is_grantable) \
             ORDER BY a.grantee, a.privilege_type) \
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace ORDER BY d.oid";
    for r in rows(client, sql, what).await? {
        let scope = text(&r, 0, what)?;
        let objs = text(&r, 1, what)?;
        let stmts: Vec<String> = r.try_get(2).map_err(query_err(what))?;
        let mut o = object(
            "default privileges",
            format!("{scope} ON {objs}"),
            Stage::Final,
            vec![],
        );
        o.grants = stmts
            .iter()
            .map(|s| {
                format!(
                    "ALTER DEFAULT PRIVILEGES {scope} {}",
                    s.replace("{objs}", &objs)
                )
            })
            .collect();
        out.create.push(o);
    }
    Ok(())
}

async fn security_labels(client: &Client, out: &mut Others) -> Result<(), CatalogError> {
    let what = "security labels";
    let sql = "SELECT upper(l.objtype), l.objname, l.provider, l.label FROM pg_seclabels l \
         WHERE l.objoid >= 16384 AND l.objtype NOT IN ('role', 'database', 'tablespace') \
         ORDER BY l.objoid, l.objsubid, l.provider";
    for r in rows(client, sql, what).await? {
        let target = format!("{} {}", text(&r, 0, what)?, text(&r, 1, what)?);
        out.create.push(object(
            "security label",
            target.clone(),
            Stage::Final,
            vec![format!(
                "SECURITY LABEL FOR {} ON {target} IS {}",
                quote_ident(&text(&r, 2, what)?),
                quote_literal(&text(&r, 3, what)?)
            )],
        ));
    }
    Ok(())
}

/// Publications and subscriptions: a target that is to publish or subscribe is set up by
/// hand, after the switch; a copy lists them with the SQL.
async fn publications(client: &Client, version: i32, out: &mut Others) -> Result<(), CatalogError> {
    let what = "publications";
    let schemas = if version >= 150000 {
        "ARRAY(SELECT 'TABLES IN SCHEMA ' || quote_ident(sn.nspname) FROM pg_publication_namespace pn \
           JOIN pg_namespace sn ON sn.oid = pn.pnnspid WHERE pn.pnpubid = p.oid ORDER BY 1)"
    } else {
        "ARRAY[]::text[]"
    };
    let sql = format!(
        "SELECT quote_ident(p.pubname), p.puballtables, \
           ARRAY(SELECT 'TABLE ' || quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) \
             FROM pg_publication_rel pr JOIN pg_class tc ON tc.oid = pr.prrelid \
             JOIN pg_namespace tn ON tn.oid = tc.relnamespace WHERE pr.prpubid = p.oid ORDER BY 1) || {schemas}, \
           concat_ws(', ', 'publish = ' || quote_literal(concat_ws(', ', \
               CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END, \
               CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END)), \
             CASE WHEN p.pubviaroot THEN 'publish_via_partition_root = true' END) \
         FROM pg_publication p WHERE p.pubname !~ '^howdah_' ORDER BY p.oid"
    );
    // howdah_*: `copy --follow`'s own publications (src/follow/slot.rs), dropped at cutover.
    for r in rows(client, &sql, what).await? {
        let name = text(&r, 0, what)?;
        let all: bool = r.try_get(1).map_err(query_err(what))?;
        let members: Vec<String> = r.try_get(2).map_err(query_err(what))?;
        let target = if all {
            " FOR ALL TABLES".to_string()
        } else if members.is_empty() {
            String::new()
        } else {
            format!(" FOR {}", members.join(", "))
        };
        out.manual.push(ManualObject {
            kind: "publication",
            name: name.clone(),
            sql: format!(
                "CREATE PUBLICATION {name}{target} WITH ({});",
                text(&r, 3, what)?
            ),
        });
    }
    // Subscriptions of this database; the connection string is left out (it may hold a
    // password).
    let what = "subscriptions";
    // These columns of pg_subscription are readable by every role (the connection string is not).
    let sql = "SELECT quote_ident(s.subname), array_to_string(ARRAY(SELECT quote_ident(x) FROM unnest(s.subpublications) x), ', ') \
         FROM pg_subscription s WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY s.oid";
    {
        for r in rows(client, sql, what).await? {
            let name = text(&r, 0, what)?;
            out.manual.push(ManualObject {
                kind: "subscription",
                name: name.clone(),
                sql: format!(
                    "CREATE SUBSCRIPTION {name} CONNECTION '<connection string of the publisher>' PUBLICATION {} WITH (connect = false);",
                    text(&r, 1, what)?
                ),
            });
        }
    }
    Ok(())
}
