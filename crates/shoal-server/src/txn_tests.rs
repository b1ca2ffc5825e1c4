//! Transactions on in-process nodes over loopback sockets and RocksDB, under the faults they
//! must survive: a bank whose transfers run while leaseholders die and ranges split, a
//! transaction over three ranges whose commit is cut short, and a clock running ahead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shoal_api::KvError;
use shoal_hlc::{Clock, SystemClock};
use shoal_keys::{Key, Span};
use shoal_kvclient::KvOps;
use shoal_kvclient::txn::Txn;
use tempfile::TempDir;

use crate::Server;
use crate::queue_tests::{SERIAL, cluster, cluster_with_clocks, wait_for};

const ACCOUNTS: usize = 20;
const INITIAL_BALANCE: i64 = 100;

fn account(i: usize) -> String {
    format!("acct/{i:02}")
}

fn parse(value: Option<Vec<u8>>) -> Result<i64, KvError> {
    let bytes = value.ok_or_else(|| KvError::Internal("a missing account".into()))?;
    String::from_utf8_lossy(&bytes)
        .parse()
        .map_err(|_| KvError::Internal("an account that is not a number".into()))
}

/// The node whose store holds the lease of the range containing `key`, if any does.
fn leaseholder_of(nodes: &[Server], key: &str) -> Option<Server> {
    nodes
        .iter()
        .find(|node| {
            node.cluster().is_some_and(|c| {
                c.store
                    .replicas()
                    .iter()
                    .any(|r| r.descriptor().contains_key(key.as_bytes()) && r.is_leaseholder())
            })
        })
        .cloned()
}

/// What a transfer worker saw.
#[derive(Default)]
struct Outcomes {
    /// Transfers acknowledged as committed: `(log key, from, to, amount)`.
    committed: Vec<(String, usize, usize, i64)>,
    /// Transfers whose commit was ambiguous: they may or may not have happened.
    ambiguous: Vec<String>,
    /// Transfers refused for lack of money.
    refused: usize,
    /// Other failures (unavailable ranges while a node dies).
    failed: usize,
}

