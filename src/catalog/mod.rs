//! Source and target introspection into one neutral model of tables, columns, keys and DDL.
//!
//! The PostgreSQL reader lives in `postgres.rs`; the model here is what the planner, the
//! pipeline and the schema steps consume. DDL fragments that the server can render exactly
//! (`pg_get_indexdef`, `pg_get_constraintdef`, `pg_get_triggerdef`, `pg_get_functiondef`,
//! `pg_get_viewdef`, `format_type`) are kept as the server's own text.

pub mod error;
pub mod mysql;
pub mod objects;
pub mod postgres;

pub use error::CatalogError;

use std::collections::{HashMap, HashSet};
use std::fmt;

/// A schema-qualified relation or object name, unquoted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName {
    /// Schema (namespace) name.
    pub schema: String,
    /// Object name inside the schema.
    pub name: String,
}

impl QualifiedName {
    /// Builds a name from its two parts.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// The name quoted for SQL: `"schema"."name"`.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Quotes an SQL identifier, doubling embedded double quotes.
pub fn quote_ident(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    out.push('"');
    for ch in ident.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// Quotes an SQL string literal (standard_conforming_strings on), doubling single quotes.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for ch in value.chars() {
        if ch == '\'' {
            out.push('\'');
        }
        out.push(ch);
    }
    out.push('\'');
    out
}

/// Everything howdah knows about one database, restricted to the selected tables and the
/// objects they (and the rest of the user schema) need.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// `server_version` as reported by the server, e.g. "15.19 (Debian 15.19-0+deb12u1)".
    pub server_version: String,
    /// `server_version_num`, e.g. 150019.
    pub server_version_num: i32,
    /// Non-system schemas that hold selected tables or other user objects, in creation order.
    pub schemas: Vec<SchemaObject>,
    /// Extensions other than plpgsql.
    pub extensions: Vec<Extension>,
    /// User-defined collations (`CREATE COLLATION`).
    pub collations: Vec<DdlObject>,
    /// User-defined types (enums, domains, composites, ranges), in dependency order.
    pub types: Vec<DdlObject>,
    /// Functions, procedures and aggregates of user schemas (not extension members).
    pub functions: Vec<DdlObject>,
    /// Selected tables, partitioned parents before their partitions, inheritance parents first.
    pub tables: Vec<Table>,
    /// Standalone sequences and those owned by columns (serial, identity).
    pub sequences: Vec<Sequence>,
    /// Views and materialized views in dependency order.
    pub views: Vec<View>,
    /// What the source's `pg_depend` says each object needs before it can be created (types,
    /// functions, tables, views, collations; empty for MySQL sources): the schema steps create
    /// objects in an order that honours it, as `pg_dump` does.
    pub dependencies: Vec<Dependency>,
    /// Every other kind of object `pg_dump` dumps (operators, casts, text search, foreign
    /// servers, statistics, event triggers, privileges...), in creation order per stage.
    pub others: Vec<OtherObject>,
    /// Objects a copy does not create (publications, subscriptions), with the SQL to create
    /// them by hand: listed by `plan` and by the copy's summary.
    pub not_created: Vec<ManualObject>,
    /// Large objects of the database (copied when no `--tables` pattern narrows the copy).
    pub large_objects: i64,
}

/// When an [`OtherObject`] is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the tables, after types and functions (operators, casts, servers...): table
    /// defaults and constraints may use them.
    BeforeTables,
    /// With the tables' owners and grants, once every pre-data object exists.
    AfterTables,
    /// After the data (statistics, rules, replica identity, default privileges, event
    /// triggers last, so none fires during the copy).
    Final,
}

