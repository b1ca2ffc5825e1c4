//! Errors that cross the wire, classified by what the caller must do.
//!
//! | kind | caller's move | examples |
//! |---|---|---|
//! | [`ErrorKind::Route`] | update its range cache and retry elsewhere (never shown to SQL) | not leaseholder, range key mismatch |
//! | [`ErrorKind::Retry`] | retry the same request later | no leader yet, overloaded |
//! | [`ErrorKind::Ambiguous`] | tell the user the outcome is unknown | connection lost after proposing |
//! | [`ErrorKind::User`] | report it; retrying will not help | condition failed, bad input |
//! | [`ErrorKind::Internal`] | report a bug | corrupt data |

use serde::{Deserialize, Serialize};
use shoal_keys::Key;

use crate::{RangeDescriptor, ReplicaDescriptor, Value};

/// What the caller of a failed request must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Route the request elsewhere.
    Route,
    /// Retry later.
    Retry,
    /// The outcome is unknown.
    Ambiguous,
    /// The request itself is wrong or its condition does not hold.
    User,
    /// A bug or corruption.
    Internal,
}

/// A KV error as sent between nodes and to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum KvError {
    /// This replica does not hold the lease; `leaseholder` is the best guess of who does.
    #[error("replica is not the leaseholder of range {range_id}")]
    NotLeaseholder {
        /// The range.
        range_id: u64,
        /// The likely leaseholder.
        leaseholder: Option<ReplicaDescriptor>,
    },
    /// The keys are not (all) in the range the request was sent to.
    #[error("key {key} is not in range {range_id}")]
    RangeKeyMismatch {
        /// The range the request was sent to.
        range_id: u64,
        /// The first key outside it.
        key: Key,
        /// The range's current descriptor, if this node has the range.
        actual: Option<Box<RangeDescriptor>>,
    },
    /// This node has no replica of the range.
    #[error("range {0} not found on this node")]
    RangeNotFound(u64),
    /// A conditional put found a different value.
    #[error("condition failed: the current value is {}", fmt_value(.actual))]
    ConditionFailed {
        /// The value found.
        actual: Option<Value>,
    },
    /// The outcome of a write is unknown.
    #[error("ambiguous result: {0}")]
    Ambiguous(String),
    /// Nobody can serve the request right now (no leader, shutting down); retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request is invalid.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// A bug or corruption.
    #[error("internal error: {0}")]
    Internal(String),
}

fn fmt_value(value: &Option<Value>) -> String {
    match value {
        Some(v) => format!("{:?}", String::from_utf8_lossy(v)),
        None => "absent".to_string(),
    }
}

impl KvError {
    /// Classifies the error by what the caller must do.
    pub fn kind(&self) -> ErrorKind {
        match self {
            KvError::NotLeaseholder { .. }
            | KvError::RangeKeyMismatch { .. }
            | KvError::RangeNotFound(_) => ErrorKind::Route,
            KvError::Unavailable(_) => ErrorKind::Retry,
            KvError::Ambiguous(_) => ErrorKind::Ambiguous,
            KvError::ConditionFailed { .. } | KvError::InvalidArgument(_) => ErrorKind::User,
            KvError::Internal(_) => ErrorKind::Internal,
        }
    }
}
