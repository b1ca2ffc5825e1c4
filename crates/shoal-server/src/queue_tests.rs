//! Ranges that manage themselves, on in-process nodes over loopback sockets and RocksDB:
//! splits by size and by load, up-replication and rebalancing onto new nodes, replacement of
//! a dead node's replicas, decommissioning under load, and the metrics that show it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shoal_api::RangeDescriptor;
use shoal_api::addressing::decode_meta_record;
use shoal_hlc::Clock;
use shoal_keys::{Key, Span, layout};
use shoal_kvclient::KvOps;
use shoal_raft::RaftTimers;
use tempfile::TempDir;

use crate::tests::{config, pending, wait_until};
use crate::{Server, ServerConfig};

/// Queues every 200 ms, liveness timeout 3 s: a dead node is replaced within seconds, and a
/// busy debug build on two cores still heartbeats in time.
fn queue_config(dir: &Path, join: Vec<String>) -> ServerConfig {
    let mut config = config(dir, join);
    // Slower than the other tests' timers: several nodes on two cores in a debug build must
    // not mistake a busy moment for a dead leader. A heartbeat must be answered within its
    // interval, and the answer waits for the follower's log flush (shared by every range on
    // the node), which takes well over 100 ms when the whole test suite loads the machine: a
    // leader whose heartbeats all time out can never confirm its lease, and its range stays
    // unavailable although a majority is alive.
    config.timers = RaftTimers {
        heartbeat_ms: 300,
        election_min_ms: 1500,
        election_max_ms: 3000,
        ..RaftTimers::FAST
    };
    config.queue_interval = Duration::from_millis(200);
    config.liveness_timeout = Duration::from_secs(3);
    config.dead_node_grace = Duration::ZERO;
    config.replica_change_timeout = Duration::from_secs(20);
    config
}

/// These tests run one at a time: each runs several nodes, and two at once on two cores would
/// turn their timing into a test of the machine.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts one node per directory: three initialized into a cluster, the rest joined after.
pub(crate) async fn cluster(dirs: &[TempDir]) -> Vec<Server> {
    let clocks = dirs.iter().map(|_| Arc::new(Clock::system().0)).collect();
    cluster_with_clocks(dirs, clocks).await
}

/// [`cluster`], node `i` reading `clocks[i]`.
pub(crate) async fn cluster_with_clocks(dirs: &[TempDir], clocks: Vec<Arc<Clock>>) -> Vec<Server> {
    // Failed replica changes are logged (shown only when a test fails); more when asked for
    // (RUST_LOG=shoal_server=info ...).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(
            |_| tracing_subscriber::EnvFilter::new("shoal_server::replicate_queue=warn"),
        ))
        .with_test_writer()
        .try_init();
    let n1 = Server::bind(queue_config(dirs[0].path(), vec![]), clocks[0].clone()).await.unwrap();
    let seed = vec![n1.rpc_addr().to_string()];
    let mut nodes = vec![n1.clone()];
    for (dir, clock) in dirs[1..3].iter().zip(&clocks[1..3]) {
        let node =
            Server::bind(queue_config(dir.path(), seed.clone()), clock.clone()).await.unwrap();
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
    for (dir, clock) in dirs[3..].iter().zip(&clocks[3..]) {
        let node =
            Server::bind(queue_config(dir.path(), seed.clone()), clock.clone()).await.unwrap();
        node.join_cluster().await.unwrap();
        nodes.push(node);
    }
    nodes
}

