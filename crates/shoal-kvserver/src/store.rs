//! A store: one engine, its group-commit log writer, and every range replica on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use shoal_api::{BatchRequest, BatchResponse, KvError, RangeDescriptor, ReplicaDescriptor};
use shoal_hlc::{Clock, Timestamp};
use shoal_keys::layout::{self, RangeLocalKind, range_local_key};
use shoal_keys::{Key, Span};
use shoal_raft::handle;
use shoal_raft::{
    Applier, Command, CommandResponse, EngineSpan, EntryInfo, LogWriter, RaftEnvelope, RaftRequest,
    RaftResponse, RaftTimers, ReplicaContext, ReplicaLocation, Transport, deliver, start_replica,
};
use shoal_storage::mvcc::{self, key::encode_prefix};
use shoal_storage::{Cf, Engine, IterOptions, Reader, WriteBatch, WriteOptions, scan_all};

use crate::command::{ApplyOutcome, ProposedCommand, SplitTrigger};
use crate::metrics::StoreMetrics;
use crate::replica::{RangeReplica, ReplicaConfig};

/// A store's identity and environment.
#[derive(Clone)]
pub struct StoreConfig {
    /// The node this store belongs to.
    pub node_id: u64,
    /// The store's id.
    pub store_id: u64,
    /// Raft timers.
    pub timers: RaftTimers,
    /// Compiles the filters that upper layers push into scans
    /// ([`shoal_api::scan_filter::NoScanFilters`] for a node without SQL).
    pub scan_filters: Arc<dyn shoal_api::scan_filter::ScanFilters>,
}

/// The ranges' descriptors, shared with the applier (which needs spans for snapshots).
type Descriptors = Arc<RwLock<HashMap<u64, RangeDescriptor>>>;

/// Applies [`ProposedCommand`]s and names the spans a range's snapshot copies.
struct KvApplier {
    clock: Arc<Clock>,
    metrics: StoreMetrics,
    descriptors: Descriptors,
    store: Weak<Store>,
}

impl Applier for KvApplier {
    fn apply(
        &self,
        entry: EntryInfo<'_>,
        command: &Command,
        reader: &dyn Reader,
        batch: &mut WriteBatch,
    ) -> CommandResponse {
        let Some(proposed) = ProposedCommand::decode(command) else {
            return ApplyOutcome::Undecodable.to_response();
        };
        let outcome = proposed.apply_decoded(entry.term(), &self.clock, batch);
        if let (ApplyOutcome::Applied, Some(split)) = (outcome, &proposed.split) {
            // The replicas are the membership's at this entry: a replica change may have been
            // applied between the split's evaluation and this entry.
            let members = entry.members();
            let current = read_descriptor(reader, entry.range_id);
            let generation = current.as_ref().map_or(split.lhs.generation, |c| c.generation + 1);
            let next_id = current.as_ref().map_or(0, |c| c.next_replica_id);
            let mut split = split.clone();
            for descriptor in [&mut split.lhs, &mut split.rhs] {
                if let Some(updated) = descriptor_with_members(descriptor, &members) {
                    *descriptor = updated;
                }
                descriptor.generation = generation;
                // Ids handed out since the split was evaluated are never handed out again.
                descriptor.next_replica_id = descriptor.next_replica_id.max(next_id);
            }
            split.record(batch);
            copy_abort_span(reader, entry.range_id, split.rhs.range_id, batch);
            if let Some(store) = self.store.upgrade() {
                store.split_applied(entry, &split);
            }
        }
        outcome.to_response()
    }

