//! The target columns of one mapped table: per source column read, how it is read
//! ([`ReadAs`]) and made ([`OutColumn`], with a [`ValueRule`] for casts and clean-ups), then
//! the `[[table.add_column]]` constants.
//!
//! Invariants: the planned vectors are in target column order, and `read_as` has one entry
//! per column read; a key column is never cast or cleaned (chunk bounds and resume offsets are
//! its values); a value the job file gives (default, map value, added value) is encoded here,
//! so a bad one is an error before anything is written, never a rejected row.

use std::collections::HashMap;

use super::{ColumnLine, ColumnRule, Context, ReadAs, TableRule, TypeRule};
use crate::catalog::Column;
use crate::error::{Error, Result};
use crate::transform::cast::{Cast, Kind, TargetType, SUPPORTED};
use crate::transform::{OnError, OutColumn, ValueRule};

/// Names a place in one table's rule in an error message (the job file is added by `err`).
pub(super) struct Blame<'a> {
    /// The source table, as the messages name it.
    pub table: String,
    /// Wraps a message into the configuration error that names the job file.
    pub err: &'a dyn Fn(String) -> Error,
}

impl Blame<'_> {
    /// An error about one column of the table's rule.
    pub fn column(&self, column: &str, what: impl std::fmt::Display) -> Error {
        (self.err)(format!(
            "[[table]] \"{}\", column \"{column}\": {what}",
            self.table
        ))
    }

    /// An error about the table's rule as a whole.
    pub fn table(&self, what: impl std::fmt::Display) -> Error {
        (self.err)(format!("[[table]] \"{}\": {what}", self.table))
    }
}

/// The target columns of one table, in target order, and what making them needs.
#[derive(Debug, Default)]
pub(super) struct Planned {
    /// Per column read: how the source delivers it.
    pub read_as: Vec<ReadAs>,
    /// Per target column: how it is made from the tuple read.
    pub outs: Vec<OutColumn>,
    /// Per target column: one line for `--dry-run` and the plan.
    pub lines: Vec<ColumnLine>,
    /// The target columns (generated ones not included).
    pub target_cols: Vec<Column>,
    /// Source column name to target column name, for the renamed ones.
    pub renames: HashMap<String, String>,
    /// Target columns that take a per-run SQL value, with its (expression, type).
    pub per_run: Vec<(String, (String, String))>,
    /// Some value changes on the way (a cast, a clean-up, a default or an added column).
    pub any_change: bool,
}

/// Plans the columns read (`read_cols`, in read order) under the table's rule and the
/// `[[cast]]` rules (the last matching one wins; a column rule wins over both).
pub(super) fn plan_columns(
    read_cols: &[Column],
    rule: &TableRule,
    casts: &[TypeRule],
    key_names: &[String],
    ctx: &Context<'_>,
    blame: &Blame<'_>,
) -> Result<Planned> {
    let mut p = Planned {
        read_as: vec![ReadAs::Value; read_cols.len()],
        ..Planned::default()
    };
    for (pos, col) in read_cols.iter().enumerate() {
        let rules = ColumnRules {
            column: rule.columns_rules.iter().find(|r| r.name == col.name),
            typed: casts
                .iter()
                .rev()
                .find(|c| super::type_matches(&c.from, &col.type_sql)),
        };
        let new_name = rules
            .column
            .and_then(|r| r.rename.clone())
            .unwrap_or_else(|| col.name.clone());
        if new_name != col.name {
            p.renames.insert(col.name.clone(), new_name.clone());
        }
        if !rules.column.is_some_and(changes_values) && rules.to_sql().is_none() {
            p.outs.push(OutColumn::Pass(pos));
            p.lines.push(ColumnLine {
                source: Some((col.name.clone(), col.type_sql.clone())),
                target: new_name.clone(),
                target_type: col.type_sql.clone(),
                how: "passthrough".into(),
            });
            p.target_cols.push(Column {
                name: new_name,
                ..col.clone()
            });
            continue;
        }
        if key_names.contains(&col.name) {
            return Err(blame.column(
                &col.name,
                "the column is the table's key (chunks and resume offsets are its values); \
                 it can be renamed but not cast or cleaned",
            ));
        }
        let v = plan_value(pos, col, new_name, rules, ctx, blame)?;
        p.read_as[pos] = v.read_as;
        p.any_change = true;
        p.outs.push(v.out);
        p.lines.push(v.line);
        p.target_cols.push(v.target);
        p.per_run.extend(v.per_run);
    }
    Ok(p)
}

