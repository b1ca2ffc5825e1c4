//! KV requests and responses, sent in batches to one range's leaseholder.
//!
//! ```text
//!   BatchRequest { range_id, requests: [Get a, Put b=1, Scan [c, f) limit 10] }
//!   BatchResponse { responses: [Get(Some(..)), Put, Scan { rows, resume }], timestamp }
//! ```
//!
//! Requests of one batch are evaluated in order as one unit at one timestamp, and their writes
//! are replicated together in one Raft entry.

use serde::{Deserialize, Serialize};
use shoal_hlc::Timestamp;
use shoal_keys::{Key, Span};

use crate::txn::{IntentResolution, ObservedTimestamp, PushKind, Transaction, TxnMeta, TxnRecord};

/// A byte string value.
pub type Value = Vec<u8>;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Reads a key.
    Get {
        /// The key.
        key: Key,
    },
    /// Writes a key.
    Put {
        /// The key.
        key: Key,
        /// The value.
        #[serde(with = "serde_bytes")]
        value: Value,
    },
    /// Writes a key if its current value is `expected` (`None`: the key must not exist).
    ConditionalPut {
        /// The key.
        key: Key,
        /// The new value.
        #[serde(with = "serde_bytes")]
        value: Value,
        /// The value the key must hold now.
        expected: Option<Value>,
    },
    /// Deletes a key.
    Delete {
        /// The key.
        key: Key,
    },
    /// Deletes every key in a span.
    DeleteRange {
        /// The span.
        span: Span,
    },
    /// Reads a span in key order.
    Scan {
        /// The span.
        span: Span,
        /// The most rows to return (none: all); with a filter, the most rows it keeps.
        limit: Option<u64>,
        /// Rows the range may leave out ([`crate::scan_filter`]).
        filter: Option<crate::scan_filter::ScanFilter>,
    },
    /// Reads a span in reverse key order.
    ReverseScan {
        /// The span.
        span: Span,
        /// The most rows to return (none: all).
        limit: Option<u64>,
    },
    /// Reads a key like [`Request::Get`] and, if it holds a value, takes an exclusive lock on
    /// it for the batch's transaction (`SELECT … FOR UPDATE`): no other transaction may write
    /// or lock the key until this one ends; plain reads are not blocked. Transactional only.
    LockingGet {
        /// The key.
        key: Key,
    },
    /// Reads a span like [`Request::Scan`] and locks every row it returns, as
    /// [`Request::LockingGet`] does. Transactional only.
    LockingScan {
        /// The span.
        span: Span,
        /// The most rows to return (none: all).
        limit: Option<u64>,
    },
    /// Adds `delta` to the key's value, read as a decimal `i64` (absent: 0).
    Increment {
        /// The key.
        key: Key,
        /// The amount.
        delta: i64,
    },
    /// Creates or refreshes the record of the batch's transaction, anchored at `key`: its
    /// coordinator is alive. Fails with an abort error if the record is aborted.
    HeartbeatTxn {
        /// The transaction's anchor.
        key: Key,
    },
    /// Commits or aborts the batch's transaction at its record, anchored at `key`. Intents in
    /// `lock_spans` that fall in this range are resolved in the same command; the coordinator
    /// resolves the others afterwards. A commit whose every lock span falls in this range and
    /// whose transaction has no record commits in one proposal (the 1PC fast path).
    EndTxn {
        /// The transaction's anchor.
        key: Key,
        /// Commit, or abort.
        commit: bool,
        /// Every span the transaction wrote intents in.
        lock_spans: Vec<Span>,
    },
    /// Pushes the transaction `pushee`, whose record is anchored at `key`, because a request
    /// met its lock (see [`PushKind`]).
    PushTxn {
        /// The pushee's anchor.
        key: Key,
        /// The transaction pushed, as its intent describes it.
        pushee: TxnMeta,
        /// The transaction pushing, if the pusher is one.
        pusher: Option<TxnMeta>,
        /// What the pusher wants.
        kind: PushKind,
        /// For timestamp pushes: the pushee's write timestamp must end above this.
        push_to: Timestamp,
        /// Transactions waiting, directly or not, for the pusher: if the pushee is one of
        /// them, the two are deadlocked.
        dependents: Vec<u128>,
    },
    /// Reads the record of transaction `txn_id` anchored at `key`, and who waits for it.
    QueryTxn {
        /// The anchor.
        key: Key,
        /// The transaction.
        txn_id: u128,
    },
    /// Resolves the intent on `key` of the resolution's transaction, if there is one.
    ResolveIntent {
        /// The key.
        key: Key,
        /// How.
        resolution: IntentResolution,
    },
    /// Resolves every intent in `span` of the resolution's transaction.
    ResolveIntentRange {
        /// The span.
        span: Span,
        /// How.
        resolution: IntentResolution,
    },
    /// Checks that nothing in `span` was written above `from` and at or below the batch's
    /// transaction's write timestamp by anyone else, and records the span as read there.
    Refresh {
        /// The span read earlier.
        span: Span,
        /// The timestamp it was read at.
        from: Timestamp,
    },
    /// Splits the range holding `key` into `[start, key)` and `[key, end)`; the right-hand
    /// range takes id `new_range_id`. Must be the only request of its batch.
    AdminSplit {
        /// The first key of the right-hand range.
        key: Key,
        /// The right-hand range's id (allocated by the caller, never reused).
        new_range_id: u64,
    },
}

