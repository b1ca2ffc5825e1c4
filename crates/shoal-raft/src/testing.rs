//! Test support: an in-process network of replicas that can isolate nodes, and an applier
//! whose commands are plain write batches. Compiled for tests and with the `testing` feature;
//! never part of a server.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use shoal_storage::{Cf, Reader, WriteBatch};

use crate::network::{MessageKind, RaftEnvelope, RaftResponse, Transport, TransportError, deliver};
use crate::{
    Applier, Command, CommandResponse, EngineSpan, EntryInfo, Replica, ReplicaLocation, Result,
};

/// Applies commands that are encoded write batches and replicates the whole MVCC column
/// family. The response is the number of writes.
pub struct BatchApplier;

impl Applier for BatchApplier {
    fn apply(
        &self,
        _entry: EntryInfo<'_>,
        command: &Command,
        _reader: &dyn Reader,
        batch: &mut WriteBatch,
    ) -> CommandResponse {
        let writes = WriteBatch::decode(&command.0).expect("tests propose valid batches");
        let count = u8::try_from(writes.len()).unwrap_or(u8::MAX);
        batch.extend(writes);
        CommandResponse(vec![count])
    }

    fn replicated_spans(&self, _range_id: u64, _reader: &dyn Reader) -> Result<Vec<EngineSpan>> {
        Ok(vec![EngineSpan { cf: Cf::Mvcc, start: vec![], end: vec![0xff, 0xff] }])
    }
}

/// An in-process network: replicas by `(node, range, replica)`, and isolated nodes.
#[derive(Default)]
pub struct LocalNet {
    replicas: Mutex<HashMap<(u64, u64, u64), Replica>>,
    isolated: Mutex<HashSet<u64>>,
}

impl LocalNet {
    /// Returns a new, empty network.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Registers a replica so messages can reach it.
    pub fn register(&self, node_id: u64, range_id: u64, replica_id: u64, replica: Replica) {
        self.lock_replicas().insert((node_id, range_id, replica_id), replica);
    }

    /// Removes a replica.
    pub fn unregister(&self, node_id: u64, range_id: u64, replica_id: u64) {
        self.lock_replicas().remove(&(node_id, range_id, replica_id));
    }

    /// Returns a registered replica.
    pub fn replica(&self, node_id: u64, range_id: u64, replica_id: u64) -> Option<Replica> {
        self.lock_replicas().get(&(node_id, range_id, replica_id)).cloned()
    }

    /// Cuts `node_id` off from every other node.
    pub fn isolate(&self, node_id: u64) {
        self.isolated.lock().unwrap_or_else(|p| p.into_inner()).insert(node_id);
    }

    /// Reconnects every node.
    pub fn heal(&self) {
        self.isolated.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Returns node `node_id`'s transport.
    pub fn transport(self: &Arc<Self>, node_id: u64) -> Arc<dyn Transport> {
        Arc::new(NodeTransport { node_id, net: self.clone() })
    }

    fn lock_replicas(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, u64, u64), Replica>> {
        self.replicas.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One node's view of a [`LocalNet`]. Messages go through the real encoding.
struct NodeTransport {
    node_id: u64,
    net: Arc<LocalNet>,
}

impl Transport for NodeTransport {
    fn send(
        &self,
        to: ReplicaLocation,
        _kind: MessageKind,
        message: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, std::result::Result<Vec<u8>, TransportError>> {
        let isolated = self.net.isolated.lock().unwrap_or_else(|p| p.into_inner());
        if isolated.contains(&self.node_id) || isolated.contains(&to.node_id) {
            let err = TransportError::Unreachable(to.node_id, "partitioned".into());
            // A real partition costs the sender a failed connection attempt; failing at once
            // would let retry loops spin without ever yielding the thread.
            return Box::pin(async move {
                tokio::time::sleep(timeout.min(Duration::from_millis(20))).await;
                Err(err)
            });
        }
        drop(isolated);
        let net = self.net.clone();
        Box::pin(async move {
            let envelope = match RaftEnvelope::decode(&message) {
                Ok(envelope) => envelope,
                Err(e) => return Ok(RaftResponse::Error(e.to_string()).encode()),
            };
            let Some(replica) = net.replica(to.node_id, envelope.range_id, envelope.to_replica)
            else {
                return Ok(RaftResponse::Error("no such replica".into()).encode());
            };
            match tokio::time::timeout(timeout, deliver(&replica, envelope.request)).await {
                Ok(response) => Ok(response.encode()),
                Err(_) => Err(TransportError::Timeout(to.node_id, timeout)),
            }
        })
    }
}
