//! Errors of a node: why it could not start, and why a cluster operation failed.

use shoal_api::KvError;

/// A node's failure, worded for the operator who must act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not start (most often: the port is in use).
    #[error("cannot listen on {addr} ({flag}): {reason}")]
    Listen {
        /// The command-line flag that named the address.
        flag: &'static str,
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The store could not be opened or read.
    #[error("store: {0}")]
    Store(String),
    /// The threads that run SQL could not start.
    #[error("cannot start the SQL runtime: {0}")]
    SqlRuntime(String),
    /// The store belongs to another cluster than the nodes it was asked to join.
    #[error(
        "the store belongs to cluster {store_cluster}, but the node at {addr} belongs to \
         cluster {peer_cluster}; use an empty --store to join that cluster"
    )]
    ForeignCluster {
        /// The store's cluster.
        store_cluster: String,
        /// The peer that answered.
        addr: String,
        /// The peer's cluster.
        peer_cluster: String,
    },
    /// None of the `--join` addresses answered in time.
    #[error("none of the --join addresses answered within {waited_secs}s: {details}")]
    JoinUnreachable {
        /// How long the node tried.
        waited_secs: u64,
        /// Each address and what happened.
        details: String,
    },
    /// A `--join` address is malformed or does not resolve.
    #[error("bad --join address {addr:?}: {reason}")]
    BadJoinAddress {
        /// The address as given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// `shoal init` was sent to a node that is already part of a cluster.
    #[error("the cluster is already initialized (cluster {0})")]
    AlreadyInitialized(String),
    /// The node is not part of an initialized cluster yet.
    #[error("this node is not part of an initialized cluster yet; run `shoal init`")]
    NotInitialized,
    /// A peer refused or failed a cluster operation.
    #[error("{0}")]
    Peer(String),
    /// A KV operation failed.
    #[error(transparent)]
    Kv(#[from] KvError),
}

impl Error {
    /// Wraps a storage error.
    pub fn storage(e: shoal_storage::Error) -> Error {
        Error::Store(e.to_string())
    }
}

/// A result with a node [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
