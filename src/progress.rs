//! What a person at the terminal sees while a copy runs: a progress bar per table being copied
//! and one for the whole job when stderr is a terminal, a log line every 10 s when it is not
//! (a pipe, a file, CI), nothing but warnings with `--quiet`.
//!
//! Rows and bytes are this process's, counted per batch as they are sent to the target; the
//! job line adds what other workers (or earlier runs) committed, read from the state.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::metrics::Live;

/// How progress is shown.
#[derive(Clone)]
pub enum Terminal {
    /// Bars on a terminal (log lines are printed above them).
    Bars(MultiProgress),
    /// A log line every 10 s.
    Lines,
    /// Nothing (`--quiet`).
    Quiet,
}

/// Where a table is in the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TableState {
    /// No chunk started.
    Waiting = 0,
    /// Chunks being copied.
    Copying = 1,
    /// Data in; keys, indexes and ANALYZE being built.
    Building = 2,
    /// Finished.
    Done = 3,
    /// Stuck on failed chunks.
    Failed = 4,
}

impl TableState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => TableState::Copying,
            2 => TableState::Building,
            3 => TableState::Done,
            4 => TableState::Failed,
            _ => TableState::Waiting,
        }
    }
}

struct TableView {
    name: String,
    estimated: u64,
    /// Share of the job's data (source heap and TOAST bytes), for the job's fraction.
    weight: f64,
    live: Arc<Live>,
    /// Rows the whole job has committed for the table, from the last poll of the state.
    committed: AtomicU64,
    /// The same when this run started (`u64::MAX` until the first poll).
    committed_at_start: AtomicU64,
    state: AtomicU8,
    /// Size on the source of the indexes its post-data steps build (0: none, or unknown).
    index_bytes: AtomicU64,
}

impl TableView {
    fn start(&self) -> u64 {
        match self.committed_at_start.load(Ordering::Relaxed) {
            u64::MAX => 0,
            n => n,
        }
    }

    /// Rows as best known: committed by everyone, or sent by this process on top of what was
    /// committed when it started, whichever is more.
    fn rows(&self) -> u64 {
        self.committed
            .load(Ordering::Relaxed)
            .max(self.start() + self.live.rows.load(Ordering::Relaxed))
    }

    fn fraction(&self, rows: u64) -> f64 {
        match self.estimated {
            0 => f64::from(u8::from(rows > 0)),
            e => (rows as f64 / e as f64).min(1.0),
        }
    }
}

/// Progress of a run, shared by the lanes (counts), the event loop (states) and the reporter.
pub struct Progress {
    tables: Vec<TableView>,
    started: Instant,
    /// Source bytes of the tables whose foreign keys are still to be checked (see
    /// [`crate::eta`]).
    check_bytes: AtomicU64,
}

impl Progress {
    /// Progress for `(name, estimated rows, size in bytes)` of every table.
    pub fn new(tables: &[(String, i64, i64)]) -> Arc<Self> {
        let total: f64 = tables.iter().map(|t| t.2.max(0) as f64).sum();
        Arc::new(Progress {
            tables: tables
                .iter()
                .map(|(name, est, size)| TableView {
                    name: name.clone(),
                    estimated: (*est).max(0) as u64,
                    weight: if total > 0.0 {
                        (*size).max(0) as f64 / total
                    } else {
                        1.0 / tables.len().max(1) as f64
                    },
                    live: Arc::new(Live::default()),
                    committed: AtomicU64::new(0),
                    committed_at_start: AtomicU64::new(u64::MAX),
                    state: AtomicU8::new(TableState::Waiting as u8),
                    index_bytes: AtomicU64::new(0),
                })
                .collect(),
            started: Instant::now(),
            check_bytes: AtomicU64::new(0),
        })
    }

    /// The live counts of table `t`, for its writers.
    pub fn live(&self, t: usize) -> Arc<Live> {
        self.tables[t].live.clone()
    }

    /// Moves table `t` to `state`.
    pub fn set_state(&self, t: usize, state: TableState) {
        self.tables[t].state.store(state as u8, Ordering::Relaxed);
    }

    /// Records the size on the source of the indexes table `t`'s post-data steps build.
    pub fn set_index_bytes(&self, t: usize, bytes: i64) {
        self.tables[t]
            .index_bytes
            .store(bytes.max(0) as u64, Ordering::Relaxed);
    }