/// The rules that name one column: its `[[table.column]]` rule and the last `[[cast]]` rule
/// for its type (the column rule wins where both say something).
#[derive(Clone, Copy)]
struct ColumnRules<'a> {
    column: Option<&'a ColumnRule>,
    typed: Option<&'a TypeRule>,
}

impl ColumnRules<'_> {
    /// The target type asked for, if any.
    fn to_sql(self) -> Option<String> {
        self.column
            .and_then(|r| r.to.clone())
            .or_else(|| self.typed.map(|t| t.to.clone()))
    }

    /// The zone naive date-times are in, as the job file names it.
    fn zone(self) -> Option<String> {
        self.column
            .and_then(|r| r.zone.clone())
            .or_else(|| self.typed.and_then(|t| t.zone.clone()))
    }

    /// What a failed cast does.
    fn on_error(self) -> OnError {
        self.column
            .and_then(|r| r.on_error)
            .or_else(|| self.typed.and_then(|t| t.on_error))
            .unwrap_or_default()
    }
}

/// Whether a column rule changes values (a rename alone does not).
fn changes_values(r: &ColumnRule) -> bool {
    r.default.is_some()
        || r.default_sql.is_some()
        || r.trim
        || r.empty_as_null
        || r.strip_nul
        || r.truncate
        || !r.map.is_empty()
        || !r.map_null.is_empty()
        || r.on_error.is_some()
}

/// Whether a column rule works on the value's text (so it cannot keep its wire bytes).
fn works_on_text(r: &ColumnRule) -> bool {
    r.trim
        || r.empty_as_null
        || r.strip_nul
        || r.truncate
        || !r.map.is_empty()
        || !r.map_null.is_empty()
}

/// One source column whose value is cast or cleaned on the way.
struct PlannedValue {
    read_as: ReadAs,
    out: OutColumn,
    line: ColumnLine,
    target: Column,
    per_run: Option<(String, (String, String))>,
}

/// The cast a column's value goes through, resolved from its rules.
struct Resolved {
    /// The cast from the text (or wire value) read.
    cast: Cast,
    /// The target type as the job file writes it (the source's own type when only cleaned).
    to_text: String,
    /// The zone naive date-times are in, as named in the job file.
    zone_name: Option<String>,
    /// The SQL suffix that renders the source value as text.
    render: &'static str,
}

