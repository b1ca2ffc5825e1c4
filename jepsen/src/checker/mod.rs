//! History checkers.
//!
//! - [`linear`]: the generic linearizability search (Wing–Gong with Lowe's memoisation).
//! - [`register`]: the register workload's checker, one compare-and-set register per key.
//! - [`list_append`]: Elle's dependency-cycle search over list-append transactions.
//! - [`bank`]: money is conserved and never negative in every read.
//! - [`set`]: every acknowledged insert is in the final read, and nothing else.

pub mod bank;
pub mod linear;
pub mod list_append;
pub mod register;
pub mod set;

#[cfg(test)]
mod list_append_tests;
#[cfg(test)]
mod tests;
