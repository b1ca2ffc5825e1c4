//! Encodings of stored MVCC values and lock records.
//!
//! ```text
//!   version value   00                      tombstone
//!                   01 <bytes>              value
//!                   02 <local ts:12> 00 | 01 <bytes>
//!                                           either, written when the writing node's clock
//!                                           was below the version's timestamp
//!   lock record     02                      format version (01: no local timestamp)
//!                   <txn id:16> <epoch:4> <write ts:12> <local ts:12> <priority:4>
//!                   <anchor len:4> <anchor>
//!                   00 | 01 <bytes>         intent: provisional tombstone | provisional value
//!                   | 03                    exclusive lock of a locking read: no value
//! ```
//!
//! # Local timestamps
//!
//! A version's *local timestamp* is the clock reading of the node that evaluated the write
//! (for a committed intent: when the intent was last written). It is at most the version's
//! timestamp, and stored only when below it, which happens when the write's timestamp was
//! pushed above the clock or an intent committed above where it was written. Uncertainty
//! checks use it: a value whose local timestamp is above a reader's observation of that
//! node's clock was written after the reader started, whatever its timestamp says.
//!
//! Decoders reject anything else with [`Error::Corruption`]; they never panic on bad bytes.

use shoal_hlc::Timestamp;
use shoal_keys::Key;

use super::TxnMeta;
use crate::bytes::ByteReader;
use crate::{Error, Result};

const TOMBSTONE: u8 = 0x00;
const VALUE: u8 = 0x01;
const WITH_LOCAL_TS: u8 = 0x02;
const LOCK_FORMAT_V1: u8 = 0x01;
const LOCK_FORMAT_V2: u8 = 0x02;
/// The tail of a lock record that holds no provisional value (not a version header).
const EXCLUSIVE_ONLY: u8 = 0x03;

/// Encodes a committed version's value (`None` is a tombstone).
pub(crate) fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![TOMBSTONE],
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(VALUE);
            out.extend_from_slice(v);
            out
        }
    }
}

/// Encodes a committed version at `ts` written when the writing node's clock read
/// `local_ts`; the local timestamp is kept only when below `ts`.
pub(crate) fn encode_version(value: Option<&[u8]>, ts: Timestamp, local_ts: Timestamp) -> Vec<u8> {
    if local_ts >= ts {
        return encode_value(value);
    }
    let plain = encode_value(value);
    let mut out = Vec::with_capacity(1 + 12 + plain.len());
    out.push(WITH_LOCAL_TS);
    out.extend_from_slice(&local_ts.encode());
    out.extend_from_slice(&plain);
    out
}

/// Decodes [`encode_value`]'s or [`encode_version`]'s output, dropping the local timestamp.
pub(crate) fn decode_value(bytes: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(decode_version(bytes)?.0)
}

/// Decodes a version: its value and its local timestamp, if one was stored.
pub(crate) fn decode_version(bytes: &[u8]) -> Result<(Option<Vec<u8>>, Option<Timestamp>)> {
    match bytes.split_first() {
        Some((&TOMBSTONE, [])) => Ok((None, None)),
        Some((&VALUE, rest)) => Ok((Some(rest.to_vec()), None)),
        Some((&WITH_LOCAL_TS, rest)) if rest.len() >= 12 => {
            let (local, plain) = rest.split_at(12);
            let local = Timestamp::decode(local)
                .map_err(|e| Error::Corruption(format!("local timestamp: {e}")))?;
            match plain.split_first() {
                Some((&TOMBSTONE, [])) => Ok((None, Some(local))),
                Some((&VALUE, rest)) => Ok((Some(rest.to_vec()), Some(local))),
                _ => Err(Error::Corruption(format!("bad MVCC value header {:x?}", plain.first()))),
            }
        }
        _ => Err(Error::Corruption(format!("bad MVCC value header {:x?}", bytes.first()))),
    }
}

/// A lock record: a pending transaction's intent on one key, or its exclusive lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    /// The transaction holding the lock; `txn.write_ts` is the lock's timestamp.
    pub txn: TxnMeta,
    /// The writing node's clock when the record was last written (see "Local timestamps").
    pub local_ts: Timestamp,
    /// What the record holds.
    pub kind: LockKind,
}

/// What a lock record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockKind {
    /// A provisional write: the value (`None`: a provisional delete) becomes a version when
    /// the transaction commits.
    Intent(Option<Vec<u8>>),
    /// An exclusive lock taken by a locking read (`SELECT … FOR UPDATE`): no value. Other
    /// transactions may not write the key or lock it, but plain reads see through it; a
    /// commit removes it without writing anything.
    Exclusive,
}

