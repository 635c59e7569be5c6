//! MySQL/MariaDB column types to PostgreSQL types: the default table, and the alternatives a
//! user may choose per type or per column (`[[mysql.cast]]` in the job file).
//!
//! | MySQL | PostgreSQL | values |
//! | --- | --- | --- |
//! | `tinyint(1)`, `bit(1)` | `boolean` | 0 is false, any other value true |
//! | `tinyint`, `smallint`, `tinyint unsigned` | `smallint` | |
//! | `smallint unsigned`, `mediumint` (unsigned too), `int` | `integer` | |
//! | `int unsigned`, `bigint` | `bigint` | |
//! | `bigint unsigned` | `numeric(20)` | exact up to 18446744073709551615 |
//! | `decimal(p,s)` | `numeric(p,s)` | exact, scale kept |
//! | `float`, `double` | `real`, `double precision` | bit-exact |
//! | `bit(n)` | `bit varying(n)` | |
//! | `char(n)`, `varchar(n)` | `varchar(n)` | decoded to UTF-8 from the column's charset by the server (latin1 is cp1252) |
//! | `*text` | `text` | |
//! | `binary`, `varbinary`, `*blob` | `bytea` | |
//! | `json` (MariaDB: LONGTEXT with `json_valid`) | `jsonb` | checked as PostgreSQL would (no `\u0000`, valid surrogates) |
//! | `enum(...)` | an enum type `<table>_<column>` | `''` (stored by `INSERT IGNORE`) is not a label: rejected |
//! | `set(...)` | `text[]` | |
//! | `date` | `date` | zero dates per `zero_dates`; year 0000 (with month and day) is 1 BC |
//! | `datetime(p)` | `timestamp(p)` | zero dates per `zero_dates`; year 0000 is 1 BC |
//! | `timestamp(p)` | `timestamptz(p)` | read in UTC |
//! | `time(p)` | `time(p)` | negative or 24 h and more: rejected (map to `interval` to keep them) |
//! | `year` | `smallint` | |
//! | `geometry` and the other spatial types | `bytea` | WKB (MySQL's SRID prefix removed); PostGIS `geometry` with its SRID when the target has the extension |
//!
//! Alternatives (`to`): integers and `tinyint(1)` to `boolean`, `smallint`, `integer`,
//! `bigint` or `numeric`; `binary(16)` to `uuid` (16 raw bytes), `char(36)`/`varchar(36)` to
//! `uuid` (text form); `datetime` to `timestamptz` with `zone` (the zone the values were
//! written in, default UTC); `timestamp` to `timestamp` (UTC wall time); `enum` to `text` or
//! `varchar(n)` (with a CHECK on the labels); `time` to `interval`; `set` to `text`; `json` to
//! `json` or `text`; any string type to `text` or `varchar(n)`.

use crate::catalog::mysql::MyColumn;

/// How one value travels from MySQL to PostgreSQL's binary format.
#[derive(Debug, Clone, PartialEq)]
pub enum Convert {
    /// An integer (or `bit(1)`) to `boolean`: 0 false, else true.
    Bool,
    /// An integer to `smallint`, range-checked.
    Int2,
    /// An integer to `integer`, range-checked.
    Int4,
    /// An integer to `bigint`, range-checked (unsigned values above 2^63-1 are rejected).
    Int8,
    /// An integer (signed or unsigned) to `numeric`, exact.
    NumericInt,
    /// DECIMAL text to `numeric`, exact.
    Numeric,
    /// To `real`.
    Float4,
    /// To `double precision`.
    Float8,
    /// A string to `text`/`varchar`/`char`: UTF-8 checked, NUL bytes per policy.
    Text,
    /// A label of `labels` to a PostgreSQL enum (binary form: the label's text).
    Enum {
        /// Labels the target type knows.
        labels: Vec<String>,
    },
    /// An enum label to text (a CHECK on the target keeps the labels).
    EnumText {
        /// The labels, checked here too so a `''` is rejected with a reason.
        labels: Vec<String>,
    },
    /// A SET value (`a,b`) to `text[]`.
    SetArray,
    /// JSON text to `jsonb`, checked.
    Jsonb,
    /// JSON text to `json` (checked) or text.
    JsonText,
    /// Bytes to `bytea`.
    Bytea,
    /// 16 raw bytes to `uuid`.
    UuidBinary,
    /// Text `8-4-4-4-12` to `uuid`.
    UuidText,
    /// A date (zero dates per policy).
    Date,
    /// A DATETIME to `timestamp`.
    Timestamp,
    /// A TIMESTAMP (read in UTC) to `timestamptz`.
    TimestampTz,
    /// A DATETIME written in `zone` to `timestamptz`.
    TimestampInZone {
        /// IANA zone name.
        zone: String,
    },
    /// A TIME to `time` (0 to 24 h).
    Time,
    /// A TIME to `interval` (any value, sign kept).
    Interval,
    /// YEAR to `smallint`.
    Year,
    /// BIT(n) to `bit varying(n)`.
    VarBit {
        /// Declared bit count.
        bits: u32,
    },
    /// A spatial value to WKB `bytea` (the 4-byte SRID prefix dropped).
    GeometryWkb,
    /// A spatial value to PostGIS `geometry` (EWKB with the SRID kept).
    GeometryEwkb,
    /// Any value as text, for the transform stage (a column mapping casts it from there);
    /// `date`: a DATE column, printed without a time.
    AsText {
        /// The column is a DATE.
        date: bool,
        /// The column maps to boolean by default (`tinyint(1)`): 0 is false, others true.
        boolean: bool,
        /// The column maps to `timestamptz` by default, its values written in this zone
        /// (`UTC` for TIMESTAMP): printed as the UTC instant with `+00`.
        zone: Option<String>,
    },
}

