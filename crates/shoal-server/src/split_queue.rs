//! The split queue: every node splits the ranges it leads that grew too large or too busy.
//!
//! ```text
//!   each pass, for each range this node leads (never the meta range):
//!     size estimate ≥ range_max_bytes?  measure (one scan) ─▶ split at the key halving the bytes
//!     qps ≥ split_qps_threshold over a whole load window?   ─▶ split at the median sampled key
//! ```
//!
//! The size estimate is the last measurement plus the bytes proposed since, so a range is only
//! scanned when it may have crossed the threshold (and once after the node starts, when
//! nothing was measured yet). A load split takes the median of the keys sampled from requests,
//! which puts about half the requests on each side; the load tracker then starts over, so a
//! range is not split again before a whole new window shows it still too busy.
//!
//! # Invariants
//!
//! - Splits go through [`crate::admin::split`]: the leaseholder proposes the split under its
//!   write latch, so no request evaluates across it (see `shoal_kvserver`), and the addressing
//!   records follow.
//! - A split key is strictly inside the range; a range whose load is one key does not split.
//!
//! # Out of scope
//!
//! Merging ranges that became small or idle again.

use std::sync::atomic::Ordering;

use shoal_keys::layout;

use crate::error::Result;
use crate::server::{Cluster, Server};
use crate::settings;

/// At most this many splits per pass on one node.
const SPLITS_PER_PASS: usize = 2;

/// Why a range was split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitReason {
    /// It held more than `range_max_bytes`.
    Size,
    /// It served more than `split_qps_threshold` requests per second.
    Load,
}

/// One pass over the ranges this node leads; returns the splits made.
pub(crate) async fn split_pass(server: &Server, cluster: &Cluster) -> Result<usize> {
    let max_bytes = settings::get(&cluster.kv, settings::RANGE_MAX_BYTES).await?;
    let max_qps = settings::get(&cluster.kv, settings::SPLIT_QPS_THRESHOLD).await? as f64;
    let mut splits = 0;
    for replica in cluster.store.replicas() {
        if splits >= SPLITS_PER_PASS {
            break;
        }
        let descriptor = replica.descriptor();
        if !replica.is_leaseholder() || descriptor.end_key.as_bytes() <= layout::META_MAX {
            continue;
        }
        let mut chosen = None;
        if replica.size_estimate().is_none_or(|estimate| estimate >= max_bytes) {
            let measuring = replica.clone();
            let measured = tokio::task::spawn_blocking(move || measuring.measure_size()).await;
            match measured {
                Ok(Ok(size)) if size.bytes >= max_bytes => {
                    chosen = size.half_key.map(|key| (key, SplitReason::Size));
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(range_id = descriptor.range_id, "measuring: {e}"),
                Err(e) => tracing::warn!(range_id = descriptor.range_id, "measuring: {e}"),
            }
        }
        if chosen.is_none() && replica.load_is_sustained_above(max_qps) {
            chosen = replica.load_split_key().map(|key| (key, SplitReason::Load));
        }
        let Some((key, reason)) = chosen else { continue };
        if key <= descriptor.start_key || !descriptor.contains_key(key.as_bytes()) {
            continue;
        }
        match crate::admin::split(server, key.clone()).await {
            Ok((lhs, rhs)) => {
                splits += 1;
                server.inner.stats.splits.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    lhs = lhs.range_id,
                    rhs = rhs.range_id,
                    ?reason,
                    split_key = %key,
                    "split a range"
                );
            }
            Err(e) => tracing::warn!(range_id = descriptor.range_id, ?reason, "split failed: {e}"),
        }
    }
    Ok(splits)
}
