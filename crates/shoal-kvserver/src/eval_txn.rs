//! Evaluation of requests on transaction records, of intent resolution and of refreshes.
//!
//! ```text
//!   record   absent ──HeartbeatTxn──▶ PENDING ──EndTxn(commit)──▶ COMMITTED
//!              │                        │   └──PushTxn(timestamp)──▶ PENDING, write_ts raised
//!              │                        └──PushTxn(abort) if expired, outranked or deadlocked
//!              └──PushTxn(abort)──────────────────────────────────────▶ ABORTED
//! ```
//!
//! # Invariants
//!
//! - A record never leaves COMMITTED or ABORTED; commit and abort are decided only here, on the
//!   record's leaseholder, under the record key's latch.
//! - A pusher that aborts a transaction without a record writes an ABORTED record, so the
//!   transaction's coordinator can never create the record (or commit) afterwards.
//! - A commit happens at the record's write timestamp only if the transaction read there: an
//!   `EndTxn` whose transaction was pushed above its read timestamp fails with a `Pushed`
//!   restart, and the coordinator refreshes its reads first.
//! - Intents aborted by someone other than their owner leave an abort span entry on their
//!   range: the owner's later requests there fail instead of reading around its lost writes.
//!
//! # Hazards
//!
//! Records are never garbage collected yet; each costs about 100 bytes on its range.

use shoal_api::txn::{
    IntentResolution, PushKind, RetryReason, Transaction, TxnMeta, TxnRecord, TxnStatus,
};
use shoal_api::{KvError, Request, Response};
use shoal_hlc::Timestamp;
use shoal_keys::{Key, Span, layout};
use shoal_storage::mvcc::{self, RefreshConflict, Resolution};
use shoal_storage::{Cf, Engine, Reader, WriteBatch};

use crate::eval::{Effects, EvalContext, EvalError};

/// Evaluates one transaction-record, resolution or refresh request.
pub fn evaluate(
    ctx: &EvalContext<'_>,
    request: &Request,
    batch: &mut WriteBatch,
    effects: &mut Effects,
) -> Result<Response, EvalError> {
    match request {
        Request::HeartbeatTxn { key } => heartbeat(ctx, key, batch, effects),
        Request::EndTxn { key, commit, lock_spans } => {
            end_txn(ctx, key, *commit, lock_spans, batch, effects)
        }
        Request::PushTxn { key, pushee, pusher, kind, push_to, dependents } => {
            let push = Push { pushee, pusher: pusher.as_ref(), kind: *kind, push_to: *push_to };
            push_txn(ctx, key, &push, dependents, batch, effects)
        }
        Request::QueryTxn { key, txn_id } => Ok(Response::QueryTxn {
            record: read_record(ctx.engine, key, *txn_id)?,
            waiting: (ctx.dependents)(*txn_id),
        }),
        Request::ResolveIntent { key, resolution } => {
            let resolved = resolve(ctx, key, resolution, batch)?;
            record_abort_span(ctx, resolution, batch);
            effects.resolved.push(Span::point(key.clone()));
            Ok(Response::ResolveIntent(resolved))
        }
        Request::ResolveIntentRange { span, resolution } => {
            let resolved = resolve_range(ctx, span, resolution, batch)?;
            record_abort_span(ctx, resolution, batch);
            effects.resolved.push(span.clone());
            Ok(Response::ResolveIntentRange(resolved))
        }
        Request::Refresh { span, from } => refresh(ctx, span, *from),
        _ => Err(EvalError::InvalidArgument(format!("{request:?} is not a transaction request"))),
    }
}

/// Reads the record of transaction `id` anchored at `anchor`.
pub fn read_record(
    reader: &dyn Engine,
    anchor: &Key,
    id: u128,
) -> Result<Option<TxnRecord>, EvalError> {
    let key = layout::txn_key(anchor.as_bytes(), id);
    match reader.get(Cf::Local, key.as_bytes())? {
        None => Ok(None),
        Some(bytes) => shoal_api::decode(&bytes)
            .map(Some)
            .map_err(|e| EvalError::Storage(shoal_storage::Error::Corruption(e.to_string()))),
    }
}

fn write_record(record: &TxnRecord, batch: &mut WriteBatch, effects: &mut Effects) {
    let key = layout::txn_key(record.meta.anchor.as_bytes(), record.meta.id);
    batch.put(Cf::Local, key.into_bytes(), shoal_api::encode(record));
    effects.records_changed.push(record.meta.id);
}

