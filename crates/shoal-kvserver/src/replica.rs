//! A range replica on this store: lease checks, latches, evaluation and proposal of batches.
//!
//! ```text
//!   send(batch) ─▶ keys in range? ─▶ latches (per key; see [`crate::latch`])
//!              ─▶ lease read (leader, lease valid, applied up to date) ─▶ evaluate at clock.now()
//!              ─▶ writes? propose ProposedCommand { lease_sequence: term } ─▶ applied here
//!              ─▶ BatchResponse { responses, timestamp }
//! ```
//!
//! # Invariants (design §5)
//!
//! 1. Nothing is evaluated before the lease read returns (taken after the latch): the leader has
//!    then applied every entry committed before its lease, including all of earlier terms. The
//!    command carries the term that lease read confirmed.
//! 2. Latches serialize overlapping requests: a write holds its latch until its command is
//!    applied or, after a timeout, until the proposal resolves, so a later request evaluates on
//!    its effects.
//! 3. Every command carries the term it was evaluated under and is rejected at apply under any
//!    other term.
//! 4. Replicas raise their clocks to every applied write's timestamp, so a new leaseholder's
//!    `now()` is above every write it serves: its reads cannot miss them.
//!
//! # Out of scope
//!
//! Scans latch the whole range (see [`crate::latch`]); transactions and the timestamp cache
//! come with the transaction work.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use shoal_api::addressing::is_meta_range_key;
use shoal_api::txn::ObservedTimestamp;
use shoal_api::{BatchRequest, BatchResponse, KvError, RangeDescriptor, Request, Response};
use shoal_hlc::{Clock, Timestamp};
use shoal_keys::{Key, layout};
use shoal_raft::Replica;
use shoal_raft::handle::{self, NotServing};
use shoal_storage::{Engine, WriteBatch};

use crate::command::{ApplyOutcome, ProposedCommand, SplitTrigger};
use crate::eval::{self, Effects};
use crate::latch::{LatchManager, Latches};
use crate::lock_table::{LOCK_WAIT, LockTable};
use crate::metrics::StoreMetrics;
use shoal_api::scan_filter::ScanFilters;

use crate::replica_eval::push_waiter;
use crate::replica_load::LoadTracker;
use crate::tscache::TimestampCache;
use crate::txn_wait::{PUSH_WAIT, TxnWaitQueue};

/// Settings of a replica that come from its store.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The node the replica is on (for transactions' observed timestamps).
    pub node_id: u64,
    /// How long a request may wait for a latch, a lease read or its proposal.
    pub request_timeout: Duration,
    /// The shortest time between a leaseholder's last confirmed read and the start of the
    /// next lease: the minimum election timeout (followers that confirmed a leader's lease
    /// vote for no one else for that long).
    pub lease_gap: Duration,
    /// Compiles the filters that upper layers push into scans.
    pub scan_filters: Arc<dyn ScanFilters>,
}

/// One replica of a range on this store.
pub struct RangeReplica {
    descriptor: RwLock<RangeDescriptor>,
    replica_id: u64,
    raft: Replica,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) clock: Arc<Clock>,
    latches: LatchManager,
    pub(crate) config: ReplicaConfig,
    /// Read timestamps served under the current lease.
    pub(crate) tscache: std::sync::Mutex<TimestampCache>,
    /// The lease last served under, and the local uncertainty floor it set: every value the
    /// previous leaseholders wrote has a local timestamp at or below it.
    pub(crate) lease: std::sync::Mutex<(u64, Timestamp)>,
    /// Requests waiting for intents here to be resolved.
    pub(crate) lock_table: Arc<LockTable>,
    /// Pushes waiting for transactions whose records are here.
    pub(crate) txn_wait: Arc<TxnWaitQueue>,
    /// Serializes this leaseholder's replica changes (see [`crate::replica_change`]).
    pub(crate) changes: tokio::sync::Mutex<()>,
    /// Requests served, and sampled keys (see [`crate::replica_load`]).
    pub(crate) load: std::sync::Mutex<LoadTracker>,
    /// The range's size as last measured here, if ever.
    pub(crate) measured_size: std::sync::Mutex<Option<u64>>,
    /// Bytes proposed here since that measurement.
    pub(crate) written_since_measure: std::sync::atomic::AtomicU64,
    /// When each follower last held every entry (on the leader).
    pub(crate) caught_up: std::sync::Mutex<std::collections::HashMap<u64, std::time::Instant>>,
    pub(crate) metrics: StoreMetrics,
}

