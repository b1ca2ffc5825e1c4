//! What a replica measures about its range for the queues, the status API and metrics: load
//! (requests per second and sampled keys), size, and each follower's replication lag.
//!
//! ```text
//!   size_estimate = last measure_size() + bytes proposed here since      (None: never measured)
//!   measure_size():  one pass over the range's MVCC versions and locks
//!       bytes ──┬── checkpoint every 64 KiB: (user key, bytes so far)
//!               └── half_key = first checkpoint at or past half the total
//!   replication_lag(): per follower, entries = last index − matched index,
//!                      duration = time since the follower last matched the last index
//! ```
//!
//! # Hazards
//!
//! - Sizes count every MVCC version and lock record as stored (key plus value bytes), not
//!   compressed disk use. Measuring reads the whole range; the split queue does it only when
//!   the estimate crosses the threshold.
//! - The lag duration is sampled when asked (by the queues twice a second or so, and by
//!   `/metrics`), so it is accurate to the sampling interval.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shoal_api::{KvError, Request};
use shoal_keys::{Key, layout};
use shoal_storage::mvcc::key::{decode, encode_prefix};
use shoal_storage::{Cf, IterOptions};

use crate::replica::RangeReplica;

/// Bytes between the checkpoints a size measurement keeps.
const CHECKPOINT_BYTES: u64 = 64 << 10;

/// The outcome of measuring a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeMeasure {
    /// Key and value bytes of every version and lock in the range.
    pub bytes: u64,
    /// A user key at about half of them (after the range's first key), if the range holds
    /// more than one checkpoint's worth.
    pub half_key: Option<Key>,
}

/// A follower's lag behind its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerLag {
    /// The follower's replica id.
    pub replica_id: u64,
    /// The highest index it holds.
    pub matched_index: u64,
    /// Entries it lacks.
    pub entries: u64,
    /// Time since it last held every entry (zero while it does).
    pub duration: Duration,
}

impl RangeReplica {
    /// Records the requests of a batch this leaseholder is serving.
    pub(crate) fn record_load(&self, requests: &[Request]) {
        let now = Instant::now();
        let mut load = self.load.lock().unwrap_or_else(|p| p.into_inner());
        for request in requests {
            load.record(&request.span().start, now);
        }
    }

    /// Returns the requests per second this replica served over the load window.
    pub fn load_qps(&self) -> f64 {
        self.load.lock().unwrap_or_else(|p| p.into_inner()).qps(Instant::now())
    }

    /// Returns whether this replica served more than `qps` requests per second over a whole
    /// load window.
    pub fn load_is_sustained_above(&self, qps: f64) -> bool {
        let now = Instant::now();
        let mut load = self.load.lock().unwrap_or_else(|p| p.into_inner());
        load.has_full_window(now) && load.qps(now) > qps
    }

    /// Returns the key that splits the sampled requests in two.
    pub fn load_split_key(&self) -> Option<Key> {
        self.load.lock().unwrap_or_else(|p| p.into_inner()).split_key()
    }

    /// Returns up to `n` of the most requested sampled keys with their sample counts.
    pub fn hottest_keys(&self, n: usize) -> Vec<(Key, u64)> {
        self.load.lock().unwrap_or_else(|p| p.into_inner()).hottest_keys(n)
    }

    /// Returns the estimated size in bytes: the last measurement plus the bytes proposed here
    /// since. `None` if the range was never measured on this replica.
    pub fn size_estimate(&self) -> Option<u64> {
        let measured = *self.measured_size.lock().unwrap_or_else(|p| p.into_inner());
        measured.map(|m| m + self.written_since_measure.load(Ordering::Relaxed))
    }

    /// Forgets load and size (the range changed shape).
    pub(crate) fn reset_load_and_size(&self) {
        self.load.lock().unwrap_or_else(|p| p.into_inner()).reset(Instant::now());
        *self.measured_size.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.written_since_measure.store(0, Ordering::Relaxed);
    }

    /// Measures the range's size on this store by reading all of it (blocking: run it off the
    /// async workers).
    pub fn measure_size(&self) -> Result<SizeMeasure, KvError> {
        let descriptor = self.descriptor();
        let span = layout::addressable_span(&descriptor.span());
        let internal = |e: shoal_storage::Error| {
            KvError::Internal(format!("measuring range {}: {e}", descriptor.range_id))
        };
        self.written_since_measure.store(0, Ordering::Relaxed);
        let mut bytes = 0u64;
        let mut checkpoints: Vec<(Key, u64)> = Vec::new();
        let mut next_checkpoint = CHECKPOINT_BYTES;
        // Versions first (with checkpoints at user-key boundaries), then lock records.
        let locks = layout::lock_span(&span);
        for (part, checkpointed) in [(&span, true), (&locks, false)] {
            let bounds = IterOptions::bounded(
                encode_prefix(part.start.as_bytes()),
                encode_prefix(part.end.as_bytes()),
            );
            let mut iter = self.engine.iter(Cf::Mvcc, bounds).map_err(internal)?;
            iter.seek_to_first();
            while iter.valid().map_err(internal)? {
                bytes += (iter.key().len() + iter.value().len()) as u64;
                if checkpointed && bytes >= next_checkpoint {
                    if let Ok((user_key, _)) = decode(iter.key()) {
                        checkpoints.push((Key::new(user_key), bytes));
                    }
                    next_checkpoint = bytes + CHECKPOINT_BYTES;
                }
                iter.next();
            }
        }
        let half_key = checkpoints
            .into_iter()
            .find(|(key, at)| *at >= bytes / 2 && *key > span.start)
            .map(|(key, _)| key);
        *self.measured_size.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes);
        Ok(SizeMeasure { bytes, half_key })
    }

    /// Returns the leaseholder (leader) this replica knows of, by replica id.
    pub fn leader(&self) -> Option<u64> {
        shoal_raft::handle::current_leader(self.raft())
    }

    /// On the leader: every other member's lag. Empty on other replicas.
    pub fn replication_lag(&self) -> Vec<FollowerLag> {
        let progress = self.log_progress();
        let now = Instant::now();
        let mut caught_up = self.caught_up.lock().unwrap_or_else(|p| p.into_inner());
        if !progress.leader {
            caught_up.clear();
            return Vec::new();
        }
        caught_up.retain(|id, _| progress.matched.contains_key(id));
        progress
            .matched
            .iter()
            .map(|(&replica_id, &matched_index)| {
                let entries = progress.last_index.saturating_sub(matched_index);
                let since = caught_up.entry(replica_id).or_insert(now);
                if entries == 0 {
                    *since = now;
                }
                FollowerLag {
                    replica_id,
                    matched_index,
                    entries,
                    duration: now.saturating_duration_since(*since),
                }
            })
            .collect()
    }
}
