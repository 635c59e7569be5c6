//! Planning a MySQL/MariaDB copy: the PostgreSQL schema that receives it (tables with mapped
//! types, enum types, keys, indexes, foreign keys, identity columns), how each table is read,
//! how it is cut into keyset chunks, and a list of everything that changed or stays behind.

use std::collections::{HashMap, HashSet};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::catalog::mysql::{MyColumn, MySchema, MyTable};
use crate::catalog::{
    quote_ident, quote_literal, Catalog, Column, Constraint, DdlObject, Identity, Index, KeyColumn,
    QualifiedName, SchemaObject, Table,
};
use crate::chunking::mysql_read::{quote_my, KeyKind, MyKeyColumn, MyReadColumn, MyTablePlan};
use crate::chunking::{Chunk, ChunkRange};
use crate::config::TableFilter;
use crate::config::{MysqlSection, NameCase};
use crate::error::{Error, Result};
use crate::schema::Step;
use crate::typemap::mysql::{map_column, postgis_mapping, Convert, Mapping};

/// An `AUTO_INCREMENT` column of the plan.
#[derive(Debug, Clone)]
pub struct AutoIncrement {
    /// Table number.
    pub table: usize,
    /// Column name on the target before any `[[table]]` rename.
    pub column: String,
    /// MySQL's next `AUTO_INCREMENT` value: the identity never goes below it.
    pub next: u64,
}

/// The step that sets the identity of `table.column` past the copied rows and MySQL's
/// `AUTO_INCREMENT` counter.
pub fn identity_step(table: &QualifiedName, column: &str, next: u64) -> Step {
    Step {
        what: format!("set the identity of {table}.{column} past the copied rows"),
        sql: format!(
            "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence({}, {}), \
             greatest(coalesce(max({col}) + 1, 1), {next}), false) FROM {}",
            quote_literal(&table.quoted()),
            quote_literal(column),
            table.quoted(),
            col = quote_ident(column),
        ),
    }
}

/// A planned MySQL copy.
#[derive(Debug, Clone)]
pub struct MysqlPlan {
    /// The target side, in the neutral model the schema steps and the pipeline use.
    pub catalog: Catalog,
    /// How each table is read, by table number.
    pub reads: Vec<Option<MyTablePlan>>,
    /// `AUTO_INCREMENT` columns, whose identity is set past the copied maximum after the load.
    pub auto_increments: Vec<AutoIncrement>,
    /// What the migration changes or leaves behind, one line each, for the log and summary.
    pub notes: Vec<String>,
}

struct Names {
    case: NameCase,
}

impl Names {
    fn of(&self, name: &str) -> String {
        self.case.apply(name)
    }
}

/// Fails when two source names become the same target name, naming both. Checked while the
/// plan is built, so before anything is written (`plan` and `--dry-run` stop on it too).
fn no_collisions<'a>(what: &str, names: impl Iterator<Item = (&'a str, String)>) -> Result<()> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (source, target) in names {
        if let Some(other) = seen.insert(target.clone(), source) {
            return Err(clash(what, other, source, &target));
        }
    }
    Ok(())
}

fn clash(what: &str, one: &str, other: &str, target: &str) -> Error {
    Error::Config(format!(
        "{what} {one} and {other} both become {target} on the target; rename one on the source, \
         or set [mysql] identifiers = \"preserve\" (or another rule)"
    ))
}

fn key_kind(col: &MyColumn) -> Option<KeyKind> {
    let unsigned = col.unsigned();
    Some(match col.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
            if unsigned {
                KeyKind::Unsigned
            } else {
                KeyKind::Signed
            }
        }
        "decimal" | "numeric" => {
            KeyKind::Decimal(col.precision.unwrap_or(10), col.scale.unwrap_or(0))
        }
        "date" => KeyKind::Date,
        "datetime" | "timestamp" => KeyKind::DateTime,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" if !col.json => {
            KeyKind::Text
        }
        "binary" | "varbinary" => KeyKind::Binary,
        _ => return None,
    })
}

