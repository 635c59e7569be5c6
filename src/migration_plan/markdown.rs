//! The plan as a Markdown document, in the six sections migration teams expect, one
//! function per section.
//!
//! Invariants: it renders what the model holds and computes or reads nothing else; table
//! cells hold no line break and escape their pipes; an SQL block's fence is longer than any
//! run of backticks in it, so a function body cannot end it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::model::{DataChanges, Execution, MigrationPlan, SchemaChanges, Statement};
use super::preflight::bytes;

/// One row of a Markdown table: `| a | b | c |`.
fn row(o: &mut String, cells: &[String]) {
    let _ = writeln!(o, "| {} |", cells.join(" | "));
}

/// A table cell: no line breaks, pipes escaped.
fn cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}

fn code(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("`{}`", s.replace('`', "'"))
    }
}

/// Statements in one SQL block, each after a comment saying what it does.
fn statements(o: &mut String, list: &[Statement]) {
    let body: Vec<String> = list
        .iter()
        .map(|st| format!("-- {}\n{}", st.what, terminated(&st.sql)))
        .collect();
    fence(o, "sql", &body.join("\n"));
}

/// A statement ending in `;`, so the block can be pasted into psql.
fn terminated(sql: &str) -> String {
    let t = sql.trim_end();
    if t.ends_with(';') {
        t.to_string()
    } else {
        format!("{t};")
    }
}

fn secs(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.1} s")
    }
}

fn fence(out: &mut String, lang: &str, body: &str) {
    // A body holding ``` (a function's text) needs a longer fence.
    let mut f = "```".to_string();
    while body.contains(&f) {
        f.push('`');
    }
    let _ = writeln!(out, "{f}{lang}\n{}\n{f}", body.trim_end());
}

/// Renders the whole plan.
pub fn render(p: &MigrationPlan) -> String {
    let mut o = String::new();
    title(&mut o, p);
    overview(&mut o, p);
    schema_changes(&mut o, &p.schema);
    data_changes(&mut o, &p.data);
    strategy(&mut o, p);
    risks_and_checks(&mut o, p);
    execution(&mut o, &p.execution);
    o
}

/// The heading and where the plan comes from.
fn title(o: &mut String, p: &MigrationPlan) {
    let ov = &p.overview;
    let _ = writeln!(
        o,
        "# Migration plan: {} {} to {} {}\n",
        ov.source.product, ov.source.url, ov.target.product, ov.target.url
    );
    let _ = writeln!(
        o,
        "Made by `howdah plan` at {} ({}). Nothing was written to either database.\n",
        p.generated_at, p.format
    );
}

/// Section 1: servers, sizes, largest tables, what is left out or created besides tables.
fn overview(o: &mut String, p: &MigrationPlan) {
    let ov = &p.overview;
    let _ = writeln!(o, "## 1. Overview\n");
    let _ = writeln!(o, "| | source | target |\n| --- | --- | --- |");
    let _ = writeln!(
        o,
        "| product | {} | {} |",
        ov.source.product, ov.target.product
    );
    let _ = writeln!(
        o,
        "| version | {} | {} |",
        cell(&ov.source.version),
        cell(&ov.target.version)
    );
    let _ = writeln!(
        o,
        "| URL | {} | {} |\n",
        code(&ov.source.url),
        code(&ov.target.url)
    );
    let _ = writeln!(
        o,
        "- **Tables:** {} selected, about {} rows (estimated)",
        ov.table_count, ov.estimated_rows
    );
    let _ = writeln!(
        o,
        "- **Data size:** {} of tables + {} of indexes = {} ({} + {} = {} bytes)",
        bytes(ov.table_bytes),
        bytes(ov.index_bytes),
        bytes(ov.total_bytes),
        ov.table_bytes,
        ov.index_bytes,
        ov.total_bytes
    );
    let _ = writeln!(o, "- **Sizes from:** {}", ov.size_method);
    if !ov.largest_tables.is_empty() {
        let _ = writeln!(o, "\nLargest tables:\n\n| table | rows (est.) | table | indexes |\n| --- | ---: | ---: | ---: |");
        for name in &ov.largest_tables {
            if let Some(t) = p.tables.iter().find(|t| &t.source == name) {
                row(
                    o,
                    &[
                        cell(&t.source),
                        t.estimated_rows.to_string(),
                        bytes(t.table_bytes),
                        bytes(t.index_bytes),
                    ],
                );
            }
        }
    }
    let _ = writeln!(o, "\n### Out of scope: not migrated\n");
    if ov.out_of_scope.is_empty() {
        let _ = writeln!(o, "Nothing found.");
    } else {
        let _ = writeln!(o, "| kind | name | note |\n| --- | --- | --- |");
        for x in &ov.out_of_scope {
            row(
                o,
                &[
                    cell(&x.kind),
                    cell(&x.name),
                    cell(x.note.as_deref().unwrap_or("not migrated")),
                ],
            );
        }
    }
    let _ = writeln!(o, "\n### Created on the target besides tables\n");
    if ov.also_created.is_empty() {
        let _ = writeln!(o, "Nothing.");
    } else {
        let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for x in &ov.also_created {
            by_kind.entry(&x.kind).or_default().push(&x.name);
        }
        for (kind, names) in by_kind {
            let _ = writeln!(o, "- **{kind}** ({}): {}", names.len(), names.join(", "));
        }
    }
}

