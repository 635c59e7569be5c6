//! The job-wide rate cap (`--max-rate`): its spelling ([`RateCap`]) and the token bucket that
//! holds one process's lanes to their share of it ([`Throttle`]).
//!
//! The cap is the job's (kept in the state schema, `state::rate`); each worker takes an equal
//! share of it and re-reads both every few seconds, so a cap changed while the job runs, or a
//! worker joining or leaving, takes effect within that time. Within a process, every lane's
//! writer takes from one bucket before it sends a batch to the target; the reader is held back
//! through the bounded channel, so the source is read no faster than the cap (plus the few
//! batches in flight). Invariants: the bucket never holds more than `BURST` seconds of tokens,
//! and a taker that overdraws it sleeps until the debt is paid, so over any stretch longer than
//! a few batches the rate stays at or under the cap whatever the batch sizes. No cap: `take`
//! returns at once (one uncontended lock per batch, never per row).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

// tokio's clock, so tests can run the bucket on paused time.
use tokio::time::Instant;

use crate::error::{Error, Result};

/// Seconds of tokens the bucket may hold: short, so a pause does not turn into a burst.
const BURST: f64 = 0.25;

/// What a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateUnit {
    /// Tuple bytes per second (as the progress lines and `howdah_bytes_total` count them).
    Bytes,
    /// Rows per second.
    Rows,
}

/// A job's cap: so many bytes or rows per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RateCap {
    /// Units per second, at least 1.
    pub per_sec: u64,
    /// What is counted.
    pub unit: RateUnit,
}

impl RateCap {
    /// Parses `50MB`, `50MB/s`, `512KB`, `1GB`, `2000000B`, `20000rows`, `20000rows/s` or
    /// `20krows`; `off` (or `none`, `0`) is `None`: no cap. MB is 1,000,000 bytes.
    pub fn parse(text: &str) -> Result<Option<RateCap>> {
        let t = text.trim().to_ascii_lowercase();
        if matches!(t.as_str(), "off" | "none" | "0" | "unlimited") {
            return Ok(None);
        }
        let t = t.strip_suffix("/s").unwrap_or(&t).trim();
        let bad = || {
            Error::Config(format!(
                "max rate \"{text}\" is not a rate such as 50MB, 512KB, 20000rows or off \
                 (per second; MB = 1,000,000 bytes)"
            ))
        };
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let (mult, unit) = match unit.trim() {
            "" | "b" => (1.0, RateUnit::Bytes),
            "kb" => (1e3, RateUnit::Bytes),
            "mb" => (1e6, RateUnit::Bytes),
            "gb" => (1e9, RateUnit::Bytes),
            "rows" | "row" => (1.0, RateUnit::Rows),
            "krows" => (1e3, RateUnit::Rows),
            "mrows" => (1e6, RateUnit::Rows),
            _ => return Err(bad()),
        };
        let per_sec = (n * mult).round();
        if !per_sec.is_finite() || !(1.0..=1e15).contains(&per_sec) {
            return Err(bad());
        }
        Ok(Some(RateCap {
            per_sec: per_sec as u64,
            unit,
        }))
    }

    /// `50.0 MB/s`, `20000 rows/s`.
    pub fn describe(&self) -> String {
        match self.unit {
            RateUnit::Bytes => format!("{:.1} MB/s", self.per_sec as f64 / 1e6),
            RateUnit::Rows => format!("{} rows/s", self.per_sec),
        }
    }
}

/// One process's token bucket, shared by its lanes; its rate is changed in place.
#[derive(Debug)]
pub struct Throttle {
    bucket: Mutex<Bucket>,
    /// Rows and bytes that went through `take` (capped or not), for the achieved rate.
    rows: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Debug)]
struct Bucket {
    /// The process's share of the cap; `None`: no cap.
    cap: Option<(f64, RateUnit)>,
    /// Tokens in hand; negative: debt that the takers are sleeping off.
    tokens: f64,
    last: Instant,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(None)
    }
}

impl Throttle {
    /// A bucket holding `share` of `cap` (the whole cap for a single worker).
    pub fn new(cap: Option<RateCap>) -> Self {
        let t = Throttle {
            bucket: Mutex::new(Bucket {
                cap: None,
                tokens: 0.0,
                last: Instant::now(),
            }),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        };
        t.set(cap, 1);
        t
    }

    /// Sets the job's cap and the number of workers sharing it (at least 1).
    pub fn set(&self, cap: Option<RateCap>, workers: u64) {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        b.refill(now);
        b.cap = cap.map(|c| (c.per_sec as f64 / workers.max(1) as f64, c.unit));
        if let Some((rate, _)) = b.cap {
            b.tokens = b.tokens.min(rate * BURST);
        }
    }

    /// The units per second this process may use now (`None`: no cap).
    pub fn share(&self) -> Option<(f64, RateUnit)> {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner()).cap
    }

    /// Takes tokens for a batch of `rows` rows and `bytes` bytes, sleeping while the bucket
    /// is in debt.
    pub async fn take(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let wait = {
            let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let Some((rate, unit)) = b.cap else {
                return;
            };
            b.refill(Instant::now());
            b.tokens -= match unit {
                RateUnit::Bytes => bytes as f64,
                RateUnit::Rows => rows as f64,
            };
            (b.tokens < 0.0).then(|| Duration::from_secs_f64(-b.tokens / rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }

    /// Rows and bytes taken so far by this process.
    pub fn taken(&self) -> (u64, u64) {
        (
            self.rows.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        if let Some((rate, _)) = self.cap {
            self.tokens = (self.tokens + rate * dt).min(rate * BURST);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        let p = |s: &str| RateCap::parse(s).unwrap();
        assert_eq!(
            p("50MB"),
            Some(RateCap {
                per_sec: 50_000_000,
                unit: RateUnit::Bytes
            })
        );
        assert_eq!(p("50mb/s"), p("50MB"));
        assert_eq!(p("1.5GB").unwrap().per_sec, 1_500_000_000);
        assert_eq!(p("512KB").unwrap().per_sec, 512_000);
        assert_eq!(
            p("20000rows/s"),
            Some(RateCap {
                per_sec: 20_000,
                unit: RateUnit::Rows
            })
        );
        assert_eq!(p("20krows"), p("20000rows"));
        assert_eq!(p("off"), None);
        for bad in ["", "fast", "50XB", "-1MB", "0.0000001B"] {
            assert!(RateCap::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_holds_the_rate() {
        let t = Throttle::new(RateCap::parse("1MB").unwrap());
        let start = tokio::time::Instant::now();
        for _ in 0..10 {
            t.take(1, 500_000).await;
        }
        // 5 MB at 1 MB/s: 5 s (less the quarter second a full bucket could have held, but it
        // starts empty).
        let secs = start.elapsed().as_secs_f64();
        assert!((4.9..5.1).contains(&secs), "{secs}");
        // Two workers: each takes half.
        t.set(RateCap::parse("1MB").unwrap(), 2);
        assert_eq!(t.share(), Some((500_000.0, RateUnit::Bytes)));
        t.set(None, 1);
        let before = tokio::time::Instant::now();
        t.take(1, 1 << 30).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
