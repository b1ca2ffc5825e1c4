//! Errors of the transport.

use std::time::Duration;

/// A failed call to another node. The variants say what the caller may do: a call that timed
/// out or broke may or may not have been delivered (ambiguous); an unreachable node was not
/// contacted at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No address is known for the node.
    #[error("node {0} has no known address")]
    UnknownNode(u64),
    /// The node could not be contacted; the message was not delivered.
    #[error("node {node} is unreachable: {reason}")]
    Unreachable {
        /// The target node.
        node: u64,
        /// Why.
        reason: String,
    },
    /// Nothing answered at an address dialled directly ([`crate::Rpc::call_addr`]).
    #[error("no answer from {addr}: {reason}")]
    NoAnswer {
        /// The address.
        addr: String,
        /// Why: connection refused, timed out, ...
        reason: String,
    },
    /// No answer before the deadline; the message may or may not have been handled.
    #[error("call to node {node} timed out after {after:?}")]
    Timeout {
        /// The target node.
        node: u64,
        /// The deadline that passed.
        after: Duration,
    },
    /// The connection failed during the call; the message may or may not have been handled.
    #[error("connection to node {node} failed: {reason}")]
    Connection {
        /// The target node.
        node: u64,
        /// Why.
        reason: String,
    },
    /// The node refused the call.
    #[error("node {node} refused the call: {reason}")]
    Refused {
        /// The target node.
        node: u64,
        /// Why.
        reason: String,
    },
    /// The listener could not start.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// The transport's result type.
pub type Result<T> = std::result::Result<T, Error>;
