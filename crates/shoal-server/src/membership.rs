//! Forming and growing a cluster: `shoal init`, joining, and the control messages behind them.
//!
//! ```text
//!   shoal init --host n1 ──HTTP──▶ n1.init_cluster
//!     n1 ── Hello ──▶ each --join address: empty nodes answer "no cluster"
//!     plan: n1 + the first two empty nodes become nodes 1..3, ranges 1 and 2 on all three
//!     n1 ── Bootstrap(plan) ──▶ n2, n3: each starts its replicas and records its ident
//!     every first node seeds the addressing records and id counters into its replicas;
//!     n1 initializes both Raft groups
//!   a node started later ── Hello ──▶ an initialized node ── Join ──▶ gets node id 4 (KV
//!     increment of the counter), the meta range and the peer list; it hosts no replica yet
//! ```
//!
//! # Invariants
//!
//! - A node takes at most one ident, once: bootstrap, join and init hold the `forming` lock and
//!   refuse a node that already has one (on disk, even before its replicas run).
//! - Node ids come from one replicated counter, seeded in the first ranges' data before any
//!   node can serve, so two nodes never share an id.
//! - A first node that has not received its bootstrap yet is refused when it tries to join
//!   through another first node, so it never takes a second id.
//!
//! # Out of scope
//!
//! Moving replicas to nodes that join later (the replicate queue of a later issue). A failed
//! `shoal init` (a first node died mid-way) is not rolled back: wipe the stores and retry.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use shoal_api::ReplicaDescriptor;
use shoal_api::addressing::{bootstrap_ranges, meta_record, node_id_generator, range_id_generator};
use shoal_kvclient::KvOps;
use shoal_rpc::Lane;
use tokio::time::Instant;

use crate::control::{self, BootstrapPlan, ControlRequest, ControlResponse};
use crate::error::{Error, Result};
use crate::ident::{NodeAddress, StoreIdent};
use crate::server::Server;

/// How many nodes hold the first ranges' replicas.
pub const REPLICATION_FACTOR: usize = 3;
/// The deadline of one control call.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an empty node asks its `--join` addresses again.
const JOIN_RETRY: Duration = Duration::from_millis(500);
/// How recently an empty node must have said hello to be a candidate for `shoal init`.
const PENDING_FRESH: Duration = Duration::from_secs(10);

/// What `shoal init` did.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The new cluster's id.
    pub cluster_id: String,
    /// The first nodes, each holding a replica of every first range.
    pub nodes: Vec<NodeAddress>,
}

/// Resolves the `--join` addresses, leaving out this node's own.
pub fn join_addresses(server: &Server) -> Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    let own = server.rpc_addr();
    let mut out = Vec::new();
    for spec in &server.inner.config.join {
        let mut resolved = spec
            .to_socket_addrs()
            .map_err(|e| Error::BadJoinAddress { addr: spec.clone(), reason: e.to_string() })?;
        let addr = resolved.next().ok_or_else(|| Error::BadJoinAddress {
            addr: spec.clone(),
            reason: "it resolves to no address".into(),
        })?;
        if addr != own && !out.contains(&addr) {
            out.push(addr);
        }
    }
    Ok(out)
}

/// Says hello to every `--join` address at once; returns each address with its answer.
pub(crate) async fn hello_all(
    server: &Server,
) -> Vec<(String, std::result::Result<ControlResponse, String>)> {
    let Ok(addresses) = join_addresses(server) else { return Vec::new() };
    let hello = control::encode(&ControlRequest::Hello { from: server.address() });
    let calls = addresses.into_iter().map(|addr| {
        let hello = hello.clone();
        async move { (addr.to_string(), call(server, addr, hello).await) }
    });
    join_all(calls).await
}

