//! What a store remembers about itself: which cluster and node it belongs to, and where its
//! peers were last seen.
//!
//! ```text
//!   /Local/Store/ident  → StoreIdent { cluster_id, node_id, store_id, meta_range }   (synced)
//!   /Local/Store/peers  → [NodeAddress, ...]                                          (not synced)
//! ```
//!
//! Both records are store-local: never replicated, never part of a snapshot. An empty store
//! has no ident; it gets one from `shoal init` (bootstrap) or by joining a running cluster.
//!
//! # Hazards
//!
//! The ident is written once and never changes; a node whose ident is lost would come back
//! as a stranger with replicas it cannot account for, so it is written with an fsync. The peer
//! list is only a hint for finding the cluster after a restart (gossip refreshes it), so it is
//! written without one.

use serde::{Deserialize, Serialize};
use shoal_api::RangeDescriptor;
use shoal_keys::layout::store_local_key;
use shoal_storage::{Cf, Engine, WriteBatch, WriteOptions};

use crate::error::{Error, Result};

/// A store's identity in its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreIdent {
    /// The cluster's id, chosen by `shoal init`.
    pub cluster_id: String,
    /// This node's id.
    pub node_id: u64,
    /// This store's id (one store per node for now: equal to the node id).
    pub store_id: u64,
    /// The meta range's descriptor when the node joined: where range lookups start.
    pub meta_range: RangeDescriptor,
}

/// Where a node listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    /// The node's id.
    pub node_id: u64,
    /// Its node-to-node address.
    pub rpc_addr: String,
    /// Its HTTP address.
    pub http_addr: String,
}

const IDENT: &[u8] = b"ident";
const PEERS: &[u8] = b"peers";

/// Reads the store's ident; `None` for a store that never joined a cluster.
pub fn read_ident(engine: &dyn Engine) -> Result<Option<StoreIdent>> {
    read(engine, IDENT)
}

/// Records the store's ident, durably.
pub fn write_ident(engine: &dyn Engine, ident: &StoreIdent) -> Result<()> {
    write(engine, IDENT, ident, true)
}

/// Reads the peers last known to this store.
pub fn read_peers(engine: &dyn Engine) -> Result<Vec<NodeAddress>> {
    Ok(read(engine, PEERS)?.unwrap_or_default())
}

/// Records the peers known to this store (a hint: not synced).
pub fn write_peers(engine: &dyn Engine, peers: &[NodeAddress]) -> Result<()> {
    write(engine, PEERS, &peers, false)
}

fn read<T: serde::de::DeserializeOwned>(engine: &dyn Engine, name: &[u8]) -> Result<Option<T>> {
    let key = store_local_key(name);
    let Some(bytes) = engine.get(Cf::Local, key.as_bytes()).map_err(Error::storage)? else {
        return Ok(None);
    };
    postcard::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| Error::Store(format!("the record {key} is unreadable: {e}")))
}

fn write<T: Serialize>(engine: &dyn Engine, name: &[u8], value: &T, sync: bool) -> Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(Cf::Local, store_local_key(name).into_bytes(), shoal_api::encode(value));
    engine.write(&batch, WriteOptions { sync }).map_err(Error::storage)
}

#[cfg(test)]
mod tests {
    use shoal_keys::Key;
    use shoal_storage::MemoryEngine;

    use super::*;

    #[test]
    fn ident_and_peers_round_trip() {
        let engine = MemoryEngine::new();
        assert_eq!(read_ident(&engine).unwrap(), None);
        assert!(read_peers(&engine).unwrap().is_empty());
        let ident = StoreIdent {
            cluster_id: "c".into(),
            node_id: 2,
            store_id: 2,
            meta_range: RangeDescriptor {
                range_id: 1,
                start_key: Key::MIN,
                end_key: Key::new(shoal_keys::layout::META_MAX),
                replicas: vec![],
                next_replica_id: 1,
                generation: 0,
            },
        };
        write_ident(&engine, &ident).unwrap();
        assert_eq!(read_ident(&engine).unwrap(), Some(ident));
        let peers = vec![NodeAddress {
            node_id: 1,
            rpc_addr: "127.0.0.1:1".into(),
            http_addr: "127.0.0.1:2".into(),
        }];
        write_peers(&engine, &peers).unwrap();
        assert_eq!(read_peers(&engine).unwrap(), peers);
    }
}
