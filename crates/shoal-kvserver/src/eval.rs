//! Evaluation of KV requests against the engine, producing responses and the writes to
//! replicate.
//!
//! Evaluation reads the leaseholder's engine (after a lease read, so it reflects everything
//! committed) and never writes: writes go into a [`WriteBatch`] that is proposed to Raft. The
//! requests of one batch see the engine as of the batch's start, not each other's writes, so a
//! batch whose write overlaps another of its requests is refused before evaluation.
//!
//! ```text
//!   non-transactional   reads and writes at one timestamp; writes are committed versions
//!   transactional       reads at read_ts (own intents visible, uncertainty checked),
//!                       writes become intents at write_ts
//!   one phase (1PC)     a transaction's whole write set and its EndTxn in one batch:
//!                       writes are committed versions at write_ts, no record, no intents
//! ```
//!
//! Requests on transaction records (heartbeat, end, push, query), intent resolution and
//! refresh are in [`crate::eval_txn`].

use shoal_api::scan_filter::ScanFilters;
use shoal_api::txn::{RetryReason, Transaction, TxnMeta};
use shoal_api::{KvError, Request, Response};
use shoal_hlc::Timestamp;
use shoal_keys::{Key, Span};
use shoal_storage::mvcc::{self, ReadOptions, ScanOptions};
use shoal_storage::{Engine, WriteBatch};

use crate::eval_txn;

/// Refuses a batch in which a write overlaps another request. Requests on transaction records
/// are addressed by their anchor key but do not touch it: a commit may share its batch with
/// writes to its anchor (the one-phase commit).
pub fn check_no_overlapping_writes(requests: &[Request]) -> Result<(), KvError> {
    for (i, a) in requests.iter().enumerate() {
        for b in &requests[i + 1..] {
            if a.is_txn_record_op() || b.is_txn_record_op() {
                continue;
            }
            if (a.is_write() || b.is_write()) && a.span().overlaps(&b.span()) {
                return Err(KvError::InvalidArgument(format!(
                    "requests on {} and {} in one batch overlap and one writes; send them in separate batches",
                    a.span(),
                    b.span()
                )));
            }
        }
    }
    Ok(())
}

/// What evaluation needs besides the requests.
#[derive(Clone)]
pub struct EvalContext<'a> {
    /// The leaseholder's engine.
    pub engine: &'a dyn Engine,
    /// The range.
    pub range_id: u64,
    /// The range's span (intent resolution at commit covers only this part of lock spans).
    pub span: Span,
    /// Reads see data as of this timestamp.
    pub read_ts: Timestamp,
    /// Writes land at this timestamp.
    pub write_ts: Timestamp,
    /// The reading transaction: sees its own intents, checks uncertainty.
    pub reader: Option<&'a TxnMeta>,
    /// The writing transaction: writes become its intents. `None` writes committed versions.
    pub writer: Option<&'a TxnMeta>,
    /// The batch's whole transaction, for record requests.
    pub txn: Option<&'a Transaction>,
    /// The uncertainty limit of reads.
    pub uncertainty_limit: Option<Timestamp>,
    /// The reader's observation of this node's clock, raised to the lease's floor: values
    /// written here with a later clock reading are not uncertain.
    pub local_uncertainty_limit: Option<Timestamp>,
    /// The leaseholder's clock, for heartbeats and expiry, and the local timestamp of writes.
    pub now: Timestamp,
    /// How long a record may go without a heartbeat before anyone may abort it.
    pub txn_expiry: std::time::Duration,
    /// Set when the batch commits in one phase: `EndTxn` writes no record.
    pub one_phase: bool,
    /// Transactions waiting for the one a `QueryTxn` names.
    pub dependents: &'a dyn Fn(u128) -> Vec<u128>,
    /// Compiles the filters of scans.
    pub scan_filters: &'a dyn ScanFilters,
}

/// What a batch did besides its responses, acted on after it applied.
#[derive(Debug, Default)]
pub struct Effects {
    /// Spans whose intents were resolved: their lock table waiters wake.
    pub resolved: Vec<Span>,
    /// Transactions whose records changed: their pushers wake.
    pub records_changed: Vec<u128>,
    /// A push that must wait for this transaction's record to change.
    pub push_blocked: Option<u128>,
    /// Rows that scans' pushed filters left out.
    pub rows_filtered: u64,
    /// Rows that scans returned.
    pub rows_scanned: u64,
}

