//! Shoal's KV client: find the range that holds each key and talk to its leaseholder.
//!
//! - [`DistSender`]: splits a batch by range using a [`RangeCache`] filled from addressing
//!   records in range 1, sends each part to the leaseholder (in parallel across ranges), and
//!   retries on redirects, stale descriptors and elections.
//! - [`KvClient`]: typed get / put / compare-and-set / delete / scan on top of it ([`KvOps`]),
//!   and transactions: [`KvClient::begin`] gives a [`txn::Txn`], [`KvClient::txn`] runs a
//!   closure in one and retries it on restarts.
//! - Range administration: [`KvClient::split_at`] splits a range and updates its addressing
//!   records; [`KvClient::ranges_in`] lists the ranges of a span.
//! - [`conflict`]: what a sender does about other transactions' locks (push, resolve, retry).
//! - [`trace`]: what one transaction's requests cost (batches, ranges, nodes, redirects),
//!   recorded while someone watches (EXPLAIN ANALYZE).
//!
//! How a batch reaches another node is the [`NodeSender`]'s business: the server sends over the
//! node-to-node transport, tests call stores directly.

mod admin;
mod cache;
mod client;
pub mod conflict;
mod dist_sender;
pub mod trace;
pub mod txn;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;

pub use cache::{CachedRange, RangeCache};
pub use client::{KvClient, KvOps};
pub use dist_sender::{DistSender, NodeSender};
