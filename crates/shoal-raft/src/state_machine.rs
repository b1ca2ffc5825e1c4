//! The state machine of one range: applies committed commands to the store's engine.
//!
//! Each committed entry becomes one atomic engine write holding the command's effects and the
//! range's new *applied state* (last applied log id and membership), so after a crash the
//! applied state never disagrees with the data:
//!
//! ```text
//!   entry 7: Normal(cmd) ──Applier::apply──▶ WriteBatch { cmd's writes..., AppliedState = 7 }
//!   entry 8: Membership ──membership_applied─▶ WriteBatch { replica records..., AppliedState = 8 }
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
//! Snapshots are lazy. *Building* one (what openraft does every `snapshot_after_entries`
//! entries, so that it may purge the log) only syncs the WAL and records the applied state: it
//! copies no data, so its cost does not grow with the range. Data is copied only when a
//! follower needs it: [`RaftStateMachine::get_current_snapshot`] captures the range as it is
//! *now*, on the state machine's task (no apply runs concurrently), with the applied state read
//! in the same pass, so the snapshot's metadata always describes exactly its data:
//!
//! ```text
//!   entries 1..=10000 applied ──build──▶ meta { last_log_id: 10000 }   (no data copied)
//!   openraft purges the log up to 9000
//!   entries ..=10450 applied
//!   a follower needs entry 5000 ──get_current_snapshot──▶ { meta: 10450, data at 10450 }
//! ```
//!
//! The captured snapshot is never older than the one openraft built (the applied state only
//! grows), and everything it holds is committed, so sending it in place of the built one is
//! safe. It is a [`WriteBatch`]: a range delete of each of the range's spans followed by every
//! key in them. Installing applies the batch and the snapshot's applied state in one synced
//! write.
//!
//! # Hazards
//!
//! - The captured snapshot is materialized in memory; streaming from a RocksDB snapshot is not
//!   built yet, so ranges must stay small enough to hold in memory while one is sent.
//! - Capturing blocks this range's applies for as long as the copy takes.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend};
use serde::{Deserialize, Serialize};
use shoal_keys::layout::{RangeLocalKind, range_local_key};
use shoal_storage::{Cf, Engine, IterOptions, Reader, WriteBatch, WriteOptions};

use crate::codec::{decode, encode};
use crate::types::{
    Command, CommandResponse, LogId, ReplicaLocation, SnapshotMeta, StoredMembership, TypeConfig,
};
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

    /// Every replica the membership names (voters and learners), by replica id.
    pub fn members(&self) -> BTreeMap<u64, ReplicaLocation> {
        self.membership.nodes().map(|(id, location)| (*id, *location)).collect()
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

    /// Called after each entry of `range_id` was applied and written, with the time it took
    /// (for metrics).
    fn entry_applied(&self, _range_id: u64, _elapsed: std::time::Duration) {}

    /// Called after a snapshot of `range_id` was installed (and written durably): the range's
    /// state may have jumped past entries this replica never applied (a split, say).
    fn snapshot_installed(&self, _range_id: u64, _reader: &dyn Reader) {}

    /// Applies a membership entry: `members` (replica id → location) are every replica the new
    /// configuration names, voters and learners; `entry.membership` is already the new one.
    /// Appends whatever the range records about its replicas to `batch`, which is written with
    /// the new applied state. Must be deterministic, like [`Applier::apply`].
    fn membership_applied(
        &self,
        _entry: EntryInfo<'_>,
        _members: &BTreeMap<u64, ReplicaLocation>,
        _reader: &dyn Reader,
        _batch: &mut WriteBatch,
    ) {
    }
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
    /// Whether openraft believes a snapshot exists: one was built or installed (a split's data-less
    /// seed counts). Only then does [`RaftStateMachine::get_current_snapshot`] capture one; in
    /// particular not on every start, when openraft asks before anything was built.
    has_snapshot: bool,
}

impl Debug for RangeStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeStateMachine").field("range_id", &self.range_id).finish()
    }
}

impl RangeStateMachine {
    /// Returns the state machine of `range_id` over `engine`.
    pub fn new(range_id: u64, engine: Arc<dyn Engine>, applier: Arc<dyn Applier>) -> Self {
        RangeStateMachine { range_id, engine, applier, has_snapshot: false }
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
        Ok(Snapshot { meta: snapshot_meta(state), snapshot: data })
    }
}

fn snapshot_meta(state: AppliedState) -> SnapshotMeta {
    SnapshotMeta { last_log_id: state.last_applied, last_membership: state.membership }
}

/// Builds a snapshot: returns the metadata recorded when it was created, with no data (openraft
/// keeps only the metadata of a built snapshot; see the module docs).
pub struct SnapshotBuilder {
    built: Result<SnapshotMeta>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = WriteBatch;

    async fn build_snapshot(&mut self) -> std::result::Result<RangeSnapshot, io::Error> {
        Ok(Snapshot { meta: self.built.clone()?, snapshot: WriteBatch::new() })
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
            let started = std::time::Instant::now();
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
                    let info = EntryInfo {
                        range_id: self.range_id,
                        log_id: entry.log_id,
                        membership: &state.membership,
                    };
                    let members = info.members();
                    self.applier.membership_applied(info, &members, &*self.engine, &mut batch);
                    CommandResponse::default()
                }
            };
            state.last_applied = Some(entry.log_id);
            batch.put(Cf::Local, self.applied_state_key(), encode(&state));
            // One atomic write per entry: the next entry's applier reads this one's effects.
            // No fsync: the Raft log already holds the entry durably (see the module docs).
            self.engine.write(&batch, WriteOptions::NO_SYNC).map_err(Error::from)?;
            self.applier.entry_applied(self.range_id, started.elapsed());
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Read the applied state before syncing: everything it covers is then in the synced WAL.
        // openraft purges the log a snapshot covers, so the covered applies must be durable
        // (they were written without fsync).
        let built = self.read_applied_state().and_then(|state| {
            self.engine.sync_wal()?;
            Ok(snapshot_meta(state))
        });
        self.has_snapshot |= built.is_ok();
        SnapshotBuilder { built }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: WriteBatch,
    ) -> std::result::Result<(), io::Error> {
        let is_split_seed = snapshot.is_empty();
        let mut batch = snapshot;
        let state = AppliedState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        batch.put(Cf::Local, self.applied_state_key(), encode(&state));
        // Synced: the snapshot replaces log entries this replica may never receive again.
        self.engine.write(&batch, WriteOptions::SYNC).map_err(Error::from)?;
        // An empty snapshot is the seed of a range split off another: its data is already here
        // and nothing else changed. A real snapshot always holds at least its span deletions,
        // and may have moved the range past entries this replica never applied.
        if !is_split_seed {
            self.applier.snapshot_installed(self.range_id, &*self.engine);
        }
        // From now on openraft may ask for this snapshot (for the seed: to catch up a follower
        // behind the split entry that was never seeded); it gets the range as it is then.
        self.has_snapshot = true;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> std::result::Result<Option<RangeSnapshot>, io::Error> {
        if !self.has_snapshot {
            return Ok(None);
        }
        Ok(Some(self.capture_snapshot()?))
    }
}