/// A column's target type and conversion.
impl Convert {
    /// What the conversion does to a value, in a few words (the plan's column table).
    pub fn describe(&self) -> &'static str {
        use Convert as C;
        match self {
            C::Bool => "0 -> false, other values -> true",
            C::Int2 | C::Int4 | C::Int8 => "integer, range-checked",
            C::NumericInt | C::Numeric => "exact",
            C::Float4 | C::Float8 => "bit-exact",
            C::Text => "decoded to UTF-8, NUL bytes per policy",
            C::Enum { .. } => "enum label; '' rejected",
            C::EnumText { .. } => "enum label as text, CHECK on the labels",
            C::SetArray => "set -> text[]",
            C::Jsonb | C::JsonText => "JSON checked as PostgreSQL reads it",
            C::Bytea => "bytes",
            C::UuidBinary | C::UuidText => "uuid",
            C::Date | C::Timestamp => "zero dates per policy",
            C::TimestampTz => "read in UTC",
            C::TimestampInZone { .. } => "read in the given zone",
            C::Time => "0 to 24 h, others rejected",
            C::Interval => "interval, sign kept",
            C::Year => "year",
            C::VarBit { .. } => "bits",
            C::GeometryWkb => "WKB, SRID dropped",
            C::GeometryEwkb => "EWKB with SRID",
            C::AsText { .. } => "as text, then the column mapping",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// PostgreSQL type as written in DDL (enum types: filled in by the planner).
    pub pg_type: String,
    /// Value conversion.
    pub convert: Convert,
    /// What may not survive the trip, for the plan and the log (e.g. "zero dates become NULL").
    pub note: Option<String>,
}

/// A user's type rule: MySQL type (or one column) to a PostgreSQL type.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CastRule {
    /// MySQL type to match: `tinyint(1)`, `binary(16)`, `datetime`, `enum`, `int unsigned`.
    #[serde(rename = "type")]
    pub from: Option<String>,
    /// One column instead: `table.column` (source names).
    pub column: Option<String>,
    /// PostgreSQL type: `boolean`, `smallint`, `uuid`, `timestamptz`, `text`, `interval`, ...
    pub to: String,
    /// For `datetime` to `timestamptz`: the IANA zone the values were written in (default UTC).
    pub zone: Option<String>,
}

impl CastRule {
    /// Whether this rule applies to column `col` of `table`.
    pub fn matches(&self, table: &str, col: &MyColumn) -> bool {
        if let Some(c) = &self.column {
            return c.eq_ignore_ascii_case(&format!("{table}.{}", col.name));
        }
        let Some(p) = &self.from else { return false };
        let p = p.trim().to_ascii_lowercase();
        let base = col.column_type.replace(" zerofill", "");
        p == col.column_type
            || p == base
            || (!p.contains('(') && p == col.data_type)
            || (p == format!("{} unsigned", col.data_type) && col.unsigned())
    }
}