/// Section 2: every column's type mapping, enums, defaults, sequences, notes and the DDL.
fn schema_changes(o: &mut String, s: &SchemaChanges) {
    let _ = writeln!(o, "\n## 2. Schema changes\n");
    let _ = writeln!(o, "Schema mode: `{}`.\n", s.mode);
    let _ = writeln!(o, "### Type mapping of every column\n");
    let _ = writeln!(
        o,
        "| table | source column | source type | target column | target type | how | lossy or risky |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for c in &s.columns {
        row(
            o,
            &[
                cell(&c.table),
                cell(c.source_column.as_deref().unwrap_or("(added)")),
                code(c.source_type.as_deref().unwrap_or("")),
                cell(&c.target_column),
                code(&c.target_type),
                cell(&c.how),
                c.risk
                    .as_deref()
                    .map_or(String::new(), |r| format!("**yes**: {}", cell(r))),
            ],
        );
    }
    if !s.enums.is_empty() {
        let _ = writeln!(o, "\n### Enum types\n");
        let body: Vec<&str> = s.enums.iter().map(|e| e.sql.as_str()).collect();
        fence(o, "sql", &body.join("\n"));
    }
    if !s.defaults.is_empty() {
        let _ = writeln!(
            o,
            "\n### Defaults\n\n| table | column | default |\n| --- | --- | --- |"
        );
        for d in &s.defaults {
            row(o, &[cell(&d.table), cell(&d.column), code(&d.default)]);
        }
    }
    if !s.sequences.is_empty() {
        let _ = writeln!(o, "\n### Sequences and identity columns\n");
        for x in &s.sequences {
            let _ = writeln!(
                o,
                "- {} `{}`: {}",
                x.kind,
                x.name,
                x.note.as_deref().unwrap_or("")
            );
        }
    }
    if !s.notes.is_empty() {
        let _ = writeln!(o, "\n### What the conversion changes or leaves behind\n");
        for n in &s.notes {
            let _ = writeln!(o, "- {n}");
        }
    }
    let _ = writeln!(
        o,
        "\n### DDL before the data ({} statements)\n",
        s.pre_data.len()
    );
    if s.pre_data.is_empty() {
        let _ = writeln!(o, "None: the tables exist (`--schema existing`).");
    } else {
        statements(o, &s.pre_data);
    }
    let _ = writeln!(
        o,
        "\n### Built after the data ({} statements: keys, constraints, indexes and ANALYZE per table as soon as its data is in; then foreign keys, triggers, materialized views)\n",
        s.post_data.len()
    );
    if !s.post_data.is_empty() {
        statements(o, &s.post_data);
    }
}