    /// Records the source bytes of the tables whose foreign keys are still to be checked.
    pub fn set_check_bytes(&self, bytes: i64) {
        self.check_bytes
            .store(bytes.max(0) as u64, Ordering::Relaxed);
    }

    /// Table `t`'s state.
    pub fn state(&self, t: usize) -> TableState {
        TableState::from_u8(self.tables[t].state.load(Ordering::Relaxed))
    }

    /// Records the rows the whole job has committed for table `t` (a poll of the state).
    pub fn set_committed(&self, t: usize, rows: u64) {
        let view = &self.tables[t];
        let _ = view.committed_at_start.compare_exchange(
            u64::MAX,
            rows,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        view.committed.fetch_max(rows, Ordering::Relaxed);
    }

    /// Tables per state, in [`crate::metrics::TABLE_STATES`] order.
    pub fn table_states(&self) -> [usize; 5] {
        let mut n = [0usize; 5];
        for t in 0..self.tables.len() {
            n[self.state(t) as usize] += 1;
        }
        n
    }

    /// The job's estimated rows.
    pub fn estimated(&self) -> u64 {
        self.tables.iter().map(|t| t.estimated).sum()
    }

    /// Rows and bytes this process sent.
    pub fn own(&self) -> (u64, u64) {
        self.tables.iter().fold((0, 0), |(r, b), t| {
            (
                r + t.live.rows.load(Ordering::Relaxed),
                b + t.live.bytes.load(Ordering::Relaxed),
            )
        })
    }

    /// The job's rows as best known (see the table view's `rows`).
    pub fn job_rows(&self) -> u64 {
        self.tables.iter().map(TableView::rows).sum()
    }

    /// How much of the job's data is in, 0 to 1: each table's rows over its estimate,
    /// weighted by its size, so a table of wide rows counts for what it weighs.
    pub fn ratio(&self) -> f64 {
        self.tables
            .iter()
            .map(|t| t.weight * t.fraction(t.rows()))
            .sum::<f64>()
            .min(1.0)
    }

    /// Seconds until the data is in, at this run's pace; `None` before anything moved.
    pub fn eta(&self) -> Option<f64> {
        let secs = self.started.elapsed().as_secs_f64();
        let at_start: f64 = self
            .tables
            .iter()
            .map(|t| t.weight * t.fraction(t.start()))
            .sum();
        let now = self.ratio();
        let gained = now - at_start;
        if gained <= 0.0 || secs < 1.0 {
            return None;
        }
        Some(secs * (1.0 - now).max(0.0) / gained)
    }

    /// What the run is doing: `Data` while a table with rows to copy is waiting or being
    /// copied, then `Indexes` while a table with index bytes is not finished, then
    /// `Constraints` (see [`crate::eta::Stage`]).
    pub fn stage(&self) -> crate::eta::Stage {
        let states: Vec<TableState> = (0..self.tables.len()).map(|t| self.state(t)).collect();
        let data_left =
            self.tables.iter().zip(&states).any(|(t, s)| {
                t.weight > 0.0 && matches!(s, TableState::Waiting | TableState::Copying)
            });
        crate::eta::Stage::of(false, data_left, self.index_bytes_left() > 0)
    }

    /// Index bytes of the tables not finished (nor failed).
    fn index_bytes_left(&self) -> i64 {
        let (ready, later, _) = self.index_bytes_by_readiness();
        ready + later
    }

    /// Index bytes left of tables whose rows are in, of those whose rows are not, and of
    /// the smallest of those (lanes take the longest copy first: it comes in last).
    fn index_bytes_by_readiness(&self) -> (i64, i64, i64) {
        let mut ready = 0;
        let mut later = 0;
        let mut last: Option<(f64, i64)> = None;
        for (t, view) in self.tables.iter().enumerate() {
            let bytes = view.index_bytes.load(Ordering::Relaxed) as i64;
            match self.state(t) {
                TableState::Building => ready += bytes,
                TableState::Waiting | TableState::Copying => {
                    later += bytes;
                    if view.weight > 0.0 && last.is_none_or(|(w, _)| view.weight < w) {
                        last = Some((view.weight, bytes));
                    }
                }
                TableState::Done | TableState::Failed => {}
            }
        }
        (ready, later, last.map_or(0, |l| l.1))
    }

    /// Seconds until the run is done: the data's [`Progress::eta`] while rows are still to
    /// come, the index builds and the foreign key checks left (see [`crate::eta`]).
    pub fn total_eta(&self) -> Option<f64> {
        let (ready, later, last) = self.index_bytes_by_readiness();
        let left = crate::eta::Left {
            data_seconds: self.eta(),
            ready_index_bytes: ready,
            later_index_bytes: later,
            last_index_bytes: last,
            check_bytes: self.check_bytes.load(Ordering::Relaxed) as i64,
        };
        crate::eta::total_seconds(self.stage(), left)
    }

    /// One line: rows, rate, MB/s, ETA and tables per state.
    pub fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let (rows, bytes) = self.own();
        let s = self.table_states();
        format!(
            "progress: stage {}, {} of ~{} rows ({:.0}%), {:.1} MB in {secs:.0} s ({:.0} rows/s, {:.1} MB/s){}; tables: {} copying, {} building, {} done, {} waiting{}",
            self.stage().name(),
            self.job_rows(),
            self.estimated(),
            100.0 * self.ratio().min(1.0),
            bytes as f64 / 1e6,
            rows as f64 / secs,
            bytes as f64 / 1e6 / secs,
            self.total_eta()
                .map(|e| format!(", ETA {}", human(e)))
                .unwrap_or_default(),
            s[1],
            s[2],
            s[3],
            s[0],
            if s[4] > 0 { format!(", {} failed", s[4]) } else { String::new() },
        )
    }
}

