//! Range administration through the client: splitting a range at a key, and listing the
//! ranges of a span.
//!
//! ```text
//!   split_at(k): id = increment /System/range-idgen
//!                AdminSplit { k, id } ─DistSender─▶ leaseholder of the range holding k
//!                    proposes the split; every replica shortens the range and starts range `id`
//!                /Meta/k       ← left-hand descriptor    (first: see below)
//!                /Meta/<end>   ← right-hand descriptor   (replaces the old range's record)
//! ```
//!
//! The addressing records are updated after the split applied, left-hand first: in between, a
//! lookup of a right-hand key still finds the old, wider descriptor, is sent to the left-hand
//! range, and is redirected by its key-mismatch answer. Written the other way round, a lookup of
//! a left-hand key would find a range that does not hold it.
//!
//! # Hazards
//!
//! The split and the addressing records are not one transaction: if this node dies between
//! them, the records stay stale and every cold lookup of a right-hand key takes the redirect
//! above (the left-hand store names the right-hand range, which it hosts too). Nothing
//! rewrites the records yet.

use shoal_api::addressing::{decode_meta_record, meta_record, range_id_generator};
use shoal_api::{KvError, RangeDescriptor, Request, Response};
use shoal_keys::{Key, Span};

use crate::{KvClient, KvOps};

impl KvClient {
    /// Writes `descriptor`'s addressing record unless the record holds a descriptor at least
    /// as new (a replica change may have landed since, and its leaseholder rewritten the
    /// record).
    pub async fn write_meta_record_if_newer(
        &self,
        descriptor: &RangeDescriptor,
    ) -> Result<(), KvError> {
        let (key, value) = meta_record(descriptor);
        for _ in 0..3 {
            let stored = self.get(key.clone()).await?;
            if let Some(bytes) = &stored
                && let Ok(held) = decode_meta_record(bytes)
                && held.generation >= descriptor.generation
            {
                return Ok(());
            }
            match self.compare_and_set(key.clone(), stored, value.clone()).await {
                Ok(()) => {
                    self.sender().cache().insert(descriptor.clone());
                    return Ok(());
                }
                Err(KvError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Splits the range holding `key` at `key`; returns the left-hand and right-hand ranges.
    /// Splitting at a range's first key fails (the range is not changed).
    pub async fn split_at(&self, key: Key) -> Result<(RangeDescriptor, RangeDescriptor), KvError> {
        let new_range_id = self.increment(range_id_generator(), 1).await? as u64;
        let request = Request::AdminSplit { key, new_range_id };
        let response = self.sender().send(vec![request]).await?.pop();
        let Some(Response::AdminSplit { lhs, rhs }) = response else {
            return Err(KvError::Internal(format!("a split was answered with {response:?}")));
        };
        for descriptor in [&lhs, &rhs] {
            self.write_meta_record_if_newer(descriptor).await?;
        }
        let cache = self.sender().cache();
        cache.insert(lhs.clone());
        cache.insert(rhs.clone());
        tracing::info!(lhs = lhs.range_id, rhs = rhs.range_id, split_key = %rhs.start_key, "split a range");
        Ok((lhs, rhs))
    }

    /// The ranges holding keys of `span`, in key order, as this node's cache (or the
    /// addressing records, on a miss) describes them.
    pub async fn ranges_in(&self, span: &Span) -> Result<Vec<RangeDescriptor>, KvError> {
        let mut ranges = Vec::new();
        let mut at = span.start.clone();
        while at < span.end {
            let descriptor = self.sender().descriptor_for(&at).await?;
            let end = descriptor.end_key.clone();
            ranges.push(descriptor);
            if end <= at {
                break;
            }
            at = end;
        }
        Ok(ranges)
    }
}