/// Section 3: column mappings, value policies and what the probes found.
fn data_changes(o: &mut String, d: &DataChanges) {
    let _ = writeln!(o, "\n## 3. Data transformation\n");
    let _ = writeln!(o, "### Column mappings\n");
    if d.mappings.is_empty() {
        let _ = writeln!(
            o,
            "No `[[table]]` or `[[cast]]` rule: every column is copied as section 2 shows it."
        );
    }
    for m in &d.mappings {
        let from = if m.source == m.table {
            String::new()
        } else {
            format!(" (from {})", m.source)
        };
        let _ = writeln!(o, "**{}**{from}", m.table);
        if let Some(f) = &m.filter {
            let _ = writeln!(o, "- where {}", code(f));
        }
        for c in &m.columns {
            let _ = writeln!(
                o,
                "- {} -> {} {}: {}",
                c.source_column
                    .as_deref()
                    .map_or("(added)".to_string(), |n| format!(
                        "{n} {}",
                        c.source_type.as_deref().unwrap_or("")
                    )),
                c.target_column,
                c.target_type,
                c.how
            );
        }
        let _ = writeln!(o);
    }
    if !d.policies.is_empty() {
        let _ = writeln!(o, "\n### Value policies\n");
        for x in &d.policies {
            let _ = writeln!(o, "- {x}");
        }
    }
    let _ = writeln!(o, "\n### Problem values found by the probes\n");
    let _ = writeln!(o, "How: {}.\n", d.probe_method);
    let found: Vec<_> = d
        .probes
        .iter()
        .filter(|x| x.count.is_some_and(|n| n > 0) || x.error.is_some())
        .collect();
    if found.is_empty() {
        let _ = writeln!(o, "No problem value found.");
    } else {
        let _ = writeln!(
            o,
            "| table | column | check | count | rows read | what the copy does |\n| --- | --- | --- | ---: | ---: | --- |"
        );
        for x in found {
            let count = match (x.count, &x.error) {
                (Some(n), _) => n.to_string(),
                (None, Some(e)) => format!("not probed: {}", cell(e)),
                (None, None) => "?".into(),
            };
            let sampled = if x.sampled {
                " (sampled: first rows only)"
            } else {
                ""
            };
            row(
                o,
                &[
                    cell(&x.table),
                    cell(x.column.as_deref().unwrap_or("")),
                    x.check.clone(),
                    count,
                    format!("{}{sampled}", x.rows_examined),
                    cell(&x.consequence),
                ],
            );
        }
    }
    let clean: Vec<_> = d.probes.iter().filter(|x| x.count == Some(0)).collect();
    if !clean.is_empty() {
        let mut by_check: BTreeMap<&str, usize> = BTreeMap::new();
        for x in &clean {
            *by_check.entry(&x.check).or_default() += 1;
        }
        let list: Vec<String> = by_check
            .iter()
            .map(|(k, n)| format!("{k} in {n} column(s)"))
            .collect();
        let _ = writeln!(o, "\nProbed with nothing found: {}.", list.join(", "));
    }
}