async fn call(
    server: &Server,
    addr: SocketAddr,
    request: Vec<u8>,
) -> std::result::Result<ControlResponse, String> {
    let reply = server
        .inner
        .rpc
        .call_addr(addr, Lane::Control, request, CONTROL_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    match control::decode(&reply)? {
        ControlResponse::Error(e) => Err(e),
        answer => Ok(answer),
    }
}

/// See [`Server::join_cluster`].
pub(crate) async fn join_cluster(server: &Server) -> Result<()> {
    join_addresses(server)?;
    let deadline = Instant::now() + server.inner.config.join_timeout;
    let mut anyone_answered = false;
    loop {
        // Registered before checking, so a bootstrap landing in between is not missed.
        let initialized = server.inner.initialized.notified();
        if server.cluster().is_some() {
            return Ok(());
        }
        let answers = hello_all(server).await;
        let mut failures = Vec::new();
        for (addr, answer) in answers {
            match answer {
                Ok(ControlResponse::Hello { cluster_id: Some(_), .. }) => {
                    anyone_answered = true;
                    match join_through(server, &addr).await {
                        Ok(()) => return Ok(()),
                        Err(e) => tracing::warn!("joining through {addr} failed: {e}"),
                    }
                }
                Ok(_) => anyone_answered = true,
                Err(e) => failures.push(format!("{addr}: {e}")),
            }
        }
        if server.cluster().is_some() {
            return Ok(());
        }
        if !anyone_answered && !failures.is_empty() && Instant::now() >= deadline {
            return Err(Error::JoinUnreachable {
                waited_secs: server.inner.config.join_timeout.as_secs(),
                details: failures.join("; "),
            });
        }
        tokio::select! {
            _ = initialized => {}
            _ = tokio::time::sleep(JOIN_RETRY) => {}
        }
    }
}

async fn join_through(server: &Server, addr: &str) -> Result<()> {
    let target: SocketAddr = addr.parse().map_err(|e| Error::Peer(format!("{addr}: {e}")))?;
    let request = control::encode(&ControlRequest::Join { from: server.address() });
    // Not under the forming lock: a bootstrap of this node must not wait for this call.
    let answer = call(server, target, request).await.map_err(Error::Peer)?;
    let _forming = server.inner.forming.lock().await;
    if server.cluster().is_some() {
        return Ok(()); // Bootstrapped meanwhile; the id just handed out stays unused.
    }
    match answer {
        ControlResponse::Joined { cluster_id, node_id, meta_range, peers } => {
            let ident = StoreIdent { cluster_id, node_id, store_id: node_id, meta_range };
            server.activate(ident, Vec::new(), peers).await?;
            Ok(())
        }
        other => Err(Error::Peer(format!("unexpected answer to join: {other:?}"))),
    }
}

/// Handles a control message and returns the encoded [`ControlResponse`].
pub(crate) async fn handle_control(server: &Server, message: &[u8]) -> Vec<u8> {
    let response = match control::decode::<ControlRequest>(message) {
        Ok(request) => {
            handle(server, request).await.unwrap_or_else(|e| ControlResponse::Error(e.to_string()))
        }
        Err(e) => ControlResponse::Error(e),
    };
    control::encode(&response)
}

async fn handle(server: &Server, request: ControlRequest) -> Result<ControlResponse> {
    match request {
        ControlRequest::Hello { from } => {
            if from.node_id == 0 {
                let mut pending = server.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
                pending.insert(from.rpc_addr.clone(), (from, Instant::now()));
            }
            Ok(ControlResponse::Hello { cluster_id: server.cluster_id(), node: server.address() })
        }
        ControlRequest::Join { from } => {
            let cluster = server.require_cluster()?;
            let named = {
                let peers = cluster.peers.lock().unwrap_or_else(|p| p.into_inner());
                peers.values().find(|p| p.rpc_addr == from.rpc_addr).map(|p| p.node_id)
            };
            if let Some(node_id) = named {
                // A first node that has not received its own bootstrap yet: it must wait for
                // it rather than join as a stranger under a new id.
                return Err(Error::Peer(format!(
                    "the node at {} is being bootstrapped as node {node_id}",
                    from.rpc_addr
                )));
            }
            let node_id = cluster.kv.increment(node_id_generator(), 1).await? as u64;
            let mut peers = cluster.gossip.addresses();
            peers.retain(|p| p.node_id != node_id);
            tracing::info!(node_id, rpc_addr = %from.rpc_addr, "a node joined");
            Ok(ControlResponse::Joined {
                cluster_id: cluster.ident.cluster_id.clone(),
                node_id,
                meta_range: cluster.kv.sender().meta_range(),
                peers,
            })
        }
        ControlRequest::Bootstrap(plan) => {
            // Detached: the caller giving up must not stop the node half-way into the cluster.
            let server = server.clone();
            let task = tokio::spawn(async move {
                let _forming = server.inner.forming.lock().await;
                if let Some(cluster_id) = server.cluster_id() {
                    return Err(Error::AlreadyInitialized(cluster_id));
                }
                apply_plan(&server, plan).await
            });
            task.await.map_err(|e| Error::Peer(format!("bootstrap failed: {e}")))??;
            Ok(ControlResponse::Bootstrapped)
        }
        ControlRequest::Gossip { cluster_id, statuses } => {
            let cluster = server.require_cluster()?;
            if cluster_id != cluster.ident.cluster_id {
                return Err(Error::Peer(format!(
                    "this node belongs to cluster {}, not {cluster_id}",
                    cluster.ident.cluster_id
                )));
            }
            server.merge_statuses(&cluster, statuses);
            Ok(ControlResponse::Gossip(cluster.gossip.statuses()))
        }
        ControlRequest::CreateReplica { descriptor, replica_id } => {
            let cluster = server.require_cluster()?;
            let location = cluster.store.location();
            let replica = ReplicaDescriptor {
                node_id: location.node_id,
                store_id: location.store_id,
                replica_id,
            };
            cluster.store.create_learner_replica(descriptor, replica).await?;
            Ok(ControlResponse::ReplicaCreated(replica))
        }
        ControlRequest::RangeStatuses => {
            let cluster = server.require_cluster()?;
            Ok(ControlResponse::RangeStatuses(crate::status::local_statuses(&cluster)))
        }
        ControlRequest::DestroyReplica { range_id, replica_id } => {
            let cluster = server.require_cluster()?;
            match cluster.store.replica(range_id) {
                Ok(replica) if replica.replica_id() == replica_id => {
                    cluster.store.destroy_replica(range_id, replica_id).await?;
                }
                _ => {}
            }
            Ok(ControlResponse::Done)
        }
    }
}

async fn apply_plan(server: &Server, plan: BootstrapPlan) -> Result<()> {
    let meta_range =
        plan.ranges.first().cloned().ok_or_else(|| Error::Peer("empty plan".into()))?;
    let rows = first_rows(&plan);
    let ident = StoreIdent {
        cluster_id: plan.cluster_id,
        node_id: plan.node_id,
        store_id: plan.node_id,
        meta_range,
    };
    let ranges = plan.ranges.into_iter().filter(|r| r.replica_on(plan.node_id).is_some()).collect();
    let cluster = server.activate(ident, ranges, plan.nodes).await?;
    cluster.store.seed_data(&rows, plan.timestamp)?;
    Ok(())
}

/// The data every first replica starts with, written before the Raft groups start so that no
/// request can see the cluster without it: the addressing records of the first ranges and
/// the id counters (which a join or split increments).
fn first_rows(plan: &BootstrapPlan) -> Vec<(shoal_keys::Key, Vec<u8>)> {
    let mut rows: Vec<_> = plan.ranges.iter().map(meta_record).collect();
    rows.push((node_id_generator(), plan.nodes.len().to_string().into_bytes()));
    rows.push((range_id_generator(), plan.ranges.len().to_string().into_bytes()));
    rows
}

/// Bootstraps a new cluster from this node and the empty nodes it can reach.
pub(crate) async fn init_cluster(server: &Server, cluster_id: String) -> Result<InitReport> {
    // Detached: an operator interrupting `shoal init` must not leave the cluster half-formed.
    let detached = server.clone();
    tokio::spawn(async move { init_detached(&detached, cluster_id).await })
        .await
        .map_err(|e| Error::Peer(format!("init failed: {e}")))?
}

async fn init_detached(server: &Server, cluster_id: String) -> Result<InitReport> {
    let _forming = server.inner.forming.lock().await;
    if let Some(cluster_id) = server.cluster_id() {
        return Err(Error::AlreadyInitialized(cluster_id));
    }
    let mut candidates = vec![server.address()];
    for (addr, answer) in hello_all(server).await {
        match answer {
            Ok(ControlResponse::Hello { cluster_id: Some(existing), .. }) => {
                return Err(Error::Peer(format!(
                    "the node at {addr} already belongs to cluster {existing}; start this node \
                     with --join pointing at it instead"
                )));
            }
            Ok(ControlResponse::Hello { cluster_id: None, node }) => candidates.push(node),
            Ok(_) => {}
            Err(e) => tracing::info!("init: {addr} did not answer: {e}"),
        }
    }
    {
        let pending = server.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (node, heard) in pending.values() {
            if heard.elapsed() <= PENDING_FRESH {
                candidates.push(node.clone());
            }
        }
    }
    let mut nodes: Vec<NodeAddress> = Vec::new();
    for candidate in candidates {
        if nodes.len() < REPLICATION_FACTOR
            && !nodes.iter().any(|n| n.rpc_addr == candidate.rpc_addr)
        {
            let node_id = nodes.len() as u64 + 1;
            nodes.push(NodeAddress { node_id, ..candidate });
        }
    }
    let replicas: Vec<ReplicaDescriptor> = nodes
        .iter()
        .map(|n| ReplicaDescriptor {
            node_id: n.node_id,
            store_id: n.node_id,
            replica_id: n.node_id,
        })
        .collect();
    let ranges = bootstrap_ranges(&replicas);
    let timestamp = server.inner.clock.now();
    let plan_for = |node_id| BootstrapPlan {
        cluster_id: cluster_id.clone(),
        node_id,
        nodes: nodes.clone(),
        ranges: ranges.clone(),
        timestamp,
    };
    for node in nodes.iter().skip(1) {
        let addr: SocketAddr =
            node.rpc_addr.parse().map_err(|e| Error::Peer(format!("{}: {e}", node.rpc_addr)))?;
        let request = control::encode(&ControlRequest::Bootstrap(plan_for(node.node_id)));
        call(server, addr, request).await.map_err(|e| {
            Error::Peer(format!("node {} at {addr} could not take its part: {e}", node.node_id))
        })?;
    }
    apply_plan(server, plan_for(1)).await?;
    let cluster = server.require_cluster()?;
    for range in &ranges {
        cluster.store.bootstrap(range.range_id).await?;
    }
    // Answers once both ranges have leaders: the cluster then serves.
    cluster.kv.get(node_id_generator()).await?;
    tracing::info!(%cluster_id, nodes = nodes.len(), "cluster initialized");
    Ok(InitReport { cluster_id, nodes })
}
