//! History checkers.
//!
//! - [`linear`]: the generic linearizability search (Wing–Gong with Lowe's memoisation).
//! - [`register`]: the register workload's checker, one compare-and-set register per key.
//! - [`list_append`]: Elle's dependency-cycle search over list-append transactions.
//! - [`bank`]: money is conserved and never negative in every read.
//! - [`set`]: every acknowledged insert is in the final read, and nothing else.
//! - [`monotonic`]: read-then-insert increments form one chain of vals, agreeing with commit
//!   timestamps and real time, with nothing lost, duplicated or skipped.
//! - [`sequential`]: subkeys written one after another are never seen out of order.
//! - [`g2`]: at most one of two predicate-guarded inserts per key succeeds (no write skew).

pub mod bank;
pub mod g2;
pub mod linear;
pub mod list_append;
pub mod monotonic;
pub mod register;
pub mod sequential;
pub mod set;

#[cfg(test)]
mod list_append_tests;
#[cfg(test)]
mod tests;

/// How many examples each of a verdict's lists of problems keeps: enough to diagnose, bounded
/// for long runs (counters give the totals).
pub const EXAMPLES: usize = 100;

/// Appends `item` to a verdict's list of problems unless it holds [`EXAMPLES`] already.
pub(crate) fn note<T>(list: &mut Vec<T>, item: T) {
    if list.len() < EXAMPLES {
        list.push(item);
    }
}
