//! Ranges that manage themselves, on in-process nodes over loopback sockets and RocksDB:
//! up-replication and rebalancing onto new nodes, replacement of a dead node's replicas.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shoal_api::RangeDescriptor;
use shoal_api::addressing::decode_meta_record;
use shoal_hlc::Clock;
use shoal_keys::{Key, Span, layout};
use tempfile::TempDir;

use crate::tests::{config, pending, wait_until};
use crate::{Server, ServerConfig};

/// Queues every 100 ms, liveness timeout 1 s: a dead node is replaced within seconds.
fn queue_config(dir: &Path, join: Vec<String>) -> ServerConfig {
    let mut config = config(dir, join);
    config.queue_interval = Duration::from_millis(100);
    config.replica_change_timeout = Duration::from_secs(20);
    config
}

/// Starts `n` nodes: three initialized into a cluster, the rest joined afterwards.
async fn cluster(dirs: &[TempDir]) -> Vec<Server> {
    let clock = || Arc::new(Clock::system().0);
    let n1 = Server::bind(queue_config(dirs[0].path(), vec![]), clock()).await.unwrap();
    let seed = vec![n1.rpc_addr().to_string()];
    let mut nodes = vec![n1.clone()];
    for dir in &dirs[1..3] {
        let node = Server::bind(queue_config(dir.path(), seed.clone()), clock()).await.unwrap();
        tokio::spawn({
            let node = node.clone();
            async move { node.join_cluster().await }
        });
        nodes.push(node);
    }
    wait_until("nodes 2 and 3 said hello", || pending(&n1) == 2).await;
    n1.init_cluster("queues".into()).await.unwrap();
    for node in &nodes {
        node.join_cluster().await.unwrap();
    }
    for dir in &dirs[3..] {
        let node = Server::bind(queue_config(dir.path(), seed.clone()), clock()).await.unwrap();
        node.join_cluster().await.unwrap();
        nodes.push(node);
    }
    nodes
}

/// Polls `condition` every 100 ms until it holds, failing the test after `limit`.
async fn wait_for<F: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut condition: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every range's addressing record, read through `node`.
async fn addressing(node: &Server) -> Vec<RangeDescriptor> {
    let span = Span { start: Key::new(layout::META_PREFIX), end: Key::new(layout::META_MAX) };
    let Ok(rows) = node.require_cluster().unwrap().kv.scan(span, None).await else {
        return Vec::new();
    };
    rows.iter().map(|(_, value)| decode_meta_record(value).unwrap()).collect()
}

fn key(i: usize) -> String {
    format!("k{i:04}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_nodes_replicas_are_replaced_and_every_key_reads_back() {
    let dirs: Vec<TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs).await;
    let first = nodes[0].require_cluster().unwrap();
    let kv = &first.kv;
    const KEYS: usize = 440;
    for i in 0..KEYS {
        kv.put(key(i), format!("v{i}")).await.unwrap();
    }
    // 22 splits: 24 ranges with the meta range.
    for i in 1..=22 {
        crate::admin::split(&nodes[i % 3], key(i * 20).into()).await.unwrap();
    }
    // Nodes 4 and 5 joined with nothing; the replicate queues move replicas onto them.
    let counts = |nodes: &[Server]| -> Vec<usize> {
        nodes.iter().map(|n| n.require_cluster().unwrap().store.replicas().len()).collect()
    };
    wait_for("nodes 4 and 5 host replicas", Duration::from_secs(60), || async {
        counts(&nodes).iter().all(|&c| c >= 8)
    })
    .await;
    println!("replicas per node after rebalancing: {:?}", counts(&nodes));

    // Node 4 dies. Every range it held gets a replica elsewhere.
    let dead = nodes[3].clone();
    let dead_id = dead.node_id();
    dead.shutdown().await;
    let survivors: Vec<Server> = nodes.iter().filter(|n| n.node_id() != dead_id).cloned().collect();
    let check = &survivors[1];
    wait_for("every range has 3 replicas on live nodes", Duration::from_secs(60), || async {
        let ranges = addressing(check).await;
        ranges.len() == 24
            && ranges
                .iter()
                .all(|d| d.replicas.len() == 3 && d.replicas.iter().all(|r| r.node_id != dead_id))
    })
    .await;
    // The records match what the replicas themselves say.
    wait_for("removed replicas are collected", Duration::from_secs(30), || async {
        let mut hosted: BTreeMap<u64, usize> = BTreeMap::new();
        for node in &survivors {
            for replica in node.require_cluster().unwrap().store.replicas() {
                *hosted.entry(replica.descriptor().range_id).or_default() += 1;
            }
        }
        hosted.len() == 24 && hosted.values().all(|&n| n == 3)
    })
    .await;
    println!("replicas per surviving node: {:?}", counts(&survivors));
    let reader = survivors[2].require_cluster().unwrap();
    for i in 0..KEYS {
        assert_eq!(reader.kv.get(key(i)).await.unwrap(), Some(format!("v{i}").into_bytes()));
    }
    let rows = reader.kv.scan(Span::new("k", "l"), None).await.unwrap();
    assert_eq!(rows.len(), KEYS, "a scan sees every key exactly once");
}