    fn replicated_spans(
        &self,
        range_id: u64,
        _: &dyn Reader,
    ) -> shoal_raft::Result<Vec<EngineSpan>> {
        let descriptors = self.descriptors.read().unwrap_or_else(|p| p.into_inner());
        let Some(descriptor) = descriptors.get(&range_id) else {
            return Err(shoal_raft::Error::Stopped(format!(
                "range {range_id} has no descriptor on this store"
            )));
        };
        let span = layout::addressable_span(&descriptor.span());
        let locks = layout::lock_span(&span);
        let mvcc = |start: &[u8], end: &[u8]| EngineSpan {
            cf: Cf::Mvcc,
            start: encode_prefix(start),
            end: encode_prefix(end),
        };
        let local = |span: Span| EngineSpan {
            cf: Cf::Local,
            start: span.start.into_bytes(),
            end: span.end.into_bytes(),
        };
        // The descriptor record travels too: a replica that catches up past a split must learn
        // its range's new bounds, or it would serve, and later snapshot, the old wider span.
        let record = range_local_key(range_id, RangeLocalKind::Descriptor);
        let descriptor_record = EngineSpan {
            cf: Cf::Local,
            start: record.as_bytes().to_vec(),
            end: record.next().into_bytes(),
        };
        Ok(vec![
            mvcc(span.start.as_bytes(), span.end.as_bytes()),
            mvcc(locks.start.as_bytes(), locks.end.as_bytes()),
            local(layout::txn_record_span(&span)),
            local(layout::abort_span(range_id)),
            descriptor_record,
        ])
    }

    fn membership_applied(
        &self,
        entry: EntryInfo<'_>,
        members: &BTreeMap<u64, ReplicaLocation>,
        reader: &dyn Reader,
        batch: &mut WriteBatch,
    ) {
        // None: the bootstrap membership of a range seeded without a record (tests).
        let Some(current) = read_descriptor(reader, entry.range_id) else { return };
        let Some(updated) = descriptor_with_members(&current, members) else { return };
        let key = range_local_key(entry.range_id, RangeLocalKind::Descriptor);
        batch.put(Cf::Local, key.into_bytes(), shoal_api::encode(&updated));
        self.descriptors
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.range_id, updated.clone());
        if let Some(store) = self.store.upgrade()
            && let Ok(replica) = store.replica(entry.range_id)
        {
            replica.set_descriptor(updated);
        }
    }

    fn entry_applied(&self, _range_id: u64, elapsed: Duration) {
        self.metrics.apply_duration.observe(elapsed.as_secs_f64());
    }

    fn snapshot_installed(&self, range_id: u64, reader: &dyn Reader) {
        self.metrics.snapshots_installed.inc();
        let key = range_local_key(range_id, RangeLocalKind::Descriptor);
        let descriptor = match reader.get(Cf::Local, key.as_bytes()) {
            Ok(Some(bytes)) => match shoal_api::decode::<RangeDescriptor>(&bytes) {
                Ok(descriptor) => descriptor,
                Err(e) => return tracing::error!(range_id, "a snapshot's descriptor: {e}"),
            },
            Ok(None) => return,
            Err(e) => return tracing::error!(range_id, "reading a snapshot's descriptor: {e}"),
        };
        self.descriptors
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(range_id, descriptor.clone());
        if let Some(store) = self.store.upgrade()
            && let Ok(replica) = store.replica(range_id)
        {
            replica.set_descriptor(descriptor);
        }
    }
}

/// Copies the abort span of a range being split to its right-hand side: a transaction aborted
/// on the old range must stay unable to read its lost writes on either half.
fn copy_abort_span(reader: &dyn Reader, from: u64, to: u64, batch: &mut WriteBatch) {
    let span = layout::abort_span(from);
    let bounds = IterOptions::bounded(span.start.into_bytes(), span.end.into_bytes());
    let copy = |batch: &mut WriteBatch| -> Result<(), shoal_storage::Error> {
        let mut iter = reader.iter(Cf::Local, bounds)?;
        iter.seek_to_first();
        while iter.valid()? {
            let id_bytes = &iter.key()[iter.key().len().saturating_sub(16)..];
            if let Ok(id) = <[u8; 16]>::try_from(id_bytes) {
                let key = layout::abort_span_key(to, u128::from_be_bytes(id));
                batch.put(Cf::Local, key.into_bytes(), iter.value().to_vec());
            }
            iter.next();
        }
        Ok(())
    };
    if let Err(e) = copy(batch) {
        // Apply must stay deterministic; a store that cannot read its own data is broken.
        panic!("range {from}: copying the abort span to range {to} at a split: {e}");
    }
}