/// An object of a kind the other [`Catalog`] lists do not model, as statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherObject {
    /// Kind, for messages: `operator`, `cast`, `text search configuration`...
    pub kind: &'static str,
    /// Name (with its signature where it has one), for messages.
    pub name: String,
    /// When it is created.
    pub stage: Stage,
    /// Statements that create it, with its comment (empty: it only carries owner or grants).
    pub ddl: Vec<String>,
    /// `ALTER ... OWNER TO` (applied with `--owners`).
    pub owner: Option<String>,
    /// `GRANT`/`REVOKE` statements (applied with `--grants`).
    pub grants: Vec<String>,
    /// For a user mapping with a `password` option: its statement with the password, used
    /// instead of the first of `ddl` only with `--user-mapping-passwords`.
    pub with_password: Option<String>,
    /// The relation it belongs to (statistics, rules, replica identity, privileges of a view
    /// or sequence...): left out with it by a table filter, and when a `[[table]]` rule
    /// renames it (its SQL names the source's table and columns).
    pub table: Option<QualifiedName>,
}

/// An object listed, not created, with the SQL that creates it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ManualObject {
    /// `publication` or `subscription`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// The statement to run by hand.
    pub sql: String,
}

/// A source object that other objects may depend on, by kind and source OID (OIDs are unique
/// per system catalog, so the kind is part of the identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectRef {
    /// A collation (`pg_collation`).
    Collation(u32),
    /// A type (`pg_type`): enum, domain, composite (by its type OID) or range.
    Type(u32),
    /// A function or procedure (`pg_proc`).
    Function(u32),
    /// A table, view, materialized view or sequence (`pg_class`); a relation's row type and
    /// the arrays of it resolve to the relation.
    Relation(u32),
}

/// `object` cannot be created before `needs` exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The dependent object.
    pub object: ObjectRef,
    /// For a table: the column (attribute number) whose default or generation expression
    /// holds the dependency. A plain default can be set after the table is created, which
    /// breaks a cycle (a default calling a function that takes the table's row type).
    pub column: Option<i16>,
    /// What it needs.
    pub needs: ObjectRef,
}

/// A schema to create on the target.
#[derive(Debug, Clone)]
pub struct SchemaObject {
    /// Schema name.
    pub name: String,
    /// Owner role name.
    pub owner: String,
    /// `COMMENT ON SCHEMA` text.
    pub comment: Option<String>,
}

/// An installed extension.
#[derive(Debug, Clone)]
pub struct Extension {
    /// Extension name.
    pub name: String,
    /// Schema the extension's objects live in.
    pub schema: String,
    /// Installed version.
    pub version: String,
}

/// An object whose full DDL the server renders (collations, types, functions, triggers).
#[derive(Debug, Clone, Default)]
pub struct DdlObject {
    /// Object name (for functions, the identity signature, e.g. `public.f(integer)`).
    pub name: QualifiedName,
    /// Complete statement(s) that create it, including its comment.
    pub ddl: String,
    /// Its identity in [`Catalog::dependencies`] (`None`: nothing refers to it).
    pub id: Option<ObjectRef>,
}

/// How a relation stores rows, which decides how (and whether) it is copied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TableKind {
    /// A plain heap table (possibly an inheritance child or parent).
    #[default]
    Ordinary,
    /// A partitioned parent: no storage, data lives in its partitions.
    Partitioned {
        /// `pg_get_partkeydef` text, e.g. `RANGE (created_at)`.
        partition_key: String,
    },
}

