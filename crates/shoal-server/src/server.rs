//! A running node: listeners, store, routing and gossip, from `shoal start` to shutdown.
//!
//! ```text
//!   Server::bind ── open store ── bind HTTP ── start transport ──┬─ store has an ident:
//!                                                                │    start replicas, gossip
//!                                                                └─ empty store: wait
//!   Server::join_cluster ── Hello each --join address ──┬─ one is initialized: Join, get an id
//!                                                       ├─ `shoal init` reached us: Bootstrap
//!                                                       └─ nobody answered in time: error
//! ```
//!
//! Once part of a cluster the node is a [`Cluster`]: its ident, its store, a [`KvClient`]
//! that routes through DistSender from this node, and the gossip table. Every incoming message
//! is dispatched by lane: Raft and snapshots to the store's replicas, KV batches to the store,
//! control messages to [`crate::membership`].
//!
//! # Hazards
//!
//! Starting a store whose ident was written but whose cluster never finished forming (a crash
//! during `shoal init`) is not repaired automatically: wipe the store and start again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use shoal_api::{KvError, RangeDescriptor};
use shoal_hlc::{Clock, Timestamp};
use shoal_kvclient::{DistSender, KvClient};
use shoal_kvserver::{RpcTransport, Store, StoreConfig};
use shoal_raft::{RaftResponse, RaftTimers};
use shoal_rpc::{Handler, Lane, Rpc, RpcConfig};
use shoal_storage::{Engine, RocksEngine};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::control::{self, ControlRequest, ControlResponse};
use crate::error::{Error, Result};
use crate::gossip::{Gossip, NodeStatus};
use crate::ident::{self, NodeAddress, StoreIdent};
use crate::kv_sender::RpcNodeSender;
use crate::test_hooks::TestHooks;

/// How a node is started.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The store directory.
    pub store_path: PathBuf,
    /// The node-to-node address (also what peers are told).
    pub listen_addr: SocketAddr,
    /// The node-to-node address peers are told, when it differs from `listen_addr` (which
    /// may then be a wildcard such as `0.0.0.0:26257`).
    pub advertise_addr: Option<SocketAddr>,
    /// The HTTP API address.
    pub http_addr: SocketAddr,
    /// The PostgreSQL wire protocol address; None serves no pgwire.
    pub pg_addr: Option<SocketAddr>,
    /// Nodes to contact to find the cluster, as `host:port` of their `--listen-addr`.
    pub join: Vec<String>,
    /// How long an empty store waits for any `--join` address to answer before giving up.
    pub join_timeout: Duration,
    /// Raft timers.
    pub timers: RaftTimers,
    /// How often a node gossips its status.
    pub gossip_interval: Duration,
    /// How long a node may go unheard before it counts as dead: by gossip for routing, and by
    /// its liveness record (heartbeated every quarter of it) for replica placement.
    pub liveness_timeout: Duration,
    /// How often the replicate and split queues look at this node's ranges.
    pub queue_interval: Duration,
    /// How long after its liveness record expired a node's replicas are replaced elsewhere.
    pub dead_node_grace: Duration,
    /// How long one replica change (including the new replica's snapshot) may take.
    pub replica_change_timeout: Duration,
    /// Test hooks (`--enable-test-hooks`); `None` in production.
    pub test_hooks: Option<TestHooks>,
    /// Worker threads of the SQL runtime, where queries' operators run
    /// ([`shoal_sql::runtime`]): by default one per core.
    pub sql_threads: usize,
    /// Each statement's memory budget while the `sql.query_memory_limit` setting is 0 (its
    /// default): a sixteenth of the machine's memory, at least 64 MiB.
    pub sql_query_memory_limit: usize,
}

impl ServerConfig {
    /// Returns a configuration with production defaults.
    pub fn new(store_path: PathBuf, listen_addr: SocketAddr, http_addr: SocketAddr) -> Self {
        ServerConfig {
            store_path,
            listen_addr,
            advertise_addr: None,
            http_addr,
            pg_addr: None,
            join: Vec::new(),
            join_timeout: Duration::from_secs(60),
            timers: RaftTimers::PRODUCTION,
            gossip_interval: Duration::from_millis(500),
            liveness_timeout: Duration::from_secs(4),
            queue_interval: Duration::from_secs(2),
            dead_node_grace: Duration::from_secs(10),
            replica_change_timeout: Duration::from_secs(60),
            test_hooks: None,
            sql_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            sql_query_memory_limit: default_query_memory_limit(),
        }
    }
}

