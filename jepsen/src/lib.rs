//! Shoal's Jepsen-style harness: it starts real `shoal` processes, attacks them with faults
//! (nemeses) while clients run a workload, records every operation in a history and checks the
//! history against a model of what the database promises.
//!
//! ```text
//!   clients ──HTTP /v1/kv──▶ shoal n1..nN ◀── nemesis: partitions, kill -9, pause, clocks, splits
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
//! Out of scope here: transactional workloads over SQL (a later part of the harness).

pub mod checker;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod report;
pub mod run;
pub mod workload;