fn integer(col: &MyColumn) -> bool {
    matches!(
        col.data_type.as_str(),
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}

fn string(col: &MyColumn) -> bool {
    matches!(
        col.data_type.as_str(),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
    )
}

fn spatial(data_type: &str) -> bool {
    matches!(
        data_type,
        "geometry"
            | "point"
            | "linestring"
            | "polygon"
            | "multipoint"
            | "multilinestring"
            | "multipolygon"
            | "geometrycollection"
            | "geomcollection"
    )
}

fn frac(col: &MyColumn) -> String {
    match col.datetime_precision {
        Some(p) if p > 0 => format!("({p})"),
        _ => String::new(),
    }
}

fn mapping(pg_type: impl Into<String>, convert: Convert) -> Mapping {
    Mapping {
        pg_type: pg_type.into(),
        convert,
        note: None,
    }
}

/// The default mapping of a column (see the module table).
pub fn default_mapping(col: &MyColumn) -> Result<Mapping, String> {
    let dt = col.data_type.as_str();
    let unsigned = col.unsigned();
    let m = match dt {
        "tinyint" if col.width() == Some(1) => Mapping {
            note: Some("tinyint(1) becomes boolean: 0 is false, any other value true".into()),
            ..mapping("boolean", Convert::Bool)
        },
        "tinyint" => mapping("smallint", Convert::Int2),
        "smallint" if unsigned => mapping("integer", Convert::Int4),
        "smallint" => mapping("smallint", Convert::Int2),
        "mediumint" => mapping("integer", Convert::Int4),
        "int" | "integer" if unsigned => mapping("bigint", Convert::Int8),
        "int" | "integer" => mapping("integer", Convert::Int4),
        "bigint" if unsigned => mapping("numeric(20)", Convert::NumericInt),
        "bigint" => mapping("bigint", Convert::Int8),
        "decimal" | "numeric" => {
            let p = col.precision.unwrap_or(10);
            let s = col.scale.unwrap_or(0);
            mapping(format!("numeric({p},{s})"), Convert::Numeric)
        }
        "float" => mapping("real", Convert::Float4),
        "double" | "real" => mapping("double precision", Convert::Float8),
        "bit" => match col.precision.or_else(|| col.width()).unwrap_or(1) {
            1 => mapping("boolean", Convert::Bool),
            n => mapping(
                format!("bit varying({n})"),
                Convert::VarBit { bits: n as u32 },
            ),
        },
        "char" | "varchar" if col.json => mapping("jsonb", Convert::Jsonb),
        "char" | "varchar" => {
            let n = col.char_length.unwrap_or(1).max(1);
            // PostgreSQL caps varchar at 10485760 characters.
            if n > 10_485_760 {
                mapping("text", Convert::Text)
            } else {
                mapping(format!("varchar({n})"), Convert::Text)
            }
        }
        "tinytext" | "text" | "mediumtext" | "longtext" if col.json => {
            mapping("jsonb", Convert::Jsonb)
        }
        "tinytext" | "text" | "mediumtext" | "longtext" => mapping("text", Convert::Text),
        "json" => mapping("jsonb", Convert::Jsonb),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            mapping("bytea", Convert::Bytea)
        }
        "enum" => Mapping {
            note: Some("enum: '' (an invalid value stored by INSERT IGNORE) is rejected".into()),
            ..mapping(
                String::new(),
                Convert::Enum {
                    labels: col.labels(),
                },
            )
        },
        "set" => mapping("text[]", Convert::SetArray),
        "date" => mapping("date", Convert::Date),
        "datetime" => mapping(format!("timestamp{}", frac(col)), Convert::Timestamp),
        "timestamp" => mapping(format!("timestamptz{}", frac(col)), Convert::TimestampTz),
        "time" => Mapping {
            note: Some(
                "time: values below 0 or from 24:00:00 on are rejected (map to interval to keep them)"
                    .into(),
            ),
            ..mapping(format!("time{}", frac(col)), Convert::Time)
        },
        "year" => mapping("smallint", Convert::Year),
        d if spatial(d) => Mapping {
            note: Some("spatial values become WKB bytea (SRID dropped)".into()),
            ..mapping("bytea", Convert::GeometryWkb)
        },
        other => return Err(format!("no mapping for MySQL type {other}")),
    };
    Ok(m)
}