/// A sixteenth of the machine's memory (`MemTotal` in `/proc/meminfo`), at least 64 MiB;
/// 256 MiB where the machine does not say.
fn default_query_memory_limit() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|info| {
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    });
    match total {
        Some(bytes) => (bytes / 16).max(64 << 20),
        None => shoal_sql::memory::DEFAULT_QUERY_MEMORY_LIMIT,
    }
}

/// The node's part in an initialized cluster.
pub struct Cluster {
    /// The store's ident.
    pub ident: StoreIdent,
    /// The store.
    pub store: Arc<Store>,
    /// A KV client that routes from this node.
    pub kv: KvClient,
    /// Node statuses.
    pub gossip: Gossip,
    /// Where every known node listens, by id.
    pub(crate) peers: Mutex<BTreeMap<u64, NodeAddress>>,
    /// Transactions held open over HTTP.
    pub sessions: crate::http_txn::TxnSessions,
    /// The SQL layer, on [`Cluster::kv`].
    pub sql: Arc<shoal_sql::SqlEngine>,
}

/// A node. Cloning shares it.
#[derive(Clone)]
pub struct Server {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ServerConfig,
    pub(crate) clock: Arc<Clock>,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) rpc: Rpc,
    pub(crate) http_addr: SocketAddr,
    pub(crate) pg_addr: Option<SocketAddr>,
    pub(crate) started_at: Timestamp,
    /// The cluster named by the store's ident when the node started, before its replicas run.
    pub(crate) stored_cluster_id: Option<String>,
    pub(crate) cluster: OnceLock<Arc<Cluster>>,
    /// Serializes bootstrap, join and init: a node joins at most one cluster, once.
    pub(crate) forming: tokio::sync::Mutex<()>,
    pub(crate) initialized: Notify,
    /// Empty nodes that said hello recently, by RPC address: candidates for `shoal init`.
    pub(crate) pending: Mutex<BTreeMap<String, (NodeAddress, tokio::time::Instant)>>,
    tasks: Mutex<JoinSet<()>>,
    /// Counters of what the node's queues did.
    pub(crate) stats: NodeStats,
    /// Tells the HTTP server to stop; its task, awaited on shutdown.
    http_stop: tokio::sync::watch::Sender<bool>,
    http_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The pgwire listener's task (it ends its connections when told to stop).
    pg_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Server {
    /// Opens the store, binds both listeners and, if the store already belongs to a cluster,
    /// starts its replicas. The HTTP API serves from here on.
    pub async fn bind(config: ServerConfig, clock: Arc<Clock>) -> Result<Server> {
        let (flag, told) = match config.advertise_addr {
            Some(addr) => ("--advertise-addr", addr),
            None => ("--listen-addr", config.listen_addr),
        };
        if told.ip().is_unspecified() {
            return Err(Error::Listen {
                flag,
                addr: told.to_string(),
                reason: "peers are told this address, so it must be one they can dial, not a \
                         wildcard (listen on a wildcard with --advertise-addr naming this host)"
                    .into(),
            });
        }
        let engine = open_engine(&config.store_path).await?;
        let ident = ident::read_ident(engine.as_ref())?;
        let http =
            tokio::net::TcpListener::bind(config.http_addr).await.map_err(|e| Error::Listen {
                flag: "--http-addr",
                addr: config.http_addr.to_string(),
                reason: e.to_string(),
            })?;
        let http_addr = http.local_addr().map_err(|e| Error::Listen {
            flag: "--http-addr",
            addr: config.http_addr.to_string(),
            reason: e.to_string(),
        })?;
        let pg = match config.pg_addr {
            Some(addr) => {
                let listen_error = |e: std::io::Error| Error::Listen {
                    flag: "--pg-addr",
                    addr: addr.to_string(),
                    reason: e.to_string(),
                };
                let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen_error)?;
                let bound = listener.local_addr().map_err(listen_error)?;
                Some((listener, bound))
            }
            None => None,
        };
        let handler = Arc::new(ServerHandler::default());
        let node_id = ident.as_ref().map_or(shoal_rpc::wire::ANY_NODE, |i| i.node_id);
        let rpc =
            Rpc::start(RpcConfig::new(node_id, config.listen_addr), clock.clone(), handler.clone())
                .await
                .map_err(|e| Error::Listen {
                    flag: "--listen-addr",
                    addr: config.listen_addr.to_string(),
                    reason: match e {
                        shoal_rpc::Error::Listen { reason, .. } => reason,
                        other => other.to_string(),
                    },
                })?;
        let inner = Arc::new(Inner {
            started_at: clock.now(),
            stored_cluster_id: ident.as_ref().map(|i| i.cluster_id.clone()),
            config,
            clock,
            engine,
            rpc,
            http_addr,
            pg_addr: pg.as_ref().map(|(_, addr)| *addr),
            cluster: OnceLock::new(),
            forming: tokio::sync::Mutex::new(()),
            initialized: Notify::new(),
            pending: Mutex::default(),
            tasks: Mutex::new(JoinSet::new()),
            stats: NodeStats::default(),
            http_stop: tokio::sync::watch::Sender::new(false),
            http_task: Mutex::new(None),
            pg_task: Mutex::new(None),
        });
        let _ = handler.inner.set(Arc::downgrade(&inner));
        let server = Server { inner };
        // A member serves HTTP once its replicas run; until then its listener only queues
        // connections. An empty node serves at once: that is how `shoal init` reaches it.
        if let Some(ident) = ident {
            server.check_join_addresses(&ident).await?;
            server.activate(ident, Vec::new(), Vec::new()).await?;
        }
        if let Some((listener, _)) = pg {
            let stop = server.inner.http_stop.subscribe();
            let serving = tokio::spawn(crate::pgwire::serve(listener, server.clone(), stop));
            *server.inner.pg_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(serving);
        }
        let serving = crate::http::serve(http, server.clone(), server.inner.http_stop.subscribe());
        *server.inner.http_task.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(tokio::spawn(serving));
        Ok(server)
    }

    /// Returns once this node belongs to a cluster: at once if it already does; otherwise by
    /// joining through a `--join` address or being bootstrapped by `shoal init`. Fails if no
    /// `--join` address answered within the join timeout.
    pub async fn join_cluster(&self) -> Result<()> {
        crate::membership::join_cluster(self).await
    }

    /// Bootstraps a new cluster named `cluster_id` from this node and the empty nodes it can
    /// reach (what `shoal init` asks for).
    pub async fn init_cluster(&self, cluster_id: String) -> Result<crate::InitReport> {
        crate::membership::init_cluster(self, cluster_id).await
    }

    /// Returns the node's part in the cluster, once it has one.
    pub fn cluster(&self) -> Option<Arc<Cluster>> {
        self.inner.cluster.get().cloned()
    }

    /// Returns the id of the cluster this node belongs to, if any (also while it starts).
    pub fn cluster_id(&self) -> Option<String> {
        let running = self.cluster().map(|c| c.ident.cluster_id.clone());
        running.or_else(|| self.inner.stored_cluster_id.clone())
    }

    /// Returns the cluster part or [`Error::NotInitialized`].
    pub fn require_cluster(&self) -> Result<Arc<Cluster>> {
        self.cluster().ok_or(Error::NotInitialized)
    }

    /// Returns this node's id (0 before it has one).
    pub fn node_id(&self) -> u64 {
        self.inner.rpc.node_id()
    }

    /// Returns the node-to-node address.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.inner.config.advertise_addr.unwrap_or_else(|| self.inner.rpc.local_addr())
    }

    /// Returns the PostgreSQL wire protocol address, if this node serves it.
    pub fn pg_addr(&self) -> Option<SocketAddr> {
        self.inner.pg_addr
    }

    /// Returns the HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.inner.http_addr
    }

    /// Returns the transport endpoint (tests use its fault layer).
    pub fn rpc(&self) -> &Rpc {
        &self.inner.rpc
    }

    /// Stops the node's tasks and replicas; its store can then be reopened.
    pub async fn shutdown(self) {
        // HTTP first, gracefully: requests in flight finish (bounded), connections close.
        self.inner.http_stop.send_replace(true);
        let http = self.inner.http_task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut http) = http
            && tokio::time::timeout(Duration::from_secs(5), &mut http).await.is_err()
        {
            http.abort();
        }
        // pgwire sessions end with the node (the same stop signal): a session left running
        // would go on serving through a stopped node and keep its store open. Their open
        // transactions are abandoned, as when a client disconnects.
        let pg = self.inner.pg_task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(pg) = pg {
            let _ = pg.await;
        }
        let mut tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        // Waits for the tasks to end, not just asks: they hold the node, and the store's
        // RocksDB lock is released only when the last holder is gone.
        tasks.shutdown().await;
        if let Some(cluster) = self.cluster() {
            cluster.store.shutdown().await;
        }
    }

    pub(crate) fn address(&self) -> NodeAddress {
        NodeAddress {
            node_id: self.node_id(),
            rpc_addr: self.rpc_addr().to_string(),
            http_addr: self.http_addr().to_string(),
        }
    }

    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()).spawn(task);
    }

    /// Makes this node part of the cluster named by `ident`: starts the store with the replicas
    /// it recorded plus `new_ranges`, learns `peers`, then records the ident (last, so a crash
    /// before it leaves an empty node, not a half-joined one) and starts gossiping.
    pub(crate) async fn activate(
        &self,
        ident: StoreIdent,
        new_ranges: Vec<RangeDescriptor>,
        peers: Vec<NodeAddress>,
    ) -> Result<Arc<Cluster>> {
        let inner = &self.inner;
        inner.rpc.set_node_id(ident.node_id);
        let store_config = StoreConfig {
            node_id: ident.node_id,
            store_id: ident.store_id,
            timers: inner.config.timers,
            scan_filters: Arc::new(shoal_sql::pushdown::SqlScanFilters),
        };
        let transport = Arc::new(RpcTransport::new(inner.rpc.clone()));
        let store = Store::new(store_config, inner.engine.clone(), inner.clock.clone(), transport);
        let mut known = ident::read_peers(inner.engine.as_ref())?;
        known.extend(peers);
        let peers: BTreeMap<u64, NodeAddress> = known
            .into_iter()
            .filter(|p| p.node_id != ident.node_id)
            .map(|p| (p.node_id, p))
            .collect();
        for peer in peers.values() {
            set_peer_address(&inner.rpc, peer);
        }
        store.load_replicas().await?;
        for descriptor in new_ranges {
            store.create_replica(descriptor).await?;
        }
        ident::write_ident(inner.engine.as_ref(), &ident)?;
        ident::write_peers(inner.engine.as_ref(), &peers.values().cloned().collect::<Vec<_>>())?;
        let sender = Arc::new(RpcNodeSender::new(inner.rpc.clone(), &store));
        let meta = DistSender::new(ident.meta_range.clone(), sender);
        let skip_refresh = inner.config.test_hooks.as_ref().is_some_and(|h| h.unsafe_skip_refresh);
        let kv = KvClient::new(meta, inner.clock.clone()).with_unsafe_skip_refresh(skip_refresh);
        let gossip = Gossip::new(ident.node_id, inner.config.liveness_timeout);
        let sessions = crate::http_txn::TxnSessions::default();
        let sql_runtime = shoal_sql::runtime::SqlRuntime::start(inner.config.sql_threads)
            .map_err(|e| Error::SqlRuntime(e.to_string()))?;
        let sql = shoal_sql::SqlEngine::with_runtime(
            kv.clone(),
            ident.node_id,
            Some(Arc::new(sql_runtime)),
        );
        sql.set_query_memory_limit(inner.config.sql_query_memory_limit);
        let cluster =
            Arc::new(Cluster { ident, store, kv, gossip, peers: Mutex::new(peers), sessions, sql });
        if inner.cluster.set(cluster.clone()).is_err() {
            return Err(Error::Peer("this node joined a cluster twice".into()));
        }
        gossip_now(self, &cluster).await;
        self.spawn(gossip_loop(Arc::downgrade(inner), inner.config.gossip_interval));
        self.spawn(liveness_loop(Arc::downgrade(inner), inner.config.liveness_timeout));
        self.spawn(crate::replicate_queue::run(Arc::downgrade(inner), inner.config.queue_interval));
        self.spawn(sql_settings_loop(Arc::downgrade(inner), inner.config.queue_interval));
        inner.initialized.notify_waiters();
        tracing::info!(node_id = cluster.ident.node_id, cluster_id = %cluster.ident.cluster_id, "node is part of the cluster");
        Ok(cluster)
    }

    /// Refuses to start a store of one cluster among nodes of another. Unreachable addresses
    /// are fine here: the peers may be restarting too.
    async fn check_join_addresses(&self, ident: &StoreIdent) -> Result<()> {
        for (addr, answer) in crate::membership::hello_all(self).await {
            if let Ok(ControlResponse::Hello { cluster_id: Some(peer_cluster), .. }) = answer
                && peer_cluster != ident.cluster_id
            {
                return Err(Error::ForeignCluster {
                    store_cluster: ident.cluster_id.clone(),
                    addr,
                    peer_cluster,
                });
            }
        }
        Ok(())
    }

    /// This node's status as gossiped.
    pub(crate) fn own_status(&self, cluster: &Cluster) -> NodeStatus {
        let replicas = cluster.store.replicas();
        NodeStatus {
            address: self.address(),
            replicas: replicas.len() as u64,
            leases: replicas.iter().filter(|r| r.is_leaseholder()).count() as u64,
            qps: replicas.iter().filter(|r| r.is_leaseholder()).map(|r| r.load_qps()).sum::<f64>()
                as u64,
            started_at: self.inner.started_at,
            updated_at: self.inner.clock.now(),
            meta_range: cluster
                .store
                .replica(cluster.ident.meta_range.range_id)
                .ok()
                .map(|r| r.descriptor()),
        }
    }

    /// Merges gossiped statuses, learning the addresses of nodes new to this one.
    pub(crate) fn merge_statuses(&self, cluster: &Cluster, statuses: Vec<NodeStatus>) {
        for meta_range in statuses.iter().filter_map(|s| s.meta_range.as_ref()) {
            cluster.kv.sender().update_meta_range(meta_range);
        }
        let news = cluster.gossip.merge(statuses);
        let mut peers = cluster.peers.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = false;
        for status in news {
            let address = status.address;
            if address.node_id == cluster.ident.node_id
                || peers.get(&address.node_id) == Some(&address)
            {
                continue;
            }
            set_peer_address(&self.inner.rpc, &address);
            peers.insert(address.node_id, address);
            changed = true;
        }
        if changed {
            let peers: Vec<_> = peers.values().cloned().collect();
            if let Err(e) = ident::write_peers(self.inner.engine.as_ref(), &peers) {
                tracing::warn!("recording peers failed: {e}");
            }
        }
    }
}

