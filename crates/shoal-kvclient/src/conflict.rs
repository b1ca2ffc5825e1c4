//! Conflict resolution: what a sender does when a range answers that its request met other
//! transactions' locks (intents) and waited for them long enough.
//!
//! ```text
//!   Put b  ──▶ LockConflict [b held by t1]
//!          ──▶ PushTxn(t1, abort) waits in t1's queue until t1 ends, expires, or turns out to
//!              be deadlocked with me; between waits I ask my own record who waits for me, and
//!              pass that on, so the cycle is found where it closes
//!          ◀── t1 COMMITTED (or ABORTED)
//!          ──▶ ResolveIntent b                        at b's range
//!          ──▶ Put b again
//!   Get b  the same, unless the reader has no uncertainty window left: then it pushes t1's
//!          timestamp above its read (PushTxn(t1, timestamp)) and reads around the intent
//! ```
//!
//! Pushing from the sender keeps the KV server free of a client of its own: a range never
//! sends requests to other ranges.

use std::sync::{Arc, Mutex};

use shoal_api::txn::{
    IntentResolution, ObservedTimestamp, PushKind, Transaction, TxnMeta, TxnStatus,
};
use shoal_api::{BatchResponse, KvError, RangeDescriptor, Request, Response};
use shoal_hlc::Timestamp;
use shoal_keys::Key;

use crate::DistSender;
use crate::dist_sender::Locate;
use crate::trace::KvTrace;

/// A transaction shared by the parts of one batch sent in parallel: each range may move its
/// write timestamp up or add a clock reading.
/// It also keeps the highest timestamp any part was evaluated at, and the trace the parts
/// record into, if someone watches ([`crate::trace`]).
pub(crate) struct TxnUpdates(Mutex<(Option<Transaction>, Timestamp)>, Option<Arc<KvTrace>>);

impl TxnUpdates {
    pub(crate) fn new(txn: Option<Transaction>) -> Self {
        TxnUpdates(Mutex::new((txn, Timestamp::ZERO)), None)
    }

    /// The same, recording into `trace`.
    pub(crate) fn traced(txn: Option<Transaction>, trace: Option<Arc<KvTrace>>) -> Self {
        TxnUpdates(Mutex::new((txn, Timestamp::ZERO)), trace)
    }

    fn current(&self) -> Option<Transaction> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// Where the parts record what they cost, if anywhere.
    pub(crate) fn trace(&self) -> Option<&KvTrace> {
        self.1.as_deref()
    }

    /// Returns the highest timestamp a part was evaluated at.
    pub(crate) fn timestamp(&self) -> Timestamp {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    fn merge(&self, response: &BatchResponse) {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.1 = held.1.max(response.timestamp);
        let Some(txn) = held.0.as_mut() else { return };
        if let Some(updated) = &response.txn {
            txn.meta.write_ts = txn.meta.write_ts.max(updated.meta.write_ts);
        }
        if let Some(ObservedTimestamp { node_id, ts }) = response.observed {
            txn.observe(node_id, ts);
        }
    }

    pub(crate) fn into_inner(self) -> Option<Transaction> {
        self.0.into_inner().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl DistSender {
    /// Sends requests that all fall in one range, resolving the locks they meet.
    pub(crate) async fn send_resolving(
        &self,
        descriptor: RangeDescriptor,
        locate: &Locate,
        requests: Vec<Request>,
        txn: &TxnUpdates,
    ) -> Result<BatchResponse, KvError> {
        loop {
            let current = txn.current();
            let result = self.send_to_range(
                descriptor.clone(),
                locate,
                requests.clone(),
                current.clone(),
                txn.trace(),
            );
            match result.await {
                Ok(response) => {
                    txn.merge(&response);
                    return Ok(response);
                }
                Err(KvError::LockConflict { locks, push_to }) => {
                    if let Some(trace) = txn.trace() {
                        trace.lock_conflicts(locks.len());
                    }
                    for (key, holder) in locks {
                        let writes = requests
                            .iter()
                            .any(|r| r.writes_data() && r.span().contains(key.as_bytes()));
                        let (kind, push_to) = match push_to {
                            Some(ts) if !writes => (PushKind::Timestamp, ts),
                            _ => (PushKind::Abort, Timestamp::ZERO),
                        };
                        self.push_and_resolve(current.as_ref(), key, holder, kind, push_to).await?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`DistSender::send`], boxed: resolving a conflict sends requests that may meet
    /// conflicts of their own.
    fn send_boxed(
        &self,
        requests: Vec<Request>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Response>, KvError>> {
        Box::pin(self.send(requests))
    }

    /// Pushes the holder of the lock on `key` until the push succeeds, then resolves the
    /// intent. Between waits, a transactional pusher checks its own record: aborted (a
    /// deadlock broken on its side, or a push by another) ends the wait with a restart.
    async fn push_and_resolve(
        &self,
        pusher: Option<&Transaction>,
        key: Key,
        holder: TxnMeta,
        kind: PushKind,
        push_to: Timestamp,
    ) -> Result<(), KvError> {
        let mut dependents = Vec::new();
        let waiting = pusher.map(|p| Waiting::new(self, p.meta.id));
        loop {
            let push = Request::PushTxn {
                key: holder.anchor.clone(),
                pushee: holder.clone(),
                pusher: pusher.map(|t| t.meta.clone()),
                kind,
                push_to,
                dependents: dependents.clone(),
            };
            let Some(Response::PushTxn { pushee, pushed }) =
                self.send_boxed(vec![push]).await?.pop()
            else {
                return Err(KvError::Internal("a push got another response".into()));
            };
            if pushed {
                let resolution = IntentResolution {
                    poison: pushee.status == TxnStatus::Aborted,
                    txn: pushee.meta,
                    status: pushee.status,
                };
                self.send_boxed(vec![Request::ResolveIntent { key, resolution }]).await?;
                return Ok(());
            }
            // A pusher that has written nothing holds no lock: nobody can wait for it.
            if let Some(waiting) = &waiting {
                waiting.mark();
            }
            let Some(pusher) = pusher.filter(|p| !p.meta.anchor.is_empty()) else { continue };
            let query =
                Request::QueryTxn { key: pusher.meta.anchor.clone(), txn_id: pusher.meta.id };
            let Some(Response::QueryTxn { record, waiting }) =
                self.send_boxed(vec![query]).await?.pop()
            else {
                return Err(KvError::Internal("a query got another response".into()));
            };
            if let Some(record) = record.filter(|r| r.status == TxnStatus::Aborted) {
                return Err(record.abort_error());
            }
            dependents = waiting;
        }
    }
}

/// Marks a transaction as waiting in [`DistSender::waiting_txns`] until dropped.
struct Waiting<'a> {
    sender: &'a DistSender,
    txn_id: u128,
}

impl<'a> Waiting<'a> {
    fn new(sender: &'a DistSender, txn_id: u128) -> Self {
        Waiting { sender, txn_id }
    }

    fn mark(&self) {
        self.sender.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(self.txn_id);
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.sender.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.txn_id);
    }
}
