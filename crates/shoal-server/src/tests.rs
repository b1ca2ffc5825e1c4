//! In-process nodes over real loopback sockets and RocksDB stores: forming a cluster, joining,
//! restarting, and the ways `shoal start` refuses to run.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shoal_hlc::Clock;
use shoal_kvclient::KvOps;
use shoal_raft::RaftTimers;
use tempfile::TempDir;

use shoal_api::Request;
use shoal_api::addressing::range_id_generator;

use crate::{Error, Server, ServerConfig};

pub(crate) fn config(dir: &Path, join: Vec<String>) -> ServerConfig {
    let any = "127.0.0.1:0".parse().unwrap();
    let mut config = ServerConfig::new(dir.to_path_buf(), any, any);
    config.join = join;
    config.join_timeout = Duration::from_secs(1);
    config.timers = RaftTimers::FAST;
    config.gossip_interval = Duration::from_millis(50);
    config.liveness_timeout = Duration::from_secs(1);
    // Queues off: these tests place replicas and leases themselves (see queue_tests.rs).
    config.queue_interval = Duration::from_secs(3600);
    config
}

async fn bind(dir: &Path, join: Vec<String>) -> crate::Result<Server> {
    bind_with(dir, join, RaftTimers::FAST).await
}

async fn bind_with(dir: &Path, join: Vec<String>, timers: RaftTimers) -> crate::Result<Server> {
    let mut config = config(dir, join);
    config.timers = timers;
    Server::bind(config, Arc::new(Clock::system().0)).await
}

/// Waits until `condition` holds, failing the test after 10 seconds.
pub(crate) async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Binds a node on a store that a node of this process just shut down. Tasks that served the
/// old node's last requests may still hold the store's RocksDB lock for a moment (a separate
/// process would have released it at exit), so this waits for the lock to be free.
async fn reopen(dir: &Path) -> Server {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match bind(dir, vec![]).await {
            Ok(node) => return node,
            Err(Error::Store(e))
                if e.contains("lock") && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopening {}: {e}", dir.display()),
        }
    }
}

pub(crate) fn pending(server: &Server) -> usize {
    server.inner.pending.lock().unwrap().len()
}

