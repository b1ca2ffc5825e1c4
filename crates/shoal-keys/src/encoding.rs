//! Order-preserving encodings for SQL key columns.
//!
//! A SQL row's primary key and index entries become byte strings whose bytewise order is the
//! SQL order of the column values, so a range scan over bytes is a range scan over rows. Each
//! value is encoded with a one-byte type tag followed by a payload; a compound key is the
//! concatenation of its columns' encodings, and because every encoding is *prefix-free*, the
//! concatenation orders like the tuple:
//!
//! ```text
//!   value           ascending bytes              descending bytes (every byte inverted)
//!   NULL            00                           ff
//!   false / true    10 / 11                      ef / ee
//!   INT 7           20 80 00 00 00 00 00 00 07   df 7f ff ff ff ff ff ff f8
//!   FLOAT 1.5       30 bf f8 00 00 00 00 00 00   cf 40 07 ff ff ff ff ff ff
//!   BYTES "a\0"     40 61 00 ff 00 01            bf 9e ff 00 ff fe
//!   STRING "ab"     41 61 62 00 01               be 9e 9d ff fe
//! ```
//!
//! - NULL sorts first ascending and last descending (as in CockroachDB).
//! - Integers flip the sign bit and are stored big-endian.
//! - Floats flip the sign bit of non-negatives and every bit of negatives. `-0.0` is encoded as
//!   `0.0` and every NaN as one canonical NaN that sorts before `-inf` (SQL treats NaN as
//!   equal to itself and, in CockroachDB, smaller than every other float).
//! - Bytes and strings escape `00` as `00 ff` and end with `00 01`, so a prefix sorts first.
//! - A descending column inverts every byte of the ascending encoding, tag included, so the
//!   decoder knows the direction from the tag alone.
//!
//! Identifiers inside keys (table ids, index ids, tenant ids) use [`encode_uvarint`]: a
//! tag-less, order-preserving variable-length unsigned integer, one byte below 240.
//!
//! # Hazards
//!
//! Changing any byte here changes the on-disk order of every table: treat it as a storage
//! format. Types of different tags compare by tag, which only matters for NULL; a column
//! always holds one type.

use std::fmt;

use crate::{Error, Result};

const TAG_NULL: u8 = 0x00;
const TAG_FALSE: u8 = 0x10;
const TAG_TRUE: u8 = 0x11;
const TAG_INT: u8 = 0x20;
const TAG_FLOAT: u8 = 0x30;
const TAG_BYTES: u8 = 0x40;
const TAG_STRING: u8 = 0x41;

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xff;
const TERMINATOR: u8 = 0x01;

/// The canonical NaN bit pattern; its transformed encoding sorts before `-inf`.
const CANONICAL_NAN: u64 = 0xfff8_0000_0000_0000;

/// The sort direction of a key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Smallest value first, NULL first.
    Ascending,
    /// Largest value first, NULL last.
    Descending,
}

/// A value of a SQL key column.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// BOOL.
    Bool(bool),
    /// INT / BIGINT.
    Int(i64),
    /// FLOAT (64-bit IEEE 754).
    Float(f64),
    /// TEXT / VARCHAR.
    String(String),
    /// BYTES.
    Bytes(Vec<u8>),
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Null => write!(f, "NULL"),
            Datum::Bool(b) => write!(f, "{b}"),
            Datum::Int(i) => write!(f, "{i}"),
            Datum::Float(x) => write!(f, "{x:?}"),
            Datum::String(s) => write!(f, "{s:?}"),
            Datum::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
        }
    }
}

