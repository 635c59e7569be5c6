//! Drill-down: which keys are missing on the target, extra there, or hold a different row,
//! from each side's key -> row hash map of a mismatched chunk.
//!
//! Invariant: each list is sorted and holds at most [`KEYS_SHOWN`] keys.

use std::collections::HashMap;

/// Keys shown per list in a drill-down.
const KEYS_SHOWN: usize = 20;

/// Differences between two sides' key -> row hash maps.
#[derive(Debug, Default)]
pub(super) struct Drill {
    /// Keys only on the source.
    pub missing: Vec<String>,
    /// Keys only on the target.
    pub extra: Vec<String>,
    /// Keys on both sides whose rows differ.
    pub different: Vec<String>,
}

/// The keys missing, extra or different, sorted, at most [`KEYS_SHOWN`] of each.
pub(super) fn compare(src: HashMap<String, u64>, tgt: HashMap<String, u64>) -> Drill {
    let mut d = Drill::default();
    for (k, h) in &src {
        match tgt.get(k) {
            None => d.missing.push(k.clone()),
            Some(g) if g != h => d.different.push(k.clone()),
            _ => {}
        }
    }
    for k in tgt.keys() {
        if !src.contains_key(k) {
            d.extra.push(k.clone());
        }
    }
    for list in [&mut d.missing, &mut d.extra, &mut d.different] {
        list.sort();
        list.truncate(KEYS_SHOWN);
    }
    d
}
