//! Three stores in one process over the in-memory Raft network: KV batches on one range.

use std::sync::Arc;
use std::time::Duration;

use shoal_api::{BatchRequest, KvError, Request, Response};
use shoal_hlc::Clock;
use shoal_keys::{Key, Span, layout};
use shoal_raft::testing::LocalNet;
use shoal_raft::{RaftTimers, handle};
use shoal_storage::mvcc::key::encode_prefix;
use shoal_storage::{Cf, MemoryEngine, WriteBatch};

use crate::test_util::descriptor;
use crate::{Store, StoreConfig};

const RANGE: u64 = 1;
const WAIT: Duration = Duration::from_secs(10);

struct Cluster {
    net: Arc<LocalNet>,
    stores: Vec<Arc<Store>>,
}

impl Cluster {
    async fn start() -> Cluster {
        Self::start_with(RaftTimers::FAST).await
    }

    async fn start_with(timers: RaftTimers) -> Cluster {
        let net = LocalNet::new();
        let mut stores = Vec::new();
        for node_id in 1..=3 {
            let config = StoreConfig {
                node_id,
                store_id: 1,
                timers,
                scan_filters: std::sync::Arc::new(shoal_api::scan_filter::NoScanFilters),
            };
            let clock = Arc::new(Clock::system().0);
            let store =
                Store::new(config, Arc::new(MemoryEngine::new()), clock, net.transport(node_id));
            let replica = store.add_replica(descriptor()).await.unwrap();
            net.register(node_id, RANGE, node_id, replica.raft().clone());
            stores.push(store);
        }
        stores[0].bootstrap(RANGE).await.unwrap();
        Cluster { net, stores }
    }

    fn store(&self, node_id: u64) -> &Store {
        &self.stores[node_id as usize - 1]
    }

    /// Sends a batch, following NotLeaseholder hints and retrying while there is no leader, as
    /// the DistSender will.
    async fn send(&self, requests: Vec<Request>) -> Result<Vec<Response>, KvError> {
        self.send_among(&[1, 2, 3], requests).await
    }

