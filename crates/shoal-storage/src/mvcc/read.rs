//! MVCC reads: point gets and bounded forward and reverse scans.
//!
//! A scan walks two sorted streams at once, the versions in `[start, end)` and the lock
//! records of the same span, visiting each user key that has either:
//!
//! ```text
//!   versions  a@10 a@5   b@5          d@3
//!   locks          │          c(t1)   │
//!   visit     a ───┴── b ──── c ──────┴─ d
//! ```
//!
//! Each visited key is resolved by [`read_key`]: the lock first (own intent, conflict, or
//! ignore), then the newest version at or below the read timestamp, checking the uncertainty
//! window on the way down. Conflicting locks are collected over the whole scan and returned
//! together, so the caller can push every blocker at once.

use std::collections::BTreeMap;

use shoal_hlc::Timestamp;
use shoal_keys::{Key, Span, layout};

use super::key::{decode, encode_prefix, encode_prefix_end, encode_versioned};
use super::value::{LockKind, LockRecord, decode_version};
use super::{ReadOptions, ScanOptions, ScanResult, TxnMeta, Versioned};
use crate::engine::{Cf, EngineIterator, IterOptions, Reader};
use crate::{Error, Result};

/// Reads `key` at `ts`.
pub fn get<R: Reader + ?Sized>(
    reader: &R,
    key: &[u8],
    ts: Timestamp,
    opts: ReadOptions<'_>,
) -> Result<Option<Versioned>> {
    check_read(ts, &opts)?;
    let lock = read_lock(reader, key)?;
    let mut iter = key_iter(reader, key)?;
    let mut conflicts = Vec::new();
    let found = read_key(iter.as_mut(), key, lock.as_ref(), ts, &opts, &mut conflicts)?;
    if !conflicts.is_empty() {
        return Err(Error::LockConflict { locks: conflicts });
    }
    Ok(found)
}

/// Scans `span` at `ts`, returning up to `opts.limit` live rows (tombstones are skipped).
pub fn scan<R: Reader + ?Sized>(
    reader: &R,
    span: &Span,
    ts: Timestamp,
    opts: ScanOptions<'_>,
) -> Result<ScanResult> {
    scan_filtered(reader, span, ts, opts, &mut |_, _| true)
}

/// Scans `span` at `ts` like [`scan`], returning only the live rows `keep` accepts: the limit
/// counts those, and the resume span starts after the last one returned. Rows left out are
/// still read (their intents conflict and their values are uncertain like any other's).
pub fn scan_filtered<R: Reader + ?Sized>(
    reader: &R,
    span: &Span,
    ts: Timestamp,
    opts: ScanOptions<'_>,
    keep: &mut dyn FnMut(&Key, &[u8]) -> bool,
) -> Result<ScanResult> {
    check_read(ts, &opts.read)?;
    let mut result = ScanResult { rows: Vec::new(), resume: None };
    if span.is_empty() {
        return Ok(result);
    }
    let locks: BTreeMap<Key, LockRecord> = scan_locks(reader, span)?.into_iter().collect();
    let mut iter = span_iter(reader, span)?;
    let mut conflicts = Vec::new();
    // Forward: keys in [cursor, span.end) remain. Reverse: keys in [span.start, cursor) remain.
    let mut cursor = if opts.reverse { span.end.clone() } else { span.start.clone() };
    loop {
        let next = if opts.reverse {
            let version_key = prev_version_key(iter.as_mut(), &cursor)?;
            let lock_key =
                locks.range(span.start.clone()..cursor.clone()).next_back().map(|(k, _)| k.clone());
            version_key.into_iter().chain(lock_key).max()
        } else {
            let version_key = next_version_key(iter.as_mut(), &cursor)?;
            let lock_key =
                locks.range(cursor.clone()..span.end.clone()).next().map(|(k, _)| k.clone());
            version_key.into_iter().chain(lock_key).min()
        };
        let Some(key) = next else { break };
        if opts.limit.is_some_and(|limit| result.rows.len() >= limit) {
            result.resume = Some(if opts.reverse {
                Span { start: span.start.clone(), end: key.next() }
            } else {
                Span { start: key, end: span.end.clone() }
            });
            break;
        }
        let lock = locks.get(&key);
        if let Some(found) =
            read_key(iter.as_mut(), key.as_bytes(), lock, ts, &opts.read, &mut conflicts)?
            && keep(&key, &found.value)
        {
            result.rows.push((key.clone(), found));
        }
        cursor = if opts.reverse { key } else { key.next() };
    }
    if !conflicts.is_empty() {
        return Err(Error::LockConflict { locks: conflicts });
    }
    Ok(result)
}

