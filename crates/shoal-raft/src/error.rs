//! Errors of the Raft adapter crate.

/// A Raft adapter error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] shoal_storage::Error),
    /// Stored or received bytes could not be decoded.
    #[error("cannot decode {what}: {message}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
    /// A component this call needs has stopped.
    #[error("stopped: {0}")]
    Stopped(String),
}

/// The Raft adapter crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::other(e)
    }
}
