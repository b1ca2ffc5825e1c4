//! Errors that cross the wire, classified by what the caller must do.
//!
//! | kind | caller's move | examples |
//! |---|---|---|
//! | [`ErrorKind::Route`] | update its range cache and retry elsewhere (never shown to SQL) | not leaseholder, range key mismatch |
//! | [`ErrorKind::Retry`] | retry the same request later | no leader yet, overloaded |
//! | [`ErrorKind::Conflict`] | push or wait for the lock's holder, then retry (inside the KV client) | lock conflict |
//! | [`ErrorKind::Restart`] | restart the transaction (SQLSTATE 40001) | write too old, uncertainty, aborted |
//! | [`ErrorKind::Ambiguous`] | tell the user the outcome is unknown | connection lost after proposing |
//! | [`ErrorKind::User`] | report it; retrying will not help | condition failed, bad input |
//! | [`ErrorKind::Internal`] | report a bug | corrupt data |

use serde::{Deserialize, Serialize};
use shoal_keys::Key;

use crate::txn::{RetryReason, Transaction, TxnMeta};
use crate::{RangeDescriptor, ReplicaDescriptor, Value};

/// What the caller of a failed request must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Route the request elsewhere.
    Route,
    /// Retry later.
    Retry,
    /// Resolve the conflicting locks (push their holders), then retry.
    Conflict,
    /// Restart the transaction (SQLSTATE 40001).
    Restart,
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
    /// The request met other transactions' locks (intents) and waited for them long enough;
    /// the sender must push their holders and resolve the intents, then retry.
    #[error("conflicting locks on {}", .locks.iter().map(|(k, t)| format!("{k} (txn {})", t.short_id())).collect::<Vec<_>>().join(", "))]
    LockConflict {
        /// The locked keys and their holders.
        locks: Vec<(Key, TxnMeta)>,
        /// For a reader with no uncertainty window left (its read timestamp is at or above
        /// its uncertainty limit): the timestamp whose push makes the holders' intents
        /// irrelevant to it. `None`: the request must wait for the holders to finish, since
        /// pushing them above an uncertainty limit would move their commits above every clock.
        push_to: Option<shoal_hlc::Timestamp>,
    },
    /// The transaction must restart; `txn`, if given, carries the timestamps to restart at.
    #[error("restart transaction: {reason}: {detail}")]
    TxnRetry {
        /// Why.
        reason: RetryReason,
        /// What happened, for people.
        detail: String,
        /// The transaction as the server left it (a pushed timestamp, say).
        txn: Option<Box<Transaction>>,
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
            KvError::LockConflict { .. } => ErrorKind::Conflict,
            KvError::TxnRetry { .. } => ErrorKind::Restart,
            KvError::Ambiguous(_) => ErrorKind::Ambiguous,
            KvError::ConditionFailed { .. } | KvError::InvalidArgument(_) => ErrorKind::User,
            KvError::Internal(_) => ErrorKind::Internal,
        }
    }
}