/// The mapping a user asked for with `to` (and `zone`), if it makes sense for this column.
pub fn chosen_mapping(col: &MyColumn, to: &str, zone: Option<&str>) -> Result<Mapping, String> {
    let t = to.trim().to_ascii_lowercase();
    let dt = col.data_type.as_str();
    let no = || {
        Err(format!(
            "cannot map {} ({}) to {to}; see the type table in the README for what each type may become",
            col.name, col.column_type
        ))
    };
    let m = match t.as_str() {
        "boolean" | "bool" if integer(col) || dt == "bit" => mapping("boolean", Convert::Bool),
        "smallint" | "int2" if integer(col) || dt == "year" => mapping("smallint", Convert::Int2),
        "integer" | "int" | "int4" if integer(col) => mapping("integer", Convert::Int4),
        "bigint" | "int8" if integer(col) => mapping("bigint", Convert::Int8),
        n if n.starts_with("numeric") && integer(col) => mapping(t.clone(), Convert::NumericInt),
        n if n.starts_with("numeric") && matches!(dt, "decimal" | "numeric") => {
            mapping(t.clone(), Convert::Numeric)
        }
        "uuid" if dt == "binary" && col.width() == Some(16) => mapping("uuid", Convert::UuidBinary),
        "uuid" if matches!(dt, "char" | "varchar") => mapping("uuid", Convert::UuidText),
        "timestamptz" | "timestamp with time zone" if dt == "datetime" => {
            let zone = zone.unwrap_or("UTC").to_string();
            if jiff::tz::TimeZone::get(&zone).is_err() {
                return Err(format!("unknown time zone \"{zone}\" for {}", col.name));
            }
            mapping(
                format!("timestamptz{}", frac(col)),
                Convert::TimestampInZone { zone },
            )
        }
        "timestamp" | "timestamp without time zone" if dt == "timestamp" => {
            mapping(format!("timestamp{}", frac(col)), Convert::TimestampTz)
        }
        "interval" if dt == "time" => mapping("interval", Convert::Interval),
        "text" if dt == "enum" => mapping(
            "text",
            Convert::EnumText {
                labels: col.labels(),
            },
        ),
        v if v.starts_with("varchar") && dt == "enum" => mapping(
            t.clone(),
            Convert::EnumText {
                labels: col.labels(),
            },
        ),
        "text" if dt == "set" => mapping("text", Convert::Text),
        "json" if col.json || dt == "json" => mapping("json", Convert::JsonText),
        "text" if col.json || dt == "json" => mapping("text", Convert::Text),
        "text" if string(col) => mapping("text", Convert::Text),
        v if v.starts_with("varchar") && string(col) => mapping(t.clone(), Convert::Text),
        "bytea" if dt == "binary" || dt == "varbinary" || dt.ends_with("blob") => {
            mapping("bytea", Convert::Bytea)
        }
        _ => return no(),
    };
    Ok(m)
}

/// The PostGIS mapping of a spatial column, when the target has PostGIS (`geometry` is the
/// type's qualified name there).
pub fn postgis_mapping(col: &MyColumn, geometry: &str) -> Option<Mapping> {
    spatial(&col.data_type).then(|| Mapping {
        pg_type: geometry.to_string(),
        convert: Convert::GeometryEwkb,
        note: None,
    })
}

/// The mapping of a column: the last matching rule wins over earlier ones, column rules over
/// type rules, and the default applies when no rule matches.
pub fn map_column(table: &str, col: &MyColumn, rules: &[CastRule]) -> Result<Mapping, String> {
    let by_column = rules
        .iter()
        .rev()
        .find(|r| r.column.is_some() && r.matches(table, col));
    let by_type = rules
        .iter()
        .rev()
        .find(|r| r.column.is_none() && r.matches(table, col));
    match by_column.or(by_type) {
        Some(rule) => chosen_mapping(col, &rule.to, rule.zone.as_deref()),
        None => default_mapping(col),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, column_type: &str) -> MyColumn {
        MyColumn {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_the_table() {
        let cases = [
            ("tinyint", "tinyint(1)", "boolean"),
            ("tinyint", "tinyint(4)", "smallint"),
            ("int", "int(10) unsigned", "bigint"),
            ("bigint", "bigint(20) unsigned", "numeric(20)"),
            ("mediumint", "mediumint(8) unsigned", "integer"),
            ("double", "double", "double precision"),
            ("set", "set('a','b')", "text[]"),
            ("year", "year(4)", "smallint"),
            ("longblob", "longblob", "bytea"),
            ("point", "point", "bytea"),
        ];
        for (dt, ct, pg) in cases {
            assert_eq!(
                default_mapping(&col(dt, ct)).map(|m| m.pg_type),
                Ok(pg.to_string()),
                "{ct}"
            );
        }
    }

    #[test]
    fn rules_by_type_and_by_column() {
        let rules = vec![
            CastRule {
                from: Some("tinyint(1)".into()),
                to: "smallint".into(),
                ..Default::default()
            },
            CastRule {
                column: Some("orders.flag".into()),
                to: "boolean".into(),
                ..Default::default()
            },
        ];
        let mut c = col("tinyint", "tinyint(1)");
        assert_eq!(
            map_column("orders", &c, &rules).map(|m| m.pg_type),
            Ok("smallint".into())
        );
        c.name = "flag".into();
        assert_eq!(
            map_column("orders", &c, &rules).map(|m| m.pg_type),
            Ok("boolean".into())
        );
        let uuid = col("binary", "binary(16)");
        assert_eq!(
            chosen_mapping(&uuid, "uuid", None).map(|m| m.convert),
            Ok(Convert::UuidBinary)
        );
        assert!(chosen_mapping(&col("date", "date"), "uuid", None).is_err());
        assert!(chosen_mapping(
            &col("datetime", "datetime"),
            "timestamptz",
            Some("Mars/Base")
        )
        .is_err());
    }
}