/// The chunking key: the primary key, else a unique index over NOT NULL columns, when every
/// column is of a type the keyset predicate handles.
fn chunk_key(t: &MyTable) -> Option<Vec<MyKeyColumn>> {
    let col = |n: &str| t.columns.iter().find(|c| c.name == n);
    let usable = |names: &[String]| -> Option<Vec<MyKeyColumn>> {
        names
            .iter()
            .map(|n| {
                let c = col(n)?;
                (c.not_null && !c.generated()).then_some(())?;
                Some(MyKeyColumn {
                    name: c.name.clone(),
                    kind: key_kind(c)?,
                })
            })
            .collect()
    };
    if !t.primary_key.is_empty() {
        if let Some(k) = usable(&t.primary_key) {
            return Some(k);
        }
    }
    t.indexes
        .iter()
        .filter(|i| i.unique && i.kind == "BTREE" && i.columns.iter().all(|c| c.prefix.is_none()))
        .find_map(|i| {
            let names: Option<Vec<String>> = i.columns.iter().map(|c| c.name.clone()).collect();
            usable(&names?)
        })
}

fn is_current_timestamp(d: &str) -> bool {
    let d = d.trim().to_ascii_lowercase();
    d.starts_with("current_timestamp") || d.starts_with("now(") || d == "localtimestamp"
}

/// The MySQL default as a PostgreSQL default expression, or a note saying why it is dropped.
fn translate_default(
    col: &MyColumn,
    mapping: &Mapping,
    mariadb: bool,
) -> std::result::Result<Option<String>, String> {
    let Some(raw) = col.default.as_deref() else {
        return Ok(None);
    };
    if raw.eq_ignore_ascii_case("null") {
        return Ok(None);
    }
    if is_current_timestamp(raw) {
        return Ok(Some("CURRENT_TIMESTAMP".into()));
    }
    // MariaDB quotes literals ('abc') and shows expressions bare; MySQL shows literals bare.
    let literal = if mariadb {
        match raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            Some(inner) => Some(inner.replace("''", "'").replace("\\\\", "\\")),
            None if raw.parse::<f64>().is_ok() => Some(raw.to_string()),
            None if raw.starts_with("b'") => Some(raw.to_string()),
            None => None,
        }
    } else if col.extra.to_ascii_lowercase().contains("default_generated") {
        None
    } else {
        Some(raw.to_string())
    };
    let Some(lit) = literal else {
        return Err(format!(
            "default expression {raw} of {} not migrated",
            col.name
        ));
    };
    if lit.starts_with("0000-00-00")
        || lit.contains("-00")
            && matches!(col.data_type.as_str(), "date" | "datetime" | "timestamp")
    {
        return Err(format!("zero-date default {lit} of {} dropped", col.name));
    }
    // A date in year 0000 with a real month and day: the same day in 1 BC (PostgreSQL's year 0).
    let lit = match lit.strip_prefix("0000-") {
        Some(rest) if matches!(col.data_type.as_str(), "date" | "datetime" | "timestamp") => {
            format!("0001-{rest} BC")
        }
        _ => lit,
    };
    Ok(Some(match &mapping.convert {
        Convert::Bool => {
            let v = lit.trim_start_matches("b'").trim_end_matches('\'');
            let zero = v.chars().all(|c| c == '0');
            (if zero { "false" } else { "true" }).to_string()
        }
        Convert::Int2
        | Convert::Int4
        | Convert::Int8
        | Convert::NumericInt
        | Convert::Numeric
        | Convert::Float4
        | Convert::Float8
        | Convert::Year => {
            if lit.parse::<f64>().is_err() {
                return Err(format!(
                    "default {lit} of {} is not a number; dropped",
                    col.name
                ));
            }
            lit
        }
        Convert::VarBit { .. } => {
            let bits = lit.trim_start_matches("b'").trim_end_matches('\'');
            format!("B'{bits}'")
        }
        Convert::SetArray => {
            let parts: Vec<String> = if lit.is_empty() {
                Vec::new()
            } else {
                lit.split(',').map(quote_literal).collect()
            };
            format!("ARRAY[{}]::text[]", parts.join(", "))
        }
        Convert::Bytea | Convert::GeometryWkb | Convert::UuidBinary => {
            return Err(format!("binary default of {} not migrated", col.name))
        }
        _ => quote_literal(&lit),
    }))
}

