//! The keyspace layout (design §2).
//!
//! Every key Shoal stores falls in one of these regions, in this byte order:
//!
//! ```text
//!   /Min                                   (empty key)
//!   01 72 <range_id:8> <suffix>            /Local/Range/<range_id>/<kind>   range-local state
//!   01 73 <name>                           /Local/Store/<name>              store identity
//!   01 74 <anchor escaped> <txn_id:16>     /Local/Txn/<anchor>/<txn_id>     transaction records
//!   01 7a <key>                            /Local/Lock/<key>                separated intents
//!   02 <end_key>                           /Meta/<end_key>                  range descriptors
//!   03                                     /Meta/Max
//!   04 <name>                              /System/<name>                   liveness, ids, catalog
//!   05                                     /System/Max
//!   06 <tenant:uvarint> 08 ...             /Tenant/<id>/Table/...           reserved for tenants
//!   08 <table:uvarint> <index:uvarint> ..  /Table/<table>/<index>/<cols>    SQL rows and indexes
//!   ff ff                                  /Max
//! ```
//!
//! Range-local keys (`/Local/...`) are never addressable on their own: a transaction record or
//! lock record lives on the range holding the key it is anchored to. A lock key is the lock
//! prefix followed by the raw key, so lock keys sort exactly like the keys they lock and the
//! locks of a span `[a, b)` are the span `[lock_key(a), lock_key(b))`.
//!
//! All SQL keys are built by a [`TableCodec`], so adding tenants later changes only the codec's
//! prefix, never the executor.

use crate::encoding::{Datum, Direction, encode_datum, encode_escaped, encode_uvarint};
use crate::{Key, Span};

/// First byte of every range-local key.
pub const LOCAL_PREFIX: &[u8] = &[0x01];
/// The end of the local keyspace.
pub const LOCAL_MAX: &[u8] = &[0x02];
/// Prefix of range-id-local keys: `/Local/Range/<range_id>/...`.
pub const LOCAL_RANGE_PREFIX: &[u8] = &[0x01, b'r'];
/// Prefix of store-local keys: `/Local/Store/<name>`, records of one store that are never
/// replicated (its identity, for one).
pub const LOCAL_STORE_PREFIX: &[u8] = &[0x01, b's'];
/// Prefix of transaction records: `/Local/Txn/<anchor>/<txn_id>`.
pub const LOCAL_TXN_PREFIX: &[u8] = &[0x01, b't'];
/// Prefix of lock (intent) records: `/Local/Lock/<key>`.
pub const LOCAL_LOCK_PREFIX: &[u8] = &[0x01, b'z'];
/// Prefix of range descriptor addressing records: `/Meta/<end_key>`.
pub const META_PREFIX: &[u8] = &[0x02];
/// The end of the meta keyspace; range 1 is `[/Min, /Meta/Max)` and never splits.
pub const META_MAX: &[u8] = &[0x03];
/// Prefix of system keys: `/System/...`.
pub const SYSTEM_PREFIX: &[u8] = &[0x04];
/// The end of the system keyspace.
pub const SYSTEM_MAX: &[u8] = &[0x05];
/// Prefix of tenant keyspaces: `/Tenant/<id>/Table/...` (reserved).
pub const TENANT_PREFIX: &[u8] = &[0x06];
/// Prefix of the system tenant's SQL tables: `/Table/...`.
pub const TABLE_PREFIX: &[u8] = &[0x08];
/// The largest addressable key, `/Max`.
pub const MAX: &[u8] = &[0xff, 0xff];

/// The kinds of range-id-local keys, one record each per range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeLocalKind {
    /// Raft applied state: last applied log id, membership, MVCC stats.
    AppliedState,
    /// The range's copy of its descriptor.
    Descriptor,
    /// The current lease.
    Lease,
    /// The GC threshold: reads below it are refused.
    GcThreshold,
    /// The abort span, recording aborted transactions that wrote to the range.
    AbortSpan,
    /// This store's replica id in the range: store-local, never replicated or snapshotted.
    ReplicaId,
}

impl RangeLocalKind {
    const ALL: [RangeLocalKind; 6] = [
        RangeLocalKind::AppliedState,
        RangeLocalKind::Descriptor,
        RangeLocalKind::Lease,
        RangeLocalKind::GcThreshold,
        RangeLocalKind::AbortSpan,
        RangeLocalKind::ReplicaId,
    ];