/// Returns true if the transaction was aborted on this range by someone else (its abort span
/// entry exists).
pub fn in_abort_span(
    reader: &dyn Reader,
    range_id: u64,
    txn_id: u128,
) -> Result<bool, shoal_storage::Error> {
    let key = layout::abort_span_key(range_id, txn_id);
    Ok(reader.get(Cf::Local, key.as_bytes())?.is_some())
}

fn txn_of<'a>(ctx: &EvalContext<'a>, what: &str) -> Result<&'a Transaction, EvalError> {
    ctx.txn.ok_or_else(|| EvalError::InvalidArgument(format!("{what} outside a transaction")))
}

fn heartbeat(
    ctx: &EvalContext<'_>,
    anchor: &Key,
    batch: &mut WriteBatch,
    effects: &mut Effects,
) -> Result<Response, EvalError> {
    let txn = txn_of(ctx, "HeartbeatTxn")?;
    let record = match read_record(ctx.engine, anchor, txn.meta.id)? {
        Some(record) if record.status == TxnStatus::Aborted => {
            return Err(EvalError::Kv(record.abort_error()));
        }
        Some(record) if record.status == TxnStatus::Committed => {
            return Ok(Response::HeartbeatTxn(record));
        }
        Some(mut record) => {
            record.last_heartbeat = record.last_heartbeat.max(ctx.now);
            record.meta.write_ts = record.meta.write_ts.max(txn.meta.write_ts);
            record.meta.epoch = record.meta.epoch.max(txn.meta.epoch);
            record
        }
        None => TxnRecord {
            meta: txn.meta.clone(),
            status: TxnStatus::Pending,
            last_heartbeat: ctx.now,
            abort_reason: None,
        },
    };
    write_record(&record, batch, effects);
    Ok(Response::HeartbeatTxn(record))
}

fn end_txn(
    ctx: &EvalContext<'_>,
    anchor: &Key,
    commit: bool,
    lock_spans: &[Span],
    batch: &mut WriteBatch,
    effects: &mut Effects,
) -> Result<Response, EvalError> {
    let txn = txn_of(ctx, "EndTxn")?;
    if ctx.one_phase {
        // The batch's writes were committed versions: there is no record and no intent.
        let record = TxnRecord {
            meta: TxnMeta { write_ts: ctx.write_ts, ..txn.meta.clone() },
            status: TxnStatus::Committed,
            last_heartbeat: ctx.now,
            abort_reason: None,
        };
        return Ok(Response::EndTxn(record));
    }
    let existing = read_record(ctx.engine, anchor, txn.meta.id)?;
    let mut record = match existing {
        Some(record) if record.status == TxnStatus::Committed => {
            if commit {
                // A retried commit (after an ambiguous result): it happened.
                return Ok(Response::EndTxn(record));
            }
            return Err(EvalError::InvalidArgument(format!(
                "transaction {} is committed and cannot be rolled back",
                txn.short_id()
            )));
        }
        Some(record) if record.status == TxnStatus::Aborted => {
            if commit {
                return Err(EvalError::Kv(record.abort_error()));
            }
            return Ok(Response::EndTxn(record));
        }
        Some(record) => record,
        None => TxnRecord {
            meta: txn.meta.clone(),
            status: TxnStatus::Pending,
            last_heartbeat: ctx.now,
            abort_reason: None,
        },
    };
    record.meta.epoch = record.meta.epoch.max(txn.meta.epoch);
    record.meta.write_ts = record.meta.write_ts.max(txn.meta.write_ts);
    if commit && record.meta.write_ts > txn.read_ts {
        // Pushed above its reads: the coordinator must refresh them up to here first.
        let mut moved = txn.clone();
        moved.meta.write_ts = record.meta.write_ts;
        return Err(EvalError::Kv(KvError::TxnRetry {
            reason: RetryReason::Pushed,
            detail: format!(
                "pushed to {} above its reads at {}",
                record.meta.write_ts, txn.read_ts
            ),
            txn: Some(Box::new(moved)),
        }));
    }
    record.status = if commit { TxnStatus::Committed } else { TxnStatus::Aborted };
    write_record(&record, batch, effects);
    // Resolve the intents on this range now, in the same command.
    let resolution =
        IntentResolution { txn: record.meta.clone(), status: record.status, poison: false };
    for span in lock_spans {
        let local = Span {
            start: span.start.clone().max(ctx.span.start.clone()),
            end: span.end.clone().min(ctx.span.end.clone()),
        };
        if local.is_empty() {
            continue;
        }
        resolve_range(ctx, &local, &resolution, batch)?;
        effects.resolved.push(local);
    }
    Ok(Response::EndTxn(record))
}

struct Push<'a> {
    pushee: &'a TxnMeta,
    pusher: Option<&'a TxnMeta>,
    kind: PushKind,
    push_to: Timestamp,
}

