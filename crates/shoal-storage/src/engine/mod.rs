//! The storage engine seam: an ordered byte-key store with atomic write batches.
//!
//! An [`Engine`] is a small set of fixed keyspaces ([`Cf`], column families in RocksDB), each
//! an ordered map from byte keys to byte values. Everything above it (MVCC, the Raft log,
//! range-local state) is built from three capabilities:
//!
//! - point reads ([`Reader::get`]);
//! - bounded, seekable iterators in either direction ([`Reader::iter`], [`EngineIterator`]);
//! - atomic [`WriteBatch`]es of puts, deletes and range deletes ([`Engine::write`]).
//!
//! ```text
//!              ┌──────────── Engine ────────────┐
//!   WriteBatch │ Cf::Mvcc   versions and locks   │  all ops of one batch become visible
//!   ─────────▶ │ Cf::Local  range-local state    │  together, or none does; with
//!              │ Cf::Raft   raft logs and votes  │  `sync` they are on disk on return
//!              └─────────────────────────────────┘
//! ```
//!
//! Two implementations pass one conformance suite (`engine::conformance`): [`RocksEngine`],
//! used by every server, the shell, the demo and the benchmarks, and [`MemoryEngine`], for
//! deterministic simulation and fast unit tests.
//!
//! # Invariants
//!
//! - A write batch is atomic: a reader sees all of it or none of it, also after a crash.
//! - An iterator reads a consistent snapshot taken when it was created; writes made later are
//!   not visible through it.
//! - Iterators never yield keys outside `[lower, upper)` of their [`IterOptions`].
//!
//! # Out of scope
//!
//! Snapshots that outlive an iterator, SST ingestion and the group-commit log writer come with
//! replication (`shoal-raft`).
//!
//! # Hazards
//!
//! Engine calls block (RocksDB may stall on compaction); async callers must run them off the
//! async worker threads.

mod batch_codec;
mod memory;
mod rocks;

#[cfg(test)]
mod conformance;

pub use memory::MemoryEngine;
pub use rocks::{RocksEngine, STORE_FORMAT_VERSION, STORE_MARKER_FILE};

use crate::Result;

/// A fixed keyspace of an engine (a RocksDB column family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// MVCC versions and lock records of user and system keys.
    Mvcc,
    /// Unversioned range-local state (applied state, descriptors, leases).
    Local,
    /// Raft logs and hard state of every range on the store.
    Raft,
}

impl Cf {
    /// Every column family, in a fixed order.
    pub const ALL: [Cf; 3] = [Cf::Mvcc, Cf::Local, Cf::Raft];

    /// The column family's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Mvcc => "mvcc",
            Cf::Local => "local",
            Cf::Raft => "raft",
        }
    }
}

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Sets `key` to `value`.
    Put {
        /// Column family.
        cf: Cf,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Removes `key`.
    Delete {
        /// Column family.
        cf: Cf,
        /// Key.
        key: Vec<u8>,
    },
    /// Removes every key in `[start, end)`.
    DeleteRange {
        /// Column family.
        cf: Cf,
        /// First key removed.
        start: Vec<u8>,
        /// First key kept after the range.
        end: Vec<u8>,
    },
}

/// An ordered list of writes applied atomically by [`Engine::write`]. Later operations on the
/// same key win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
    bytes: usize,
}

impl WriteBatch {
    /// Returns an empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        let (key, value) = (key.into(), value.into());
        self.bytes += key.len() + value.len();
        self.ops.push(BatchOp::Put { cf, key, value });
    }

    /// Adds a delete.
    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        let key = key.into();
        self.bytes += key.len();
        self.ops.push(BatchOp::Delete { cf, key });
    }

    /// Adds a range delete of `[start, end)`.
    pub fn delete_range(&mut self, cf: Cf, start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) {
        let (start, end) = (start.into(), end.into());
        self.bytes += start.len() + end.len();
        self.ops.push(BatchOp::DeleteRange { cf, start, end });
    }

    /// Returns the operations in order.
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// Returns the number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Returns true if the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Returns the total size of the keys and values in the batch.
    pub fn size_bytes(&self) -> usize {
        self.bytes
    }

    /// Appends every operation of `other`.
    pub fn extend(&mut self, other: WriteBatch) {
        self.bytes += other.bytes;
        self.ops.extend(other.ops);
    }
}

