//! Hybrid logical clock (HLC) for Shoal.
//!
//! Every version in Shoal's MVCC store, every transaction's read and write timestamp and every
//! message between nodes carries an HLC [`Timestamp`]: a physical wall-clock reading in
//! nanoseconds plus a logical counter that orders events sharing one wall reading. The clock
//! algorithm (Kulkarni et al., "Logical Physical Clocks and Consistent Snapshots in Globally
//! Distributed Databases", 2014) comes from the `hybrid-clocks` crate; this crate wraps it so
//! the rest of Shoal sees one small, `Copy`, totally ordered timestamp type with a fixed-width
//! order-preserving encoding, and a thread-safe [`Clock`].
//!
//! ```text
//!   node A  now() ─▶ 1700000000.000000100,0 ──message──▶ node B (physical 1700000000.000000090)
//!                                                       update(): B's clock moves to ...100,0
//!                                                       now()   : ...100,1  (happens-after A)
//! ```
//!
//! # Invariants
//!
//! - [`Clock::now`] is strictly monotonic per clock, even when the physical clock steps back.
//! - After [`Clock::update`] accepted a remote reading `r`, every later `now()` is `> r`.
//! - A remote reading more than `max_offset` ahead of the local *physical* clock is rejected
//!   with [`Error::RemoteClockAhead`] and leaves the clock untouched: forwarding to it would let
//!   one bad clock drag the whole cluster into the future (CockroachDB's
//!   `UpdateAndCheckMaxOffset` behaves the same way).
//!
//! # Injection
//!
//! Only this crate reads the system clock. The physical source is a [`PhysicalClock`] trait
//! object: [`SystemClock`] reads `SystemTime` plus an offset that can be changed at run time
//! (the Jepsen harness skews one node with it), and [`ManualClock`] is set by tests.
//!
//! # Out of scope
//!
//! Fencing a node whose clock drifted beyond `max_offset` from the majority belongs to node
//! liveness (`shoal-kvserver`), which measures peer offsets with this clock's readings.
//!
//! # Hazards
//!
//! - `max_offset` is a promise made by the operator: linearizability of reads relies on no two
//!   clocks being further apart than it. The rejection in `update` only detects violations that
//!   a message happens to reveal.
//! - `Timestamp::wall` is nanoseconds since the Unix epoch; `u64` lasts until the year 2554.

mod clock;
mod error;
mod timestamp;

pub use clock::{Clock, DEFAULT_MAX_OFFSET, ManualClock, PhysicalClock, SystemClock};
pub use error::{Error, Result};
pub use timestamp::Timestamp;