/// Polls `condition` every 100 ms until it holds, failing the test after `limit`.
pub(crate) async fn wait_for<F: Future<Output = bool>>(
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
pub(crate) async fn addressing(node: &Server) -> Vec<RangeDescriptor> {
    let span = Span { start: Key::new(layout::META_PREFIX), end: Key::new(layout::META_MAX) };
    let Ok(rows) = node.require_cluster().unwrap().kv.scan(span, None).await else {
        return Vec::new();
    };
    rows.iter().map(|(_, value)| decode_meta_record(value).unwrap()).collect()
}

fn key(i: usize) -> String {
    format!("k{i:04}")
}

/// A value of about 1 KiB, so that a few hundred keys make many small ranges.
fn value(i: usize) -> String {
    format!("v{i}-{}", "x".repeat(1000))
}

/// Writes `key(i) = value(i)` through `node`, retrying what a client may retry: a put is
/// idempotent, so an ambiguous or unavailable outcome is simply tried again.
async fn load(node: &Server, keys: std::ops::Range<usize>) {
    let cluster = node.require_cluster().unwrap();
    for i in keys {
        let mut attempts = 0;
        while let Err(e) = cluster.kv.put(key(i), value(i)).await {
            attempts += 1;
            assert!(attempts < 20, "writing {}: {e}", key(i));
        }
    }
}

/// Sets a cluster setting through `node`.
async fn set(node: &Server, setting: crate::settings::Setting, value: u64) {
    let cluster = node.require_cluster().unwrap();
    crate::settings::set(&cluster.kv, setting, value).await.unwrap();
}

/// Replicas per node, as the nodes' stores hold them.
fn replica_counts(nodes: &[Server]) -> Vec<usize> {
    nodes.iter().map(|n| n.require_cluster().unwrap().store.replicas().len()).collect()
}

/// Whether the stores of `nodes` host exactly three replicas of every range in `ranges`.
fn hosted_thrice(nodes: &[Server], ranges: &[RangeDescriptor]) -> bool {
    let mut hosted: BTreeMap<u64, usize> = BTreeMap::new();
    for node in nodes {
        for replica in node.require_cluster().unwrap().store.replicas() {
            *hosted.entry(replica.descriptor().range_id).or_default() += 1;
        }
    }
    hosted.len() == ranges.len() && ranges.iter().all(|d| hosted.get(&d.range_id) == Some(&3))
}

/// Whether every range in `ranges` has three replicas, none on `excluded`.
fn fully_replicated(ranges: &[RangeDescriptor], excluded: u64) -> bool {
    !ranges.is_empty()
        && ranges
            .iter()
            .all(|d| d.replicas.len() == 3 && d.replicas.iter().all(|r| r.node_id != excluded))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_nodes_replicas_are_replaced_and_every_key_reads_back() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs).await;
    // Ranges split above 16 KiB: loading 600 KiB makes dozens of them.
    set(&nodes[0], crate::settings::RANGE_MAX_BYTES, 16 << 10).await;
    const KEYS: usize = 600;
    load(&nodes[0], 0..KEYS).await;
    wait_for("the size splits made at least 20 ranges", Duration::from_secs(60), || async {
        addressing(&nodes[1]).await.len() >= 20
    })
    .await;
    // Nodes 4 and 5 joined with nothing; the replicate queues move replicas onto them.
    wait_for("nodes 4 and 5 host replicas", Duration::from_secs(60), || async {
        replica_counts(&nodes).iter().all(|&c| c >= 8)
    })
    .await;
    let ranges = addressing(&nodes[1]).await.len();
    println!("{ranges} ranges; replicas per node after rebalancing: {:?}", replica_counts(&nodes));

    // Node 4 dies. Every range it held gets a replica elsewhere.
    let dead = nodes[3].clone();
    let dead_id = dead.node_id();
    dead.shutdown().await;
    let survivors: Vec<Server> = nodes.iter().filter(|n| n.node_id() != dead_id).cloned().collect();
    let check = &survivors[1];
    let last = std::sync::Mutex::new(String::new());
    let replicated = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let ranges = addressing(check).await;
            if fully_replicated(&ranges, dead_id) && hosted_thrice(&survivors, &ranges) {
                return;
            }
            let short: Vec<String> = ranges
                .iter()
                .filter(|d| {
                    d.replicas.len() != 3 || d.replicas.iter().any(|r| r.node_id == dead_id)
                })
                .map(|d| format!("r{} gen {} {:?}", d.range_id, d.generation, d.replicas))
                .collect();
            let mut hosted: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
            // What each replica of a short range sees, for the failure message.
            let mut views: BTreeMap<u64, Vec<String>> = BTreeMap::new();
            for node in &survivors {
                for replica in node.require_cluster().unwrap().store.replicas() {
                    let descriptor = replica.descriptor();
                    hosted.entry(descriptor.range_id).or_default().push(node.node_id());
                    let progress = replica.log_progress();
                    views.entry(descriptor.range_id).or_default().push(format!(
                        "n{} r{} gen {} {:?} membership {:?} log {progress:?}",
                        node.node_id(),
                        replica.replica_id(),
                        descriptor.generation,
                        descriptor.replicas,
                        replica.membership(),
                    ));
                }
            }
            let odd: Vec<String> = ranges
                .iter()
                .filter(|d| {
                    hosted.get(&d.range_id).map_or(0, Vec::len) != 3
                        || d.replicas.iter().any(|r| r.node_id == dead_id)
                })
                .map(|d| {
                    format!(
                        "r{} hosted on {:?}, named {:?}; replicas see {:?}",
                        d.range_id,
                        hosted.get(&d.range_id),
                        d.replicas,
                        views.get(&d.range_id)
                    )
                })
                .collect();
            *last.lock().unwrap() = format!("{} | {}", short.join("; "), odd.join("; "));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(replicated.is_ok(), "ranges still short of 3 live replicas: {}", last.lock().unwrap());
    println!("replicas per surviving node: {:?}", replica_counts(&survivors));
    let reader = survivors[2].require_cluster().unwrap();
    for i in 0..KEYS {
        assert_eq!(reader.kv.get(key(i)).await.unwrap(), Some(value(i).into_bytes()));
    }
    let rows = reader.kv.scan(Span::new("k", "l"), None).await.unwrap();
    assert_eq!(rows.len(), KEYS, "a scan sees every key exactly once");
}

