//! Errors of the keys crate.

/// A key encoding or decoding error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Encoded bytes ended before a value was complete.
    #[error("truncated key encoding: {0}")]
    Truncated(&'static str),
    /// Encoded bytes do not form a valid value.
    #[error("invalid key encoding: {0}")]
    Invalid(String),
}

/// The keys crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
