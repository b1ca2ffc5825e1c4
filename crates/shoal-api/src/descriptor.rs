//! Range descriptors and leases.
//!
//! A [`RangeDescriptor`] says which keys a range holds and where its replicas live. It is
//! stored at `/Meta/<end_key>` for addressing and in the range's own local keys. Its
//! `generation` rises with every split or replica change, so a cached copy can be told stale.

use serde::{Deserialize, Serialize};
use shoal_keys::{Key, Span};

/// One replica of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReplicaDescriptor {
    /// The node holding the replica.
    pub node_id: u64,
    /// The store on that node.
    pub store_id: u64,
    /// The replica's id: unique in the cluster, never reused (it is the Raft node id).
    pub replica_id: u64,
}

/// Which keys a range holds and where its replicas are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDescriptor {
    /// The range's id, never reused.
    pub range_id: u64,
    /// The first key of the range.
    pub start_key: Key,
    /// The first key after the range.
    pub end_key: Key,
    /// The replicas.
    pub replicas: Vec<ReplicaDescriptor>,
    /// The next replica id to hand out.
    pub next_replica_id: u64,
    /// Incremented by every split and replica change.
    pub generation: u64,
}

impl RangeDescriptor {
    /// Returns the range's span.
    pub fn span(&self) -> Span {
        Span { start: self.start_key.clone(), end: self.end_key.clone() }
    }

    /// Returns true if `key` belongs to the range.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.span().contains(key)
    }

    /// Returns true if every key of `span` belongs to the range.
    pub fn contains_span(&self, span: &Span) -> bool {
        self.start_key <= span.start && span.end <= self.end_key
    }

    /// Returns the replica on `node_id`, if any.
    pub fn replica_on(&self, node_id: u64) -> Option<ReplicaDescriptor> {
        self.replicas.iter().copied().find(|r| r.node_id == node_id)
    }

    /// Returns the replica with `replica_id`, if any.
    pub fn replica(&self, replica_id: u64) -> Option<ReplicaDescriptor> {
        self.replicas.iter().copied().find(|r| r.replica_id == replica_id)
    }
}

/// A range lease: the replica allowed to serve reads and propose writes. In Shoal the
/// leaseholder is the Raft leader; the lease sequence is the leader's term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The leaseholder.
    pub replica: ReplicaDescriptor,
    /// Increases with every new lease (the Raft term).
    pub sequence: u64,
}
