//! openraft log storage for one range, in the store's shared engine.
//!
//! Every write goes through the store's [`LogWriter`], so appends of all ranges share fsyncs
//! and all writes of one range apply in order. Reads go straight to the engine: an entry is
//! readable as soon as the writer reported it written.
//!
//! | call | durability when it returns |
//! |---|---|
//! | `append` | readable; the `IOFlushed` callback fires after the fsync |
//! | `save_vote` | durable |
//! | `save_committed` | written; durable with the next sync (a lost committed id is re-learned) |
//! | `truncate_after`, `purge` | written; ordered before every later write of the range |

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use shoal_storage::{Cf, Engine, IterOptions, WriteBatch};

use crate::Result;
use crate::codec::{decode, encode};
use crate::keys;
use crate::types::{Entry, LogId, TypeConfig, Vote};
use crate::writer::{LogWriter, SyncedCallback};

/// The Raft log and hard state of one range.
#[derive(Clone)]
pub struct LogStore {
    range_id: u64,
    engine: Arc<dyn Engine>,
    writer: LogWriter,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").field("range_id", &self.range_id).finish()
    }
}

impl LogStore {
    /// Returns the log store of `range_id`, writing through the store's shared `writer`.
    pub fn new(range_id: u64, engine: Arc<dyn Engine>, writer: LogWriter) -> Self {
        LogStore { range_id, engine, writer }
    }

    fn read_log_id(&self, key: &[u8], what: &'static str) -> Result<Option<LogId>> {
        match self.engine.get(Cf::Raft, key)? {
            Some(bytes) => Ok(Some(decode(what, &bytes)?)),
            None => Ok(None),
        }
    }

    fn entries(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry>> {
        let upper = match end {
            Some(end) => keys::entry_key(self.range_id, end),
            None => keys::entries_end(self.range_id),
        };
        let mut iter = self
            .engine
            .iter(Cf::Raft, IterOptions::bounded(keys::entry_key(self.range_id, start), upper))?;
        iter.seek_to_first();
        let mut out = Vec::new();
        while iter.valid()? {
            out.push(decode("log entry", iter.value())?);
            iter.next();
        }
        Ok(out)
    }

    fn last_entry(&self) -> Result<Option<Entry>> {
        let mut iter = self.engine.iter(
            Cf::Raft,
            IterOptions::bounded(
                keys::entry_key(self.range_id, 0),
                keys::entries_end(self.range_id),
            ),
        )?;
        iter.seek_to_last();
        if !iter.valid()? {
            return Ok(None);
        }
        Ok(Some(decode("log entry", iter.value())?))
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(i) => i.checked_add(1),
        Bound::Excluded(i) => Some(*i),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> std::result::Result<Vec<Entry>, io::Error> {
        let (start, end) = bounds(&range);
        if end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        Ok(self.entries(start, end)?)
    }

    async fn read_vote(&mut self) -> std::result::Result<Option<Vote>, io::Error> {
        match self
            .engine
            .get(Cf::Raft, &keys::vote_key(self.range_id))
            .map_err(crate::Error::from)?
        {
            Some(bytes) => Ok(Some(decode("vote", &bytes)?)),
            None => Ok(None),
        }
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> std::result::Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id =
            self.read_log_id(&keys::purged_key(self.range_id), "purged log id")?;
        let last_log_id = match self.last_entry()? {
            Some(entry) => Some(entry.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> std::result::Result<(), io::Error> {
        let mut batch = WriteBatch::new();
        batch.put(Cf::Raft, keys::vote_key(self.range_id), encode(vote));
        // openraft requires the vote to be durable on return: granting a vote that a crash
        // forgets would allow two leaders in one term.
        Ok(self.writer.write_durable(batch).await?)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId>,
    ) -> std::result::Result<(), io::Error> {
        let mut batch = WriteBatch::new();
        match committed {
            Some(log_id) => {
                batch.put(Cf::Raft, keys::committed_key(self.range_id), encode(&log_id))
            }
            None => batch.delete(Cf::Raft, keys::committed_key(self.range_id)),
        }
        // Not waited on for durability: after a crash, a replica that lost it only re-applies
        // later, never serves less than it durably applied.
        Ok(self.writer.write(batch, None).await?)
    }

    async fn read_committed(&mut self) -> std::result::Result<Option<LogId>, io::Error> {
        Ok(self.read_log_id(&keys::committed_key(self.range_id), "committed log id")?)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> std::result::Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::new();
        for entry in entries {
            batch.put(Cf::Raft, keys::entry_key(self.range_id, entry.log_id.index), encode(&entry));
        }
        let synced: SyncedCallback =
            Box::new(move |result| callback.io_completed(result.map_err(io::Error::from)));
        // Returns once the entries are readable; `callback` fires after the group's fsync.
        Ok(self.writer.write(batch, Some(synced)).await?)
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogId>,
    ) -> std::result::Result<(), io::Error> {
        let first_removed = last_log_id.map_or(0, |id| id.index + 1);
        let mut batch = WriteBatch::new();
        batch.delete_range(
            Cf::Raft,
            keys::entry_key(self.range_id, first_removed),
            keys::entries_end(self.range_id),
        );
        Ok(self.writer.write(batch, None).await?)
    }

    async fn purge(&mut self, log_id: LogId) -> std::result::Result<(), io::Error> {
        let mut batch = WriteBatch::new();
        // The purge marker first in the batch: log state never shows purged entries as present.
        batch.put(Cf::Raft, keys::purged_key(self.range_id), encode(&log_id));
        batch.delete_range(
            Cf::Raft,
            keys::entry_key(self.range_id, 0),
            keys::entry_key(self.range_id, log_id.index.saturating_add(1)),
        );
        Ok(self.writer.write(batch, None).await?)
    }
}
