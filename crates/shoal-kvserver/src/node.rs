//! A node: a store reachable by its peers over the node-to-node transport.
//!
//! ```text
//!   peer ──Lane::Raft / Lane::Snapshot──▶ Rpc ──▶ StoreHandler ──▶ Store::deliver_raft
//!   Store ──▶ replica's Raft ──▶ RpcTransport ──▶ Rpc ──▶ peer
//! ```
//!
//! The handler holds the store weakly, so dropping the node releases the store and its engine
//! even while peers keep connections open.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use shoal_api::KvError;
use shoal_hlc::Clock;
use shoal_raft::{MessageKind, RaftResponse, ReplicaLocation, Transport, TransportError};
use shoal_rpc::{Handler, Lane, Rpc, RpcConfig};
use shoal_storage::Engine;

use crate::{Store, StoreConfig};

/// Carries Raft messages over the node-to-node transport.
pub struct RpcTransport {
    rpc: Rpc,
}

impl RpcTransport {
    /// Returns a transport over `rpc`.
    pub fn new(rpc: Rpc) -> Self {
        RpcTransport { rpc }
    }
}

impl Transport for RpcTransport {
    fn send(
        &self,
        to: ReplicaLocation,
        kind: MessageKind,
        message: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let rpc = self.rpc.clone();
        let lane = match kind {
            MessageKind::Raft => Lane::Raft,
            MessageKind::Snapshot => Lane::Snapshot,
        };
        Box::pin(async move {
            rpc.send(to.node_id, lane, message, timeout).await.map_err(|e| match e {
                shoal_rpc::Error::Timeout { .. } => TransportError::Timeout(to.node_id, timeout),
                shoal_rpc::Error::UnknownNode(_) | shoal_rpc::Error::Unreachable { .. } => {
                    TransportError::Unreachable(to.node_id, e.to_string())
                }
                other => TransportError::Network(to.node_id, other.to_string()),
            })
        })
    }
}

/// Hands incoming Raft messages to the store.
#[derive(Default)]
struct StoreHandler {
    store: OnceLock<Weak<Store>>,
}

impl Handler for StoreHandler {
    fn handle(&self, _from: u64, lane: Lane, message: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
        let store = self.store.get().and_then(Weak::upgrade);
        Box::pin(async move {
            match (lane, store) {
                (Lane::Raft | Lane::Snapshot, Some(store)) => store.deliver_raft(&message).await,
                (Lane::Kv, Some(store)) => store.deliver_kv(&message).await,
                (Lane::Control, _) => {
                    RaftResponse::Error("this node takes no control messages".into()).encode()
                }
                (_, None) => RaftResponse::Error("the store is not running".into()).encode(),
            }
        })
    }
}

/// A running node: its transport endpoint and its store.
pub struct Node {
    /// The transport endpoint.
    pub rpc: Rpc,
    /// The store.
    pub store: Arc<Store>,
}

impl Node {
    /// Starts a node listening on `listen_addr` with its store over `engine`.
    pub async fn start(
        config: StoreConfig,
        listen_addr: SocketAddr,
        engine: Arc<dyn Engine>,
        clock: Arc<Clock>,
    ) -> Result<Node, KvError> {
        let handler = Arc::new(StoreHandler::default());
        let rpc =
            Rpc::start(RpcConfig::new(config.node_id, listen_addr), clock.clone(), handler.clone())
                .await
                .map_err(|e| KvError::Unavailable(e.to_string()))?;
        let transport = Arc::new(RpcTransport { rpc: rpc.clone() });
        let store = Store::new(config, engine, clock, transport);
        let _ = handler.store.set(Arc::downgrade(&store));
        Ok(Node { rpc, store })
    }

    /// Stops every replica; the node can then be dropped and its engine reopened.
    pub async fn shutdown(self) {
        self.store.shutdown().await;
    }
}
