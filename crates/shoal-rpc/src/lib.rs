//! Shoal's node-to-node transport.
//!
//! Every message between nodes — Raft traffic of every range now, KV requests later — goes
//! through an [`Rpc`] endpoint. It is the only crate that opens sockets between nodes.
//!
//! ```text
//!   node 1                                             node 2
//!   ┌───────────┐  Raft lane: one TCP connection      ┌───────────┐
//!   │ Rpc       │═══ deliver(hdr, [m, m, m]) ════════▶│ Rpc       │──▶ Handler::handle(m) × 3
//!   │  queues   │◀══ (hdr, [r, r, r]) ════════════════│  listener │
//!   │  per peer │  Snapshot lane: its own connection  │           │
//!   └───────────┘═════════════════════════════════════└───────────┘
//! ```
//!
//! - **Multiplexed and long-lived**: one tarpc connection per peer and [`Lane`], with many
//!   calls in flight; re-dialled when it breaks.
//! - **Batched**: Raft messages queued for the same peer travel in one call; KV requests, which
//!   each wait for a Raft round trip, travel in calls of their own so none waits for another.
//! - **Bounded**: every call has a deadline; a peer that accepts and never answers costs its
//!   callers their deadline and nobody else anything.
//! - **Clocked**: each request and answer carries the sender's HLC reading (design §4).
//! - **Broken circuits**: a peer that stops answering (partitioned, paused) is found by a
//!   probe within seconds; calls to it then fail at once instead of at their deadlines.
//! - **Faults**: [`Faults`] drops or delays messages to chosen peers, for tests.
//!
//! The payloads are opaque bytes: the layers above encode their own messages.
//!
//! # Out of scope
//!
//! TLS and authentication; flow control beyond the frame limit; cluster membership (the
//! caller tells the endpoint where peers are with [`Rpc::set_address`]).

mod breaker;
mod error;
mod faults;
mod node;
pub mod wire;

#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use faults::{Faults, PeerFault};
pub use node::{Handler, Rpc, RpcConfig};
pub use wire::Lane;