/// Whether a column's conversion reads MySQL dates (which may be zero dates).
fn reads_dates(convert: &Convert) -> bool {
    matches!(
        convert,
        Convert::Date | Convert::Timestamp | Convert::TimestampTz | Convert::TimestampInZone { .. }
    )
}

/// Builds the target schema and read plans for the tables of `schema` that `filter` selects
/// (patterns over `database.table`).
/// `geometry` is the qualified name of PostGIS's type when the target has the extension.
/// `creates_tables`: the copy creates the target tables (not `--schema existing`), so with
/// `zero_dates = "null"` a NOT NULL date column that is not part of a key is created nullable
/// (`Column::nullable_for_zero_dates`) and its zero dates arrive as NULL.
pub fn build(
    schema: &MySchema,
    cfg: &MysqlSection,
    filter: &TableFilter,
    geometry: Option<&str>,
    creates_tables: bool,
) -> Result<MysqlPlan> {
    let names = Names {
        case: cfg.identifiers.unwrap_or_default(),
    };
    let target_schema = cfg
        .schema
        .as_deref()
        .map_or_else(|| "public".to_string(), |s| names.of(s));
    let db = &schema.database;
    let selected: Vec<&MyTable> = schema
        .tables
        .iter()
        .filter(|t| filter.matches(&QualifiedName::new(db.as_str(), t.name.as_str())))
        .collect();
    no_collisions(
        "tables",
        selected
            .iter()
            .map(|t| (t.name.as_str(), names.of(&t.name))),
    )?;
    let mut b = Builder {
        db,
        cfg,
        geometry,
        mariadb: schema.is_mariadb(),
        zero_to_null: creates_tables
            && cfg.zero_dates.clone().unwrap_or_default() == crate::config::ZeroDates::Null,
        target_of: selected
            .iter()
            .map(|t| (t.name.as_str(), names.of(&t.name)))
            .collect(),
        names,
        target_schema,
        notes: Vec::new(),
        catalog: Catalog {
            server_version: schema.version.clone(),
            ..Default::default()
        },
        reads: Vec::new(),
        auto_increments: Vec::new(),
        used_names: HashSet::new(),
        enum_types: HashMap::new(),
    };
    if b.target_schema != "public" {
        b.catalog.schemas.push(SchemaObject {
            name: b.target_schema.clone(),
            owner: String::new(),
            comment: None,
        });
    }
    for t in &selected {
        b.table(t)?;
    }
    for (kind, name) in schema.not_migrated() {
        b.notes.push(format!("{kind} {db}.{name} not migrated"));
    }
    Ok(MysqlPlan {
        catalog: b.catalog,
        reads: b.reads,
        auto_increments: b.auto_increments,
        notes: b.notes,
    })
}

/// The plan as [`build`] fills it in, table by table.
struct Builder<'a> {
    db: &'a str,
    cfg: &'a MysqlSection,
    geometry: Option<&'a str>,
    mariadb: bool,
    /// Zero dates become NULL in columns this run creates.
    zero_to_null: bool,
    /// Target name of each selected table, by its MySQL name.
    target_of: HashMap<&'a str, String>,
    names: Names,
    target_schema: String,
    notes: Vec<String>,
    catalog: Catalog,
    reads: Vec<Option<MyTablePlan>>,
    auto_increments: Vec<AutoIncrement>,
    /// Index names are per table in MySQL, per schema in PostgreSQL.
    used_names: HashSet<String>,
    /// Target name of each enum type made so far, to the `table.column` it was made for.
    enum_types: HashMap<String, String>,
}

/// One table's columns as the builder maps them.
#[derive(Default)]
struct TableColumns {
    columns: Vec<Column>,
    read_cols: Vec<MyReadColumn>,
    checks: Vec<Constraint>,
}