    async fn send_among(
        &self,
        nodes: &[u64],
        requests: Vec<Request>,
    ) -> Result<Vec<Response>, KvError> {
        let mut target = nodes[0];
        for _ in 0..20 {
            let batch = BatchRequest::new(RANGE, requests.clone());
            match self.store(target).send(batch).await {
                Ok(response) => return Ok(response.responses),
                Err(KvError::NotLeaseholder { leaseholder: Some(r), .. })
                    if nodes.contains(&r.node_id) =>
                {
                    target = r.node_id;
                }
                Err(KvError::NotLeaseholder { .. } | KvError::Unavailable(_)) => {
                    // An election is running: wait until one of `nodes` leads (replica n is on
                    // node n), then go there.
                    let observer = self.store(nodes[0]).replica(RANGE).unwrap();
                    target = handle::wait_for_leader(observer.raft(), WAIT, |l| nodes.contains(&l))
                        .await
                        .unwrap_or_else(|| panic!("no leaseholder among {nodes:?}"));
                    let leader = self.store(target).replica(RANGE).unwrap();
                    assert!(
                        handle::wait_for_lease(leader.raft(), WAIT).await,
                        "n{target} has no lease"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        panic!("the leaseholder among {nodes:?} kept moving")
    }
}

fn key(k: &str) -> Key {
    Key::from(k)
}

fn put(k: &str, v: &str) -> Request {
    Request::Put { key: key(k), value: v.as_bytes().to_vec() }
}

fn get(k: &str) -> Request {
    Request::Get { key: key(k) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_read_and_write_through_the_leaseholder() {
    let cluster = Cluster::start().await;
    cluster.send(vec![put("a", "1"), put("b", "2"), put("c", "3")]).await.unwrap();
    let responses = cluster.send(vec![get("a"), get("zz")]).await.unwrap();
    assert_eq!(responses, vec![Response::Get(Some(b"1".to_vec())), Response::Get(None)]);

    let scan = cluster
        .send(vec![Request::Scan { span: Span::new("a", "c"), limit: None, filter: None }])
        .await
        .unwrap();
    let rows = vec![(key("a"), b"1".to_vec()), (key("b"), b"2".to_vec())];
    assert_eq!(scan, vec![Response::Scan { rows, resume: None }]);
    let reverse = cluster
        .send(vec![Request::ReverseScan { span: Span::new("a", "z"), limit: Some(2) }])
        .await
        .unwrap();
    let rows = vec![(key("c"), b"3".to_vec()), (key("b"), b"2".to_vec())];
    assert_eq!(
        reverse,
        vec![Response::Scan { rows, resume: Some(Span { start: key("a"), end: key("a").next() }) }]
    );

    let deleted =
        cluster.send(vec![Request::DeleteRange { span: Span::new("b", "z") }]).await.unwrap();
    assert_eq!(deleted, vec![Response::DeleteRange(2)]);
    cluster.send(vec![Request::Delete { key: key("a") }]).await.unwrap();
    let empty = cluster
        .send(vec![Request::Scan { span: Span::new("a", "z"), limit: None, filter: None }])
        .await
        .unwrap();
    assert_eq!(empty, vec![Response::Scan { rows: vec![], resume: None }]);
}

/// A locking read outside a transaction has no one to hold its locks: refused, and nothing
/// is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_reads_need_a_transaction() {
    let cluster = Cluster::start().await;
    cluster.send(vec![put("a", "1")]).await.unwrap();
    for locking in [
        Request::LockingGet { key: key("a") },
        Request::LockingScan { span: Span::new("a", "z"), limit: None },
    ] {
        let refused = cluster.send(vec![locking]).await;
        assert!(matches!(refused, Err(KvError::InvalidArgument(_))), "{refused:?}");
    }
    cluster.send(vec![put("a", "2")]).await.expect("no lock was left on a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_put_and_increment() {
    let cluster = Cluster::start().await;
    let cput = |expected: Option<&str>, value: &str| Request::ConditionalPut {
        key: key("reg"),
        value: value.as_bytes().to_vec(),
        expected: expected.map(|e| e.as_bytes().to_vec()),
    };
    cluster.send(vec![cput(None, "1")]).await.unwrap();
    let err = cluster.send(vec![cput(None, "2")]).await.unwrap_err();
    assert_eq!(err, KvError::ConditionFailed { actual: Some(b"1".to_vec()) });
    cluster.send(vec![cput(Some("1"), "2")]).await.unwrap();
    let err = cluster.send(vec![cput(Some("1"), "3")]).await.unwrap_err();
    assert_eq!(err, KvError::ConditionFailed { actual: Some(b"2".to_vec()) });

    let inc = |delta| Request::Increment { key: key("n"), delta };
    assert_eq!(cluster.send(vec![inc(5)]).await.unwrap(), vec![Response::Increment(5)]);
    assert_eq!(cluster.send(vec![inc(-7)]).await.unwrap(), vec![Response::Increment(-2)]);
    cluster.send(vec![put("text", "abc")]).await.unwrap();
    let err =
        cluster.send(vec![Request::Increment { key: key("text"), delta: 1 }]).await.unwrap_err();
    assert!(matches!(&err, KvError::InvalidArgument(m) if m.contains("not an integer")), "{err}");
    let err = cluster.send(vec![put("x", "1"), get("x")]).await.unwrap_err();
    assert!(matches!(&err, KvError::InvalidArgument(m) if m.contains("overlap")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_redirect_to_the_leaseholder() {
    let cluster = Cluster::start().await;
    cluster.send(vec![put("a", "1")]).await.unwrap();
    let leaseholder =
        (1..=3).find(|n| cluster.store(*n).replica(RANGE).unwrap().is_leaseholder()).unwrap();
    let follower = (1..=3).find(|n| *n != leaseholder).unwrap();
    let batch = BatchRequest::new(RANGE, vec![get("a")]);
    match cluster.store(follower).send(batch).await {
        Err(KvError::NotLeaseholder { range_id: RANGE, leaseholder: Some(hint) }) => {
            assert_eq!(hint.node_id, leaseholder)
        }
        other => panic!("expected a redirect to n{leaseholder}, got {other:?}"),
    }
    let batch = BatchRequest::new(99, vec![get("a")]);
    assert_eq!(cluster.store(1).send(batch).await.unwrap_err(), KvError::RangeNotFound(99));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_leaseholder_loss_without_stale_reads() {
    let cluster = Cluster::start().await;
    for i in 0..20 {
        cluster.send(vec![put(&format!("k{i:02}"), &i.to_string())]).await.unwrap();
    }
    let old = (1..=3).find(|n| cluster.store(*n).replica(RANGE).unwrap().is_leaseholder()).unwrap();
    cluster.net.isolate(old);
    let others: Vec<u64> = (1..=3).filter(|n| *n != old).collect();
    // A register: the latest acknowledged value must be read after the change, never an older one.
    cluster.send_among(&others, vec![put("k19", "latest")]).await.unwrap();
    let responses = cluster.send_among(&others, vec![get("k19"), get("k00")]).await.unwrap();
    assert_eq!(
        responses,
        vec![Response::Get(Some(b"latest".to_vec())), Response::Get(Some(b"0".to_vec()))]
    );
    // The isolated old leaseholder cannot serve: its lease lapses rather than serving stale data.
    let batch = BatchRequest::new(RANGE, vec![get("k19")]);
    let stale = tokio::time::timeout(Duration::from_secs(5), cluster.store(old).send(batch)).await;
    assert!(!matches!(stale, Ok(Ok(_))), "the partitioned replica served a read: {stale:?}");
    cluster.net.heal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_catches_up_by_snapshot_past_a_split_learns_the_new_bounds() {
    // Snapshots after a few entries and no log kept behind them: a lagging follower can only
    // catch up by snapshot.
    let timers =
        RaftTimers { snapshot_after_entries: 5, logs_kept_after_snapshot: 0, ..RaftTimers::FAST };
    let cluster = Cluster::start_with(timers).await;
    cluster.send(vec![put("a", "1")]).await.unwrap();
    cluster.net.isolate(3);
    let split = Request::AdminSplit { key: Key::from("m"), new_range_id: 2 };
    let answer = cluster.send_among(&[1, 2], vec![split]).await.unwrap();
    assert!(
        matches!(&answer[..], [Response::AdminSplit { lhs, .. }] if lhs.end_key == Key::from("m"))
    );
    for i in 0..20 {
        cluster.send_among(&[1, 2], vec![put(&format!("b{i:02}"), "v")]).await.unwrap();
    }
    cluster.net.heal();
    let lagging = cluster.store(3).replica(RANGE).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while lagging.descriptor().end_key != Key::from("m") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 3 still has {:?}",
            lagging.descriptor()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its range now refuses keys of the right-hand side.
    let batch = BatchRequest::new(RANGE, vec![Request::Get { key: Key::from("z") }]);
    let refused = cluster.store(3).send(batch).await.unwrap_err();
    assert!(matches!(refused, KvError::RangeKeyMismatch { .. }), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_captured_before_a_split_is_refused_where_the_right_hand_range_lives() {
    let cluster = Cluster::start().await;
    let split = Request::AdminSplit { key: Key::from("m"), new_range_id: 2 };
    cluster.send(vec![split]).await.unwrap();
    let store = cluster.store(1);
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.replica(2).is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the right-hand range never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snapshot_of = |span: &Span| {
        let span = layout::addressable_span(span);
        let mut batch = WriteBatch::new();
        batch.delete_range(
            Cf::Mvcc,
            encode_prefix(span.start.as_bytes()),
            encode_prefix(span.end.as_bytes()),
        );
        batch.encode()
    };
    // Captured before the split: the left range's old span covers range 2's keys.
    assert_eq!(store.snapshot_overlap(RANGE, &snapshot_of(&descriptor().span())), Some(2));
    // Captured after it: only the left range's own keys.
    let left = store.replica(RANGE).unwrap().descriptor();
    assert_eq!(store.snapshot_overlap(RANGE, &snapshot_of(&left.span())), None);
}

/// A replica that would start after its store shut down (the right-hand side of a split
/// applied during shutdown) is refused, not left running unowned: such a replica went on
/// heartbeating its peers as their leader while its node served nothing, and the range never
/// elected a leader that could serve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_shut_down_starts_no_more_replicas() {
    let net = LocalNet::new();
    let config = StoreConfig {
        node_id: 1,
        store_id: 1,
        timers: RaftTimers::FAST,
        scan_filters: Arc::new(shoal_api::scan_filter::NoScanFilters),
    };
    let store = Store::new(
        config,
        Arc::new(MemoryEngine::new()),
        Arc::new(Clock::system().0),
        net.transport(1),
    );
    store.shutdown().await;
    let refused = store.add_replica(descriptor()).await;
    assert!(matches!(refused, Err(KvError::Unavailable(_))), "{:?}", refused.map(|_| ()));
    assert!(store.replica(RANGE).is_err(), "no replica runs on a stopped store");
    assert!(store.replicas().is_empty());
}
