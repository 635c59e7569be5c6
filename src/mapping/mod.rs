//! Column mappings: the job file's `[[table]]` and `[[cast]]` rules, checked against the
//! source catalog and resolved into the target tables and the transform of each table.
//!
//! Resolution happens before anything is written: an unknown table or column, an impossible
//! cast, a NOT NULL column that could get no value or two columns with one name are errors
//! that name the file, the table, the column and the fix.

mod columns;
pub mod rename;
mod target;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use crate::catalog::{Catalog, Column, QualifiedName, Table};
use crate::error::{Error, Result};
use crate::transform::cast::{TargetType, SUPPORTED};
use crate::transform::{OnError, OutColumn, TableTransform};
use columns::Blame;
use target::{rewrite_table_ddl, Renames};

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
#[derive(Debug, Clone, Default, Deserialize)]
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

impl TableRule {
    /// Whether the source column is copied: selected by `columns` (all when absent) and not
    /// in `exclude_columns`.
    fn keeps(&self, column: &str) -> bool {
        self.columns
            .as_ref()
            .is_none_or(|l| l.iter().any(|x| x == column))
            && !self.exclude_columns.iter().any(|x| x == column)
    }
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
    let rule_of = match_rules(rules, catalog, ctx, &err)?;
    for cast in &rules.casts {
        TargetType::parse(&cast.to).ok_or_else(|| {
            err(format!(
                "[[cast]] from \"{}\": howdah cannot cast to \"{}\"; supported types: {SUPPORTED}",
                cast.from, cast.to
            ))
        })?;
    }
    let mut out = Vec::with_capacity(catalog.tables.len());
    let mut renamed: Vec<Renames> = Vec::new();
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
    follow_renames(catalog, &renamed, &err)?;
    Ok(out)
}

/// Which `[[table]]` rule names each table (by table number): a rule must name exactly one
/// table, by its target or source name, qualified or not, and no table twice.
fn match_rules<'r>(
    rules: &'r Rules,
    catalog: &Catalog,
    ctx: &Context<'_>,
    err: &dyn Fn(String) -> Error,
) -> Result<Vec<Option<&'r TableRule>>> {
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
    Ok(rule_of)
}

