//! The HLC timestamp and its encodings.
//!
//! A [`Timestamp`] is `(wall, logical)`: nanoseconds since the Unix epoch and a counter. It
//! orders by `wall`, then `logical`. The binary encoding is 12 bytes, big-endian, so byte order
//! equals timestamp order; the descending encoding inverts every byte so that newer timestamps
//! sort first, which is how MVCC keys order versions:
//!
//! ```text
//!   Timestamp { wall: 5, logical: 1 }
//!   encode()            00 00 00 00 00 00 00 05 | 00 00 00 01
//!   encode_descending() ff ff ff ff ff ff ff fa | ff ff ff fe
//!   Display             0.000000005,1
//! ```
//!
//! The text form is CockroachDB's `seconds.nanoseconds,logical`. Parsing also accepts the
//! shorter `seconds`, `seconds.fraction` and either with `,logical`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Result};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A hybrid logical clock timestamp.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp {
    /// Physical time: nanoseconds since the Unix epoch.
    pub wall: u64,
    /// Logical counter ordering events with the same `wall`.
    pub logical: u32,
}

impl Timestamp {
    /// The zero timestamp, before every real one.
    pub const ZERO: Timestamp = Timestamp { wall: 0, logical: 0 };
    /// The largest timestamp.
    pub const MAX: Timestamp = Timestamp { wall: u64::MAX, logical: u32::MAX };
    /// Length of [`Timestamp::encode`] and [`Timestamp::encode_descending`].
    pub const ENCODED_LEN: usize = 12;

    /// Returns a timestamp with the given wall time (nanoseconds) and logical counter.
    pub const fn new(wall: u64, logical: u32) -> Self {
        Timestamp { wall, logical }
    }

    /// Returns true for [`Timestamp::ZERO`].
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Returns the smallest timestamp greater than this one (saturating at [`Timestamp::MAX`]).
    pub fn next(&self) -> Self {
        match self.logical.checked_add(1) {
            Some(logical) => Timestamp { wall: self.wall, logical },
            None if self.wall == u64::MAX => Self::MAX,
            None => Timestamp { wall: self.wall + 1, logical: 0 },
        }
    }

    /// Returns the largest timestamp smaller than this one (saturating at [`Timestamp::ZERO`]).
    pub fn prev(&self) -> Self {
        match self.logical.checked_sub(1) {
            Some(logical) => Timestamp { wall: self.wall, logical },
            None if self.wall == 0 => Self::ZERO,
            None => Timestamp { wall: self.wall - 1, logical: u32::MAX },
        }
    }

    /// Returns this timestamp moved forward by `duration` of wall time, logical reset to zero
    /// only if the wall time moved (saturating).
    pub fn add_duration(&self, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return *self;
        }
        Timestamp { wall: self.wall.saturating_add(nanos), logical: 0 }
    }

    /// Encodes the timestamp in 12 bytes whose byte order is the timestamp order.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.wall.to_be_bytes());
        out[8..].copy_from_slice(&self.logical.to_be_bytes());
        out
    }

    /// Decodes [`Timestamp::encode`]'s output. The input must be exactly 12 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bytes: [u8; Self::ENCODED_LEN] = bytes.try_into().map_err(|_| {
            Error::InvalidTimestamp(format!("expected 12 bytes, got {}", bytes.len()))
        })?;
        let wall = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let logical = u32::from_be_bytes(bytes[8..].try_into().expect("4 bytes"));
        Ok(Timestamp { wall, logical })
    }

    /// Encodes the timestamp in 12 bytes whose byte order is the *reverse* timestamp order.
    pub fn encode_descending(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = self.encode();
        out.iter_mut().for_each(|b| *b = !*b);
        out
    }

    /// Decodes [`Timestamp::encode_descending`]'s output.
    pub fn decode_descending(bytes: &[u8]) -> Result<Self> {
        let inverted: Vec<u8> = bytes.iter().map(|b| !b).collect();
        Self::decode(&inverted)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.wall / NANOS_PER_SEC;
        let nanos = self.wall % NANOS_PER_SEC;
        write!(f, "{secs}.{nanos:09},{}", self.logical)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Timestamp {
    type Err = Error;

    /// Parses `S`, `S.F`, `S,L` or `S.F,L`: seconds, an optional fraction of up to nine digits
    /// and an optional logical counter.
    fn from_str(s: &str) -> Result<Self> {
        let invalid =
            || Error::InvalidTimestamp(format!("{s:?} is not SECONDS[.FRACTION][,LOGICAL]"));
        let (time, logical) = match s.split_once(',') {
            Some((time, logical)) => (time, logical.parse::<u32>().map_err(|_| invalid())?),
            None => (s, 0),
        };
        let (secs, fraction) = match time.split_once('.') {
            Some((_, "")) => return Err(invalid()),
            Some(split) => split,
            None => (time, ""),
        };
        if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let secs: u64 = secs.parse().map_err(|_| invalid())?;
        let nanos: u64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse::<u64>().map_err(|_| invalid())? * 10u64.pow(9 - fraction.len() as u32)
        };
        let wall = secs
            .checked_mul(NANOS_PER_SEC)
            .and_then(|w| w.checked_add(nanos))
            .ok_or_else(invalid)?;
        Ok(Timestamp { wall, logical })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn timestamp() -> impl Strategy<Value = Timestamp> {
        (any::<u64>(), any::<u32>()).prop_map(|(wall, logical)| Timestamp { wall, logical })
    }

    proptest! {
        #[test]
        fn encoding_round_trips_and_preserves_order(a in timestamp(), b in timestamp()) {
            prop_assert_eq!(Timestamp::decode(&a.encode()).unwrap(), a);
            prop_assert_eq!(Timestamp::decode_descending(&a.encode_descending()).unwrap(), a);
            prop_assert_eq!(a.cmp(&b), a.encode().cmp(&b.encode()));
            prop_assert_eq!(a.cmp(&b), b.encode_descending().cmp(&a.encode_descending()));
        }

        #[test]
        fn display_round_trips(a in timestamp()) {
            prop_assert_eq!(a.to_string().parse::<Timestamp>().unwrap(), a);
        }

        #[test]
        fn next_and_prev_are_neighbours(a in timestamp()) {
            if a != Timestamp::MAX {
                prop_assert!(a.next() > a);
                prop_assert_eq!(a.next().prev(), a);
            }
        }
    }

    #[test]
    fn parses_short_forms() {
        assert_eq!("5".parse::<Timestamp>().unwrap(), Timestamp::new(5_000_000_000, 0));
        assert_eq!("5,2".parse::<Timestamp>().unwrap(), Timestamp::new(5_000_000_000, 2));
        assert_eq!("1.5".parse::<Timestamp>().unwrap(), Timestamp::new(1_500_000_000, 0));
        assert_eq!("0.000000007,1".parse::<Timestamp>().unwrap(), Timestamp::new(7, 1));
        assert_eq!(Timestamp::new(7, 1).to_string(), "0.000000007,1");
        for bad in ["", "x", "1.", "1.0000000001", "-1", "1,", "1,x", "99999999999999999999"] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn decode_rejects_wrong_length() {
        assert!(Timestamp::decode(&[0; 11]).is_err());
        assert!(Timestamp::decode(&[0; 13]).is_err());
    }

    #[test]
    fn next_saturates() {
        assert_eq!(Timestamp::MAX.next(), Timestamp::MAX);
        assert_eq!(Timestamp::ZERO.prev(), Timestamp::ZERO);
        assert_eq!(Timestamp::new(1, u32::MAX).next(), Timestamp::new(2, 0));
    }
}