/// Moves money between random accounts through `node` until `stop`; each transfer also writes
/// a log entry `xfer/<worker>/<n>` naming itself, in the same transaction.
async fn transfers(
    node: Server,
    worker: usize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> Outcomes {
    let kv = &node.require_cluster().unwrap().kv;
    let mut rng = SmallRng::seed_from_u64(worker as u64);
    let mut out = Outcomes::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let from = rng.random_range(0..ACCOUNTS);
        let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
        let amount = rng.random_range(1..=30);
        let log = format!("xfer/{worker}/{n:06}");
        let result = kv
            .txn(|t: Txn| {
                let log = log.clone();
                async move {
                    let balance = parse(t.get(account(from)).await?)?;
                    let other = parse(t.get(account(to)).await?)?;
                    if balance < amount {
                        return Ok(false);
                    }
                    t.put(account(from), (balance - amount).to_string()).await?;
                    t.put(account(to), (other + amount).to_string()).await?;
                    t.put(log, format!("{from},{to},{amount}")).await?;
                    Ok(true)
                }
            })
            .await;
        match result {
            Ok(true) => {
                out.committed.push((log, from, to, amount));
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => out.refused += 1,
            Err(KvError::Ambiguous(_)) => out.ambiguous.push(log),
            Err(_) => out.failed += 1,
        }
    }
    out
}

/// Reads every account and log entry in one transaction, retrying while ranges recover.
async fn snapshot(node: &Server) -> (Vec<i64>, BTreeMap<String, (usize, usize, i64)>) {
    let kv = &node.require_cluster().unwrap().kv;
    for _ in 0..30 {
        let read = kv
            .txn(|t: Txn| async move {
                let accounts = t.scan(Span::new("acct/", "acct0"), None).await?;
                let log = t.scan(Span::new("xfer/", "xfer0"), None).await?;
                Ok((accounts, log))
            })
            .await;
        let Ok((accounts, log)) = read else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let balances = accounts.into_iter().map(|(_, v)| parse(Some(v)).unwrap()).collect();
        let log = log
            .into_iter()
            .map(|(k, v)| {
                let entry = String::from_utf8(v).unwrap();
                let parts: Vec<&str> = entry.split(',').collect();
                let key = String::from_utf8(k.into_bytes()).unwrap();
                (
                    key,
                    (
                        parts[0].parse().unwrap(),
                        parts[1].parse().unwrap(),
                        parts[2].parse().unwrap(),
                    ),
                )
            })
            .collect();
        return (balances, log);
    }
    panic!("the bank could not be read");
}

/// Concurrent transfers among accounts on several ranges while ranges split and a leaseholder
/// is killed: money is conserved, no balance goes negative, every acknowledged transfer is
/// visible, and the balances are exactly what the visible transfers add up to.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_transfers_survive_leaseholder_kills_and_splits() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs).await;
    let kv = &nodes[0].require_cluster().unwrap().kv;
    kv.txn(|t: Txn| async move {
        for i in 0..ACCOUNTS {
            t.put(account(i), INITIAL_BALANCE.to_string()).await?;
        }
        Ok(())
    })
    .await
    .unwrap();
    for at in [5, 10, 15] {
        crate::admin::split(&nodes[0], Key::from(account(at).as_str())).await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..3)
        .map(|w| tokio::spawn(transfers(nodes[w].clone(), w, stop.clone(), done.clone())))
        .collect();
    let committed_at_least = |n: usize| {
        let done = done.clone();
        move || {
            let done = done.clone();
            async move { done.load(Ordering::Relaxed) >= n }
        }
    };
    wait_for("transfers commit", Duration::from_secs(60), committed_at_least(10)).await;
    for at in [2, 17] {
        crate::admin::split(&nodes[1], Key::from(account(at).as_str())).await.unwrap();
    }
    // Kill node 4 once it holds an account range's lease (the queues move leases to it).
    let victim = nodes[3].clone();
    wait_for("node 4 holds a lease", Duration::from_secs(60), || async {
        (0..ACCOUNTS).any(|i| {
            leaseholder_of(&nodes, &account(i)).is_some_and(|n| n.node_id() == victim.node_id())
        })
    })
    .await;
    victim.shutdown().await;
    // The bank goes on without the dead node.
    let after_kill = done.load(Ordering::Relaxed) + 10;
    let more = committed_at_least(after_kill);
    wait_for("transfers commit after the kill", Duration::from_secs(60), more).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Outcomes::default();
    for worker in workers {
        let out = worker.await.unwrap();
        outcomes.committed.extend(out.committed);
        outcomes.ambiguous.extend(out.ambiguous);
        outcomes.refused += out.refused;
        outcomes.failed += out.failed;
    }
    println!(
        "{} transfers committed, {} ambiguous, {} refused, {} failed",
        outcomes.committed.len(),
        outcomes.ambiguous.len(),
        outcomes.refused,
        outcomes.failed
    );
    assert!(outcomes.committed.len() >= 20, "the bank made progress");

    let (balances, log) = snapshot(&nodes[0]).await;
    assert_eq!(balances.len(), ACCOUNTS);
    assert_eq!(
        balances.iter().sum::<i64>(),
        INITIAL_BALANCE * ACCOUNTS as i64,
        "money is conserved"
    );
    assert!(balances.iter().all(|&b| b >= 0), "no balance is negative: {balances:?}");
    for (key, from, to, amount) in &outcomes.committed {
        assert_eq!(
            log.get(key),
            Some(&(*from, *to, *amount)),
            "committed transfer {key} is visible"
        );
    }
    for key in log.keys() {
        assert!(
            outcomes.committed.iter().any(|(k, ..)| k == key) || outcomes.ambiguous.contains(key),
            "{key} is visible but was never acknowledged nor ambiguous"
        );
    }
    // The balances are the initial ones plus exactly the visible transfers: no partial one.
    let mut replayed = vec![INITIAL_BALANCE; ACCOUNTS];
    for (from, to, amount) in log.values() {
        replayed[*from] -= amount;
        replayed[*to] += amount;
    }
    assert_eq!(replayed, balances, "the balances are what the visible transfers add up to");
}

const ATOMIC_KEYS: [&str; 3] = ["atom/a", "atom/m", "atom/z"];