/// Evaluates `requests`, appending writes to `batch`.
pub fn evaluate(
    ctx: &EvalContext<'_>,
    requests: &[Request],
    batch: &mut WriteBatch,
    effects: &mut Effects,
) -> Result<Vec<Response>, EvalError> {
    requests.iter().map(|request| evaluate_one(ctx, request, batch, effects)).collect()
}

fn read_options<'a>(ctx: &EvalContext<'a>) -> ReadOptions<'a> {
    ReadOptions {
        txn: ctx.reader,
        uncertainty_limit: ctx.uncertainty_limit,
        local_uncertainty_limit: ctx.local_uncertainty_limit,
        gc_threshold: Timestamp::ZERO,
        locking: false,
    }
}

/// Reads `key` and locks it if it holds a value ([`Request::LockingGet`]).
fn locking_get(
    ctx: &EvalContext<'_>,
    batch: &mut WriteBatch,
    key: &Key,
) -> Result<Option<Vec<u8>>, EvalError> {
    let opts = ReadOptions { locking: true, ..read_options(ctx) };
    let found = mvcc::get(ctx.engine, key.as_bytes(), ctx.read_ts, opts)?;
    if found.is_some() {
        lock(ctx, batch, key)?;
    }
    Ok(found.map(|v| v.value))
}

/// Locks `key` for the batch's transaction. A transaction committing in this very batch (one
/// phase) needs no lock: nothing runs between its read and its commit.
fn lock(ctx: &EvalContext<'_>, batch: &mut WriteBatch, key: &Key) -> Result<(), EvalError> {
    match ctx.writer {
        Some(txn) => Ok(mvcc::acquire_lock(ctx.engine, batch, key.as_bytes(), txn, ctx.now)?),
        None if ctx.one_phase => Ok(()),
        None => Err(EvalError::InvalidArgument("a locking read needs a transaction".into())),
    }
}

fn read(ctx: &EvalContext<'_>, key: &Key) -> Result<Option<Vec<u8>>, EvalError> {
    Ok(mvcc::get(ctx.engine, key.as_bytes(), ctx.read_ts, read_options(ctx))?.map(|v| v.value))
}

fn write(
    ctx: &EvalContext<'_>,
    batch: &mut WriteBatch,
    key: &Key,
    value: Option<&[u8]>,
) -> Result<(), EvalError> {
    mvcc::put(ctx.engine, batch, key.as_bytes(), ctx.write_ts, ctx.now, value, ctx.writer)?;
    Ok(())
}

fn evaluate_one(
    ctx: &EvalContext<'_>,
    request: &Request,
    batch: &mut WriteBatch,
    effects: &mut Effects,
) -> Result<Response, EvalError> {
    Ok(match request {
        Request::Get { key } => Response::Get(read(ctx, key)?),
        Request::LockingGet { key } => Response::Get(locking_get(ctx, batch, key)?),
        Request::LockingScan { span, limit } => {
            let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
            let read = ReadOptions { locking: true, ..read_options(ctx) };
            let opts = ScanOptions { limit, reverse: false, read };
            let result = mvcc::scan(ctx.engine, span, ctx.read_ts, opts)?;
            for (key, _) in &result.rows {
                lock(ctx, batch, key)?;
            }
            effects.rows_scanned += result.rows.len() as u64;
            let rows = result.rows.into_iter().map(|(k, v)| (k, v.value)).collect();
            Response::Scan { rows, resume: result.resume }
        }
        Request::Put { key, value } => {
            write(ctx, batch, key, Some(value))?;
            Response::Put
        }
        Request::ConditionalPut { key, value, expected } => {
            let actual = read(ctx, key)?;
            if actual != *expected {
                return Err(EvalError::ConditionFailed(actual));
            }
            write(ctx, batch, key, Some(value))?;
            Response::ConditionalPut
        }
        Request::Delete { key } => {
            write(ctx, batch, key, None)?;
            Response::Delete
        }
        Request::DeleteRange { span } => {
            let opts = ScanOptions { read: read_options(ctx), ..ScanOptions::default() };
            let live = mvcc::scan(ctx.engine, span, ctx.read_ts, opts)?;
            for (key, _) in &live.rows {
                write(ctx, batch, key, None)?;
            }
            Response::DeleteRange(live.rows.len() as u64)
        }
        Request::Scan { span, limit, filter: _ } | Request::ReverseScan { span, limit } => {
            let reverse = matches!(request, Request::ReverseScan { .. });
            let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
            let opts = ScanOptions { limit, reverse, read: read_options(ctx) };
            // A filter this node cannot compile keeps every row: the reader filters anyway.
            let predicate = match request {
                Request::Scan { filter: Some(filter), .. } => ctx.scan_filters.compile(filter),
                _ => None,
            };
            let result = match predicate {
                Some(mut keep) => {
                    let mut counted = |key: &Key, value: &[u8]| {
                        let kept = keep(key, value);
                        effects.rows_filtered += u64::from(!kept);
                        kept
                    };
                    mvcc::scan_filtered(ctx.engine, span, ctx.read_ts, opts, &mut counted)?
                }
                None => mvcc::scan(ctx.engine, span, ctx.read_ts, opts)?,
            };
            effects.rows_scanned += result.rows.len() as u64;
            let rows = result.rows.into_iter().map(|(k, v)| (k, v.value)).collect();
            Response::Scan { rows, resume: result.resume }
        }
        Request::Increment { key, delta } => {
            let current = match read(ctx, key)? {
                None => 0,
                Some(bytes) => parse_counter(key, &bytes)?,
            };
            let next = current.checked_add(*delta).ok_or_else(|| {
                EvalError::InvalidArgument(format!("incrementing {key} by {delta} overflows"))
            })?;
            write(ctx, batch, key, Some(next.to_string().as_bytes()))?;
            Response::Increment(next)
        }
        Request::HeartbeatTxn { .. }
        | Request::EndTxn { .. }
        | Request::PushTxn { .. }
        | Request::QueryTxn { .. }
        | Request::ResolveIntent { .. }
        | Request::ResolveIntentRange { .. }
        | Request::Refresh { .. } => eval_txn::evaluate(ctx, request, batch, effects)?,
        Request::AdminSplit { .. } => {
            return Err(EvalError::InvalidArgument("a split must be alone in its batch".into()));
        }
    })
}

