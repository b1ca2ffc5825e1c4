//! The timestamp cache: the highest timestamp at which each key was read, kept by the
//! leaseholder so that no write lands underneath a read it served.
//!
//! ```text
//!   t1 reads b at 10         cache: b → 10 (t1)
//!   t2 writes b at 7         7 ≤ 10: t2's write moves to 10.next() = 10,1
//!                            (t2 must now refresh its own reads from 7 to 10,1, or restart)
//!   t1 writes b at 10        t1's own read: allowed at 10
//! ```
//!
//! Without it, t2's intent at 7 would commit "before" t1's read at 10 that did not see it:
//! a serializability violation (t1 read a value that was no longer the latest at 10).
//!
//! # Invariants
//!
//! - Every read a leaseholder served at `ts` on span `s` is covered: [`TimestampCache::required`]
//!   for any write span overlapping `s` returns at least `ts`.
//! - Entries are only ever forgotten by raising the low-water mark above them, so the cache
//!   stays bounded without ever under-reporting.
//! - A new lease starts with an empty cache whose low-water mark is above any read the previous
//!   leaseholder can have served (its clock reading plus the maximum offset).
//!
//! # Out of scope
//!
//! An interval tree: span reads are kept in a short list and looked up linearly. Scans are
//! rare next to point reads; the list is bounded like the points.

use std::collections::HashMap;

use shoal_hlc::Timestamp;
use shoal_keys::{Key, Span};

/// How many point entries the cache keeps before forgetting the older half.
const MAX_POINTS: usize = 64 * 1024;
/// How many span entries it keeps before forgetting the older half.
const MAX_SPANS: usize = 256;

/// The highest read timestamp of a key or span, and the transaction that read there (`None`
/// if several did, or a non-transactional read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    ts: Timestamp,
    txn: Option<u128>,
}

impl Entry {
    /// Merges another read of the same key: the higher timestamp wins; a tie between readers
    /// keeps no owner, so neither can write at exactly that timestamp.
    fn merge(&mut self, other: Entry) {
        if other.ts > self.ts {
            *self = other;
        } else if other.ts == self.ts && other.txn != self.txn {
            self.txn = None;
        }
    }
}

/// Read timestamps of one leaseholder's range.
#[derive(Debug, Default)]
pub struct TimestampCache {
    low_water: Timestamp,
    points: HashMap<Key, Entry>,
    spans: Vec<(Span, Entry)>,
}

impl TimestampCache {
    /// Forgets every entry; reads below `low_water` are assumed everywhere.
    pub fn reset(&mut self, low_water: Timestamp) {
        self.low_water = low_water;
        self.points.clear();
        self.spans.clear();
    }

    /// Returns the low-water mark.
    pub fn low_water(&self) -> Timestamp {
        self.low_water
    }

    /// Records a read of `span` at `ts` by `txn`.
    pub fn record(&mut self, span: &Span, ts: Timestamp, txn: Option<u128>) {
        if ts <= self.low_water {
            return;
        }
        let entry = Entry { ts, txn };
        if span.end == span.start.next() {
            self.points.entry(span.start.clone()).and_modify(|e| e.merge(entry)).or_insert(entry);
            if self.points.len() > MAX_POINTS {
                self.forget_older_points();
            }
            return;
        }
        if let Some((_, held)) = self.spans.iter_mut().find(|(s, _)| s == span) {
            held.merge(entry);
            return;
        }
        self.spans.push((span.clone(), entry));
        if self.spans.len() > MAX_SPANS {
            self.spans.sort_by_key(|(_, e)| e.ts);
            let forgotten: Vec<_> = self.spans.drain(..MAX_SPANS / 2).collect();
            if let Some((_, newest)) = forgotten.last() {
                self.low_water = self.low_water.max(newest.ts);
            }
        }
    }

    /// Returns the lowest timestamp `txn` may write `span` at: above every read of it by
    /// others, and at or above its own reads.
    pub fn required(&self, span: &Span, txn: Option<u128>) -> Timestamp {
        let mut max = Entry { ts: self.low_water, txn: None };
        if span.end == span.start.next() {
            if let Some(entry) = self.points.get(&span.start) {
                max.merge(*entry);
            }
        } else {
            for (key, entry) in &self.points {
                if span.contains(key.as_bytes()) {
                    max.merge(*entry);
                }
            }
        }
        for (read, entry) in &self.spans {
            if read.overlaps(span) {
                max.merge(*entry);
            }
        }
        match (max.txn, txn) {
            (Some(reader), Some(writer)) if reader == writer => max.ts,
            _ => max.ts.next(),
        }
    }

    fn forget_older_points(&mut self) {
        let mut stamps: Vec<Timestamp> = self.points.values().map(|e| e.ts).collect();
        let middle = stamps.len() / 2;
        let (_, cut, _) = stamps.select_nth_unstable(middle);
        let cut = *cut;
        self.points.retain(|_, e| e.ts > cut);
        self.low_water = self.low_water.max(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(wall: u64) -> Timestamp {
        Timestamp::new(wall, 0)
    }

    #[test]
    fn writes_move_above_reads_of_others_but_not_their_own() {
        let mut cache = TimestampCache::default();
        cache.record(&Span::point("b"), ts(10), Some(1));
        assert_eq!(cache.required(&Span::point("b"), Some(2)), ts(10).next());
        assert_eq!(cache.required(&Span::point("b"), Some(1)), ts(10));
        assert_eq!(cache.required(&Span::point("b"), None), ts(10).next());
        assert_eq!(cache.required(&Span::point("c"), Some(2)), ts(0).next());
        // Two readers at the same timestamp: neither owns it.
        cache.record(&Span::point("b"), ts(10), Some(2));
        assert_eq!(cache.required(&Span::point("b"), Some(1)), ts(10).next());
    }

    #[test]
    fn span_reads_cover_points_inside_and_point_reads_cover_span_writes() {
        let mut cache = TimestampCache::default();
        cache.record(&Span::new("a", "m"), ts(7), None);
        cache.record(&Span::point("x"), ts(9), None);
        assert_eq!(cache.required(&Span::point("c"), Some(1)), ts(7).next());
        assert_eq!(cache.required(&Span::point("n"), Some(1)), ts(0).next());
        assert_eq!(cache.required(&Span::new("p", "z"), Some(1)), ts(9).next());
    }

    #[test]
    fn forgetting_raises_the_low_water_mark_so_nothing_is_under_reported() {
        let mut cache = TimestampCache::default();
        for i in 0..(MAX_POINTS as u64 + 1) {
            cache.record(&Span::point(format!("k{i}").as_str()), ts(i + 1), None);
        }
        assert!(cache.points.len() <= MAX_POINTS / 2 + 1);
        for i in [0u64, 10, MAX_POINTS as u64 / 2, MAX_POINTS as u64] {
            let required = cache.required(&Span::point(format!("k{i}").as_str()), None);
            assert!(required > ts(i + 1), "k{i}: {required}");
        }
        cache.reset(ts(1_000_000));
        assert_eq!(cache.required(&Span::point("k1"), None), ts(1_000_000).next());
    }
}
