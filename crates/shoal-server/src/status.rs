//! Range status: what every replica reports about itself, and the cluster-wide view behind
//! `GET /v1/ranges`, `GET /v1/ranges/hot` and `shoal debug ranges`.
//!
//! ```text
//!   GET /v1/ranges on any node
//!     ├─ addressing records (/Meta/...)             which ranges exist
//!     └─ RangeStatuses ──▶ every known node, in parallel (2 s each)
//!          each answers one ReplicaStatus per local replica
//!   merged per range: the leaseholder's report (index, per-follower lag, QPS, size) wins
//! ```
//!
//! A node that does not answer is listed as unreachable; its ranges still appear, from the
//! addressing records and the other replicas' reports.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_api::RangeDescriptor;
use shoal_api::addressing::decode_meta_record;
use shoal_keys::{Key, Span, layout};
use shoal_kvclient::KvOps;
use shoal_kvserver::RangeReplica;
use shoal_rpc::Lane;

use crate::control::{self, ControlRequest, ControlResponse};
use crate::error::Result;
use crate::server::{Cluster, Server};

/// How many sampled hot keys a replica reports.
const HOT_KEYS: usize = 5;

/// A follower's progress as its leader sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowerStatus {
    /// The follower's replica id.
    pub replica_id: u64,
    /// Its node.
    pub node_id: u64,
    /// The highest log index it holds.
    pub matched_index: u64,
    /// How many entries it lacks.
    pub lag_entries: u64,
    /// How long since it last held every entry (0 while it does).
    pub lag_seconds: f64,
}

/// What one replica reports about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// The node reporting.
    pub node_id: u64,
    /// The replica's id.
    pub replica_id: u64,
    /// The range as this replica knows it.
    pub descriptor: RangeDescriptor,
    /// The voters (the rest of the descriptor's replicas are learners).
    pub voters: Vec<u64>,
    /// Whether it holds the lease.
    pub leaseholder: bool,
    /// The leaseholder it knows of.
    pub leader: Option<u64>,
    /// The Raft term.
    pub term: u64,
    /// Its last log index.
    pub last_index: u64,
    /// The commit index it knows.
    pub committed_index: u64,
    /// Its applied index.
    pub applied_index: u64,
    /// Requests per second served (leaseholder only).
    pub qps: f64,
    /// The range's size in bytes, if measured here.
    pub size_bytes: Option<u64>,
    /// On the leaseholder: every other replica's progress.
    pub followers: Vec<FollowerStatus>,
    /// On the leaseholder: the most requested sampled keys (printable) and their counts.
    pub hottest_keys: Vec<(String, u64)>,
}

/// Returns the status of one local replica.
pub fn replica_status(node_id: u64, replica: &RangeReplica) -> ReplicaStatus {
    let progress = replica.log_progress();
    let membership = replica.membership();
    let followers = replica
        .replication_lag()
        .into_iter()
        .map(|lag| FollowerStatus {
            replica_id: lag.replica_id,
            node_id: membership.members.get(&lag.replica_id).map_or(0, |m| m.node_id),
            matched_index: lag.matched_index,
            lag_entries: lag.entries,
            lag_seconds: lag.duration.as_secs_f64(),
        })
        .collect();
    let leaseholder = progress.leader;
    ReplicaStatus {
        node_id,
        replica_id: replica.replica_id(),
        descriptor: replica.descriptor(),
        voters: membership.voters.iter().copied().collect(),
        leaseholder,
        leader: replica.leader(),
        term: progress.term,
        last_index: progress.last_index,
        committed_index: progress.committed_index,
        applied_index: progress.applied_index,
        qps: if leaseholder { replica.load_qps() } else { 0.0 },
        size_bytes: replica.size_estimate(),
        followers,
        hottest_keys: if leaseholder {
            replica.hottest_keys(HOT_KEYS).into_iter().map(|(k, n)| (k.to_string(), n)).collect()
        } else {
            Vec::new()
        },
    }
}

/// Returns the status of every replica on this node.
pub fn local_statuses(cluster: &Cluster) -> Vec<ReplicaStatus> {
    let node_id = cluster.ident.node_id;
    cluster.store.replicas().iter().map(|r| replica_status(node_id, r)).collect()
}

