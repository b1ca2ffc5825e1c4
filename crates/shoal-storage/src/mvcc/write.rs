//! MVCC writes, intent resolution and garbage collection.
//!
//! Every function here reads through a [`Reader`] and appends its effects to a [`WriteBatch`];
//! none writes to the engine itself (see "Evaluation into batches" in the module docs).

use shoal_hlc::Timestamp;
use shoal_keys::{Key, Span, layout};

use super::TxnMeta;
use super::key::{decode, encode_prefix, encode_prefix_end, encode_versioned};
use super::read::{key_iter, read_lock, span_iter};
use super::value::{LockKind, LockRecord, decode_value, encode_version};
use crate::engine::{Cf, Reader, WriteBatch};
use crate::{Error, Result};

/// Writes `value` to `key` at `ts` (`None` writes a tombstone). `local_ts` is the writing
/// node's clock reading now (see "Local timestamps" in the value encoding): uncertainty checks
/// compare it with readers' observations of that clock.
///
/// Without a transaction, the version is committed at once. With one, `ts` must equal
/// `txn.write_ts` and the write becomes the transaction's intent, replacing any earlier intent
/// of the same transaction on the key. Returns the timestamp written at: `ts`, or the
/// transaction's existing intent's timestamp if a push moved that higher (an intent never
/// moves down, or readers that pushed it would conflict again).
pub fn put<R: Reader + ?Sized>(
    reader: &R,
    batch: &mut WriteBatch,
    key: &[u8],
    ts: Timestamp,
    local_ts: Timestamp,
    value: Option<&[u8]>,
    txn: Option<&TxnMeta>,
) -> Result<Timestamp> {
    if key.starts_with(layout::LOCAL_LOCK_PREFIX) {
        return Err(Error::InvalidArgument(format!("{} is a lock record key", Key::new(key))));
    }
    if ts.is_zero() {
        return Err(Error::InvalidArgument(format!(
            "write to {} at the zero timestamp",
            Key::new(key)
        )));
    }
    if let Some(txn) = txn
        && txn.write_ts != ts
    {
        return Err(Error::InvalidArgument(format!(
            "write at {ts} by txn {} whose write timestamp is {}",
            txn.short_id(),
            txn.write_ts
        )));
    }

    let mut write_ts = ts;
    if let Some(lock) = read_lock(reader, key)? {
        match txn {
            Some(txn) if txn.id == lock.txn.id => {
                write_ts = write_ts.max(lock.txn.write_ts);
                if lock.txn.epoch > txn.epoch {
                    return Err(Error::InvalidArgument(format!(
                        "txn {} at epoch {} wrote {} over its intent from the later epoch {}",
                        txn.short_id(),
                        txn.epoch,
                        Key::new(key),
                        lock.txn.epoch
                    )));
                }
            }
            _ => return Err(Error::LockConflict { locks: vec![(Key::new(key), lock.txn)] }),
        }
    }

    if let Some(existing_ts) = newest_version_ts(reader, key)?
        && existing_ts >= write_ts
    {
        return Err(Error::WriteTooOld { key: Key::new(key), write_ts, existing_ts });
    }

    match txn {
        None => batch.put(
            Cf::Mvcc,
            encode_versioned(key, write_ts),
            encode_version(value, write_ts, local_ts),
        ),
        Some(txn) => {
            let mut meta = txn.clone();
            meta.write_ts = write_ts;
            let kind = LockKind::Intent(value.map(<[u8]>::to_vec));
            let record = LockRecord { txn: meta, local_ts, kind };
            batch.put(Cf::Mvcc, encode_prefix(layout::lock_key(key).as_bytes()), record.encode());
        }
    }
    Ok(write_ts)
}

/// Takes an exclusive lock on `key` for `txn`, at its write timestamp: what a locking read
/// leaves on each key it returns (see "Exclusive locks" in the module docs). The caller has
/// read the key at `txn`'s read timestamp with [`ReadOptions::locking`](super::ReadOptions).
///
/// - Another transaction's lock: [`LockConflict`](Error::LockConflict).
/// - The transaction's own intent of this epoch is stronger: kept as it is. An exclusive lock
///   or an intent of an earlier epoch (discarded at commit anyway) becomes this epoch's
///   exclusive lock, never at a lower timestamp.
/// - A committed version above the write timestamp:
///   [`WriteTooOld`](Error::WriteTooOld), as for a write: the transaction read a value
///   that is no longer the latest, and holding a lock on it would promise a write that can
///   only land above that version. It must move its timestamp up and read again.
pub fn acquire_lock<R: Reader + ?Sized>(
    reader: &R,
    batch: &mut WriteBatch,
    key: &[u8],
    txn: &TxnMeta,
    local_ts: Timestamp,
) -> Result<()> {
    if key.starts_with(layout::LOCAL_LOCK_PREFIX) {
        return Err(Error::InvalidArgument(format!("{} is a lock record key", Key::new(key))));
    }
    let mut write_ts = txn.write_ts;
    if let Some(lock) = read_lock(reader, key)? {
        if lock.txn.id != txn.id {
            return Err(Error::LockConflict { locks: vec![(Key::new(key), lock.txn)] });
        }
        if lock.txn.epoch > txn.epoch {
            return Err(Error::InvalidArgument(format!(
                "txn {} at epoch {} locked {} over its lock from the later epoch {}",
                txn.short_id(),
                txn.epoch,
                Key::new(key),
                lock.txn.epoch
            )));
        }
        if lock.txn.epoch == txn.epoch && matches!(lock.kind, LockKind::Intent(_)) {
            return Ok(());
        }
        write_ts = write_ts.max(lock.txn.write_ts);
    }
    if let Some(existing_ts) = newest_version_ts(reader, key)?
        && existing_ts > write_ts
    {
        return Err(Error::WriteTooOld { key: Key::new(key), write_ts, existing_ts });
    }
    let mut meta = txn.clone();
    meta.write_ts = write_ts;
    let record = LockRecord { txn: meta, local_ts, kind: LockKind::Exclusive };
    batch.put(Cf::Mvcc, encode_prefix(layout::lock_key(key).as_bytes()), record.encode());
    Ok(())
}

