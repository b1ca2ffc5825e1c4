//! The transaction coordinator: runs one transaction from the gateway node (design §7).
//!
//! ```text
//!   begin            read_ts = write_ts = now, uncertainty limit = now + max offset
//!   get / scan       at read_ts; spans remembered for refresh
//!   put / delete     intents at write_ts (a range may move write_ts up: newer versions, or
//!                    reads served above it); spans remembered for resolution; the first
//!                    written key is the anchor, and a heartbeat starts
//!   commit           write_ts > read_ts? refresh every read span to write_ts (nothing changed
//!                    in between?) or restart; EndTxn(commit) at the anchor's range is the
//!                    commit point; intents elsewhere are resolved afterwards, in the background
//!   commit_with(b)   b and the commit in one batch: one Raft proposal if b stays on one range
//! ```
//!
//! # Errors
//!
//! Restarts ([`KvError::TxnRetry`], SQLSTATE 40001) say why. A restart that is not an abort
//! keeps the transaction (and its locks) under a new epoch ([`Txn::restart`]); an abort needs
//! a new transaction. [`KvClient::txn`] does either automatically. A commit whose outcome is
//! unknown fails with [`KvError::Ambiguous`], never with a guess.
//!
//! # Hazards
//!
//! A batch that writes on several ranges is not re-sent after an uncertainty error (a part
//! may have applied already): the transaction restarts instead. Reads are re-sent.

use std::sync::{Arc, Mutex};

use shoal_api::txn::{
    IntentResolution, RetryReason, TXN_HEARTBEAT_INTERVAL, Transaction, TxnMeta, TxnStatus,
};
use shoal_api::{KvError, Request, Response};
use shoal_hlc::{Clock, Timestamp};
use shoal_keys::{Key, Span};

use crate::DistSender;
use crate::client::{KvClient, KvOps};
use crate::trace::KvTrace;

/// How many times [`KvClient::txn`] runs a transaction before giving up.
const MAX_ATTEMPTS: usize = 100;

/// The priority of a new transaction; each abort raises the next attempt's by one, so a
/// transaction that keeps losing eventually wins its pushes.
pub const DEFAULT_PRIORITY: u32 = 1;

#[derive(Debug)]
struct TxnState {
    txn: Transaction,
    /// Spans read at `txn.read_ts`, to refresh when the write timestamp moves.
    read_spans: Vec<Span>,
    /// Spans written (intents), to resolve at the end.
    lock_spans: Vec<Span>,
    /// Committed or aborted: no more requests.
    finished: Option<TxnStatus>,
    /// The heartbeat found the record aborted.
    aborted: Option<KvError>,
    /// [`Txn::fix_commit_timestamp`] was called in this epoch: the transaction commits at
    /// `txn.read_ts` or restarts, never refreshes.
    commit_ts_fixed: bool,
    /// Where the transaction's batches are recorded while someone watches ([`Txn::set_trace`]).
    trace: Option<Arc<KvTrace>>,
}

/// A transaction in progress. Clones are handles to the same transaction.
#[derive(Clone)]
pub struct Txn {
    inner: Arc<TxnInner>,
}

