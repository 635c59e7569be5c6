//! Column mappings: the job file's `[[table]]` and `[[cast]]` rules, checked against the
//! source catalog and resolved into the target tables and the transform of each table.
//!
//! Resolution happens before anything is written: an unknown table or column, an impossible
//! cast, a NOT NULL column that could get no value or two columns with one name are errors
//! that name the file, the table, the column and the fix.

pub mod rename;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use crate::catalog::{Catalog, Column, QualifiedName, Table};
use crate::error::{Error, Result};
use crate::transform::cast::{Cast, Kind, TargetType, SUPPORTED};
use crate::transform::{OnError, OutColumn, TableTransform, ValueRule};

/// A scalar in the job file (`"Y"`, `1`, `2.5`, `true`), kept as the text PostgreSQL reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A string.
    Text(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// The value as text.
    pub fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// `[[cast]]`: a rule for every column of a type (per-column rules win).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeRule {
    /// Source type as PostgreSQL names it (`timestamp`, `numeric(12,4)`, `character varying`).
    pub from: String,
    /// Target type.
    pub to: String,
    /// For `timestamptz` from a naive timestamp: the IANA zone the values are in.
    pub zone: Option<String>,
    /// What a failed cast does: "reject" (default), "null" or "default".
    pub on_error: Option<OnError>,
}

/// `[[table]]`: what happens to one source table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRule {
    /// Source table: `schema.table`, or `table` when the name is unique.
    pub name: String,
    /// Target name, `schema.table` or `table` (same schema).
    pub target: Option<String>,
    /// Copy only these source columns (default: all).
    pub columns: Option<Vec<String>>,
    /// Leave these source columns out.
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    /// Source-side filter, an SQL condition on the source table's columns.
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// Per-column rules.
    #[serde(default, rename = "column")]
    pub columns_rules: Vec<ColumnRule>,
    /// Columns added on the target, with one value for every row.
    #[serde(default)]
    pub add_column: Vec<AddColumn>,
}

/// `[[table.column]]`: one column's rename, cast, default and clean-ups.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    /// Source column name.
    pub name: String,
    /// Target column name.
    pub rename: Option<String>,
    /// Target type.
    #[serde(rename = "type")]
    pub to: Option<String>,
    /// For `timestamptz` from a naive timestamp: the IANA zone the values are in.
    pub zone: Option<String>,
    /// What a failed cast does: "reject" (default), "null" or "default".
    pub on_error: Option<OnError>,
    /// Value for NULLs (and failed casts with on_error = "default"); `${job}` is the job name.
    pub default: Option<Scalar>,
    /// SQL expression evaluated once per job on the target (when the job starts), e.g.
    /// "now()", used as `default`.
    pub default_sql: Option<String>,
    /// Remove leading and trailing whitespace.
    #[serde(default)]
    pub trim: bool,
    /// Load empty strings (after trimming) as NULL.
    #[serde(default)]
    pub empty_as_null: bool,
    /// Remove NUL bytes.
    #[serde(default)]
    pub strip_nul: bool,
    /// Cut text longer than a `varchar(n)` target instead of rejecting the row.
    #[serde(default)]
    pub truncate: bool,
    /// Value map: source text to target value (e.g. `{ Y = true, N = false }`); `"NULL"`
    /// strings are text, use `map_null` for NULL.
    #[serde(default)]
    pub map: BTreeMap<String, Scalar>,
    /// Source values loaded as NULL.
    #[serde(default)]
    pub map_null: Vec<String>,
}

/// `[[table.add_column]]`: a target column that the source does not have.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddColumn {
    /// Column name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub to: String,
    /// Value for every row; `${job}` is the job name.
    pub value: Option<Scalar>,
    /// SQL expression evaluated once per job on the target (when the job starts), e.g.
    /// "now()".
    pub value_sql: Option<String>,
    /// Declare it NOT NULL.
    #[serde(default)]
    pub not_null: bool,
}

/// Where a mapping comes from, for error messages.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `[[table]]` rules.
    pub tables: Vec<TableRule>,
    /// `[[cast]]` rules.
    pub casts: Vec<TypeRule>,
    /// The job file, named in errors.
    pub file: String,
}

