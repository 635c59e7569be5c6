//! When a table's post-data steps may start, and when the table is finished.
//!
//! A table is ready once its own data is in and each of its partitions is finished. Its steps
//! then run phase by phase: the jobs of a phase (independent index builds) in parallel on the
//! builders, the next phase (constraints, `ANALYZE`) once they are all done. A table whose last
//! phase is done is finished, which may make its partitioned parent ready.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::schema::{Phases, Step};

/// A job for the builders: steps of one table, run in order on one connection.
pub type TableJob = (usize, Vec<Step>);

/// Post-data progress of every table of a run.
#[derive(Debug)]
pub struct PostTracker {
    phases: Vec<VecDeque<Vec<Vec<Step>>>>,
    jobs_left: Vec<usize>,
    waiting: Vec<usize>,
    parent: Vec<Option<usize>>,
    failed: Vec<bool>,
    started: Vec<Option<Instant>>,
    in_flight: usize,
    tables_left: usize,
}

impl PostTracker {
    /// `waiting[t]` counts what table `t` waits for: its data (if it has storage and chunks
    /// to copy) and each of its partitions.
    pub fn new(post: Vec<Phases>, waiting: Vec<usize>, parent: Vec<Option<usize>>) -> Self {
        let n = post.len();
        PostTracker {
            phases: post.into_iter().map(VecDeque::from).collect(),
            jobs_left: vec![0; n],
            waiting,
            parent,
            failed: vec![false; n],
            started: vec![None; n],
            in_flight: 0,
            tables_left: n,
        }
    }

    /// Starts every table that waits for nothing; returns the jobs to send and the tables
    /// finished on the way (with their post-data time).
    pub fn start_ready(&mut self, jobs: &mut Vec<TableJob>) -> Vec<(usize, Duration)> {
        let mut finished = Vec::new();
        for t in 0..self.waiting.len() {
            if self.waiting[t] == 0 && self.started[t].is_none() && !self.failed[t] {
                self.start(t, jobs, &mut finished);
            }
        }
        finished
    }

    /// One input of table `t` (its data, or one of its partitions) is in.
    pub fn input_done(&mut self, t: usize, jobs: &mut Vec<TableJob>) -> Vec<(usize, Duration)> {
        let mut finished = Vec::new();
        self.input_done_into(t, jobs, &mut finished);
        finished
    }

    /// A job of table `t` is done.
    pub fn job_done(&mut self, t: usize, jobs: &mut Vec<TableJob>) -> Vec<(usize, Duration)> {
        let mut finished = Vec::new();
        self.jobs_left[t] = self.jobs_left[t].saturating_sub(1);
        if self.jobs_left[t] == 0 {
            self.next_phase(t, jobs, &mut finished);
        }
        finished
    }

    /// A chunk of table `t` failed: neither it nor its partitioned ancestors will finish.
    pub fn fail(&mut self, t: usize) {
        let mut at = Some(t);
        while let Some(i) = at {
            self.failed[i] = true;
            at = self.parent[i];
        }
    }

    /// Tables whose post-data steps are running.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Tables not finished yet.
    pub fn tables_left(&self) -> usize {
        self.tables_left
    }

    fn input_done_into(
        &mut self,
        t: usize,
        jobs: &mut Vec<TableJob>,
        finished: &mut Vec<(usize, Duration)>,
    ) {
        self.waiting[t] = self.waiting[t].saturating_sub(1);
        if self.waiting[t] == 0 && self.started[t].is_none() && !self.failed[t] {
            self.start(t, jobs, finished);
        }
    }

    fn start(&mut self, t: usize, jobs: &mut Vec<TableJob>, finished: &mut Vec<(usize, Duration)>) {
        self.started[t] = Some(Instant::now());
        self.in_flight += 1;
        self.next_phase(t, jobs, finished);
    }

    fn next_phase(
        &mut self,
        t: usize,
        jobs: &mut Vec<TableJob>,
        finished: &mut Vec<(usize, Duration)>,
    ) {
        while let Some(phase) = self.phases[t].pop_front() {
            let phase: Vec<Vec<Step>> = phase.into_iter().filter(|j| !j.is_empty()).collect();
            if phase.is_empty() {
                continue;
            }
            self.jobs_left[t] = phase.len();
            jobs.extend(phase.into_iter().map(|steps| (t, steps)));
            return;
        }
        self.in_flight -= 1;
        self.tables_left -= 1;
        let took = self.started[t].map(|s| s.elapsed()).unwrap_or_default();
        finished.push((t, took));
        if let Some(p) = self.parent[t] {
            self.input_done_into(p, jobs, finished);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(what: &str) -> Step {
        Step {
            what: what.into(),
            sql: String::new(),
        }
    }

    #[test]
    fn phases_run_in_order_and_jobs_of_a_phase_together() {
        let post = vec![vec![
            vec![vec![step("idx a")], vec![step("idx b")]],
            vec![vec![step("pk"), step("analyze")]],
        ]];
        let mut p = PostTracker::new(post, vec![1], vec![None]);
        let mut jobs = Vec::new();
        assert!(p.start_ready(&mut jobs).is_empty());
        assert!(jobs.is_empty());
        assert!(p.input_done(0, &mut jobs).is_empty());
        assert_eq!(jobs.len(), 2, "both index builds start together");
        jobs.clear();
        assert!(p.job_done(0, &mut jobs).is_empty());
        assert!(
            jobs.is_empty(),
            "the constraint phase waits for both builds"
        );
        assert!(p.job_done(0, &mut jobs).is_empty());
        assert_eq!(jobs.len(), 1);
        jobs.clear();
        let done = p.job_done(0, &mut jobs);
        assert_eq!(done.len(), 1);
        assert_eq!(p.tables_left(), 0);
        assert_eq!(p.in_flight(), 0);
    }

    #[test]
    fn a_parent_starts_after_its_partitions_and_not_after_a_failure() {
        // 0: partitioned parent (no storage, two partitions), 1 and 2: partitions.
        let post = vec![vec![vec![vec![step("parent pk")]]], Vec::new(), Vec::new()];
        let mut p = PostTracker::new(post.clone(), vec![2, 1, 1], vec![None, Some(0), Some(0)]);
        let mut jobs = Vec::new();
        assert_eq!(p.input_done(1, &mut jobs).len(), 1);
        assert!(jobs.is_empty());
        assert_eq!(p.input_done(2, &mut jobs).len(), 1);
        assert_eq!(
            jobs.len(),
            1,
            "the parent's step starts with its last partition"
        );

        let mut p = PostTracker::new(post, vec![2, 1, 1], vec![None, Some(0), Some(0)]);
        let mut jobs = Vec::new();
        p.fail(2);
        p.input_done(1, &mut jobs);
        assert!(jobs.is_empty());
        assert_eq!(p.tables_left(), 2);
    }
}