/// A table with the facts needed to create, copy and finish it.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Source OID (for logging and ordering only).
    pub oid: u32,
    /// Qualified name.
    pub name: QualifiedName,
    /// Ordinary or partitioned.
    pub kind: TableKind,
    /// `UNLOGGED` table.
    pub unlogged: bool,
    /// When this table is a partition: its parent and `FOR VALUES ...` bound text.
    pub partition_of: Option<(QualifiedName, String)>,
    /// Inheritance parents (`INHERITS (...)`), for non-partition children.
    pub inherits: Vec<QualifiedName>,
    /// Columns in attribute order, dropped columns excluded.
    pub columns: Vec<Column>,
    /// The primary key constraint, built after data.
    pub primary_key: Option<Constraint>,
    /// Unique, check and exclusion constraints, built after data.
    pub constraints: Vec<Constraint>,
    /// Foreign keys, built once both sides hold data.
    pub foreign_keys: Vec<Constraint>,
    /// Indexes that do not back a constraint, built after data.
    pub indexes: Vec<Index>,
    /// Triggers (not internal ones), created after data so they do not fire during the load.
    pub triggers: Vec<DdlObject>,
    /// The key used to cut the table into keyset ranges: primary key, else a unique index
    /// over NOT NULL columns. Column names in key order.
    pub chunk_key: Option<Vec<KeyColumn>>,
    /// `pg_class.reltuples` (may be -1 when the table was never analyzed).
    pub estimated_rows: i64,
    /// Heap size in 8 KiB blocks (`pg_relation_size / block_size`).
    pub blocks: i64,
    /// Heap bytes (`pg_relation_size`) plus TOAST.
    pub size_bytes: i64,
    /// Table comment.
    pub comment: Option<String>,
    /// Owner role name.
    pub owner: String,
    /// `GRANT` statements reproducing the table's ACL (applied only when asked).
    pub grants: Vec<String>,
    /// Other tables inherit from it or are its partitions (`relhassubclass`): its inheritable
    /// CHECK constraints then recurse into them and are added in the final phase.
    pub has_children: bool,
    /// Row-level security: the `ENABLE`/`FORCE` flags and the policies, created with the
    /// table's grants, before any row is in (so no role ever reads unfiltered rows).
    pub row_security: RowSecurity,
    /// Its table access method when not `heap` (quoted), for `CREATE TABLE ... USING`.
    pub access_method: Option<String>,
    /// Storage parameters (`reloptions`, e.g. `fillfactor=70`), for `WITH (...)`.
    pub options: Vec<String>,
    /// Its tablespace on the source when not the database's default (unquoted); created
    /// there only when `--tablespace` maps it (see [`Catalog::place_tablespaces`]).
    pub tablespace: Option<String>,
}

/// A table's row-level security as `pg_dump` reproduces it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowSecurity {
    /// `ALTER TABLE ... ENABLE ROW LEVEL SECURITY` (`relrowsecurity`).
    pub enabled: bool,
    /// `ALTER TABLE ... FORCE ROW LEVEL SECURITY` (`relforcerowsecurity`): the owner too.
    pub forced: bool,
    /// The policies, in name order.
    pub policies: Vec<Policy>,
}

/// One row-level security policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Policy name.
    pub name: String,
    /// What follows `CREATE POLICY name ON table`: `AS RESTRICTIVE`, `FOR cmd`, `TO roles`,
    /// `USING (...)`, `WITH CHECK (...)` (expressions as `pg_get_expr` renders them).
    pub clauses: String,
    /// `COMMENT ON POLICY` text.
    pub comment: Option<String>,
}

impl Table {
    /// Whether this relation holds rows of its own (partitioned parents do not).
    pub fn has_storage(&self) -> bool {
        matches!(self.kind, TableKind::Ordinary)
    }

    /// The names of the chunking key's columns, in key order (none without a key).
    pub fn key_names(&self) -> Vec<String> {
        self.chunk_key
            .iter()
            .flatten()
            .map(|k| k.name.clone())
            .collect()
    }

    /// Columns that COPY reads and writes: every column except stored generated ones.
    pub fn copy_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.generated.is_none())
    }
}

