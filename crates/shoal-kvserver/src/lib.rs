//! Shoal's KV server: the store and its range replicas.
//!
//! A [`Store`] owns one engine and every replica of a range that lives on it. Each
//! [`RangeReplica`] runs a Raft group (through `shoal-raft`); its leader holds the range's
//! lease, evaluates KV batches and proposes their writes as [`ProposedCommand`]s, which every
//! replica applies.
//!
//! ```text
//!   BatchRequest ─▶ Store::send ─▶ RangeReplica::send ─▶ lease read ─▶ latches ─▶ eval (MVCC)
//!                                                      └─▶ propose ─▶ Raft ─▶ apply on every replica
//! ```
//!
//! Replicas are added, removed and replaced by their leaseholder ([`replica_change`]); every
//! replica rewrites the range's descriptor when it applies a membership entry.
//!
//! Transactions (design §7): requests of a transaction write intents ([`eval`]); its record
//! lives on its anchor's range and is heartbeated, pushed and ended there ([`eval_txn`]). A
//! request that meets an intent waits briefly in the [`lock_table`], then its sender pushes the
//! intent's owner; pushes that must wait queue at the owner's record ([`txn_wait`]), where
//! deadlocks are found. The [`tscache`] keeps writes above the reads each leaseholder served.
//!
//! Not built yet: interval latches for spans, record garbage collection.

pub mod command;
pub mod eval;
pub mod eval_txn;
pub mod latch;
pub mod lock_table;
pub mod metrics;
mod node;
mod replica;
pub mod replica_change;
mod replica_eval;
pub mod replica_load;
pub mod replica_stats;
mod store;
pub mod tscache;
pub mod txn_wait;

#[cfg(test)]
mod node_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

pub use command::{ApplyOutcome, ProposedCommand};
pub use metrics::StoreMetrics;
pub use node::{Node, RpcTransport};
pub use replica::{LOAD_WINDOW, RangeReplica, ReplicaConfig};
pub use replica_stats::{FollowerLag, SizeMeasure};
pub use shoal_raft::handle::{LogProgress, MembershipView};
pub use store::{Store, StoreConfig};
