//! In-process three-replica groups over an in-memory transport that can isolate nodes: the
//! storage adapter under a real openraft, with elections, replication and snapshots.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftLogStorage;
use shoal_storage::{Cf, Engine, MemoryEngine, WriteBatch};

use crate::handle;
use crate::testing::{BatchApplier, LocalNet};
use crate::{
    Command, LogStore, LogWriter, RaftTimers, Replica, ReplicaContext, ReplicaLocation,
    start_replica,
};

const RANGE: u64 = 1;
const WAIT: Option<Duration> = Some(Duration::from_secs(10));

struct Node {
    engine: Arc<dyn Engine>,
    ctx: ReplicaContext,
}

struct Cluster {
    net: Arc<LocalNet>,
    nodes: BTreeMap<u64, Node>,
}

fn location(node_id: u64) -> ReplicaLocation {
    ReplicaLocation { node_id, store_id: 1 }
}

impl Cluster {
    /// Starts replica `n` of the range on node `n` for n in 1..=3 and initializes the group.
    async fn start(timers: RaftTimers) -> Cluster {
        let net = LocalNet::new();
        let mut cluster = Cluster { net: net.clone(), nodes: BTreeMap::new() };
        for node_id in 1..=3 {
            let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
            let ctx = ReplicaContext {
                engine: engine.clone(),
                writer: LogWriter::start(engine.clone()),
                applier: Arc::new(BatchApplier),
                transport: net.transport(node_id),
                timers,
            };
            cluster.nodes.insert(node_id, Node { engine, ctx });
            cluster.start_replica(node_id).await;
        }
        let members: BTreeMap<u64, ReplicaLocation> = (1..=3).map(|n| (n, location(n))).collect();
        cluster.replica(1).initialize(members).await.unwrap();
        cluster
    }

    async fn start_replica(&self, node_id: u64) -> Replica {
        let replica = start_replica(&self.nodes[&node_id].ctx, RANGE, node_id).await.unwrap();
        self.net.register(node_id, RANGE, node_id, replica.clone());
        replica
    }

    fn replica(&self, node_id: u64) -> Replica {
        self.net.replica(node_id, RANGE, node_id).expect("registered")
    }

    /// Waits until some replica among `candidates` leads, and returns its node id.
    async fn leader_among(&self, candidates: &[u64]) -> u64 {
        let observer = self.replica(candidates[0]);
        let leader = handle::wait_for_leader(&observer, WAIT.unwrap(), |l| candidates.contains(&l))
            .await
            .unwrap_or_else(|| panic!("no leader among {candidates:?}"));
        assert!(
            handle::wait_for_lease(&self.replica(leader), WAIT.unwrap()).await,
            "n{leader} has no lease"
        );
        leader
    }

    async fn put(&self, leader: u64, key: &str, value: &str) -> u64 {
        let mut batch = WriteBatch::new();
        batch.put(Cf::Mvcc, key.as_bytes().to_vec(), value.as_bytes().to_vec());
        self.replica(leader).client_write(Command(batch.encode())).await.unwrap().log_id.index
    }

    async fn wait_applied(&self, node_id: u64, index: u64) {
        self.replica(node_id)
            .wait(WAIT)
            .applied_index_at_least(Some(index), "applied")
            .await
            .unwrap();
    }

    fn read(&self, node_id: u64, key: &str) -> Option<String> {
        let value = self.nodes[&node_id].engine.get(Cf::Mvcc, key.as_bytes()).unwrap();
        value.map(|v| String::from_utf8(v).unwrap())
    }

    fn isolate(&self, node_id: u64) {
        self.net.isolate(node_id);
    }

    fn heal(&self) {
        self.net.heal();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_to_every_replica() {
    let cluster = Cluster::start(RaftTimers::FAST).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let index = cluster.put(leader, "a", "1").await;
    for n in 1..=3 {
        cluster.wait_applied(n, index).await;
        assert_eq!(cluster.read(n, "a").as_deref(), Some("1"), "replica {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_takes_over_and_the_old_one_catches_up() {
    let cluster = Cluster::start(RaftTimers::FAST).await;
    let old = cluster.leader_among(&[1, 2, 3]).await;
    let first = cluster.put(old, "a", "1").await;

    cluster.isolate(old);
    let others: Vec<u64> = (1..=3).filter(|n| *n != old).collect();
    let new = cluster.leader_among(&others).await;
    let second = cluster.put(new, "b", "2").await;
    assert!(second > first);
    for &n in &others {
        cluster.wait_applied(n, second).await;
        assert_eq!(cluster.read(n, "a").as_deref(), Some("1"), "acknowledged write survives");
        assert_eq!(cluster.read(n, "b").as_deref(), Some("2"));
    }
    assert_eq!(cluster.read(old, "b"), None, "the isolated replica cannot have it");

    cluster.heal();
    cluster.wait_applied(old, second).await;
    assert_eq!(cluster.read(old, "b").as_deref(), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_a_purged_log_catches_up_by_snapshot() {
    let timers =
        RaftTimers { snapshot_after_entries: 5, logs_kept_after_snapshot: 0, ..RaftTimers::FAST };
    let cluster = Cluster::start(timers).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let lagging = (1..=3).find(|n| *n != leader).unwrap();
    cluster.isolate(lagging);
    let mut last = 0;
    for i in 0..30 {
        last = cluster.put(leader, &format!("k{i:02}"), "v").await;
    }
    // The leader snapshots and purges its log past what the isolated follower has.
    cluster
        .replica(leader)
        .wait(WAIT)
        .metrics(|m| m.purged.is_some_and(|p| p.index > 5), "purged")
        .await
        .unwrap();

    cluster.heal();
    cluster.wait_applied(lagging, last).await;
    let metrics = cluster.replica(lagging).metrics().borrow_watched().clone();
    assert!(metrics.snapshot.is_some(), "caught up by installing a snapshot: {metrics:?}");
    for i in 0..30 {
        assert_eq!(cluster.read(lagging, &format!("k{i:02}")).as_deref(), Some("v"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_recovers_from_its_own_log() {
    let cluster = Cluster::start(RaftTimers::FAST).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    let index = cluster.put(leader, "a", "1").await;
    cluster.wait_applied(follower, index).await;

    cluster.replica(follower).shutdown().await.unwrap();
    cluster.net.unregister(follower, RANGE, follower);
    // What the restarted replica starts from: its own log and applied state on disk.
    let ctx = &cluster.nodes[&follower].ctx;
    let mut log = LogStore::new(RANGE, ctx.engine.clone(), ctx.writer.clone());
    let state = log.get_log_state().await.unwrap();
    assert!(state.last_log_id.is_some_and(|id| id.index >= index), "{state:?}");
    cluster.start_replica(follower).await;
    assert_eq!(cluster.read(follower, "a").as_deref(), Some("1"));

    let next = cluster.put(leader, "b", "2").await;
    cluster.wait_applied(follower, next).await;
    assert_eq!(cluster.read(follower, "b").as_deref(), Some("2"));
}
