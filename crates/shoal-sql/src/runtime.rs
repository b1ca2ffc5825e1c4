//! Where queries run: a thread pool of their own, at a lower CPU priority, so that no query
//! can hold the threads that Raft, liveness, RPC and the HTTP API need.
//!
//! ```text
//!   node runtime (nice 0)                     SQL runtime (nice 10, `shoal-sql-N` threads)
//!   ┌──────────────────────────┐   rows in    ┌──────────────────────────────────────┐
//!   │ pgwire / HTTP session    │◀─ batches ───│ the statement's operator tree:       │
//!   │ Raft, liveness, RPC      │   (bounded)  │ scans, joins, sorts, aggregates      │
//!   └──────────────────────────┘              └──────────────────────────────────────┘
//!   dropping the row stream (cancel, timeout, disconnect) aborts the operator task
//! ```
//!
//! [`offload`] moves a statement's operator tree onto the SQL runtime as one task and hands
//! back a stream that reads its rows through a bounded channel: the session stays where it
//! was (it owns the client's socket), the CPU-heavy work does not.
//!
//! Three things keep the node responsive while SQL is busy:
//! 1. **Separate threads.** The operators never run on the node runtime's workers, so a
//!    join that computes for minutes does not delay a heartbeat by one poll.
//! 2. **Lower priority.** The SQL threads run at `nice` +10 (Linux keeps a nice value per
//!    thread): when both kinds of threads want a core, the kernel gives the node's threads
//!    about nine tenths of it, so liveness and Raft keep their deadlines even on two cores
//!    with every SQL thread busy.
//! 3. **Cooperative operators.** Every operator spends tokio's task budget per row
//!    ([`crate::exec`]), so a task yields within a few hundred rows: an abort (cancel,
//!    `statement_timeout`, a client gone) stops it at the next yield, mid-join included, and
//!    concurrent queries share the SQL threads fairly.
//!
//! Hazards: a single synchronous step that takes long (sorting a huge buffered input) still
//! delays the abort until it ends; the memory budget ([`crate::memory`]) bounds how large
//! such a step can be. A query task may spawn further tasks (a transaction's heartbeat), which
//! then also live on the SQL runtime; they are small and yield at once.
//!
//! Out of scope: admission control (how many queries may run at once) and a per-query CPU
//! share; the kernel's fair scheduler divides the SQL threads among busy queries.

use futures::StreamExt;
use futures::stream::{self, TryStreamExt};

use crate::error::SqlError;
use crate::exec::{Row, Rows};

/// How many rows a query task sends in one message at most.
const BATCH_ROWS: usize = 64;

/// How many batches may wait in the channel: the task runs at most this far ahead of its
/// consumer.
const CHANNEL_BATCHES: usize = 4;

/// The nice value of the SQL threads, relative to the node's own (Linux: 0 by default).
pub const SQL_THREAD_NICE: i32 = 10;

/// A tokio runtime for query execution, shut down (its tasks dropped) when this is dropped.
pub struct SqlRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for SqlRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlRuntime").finish_non_exhaustive()
    }
}

impl SqlRuntime {
    /// Starts a runtime of `threads` worker threads named `shoal-sql-N`, each lowered to
    /// [`SQL_THREAD_NICE`] where the platform allows (elsewhere they keep the node's
    /// priority, and a warning says so once).
    pub fn start(threads: usize) -> std::io::Result<SqlRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name_fn(|| {
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("shoal-sql-{n}")
            })
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(SqlRuntime { runtime: Some(runtime), handle })
    }

    /// The runtime's handle, for [`ExecEnv`](crate::exec::ExecEnv).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }

    /// How many tasks are alive on the runtime: the operator trees of running statements
    /// (and the small tasks they spawned).
    pub fn alive_tasks(&self) -> usize {
        self.handle.metrics().num_alive_tasks()
    }
}

impl Drop for SqlRuntime {
    /// Drops the running query tasks without waiting for them: dropping a runtime inside
    /// another runtime's task would otherwise panic.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's CPU priority to [`SQL_THREAD_NICE`].
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // On Linux, setpriority with a thread id changes that thread alone.
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), SQL_THREAD_NICE) {
            warn_once(&format!("SQL threads keep the node's CPU priority: setpriority: {e}"));
        }
    }
    #[cfg(not(target_os = "linux"))]
    warn_once("SQL threads keep the node's CPU priority on this platform");
}

fn warn_once(message: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| tracing::warn!("{message}"));
}

/// Runs `rows` (an operator tree) as a task on `runtime`, returning a stream of its rows.
/// Dropping the returned stream aborts the task at its next yield. A task that panics ends
/// the stream with an internal error, never with a silently short result.
pub fn offload(rows: Rows, runtime: &tokio::runtime::Handle) -> Rows {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<crate::Result<Row>>>(CHANNEL_BATCHES);
    let task = runtime.spawn(async move {
        let mut batches = rows.ready_chunks(BATCH_ROWS);
        while let Some(batch) = batches.next().await {
            let failed = batch.iter().any(Result::is_err);
            if sender.send(batch).await.is_err() || failed {
                // The consumer is gone, or the stream ended with its error.
                return;
            }
        }
    });
    let state = (receiver, Some(AbortOnDrop(task)));
    stream::unfold(state, |(mut receiver, mut task)| async move {
        match receiver.recv().await {
            Some(batch) => Some((Ok(batch), (receiver, task))),
            None => {
                // The task ended: normally, or by a panic that dropped its sender.
                let handle = task.take()?;
                match handle.join().await {
                    Ok(()) => None,
                    Err(e) => Some((
                        Err(SqlError::Internal(format!("a query task failed: {e}"))),
                        (receiver, None),
                    )),
                }
            }
        }
    })
    .map_ok(|batch: Vec<crate::Result<Row>>| stream::iter(batch))
    .try_flatten()
    .boxed()
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    async fn join(mut self) -> Result<(), tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