/// Reads the descriptor record of `range_id` as applied so far. A record that cannot be read
/// is a broken store: logged, and treated as absent.
fn read_descriptor(reader: &dyn Reader, range_id: u64) -> Option<RangeDescriptor> {
    let key = range_local_key(range_id, RangeLocalKind::Descriptor);
    match reader.get(Cf::Local, key.as_bytes()) {
        Ok(Some(bytes)) => shoal_api::decode::<RangeDescriptor>(&bytes)
            .map_err(|e| tracing::error!(range_id, "a descriptor record: {e}"))
            .ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(range_id, "reading a descriptor record: {e}");
            None
        }
    }
}

/// Returns `current` with exactly the replicas `members` names (a new generation), or `None`
/// if it already has them. Replica ids handed out later start above every member's.
fn descriptor_with_members(
    current: &RangeDescriptor,
    members: &BTreeMap<u64, ReplicaLocation>,
) -> Option<RangeDescriptor> {
    let replicas: Vec<ReplicaDescriptor> = members
        .iter()
        .map(|(id, at)| ReplicaDescriptor {
            node_id: at.node_id,
            store_id: at.store_id,
            replica_id: *id,
        })
        .collect();
    let mut held = current.replicas.clone();
    held.sort_by_key(|r| r.replica_id);
    if held == replicas {
        return None;
    }
    let above_members = members.keys().max().map_or(1, |id| id + 1);
    Some(RangeDescriptor {
        replicas,
        next_replica_id: current.next_replica_id.max(above_members),
        generation: current.generation + 1,
        ..current.clone()
    })
}

/// Returns the parts of `span` that no span of `others` covers.
fn subtract_spans(span: &Span, others: &[Span]) -> Vec<Span> {
    let mut left = vec![span.clone()];
    for other in others {
        left = left
            .into_iter()
            .flat_map(|piece| {
                if other.end <= piece.start || piece.end <= other.start {
                    return vec![piece];
                }
                let mut kept = Vec::new();
                if piece.start < other.start {
                    kept.push(Span { start: piece.start.clone(), end: other.start.clone() });
                }
                if other.end < piece.end {
                    kept.push(Span { start: other.end.clone(), end: piece.end.clone() });
                }
                kept
            })
            .collect();
    }
    left
}

/// How often the proposer of a split stands for election in the new range before leaving it
/// to the election timeout, and how long it waits for each attempt.
const SPLIT_CAMPAIGN_ATTEMPTS: u32 = 20;
const SPLIT_CAMPAIGN_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// A store and its replicas.
pub struct Store {
    config: StoreConfig,
    ctx: ReplicaContext,
    clock: Arc<Clock>,
    descriptors: Descriptors,
    replicas: RwLock<HashMap<u64, Arc<RangeReplica>>>,
    /// Set by [`Store::shutdown`] while it holds the `replicas` write lock: from then on no
    /// replica joins the map. A replica started after the drain (the right-hand side of a
    /// split applied during shutdown, say) would otherwise run on, unowned: it keeps
    /// heartbeating its peers over the transport as their leader while its node serves
    /// nothing, and they never elect a leader that can.
    stopped: AtomicBool,
    metrics: StoreMetrics,
    /// Serializes creating a learner replica and destroying a removed one.
    lifecycle: tokio::sync::Mutex<()>,
}