/// Per-node QPS: the requests per second each node's leases serve.
fn node_qps(nodes: &[Server]) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| {
            let replicas = n.require_cluster().unwrap().store.replicas();
            replicas.iter().filter(|r| r.is_leaseholder()).map(|r| r.load_qps()).sum::<f64>() as u64
        })
        .collect()
}

/// The classic hot-partition lab: 90% of the traffic goes to 100 keys. The range holding them
/// is split by load, and the leases of the pieces end up on different nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_range_is_split_by_load_and_its_leases_spread() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs).await;
    set(&nodes[0], crate::settings::SPLIT_QPS_THRESHOLD, 100).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..6usize {
        let node = nodes[c % 3].clone();
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let cluster = node.require_cluster().unwrap();
            let mut i = c * 7919;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let k = if i % 10 == 0 {
                    format!("cold{:05}", i % 10_000)
                } else {
                    format!("hot{:03}", i % 100)
                };
                let _ = cluster.kv.put(k, "x").await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = node_qps(&nodes);
    println!("per-node QPS before: {before:?}");
    let hot = Span::new("hot000", "hot100");
    wait_for(
        "the hot keys' ranges are led from different nodes",
        Duration::from_secs(90),
        || async {
            let report = crate::status::ranges(&nodes[0]).await.unwrap();
            let leaders: std::collections::BTreeSet<u64> = report
                .ranges
                .iter()
                .filter(|r| r.descriptor.start_key < hot.end && hot.start < r.descriptor.end_key)
                .filter_map(|r| r.leaseholder_node)
                .collect();
            leaders.len() >= 2
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = node_qps(&nodes);
    println!("per-node QPS after: {after:?}");
    let report = crate::status::ranges(&nodes[0]).await.unwrap();
    for range in &report.ranges {
        let hottest = range.leaseholder.as_ref().map(|l| l.hottest_keys.clone());
        println!(
            "range {} [{}, {}) lease on n{:?}, hottest keys {:?}",
            range.range_id, range.start_key, range.end_key, range.leaseholder_node, hottest
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let splits: u64 =
        nodes.iter().map(|n| n.inner.stats.splits.load(std::sync::atomic::Ordering::Relaxed)).sum();
    assert!(splits >= 1, "the load made the split queue split");
    assert!(after.iter().filter(|&&q| q > 0).count() >= 2, "the load is served by several nodes");
}

/// Decommissioning a node while clients write: its replicas move away, no range ends
/// under-replicated, and every acknowledged write reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_decommissioned_under_load_is_emptied_and_nothing_is_lost() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs).await;
    set(&nodes[0], crate::settings::RANGE_MAX_BYTES, 16 << 10).await;
    let first = nodes[0].require_cluster().unwrap();
    load(&nodes[0], 0..200).await;
    wait_for("node 4 hosts replicas", Duration::from_secs(60), || async {
        replica_counts(&nodes)[3] >= 4
    })
    .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let node = nodes[1].clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let cluster = node.require_cluster().unwrap();
            let mut acked = Vec::new();
            let mut i = 1000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if cluster.kv.put(key(i), value(i)).await.is_ok() {
                    acked.push(i);
                }
                i += 1;
            }
            acked
        })
    };
    let leaving = nodes[3].node_id();
    crate::liveness::set_membership(
        &first.kv,
        leaving,
        crate::liveness::NodeMembership::Decommissioning,
    )
    .await
    .unwrap();
    let remaining = nodes[..3].to_vec();
    wait_for("node 4 holds no replica and every range has 3", Duration::from_secs(90), || async {
        let ranges = addressing(&nodes[0]).await;
        fully_replicated(&ranges, leaving) && hosted_thrice(&remaining, &ranges)
    })
    .await;
    assert!(
        replica_counts(&nodes[3..])[0] == 0,
        "the decommissioned node's replicas were destroyed"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(acked.len() > 10, "the writer made progress during the decommission");
    for i in (0..200).chain(acked) {
        assert_eq!(first.kv.get(key(i)).await.unwrap(), Some(value(i).into_bytes()), "key {i}");
    }
}

