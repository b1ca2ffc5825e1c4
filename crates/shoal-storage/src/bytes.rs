//! A bounds-checked reader over encoded bytes, shared by the storage crate's decoders.

use crate::{Error, Result};

/// Reads fields from the front of a byte slice; running past the end is [`Error::Corruption`]
/// naming what was being decoded, never a panic.
pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> ByteReader<'a> {
    /// Reads `bytes`, naming them `what` in errors.
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        ByteReader { bytes, pos: 0, what }
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end =
            self.pos.checked_add(n).filter(|end| *end <= self.bytes.len()).ok_or_else(|| {
                Error::Corruption(format!(
                    "{} truncated at byte {} of {}",
                    self.what,
                    self.pos,
                    self.bytes.len()
                ))
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Takes a big-endian `u32`.
    pub(crate) fn take_u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    /// Takes a `u32` length, then that many bytes.
    pub(crate) fn take_len_prefixed(&mut self) -> Result<&'a [u8]> {
        let len = self.take_u32()? as usize;
        self.take(len)
    }

    /// Returns the bytes not read yet, consuming them.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.bytes[self.pos..];
        self.pos = self.bytes.len();
        out
    }

    /// Returns true when every byte was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}
