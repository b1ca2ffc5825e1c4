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
//! Out of scope so far: the network (`shoal-rpc`), snapshot streaming, and creating and
//! wiring `Raft` instances (the KV server's store).

mod codec;
mod error;
pub mod keys;
mod log_store;
mod state_machine;
pub mod types;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use log_store::LogStore;
pub use state_machine::{Applier, EngineSpan, RangeSnapshot, RangeStateMachine, SnapshotBuilder};
pub use types::{Command, CommandResponse, ReplicaLocation, TypeConfig};
pub use writer::{LogWriter, SyncedCallback};
