//! Shoal's Jepsen-style harness: it starts real `shoal` processes, attacks them with faults
//! (nemeses) while clients run a workload, records every operation in a history and checks the
//! history against a model of what the database promises.
//!
//! ```text
//!   clients ──HTTP /v1/kv, /v1/sql──▶ shoal n1..nN ◀── nemesis: partitions, kill -9, pause,
//!                                                   clocks, splits, lease transfers
//!      │                                          │
//!      └──────── history.jsonl (Jepsen format) ◀──┘
//!                     │
//!                     ▼
//!                 checker ──▶ valid / invalid (+ timeline page) / unknown (fails)
//! ```
//!
//! The checkers are the part that must be trusted most, so they are tested on their own with
//! histories that are known to be wrong (and against a brute-force oracle on tiny ones): a
//! checker that cannot fail proves nothing.
//!
//! Workloads: `register` (single keys, linearizability), `list-append` (multi-key SQL
//! transactions, serializability anomalies found the way Elle finds them), `bank` and
//! `bank-tables` (transfers over SQL: money conserved, never negative), `set` (unique
//! inserts, then a final read: nothing acknowledged lost), `monotonic` (increments stamped
//! with their commit timestamps: values and timestamps rise together, in real-time order),
//! `sequential` (subkeys written in order on different ranges and read back in reverse: no
//! later one without the earlier) and `g2` (predicate reads guarding inserts: no write skew).

pub mod checker;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod report;
pub mod run;
pub mod run_check;
pub mod sql;
pub mod workload;
pub mod workload_bank;
pub mod workload_g2;
pub mod workload_list_append;
pub mod workload_monotonic;
pub mod workload_sequential;
pub mod workload_set;
