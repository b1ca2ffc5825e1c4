//! Three nodes on loopback sockets with RocksDB stores: Raft over the real transport, and a
//! node restarted from its own store.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shoal_api::{BatchRequest, KvError, Request, Response};
use shoal_hlc::{Clock, Timestamp};
use shoal_keys::Key;
use shoal_raft::{RaftTimers, handle};
use shoal_storage::mvcc::{self, ReadOptions};
use shoal_storage::{Engine, RocksEngine};

use crate::test_util::descriptor;
use crate::{Node, StoreConfig};

const RANGE: u64 = 1;
const WAIT: Duration = Duration::from_secs(15);

async fn start(node_id: u64, dir: &Path) -> (Node, Arc<dyn Engine>) {
    let engine: Arc<dyn Engine> =
        Arc::new(RocksEngine::open(dir.join(format!("n{node_id}"))).unwrap());
    let config = StoreConfig {
        node_id,
        store_id: 1,
        timers: RaftTimers::FAST,
        scan_filters: std::sync::Arc::new(shoal_api::scan_filter::NoScanFilters),
    };
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let node =
        Node::start(config, listen, engine.clone(), Arc::new(Clock::system().0)).await.unwrap();
    node.store.add_replica(descriptor()).await.unwrap();
    (node, engine)
}

fn connect(nodes: &[&Node]) {
    for a in nodes {
        for b in nodes {
            a.rpc.set_address(b.rpc.node_id(), b.rpc.local_addr());
        }
    }
}

/// Sends to whichever node leads, following redirects and waiting out elections.
async fn send(nodes: &[&Node], requests: Vec<Request>) -> Vec<Response> {
    let ids: Vec<u64> = nodes.iter().map(|n| n.rpc.node_id()).collect();
    let mut i = 0;
    for _ in 0..20 {
        let batch = BatchRequest::new(RANGE, requests.clone());
        match nodes[i].store.send(batch).await {
            Ok(response) => return response.responses,
            Err(KvError::NotLeaseholder { leaseholder: Some(r), .. })
                if ids.contains(&r.node_id) =>
            {
                i = ids.iter().position(|id| *id == r.node_id).expect("checked");
            }
            Err(KvError::NotLeaseholder { .. } | KvError::Unavailable(_)) => {
                // Replica n lives on node n: wait until one of these nodes leads.
                let observer = nodes[0].store.replica(RANGE).unwrap();
                let leader = handle::wait_for_leader(observer.raft(), WAIT, |l| ids.contains(&l))
                    .await
                    .expect("a leader among the nodes");
                i = ids.iter().position(|id| *id == leader).expect("accepted");
                let replica = nodes[i].store.replica(RANGE).unwrap();
                assert!(
                    handle::wait_for_lease(replica.raft(), WAIT).await,
                    "n{leader} has no lease"
                );
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the leaseholder kept moving")
}

fn put(i: usize) -> Request {
    Request::Put {
        key: Key::from(format!("key{i:04}").as_str()),
        value: format!("v{i}").into_bytes(),
    }
}

/// Waits until `node`'s engine holds every key `0..n`, and at least what the leaseholder among
/// `from` reports applied. (The leaseholder's metrics may lag the writes it acknowledged, so
/// the keys themselves are the condition.)
async fn caught_up(from: &[&Node], node: &Node, engine: &dyn Engine, n: usize) {
    let leader = from
        .iter()
        .find(|f| f.store.replica(RANGE).unwrap().is_leaseholder())
        .expect("a leaseholder");
    let index =
        handle::applied_index(leader.store.replica(RANGE).unwrap().raft()).expect("applied");
    let replica = node.store.replica(RANGE).unwrap();
    assert!(
        handle::wait_for_applied(replica.raft(), index, WAIT).await,
        "node never applied {index}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let missing: Vec<String> = (0..n)
            .map(|i| format!("key{i:04}"))
            .filter(|key| {
                let read = ReadOptions::default();
                mvcc::get(engine, key.as_bytes(), Timestamp::MAX, read).unwrap().is_none()
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "missing after {WAIT:?}: {missing:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_over_sockets_and_a_restarted_node_catches_up_from_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let (n1, _e1) = start(1, dir.path()).await;
    let (n2, _e2) = start(2, dir.path()).await;
    let (n3, e3) = start(3, dir.path()).await;
    connect(&[&n1, &n2, &n3]);
    n1.store.bootstrap(RANGE).await.unwrap();

    for i in 0..100 {
        send(&[&n1, &n2, &n3], vec![put(i)]).await;
    }
    caught_up(&[&n1, &n2, &n3], &n3, &*e3, 100).await;

    // Stop node 3 and reopen its RocksDB store.
    n3.shutdown().await;
    drop(e3);
    for i in 100..200 {
        send(&[&n1, &n2], vec![put(i)]).await;
    }
    let (n3, e3) = start(3, dir.path()).await;
    connect(&[&n1, &n2, &n3]);
    caught_up(&[&n1, &n2], &n3, &*e3, 200).await;
    let responses = send(&[&n3, &n1, &n2], vec![Request::Get { key: Key::from("key0150") }]).await;
    assert_eq!(responses, vec![Response::Get(Some(b"v150".to_vec()))]);
}

/// A descriptor record that names no replica on this node (what an apply in flight while a
/// removed replica was destroyed can leave) does not stop the store from starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_record_of_another_nodes_replica_does_not_stop_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (node, engine) = start(1, dir.path()).await;
    let mut leftover = descriptor();
    leftover.range_id = 9;
    leftover.replicas.retain(|r| r.node_id != 1);
    let key =
        shoal_keys::layout::range_local_key(9, shoal_keys::layout::RangeLocalKind::Descriptor);
    let mut batch = shoal_storage::WriteBatch::new();
    batch.put(shoal_storage::Cf::Local, key.into_bytes(), shoal_api::encode(&leftover));
    engine.write(&batch, shoal_storage::WriteOptions::SYNC).unwrap();
    // The leftover is the only record (range 1 was started without one): skipped, not an
    // error.
    assert_eq!(node.store.load_replicas().await.unwrap(), 0);
    assert!(node.store.replica(9).is_err());
    assert!(node.store.replica(1).is_ok());
}
