//! The range cache: which range holds a key, and who its leaseholder probably is.
//!
//! Entries are keyed by the range's end key, so the range holding `k` is the first entry with
//! an end key greater than `k` (if its start key is at most `k`). Stale entries are corrected
//! by the servers' answers: a `NotLeaseholder` hint updates the leaseholder, a key mismatch
//! evicts the entry.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use shoal_api::{RangeDescriptor, ReplicaDescriptor};
use shoal_keys::Key;

/// A cached range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRange {
    /// The descriptor.
    pub descriptor: RangeDescriptor,
    /// The last known leaseholder.
    pub leaseholder: Option<ReplicaDescriptor>,
}

/// Cached descriptors by end key.
#[derive(Debug, Default)]
pub struct RangeCache {
    by_end: RwLock<BTreeMap<Key, CachedRange>>,
}

impl RangeCache {
    /// Returns the cached range holding `key`, if any.
    pub fn lookup(&self, key: &Key) -> Option<CachedRange> {
        let map = self.by_end.read().unwrap_or_else(|p| p.into_inner());
        let (_, range) = map.range((Bound::Excluded(key.clone()), Bound::Unbounded)).next()?;
        (range.descriptor.start_key <= *key).then(|| range.clone())
    }

    /// Returns the cached range holding the keys just below `end` (its start is below `end`
    /// and its end at or above it), for reverse scans.
    pub fn lookup_before(&self, end: &Key) -> Option<CachedRange> {
        let map = self.by_end.read().unwrap_or_else(|p| p.into_inner());
        let (_, range) = map.range(end.clone()..).next()?;
        (range.descriptor.start_key < *end).then(|| range.clone())
    }

    /// Caches `descriptor`, replacing every entry it overlaps.
    pub fn insert(&self, descriptor: RangeDescriptor) {
        let mut map = self.by_end.write().unwrap_or_else(|p| p.into_inner());
        let span = descriptor.span();
        map.retain(|_, r| !r.descriptor.span().overlaps(&span));
        map.insert(descriptor.end_key.clone(), CachedRange { descriptor, leaseholder: None });
    }

    /// Records the leaseholder of `range_id`.
    pub fn set_leaseholder(&self, range_id: u64, leaseholder: ReplicaDescriptor) {
        let mut map = self.by_end.write().unwrap_or_else(|p| p.into_inner());
        if let Some(range) = map.values_mut().find(|r| r.descriptor.range_id == range_id) {
            range.leaseholder = Some(leaseholder);
        }
    }

    /// Returns the last known leaseholder of `range_id`.
    pub fn leaseholder(&self, range_id: u64) -> Option<shoal_api::ReplicaDescriptor> {
        let map = self.by_end.read().unwrap_or_else(|p| p.into_inner());
        map.values().find(|r| r.descriptor.range_id == range_id).and_then(|r| r.leaseholder)
    }

    /// Forgets `range_id`.
    pub fn evict(&self, range_id: u64) {
        self.by_end
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, r| r.descriptor.range_id != range_id);
    }

    /// Returns how many ranges are cached.
    pub fn len(&self) -> usize {
        self.by_end.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Returns true if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(id: u64, start: &str, end: &str) -> RangeDescriptor {
        RangeDescriptor {
            range_id: id,
            start_key: Key::from(start),
            end_key: Key::from(end),
            replicas: vec![],
            next_replica_id: 1,
            generation: 0,
        }
    }

    #[test]
    fn finds_the_range_holding_a_key_and_replaces_overlaps() {
        let cache = RangeCache::default();
        cache.insert(range(2, "a", "m"));
        cache.insert(range(3, "m", "z"));
        assert_eq!(cache.lookup(&Key::from("c")).unwrap().descriptor.range_id, 2);
        assert_eq!(cache.lookup(&Key::from("m")).unwrap().descriptor.range_id, 3);
        assert!(cache.lookup(&Key::from("z")).is_none(), "end keys are exclusive");
        assert!(cache.lookup(&Key::from("0")).is_none());
        // A split of range 2 replaces its entry.
        cache.insert(range(4, "g", "m"));
        assert!(cache.lookup(&Key::from("c")).is_none(), "the stale range 2 was evicted");
        assert_eq!(cache.lookup(&Key::from("h")).unwrap().descriptor.range_id, 4);
        assert_eq!(cache.lookup_before(&Key::from("m")).unwrap().descriptor.range_id, 4);
        assert_eq!(cache.lookup_before(&Key::from("n")).unwrap().descriptor.range_id, 3);
        assert!(cache.lookup_before(&Key::from("g")).is_none(), "range 2's entry is gone");
        cache.evict(4);
        assert_eq!(cache.len(), 1);
    }
}
