//! The Markdown report of `check-queries`: one table line per query, then the slower
//! queries' plans and findings, the differences, the errors, what was skipped and the
//! planner settings that differ. (`--json` prints the [`Report`] itself.)

use std::fmt::Write as _;

use super::report::{one_line, Report, Status};

/// The report as Markdown.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Query check\n");
    let _ = writeln!(o, "- source: `{}`", r.source);
    let _ = writeln!(o, "- target: `{}`", r.target);
    let _ = writeln!(
        o,
        "- {} timed run(s) per query and side after a warm-up; slower means a target median over {}x the source's and at least {} ms more\n",
        r.runs, r.max_slowdown, r.min_slowdown_ms
    );
    let _ = writeln!(
        o,
        "| query | status | rows (source / target) | source ms | target ms | ratio |"
    );
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- |");
    for q in &r.queries {
        let rows = match (&q.source, &q.target) {
            (Some(s), Some(t)) => format!("{} / {}", s.rows, t.rows),
            _ => "-".into(),
        };
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
        let ratio = q
            .ratio
            .map_or_else(|| "-".to_string(), |v| format!("{v:.2}x"));
        let _ = writeln!(
            o,
            "| {} | {} | {rows} | {} | {} | {ratio} |",
            cell(&q.name),
            status(q.status),
            ms(q.source_ms),
            ms(q.target_ms)
        );
    }
    let slower: Vec<_> = r.queries.iter().filter(|q| q.slower).collect();
    if !slower.is_empty() {
        let _ = writeln!(o, "\n## Slower on the target\n");
        for q in slower {
            let _ = writeln!(
                o,
                "### {}\n\n{:.3} ms on the source, {:.3} ms on the target ({:.2}x).\n",
                q.name,
                q.source_ms.unwrap_or(0.0),
                q.target_ms.unwrap_or(0.0),
                q.ratio.unwrap_or(0.0)
            );
            if let Some(p) = &q.plan {
                if let Some(s) = &p.source_shape {
                    let _ = writeln!(o, "- source plan: `{s}`");
                }
                if let Some(t) = &p.target_shape {
                    let _ = writeln!(o, "- target plan: `{t}`");
                }
                for f in &p.findings {
                    let _ = writeln!(o, "- {f}");
                }
            }
            let _ = writeln!(o, "\n```sql\n{}\n```", q.target_sql.trim());
        }
    }
    let different: Vec<_> = r
        .queries
        .iter()
        .filter(|q| matches!(q.status, Status::Different | Status::OtherOrder))
        .collect();
    if !different.is_empty() {
        let _ = writeln!(o, "\n## Different answers\n");
        for q in different {
            let (Some(s), Some(t)) = (&q.source, &q.target) else {
                continue;
            };
            let what = if q.status == Status::OtherOrder {
                "the same rows in another order (ties in the ORDER BY sort either way: order by a unique column too)".to_string()
            } else {
                format!(
                    "source {} row(s) x {} column(s), checksum {}; target {} row(s) x {} column(s), checksum {}",
                    s.rows, s.columns, s.checksum, t.rows, t.columns, t.checksum
                )
            };
            let _ = writeln!(o, "- **{}**: {what}", q.name);
            if let Some(d) = &q.rows_differ {
                for (side, rows, count) in [
                    ("source", &d.only_on_source, d.source_only_count),
                    ("target", &d.only_on_target, d.target_only_count),
                ] {
                    if count > 0 {
                        let _ = writeln!(
                            o,
                            "  - {count} row(s) only on the {side}: {}{}",
                            rows.iter().map(|r| cell(r)).collect::<Vec<_>>().join("; "),
                            if count > rows.len() { "; ..." } else { "" }
                        );
                    }
                }
            }
        }
    }
    let errors: Vec<_> = r
        .queries
        .iter()
        .filter(|q| q.status == Status::Error)
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(o, "\n## Errors\n");
        for q in errors {
            let _ = writeln!(o, "- **{}**: {}", q.name, q.error.as_deref().unwrap_or("?"));
        }
    }
    let notes: Vec<_> = r.queries.iter().filter(|q| !q.notes.is_empty()).collect();
    if !notes.is_empty() {
        let _ = writeln!(o, "\n## Notes\n");
        for q in notes {
            let _ = writeln!(o, "- **{}**: {}", q.name, q.notes.join("; "));
        }
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(o, "\n## Skipped\n");
        for s in &r.skipped {
            let _ = writeln!(o, "- `{}`: {}", one_line(&s.query, 160), s.reason);
        }
    }
    if !r.settings_differ.is_empty() {
        let _ = writeln!(o, "\n## Planner settings that differ\n");
        for s in &r.settings_differ {
            let _ = writeln!(o, "- {s}");
        }
    }
    let _ = writeln!(
        o,
        "\n**{}**: {} quer{} checked, {} with a different answer, {} slower, {} failed.",
        if r.ok { "OK" } else { "NOT OK" },
        r.queries.len(),
        if r.queries.len() == 1 { "y" } else { "ies" },
        r.different,
        r.slower,
        r.errors
    );
    o
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Ok => "same, not slower",
        Status::Different => "**different answer**",
        Status::OtherOrder => "**other order**",
        Status::Slower => "**slower**",
        Status::Error => "**error**",
        Status::Unstable => "unstable answer",
    }
}

/// A table cell: one line, pipes escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
