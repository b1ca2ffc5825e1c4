//! Evaluation of KV requests against the engine at one timestamp, producing responses and the
//! writes to replicate.
//!
//! Evaluation reads the leaseholder's engine (after a lease read, so it reflects everything
//! committed) and never writes: writes go into a [`WriteBatch`] that is proposed to Raft. The
//! requests of one batch see the engine as of the batch's start, not each other's writes, so a
//! batch whose write overlaps another of its requests is refused before evaluation.

use shoal_api::{KvError, Request, Response};
use shoal_hlc::Timestamp;
use shoal_keys::Key;
use shoal_storage::mvcc::{self, ReadOptions, ScanOptions};
use shoal_storage::{Engine, WriteBatch};

/// Refuses a batch in which a write overlaps another request.
pub fn check_no_overlapping_writes(requests: &[Request]) -> Result<(), KvError> {
    for (i, a) in requests.iter().enumerate() {
        for b in &requests[i + 1..] {
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

/// Evaluates `requests` at `ts`, appending writes to `batch`.
pub fn evaluate(
    engine: &dyn Engine,
    requests: &[Request],
    ts: Timestamp,
    batch: &mut WriteBatch,
) -> Result<Vec<Response>, EvalError> {
    requests.iter().map(|request| evaluate_one(engine, request, ts, batch)).collect()
}

fn read(engine: &dyn Engine, key: &Key, ts: Timestamp) -> Result<Option<Vec<u8>>, EvalError> {
    Ok(mvcc::get(engine, key.as_bytes(), ts, ReadOptions::default())?.map(|v| v.value))
}

fn evaluate_one(
    engine: &dyn Engine,
    request: &Request,
    ts: Timestamp,
    batch: &mut WriteBatch,
) -> Result<Response, EvalError> {
    Ok(match request {
        Request::Get { key } => Response::Get(read(engine, key, ts)?),
        Request::Put { key, value } => {
            mvcc::put(engine, batch, key.as_bytes(), ts, Some(value), None)?;
            Response::Put
        }
        Request::ConditionalPut { key, value, expected } => {
            let actual = read(engine, key, ts)?;
            if actual != *expected {
                return Err(EvalError::ConditionFailed(actual));
            }
            mvcc::put(engine, batch, key.as_bytes(), ts, Some(value), None)?;
            Response::ConditionalPut
        }
        Request::Delete { key } => {
            mvcc::delete(engine, batch, key.as_bytes(), ts, None)?;
            Response::Delete
        }
        Request::DeleteRange { span } => {
            let live = mvcc::scan(engine, span, ts, ScanOptions::default())?;
            for (key, _) in &live.rows {
                mvcc::delete(engine, batch, key.as_bytes(), ts, None)?;
            }
            Response::DeleteRange(live.rows.len() as u64)
        }
        Request::Scan { span, limit } | Request::ReverseScan { span, limit } => {
            let reverse = matches!(request, Request::ReverseScan { .. });
            let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
            let opts = ScanOptions { limit, reverse, ..ScanOptions::default() };
            let result = mvcc::scan(engine, span, ts, opts)?;
            let rows = result.rows.into_iter().map(|(k, v)| (k, v.value)).collect();
            Response::Scan { rows, resume: result.resume }
        }
        Request::Increment { key, delta } => {
            let current = match read(engine, key, ts)? {
                None => 0,
                Some(bytes) => parse_counter(key, &bytes)?,
            };
            let next = current.checked_add(*delta).ok_or_else(|| {
                EvalError::InvalidArgument(format!("incrementing {key} by {delta} overflows"))
            })?;
            mvcc::put(engine, batch, key.as_bytes(), ts, Some(next.to_string().as_bytes()), None)?;
            Response::Increment(next)
        }
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
    /// The storage layer refused (e.g. write too old) or failed.
    Storage(shoal_storage::Error),
    /// A conditional put found another value.
    ConditionFailed(Option<Vec<u8>>),
    /// The request cannot be evaluated (e.g. incrementing a non-integer).
    InvalidArgument(String),
}

impl From<shoal_storage::Error> for EvalError {
    fn from(e: shoal_storage::Error) -> Self {
        EvalError::Storage(e)
    }
}

impl From<EvalError> for KvError {
    fn from(e: EvalError) -> Self {
        use shoal_storage::Error as S;
        match e {
            EvalError::ConditionFailed(actual) => KvError::ConditionFailed { actual },
            EvalError::InvalidArgument(msg) => KvError::InvalidArgument(msg),
            EvalError::Storage(e @ (S::InvalidArgument(_) | S::ReadBelowGcThreshold { .. })) => {
                KvError::InvalidArgument(e.to_string())
            }
            EvalError::Storage(e) => KvError::Internal(e.to_string()),
        }
    }
}