/// Plans the column read at `pos`, whose rules change its values, as target column
/// `new_name`.
fn plan_value(
    pos: usize,
    col: &Column,
    new_name: String,
    rules: ColumnRules<'_>,
    ctx: &Context<'_>,
    blame: &Blame<'_>,
) -> Result<PlannedValue> {
    let crule = rules.column;
    let to_sql = rules.to_sql();
    let Resolved {
        cast,
        to_text,
        zone_name,
        render,
    } = resolve_cast(col, rules, to_sql.as_deref(), ctx, blame)?;
    let to = cast.to;
    let on_error = rules.on_error();
    // Values the job file writes are the target's text, whatever the source type.
    let job = JobValues {
        cast: Cast {
            to,
            from: Kind::Text,
            zone: cast.zone.clone(),
            truncate: cast.truncate,
        },
        column: &col.name,
        blame,
    };
    let (default, sql_key) = match column_default(col, crule, &to_text, ctx, &job)? {
        Some(d) => (Some(d.field), d.sql_key),
        None => (None, None),
    };
    check_on_error(col, on_error, default.is_some(), blame)?;
    let map = value_map(crule, &job)?;
    let how = describe_value(
        col,
        crule,
        to_sql.is_some(),
        to,
        zone_name.as_deref(),
        map.len(),
        on_error,
    );
    let same_type = TargetType::parse(&col.type_sql) == Some(to);
    let mut target = Column {
        name: new_name,
        ..col.clone()
    };
    if to.sql() != col.type_sql && !same_type {
        // The source's default expression is of the old type.
        target.default = None;
        target.collation = None;
    }
    target.type_sql = if same_type {
        col.type_sql.clone()
    } else {
        to.sql()
    };
    let per_run = sql_key.map(|key| (target.name.clone(), key));
    let line = ColumnLine {
        source: Some((col.name.clone(), col.type_sql.clone())),
        target: target.name.clone(),
        target_type: target.type_sql.clone(),
        how,
    };
    let text_ops = crule.is_some_and(works_on_text);
    // Values that keep their wire bytes, with no text round trip: a cast that cannot fail
    // runs on a PostgreSQL source (PostgreSQL's own result, by definition), and a column
    // whose type does not change only has its NULLs replaced.
    let wire = if text_ops {
        None
    } else if let Some(sql) = super::safe_cast(&col.type_sql, to).filter(|_| ctx.postgres_source) {
        Some(ReadAs::Cast(sql))
    } else if same_type {
        Some(ReadAs::Value)
    } else {
        None
    };
    if let Some(read_as) = wire {
        let out = match default {
            Some(field) => OutColumn::NullDefault { input: pos, field },
            None => OutColumn::Pass(pos),
        };
        return Ok(PlannedValue {
            read_as,
            out,
            line,
            target,
            per_run,
        });
    }
    // A naive timestamp read in a zone: shifted from its wire bytes by the transform.
    let naive_in_zone = (TargetType::parse(&col.type_sql) == Some(TargetType::Timestamp)
        && to == TargetType::TimestampTz
        && !text_ops)
        .then(|| cast.zone.clone().unwrap_or(jiff::tz::TimeZone::UTC));
    let read_as = if naive_in_zone.is_some() {
        ReadAs::Value
    } else {
        ReadAs::Text(render)
    };
    let out = OutColumn::Value(ValueRule {
        input: pos,
        column: target.name.clone(),
        map_cast: job.cast,
        cast,
        strip_nul: crule.is_some_and(|r| r.strip_nul),
        trim: crule.is_some_and(|r| r.trim),
        empty_as_null: crule.is_some_and(|r| r.empty_as_null),
        map,
        default,
        on_error,
        not_null: col.not_null,
        naive_in_zone,
    });
    Ok(PlannedValue {
        read_as,
        out,
        line,
        target,
        per_run,
    })
}

/// Encodes the values the job file writes for one column (its default, its map values), as
/// the target's text: a bad one is a configuration error that names the column.
struct JobValues<'a> {
    /// The cast from text to the column's target type.
    cast: Cast,
    /// The source column, for errors.
    column: &'a str,
    blame: &'a Blame<'a>,
}

impl JobValues<'_> {
    /// The field for `value`; `what` names it in an error ("default", "map value for ...").
    fn encode(&self, value: &str, what: &str) -> Result<Vec<u8>> {
        let mut f = Vec::new();
        self.cast.put(&mut f, value).map_err(|e| {
            self.blame.column(
                self.column,
                format!(
                    "{what} \"{value}\" is not a valid {}: {e}",
                    self.cast.to.sql()
                ),
            )
        })?;
        Ok(f)
    }
}

/// The value that replaces a column's NULLs.
struct NullValue {
    /// The encoded field.
    field: Vec<u8>,
    /// For `default_sql`: its (expression, type) key among the per-run values.
    sql_key: Option<(String, String)>,
}

/// The value that replaces NULLs (`default`, or the per-run value of `default_sql`), if the
/// column rule gives one.
fn column_default(
    col: &Column,
    crule: Option<&ColumnRule>,
    to_text: &str,
    ctx: &Context<'_>,
    job: &JobValues<'_>,
) -> Result<Option<NullValue>> {
    match crule {
        Some(ColumnRule {
            default: Some(d), ..
        }) => Ok(Some(NullValue {
            field: job.encode(&d.text().replace("${job}", ctx.job), "default")?,
            sql_key: None,
        })),
        Some(ColumnRule {
            default_sql: Some(sql),
            ..
        }) => {
            let (key, v) = [
                (sql.clone(), to_text.to_string()),
                (sql.clone(), col.type_sql.clone()),
            ]
            .into_iter()
            .find_map(|k| ctx.sql_values.get(&k).map(|v| (k, v)))
            .ok_or_else(|| {
                job.blame.column(
                    &col.name,
                    format!("default_sql \"{sql}\" was not evaluated"),
                )
            })?;
            Ok(Some(NullValue {
                field: job.encode(v, "default_sql value")?,
                sql_key: Some(key),
            }))
        }
        _ => Ok(None),
    }
}

