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

use crate::{KvError, RangeDescriptor, ReplicaDescriptor, decode, encode};

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

/// Returns the counter of node ids handed out, `/System/node-idgen`.
pub fn node_id_generator() -> Key {
    layout::system_key(b"node-idgen")
}

/// Returns the counter of range ids handed out, `/System/range-idgen`.
pub fn range_id_generator() -> Key {
    layout::system_key(b"range-idgen")
}

/// Returns the liveness record key of `node_id`, `/System/liveness/<node_id>` (zero-padded,
/// so records sort by node id).
pub fn liveness_key(node_id: u64) -> Key {
    layout::system_key(format!("liveness/{node_id:020}").as_bytes())
}

/// Returns the span holding every node's liveness record.
pub fn liveness_span() -> Span {
    Span::prefix(layout::system_key(b"liveness/").into_bytes())
}

/// Returns the key of the cluster setting `name`, `/System/settings/<name>`.
pub fn setting_key(name: &str) -> Key {
    layout::system_key(format!("settings/{name}").as_bytes())
}

/// Returns the ranges a new cluster starts with, each replicated on `replicas`: range 1, the
/// meta range `[/Min, /Meta/Max)`, and range 2 holding everything else.
pub fn bootstrap_ranges(replicas: &[ReplicaDescriptor]) -> Vec<RangeDescriptor> {
    let next_replica_id = replicas.iter().map(|r| r.replica_id).max().unwrap_or(0) + 1;
    let bounds = [(Key::MIN, Key::new(layout::META_MAX)), (Key::new(layout::META_MAX), Key::max())];
    bounds
        .into_iter()
        .zip(1..)
        .map(|((start_key, end_key), range_id)| RangeDescriptor {
            range_id,
            start_key,
            end_key,
            replicas: replicas.to_vec(),
            next_replica_id,
            generation: 0,
        })
        .collect()
}
