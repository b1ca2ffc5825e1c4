//! DistSender against three in-process stores holding three ranges: the meta range and two
//! user ranges split at "m".

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use shoal_api::addressing::meta_record;
use shoal_api::{
    BatchRequest, BatchResponse, KvError, RangeDescriptor, ReplicaDescriptor, Request, Response,
};
use shoal_hlc::Clock;
use shoal_keys::{Key, Span, layout};
use shoal_kvserver::{Store, StoreConfig};
use shoal_raft::RaftTimers;
use shoal_raft::testing::LocalNet;
use shoal_storage::MemoryEngine;

use crate::{DistSender, KvClient, KvOps, NodeSender};

/// Sends straight to the stores, as if every node were one hop away.
struct LocalSender {
    stores: HashMap<u64, Arc<Store>>,
}

impl NodeSender for LocalSender {
    fn send(
        &self,
        node_id: u64,
        batch: BatchRequest,
    ) -> BoxFuture<'static, Result<BatchResponse, KvError>> {
        let store = self.stores.get(&node_id).cloned();
        Box::pin(async move {
            match store {
                Some(store) => store.send(batch).await,
                None => Err(KvError::Unavailable(format!("no node {node_id}"))),
            }
        })
    }
}

fn range(range_id: u64, start: Key, end: Key) -> RangeDescriptor {
    RangeDescriptor {
        range_id,
        start_key: start,
        end_key: end,
        // Replica ids are unique in the cluster: range r's replica on node n is 10 * r + n.
        replicas: (1..=3)
            .map(|n| ReplicaDescriptor { node_id: n, store_id: 1, replica_id: 10 * range_id + n })
            .collect(),
        next_replica_id: 10 * range_id + 4,
        generation: 0,
    }
}

fn ranges() -> Vec<RangeDescriptor> {
    vec![
        range(1, Key::MIN, Key::new(layout::META_MAX)),
        range(2, Key::new(layout::META_MAX), Key::from("m")),
        range(3, Key::from("m"), Key::max()),
    ]
}

async fn cluster() -> (KvClient, Arc<LocalNet>) {
    let clocks = (0..3).map(|_| Arc::new(Clock::system().0)).collect();
    let (client, net, _) = cluster_with(clocks, Arc::new(Clock::system().0)).await;
    (client, net)
}

