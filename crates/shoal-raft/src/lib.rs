//! Shoal's adapter over openraft: the Raft log and state machine of every range on a store.
//!
//! Each range replica is its own openraft group. This crate gives every group the two halves
//! of storage openraft asks for, built on the store's one engine (design §5):
//!
//! ```text
//!                ┌─ LogStore(range 1) ─┐                  ┌─ Cf::Raft: logs, votes
//!   openraft ────┼─ LogStore(range 2) ─┼─▶ LogWriter ─────┤   (one fsync per group of appends)
//!   (per range)  └─ ...                ┘   (one thread)   │
//!                ┌─ RangeStateMachine ──▶ Applier ───────▶├─ Cf::Mvcc: data
//!                └─ (per range)           (KV server)     └─ Cf::Local: applied state
//! ```
//!
//! - [`LogStore`]: log entries, vote, committed and purged log ids under per-range key prefixes
//!   of the `raft` column family; every write goes through the store's [`LogWriter`], which
//!   group-commits appends of all ranges.
//! - [`RangeStateMachine`]: applies committed commands through an [`Applier`], writing each
//!   entry's effects and the range's applied state in one atomic write; builds and installs
//!   snapshots.
//!
//! openraft (pinned to an exact 0.10 alpha) is used only here (`tests/layering.rs` enforces
//! it), so an upgrade touches one crate. Its own log-storage test suite runs against
//! [`LogStore`] and [`RangeStateMachine`] on both engines.
//!
//! - [`network`]: Raft messages in envelopes over a byte [`Transport`] that the node provides;
//!   [`start_replica`] wires a log store, state machine and network into a running [`Replica`].
//!
//! Out of scope so far: the node-to-node transport itself (`shoal-rpc`), streaming snapshots in
//! chunks, and deciding which replicas exist (the KV server's store).

mod codec;
mod error;
pub mod handle;
pub mod keys;
mod log_store;
pub mod network;
mod replica;
mod state_machine;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
mod writer;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use log_store::LogStore;
pub use network::{
    MessageKind, RaftEnvelope, RaftRequest, RaftResponse, Transport, TransportError, deliver,
};
pub use replica::{RaftTimers, Replica, ReplicaContext, start_replica};
pub use state_machine::{
    Applier, EngineSpan, EntryInfo, RangeSnapshot, RangeStateMachine, SnapshotBuilder,
};
pub use types::{Command, CommandResponse, ReplicaLocation, TypeConfig};
pub use writer::{LogWriter, SyncedCallback};