/// Options of [`Engine::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// Makes the batch durable (WAL fsync) before `write` returns. Without it, a crash may lose
    /// the batch (never part of it). Every caller chooses deliberately: see the call sites.
    pub sync: bool,
}

impl WriteOptions {
    /// Durable before return.
    pub const SYNC: WriteOptions = WriteOptions { sync: true };
    /// Visible before return, durable with a later sync or flush.
    pub const NO_SYNC: WriteOptions = WriteOptions { sync: false };
}

/// Options of [`Reader::iter`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IterOptions {
    /// Inclusive lower bound; none means the start of the column family.
    pub lower: Option<Vec<u8>>,
    /// Exclusive upper bound; none means the end of the column family.
    pub upper: Option<Vec<u8>>,
    /// Promises that every seek stays within one MVCC key prefix (one user key), letting the
    /// RocksDB engine use its prefix bloom filter. Results are the same either way as long as
    /// the bounds also stay within the prefix.
    pub prefix_same_as_start: bool,
}

impl IterOptions {
    /// Iterates `[lower, upper)`.
    pub fn bounded(lower: impl Into<Vec<u8>>, upper: impl Into<Vec<u8>>) -> Self {
        IterOptions { lower: Some(lower.into()), upper: Some(upper.into()), ..Self::default() }
    }
}

/// A seekable iterator over one column family, positioned on an entry or invalid.
///
/// After any positioning call, check [`EngineIterator::valid`] before reading the entry.
pub trait EngineIterator {
    /// Positions on the first entry with key `>= key`.
    fn seek(&mut self, key: &[u8]);
    /// Positions on the last entry with key `<= key`.
    fn seek_for_prev(&mut self, key: &[u8]);
    /// Positions on the first entry.
    fn seek_to_first(&mut self);
    /// Positions on the last entry.
    fn seek_to_last(&mut self);
    /// Moves to the next entry. The iterator must be valid.
    fn next(&mut self);
    /// Moves to the previous entry. The iterator must be valid.
    fn prev(&mut self);
    /// Returns true if positioned on an entry, or an error if the engine failed.
    fn valid(&self) -> Result<bool>;
    /// Returns the current key. The iterator must be valid.
    fn key(&self) -> &[u8];
    /// Returns the current value. The iterator must be valid.
    fn value(&self) -> &[u8];
}

/// Read access to an engine or a snapshot of it.
pub trait Reader {
    /// Returns the value of `key`, if any.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Returns an iterator over a consistent snapshot of `cf`, initially unpositioned.
    fn iter(&self, cf: Cf, opts: IterOptions) -> Result<Box<dyn EngineIterator + '_>>;
}

/// A storage engine: a [`Reader`] that also applies atomic write batches.
pub trait Engine: Reader + Send + Sync {
    /// Applies `batch` atomically.
    fn write(&self, batch: &WriteBatch, opts: WriteOptions) -> Result<()>;
    /// Makes every write applied so far durable (WAL fsync).
    fn sync_wal(&self) -> Result<()>;
}

/// Collects `[lower, upper)` of `cf` in order; a test and debugging helper.
pub fn scan_all<R: Reader + ?Sized>(
    reader: &R,
    cf: Cf,
    opts: IterOptions,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut iter = reader.iter(cf, opts)?;
    iter.seek_to_first();
    let mut out = Vec::new();
    while iter.valid()? {
        out.push((iter.key().to_vec(), iter.value().to_vec()));
        iter.next();
    }
    Ok(out)
}
