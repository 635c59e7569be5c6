//! MySQL and MariaDB introspection from `information_schema`: the raw facts of one database
//! (tables, columns with their full `COLUMN_TYPE`, keys, indexes, foreign keys, checks), plus
//! the objects howdah does not migrate (views, triggers, routines, events), to report them.
//!
//! Turning these facts into PostgreSQL DDL is the planner's job (`chunking::mysql`); the type
//! mapping is a table of its own (`typemap::mysql`).

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use super::CatalogError;

type Result<T> = std::result::Result<T, CatalogError>;

/// One MySQL database, as far as a copy needs it.
#[derive(Debug, Clone, Default)]
pub struct MySchema {
    /// `VERSION()`, e.g. `10.11.19-MariaDB-0+deb12u1` or `8.0.36`.
    pub version: String,
    /// The database (schema) read.
    pub database: String,
    /// Base tables, by name.
    pub tables: Vec<MyTable>,
    /// Views (not migrated; listed).
    pub views: Vec<String>,
    /// Triggers as `table.trigger` (not migrated; listed).
    pub triggers: Vec<String>,
    /// Stored procedures and functions as `kind name` (not migrated; listed).
    pub routines: Vec<String>,
    /// Scheduled events (not migrated; listed).
    pub events: Vec<String>,
}

impl MySchema {
    /// Position of table `name` in `tables`.
    fn index_of(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name == name)
    }

    /// Whether the server is MariaDB (its JSON is LONGTEXT with a `json_valid` check).
    pub fn is_mariadb(&self) -> bool {
        self.version.to_ascii_lowercase().contains("mariadb")
    }

    /// The objects the copy does not migrate, as (kind, name): views, triggers, routines and
    /// events, in that order.
    pub fn not_migrated(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("view", &self.views),
            ("trigger", &self.triggers),
            ("routine", &self.routines),
            ("event", &self.events),
        ]
        .into_iter()
        .flat_map(|(kind, list)| list.iter().map(move |name| (kind, name.as_str())))
    }
}

/// A base table.
#[derive(Debug, Clone, Default)]
pub struct MyTable {
    /// Table name as on the server.
    pub name: String,
    /// Storage engine (InnoDB gives consistent snapshots; MyISAM does not).
    pub engine: String,
    /// `TABLE_ROWS`: an estimate for InnoDB.
    pub estimated_rows: i64,
    /// `DATA_LENGTH` in bytes.
    pub data_bytes: i64,
    /// `INDEX_LENGTH` in bytes (secondary indexes; InnoDB's primary key is in `DATA_LENGTH`).
    pub index_bytes: i64,
    /// `AUTO_INCREMENT`: the next value the table hands out.
    pub auto_increment: Option<u64>,
    /// Table comment.
    pub comment: Option<String>,
    /// Columns in ordinal order.
    pub columns: Vec<MyColumn>,
    /// Primary key columns, in key order.
    pub primary_key: Vec<String>,
    /// Other indexes (unique or not), including FULLTEXT and SPATIAL ones.
    pub indexes: Vec<MyIndex>,
    /// Foreign keys.
    pub foreign_keys: Vec<MyForeignKey>,
    /// CHECK constraints as `(name, clause)`, column checks included (MariaDB's JSON checks
    /// excluded: they mark JSON columns).
    pub checks: Vec<(String, String)>,
}

/// A column with its full declared type.
#[derive(Debug, Clone, Default)]
pub struct MyColumn {
    /// Column name as on the server.
    pub name: String,
    /// `DATA_TYPE`, lower case: `int`, `varchar`, `enum`, ...
    pub data_type: String,
    /// `COLUMN_TYPE`, lower case except enum/set labels: `int(10) unsigned`, `enum('a','b')`.
    pub column_type: String,
    /// `IS_NULLABLE = 'NO'`.
    pub not_null: bool,
    /// `COLUMN_DEFAULT` as the server renders it (MariaDB quotes string literals).
    pub default: Option<String>,
    /// `EXTRA`: `auto_increment`, `on update current_timestamp()`, `VIRTUAL GENERATED`, ...
    pub extra: String,
    /// Character set of string columns.
    pub charset: Option<String>,
    /// `GENERATION_EXPRESSION` of generated columns.
    pub generation: Option<String>,
    /// Column comment.
    pub comment: Option<String>,
    /// `NUMERIC_PRECISION`.
    pub precision: Option<u64>,
    /// `NUMERIC_SCALE`.
    pub scale: Option<u64>,
    /// `CHARACTER_MAXIMUM_LENGTH`.
    pub char_length: Option<u64>,
    /// `DATETIME_PRECISION` (fractional seconds digits).
    pub datetime_precision: Option<u64>,
    /// A JSON column: MySQL's `json` type, or MariaDB's LONGTEXT with a `json_valid` check.
    pub json: bool,
}