/// What the handles of one transaction share.
struct TxnInner {
    sender: Arc<DistSender>,
    clock: Arc<Clock>,
    /// [`KvClient::with_unsafe_skip_refresh`].
    skip_refresh: bool,
    state: Arc<Mutex<TxnState>>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for TxnInner {
    fn drop(&mut self) {
        if let Some(task) = self.heartbeat.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

impl KvOps for Txn {
    async fn send(&self, requests: Vec<Request>) -> Result<Vec<Response>, KvError> {
        self.send_batch(requests).await
    }
}

impl KvClient {
    /// Starts a transaction.
    pub fn begin(&self) -> Txn {
        self.begin_with_priority(DEFAULT_PRIORITY)
    }

    /// Starts a transaction with a given priority (higher wins pushes).
    pub fn begin_with_priority(&self, priority: u32) -> Txn {
        self.begin_with_id(uuid::Uuid::new_v4().as_u128(), priority)
    }

    /// Starts a read-only transaction that reads the database as of `ts` (`AS OF SYSTEM
    /// TIME`). It has no uncertainty interval: a historical read's timestamp is chosen, not
    /// taken from a clock, so a value above it was written after it by definition. Writing
    /// through it is the caller's mistake (the writes would land at `ts`).
    pub fn begin_historical(&self, ts: Timestamp) -> Txn {
        let txn = self.begin();
        {
            let mut state = txn.lock();
            state.txn.meta.write_ts = ts;
            state.txn.read_ts = ts;
            state.txn.uncertainty_limit = ts;
        }
        txn
    }

    /// Starts a transaction with a chosen id, which must be unique in the cluster forever
    /// (tests use it for stable output; everything else wants [`KvClient::begin`]).
    pub fn begin_with_id(&self, id: u128, priority: u32) -> Txn {
        let now = self.clock.now();
        let txn = Transaction {
            meta: TxnMeta { id, anchor: Key::MIN, epoch: 0, write_ts: now, priority },
            read_ts: now,
            uncertainty_limit: now.add_duration(self.clock.max_offset()),
            observed: Vec::new(),
        };
        Txn {
            inner: Arc::new(TxnInner {
                sender: self.sender.clone(),
                clock: self.clock.clone(),
                skip_refresh: self.unsafe_skip_refresh,
                state: Arc::new(Mutex::new(TxnState {
                    txn,
                    read_spans: Vec::new(),
                    lock_spans: Vec::new(),
                    finished: None,
                    aborted: None,
                    commit_ts_fixed: false,
                    trace: None,
                })),
                heartbeat: Mutex::new(None),
            }),
        }
    }

    /// Runs `body` in a transaction and commits it, restarting on retryable errors until it
    /// commits or fails otherwise. `body` gets a handle to the transaction (a cheap clone).
    pub async fn txn<T, F, Fut>(&self, body: F) -> Result<T, KvError>
    where
        F: FnMut(Txn) -> Fut,
        Fut: Future<Output = Result<T, KvError>>,
    {
        self.txn_with_restarts(body).await.0
    }

    /// [`KvClient::txn`], also returning the reasons of the restarts it took.
    pub async fn txn_with_restarts<T, F, Fut>(
        &self,
        mut body: F,
    ) -> (Result<T, KvError>, Vec<RetryReason>)
    where
        F: FnMut(Txn) -> Fut,
        Fut: Future<Output = Result<T, KvError>>,
    {
        let mut txn = self.begin();
        let mut restarts = Vec::new();
        loop {
            let result = match body(txn.clone()).await {
                Ok(value) => txn.commit().await.map(|()| value),
                Err(e) => Err(e),
            };
            match result {
                Ok(value) => return (Ok(value), restarts),
                Err(KvError::TxnRetry { reason, .. }) if restarts.len() + 1 < MAX_ATTEMPTS => {
                    restarts.push(reason);
                    if reason.is_abort() {
                        let priority = txn.meta().priority.saturating_add(1);
                        txn.rollback_in_background();
                        txn = self.begin_with_priority(priority);
                    } else {
                        txn.restart();
                    }
                }
                Err(e) => {
                    if !matches!(e, KvError::Ambiguous(_)) {
                        txn.rollback_in_background();
                    }
                    return (Err(e), restarts);
                }
            }
        }
    }
}

impl Txn {
    fn lock(&self) -> std::sync::MutexGuard<'_, TxnState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the transaction's identity, anchor, epoch, write timestamp and priority.
    pub fn meta(&self) -> TxnMeta {
        self.lock().txn.meta.clone()
    }

    /// Returns the timestamp reads are served at.
    pub fn read_ts(&self) -> Timestamp {
        self.lock().txn.read_ts
    }

    /// Fixes the commit timestamp at the current read timestamp and returns it: from now on
    /// (in this epoch) anything that would move the transaction's timestamp, which a refresh
    /// would otherwise absorb, restarts it instead. `cluster_logical_timestamp()` uses it, so
    /// the timestamp a transaction shows is the one it commits at (CockroachDB does the same).
    pub fn fix_commit_timestamp(&self) -> Timestamp {
        let mut state = self.lock();
        state.commit_ts_fixed = true;
        state.txn.read_ts
    }

    /// Records the transaction's reads and writes from now on into `trace` (None: stop
    /// recording). Commits, rollbacks and heartbeats are never recorded.
    pub fn set_trace(&self, trace: Option<Arc<KvTrace>>) {
        self.lock().trace = trace;
    }

    fn trace(&self) -> Option<Arc<KvTrace>> {
        self.lock().trace.clone()
    }

    /// Returns the transaction as it would be sent now.
    pub fn transaction(&self) -> Transaction {
        self.lock().txn.clone()
    }

    /// Checks that the transaction can still send, and prepares it for `requests`: the first
    /// write names the anchor and starts the heartbeat.
    fn prepare(&self, requests: &[Request]) -> Result<Transaction, KvError> {
        let mut state = self.lock();
        if let Some(status) = state.finished {
            return Err(KvError::InvalidArgument(format!("the transaction is already {status}")));
        }
        if let Some(e) = &state.aborted {
            return Err(e.clone());
        }
        let first_write = requests.iter().find(|r| r.writes_data());
        if let Some(write) = first_write
            && state.txn.meta.anchor.is_empty()
        {
            state.txn.meta.anchor = write.span().start;
            drop(state);
            self.start_heartbeat();
            state = self.lock();
        }
        Ok(state.txn.clone())
    }

    async fn send_batch(&self, requests: Vec<Request>) -> Result<Vec<Response>, KvError> {
        let read_only = requests.iter().all(|r| !r.writes_data());
        // Reads, some of them locking: sent again whole, they take the same locks again
        // (a transaction relocking its own key just moves the lock up).
        let reads = requests.iter().all(|r| !r.writes_data() || r.is_locking_read());
        loop {
            let txn = self.prepare(&requests)?;
            let sent = self.inner.sender.send_txn_traced(requests.clone(), Some(txn), self.trace());
            match sent.await {
                Ok((responses, updated)) => {
                    let mut state = self.lock();
                    if let Some(updated) = updated {
                        merge(&mut state.txn, &updated);
                    }
                    for request in &requests {
                        if request.reads_data() {
                            state.read_spans.push(request.span());
                        }
                        if request.writes_data() {
                            state.lock_spans.push(request.span());
                        }
                    }
                    return Ok(responses);
                }
                // The read found a value it cannot order against: read above it, if every
                // earlier read still holds there.
                Err(KvError::TxnRetry {
                    reason: RetryReason::Uncertainty,
                    txn: Some(moved),
                    detail,
                }) if reads => {
                    let to = moved.read_ts.max(moved.meta.write_ts);
                    if !self.refresh_to(to).await? {
                        return Err(KvError::TxnRetry {
                            reason: RetryReason::Uncertainty,
                            detail: format!("{detail}, and it cannot read above it"),
                            txn: None,
                        });
                    }
                }
                // A locking read met a newer version than it read: read (and lock) again above
                // it, if every earlier read still holds there.
                Err(KvError::TxnRetry {
                    reason: reason @ RetryReason::WriteTooOld,
                    txn: Some(moved),
                    detail,
                }) if reads && !read_only => {
                    if !self.refresh_to(moved.meta.write_ts).await? {
                        return Err(self.restart_error(reason, detail));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the transaction's read timestamp up to `to` if nothing it read changed in
    /// between; returns false (and changes nothing) otherwise.
    async fn refresh_to(&self, to: Timestamp) -> Result<bool, KvError> {
        let (txn, spans) = {
            let state = self.lock();
            if to <= state.txn.read_ts {
                return Ok(true);
            }
            if state.commit_ts_fixed {
                // The commit timestamp was shown to the client: it cannot move.
                return Ok(false);
            }
            let mut txn = state.txn.clone();
            txn.meta.write_ts = txn.meta.write_ts.max(to);
            (txn, state.read_spans.clone())
        };
        // UNSAFE when skipped: the reads are taken to be valid at `to` unchecked.
        if !spans.is_empty() && !self.inner.skip_refresh {
            let from = txn.read_ts;
            let refreshes = spans.into_iter().map(|span| Request::Refresh { span, from }).collect();
            let trace = self.trace();
            if let Some(trace) = &trace {
                trace.refresh();
            }
            match self.inner.sender.send_txn_traced(refreshes, Some(txn.clone()), trace).await {
                Ok(_) => {}
                Err(KvError::TxnRetry { reason: RetryReason::RefreshFailed, .. }) => {
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        let mut state = self.lock();
        state.txn.read_ts = state.txn.read_ts.max(to);
        state.txn.meta.write_ts = state.txn.meta.write_ts.max(to);
        Ok(true)
    }

    /// Commits the transaction. Committing a committed transaction does nothing.
    pub async fn commit(&self) -> Result<(), KvError> {
        if self.lock().finished == Some(TxnStatus::Committed) {
            return Ok(());
        }
        self.commit_with(Vec::new()).await.map(|_| ())
    }

    /// Sends `requests` and commits, in one batch (and one Raft proposal) when the transaction
    /// has written nothing before and every request falls in one range.
    pub async fn commit_with(&self, requests: Vec<Request>) -> Result<Vec<Response>, KvError> {
        let fresh = self.lock().lock_spans.is_empty();
        if !requests.is_empty() && fresh && self.on_one_range(&requests).await? {
            match self.commit_one_phase(requests.clone()).await {
                // The range split under it: nothing was sent; commit in two phases.
                Err(KvError::RangeKeyMismatch { .. }) => {}
                other => return other,
            }
        }
        let responses =
            if requests.is_empty() { Vec::new() } else { self.send_batch(requests).await? };
        self.commit_two_phase().await?;
        Ok(responses)
    }

    async fn on_one_range(&self, requests: &[Request]) -> Result<bool, KvError> {
        let first = self.inner.sender.descriptor_for(&requests[0].span().start).await?;
        Ok(requests.iter().all(|r| first.contains_span(&r.span())))
    }

    async fn commit_one_phase(&self, requests: Vec<Request>) -> Result<Vec<Response>, KvError> {
        let lock_spans: Vec<Span> =
            requests.iter().filter(|r| r.writes_data()).map(Request::span).collect();
        loop {
            let txn = self.prepare(&[])?;
            let anchor = lock_spans.first().map_or(txn.meta.anchor.clone(), |s| s.start.clone());
            let mut batch = requests.clone();
            batch.push(Request::EndTxn {
                key: anchor,
                commit: true,
                lock_spans: lock_spans.clone(),
            });
            match self.inner.sender.send_txn(batch, Some(txn)).await {
                Ok((mut responses, _)) => {
                    responses.pop();
                    self.finish(TxnStatus::Committed);
                    self.commit_wait(self.read_ts()).await;
                    return Ok(responses);
                }
                // It would have to commit above its reads: move them up if they still hold.
                Err(KvError::TxnRetry {
                    reason: reason @ (RetryReason::Pushed | RetryReason::WriteTooOld),
                    txn: Some(moved),
                    detail,
                }) => {
                    if !self.refresh_to(moved.meta.write_ts).await? {
                        return Err(self.restart_error(reason, detail));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn commit_two_phase(&self) -> Result<(), KvError> {
        loop {
            let (txn, lock_spans) = {
                let state = self.lock();
                (state.txn.clone(), state.lock_spans.clone())
            };
            if lock_spans.is_empty() {
                // Read-only: there is nothing to commit.
                self.prepare(&[])?;
                self.finish(TxnStatus::Committed);
                return Ok(());
            }
            if txn.meta.write_ts > txn.read_ts && !self.refresh_to(txn.meta.write_ts).await? {
                return Err(self.restart_error(
                    RetryReason::RefreshFailed,
                    format!("its writes moved from {} to {}", txn.read_ts, txn.meta.write_ts),
                ));
            }
            let txn = self.prepare(&[])?;
            let end = Request::EndTxn {
                key: txn.meta.anchor.clone(),
                commit: true,
                lock_spans: lock_spans.clone(),
            };
            match self.inner.sender.send_txn(vec![end], Some(txn)).await {
                Ok((responses, _)) => {
                    let Some(Response::EndTxn(record)) = responses.into_iter().next() else {
                        return Err(KvError::Internal("a commit got another response".into()));
                    };
                    self.finish(TxnStatus::Committed);
                    let commit_ts = record.meta.write_ts;
                    self.resolve_in_background(lock_spans, record.meta, TxnStatus::Committed);
                    self.commit_wait(commit_ts).await;
                    return Ok(());
                }
                Err(KvError::TxnRetry {
                    reason: RetryReason::Pushed, txn: Some(moved), ..
                }) => {
                    let mut state = self.lock();
                    state.txn.meta.write_ts = state.txn.meta.write_ts.max(moved.meta.write_ts);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Aborts the transaction and removes its intents.
    pub async fn rollback(&self) -> Result<(), KvError> {
        let (txn, lock_spans) = {
            let state = self.lock();
            if state.finished.is_some() {
                return Ok(());
            }
            (state.txn.clone(), state.lock_spans.clone())
        };
        self.finish(TxnStatus::Aborted);
        if lock_spans.is_empty() {
            return Ok(());
        }
        let end = Request::EndTxn {
            key: txn.meta.anchor.clone(),
            commit: false,
            lock_spans: lock_spans.clone(),
        };
        let result = self.inner.sender.send_txn(vec![end], Some(txn.clone())).await;
        self.resolve_in_background(lock_spans, txn.meta, TxnStatus::Aborted);
        result.map(|_| ())
    }

    /// Rolls back without waiting: the records and intents are cleaned up in the background
    /// (for a client that has gone away, or an error path that must not wait).
    pub fn rollback_in_background(&self) {
        let txn = self.clone();
        self.stop_heartbeat();
        // Outside a runtime (a session dropped as its program ends) nothing can be sent: the
        // record expires without heartbeats and its intents are resolved by whoever meets them.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            if let Err(e) = txn.rollback().await {
                tracing::debug!("rolling back a transaction: {e}");
            }
        });
    }

    /// Restarts the transaction at a new epoch above everything it saw: its reads are
    /// forgotten, its intents stay (as locks) until rewritten or discarded at commit.
    pub fn restart(&self) {
        let now = self.inner.clock.now();
        let mut state = self.lock();
        let ts = state.txn.meta.write_ts.max(now);
        state.txn.meta.epoch += 1;
        state.txn.meta.write_ts = ts;
        state.txn.read_ts = ts;
        state.read_spans.clear();
        state.finished = None;
        // Whatever the old epoch showed of its timestamp is discarded with its results.
        state.commit_ts_fixed = false;
    }

    fn restart_error(&self, reason: RetryReason, detail: String) -> KvError {
        let reason =
            if reason == RetryReason::Pushed { RetryReason::RefreshFailed } else { reason };
        let why = if self.lock().commit_ts_fixed {
            "its commit timestamp was fixed (cluster_logical_timestamp())"
        } else {
            "reads changed since"
        };
        KvError::TxnRetry { reason, detail: format!("{detail}; {why}"), txn: None }
    }

    /// Waits, if needed, before acknowledging a commit at `commit_ts` ("commit wait").
    ///
    /// Every transaction that starts after the acknowledgement must have `commit_ts` below its
    /// uncertainty limit, its clock plus the maximum offset. A timestamp that some node's clock
    /// produced is, since clocks are within the maximum offset of each other; only a
    /// timestamp above every clock could be missed, and only one more than the maximum offset
    /// above this gateway's clock can be that. Such a commit waits until that is no longer so.
    /// No wait at all in practice.
    async fn commit_wait(&self, commit_ts: Timestamp) {
        let clock = &self.inner.clock;
        let slack = u64::try_from(clock.max_offset().as_nanos()).unwrap_or(u64::MAX);
        let bound = Timestamp::new(commit_ts.wall.saturating_sub(slack), commit_ts.logical);
        while let Some(wait) = clock.until(bound) {
            tokio::time::sleep(wait).await;
        }
    }

    fn finish(&self, status: TxnStatus) {
        self.lock().finished = Some(status);
        self.stop_heartbeat();
    }

    fn resolve_in_background(&self, lock_spans: Vec<Span>, meta: TxnMeta, status: TxnStatus) {
        let sender = self.inner.sender.clone();
        tokio::spawn(async move {
            let resolution = IntentResolution { txn: meta, status, poison: false };
            let requests = lock_spans
                .into_iter()
                .map(|span| {
                    if span.end == span.start.next() {
                        Request::ResolveIntent { key: span.start, resolution: resolution.clone() }
                    } else {
                        Request::ResolveIntentRange { span, resolution: resolution.clone() }
                    }
                })
                .collect();
            // Best effort: intents left behind are resolved by whoever meets them next.
            if let Err(e) = sender.send(requests).await {
                tracing::debug!("resolving a finished transaction's intents: {e}");
            }
        });
    }

    fn start_heartbeat(&self) {
        let sender = self.inner.sender.clone();
        let state = self.inner.state.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(TXN_HEARTBEAT_INTERVAL).await;
                let txn = {
                    let state = state.lock().unwrap_or_else(|p| p.into_inner());
                    if state.finished.is_some() {
                        return;
                    }
                    state.txn.clone()
                };
                let beat = Request::HeartbeatTxn { key: txn.meta.anchor.clone() };
                match sender.send_txn(vec![beat], Some(txn)).await {
                    Ok(_) => {}
                    Err(e @ KvError::TxnRetry { .. }) => {
                        state.lock().unwrap_or_else(|p| p.into_inner()).aborted = Some(e);
                        return;
                    }
                    Err(e) => tracing::debug!("heartbeating a transaction: {e}"),
                }
            }
        });
        *self.inner.heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    fn stop_heartbeat(&self) {
        if let Some(task) = self.inner.heartbeat.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

/// Takes what a range learned about the transaction: a higher write timestamp, clock readings.
fn merge(held: &mut Transaction, updated: &Transaction) {
    held.meta.write_ts = held.meta.write_ts.max(updated.meta.write_ts);
    for observed in &updated.observed {
        held.observe(observed.node_id, observed.ts);
    }
}
