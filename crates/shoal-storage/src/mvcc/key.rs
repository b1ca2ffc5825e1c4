//! MVCC engine keys: a user key plus an optional timestamp.
//!
//! ```text
//!   versioned    escape(user_key) 00 01 | !wall(8) !logical(4)     newest version first
//!   unversioned  escape(user_key) 00 01                            (lock records)
//! ```
//!
//! `escape` writes `00` as `00 ff` and ends with `00 01` (the terminator), so the encoding is
//! prefix-free and orders by user key first; inverting the timestamp's bytes orders a key's
//! versions newest first, right after its unversioned entry. The escaped user key, terminator
//! included, is the RocksDB prefix used for bloom filters.

use shoal_hlc::Timestamp;
use shoal_keys::encoding::{decode_escaped, encode_escaped};

use crate::{Error, Result};

/// Returns the encoded prefix shared by every entry of `key`: `escape(key) 00 01`.
pub fn encode_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2 + Timestamp::ENCODED_LEN);
    encode_escaped(&mut out, key);
    out
}

/// Returns the engine key of the version of `key` at `ts`.
pub fn encode_versioned(key: &[u8], ts: Timestamp) -> Vec<u8> {
    let mut out = encode_prefix(key);
    out.extend_from_slice(&ts.encode_descending());
    out
}

/// Returns the first engine key after every entry of `key` (the prefix with its terminator
/// `00 01` raised to `00 02`, which no escaped key contains).
pub fn encode_prefix_end(key: &[u8]) -> Vec<u8> {
    let mut out = encode_prefix(key);
    *out.last_mut().expect("the terminator") += 1;
    out
}

/// Decodes an engine key into the user key and its timestamp (`None` if unversioned).
pub fn decode(engine_key: &[u8]) -> Result<(Vec<u8>, Option<Timestamp>)> {
    let (user_key, used) = decode_escaped(engine_key)
        .map_err(|e| Error::Corruption(format!("MVCC key {:x?}: {e}", engine_key)))?;
    match &engine_key[used..] {
        [] => Ok((user_key, None)),
        ts => {
            let ts = Timestamp::decode_descending(ts)
                .map_err(|e| Error::Corruption(format!("MVCC key {:x?}: {e}", engine_key)))?;
            Ok((user_key, Some(ts)))
        }
    }
}

/// The RocksDB prefix extractor: the escaped user key with its terminator.
pub(crate) fn mvcc_prefix(engine_key: &[u8]) -> &[u8] {
    &engine_key[..prefix_len(engine_key).unwrap_or(engine_key.len())]
}

/// The RocksDB prefix extractor's domain: keys that contain a terminator.
pub(crate) fn mvcc_prefix_in_domain(engine_key: &[u8]) -> bool {
    prefix_len(engine_key).is_some()
}

fn prefix_len(engine_key: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < engine_key.len() {
        if engine_key[i] == 0 {
            match engine_key[i + 1] {
                0x01 => return Some(i + 2),
                _ => i += 2,
            }
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ts() -> impl Strategy<Value = Timestamp> {
        (any::<u64>(), any::<u32>()).prop_map(|(w, l)| Timestamp::new(w, l))
    }

    proptest! {
        #[test]
        fn round_trips_and_orders(a in proptest::collection::vec(any::<u8>(), 0..6), ta in ts(),
                                  b in proptest::collection::vec(any::<u8>(), 0..6), tb in ts()) {
            let ea = encode_versioned(&a, ta);
            prop_assert_eq!(decode(&ea).unwrap(), (a.clone(), Some(ta)));
            prop_assert_eq!(decode(&encode_prefix(&a)).unwrap(), (a.clone(), None));
            // User key ascending, then timestamp descending.
            let order = a.cmp(&b).then(tb.cmp(&ta));
            prop_assert_eq!(ea.cmp(&encode_versioned(&b, tb)), order);
            // Every entry of `a` is within [prefix, prefix_end), and the prefix extractor finds it.
            prop_assert!(encode_prefix(&a) <= ea && ea < encode_prefix_end(&a));
            prop_assert_eq!(mvcc_prefix(&ea), &encode_prefix(&a)[..]);
            if a != b {
                prop_assert!(!(encode_prefix(&a) <= encode_versioned(&b, tb) && encode_versioned(&b, tb) < encode_prefix_end(&a)));
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = decode(&bytes);
            let _ = mvcc_prefix(&bytes);
        }
    }
}