/// Returns every lock record on keys in `span`, in key order.
pub fn scan_locks<R: Reader + ?Sized>(reader: &R, span: &Span) -> Result<Vec<(Key, LockRecord)>> {
    let mut iter = span_iter(reader, &layout::lock_span(span))?;
    iter.seek_to_first();
    let mut out = Vec::new();
    while iter.valid()? {
        let (engine_key, ts) = decode(iter.key())?;
        let key = layout::decode_lock_key(&engine_key).ok_or_else(|| {
            Error::Corruption(format!("{} in the lock span", Key::new(engine_key.clone())))
        })?;
        if ts.is_some() {
            return Err(Error::Corruption(format!("versioned lock record for {}", Key::new(key))));
        }
        out.push((Key::new(key), LockRecord::decode(iter.value())?));
        iter.next();
    }
    Ok(out)
}

/// Returns an iterator over every entry of the user keys in `span`.
pub(crate) fn span_iter<'r, R: Reader + ?Sized>(
    reader: &'r R,
    span: &Span,
) -> Result<Box<dyn EngineIterator + 'r>> {
    let bounds = IterOptions::bounded(
        encode_prefix(span.start.as_bytes()),
        encode_prefix(span.end.as_bytes()),
    );
    reader.iter(Cf::Mvcc, bounds)
}

/// Returns an iterator over the entries of one user key, using the prefix bloom filter.
pub(crate) fn key_iter<'r, R: Reader + ?Sized>(
    reader: &'r R,
    key: &[u8],
) -> Result<Box<dyn EngineIterator + 'r>> {
    let bounds = IterOptions {
        lower: Some(encode_prefix(key)),
        upper: Some(encode_prefix_end(key)),
        prefix_same_as_start: true,
    };
    reader.iter(Cf::Mvcc, bounds)
}

/// Reads the lock record of `key`, if any.
pub(crate) fn read_lock<R: Reader + ?Sized>(reader: &R, key: &[u8]) -> Result<Option<LockRecord>> {
    let lock_key = encode_prefix(layout::lock_key(key).as_bytes());
    reader.get(Cf::Mvcc, &lock_key)?.map(|bytes| LockRecord::decode(&bytes)).transpose()
}

fn check_read(ts: Timestamp, opts: &ReadOptions<'_>) -> Result<()> {
    if ts < opts.gc_threshold {
        return Err(Error::ReadBelowGcThreshold { read_ts: ts, threshold: opts.gc_threshold });
    }
    Ok(())
}

/// Returns the first user key at or after `cursor` that has a version, if any.
fn next_version_key(iter: &mut dyn EngineIterator, cursor: &Key) -> Result<Option<Key>> {
    iter.seek(&encode_prefix(cursor.as_bytes()));
    while iter.valid()? {
        let (key, ts) = decode(iter.key())?;
        if ts.is_some() {
            return Ok(Some(Key::new(key)));
        }
        // An unversioned entry (a lock record when the span covers the lock keyspace): skip.
        iter.seek(&encode_prefix_end(&key));
    }
    Ok(None)
}

/// Returns the last user key before `cursor` that has a version, if any.
fn prev_version_key(iter: &mut dyn EngineIterator, cursor: &Key) -> Result<Option<Key>> {
    let target = encode_prefix(cursor.as_bytes());
    iter.seek_for_prev(&target);
    if iter.valid()? && iter.key() >= &target[..] {
        iter.prev();
    }
    while iter.valid()? {
        let (key, ts) = decode(iter.key())?;
        if ts.is_some() {
            return Ok(Some(Key::new(key)));
        }
        iter.prev();
    }
    Ok(None)
}