fn set_peer_address(rpc: &Rpc, peer: &NodeAddress) {
    match peer.rpc_addr.parse() {
        Ok(addr) => rpc.set_address(peer.node_id, addr),
        Err(e) => {
            tracing::warn!("node {} has a bad address {:?}: {e}", peer.node_id, peer.rpc_addr)
        }
    }
}

async fn open_engine(path: &std::path::Path) -> Result<Arc<dyn Engine>> {
    let path = path.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || RocksEngine::open(&path))
        .await
        .map_err(|e| Error::Store(format!("opening the store panicked: {e}")))?;
    Ok(Arc::new(opened.map_err(Error::storage)?))
}

/// One gossip round: publish this node's status and exchange tables with every known node.
async fn gossip_now(server: &Server, cluster: &Arc<Cluster>) {
    server.merge_statuses(cluster, vec![server.own_status(cluster)]);
    let targets: Vec<u64> =
        cluster.peers.lock().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
    let request = control::encode(&ControlRequest::Gossip {
        cluster_id: cluster.ident.cluster_id.clone(),
        statuses: cluster.gossip.statuses(),
    });
    let timeout = server.inner.config.gossip_interval.max(Duration::from_millis(500)) * 2;
    let calls = targets.into_iter().map(|node_id| {
        let rpc = server.inner.rpc.clone();
        let request = request.clone();
        async move { rpc.send(node_id, Lane::Control, request, timeout).await }
    });
    for reply in futures::future::join_all(calls).await {
        if let Ok(bytes) = reply
            && let Ok(ControlResponse::Gossip(statuses)) = control::decode(&bytes)
        {
            server.merge_statuses(cluster, statuses);
        }
    }
}

