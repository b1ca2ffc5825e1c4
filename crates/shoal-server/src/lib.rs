//! A Shoal node: everything `shoal start` runs, wired together.
//!
//! ```text
//!             HTTP /v1/kv, /v1/nodes, /v1/cluster/init        peers (Rpc lanes)
//!                          │                                    │
//!                          ▼                                    ▼
//!   ┌──────────── Server ─────────────────────────────────────────────────────┐
//!   │ http ──▶ KvClient ──▶ DistSender ──▶ RpcNodeSender ─┬─▶ local Store    │
//!   │                                                     └─▶ Rpc(Kv) ─▶ peer │
//!   │ membership: Hello / Join / Bootstrap      gossip: node statuses, liveness │
//!   │ ident: cluster id, node id, peers (store-local records)                   │
//!   └──────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! - [`Server::bind`] opens the store and both listeners; [`Server::join_cluster`] waits until
//!   the node belongs to a cluster (see [`membership`] for how clusters form).
//! - Every node serves every key: requests are routed to leaseholders through DistSender.
//! - Ranges manage themselves: each node heartbeats its [`liveness`] record, and its
//!   replicate queue keeps the ranges it leads at the replication factor ([`settings`]) on
//!   live nodes, choosing changes with the [`allocator`].
//!
//! # Out of scope
//!
//! TLS; locality-aware placement.

pub mod admin;
pub mod allocator;
pub mod control;
pub mod error;
pub mod gossip;
mod http;
mod http_cluster;
mod http_sql;
pub mod http_txn;
pub mod ident;
pub mod kv_sender;
pub mod liveness;
pub mod membership;
pub mod metrics;
pub mod pgwire;
pub mod pgwire_extended;
mod replicate_queue;
mod server;
pub mod settings;
pub mod split_queue;
pub mod status;
pub mod test_hooks;

#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod sql_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;

pub use error::{Error, Result};
pub use gossip::{NodeStatus, NodeView};
pub use http::{DEFAULT_SCAN_LIMIT, MAX_SCAN_LIMIT};
pub use membership::InitReport;
pub use server::{Cluster, Server, ServerConfig};
pub use test_hooks::TestHooks;
