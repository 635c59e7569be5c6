//! The verify report as text for the terminal: a line per table, then its notes, the
//! columns left out, and each mismatch with its repair and drilled-down keys; the verdict last.
//!
//! Invariant: it renders the report and nothing else, so `--json` and this text say
//! the same.

use super::VerifyReport;

/// The report as a table per table, for the terminal.
pub fn render(report: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>10} {:>12} {:>12} {:>9} {:>10}",
        "table", "method", "source rows", "target rows", "chunks", "mismatched"
    );
    for t in &report.tables {
        let _ = writeln!(
            out,
            "{:<40} {:>10} {:>12} {:>12} {:>9} {:>10}",
            t.table,
            t.method,
            t.source_rows,
            t.target_rows,
            format!("{}/{}", t.matched, t.checked),
            t.mismatches.len()
        );
        for note in &t.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        if !t.not_compared.is_empty() {
            let _ = writeln!(
                out,
                "  not compared: {} (default_sql/value_sql values the job's state does not record; give verify the copy's --job)",
                t.not_compared.join(", ")
            );
        }
        for m in &t.mismatches {
            let _ = writeln!(
                out,
                "  mismatch in {}: source {} rows, target {} rows",
                m.range, m.source_rows, m.target_rows
            );
            match &m.repaired {
                Some(r) if r.committed => {
                    let _ = writeln!(
                        out,
                        "    repaired: {} rows deleted, {} copied; now equal",
                        r.deleted, r.copied
                    );
                }
                Some(r) => {
                    let why = match (&r.error, r.matches) {
                        (Some(e), _) => e.clone(),
                        (None, false) => {
                            "rolled back: the range still differed after re-copying".into()
                        }
                        (None, true) => {
                            "rolled back: another range of the table still differed after \
                             re-copying"
                                .into()
                        }
                    };
                    let _ = writeln!(out, "    not repaired, the target is unchanged: {why}");
                }
                None => {}
            }
            for (what, keys) in [
                ("missing on the target", &m.missing),
                ("extra on the target", &m.extra),
                ("different", &m.different),
            ] {
                if !keys.is_empty() {
                    let _ = writeln!(out, "    {what}: {}", keys.join("; "));
                }
            }
        }
    }
    let sample = report
        .sample_pct
        .map(|p| format!(" (sample: {p}% of chunks)"))
        .unwrap_or_default();
    let repaired = report
        .tables
        .iter()
        .flat_map(|t| &t.mismatches)
        .filter(|m| m.repaired.as_ref().is_some_and(|r| r.committed))
        .count();
    let verdict = match (report.equal, repaired) {
        (true, 0) => "source and target are equal".to_string(),
        (true, n) => format!("source and target are equal after repairing {n} range(s)"),
        (false, _) => "source and target DIFFER".to_string(),
    };
    let _ = write!(out, "{verdict} in {:.1} s{sample}", report.seconds);
    out
}
