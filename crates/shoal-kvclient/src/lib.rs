//! Shoal's KV client: find the range that holds each key and talk to its leaseholder.
//!
//! - [`DistSender`]: splits a batch by range using a [`RangeCache`] filled from addressing
//!   records in range 1, sends each part to the leaseholder (in parallel across ranges), and
//!   retries on redirects, stale descriptors and elections.
//! - [`KvClient`]: typed get / put / compare-and-set / delete / scan on top of it.
//!
//! How a batch reaches another node is the [`NodeSender`]'s business: the server sends over the
//! node-to-node transport, tests call stores directly.

mod cache;
mod client;
mod dist_sender;

#[cfg(test)]
mod tests;

pub use cache::{CachedRange, RangeCache};
pub use client::KvClient;
pub use dist_sender::{DistSender, NodeSender};
