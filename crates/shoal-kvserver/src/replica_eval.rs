//! How a replica evaluates one batch under its latches: choosing the timestamps, consulting
//! the timestamp cache, checking the abort span, and the one-phase commit.
//!
//! ```text
//!   non-transactional   ts = max(now, cache(write spans))  → evaluate; write too old → above it
//!   transactional       abort span? → write_ts = max(txn.write_ts, cache(write spans))
//!                       → evaluate (reads at read_ts, intents at write_ts)
//!                       write too old → write_ts above the newer version, evaluate again;
//!                       the coordinator sees the moved write_ts and refreshes at commit
//!   one phase           as transactional, but writes are versions and nothing may move:
//!                       a needed move fails the batch with a restart (nothing was written)
//! ```

use shoal_api::txn::{RetryReason, Transaction, TxnMeta, TxnStatus};
use shoal_api::{BatchRequest, KvError, RangeDescriptor, Request, Response};
use shoal_hlc::Timestamp;
use shoal_storage::WriteBatch;

use crate::eval::{self, Effects, EvalContext, EvalError};
use crate::eval_txn;
use crate::replica::RangeReplica;

/// How often a write re-evaluates above a newer committed version before giving up.
const MAX_WRITE_TOO_OLD_RETRIES: usize = 8;

/// A batch evaluated, not yet replicated.
pub(crate) struct Evaluated {
    pub responses: Vec<Response>,
    pub writes: WriteBatch,
    /// The timestamp reads were served at.
    pub read_ts: Timestamp,
    /// The timestamp writes landed at; replicas raise their clocks to it.
    pub write_ts: Timestamp,
    /// The batch's transaction as it leaves (write timestamp possibly moved).
    pub txn: Option<Transaction>,
}

/// Returns where a transactional reader may push the holders of intents it met instead of
/// waiting for them: only a reader with no uncertainty window left, to its read timestamp.
/// Pushing above a window would move the holders' commits above every clock (and make them
/// wait for the clock to catch up before acknowledging); a non-transactional read always has a
/// window. Writers always wait.
pub(crate) fn timestamp_push(txn: &Transaction) -> Option<Timestamp> {
    (txn.uncertainty_limit <= txn.read_ts).then_some(txn.read_ts)
}

/// Returns the pusher of a batch's `PushTxn`, with its dependents, for the wait queue.
pub(crate) fn push_waiter(requests: &[Request]) -> Option<(u128, Vec<u128>)> {
    requests.iter().find_map(|r| match r {
        Request::PushTxn { pusher: Some(pusher), dependents, .. } => {
            Some((pusher.id, dependents.clone()))
        }
        _ => None,
    })
}

/// Returns true if the batch is a transaction's whole write set plus its commit, all on this
/// range: it can commit without a record or intents. Every lock span must be written by this
/// very batch (the coordinator sends such a batch only if the transaction wrote nothing
/// before); an `EndTxn` after earlier writes has intents to resolve and commits in two phases.
fn is_one_phase(batch: &BatchRequest, descriptor: &RangeDescriptor) -> bool {
    let Some(Request::EndTxn { commit: true, lock_spans, .. }) = batch.requests.last() else {
        return false;
    };
    let written: Vec<_> =
        batch.requests.iter().filter(|r| r.writes_data()).map(Request::span).collect();
    batch.txn.is_some()
        && !lock_spans.is_empty()
        && lock_spans.iter().all(|span| descriptor.contains_span(span) && written.contains(span))
        && batch
            .requests
            .iter()
            .all(|r| !r.is_txn_record_op() || matches!(r, Request::EndTxn { .. }))
}

impl RangeReplica {
    /// Notes the lease the batch runs under. A lease this replica had not served under yet
    /// starts a fresh timestamp cache above anything the previous leaseholder can have read.
    ///
    /// The previous leaseholder served its last read at least [`ReplicaConfig::lease_gap`]
    /// before now, at its clock then, which was at most the maximum offset ahead of this one:
    /// so this clock plus the offset minus the gap bounds it. With production timers (a gap of
    /// 1.5 s, an offset of 500 ms) that is this clock; a low-water mark above the clock would
    /// put writes above every clock.
    ///
    /// It also sets the *local uncertainty floor*. Readers' observations of this node's clock
    /// say nothing about values other nodes wrote under earlier leases: their local timestamps
    /// come from other clocks. Those writes happened before now, when no clock read more than
    /// this one plus the maximum offset, so raising every local limit to that bound treats
    /// them all as possibly before the reader (no gap is subtracted: a write the old leader
    /// evaluated just before losing its lease can still commit under this one).
    ///
    /// [`ReplicaConfig::lease_gap`]: crate::ReplicaConfig::lease_gap
    pub(crate) fn observe_lease(&self, lease_sequence: u64) {
        let mut lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if lease.0 != lease_sequence {
            let now = self.clock.now();
            let ahead = self.clock.max_offset().saturating_sub(self.config.lease_gap);
            self.tscache.lock().unwrap_or_else(|p| p.into_inner()).reset(now.add_duration(ahead));
            *lease = (lease_sequence, now.add_duration(self.clock.max_offset()));
        }
    }