impl LockRecord {
    /// Returns the provisional value of an intent: `Some(None)` for a provisional delete,
    /// `None` for an exclusive lock, which writes nothing.
    pub fn provisional(&self) -> Option<Option<&[u8]>> {
        match &self.kind {
            LockKind::Intent(value) => Some(value.as_deref()),
            LockKind::Exclusive => None,
        }
    }
}

impl LockRecord {
    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let anchor = self.txn.anchor.as_bytes();
        let value_len = match &self.kind {
            LockKind::Intent(value) => value.as_ref().map_or(0, Vec::len),
            LockKind::Exclusive => 0,
        };
        let mut out =
            Vec::with_capacity(1 + 16 + 4 + 12 + 12 + 4 + 4 + anchor.len() + 1 + value_len);
        out.push(LOCK_FORMAT_V2);
        out.extend_from_slice(&self.txn.id.to_be_bytes());
        out.extend_from_slice(&self.txn.epoch.to_be_bytes());
        out.extend_from_slice(&self.txn.write_ts.encode());
        out.extend_from_slice(&self.local_ts.encode());
        out.extend_from_slice(&self.txn.priority.to_be_bytes());
        let anchor_len = u32::try_from(anchor.len()).expect("keys are far below 4 GiB");
        out.extend_from_slice(&anchor_len.to_be_bytes());
        out.extend_from_slice(anchor);
        match &self.kind {
            LockKind::Intent(value) => out.extend_from_slice(&encode_value(value.as_deref())),
            LockKind::Exclusive => out.push(EXCLUSIVE_ONLY),
        }
        out
    }

    /// Decodes [`LockRecord::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = ByteReader::new(bytes, "lock record");
        let version = r.take(1)?[0];
        if version != LOCK_FORMAT_V1 && version != LOCK_FORMAT_V2 {
            return Err(Error::Corruption(format!("unknown lock record version {version}")));
        }
        let id = u128::from_be_bytes(r.take(16)?.try_into().expect("16 bytes"));
        let epoch = r.take_u32()?;
        let write_ts = Timestamp::decode(r.take(12)?)
            .map_err(|e| Error::Corruption(format!("lock record timestamp: {e}")))?;
        let local_ts = if version == LOCK_FORMAT_V1 {
            write_ts
        } else {
            Timestamp::decode(r.take(12)?)
                .map_err(|e| Error::Corruption(format!("lock record local timestamp: {e}")))?
        };
        let priority = r.take_u32()?;
        let anchor = Key::new(r.take_len_prefixed()?);
        let kind = match r.rest() {
            [EXCLUSIVE_ONLY] => LockKind::Exclusive,
            rest => LockKind::Intent(decode_value(rest)?),
        };
        Ok(LockRecord { txn: TxnMeta { id, anchor, epoch, write_ts, priority }, local_ts, kind })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn lock_record_round_trips(id in any::<u128>(), epoch in any::<u32>(), wall in any::<u64>(),
                                   logical in any::<u32>(), priority in any::<u32>(),
                                   local_wall in any::<u64>(),
                                   anchor in proptest::collection::vec(any::<u8>(), 0..8),
                                   value in proptest::option::of(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)))) {
            let record = LockRecord {
                txn: TxnMeta { id, anchor: Key::new(anchor), epoch, write_ts: Timestamp::new(wall, logical), priority },
                local_ts: Timestamp::new(local_wall, 0),
                kind: value.map_or(LockKind::Exclusive, LockKind::Intent),
            };
            prop_assert_eq!(LockRecord::decode(&record.encode()).unwrap(), record);
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = LockRecord::decode(&bytes);
            let _ = decode_version(&bytes);
        }

        #[test]
        fn value_round_trips(value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8))) {
            prop_assert_eq!(decode_value(&encode_value(value.as_deref())).unwrap(), value);
        }

        #[test]
        fn version_round_trips(value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
                               ts in 1..u64::MAX, local in any::<u64>()) {
            let (ts, local) = (Timestamp::new(ts, 0), Timestamp::new(local, 0));
            let (decoded, stored) = decode_version(&encode_version(value.as_deref(), ts, local)).unwrap();
            prop_assert_eq!(decoded, value);
            // Kept only when it says something: below the version's timestamp.
            prop_assert_eq!(stored, (local < ts).then_some(local));
        }
    }

    #[test]
    fn truncated_lock_record_is_corruption() {
        let err = LockRecord::decode(&[LOCK_FORMAT_V1, 0, 0]).unwrap_err();
        assert!(matches!(err, Error::Corruption(_)), "{err}");
        assert!(
            LockRecord::decode(&[9])
                .unwrap_err()
                .to_string()
                .contains("unknown lock record version 9")
        );
    }
}
