//! Addressing records: where the meta range keeps every other range's descriptor.
//!
//! ```text
//!   /Meta/<end_key of range>  →  encoded RangeDescriptor
//!   lookup(key): the first record after /Meta/<key> (exclusive) names the range holding key
//! ```
//!
//! Range 1, `[/Min, /Meta/Max)`, holds the records and never splits, so every node can find
//! any range by asking range 1, whose own replicas are learned at join time.

use shoal_keys::{Key, Span, layout};

use crate::{KvError, RangeDescriptor, decode, encode};

/// Returns the addressing record of `descriptor`: its key and value.
pub fn meta_record(descriptor: &RangeDescriptor) -> (Key, Vec<u8>) {
    (layout::meta_key(descriptor.end_key.as_bytes()), encode(descriptor))
}

/// Returns the span of addressing records whose first record describes the range holding
/// `key` (a scan of it with limit 1 finds that range).
pub fn meta_lookup_span(key: &Key) -> Span {
    Span { start: layout::meta_key(key.next().as_bytes()), end: Key::new(layout::META_MAX) }
}

/// Decodes an addressing record's value.
pub fn decode_meta_record(value: &[u8]) -> Result<RangeDescriptor, KvError> {
    decode(value).map_err(|e| KvError::Internal(format!("corrupt addressing record: {e}")))
}

/// Returns true if `key` belongs to the meta range (range 1).
pub fn is_meta_range_key(key: &Key) -> bool {
    key.as_bytes() < layout::META_MAX
}