/// Reads the three keys from `node` (in a transaction, so intents left behind get pushed and
/// resolved), retrying while ranges recover.
async fn read_atomic(node: &Server) -> Vec<Option<Vec<u8>>> {
    let kv = &node.require_cluster().unwrap().kv;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let read = kv
            .txn(|t: Txn| async move {
                let mut values = Vec::new();
                for key in ATOMIC_KEYS {
                    values.push(t.get(key).await?);
                }
                Ok(values)
            })
            .await;
        match read {
            Ok(values) => return values,
            Err(e) if Instant::now() < deadline => {
                println!("reading the keys back: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the keys cannot be read back: {e}\n{}", raft_state(node)),
        }
    }
}

/// Describes the Raft state of `node`'s replicas, for failure messages: the descriptor, who
/// leads, the membership, and on a leader each follower's progress and last acknowledgement.
fn raft_state(node: &Server) -> String {
    let mut out = String::new();
    for replica in node.require_cluster().unwrap().store.replicas() {
        out.push_str(&format!(
            "on n{}: {:?}\n  {:?}\n  {:?}\n",
            node.node_id(),
            replica.descriptor(),
            replica.membership(),
            replica.log_progress()
        ));
    }
    out
}

fn assert_all_or_nothing(values: &[Option<Vec<u8>>], new: &str, old: &str, what: &str) -> bool {
    let all = |v: &str| values.iter().all(|x| x.as_deref() == Some(v.as_bytes()));
    assert!(all(new) || all(old), "{what}: the transaction is partly visible: {values:?}");
    all(new)
}

/// Waits until every range has three voters, all on live nodes, so another node may die.
/// (Counting replicas is not enough: a learner being added is a replica, and while it is one
/// the dead node is still a voter; a second death then takes the range's quorum.)
async fn wait_replicated(live: &[Server]) {
    let live_ids: Vec<u64> = live.iter().map(|n| n.node_id()).collect();
    wait_for("every range is back to three live voters", Duration::from_secs(90), || async {
        let ranges = crate::queue_tests::addressing(&live[0]).await;
        !ranges.is_empty()
            && ranges.iter().all(|d| {
                // The newest descriptor any live replica holds.
                let newest = live
                    .iter()
                    .filter_map(|n| n.cluster()?.store.replica(d.range_id).ok())
                    .map(|r| r.descriptor())
                    .max_by_key(|d| d.generation);
                newest.is_some_and(|d| {
                    d.replicas.len() == 3
                        && d.replicas.iter().all(|r| live_ids.contains(&r.node_id))
                })
            })
    })
    .await;
}

/// A transaction writing to three ranges is all or nothing when the leaseholder of its
/// record's range is killed during its commit, and when its coordinator dies before or during
/// its commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_range_transaction_is_all_or_nothing_when_its_commit_is_cut_short() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs).await;
    for at in ["atom/h", "atom/t"] {
        crate::admin::split(&nodes[0], Key::from(at)).await.unwrap();
    }
    // Writes (without committing) every key. Right after a node died, routing may fail for a
    // while (a range's leaseholder moving, a stale meta descriptor): the writes are retried in
    // a new transaction until they land, as a client would. Atomicity is what is tested here.
    let write = async |node: &Server, value: &str| -> Txn {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let txn = node.require_cluster().unwrap().kv.begin();
            let mut failed = None;
            for key in ATOMIC_KEYS {
                if let Err(e) = txn.put(key, value).await {
                    failed = Some(e);
                    break;
                }
            }
            match failed {
                None => return txn,
                Some(e) if Instant::now() < deadline && e.kind() != shoal_api::ErrorKind::User => {
                    println!("writing the keys: {e}");
                    txn.rollback_in_background();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(e) => panic!("the keys cannot be written: {e}\n{}", raft_state(node)),
            }
        }
    };
    // Old values everywhere.
    let setup = write(&nodes[0], "v0").await;
    setup.commit().await.unwrap();

    // 1. The record's leaseholder dies while the commit is in flight.
    let record_holder = leaseholder_of(&nodes, ATOMIC_KEYS[0]).expect("a leaseholder");
    let record_holder_id = record_holder.node_id();
    let gateway = nodes.iter().find(|n| n.node_id() != record_holder_id).unwrap().clone();
    let txn = write(&gateway, "v1").await;
    let commit = tokio::spawn(async move { txn.commit().await });
    record_holder.shutdown().await;
    let outcome = commit.await.unwrap();
    let live: Vec<Server> =
        nodes.iter().filter(|n| n.node_id() != record_holder_id).cloned().collect();
    let values = read_atomic(&live[0]).await;
    let applied = assert_all_or_nothing(&values, "v1", "v0", "leaseholder killed");
    println!("leaseholder killed during commit: {outcome:?}, applied: {applied}");
    if outcome.is_ok() {
        assert!(applied, "an acknowledged commit is visible");
    } else if !matches!(outcome, Err(KvError::Ambiguous(_))) {
        assert!(!applied, "a commit reported as failed is not visible: {outcome:?}");
    }
    let base = if applied { "v1" } else { "v0" };
    wait_replicated(&live).await;

    // 2. The coordinator dies before sending its commit: its intents stay until its record
    //    expires, then readers abort it.
    let coordinator = live[2].clone();
    let txn = write(&coordinator, "v2").await;
    coordinator.shutdown().await;
    drop(txn);
    let survivors = &live[..2];
    let values = read_atomic(&survivors[0]).await;
    let applied = assert_all_or_nothing(&values, "v2", base, "coordinator died before commit");
    assert!(!applied, "a transaction that never committed is not visible");

    // 3. A coordinator on a surviving node dies during its commit: its client task is cut off
    //    while the commit is in flight.
    let txn = write(&survivors[1], "v3").await;
    let commit = tokio::spawn(async move { txn.commit().await });
    commit.abort();
    let _ = commit.await;
    let values = read_atomic(&survivors[0]).await;
    let applied = assert_all_or_nothing(&values, "v3", base, "coordinator died during commit");
    println!("coordinator cut off during commit, applied: {applied}");
}

