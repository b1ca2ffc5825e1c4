//! The openraft type configuration of a range's Raft group.
//!
//! A Raft *node id* in openraft is a Shoal **replica id**: unique within the cluster and never
//! reused, so a removed replica can never be mistaken for a new one (openraft FAQ: a re-added
//! id can elect itself from an old membership). The openraft *node* value says where the
//! replica lives: its Shoal node and store.
//!
//! Log payloads are opaque bytes: the layer above (`shoal-kvserver`) encodes proposer-evaluated
//! commands and decodes them again at apply time through an [`Applier`](crate::Applier).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A replicated command: opaque bytes produced by the proposer, decoded by the [`Applier`].
///
/// [`Applier`]: crate::Applier
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command(pub Vec<u8>);

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({} bytes)", self.0.len())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The result of applying a [`Command`], returned to the proposer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResponse(pub Vec<u8>);

/// Where a replica lives.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct ReplicaLocation {
    /// The Shoal node holding the replica.
    pub node_id: u64,
    /// The store on that node.
    pub store_id: u64,
}

impl fmt::Display for ReplicaLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}/s{}", self.node_id, self.store_id)
    }
}

openraft::declare_raft_types!(
    /// The openraft type configuration shared by every range.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = u64,
        Node = ReplicaLocation,
);

/// A log entry of a range.
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A log id.
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A vote.
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
/// A membership stored with the log id that introduced it.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
