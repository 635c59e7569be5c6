//! DDL for the target, rendered from the [`Catalog`] in the phases of a copy.
//!
//! - [`pre_data`]: schemas, extensions, then collations, types, functions, sequences, bare
//!   tables and views, each after what it needs (`Catalog::dependencies`, as `pg_dump` orders).
//! - [`table_post_data`]: one table's keys, constraints and indexes, right after its data.
//! - [`final_steps`]: partition index attachment, recursing checks, foreign keys (with
//!   [`final_phases_with`]: `NOT VALID` and recorded when the rows violate them), triggers,
//!   materialized view refresh, once every table holds its data.
//!
//! Every name is quoted with [`quote_ident`]; expressions and definitions are the source
//! server's own `pg_get_*def` text, rendered with an empty `search_path` so they are qualified.

use std::collections::{HashMap, HashSet};

use crate::catalog::{
    quote_ident, quote_literal, Catalog, Column, Constraint, DdlObject, ObjectRef, OtherObject,
    QualifiedName, Sequence, Stage, Table, TableKind, TargetFacts, View,
};
use crate::schema::{Phases, Step};

/// Which optional parts of the source schema to reproduce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DdlOptions {
    /// `ALTER ... OWNER TO` the source owners (the roles must exist on the target).
    pub owners: bool,
    /// Reproduce table privileges with `GRANT` (the grantees must exist on the target).
    pub grants: bool,
    /// Create user mappings with their `password` option (else without it).
    pub user_mapping_passwords: bool,
}

/// Statements that run before any data: everything a table needs to accept rows, and nothing
/// that slows the load (no keys, indexes, constraints or triggers). Objects listed in `facts`
/// as existing on the target are skipped, except tables, which `create` mode refuses earlier.
pub fn pre_data(cat: &Catalog, facts: &TargetFacts, opts: &DdlOptions) -> Vec<Step> {
    let mut steps = Vec::new();
    for s in &cat.schemas {
        if facts.schemas.contains(&s.name) {
            continue;
        }
        let q = quote_ident(&s.name);
        let mut sql = format!("CREATE SCHEMA IF NOT EXISTS {q};\n");
        sql.push_str(&comment("SCHEMA", &q, s.comment.as_deref()));
        if opts.owners {
            sql.push_str(&format!(
                "ALTER SCHEMA {q} OWNER TO {};\n",
                quote_ident(&s.owner)
            ));
        }
        steps.push(Step {
            what: format!("create schema {}", s.name),
            sql,
        });
    }
    for e in &cat.extensions {
        if facts.extensions.contains(&e.name) {
            continue;
        }
        steps.push(Step {
            what: format!("create extension {}", e.name),
            sql: format!(
                "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};\n",
                quote_ident(&e.name),
                quote_ident(&e.schema)
            ),
        });
    }
    let (nodes, deferred) = creation_order(cat);
    for node in nodes {
        match node {
            Node::Collation(c) if !facts.collations.contains(&c.name) => steps.push(Step {
                what: format!("create collation {}", c.name),
                sql: c.ddl.clone(),
            }),
            Node::Type(t) if !facts.types.contains(&t.name) => steps.push(Step {
                what: format!("create type {}", t.name),
                sql: t.ddl.clone(),
            }),
            Node::Function(f) if !facts.functions.contains(&f.name) => {
                // Bodies may name tables that do not exist yet; they are checked when called.
                let sql = format!("SET check_function_bodies = off;\n{}", f.ddl);
                steps.push(Step {
                    what: format!("create function {}", f.name),
                    sql,
                });
            }
            Node::Sequence(s) if !facts.relations.contains(&s.name) => {
                if let Some(ddl) = &s.ddl {
                    steps.push(Step {
                        what: format!("create sequence {}", s.name),
                        sql: ddl.clone(),
                    });
                }
            }
            Node::Table(t) => steps.push(Step {
                what: format!("create table {}", t.name),
                sql: create_table(cat, t, &deferred),
            }),
            Node::Other(o) => steps.push(Step {
                what: format!("create {} {}", o.kind, o.name),
                sql: create_other(o, opts),
            }),
            Node::Default(t, c) => {
                if let Some(d) = &c.default {
                    steps.push(Step {
                        what: format!("set the default of {}.{}", t.name, c.name),
                        sql: format!(
                            "ALTER TABLE ONLY {} ALTER COLUMN {} SET DEFAULT {d};\n",
                            t.name.quoted(),
                            quote_ident(&c.name)
                        ),
                    });
                }
            }
            Node::View(v) if !facts.relations.contains(&v.name) => {
                let kind = if v.materialized {
                    "MATERIALIZED VIEW"
                } else {
                    "VIEW"
                };
                let mut sql = v.ddl.clone();
                if opts.owners && !v.owner.is_empty() {
                    sql.push_str(&format!(
                        "ALTER {kind} {} OWNER TO {};\n",
                        v.name.quoted(),
                        quote_ident(&v.owner)
                    ));
                }
                steps.push(Step {
                    what: format!("create {} {}", kind.to_lowercase(), v.name),
                    sql,
                });
            }
            // Already on the target.
            _ => {}
        }
    }
    for s in &cat.sequences {
        if let Some(owned) = &s.owned_by {
            steps.push(Step {
                what: format!("set owner of sequence {}", s.name),
                sql: format!("{owned};\n"),
            });
        }
    }
    for t in &cat.tables {
        let q = t.name.quoted();
        let mut sql = String::new();
        if opts.owners && !t.owner.is_empty() {
            sql.push_str(&format!(
                "ALTER TABLE {q} OWNER TO {};\n",
                quote_ident(&t.owner)
            ));
        }
        if opts.grants {
            for g in &t.grants {
                sql.push_str(g);
                sql.push_str(";\n");
            }
        }
        // Row security is not optional: without it every reader sees every row.
        sql.push_str(&row_security(t));
        if !sql.is_empty() {
            steps.push(Step {
                what: format!("set owner, privileges and row security of {}", t.name),
                sql,
            });
        }
    }
    for o in cat.others.iter().filter(|o| o.stage != Stage::Final) {
        let sql = owner_and_grants(o, opts);
        if !sql.is_empty() {
            steps.push(Step {
                what: format!("set owner and privileges of {} {}", o.kind, o.name),
                sql,
            });
        }
    }
    steps
}

/// The objects of [`Stage::Final`] (statistics, rules, replica identities, default
/// privileges, security labels, event triggers), in order, with their owners and privileges
/// as `opts` asks: run after every table holds its data and its keys.
pub fn final_objects(cat: &Catalog, opts: &DdlOptions) -> Vec<Step> {
    let mut steps = Vec::new();
    // Event triggers last: none may fire on the copy's own statements.
    let (events, rest): (Vec<&OtherObject>, Vec<&OtherObject>) = cat
        .others
        .iter()
        .filter(|o| o.stage == Stage::Final)
        .partition(|o| o.kind == "event trigger");
    for o in rest.into_iter().chain(events) {
        let mut sql = String::new();
        if !o.ddl.is_empty() {
            sql.push_str(&create_other(o, opts));
        }
        sql.push_str(&owner_and_grants(o, opts));
        if !sql.is_empty() {
            steps.push(Step {
                what: format!("create {} {}", o.kind, o.name),
                sql,
            });
        }
    }
    steps
}

/// Dollar-quote tag of the blocks that create other objects.
const BLOCK_TAG: &str = "$howdah_create$";

