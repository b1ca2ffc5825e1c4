//! Pretty-printing of keys as paths through the keyspace layout.
//!
//! ```text
//!   08 b4 01 41 61 62 63 00 01 20 80 .. 07   /Table/52/1/"abc"/7
//!   01 7a 08 b4 01 ..                        /Local/Lock/Table/52/1/...
//!   02 ff ff                                 /Meta/Max
//! ```
//!
//! Printing never fails: bytes that do not decode print quoted with escapes (`"a\x00"`), so a
//! corrupt or user-chosen key is still readable.

use crate::encoding::{decode_datum, decode_escaped, decode_uvarint};
use crate::layout::*;

/// How many layout prefixes are interpreted inside one another (`/Local/Lock/Meta/...`);
/// deeper keys print the rest quoted, so a crafted key cannot exhaust the stack.
const MAX_NESTING: usize = 4;

/// Returns the human-readable form of a key.
pub fn pretty(key: &[u8]) -> String {
    pretty_at(key, 0)
}

fn pretty_at(key: &[u8], depth: usize) -> String {
    if depth > MAX_NESTING {
        return quoted(key);
    }
    let inner = |rest: &[u8]| nested(rest, depth + 1);
    if key.is_empty() {
        return "/Min".to_string();
    }
    if key == MAX {
        return "/Max".to_string();
    }
    if let Some(rest) = key.strip_prefix(LOCAL_RANGE_PREFIX) {
        return format!("/Local/Range{}", pretty_range_local(rest));
    }
    if let Some(rest) = key.strip_prefix(LOCAL_TXN_PREFIX) {
        return format!("/Local/Txn{}", pretty_txn(rest, depth + 1));
    }
    if let Some(rest) = key.strip_prefix(LOCAL_LOCK_PREFIX) {
        return format!("/Local/Lock{}", inner(rest));
    }
    if let Some(rest) = key.strip_prefix(LOCAL_STORE_PREFIX) {
        return format!("/Local/Store/{}", raw(rest));
    }
    if let Some(rest) = key.strip_prefix(LOCAL_PREFIX) {
        return format!("/Local{}", raw(rest));
    }
    if key == META_MAX {
        return "/Meta/Max".to_string();
    }
    if let Some(rest) = key.strip_prefix(META_PREFIX) {
        return format!("/Meta{}", inner(rest));
    }
    if key == SYSTEM_MAX {
        return "/System/Max".to_string();
    }
    if let Some(rest) = key.strip_prefix(SYSTEM_PREFIX) {
        return format!("/System{}", raw(rest));
    }
    if let Some(rest) = key.strip_prefix(TENANT_PREFIX) {
        return match decode_uvarint(rest) {
            Ok((tenant, rest)) => format!("/Tenant/{tenant}{}", inner(rest)),
            Err(_) => format!("/Tenant{}", raw(rest)),
        };
    }
    if let Some(rest) = key.strip_prefix(TABLE_PREFIX) {
        return format!("/Table{}", pretty_table(rest));
    }
    quoted(key)
}

/// Prints `rest` as a path continuation: nothing if empty, else starting with `/`.
fn nested(rest: &[u8], depth: usize) -> String {
    if rest.is_empty() {
        return "/Min".to_string();
    }
    let s = pretty_at(rest, depth);
    if s.starts_with('/') { s } else { format!("/{s}") }
}

fn raw(rest: &[u8]) -> String {
    if rest.is_empty() { String::new() } else { format!("/{}", quoted(rest)) }
}

fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

fn pretty_range_local(rest: &[u8]) -> String {
    let Some((id, suffix)) = rest.split_first_chunk::<8>() else {
        return raw(rest);
    };
    let id = u64::from_be_bytes(*id);
    match RangeLocalKind::from_suffix(suffix) {
        Some(kind) => format!("/{id}/{}", kind.name()),
        None => format!("/{id}{}", raw(suffix)),
    }
}