    /// The short suffix stored in the key.
    fn suffix(self) -> &'static [u8] {
        match self {
            RangeLocalKind::AppliedState => b"rask",
            RangeLocalKind::Descriptor => b"rdsc",
            RangeLocalKind::Lease => b"rlls",
            RangeLocalKind::GcThreshold => b"rgct",
            RangeLocalKind::AbortSpan => b"abc-",
            RangeLocalKind::ReplicaId => b"rrid",
        }
    }

    /// The name used when printing keys.
    pub fn name(self) -> &'static str {
        match self {
            RangeLocalKind::AppliedState => "AppliedState",
            RangeLocalKind::Descriptor => "RangeDescriptor",
            RangeLocalKind::Lease => "Lease",
            RangeLocalKind::GcThreshold => "GCThreshold",
            RangeLocalKind::AbortSpan => "AbortSpan",
            RangeLocalKind::ReplicaId => "ReplicaID",
        }
    }

    pub(crate) fn from_suffix(suffix: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.suffix() == suffix)
    }
}

/// Returns the range-id-local key `/Local/Range/<range_id>/<kind>`.
pub fn range_local_key(range_id: u64, kind: RangeLocalKind) -> Key {
    let mut k = LOCAL_RANGE_PREFIX.to_vec();
    k.extend_from_slice(&range_id.to_be_bytes());
    k.extend_from_slice(kind.suffix());
    Key::new(k)
}

/// Splits a range-id-local key into its range id and kind.
pub fn decode_range_local_key(key: &[u8]) -> Option<(u64, RangeLocalKind)> {
    let rest = key.strip_prefix(LOCAL_RANGE_PREFIX)?;
    let (id, suffix) = rest.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*id), RangeLocalKind::from_suffix(suffix)?))
}

/// Returns the store-local key `/Local/Store/<name>`.
pub fn store_local_key(name: &[u8]) -> Key {
    let mut k = LOCAL_STORE_PREFIX.to_vec();
    k.extend_from_slice(name);
    Key::new(k)
}

/// Returns the span of every range-id-local key of `range_id`.
pub fn range_local_span(range_id: u64) -> Span {
    let mut k = LOCAL_RANGE_PREFIX.to_vec();
    k.extend_from_slice(&range_id.to_be_bytes());
    Span::prefix(k)
}

/// Returns the transaction record key `/Local/Txn/<anchor>/<txn_id>`.
pub fn txn_key(anchor: &[u8], txn_id: u128) -> Key {
    let mut k = LOCAL_TXN_PREFIX.to_vec();
    encode_escaped(&mut k, anchor);
    k.extend_from_slice(&txn_id.to_be_bytes());
    Key::new(k)
}

/// Returns the span of the records of transactions anchored in `span`: records sort by anchor,
/// so those of `[a, b)` are `[/Local/Txn/<a>, /Local/Txn/<b>)`.
pub fn txn_record_span(span: &Span) -> Span {
    let bound = |key: &Key| {
        let mut k = LOCAL_TXN_PREFIX.to_vec();
        encode_escaped(&mut k, key.as_bytes());
        Key::new(k)
    };
    Span { start: bound(&span.start), end: bound(&span.end) }
}

/// Returns the abort span entry of transaction `txn_id` in range `range_id`.
pub fn abort_span_key(range_id: u64, txn_id: u128) -> Key {
    let mut k = range_local_key(range_id, RangeLocalKind::AbortSpan).into_bytes();
    k.extend_from_slice(&txn_id.to_be_bytes());
    Key::new(k)
}

/// Returns the span of every abort span entry of range `range_id`.
pub fn abort_span(range_id: u64) -> Span {
    Span::prefix(range_local_key(range_id, RangeLocalKind::AbortSpan).into_bytes())
}

/// Returns the part of a range's span that holds addressable keys. Range 1 starts at `/Min`,
/// but the local keys below [`LOCAL_MAX`] are not its data: lock and transaction records
/// belong to the ranges holding the keys they name.
pub fn addressable_span(span: &Span) -> Span {
    let floor = Key::new(LOCAL_MAX);
    Span { start: span.start.clone().max(floor.clone()), end: span.end.clone().max(floor) }
}

/// Returns the lock record key `/Local/Lock/<key>` of `key`.
pub fn lock_key(key: &[u8]) -> Key {
    let mut k = LOCAL_LOCK_PREFIX.to_vec();
    k.extend_from_slice(key);
    Key::new(k)
}

/// Returns the key a lock record key locks, or `None` if `lock_key` is not a lock key.
pub fn decode_lock_key(lock_key: &[u8]) -> Option<&[u8]> {
    lock_key.strip_prefix(LOCAL_LOCK_PREFIX)
}

/// Returns the span of lock record keys for the keys in `span`.
pub fn lock_span(span: &Span) -> Span {
    Span { start: lock_key(span.start.as_bytes()), end: lock_key(span.end.as_bytes()) }
}

/// Returns true if `key` is range-local and so not addressable by users.
pub fn is_local(key: &[u8]) -> bool {
    key.starts_with(LOCAL_PREFIX)
}

/// Returns the addressing key `/Meta/<end_key>` under which the descriptor of the range ending
/// at `end_key` is stored.
pub fn meta_key(end_key: &[u8]) -> Key {
    let mut k = META_PREFIX.to_vec();
    k.extend_from_slice(end_key);
    Key::new(k)
}

