//! Tests of the log store and state machine: openraft's own storage suite on both engines, and
//! the behaviour the suite does not cover (normal commands, durability across reopen).

use std::sync::Arc;

use futures::stream;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::{EntryPayload, RaftLogReader, StorageError};
use shoal_storage::{Cf, Engine, MemoryEngine, RocksEngine, WriteBatch};
use tempfile::TempDir;

use crate::testing::BatchApplier;
use crate::types::{Entry, LogId, TypeConfig};
use crate::*;

struct Builder {
    rocks: bool,
}

fn stores(engine: Arc<dyn Engine>) -> (LogStore, RangeStateMachine) {
    let writer = LogWriter::start(engine.clone());
    (
        LogStore::new(1, engine.clone(), writer),
        RangeStateMachine::new(1, engine, Arc::new(BatchApplier)),
    )
}

impl StoreBuilder<TypeConfig, LogStore, RangeStateMachine, Option<TempDir>> for Builder {
    async fn build(
        &self,
    ) -> std::result::Result<(Option<TempDir>, LogStore, RangeStateMachine), StorageError<TypeConfig>>
    {
        let (engine, dir): (Arc<dyn Engine>, Option<TempDir>) = if self.rocks {
            let dir = tempfile::tempdir().expect("temporary directory");
            (
                Arc::new(RocksEngine::open(dir.path().join("store")).expect("opening RocksDB")),
                Some(dir),
            )
        } else {
            (Arc::new(MemoryEngine::new()), None)
        };
        let (log, sm) = stores(engine);
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_on_memory_engine() {
    Suite::test_all(Builder { rocks: false }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_on_rocksdb() {
    Suite::test_all(Builder { rocks: true }).await.unwrap();
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId { leader_id: LeaderId { term, node_id: 1 }, index }
}

fn put_command(key: &[u8], value: &[u8]) -> Command {
    let mut batch = WriteBatch::new();
    batch.put(Cf::Mvcc, key.to_vec(), value.to_vec());
    Command(batch.encode())
}

#[tokio::test]
async fn applies_commands_with_their_applied_state_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(&path).unwrap());
        let (mut log, mut sm) = stores(engine.clone());
        let entries: Vec<Entry> = (1..=3)
            .map(|i| Entry {
                log_id: log_id(1, i),
                payload: EntryPayload::Normal(put_command(format!("k{i}").as_bytes(), b"v")),
            })
            .collect();
        log.append(entries.clone(), openraft::storage::IOFlushed::Noop).await.unwrap();
        sm.apply(stream::iter(entries.into_iter().map(|e| Ok((e, None))))).await.unwrap();
        assert_eq!(engine.get(Cf::Mvcc, b"k2").unwrap(), Some(b"v".to_vec()));
        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
    }
    // Reopen: the log and the applied state are both there.
    let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(&path).unwrap());
    let (mut log, mut sm) = stores(engine.clone());
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(1, 3)));
    assert_eq!(log.try_get_log_entries(2..=3).await.unwrap().len(), 2);
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
    assert_eq!(engine.get(Cf::Mvcc, b"k3").unwrap(), Some(b"v".to_vec()));
}

#[tokio::test]
async fn snapshot_replaces_the_followers_data() {
    let leader: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
    let follower: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
    let (_, mut leader_sm) = stores(leader.clone());
    let (_, mut follower_sm) = stores(follower.clone());
    let mut stale = WriteBatch::new();
    stale.put(Cf::Mvcc, b"stale".to_vec(), b"x".to_vec());
    follower.write(&stale, shoal_storage::WriteOptions::NO_SYNC).unwrap();

    let entry =
        Entry { log_id: log_id(2, 5), payload: EntryPayload::Normal(put_command(b"a", b"1")) };
    leader_sm.apply(stream::iter([Ok((entry, None))])).await.unwrap();
    let mut builder = leader_sm.get_snapshot_builder().await;
    let built = openraft::storage::RaftSnapshotBuilder::build_snapshot(&mut builder).await.unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(2, 5)));
    assert!(built.snapshot.is_empty(), "building a snapshot copies no data");

    // Entries applied after the build are in the snapshot a follower gets, and so is their
    // log id: the metadata always describes the data.
    let entry =
        Entry { log_id: log_id(2, 6), payload: EntryPayload::Normal(put_command(b"b", b"2")) };
    leader_sm.apply(stream::iter([Ok((entry, None))])).await.unwrap();
    let snapshot = leader_sm.get_current_snapshot().await.unwrap().expect("a snapshot was built");
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(2, 6)));

    follower_sm.install_snapshot(&snapshot.meta, snapshot.snapshot).await.unwrap();
    assert_eq!(follower.get(Cf::Mvcc, b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(follower.get(Cf::Mvcc, b"b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(follower.get(Cf::Mvcc, b"stale").unwrap(), None, "the snapshot replaces the span");
    assert_eq!(follower_sm.applied_state().await.unwrap().0, Some(log_id(2, 6)));
}