/// How long a range must stay busy before it is split by load, and what its QPS averages over.
pub const LOAD_WINDOW: Duration = Duration::from_secs(5);

impl RangeReplica {
    /// Wraps a running Raft replica.
    pub fn new(
        descriptor: RangeDescriptor,
        replica_id: u64,
        raft: Replica,
        engine: Arc<dyn Engine>,
        clock: Arc<Clock>,
        config: ReplicaConfig,
        metrics: StoreMetrics,
    ) -> Self {
        let range_id = descriptor.range_id;
        let now = std::time::Instant::now();
        RangeReplica {
            descriptor: RwLock::new(descriptor),
            replica_id,
            raft,
            engine,
            clock,
            latches: LatchManager::default(),
            config,
            tscache: std::sync::Mutex::default(),
            lease: std::sync::Mutex::new((0, Timestamp::MAX)),
            lock_table: Arc::default(),
            txn_wait: Arc::default(),
            changes: tokio::sync::Mutex::new(()),
            load: std::sync::Mutex::new(LoadTracker::new(LOAD_WINDOW, range_id, now)),
            measured_size: std::sync::Mutex::new(None),
            written_since_measure: std::sync::atomic::AtomicU64::new(0),
            caught_up: std::sync::Mutex::default(),
            metrics,
        }
    }

