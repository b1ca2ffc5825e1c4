//! The store's group-commit log writer: one thread makes the Raft log appends of every range
//! durable with one fsync per group.
//!
//! ```text
//!   range 1 append ─┐                        ┌─▶ written: entries readable, append() returns
//!   range 7 append ─┼─▶ queue ─▶ writer ─────┤   one engine write of the merged batch
//!   range 3 vote   ─┘   (drain all)          └─▶ synced: one WAL fsync, then every callback
//! ```
//!
//! openraft's contract allows this: `append` must make entries *readable* before it returns
//! and call its callback once they are *durable*; `save_vote` must be durable when it
//! returns. Requests are applied in submission order, so a truncation or purge queued after
//! an append never overtakes it.
//!
//! # Hazards
//!
//! The writer owns the only fsync of the Raft log: a request's `synced` callback must never be
//! called before `Engine::sync_wal` returned successfully for a write that includes it. If
//! writing or syncing fails, every request in the group gets the error; the Raft instance then
//! stops (openraft treats storage errors as fatal), which is the only safe reaction.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use shoal_storage::{Engine, WriteBatch, WriteOptions};
use tokio::sync::oneshot;

use crate::{Error, Result};

/// Called once the request's writes are durable (or failed).
pub type SyncedCallback = Box<dyn FnOnce(Result<()>) + Send>;

struct Request {
    batch: WriteBatch,
    written: oneshot::Sender<Result<()>>,
    synced: Option<SyncedCallback>,
}

/// A handle to the store's log writer thread. Cloning shares the thread; dropping the last
/// handle finishes the queued writes and joins the thread, so the engine is released when the
/// store closes.
#[derive(Clone)]
pub struct LogWriter {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.queue.take()); // closing the queue ends the thread's loop
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogWriter")
    }
}

impl LogWriter {
    /// Starts the writer thread for `engine`.
    pub fn start(engine: Arc<dyn Engine>) -> Self {
        let (queue, requests) = mpsc::channel::<Request>();
        let thread = thread::Builder::new()
            .name("shoal-log-writer".into())
            .spawn(move || run(engine, requests))
            .expect("spawning the log writer thread");
        LogWriter { inner: Arc::new(Inner { queue: Some(queue), thread: Some(thread) }) }
    }

    /// Queues `batch`; resolves once it is written (readable). `synced` is called once it is
    /// durable.
    pub async fn write(&self, batch: WriteBatch, synced: Option<SyncedCallback>) -> Result<()> {
        let (written, done) = oneshot::channel();
        let queue = self.inner.queue.as_ref().expect("the queue lives as long as the handle");
        queue
            .send(Request { batch, written, synced })
            .map_err(|_| Error::Stopped("the log writer has stopped".into()))?;
        done.await.map_err(|_| Error::Stopped("the log writer has stopped".into()))?
    }

    /// Queues `batch` and resolves once it is durable.
    pub async fn write_durable(&self, batch: WriteBatch) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let synced: SyncedCallback = Box::new(move |result| {
            let _ = tx.send(result);
        });
        self.write(batch, Some(synced)).await?;
        rx.await.map_err(|_| Error::Stopped("the log writer has stopped".into()))?
    }
}

fn run(engine: Arc<dyn Engine>, requests: mpsc::Receiver<Request>) {
    while let Ok(first) = requests.recv() {
        let mut group = vec![first];
        group.extend(requests.try_iter());

        let mut merged = WriteBatch::new();
        for request in &mut group {
            merged.extend(std::mem::take(&mut request.batch));
        }
        // Not synced here: the one fsync below covers every request of the group.
        let written = engine.write(&merged, WriteOptions::NO_SYNC).map_err(Error::from);
        let mut pending_sync = Vec::new();
        for request in group {
            let _ = request.written.send(written.clone());
            if let Some(synced) = request.synced {
                pending_sync.push(synced);
            }
        }
        if pending_sync.is_empty() {
            continue;
        }
        let synced = written.and_then(|()| engine.sync_wal().map_err(Error::from));
        for callback in pending_sync {
            callback(synced.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use shoal_storage::{Cf, MemoryEngine, Reader, Result as StorageResult};

    use super::*;

    /// An engine that counts syncs, to show that one fsync serves many writes.
    #[derive(Default)]
    struct CountingEngine {
        inner: MemoryEngine,
        syncs: AtomicUsize,
        writes: AtomicUsize,
    }

    impl Reader for CountingEngine {
        fn get(&self, cf: Cf, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
            self.inner.get(cf, key)
        }
        fn iter(
            &self,
            cf: Cf,
            opts: shoal_storage::IterOptions,
        ) -> StorageResult<Box<dyn shoal_storage::EngineIterator + '_>> {
            self.inner.iter(cf, opts)
        }
    }

    impl Engine for CountingEngine {
        fn write(&self, batch: &WriteBatch, opts: WriteOptions) -> StorageResult<()> {
            assert!(!opts.sync, "the writer syncs once per group, never per write");
            self.writes.fetch_add(1, Ordering::SeqCst);
            // Slow writes let requests pile up, as under load.
            std::thread::sleep(std::time::Duration::from_millis(2));
            self.inner.write(batch, opts)
        }
        fn sync_wal(&self) -> StorageResult<()> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_concurrent_appends_under_one_sync() {
        let engine = Arc::new(CountingEngine::default());
        let writer = LogWriter::start(engine.clone());
        let tasks: Vec<_> = (0..64u8)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut batch = WriteBatch::new();
                    batch.put(Cf::Raft, vec![i], vec![i]);
                    writer.write_durable(batch).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        for i in 0..64u8 {
            assert_eq!(engine.get(Cf::Raft, &[i]).unwrap(), Some(vec![i]), "write {i} is readable");
        }
        let (writes, syncs) =
            (engine.writes.load(Ordering::SeqCst), engine.syncs.load(Ordering::SeqCst));
        assert_eq!(writes, syncs, "one sync per group");
        assert!(syncs < 64, "64 concurrent writes were grouped into {syncs} syncs");
    }

    #[tokio::test]
    async fn synced_callback_fires_after_the_write_is_readable() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let writer = LogWriter::start(engine.clone());
        let (tx, rx) = oneshot::channel();
        let reader = engine.clone();
        let synced: SyncedCallback = Box::new(move |result| {
            let visible = reader.get(Cf::Raft, b"k").unwrap();
            let _ = tx.send((result, visible));
        });
        let mut batch = WriteBatch::new();
        batch.put(Cf::Raft, b"k".to_vec(), b"v".to_vec());
        writer.write(batch, Some(synced)).await.unwrap();
        let (result, visible) = rx.await.unwrap();
        result.unwrap();
        assert_eq!(visible, Some(b"v".to_vec()));
    }
}