/// Section 4: parallelism, chunks per table, throughput, duration and rollback points.
fn strategy(o: &mut String, p: &MigrationPlan) {
    let st = &p.strategy;
    let _ = writeln!(o, "\n## 4. Strategy\n");
    let _ = writeln!(
        o,
        "- **Parallelism:** {} copy lanes (`--jobs`), {} index builders (`--index-jobs`); tables are taken longest copy first, \
         and each table's keys and indexes are built as soon as its data is in",
        st.jobs, st.index_jobs
    );
    let _ = writeln!(
        o,
        "- **Chunks:** {} in all; chunk size {}",
        st.total_chunks,
        st.chunk_rows.map_or_else(
            || "automatic (a table is split only when it is bigger than one lane's share of the run)".to_string(),
            |n| format!("about {n} rows")
        )
    );
    let _ = writeln!(
        o,
        "\n| source table | target table | rows (est.) | table | indexes | key | chunking | chunks | on the target now |\n| --- | --- | ---: | ---: | ---: | --- | --- | ---: | --- |"
    );
    for t in &p.tables {
        let estimated = if t.chunks_estimated { " (est.)" } else { "" };
        row(
            o,
            &[
                cell(&t.source),
                cell(&t.target),
                t.estimated_rows.to_string(),
                bytes(t.table_bytes),
                bytes(t.index_bytes),
                t.key
                    .as_ref()
                    .map_or("**none**".to_string(), |k| cell(&k.join(", "))),
                t.chunking.clone(),
                format!("{}{estimated}", t.chunks),
                t.on_target.replace('_', " "),
            ],
        );
    }
    match &st.throughput {
        Some(tp) => {
            let _ = writeln!(
                o,
                "\n- **Throughput probe:** {} rows, {} of tuples in {:.2} s from {} ({:.0} rows/s, {}/s of source storage; stopped by {}). {}.",
                tp.rows,
                bytes(tp.bytes as i64),
                tp.seconds,
                tp.table,
                tp.rows_per_sec,
                bytes(tp.storage_bytes_per_sec as i64),
                tp.stopped_by,
                tp.method
            );
        }
        None => {
            let _ = writeln!(
                o,
                "\n- **Throughput probe:** nothing could be read (empty tables?)."
            );
        }
    }
    match &st.estimate {
        Some(e) => {
            let _ = writeln!(
                o,
                "- **Estimated duration:** about {} ({} of data, {} of index and constraint builds). {}.",
                secs(e.total_seconds),
                secs(e.data_seconds),
                secs(e.post_data_seconds),
                e.method
            );
        }
        None => {
            let _ = writeln!(
                o,
                "- **Estimated duration:** unknown (no throughput figure)."
            );
        }
    }
    let _ = writeln!(
        o,
        "\n### Rollback points\n\n| after | left on the target |\n| --- | --- |"
    );
    for r in &st.rollback_points {
        row(o, &[r.after.clone(), cell(&r.left_on_target)]);
    }
    let mut shown: Vec<&str> = Vec::new();
    for r in &st.rollback_points {
        if shown.contains(&r.undo.as_str()) {
            continue;
        }
        let after: Vec<&str> = st
            .rollback_points
            .iter()
            .filter(|x| x.undo == r.undo)
            .map(|x| x.after.as_str())
            .collect();
        let _ = writeln!(o, "\nUndo after {}:\n", after.join(", "));
        fence(o, "sql", &r.undo);
        shown.push(&r.undo);
    }
}

/// Section 5: risks, most severe first, and the pre-flight checks.
fn risks_and_checks(o: &mut String, p: &MigrationPlan) {
    let _ = writeln!(o, "\n## 5. Risks and pre-flight checks\n");
    if p.risks.is_empty() {
        let _ = writeln!(o, "No risk found.");
    } else {
        let _ = writeln!(
            o,
            "| severity | risk | subject | detail |\n| --- | --- | --- | --- |"
        );
        for r in &p.risks {
            let sev = if r.severity == "blocker" {
                "**blocker**".to_string()
            } else {
                r.severity.clone()
            };
            row(o, &[sev, r.kind.clone(), cell(&r.subject), cell(&r.detail)]);
        }
    }
    let _ = writeln!(o, "\n| check | status | detail |\n| --- | --- | --- |");
    for c in &p.checks {
        row(o, &[c.name.clone(), c.status.clone(), cell(&c.detail)]);
    }
}

/// Section 6: the run book, monitoring, verification and the rollback SQL.
fn execution(o: &mut String, e: &Execution) {
    let _ = writeln!(o, "\n## 6. Execution, verification and monitoring\n");
    if let Some(n) = &e.password_note {
        let _ = writeln!(o, "Note: {n}.\n");
    }
    for (i, step) in e.steps.iter().enumerate() {
        let _ = writeln!(o, "{}. **{}**", i + 1, step.title);
        if let Some(c) = &step.command {
            let _ = writeln!(o, "\n   ```sh\n   {c}\n   ```\n");
        }
        let _ = writeln!(o, "   {}\n", step.note);
    }
    let _ = writeln!(
        o,
        "- **Metrics endpoint:** {} (Prometheus text format)",
        e.metrics_url
    );
    let _ = writeln!(o, "- **Dashboard:** {}", e.dashboard);
    let _ = writeln!(o, "- **Verify:** `{}`", e.verify_command);
    let _ = writeln!(
        o,
        "- **Rollback SQL** (drops what the copy created; see section 4 for each phase):\n"
    );
    fence(o, "sql", &e.rollback_sql);
}