    /// Returns the local uncertainty limit of a read whose reader observed this node's clock
    /// at `observed`: the observation, raised to the floor of the current lease.
    fn local_uncertainty_limit(&self, observed: Timestamp) -> Timestamp {
        observed.max(self.lease.lock().unwrap_or_else(|p| p.into_inner()).1)
    }

    /// Records the batch's reads in the timestamp cache.
    pub(crate) fn record_reads(&self, batch: &BatchRequest, evaluated: &Evaluated) {
        let txn_id = batch.txn.as_ref().map(|t| t.meta.id);
        let mut cache = self.tscache.lock().unwrap_or_else(|p| p.into_inner());
        for request in &batch.requests {
            if request.reads_data() {
                cache.record(&request.span(), evaluated.read_ts, txn_id);
            } else if matches!(request, Request::Refresh { .. }) {
                cache.record(&request.span(), evaluated.write_ts, txn_id);
            }
        }
    }

    /// Returns the lowest timestamp the batch's writes may land at, per the timestamp cache.
    fn required_write_ts(&self, batch: &BatchRequest, txn_id: Option<u128>) -> Timestamp {
        let cache = self.tscache.lock().unwrap_or_else(|p| p.into_inner());
        batch
            .requests
            .iter()
            .filter(|r| r.writes_data())
            .map(|r| cache.required(&r.span(), txn_id))
            .max()
            .unwrap_or(Timestamp::ZERO)
    }

    /// Evaluates a batch under its latches.
    pub(crate) fn evaluate_batch(
        &self,
        batch: &BatchRequest,
        descriptor: &RangeDescriptor,
        effects: &mut Effects,
    ) -> Result<Evaluated, EvalError> {
        let now = self.clock.now();
        let dependents = |txn_id: u128| self.txn_wait.dependents(txn_id);
        let mut ctx = EvalContext {
            engine: &*self.engine,
            range_id: descriptor.range_id,
            span: descriptor.span(),
            read_ts: now,
            write_ts: now,
            reader: None,
            writer: None,
            txn: None,
            uncertainty_limit: None,
            local_uncertainty_limit: None,
            now,
            txn_expiry: shoal_api::txn::TXN_EXPIRY,
            one_phase: false,
            dependents: &dependents,
            scan_filters: &*self.config.scan_filters,
        };
        let Some(txn) = &batch.txn else {
            let ts = now.max(self.required_write_ts(batch, None)).max(resolution_ts(batch));
            ctx.read_ts = ts;
            ctx.write_ts = ts;
            // Values up to the maximum offset above this node's clock may have been committed
            // (and acknowledged) before this read arrived: the read moves above them.
            ctx.uncertainty_limit = Some(ts.add_duration(self.clock.max_offset()));
            // The request arrived now: what this node wrote later came after it was sent.
            ctx.local_uncertainty_limit = Some(self.local_uncertainty_limit(now));
            return self.evaluate_moving(ctx, batch, effects, None);
        };
        // Only a transaction that wrote (it has an anchor) can have had intents removed by a
        // pusher; the others skip the lookup.
        let data = batch.requests.iter().any(|r| r.reads_data() || r.writes_data());
        if data
            && !txn.meta.anchor.is_empty()
            && eval_txn::in_abort_span(&*self.engine, descriptor.range_id, txn.meta.id)?
        {
            return Err(EvalError::Kv(KvError::TxnRetry {
                reason: RetryReason::AbortedByPush,
                detail: format!(
                    "transaction {} was aborted and its writes here removed",
                    txn.short_id()
                ),
                txn: None,
            }));
        }
        ctx.txn = Some(txn);
        ctx.read_ts = txn.read_ts;
        ctx.write_ts = txn.meta.write_ts.max(self.required_write_ts(batch, Some(txn.meta.id)));
        ctx.reader = Some(&txn.meta);
        ctx.uncertainty_limit = Some(txn.uncertainty_limit);
        ctx.local_uncertainty_limit =
            txn.observed_on(self.config.node_id).map(|ts| self.local_uncertainty_limit(ts));
        if is_one_phase(batch, descriptor) {
            ctx.one_phase = true;
            if ctx.write_ts != txn.read_ts {
                return Err(pushed(txn, ctx.write_ts, RetryReason::Pushed));
            }
            return match self.evaluate_once(&ctx, batch, effects) {
                Err(EvalError::Storage(shoal_storage::Error::WriteTooOld {
                    existing_ts, ..
                })) => Err(pushed(txn, existing_ts.next(), RetryReason::WriteTooOld)),
                other => other.map(|(responses, writes)| Evaluated {
                    responses,
                    writes,
                    read_ts: txn.read_ts,
                    write_ts: txn.read_ts,
                    txn: Some(txn.clone()),
                }),
            };
        }
        self.evaluate_moving(ctx, batch, effects, Some(txn))
    }

