//! Manual range operations: splitting a range at a key.
//!
//! The split itself, and the order its addressing records are written in, is
//! [`shoal_kvclient::KvClient::split_at`]'s business; this module runs it on a server's
//! client, for the HTTP API, the split queue and tests.

use shoal_api::RangeDescriptor;
use shoal_keys::Key;

use crate::error::Result;
use crate::server::Server;

/// Splits the range holding `key` at `key`; returns the left-hand and right-hand ranges.
pub async fn split(server: &Server, key: Key) -> Result<(RangeDescriptor, RangeDescriptor)> {
    let cluster = server.require_cluster()?;
    Ok(cluster.kv.split_at(key).await?)
}
