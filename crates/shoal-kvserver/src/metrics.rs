//! The store's counters and latency histograms, registered into the node's Prometheus registry
//! when `/metrics` is scraped (see `shoal-server`'s metrics module).
//!
//! ```text
//!   Store::send ─────────────── kv_request_duration_seconds, kv_requests_total
//!   RangeReplica::replicate ─── raft_proposal_duration_seconds (propose → committed, applied)
//!   apply of one entry ──────── raft_apply_duration_seconds
//!   snapshot installed ──────── snapshots_installed_total
//!   scans ───────────────────── scan_rows_returned_total, and with a pushed filter
//!                               scan_rows_filtered_total (rows left out at the range)
//! ```
//!
//! Histograms and counters are cheap to update from any task (atomics behind an `Arc`); a
//! registry built at scrape time holds clones of them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Latency buckets from 50 µs to about 1.6 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// A store's metrics.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    /// KV requests (batches) evaluated on this store.
    pub requests: Counter,
    /// Time to serve a KV batch on this store, from arrival to answer.
    pub request_duration: Histogram,
    /// Time from proposing a command to its being committed and applied on the leaseholder.
    pub proposal_duration: Histogram,
    /// Time to apply one committed entry.
    pub apply_duration: Histogram,
    /// Snapshots installed on this store's replicas.
    pub snapshots_installed: Counter,
    /// Rows that filters pushed into scans left out ([`shoal_api::scan_filter`]).
    pub scan_rows_filtered: Counter,
    /// Rows that scans returned.
    pub scan_rows_returned: Counter,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            requests: Counter::default(),
            request_duration: latency_histogram(),
            proposal_duration: latency_histogram(),
            apply_duration: latency_histogram(),
            snapshots_installed: Counter::default(),
            scan_rows_filtered: Counter::default(),
            scan_rows_returned: Counter::default(),
        }
    }
}

impl StoreMetrics {
    /// Registers (clones of) every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("kv_requests", "KV batches served by this store", self.requests.clone());
        registry.register(
            "scan_rows_filtered",
            "Rows that filters pushed into scans left out on this store",
            self.scan_rows_filtered.clone(),
        );
        registry.register(
            "scan_rows_returned",
            "Rows that scans returned on this store",
            self.scan_rows_returned.clone(),
        );
        registry.register(
            "kv_request_duration_seconds",
            "Time to serve a KV batch on this store",
            self.request_duration.clone(),
        );
        registry.register(
            "raft_proposal_duration_seconds",
            "Time from proposing a command to its commit and apply on the leaseholder",
            self.proposal_duration.clone(),
        );
        registry.register(
            "raft_apply_duration_seconds",
            "Time to apply one committed Raft entry",
            self.apply_duration.clone(),
        );
        registry.register(
            "snapshots_installed",
            "Raft snapshots installed on this store",
            self.snapshots_installed.clone(),
        );
    }
}