    /// Evaluates at the context's timestamps, moving the write timestamp above newer committed
    /// versions (for a non-transactional batch, the read timestamp moves with it).
    fn evaluate_moving(
        &self,
        mut ctx: EvalContext<'_>,
        batch: &BatchRequest,
        effects: &mut Effects,
        txn: Option<&Transaction>,
    ) -> Result<Evaluated, EvalError> {
        let mut attempts = 0;
        loop {
            let meta = txn.map(|t| TxnMeta { write_ts: ctx.write_ts, ..t.meta.clone() });
            let writer = meta.as_ref();
            let attempt = EvalContext { writer, ..ctx.clone() };
            let mut attempt_effects = Effects::default();
            match self.evaluate_once(&attempt, batch, &mut attempt_effects) {
                Ok((responses, writes)) => {
                    *effects = attempt_effects;
                    let txn = txn.map(|t| {
                        let mut moved = t.clone();
                        moved.meta.write_ts = ctx.write_ts;
                        moved
                    });
                    return Ok(Evaluated {
                        responses,
                        writes,
                        read_ts: ctx.read_ts,
                        write_ts: ctx.write_ts,
                        txn,
                    });
                }
                // A locking read returned a value that is no longer the latest: moving only
                // the lock up would hand the transaction a stale value under a lock, and a
                // refresh failure at commit. It reads again above the version instead.
                Err(EvalError::Storage(shoal_storage::Error::WriteTooOld {
                    existing_ts, ..
                })) if txn.is_some() && batch.requests.iter().any(Request::is_locking_read) => {
                    let txn = txn.expect("checked");
                    let mut moved = txn.clone();
                    moved.meta.write_ts = moved.meta.write_ts.max(existing_ts.next());
                    return Err(EvalError::Kv(KvError::TxnRetry {
                        reason: RetryReason::WriteTooOld,
                        detail: format!(
                            "a locking read found a version at {existing_ts}, above {}",
                            txn.read_ts
                        ),
                        txn: Some(Box::new(moved)),
                    }));
                }
                Err(EvalError::Storage(shoal_storage::Error::WriteTooOld {
                    existing_ts, ..
                })) if attempts < MAX_WRITE_TOO_OLD_RETRIES => {
                    attempts += 1;
                    ctx.write_ts = existing_ts.next().max(ctx.write_ts);
                    if txn.is_none() {
                        // A non-transactional batch reads and writes at one timestamp.
                        ctx.read_ts = ctx.write_ts;
                        if let Err(e) = self.clock.update(ctx.write_ts) {
                            return Err(EvalError::Kv(KvError::Unavailable(format!(
                                "cannot write above {existing_ts}: {e}"
                            ))));
                        }
                    }
                }
                // A non-transactional read has no earlier reads to keep: it simply moves up.
                Err(EvalError::Storage(shoal_storage::Error::ReadWithinUncertaintyInterval {
                    value_ts,
                    ..
                })) if txn.is_none() && attempts < MAX_WRITE_TOO_OLD_RETRIES => {
                    attempts += 1;
                    ctx.read_ts = value_ts.max(ctx.read_ts);
                    ctx.write_ts = ctx.read_ts.max(ctx.write_ts);
                    // The value was committed somewhere at or below some node's clock.
                    let _ = self.clock.update(ctx.read_ts);
                }
                Err(EvalError::Storage(shoal_storage::Error::LockConflict { locks })) => {
                    let push_to = txn.and_then(timestamp_push);
                    return Err(EvalError::Kv(KvError::LockConflict { locks, push_to }));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn evaluate_once(
        &self,
        ctx: &EvalContext<'_>,
        batch: &BatchRequest,
        effects: &mut Effects,
    ) -> Result<(Vec<Response>, WriteBatch), EvalError> {
        let mut writes = WriteBatch::new();
        let responses = eval::evaluate(ctx, &batch.requests, &mut writes, effects)?;
        Ok((responses, writes))
    }
}

/// The highest commit timestamp a batch's intent resolutions write at: the batch's command
/// must raise replicas' clocks to it, so observed timestamps stay sound.
fn resolution_ts(batch: &BatchRequest) -> Timestamp {
    batch
        .requests
        .iter()
        .filter_map(|r| match r {
            Request::ResolveIntent { resolution, .. }
            | Request::ResolveIntentRange { resolution, .. }
                if resolution.status == TxnStatus::Committed =>
            {
                Some(resolution.txn.write_ts)
            }
            _ => None,
        })
        .max()
        .unwrap_or(Timestamp::ZERO)
}

fn pushed(txn: &Transaction, write_ts: Timestamp, reason: RetryReason) -> EvalError {
    let mut moved = txn.clone();
    moved.meta.write_ts = moved.meta.write_ts.max(write_ts);
    EvalError::Kv(KvError::TxnRetry {
        reason,
        detail: format!("the one-phase commit must move from {} to {write_ts}", txn.read_ts),
        txn: Some(Box::new(moved)),
    })
}