fn push_txn(
    ctx: &EvalContext<'_>,
    anchor: &Key,
    push: &Push<'_>,
    dependents: &[u128],
    batch: &mut WriteBatch,
    effects: &mut Effects,
) -> Result<Response, EvalError> {
    let pushee = push.pushee;
    let mut record = match read_record(ctx.engine, anchor, pushee.id)? {
        Some(record) => record,
        // Not written yet (or the coordinator died first): judge it by its intent.
        None => TxnRecord {
            meta: pushee.clone(),
            status: TxnStatus::Pending,
            last_heartbeat: pushee.write_ts,
            abort_reason: None,
        },
    };
    if record.status.is_final() {
        return Ok(Response::PushTxn { pushee: record, pushed: true });
    }
    match push.kind {
        PushKind::Timestamp => {
            if record.meta.write_ts > push.push_to {
                return Ok(Response::PushTxn { pushee: record, pushed: true });
            }
            record.meta.write_ts = push.push_to.next();
        }
        PushKind::Abort => {
            let expired = record.last_heartbeat.add_duration(ctx.txn_expiry) < ctx.now;
            let outranked = push.pusher.is_some_and(|p| p.priority > record.meta.priority);
            let deadlock = push.pusher.is_some_and(|p| {
                dependents.contains(&record.meta.id)
                    && (p.priority, p.id) > (record.meta.priority, record.meta.id)
            });
            if !(expired || outranked || deadlock) {
                effects.push_blocked = Some(pushee.id);
                return Ok(Response::PushTxn { pushee: record, pushed: false });
            }
            tracing::debug!(
                pushee = pushee.short_id(),
                expired,
                outranked,
                deadlock,
                "aborting a transaction"
            );
            record.status = TxnStatus::Aborted;
            record.abort_reason = Some(if deadlock && !expired && !outranked {
                RetryReason::Deadlock
            } else {
                RetryReason::AbortedByPush
            });
        }
    }
    write_record(&record, batch, effects);
    Ok(Response::PushTxn { pushee: record, pushed: true })
}

fn resolution_of(resolution: &IntentResolution) -> Resolution {
    match resolution.status {
        TxnStatus::Committed => {
            Resolution::Commit { commit_ts: resolution.txn.write_ts, epoch: resolution.txn.epoch }
        }
        TxnStatus::Aborted => Resolution::Abort,
        TxnStatus::Pending => Resolution::Pending { write_ts: resolution.txn.write_ts },
    }
}

fn resolve(
    ctx: &EvalContext<'_>,
    key: &Key,
    resolution: &IntentResolution,
    batch: &mut WriteBatch,
) -> Result<bool, EvalError> {
    Ok(mvcc::resolve_intent(
        ctx.engine,
        batch,
        key.as_bytes(),
        resolution.txn.id,
        resolution_of(resolution),
    )?)
}

fn resolve_range(
    ctx: &EvalContext<'_>,
    span: &Span,
    resolution: &IntentResolution,
    batch: &mut WriteBatch,
) -> Result<u64, EvalError> {
    let mut resolved = 0;
    for (key, lock) in mvcc::scan_locks(ctx.engine, span)? {
        if lock.txn.id == resolution.txn.id && resolve(ctx, &key, resolution, batch)? {
            resolved += 1;
        }
    }
    Ok(resolved)
}

fn record_abort_span(ctx: &EvalContext<'_>, resolution: &IntentResolution, batch: &mut WriteBatch) {
    if resolution.poison && resolution.status == TxnStatus::Aborted {
        let key = layout::abort_span_key(ctx.range_id, resolution.txn.id);
        batch.put(Cf::Local, key.into_bytes(), Vec::new());
    }
}

fn refresh(ctx: &EvalContext<'_>, span: &Span, from: Timestamp) -> Result<Response, EvalError> {
    let txn = txn_of(ctx, "Refresh")?;
    let to = ctx.write_ts;
    match mvcc::refresh_conflict(ctx.engine, span, from, to, Some(txn.meta.id))? {
        None => Ok(Response::Refresh),
        Some(conflict) => {
            let detail = match conflict {
                RefreshConflict::Version { key, ts } => {
                    format!("{key} was written at {ts}, after the read at {from}")
                }
                RefreshConflict::Intent { key, txn } => {
                    format!(
                        "{key} has an intent of transaction {} at {}",
                        txn.short_id(),
                        txn.write_ts
                    )
                }
            };
            Err(EvalError::Kv(KvError::TxnRetry {
                reason: RetryReason::RefreshFailed,
                detail,
                txn: None,
            }))
        }
    }
}
