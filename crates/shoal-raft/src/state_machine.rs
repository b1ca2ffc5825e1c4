//! The state machine of one range: applies committed commands to the store's engine.
//!
//! Each committed entry becomes one atomic engine write holding the command's effects and the
//! range's new *applied state* (last applied log id and membership), so after a crash the
//! applied state never disagrees with the data:
//!
//! ```text
//!   entry 7: Normal(cmd) ──Applier::apply──▶ WriteBatch { cmd's writes..., AppliedState = 7 }
//!   entry 8: Membership  ──────────────────▶ WriteBatch { AppliedState = 8, membership }
//! ```
//!
//! What a command means is not this crate's business: an [`Applier`] (the KV server) decodes
//! it, checks it against the range's state (leases) and produces the writes. Applying must be
//! deterministic: every replica applies the same entries to the same state and must write the
//! same bytes (design §5, invariant 4: no clock reads, no local decisions).
//!
//! # Durability
//!
//! Applies are written without fsync: the Raft log holds every applied entry durably, and a
//! replica that loses applied state in a crash re-applies from the log. Building a snapshot
//! syncs the WAL first, because openraft purges the log once a snapshot covers it.
//!
//! # Snapshots
//!
//! A snapshot is a [`WriteBatch`]: a range delete of each of the range's spans followed by
//! every key in them, captured when the builder is created (on the state machine's task, so no
//! apply runs concurrently). Installing applies the batch and the snapshot's applied state in
//! one synced write.
//!
//! # Hazards
//!
//! - The snapshot is materialized in memory; streaming a RocksDB snapshot is not built yet, so
//!   ranges must stay small enough to hold in memory.
//! - The current snapshot is kept in memory only; after a restart openraft builds a new one.

use std::fmt::Debug;
use std::io;
use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend};
use serde::{Deserialize, Serialize};
use shoal_keys::layout::{RangeLocalKind, range_local_key};
use shoal_storage::{Cf, Engine, IterOptions, Reader, WriteBatch, WriteOptions};

use crate::codec::{decode, encode};
use crate::types::{Command, CommandResponse, LogId, SnapshotMeta, StoredMembership, TypeConfig};
use crate::{Error, Result};

/// A span of one column family holding replicated data of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSpan {
    /// The column family.
    pub cf: Cf,
    /// The first key.
    pub start: Vec<u8>,
    /// The first key after the span.
    pub end: Vec<u8>,
}

/// The entry an [`Applier`] applies: which range, where in the log, under which membership.
#[derive(Debug, Clone, Copy)]
pub struct EntryInfo<'a> {
    /// The range.
    pub range_id: u64,
    /// The entry's log id.
    pub log_id: LogId,
    /// The range's membership when the entry applies (a range split off at this entry starts
    /// with it; see [`crate::handle::seed_split`]).
    pub membership: &'a StoredMembership,
}

impl EntryInfo<'_> {
    /// The term of the leader that proposed the entry.
    pub fn term(&self) -> u64 {
        self.log_id.leader_id.term
    }
}

/// Gives commands their meaning. Implemented by the KV server.
pub trait Applier: Send + Sync + 'static {
    /// Applies one committed command: appends its writes to `batch` and returns the response
    /// for the proposer. `reader` shows the state after every earlier entry. Must be
    /// deterministic; an error that is not deterministic must crash the process rather than be
    /// returned. The batch is written right after this returns.
    fn apply(
        &self,
        entry: EntryInfo<'_>,
        command: &Command,
        reader: &dyn Reader,
        batch: &mut WriteBatch,
    ) -> CommandResponse;

    /// Returns the spans holding the range's replicated data, which a snapshot copies.
    fn replicated_spans(&self, range_id: u64, reader: &dyn Reader) -> Result<Vec<EngineSpan>>;

    /// Called after a snapshot of `range_id` was installed (and written durably): the range's
    /// state may have jumped past entries this replica never applied (a split, say).
    fn snapshot_installed(&self, _range_id: u64, _reader: &dyn Reader) {}
}

/// The applied state of a range, stored at `/Local/Range/<id>/AppliedState`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// A snapshot of a range: its metadata and the data as a write batch.
pub type RangeSnapshot = openraft::alias::SnapshotOf<TypeConfig, WriteBatch>;

/// The state machine of one range.
pub struct RangeStateMachine {
    range_id: u64,
    engine: Arc<dyn Engine>,
    applier: Arc<dyn Applier>,
    current_snapshot: Arc<Mutex<Option<RangeSnapshot>>>,
    /// Set when a split seeded this range: openraft then believes a snapshot exists at the
    /// split entry, so one must be captured when it asks for it.
    capture_on_demand: bool,
}

impl Debug for RangeStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeStateMachine").field("range_id", &self.range_id).finish()
    }
}