fn pretty_txn(rest: &[u8], depth: usize) -> String {
    match decode_escaped(rest) {
        Ok((anchor, used)) if rest.len() - used == 16 => {
            let id = u128::from_be_bytes(rest[used..].try_into().expect("16 bytes"));
            format!("{}/{id:032x}", nested(&anchor, depth))
        }
        _ => raw(rest),
    }
}

fn pretty_table(rest: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = rest;
    // Table id, then index id.
    for _ in 0..2 {
        if rest.is_empty() {
            return out;
        }
        match decode_uvarint(rest) {
            Ok((id, tail)) => {
                out.push_str(&format!("/{id}"));
                rest = tail;
            }
            Err(_) => return out + &raw(rest),
        }
    }
    while !rest.is_empty() {
        match decode_datum(rest) {
            Ok((datum, _, tail)) => {
                out.push_str(&format!("/{datum}"));
                rest = tail;
            }
            Err(_) => return out + &raw(rest),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{Datum, Direction};
    use crate::{Key, TableCodec};

    #[test]
    fn prints_every_region() {
        let table = TableCodec::system();
        let row = table.index_key(
            52,
            1,
            &[
                (Datum::String("abc".into()), Direction::Ascending),
                (Datum::Int(7), Direction::Descending),
            ],
        );
        let cases: Vec<(Key, &str)> = vec![
            (Key::MIN, "/Min"),
            (Key::max(), "/Max"),
            (row.clone(), r#"/Table/52/1/"abc"/7"#),
            (table.index_prefix(52, 1), "/Table/52/1"),
            (
                table.index_key(
                    1000,
                    2,
                    &[
                        (Datum::Null, Direction::Ascending),
                        (Datum::Bool(true), Direction::Ascending),
                        (Datum::Float(-1.5), Direction::Ascending),
                        (Datum::Bytes(b"\x00\xff".to_vec()), Direction::Descending),
                    ],
                ),
                r#"/Table/1000/2/NULL/true/-1.5/b"\x00\xff""#,
            ),
            (TableCodec::tenant(9).index_prefix(52, 1), "/Tenant/9/Table/52/1"),
            (lock_key(row.as_bytes()), r#"/Local/Lock/Table/52/1/"abc"/7"#),
            (lock_key(b"a"), r#"/Local/Lock/"a""#),
            (range_local_key(5, RangeLocalKind::AppliedState), "/Local/Range/5/AppliedState"),
            (txn_key(b"a", 0xab), r#"/Local/Txn/"a"/000000000000000000000000000000ab"#),
            (meta_key(MAX), "/Meta/Max"),
            (meta_key(META_MAX), "/Meta/Meta/Max"),
            (Key::new(META_MAX), "/Meta/Max"),
            (system_key(b"liveness/3"), r#"/System/"liveness/3""#),
            (Key::from("user\x01key"), r#""user\x01key""#),
            (Key::new(vec![0x08, 0xf7]), r#"/Table/"\xf7""#),
        ];
        for (key, want) in cases {
            assert_eq!(key.to_string(), want, "{:x?}", key.as_bytes());
        }
    }

    #[test]
    fn deeply_nested_keys_print_without_recursing_deeply() {
        let deep = vec![0x02; 200_000];
        let s = pretty(&deep);
        assert!(s.starts_with("/Meta/Meta/Meta/Meta/Meta/\""), "{}", &s[..40]);
        let locks: Vec<u8> = LOCAL_LOCK_PREFIX.repeat(100_000);
        assert!(pretty(&locks).starts_with("/Local/Lock/Local/Lock"));
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..6 {
            for seed in 0u32..2000 {
                let bytes: Vec<u8> =
                    (0..len).map(|i| (seed.wrapping_mul(2654435761) >> (i * 5)) as u8).collect();
                let _ = pretty(&bytes);
            }
        }
    }
}