/// Refuses an `on_error` that would load NULL into a NOT NULL column.
fn check_on_error(
    col: &Column,
    on_error: OnError,
    has_default: bool,
    blame: &Blame<'_>,
) -> Result<()> {
    if on_error == OnError::Default && !has_default && col.not_null {
        return Err(blame.column(
            &col.name,
            "on_error = \"default\" but the column has no default and is NOT NULL; \
             add default = ... or use on_error = \"reject\"",
        ));
    }
    if on_error == OnError::Null && col.not_null {
        return Err(blame.column(
            &col.name,
            "on_error = \"null\" but the column is NOT NULL on the target; use \
             on_error = \"reject\" or \"default\" with a default",
        ));
    }
    Ok(())
}

/// The column rule's value map (`map`, then `map_null`), each target text checked.
fn value_map(
    crule: Option<&ColumnRule>,
    job: &JobValues<'_>,
) -> Result<HashMap<String, Option<String>>> {
    let mut map = HashMap::new();
    if let Some(r) = crule {
        for (k, v) in &r.map {
            let t = v.text();
            job.encode(&t, &format!("map value for \"{k}\""))?;
            map.insert(k.clone(), Some(t));
        }
        for k in &r.map_null {
            map.insert(k.clone(), None);
        }
    }
    Ok(map)
}