/// The statements that create `o`, in one block that skips the object when it already exists
/// (`duplicate_object`: a rerun with `--schema recreate`, which drops tables, not these).
fn create_other(o: &OtherObject, opts: &DdlOptions) -> String {
    let mut stmts: Vec<&str> = o.ddl.iter().map(String::as_str).collect();
    if let (Some(with), true, Some(first)) = (
        o.with_password.as_deref(),
        opts.user_mapping_passwords,
        stmts.first_mut(),
    ) {
        *first = with;
    }
    if stmts.iter().any(|s| s.contains(BLOCK_TAG)) {
        return stmts.iter().map(|s| format!("{s};\n")).collect();
    }
    let mut sql = format!("DO {BLOCK_TAG}BEGIN\n");
    for s in stmts {
        sql.push_str(&format!("EXECUTE {};\n", quote_literal(s)));
    }
    sql.push_str(&format!(
        "EXCEPTION WHEN duplicate_object THEN RAISE NOTICE '%', {};\nEND{BLOCK_TAG};\n",
        quote_literal(&format!(
            "{} {} exists already: left as it is",
            o.kind, o.name
        ))
    ));
    sql
}

/// `o`'s owner (with `--owners`) and privileges (with `--grants`).
fn owner_and_grants(o: &OtherObject, opts: &DdlOptions) -> String {
    let mut sql = String::new();
    if opts.owners {
        if let Some(owner) = &o.owner {
            sql.push_str(owner);
            sql.push_str(";\n");
        }
    }
    if opts.grants {
        for g in &o.grants {
            sql.push_str(g);
            sql.push_str(";\n");
        }
    }
    sql
}

/// A table's `ENABLE ROW LEVEL SECURITY` and policies, empty when it has none. `FORCE` waits
/// for the final phase: it subjects the owner too, and a loader that owns the table could
/// then not `COPY` into it (other roles are held off by `ENABLE` from the start).
fn row_security(t: &Table) -> String {
    let rls = &t.row_security;
    let q = t.name.quoted();
    let mut sql = String::new();
    if rls.enabled {
        sql.push_str(&format!("ALTER TABLE {q} ENABLE ROW LEVEL SECURITY;\n"));
    }
    for p in &rls.policies {
        let name = quote_ident(&p.name);
        sql.push_str(&format!("CREATE POLICY {name} ON {q}{};\n", p.clauses));
        sql.push_str(&comment(
            "POLICY",
            &format!("{name} ON {q}"),
            p.comment.as_deref(),
        ));
    }
    sql
}

/// The kind of an object [`pre_data`] creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// `CREATE COLLATION`.
    Collation,
    /// `CREATE TYPE` or `CREATE DOMAIN`.
    Type,
    /// `CREATE FUNCTION` or `CREATE PROCEDURE`.
    Function,
    /// `CREATE SEQUENCE` (standalone and serial sequences).
    Sequence,
    /// `CREATE TABLE`.
    Table,
    /// `CREATE VIEW`.
    View,
    /// `CREATE MATERIALIZED VIEW`.
    MaterializedView,
    /// A column default set after its table (to break a cycle): the table, and this column.
    Default(String),
}

impl ObjectKind {
    /// The kind as `DROP` names it (`TYPE` drops domains too; a default is dropped with
    /// `ALTER TABLE ... ALTER COLUMN ... DROP DEFAULT`, named `TABLE`).
    pub fn sql(&self) -> &'static str {
        match self {
            ObjectKind::Collation => "COLLATION",
            ObjectKind::Type => "TYPE",
            ObjectKind::Function => "ROUTINE",
            ObjectKind::Sequence => "SEQUENCE",
            ObjectKind::Table | ObjectKind::Default(_) => "TABLE",
            ObjectKind::View => "VIEW",
            ObjectKind::MaterializedView => "MATERIALIZED VIEW",
        }
    }
}

/// The objects [`pre_data`] creates after schemas and extensions, in the order it creates
/// them (each after what it needs): dropping them in reverse order undoes them.
pub fn created_objects(cat: &Catalog) -> Vec<(ObjectKind, QualifiedName)> {
    creation_order(cat)
        .0
        .into_iter()
        .filter_map(|node| {
            Some(match node {
                Node::Collation(o) => (ObjectKind::Collation, o.name.clone()),
                Node::Type(o) => (ObjectKind::Type, o.name.clone()),
                Node::Function(o) => (ObjectKind::Function, o.name.clone()),
                Node::Sequence(s) => (ObjectKind::Sequence, s.name.clone()),
                Node::Table(t) => (ObjectKind::Table, t.name.clone()),
                Node::View(v) if v.materialized => (ObjectKind::MaterializedView, v.name.clone()),
                Node::View(v) => (ObjectKind::View, v.name.clone()),
                Node::Default(t, c) => (ObjectKind::Default(c.name.clone()), t.name.clone()),
                // Listed by the plan with the rest of the schema; not dropped by name.
                Node::Other(_) => return None,
            })
        })
        .collect()
}

