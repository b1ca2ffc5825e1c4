//! The [`Key`] and [`Span`] types.
//!
//! A key is an arbitrary byte string; keys order bytewise, and the empty key is the smallest.
//! A span is a half-open interval `[start, end)` of keys. Both print through the keyspace
//! pretty-printer ([`crate::pretty`]), so logs and test output read `/Table/52/1/"abc"/7`
//! rather than bytes.

use std::fmt;

/// A key: a byte string ordered bytewise.
#[derive(
    Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Key(#[serde(with = "serde_bytes")] Vec<u8>);

impl Key {
    /// The smallest key (`/Min`, empty).
    pub const MIN: Key = Key(Vec::new());

    /// Returns the largest key a user or range may address (`/Max`). No key at or above it is
    /// ever written.
    pub fn max() -> Key {
        Key(crate::layout::MAX.to_vec())
    }

    /// Wraps raw bytes as a key.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Key(bytes.into())
    }

    /// Returns the key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Returns the key's bytes, consuming it.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Returns the length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns true for the empty key (`/Min`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns the smallest key greater than this one: the key with a zero byte appended.
    pub fn next(&self) -> Key {
        let mut bytes = self.0.clone();
        bytes.push(0);
        Key(bytes)
    }

    /// Returns the smallest key greater than every key that has this key as a prefix, or
    /// `None` if there is none (the key is empty or all `0xff`).
    pub fn prefix_end(&self) -> Option<Key> {
        let mut bytes = self.0.clone();
        while let Some(last) = bytes.pop() {
            if last != 0xff {
                bytes.push(last + 1);
                return Some(Key(bytes));
            }
        }
        None
    }

    /// Returns true if the key starts with `prefix`.
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.0.starts_with(prefix)
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Key {
    fn from(bytes: Vec<u8>) -> Self {
        Key(bytes)
    }
}

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Self {
        Key(bytes.to_vec())
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key(s.as_bytes().to_vec())
    }
}

impl From<String> for Key {
    fn from(s: String) -> Self {
        Key(s.into_bytes())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::pretty::pretty(&self.0))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A half-open interval of keys, `[start, end)`.
#[derive(
    Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Span {
    /// The first key in the span.
    pub start: Key,
    /// The first key after the span (exclusive).
    pub end: Key,
}

impl Span {
    /// Returns the span `[start, end)`.
    pub fn new(start: impl Into<Key>, end: impl Into<Key>) -> Self {
        Span { start: start.into(), end: end.into() }
    }

    /// Returns the span holding exactly `key`.
    pub fn point(key: impl Into<Key>) -> Self {
        let start = key.into();
        let end = start.next();
        Span { start, end }
    }

    /// Returns the span of every key with the given prefix.
    pub fn prefix(prefix: impl Into<Key>) -> Self {
        let start = prefix.into();
        let end = start.prefix_end().unwrap_or_else(Key::max);
        Span { start, end }
    }

    /// Returns true if the span holds no key (`start >= end`).
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Returns true if `key` is in the span.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_bytes() <= key && key < self.end.as_bytes()
    }

    /// Returns true if the two spans share a key.
    pub fn overlaps(&self, other: &Span) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_and_prefix_end() {
        assert_eq!(Key::from("ab").next(), Key::new(b"ab\0".to_vec()));
        assert_eq!(Key::from("ab").prefix_end(), Some(Key::from("ac")));
        assert_eq!(Key::new(vec![b'a', 0xff, 0xff]).prefix_end(), Some(Key::from("b")));
        assert_eq!(Key::new(vec![0xff]).prefix_end(), None);
        assert_eq!(Key::MIN.prefix_end(), None);
    }

    #[test]
    fn span_membership() {
        let span = Span::new("b", "d");
        assert!(span.contains(b"b") && span.contains(b"c\xff") && !span.contains(b"d"));
        assert!(span.overlaps(&Span::new("c", "z")));
        assert!(!span.overlaps(&Span::new("d", "z")));
        assert!(!span.overlaps(&Span::new("a", "a")));
        assert!(Span::point("x").contains(b"x") && !Span::point("x").contains(b"x\0"));
        assert!(Span::prefix("x").contains(b"x\xff\xff") && !Span::prefix("x").contains(b"y"));
    }
}
