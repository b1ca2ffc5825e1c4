//! The replicate queue: every node, for every range it leads, keeps the range at its
//! replication factor on live nodes, spreads replicas and leases, repairs addressing records,
//! and collects replicas removed from their ranges.
//!
//! ```text
//!   every interval:
//!     liveness records + gossiped counts ─▶ NodeInfo per node
//!     for each range this node leads:
//!       addressing record older than the descriptor? rewrite it
//!       allocator::plan ─▶ AddVoter n5 (replacing r3):
//!           CreateReplica(r9) ──▶ n5 (empty replica)        [control lane]
//!           purge log, add learner r9, snapshot, voters {r1,r2,r9}
//!           DestroyReplica(r3) ──▶ n3 (best effort)
//!           /Meta/<end> ← new descriptor
//!     every few passes: replicas the addressing records no longer name are destroyed
//! ```
//!
//! # Invariants
//!
//! - Only the leaseholder changes its range, one change at a time (see
//!   `shoal_kvserver::replica_change`); a pass makes a bounded number of changes, so counts
//!   that lag (gossip) cannot send every range to the same node at once.
//! - A replica is destroyed only when told so by the leaseholder that removed it, when an
//!   addressing record of a *newer generation* no longer names its replica id (ids are never
//!   reused, so a replica missing from a newer descriptor was removed for good), or when
//!   neither the record nor its own descriptor of the same generation has named it for 10 s
//!   (a removed replica that applied its own removal; a learner being added is named by its
//!   own descriptor within moments).
//!
//! # Hazards
//!
//! - Addressing records are written after the change, not in one transaction with it: a
//!   leaseholder that dies in between leaves a stale record, which the next leaseholder's pass
//!   rewrites (until then, routing follows the replicas' redirects).
//! - Nothing moves the meta range's replicas off dead nodes yet, and nodes find range 1 from the
//!   descriptor they joined with.

use std::collections::{BTreeMap, HashMap};
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shoal_api::addressing::decode_meta_record;
use shoal_api::{KvError, RangeDescriptor, ReplicaDescriptor};
use shoal_keys::{Key, Span, layout};
use shoal_kvclient::KvOps;
use shoal_kvserver::RangeReplica;
use shoal_rpc::Lane;

use crate::allocator::{self, Action, Member, NodeInfo, RangeInfo};
use crate::control::{self, ControlRequest, ControlResponse};
use crate::error::{Error, Result};
use crate::liveness::{self, NodeMembership};
use crate::server::{Cluster, Inner, Server};
use crate::settings;

/// At most this many replica changes per pass on one node.
const CHANGES_PER_PASS: usize = 4;
/// Replica collection runs every this many passes.
const GC_EVERY_PASSES: u64 = 5;

/// Runs the queue until the node stops.
pub(crate) async fn run(inner: Weak<Inner>, interval: Duration) {
    let mut passes = 0u64;
    // The generation whose addressing record each range led here was last checked at: a
    // record is checked again only when its range changes (or its lease moves here).
    let mut checked: HashMap<u64, u64> = HashMap::new();
    let mut suspects: HashMap<(u64, u64), Instant> = HashMap::new();
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        let server = Server { inner };
        let Some(cluster) = server.cluster() else { continue };
        passes += 1;
        if let Err(e) = crate::split_queue::split_pass(&server, &cluster).await {
            tracing::warn!("split queue pass: {e}");
        }
        if let Err(e) = replicate_pass(&server, &cluster, &mut checked).await {
            tracing::warn!("replicate queue pass: {e}");
        }
        if passes.is_multiple_of(GC_EVERY_PASSES)
            && let Err(e) = collect_removed_replicas(&cluster, &mut suspects).await
        {
            tracing::debug!("replica collection pass: {e}");
        }
    }
}

/// What the queue knows of every node: liveness from the records, counts from gossip.
async fn node_infos(server: &Server, cluster: &Cluster) -> Result<BTreeMap<u64, NodeInfo>> {
    let records = liveness::read_all(&cluster.kv).await?;
    let now = server.inner.clock.now();
    let counts: HashMap<u64, (u64, u64, u64)> = cluster
        .gossip
        .view()
        .into_iter()
        .map(|v| (v.status.address.node_id, (v.status.replicas, v.status.leases, v.status.qps)))
        .collect();
    Ok(records
        .into_iter()
        .map(|record| {
            let (replicas, leases, qps) = counts.get(&record.node_id).copied().unwrap_or((0, 0, 0));
            let info = NodeInfo {
                live: record.is_live(now),
                decommissioning: record.membership != NodeMembership::Active,
                draining: record.draining,
                replicas,
                leases,
                qps: qps as f64,
            };
            (record.node_id, info)
        })
        .collect())
}