/// Splits under concurrent writes while the leaseholder of the busiest range is killed: every
/// acknowledged write is present exactly once afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn splits_under_writes_and_a_leaseholder_kill_lose_and_duplicate_nothing() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs).await;
    set(&nodes[0], crate::settings::RANGE_MAX_BYTES, 8 << 10).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Writers on the nodes that stay up; each writes its own keys, so every value is unique.
    let writers: Vec<_> = (0..3usize)
        .map(|w| {
            let node = nodes[w].clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let cluster = node.require_cluster().unwrap();
                let mut acked = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let i = w * 100_000 + n;
                    n += 1;
                    // Ambiguous or failed writes are not acknowledged: they may or may not be
                    // present, and are not checked.
                    if cluster.kv.put(key(i), value(i)).await.is_ok() {
                        acked.push(i);
                    }
                }
                acked
            })
        })
        .collect();
    wait_for("several size splits happened", Duration::from_secs(60), || async {
        addressing(&nodes[0]).await.len() >= 6
    })
    .await;
    // Kill the node leading the most ranges, unless it runs a writer: then node 4.
    let victim = nodes[3].clone();
    let victim_id = victim.node_id();
    wait_for("node 4 leads a range", Duration::from_secs(60), || async {
        victim.require_cluster().unwrap().store.replicas().iter().any(|r| r.is_leaseholder())
    })
    .await;
    victim.shutdown().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.unwrap());
    }
    assert!(acked.len() > 50, "writers made progress: {}", acked.len());
    let ranges = addressing(&nodes[0]).await.len();
    println!("{} acknowledged writes over {ranges} ranges; node {victim_id} killed", acked.len());
    let reader = nodes[0].require_cluster().unwrap();
    let rows = reader.kv.scan(Span::new("k", "l"), None).await.unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (k, v) in &rows {
        let k = String::from_utf8(k.as_bytes().to_vec()).unwrap();
        *seen.entry(k.clone()).or_default() += 1;
        let i: usize = k[1..].parse().unwrap();
        assert_eq!(v, &value(i).into_bytes(), "the value of {k}");
    }
    assert!(seen.values().all(|&n| n == 1), "no key is returned twice by a scan");
    for i in acked {
        assert_eq!(seen.get(&key(i)), Some(&1), "acknowledged write {} is present once", key(i));
    }
}