/// A pre-data object, for ordering.
#[derive(Debug, Clone, Copy)]
enum Node<'a> {
    Collation(&'a DdlObject),
    Type(&'a DdlObject),
    Function(&'a DdlObject),
    Sequence(&'a Sequence),
    Table(&'a Table),
    View(&'a View),
    /// A column default set after its table is created, to break a dependency cycle.
    Default(&'a Table, &'a Column),
    /// An object of [`Stage::BeforeTables`] (operators, casts, servers...).
    Other(&'a OtherObject),
}

/// The pre-data objects in an order where each comes after what it needs (the source's
/// `pg_depend`, as `pg_dump` orders its output), and the table columns `(table OID, attnum)`
/// whose defaults are set after their table. Kinds keep `pg_dump`'s order (collations, types,
/// functions, sequences, tables, views) where dependencies allow. A cycle through a plain
/// column default (a default calling a function that takes its table's row type) is broken
/// as `pg_dump` breaks it: the table is created without that default, which is set once the
/// function exists. Any other cycle keeps the source order, and the server names the object
/// that fails.
fn creation_order(cat: &Catalog) -> (Vec<Node<'_>>, HashSet<(u32, i16)>) {
    let relation = |oid: u32| (oid != 0).then_some(ObjectRef::Relation(oid));
    let base: Vec<(Node<'_>, Option<ObjectRef>)> = cat
        .collations
        .iter()
        .map(|c| (Node::Collation(c), c.id))
        .chain(cat.types.iter().map(|t| (Node::Type(t), t.id)))
        .chain(cat.functions.iter().map(|f| (Node::Function(f), f.id)))
        .chain(
            cat.others
                .iter()
                .filter(|o| o.stage == Stage::BeforeTables)
                .map(|o| (Node::Other(o), None)),
        )
        .chain(
            cat.sequences
                .iter()
                .filter(|s| s.ddl.is_some())
                .map(|s| (Node::Sequence(s), relation(s.oid))),
        )
        .chain(cat.tables.iter().map(|t| (Node::Table(t), relation(t.oid))))
        .chain(cat.views.iter().map(|v| (Node::View(v), relation(v.oid))))
        .collect();
    let index: HashMap<ObjectRef, usize> = base
        .iter()
        .enumerate()
        .filter_map(|(i, (_, id))| id.map(|id| (id, i)))
        .collect();
    let base: Vec<Node<'_>> = base.into_iter().map(|(n, _)| n).collect();
    let tables: HashMap<u32, &Table> = cat.tables.iter().map(|t| (t.oid, t)).collect();
    // A plain default (not generated, not identity) of a table column.
    let plain_default = |oid: u32, attnum: i16| -> Option<(&Table, &Column)> {
        let t = *tables.get(&oid)?;
        let c = t.columns.iter().find(|c| c.attnum == attnum)?;
        (c.default.is_some() && c.generated.is_none() && c.identity.is_none()).then_some((t, c))
    };
    let mut deferred: Vec<(u32, i16)> = Vec::new();
    loop {
        let mut nodes = base.clone();
        let mut default_node: HashMap<(u32, i16), usize> = HashMap::new();
        for &(oid, attnum) in &deferred {
            if let Some((t, c)) = plain_default(oid, attnum) {
                default_node.insert((oid, attnum), nodes.len());
                nodes.push(Node::Default(t, c));
            }
        }
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        // Edges that a deferred default could remove: (from, to, table OID, attnum).
        let mut movable: Vec<(usize, usize, u32, i16)> = Vec::new();
        for d in &cat.dependencies {
            let Some(&to) = index.get(&d.needs) else {
                continue;
            };
            let from = match (d.object, d.column) {
                (ObjectRef::Relation(oid), Some(attnum)) => {
                    match default_node.get(&(oid, attnum)) {
                        Some(&n) => {
                            // The default step also needs its table.
                            if let Some(&t) = index.get(&d.object) {
                                deps[n].push(t);
                            }
                            n
                        }
                        None => {
                            let Some(&n) = index.get(&d.object) else {
                                continue;
                            };
                            if plain_default(oid, attnum).is_some() {
                                movable.push((n, to, oid, attnum));
                            }
                            n
                        }
                    }
                }
                (object, _) => match index.get(&object) {
                    Some(&n) => n,
                    None => continue,
                },
            };
            if from != to {
                deps[from].push(to);
            }
        }
        let component = strongly_connected(&deps);
        let mut size: HashMap<usize, usize> = HashMap::new();
        for c in &component {
            *size.entry(*c).or_default() += 1;
        }
        let in_cycle = |a: usize, b: usize| component[a] == component[b] && size[&component[a]] > 1;
        let before = deferred.len();
        for (from, to, oid, attnum) in movable {
            if in_cycle(from, to) && !deferred.contains(&(oid, attnum)) {
                deferred.push((oid, attnum));
            }
        }
        if deferred.len() == before {
            let order = crate::catalog::postgres::topo_order(&deps);
            let out = order.into_iter().map(|i| nodes[i]).collect();
            return (out, deferred.into_iter().collect());
        }
    }
}

/// Strongly connected components (Tarjan): the component number of each node.
fn strongly_connected(deps: &[Vec<usize>]) -> Vec<usize> {
    struct State<'a> {
        deps: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        component: Vec<usize>,
        components: usize,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.deps[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                s.component[w] = s.components;
                if w == v {
                    break;
                }
            }
            s.components += 1;
        }
    }
    let n = deps.len();
    let mut s = State {
        deps,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        component: vec![0; n],
        components: 0,
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.component
}

/// Drops the selected views and tables on the target (dependents first), for `recreate`,
/// together with the functions and types of the catalog that need them (a function returning
/// a table's rows, a composite type holding its row type): [`pre_data`] creates them again.
pub fn drop_for_recreate(cat: &Catalog) -> Vec<Step> {
    // Everything of the catalog that needs a selected table or view, directly or not.
    let mut needs_relation: HashSet<ObjectRef> = cat
        .tables
        .iter()
        .map(|t| t.oid)
        .chain(cat.views.iter().map(|v| v.oid))
        .filter(|&oid| oid != 0)
        .map(ObjectRef::Relation)
        .collect();
    loop {
        let before = needs_relation.len();
        for d in &cat.dependencies {
            if needs_relation.contains(&d.needs) {
                needs_relation.insert(d.object);
            }
        }
        if needs_relation.len() == before {
            break;
        }
    }
    let needs = |id: Option<ObjectRef>| id.is_some_and(|id| needs_relation.contains(&id));
    // No CASCADE: an object that was not selected (a view, an inheritance child, a foreign key
    // of another table) makes the drop fail with the server naming it, instead of vanishing.
    // Reverse creation order drops dependents first; the tables go last, together.
    let mut steps: Vec<Step> = Vec::new();
    // A selected table's default that calls a function dropped here goes first (the table is
    // dropped anyway; a generated column cannot lose its expression and stops the drop).
    for d in &cat.dependencies {
        let (ObjectRef::Relation(oid), Some(attnum)) = (d.object, d.column) else {
            continue;
        };
        if !matches!(d.needs, ObjectRef::Function(_)) || !needs_relation.contains(&d.needs) {
            continue;
        }
        let Some(t) = cat.tables.iter().find(|t| t.oid == oid) else {
            continue;
        };
        let Some(c) = t
            .columns
            .iter()
            .find(|c| c.attnum == attnum && c.generated.is_none() && c.identity.is_none())
        else {
            continue;
        };
        let what = format!("drop the default of {}.{}", t.name, c.name);
        if steps.iter().any(|s| s.what == what) {
            continue;
        }
        steps.push(Step {
            what,
            sql: format!(
                "ALTER TABLE IF EXISTS {} ALTER COLUMN {} DROP DEFAULT",
                t.name.quoted(),
                quote_ident(&c.name)
            ),
        });
    }
    for node in creation_order(cat).0.into_iter().rev() {
        match node {
            Node::View(v) => {
                let kind = if v.materialized {
                    "MATERIALIZED VIEW"
                } else {
                    "VIEW"
                };
                steps.push(Step {
                    what: format!("drop {} {}", kind.to_lowercase(), v.name),
                    sql: format!("DROP {kind} IF EXISTS {}", v.name.quoted()),
                });
            }
            Node::Function(f) if needs(f.id) => steps.push(Step {
                what: format!("drop function {}", f.name),
                sql: format!("DROP ROUTINE IF EXISTS {}", routine_signature(&f.name)),
            }),
            Node::Type(t) if needs(t.id) => steps.push(Step {
                what: format!("drop type {}", t.name),
                sql: format!("DROP TYPE IF EXISTS {}", t.name.quoted()),
            }),
            _ => {}
        }
    }
    if !cat.tables.is_empty() {
        let names: Vec<String> = cat.tables.iter().map(|t| t.name.quoted()).collect();
        steps.push(Step {
            what: format!(
                "drop the {} selected tables (objects that depend on them and were not selected stop the drop)",
                names.len()
            ),
            sql: format!("DROP TABLE IF EXISTS {}", names.join(", ")),
        });
    }
    steps
}

/// A function's identity as `DROP ROUTINE` takes it: the name quoted, the argument list (the
/// identity arguments the catalog keeps after the name) as it is.
pub fn routine_signature(name: &QualifiedName) -> String {
    match name.name.split_once('(') {
        Some((base, args)) => format!("{}.{}({args}", quote_ident(&name.schema), quote_ident(base)),
        None => name.quoted(),
    }
}

/// Keys, unique/check/exclusion constraints and indexes of one table, to run in order on one
/// connection once its data is loaded. They touch only this table (`ALTER TABLE ONLY`), so
/// they can overlap with the load and post-data of other tables. A partitioned parent gets
/// its keys and indexes `ON ONLY` itself (invalid until [`final_steps`] attaches the
/// partitions' own indexes); a parent's inheritable CHECK constraints recurse into its
/// children and are deferred to [`final_steps`].
pub fn table_post_data(table: &Table) -> Phases {
    let q = table.name.quoted();
    // Index builds only need a SHARE lock, so several run on one table at once; adding a
    // constraint takes ACCESS EXCLUSIVE. Primary keys and unique constraints are therefore
    // built as plain unique indexes in the parallel phase and adopted afterwards with
    // `ADD CONSTRAINT ... USING INDEX`, a catalog change, as pg_restore -j and pgcopydb do.
    let mut builds: Vec<Vec<Step>> = Vec::new();
    let mut constraints = Vec::new();
    for (c, primary) in table
        .primary_key
        .iter()
        .map(|c| (c, true))
        .chain(table.constraints.iter().map(|c| (c, false)))
    {
        let kind = if primary {
            "primary key"
        } else if is_check(c) {
            "check constraint"
        } else {
            "constraint"
        };
        if is_check(c) && recurses(table, c) {
            continue;
        }
        match &c.index_definition {
            Some(index) => {
                builds.push(vec![Step {
                    what: constraint_build_what(kind, &c.name, table),
                    sql: index.clone(),
                }]);
                let using = if primary { "PRIMARY KEY" } else { "UNIQUE" };
                let mut sql = format!(
                    "ALTER TABLE ONLY {q} ADD CONSTRAINT {} {using} USING INDEX {};\n",
                    quote_ident(&c.name),
                    quote_ident(&c.name)
                );
                sql.push_str(&comment(
                    "CONSTRAINT",
                    &format!("{} ON {q}", quote_ident(&c.name)),
                    c.comment.as_deref(),
                ));
                constraints.push(Step {
                    what: format!("add {kind} {} on {}", c.name, table.name),
                    sql,
                });
            }
            None => constraints.push(Step {
                what: format!("add {kind} {} on {}", c.name, table.name),
                sql: add_constraint(&q, c, !is_check(c)),
            }),
        }
    }
    if let Some(step) = restore_not_null(table) {
        constraints.insert(0, step);
    }
    for i in &table.indexes {
        let mut sql = format!("{};\n", i.definition);
        let iq = QualifiedName::new(table.name.schema.as_str(), i.name.as_str()).quoted();
        sql.push_str(&comment("INDEX", &iq, i.comment.as_deref()));
        builds.push(vec![Step {
            what: index_build_what(&i.name, table),
            sql,
        }]);
    }
    let mut phases = Vec::new();
    if !builds.is_empty() {
        phases.push(builds);
    }
    if !constraints.is_empty() {
        phases.push(vec![constraints]);
    }
    phases
}

fn constraint_build_what(kind: &str, name: &str, table: &Table) -> String {
    format!("build the index of {kind} {name} on {}", table.name)
}

fn index_build_what(name: &str, table: &Table) -> String {
    format!("create index {name} on {}", table.name)
}

fn foreign_key_what(name: &str, table: &Table) -> String {
    format!("add foreign key {name} on {}", table.name)
}

/// The steps of [`final_phases_with`] that add (and check) `table`'s foreign keys, by `what`.
pub fn foreign_key_steps(table: &Table) -> Vec<String> {
    table
        .foreign_keys
        .iter()
        .map(|fk| foreign_key_what(&fk.name, table))
        .collect()
}

/// The index builds of [`table_post_data`]: each step's `what` and the index's name (in the
/// table's schema), for the ETA of the builds (see [`crate::state::builds`]).
pub fn index_builds(table: &Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (c, primary) in table
        .primary_key
        .iter()
        .map(|c| (c, true))
        .chain(table.constraints.iter().map(|c| (c, false)))
    {
        if c.index_definition.is_some() {
            let kind = if primary { "primary key" } else { "constraint" };
            out.push((constraint_build_what(kind, &c.name, table), c.name.clone()));
        }
    }
    for i in &table.indexes {
        out.push((index_build_what(&i.name, table), i.name.clone()));
    }
    out
}

/// `SET NOT NULL` on the columns created nullable for zero dates, each one that holds no NULL
/// (no zero date arrived); the others stay nullable. Clean columns (the usual case) cost one
/// scan of the table together.
fn restore_not_null(table: &Table) -> Option<Step> {
    let cols: Vec<String> = table
        .columns
        .iter()
        .filter(|c| c.nullable_for_zero_dates)
        .map(|c| format!("ALTER COLUMN {} SET NOT NULL", quote_ident(&c.name)))
        .collect();
    if cols.is_empty() {
        return None;
    }
    let q = table.name.quoted();
    let one_by_one: String = cols
        .iter()
        .map(|c| {
            format!(
                "  BEGIN ALTER TABLE ONLY {q} {c}; EXCEPTION WHEN not_null_violation THEN NULL; END;\n"
            )
        })
        .collect();
    Some(Step {
        what: format!(
            "restore NOT NULL on the date columns of {} without zero dates",
            table.name
        ),
        sql: format!(
            "DO $howdah_nn$\nBEGIN\n  ALTER TABLE ONLY {q} {};\n\
             EXCEPTION WHEN not_null_violation THEN\n{one_by_one}END\n$howdah_nn$;\n",
            cols.join(", ")
        ),
    })
}

/// Statements that need every table loaded, as phases run one after another: (1) partition
/// index attachment and CHECK constraints that recurse into children, in order on one
/// connection; (2) foreign keys, one job per referenced table, so keys to different tables
/// validate in parallel; (3) triggers, then materialized view refreshes in dependency order.
///
/// Keys to the same table cannot run in parallel anyway: each takes a self-conflicting lock
/// on the referenced table and adds triggers to it. As separate jobs they would queue on that
/// lock, and each builder would rebuild the referenced table's cached trigger list (which
/// grows with every key) after each of the other's keys: with thousands of keys to one table
/// that made the phase quadratic and twice as slow.
pub fn final_phases(cat: &Catalog) -> Phases {
    final_phases_with(cat, None)
}

/// Where a copy records a foreign key that its data violates (see [`final_phases_with`]).
#[derive(Debug, Clone, Copy)]
pub struct NotValidLog<'a> {
    /// The state table, quoted and qualified (`"howdah"."invalid_keys"`).
    pub table: &'a str,
    /// The job name.
    pub job: &'a str,
}

/// [`final_phases`], where with `not_valid` a foreign key that the copied rows violate does
/// not fail its step: it is added `NOT VALID` instead (the server still checks every new or
/// changed row), and recorded in `not_valid.table` with its orphan count and the query that
/// lists the orphans, in the step's transaction. A key that validates is added as usual.
pub fn final_phases_with(cat: &Catalog, not_valid: Option<&NotValidLog<'_>>) -> Phases {
    let foreign_keys = final_foreign_keys(cat, not_valid);
    vec![
        vec![final_attach(cat)],
        foreign_keys,
        vec![final_after(cat)],
    ]
}

/// The statements of [`final_phases`] flattened, in an order that is valid to run serially.
pub fn final_steps(cat: &Catalog) -> Vec<Step> {
    crate::schema::serial(final_phases(cat))
}

fn final_attach(cat: &Catalog) -> Vec<Step> {
    let mut steps = Vec::new();
    // Deepest partitions first, so a sub-partitioned partition's index is complete when its
    // own parent index is validated.
    for t in cat.tables.iter().rev() {
        let attached = t
            .primary_key
            .iter()
            .chain(&t.constraints)
            .filter_map(|c| c.attach_to.as_ref().map(|p| (&c.name, p)))
            .chain(
                t.indexes
                    .iter()
                    .filter_map(|i| i.attach_to.as_ref().map(|p| (&i.name, p))),
            );
        for (child, parent) in attached {
            let child_q = QualifiedName::new(t.name.schema.as_str(), child.as_str());
            steps.push(Step {
                what: format!("attach index {child_q} to {parent}"),
                sql: format!(
                    "ALTER INDEX {} ATTACH PARTITION {}",
                    parent.quoted(),
                    child_q.quoted()
                ),
            });
        }
    }
    for t in &cat.tables {
        for c in t
            .constraints
            .iter()
            .filter(|c| is_check(c) && recurses(t, c))
        {
            steps.push(Step {
                what: format!(
                    "add check constraint {} on {} and its children",
                    c.name, t.name
                ),
                sql: add_constraint(&t.name.quoted(), c, false),
            });
        }
    }
    steps
}

/// The foreign keys' steps, one job per referenced table (in the order the tables first
/// appear), each job's keys in table order.
fn final_foreign_keys(cat: &Catalog, not_valid: Option<&NotValidLog<'_>>) -> Vec<Vec<Step>> {
    let mut jobs: Vec<Vec<Step>> = Vec::new();
    let mut job_of: HashMap<Option<&QualifiedName>, usize> = HashMap::new();
    for t in &cat.tables {
        for fk in &t.foreign_keys {
            // No ONLY: a partitioned table's foreign key must recurse into its partitions.
            let sql = match not_valid {
                // A key that is NOT VALID on the source is added so, unchecked. A partitioned
                // table takes no NOT VALID foreign key (before PostgreSQL 18): its step fails
                // with the server's own message about the violating row.
                Some(log) if !fk.definition.ends_with(" NOT VALID") && t.has_storage() => {
                    add_foreign_key_or_not_valid(t, fk, log)
                }
                _ => add_constraint(&t.name.quoted(), fk, false),
            };
            let job = *job_of.entry(fk.references.as_ref()).or_insert_with(|| {
                jobs.push(Vec::new());
                jobs.len() - 1
            });
            jobs[job].push(Step {
                what: foreign_key_what(&fk.name, t),
                sql,
            });
        }
    }
    jobs
}

/// `ADD CONSTRAINT ... FOREIGN KEY`; when the rows violate it (`foreign_key_violation`), the
/// same key `NOT VALID` and a row in the log table.
fn add_foreign_key_or_not_valid(t: &Table, fk: &Constraint, log: &NotValidLog<'_>) -> String {
    let q = t.name.quoted();
    let add = format!(
        "ALTER TABLE {q} ADD CONSTRAINT {} {}",
        quote_ident(&fk.name),
        fk.definition
    );
    let constraint_oid = format!(
        "(SELECT oid FROM pg_catalog.pg_constraint WHERE conrelid = {}::regclass AND conname = {})",
        quote_literal(&q),
        quote_literal(&fk.name)
    );
    let mut sql = format!(
        "DO $howdah_fk$\n\
         DECLARE\n  listing text;\n  orphans bigint;\n\
         BEGIN\n  {add};\n\
         EXCEPTION WHEN foreign_key_violation THEN\n  {add} NOT VALID;\n  \
         SELECT ({query}) INTO listing;\n  \
         EXECUTE 'SELECT count(*) FROM (' || listing || ') o' INTO orphans;\n  \
         INSERT INTO {log} (job, schema_name, table_name, constraint_name, orphans, orphans_query) \
         VALUES ({job}, {schema}, {table}, {name}, orphans, listing) \
         ON CONFLICT (job, schema_name, table_name, constraint_name) DO UPDATE \
         SET orphans = EXCLUDED.orphans, orphans_query = EXCLUDED.orphans_query, at = now();\n\
         END\n$howdah_fk$;\n",
        query = orphans_query_sql(&constraint_oid),
        log = log.table,
        job = quote_literal(log.job),
        schema = quote_literal(&t.name.schema),
        table = quote_literal(&t.name.name),
        name = quote_literal(&fk.name),
    );
    sql.push_str(&comment(
        "CONSTRAINT",
        &format!("{} ON {q}", quote_ident(&fk.name)),
        fk.comment.as_deref(),
    ));
    sql
}

/// A query that returns the text of a query listing the rows that violate the foreign key
/// whose OID `constraint_oid` (an SQL expression) gives: the referencing rows whose key is
/// set (any column for `MATCH FULL`, every column else) and has no referenced row.
pub fn orphans_query_sql(constraint_oid: &str) -> String {
    format!(
        "SELECT format('SELECT c.* FROM %s%I.%I c WHERE (%s) AND NOT EXISTS (SELECT 1 FROM %s%I.%I p WHERE %s)', \
           CASE WHEN cr.relkind = 'p' THEN '' ELSE 'ONLY ' END, cn.nspname, cr.relname, \
           string_agg(format('c.%I IS NOT NULL', ca.attname), \
                      CASE WHEN fk_con.confmatchtype = 'f' THEN ' OR ' ELSE ' AND ' END ORDER BY u.n), \
           CASE WHEN pr.relkind = 'p' THEN '' ELSE 'ONLY ' END, pn.nspname, pr.relname, \
           string_agg(format('p.%I = c.%I', pa.attname, ca.attname), ' AND ' ORDER BY u.n)) \
         FROM pg_catalog.pg_constraint fk_con \
         JOIN pg_catalog.pg_class cr ON cr.oid = fk_con.conrelid \
         JOIN pg_catalog.pg_namespace cn ON cn.oid = cr.relnamespace \
         JOIN pg_catalog.pg_class pr ON pr.oid = fk_con.confrelid \
         JOIN pg_catalog.pg_namespace pn ON pn.oid = pr.relnamespace \
         CROSS JOIN LATERAL unnest(fk_con.conkey, fk_con.confkey) WITH ORDINALITY AS u(ck, pk, n) \
         JOIN pg_catalog.pg_attribute ca ON ca.attrelid = fk_con.conrelid AND ca.attnum = u.ck \
         JOIN pg_catalog.pg_attribute pa ON pa.attrelid = fk_con.confrelid AND pa.attnum = u.pk \
         WHERE fk_con.oid = {constraint_oid} \
         GROUP BY fk_con.confmatchtype, cr.relkind, cn.nspname, cr.relname, pr.relkind, pn.nspname, pr.relname"
    )
}

fn final_after(cat: &Catalog) -> Vec<Step> {
    let mut steps = Vec::new();
    for t in cat.tables.iter().filter(|t| t.row_security.forced) {
        steps.push(Step {
            what: format!("force row level security on {}", t.name),
            sql: format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY", t.name.quoted()),
        });
    }
    for t in &cat.tables {
        for tr in &t.triggers {
            steps.push(Step {
                what: format!("create trigger {} on {}", tr.name.name, t.name),
                sql: tr.ddl.clone(),
            });
        }
    }
    for v in cat.views.iter().filter(|v| v.materialized) {
        steps.push(Step {
            what: format!("refresh materialized view {}", v.name),
            sql: format!("REFRESH MATERIALIZED VIEW {}", v.name.quoted()),
        });
    }
    steps
}

/// Sets a sequence to the source's position, so the next `nextval` continues after it.
pub fn setval(name: &QualifiedName, last_value: i64, is_called: bool) -> Step {
    Step {
        what: format!("set sequence {name} to {last_value}"),
        sql: format!(
            "SELECT pg_catalog.setval({}, {last_value}, {is_called})",
            quote_literal(&name.quoted())
        ),
    }
}

/// Refreshes the planner statistics of a loaded table.
pub fn analyze(table: &Table) -> Step {
    Step {
        what: format!("analyze {}", table.name),
        sql: format!("ANALYZE {}", table.name.quoted()),
    }
}

fn comment(kind: &str, target: &str, text: Option<&str>) -> String {
    text.map(|c| format!("COMMENT ON {kind} {target} IS {};\n", quote_literal(c)))
        .unwrap_or_default()
}

fn is_check(c: &Constraint) -> bool {
    c.definition.starts_with("CHECK")
}

/// A CHECK constraint of a table with children must be added by a recursing ALTER TABLE,
/// because the children's inherited copies were not recreated on their own.
fn recurses(table: &Table, c: &Constraint) -> bool {
    table.has_children && !c.definition.contains(" NO INHERIT")
}

fn add_constraint(table_q: &str, c: &Constraint, only: bool) -> String {
    let only = if only { "ONLY " } else { "" };
    let mut sql = format!(
        "ALTER TABLE {only}{table_q} ADD CONSTRAINT {} {};\n",
        quote_ident(&c.name),
        c.definition
    );
    sql.push_str(&comment(
        "CONSTRAINT",
        &format!("{} ON {table_q}", quote_ident(&c.name)),
        c.comment.as_deref(),
    ));
    sql
}

/// `CREATE TABLE` with columns, defaults, identity, generated columns and partitioning or
/// inheritance, plus comments and column properties that differ from an inherited column.
/// Columns `(table OID, attnum)` in `deferred` are created without their default (a later
/// step sets it).
fn create_table(cat: &Catalog, t: &Table, deferred: &HashSet<(u32, i16)>) -> String {
    let q = t.name.quoted();
    // The default a column has right after CREATE TABLE.
    let default_of = |table: &Table, c: &Column| -> Option<String> {
        if deferred.contains(&(table.oid, c.attnum)) {
            None
        } else {
            c.default.clone()
        }
    };
    let unlogged = if t.unlogged { "UNLOGGED " } else { "" };
    let parents: Vec<&Table> = match &t.partition_of {
        Some((p, _)) => cat.tables.iter().filter(|x| &x.name == p).collect(),
        None => t
            .inherits
            .iter()
            .filter_map(|p| cat.tables.iter().find(|x| &x.name == p))
            .collect(),
    };
    let mut sql = format!("CREATE {unlogged}TABLE {q}");
    // A partition takes every column from its parent, whatever attislocal says (a table
    // created alone then attached keeps its columns marked local).
    let declared: Vec<&Column> = match t.partition_of {
        Some(_) => Vec::new(),
        None => t.columns.iter().filter(|c| !c.inherited).collect(),
    };
    match &t.partition_of {
        Some((parent, bound)) => {
            sql.push_str(&format!(" PARTITION OF {} {bound}", parent.quoted()))
        }
        None => {
            let cols: Vec<String> = declared
                .iter()
                .map(|c| {
                    let c = Column {
                        default: default_of(t, c),
                        ..(*c).clone()
                    };
                    format!("    {}", column_def(&c))
                })
                .collect();
            sql.push_str(&format!(" (\n{}\n)", cols.join(",\n")));
            if !t.inherits.is_empty() {
                let names: Vec<String> = t.inherits.iter().map(QualifiedName::quoted).collect();
                sql.push_str(&format!(" INHERITS ({})", names.join(", ")));
            }
        }
    }
    if let TableKind::Partitioned { partition_key } = &t.kind {
        sql.push_str(&format!(" PARTITION BY {partition_key}"));
    }
    if let Some(am) = &t.access_method {
        sql.push_str(&format!(" USING {am}"));
    }
    if !t.options.is_empty() {
        sql.push_str(&format!(" WITH ({})", t.options.join(", ")));
    }
    if let Some(ts) = &t.tablespace {
        sql.push_str(&format!(" TABLESPACE {}", quote_ident(ts)));
    }
    sql.push_str(";\n");
    for c in t
        .columns
        .iter()
        .filter(|c| !declared.iter().any(|d| d.name == c.name))
    {
        let inherited = parents.iter().find_map(|p| {
            p.columns
                .iter()
                .find(|pc| pc.name == c.name)
                .map(|pc| (*p, pc))
        });
        let col = format!("ALTER TABLE ONLY {q} ALTER COLUMN {}", quote_ident(&c.name));
        if c.not_null && !inherited.is_some_and(|(_, p)| p.not_null) {
            sql.push_str(&format!("{col} SET NOT NULL;\n"));
        }
        let own = default_of(t, c);
        if c.generated.is_none()
            && c.identity.is_none()
            && own != inherited.and_then(|(p, pc)| default_of(p, pc))
        {
            match &own {
                Some(d) => sql.push_str(&format!("{col} SET DEFAULT {d};\n")),
                None => sql.push_str(&format!("{col} DROP DEFAULT;\n")),
            }
        }
    }
    sql.push_str(&comment("TABLE", &q, t.comment.as_deref()));
    for c in &t.columns {
        sql.push_str(&comment(
            "COLUMN",
            &format!("{q}.{}", quote_ident(&c.name)),
            c.comment.as_deref(),
        ));
    }
    sql
}

fn column_def(c: &Column) -> String {
    let mut s = format!("{} {}", quote_ident(&c.name), c.type_sql);
    if let Some(coll) = &c.collation {
        s.push_str(&format!(" COLLATE {coll}"));
    }
    if let Some(expr) = &c.generated {
        s.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"));
    } else if let Some(id) = &c.identity {
        let when = if id.always { "ALWAYS" } else { "BY DEFAULT" };
        s.push_str(&format!(" GENERATED {when} AS IDENTITY"));
        if !id.options.is_empty() {
            s.push_str(&format!(" ({})", id.options));
        }
    } else if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if c.not_null {
        s.push_str(" NOT NULL");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Identity, Index};

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            type_sql: ty.into(),
            ..Column::default()
        }
    }

    fn table(schema: &str, name: &str, columns: Vec<Column>) -> Table {
        Table {
            name: QualifiedName::new(schema, name),
            columns,
            ..Table::default()
        }
    }

    #[test]
    fn names_are_quoted_exactly() {
        let t = table("My Schema", "Odd\"Name", vec![col("Mixed Case", "integer")]);
        let cat = Catalog {
            tables: vec![t],
            ..Catalog::default()
        };
        let steps = pre_data(&cat, &TargetFacts::default(), &DdlOptions::default());
        assert_eq!(
            steps[0].sql,
            "CREATE TABLE \"My Schema\".\"Odd\"\"Name\" (\n    \"Mixed Case\" integer\n);\n"
        );
    }

    #[test]
    fn identity_generated_default_collation() {
        let mut id = col("id", "bigint");
        id.not_null = true;
        id.identity = Some(Identity {
            always: true,
            sequence: QualifiedName::new("public", "t_id_seq"),
            options: "SEQUENCE NAME \"public\".\"t_id_seq\" START WITH 1".into(),
        });
        let mut by_default = col("n", "integer");
        by_default.identity = Some(Identity {
            always: false,
            ..Identity::default()
        });
        let mut gen = col("total", "numeric(12,2)");
        gen.generated = Some("price * 2".into());
        gen.default = None;
        let mut name = col("name", "text");
        name.collation = Some("\"pg_catalog\".\"C\"".into());
        name.default = Some("'x'::text".into());
        assert_eq!(
            column_def(&id),
            "\"id\" bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME \"public\".\"t_id_seq\" START WITH 1) NOT NULL"
        );
        assert_eq!(
            column_def(&by_default),
            "\"n\" integer GENERATED BY DEFAULT AS IDENTITY"
        );
        assert_eq!(
            column_def(&gen),
            "\"total\" numeric(12,2) GENERATED ALWAYS AS (price * 2) STORED"
        );
        assert_eq!(
            column_def(&name),
            "\"name\" text COLLATE \"pg_catalog\".\"C\" DEFAULT 'x'::text"
        );
    }

    fn partitioned_catalog() -> Catalog {
        let mut id = col("id", "integer");
        id.not_null = true;
        let mut parent = table("public", "m", vec![id.clone(), col("ts", "date")]);
        parent.kind = TableKind::Partitioned {
            partition_key: "RANGE (ts)".into(),
        };
        parent.has_children = true;
        parent.primary_key = Some(Constraint {
            name: "m_pkey".into(),
            definition: "PRIMARY KEY (id, ts)".into(),
            ..Constraint::default()
        });
        parent.constraints.push(Constraint {
            name: "m_id_check".into(),
            definition: "CHECK ((id > 0))".into(),
            ..Constraint::default()
        });
        let mut ts = col("ts", "date");
        ts.not_null = true;
        ts.inherited = true;
        let mut id_part = id;
        id_part.inherited = true;
        let mut part = table("public", "m1", vec![id_part, ts]);
        part.partition_of = Some((
            parent.name.clone(),
            "FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')".into(),
        ));
        part.primary_key = Some(Constraint {
            name: "m1_pkey".into(),
            definition: "PRIMARY KEY (id, ts)".into(),
            attach_to: Some(QualifiedName::new("public", "m_pkey")),
            ..Constraint::default()
        });
        part.indexes.push(Index {
            name: "m1_ts_idx".into(),
            definition: "CREATE INDEX m1_ts_idx ON public.m1 USING btree (ts)".into(),
            comment: Some("it's".into()),
            attach_to: Some(QualifiedName::new("public", "m_ts_idx")),
            tablespace: None,
        });
        Catalog {
            tables: vec![parent, part],
            ..Catalog::default()
        }
    }

    #[test]
    fn partition_ddl() {
        let cat = partitioned_catalog();
        let steps = pre_data(&cat, &TargetFacts::default(), &DdlOptions::default());
        assert_eq!(
            steps[0].sql,
            "CREATE TABLE \"public\".\"m\" (\n    \"id\" integer NOT NULL,\n    \"ts\" date\n) PARTITION BY RANGE (ts);\n"
        );
        assert_eq!(
            steps[1].sql,
            "CREATE TABLE \"public\".\"m1\" PARTITION OF \"public\".\"m\" FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');\n\
             ALTER TABLE ONLY \"public\".\"m1\" ALTER COLUMN \"ts\" SET NOT NULL;\n"
        );

        let parent_post = crate::schema::serial(table_post_data(&cat.tables[0]));
        assert_eq!(
            parent_post.len(),
            1,
            "the recursing check waits for the final phase"
        );
        assert_eq!(
            parent_post[0].sql,
            "ALTER TABLE ONLY \"public\".\"m\" ADD CONSTRAINT \"m_pkey\" PRIMARY KEY (id, ts);\n"
        );
        let part_post = crate::schema::serial(table_post_data(&cat.tables[1]));
        assert_eq!(part_post.len(), 2);
        assert!(part_post[0]
            .sql
            .ends_with("COMMENT ON INDEX \"public\".\"m1_ts_idx\" IS 'it''s';\n"));

        let fin = final_steps(&cat);
        let sql: Vec<&str> = fin.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            vec![
                "ALTER INDEX \"public\".\"m_pkey\" ATTACH PARTITION \"public\".\"m1_pkey\"",
                "ALTER INDEX \"public\".\"m_ts_idx\" ATTACH PARTITION \"public\".\"m1_ts_idx\"",
                "ALTER TABLE \"public\".\"m\" ADD CONSTRAINT \"m_id_check\" CHECK ((id > 0));\n",
            ]
        );
    }

    #[test]
    fn inheritance_child_does_not_redeclare_parent_columns() {
        let mut a = col("a", "integer");
        a.default = Some("1".into());
        let parent = table("public", "p", vec![a.clone()]);
        let mut inherited = a;
        inherited.inherited = true;
        inherited.default = Some("2".into());
        let mut child = table("public", "c", vec![inherited, col("b", "text")]);
        child.inherits.push(parent.name.clone());
        let cat = Catalog {
            tables: vec![parent, child],
            ..Catalog::default()
        };
        let steps = pre_data(&cat, &TargetFacts::default(), &DdlOptions::default());
        assert_eq!(
            steps[1].sql,
            "CREATE TABLE \"public\".\"c\" (\n    \"b\" text\n) INHERITS (\"public\".\"p\");\n\
             ALTER TABLE ONLY \"public\".\"c\" ALTER COLUMN \"a\" SET DEFAULT 2;\n"
        );
    }

    #[test]
    fn existing_objects_are_skipped_and_functions_unchecked() {
        use crate::catalog::{DdlObject, SchemaObject};
        let cat = Catalog {
            schemas: vec![
                SchemaObject {
                    name: "public".into(),
                    owner: "postgres".into(),
                    comment: None,
                },
                SchemaObject {
                    name: "app".into(),
                    owner: "postgres".into(),
                    comment: Some("x".into()),
                },
            ],
            functions: vec![DdlObject {
                name: QualifiedName::new("app", "f(integer)"),
                ddl: "CREATE OR REPLACE FUNCTION app.f(integer) ...;\n".into(),
                id: None,
            }],
            ..Catalog::default()
        };
        let mut facts = TargetFacts::default();
        facts.schemas.insert("public".into());
        let steps = pre_data(&cat, &facts, &DdlOptions::default());
        assert_eq!(steps.len(), 2);
        assert_eq!(
            steps[0].sql,
            "CREATE SCHEMA IF NOT EXISTS \"app\";\nCOMMENT ON SCHEMA \"app\" IS 'x';\n"
        );
        assert!(steps[1]
            .sql
            .starts_with("SET check_function_bodies = off;\n"));
        facts
            .functions
            .insert(QualifiedName::new("app", "f(integer)"));
        assert_eq!(pre_data(&cat, &facts, &DdlOptions::default()).len(), 1);
    }

    fn function(oid: u32, name: &str) -> crate::catalog::DdlObject {
        crate::catalog::DdlObject {
            name: QualifiedName::new("public", name),
            ddl: format!("CREATE FUNCTION {name};\n"),
            id: Some(ObjectRef::Function(oid)),
        }
    }

    fn whats(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.what.as_str()).collect()
    }

    #[test]
    fn objects_follow_their_dependencies_across_kinds() {
        use crate::catalog::Dependency;
        let mut customer = table("public", "customer", vec![col("id", "integer")]);
        customer.oid = 10;
        let cat = Catalog {
            functions: vec![function(20, "rich()"), function(21, "plain()")],
            tables: vec![customer],
            dependencies: vec![Dependency {
                object: ObjectRef::Function(20),
                column: None,
                needs: ObjectRef::Relation(10),
            }],
            ..Catalog::default()
        };
        let steps = pre_data(&cat, &TargetFacts::default(), &DdlOptions::default());
        assert_eq!(
            whats(&steps),
            [
                "create table public.customer",
                "create function public.rich()",
                "create function public.plain()"
            ]
        );
    }

    #[test]
    fn a_default_in_a_cycle_is_set_after_its_function() {
        use crate::catalog::Dependency;
        let mut tag = col("tag", "text");
        tag.attnum = 2;
        tag.default = Some("public.default_tag(NULL::public.tagged)".into());
        let mut id = col("id", "integer");
        id.attnum = 1;
        let mut tagged = table("public", "tagged", vec![id, tag]);
        tagged.oid = 10;
        let cat = Catalog {
            functions: vec![function(20, "default_tag(public.tagged)")],
            tables: vec![tagged],
            dependencies: vec![
                Dependency {
                    object: ObjectRef::Function(20),
                    column: None,
                    needs: ObjectRef::Relation(10),
                },
                Dependency {
                    object: ObjectRef::Relation(10),
                    column: Some(2),
                    needs: ObjectRef::Function(20),
                },
            ],
            ..Catalog::default()
        };
        let steps = pre_data(&cat, &TargetFacts::default(), &DdlOptions::default());
        assert_eq!(
            whats(&steps),
            [
                "create table public.tagged",
                "create function public.default_tag(public.tagged)",
                "set the default of public.tagged.tag"
            ]
        );
        assert_eq!(
            steps[0].sql,
            "CREATE TABLE \"public\".\"tagged\" (\n    \"id\" integer,\n    \"tag\" text\n);\n"
        );
        assert_eq!(
            steps[2].sql,
            "ALTER TABLE ONLY \"public\".\"tagged\" ALTER COLUMN \"tag\" SET DEFAULT public.default_tag(NULL::public.tagged);\n"
        );
    }

    #[test]
    fn index_builds_name_the_build_steps_of_the_post_data() {
        let mut t = table("public", "orders", vec![col("id", "integer")]);
        t.primary_key = Some(Constraint {
            name: "orders_pkey".into(),
            definition: "PRIMARY KEY (id)".into(),
            index_definition: Some("CREATE UNIQUE INDEX orders_pkey ON public.orders (id)".into()),
            ..Constraint::default()
        });
        t.constraints.push(Constraint {
            name: "orders_id_check".into(),
            definition: "CHECK (id > 0)".into(),
            ..Constraint::default()
        });
        t.indexes.push(Index {
            name: "orders_id_idx".into(),
            definition: "CREATE INDEX orders_id_idx ON public.orders (id)".into(),
            ..Index::default()
        });
        let builds = index_builds(&t);
        let phases = table_post_data(&t);
        let build_steps: Vec<&str> = phases[0].iter().map(|j| j[0].what.as_str()).collect();
        assert_eq!(
            builds.iter().map(|(w, _)| w.as_str()).collect::<Vec<_>>(),
            build_steps
        );
        assert_eq!(
            builds.iter().map(|(_, i)| i.as_str()).collect::<Vec<_>>(),
            ["orders_pkey", "orders_id_idx"]
        );
    }

    #[test]
    fn not_null_comes_back_after_the_data_where_no_zero_date_arrived() {
        let mut created = col("created", "timestamp");
        created.nullable_for_zero_dates = true;
        let mut born = col("born", "date");
        born.nullable_for_zero_dates = true;
        let t = table(
            "public",
            "author",
            vec![col("id", "integer"), created, born],
        );
        let steps = crate::schema::serial(table_post_data(&t));
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].sql,
            "DO $howdah_nn$\nBEGIN\n  ALTER TABLE ONLY \"public\".\"author\" ALTER COLUMN \"created\" SET NOT NULL, \
             ALTER COLUMN \"born\" SET NOT NULL;\nEXCEPTION WHEN not_null_violation THEN\n  \
             BEGIN ALTER TABLE ONLY \"public\".\"author\" ALTER COLUMN \"created\" SET NOT NULL; \
             EXCEPTION WHEN not_null_violation THEN NULL; END;\n  \
             BEGIN ALTER TABLE ONLY \"public\".\"author\" ALTER COLUMN \"born\" SET NOT NULL; \
             EXCEPTION WHEN not_null_violation THEN NULL; END;\nEND\n$howdah_nn$;\n"
        );
        assert!(table_post_data(&table("public", "t", vec![col("d", "date")])).is_empty());
    }

    #[test]
    fn setval_and_analyze() {
        let name = QualifiedName::new("public", "it's_seq");
        assert_eq!(
            setval(&name, 42, true).sql,
            "SELECT pg_catalog.setval('\"public\".\"it''s_seq\"', 42, true)"
        );
        let t = table("public", "t", Vec::new());
        assert_eq!(analyze(&t).sql, "ANALYZE \"public\".\"t\"");
    }

    #[test]
    fn select_keeps_relatives_and_drops_dangling_foreign_keys() {
        use crate::catalog::{Sequence, View};
        let mut cat = partitioned_catalog();
        let mut other = table("public", "other", Vec::new());
        other.foreign_keys.push(Constraint {
            name: "other_m_fk".into(),
            definition: "FOREIGN KEY (x) REFERENCES public.lonely(id)".into(),
            references: Some(QualifiedName::new("public", "lonely")),
            ..Constraint::default()
        });
        cat.tables.push(other);
        cat.tables.push(table("public", "lonely", Vec::new()));
        cat.sequences.push(Sequence {
            name: QualifiedName::new("public", "lonely_id_seq"),
            owner_table: Some(QualifiedName::new("public", "lonely")),
            ..Sequence::default()
        });
        cat.sequences.push(Sequence {
            name: QualifiedName::new("public", "free"),
            ..Sequence::default()
        });
        cat.views.push(View {
            name: QualifiedName::new("public", "v_m"),
            depends_on: vec![QualifiedName::new("public", "m")],
            ..View::default()
        });
        cat.views.push(View {
            name: QualifiedName::new("public", "v_lonely"),
            depends_on: vec![QualifiedName::new("public", "lonely")],
            ..View::default()
        });
        cat.views.push(View {
            name: QualifiedName::new("public", "v_v"),
            depends_on: vec![QualifiedName::new("public", "v_m")],
            ..View::default()
        });
        let other_object = |name: &str, table: &str| OtherObject {
            kind: "statistics",
            name: name.into(),
            stage: Stage::Final,
            ddl: vec![format!("CREATE STATISTICS {name}")],
            owner: None,
            grants: Vec::new(),
            with_password: None,
            table: Some(QualifiedName::new("public", table)),
        };
        cat.others.push(other_object("on_other", "other"));
        cat.others.push(other_object("on_lonely", "lonely"));
        cat.others.push(other_object("on_v_lonely", "v_lonely"));
        cat.select(|n| n.name == "m1" || n.name == "other");
        let others: Vec<&str> = cat.others.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            others,
            vec!["on_other"],
            "objects of relations left out go with them"
        );
        let names: Vec<&str> = cat.tables.iter().map(|t| t.name.name.as_str()).collect();
        assert_eq!(names, vec!["m", "m1", "other"]);
        assert!(cat.tables[2].foreign_keys.is_empty());
        let seqs: Vec<&str> = cat.sequences.iter().map(|s| s.name.name.as_str()).collect();
        assert_eq!(seqs, vec!["free"]);
        let views: Vec<&str> = cat.views.iter().map(|v| v.name.name.as_str()).collect();
        assert_eq!(views, vec!["v_m", "v_v"]);
    }

    #[test]
    fn foreign_keys_to_one_table_share_a_job_and_keep_table_order() {
        let fk = |name: &str, to: &str| Constraint {
            name: name.into(),
            definition: format!("FOREIGN KEY (p) REFERENCES public.{to}(id)"),
            references: Some(QualifiedName::new("public", to)),
            ..Constraint::default()
        };
        let mut tables = Vec::new();
        for (name, to) in [("a", "parent"), ("b", "other"), ("c", "parent")] {
            let mut t = table("public", name, vec![col("p", "integer")]);
            t.foreign_keys.push(fk(&format!("{name}_fk"), to));
            tables.push(t);
        }
        let cat = Catalog {
            tables,
            ..Catalog::default()
        };
        let phases = final_phases(&cat);
        let jobs: Vec<Vec<&str>> = phases[1]
            .iter()
            .map(|job| job.iter().map(|s| s.what.as_str()).collect())
            .collect();
        // Keys to one table queue on its lock: one job runs them in order on one connection;
        // keys to another table run beside them.
        assert_eq!(
            jobs,
            vec![
                vec![
                    "add foreign key a_fk on public.a",
                    "add foreign key c_fk on public.c"
                ],
                vec!["add foreign key b_fk on public.b"],
            ]
        );
    }
}