/// A column of a table.
#[derive(Debug, Clone, Default)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Attribute number on the source.
    pub attnum: i16,
    /// Type as `format_type(atttypid, atttypmod)` renders it, e.g. `numeric(12,2)`, `public.mood[]`.
    pub type_sql: String,
    /// Type OID on the source (built-in OIDs are the same on every server).
    pub type_oid: u32,
    /// `NOT NULL`.
    pub not_null: bool,
    /// Default expression (`pg_get_expr(adbin)`), absent for identity and generated columns.
    pub default: Option<String>,
    /// Identity column: `ALWAYS` or `BY DEFAULT`, with its sequence options rendered.
    pub identity: Option<Identity>,
    /// Stored generated column expression.
    pub generated: Option<String>,
    /// Collation when it differs from the type's default, quoted and qualified.
    pub collation: Option<String>,
    /// Column comment.
    pub comment: Option<String>,
    /// Only comes from an inheritance or partitioned parent (`NOT attislocal`): the DDL must not
    /// redeclare it.
    pub inherited: bool,
    /// NOT NULL on a MySQL source, created nullable so that its zero dates can arrive as NULL
    /// (`zero_dates = "null"`); NOT NULL is set again after the data when none did.
    pub nullable_for_zero_dates: bool,
}

/// Identity column facts.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// `true` for `GENERATED ALWAYS`, `false` for `BY DEFAULT`.
    pub always: bool,
    /// The backing sequence (its value is set after the load).
    pub sequence: QualifiedName,
    /// Sequence options for the identity clause, e.g. `SEQUENCE NAME "s"."t_id_seq" START WITH 1 ...`.
    pub options: String,
}

/// One column of a chunking key.
#[derive(Debug, Clone)]
pub struct KeyColumn {
    /// Column name.
    pub name: String,
    /// Type as `format_type` renders it, used to cast boundary literals.
    pub type_sql: String,
    /// The collation the key's unique index compares this column in, qualified and quoted,
    /// when it is not the column's own (`name COLLATE "C"` on a case-insensitive column): keys
    /// are unique, ordered and compared in it, or equal keys would be skipped on resume.
    pub collation: Option<String>,
}