fn parse_counter(key: &Key, bytes: &[u8]) -> Result<i64, EvalError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| EvalError::InvalidArgument(format!("the value of {key} is not an integer")))
}

/// Why evaluation failed.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    /// The storage layer refused (e.g. write too old, a lock conflict) or failed.
    Storage(shoal_storage::Error),
    /// A conditional put found another value.
    ConditionFailed(Option<Vec<u8>>),
    /// The request cannot be evaluated (e.g. incrementing a non-integer).
    InvalidArgument(String),
    /// A transaction-level failure, already in wire form (restart, abort).
    Kv(KvError),
}

impl From<shoal_storage::Error> for EvalError {
    fn from(e: shoal_storage::Error) -> Self {
        EvalError::Storage(e)
    }
}

impl From<KvError> for EvalError {
    fn from(e: KvError) -> Self {
        EvalError::Kv(e)
    }
}

impl EvalError {
    /// Converts to the wire error; `txn` is the batch's transaction, for restart errors.
    pub fn into_kv(self, txn: Option<&Transaction>) -> KvError {
        use shoal_storage::Error as S;
        match self {
            EvalError::ConditionFailed(actual) => KvError::ConditionFailed { actual },
            EvalError::InvalidArgument(msg) => KvError::InvalidArgument(msg),
            EvalError::Kv(e) => e,
            EvalError::Storage(S::LockConflict { locks }) => {
                let push_to = txn.and_then(crate::replica_eval::timestamp_push);
                KvError::LockConflict { locks, push_to }
            }
            EvalError::Storage(S::ReadWithinUncertaintyInterval { key, value_ts, .. })
                if txn.is_some() =>
            {
                // Restart the read at the uncertain value: it is then certainly visible.
                let mut moved = txn.cloned().map(Box::new);
                if let Some(txn) = moved.as_mut() {
                    txn.read_ts = txn.read_ts.max(value_ts);
                    txn.meta.write_ts = txn.meta.write_ts.max(value_ts);
                }
                KvError::TxnRetry {
                    reason: RetryReason::Uncertainty,
                    detail: format!(
                        "{key} has a value at {value_ts} within the uncertainty interval"
                    ),
                    txn: moved,
                }
            }
            EvalError::Storage(e @ (S::InvalidArgument(_) | S::ReadBelowGcThreshold { .. })) => {
                KvError::InvalidArgument(e.to_string())
            }
            EvalError::Storage(e) => KvError::Internal(e.to_string()),
        }
    }
}

impl From<EvalError> for KvError {
    fn from(e: EvalError) -> Self {
        e.into_kv(None)
    }
}