impl MyColumn {
    /// `unsigned` in the declared type.
    pub fn unsigned(&self) -> bool {
        self.column_type.contains("unsigned")
    }

    /// `auto_increment` in EXTRA.
    pub fn auto_increment(&self) -> bool {
        self.extra.to_ascii_lowercase().contains("auto_increment")
    }

    /// A generated (virtual or stored) column.
    pub fn generated(&self) -> bool {
        self.extra.to_ascii_lowercase().contains("generated")
    }

    /// The display width or length in parentheses, e.g. 1 for `tinyint(1)`, 16 for `binary(16)`.
    pub fn width(&self) -> Option<u64> {
        let open = self.column_type.find('(')?;
        let close = self.column_type[open..].find(')')? + open;
        self.column_type[open + 1..close]
            .split(',')
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The labels of an `enum(...)` or `set(...)` column, unquoted.
    pub fn labels(&self) -> Vec<String> {
        let Some(open) = self.column_type.find('(') else {
            return Vec::new();
        };
        let inner = self.column_type[open + 1..].trim_end_matches(')');
        let mut labels = Vec::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\'' {
                continue;
            }
            let mut label = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\'' if chars.peek() == Some(&'\'') => {
                        chars.next();
                        label.push('\'');
                    }
                    '\'' => break,
                    '\\' => {
                        if let Some(n) = chars.next() {
                            label.push(n);
                        }
                    }
                    c => label.push(c),
                }
            }
            labels.push(label);
        }
        labels
    }
}

/// An index.
#[derive(Debug, Clone, Default)]
pub struct MyIndex {
    /// Index name.
    pub name: String,
    /// `NON_UNIQUE = 0`.
    pub unique: bool,
    /// `BTREE`, `HASH`, `FULLTEXT`, `SPATIAL`.
    pub kind: String,
    /// Columns in index order with their prefix length (`SUB_PART`) and descending flag.
    pub columns: Vec<MyIndexColumn>,
}

/// One column of an index.
#[derive(Debug, Clone, Default)]
pub struct MyIndexColumn {
    /// Column name (absent for an expression part).
    pub name: Option<String>,
    /// Prefix length of a prefix index part.
    pub prefix: Option<u64>,
    /// Descending part.
    pub descending: bool,
}

/// A foreign key.
#[derive(Debug, Clone, Default)]
pub struct MyForeignKey {
    /// Constraint name.
    pub name: String,
    /// Referencing columns.
    pub columns: Vec<String>,
    /// Referenced database (usually the same).
    pub ref_database: String,
    /// Referenced table.
    pub ref_table: String,
    /// Referenced columns.
    pub ref_columns: Vec<String>,
    /// `ON UPDATE` rule: `CASCADE`, `SET NULL`, `RESTRICT`, `NO ACTION`, `SET DEFAULT`.
    pub on_update: String,
    /// `ON DELETE` rule.
    pub on_delete: String,
}