impl Request {
    /// Returns true if the request writes (or may write: a push or a heartbeat).
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Request::Get { .. }
                | Request::Scan { .. }
                | Request::ReverseScan { .. }
                | Request::QueryTxn { .. }
                | Request::Refresh { .. }
        )
    }

    /// Returns true if the request writes user data (in a transaction, an intent) or locks
    /// it: either leaves lock records its transaction must resolve.
    pub fn writes_data(&self) -> bool {
        matches!(
            self,
            Request::Put { .. }
                | Request::LockingGet { .. }
                | Request::LockingScan { .. }
                | Request::ConditionalPut { .. }
                | Request::Delete { .. }
                | Request::DeleteRange { .. }
                | Request::Increment { .. }
        )
    }

    /// Returns true if the request reads user data and locks what it returns.
    pub fn is_locking_read(&self) -> bool {
        matches!(self, Request::LockingGet { .. } | Request::LockingScan { .. })
    }

    /// Returns true if the request reads user data at the batch's read timestamp.
    pub fn reads_data(&self) -> bool {
        matches!(
            self,
            Request::Get { .. }
                | Request::Scan { .. }
                | Request::ReverseScan { .. }
                | Request::LockingGet { .. }
                | Request::LockingScan { .. }
                | Request::ConditionalPut { .. }
                | Request::DeleteRange { .. }
                | Request::Increment { .. }
        )
    }

    /// Returns true if the request covers a span rather than a key (it is sent range by range
    /// and latches its whole range).
    pub fn is_ranged(&self) -> bool {
        matches!(
            self,
            Request::Scan { .. }
                | Request::ReverseScan { .. }
                | Request::LockingScan { .. }
                | Request::DeleteRange { .. }
                | Request::ResolveIntentRange { .. }
                | Request::Refresh { .. }
        )
    }

    /// Returns true if the request acts on a transaction record.
    pub fn is_txn_record_op(&self) -> bool {
        matches!(
            self,
            Request::HeartbeatTxn { .. }
                | Request::EndTxn { .. }
                | Request::PushTxn { .. }
                | Request::QueryTxn { .. }
        )
    }

    /// Returns the keys the request touches.
    pub fn span(&self) -> Span {
        match self {
            Request::Get { key }
            | Request::LockingGet { key }
            | Request::Put { key, .. }
            | Request::ConditionalPut { key, .. }
            | Request::Delete { key }
            | Request::Increment { key, .. }
            | Request::HeartbeatTxn { key }
            | Request::EndTxn { key, .. }
            | Request::PushTxn { key, .. }
            | Request::QueryTxn { key, .. }
            | Request::ResolveIntent { key, .. }
            | Request::AdminSplit { key, .. } => Span::point(key.clone()),
            Request::DeleteRange { span }
            | Request::Scan { span, .. }
            | Request::ReverseScan { span, .. }
            | Request::LockingScan { span, .. }
            | Request::ResolveIntentRange { span, .. }
            | Request::Refresh { span, .. } => span.clone(),
        }
    }
}

/// One response, matching its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The value read, if any.
    Get(Option<Value>),
    /// The put was written.
    Put,
    /// The conditional put was written.
    ConditionalPut,
    /// The delete was written.
    Delete,
    /// How many keys were deleted.
    DeleteRange(u64),
    /// The rows read and, if the limit stopped the scan, the span still to read.
    Scan {
        /// The rows, in scan order.
        rows: Vec<(Key, Value)>,
        /// The span not yet scanned.
        resume: Option<Span>,
    },
    /// The new value.
    Increment(i64),
    /// The record after the heartbeat.
    HeartbeatTxn(TxnRecord),
    /// The final record.
    EndTxn(TxnRecord),
    /// The pushee's record after the push; `pushed` says whether the push got what it wanted.
    PushTxn {
        /// The record (synthesized from the intent if there is none yet).
        pushee: TxnRecord,
        /// True if the pushee is now final or its write timestamp is above `push_to`.
        pushed: bool,
    },
    /// The record, if any, and the transactions waiting for it.
    QueryTxn {
        /// The record.
        record: Option<TxnRecord>,
        /// Transactions waiting for this one, directly or not.
        waiting: Vec<u128>,
    },
    /// Whether an intent was resolved.
    ResolveIntent(bool),
    /// How many intents were resolved.
    ResolveIntentRange(u64),
    /// The span did not change.
    Refresh,
    /// The two ranges after a split.
    AdminSplit {
        /// The left-hand range (the old range, shortened).
        lhs: crate::RangeDescriptor,
        /// The new right-hand range.
        rhs: crate::RangeDescriptor,
    },
}

/// A batch of requests for one range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// The range the sender believes holds every key of the batch.
    pub range_id: u64,
    /// The requests, evaluated in order.
    pub requests: Vec<Request>,
    /// The transaction the batch belongs to, if any.
    pub txn: Option<Transaction>,
}

impl BatchRequest {
    /// Returns a non-transactional batch.
    pub fn new(range_id: u64, requests: Vec<Request>) -> Self {
        BatchRequest { range_id, requests, txn: None }
    }
}

/// The answer to a [`BatchRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// One response per request.
    pub responses: Vec<Response>,
    /// The timestamp the batch was evaluated at.
    pub timestamp: Timestamp,
    /// The batch's transaction as the range left it (its write timestamp may have moved up).
    pub txn: Option<Transaction>,
    /// The serving node's clock reading, for the transaction's observed timestamps.
    pub observed: Option<ObservedTimestamp>,
}
