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
        /// The most rows to return (none: all).
        limit: Option<u64>,
    },
    /// Reads a span in reverse key order.
    ReverseScan {
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
    /// Returns true if the request writes.
    pub fn is_write(&self) -> bool {
        !matches!(self, Request::Get { .. } | Request::Scan { .. } | Request::ReverseScan { .. })
    }

    /// Returns the keys the request touches.
    pub fn span(&self) -> Span {
        match self {
            Request::Get { key }
            | Request::Put { key, .. }
            | Request::ConditionalPut { key, .. }
            | Request::Delete { key }
            | Request::Increment { key, .. }
            | Request::AdminSplit { key, .. } => Span::point(key.clone()),
            Request::DeleteRange { span }
            | Request::Scan { span, .. }
            | Request::ReverseScan { span, .. } => span.clone(),
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
}

/// The answer to a [`BatchRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// One response per request.
    pub responses: Vec<Response>,
    /// The timestamp the batch was evaluated at.
    pub timestamp: Timestamp,
}