impl Store {
    /// Opens a store over `engine`, sending Raft messages through `transport`.
    pub fn new(
        config: StoreConfig,
        engine: Arc<dyn Engine>,
        clock: Arc<Clock>,
        transport: Arc<dyn Transport>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|store| {
            let descriptors: Descriptors = Arc::default();
            let metrics = StoreMetrics::default();
            let applier = Arc::new(KvApplier {
                clock: clock.clone(),
                metrics: metrics.clone(),
                descriptors: descriptors.clone(),
                store: store.clone(),
            });
            let ctx = ReplicaContext {
                engine: engine.clone(),
                writer: LogWriter::start(engine),
                applier,
                transport,
                timers: config.timers,
            };
            Store {
                config,
                ctx,
                clock,
                descriptors,
                replicas: RwLock::default(),
                stopped: AtomicBool::new(false),
                metrics,
                lifecycle: tokio::sync::Mutex::new(()),
            }
        })
    }

    /// Acts on a split applied by this store's replica of the left-hand range, while its batch
    /// (with both descriptor records) is being written: the left-hand replica shrinks at once,
    /// so no later request evaluates outside it, and a task starts this store's replica of the
    /// right-hand range, seeded at the split entry (see [`shoal_raft::handle::seed_split`]).
    fn split_applied(self: Arc<Self>, entry: EntryInfo<'_>, split: &SplitTrigger) {
        {
            let mut descriptors = self.descriptors.write().unwrap_or_else(|p| p.into_inner());
            descriptors.insert(split.lhs.range_id, split.lhs.clone());
            // At once, not when the right-hand replica starts: a replica being destroyed must
            // see that these keys are held (see `destroy_replica`).
            if split.rhs.replica_on(self.config.node_id).is_some() {
                descriptors.entry(split.rhs.range_id).or_insert_with(|| split.rhs.clone());
            }
        }
        if let Ok(lhs) = self.replica(split.lhs.range_id) {
            lhs.set_descriptor(split.lhs.clone());
        }
        // A replica of the right-hand range that already exists (this entry is re-applied
        // after a crash, or a snapshot got here first) keeps its own state.
        if self.replica(split.rhs.range_id).is_ok() {
            return;
        }
        let Some(own) = split.rhs.replica_on(self.config.node_id) else { return };
        let (rhs, log_id, membership, proposer) =
            (split.rhs.clone(), entry.log_id, entry.membership.clone(), split.proposer);
        tokio::spawn(async move {
            let range_id = rhs.range_id;
            let started = async {
                let replica = self.add_replica(rhs).await?;
                handle::seed_split(replica.raft(), log_id, membership, proposer)
                    .await
                    .map_err(|e| KvError::Internal(e.to_string()))?;
                if own.replica_id == proposer {
                    // The proposer led the left-hand range a moment ago: it should lead the
                    // right-hand one too, at once rather than after an election timeout.
                    let leads = handle::campaign_until_leader(
                        replica.raft(),
                        SPLIT_CAMPAIGN_ATTEMPTS,
                        SPLIT_CAMPAIGN_RETRY,
                    )
                    .await
                    .map_err(|e| KvError::Internal(e.to_string()))?;
                    if !leads {
                        tracing::warn!(range_id, "the split's proposer did not win the new range");
                    }
                }
                Ok::<_, KvError>(())
            };
            match started.await {
                Ok(()) => {}
                // The store shut down meanwhile: on restart the replica starts from the
                // descriptor recorded with the split and catches up from its peers.
                Err(_) if self.stopped.load(Ordering::Acquire) => {}
                Err(e) => {
                    tracing::error!(
                        range_id,
                        "starting the right-hand range of a split failed: {e}"
                    )
                }
            }
        });
    }

    /// Returns the store's counters and histograms.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// Returns this store's location.
    pub fn location(&self) -> ReplicaLocation {
        ReplicaLocation { node_id: self.config.node_id, store_id: self.config.store_id }
    }

    /// Records `descriptor` in this store and starts its replica there. The record is what
    /// [`Store::load_replicas`] finds after a restart.
    pub async fn create_replica(
        &self,
        descriptor: RangeDescriptor,
    ) -> Result<Arc<RangeReplica>, KvError> {
        let mut batch = WriteBatch::new();
        let key = layout::range_local_key(descriptor.range_id, RangeLocalKind::Descriptor);
        batch.put(Cf::Local, key.into_bytes(), shoal_api::encode(&descriptor));
        // Synced: a replica whose record is lost would be missing after a restart while its
        // peers count on its vote. Creating replicas is rare, so the fsync costs nothing.
        self.ctx.engine.write(&batch, WriteOptions { sync: true }).map_err(|e| {
            KvError::Internal(format!("recording range {}: {e}", descriptor.range_id))
        })?;
        self.add_replica(descriptor).await
    }

    /// Starts a replica for every descriptor recorded in this store, in range id order, and
    /// returns how many it started.
    pub async fn load_replicas(&self) -> Result<usize, KvError> {
        let internal =
            |e: shoal_storage::Error| KvError::Internal(format!("reading descriptors: {e}"));
        let span = Span::prefix(layout::LOCAL_RANGE_PREFIX);
        let records = scan_all(
            self.ctx.engine.as_ref(),
            Cf::Local,
            IterOptions::bounded(span.start.as_bytes(), span.end.as_bytes()),
        )
        .map_err(internal)?;
        let mut started = 0;
        for (key, value) in records {
            if !matches!(
                layout::decode_range_local_key(&key),
                Some((_, RangeLocalKind::Descriptor))
            ) {
                continue;
            }
            let descriptor: RangeDescriptor = shoal_api::decode(&value)?;
            let range_id = descriptor.range_id;
            match self.add_replica(descriptor).await {
                Ok(_) => started += 1,
                // A record naming no replica here and no replica id recorded: what an apply
                // still in flight when a removed replica was destroyed can leave behind. The
                // range is not this store's; starting the node matters more.
                Err(KvError::InvalidArgument(reason)) => {
                    tracing::warn!(range_id, "not starting a leftover replica: {reason}");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(started)
    }

    /// Returns every replica on this store, by range id.
    pub fn replicas(&self) -> Vec<Arc<RangeReplica>> {
        let replicas = self.replicas.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = replicas.values().cloned().collect();
        out.sort_by_key(|r| r.descriptor().range_id);
        out
    }

    /// Starts this store's replica of the range described by `descriptor`, without recording
    /// the descriptor (see [`Store::create_replica`]).
    pub async fn add_replica(
        &self,
        descriptor: RangeDescriptor,
    ) -> Result<Arc<RangeReplica>, KvError> {
        // One Raft group per range per store: a second would share (and corrupt) its log.
        if let Ok(running) = self.replica(descriptor.range_id) {
            return Ok(running);
        }
        if self.stopped.load(Ordering::Acquire) {
            return Err(store_stopped());
        }
        let replica_id = self.local_replica_id(&descriptor)?;
        self.descriptors
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(descriptor.range_id, descriptor.clone());
        let raft = start_replica(&self.ctx, descriptor.range_id, replica_id)
            .await
            .map_err(|e| KvError::Internal(e.to_string()))?;
        let range_id = descriptor.range_id;
        // Starting the group re-applies committed entries; a split among them has recorded the
        // range's narrower descriptor in the map meanwhile.
        let descriptor = self
            .descriptors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&range_id)
            .cloned()
            .unwrap_or(descriptor);
        // Long enough for an election or two; beyond it the caller hears "unavailable" or,
        // for a proposed write, "ambiguous".
        let request_timeout = Duration::from_millis(4 * self.config.timers.election_max_ms);
        let range = Arc::new(RangeReplica::new(
            descriptor,
            replica_id,
            raft,
            self.ctx.engine.clone(),
            self.clock.clone(),
            ReplicaConfig {
                node_id: self.config.node_id,
                request_timeout,
                lease_gap: Duration::from_millis(self.config.timers.election_min_ms),
                scan_filters: self.config.scan_filters.clone(),
            },
            self.metrics.clone(),
        ));
        {
            let mut replicas = self.replicas.write().unwrap_or_else(|p| p.into_inner());
            if !self.stopped.load(Ordering::Acquire) {
                replicas.insert(range_id, range.clone());
                return Ok(range);
            }
        }
        // The store shut down while this group started: stop it, or it runs on unowned.
        let _ = range.raft().shutdown().await;
        Err(store_stopped())
    }

    /// Returns this store's replica id in `descriptor`'s range: the one recorded when the
    /// replica was created, else (recording it) the one the descriptor names on this node. The
    /// record matters for a replica added to a running range: the descriptor a snapshot brings
    /// it may predate the replica.
    fn local_replica_id(&self, descriptor: &RangeDescriptor) -> Result<u64, KvError> {
        let key = range_local_key(descriptor.range_id, RangeLocalKind::ReplicaId);
        let internal = |e: shoal_storage::Error| {
            KvError::Internal(format!("the replica id of range {}: {e}", descriptor.range_id))
        };
        if let Some(bytes) = self.ctx.engine.get(Cf::Local, key.as_bytes()).map_err(internal)? {
            return shoal_api::decode::<u64>(&bytes);
        }
        let replica = descriptor.replica_on(self.config.node_id).ok_or_else(|| {
            KvError::InvalidArgument(format!(
                "range {} has no replica on node {}",
                descriptor.range_id, self.config.node_id
            ))
        })?;
        let mut batch = WriteBatch::new();
        batch.put(Cf::Local, key.into_bytes(), shoal_api::encode(&replica.replica_id));
        // Synced: the id is this replica's Raft identity; losing it would orphan its log.
        self.ctx.engine.write(&batch, WriteOptions::SYNC).map_err(internal)?;
        Ok(replica.replica_id)
    }

    /// Creates this store's new replica `wanted` of a running range, which its leaseholder is
    /// about to add as a learner; `leaseholder_view` is the leaseholder's current descriptor.
    /// The replica starts empty and waits for a snapshot. An old replica of the range still
    /// here is destroyed first only if the leaseholder's view is at least as new as its own and
    /// no longer names it (it was removed and not yet collected); otherwise the request is
    /// refused (a leaseholder planning on an old membership must not destroy a voter). Asking
    /// again for the same replica is a no-op.
    pub async fn create_learner_replica(
        &self,
        leaseholder_view: RangeDescriptor,
        wanted: ReplicaDescriptor,
    ) -> Result<(), KvError> {
        let _lifecycle = self.lifecycle.lock().await;
        let range_id = leaseholder_view.range_id;
        if wanted.node_id != self.config.node_id {
            return Err(KvError::InvalidArgument(format!(
                "replica {} is for node {}, not {}",
                wanted.replica_id, wanted.node_id, self.config.node_id
            )));
        }
        if let Ok(running) = self.replica(range_id) {
            if running.replica_id() == wanted.replica_id {
                return Ok(());
            }
            let local = running.descriptor();
            let removed = leaseholder_view.generation >= local.generation
                && leaseholder_view.replica(running.replica_id()).is_none();
            if !removed {
                return Err(KvError::InvalidArgument(format!(
                    "range {range_id} already has replica {} on node {} (generation {} here, {} \
                     at the leaseholder)",
                    running.replica_id(),
                    self.config.node_id,
                    local.generation,
                    leaseholder_view.generation
                )));
            }
            self.destroy_replica_locked(range_id, running.replica_id()).await?;
        }
        let mut descriptor = leaseholder_view;
        descriptor.replicas.retain(|r| r.node_id != self.config.node_id);
        descriptor.replicas.push(wanted);
        self.create_replica(descriptor).await.map(|_| ())
    }

    /// Destroys this store's replica `replica_id` of `range_id`, removed from its range: stops
    /// its Raft group and deletes its log, its range-local records and its data, except where
    /// another replica on this store now holds the same keys.
    pub async fn destroy_replica(&self, range_id: u64, replica_id: u64) -> Result<(), KvError> {
        let _lifecycle = self.lifecycle.lock().await;
        self.destroy_replica_locked(range_id, replica_id).await
    }

    async fn destroy_replica_locked(&self, range_id: u64, replica_id: u64) -> Result<(), KvError> {
        let replica = self.replica(range_id)?;
        if replica.replica_id() != replica_id {
            return Err(KvError::InvalidArgument(format!(
                "replica {replica_id} of range {range_id} is not on this store"
            )));
        }
        self.replicas.write().unwrap_or_else(|p| p.into_inner()).remove(&range_id);
        let _ = replica.raft().shutdown().await;
        // Every other range this store holds or is about to hold (a split's right-hand range
        // is recorded here when the split applies, before its replica starts).
        let others: Vec<Span> = {
            let mut descriptors = self.descriptors.write().unwrap_or_else(|p| p.into_inner());
            descriptors.remove(&range_id);
            descriptors.values().map(RangeDescriptor::span).collect()
        };
        let mut batch = WriteBatch::new();
        let (start, end) = shoal_raft::keys::range_span(range_id);
        batch.delete_range(Cf::Raft, start, end);
        let local = layout::range_local_span(range_id);
        batch.delete_range(Cf::Local, local.start.into_bytes(), local.end.into_bytes());
        let data = layout::addressable_span(&replica.descriptor().span());
        for span in subtract_spans(&data, &others) {
            let records = layout::txn_record_span(&span);
            batch.delete_range(Cf::Local, records.start.into_bytes(), records.end.into_bytes());
            let locks = layout::lock_span(&span);
            for span in [span, locks] {
                batch.delete_range(
                    Cf::Mvcc,
                    encode_prefix(span.start.as_bytes()),
                    encode_prefix(span.end.as_bytes()),
                );
            }
        }
        // Through the log writer, after any append the stopped group still had queued, and
        // synced: a range re-added to this store later must find no trace of this replica.
        self.ctx
            .writer
            .write_durable(batch)
            .await
            .map_err(|e| KvError::Internal(format!("destroying range {range_id}: {e}")))?;
        tracing::info!(range_id, replica_id, "destroyed a removed replica");
        Ok(())
    }

    /// Bootstraps the Raft group of a range whose replicas were all added. Call on one store.
    pub async fn bootstrap(&self, range_id: u64) -> Result<(), KvError> {
        let range = self.replica(range_id)?;
        let members: BTreeMap<u64, ReplicaLocation> = range
            .descriptor()
            .replicas
            .iter()
            .map(|r| (r.replica_id, ReplicaLocation { node_id: r.node_id, store_id: r.store_id }))
            .collect();
        handle::initialize(range.raft(), members)
            .await
            .map_err(|e| KvError::Internal(e.to_string()))
    }

    /// Returns this store's replica of `range_id`.
    pub fn replica(&self, range_id: u64) -> Result<Arc<RangeReplica>, KvError> {
        self.replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&range_id)
            .cloned()
            .ok_or(KvError::RangeNotFound(range_id))
    }

    /// Reads `key` from whatever this store's engine holds now, with no latch and no lease:
    /// the answer may be stale (a follower behind its leader, a replica cut off from its
    /// group). **Unsafe by design**: it exists only so the Jepsen harness can show that its
    /// checker catches stale reads (`shoal start --unsafe-stale-reads`). Returns `None` when
    /// no local replica holds the key.
    pub fn read_local_unsafe(&self, key: &[u8]) -> Option<Result<Option<Vec<u8>>, KvError>> {
        let holds = self.replicas().iter().any(|r| r.descriptor().contains_key(key));
        holds.then(|| {
            shoal_storage::mvcc::get(
                &*self.ctx.engine,
                key,
                self.clock.now(),
                shoal_storage::mvcc::ReadOptions::default(),
            )
            .map(|found| found.map(|v| v.value))
            .map_err(|e| KvError::Internal(e.to_string()))
        })
    }

    /// Evaluates a batch on this store's replica of its range.
    ///
    /// The evaluation runs in a task of its own: a caller that gives up (a dropped HTTP
    /// request, an RPC past its deadline) must not drop a latch while the write it guards is
    /// still being proposed, or a later request could evaluate without that write's effect.
    pub async fn send(&self, batch: BatchRequest) -> Result<BatchResponse, KvError> {
        let replica = self.replica(batch.range_id)?;
        let started = std::time::Instant::now();
        let result = tokio::spawn(async move { replica.send(batch).await })
            .await
            .map_err(|e| KvError::Internal(format!("a request task failed: {e}")))?;
        self.metrics.requests.inc();
        self.metrics.request_duration.observe(started.elapsed().as_secs_f64());
        match result {
            // Point the sender at the range that holds the key if this store knows it (after a
            // split it usually does): a stale addressing record then costs one redirect.
            Err(KvError::RangeKeyMismatch { range_id, key, actual }) => {
                let descriptors = self.descriptors.read().unwrap_or_else(|p| p.into_inner());
                let holder = descriptors.values().find(|d| d.contains_key(key.as_bytes()));
                let actual = holder.cloned().map(Box::new).or(actual);
                Err(KvError::RangeKeyMismatch { range_id, key, actual })
            }
            other => other,
        }
    }

    /// Writes the first data of ranges being bootstrapped, identically on every first replica
    /// and before their Raft groups start: `rows` at `ts`, as committed MVCC versions. Synced,
    /// as the groups will treat it as applied state.
    pub fn seed_data(&self, rows: &[(Key, Vec<u8>)], ts: Timestamp) -> Result<(), KvError> {
        let mut batch = WriteBatch::new();
        for (key, value) in rows {
            mvcc::put(&*self.ctx.engine, &mut batch, key.as_bytes(), ts, ts, Some(value), None)
                .map_err(|e| KvError::Internal(format!("seeding {key}: {e}")))?;
        }
        self.ctx
            .engine
            .write(&batch, WriteOptions { sync: true })
            .map_err(|e| KvError::Internal(format!("seeding the first ranges: {e}")))
    }

    /// Stops every replica's Raft group. Replicas that would start later (a split's right-hand
    /// side, a learner being added) are refused: [`Store::add_replica`] fails from now on.
    pub async fn shutdown(&self) {
        let replicas: Vec<_> = {
            let mut replicas = self.replicas.write().unwrap_or_else(|p| p.into_inner());
            self.stopped.store(true, Ordering::Release);
            replicas.drain().map(|(_, r)| r).collect()
        };
        for replica in replicas {
            let _ = replica.raft().shutdown().await;
        }
    }

    /// Handles an encoded [`BatchRequest`] sent by another node's DistSender and returns the
    /// encoded `Result<BatchResponse, KvError>`.
    pub async fn deliver_kv(&self, message: &[u8]) -> Vec<u8> {
        let result = match shoal_api::decode::<BatchRequest>(message) {
            Ok(batch) => self.send(batch).await,
            Err(e) => Err(e),
        };
        shoal_api::encode(&result)
    }

    /// Handles an encoded Raft message for one of this store's replicas.
    pub async fn deliver_raft(&self, message: &[u8]) -> Vec<u8> {
        let envelope = match RaftEnvelope::decode(message) {
            Ok(envelope) => envelope,
            Err(e) => return RaftResponse::Error(e.to_string()).encode(),
        };
        let replica = match self.replica(envelope.range_id) {
            Ok(replica) if replica.replica_id() == envelope.to_replica => replica,
            _ => {
                let error = format!(
                    "no replica {} of range {} here",
                    envelope.to_replica, envelope.range_id
                );
                return RaftResponse::Error(error).encode();
            }
        };
        if let RaftRequest::Snapshot { data, .. } = &envelope.request
            && let Some(other) = self.snapshot_overlap(envelope.range_id, data)
        {
            // A snapshot captured before its range split covers the right-hand range too;
            // installed here it would delete that range's newer data. Refused, the leader
            // captures a fresh snapshot with its current bounds.
            let error = format!(
                "a snapshot of range {} covers range {other}, which this store holds",
                envelope.range_id
            );
            return RaftResponse::Error(error).encode();
        }
        deliver(replica.raft(), envelope.request).await.encode()
    }

    /// Returns another range of this store whose data the snapshot's span deletion would
    /// cover, if any.
    pub(crate) fn snapshot_overlap(&self, range_id: u64, data: &[u8]) -> Option<u64> {
        let batch = WriteBatch::decode(data).ok()?;
        // The first MVCC deletion is the range's data span (see `replicated_spans`).
        let (start, end) = batch.ops().iter().find_map(|op| match op {
            shoal_storage::BatchOp::DeleteRange { cf: Cf::Mvcc, start, end } => {
                Some((start.clone(), end.clone()))
            }
            _ => None,
        })?;
        let descriptors = self.descriptors.read().unwrap_or_else(|p| p.into_inner());
        descriptors.iter().find_map(|(id, d)| {
            let span = layout::addressable_span(&d.span());
            let (other_start, other_end) =
                (encode_prefix(span.start.as_bytes()), encode_prefix(span.end.as_bytes()));
            (*id != range_id && start < other_end && other_start < end).then_some(*id)
        })
    }
}

/// The error for a replica that would start on a store that has shut down.
fn store_stopped() -> KvError {
    KvError::Unavailable("the store is shutting down".into())
}
