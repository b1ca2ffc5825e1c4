//! Memory budgets: how much a query's operators may hold at once.
//!
//! Streaming operators (scan, filter, project, limit) hold a page of rows at a time and need
//! no budget. The operators that must see all of their input before they answer, or remember
//! what they have seen, reserve what they buffer from the statement's [`MemoryBudget`]:
//!
//! ```text
//!   budget 64 MiB ─┬─ sort            reserves each row it buffers
//!                  ├─ hash join       reserves its build side
//!                  ├─ aggregate       reserves each new group
//!                  └─ distinct        reserves each new row
//!   a reservation past the limit → 53200 "out of memory", the statement stops
//! ```
//!
//! A [`Reservation`] gives its bytes back when it is dropped, so an operator that finishes
//! (or a statement that fails or is cancelled) frees its share at once. The sizes are
//! estimates ([`row_bytes`]): a value's inline size plus the heap bytes of its text or bytes;
//! they bound what a query holds, they are not an allocator's exact count.
//!
//! Invariants: the budget's `used` is the sum of its live reservations; a failed reservation
//! adds nothing.
//!
//! Out of scope: spilling to disk (a query over its budget fails instead, as CockroachDB's
//! does with temporary storage off), and a node-wide pool shared by concurrent queries (each
//! statement has its own limit).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Result, SqlError};
use crate::types::Value;

/// The default per-query memory limit when nothing else sets one: 256 MiB.
pub const DEFAULT_QUERY_MEMORY_LIMIT: usize = 256 << 20;

/// One statement's memory limit and what its operators hold now.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    limit: usize,
    used: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    /// Where the reservations made through this handle are also counted: one operator's
    /// share, for EXPLAIN ANALYZE.
    meter: Option<Arc<Meter>>,
}

/// What one operator's reservations hold now, and the most they held at once.
#[derive(Debug, Default)]
pub struct Meter {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Meter {
    /// The most bytes held at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: usize) {
        let now = self.now.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn sub(&self, bytes: usize) {
        self.now.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget::new(DEFAULT_QUERY_MEMORY_LIMIT)
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes, none used.
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            limit,
            used: Arc::new(AtomicUsize::new(0)),
            peak: Arc::default(),
            meter: None,
        }
    }

    /// The same budget, with the reservations made through the copy also counted by
    /// `meter` (an operator's, under EXPLAIN ANALYZE).
    pub fn metered(&self, meter: Arc<Meter>) -> MemoryBudget {
        MemoryBudget { meter: Some(meter), ..self.clone() }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most bytes reserved at once so far (EXPLAIN ANALYZE).
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// The bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation for the operator `what` (named in the error if it runs out).
    pub fn reservation(&self, what: &'static str) -> Reservation {
        Reservation { budget: self.clone(), bytes: 0, what }
    }

    fn take(&self, bytes: usize, what: &str) -> Result<()> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(bytes);
            if next > self.limit {
                return Err(SqlError::OutOfMemory(format!(
                    "{what} needs more than the query's memory limit of {} \
                     (sql.query_memory_limit)",
                    show_bytes(self.limit)
                )));
            }
            match self.used.compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::Relaxed);
                    if let Some(meter) = &self.meter {
                        meter.add(bytes);
                    }
                    return Ok(());
                }
                Err(current) => used = current,
            }
        }
    }
}

/// Bytes held by one operator, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: usize,
    what: &'static str,
}

impl Reservation {
    /// Reserves `bytes` more, or fails with 53200 (and reserves nothing) past the limit.
    pub fn grow(&mut self, bytes: usize) -> Result<()> {
        self.budget.take(bytes, self.what)?;
        self.bytes += bytes;
        Ok(())
    }

    /// Gives back `bytes` of what this reservation holds (at most all of it).
    pub fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        self.budget.give_back(bytes);
        self.bytes -= bytes;
    }

    /// The bytes this reservation holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

impl MemoryBudget {
    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
        if let Some(meter) = &self.meter {
            meter.sub(bytes);
        }
    }
}

/// An estimate of the memory a row of `values` holds.
pub fn row_bytes(values: &[Value]) -> usize {
    std::mem::size_of::<Vec<Value>>() + values.iter().map(value_bytes).sum::<usize>()
}

/// An estimate of the memory a value holds: inline, plus what it points to.
pub fn value_bytes(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::Text(s) => s.capacity(),
            Value::Bytes(b) => b.capacity(),
            _ => 0,
        }
}

/// `64 MiB`, `1.5 GiB`, `512 B`.
pub fn show_bytes(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_add_up_fail_past_the_limit_and_give_back_when_dropped() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reservation("sort");
        a.grow(60).unwrap();
        let mut b = budget.reservation("hash join");
        let err = b.grow(41).unwrap_err();
        assert_eq!(err.sqlstate(), "53200");
        assert!(err.to_string().contains("hash join"), "{err}");
        assert_eq!(budget.used(), 60, "a failed reservation takes nothing");
        b.grow(40).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(show_bytes(512), "512 B");
        assert_eq!(show_bytes(64 << 20), "64 MiB");
        assert_eq!(show_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn text_counts_its_heap_bytes() {
        let small = row_bytes(&[Value::Int(1)]);
        let text = row_bytes(&[Value::Text("x".repeat(1000))]);
        assert!(text >= small + 1000, "{small} {text}");
    }
}