/// One node's clock runs 300 ms ahead (below the 500 ms maximum offset). A register written
/// and read through different nodes never reads older than the last write acknowledged
/// before the read began.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clock_ahead_below_the_max_offset_never_yields_a_stale_read() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let physicals: Vec<Arc<SystemClock>> = (0..3).map(|_| Arc::new(SystemClock::new())).collect();
    physicals[2].set_offset_nanos(300_000_000);
    let clocks = physicals
        .iter()
        .map(|p| Arc::new(Clock::new(p.clone(), shoal_hlc::DEFAULT_MAX_OFFSET)))
        .collect();
    let nodes = cluster_with_clocks(&dirs, clocks).await;
    // Writers on the skewed node and on a normal one; readers everywhere.
    for (register, writer) in [("reg/fast", 2usize), ("reg/slow", 0usize)] {
        let acked = Arc::new(std::sync::Mutex::new(Vec::<(Instant, u64)>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reads_done = Arc::new(AtomicUsize::new(0));
        let writing = {
            let (node, acked, stop) = (nodes[writer].clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let kv = &node.require_cluster().unwrap().kv;
                let mut v = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    v += 1;
                    let put = kv.txn(|t: Txn| async move { t.put(register, v.to_string()).await });
                    if put.await.is_ok() {
                        acked.lock().unwrap().push((Instant::now(), v));
                    }
                }
            })
        };
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let (node, stop, reads_done) = (nodes[r].clone(), stop.clone(), reads_done.clone());
                tokio::spawn(async move {
                    let kv = &node.require_cluster().unwrap().kv;
                    let mut reads = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let read = kv.txn(|t: Txn| async move { t.get(register).await }).await;
                        if let Ok(value) = read {
                            let v =
                                value.map_or(0, |b| String::from_utf8_lossy(&b).parse().unwrap());
                            reads.push((started, v));
                            reads_done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    reads
                })
            })
            .collect();
        // Enough of both: writes acknowledged, and reads begun after some of them.
        wait_for("writes and reads happen", Duration::from_secs(60), || {
            let (acked, reads_done) = (acked.clone(), reads_done.clone());
            async move {
                acked.lock().unwrap().len() >= 30 && reads_done.load(Ordering::Relaxed) >= 60
            }
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        writing.await.unwrap();
        let acked = acked.lock().unwrap().clone();
        assert!(acked.len() > 10, "{register}: the writer made progress");
        let mut checked = 0;
        for reader in readers {
            for (started, v) in reader.await.unwrap() {
                let floor = acked.iter().filter(|(at, _)| *at < started).map(|(_, v)| *v).max();
                if let Some(floor) = floor {
                    assert!(
                        v >= floor,
                        "{register}: a read begun after {floor} was acknowledged returned {v}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10, "{register}: reads were checked");
        println!("{register}: {} writes, {checked} reads checked", acked.len());
    }
}