impl Builder<'_> {
    /// Adds table `t`: its target table, read plan and notes.
    fn table(&mut self, t: &MyTable) -> Result<()> {
        let (db, names) = (self.db, &self.names);
        no_collisions(
            &format!("columns of {}", t.name),
            t.columns
                .iter()
                .map(|c| (c.name.as_str(), names.of(&c.name))),
        )?;
        no_collisions(
            &format!("indexes of {}", t.name),
            t.indexes
                .iter()
                .map(|i| (i.name.as_str(), names.of(&i.name))),
        )?;
        no_collisions(
            &format!("foreign keys of {}", t.name),
            t.foreign_keys
                .iter()
                .map(|f| (f.name.as_str(), names.of(&f.name))),
        )?;
        let tname = names.of(&t.name);
        let qname = QualifiedName::new(self.target_schema.as_str(), tname.as_str());
        if !t.engine.eq_ignore_ascii_case("innodb") {
            self.notes.push(format!(
                "{db}.{}: engine {} has no transactions, so its rows are read without a consistent snapshot",
                t.name, t.engine
            ));
        }
        // Key columns stay NOT NULL: a key cannot hold NULL (their zero dates are rejected).
        let key = chunk_key(t);
        let mut cols = TableColumns::default();
        for c in &t.columns {
            self.column(t, c, &tname, key.as_deref(), &mut cols)?;
        }
        if key.is_none() {
            self.notes.push(format!(
                "{db}.{}: no primary key or unique NOT NULL key howdah can order by: copied as one chunk that a resume redoes whole",
                t.name
            ));
        }
        let primary_key = self.primary_key(t, &tname, &qname);
        let indexes = self.indexes(t, &qname);
        for (name, clause) in &t.checks {
            self.notes.push(format!(
                "{db}.{}: CHECK constraint {name} ({clause}) not migrated (MySQL expression syntax)",
                t.name
            ));
        }
        let foreign_keys = self.foreign_keys(t);
        let names = &self.names;
        let TableColumns {
            columns,
            read_cols,
            checks,
        } = cols;
        let chunk_key_neutral = key.as_ref().map(|k| {
            k.iter()
                .map(|c| KeyColumn {
                    collation: None,
                    name: names.of(&c.name),
                    type_sql: columns
                        .iter()
                        .find(|col| col.name == names.of(&c.name))
                        .map(|col| col.type_sql.clone())
                        .unwrap_or_default(),
                })
                .collect()
        });
        self.catalog.tables.push(Table {
            name: qname,
            columns,
            primary_key,
            constraints: checks,
            foreign_keys,
            indexes,
            chunk_key: chunk_key_neutral,
            estimated_rows: t.estimated_rows,
            blocks: t.data_bytes / 8192,
            size_bytes: t.data_bytes,
            comment: t.comment.clone(),
            ..Default::default()
        });
        self.reads.push(Some(MyTablePlan {
            source: t.name.clone(),
            columns: read_cols,
            filter: None,
            key,
            limit: None,
        }));
        Ok(())
    }

    /// Maps column `c` of table `t` (target name `tname`; `key`: its chunk key) into `out`.
    fn column(
        &mut self,
        t: &MyTable,
        c: &MyColumn,
        tname: &str,
        key: Option<&[MyKeyColumn]>,
        out: &mut TableColumns,
    ) -> Result<()> {
        let (db, cfg, geometry) = (self.db, self.cfg, self.geometry);
        let names = &self.names;
        let target_schema = &self.target_schema;
        let notes = &mut self.notes;
        let in_key = |name: &str| {
            t.primary_key.iter().any(|k| k == name)
                || key.iter().copied().flatten().any(|k| k.name == name)
        };
        let (columns, read_cols, checks) = (&mut out.columns, &mut out.read_cols, &mut out.checks);
        let mut m = map_column(&t.name, c, &cfg.cast)
            .map_err(|why| Error::Config(format!("{db}.{}.{}: {why}", t.name, c.name)))?;
        if let (Convert::GeometryWkb, Some(geometry)) = (&m.convert, geometry) {
            m = postgis_mapping(c, geometry).unwrap_or(m);
        }
        let cname = names.of(&c.name);
        if c.auto_increment() && !matches!(m.convert, Convert::Int2 | Convert::Int4 | Convert::Int8)
        {
            // PostgreSQL identity columns are smallint, integer or bigint; an id beyond
            // 2^63-1 would be rejected with its key.
            m = Mapping {
                pg_type: "bigint".into(),
                convert: Convert::Int8,
                note: Some(format!(
                    "AUTO_INCREMENT {} becomes a bigint identity (values above 9223372036854775807 would be rejected)",
                    c.column_type
                )),
            };
        }
        if let Convert::Enum { labels } = &m.convert {
            let ty = QualifiedName::new(
                target_schema.as_str(),
                names.of(&format!("{}_{}", t.name, c.name)),
            );
            let source = format!("{}.{}", t.name, c.name);
            if let Some(other) = self.enum_types.insert(ty.name.clone(), source.clone()) {
                return Err(clash(
                    "the enum types of columns",
                    &other,
                    &source,
                    &ty.name,
                ));
            }
            let list: Vec<String> = labels
                .iter()
                .filter(|l| !l.is_empty())
                .map(|l| quote_literal(l))
                .collect();
            self.catalog.types.push(DdlObject {
                name: ty.clone(),
                ddl: format!(
                    "CREATE TYPE {} AS ENUM ({});\n",
                    ty.quoted(),
                    list.join(", ")
                ),
                id: None,
            });
            m.pg_type = ty.quoted();
        }
        if let Convert::EnumText { labels } = &m.convert {
            let list: Vec<String> = labels
                .iter()
                .filter(|l| !l.is_empty())
                .map(|l| quote_literal(l))
                .collect();
            checks.push(Constraint {
                name: names.of(&format!("{}_{}_check", t.name, c.name)),
                definition: format!("CHECK ({} IN ({}))", quote_ident(&cname), list.join(", ")),
                ..Default::default()
            });
        }
        if let Some(note) = &m.note {
            notes.push(format!("{db}.{}.{}: {note}", t.name, c.name));
        }
        if c.generated() {
            notes.push(format!(
                "{db}.{}.{}: generated column ({}) copied as plain values",
                t.name,
                c.name,
                c.generation.as_deref().unwrap_or("?")
            ));
        }
        if c.extra.to_ascii_lowercase().contains("on update") {
            notes.push(format!(
                "{db}.{}.{}: ON UPDATE CURRENT_TIMESTAMP not migrated (PostgreSQL needs a trigger for it)",
                t.name, c.name
            ));
        }
        let identity = c.auto_increment().then(|| Identity {
            always: false,
            sequence: QualifiedName::new(target_schema.as_str(), format!("{tname}_{cname}_seq")),
            options: String::new(),
        });
        let default = if identity.is_some() {
            None
        } else {
            match translate_default(c, &m, self.mariadb) {
                Ok(d) => d,
                Err(note) => {
                    notes.push(format!("{db}.{}: {note}", t.name));
                    None
                }
            }
        };
        if c.auto_increment() {
            self.auto_increments.push(AutoIncrement {
                table: self.reads.len(),
                column: cname.clone(),
                next: t.auto_increment.unwrap_or(1).max(1),
            });
        }
        let nullable_for_zero_dates =
            self.zero_to_null && c.not_null && reads_dates(&m.convert) && !in_key(&c.name);
        let not_null = c.not_null && !nullable_for_zero_dates;
        columns.push(Column {
            name: cname,
            attnum: columns.len() as i16 + 1,
            type_sql: m.pg_type.clone(),
            not_null,
            default,
            identity,
            comment: c.comment.clone(),
            nullable_for_zero_dates,
            ..Default::default()
        });
        read_cols.push(MyReadColumn {
            name: c.name.clone(),
            convert: m.convert.clone(),
            not_null,
        });
        Ok(())
    }

    /// The primary key of `t` (target name `tname`, `qname` qualified), with its index.
    fn primary_key(
        &mut self,
        t: &MyTable,
        tname: &str,
        qname: &QualifiedName,
    ) -> Option<Constraint> {
        let names = &self.names;
        let used_names = &mut self.used_names;
        let quoted_cols = |cols: &[String]| {
            cols.iter()
                .map(|c| quote_ident(&names.of(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        (!t.primary_key.is_empty()).then(|| {
            let name = format!("{tname}_pkey");
            used_names.insert(name.clone());
            Constraint {
                name: name.clone(),
                definition: format!("PRIMARY KEY ({})", quoted_cols(&t.primary_key)),
                index_definition: Some(format!(
                    "CREATE UNIQUE INDEX {} ON {} USING btree ({})",
                    quote_ident(&name),
                    qname.quoted(),
                    quoted_cols(&t.primary_key)
                )),
                ..Default::default()
            }
        })
    }

    /// The indexes of `t` the target can hold; a note for each it cannot.
    fn indexes(&mut self, t: &MyTable, qname: &QualifiedName) -> Vec<Index> {
        let (db, names) = (self.db, &self.names);
        let (notes, used_names) = (&mut self.notes, &mut self.used_names);
        let mut indexes = Vec::new();
        for i in &t.indexes {
            if i.kind == "FULLTEXT" || i.kind == "SPATIAL" {
                notes.push(format!(
                    "{db}.{}: {} index {} not migrated (use a GIN/tsvector or GiST/PostGIS index)",
                    t.name, i.kind, i.name
                ));
                continue;
            }
            let Some(parts) = i
                .columns
                .iter()
                .map(|c| {
                    c.name.as_ref().map(|n| {
                        if c.prefix.is_some() {
                            notes.push(format!(
                                "{db}.{}: index {} covers a prefix of {n}; the target indexes the whole column",
                                t.name, i.name
                            ));
                        }
                        format!(
                            "{}{}",
                            quote_ident(&names.of(n)),
                            if c.descending { " DESC" } else { "" }
                        )
                    })
                })
                .collect::<Option<Vec<String>>>()
            else {
                notes.push(format!(
                    "{db}.{}: expression index {} not migrated",
                    t.name, i.name
                ));
                continue;
            };
            let mut name = names.of(&i.name);
            if used_names.contains(&name) {
                name = names.of(&format!("{}_{}", t.name, i.name));
                notes.push(format!(
                    "{db}.{}: index {} renamed {name} (index names are per schema in PostgreSQL)",
                    t.name, i.name
                ));
            }
            used_names.insert(name.clone());
            indexes.push(Index {
                name: name.clone(),
                definition: format!(
                    "CREATE {}INDEX {} ON {} USING btree ({})",
                    if i.unique { "UNIQUE " } else { "" },
                    quote_ident(&name),
                    qname.quoted(),
                    parts.join(", ")
                ),
                ..Default::default()
            });
        }
        indexes
    }

    /// The foreign keys of `t` whose referenced table is copied too; a note for the others.
    fn foreign_keys(&mut self, t: &MyTable) -> Vec<Constraint> {
        let (db, names, notes) = (self.db, &self.names, &mut self.notes);
        let quoted_cols = |cols: &[String]| {
            cols.iter()
                .map(|c| quote_ident(&names.of(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut foreign_keys = Vec::new();
        for fk in &t.foreign_keys {
            let Some(ref_target) = self
                .target_of
                .get(fk.ref_table.as_str())
                .filter(|_| fk.ref_database == db)
            else {
                notes.push(format!(
                    "{db}.{}: foreign key {} to {}.{} not migrated (the referenced table is not copied)",
                    t.name, fk.name, fk.ref_database, fk.ref_table
                ));
                continue;
            };
            let rule = |r: &str| match r.to_ascii_uppercase().as_str() {
                "CASCADE" => "CASCADE",
                "SET NULL" => "SET NULL",
                "SET DEFAULT" => "SET DEFAULT",
                "RESTRICT" => "RESTRICT",
                _ => "NO ACTION",
            };
            let references = QualifiedName::new(self.target_schema.as_str(), ref_target.as_str());
            foreign_keys.push(Constraint {
                name: names.of(&fk.name),
                definition: format!(
                    "FOREIGN KEY ({}) REFERENCES {} ({}) ON UPDATE {} ON DELETE {}",
                    quoted_cols(&fk.columns),
                    references.quoted(),
                    quoted_cols(&fk.ref_columns),
                    rule(&fk.on_update),
                    rule(&fk.on_delete)
                ),
                references: Some(references),
                ..Default::default()
            });
        }
        foreign_keys
    }
}

fn key_text(row: &Row, i: usize, kind: KeyKind) -> Option<String> {
    match row.as_ref(i)? {
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        // Bound back through UNHEX(?): always hex, even when the bytes are valid UTF-8.
        Value::Bytes(b) if kind == KeyKind::Binary => {
            Some(b.iter().map(|x| format!("{x:02x}")).collect())
        }
        Value::Bytes(b) => Some(match std::str::from_utf8(b) {
            Ok(s) => s.to_string(),
            Err(_) => b.iter().map(|x| format!("{x:02x}")).collect(),
        }),
        Value::Date(y, mo, d, h, mi, s, us) => Some(format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
        )),
        _ => None,
    }
}

/// Cuts table `index` into keyset chunks of about `chunk_rows` rows. A single integer key is
/// split between its minimum and maximum; other keys by walking the key in order and taking
/// every n-th value (one pass over the key's index, never a count of the table).
pub async fn plan_chunks(
    conn: &mut Conn,
    read: &MyTablePlan,
    table: &Table,
    index: usize,
    chunk_rows: u64,
) -> Result<Vec<Chunk>> {
    let rows = crate::chunking::chunks::estimated_rows(table).max(0);
    let wanted = ((rows as f64) / chunk_rows.max(1) as f64).ceil() as usize;
    let one = |range| Ok(vec![Chunk::one(index, range, rows, table.size_bytes)]);
    // Over everything, still read in key order, so it can checkpoint.
    let all_keys = || ChunkRange::Keyset {
        lower: None,
        upper: None,
    };
    let Some(key) = read.key.as_ref() else {
        return one(ChunkRange::Whole);
    };
    if wanted <= 1 {
        return one(all_keys());
    }
    let fail = |e: mysql_async::Error| Error::Query {
        what: format!("planning chunks of {}", table.name),
        reason: e.to_string(),
    };
    let cols = key
        .iter()
        .map(|k| quote_my(&k.name))
        .collect::<Vec<_>>()
        .join(", ");
    let src = quote_my(&read.source);
    let mut bounds: Vec<Vec<String>> = Vec::new();
    if key.len() == 1 && matches!(key[0].kind, KeyKind::Signed | KeyKind::Unsigned) {
        let row: Option<Row> = conn
            .query_first(format!("SELECT MIN({cols}), MAX({cols}) FROM {src}"))
            .await
            .map_err(fail)?;
        let parse = |r: &Row, i| key_text(r, i, key[0].kind).and_then(|s| s.parse::<i128>().ok());
        if let Some((lo, hi)) = row
            .as_ref()
            .and_then(|r| Some((parse(r, 0)?, parse(r, 1)?)))
        {
            let n = wanted as i128;
            for i in 1..n {
                let b = lo + (hi - lo) * i / n;
                if bounds
                    .last()
                    .is_none_or(|l: &Vec<String>| l[0] != b.to_string())
                {
                    bounds.push(vec![b.to_string()]);
                }
            }
        }
    } else {
        let step = (rows as usize / wanted).max(1);
        let sql = format!("SELECT {cols} FROM {src} ORDER BY {cols}");
        let mut result = conn.query_iter(sql).await.map_err(fail)?;
        let mut seen = 0usize;
        while let Some(row) = result.next().await.map_err(fail)? {
            seen += 1;
            if seen % step == 0 && bounds.len() + 1 < wanted {
                let b: Option<Vec<String>> = (0..key.len())
                    .map(|i| key_text(&row, i, key[i].kind))
                    .collect();
                if let Some(b) = b {
                    bounds.push(b);
                }
            }
        }
    }
    if bounds.is_empty() {
        return one(all_keys());
    }
    Ok(crate::chunking::chunks::keyset_chunks(
        index,
        bounds,
        rows,
        table.size_bytes,
    ))
}