    /// Returns the range's descriptor as this replica knows it.
    pub fn descriptor(&self) -> RangeDescriptor {
        self.descriptor.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Returns this replica's id.
    pub fn replica_id(&self) -> u64 {
        self.replica_id
    }

    /// Returns the Raft handle.
    pub fn raft(&self) -> &Replica {
        &self.raft
    }

    /// Returns true if this replica currently leads its group (holds the lease).
    pub fn is_leaseholder(&self) -> bool {
        self.raft.is_leader()
    }

    /// Evaluates and, for writes, replicates a batch. Must be called on the leaseholder.
    pub async fn send(&self, batch: BatchRequest) -> Result<BatchResponse, KvError> {
        let descriptor = self.check_bounds(&batch)?;
        if let [Request::AdminSplit { key, new_range_id }] = batch.requests.as_slice() {
            return self.admin_split(key, *new_range_id).await;
        }
        eval::check_no_overlapping_writes(&batch.requests)?;
        self.record_load(&batch.requests);
        // At most one wait (for a lock, or for a pushee), then one more evaluation: a request
        // that still conflicts goes back to its sender, which pushes.
        let mut waited = false;
        loop {
            // The latch first, then the lease read: evaluation must see everything committed
            // before the lease read, including writes that finished while this request waited
            // for the latch.
            let acquire = self.latches.acquire(&batch.requests);
            // Bounded: an earlier write whose proposal never resolves (this replica lost its
            // quorum) keeps its latch; later requests give up and the client tries elsewhere.
            let Ok(latch) = tokio::time::timeout(self.config.request_timeout, acquire).await else {
                return Err(KvError::Unavailable(format!(
                    "range {} is busy with a write whose outcome is still unknown",
                    descriptor.range_id
                )));
            };
            let lease_sequence = self.confirm_lease(&descriptor).await?;
            // Again, now that nothing can change under the latch: a split applied while this
            // request waited has moved some keys to another range.
            let descriptor = self.check_bounds(&batch)?;
            self.observe_lease(lease_sequence);
            let mut effects = Effects::default();
            let evaluated = match self.evaluate_batch(&batch, &descriptor, &mut effects) {
                Ok(evaluated) => evaluated,
                Err(e) => match e.into_kv(batch.txn.as_ref()) {
                    KvError::LockConflict { locks, .. } if !waited => {
                        let keys = locks.into_iter().map(|(key, _)| key);
                        let wait = self.lock_table.wait_for(keys);
                        drop(latch);
                        wait.wait(LOCK_WAIT).await;
                        waited = true;
                        continue;
                    }
                    e => return Err(e),
                },
            };
            if let Some(pushee) = effects.push_blocked.filter(|_| !waited) {
                let pusher = push_waiter(&batch.requests);
                let wait = self.txn_wait.wait_for(pushee, pusher);
                drop(latch);
                wait.wait(PUSH_WAIT).await;
                waited = true;
                continue;
            }
            // Before the latch goes: a later write must find these reads.
            self.record_reads(&batch, &evaluated);
            if !evaluated.writes.is_empty() {
                self.written_since_measure.fetch_add(
                    evaluated.writes.size_bytes() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                let command = ProposedCommand {
                    lease_sequence,
                    max_write_ts: evaluated.write_ts,
                    writes: evaluated.writes.encode(),
                    split: None,
                };
                self.replicate(command, latch).await?;
            } else {
                drop(latch);
            }
            for span in &effects.resolved {
                self.lock_table.released(span);
            }
            for txn_id in &effects.records_changed {
                self.txn_wait.changed(*txn_id);
            }
            self.metrics.scan_rows_filtered.inc_by(effects.rows_filtered);
            self.metrics.scan_rows_returned.inc_by(effects.rows_scanned);
            return Ok(BatchResponse {
                responses: evaluated.responses,
                timestamp: evaluated.write_ts,
                txn: evaluated.txn,
                observed: Some(ObservedTimestamp {
                    node_id: self.config.node_id,
                    ts: self.clock.now(),
                }),
            });
        }
    }

    /// Returns the descriptor if every request of `batch` falls in it.
    fn check_bounds(&self, batch: &BatchRequest) -> Result<RangeDescriptor, KvError> {
        let descriptor = self.descriptor();
        for request in &batch.requests {
            let span = request.span();
            if !descriptor.contains_span(&span) {
                return Err(KvError::RangeKeyMismatch {
                    range_id: descriptor.range_id,
                    key: span.start,
                    actual: Some(Box::new(descriptor.clone())),
                });
            }
        }
        if batch.requests.len() > 1
            && batch.requests.iter().any(|r| matches!(r, Request::AdminSplit { .. }))
        {
            return Err(KvError::InvalidArgument("a split must be alone in its batch".into()));
        }
        Ok(descriptor)
    }

    /// Splits this range at `key`; the right-hand side becomes range `new_range_id` with the
    /// same replicas. Holds the write latch throughout, so no request evaluates across it.
    async fn admin_split(&self, key: &Key, new_range_id: u64) -> Result<BatchResponse, KvError> {
        let split = [Request::AdminSplit { key: key.clone(), new_range_id }];
        let acquire = self.latches.acquire(&split);
        let Ok(latch) = tokio::time::timeout(self.config.request_timeout, acquire).await else {
            return Err(KvError::Unavailable("the range is busy; the split was not made".into()));
        };
        let lease_sequence = self.confirm_lease(&self.descriptor()).await?;
        let descriptor = self.descriptor();
        if is_meta_range_key(key) || descriptor.end_key.as_bytes() <= layout::META_MAX {
            return Err(KvError::InvalidArgument("the meta range does not split".into()));
        }
        if *key == descriptor.start_key {
            // Already split here (a retried request): report the ranges as they are.
            return Err(KvError::InvalidArgument(format!(
                "{key} is already the start of range {}",
                descriptor.range_id
            )));
        }
        if !descriptor.contains_key(key.as_bytes()) {
            return Err(KvError::RangeKeyMismatch {
                range_id: descriptor.range_id,
                key: key.clone(),
                actual: Some(Box::new(descriptor)),
            });
        }
        let generation = descriptor.generation + 1;
        let rhs = RangeDescriptor {
            range_id: new_range_id,
            start_key: key.clone(),
            end_key: descriptor.end_key.clone(),
            generation,
            ..descriptor.clone()
        };
        let lhs = RangeDescriptor { end_key: key.clone(), generation, ..descriptor };
        let ts = self.clock.now();
        let split = SplitTrigger { lhs: lhs.clone(), rhs: rhs.clone(), proposer: self.replica_id };
        let command = ProposedCommand {
            lease_sequence,
            max_write_ts: ts,
            writes: WriteBatch::new().encode(),
            split: Some(split),
        };
        self.replicate(command, latch).await?;
        // As applied: apply takes the replicas (and generation) from the range as it was then,
        // and wrote both records in the split's batch.
        let applied = |range_id: u64| -> Option<RangeDescriptor> {
            let key = layout::range_local_key(range_id, layout::RangeLocalKind::Descriptor);
            let bytes = self.engine.get(shoal_storage::Cf::Local, key.as_bytes()).ok()??;
            shoal_api::decode(&bytes).ok()
        };
        let (Some(lhs), Some(rhs)) = (applied(lhs.range_id), applied(rhs.range_id)) else {
            return Err(KvError::Internal("a split applied without its descriptors".into()));
        };
        Ok(BatchResponse {
            responses: vec![Response::AdminSplit { lhs, rhs }],
            timestamp: ts,
            txn: None,
            observed: None,
        })
    }

    /// Records the range's new descriptor (after a split).
    pub(crate) fn set_descriptor(&self, descriptor: RangeDescriptor) {
        let mut held = self.descriptor.write().unwrap_or_else(|p| p.into_inner());
        let reshaped = held.span() != descriptor.span();
        *held = descriptor;
        drop(held);
        if reshaped {
            // Load and size describe keys this replica may no longer hold.
            self.reset_load_and_size();
        }
    }

    /// Takes a lease read, bounded: a leader cut off from its followers may wait for a quorum
    /// forever. Returns the lease sequence (term) to evaluate under.
    async fn confirm_lease(&self, descriptor: &RangeDescriptor) -> Result<u64, KvError> {
        match tokio::time::timeout(self.config.request_timeout, handle::lease_read(&self.raft))
            .await
        {
            Ok(result) => result.map_err(|e| self.not_serving(e)),
            Err(_) => Err(KvError::Unavailable(format!(
                "range {} could not confirm its lease within {:?}",
                descriptor.range_id, self.config.request_timeout
            ))),
        }
    }

    async fn replicate(&self, command: ProposedCommand, latch: Latches) -> Result<(), KvError> {
        let started = std::time::Instant::now();
        let result = self.replicate_timed(command, latch).await;
        self.metrics.proposal_duration.observe(started.elapsed().as_secs_f64());
        result
    }

    async fn replicate_timed(
        &self,
        command: ProposedCommand,
        latch: Latches,
    ) -> Result<(), KvError> {
        let raft = self.raft.clone();
        let mut proposal =
            tokio::spawn(async move { handle::propose(&raft, command.to_command()).await });
        let response = match tokio::time::timeout(self.config.request_timeout, &mut proposal).await
        {
            Ok(Ok(result)) => result.map_err(|e| self.not_serving(e))?,
            Ok(Err(e)) => return Err(KvError::Ambiguous(format!("the proposal task failed: {e}"))),
            // Proposed but not known to be committed: it may still commit later. The latch stays
            // held until the proposal resolves, so no later request evaluates without its effect.
            Err(_) => {
                tokio::spawn(async move {
                    let _ = proposal.await;
                    drop(latch);
                });
                return Err(KvError::Ambiguous(format!(
                    "the write was proposed but not committed within {:?}",
                    self.config.request_timeout
                )));
            }
        };
        drop(latch);
        match ApplyOutcome::from_response(&response) {
            ApplyOutcome::Applied => Ok(()),
            // Evaluated under a lease that ended before the entry's term: nothing was written.
            ApplyOutcome::Rejected { .. } => {
                Err(self.not_leaseholder(handle::current_leader(&self.raft)))
            }
            ApplyOutcome::Undecodable => {
                Err(KvError::Internal("a proposed command did not decode".into()))
            }
        }
    }

    pub(crate) fn not_serving_error(&self, e: NotServing) -> KvError {
        self.not_serving(e)
    }

    pub(crate) fn not_leaseholder_error(&self) -> KvError {
        self.not_leaseholder(handle::current_leader(&self.raft))
    }

    fn not_serving(&self, e: NotServing) -> KvError {
        match e {
            NotServing::NotLeader { leader } => self.not_leaseholder(leader),
            NotServing::Unavailable(reason) => KvError::Unavailable(reason),
            NotServing::Ambiguous(reason) => KvError::Ambiguous(reason),
        }
    }

    fn not_leaseholder(&self, leader: Option<u64>) -> KvError {
        let descriptor = self.descriptor();
        KvError::NotLeaseholder {
            range_id: descriptor.range_id,
            leaseholder: leader.and_then(|id| descriptor.replica(id)),
        }
    }
}