fn live_nodes(server: &Server) -> usize {
    server.cluster().map_or(0, |c| c.gossip.view().iter().filter(|v| v.live).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_form_a_cluster_and_a_fourth_joins() {
    let dirs: Vec<TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = bind(dirs[0].path(), vec![]).await.unwrap();
    let seed = vec![n1.rpc_addr().to_string()];
    let n2 = bind(dirs[1].path(), seed.clone()).await.unwrap();
    let n3 = bind(dirs[2].path(), seed.clone()).await.unwrap();
    let joins: Vec<_> = [&n2, &n3]
        .into_iter()
        .map(|n| {
            tokio::spawn({
                let n = n.clone();
                async move { n.join_cluster().await }
            })
        })
        .collect();
    // The empty nodes announce themselves to node 1, which takes them into the cluster.
    wait_until("nodes 2 and 3 said hello", || pending(&n1) == 2).await;
    let report = n1.init_cluster("test".into()).await.unwrap();
    let ids: Vec<_> = report.nodes.iter().map(|n| n.node_id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    for join in joins {
        join.await.unwrap().unwrap();
    }
    for node in [&n1, &n2, &n3] {
        let cluster = node.require_cluster().unwrap();
        assert_eq!(cluster.ident.cluster_id, "test");
        assert_eq!(cluster.store.replicas().len(), 2, "node {} hosts both ranges", node.node_id());
    }
    // Any node routes to the leaseholder, wherever it is.
    n3.require_cluster().unwrap().kv.put("a", "1").await.unwrap();
    assert_eq!(n2.require_cluster().unwrap().kv.get("a").await.unwrap(), Some(b"1".to_vec()));

    // A node started later joins through any member and gets the next node id.
    let n4 = bind(dirs[3].path(), vec![n2.rpc_addr().to_string()]).await.unwrap();
    n4.join_cluster().await.unwrap();
    assert_eq!(n4.node_id(), 4);
    let c4 = n4.require_cluster().unwrap();
    assert_eq!(c4.kv.get("a").await.unwrap(), Some(b"1".to_vec()));
    assert!(c4.store.replicas().is_empty());
    for node in [&n1, &n2, &n3, &n4] {
        wait_until("every node sees four live nodes", || live_nodes(node) == 4).await;
    }
    assert!(
        matches!(n2.init_cluster("again".into()).await, Err(Error::AlreadyInitialized(id)) if id == "test")
    );

    // A node that stops is declared dead by the others once the liveness timeout passes.
    n4.shutdown().await;
    wait_until("node 4 is dead", || live_nodes(&n1) == 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_ident_and_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let node = bind(dir.path(), vec![]).await.unwrap();
    node.init_cluster("solo".into()).await.unwrap();
    node.require_cluster().unwrap().kv.put("k", "v").await.unwrap();
    node.shutdown().await;

    let node = reopen(dir.path()).await;
    let cluster = node.require_cluster().expect("the store remembers its cluster");
    assert_eq!((cluster.ident.cluster_id.as_str(), cluster.ident.node_id), ("solo", 1));
    assert_eq!(cluster.kv.get("k").await.unwrap(), Some(b"v".to_vec()));
    node.join_cluster().await.unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_node_gives_up_when_no_join_address_answers() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let node = bind(dir.path(), vec![closed.to_string()]).await.unwrap();
    let error = node.join_cluster().await.unwrap_err();
    assert!(matches!(error, Error::JoinUnreachable { .. }), "{error}");
    assert!(error.to_string().contains(&closed.to_string()), "{error}");
    node.shutdown().await;

    let error = bind(dir.path(), vec!["no-such-host.invalid:1".into()]).await.unwrap();
    let error = error.join_cluster().await.unwrap_err();
    assert!(matches!(error, Error::BadJoinAddress { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_another_cluster_is_refused() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = bind(dir_a.path(), vec![]).await.unwrap();
    a.init_cluster("cluster-a".into()).await.unwrap();
    a.shutdown().await;
    let b = bind(dir_b.path(), vec![]).await.unwrap();
    b.init_cluster("cluster-b".into()).await.unwrap();

    let error = bind(dir_a.path(), vec![b.rpc_addr().to_string()]).await.err().expect("refused");
    assert!(matches!(error, Error::ForeignCluster { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("cluster-a") && message.contains("cluster-b"), "{message}");
    b.shutdown().await;
}

#[tokio::test]
async fn a_port_in_use_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = config(dir.path(), vec![]);
    config.http_addr = taken.local_addr().unwrap();
    let error = Server::bind(config, Arc::new(Clock::system().0)).await.err().expect("refused");
    assert!(matches!(error, Error::Listen { flag: "--http-addr", .. }), "{error}");

    let mut config = self::config(dir.path(), vec![]);
    config.listen_addr = taken.local_addr().unwrap();
    let error = Server::bind(config, Arc::new(Clock::system().0)).await.err().expect("refused");
    assert!(matches!(error, Error::Listen { flag: "--listen-addr", .. }), "{error}");

    // A wildcard cannot be told to peers: it needs an address to advertise.
    let mut config = self::config(dir.path(), vec![]);
    config.listen_addr = "0.0.0.0:0".parse().unwrap();
    let error = Server::bind(config, Arc::new(Clock::system().0)).await.err().expect("refused");
    assert!(error.to_string().contains("--advertise-addr"), "{error}");
}

/// Starts three empty nodes and initializes them into a cluster.
async fn three_node_cluster(dirs: &[TempDir]) -> Vec<Server> {
    three_node_cluster_with(dirs, RaftTimers::FAST).await
}

async fn three_node_cluster_with(dirs: &[TempDir], timers: RaftTimers) -> Vec<Server> {
    let n1 = bind_with(dirs[0].path(), vec![], timers).await.unwrap();
    let seed = vec![n1.rpc_addr().to_string()];
    let mut nodes = vec![n1.clone()];
    for dir in &dirs[1..3] {
        let node = bind_with(dir.path(), seed.clone(), timers).await.unwrap();
        tokio::spawn({
            let node = node.clone();
            async move { node.join_cluster().await }
        });
        nodes.push(node);
    }
    wait_until("nodes 2 and 3 said hello", || pending(&n1) == 2).await;
    n1.init_cluster("splits".into()).await.unwrap();
    for node in &nodes {
        node.join_cluster().await.unwrap();
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manual_splits_route_keys_and_scans_cross_ranges() {
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = three_node_cluster(&dirs).await;
    let kv = |i: usize| nodes[i].require_cluster().unwrap();
    let key = |i: usize| format!("k{i:03}");
    for i in 0..60 {
        kv(i % 3).kv.put(key(i), format!("v{i}")).await.unwrap();
    }
    // Split through a node that need not hold the lease; then split the right-hand side again.
    let (lhs, rhs) = crate::admin::split(&nodes[2], key(20).into()).await.unwrap();
    assert_eq!((lhs.range_id, rhs.range_id), (2, 3));
    assert_eq!(rhs.start_key, shoal_keys::Key::from(key(20)));
    let (_, rhs2) = crate::admin::split(&nodes[1], key(40).into()).await.unwrap();
    assert_eq!(rhs2.range_id, 4);
    // A split key that is already a boundary is refused, as is a split of the meta range.
    assert!(crate::admin::split(&nodes[0], key(40).into()).await.is_err());
    for i in 60..100 {
        kv(i % 3).kv.put(key(i), format!("v{i}")).await.unwrap();
    }
    for (n, node) in nodes.iter().enumerate() {
        let cluster = node.require_cluster().unwrap();
        wait_until("every node hosts ranges 1-4", || cluster.store.replicas().len() == 4).await;
        let rows = cluster.kv.scan(shoal_keys::Span::new("k", "l"), None).await.unwrap();
        let keys: Vec<String> =
            rows.iter().map(|(k, _)| String::from_utf8(k.as_bytes().to_vec()).unwrap()).collect();
        assert_eq!(keys, (0..100).map(key).collect::<Vec<_>>(), "scan through node {}", n + 1);
        let reversed = cluster.kv.reverse_scan(shoal_keys::Span::new("k", "l"), Some(3)).await;
        let reversed: Vec<_> = reversed.unwrap().into_iter().map(|(k, _)| k).collect();
        let expected: Vec<shoal_keys::Key> = [99, 98, 97].map(|i| key(i).into()).into();
        assert_eq!(reversed, expected);
    }
    // Every range answers from its own leaseholder: a point write lands in each.
    for i in [5, 25, 45, 85] {
        kv(0).kv.compare_and_set(key(i), Some(format!("v{i}").into_bytes()), "new").await.unwrap();
    }

    // A split whose addressing records were never written (its coordinator died right after
    // it): lookups still find the old, wider record, and the store's redirect names the range
    // that holds the key, so reads and writes there still succeed.
    let new_range_id = kv(0).kv.increment(range_id_generator(), 1).await.unwrap() as u64;
    let split = Request::AdminSplit { key: key(90).into(), new_range_id };
    kv(0).kv.sender().send(vec![split]).await.unwrap();
    for (n, node) in nodes.iter().enumerate() {
        let cluster = node.require_cluster().unwrap();
        let got = cluster.kv.get(key(95)).await;
        assert_eq!(got.unwrap(), Some(b"v95".to_vec()), "through node {}", n + 1);
        cluster.kv.put(key(96), "again").await.unwrap();
    }

    // A node restarted after the splits starts all its replicas from its store.
    let restarted = nodes[2].clone();
    drop(nodes);
    restarted.shutdown().await;
    let node = reopen(dirs[2].path()).await;
    let cluster = node.require_cluster().unwrap();
    // A split the node applies again while replaying its log starts the right-hand replica a
    // moment later.
    let ranges = || -> Vec<u64> {
        cluster.store.replicas().iter().map(|r| r.descriptor().range_id).collect()
    };
    wait_until("the restarted node runs all five ranges", || ranges().len() == 5).await;
    assert_eq!(ranges(), vec![1, 2, 3, 4, new_range_id]);
    assert_eq!(cluster.kv.get(key(85)).await.unwrap(), Some(b"new".to_vec()));
}

/// Found by the Jepsen split nemesis: the range split off used to stay leaderless (and so
/// unavailable) until an election timeout fired, because the proposer's one campaign reached
/// peers that had not created their replica yet. With elections that would take a minute,
/// writes to the new range must still succeed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_right_hand_range_of_a_split_gets_a_leader_without_an_election_timeout() {
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let timers =
        RaftTimers { election_min_ms: 60_000, election_max_ms: 120_000, ..RaftTimers::FAST };
    let nodes = three_node_cluster_with(&dirs, timers).await;
    let cluster = nodes[0].require_cluster().unwrap();
    cluster.kv.put("before", "1").await.unwrap();
    let (_, rhs) = crate::admin::split(&nodes[0], "m".into()).await.unwrap();
    cluster.kv.put("x", "2").await.unwrap();
    assert_eq!(cluster.kv.get("x").await.unwrap(), Some(b"2".to_vec()));
    let leader = cluster.store.replica(rhs.range_id).unwrap();
    assert!(leader.is_leaseholder(), "the split's proposer leads the new range");
}
