//! Gossip of node status, and liveness judged from it.
//!
//! Every node publishes its own [`NodeStatus`] (addresses, replica and lease counts) stamped
//! with its HLC, and exchanges its whole table with every node it knows each round. A status
//! replaces the one held for its node only if its stamp is newer, so tables converge whatever
//! the order of exchanges.
//!
//! ```text
//!   n1 table: {n1 @t5, n2 @t3}      n2 table: {n2 @t7, n3 @t6}
//!        ── Gossip {n1 @t5, n2 @t3} ──▶ merge → n2 keeps its own @t7, learns n1 @t5
//!        ◀── Gossip {n1 @t5, n2 @t7, n3 @t6} ── merge → n1 learns n2 @t7, n3 @t6
//! ```
//!
//! Liveness: a node is live if a newer status of it reached this node within the liveness
//! timeout, directly or through others. The judgement is local (each node measures with its own
//! monotonic clock when news last arrived), so nodes may briefly disagree.
//!
//! # Out of scope
//!
//! The replicated liveness records with epochs that later issues use to move replicas off dead
//! nodes; this table only tells operators and routing where nodes are and who is heard from.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_hlc::Timestamp;
use tokio::time::Instant;

use crate::ident::NodeAddress;

/// What a node publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Where the node listens.
    pub address: NodeAddress,
    /// How many range replicas it hosts.
    pub replicas: u64,
    /// How many of them hold their range's lease.
    pub leases: u64,
    /// Requests per second its leases serve.
    pub qps: u64,
    /// When the node started (its HLC).
    pub started_at: Timestamp,
    /// When the node published this status (its HLC); newer replaces older.
    pub updated_at: Timestamp,
    /// The meta range's descriptor, if the node hosts a replica of it: how every node learns
    /// where range 1 went when its replicas move (the newest generation wins).
    pub meta_range: Option<shoal_api::RangeDescriptor>,
}

/// One row of [`Gossip::view`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// The latest status heard.
    pub status: NodeStatus,
    /// Whether the node was heard from within the liveness timeout.
    pub live: bool,
    /// How long ago news of the node last arrived, in milliseconds.
    pub last_heard_ms: u64,
}

/// The table of node statuses.
pub struct Gossip {
    node_id: u64,
    liveness_timeout: Duration,
    table: Mutex<BTreeMap<u64, (NodeStatus, Instant)>>,
}

impl Gossip {
    /// Returns an empty table kept by node `node_id`.
    pub fn new(node_id: u64, liveness_timeout: Duration) -> Self {
        Gossip { node_id, liveness_timeout, table: Mutex::default() }
    }

    /// Merges `statuses`; returns the statuses that were new to this node.
    pub fn merge(&self, statuses: Vec<NodeStatus>) -> Vec<NodeStatus> {
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let mut news = Vec::new();
        for status in statuses {
            let node_id = status.address.node_id;
            let newer =
                table.get(&node_id).is_none_or(|(held, _)| held.updated_at < status.updated_at);
            if newer {
                news.push(status.clone());
                table.insert(node_id, (status, now));
            }
        }
        news
    }

    /// Returns every status held.
    pub fn statuses(&self) -> Vec<NodeStatus> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.values().map(|(status, _)| status.clone()).collect()
    }

    /// Returns the addresses of every node held, this one included.
    pub fn addresses(&self) -> Vec<NodeAddress> {
        self.statuses().into_iter().map(|s| s.address).collect()
    }

    /// Returns every node with its liveness, by node id.
    pub fn view(&self) -> Vec<NodeView> {
        let now = Instant::now();
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table
            .iter()
            .map(|(&node_id, (status, heard))| {
                let since = now.saturating_duration_since(*heard);
                NodeView {
                    status: status.clone(),
                    live: node_id == self.node_id || since <= self.liveness_timeout,
                    last_heard_ms: since.as_millis() as u64,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(node_id: u64, updated: u64, replicas: u64) -> NodeStatus {
        NodeStatus {
            address: NodeAddress {
                node_id,
                rpc_addr: format!("127.0.0.1:{node_id}"),
                http_addr: String::new(),
            },
            replicas,
            leases: 0,
            qps: 0,
            started_at: Timestamp::new(1, 0),
            updated_at: Timestamp::new(updated, 0),
            meta_range: None,
        }
    }

    #[test]
    fn newer_statuses_replace_older_ones_in_any_order() {
        let gossip = Gossip::new(1, Duration::from_secs(3));
        assert_eq!(gossip.merge(vec![status(2, 10, 5), status(3, 4, 1)]).len(), 2);
        // An older status of node 2 arriving late changes nothing.
        assert!(gossip.merge(vec![status(2, 9, 7)]).is_empty());
        assert_eq!(gossip.merge(vec![status(2, 11, 6)]), vec![status(2, 11, 6)]);
        let replicas: Vec<_> = gossip.statuses().iter().map(|s| s.replicas).collect();
        assert_eq!(replicas, vec![6, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn nodes_not_heard_from_within_the_timeout_are_dead() {
        let gossip = Gossip::new(1, Duration::from_secs(3));
        gossip.merge(vec![status(1, 1, 0), status(2, 1, 0)]);
        tokio::time::advance(Duration::from_secs(4)).await;
        gossip.merge(vec![status(2, 2, 0)]);
        tokio::time::advance(Duration::from_secs(2)).await;
        let live: Vec<_> =
            gossip.view().iter().map(|v| (v.status.address.node_id, v.live)).collect();
        // Node 1 is this node: always live. Node 2 was heard 2s ago.
        assert_eq!(live, vec![(1, true), (2, true)]);
        tokio::time::advance(Duration::from_secs(2)).await;
        let live: Vec<_> = gossip.view().iter().map(|v| v.live).collect();
        assert_eq!(live, vec![true, false]);
    }
}