/// Resolves one key: its lock, then its versions. Conflicting locks are appended to
/// `conflicts` (and the key reads as absent); uncertainty fails at once.
pub(crate) fn read_key(
    iter: &mut dyn EngineIterator,
    key: &[u8],
    lock: Option<&LockRecord>,
    ts: Timestamp,
    opts: &ReadOptions<'_>,
    conflicts: &mut Vec<(Key, TxnMeta)>,
) -> Result<Option<Versioned>> {
    let limit = opts.uncertainty_limit.filter(|limit| *limit > ts).unwrap_or(ts);
    let local_limit = opts.local_uncertainty_limit.map_or(limit, |local| local.clamp(ts, limit));
    // A value in (ts, limit] is uncertain unless its write came after the observation.
    let uncertain = |local_ts: Timestamp| local_ts <= local_limit;
    if let Some(lock) = lock {
        match opts.txn {
            Some(txn) if txn.id == lock.txn.id => {
                if lock.txn.epoch == txn.epoch
                    && let LockKind::Intent(value) = &lock.kind
                {
                    return Ok(value
                        .clone()
                        .map(|value| Versioned { value, ts: lock.txn.write_ts }));
                }
                if lock.txn.epoch > txn.epoch {
                    return Err(Error::InvalidArgument(format!(
                        "txn {} at epoch {} read its intent on {} from the later epoch {}",
                        txn.short_id(),
                        txn.epoch,
                        Key::new(key),
                        lock.txn.epoch
                    )));
                }
                // Its own exclusive lock holds no value, and an intent of an earlier epoch is
                // discarded at commit: the versions below answer.
            }
            // Another transaction's lock: a locking read waits for any of them, like a write.
            _ if opts.locking => {
                conflicts.push((Key::new(key), lock.txn.clone()));
                return Ok(None);
            }
            // A plain read sees through an exclusive lock: it holds no value.
            _ if lock.kind == LockKind::Exclusive => {}
            _ if lock.txn.write_ts <= ts
                || (lock.txn.write_ts <= limit
                    && uncertain(lock.local_ts.min(lock.txn.write_ts))) =>
            {
                conflicts.push((Key::new(key), lock.txn.clone()));
                return Ok(None);
            }
            _ => {} // A newer intent of another transaction: invisible to this read.
        }
    }
    // Versions of `key` newer than `limit` sort before this seek target; the first entry
    // at or after it is the newest version at or below `limit`, if `key` has one.
    iter.seek(&encode_versioned(key, limit));
    loop {
        if !iter.valid()? {
            return Ok(None);
        }
        let (version_key, version_ts) = decode(iter.key())?;
        let Some(version_ts) = version_ts.filter(|_| version_key == key) else {
            return Ok(None);
        };
        let (value, local_ts) = decode_version(iter.value())?;
        if version_ts <= ts {
            return Ok(value.map(|value| Versioned { value, ts: version_ts }));
        }
        if uncertain(local_ts.unwrap_or(version_ts)) {
            return Err(Error::ReadWithinUncertaintyInterval {
                key: Key::new(key),
                read_ts: ts,
                value_ts: version_ts,
                uncertainty_limit: limit,
            });
        }
        // Written after the reader observed this node: look at the next older version.
        iter.next();
    }
}

/// Why a refresh failed: the first change found in the refreshed span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshConflict {
    /// A committed version in `(from, to]`.
    Version {
        /// The key.
        key: Key,
        /// The version's timestamp.
        ts: Timestamp,
    },
    /// Another transaction's intent at or below `to`: it may commit there.
    Intent {
        /// The key.
        key: Key,
        /// Its holder.
        txn: TxnMeta,
    },
}

/// Checks whether a read of `span` at `from` would see the same data at `to`: returns the
/// first committed version in `(from, to]` or intent of a transaction other than `txn_id` at
/// or below `to`, if any. The reader's own intents do not count, nor do exclusive locks: they
/// hold no write, and a write their holder makes later lands above the refreshed reads (the
/// refresh raised the timestamp cache).
pub fn refresh_conflict<R: Reader + ?Sized>(
    reader: &R,
    span: &Span,
    from: Timestamp,
    to: Timestamp,
    txn_id: Option<u128>,
) -> Result<Option<RefreshConflict>> {
    for (key, lock) in scan_locks(reader, span)? {
        if Some(lock.txn.id) != txn_id
            && lock.txn.write_ts <= to
            && matches!(lock.kind, LockKind::Intent(_))
        {
            return Ok(Some(RefreshConflict::Intent { key, txn: lock.txn }));
        }
    }
    if from >= to || span.is_empty() {
        return Ok(None);
    }
    let mut iter = span_iter(reader, span)?;
    iter.seek_to_first();
    while iter.valid()? {
        let (key, ts) = decode(iter.key())?;
        let Some(ts) = ts else {
            iter.seek(&encode_prefix_end(&key));
            continue;
        };
        if ts > to {
            // Newer than the window: jump to this key's versions at or below `to`.
            iter.seek(&encode_versioned(&key, to));
            continue;
        }
        if ts > from {
            return Ok(Some(RefreshConflict::Version { key: Key::new(key), ts }));
        }
        // At or below `from`: nothing newer of this key is in the window.
        iter.seek(&encode_prefix_end(&key));
    }
    Ok(None)
}
