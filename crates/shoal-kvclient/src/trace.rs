//! KV traces: what a transaction's requests cost while someone is watching.
//!
//! EXPLAIN ANALYZE wants to say, for one statement, how many batches went to the ranges,
//! which ranges and nodes served them, and what got in the way (redirects to another
//! replica, locks of other transactions, read refreshes). The sender already knows each of
//! these where it happens; a [`KvTrace`] attached to a transaction ([`crate::txn::Txn::set_trace`])
//! is where it writes them down, and [`KvTrace::summary`] reads them back.
//!
//! ```text
//!   txn.set_trace(Some(trace))
//!   scan [a, z)  ─▶ range 3 on n1: batch     ─▶ range 4 on n2: NotLeaseholder (redirect)
//!                                              ─▶ range 4 on n3: batch
//!   summary: 2 batches, r3 on n1, r4 on n3, 1 redirect
//! ```
//!
//! Only the traced transaction's own batches are counted: addressing lookups (served from the
//! range cache, or from range 1), the pushes and intent resolutions a lock conflict sends, and
//! background work (heartbeats, asynchronous intent resolution) are not, although a lock
//! conflict itself is. A trace is a counter, never a decision: nothing reads it but a report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// Where a traced transaction's KV work went. Shared by the handles that record into it.
#[derive(Debug, Default)]
pub struct KvTrace {
    state: Mutex<KvTraceSummary>,
}

/// What a [`KvTrace`] recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvTraceSummary {
    /// Batches answered by a range (one per range part of a request batch).
    pub batches: u64,
    /// Per range that answered: the nodes that served it.
    pub ranges: BTreeMap<u64, BTreeSet<u64>>,
    /// Sends that a replica turned away (not the leaseholder, no replica here, an election
    /// under way, a range that changed shape) and that were sent again elsewhere.
    pub redirects: u64,
    /// Locks of other transactions met, each pushed and resolved before the send was retried.
    pub lock_conflicts: u64,
    /// Read refreshes: the transaction's reads checked still valid at a higher timestamp.
    pub refreshes: u64,
}

impl KvTraceSummary {
    /// The nodes that served any range.
    pub fn nodes(&self) -> BTreeSet<u64> {
        self.ranges.values().flatten().copied().collect()
    }
}

impl KvTrace {
    fn update(&self, change: impl FnOnce(&mut KvTraceSummary)) {
        change(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Records a batch that range `range_id` answered from node `node_id`.
    pub(crate) fn batch(&self, range_id: u64, node_id: u64) {
        self.update(|s| {
            s.batches += 1;
            s.ranges.entry(range_id).or_default().insert(node_id);
        });
    }

    /// Records a send turned away by a replica.
    pub(crate) fn redirect(&self) {
        self.update(|s| s.redirects += 1);
    }

    /// Records `locks` locks met by one send.
    pub(crate) fn lock_conflicts(&self, locks: usize) {
        self.update(|s| s.lock_conflicts += locks as u64);
    }

    /// Records a read refresh.
    pub(crate) fn refresh(&self) {
        self.update(|s| s.refreshes += 1);
    }

    /// What was recorded so far.
    pub fn summary(&self) -> KvTraceSummary {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_lists_each_range_with_its_serving_nodes() {
        let trace = KvTrace::default();
        trace.batch(4, 2);
        trace.batch(3, 1);
        trace.batch(4, 3);
        trace.redirect();
        trace.lock_conflicts(2);
        let summary = trace.summary();
        assert_eq!(summary.batches, 3);
        let ranges: Vec<(u64, Vec<u64>)> =
            summary.ranges.iter().map(|(r, n)| (*r, n.iter().copied().collect())).collect();
        assert_eq!(ranges, [(3, vec![1]), (4, vec![2, 3])]);
        assert_eq!(summary.nodes().into_iter().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!((summary.redirects, summary.lock_conflicts, summary.refreshes), (1, 2, 0));
    }
}