/// The cast of a changed column: its target type (`to_sql`, else the source's own type when
/// only cleaned), the source family, the zone and how the source renders it as text.
fn resolve_cast(
    col: &Column,
    rules: ColumnRules<'_>,
    to_sql: Option<&str>,
    ctx: &Context<'_>,
    blame: &Blame<'_>,
) -> Result<Resolved> {
    let to_text = to_sql.map_or_else(|| col.type_sql.clone(), str::to_string);
    let to = TargetType::parse(&to_text).ok_or_else(|| {
        blame.column(
            &col.name,
            format!(
                "howdah cannot {} \"{to_text}\"; supported types: {SUPPORTED}",
                if to_sql.is_some() {
                    "cast to"
                } else {
                    "clean values of type"
                }
            ),
        )
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
        return Err(blame.column(
            &col.name,
            format!(
                "there is no cast from {} to {}; cast to text first, or pick another type",
                col.type_sql,
                to.sql()
            ),
        ));
    }
    if col.identity.is_some() && to.kind() != Kind::Integer {
        return Err(blame.column(&col.name, "an identity column must stay an integer type"));
    }
    let zone_name = rules.zone();
    let zone = match &zone_name {
        Some(z) => Some(
            jiff::tz::TimeZone::get(z)
                .map_err(|e| blame.column(&col.name, format!("time zone \"{z}\": {e}")))?,
        ),
        None => None,
    };
    Ok(Resolved {
        cast: Cast {
            to,
            from,
            zone,
            truncate: rules.column.is_some_and(|r| r.truncate),
        },
        to_text,
        zone_name,
        render,
    })
}

/// What happens to a changed column's values, for its [`ColumnLine`]
/// ("cast integer -> bigint; trim; on error: reject row").
fn describe_value(
    col: &Column,
    crule: Option<&ColumnRule>,
    cast_asked: bool,
    to: TargetType,
    zone_name: Option<&str>,
    mapped: usize,
    on_error: OnError,
) -> String {
    let mut how = Vec::new();
    if cast_asked && to.sql() != col.type_sql {
        how.push(format!("cast {} -> {}", col.type_sql, to.sql()));
    }
    if let Some(z) = zone_name {
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
        if mapped > 0 {
            how.push(format!("map of {mapped} values"));
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
    how.join("; ")
}

/// Adds the `[[table.add_column]]` columns after the planned ones: one encoded constant each.
pub(super) fn add_columns(
    p: &mut Planned,
    rule: &TableRule,
    ctx: &Context<'_>,
    blame: &Blame<'_>,
) -> Result<()> {
    for a in &rule.add_column {
        let to = TargetType::parse(&a.to).ok_or_else(|| {
            blame.column(
                &a.name,
                format!(
                    "howdah cannot fill type \"{}\"; supported types: {SUPPORTED}",
                    a.to
                ),
            )
        })?;
        let value = match (&a.value, &a.value_sql) {
            (Some(v), None) => Some(v.text().replace("${job}", ctx.job)),
            (None, Some(sql)) => {
                let key = (sql.clone(), a.to.clone());
                let v = ctx.sql_values.get(&key).cloned().ok_or_else(|| {
                    blame.column(&a.name, format!("value_sql \"{sql}\" was not evaluated"))
                })?;
                p.per_run.push((a.name.clone(), key));
                Some(v)
            }
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(blame.column(&a.name, "give value or value_sql, not both"))
            }
        };
        if a.not_null && value.is_none() {
            return Err(blame.column(
                &a.name,
                "the added column is NOT NULL but has no value; add value = ...",
            ));
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
            .map_err(|e| blame.column(&a.name, format!("value \"{v}\": {e}")))?,
            None => crate::pgcopy::values::put_null(&mut field),
        }
        p.outs.push(OutColumn::Const(field));
        p.lines.push(ColumnLine {
            source: None,
            target: a.name.clone(),
            target_type: to.sql(),
            how: format!(
                "added, {}",
                value.map_or("NULL".to_string(), |v| format!("= {v}"))
            ),
        });
        p.target_cols.push(Column {
            name: a.name.clone(),
            type_sql: to.sql(),
            not_null: a.not_null,
            ..Column::default()
        });
        p.any_change = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{blame, col, column_rule, ctx, message, rule};
    use super::*;
    use crate::mapping::{AddColumn, Scalar};

    fn cast(from: &str, to: &str) -> TypeRule {
        TypeRule {
            from: from.into(),
            to: to.into(),
            zone: None,
            on_error: None,
        }
    }

    fn plan(cols: &[Column], rules: Vec<ColumnRule>, pg: bool) -> Result<Planned> {
        let key = vec!["id".to_string()];
        plan_columns(cols, &rule("t", rules), &[], &key, &ctx(pg, &[]), &blame())
    }

    fn value_rule(out: &OutColumn) -> &ValueRule {
        match out {
            OutColumn::Value(v) => v,
            other => panic!("expected a value rule, got {other:?}"),
        }
    }

    #[test]
    fn untouched_and_renamed_columns_pass_as_read() {
        let cols = [col("id", "integer"), col("a", "text")];
        let p = plan(
            &cols,
            vec![ColumnRule {
                rename: Some("b".into()),
                ..column_rule("a")
            }],
            true,
        )
        .expect("a rename");
        assert_eq!(p.read_as, vec![ReadAs::Value, ReadAs::Value]);
        assert!(matches!(
            p.outs[..],
            [OutColumn::Pass(0), OutColumn::Pass(1)]
        ));
        assert_eq!(p.renames.get("a").map(String::as_str), Some("b"));
        assert_eq!(p.target_cols[1].name, "b");
        assert_eq!(p.lines[1].how, "passthrough");
        assert!(!p.any_change);
    }

    #[test]
    fn a_cast_that_cannot_fail_runs_on_a_postgresql_source() {
        let cols = [col("id", "integer"), col("n", "integer")];
        let widen = || {
            vec![ColumnRule {
                to: Some("bigint".into()),
                ..column_rule("n")
            }]
        };
        let p = plan(&cols, widen(), true).expect("a widening cast");
        assert_eq!(p.read_as[1], ReadAs::Cast("::bigint".into()));
        assert!(matches!(p.outs[1], OutColumn::Pass(1)));
        assert_eq!(p.target_cols[1].type_sql, "bigint");
        assert_eq!(
            p.lines[1].how,
            "cast integer -> bigint; on error: reject row"
        );
        // A MySQL source renders the value as text, cast by the transform.
        let p = plan(&cols, widen(), false).expect("a widening cast");
        assert_eq!(p.read_as[1], ReadAs::Text("::text"));
        let v = value_rule(&p.outs[1]);
        assert_eq!(
            (v.input, v.cast.to, v.cast.from),
            (1, TargetType::Int8, Kind::Integer)
        );
    }

    #[test]
    fn a_real_cast_to_numeric_is_rendered_by_a_postgresql_source() {
        let cols = [col("id", "integer"), col("r", "real")];
        let rules = vec![ColumnRule {
            to: Some("numeric(10,2)".into()),
            ..column_rule("r")
        }];
        let p = plan(&cols, rules.clone(), true).expect("real to numeric");
        assert_eq!(p.read_as[1], ReadAs::Text("::numeric::text"));
        assert_eq!(value_rule(&p.outs[1]).cast.from, Kind::Exact);
        let p = plan(&cols, rules, false).expect("real to numeric");
        assert_eq!(p.read_as[1], ReadAs::Text("::text"));
        assert_eq!(value_rule(&p.outs[1]).cast.from, Kind::Real);
    }

    #[test]
    fn clean_ups_read_text_and_a_default_alone_keeps_wire_bytes() {
        let cols = [col("id", "integer"), col("s", "text"), col("n", "integer")];
        let p = plan(
            &cols,
            vec![
                ColumnRule {
                    trim: true,
                    map: [("Y".to_string(), Scalar::Text("yes".into()))].into(),
                    map_null: vec!["-".into()],
                    ..column_rule("s")
                },
                ColumnRule {
                    default: Some(Scalar::Int(7)),
                    ..column_rule("n")
                },
            ],
            true,
        )
        .expect("clean-ups");
        assert_eq!(p.read_as[1], ReadAs::Text("::text"));
        let v = value_rule(&p.outs[1]);
        assert!(v.trim && !v.strip_nul);
        assert_eq!(v.map.get("Y"), Some(&Some("yes".to_string())));
        assert_eq!(v.map.get("-"), Some(&None));
        assert_eq!(
            p.lines[1].how,
            "trim; map of 2 values; on error: reject row"
        );
        assert_eq!(p.read_as[2], ReadAs::Value);
        let mut seven = Vec::new();
        crate::pgcopy::values::put_i32(&mut seven, 7);
        assert!(
            matches!(&p.outs[2], OutColumn::NullDefault { input: 2, field } if *field == seven)
        );
        assert!(p.any_change);
    }

    #[test]
    fn a_naive_timestamp_in_a_zone_is_shifted_from_its_wire_bytes() {
        let cols = [
            col("id", "integer"),
            col("at", "timestamp without time zone"),
        ];
        let zoned = |zone: &str| {
            vec![ColumnRule {
                to: Some("timestamptz".into()),
                zone: Some(zone.into()),
                ..column_rule("at")
            }]
        };
        let p = plan(&cols, zoned("Europe/Paris"), true).expect("a zone");
        assert_eq!(p.read_as[1], ReadAs::Value);
        assert!(value_rule(&p.outs[1]).naive_in_zone.is_some());
        assert!(p.lines[1].how.contains("in zone Europe/Paris"));
        let bad = plan(&cols, zoned("Mars/Base"), true);
        assert!(message(bad).contains("column \"at\": time zone \"Mars/Base\""));
    }

    #[test]
    fn errors_name_the_column_and_the_fix() {
        let mut id = col("id", "integer");
        id.not_null = true;
        let mut n = col("n", "integer");
        n.not_null = true;
        let cols = [id, n];
        let one = |r: ColumnRule| message(plan(&cols, vec![r], true));
        assert!(one(ColumnRule {
            to: Some("bigint".into()),
            ..column_rule("id")
        })
        .contains("column \"id\": the column is the table's key (chunks and resume offsets"));
        assert!(one(ColumnRule {
            to: Some("point".into()),
            ..column_rule("n")
        })
        .contains("column \"n\": howdah cannot cast to \"point\"; supported types:"));
        assert!(one(ColumnRule {
            to: Some("uuid".into()),
            ..column_rule("n")
        })
        .contains("there is no cast from integer to uuid"));
        assert!(one(ColumnRule {
            on_error: Some(OnError::Null),
            ..column_rule("n")
        })
        .contains("on_error = \"null\" but the column is NOT NULL"));
        assert!(one(ColumnRule {
            on_error: Some(OnError::Default),
            ..column_rule("n")
        })
        .contains("on_error = \"default\" but the column has no default"));
        assert_eq!(
            one(ColumnRule {
                default: Some(Scalar::Text("x".into())),
                ..column_rule("n")
            }),
            "job.toml: [[table]] \"public.t\", column \"n\": default \"x\" is not a valid \
             integer: invalid input syntax for type integer: \"x\""
        );
        assert!(one(ColumnRule {
            default_sql: Some("now()".into()),
            ..column_rule("n")
        })
        .contains("default_sql \"now()\" was not evaluated"));
    }

    #[test]
    fn type_rules_apply_the_last_match_and_column_rules_win() {
        let cols = [
            col("id", "integer"),
            col("a", "integer"),
            col("b", "integer"),
        ];
        let casts = [cast("integer", "numeric"), cast("int4", "bigint")];
        let r = rule(
            "t",
            vec![ColumnRule {
                to: Some("smallint".into()),
                ..column_rule("b")
            }],
        );
        let key = vec!["id".to_string()];
        let p = plan_columns(&cols[1..], &r, &casts, &key, &ctx(false, &[]), &blame())
            .expect("type rules");
        assert_eq!(p.target_cols[0].type_sql, "bigint");
        assert_eq!(p.target_cols[1].type_sql, "smallint");
    }

    #[test]
    fn default_sql_takes_its_per_run_value() {
        let cols = [col("id", "integer"), col("at", "timestamp with time zone")];
        let r = rule(
            "t",
            vec![ColumnRule {
                default_sql: Some("now()".into()),
                rename: Some("loaded".into()),
                ..column_rule("at")
            }],
        );
        let key = vec!["id".to_string()];
        let c = ctx(
            true,
            &[(
                ("now()", "timestamp with time zone"),
                "2026-12-01 10:00:00+00",
            )],
        );
        let p = plan_columns(&cols, &r, &[], &key, &c, &blame()).expect("a per-run value");
        assert_eq!(
            p.per_run,
            vec![(
                "loaded".to_string(),
                ("now()".to_string(), "timestamp with time zone".to_string())
            )]
        );
        assert!(matches!(p.outs[1], OutColumn::NullDefault { input: 1, .. }));
        assert_eq!(
            p.lines[1].how,
            "NULL -> now() (once per job); on error: reject row"
        );
    }

    fn added(name: &str, to: &str, value: Option<&str>, not_null: bool) -> AddColumn {
        AddColumn {
            name: name.into(),
            to: to.into(),
            value: value.map(|v| Scalar::Text(v.into())),
            value_sql: None,
            not_null,
        }
    }

    #[test]
    fn added_columns_are_encoded_constants() {
        let mut p = Planned::default();
        let mut r = rule("t", vec![]);
        r.add_column = vec![
            added("src", "text", Some("job ${job}"), true),
            added("note", "text", None, false),
        ];
        add_columns(&mut p, &r, &ctx(true, &[]), &blame()).expect("added columns");
        let mut job = Vec::new();
        crate::pgcopy::values::put_bytes(&mut job, b"job j");
        assert!(matches!(&p.outs[0], OutColumn::Const(f) if *f == job));
        assert_eq!(p.lines[0].how, "added, = job j");
        assert_eq!(p.lines[1].how, "added, NULL");
        assert!(p.target_cols[0].not_null && p.any_change);

        let mut r = rule("t", vec![]);
        r.add_column = vec![added("n", "integer", None, true)];
        let e = message(add_columns(
            &mut Planned::default(),
            &r,
            &ctx(true, &[]),
            &blame(),
        ));
        assert!(e.contains("column \"n\": the added column is NOT NULL but has no value"));
        r.add_column[0].value = Some(Scalar::Text("x".into()));
        r.add_column[0].value_sql = Some("1".into());
        let e = message(add_columns(
            &mut Planned::default(),
            &r,
            &ctx(true, &[]),
            &blame(),
        ));
        assert!(e.contains("give value or value_sql, not both"));
    }
}