impl RangeStateMachine {
    /// Returns the state machine of `range_id` over `engine`.
    pub fn new(range_id: u64, engine: Arc<dyn Engine>, applier: Arc<dyn Applier>) -> Self {
        RangeStateMachine {
            range_id,
            engine,
            applier,
            current_snapshot: Arc::default(),
            capture_on_demand: false,
        }
    }

    fn applied_state_key(&self) -> Vec<u8> {
        range_local_key(self.range_id, RangeLocalKind::AppliedState).into_bytes()
    }

    fn read_applied_state(&self) -> Result<AppliedState> {
        match self.engine.get(Cf::Local, &self.applied_state_key())? {
            Some(bytes) => decode("applied state", &bytes),
            None => Ok(AppliedState::default()),
        }
    }

    fn capture_snapshot(&self) -> Result<RangeSnapshot> {
        // openraft purges the log covered by a snapshot: make the covered state durable first.
        self.engine.sync_wal()?;
        let state = self.read_applied_state()?;
        let mut data = WriteBatch::new();
        for span in self.applier.replicated_spans(self.range_id, &*self.engine)? {
            data.delete_range(span.cf, span.start.clone(), span.end.clone());
            let mut iter = self.engine.iter(span.cf, IterOptions::bounded(span.start, span.end))?;
            iter.seek_to_first();
            while iter.valid()? {
                data.put(span.cf, iter.key().to_vec(), iter.value().to_vec());
                iter.next();
            }
        }
        let meta =
            SnapshotMeta { last_log_id: state.last_applied, last_membership: state.membership };
        Ok(Snapshot { meta, snapshot: data })
    }
}

/// Builds the snapshot captured when it was created.
pub struct SnapshotBuilder {
    captured: Result<RangeSnapshot>,
    current_snapshot: Arc<Mutex<Option<RangeSnapshot>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = WriteBatch;

    async fn build_snapshot(&mut self) -> std::result::Result<RangeSnapshot, io::Error> {
        let snapshot = self.captured.clone()?;
        *self.current_snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot.clone());
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for RangeStateMachine {
    type SnapshotData = WriteBatch;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> std::result::Result<(Option<LogId>, StoredMembership), io::Error> {
        let state = self.read_applied_state()?;
        Ok((state.last_applied, state.membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> std::result::Result<(), io::Error>
    where
        Strm: Stream<Item = std::result::Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        let mut state = self.read_applied_state()?;
        while let Some((entry, responder)) = entries.try_next().await? {
            let mut batch = WriteBatch::new();
            let response = match &entry.payload {
                EntryPayload::Blank => CommandResponse::default(),
                EntryPayload::Normal(command) => {
                    let info = EntryInfo {
                        range_id: self.range_id,
                        log_id: entry.log_id,
                        membership: &state.membership,
                    };
                    self.applier.apply(info, command, &*self.engine, &mut batch)
                }
                EntryPayload::Membership(membership) => {
                    state.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                    CommandResponse::default()
                }
            };
            state.last_applied = Some(entry.log_id);
            batch.put(Cf::Local, self.applied_state_key(), encode(&state));
            // One atomic write per entry: the next entry's applier reads this one's effects.
            // No fsync: the Raft log already holds the entry durably (see the module docs).
            self.engine.write(&batch, WriteOptions::NO_SYNC).map_err(Error::from)?;
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            captured: self.capture_snapshot(),
            current_snapshot: self.current_snapshot.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: WriteBatch,
    ) -> std::result::Result<(), io::Error> {
        let mut batch = snapshot.clone();
        let state = AppliedState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        batch.put(Cf::Local, self.applied_state_key(), encode(&state));
        // Synced: the snapshot replaces log entries this replica may never receive again.
        self.engine.write(&batch, WriteOptions::SYNC).map_err(Error::from)?;
        // An empty snapshot is the seed of a range split off another (its data is already
        // here): never offer it to a peer as if it held the range. A real snapshot always holds
        // at least its span deletions.
        self.capture_on_demand = snapshot.is_empty();
        if !snapshot.is_empty() {
            self.applier.snapshot_installed(self.range_id, &*self.engine);
        }
        let installed = (!snapshot.is_empty()).then(|| Snapshot { meta: meta.clone(), snapshot });
        *self.current_snapshot.lock().unwrap_or_else(|p| p.into_inner()) = installed;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> std::result::Result<Option<RangeSnapshot>, io::Error> {
        let mut current = self.current_snapshot.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_none() && self.capture_on_demand {
            // openraft counts the seed as a snapshot and asks for it to catch up a follower
            // behind the split entry (one that was never seeded): give it the range as it is.
            *current = Some(self.capture_snapshot()?);
        }
        Ok(current.clone())
    }
}
