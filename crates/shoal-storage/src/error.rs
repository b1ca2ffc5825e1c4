//! Errors of the storage crate.
//!
//! One flat enum. The MVCC variants carry what the caller needs to act: the conflicting locks
//! to push, the timestamp to retry at, the threshold a read fell below.

use std::path::PathBuf;

use shoal_hlc::Timestamp;
use shoal_keys::Key;

use crate::mvcc::TxnMeta;

/// A storage error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The directory is not a Shoal store.
    #[error("{path} is not a Shoal store: {reason}")]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The store was written in a format this build cannot read.
    #[error(
        "store {path} has format version {found}, but this build of Shoal supports only version \
         {supported}"
    )]
    UnsupportedFormat {
        /// The directory.
        path: PathBuf,
        /// The version found in the marker.
        found: u32,
        /// The version this build supports.
        supported: u32,
    },
    /// A file system operation failed.
    #[error("I/O error on {path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        message: String,
    },
    /// The engine (RocksDB) failed.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// Stored bytes could not be decoded: a bug or corruption.
    #[error("corrupt data: {0}")]
    Corruption(String),
    /// The request itself is invalid.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// The operation met locks (intents) of other transactions that it must not ignore. The
    /// caller must resolve or push them, then retry.
    #[error("conflicting locks on {}", .locks.iter().map(|(k, t)| format!("{} (txn {})", k, t.short_id())).collect::<Vec<_>>().join(", "))]
    LockConflict {
        /// The locked keys and the transactions holding them.
        locks: Vec<(Key, TxnMeta)>,
    },
    /// A write at `write_ts` found a committed version at `existing_ts >= write_ts`. The
    /// writer must retry above `existing_ts`.
    #[error("write at {write_ts} too old: {key} has a committed version at {existing_ts}")]
    WriteTooOld {
        /// The key written.
        key: Key,
        /// The timestamp of the refused write.
        write_ts: Timestamp,
        /// The newest committed version's timestamp.
        existing_ts: Timestamp,
    },
    /// A read at `read_ts` found a committed value at `value_ts` inside its uncertainty window
    /// `(read_ts, uncertainty_limit]`: the value may have been written before the read began
    /// in real time. The reader must retry at `value_ts` or later.
    #[error(
        "read at {read_ts} is uncertain: {key} has a value at {value_ts}, within the uncertainty \
         limit {uncertainty_limit}"
    )]
    ReadWithinUncertaintyInterval {
        /// The key read.
        key: Key,
        /// The read timestamp.
        read_ts: Timestamp,
        /// The uncertain value's timestamp.
        value_ts: Timestamp,
        /// The read's uncertainty limit.
        uncertainty_limit: Timestamp,
    },
    /// A read below the GC threshold, where versions may already be gone.
    #[error("read at {read_ts} is below the GC threshold {threshold}")]
    ReadBelowGcThreshold {
        /// The read timestamp.
        read_ts: Timestamp,
        /// The GC threshold.
        threshold: Timestamp,
    },
}

/// The storage crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
