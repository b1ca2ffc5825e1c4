//! `GET /metrics`: the node's metrics in the Prometheus text format (OpenMetrics flavour, via
//! the `prometheus-client` crate).
//!
//! ```text
//!   shoal_node_qps 812.4                                   requests/s served by this node's leases
//!   shoal_range_qps{range_id="7"} 310.0                    per range led here
//!   shoal_kv_request_duration_seconds_bucket{le="0.001"} … per request on this store
//!   shoal_raft_proposal_duration_seconds_bucket{…}         propose → committed and applied here
//!   shoal_raft_apply_duration_seconds_bucket{…}            one entry's apply
//!   shoal_replication_lag_entries{range_id="7",replica_id="9",node_id="4"} 12
//!   shoal_replication_lag_seconds{…} 0.8                   since that follower last held everything
//!   shoal_ranges_underreplicated 0   shoal_ranges_unavailable 0   (ranges led here)
//!   shoal_range_splits_total 3   shoal_replica_changes_total 5   shoal_snapshots_installed_total 2
//!   shoal_leaseholders 12   shoal_replicas 30
//! ```
//!
//! Gauges are computed when scraped, from the replicas as they are; counters and histograms
//! live in the store and the node and only grow. Every node reports only what it sees: sum
//! per-node series across nodes, and read per-range series from the node holding the lease.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::Result;
use crate::liveness;
use crate::server::{Cluster, Server};
use crate::settings;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn gauge(value: f64) -> FloatGauge {
    let gauge = FloatGauge::default();
    gauge.set(value);
    gauge
}

/// Renders the node's metrics.
pub async fn render(server: &Server) -> Result<String> {
    let cluster = server.require_cluster()?;
    let mut registry = Registry::with_prefix("shoal");
    let replicas = cluster.store.replicas();
    let leaseholders: Vec<_> = replicas.iter().filter(|r| r.is_leaseholder()).collect();

    let range_qps = Family::<Labels, FloatGauge>::default();
    let lag_entries = Family::<Labels, FloatGauge>::default();
    let lag_seconds = Family::<Labels, FloatGauge>::default();
    let mut node_qps = 0.0;
    for replica in &leaseholders {
        let range_id = replica.descriptor().range_id.to_string();
        let qps = replica.load_qps();
        node_qps += qps;
        range_qps.get_or_create(&vec![("range_id".into(), range_id.clone())]).set(qps);
        let members = replica.membership().members;
        for lag in replica.replication_lag() {
            let node_id = members.get(&lag.replica_id).map_or(0, |m| m.node_id);
            let labels = vec![
                ("range_id".to_string(), range_id.clone()),
                ("replica_id".to_string(), lag.replica_id.to_string()),
                ("node_id".to_string(), node_id.to_string()),
            ];
            lag_entries.get_or_create(&labels).set(lag.entries as f64);
            lag_seconds.get_or_create(&labels).set(lag.duration.as_secs_f64());
        }
    }
    registry.register(
        "node_qps",
        "Requests per second served by this node's leases",
        gauge(node_qps),
    );
    registry.register("range_qps", "Requests per second served, per range led here", range_qps);
    registry.register(
        "replication_lag_entries",
        "Log entries a follower lacks, per range led here",
        lag_entries,
    );
    registry.register(
        "replication_lag_seconds",
        "Seconds since a follower last held every entry, per range led here",
        lag_seconds,
    );

    let (under, unavailable) = unhealthy_ranges(server, &cluster).await;
    registry.register(
        "ranges_underreplicated",
        "Ranges led here with fewer live voters than the replication factor",
        gauge(under as f64),
    );
    registry.register(
        "ranges_unavailable",
        "Ranges led here whose live voters are not a quorum",
        gauge(unavailable as f64),
    );
    registry.register(
        "leaseholders",
        "Ranges whose lease this node holds",
        gauge(leaseholders.len() as f64),
    );
    registry.register("replicas", "Range replicas on this node", gauge(replicas.len() as f64));
    registry.register(
        "sql_query_tasks",
        "Statements' operator trees running on this node's SQL runtime",
        gauge(cluster.sql.running_query_tasks() as f64),
    );
    let stats = &server.inner.stats;
    let counter = |value: &AtomicU64| ConstCounter::new(value.load(Ordering::Relaxed));
    registry.register("range_splits", "Splits made by this node", counter(&stats.splits));
    registry.register(
        "replica_changes",
        "Replica changes (up-replication, removal, rebalancing) made by this node",
        counter(&stats.replica_changes),
    );
    cluster.store.metrics().register(&mut registry);

    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| crate::Error::Peer(format!("encoding: {e}")))?;
    Ok(text)
}

/// Counts the ranges led here that lack voters on live nodes: fewer than the factor
/// (under-replicated) and fewer than a quorum (unavailable). Unknown liveness counts as live.
async fn unhealthy_ranges(server: &Server, cluster: &Cluster) -> (usize, usize) {
    let factor = settings::get(&cluster.kv, settings::REPLICATION_FACTOR)
        .await
        .unwrap_or(settings::REPLICATION_FACTOR.default) as usize;
    let now = server.inner.clock.now();
    let dead: BTreeSet<u64> = match liveness::read_all(&cluster.kv).await {
        Ok(records) => records.iter().filter(|r| !r.is_live(now)).map(|r| r.node_id).collect(),
        Err(_) => BTreeSet::new(),
    };
    let (mut under, mut unavailable) = (0, 0);
    for replica in cluster.store.replicas().iter().filter(|r| r.is_leaseholder()) {
        let membership = replica.membership();
        let live = membership
            .voters
            .iter()
            .filter(|id| membership.members.get(id).is_some_and(|m| !dead.contains(&m.node_id)))
            .count();
        under += usize::from(live < factor);
        unavailable += usize::from(live <= membership.voters.len() / 2);
    }
    (under, unavailable)
}
