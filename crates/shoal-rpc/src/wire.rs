//! The wire protocol: one tarpc service with one call that carries a batch of messages.
//!
//! ```text
//!   deliver(Header { from, to, lane, clock }, [msg, msg, ...])
//!     -> Ok((Header { clock of the answering node, .. }, [reply, reply, ...]))
//!     |  Err(Refused: wrong node, clock offset beyond the maximum, ...)
//! ```
//!
//! Frames are length-delimited bincode (tarpc's serde transport) with a maximum frame size; a
//! frame that does not decode closes its connection and nothing else.

use serde::{Deserialize, Serialize};
use shoal_hlc::Timestamp;

/// The largest frame accepted on a connection (a snapshot lane carries whole snapshots).
pub const MAX_FRAME_BYTES: usize = 256 << 20;

/// The `to` of a header sent to whichever node listens at an address.
pub const ANY_NODE: u64 = 0;

/// Which connection a message travels on. Each lane is its own connection per peer, so a
/// large snapshot never delays heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lane {
    /// Raft messages (append entries, votes, heartbeats) and other small messages.
    Raft,
    /// Raft snapshots.
    Snapshot,
    /// KV batches routed to another node's leaseholder replicas.
    Kv,
    /// Cluster membership: hello, join, bootstrap and gossip of node status.
    Control,
}

/// Sent with every batch and every answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The sending node.
    pub from: u64,
    /// The node the sender means to reach (a mismatch means a stale address), or
    /// [`ANY_NODE`] when the sender knows only an address (joining a cluster).
    pub to: u64,
    /// The lane.
    pub lane: Lane,
    /// The sender's HLC reading: wall nanoseconds.
    pub clock_wall: u64,
    /// The sender's HLC reading: logical counter.
    pub clock_logical: u32,
}

impl Header {
    /// Returns the header's clock reading.
    pub fn clock(&self) -> Timestamp {
        Timestamp::new(self.clock_wall, self.clock_logical)
    }
}

/// One message's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// The answer to a batch.
pub type DeliverResult = std::result::Result<(Header, Vec<Payload>), String>;

/// The node-to-node service.
#[tarpc::service]
pub trait NodeService {
    /// Delivers a batch of messages; the answer holds one reply per message, in order.
    async fn deliver(header: Header, messages: Vec<Payload>) -> DeliverResult;
}
