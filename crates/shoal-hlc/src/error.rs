//! Errors of the clock crate.

use std::time::Duration;

use crate::Timestamp;

/// A clock error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A remote clock reading was further ahead of the local physical clock than `max_offset`.
    #[error(
        "remote clock reading {remote} is {ahead:?} ahead of the local physical clock {local}, \
         more than the maximum offset {max_offset:?}"
    )]
    RemoteClockAhead {
        /// The rejected remote reading.
        remote: Timestamp,
        /// The local physical clock reading it was compared with.
        local: Timestamp,
        /// How far the remote reading was ahead.
        ahead: Duration,
        /// The configured maximum offset.
        max_offset: Duration,
    },
    /// A timestamp could not be decoded or parsed.
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
}

/// The clock crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