/// Appends the order-preserving encoding of `datum` in `direction` to `out`.
pub fn encode_datum(out: &mut Vec<u8>, datum: &Datum, direction: Direction) {
    let start = out.len();
    match datum {
        Datum::Null => out.push(TAG_NULL),
        Datum::Bool(false) => out.push(TAG_FALSE),
        Datum::Bool(true) => out.push(TAG_TRUE),
        Datum::Int(i) => {
            out.push(TAG_INT);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Datum::Float(x) => {
            out.push(TAG_FLOAT);
            out.extend_from_slice(&float_to_ordered(*x).to_be_bytes());
        }
        Datum::Bytes(b) => {
            out.push(TAG_BYTES);
            encode_escaped(out, b);
        }
        Datum::String(s) => {
            out.push(TAG_STRING);
            encode_escaped(out, s.as_bytes());
        }
    }
    if direction == Direction::Descending {
        out[start..].iter_mut().for_each(|b| *b = !*b);
    }
}

/// Decodes one datum from the front of `input`, returning it, its direction and the rest.
pub fn decode_datum(input: &[u8]) -> Result<(Datum, Direction, &[u8])> {
    let tag = *input.first().ok_or(Error::Truncated("empty input"))?;
    let direction = if is_ascending_tag(tag) {
        Direction::Ascending
    } else if is_ascending_tag(!tag) {
        Direction::Descending
    } else {
        return Err(Error::Invalid(format!("unknown key column tag {tag:#04x}")));
    };
    let payload = &input[1..];
    let ascending_tag = if direction == Direction::Ascending { tag } else { !tag };
    let (datum, used) = decode_payload(ascending_tag, payload, direction == Direction::Descending)?;
    Ok((datum, direction, &payload[used..]))
}

fn is_ascending_tag(tag: u8) -> bool {
    matches!(tag, TAG_NULL | TAG_FALSE | TAG_TRUE | TAG_INT | TAG_FLOAT | TAG_BYTES | TAG_STRING)
}

/// Decodes the payload of an ascending `tag`, returning the datum and the bytes consumed. With
/// `invert`, every payload byte is read inverted (a descending column); only the bytes the
/// value occupies are touched.
fn decode_payload(tag: u8, payload: &[u8], invert: bool) -> Result<(Datum, usize)> {
    Ok(match tag {
        TAG_NULL => (Datum::Null, 0),
        TAG_FALSE => (Datum::Bool(false), 0),
        TAG_TRUE => (Datum::Bool(true), 0),
        TAG_INT => {
            let raw = fixed8(payload, "INT", invert)?;
            (Datum::Int((raw ^ (1 << 63)) as i64), 8)
        }
        TAG_FLOAT => {
            let x = float_from_ordered(fixed8(payload, "FLOAT", invert)?);
            // Encoding folds -0.0 into 0.0 and every NaN into one; other bit patterns would be
            // a second encoding of an equal value.
            if x.to_bits() == (-0.0f64).to_bits() || (x.is_nan() && x.to_bits() != CANONICAL_NAN) {
                return Err(Error::Invalid(format!("non-canonical FLOAT bits {:#x}", x.to_bits())));
            }
            (Datum::Float(x), 8)
        }
        TAG_BYTES => {
            let (bytes, used) = decode_escaped_inner(payload, invert)?;
            (Datum::Bytes(bytes), used)
        }
        TAG_STRING => {
            let (bytes, used) = decode_escaped_inner(payload, invert)?;
            let s = String::from_utf8(bytes)
                .map_err(|_| Error::Invalid("STRING key column is not UTF-8".into()))?;
            (Datum::String(s), used)
        }
        _ => unreachable!("caller checked the tag"),
    })
}

fn fixed8(payload: &[u8], what: &'static str, invert: bool) -> Result<u64> {
    let bytes: [u8; 8] =
        payload.get(..8).and_then(|b| b.try_into().ok()).ok_or(Error::Truncated(what))?;
    let raw = u64::from_be_bytes(bytes);
    Ok(if invert { !raw } else { raw })
}

fn float_to_ordered(x: f64) -> u64 {
    let bits = if x.is_nan() {
        CANONICAL_NAN
    } else if x == 0.0 {
        0 // folds -0.0 into 0.0
    } else {
        x.to_bits()
    };
    if bits & (1 << 63) != 0 { !bits } else { bits ^ (1 << 63) }
}

fn float_from_ordered(ordered: u64) -> f64 {
    let bits = if ordered & (1 << 63) != 0 { ordered ^ (1 << 63) } else { !ordered };
    f64::from_bits(bits)
}

/// Appends `bytes` with `00` escaped as `00 ff`, then the terminator `00 01`.
pub fn encode_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// Decodes [`encode_escaped`]'s output from the front of `input`, returning the bytes and the
/// number of input bytes consumed (terminator included).
pub fn decode_escaped(input: &[u8]) -> Result<(Vec<u8>, usize)> {
    decode_escaped_inner(input, false)
}

fn decode_escaped_inner(input: &[u8], invert: bool) -> Result<(Vec<u8>, usize)> {
    let at = |i: usize| input.get(i).map(|&b| if invert { !b } else { b });
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match at(i) {
            None => return Err(Error::Truncated("unterminated bytes")),
            Some(ESCAPE) => match at(i + 1) {
                Some(ESCAPED_ZERO) => out.push(0),
                Some(TERMINATOR) => return Ok((out, i + 2)),
                Some(b) => return Err(Error::Invalid(format!("bad escape 00 {b:02x}"))),
                None => return Err(Error::Truncated("unterminated bytes")),
            },
            Some(b) => {
                out.push(b);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
}

/// Appends the order-preserving variable-length encoding of `v`: one byte `v` below 240,
/// else `0xf0 + (n - 1)` followed by the `n` big-endian bytes of `v` (minimal `n`).
pub fn encode_uvarint(out: &mut Vec<u8>, v: u64) {
    if v < 0xf0 {
        out.push(v as u8);
        return;
    }
    let n = 8 - (v.leading_zeros() as usize / 8);
    out.push(0xf0 + (n as u8 - 1));
    out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
}

/// Decodes [`encode_uvarint`]'s output from the front of `input`, returning it and the rest.
pub fn decode_uvarint(input: &[u8]) -> Result<(u64, &[u8])> {
    let first = *input.first().ok_or(Error::Truncated("empty uvarint"))?;
    if first < 0xf0 {
        return Ok((u64::from(first), &input[1..]));
    }
    if first > 0xf7 {
        return Err(Error::Invalid(format!("bad uvarint prefix {first:#04x}")));
    }
    let n = usize::from(first - 0xf0) + 1;
    let bytes = input.get(1..1 + n).ok_or(Error::Truncated("uvarint"))?;
    let mut buf = [0u8; 8];
    buf[8 - n..].copy_from_slice(bytes);
    let v = u64::from_be_bytes(buf);
    // Reject non-minimal encodings so every value has exactly one encoding.
    let minimal_len = if v < 0xf0 { 0 } else { 8 - (v.leading_zeros() as usize / 8) };
    if minimal_len != n {
        return Err(Error::Invalid(format!("non-minimal uvarint for {v}")));
    }
    Ok((v, &input[1 + n..]))
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::*;

    fn datum() -> impl Strategy<Value = Datum> {
        prop_oneof![
            Just(Datum::Null),
            any::<bool>().prop_map(Datum::Bool),
            any::<i64>().prop_map(Datum::Int),
            prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(-0.0),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY)
            ]
            .prop_map(Datum::Float),
            ".*".prop_map(Datum::String),
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(0xff), any::<u8>()],
                0..8
            )
            .prop_map(Datum::Bytes),
        ]
    }

    /// SQL order for two datums of one column type: NULL first, NaN before other floats.
    fn sql_cmp(a: &Datum, b: &Datum) -> Option<Ordering> {
        use Datum::*;
        match (a, b) {
            (Null, Null) => Some(Ordering::Equal),
            (Null, _) => Some(Ordering::Less),
            (_, Null) => Some(Ordering::Greater),
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Float(a), Float(b)) => Some(match (a.is_nan(), b.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => a.partial_cmp(b).expect("not NaN"),
            }),
            (String(a), String(b)) => Some(a.cmp(b)),
            (Bytes(a), Bytes(b)) => Some(a.cmp(b)),
            _ => None, // different column types never share a column
        }
    }

    /// The value decoding must return: floats canonicalised.
    fn canonical(d: &Datum) -> Datum {
        match d {
            Datum::Float(x) if x.is_nan() => Datum::Float(f64::from_bits(CANONICAL_NAN)),
            Datum::Float(x) if *x == 0.0 => Datum::Float(0.0),
            d => d.clone(),
        }
    }

    fn same(a: &Datum, b: &Datum) -> bool {
        match (a, b) {
            (Datum::Float(x), Datum::Float(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }

    fn enc(d: &Datum, dir: Direction) -> Vec<u8> {
        let mut out = Vec::new();
        encode_datum(&mut out, d, dir);
        out
    }

    proptest! {
        #[test]
        fn datum_round_trips(d in datum(), desc in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let dir = if desc { Direction::Descending } else { Direction::Ascending };
            let mut bytes = enc(&d, dir);
            bytes.extend_from_slice(&tail);
            let (decoded, decoded_dir, rest) = decode_datum(&bytes).unwrap();
            prop_assert!(same(&decoded, &canonical(&d)), "{decoded:?} != {d:?}");
            prop_assert_eq!(decoded_dir, dir);
            prop_assert_eq!(rest, &tail[..]);
        }

        #[test]
        fn datum_encoding_preserves_order(a in datum(), b in datum()) {
            if let Some(order) = sql_cmp(&a, &b) {
                prop_assert_eq!(enc(&a, Direction::Ascending).cmp(&enc(&b, Direction::Ascending)), order);
                prop_assert_eq!(enc(&a, Direction::Descending).cmp(&enc(&b, Direction::Descending)), order.reverse());
            }
        }

        #[test]
        fn compound_keys_order_like_tuples(a1 in ".*", a2 in any::<i64>(), b1 in ".*", b2 in any::<i64>()) {
            let key = |s: &str, i: i64| {
                let mut out = Vec::new();
                encode_datum(&mut out, &Datum::String(s.to_string()), Direction::Ascending);
                encode_datum(&mut out, &Datum::Int(i), Direction::Descending);
                out
            };
            let order = a1.cmp(&b1).then(a2.cmp(&b2).reverse());
            prop_assert_eq!(key(&a1, a2).cmp(&key(&b1, b2)), order);
        }

        #[test]
        fn uvarint_round_trips_and_preserves_order(a in any::<u64>(), b in prop_oneof![any::<u64>(), 0u64..300]) {
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            encode_uvarint(&mut ea, a);
            encode_uvarint(&mut eb, b);
            prop_assert_eq!(decode_uvarint(&ea).unwrap(), (a, &[][..]));
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
        }

        #[test]
        fn decoders_never_panic_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = decode_datum(&bytes);
            let _ = decode_uvarint(&bytes);
            let _ = decode_escaped(&bytes);
        }
    }

    #[test]
    fn documented_encodings() {
        assert_eq!(enc(&Datum::Int(7), Direction::Ascending), [0x20, 0x80, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(
            enc(&Datum::String("ab".into()), Direction::Descending),
            [0xbe, 0x9e, 0x9d, 0xff, 0xfe]
        );
        assert_eq!(
            enc(&Datum::Bytes(b"a\0".to_vec()), Direction::Ascending),
            [0x40, 0x61, 0, 0xff, 0, 1]
        );
        assert_eq!(
            enc(&Datum::Float(1.5), Direction::Ascending),
            [0x30, 0xbf, 0xf8, 0, 0, 0, 0, 0, 0]
        );
        let mut v = Vec::new();
        encode_uvarint(&mut v, 239);
        encode_uvarint(&mut v, 240);
        encode_uvarint(&mut v, 256);
        assert_eq!(v, [239, 0xf0, 240, 0xf1, 1, 0]);
    }

    #[test]
    fn decode_errors_are_clear() {
        assert_eq!(decode_datum(&[]).unwrap_err(), Error::Truncated("empty input"));
        assert!(
            decode_datum(&[0x55]).unwrap_err().to_string().contains("unknown key column tag 0x55")
        );
        assert_eq!(decode_datum(&[TAG_INT, 1, 2]).unwrap_err(), Error::Truncated("INT"));
        assert!(decode_uvarint(&[0xf0, 5]).is_err(), "non-minimal");
        assert!(decode_datum(&[TAG_STRING, 0xff, 0, 1]).is_err(), "not UTF-8");
        let negative_zero = [TAG_FLOAT, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_datum(&negative_zero).unwrap_err().to_string().contains("non-canonical"));
    }
}
