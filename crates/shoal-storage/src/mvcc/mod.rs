//! Multi-version concurrency control over an [`Engine`](crate::Engine).
//!
//! Every write creates a new *version* of a key at an HLC timestamp instead of overwriting it;
//! a read at timestamp `ts` sees, for each key, the newest version at or below `ts`. Deletes
//! write *tombstones*. Old versions stay until garbage collection removes those no read at or
//! above the GC threshold can see.
//!
//! ```text
//!   time ▲
//!     12 │        b=2 (intent of t1)
//!     10 │  a=3         c=∅ (tombstone)
//!      5 │  a=1   b=1   c=7
//!        └──────────────────▶ keys
//!   read at 11  → a=3 b=1          (t1's intent at 12 is newer: ignored)
//!   read at 12  → conflict on b    (must push t1, or wait)
//!   read at 7   → a=1 b=1 c=7
//!   t1 reads    → a=3 b=2          (reads its own write)
//! ```
//!
//! # Intents are separated locks
//!
//! A pending transaction's provisional write is not a version: it is a *lock record* at
//! `/Local/Lock/<key>` holding the transaction's [`TxnMeta`] (id, anchor key of its record,
//! epoch, write timestamp, priority) and the provisional value (design §3). Readers check the
//! lock span of what they read. Resolving an intent either turns it into a version at the
//! commit timestamp, which may be *higher* than the intent's timestamp when the transaction
//! was pushed, or deletes it on abort.
//!
//! # Exclusive locks
//!
//! A locking read (`SELECT … FOR UPDATE`) leaves a lock record without a value on each key it
//! returns ([`acquire_lock`]): a promise that the transaction may write the key. Other
//! transactions' writes and locking reads wait for it as for an intent; plain reads see
//! through it. Committing removes it and writes nothing.
//!
//! ```text
//!   t1: locking read of a at 10 → a=3, lock a = t1 exclusive
//!   t2: read a at 12            → a=3 (the lock holds no value)
//!   t2: put a / locking read a  → conflict with t1
//!   t1: put a=4                 → the lock becomes t1's intent
//! ```
//!
//! # Rules
//!
//! - A read at `ts` meets another transaction's intent at or below `ts` (or at or below its
//!   uncertainty limit): [`LockConflict`](crate::Error::LockConflict). Newer intents are
//!   ignored.
//! - A transaction sees its own intent of the current epoch; intents of older epochs are
//!   ignored (they will be discarded at commit).
//! - Uncertainty: a read at `ts` with limit `l > ts` that finds a committed version in
//!   `(ts, l]` fails with
//!   [`ReadWithinUncertaintyInterval`](crate::Error::ReadWithinUncertaintyInterval) carrying
//!   the version's timestamp; the reader cannot tell whether that write happened before it
//!   started. Unless the version's *local timestamp* (the writing node's clock when it was
//!   written) is above the reader's *local limit* (its reading of this node's clock, taken
//!   after it started): then the write certainly came later, and the read ignores it. Intents
//!   in the window are judged the same way.
//!
//! ```text
//!   read at 10, limit 15, local limit 12 (this node's clock when first asked)
//!     a@14 local 14   ignored: written after the observation
//!     b@14 local 11   uncertain: written before, committed above the read
//!     c@16            ignored: above the limit
//! ```
//! - A write at `ts` that finds a committed version at `>= ts` fails with
//!   [`WriteTooOld`](crate::Error::WriteTooOld); one that finds another transaction's lock
//!   fails with [`LockConflict`](crate::Error::LockConflict).
//! - A read below the GC threshold fails with
//!   [`ReadBelowGcThreshold`](crate::Error::ReadBelowGcThreshold): versions it would need may
//!   be gone. The owner of the keyspace (a range) keeps the threshold and passes it in
//!   [`ReadOptions`].
//!
//! # Evaluation into batches
//!
//! Write operations read from a [`Reader`](crate::Reader) and append their effects to a
//! [`WriteBatch`](crate::WriteBatch) instead of writing, so a leaseholder can evaluate a
//! request into one batch and replicate it (proposer-evaluated commands, design §5). The caller
//! applies the batch atomically. Operations do not see earlier writes of the same unapplied
//! batch; callers serialize overlapping operations (latches).
//!
//! # Out of scope
//!
//! Transaction records, pushes and wait queues (`shoal-kvserver`); shared locks;
//! savepoints (intent history); MVCC statistics.
//!
//! # Hazards
//!
//! - The GC threshold must only rise, and must be raised (and persisted) before [`gc`] runs.
//! - Keys under `/Local/Lock` cannot be written through MVCC: they are the lock records.

pub mod key;
mod read;
mod value;
mod write;

#[cfg(test)]
mod tests;

use shoal_hlc::Timestamp;
use shoal_keys::{Key, Span};

pub use read::{RefreshConflict, get, refresh_conflict, scan, scan_filtered, scan_locks};
pub use value::{LockKind, LockRecord};
pub use write::{GcStats, Resolution, acquire_lock, delete, gc, put, resolve_intent};

/// The part of a transaction that intents record: who wrote, where its record lives, and at
/// which epoch and timestamp. The wire type, so locks travel to pushers unchanged.
pub use shoal_api::txn::TxnMeta;

/// A value read at a timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The value.
    pub value: Vec<u8>,
    /// The timestamp of the version (or of the reader's own intent).
    pub ts: Timestamp,
}

/// Options of MVCC reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    /// The reading transaction, if any: it sees its own intents.
    pub txn: Option<&'a TxnMeta>,
    /// The uncertainty limit; values in `(ts, limit]` make the read fail. None (or a limit at
    /// or below `ts`) disables the check.
    pub uncertainty_limit: Option<Timestamp>,
    /// The reader's observation of this node's clock (the *local limit*): a value in the
    /// window whose local timestamp is above it was written after the reader started, so it
    /// is not uncertain. None: every value in the window is.
    pub local_uncertainty_limit: Option<Timestamp>,
    /// Reads below this timestamp fail.
    pub gc_threshold: Timestamp,
    /// A locking read (`SELECT … FOR UPDATE`): like a write, it conflicts with another
    /// transaction's lock of any kind at any timestamp, where a plain read meets only intents
    /// at or below its timestamp (or in its uncertainty window).
    pub locking: bool,
}

/// Options of [`scan`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions<'a> {
    /// The read options.
    pub read: ReadOptions<'a>,
    /// Return at most this many rows, then a resume span.
    pub limit: Option<usize>,
    /// Scan from the end of the span backwards.
    pub reverse: bool,
}

/// The result of [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    /// The rows, in scan order.
    pub rows: Vec<(Key, Versioned)>,
    /// When the limit stopped the scan: the part of the span not yet scanned.
    pub resume: Option<Span>,
}