/// Deletes `key` at `ts`: [`put`] of a tombstone.
pub fn delete<R: Reader + ?Sized>(
    reader: &R,
    batch: &mut WriteBatch,
    key: &[u8],
    ts: Timestamp,
    local_ts: Timestamp,
    txn: Option<&TxnMeta>,
) -> Result<Timestamp> {
    put(reader, batch, key, ts, local_ts, None, txn)
}

/// How a transaction ended, for [`resolve_intent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Committed at `commit_ts` in `epoch`. Intents of earlier epochs are discarded.
    Commit {
        /// The commit timestamp; at or above every intent's timestamp of this epoch.
        commit_ts: Timestamp,
        /// The epoch that committed.
        epoch: u32,
    },
    /// Still pending, but pushed to `write_ts`: the intent moves up to it (never down), so
    /// readers below `write_ts` no longer conflict with it.
    Pending {
        /// The pushed write timestamp.
        write_ts: Timestamp,
    },
    /// Aborted: every intent is discarded.
    Abort,
}

/// Resolves the intent of transaction `txn_id` on `key`. A committed version keeps the
/// intent's local timestamp: a commit above the intent's clock reading must still look, to
/// readers that observed that clock after the intent was written, like a write from before
/// their observation. Returns false (and does nothing) if
/// the key holds no intent of that transaction, so resolution is idempotent.
pub fn resolve_intent<R: Reader + ?Sized>(
    reader: &R,
    batch: &mut WriteBatch,
    key: &[u8],
    txn_id: u128,
    resolution: Resolution,
) -> Result<bool> {
    let Some(lock) = read_lock(reader, key)?.filter(|lock| lock.txn.id == txn_id) else {
        return Ok(false);
    };
    let lock_key = encode_prefix(layout::lock_key(key).as_bytes());
    if let Resolution::Pending { write_ts } = resolution {
        if write_ts > lock.txn.write_ts {
            let mut moved = lock;
            moved.txn.write_ts = write_ts;
            batch.put(Cf::Mvcc, lock_key, moved.encode());
        }
        return Ok(true);
    }
    if let Resolution::Commit { commit_ts, epoch } = resolution {
        if lock.txn.epoch > epoch {
            return Err(Error::InvalidArgument(format!(
                "commit of txn {} at epoch {epoch} found its intent on {} from the later epoch {}",
                lock.txn.short_id(),
                Key::new(key),
                lock.txn.epoch
            )));
        }
        if lock.txn.epoch == epoch {
            if commit_ts < lock.txn.write_ts {
                return Err(Error::InvalidArgument(format!(
                    "commit of txn {} at {commit_ts}, below its intent on {} at {}",
                    lock.txn.short_id(),
                    Key::new(key),
                    lock.txn.write_ts
                )));
            }
            // An exclusive lock wrote nothing: it just goes.
            if let Some(value) = lock.provisional() {
                batch.put(
                    Cf::Mvcc,
                    encode_versioned(key, commit_ts),
                    encode_version(value, commit_ts, lock.local_ts),
                );
            }
        }
    }
    batch.delete(Cf::Mvcc, lock_key);
    Ok(true)
}

/// What [`gc`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Versions (values and tombstones) removed.
    pub versions_removed: usize,
}

/// Removes the versions in `span` that no read at or above `threshold` can see: for each key,
/// every version older than the newest one at or below `threshold`, and that one too if it is
/// a tombstone. Intents are untouched.
pub fn gc<R: Reader + ?Sized>(
    reader: &R,
    batch: &mut WriteBatch,
    span: &Span,
    threshold: Timestamp,
) -> Result<GcStats> {
    let mut stats = GcStats::default();
    let mut iter = span_iter(reader, span)?;
    iter.seek_to_first();
    // The user key whose visible-at-threshold version was found already.
    let mut covered: Option<Vec<u8>> = None;
    while iter.valid()? {
        let (key, ts) = decode(iter.key())?;
        let Some(ts) = ts else {
            iter.seek(&encode_prefix_end(&key));
            continue;
        };
        if ts <= threshold {
            if covered.as_deref() == Some(&key[..]) {
                batch.delete(Cf::Mvcc, iter.key().to_vec());
                stats.versions_removed += 1;
            } else {
                if decode_value(iter.value())?.is_none() {
                    batch.delete(Cf::Mvcc, iter.key().to_vec());
                    stats.versions_removed += 1;
                }
                covered = Some(key);
            }
        }
        iter.next();
    }
    Ok(stats)
}

fn newest_version_ts<R: Reader + ?Sized>(reader: &R, key: &[u8]) -> Result<Option<Timestamp>> {
    let mut iter = key_iter(reader, key)?;
    iter.seek(&encode_prefix(key));
    while iter.valid()? {
        if let (_, Some(ts)) = decode(iter.key())? {
            return Ok(Some(ts));
        }
        iter.next();
    }
    Ok(None)
}