/// One pass over the ranges this node leads.
pub(crate) async fn replicate_pass(
    server: &Server,
    cluster: &Cluster,
    checked: &mut HashMap<u64, u64>,
) -> Result<usize> {
    let mut nodes = node_infos(server, cluster).await?;
    let factor = settings::get(&cluster.kv, settings::REPLICATION_FACTOR).await? as usize;
    let mut changes = 0;
    // At most one change per pass only evens the cluster out: every node decides from counts
    // that lag, so many moves at once would overshoot and move replicas back and forth.
    let mut rebalanced = false;
    // Each pass starts at another range, so a range whose change keeps failing (or keeps
    // being planned) cannot starve the others of the one rebalance a pass allows.
    let mut replicas = cluster.store.replicas();
    if !replicas.is_empty() {
        let start = server.inner.stats.passes.fetch_add(1, Ordering::Relaxed) as usize;
        let shift = start % replicas.len();
        replicas.rotate_left(shift);
    }
    for replica in replicas {
        let descriptor = replica.descriptor();
        if !replica.is_leaseholder() {
            checked.remove(&descriptor.range_id);
            continue;
        }
        if checked.get(&descriptor.range_id) != Some(&descriptor.generation) {
            match repair_meta_record(cluster, &descriptor).await {
                Ok(()) => {
                    checked.insert(descriptor.range_id, descriptor.generation);
                }
                Err(e) => tracing::debug!(
                    range_id = descriptor.range_id,
                    "repairing an addressing record: {e}"
                ),
            }
        }
        if changes >= CHANGES_PER_PASS {
            continue;
        }
        let range = range_info(&replica);
        let (action, reason) = allocator::plan_with_reason(&range, &nodes, factor);
        if action == Action::Nothing || (reason.is_rebalance() && rebalanced) {
            continue;
        }
        rebalanced |= reason.is_rebalance();
        let range_id = descriptor.range_id;
        tracing::info!(range_id, reason = reason.name(), ?action, "replica change");
        match execute(server, cluster, &replica, action).await {
            Ok(()) => {
                changes += 1;
                account(&mut nodes, &range, action);
                server.inner.stats.replica_changes.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // Counted too: a pass must not spend minutes on changes that keep failing.
                changes += 1;
                tracing::warn!(range_id, ?action, "replica change failed: {e}");
            }
        }
    }
    Ok(changes)
}

/// Describes `replica`'s range for the allocator.
fn range_info(replica: &RangeReplica) -> RangeInfo {
    let membership = replica.membership();
    let member = |id: &u64| Member {
        replica_id: *id,
        node_id: membership.members.get(id).map_or(0, |location| location.node_id),
    };
    RangeInfo {
        voters: membership.voters.iter().map(member).collect(),
        learners: membership.learners().iter().map(member).collect(),
        leaseholder: replica.replica_id(),
        joint: membership.joint,
        qps: replica.load_qps(),
    }
}

/// Updates the counts in `nodes` after `action`, so later plans in the same pass see it.
fn account(nodes: &mut BTreeMap<u64, NodeInfo>, range: &RangeInfo, action: Action) {
    let node_of = |replica_id: u64| {
        range.voters.iter().chain(&range.learners).find(|m| m.replica_id == replica_id)
    };
    match action {
        Action::AddVoter { node_id, remove } => {
            if let Some(n) = nodes.get_mut(&node_id) {
                n.replicas += 1;
            }
            if let Some(m) = remove.and_then(node_of)
                && let Some(n) = nodes.get_mut(&m.node_id)
            {
                n.replicas = n.replicas.saturating_sub(1);
            }
        }
        Action::RemoveVoter { replica_id } => {
            if let Some(m) = node_of(replica_id)
                && let Some(n) = nodes.get_mut(&m.node_id)
            {
                n.replicas = n.replicas.saturating_sub(1);
            }
        }
        Action::TransferLease { replica_id } => {
            let leaseholder = node_of(range.leaseholder).map(|m| m.node_id);
            if let Some(n) = leaseholder.and_then(|id| nodes.get_mut(&id)) {
                n.leases = n.leases.saturating_sub(1);
            }
            if let Some(n) = node_of(replica_id).and_then(|m| nodes.get_mut(&m.node_id)) {
                n.leases += 1;
                n.qps += range.qps;
            }
            if let Some(n) = leaseholder.and_then(|id| nodes.get_mut(&id)) {
                n.qps = (n.qps - range.qps).max(0.0);
            }
        }
        Action::Nothing | Action::FinishJoint | Action::RemoveLearner { .. } => {}
    }
}

/// Carries out `action` on the range `replica` leads.
async fn execute(
    server: &Server,
    cluster: &Cluster,
    replica: &RangeReplica,
    action: Action,
) -> Result<()> {
    let timeout = server.inner.config.replica_change_timeout;
    let removed = match action {
        Action::Nothing => return Ok(()),
        Action::FinishJoint => {
            replica.finish_joint_change().await?;
            None
        }
        Action::RemoveLearner { replica_id } => {
            let gone = replica.descriptor().replica(replica_id);
            replica.remove_learner(replica_id).await?;
            gone
        }
        Action::RemoveVoter { replica_id } => {
            let gone = replica.descriptor().replica(replica_id);
            replica.remove_voter(replica_id).await?;
            gone
        }
        Action::AddVoter { node_id, remove } => {
            let descriptor = replica.descriptor();
            let gone = remove.and_then(|id| descriptor.replica(id));
            let target = create_replica(server, node_id, &descriptor).await?;
            replica.add_voter(target, remove, timeout).await?;
            gone
        }
        Action::TransferLease { replica_id } => {
            replica.transfer_lease(replica_id).await?;
            return Ok(());
        }
    };
    if let Some(gone) = removed {
        destroy_remote_replica(server, replica.descriptor().range_id, gone).await;
    }
    repair_meta_record(cluster, &replica.descriptor()).await
}