impl Rules {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.casts.is_empty()
    }
}

/// How one table is read and turned into its target rows.
#[derive(Debug, Clone)]
pub struct TableMapping {
    /// The table as read from the source (its columns: those read, in order).
    pub read: Table,
    /// Per read column: how the source delivers it.
    pub read_as: Vec<ReadAs>,
    /// Source-side filter.
    pub filter: Option<String>,
    /// The transform; `None` when rows pass through as read.
    pub transform: Option<TableTransform>,
    /// One line per target column, for `--dry-run` and the plan.
    pub lines: Vec<ColumnLine>,
    /// Target columns that take a `default_sql` or `value_sql` value, with the (expression,
    /// type) of that value.
    pub per_run: Vec<(String, (String, String))>,
}

/// How a PostgreSQL source delivers one column to the transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadAs {
    /// Its own wire bytes.
    Value,
    /// As text, rendered by this SQL suffix (`::text`; `::numeric::text` for a `real` cast to
    /// numeric, which PostgreSQL rounds to 6 digits first): a cast or clean-up follows.
    Text(&'static str),
    /// Already cast by the source server with this SQL suffix (`::numeric(14,2)`,
    /// ` AT TIME ZONE 'Europe/Paris'`): for casts that cannot fail, PostgreSQL's own result
    /// in binary, with no text round trip.
    Cast(String),
}

/// The resolved mapping of one target column.
#[derive(Debug, Clone)]
pub struct ColumnLine {
    /// Source column and type (`None` for added columns).
    pub source: Option<(String, String)>,
    /// Target column.
    pub target: String,
    /// Target type.
    pub target_type: String,
    /// What happens on the way ("passthrough", "cast; trim; default 0", ...).
    pub how: String,
}

/// What [`apply`] needs from outside: the job name and per-run SQL values.
pub struct Context<'a> {
    /// The job name (for `${job}`).
    pub job: &'a str,
    /// Source table names as a user writes them, by table number (MySQL: `db.table`).
    pub source_names: Vec<QualifiedName>,
    /// Values of `default_sql` / `value_sql` expressions, by (expression, type).
    pub sql_values: HashMap<(String, String), String>,
    /// The source is PostgreSQL, so casts that cannot fail can run there.
    pub postgres_source: bool,
}

/// The `(expression, type)` pairs that must be evaluated on the target before [`apply`].
pub fn sql_expressions(rules: &Rules, catalog: &Catalog) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for rule in &rules.tables {
        for a in &rule.add_column {
            if let Some(sql) = &a.value_sql {
                out.push((sql.clone(), a.to.clone()));
            }
        }
        for c in &rule.columns_rules {
            if let Some(sql) = &c.default_sql {
                let ty = c.to.clone().or_else(|| {
                    catalog
                        .tables
                        .iter()
                        .flat_map(|t| t.columns.iter())
                        .find(|col| col.name == c.name)
                        .map(|col| col.type_sql.clone())
                });
                out.push((sql.clone(), ty.unwrap_or_else(|| "text".into())));
            }
        }
    }
    out
}

