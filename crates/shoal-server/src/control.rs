//! Control messages: how nodes find each other, form a cluster and keep track of each other.
//!
//! They travel on the transport's control lane, postcard-encoded.
//!
//! ```text
//!   joining node ── Hello ──────────────▶ any --join address    "who are you? initialized?"
//!   joining node ── Join ───────────────▶ an initialized node   "give me a node id"
//!   init node    ── Bootstrap(plan) ────▶ each first node       "you are node n; host ranges 1, 2"
//!   every node   ── Gossip(statuses) ───▶ every known node      "here is what I know" (and back)
//!   leaseholder  ── CreateReplica ──────▶ a node to add          "make an empty replica of r"
//!   leaseholder  ── DestroyReplica ─────▶ a node removed         "your replica of r is gone"
//! ```
//!
//! Hello and Bootstrap go to an address (the sender may not know the peer's id); Gossip goes to
//! node ids through the pooled connections.

use serde::{Deserialize, Serialize};
use shoal_api::{RangeDescriptor, ReplicaDescriptor};

use crate::gossip::NodeStatus;
use crate::ident::NodeAddress;

/// A control request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControlRequest {
    /// Asks the receiver who it is.
    Hello {
        /// The sender's addresses (node id 0 while it has none).
        from: NodeAddress,
    },
    /// Asks an initialized node for a node id in its cluster.
    Join {
        /// The joining node's addresses.
        from: NodeAddress,
    },
    /// Makes the receiver one of the cluster's first nodes.
    Bootstrap(BootstrapPlan),
    /// Exchanges node statuses.
    Gossip {
        /// The sender's cluster.
        cluster_id: String,
        /// What the sender knows.
        statuses: Vec<NodeStatus>,
    },
    /// Asks the receiver to create an empty replica of a range, which the sender (its
    /// leaseholder) is about to add as a learner.
    CreateReplica {
        /// The range as its leaseholder knows it now.
        descriptor: RangeDescriptor,
        /// The new replica's id.
        replica_id: u64,
    },
    /// Asks the receiver for the status of every replica it hosts.
    RangeStatuses,
    /// Tells the receiver that its replica of a range was removed from the range.
    DestroyReplica {
        /// The range.
        range_id: u64,
        /// The removed replica.
        replica_id: u64,
    },
}

/// A control response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControlResponse {
    /// Who the receiver is.
    Hello {
        /// Its cluster, if it has one.
        cluster_id: Option<String>,
        /// Its addresses (node id 0 while uninitialized).
        node: NodeAddress,
    },
    /// A node id was allocated.
    Joined {
        /// The cluster.
        cluster_id: String,
        /// The joining node's new id.
        node_id: u64,
        /// The meta range's descriptor.
        meta_range: RangeDescriptor,
        /// The cluster's nodes known to the answering node.
        peers: Vec<NodeAddress>,
    },
    /// The receiver applied its bootstrap plan.
    Bootstrapped,
    /// What the receiver knows.
    Gossip(Vec<NodeStatus>),
    /// The replica asked for exists on the receiver.
    ReplicaCreated(ReplicaDescriptor),
    /// The request was carried out.
    Done,
    /// The status of every replica on the receiver.
    RangeStatuses(Vec<crate::status::ReplicaStatus>),
    /// The request failed.
    Error(String),
}

/// What `shoal init` decided: the cluster id, the first nodes and the first ranges.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootstrapPlan {
    /// The new cluster's id.
    pub cluster_id: String,
    /// The id the receiver takes.
    pub node_id: u64,
    /// Every first node.
    pub nodes: Vec<NodeAddress>,
    /// The first ranges: the meta range, then the rest of the keyspace.
    pub ranges: Vec<RangeDescriptor>,
    /// When the first ranges' data is written (the same on every first node).
    pub timestamp: shoal_hlc::Timestamp,
}

/// Encodes a control message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    shoal_api::encode(message)
}

/// Decodes a control message; garbage is an error, never a panic.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("undecodable control message: {e}"))
}