fn text(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn number(row: &Row, i: usize) -> Option<u64> {
    match row.as_ref(i)? {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::UInt(n) => Some(*n),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

async fn rows(conn: &mut Conn, sql: &str, db: &str, what: &str) -> Result<Vec<Row>> {
    conn.exec(sql, (db,))
        .await
        .map_err(|e| CatalogError::Mysql {
            what: format!("reading the MySQL catalog ({what})"),
            source: e,
        })
}

/// Reads database `db`: its tables with their columns, keys, indexes and foreign keys, and
/// the names of the objects a copy does not carry (views, triggers, routines, events).
pub async fn load(conn: &mut Conn, db: &str) -> Result<MySchema> {
    let version: Option<String> =
        conn.query_first("SELECT VERSION()")
            .await
            .map_err(|e| CatalogError::Mysql {
                what: "reading the MySQL server version".into(),
                source: e,
            })?;
    let mut schema = MySchema {
        version: version.unwrap_or_default(),
        database: db.to_string(),
        ..Default::default()
    };
    let exists = rows(
        conn,
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        db,
        "databases",
    )
    .await?;
    if exists.is_empty() {
        return Err(CatalogError::NoDatabase {
            server: "MySQL",
            database: db.to_string(),
        });
    }
    for r in rows(
        conn,
        "SELECT TABLE_NAME, ENGINE, TABLE_ROWS, DATA_LENGTH, AUTO_INCREMENT, TABLE_COMMENT, INDEX_LENGTH \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' \
         ORDER BY TABLE_NAME",
        db,
        "tables",
    )
    .await?
    {
        schema.tables.push(MyTable {
            name: text(&r, 0).unwrap_or_default(),
            engine: text(&r, 1).unwrap_or_default(),
            estimated_rows: number(&r, 2).unwrap_or(0) as i64,
            data_bytes: number(&r, 3).unwrap_or(0) as i64,
            auto_increment: number(&r, 4),
            comment: text(&r, 5).filter(|c| !c.is_empty()),
            index_bytes: number(&r, 6).unwrap_or(0) as i64,
            ..Default::default()
        });
    }
    let checks = load_checks(conn, db).await?;
    load_columns(conn, db, &mut schema, &checks.json).await?;
    for (table, name, clause) in checks.other {
        if let Some(ti) = schema.index_of(&table) {
            schema.tables[ti].checks.push((name, clause));
        }
    }
    load_indexes(conn, db, &mut schema).await?;
    load_foreign_keys(conn, db, &mut schema).await?;
    load_other_objects(conn, db, &mut schema).await?;
    Ok(schema)
}

/// CHECK constraints by kind.
struct Checks {
    /// (table, column) of each `json_valid(column)` check.
    json: Vec<(String, String)>,
    /// (table, name, clause) of every other check.
    other: Vec<(String, String, String)>,
}

/// The database's CHECK constraints.
async fn load_checks(conn: &mut Conn, db: &str) -> Result<Checks> {
    // MariaDB's JSON is LONGTEXT with a json_valid(col) check: that check marks the column.
    let mut json_checks: Vec<(String, String)> = Vec::new();
    let mut checks: Vec<(String, String, String)> = Vec::new();
    let check_rows = conn
        .exec(
            "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? ORDER BY TABLE_NAME, CONSTRAINT_NAME",
            (db,),
        )
        .await
        // MySQL before 8.0.16 has no such view, and no enforced checks either.
        .unwrap_or_default();
    for r in check_rows {
        let (table, name, clause) = (
            text(&r, 0).unwrap_or_default(),
            text(&r, 1).unwrap_or_default(),
            text(&r, 2).unwrap_or_default(),
        );
        let compact: String = clause.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.to_ascii_lowercase() == format!("json_valid(`{name}`)") {
            json_checks.push((table, name));
        } else {
            checks.push((table, name, clause));
        }
    }

    Ok(Checks {
        json: json_checks,
        other: checks,
    })
}

/// Every selected table's columns, in order (`json_checks`: MariaDB's JSON columns).
async fn load_columns(
    conn: &mut Conn,
    db: &str,
    schema: &mut MySchema,
    json_checks: &[(String, String)],
) -> Result<()> {
    for r in rows(
        conn,
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, \
           CHARACTER_SET_NAME, GENERATION_EXPRESSION, COLUMN_COMMENT, NUMERIC_PRECISION, NUMERIC_SCALE, \
           CHARACTER_MAXIMUM_LENGTH, DATETIME_PRECISION \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
        db,
        "columns",
    )
    .await?
    {
        let table = text(&r, 0).unwrap_or_default();
        let Some(ti) = schema.index_of(&table) else {
            continue;
        };
        let name = text(&r, 1).unwrap_or_default();
        let data_type = text(&r, 2).unwrap_or_default().to_ascii_lowercase();
        let raw_type = text(&r, 3).unwrap_or_default();
        // Lower-case the type but not enum/set labels.
        let column_type = match raw_type.find('(') {
            Some(p) if matches!(data_type.as_str(), "enum" | "set") => {
                format!("{}{}", raw_type[..p].to_ascii_lowercase(), &raw_type[p..])
            }
            _ => raw_type.to_ascii_lowercase(),
        };
        let json = data_type == "json"
            || json_checks.iter().any(|(t, c)| *t == table && *c == name);
        schema.tables[ti].columns.push(MyColumn {
            name,
            data_type,
            column_type,
            not_null: text(&r, 4).as_deref() == Some("NO"),
            default: text(&r, 5),
            extra: text(&r, 6).unwrap_or_default(),
            charset: text(&r, 7),
            generation: text(&r, 8).filter(|g| !g.is_empty()),
            comment: text(&r, 9).filter(|c| !c.is_empty()),
            precision: number(&r, 10),
            scale: number(&r, 11),
            char_length: number(&r, 12),
            datetime_precision: number(&r, 13),
            json,
        });
    }
    Ok(())
}

/// Primary keys and indexes.
async fn load_indexes(conn: &mut Conn, db: &str, schema: &mut MySchema) -> Result<()> {
    for r in rows(
        conn,
        "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE, COLLATION \
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
         ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        db,
        "indexes",
    )
    .await?
    {
        let table = text(&r, 0).unwrap_or_default();
        let Some(ti) = schema.index_of(&table) else {
            continue;
        };
        let name = text(&r, 1).unwrap_or_default();
        let column = MyIndexColumn {
            name: text(&r, 3),
            prefix: number(&r, 4),
            descending: text(&r, 6).as_deref() == Some("D"),
        };
        let t = &mut schema.tables[ti];
        if name == "PRIMARY" {
            if let Some(c) = column.name {
                t.primary_key.push(c);
            }
            continue;
        }
        match t.indexes.iter_mut().find(|i| i.name == name) {
            Some(i) => i.columns.push(column),
            None => t.indexes.push(MyIndex {
                name,
                unique: number(&r, 2) == Some(0),
                kind: text(&r, 5).unwrap_or_default().to_ascii_uppercase(),
                columns: vec![column],
            }),
        }
    }

    Ok(())
}

/// Foreign keys, their columns in order.
async fn load_foreign_keys(conn: &mut Conn, db: &str, schema: &mut MySchema) -> Result<()> {
    for r in rows(
        conn,
        "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, \
           k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, rc.UPDATE_RULE, rc.DELETE_RULE \
         FROM information_schema.KEY_COLUMN_USAGE k \
         JOIN information_schema.REFERENTIAL_CONSTRAINTS rc \
           ON rc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND rc.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
          AND rc.TABLE_NAME = k.TABLE_NAME \
         WHERE k.TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL \
         ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        db,
        "foreign keys",
    )
    .await?
    {
        let table = text(&r, 0).unwrap_or_default();
        let Some(ti) = schema.index_of(&table) else {
            continue;
        };
        let name = text(&r, 1).unwrap_or_default();
        let t = &mut schema.tables[ti];
        let fk = match t.foreign_keys.iter().position(|f| f.name == name) {
            Some(i) => &mut t.foreign_keys[i],
            None => {
                t.foreign_keys.push(MyForeignKey {
                    name: name.clone(),
                    ref_database: text(&r, 3).unwrap_or_default(),
                    ref_table: text(&r, 4).unwrap_or_default(),
                    on_update: text(&r, 6).unwrap_or_default(),
                    on_delete: text(&r, 7).unwrap_or_default(),
                    ..Default::default()
                });
                let last = t.foreign_keys.len() - 1;
                &mut t.foreign_keys[last]
            }
        };
        fk.columns.push(text(&r, 2).unwrap_or_default());
        fk.ref_columns.push(text(&r, 5).unwrap_or_default());
    }

    Ok(())
}

/// Names of the views, triggers, routines and events (not copied; the plan lists them).
async fn load_other_objects(conn: &mut Conn, db: &str, schema: &mut MySchema) -> Result<()> {
    for (sql, what, out) in [
        (
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            "views",
            0,
        ),
        (
            "SELECT CONCAT(EVENT_OBJECT_TABLE, '.', TRIGGER_NAME) FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = ? ORDER BY 1",
            "triggers",
            1,
        ),
        (
            "SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME) FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = ? ORDER BY 1",
            "routines",
            2,
        ),
        (
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 1",
            "events",
            3,
        ),
    ] {
        let names: Vec<String> = rows(conn, sql, db, what)
            .await?
            .iter()
            .filter_map(|r| text(r, 0))
            .collect();
        match out {
            0 => schema.views = names,
            1 => schema.triggers = names,
            2 => schema.routines = names,
            _ => schema.events = names,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_with_quotes() {
        let c = MyColumn {
            column_type: "enum('a','it''s','b,c','')".into(),
            ..Default::default()
        };
        assert_eq!(c.labels(), vec!["a", "it's", "b,c", ""]);
        let w = MyColumn {
            column_type: "tinyint(1) unsigned".into(),
            ..Default::default()
        };
        assert_eq!(w.width(), Some(1));
        assert!(w.unsigned());
    }
}