/// Applies the rules to the catalog: target tables renamed, retyped and reshaped in place;
/// returns per table (by number) how it is read and transformed, `None` when untouched.
pub fn apply(
    rules: &Rules,
    catalog: &mut Catalog,
    ctx: &Context<'_>,
) -> Result<Vec<Option<TableMapping>>> {
    let err = |what: String| Error::Config(format!("{}: {what}", rules.file));
    // Which table each [[table]] rule names.
    let mut rule_of: Vec<Option<&TableRule>> = vec![None; catalog.tables.len()];
    for rule in &rules.tables {
        let found: Vec<usize> = (0..catalog.tables.len())
            .filter(|&i| {
                let t = &catalog.tables[i].name;
                let s = &ctx.source_names[i];
                let full = [t.to_string(), s.to_string()];
                full.contains(&rule.name) || rule.name == t.name || rule.name == s.name
            })
            .collect();
        match found.as_slice() {
            [i] => {
                if rule_of[*i].is_some() {
                    return Err(err(format!(
                        "[[table]] \"{}\" appears twice; merge the two rules",
                        rule.name
                    )));
                }
                rule_of[*i] = Some(rule);
            }
            [] => {
                return Err(err(format!(
                    "[[table]] \"{}\": no such table among the selected source tables ({}); \
                     fix the name (schema.table) or select the table with --tables",
                    rule.name,
                    catalog
                        .tables
                        .iter()
                        .map(|t| t.name.to_string())
                        .take(20)
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            _ => {
                return Err(err(format!(
                    "[[table]] \"{}\" matches several tables; write it as schema.table",
                    rule.name
                )))
            }
        }
    }
    for cast in &rules.casts {
        TargetType::parse(&cast.to).ok_or_else(|| {
            err(format!(
                "[[cast]] from \"{}\": howdah cannot cast to \"{}\"; supported types: {SUPPORTED}",
                cast.from, cast.to
            ))
        })?;
    }
    let mut out = Vec::with_capacity(catalog.tables.len());
    let mut renamed: Vec<(QualifiedName, QualifiedName, HashMap<String, String>)> = Vec::new();
    for (i, table) in catalog.tables.iter_mut().enumerate() {
        let rule = rule_of[i];
        let typed = rules.casts.iter().any(|c| {
            table
                .copy_columns()
                .any(|col| type_matches(&c.from, &col.type_sql))
        });
        if rule.is_none() && !typed {
            out.push(None);
            continue;
        }
        // Partitions and inheritance children share their parent's columns and DDL: reshaping
        // one of them alone cannot work.
        let related = table.partition_of.is_some()
            || !matches!(table.kind, crate::catalog::TableKind::Ordinary)
            || !table.inherits.is_empty()
            || table.has_children;
        if related {
            if rule.is_some() {
                return Err(err(format!(
                    "[[table]] \"{}\": a partitioned, partition or inheritance table shares its \
                     columns with its relatives, so the copy cannot rename, reshape or cast it; copy \
                     it as it is and change it afterwards with ALTER TABLE",
                    table.name
                )));
            }
            tracing::warn!(
                "{}: [[cast]] rules are not applied to partitioned or inheritance tables (they share columns with their relatives)",
                table.name
            );
            out.push(None);
            continue;
        }
        let (mapping, renames) = map_table(table, rule, &rules.casts, ctx, &err)?;
        if let Some(r) = renames {
            renamed.push(r);
        }
        out.push(Some(mapping));
    }
    // Foreign keys of every table that point at a renamed table or column.
    for (old, new, cols) in &renamed {
        for t in &mut catalog.tables {
            for fk in &mut t.foreign_keys {
                if fk.references.as_ref() == Some(old) {
                    fk.definition = rename::rename_referenced(&fk.definition, old, new, cols);
                    fk.references = Some(new.clone());
                }
            }
        }
    }
    let names: HashSet<&QualifiedName> = catalog.tables.iter().map(|t| &t.name).collect();
    if names.len() != catalog.tables.len() {
        return Err(err(
            "two tables would have the same target name; change a [[table]] target".into(),
        ));
    }
    if !renamed.is_empty() {
        // Views and triggers are the server's text over the old names: leave them out rather
        // than create them wrong.
        let touched: Vec<&QualifiedName> = renamed.iter().map(|(o, _, _)| o).collect();
        catalog.views.retain(|v| {
            let hit = v.depends_on.iter().any(|d| touched.contains(&d));
            if hit {
                tracing::warn!(
                    "view {} is not created: it reads a table that a [[table]] rule renames; create it yourself after the copy",
                    v.name
                );
            }
            !hit
        });
        for t in &mut catalog.tables {
            if !t.triggers.is_empty() && renamed.iter().any(|(_, n, _)| *n == t.name) {
                for trig in &t.triggers {
                    tracing::warn!(
                        "trigger {} is not created: its table is renamed by a [[table]] rule",
                        trig.name
                    );
                }
                t.triggers.clear();
            }
        }
    }
    Ok(out)
}

/// The SQL suffix that casts a PostgreSQL source column of type `from` to `to` on the source
/// server, for casts that cannot fail on any value (widening, rounding into more digits);
/// `None` when the cast may fail and must reject rows. (`timestamp AT TIME ZONE` is not one:
/// it fails within a day of the ends of the timestamp range.)
fn safe_cast(from: &str, to: TargetType) -> Option<String> {
    use TargetType as T;
    let src = TargetType::parse(from)?;
    if src == to {
        return None;
    }
    let ok = match (src, to) {
        (T::Int2, T::Int4 | T::Int8 | T::Float4 | T::Float8 | T::Numeric(None)) => true,
        (T::Int4, T::Int8 | T::Float8 | T::Numeric(None)) => true,
        (T::Int8, T::Numeric(None)) => true,
        (T::Float4, T::Float8) => true,
        (T::Numeric(_), T::Numeric(None)) => true,
        // Rounding to fewer decimals can carry into one more integer digit (9.99 -> 10.0).
        (T::Numeric(Some((p1, s1))), T::Numeric(Some((p2, s2)))) => {
            p2 - s2 > p1 - s1 || (p2 - s2 == p1 - s1 && s2 >= s1)
        }
        (T::Int2, T::Numeric(Some((p, s)))) => p - s >= 5,
        (T::Int4, T::Numeric(Some((p, s)))) => p - s >= 10,
        (T::Int8, T::Numeric(Some((p, s)))) => p - s >= 19,
        _ => false,
    };
    ok.then(|| format!("::{}", to.sql()))
}

/// Whether a `[[cast]]` rule's `from` names this type.
fn type_matches(from: &str, type_sql: &str) -> bool {
    match (TargetType::parse(from), TargetType::parse(type_sql)) {
        (Some(a), Some(b)) => a == b,
        _ => from.trim().eq_ignore_ascii_case(type_sql.trim()),
    }
}

fn parse_name(s: &str, default_schema: &str) -> QualifiedName {
    match s.split_once('.') {
        Some((schema, name)) => QualifiedName::new(schema, name),
        None => QualifiedName::new(default_schema, s),
    }
}

type Renames = (QualifiedName, QualifiedName, HashMap<String, String>);

#[allow(clippy::too_many_lines)]
fn map_table(
    table: &mut Table,
    rule: Option<&TableRule>,
    casts: &[TypeRule],
    ctx: &Context<'_>,
    err: &dyn Fn(String) -> Error,
) -> Result<(TableMapping, Option<Renames>)> {
    let tname = table.name.to_string();
    let at = |col: &str| format!("[[table]] \"{tname}\", column \"{col}\"");
    let source_cols: Vec<&Column> = table.copy_columns().collect();
    let col_names: Vec<&str> = source_cols.iter().map(|c| c.name.as_str()).collect();
    let known = |c: &str| table.columns.iter().any(|x| x.name == c);
    let empty = TableRule {
        name: tname.clone(),
        target: None,
        columns: None,
        exclude_columns: Vec::new(),
        filter: None,
        columns_rules: Vec::new(),
        add_column: Vec::new(),
    };
    let rule = rule.unwrap_or(&empty);
    for c in rule
        .columns
        .iter()
        .flatten()
        .chain(&rule.exclude_columns)
        .chain(rule.columns_rules.iter().map(|r| &r.name))
    {
        if !known(c) {
            return Err(err(format!(
                "{}: no such column in the source table (columns: {}); fix the name",
                at(c),
                col_names.join(", ")
            )));
        }
        if table
            .columns
            .iter()
            .any(|x| x.name == *c && x.generated.is_some())
        {
            return Err(err(format!(
                "{}: a generated column is computed on the target, not copied; remove the rule",
                at(c)
            )));
        }
    }
    let key_names: Vec<String> = table
        .chunk_key
        .iter()
        .flatten()
        .map(|k| k.name.clone())
        .collect();
    let keep = |c: &str| {
        rule.columns
            .as_ref()
            .is_none_or(|l| l.iter().any(|x| x == c))
            && !rule.exclude_columns.iter().any(|x| x == c)
    };
    for k in &key_names {
        if !keep(k) {
            return Err(err(format!(
                "{}: the column is the table's key (it cuts the table into chunks and marks \
                 where a resume starts); it cannot be left out",
                at(k)
            )));
        }
    }
    let mut read = table.clone();
    read.columns
        .retain(|c| c.generated.is_some() || keep(&c.name));
    let read_cols: Vec<Column> = read.copy_columns().cloned().collect();
    let mut read_as: Vec<ReadAs> = vec![ReadAs::Value; read_cols.len()];
    let mut outs: Vec<OutColumn> = Vec::new();
    let mut lines = Vec::new();
    let mut target_cols: Vec<Column> = Vec::new();
    let mut renames: HashMap<String, String> = HashMap::new();
    let mut per_run = Vec::new();
    let mut any_change = false;
    let target_name = rule
        .target
        .as_deref()
        .map(|t| parse_name(t, &table.name.schema))
        .unwrap_or_else(|| table.name.clone());

    for (pos, col) in read_cols.iter().enumerate() {
        let crule = rule.columns_rules.iter().find(|r| r.name == col.name);
        let trule = casts
            .iter()
            .rev()
            .find(|c| type_matches(&c.from, &col.type_sql));
        let new_name = crule
            .and_then(|r| r.rename.clone())
            .unwrap_or_else(|| col.name.clone());
        if new_name != col.name {
            renames.insert(col.name.clone(), new_name.clone());
        }
        let to_sql = crule
            .and_then(|r| r.to.clone())
            .or_else(|| trule.map(|t| t.to.clone()));
        let transforms = crule.is_some_and(|r| {
            r.default.is_some()
                || r.default_sql.is_some()
                || r.trim
                || r.empty_as_null
                || r.strip_nul
                || r.truncate
                || !r.map.is_empty()
                || !r.map_null.is_empty()
                || r.on_error.is_some()
        }) || to_sql.is_some();
        let mut target = col.clone();
        target.name = new_name.clone();
        if !transforms {
            outs.push(OutColumn::Pass(pos));
            lines.push(ColumnLine {
                source: Some((col.name.clone(), col.type_sql.clone())),
                target: new_name,
                target_type: col.type_sql.clone(),
                how: "passthrough".into(),
            });
            target_cols.push(target);
            continue;
        }
        if key_names.contains(&col.name) {
            return Err(err(format!(
                "{}: the column is the table's key (chunks and resume offsets are its values); \
                 it can be renamed but not cast or cleaned",
                at(&col.name)
            )));
        }
        let to_text = to_sql.clone().unwrap_or_else(|| col.type_sql.clone());
        let to = TargetType::parse(&to_text).ok_or_else(|| {
            err(format!(
                "{}: howdah cannot {} \"{to_text}\"; supported types: {SUPPORTED}",
                at(&col.name),
                if to_sql.is_some() {
                    "cast to"
                } else {
                    "clean values of type"
                }
            ))
        })?;
        let mut from = Kind::of_sql(&col.type_sql);
        // A `real` arrives as a float4's shortest text, which the cast reads as a float4
        // (`Kind::Real`). Its cast to numeric keeps 6 digits: a PostgreSQL source computes
        // that itself.
        let render = match to.kind() {
            Kind::Exact if from == Kind::Real && ctx.postgres_source => {
                from = Kind::Exact;
                "::numeric::text"
            }
            _ => "::text",
        };
        if !from.casts_to(to) {
            return Err(err(format!(
                "{}: there is no cast from {} to {}; cast to text first, or pick another type",
                at(&col.name),
                col.type_sql,
                to.sql()
            )));
        }
        if col.identity.is_some() && to.kind() != Kind::Integer {
            return Err(err(format!(
                "{}: an identity column must stay an integer type",
                at(&col.name)
            )));
        }
        let zone_name = crule
            .and_then(|r| r.zone.clone())
            .or_else(|| trule.and_then(|t| t.zone.clone()));
        let zone = match &zone_name {
            Some(z) => Some(
                jiff::tz::TimeZone::get(z)
                    .map_err(|e| err(format!("{}: time zone \"{z}\": {e}", at(&col.name))))?,
            ),
            None => None,
        };
        let cast = Cast {
            to,
            from,
            zone,
            truncate: crule.is_some_and(|r| r.truncate),
        };
        let on_error = crule
            .and_then(|r| r.on_error)
            .or_else(|| trule.and_then(|t| t.on_error))
            .unwrap_or_default();
        let text_cast = Cast {
            to,
            from: Kind::Text,
            zone: cast.zone.clone(),
            truncate: cast.truncate,
        };
        let encode = |value: &str, what: &str| -> Result<Vec<u8>> {
            let mut f = Vec::new();
            text_cast.put(&mut f, value).map_err(|e| {
                err(format!(
                    "{}: {what} \"{value}\" is not a valid {}: {e}",
                    at(&col.name),
                    to.sql()
                ))
            })?;
            Ok(f)
        };
        let default = match crule {
            Some(ColumnRule {
                default: Some(d), ..
            }) => Some(encode(&d.text().replace("${job}", ctx.job), "default")?),
            Some(ColumnRule {
                default_sql: Some(sql),
                ..
            }) => {
                let (key, v) = [
                    (sql.clone(), to_text.clone()),
                    (sql.clone(), col.type_sql.clone()),
                ]
                .into_iter()
                .find_map(|k| ctx.sql_values.get(&k).map(|v| (k, v)))
                .ok_or_else(|| {
                    err(format!(
                        "{}: default_sql \"{sql}\" was not evaluated",
                        at(&col.name)
                    ))
                })?;
                per_run.push((new_name.clone(), key));
                Some(encode(v, "default_sql value")?)
            }
            _ => None,
        };
        if on_error == OnError::Default && default.is_none() && col.not_null {
            return Err(err(format!(
                "{}: on_error = \"default\" but the column has no default and is NOT NULL; \
                 add default = ... or use on_error = \"reject\"",
                at(&col.name)
            )));
        }
        if on_error == OnError::Null && col.not_null {
            return Err(err(format!(
                "{}: on_error = \"null\" but the column is NOT NULL on the target; use \
                 on_error = \"reject\" or \"default\" with a default",
                at(&col.name)
            )));
        }
        let mut map: HashMap<String, Option<String>> = HashMap::new();
        if let Some(r) = crule {
            for (k, v) in &r.map {
                let t = v.text();
                encode(&t, &format!("map value for \"{k}\""))?;
                map.insert(k.clone(), Some(t));
            }
            for k in &r.map_null {
                map.insert(k.clone(), None);
            }
        }
        read_as[pos] = ReadAs::Text(render);
        any_change = true;
        let mut how = Vec::new();
        if to_sql.is_some() && to.sql() != col.type_sql {
            how.push(format!("cast {} -> {}", col.type_sql, to.sql()));
        }
        if let Some(z) = &zone_name {
            how.push(format!("in zone {z}"));
        }
        if let Some(r) = crule {
            if r.strip_nul {
                how.push("strip NUL".into());
            }
            if r.trim {
                how.push("trim".into());
            }
            if r.empty_as_null {
                how.push("'' -> NULL".into());
            }
            if !map.is_empty() {
                how.push(format!("map of {} values", map.len()));
            }
            if r.truncate {
                how.push("truncate".into());
            }
            if let Some(d) = &r.default {
                how.push(format!("NULL -> {}", d.text()));
            }
            if let Some(d) = &r.default_sql {
                how.push(format!("NULL -> {d} (once per job)"));
            }
        }
        how.push(format!(
            "on error: {}",
            match on_error {
                OnError::Reject => "reject row",
                OnError::Null => "NULL",
                OnError::Default => "default",
            }
        ));
        if to.sql() != col.type_sql && TargetType::parse(&col.type_sql) != Some(to) {
            // The source's default expression is of the old type.
            target.default = None;
            target.collation = None;
        }
        target.type_sql = to.sql();
        if TargetType::parse(&col.type_sql) == Some(to) {
            target.type_sql = col.type_sql.clone();
        }
        lines.push(ColumnLine {
            source: Some((col.name.clone(), col.type_sql.clone())),
            target: new_name.clone(),
            target_type: target.type_sql.clone(),
            how: how.join("; "),
        });
        let text_ops = crule.is_some_and(|r| {
            r.trim
                || r.empty_as_null
                || r.strip_nul
                || r.truncate
                || !r.map.is_empty()
                || !r.map_null.is_empty()
        });
        // Values that keep their wire bytes, with no text round trip: a cast that cannot fail
        // runs on a PostgreSQL source (PostgreSQL's own result, by definition), and a column
        // whose type does not change only has its NULLs replaced.
        let wire = if text_ops {
            None
        } else if let Some(sql) = safe_cast(&col.type_sql, to).filter(|_| ctx.postgres_source) {
            Some(ReadAs::Cast(sql))
        } else if TargetType::parse(&col.type_sql) == Some(to) {
            Some(ReadAs::Value)
        } else {
            None
        };
        if let Some(read) = wire {
            read_as[pos] = read;
            outs.push(match default {
                Some(field) => OutColumn::NullDefault { input: pos, field },
                None => OutColumn::Pass(pos),
            });
            target_cols.push(target);
            continue;
        }
        // A naive timestamp read in a zone: shifted from its wire bytes by the transform.
        let naive_in_zone = (TargetType::parse(&col.type_sql) == Some(TargetType::Timestamp)
            && to == TargetType::TimestampTz
            && !text_ops)
            .then(|| cast.zone.clone().unwrap_or(jiff::tz::TimeZone::UTC));
        if naive_in_zone.is_some() {
            read_as[pos] = ReadAs::Value;
        }
        outs.push(OutColumn::Value(ValueRule {
            input: pos,
            column: new_name,
            map_cast: text_cast.clone(),
            cast,
            strip_nul: crule.is_some_and(|r| r.strip_nul),
            trim: crule.is_some_and(|r| r.trim),
            empty_as_null: crule.is_some_and(|r| r.empty_as_null),
            map,
            default,
            on_error,
            not_null: col.not_null,
            naive_in_zone,
        }));
        target_cols.push(target);
    }
    for a in &rule.add_column {
        let to = TargetType::parse(&a.to).ok_or_else(|| {
            err(format!(
                "{}: howdah cannot fill type \"{}\"; supported types: {SUPPORTED}",
                at(&a.name),
                a.to
            ))
        })?;
        let value = match (&a.value, &a.value_sql) {
            (Some(v), None) => Some(v.text().replace("${job}", ctx.job)),
            (None, Some(sql)) => {
                let key = (sql.clone(), a.to.clone());
                let v = ctx.sql_values.get(&key).cloned().ok_or_else(|| {
                    err(format!(
                        "{}: value_sql \"{sql}\" was not evaluated",
                        at(&a.name)
                    ))
                })?;
                per_run.push((a.name.clone(), key));
                Some(v)
            }
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(err(format!(
                    "{}: give value or value_sql, not both",
                    at(&a.name)
                )))
            }
        };
        if a.not_null && value.is_none() {
            return Err(err(format!(
                "{}: the added column is NOT NULL but has no value; add value = ...",
                at(&a.name)
            )));
        }
        let mut field = Vec::new();
        match &value {
            Some(v) => Cast {
                to,
                from: Kind::Text,
                zone: None,
                truncate: false,
            }
            .put(&mut field, v)
            .map_err(|e| err(format!("{}: value \"{v}\": {e}", at(&a.name))))?,
            None => crate::pgcopy::values::put_null(&mut field),
        }
        outs.push(OutColumn::Const(field));
        lines.push(ColumnLine {
            source: None,
            target: a.name.clone(),
            target_type: to.sql(),
            how: format!(
                "added, {}",
                value.map_or("NULL".to_string(), |v| format!("= {v}"))
            ),
        });
        target_cols.push(Column {
            name: a.name.clone(),
            type_sql: to.sql(),
            not_null: a.not_null,
            ..Column::default()
        });
        any_change = true;
    }
    // Names must stay unique on the target.
    let mut seen = HashSet::new();
    for c in target_cols.iter().map(|c| c.name.as_str()).chain(
        table
            .columns
            .iter()
            .filter(|c| c.generated.is_some())
            .map(|c| c.name.as_str()),
    ) {
        if !seen.insert(c) {
            return Err(err(format!(
                "[[table]] \"{tname}\": two target columns are named \"{c}\"; change a rename or an added column"
            )));
        }
    }
    let reshaped = read_cols.len() != source_cols.len() || !rule.add_column.is_empty();
    let transform = (any_change || reshaped || !renames.is_empty()).then(|| TableTransform {
        inputs: read_cols.len(),
        columns: outs,
        key: key_names
            .iter()
            .filter_map(|k| {
                let p = read_cols.iter().position(|c| &c.name == k)?;
                Some((p, k.clone(), read_cols[p].type_sql.clone()))
            })
            .collect(),
    });
    // A pure rename or column selection needs no transform: the tuple is the same.
    let transform = transform.filter(|t| {
        any_change
            || t.columns
                .iter()
                .enumerate()
                .any(|(i, c)| !matches!(c, OutColumn::Pass(p) if *p == i))
    });

    // The target table: reshaped columns, DDL text following the renames, and what refers to
    // a column left out dropped.
    let dropped: Vec<&str> = table
        .copy_columns()
        .filter(|c| !keep(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    let uses_dropped = |sql: &str| dropped.iter().any(|d| rename::mentions(sql, d));
    let old_name = table.name.clone();
    let mut new = table.clone();
    let generated: Vec<Column> = table
        .columns
        .iter()
        .filter(|c| c.generated.is_some())
        .cloned()
        .collect();
    new.columns = target_cols;
    new.columns.extend(generated);
    new.name = target_name.clone();
    for c in &mut new.columns {
        if let Some(g) = &mut c.generated {
            *g = rename::rename_columns(g, &renames);
        }
    }
    let fix = |sql: &str| {
        rename::rename_table(
            &rename::rename_columns(sql, &renames),
            &old_name,
            &target_name,
        )
    };
    if let Some(pk) = &mut new.primary_key {
        pk.definition = fix(&pk.definition);
        pk.index_definition = pk.index_definition.as_deref().map(fix);
    }
    let note = |what: &str, name: &str| {
        tracing::warn!("{what} {name} of {tname} is not created: it uses a column that a [[table]] rule leaves out");
    };
    new.constraints.retain(|c| {
        let ok = !uses_dropped(&c.definition);
        if !ok {
            note("constraint", &c.name);
        }
        ok
    });
    for c in &mut new.constraints {
        c.definition = fix(&c.definition);
        c.index_definition = c.index_definition.as_deref().map(fix);
    }
    new.indexes.retain(|x| {
        let ok = !uses_dropped(&x.definition);
        if !ok {
            note("index", &x.name);
        }
        ok
    });
    for x in &mut new.indexes {
        x.definition = fix(&x.definition);
    }
    new.foreign_keys.retain(|fk| {
        let own = fk.definition.split("REFERENCES").next().unwrap_or("");
        let ok = !uses_dropped(own);
        if !ok {
            note("foreign key", &fk.name);
        }
        ok
    });
    for fk in &mut new.foreign_keys {
        fk.definition = rename::rename_columns(&fk.definition, &renames);
    }
    if let Some(key) = &mut new.chunk_key {
        for k in key {
            if let Some(n) = renames.get(&k.name) {
                k.name = n.clone();
            }
        }
    }
    if !renames.is_empty() || target_name != old_name {
        for trig in &new.triggers {
            tracing::warn!(
                "trigger {} of {tname} is not created: its table or columns are renamed; create it yourself",
                trig.name
            );
        }
        new.triggers.clear();
    }
    *table = new;
    let renamed = (target_name != old_name || !renames.is_empty()).then_some((
        old_name,
        target_name,
        renames,
    ));
    Ok((
        TableMapping {
            read,
            read_as,
            filter: rule.filter.clone(),
            transform,
            lines,
            per_run,
        },
        renamed,
    ))
}

/// The resolved mapping of every mapped table, as text for `--dry-run`.
pub fn describe(catalog: &Catalog, maps: &[Option<TableMapping>]) -> String {
    let mut out = String::new();
    for (t, m) in catalog.tables.iter().zip(maps) {
        let Some(m) = m else {
            out.push_str(&format!("{}: every column copied as it is\n", t.name));
            continue;
        };
        let src = if m.read.name == t.name {
            String::new()
        } else {
            format!(" (from {})", m.read.name)
        };
        out.push_str(&format!("{}{src}:\n", t.name));
        if let Some(f) = &m.filter {
            out.push_str(&format!("  where {f}\n"));
        }
        for l in &m.lines {
            let from = match &l.source {
                Some((n, ty)) => format!("{n} {ty}"),
                None => "(added)".into(),
            };
            out.push_str(&format!(
                "  {from} -> {} {}: {}\n",
                l.target, l.target_type, l.how
            ));
        }
    }
    out
}
