//! Delivers DistSender's batches to the node holding the replica: in process for this node,
//! over the transport's KV lane for the others.
//!
//! ```text
//!   DistSender ─▶ RpcNodeSender ─┬─ node == self ─▶ Store::send
//!                                └─ otherwise ─▶ Rpc(Lane::Kv) ─▶ peer's Store::deliver_kv
//! ```
//!
//! Transport failures are classified by what they mean for the batch: a peer that was never
//! reached did not see it (retry another replica); a call that broke or timed out may have
//! been applied, which for a write is an ambiguous result the caller must hear about.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use shoal_api::{BatchRequest, BatchResponse, KvError};
use shoal_kvclient::NodeSender;
use shoal_kvserver::Store;
use shoal_rpc::{Lane, Rpc};

/// The deadline of one KV call to a peer. Longer than a replica's own bound on a request
/// (four election timeouts), so a slow but live leaseholder answers before the caller gives up.
pub const KV_CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A [`NodeSender`] over the node-to-node transport.
pub struct RpcNodeSender {
    rpc: Rpc,
    local: Weak<Store>,
    timeout: Duration,
}

impl RpcNodeSender {
    /// Returns a sender from the node whose store is `local`.
    pub fn new(rpc: Rpc, local: &Arc<Store>) -> Self {
        RpcNodeSender { rpc, local: Arc::downgrade(local), timeout: KV_CALL_TIMEOUT }
    }
}

impl NodeSender for RpcNodeSender {
    fn send(
        &self,
        node_id: u64,
        batch: BatchRequest,
    ) -> BoxFuture<'static, Result<BatchResponse, KvError>> {
        let (rpc, local, timeout) = (self.rpc.clone(), self.local.clone(), self.timeout);
        Box::pin(async move {
            if node_id == rpc.node_id() {
                let store = local
                    .upgrade()
                    .ok_or_else(|| KvError::Unavailable("this node is shutting down".into()))?;
                return store.send(batch).await;
            }
            let writes = batch.requests.iter().any(|r| r.is_write());
            let message = shoal_api::encode(&batch);
            match rpc.send(node_id, Lane::Kv, message, timeout).await {
                Ok(reply) => shoal_api::decode::<Result<BatchResponse, KvError>>(&reply)?,
                Err(
                    e @ (shoal_rpc::Error::Timeout { .. } | shoal_rpc::Error::Connection { .. }),
                ) if writes => Err(KvError::Ambiguous(e.to_string())),
                Err(e) => Err(KvError::Unavailable(e.to_string())),
            }
        })
    }
}