/// Points the other tables' foreign keys at renamed tables and columns, checks that target
/// names stay unique, and leaves out the views and triggers that read a renamed table (they
/// are the server's text over the old names: left out rather than created wrong).
fn follow_renames(
    catalog: &mut Catalog,
    renamed: &[Renames],
    err: &dyn Fn(String) -> Error,
) -> Result<()> {
    for (old, new, cols) in renamed {
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
    if renamed.is_empty() {
        return Ok(());
    }
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
    catalog.others.retain(|o| {
        let hit = o.table.as_ref().is_some_and(|t| touched.contains(&t));
        if hit {
            tracing::warn!(
                "{} {} is not created: it names a table or columns that a [[table]] rule renames; create it yourself after the copy",
                o.kind,
                o.name
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
    Ok(())
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

/// Maps one table: checks its rule, plans its columns, builds its transform and rewrites the
/// table into its target. Returns its renames when it or a column is renamed.
fn map_table(
    table: &mut Table,
    rule: Option<&TableRule>,
    casts: &[TypeRule],
    ctx: &Context<'_>,
    err: &dyn Fn(String) -> Error,
) -> Result<(TableMapping, Option<Renames>)> {
    let blame = Blame {
        table: table.name.to_string(),
        err,
    };
    let empty = TableRule {
        name: blame.table.clone(),
        ..TableRule::default()
    };
    let rule = rule.unwrap_or(&empty);
    let key_names = check_rule(table, rule, &blame)?;
    let mut read = table.clone();
    read.columns
        .retain(|c| c.generated.is_some() || rule.keeps(&c.name));
    let read_cols: Vec<Column> = read.copy_columns().cloned().collect();
    let mut planned = columns::plan_columns(&read_cols, rule, casts, &key_names, ctx, &blame)?;
    columns::add_columns(&mut planned, rule, ctx, &blame)?;
    check_unique_names(table, &planned.target_cols, &blame)?;
    let columns::Planned {
        read_as,
        outs,
        lines,
        target_cols,
        renames,
        per_run,
        any_change,
    } = planned;
    let reshaped = read_cols.len() != table.copy_columns().count()
        || !rule.add_column.is_empty()
        || !renames.is_empty();
    let transform = build_transform(&read_cols, &key_names, outs, any_change, reshaped);
    let target_name = rule
        .target
        .as_deref()
        .map(|t| parse_name(t, &table.name.schema))
        .unwrap_or_else(|| table.name.clone());
    let dropped: Vec<String> = table
        .copy_columns()
        .filter(|c| !rule.keeps(&c.name))
        .map(|c| c.name.clone())
        .collect();
    let dropped: Vec<&str> = dropped.iter().map(String::as_str).collect();
    let renamed = rewrite_table_ddl(table, target_cols, renames, target_name, &dropped);
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

/// Checks that a table's rule names only columns it can act on: known, not generated, and
/// not leaving out a key column. Returns the names of the table's key columns.
fn check_rule(table: &Table, rule: &TableRule, blame: &Blame<'_>) -> Result<Vec<String>> {
    for c in rule
        .columns
        .iter()
        .flatten()
        .chain(&rule.exclude_columns)
        .chain(rule.columns_rules.iter().map(|r| &r.name))
    {
        let Some(col) = table.columns.iter().find(|x| x.name == *c) else {
            let names: Vec<&str> = table.copy_columns().map(|c| c.name.as_str()).collect();
            return Err(blame.column(
                c,
                format!(
                    "no such column in the source table (columns: {}); fix the name",
                    names.join(", ")
                ),
            ));
        };
        if col.generated.is_some() {
            return Err(blame.column(
                c,
                "a generated column is computed on the target, not copied; remove the rule",
            ));
        }
    }
    let key_names = table.key_names();
    if let Some(k) = key_names.iter().find(|k| !rule.keeps(k)) {
        return Err(blame.column(
            k,
            "the column is the table's key (it cuts the table into chunks and marks \
             where a resume starts); it cannot be left out",
        ));
    }
    Ok(key_names)
}

/// Checks that the target column names (generated columns included) are unique.
fn check_unique_names(table: &Table, target_cols: &[Column], blame: &Blame<'_>) -> Result<()> {
    let mut seen = HashSet::new();
    for c in target_cols.iter().map(|c| c.name.as_str()).chain(
        table
            .columns
            .iter()
            .filter(|c| c.generated.is_some())
            .map(|c| c.name.as_str()),
    ) {
        if !seen.insert(c) {
            return Err(blame.table(format!(
                "two target columns are named \"{c}\"; change a rename or an added column"
            )));
        }
    }
    Ok(())
}

/// The transform of a planned table (`outs`, made from `read_cols`), `None` when its tuples
/// pass as read: no value changes (`any_change`) and every target field is the field read at
/// its own position (a pure rename or a selection of leading columns). `reshaped`: columns
/// are left out, added or renamed.
fn build_transform(
    read_cols: &[Column],
    key_names: &[String],
    outs: Vec<OutColumn>,
    any_change: bool,
    reshaped: bool,
) -> Option<TableTransform> {
    let transform = (any_change || reshaped).then(|| TableTransform {
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
    transform.filter(|t| {
        any_change
            || t.columns
                .iter()
                .enumerate()
                .any(|(i, c)| !matches!(c, OutColumn::Pass(p) if *p == i))
    })
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

/// Hand-built catalog tables and contexts for the unit tests of this module and its parts.
#[cfg(test)]
mod fixture {
    use std::collections::HashMap;

    use super::{ColumnRule, Context, TableRule};
    use crate::catalog::{Column, KeyColumn, QualifiedName, Table};
    use crate::error::Error;

    /// A column of a PostgreSQL type.
    pub fn col(name: &str, type_sql: &str) -> Column {
        Column {
            name: name.into(),
            type_sql: type_sql.into(),
            ..Column::default()
        }
    }

    /// `public.<name>` with these columns and `key` as its chunk key.
    pub fn table(name: &str, columns: Vec<Column>, key: &[&str]) -> Table {
        let chunk_key = (!key.is_empty()).then(|| {
            key.iter()
                .map(|k| KeyColumn {
                    name: (*k).into(),
                    type_sql: columns
                        .iter()
                        .find(|c| c.name == *k)
                        .map_or_else(String::new, |c| c.type_sql.clone()),
                    collation: None,
                })
                .collect()
        });
        Table {
            name: QualifiedName::new("public", name),
            columns,
            chunk_key,
            ..Table::default()
        }
    }

    /// A rule for `name` with these column rules.
    pub fn rule(name: &str, columns_rules: Vec<ColumnRule>) -> TableRule {
        TableRule {
            name: name.into(),
            columns_rules,
            ..TableRule::default()
        }
    }

    /// A column rule that only names the column (fill in the rest with `..`).
    pub fn column_rule(name: &str) -> ColumnRule {
        ColumnRule {
            name: name.into(),
            ..ColumnRule::default()
        }
    }

    /// The context of job `j` over a PostgreSQL source (or not), with these per-run values.
    pub fn ctx(postgres_source: bool, sql_values: &[((&str, &str), &str)]) -> Context<'static> {
        Context {
            job: "j",
            source_names: Vec::new(),
            sql_values: sql_values
                .iter()
                .map(|((e, t), v)| ((e.to_string(), t.to_string()), v.to_string()))
                .collect::<HashMap<_, _>>(),
            postgres_source,
        }
    }

    /// Errors about the rule of table `public.t`.
    pub fn blame() -> super::Blame<'static> {
        super::Blame {
            table: "public.t".into(),
            err: &err,
        }
    }

    /// The error wrapper `apply` uses, for job file `job.toml`.
    pub fn err(what: String) -> Error {
        Error::Config(format!("job.toml: {what}"))
    }

    /// The message of a configuration error.
    pub fn message<T: std::fmt::Debug>(r: crate::error::Result<T>) -> String {
        match r {
            Err(Error::Config(m)) => m,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{blame, col, column_rule, ctx, message, rule, table};
    use super::*;
    use crate::catalog::{Constraint, View};

    fn t() -> Table {
        let mut total = col("total", "numeric");
        total.generated = Some("(a + 1)".into());
        table(
            "t",
            vec![
                col("id", "integer"),
                col("a", "integer"),
                total,
                col("b", "text"),
            ],
            &["id"],
        )
    }

    #[test]
    fn check_rule_names_unknown_and_generated_columns_and_keeps_the_key() {
        let mut r = rule("t", vec![column_rule("nope")]);
        assert_eq!(
            message(check_rule(&t(), &r, &blame())),
            "job.toml: [[table]] \"public.t\", column \"nope\": no such column in the source \
             table (columns: id, a, b); fix the name"
        );
        r.columns_rules = vec![column_rule("total")];
        assert!(message(check_rule(&t(), &r, &blame()))
            .contains("column \"total\": a generated column is computed on the target"));
        r.columns_rules.clear();
        r.exclude_columns = vec!["id".into()];
        assert!(message(check_rule(&t(), &r, &blame()))
            .contains("column \"id\": the column is the table's key"));
        r.exclude_columns.clear();
        r.columns = Some(vec!["a".into()]);
        assert!(message(check_rule(&t(), &r, &blame())).contains("column \"id\""));
        r.columns = Some(vec!["id".into(), "b".into()]);
        assert_eq!(
            check_rule(&t(), &r, &blame()).expect("a valid rule"),
            vec!["id".to_string()]
        );
        assert!(r.keeps("b") && !r.keeps("a"));
    }

    #[test]
    fn build_transform_is_none_when_tuples_pass_as_read() {
        let cols = vec![col("id", "integer"), col("a", "integer")];
        let key = vec!["id".to_string()];
        let pass = || vec![OutColumn::Pass(0), OutColumn::Pass(1)];
        // Nothing changed, or only renamed or a trailing column left out: the same tuple.
        assert!(build_transform(&cols, &key, pass(), false, false).is_none());
        assert!(build_transform(&cols, &key, pass(), false, true).is_none());
        // A column left out in the middle moves the others.
        let t = build_transform(&cols, &key, vec![OutColumn::Pass(1)], false, true)
            .expect("a reshaped tuple");
        assert_eq!((t.inputs, t.columns.len()), (2, 1));
        assert_eq!(t.key, vec![(0, "id".to_string(), "integer".to_string())]);
        // A value change always needs the transform.
        assert!(build_transform(&cols, &key, pass(), true, false).is_some());
    }

    #[test]
    fn target_names_must_stay_unique() {
        let tab = t();
        let mut cols = vec![col("id", "integer"), col("b", "text")];
        assert!(check_unique_names(&tab, &cols, &blame()).is_ok());
        cols.push(col("total", "text"));
        assert_eq!(
            message(check_unique_names(&tab, &cols, &blame())),
            "job.toml: [[table]] \"public.t\": two target columns are named \"total\"; change \
             a rename or an added column"
        );
    }

    fn catalog() -> Catalog {
        let mut orders = table(
            "orders",
            vec![col("id", "integer"), col("cust", "integer")],
            &["id"],
        );
        orders.foreign_keys.push(Constraint {
            name: "orders_cust_fkey".into(),
            definition: "FOREIGN KEY (cust) REFERENCES public.customers(id)".into(),
            references: Some(QualifiedName::new("public", "customers")),
            ..Constraint::default()
        });
        let customers = table(
            "customers",
            vec![col("id", "integer"), col("name", "text")],
            &["id"],
        );
        Catalog {
            tables: vec![orders, customers],
            views: vec![View {
                name: QualifiedName::new("public", "v"),
                depends_on: vec![QualifiedName::new("public", "customers")],
                ..View::default()
            }],
            ..Catalog::default()
        }
    }

    fn rules(tables: Vec<TableRule>) -> Rules {
        Rules {
            tables,
            casts: Vec::new(),
            file: "job.toml".into(),
        }
    }

    fn names_ctx(catalog: &Catalog) -> Context<'static> {
        Context {
            source_names: catalog.tables.iter().map(|t| t.name.clone()).collect(),
            ..ctx(true, &[])
        }
    }

    #[test]
    fn apply_renames_a_table_and_follows_it_in_foreign_keys_and_views() {
        let mut cat = catalog();
        let ctx = names_ctx(&cat);
        let mut r = rule(
            "customers",
            vec![ColumnRule {
                rename: Some("client_id".into()),
                ..column_rule("id")
            }],
        );
        r.target = Some("crm.clients".into());
        let maps = apply(&rules(vec![r]), &mut cat, &ctx).expect("valid rules");
        assert!(maps[0].is_none());
        let m = maps[1].as_ref().expect("customers is mapped");
        assert_eq!(m.read.name, QualifiedName::new("public", "customers"));
        assert!(m.transform.is_none(), "a pure rename keeps the tuple");
        assert_eq!(cat.tables[1].name, QualifiedName::new("crm", "clients"));
        let fk = &cat.tables[0].foreign_keys[0];
        assert_eq!(
            fk.definition,
            "FOREIGN KEY (cust) REFERENCES crm.clients(client_id)"
        );
        assert_eq!(fk.references, Some(QualifiedName::new("crm", "clients")));
        assert!(
            cat.views.is_empty(),
            "a view over a renamed table is left out"
        );
    }

    #[test]
    fn apply_refuses_rules_that_name_no_table_one_table_twice_or_a_clash() {
        let mut cat = catalog();
        let ctx = names_ctx(&cat);
        assert!(message(apply(&rules(vec![rule("nope", vec![])]), &mut cat, &ctx))
            .contains("[[table]] \"nope\": no such table among the selected source tables (public.orders, public.customers)"));
        let twice = rules(vec![rule("orders", vec![]), rule("public.orders", vec![])]);
        assert!(message(apply(&twice, &mut cat, &ctx)).contains("appears twice"));
        let mut clash = rule("orders", vec![]);
        clash.target = Some("customers".into());
        assert!(message(apply(&rules(vec![clash]), &mut cat, &ctx))
            .contains("two tables would have the same target name"));
    }

    #[test]
    fn describe_lists_each_target_column() {
        let mut cat = catalog();
        let ctx = names_ctx(&cat);
        let r = rule(
            "orders",
            vec![ColumnRule {
                to: Some("bigint".into()),
                ..column_rule("cust")
            }],
        );
        let maps = apply(&rules(vec![r]), &mut cat, &ctx).expect("valid rules");
        assert_eq!(
            describe(&cat, &maps),
            "public.orders:\n  id integer -> id integer: passthrough\n  cust integer -> cust \
             bigint: cast integer -> bigint; on error: reject row\npublic.customers: every \
             column copied as it is\n"
        );
    }
}