/// Starts the three stores, node `n` with `clocks[n - 1]`; the client's transactions take
/// their timestamps from `gateway`.
pub(crate) async fn cluster_with(
    clocks: Vec<Arc<Clock>>,
    gateway: Arc<Clock>,
) -> (KvClient, Arc<LocalNet>, HashMap<u64, Arc<Store>>) {
    let net = LocalNet::new();
    let mut stores = HashMap::new();
    for node_id in 1..=3 {
        let config = StoreConfig {
            node_id,
            store_id: 1,
            timers: RaftTimers::FAST,
            scan_filters: std::sync::Arc::new(shoal_api::scan_filter::NoScanFilters),
        };
        let store = Store::new(
            config,
            Arc::new(MemoryEngine::new()),
            clocks[node_id as usize - 1].clone(),
            net.transport(node_id),
        );
        for descriptor in ranges() {
            let replica = store.add_replica(descriptor.clone()).await.unwrap();
            net.register(
                node_id,
                descriptor.range_id,
                replica.replica_id(),
                replica.raft().clone(),
            );
        }
        stores.insert(node_id, store);
    }
    for descriptor in ranges() {
        stores[&1].bootstrap(descriptor.range_id).await.unwrap();
    }
    let sender =
        DistSender::new(ranges()[0].clone(), Arc::new(LocalSender { stores: stores.clone() }));
    // The addressing records, written through range 1 like any other keys.
    let records: Vec<Request> = ranges()
        .iter()
        .map(|d| {
            let (key, value) = meta_record(d);
            Request::Put { key, value }
        })
        .collect();
    sender.send(records).await.unwrap();
    (KvClient::new(sender, gateway), net, stores)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_route_to_their_ranges_and_scans_cross_range_boundaries() {
    let (client, _net) = cluster().await;
    let keys = ["a", "f", "l", "m", "q", "z"];
    for k in keys {
        client.put(k, format!("v-{k}")).await.unwrap();
    }
    for k in keys {
        assert_eq!(client.get(k).await.unwrap(), Some(format!("v-{k}").into_bytes()), "{k}");
    }
    let cache = client.sender().cache();
    assert_eq!(cache.lookup(&Key::from("a")).unwrap().descriptor.range_id, 2);
    assert_eq!(cache.lookup(&Key::from("q")).unwrap().descriptor.range_id, 3);

    let all = client.scan(Span::new("a", "zz"), None).await.unwrap();
    let got: Vec<String> =
        all.iter().map(|(k, _)| String::from_utf8(k.as_bytes().to_vec()).unwrap()).collect();
    assert_eq!(got, keys, "a scan across both user ranges returns every key in order");
    let reverse = client.reverse_scan(Span::new("a", "zz"), None).await.unwrap();
    let got: Vec<String> =
        reverse.iter().map(|(k, _)| String::from_utf8(k.as_bytes().to_vec()).unwrap()).collect();
    assert_eq!(got, ["z", "q", "m", "l", "f", "a"]);
    let limited = client.scan(Span::new("f", "zz"), Some(3)).await.unwrap();
    assert_eq!(limited.len(), 3, "the limit spans the boundary: f, l, m");
    assert_eq!(limited[2].0, Key::from("m"));
    let limited = client.reverse_scan(Span::new("a", "r"), Some(3)).await.unwrap();
    let got: Vec<&[u8]> = limited.iter().map(|(k, _)| k.as_bytes()).collect();
    assert_eq!(got, [b"q", b"m", b"l"]);

    // A batch touching both ranges: its parts go out in parallel and come back in order.
    let responses = client
        .sender()
        .send(vec![Request::Get { key: Key::from("z") }, Request::Get { key: Key::from("a") }])
        .await
        .unwrap();
    assert_eq!(
        responses,
        vec![Response::Get(Some(b"v-z".to_vec())), Response::Get(Some(b"v-a".to_vec()))]
    );

    let deleted = client
        .sender()
        .send(vec![Request::DeleteRange { span: Span::new("f", "r") }])
        .await
        .unwrap();
    assert_eq!(deleted, vec![Response::DeleteRange(4)]);
    assert_eq!(client.scan(Span::new("a", "zz"), None).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_through_the_client() {
    let (client, _net) = cluster().await;
    client.compare_and_set("reg", None, "1").await.unwrap();
    let err = client.compare_and_set("reg", None, "2").await.unwrap_err();
    assert_eq!(err, KvError::ConditionFailed { actual: Some(b"1".to_vec()) });
    client.compare_and_set("reg", Some(b"1".to_vec()), "2").await.unwrap();
    client.delete("reg").await.unwrap();
    assert_eq!(client.get("reg").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_follow_the_lease_when_a_leaseholder_is_cut_off() {
    let (client, net) = cluster().await;
    client.put("q", "before").await.unwrap();
    let leaseholder = client.sender().cache().leaseholder(3).expect("learned from the write");
    net.isolate(leaseholder.node_id);
    // The client keeps trying replicas until one of the other two wins an election. A write
    // that reached the cut-off leaseholder first comes back ambiguous; a plain put is safe to
    // repeat.
    let mut attempts = 0;
    loop {
        match client.put("q", "after").await {
            Ok(()) => break,
            Err(KvError::Ambiguous(_)) if attempts < 3 => attempts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(client.get("q").await.unwrap(), Some(b"after".to_vec()));
    let now = client.sender().cache().leaseholder(3).unwrap();
    assert_ne!(now.node_id, leaseholder.node_id);
    net.heal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_never_sent_alongside_writes_on_another_range() {
    let (client, _net) = cluster().await;
    let txn = client.begin();
    txn.put("a", "1").await.unwrap();
    let meta = txn.meta();
    // As a coordinator with a stale view of the ranges might send it: writes on both user
    // ranges and the commit in one batch.
    let batch = vec![
        Request::Put { key: Key::from("b"), value: b"2".to_vec() },
        Request::Put { key: Key::from("q"), value: b"3".to_vec() },
        Request::EndTxn {
            key: meta.anchor.clone(),
            commit: true,
            lock_spans: vec![Span::point("a"), Span::point("b"), Span::point("q")],
        },
    ];
    let refused = client.sender().send_txn(batch, Some(txn.transaction())).await.unwrap_err();
    assert!(matches!(refused, KvError::RangeKeyMismatch { .. }), "{refused}");
    // Nothing was sent: the transaction still commits in two phases, with exactly its writes.
    txn.put("q", "3").await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(client.get("a").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(client.get("b").await.unwrap(), None);
    assert_eq!(client.get("q").await.unwrap(), Some(b"3".to_vec()));
}
