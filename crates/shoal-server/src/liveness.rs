//! Node liveness: a replicated record per node, heartbeated, that says who is alive and who is
//! leaving. The replicate queue trusts it, not gossip, to decide that a node is dead.
//!
//! ```text
//!   /System/liveness/00000000000000000004 = { node 4, epoch 1, expiration t+4s, active, draining: no }
//!   node 4 every timeout/4:  CAS(record, record with expiration = now + timeout)
//!   any node:                live(4) ⇔ expiration > its own HLC now
//! ```
//!
//! Every update is a compare-and-set on the whole record, so a heartbeat never overwrites a
//! decommission (or a drain) written in between: it fails, rereads and retries.
//!
//! # Invariants
//!
//! - Only node `n` extends `n`'s expiration; anyone may mark `n` decommissioning, and `n`
//!   itself marks it draining.
//! - A node whose record expired is not live; once it expired longer than the dead-node grace
//!   ago (10 s by default) its replicas are replaced. Clocks differ by at most the HLC's
//!   maximum offset, far below either.
//!
//! # Out of scope
//!
//! Epoch-based leases (CockroachDB's): Shoal's leases are Raft leadership, so liveness decides
//! only where replicas go, never who may serve.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_api::addressing::{liveness_key, liveness_span};
use shoal_hlc::Timestamp;
use shoal_kvclient::KvClient;
use shoal_kvclient::KvOps;

use crate::error::{Error, Result};

/// Where a node stands in the cluster's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeMembership {
    /// A full member: receives replicas.
    Active,
    /// Being emptied: receives nothing, and every replica on it is moved away.
    Decommissioning,
    /// Emptied: holds no replica.
    Decommissioned,
}

/// A node's liveness record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivenessRecord {
    /// The node.
    pub node_id: u64,
    /// Raised each time the node (re)starts heartbeating after its record expired.
    pub epoch: u64,
    /// The node counts as live until this HLC time.
    pub expiration: Timestamp,
    /// Membership.
    pub membership: NodeMembership,
    /// Whether the node is handing its leases away and refuses new ones.
    pub draining: bool,
}

impl LivenessRecord {
    /// Returns whether the node was live at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expiration > now
    }
}

/// Reads `node_id`'s record and its stored bytes (for a compare-and-set).
async fn read(kv: &KvClient, node_id: u64) -> Result<Option<(LivenessRecord, Vec<u8>)>> {
    let Some(bytes) = kv.get(liveness_key(node_id)).await? else { return Ok(None) };
    let record = shoal_api::decode::<LivenessRecord>(&bytes)?;
    Ok(Some((record, bytes)))
}

/// Updates `node_id`'s record with `change` (given the current record, or a new one) by
/// compare-and-set, retrying a few times when another update got there first.
async fn update(
    kv: &KvClient,
    node_id: u64,
    change: impl Fn(&mut LivenessRecord),
) -> Result<LivenessRecord> {
    let mut last_error = None;
    for _ in 0..5 {
        let current = read(kv, node_id).await?;
        let mut record = current.as_ref().map(|(r, _)| r.clone()).unwrap_or(LivenessRecord {
            node_id,
            epoch: 0,
            expiration: Timestamp::ZERO,
            membership: NodeMembership::Active,
            draining: false,
        });
        change(&mut record);
        let expected = current.map(|(_, bytes)| bytes);
        match kv.compare_and_set(liveness_key(node_id), expected, shoal_api::encode(&record)).await
        {
            Ok(()) => return Ok(record),
            Err(e @ shoal_api::KvError::ConditionFailed { .. }) => last_error = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_error.map_or_else(|| Error::Peer("liveness update failed".into()), Error::from))
}

/// Extends `node_id`'s liveness to `now + timeout` (a new epoch if it had expired).
pub async fn heartbeat(
    kv: &KvClient,
    node_id: u64,
    now: Timestamp,
    timeout: Duration,
) -> Result<LivenessRecord> {
    update(kv, node_id, |record| {
        if !record.is_live(now) {
            record.epoch += 1;
        }
        record.expiration = record.expiration.max(now.add_duration(timeout));
    })
    .await
}

/// Sets `node_id`'s membership (decommissioning, or back to active).
pub async fn set_membership(
    kv: &KvClient,
    node_id: u64,
    membership: NodeMembership,
) -> Result<LivenessRecord> {
    if read(kv, node_id).await?.is_none() {
        return Err(Error::Peer(format!("node {node_id} has no liveness record: no such node")));
    }
    update(kv, node_id, |record| record.membership = membership).await
}

/// Sets whether `node_id` is draining.
pub async fn set_draining(kv: &KvClient, node_id: u64, draining: bool) -> Result<LivenessRecord> {
    if read(kv, node_id).await?.is_none() {
        return Err(Error::Peer(format!("node {node_id} has no liveness record: no such node")));
    }
    update(kv, node_id, |record| record.draining = draining).await
}

/// Reads every node's record, by node id. A record that does not decode is skipped (and
/// logged): one bad value must not stop every queue.
pub async fn read_all(kv: &KvClient) -> Result<Vec<LivenessRecord>> {
    let rows = kv.scan(liveness_span(), None).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, bytes)| match shoal_api::decode::<LivenessRecord>(&bytes) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(%key, "a liveness record does not decode: {e}");
                None
            }
        })
        .collect())
}