/// Returns the system key `/System/<name>`.
pub fn system_key(name: &[u8]) -> Key {
    let mut k = SYSTEM_PREFIX.to_vec();
    k.extend_from_slice(name);
    Key::new(k)
}

/// Builds SQL keys: `/Table/<table_id>/<index_id>/<columns...>`, under a tenant prefix when one
/// is set. Every SQL key goes through one codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCodec {
    prefix: Vec<u8>,
}

impl TableCodec {
    /// The system tenant's codec: keys start with `/Table`.
    pub fn system() -> Self {
        TableCodec { prefix: TABLE_PREFIX.to_vec() }
    }

    /// A secondary tenant's codec: keys start with `/Tenant/<tenant_id>/Table`. Reserved: no
    /// part of Shoal creates tenants yet.
    pub fn tenant(tenant_id: u64) -> Self {
        let mut prefix = TENANT_PREFIX.to_vec();
        encode_uvarint(&mut prefix, tenant_id);
        prefix.extend_from_slice(TABLE_PREFIX);
        TableCodec { prefix }
    }

    /// Returns the prefix of every key of `table_id`.
    pub fn table_prefix(&self, table_id: u64) -> Key {
        let mut k = self.prefix.clone();
        encode_uvarint(&mut k, table_id);
        Key::new(k)
    }

    /// Returns the prefix of every key of index `index_id` of `table_id`.
    pub fn index_prefix(&self, table_id: u64, index_id: u64) -> Key {
        let mut k = self.table_prefix(table_id).into_bytes();
        encode_uvarint(&mut k, index_id);
        Key::new(k)
    }

    /// Returns the key of an index entry with the given column values.
    pub fn index_key(&self, table_id: u64, index_id: u64, columns: &[(Datum, Direction)]) -> Key {
        let mut k = self.index_prefix(table_id, index_id).into_bytes();
        for (datum, direction) in columns {
            encode_datum(&mut k, datum, *direction);
        }
        Key::new(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_ordered() {
        let keys = [
            Key::MIN,
            range_local_key(1, RangeLocalKind::AppliedState),
            range_local_key(2, RangeLocalKind::AppliedState),
            txn_key(b"a", 1),
            lock_key(b""),
            lock_key(b"\xff"),
            meta_key(b""),
            meta_key(&Key::max().into_bytes()),
            Key::new(META_MAX),
            system_key(b"liveness"),
            Key::new(SYSTEM_MAX),
            TableCodec::tenant(5).table_prefix(1),
            TableCodec::system().table_prefix(1),
            TableCodec::system().table_prefix(1000),
            Key::max(),
        ];
        for pair in keys.windows(2) {
            assert!(pair[0] < pair[1], "{:?} !< {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn lock_keys_order_like_their_keys() {
        assert!(lock_key(b"a") < lock_key(b"a\0") && lock_key(b"a\0") < lock_key(b"b"));
        assert_eq!(decode_lock_key(lock_key(b"xy").as_bytes()), Some(&b"xy"[..]));
        assert_eq!(decode_lock_key(b"xy"), None);
        let span = lock_span(&Span::new("a", "c"));
        assert!(
            span.contains(lock_key(b"b").as_bytes()) && !span.contains(lock_key(b"c").as_bytes())
        );
    }

    #[test]
    fn txn_record_spans_hold_exactly_the_anchors_inside() {
        let span = Span::new("b", "d");
        let records = txn_record_span(&span);
        for (anchor, inside) in
            [("a", false), ("b", true), ("b\0", true), ("cz", true), ("d", false)]
        {
            let key = txn_key(anchor.as_bytes(), u128::MAX);
            assert_eq!(records.contains(key.as_bytes()), inside, "{anchor}");
            let key = txn_key(anchor.as_bytes(), 0);
            assert_eq!(records.contains(key.as_bytes()), inside, "{anchor}");
        }
        let whole = addressable_span(&Span { start: Key::MIN, end: Key::new(META_MAX) });
        assert_eq!(whole.start, Key::new(LOCAL_MAX));
        assert!(
            !whole.contains(lock_key(b"a").as_bytes()) && whole.contains(meta_key(b"a").as_bytes())
        );
        assert!(abort_span(3).contains(abort_span_key(3, 7).as_bytes()));
        assert!(!abort_span(3).contains(abort_span_key(4, 7).as_bytes()));
    }

    #[test]
    fn txn_records_group_by_anchor() {
        // The escaping keeps anchor "a" with every txn id before anchor "a\0".
        assert!(txn_key(b"a", u128::MAX) < txn_key(b"a\0", 0));
        assert!(range_local_span(7).contains(range_local_key(7, RangeLocalKind::Lease).as_bytes()));
        assert!(
            !range_local_span(7).contains(range_local_key(8, RangeLocalKind::Lease).as_bytes())
        );
    }
}