/// Seconds as `1h02m`, `3m05s` or `42s`.
pub fn human(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Shows progress until aborted: redraws bars every 200 ms, or logs a line every 10 s.
pub async fn report(progress: Arc<Progress>, terminal: Terminal) {
    match terminal {
        Terminal::Quiet => std::future::pending::<()>().await,
        Terminal::Lines => loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            tracing::info!("{}", progress.line());
        },
        Terminal::Bars(multi) => draw_bars(progress, multi).await,
    }
}

async fn draw_bars(progress: Arc<Progress>, multi: MultiProgress) {
    let table_style = ProgressStyle::with_template(
        "{prefix:<32!} [{bar:28.cyan/blue}] {human_pos:>11}/{human_len:<11} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let total_style = ProgressStyle::with_template(
        "{prefix:<32!} [{bar:28.green/blue}] {human_pos:>11}/{human_len:<11} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let total = multi.add(ProgressBar::new(progress.estimated().max(1)));
    total.set_style(total_style);
    total.set_prefix("total");
    let mut bars: Vec<Option<(ProgressBar, Instant, u64)>> =
        (0..progress.tables.len()).map(|_| None).collect();
    loop {
        for (t, view) in progress.tables.iter().enumerate() {
            let copying = progress.state(t) == TableState::Copying;
            let rows = view.live.rows.load(Ordering::Relaxed);
            let bytes = view.live.bytes.load(Ordering::Relaxed);
            match (&bars[t], copying) {
                (None, true) => {
                    let bar = multi.insert_before(&total, ProgressBar::new(view.estimated.max(1)));
                    bar.set_style(table_style.clone());
                    bar.set_prefix(view.name.clone());
                    bars[t] = Some((bar, Instant::now(), bytes));
                }
                (Some((bar, _, _)), false) => {
                    bar.finish_and_clear();
                    multi.remove(bar);
                    bars[t] = None;
                }
                _ => {}
            }
            if let Some((bar, since, bytes0)) = &bars[t] {
                if rows > bar.length().unwrap_or(0) {
                    bar.set_length(rows);
                }
                bar.set_position(rows);
                let secs = since.elapsed().as_secs_f64().max(0.001);
                bar.set_message(format!(
                    "{:.1} MB/s",
                    bytes.saturating_sub(*bytes0) as f64 / 1e6 / secs
                ));
            }
        }
        let rows = progress.job_rows();
        if rows > total.length().unwrap_or(0) {
            total.set_length(rows);
        }
        total.set_position(rows);
        let secs = progress.started.elapsed().as_secs_f64().max(0.001);
        let (own_rows, own_bytes) = progress.own();
        let s = progress.table_states();
        total.set_message(format!(
            "{:.0} rows/s {:.1} MB/s{} | {} done, {} building",
            own_rows as f64 / secs,
            own_bytes as f64 / 1e6 / secs,
            progress
                .total_eta()
                .map(|e| format!(" ETA {}", human(e)))
                .unwrap_or_default(),
            s[3],
            s[2]
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sets up logging for a command and returns how its progress is shown: bars on a terminal
/// (log lines printed above them), a line every 10 s elsewhere, nothing with `quiet`; JSON
/// log objects with `json`. Logs follow `RUST_LOG`, else `howdah=info` (`howdah=warn` when
/// quiet).
pub fn init_logging(quiet: bool, json: bool) -> Terminal {
    let default_level = if quiet { "howdah=warn" } else { "howdah=info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let terminal = match (quiet, json, tty) {
        (true, _, _) => Terminal::Quiet,
        (false, false, true) => Terminal::Bars(terminal_bars()),
        _ => Terminal::Lines,
    };
    let base = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match (&terminal, json) {
        (_, true) => base
            .json()
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .init(),
        (Terminal::Bars(bars), _) => base
            .with_ansi(true)
            .with_writer(BarsWriter(bars.clone()))
            .init(),
        _ => base.with_ansi(tty).with_writer(std::io::stderr).init(),
    }
    terminal
}

impl Terminal {
    /// Removes the bars (before the summary is printed).
    pub fn clear(&self) {
        if let Terminal::Bars(bars) = self {
            let _ = bars.clear();
        }
    }
}

/// Bars for a terminal on stderr, hidden when drawing is not possible.
pub fn terminal_bars() -> MultiProgress {
    MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(5))
}

/// A `tracing` writer that prints log lines above the bars instead of through them.
#[derive(Clone)]
pub struct BarsWriter(pub MultiProgress);

impl std::io::Write for BarsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .suspend(|| std::io::Write::write_all(&mut std::io::stderr(), buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::Write::flush(&mut std::io::stderr())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BarsWriter {
    type Writer = BarsWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(42.4), "42s");
        assert_eq!(human(185.0), "3m05s");
        assert_eq!(human(3720.0), "1h02m");
    }

    #[test]
    fn job_rows_count_this_run_on_top_of_earlier_commits() {
        // b weighs three times a: a's rows are narrow, b's wide.
        let p = Progress::new(&[("a".into(), 1000, 100), ("b".into(), 1000, 300)]);
        p.set_committed(0, 500);
        p.live(0).rows.fetch_add(100, Ordering::Relaxed);
        assert_eq!(p.job_rows(), 600);
        p.set_committed(0, 900);
        assert_eq!(p.job_rows(), 900);
        assert!((p.ratio() - 0.25 * 0.9).abs() < 1e-9);
        p.set_committed(1, 500);
        assert!((p.ratio() - (0.25 * 0.9 + 0.75 * 0.5)).abs() < 1e-9);
        p.set_state(0, TableState::Copying);
        assert_eq!(p.table_states(), [1, 1, 0, 0, 0]);
    }

    #[test]
    fn the_eta_counts_the_index_builds_of_tables_not_finished() {
        use crate::eta::Stage;
        let p = Progress::new(&[("a".into(), 1000, 100), ("b".into(), 1000, 300)]);
        p.set_index_bytes(0, 200_000_000);
        p.set_index_bytes(1, 600_000_000);
        assert_eq!(p.stage(), Stage::Data);
        // No rate yet while rows are to come: no ETA.
        assert_eq!(p.total_eta(), None);
        // Every row is in: only the builds are left, 800 MB at 20 MB/s.
        p.set_state(0, TableState::Building);
        p.set_state(1, TableState::Building);
        assert_eq!(p.stage(), Stage::Indexes);
        assert_eq!(p.total_eta(), Some(40.0));
        // a is finished: its index bytes no longer count.
        p.set_state(0, TableState::Done);
        assert_eq!(p.total_eta(), Some(30.0));
        p.set_state(1, TableState::Done);
        assert_eq!(p.stage(), Stage::Constraints);
        assert_eq!(p.total_eta(), Some(0.0));
        // Foreign keys over 300 MB of referencing tables at 150 MB/s.
        p.set_check_bytes(300_000_000);
        assert_eq!(p.total_eta(), Some(2.0));
    }
}