async fn gossip_loop(inner: Weak<Inner>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        let server = Server { inner };
        let Some(cluster) = server.cluster() else { continue };
        gossip_now(&server, &cluster).await;
    }
}

/// Heartbeats this node's liveness record every quarter of the liveness timeout.
async fn liveness_loop(inner: Weak<Inner>, timeout: Duration) {
    loop {
        {
            let Some(inner) = inner.upgrade() else { return };
            let server = Server { inner };
            if let Some(cluster) = server.cluster() {
                let now = server.inner.clock.now();
                let beat = crate::liveness::heartbeat(&cluster.kv, server.node_id(), now, timeout);
                if let Err(e) = beat.await {
                    tracing::debug!("liveness heartbeat failed: {e}");
                }
            }
        }
        tokio::time::sleep(timeout / 4).await;
    }
}

/// Applies the SQL cluster settings to this node's SQL engine, once per queue interval.
async fn sql_settings_loop(inner: Weak<Inner>, interval: Duration) {
    loop {
        {
            let Some(inner) = inner.upgrade() else { return };
            if let Some(cluster) = inner.cluster.get() {
                let setting = crate::settings::SQL_QUERY_MEMORY_LIMIT;
                match crate::settings::get(&cluster.kv, setting).await {
                    Ok(0) => {
                        cluster.sql.set_query_memory_limit(inner.config.sql_query_memory_limit)
                    }
                    Ok(bytes) => cluster
                        .sql
                        .set_query_memory_limit(usize::try_from(bytes).unwrap_or(usize::MAX)),
                    Err(e) => tracing::debug!("reading {}: {e}", setting.name),
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Counters of what a node's queues did, since it started.
#[derive(Debug, Default)]
pub(crate) struct NodeStats {
    /// Replica changes made by this node's replicate queue.
    pub(crate) replica_changes: AtomicU64,
    /// Splits made by this node's split queue.
    pub(crate) splits: AtomicU64,
    /// Replicate-queue passes run.
    pub(crate) passes: AtomicU64,
}

/// The answer to a message this node cannot handle, in the form its lane expects.
fn not_serving(lane: Lane, reason: &str) -> Vec<u8> {
    match lane {
        Lane::Kv => shoal_api::encode(&Err::<shoal_api::BatchResponse, _>(KvError::Unavailable(
            reason.to_string(),
        ))),
        Lane::Control => control::encode(&ControlResponse::Error(reason.to_string())),
        Lane::Raft | Lane::Snapshot => RaftResponse::Error(reason.to_string()).encode(),
    }
}

/// Dispatches incoming messages by lane.
#[derive(Default)]
struct ServerHandler {
    inner: OnceLock<Weak<Inner>>,
}

impl Handler for ServerHandler {
    fn handle(&self, _from: u64, lane: Lane, message: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
        let server = self.inner.get().and_then(Weak::upgrade).map(|inner| Server { inner });
        Box::pin(async move {
            let Some(server) = server else {
                return not_serving(lane, "the node is shutting down");
            };
            let cluster = server.cluster();
            match (lane, cluster) {
                (Lane::Control, _) => crate::membership::handle_control(&server, &message).await,
                (Lane::Raft | Lane::Snapshot, Some(cluster)) => {
                    cluster.store.deliver_raft(&message).await
                }
                (Lane::Kv, Some(cluster)) => cluster.store.deliver_kv(&message).await,
                (_, None) => not_serving(lane, "this node is not part of a cluster yet"),
            }
        })
    }
}
