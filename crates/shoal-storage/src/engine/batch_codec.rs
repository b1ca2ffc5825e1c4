//! The binary encoding of a [`WriteBatch`], for replicating evaluated writes through Raft.
//!
//! ```text
//!   01                                       format version
//!   repeated:
//!     op(1) cf(1) key_len(4) key             op 1 = put, 2 = delete, 3 = delete range
//!     [value_len(4) value | end_len(4) end]  (put | delete range)
//! ```
//!
//! The encoding is part of the replicated log, so every replica and every later version must
//! decode it identically: change it only with a new format version. Decoding rejects unknown
//! versions, ops and column families, and truncated input, with [`Error::Corruption`].

use super::{BatchOp, Cf, WriteBatch};
use crate::bytes::ByteReader;
use crate::{Error, Result};

const FORMAT_V1: u8 = 1;
const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_DELETE_RANGE: u8 = 3;

fn cf_code(cf: Cf) -> u8 {
    match cf {
        Cf::Mvcc => 1,
        Cf::Local => 2,
        Cf::Raft => 3,
    }
}

fn cf_from_code(code: u8) -> Result<Cf> {
    match code {
        1 => Ok(Cf::Mvcc),
        2 => Ok(Cf::Local),
        3 => Ok(Cf::Raft),
        other => {
            Err(Error::Corruption(format!("unknown column family code {other} in write batch")))
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("batch keys and values are below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

impl WriteBatch {
    /// Encodes the batch (see the module docs for the format).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.size_bytes() + self.len() * 10);
        out.push(FORMAT_V1);
        for op in self.ops() {
            match op {
                BatchOp::Put { cf, key, value } => {
                    out.extend_from_slice(&[OP_PUT, cf_code(*cf)]);
                    put_bytes(&mut out, key);
                    put_bytes(&mut out, value);
                }
                BatchOp::Delete { cf, key } => {
                    out.extend_from_slice(&[OP_DELETE, cf_code(*cf)]);
                    put_bytes(&mut out, key);
                }
                BatchOp::DeleteRange { cf, start, end } => {
                    out.extend_from_slice(&[OP_DELETE_RANGE, cf_code(*cf)]);
                    put_bytes(&mut out, start);
                    put_bytes(&mut out, end);
                }
            }
        }
        out
    }

    /// Decodes [`WriteBatch::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<WriteBatch> {
        let mut r = ByteReader::new(bytes, "write batch");
        let version = r.take(1)?[0];
        if version != FORMAT_V1 {
            return Err(Error::Corruption(format!("unknown write batch format {version}")));
        }
        let mut batch = WriteBatch::new();
        while !r.is_empty() {
            let op = r.take(1)?[0];
            let cf = cf_from_code(r.take(1)?[0])?;
            let key = r.take_len_prefixed()?;
            match op {
                OP_PUT => batch.put(cf, key, r.take_len_prefixed()?),
                OP_DELETE => batch.delete(cf, key),
                OP_DELETE_RANGE => batch.delete_range(cf, key, r.take_len_prefixed()?),
                other => return Err(Error::Corruption(format!("unknown write batch op {other}"))),
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn op() -> impl Strategy<Value = BatchOp> {
        let cf = prop_oneof![Just(Cf::Mvcc), Just(Cf::Local), Just(Cf::Raft)];
        let bytes = || proptest::collection::vec(any::<u8>(), 0..6);
        prop_oneof![
            (cf.clone(), bytes(), bytes()).prop_map(|(cf, key, value)| BatchOp::Put {
                cf,
                key,
                value
            }),
            (cf.clone(), bytes()).prop_map(|(cf, key)| BatchOp::Delete { cf, key }),
            (cf, bytes(), bytes()).prop_map(|(cf, start, end)| BatchOp::DeleteRange {
                cf,
                start,
                end
            }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(ops in proptest::collection::vec(op(), 0..8)) {
            let mut batch = WriteBatch::new();
            for op in ops {
                match op {
                    BatchOp::Put { cf, key, value } => batch.put(cf, key, value),
                    BatchOp::Delete { cf, key } => batch.delete(cf, key),
                    BatchOp::DeleteRange { cf, start, end } => batch.delete_range(cf, start, end),
                }
            }
            prop_assert_eq!(WriteBatch::decode(&batch.encode()).unwrap(), batch);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = WriteBatch::decode(&bytes);
        }
    }

    #[test]
    fn rejects_bad_input_clearly() {
        assert!(WriteBatch::decode(&[]).unwrap_err().to_string().contains("truncated"));
        assert!(
            WriteBatch::decode(&[9])
                .unwrap_err()
                .to_string()
                .contains("unknown write batch format 9")
        );
        assert!(WriteBatch::decode(&[1, 7, 1]).unwrap_err().to_string().contains("truncated"));
        let bad_cf = [1, OP_DELETE, 9, 0, 0, 0, 0];
        assert!(
            WriteBatch::decode(&bad_cf).unwrap_err().to_string().contains("column family code 9")
        );
        let bad_op = [1, 7, 1, 0, 0, 0, 0];
        assert!(
            WriteBatch::decode(&bad_op)
                .unwrap_err()
                .to_string()
                .contains("unknown write batch op 7")
        );
    }
}