impl KeyColumn {
    /// The column as keyset predicates and `ORDER BY` compare it: in its index's collation.
    pub fn sql(&self) -> String {
        match &self.collation {
            Some(c) => format!("{} COLLATE {c}", quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

/// A table constraint rendered by `pg_get_constraintdef`.
#[derive(Debug, Clone, Default)]
pub struct Constraint {
    /// Constraint name (preserved on the target).
    pub name: String,
    /// `PRIMARY KEY (id)`, `CHECK (...)`, `FOREIGN KEY (...) REFERENCES ...`, ...
    pub definition: String,
    /// For foreign keys: the referenced table.
    pub references: Option<QualifiedName>,
    /// Constraint comment.
    pub comment: Option<String>,
    /// For a partition's index-backed constraint: the parent's index it is attached to.
    pub attach_to: Option<QualifiedName>,
    /// For a non-deferrable primary key or unique constraint of an ordinary table: its index
    /// as `CREATE UNIQUE INDEX ...`, so the index can be built in parallel with the table's
    /// other indexes and then adopted with `ADD CONSTRAINT ... USING INDEX`.
    pub index_definition: Option<String>,
    /// Its index's tablespace on the source when not the database's default (unquoted).
    pub tablespace: Option<String>,
}

/// A standalone index rendered by `pg_get_indexdef` (partial and expression ones included).
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// Index name (preserved on the target).
    pub name: String,
    /// Full `CREATE [UNIQUE] INDEX name ON ONLY? table USING ...` statement.
    pub definition: String,
    /// Index comment.
    pub comment: Option<String>,
    /// For an index of a partition: the partitioned parent's index it is attached to.
    pub attach_to: Option<QualifiedName>,
    /// Its tablespace on the source when not the database's default (unquoted).
    pub tablespace: Option<String>,
}

/// A sequence and where its value must be set after the load.
#[derive(Debug, Clone, Default)]
pub struct Sequence {
    /// Source OID (0 when unknown), its identity in [`Catalog::dependencies`].
    pub oid: u32,
    /// Qualified name.
    pub name: QualifiedName,
    /// `CREATE SEQUENCE` statement (absent for identity sequences, created with their column).
    pub ddl: Option<String>,
    /// `ALTER SEQUENCE ... OWNED BY` statement for serial columns.
    pub owned_by: Option<String>,
    /// The table owning it (serial or identity column); `None` for a standalone sequence.
    pub owner_table: Option<QualifiedName>,
    /// Backs an identity column: created by the column, never by `CREATE SEQUENCE`.
    pub identity: bool,
}

/// A view or materialized view.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Source OID (0 when unknown), its identity in [`Catalog::dependencies`].
    pub oid: u32,
    /// Qualified name.
    pub name: QualifiedName,
    /// Materialized views are created `WITH NO DATA` and refreshed after the load.
    pub materialized: bool,
    /// Full create statement(s), including comments and, for materialized views, their indexes.
    pub ddl: String,
    /// Tables and views this view reads (from `pg_depend`/`pg_rewrite`).
    pub depends_on: Vec<QualifiedName>,
    /// Owner role name.
    pub owner: String,
}

/// What already exists on a target, so `create` can skip shared objects and report tables.
#[derive(Debug, Clone, Default)]
pub struct TargetFacts {
    /// Schema names.
    pub schemas: HashSet<String>,
    /// Extension names.
    pub extensions: HashSet<String>,
    /// User collations.
    pub collations: HashSet<QualifiedName>,
    /// User types (enums, domains, composites, ranges).
    pub types: HashSet<QualifiedName>,
    /// Functions and procedures by identity signature, e.g. `public`.`f(integer)`.
    pub functions: HashSet<QualifiedName>,
    /// Ordinary, partitioned and foreign tables.
    pub tables: HashSet<QualifiedName>,
    /// Every other relation: views, materialized views, sequences.
    pub relations: HashSet<QualifiedName>,
}

impl Catalog {
    /// Decides where tables and indexes are created: a source tablespace that `map` names
    /// (`source tablespace -> target tablespace`, `*` for any) goes to its target tablespace,
    /// written into the DDL; every other relation goes to the target's default tablespace,
    /// as does everything when `map` is empty. Returns the source tablespaces left out, with
    /// how many relations they held.
    pub fn place_tablespaces(&mut self, map: &[(String, String)]) -> Vec<(String, usize)> {
        let target = |ts: &str| {
            map.iter()
                .find(|(from, _)| from == ts)
                .or_else(|| map.iter().find(|(from, _)| from == "*"))
                .map(|(_, to)| to.clone())
        };
        let mut left: std::collections::BTreeMap<String, usize> = Default::default();
        let mut place = |ts: &mut Option<String>| {
            if let Some(name) = ts.take() {
                match target(&name) {
                    Some(to) => *ts = Some(to),
                    None => *left.entry(name).or_default() += 1,
                }
            }
        };
        for t in &mut self.tables {
            place(&mut t.tablespace);
            for i in &mut t.indexes {
                place(&mut i.tablespace);
                if let Some(ts) = &i.tablespace {
                    i.definition = format!("{} TABLESPACE {}", i.definition, quote_ident(ts));
                }
            }
            for c in t.primary_key.iter_mut().chain(t.constraints.iter_mut()) {
                place(&mut c.tablespace);
                if let (Some(ts), Some(def)) = (&c.tablespace, &mut c.index_definition) {
                    *def = format!("{def} TABLESPACE {}", quote_ident(ts));
                }
            }
        }
        left.into_iter().collect()
    }

    /// The tables that hold rows of their own (not partitioned parents), quoted and joined
    /// by commas: what `TRUNCATE ONLY` empties.
    pub fn storage_tables_sql(&self) -> String {
        let names: Vec<String> = self
            .tables
            .iter()
            .filter(|t| t.has_storage())
            .map(|t| t.name.quoted())
            .collect();
        names.join(", ")
    }

    /// Keeps the tables `keep` accepts plus the relatives their DDL needs (a partitioned
    /// parent's partitions, a partition's or inheritance child's parents), the views whose
    /// every dependency is kept, and the sequences that are standalone or owned by a kept
    /// table; drops (with a warning) foreign keys to tables that are not kept.
    pub fn select(&mut self, keep: impl Fn(&QualifiedName) -> bool) {
        let mut kept: HashSet<QualifiedName> = self
            .tables
            .iter()
            .filter(|t| keep(&t.name))
            .map(|t| t.name.clone())
            .collect();
        loop {
            let before = kept.len();
            for t in &self.tables {
                let parent = t.partition_of.as_ref().map(|(p, _)| p);
                if kept.contains(&t.name) {
                    kept.extend(parent.cloned());
                    kept.extend(t.inherits.iter().cloned());
                } else if parent.is_some_and(|p| kept.contains(p)) {
                    // A partitioned parent's rows live in its partitions: keep them all.
                    kept.insert(t.name.clone());
                }
            }
            if kept.len() == before {
                break;
            }
        }
        for t in self.tables.iter_mut().filter(|t| kept.contains(&t.name)) {
            let name = t.name.clone();
            t.foreign_keys.retain(|fk| match &fk.references {
                Some(r) if !kept.contains(r) => {
                    tracing::warn!(
                        table = %name,
                        constraint = %fk.name,
                        references = %r,
                        "foreign key dropped: the referenced table is not selected"
                    );
                    false
                }
                _ => true,
            });
        }
        self.sequences
            .retain(|s| s.owner_table.as_ref().is_none_or(|t| kept.contains(t)));
        // Objects that need a table left out (a function returning its rows, a view reading
        // it, a type holding its row type) cannot be created: they are left out too, and so
        // is whatever needs them in turn.
        // Each object left out, with the table that made it so.
        let mut gone: HashMap<ObjectRef, QualifiedName> = self
            .tables
            .iter()
            .filter(|t| !kept.contains(&t.name) && t.oid != 0)
            .map(|t| (ObjectRef::Relation(t.oid), t.name.clone()))
            .collect();
        let views: HashSet<ObjectRef> = self
            .views
            .iter()
            .filter(|v| v.oid != 0)
            .map(|v| ObjectRef::Relation(v.oid))
            .collect();
        loop {
            let before = gone.len();
            for d in &self.dependencies {
                let dependent =
                    !matches!(d.object, ObjectRef::Relation(_)) || views.contains(&d.object);
                if dependent && !gone.contains_key(&d.object) {
                    if let Some(root) = gone.get(&d.needs).cloned() {
                        gone.insert(d.object, root);
                    }
                }
            }
            if gone.len() == before {
                break;
            }
        }
        self.tables.retain(|t| kept.contains(&t.name));
        for (what, list) in [("type", &mut self.types), ("function", &mut self.functions)] {
            list.retain(|o| match o.id.and_then(|id| gone.get(&id)) {
                Some(root) => {
                    tracing::warn!(
                        "{what} {} not created: it needs table {root}, which is not selected",
                        o.name
                    );
                    false
                }
                None => true,
            });
        }
        // Views come in dependency order, so one pass sees every view's dependencies decided.
        let mut kept_views = kept.clone();
        self.views.retain(|v| {
            // Dependencies on system catalogs exist on every target.
            let ok = !gone.contains_key(&ObjectRef::Relation(v.oid))
                && v.depends_on.iter().all(|d| {
                    kept_views.contains(d)
                        || d.schema == "pg_catalog"
                        || d.schema == "information_schema"
                });
            if ok {
                kept_views.insert(v.name.clone());
            }
            ok
        });
        // Objects of a relation left out go with it (foreign tables are never left out).
        let foreign: HashSet<QualifiedName> = self
            .others
            .iter()
            .filter(|o| o.kind == "foreign table")
            .filter_map(|o| o.table.clone())
            .collect();
        let sequences: HashSet<&QualifiedName> = self.sequences.iter().map(|s| &s.name).collect();
        self.others.retain(|o| {
            o.table.as_ref().is_none_or(|t| {
                kept_views.contains(t) || sequences.contains(t) || foreign.contains(t)
            })
        });
    }
}