/// One range as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeReport {
    /// The range id.
    pub range_id: u64,
    /// The first key (printable).
    pub start_key: String,
    /// The first key after the range (printable).
    pub end_key: String,
    /// The newest descriptor known (from the addressing records or a replica).
    pub descriptor: RangeDescriptor,
    /// The leaseholder's node, if any replica reported holding the lease.
    pub leaseholder_node: Option<u64>,
    /// The leaseholder's report: indexes, lag, QPS, size, hot keys.
    pub leaseholder: Option<ReplicaStatus>,
    /// Nodes that reported a replica of the range.
    pub reporting_nodes: Vec<u64>,
}

/// The cluster's ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangesReport {
    /// Every range, by range id.
    pub ranges: Vec<RangeReport>,
    /// Nodes that did not answer.
    pub unreachable_nodes: Vec<u64>,
}

/// Asks every known node for its replicas' statuses and merges them with the addressing
/// records.
pub async fn ranges(server: &Server) -> Result<RangesReport> {
    let cluster = server.require_cluster()?;
    let span = Span { start: Key::new(layout::META_PREFIX), end: Key::new(layout::META_MAX) };
    let mut descriptors: BTreeMap<u64, RangeDescriptor> = BTreeMap::new();
    let meta = cluster.kv.sender().meta_range();
    descriptors.insert(meta.range_id, meta);
    for (_, value) in cluster.kv.scan(span, None).await? {
        let descriptor = decode_meta_record(&value)?;
        keep_newest(&mut descriptors, descriptor);
    }
    let mut nodes: Vec<u64> =
        cluster.gossip.view().iter().map(|v| v.status.address.node_id).collect();
    nodes.retain(|&n| n != cluster.ident.node_id);
    let request = control::encode(&ControlRequest::RangeStatuses);
    let calls = nodes.iter().map(|&node_id| {
        let rpc = server.inner.rpc.clone();
        let request = request.clone();
        async move {
            let reply = rpc.send(node_id, Lane::Control, request, Duration::from_secs(2)).await;
            match reply.ok().and_then(|bytes| control::decode::<ControlResponse>(&bytes).ok()) {
                Some(ControlResponse::RangeStatuses(statuses)) => Ok(statuses),
                _ => Err(node_id),
            }
        }
    });
    let mut statuses = local_statuses(&cluster);
    let mut unreachable_nodes = Vec::new();
    for answer in futures::future::join_all(calls).await {
        match answer {
            Ok(more) => statuses.extend(more),
            Err(node_id) => unreachable_nodes.push(node_id),
        }
    }
    for status in &statuses {
        keep_newest(&mut descriptors, status.descriptor.clone());
    }
    let ranges = descriptors
        .into_values()
        .map(|descriptor| {
            let mine: Vec<&ReplicaStatus> =
                statuses.iter().filter(|s| s.descriptor.range_id == descriptor.range_id).collect();
            // Two replicas may both believe they lead for a moment; the higher term is current.
            let leaseholder =
                mine.iter().filter(|s| s.leaseholder).max_by_key(|s| s.term).map(|s| (*s).clone());
            let mut reporting_nodes: Vec<u64> = mine.iter().map(|s| s.node_id).collect();
            reporting_nodes.sort_unstable();
            RangeReport {
                range_id: descriptor.range_id,
                start_key: descriptor.start_key.to_string(),
                end_key: descriptor.end_key.to_string(),
                leaseholder_node: leaseholder.as_ref().map(|s| s.node_id),
                leaseholder,
                reporting_nodes,
                descriptor,
            }
        })
        .collect();
    Ok(RangesReport { ranges, unreachable_nodes })
}

fn keep_newest(descriptors: &mut BTreeMap<u64, RangeDescriptor>, descriptor: RangeDescriptor) {
    let newer =
        descriptors.get(&descriptor.range_id).is_none_or(|d| d.generation < descriptor.generation);
    if newer {
        descriptors.insert(descriptor.range_id, descriptor);
    }
}
