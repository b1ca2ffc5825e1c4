//! Shoal's wire types: what nodes, clients and layers send each other.
//!
//! - [`RangeDescriptor`], [`ReplicaDescriptor`], [`Lease`]: where data lives;
//! - [`BatchRequest`] / [`BatchResponse`] with [`Request`] / [`Response`]: KV operations on
//!   one range;
//! - [`txn::Transaction`], [`txn::TxnRecord`]: transactions as coordinators send them and as
//!   their records store them;
//! - [`KvError`] with [`ErrorKind`]: failures classified by the caller's next move;
//! - [`scan_filter::ScanFilter`]: a predicate an upper layer pushes into scans.
//!
//! Every type is serde-serializable; [`encode`] and [`decode`] give the one binary encoding
//! used between nodes. This crate has no behaviour beyond small helpers: the layers above
//! give the types meaning.

pub mod addressing;
mod descriptor;
mod error;
mod request;
pub mod scan_filter;
pub mod txn;

pub use descriptor::{Lease, RangeDescriptor, ReplicaDescriptor};
pub use error::{ErrorKind, KvError};
pub use request::{BatchRequest, BatchResponse, Request, Response, Value};

/// Encodes a wire value.
pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("encoding into a Vec cannot fail")
}

/// Decodes a wire value; bad bytes are an [`KvError::InvalidArgument`], never a panic.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, KvError> {
    postcard::from_bytes(bytes)
        .map_err(|e| KvError::InvalidArgument(format!("undecodable message: {e}")))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use shoal_keys::{Key, Span};

    use super::*;

    #[test]
    fn batches_round_trip() {
        let batch = BatchRequest::new(
            7,
            vec![
                Request::Get { key: Key::from("a") },
                Request::ConditionalPut {
                    key: Key::from("b"),
                    value: b"2".to_vec(),
                    expected: None,
                },
                Request::Scan { span: Span::new("a", "z"), limit: Some(10), filter: None },
                Request::Increment { key: Key::from("n"), delta: -3 },
            ],
        );
        assert_eq!(decode::<BatchRequest>(&encode(&batch)).unwrap(), batch);
    }

    #[test]
    fn errors_are_classified_and_round_trip() {
        let errors = [
            (KvError::NotLeaseholder { range_id: 1, leaseholder: None }, ErrorKind::Route),
            (KvError::RangeNotFound(3), ErrorKind::Route),
            (KvError::ConditionFailed { actual: Some(b"x".to_vec()) }, ErrorKind::User),
            (KvError::Ambiguous("connection lost".into()), ErrorKind::Ambiguous),
            (KvError::Unavailable("no leader".into()), ErrorKind::Retry),
            (KvError::Internal("bug".into()), ErrorKind::Internal),
            (KvError::LockConflict { locks: vec![], push_to: None }, ErrorKind::Conflict),
            (
                KvError::TxnRetry {
                    reason: txn::RetryReason::Deadlock,
                    detail: "chosen".into(),
                    txn: None,
                },
                ErrorKind::Restart,
            ),
        ];
        for (error, kind) in errors {
            assert_eq!(error.kind(), kind, "{error}");
            assert_eq!(decode::<KvError>(&encode(&error)).unwrap(), error);
        }
        assert_eq!(
            KvError::ConditionFailed { actual: None }.to_string(),
            "condition failed: the current value is absent"
        );
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<BatchRequest>(&bytes);
            let _ = decode::<KvError>(&bytes);
        }
    }
}