/// Asks `node_id` to create an empty replica of `descriptor`'s range with the next replica id.
async fn create_replica(
    server: &Server,
    node_id: u64,
    descriptor: &RangeDescriptor,
) -> Result<ReplicaDescriptor> {
    let request = ControlRequest::CreateReplica {
        descriptor: descriptor.clone(),
        replica_id: descriptor.next_replica_id,
    };
    let timeout = server.inner.config.replica_change_timeout;
    let reply = server
        .inner
        .rpc
        .send(node_id, Lane::Control, control::encode(&request), timeout)
        .await
        .map_err(|e| Error::Peer(format!("creating a replica on node {node_id}: {e}")))?;
    match control::decode::<ControlResponse>(&reply).map_err(Error::Peer)? {
        ControlResponse::ReplicaCreated(replica) => Ok(replica),
        ControlResponse::Error(e) => {
            Err(Error::Peer(format!("node {node_id} did not create the replica: {e}")))
        }
        other => Err(Error::Peer(format!("node {node_id} answered {other:?}"))),
    }
}

/// Tells the node of a removed replica to destroy it. Best effort: a node that does not hear
/// it collects the replica later from the addressing records.
async fn destroy_remote_replica(server: &Server, range_id: u64, gone: ReplicaDescriptor) {
    let request = ControlRequest::DestroyReplica { range_id, replica_id: gone.replica_id };
    let timeout = Duration::from_secs(5);
    let sent =
        server.inner.rpc.send(gone.node_id, Lane::Control, control::encode(&request), timeout);
    if let Err(e) = sent.await {
        tracing::debug!(range_id, node_id = gone.node_id, "could not tell a removed replica: {e}");
    }
}

/// Rewrites the addressing record of `descriptor`'s range if it is missing or older.
async fn repair_meta_record(cluster: &Cluster, descriptor: &RangeDescriptor) -> Result<()> {
    Ok(cluster.kv.write_meta_record_if_newer(descriptor).await?)
}

/// How long a replica that neither its own descriptor nor the addressing record names must
/// stay so before it is collected: a learner being added can look like that for a moment (its
/// snapshot may predate its addition).
const UNNAMED_GRACE: Duration = Duration::from_secs(10);

/// Destroys local replicas that were removed from their ranges: at once if a newer addressing
/// record no longer names them, after [`UNNAMED_GRACE`] if the record and the replica's own
/// descriptor (same generation) both do not. `suspects` remembers since when.
pub(crate) async fn collect_removed_replicas(
    cluster: &Cluster,
    suspects: &mut HashMap<(u64, u64), Instant>,
) -> Result<usize> {
    let span = Span { start: Key::new(layout::META_PREFIX), end: Key::new(layout::META_MAX) };
    let mut newest: HashMap<u64, RangeDescriptor> = HashMap::new();
    for (_, value) in cluster.kv.scan(span, None).await? {
        // A record that does not decode names nothing to collect.
        let Ok(descriptor) = decode_meta_record(&value) else { continue };
        let keep =
            newest.get(&descriptor.range_id).is_none_or(|d| d.generation < descriptor.generation);
        if keep {
            newest.insert(descriptor.range_id, descriptor);
        }
    }
    let now = Instant::now();
    let mut still_suspect = HashMap::new();
    let mut destroyed = 0;
    for replica in cluster.store.replicas() {
        let local = replica.descriptor();
        let id = (local.range_id, replica.replica_id());
        let Some(current) = newest.get(&local.range_id) else { continue };
        let me = cluster.ident.node_id;
        let named = |d: &RangeDescriptor| d.replica(id.1).is_some_and(|r| r.node_id == me);
        if replica.is_leaseholder() || named(current) {
            continue;
        }
        let removed = if current.generation > local.generation {
            true
        } else if current.generation == local.generation && !named(&local) {
            let since = *suspects.get(&id).unwrap_or(&now);
            still_suspect.insert(id, since);
            now.duration_since(since) >= UNNAMED_GRACE
        } else {
            false
        };
        if !removed {
            continue;
        }
        match cluster.store.destroy_replica(local.range_id, id.1).await {
            Ok(()) => destroyed += 1,
            Err(KvError::RangeNotFound(_)) => {}
            Err(e) => tracing::warn!(range_id = local.range_id, "collecting a replica: {e}"),
        }
    }
    *suspects = still_suspect;
    Ok(destroyed)
}
