//! History checkers.
//!
//! - [`linear`]: the generic linearizability search (Wing–Gong with Lowe's memoisation).
//! - [`register`]: the register workload's checker, one compare-and-set register per key.

pub mod linear;
pub mod register;

#[cfg(test)]
mod tests;
