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
//! Not built yet: transactions, the timestamp cache and interval latches for spans (see the
//! issue tracker).

pub mod command;
pub mod eval;
pub mod latch;
pub mod metrics;
mod node;
mod replica;
pub mod replica_change;
pub mod replica_load;
pub mod replica_stats;
mod store;

#[cfg(test)]
mod node_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

pub use command::{ApplyOutcome, ProposedCommand};
pub use metrics::StoreMetrics;
pub use node::{Node, RpcTransport};
pub use replica::{LOAD_WINDOW, RangeReplica};
pub use replica_stats::{FollowerLag, SizeMeasure};
pub use shoal_raft::handle::{LogProgress, MembershipView};
pub use store::{Store, StoreConfig};