/// `/metrics` parses as Prometheus text, and the replication lag of a follower whose messages
/// are delayed rises.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_parse_and_show_a_delayed_followers_lag() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs).await;
    // A range of its own, which no background write (liveness, settings) touches.
    let (_, own) = crate::admin::split(&nodes[0], "m".into()).await.unwrap();
    let range_id = own.range_id.to_string();
    let first = nodes[0].require_cluster().unwrap();
    first.kv.put("m", "1").await.unwrap();
    let leader = nodes
        .iter()
        .find(|n| {
            let store = &n.require_cluster().unwrap().store;
            store.replica(own.range_id).is_ok_and(|r| r.is_leaseholder())
        })
        .unwrap()
        .clone();
    let follower = nodes.iter().find(|n| n.node_id() != leader.node_id()).unwrap().node_id();
    let scrape = |node: Server| async move {
        let text = crate::metrics::render(&node).await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        prometheus_parse::Scrape::parse(lines).expect("the metrics parse")
    };
    let lag = |scrape: &prometheus_parse::Scrape, name: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| s.labels.get("range_id") == Some(range_id.as_str()))
            .filter(|s| s.labels.get("node_id") == Some(follower.to_string().as_str()))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .fold(0.0, f64::max)
    };
    let quiet = scrape(leader.clone()).await;
    for name in ["shoal_node_qps", "shoal_leaseholders", "shoal_kv_requests_total"] {
        assert!(quiet.samples.iter().any(|s| s.metric == name), "{name} is exported");
    }
    assert!(
        quiet.samples.iter().any(|s| s.metric == "shoal_kv_request_duration_seconds_count"),
        "the request latency histogram is exported"
    );
    // Once the last write reached everyone, the follower lags by nothing.
    wait_for("the follower caught up", Duration::from_secs(10), || {
        let leader = leader.clone();
        async move { lag(&scrape(leader).await, "shoal_replication_lag_entries") == 0.0 }
    })
    .await;

    // Hold every message from the leader to the follower for 500 ms, and keep writing.
    leader
        .rpc()
        .faults()
        .set(follower, shoal_rpc::PeerFault { drop: false, delay: Duration::from_millis(500) });
    let writer = {
        let leader = leader.clone();
        tokio::spawn(async move {
            let cluster = leader.require_cluster().unwrap();
            for i in 0..200 {
                cluster.kv.put(format!("m{i}"), "x").await.unwrap();
            }
        })
    };
    let (mut entries, mut seconds) = (0.0f64, 0.0f64);
    while !writer.is_finished() {
        let sample = scrape(leader.clone()).await;
        entries = entries.max(lag(&sample, "shoal_replication_lag_entries"));
        seconds = seconds.max(lag(&sample, "shoal_replication_lag_seconds"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    writer.await.unwrap();
    leader.rpc().faults().clear();
    println!("lag of node {follower}: up to {entries} entries, {seconds} s");
    assert!(entries > 0.0, "the lag in entries rose");
    // Every message is held 500 ms while writes keep coming: the follower is behind for long
    // stretches, not just for one round trip.
    assert!(seconds >= 0.2, "the lag in seconds rose: {seconds}");
}
