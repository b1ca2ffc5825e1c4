//! Filters that a layer above pushes into scans, so that a range returns only the rows the
//! reader wants instead of every row of the span.
//!
//! ```text
//!   SQL: SELECT * FROM t WHERE v > 10
//!     Scan { span: /Table/t/1/…, limit: 1000, filter: Some(ScanFilter { program: <v > 10> }) }
//!       range: for each visible (key, value) in the span: keep it if the predicate says so;
//!              the limit counts kept rows; the resume span starts after the last kept one
//! ```
//!
//! The KV layer does not understand a filter's program: the node's upper layer (SQL) provides
//! a [`ScanFilters`] that compiles it into a predicate over encoded keys and values, and the
//! server wires it into its store. So the layers stay in order: KV knows only this trait.
//!
//! # Contract
//!
//! - A filter is an optimisation, never a semantics: the reader applies its own filter to what
//!   comes back, so a range that cannot compile a program (an older node, a bug) returns every
//!   row and the answer is the same. A predicate must therefore keep a row it cannot judge
//!   (one whose evaluation fails), so that the reader sees it and reports the error.
//! - A predicate is a pure function of the key and the value: the same rows give the same
//!   answer on every replica and every retry.
//! - Transactions track the whole span a scan covered (up to its resume span), filtered rows
//!   included, so a refresh still notices any write in it.

use std::fmt::Debug;

use serde::{Deserialize, Serialize};
use shoal_keys::Key;

/// A filter a scan applies where the data is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanFilter {
    /// The program, in the encoding of the layer that made it.
    #[serde(with = "serde_bytes")]
    pub program: Vec<u8>,
}

/// A predicate over one (key, value): true keeps the row.
pub type RowPredicate<'a> = Box<dyn FnMut(&Key, &[u8]) -> bool + 'a>;

/// Compiles [`ScanFilter`] programs into predicates; provided by the layer that makes them.
pub trait ScanFilters: Send + Sync + Debug {
    /// Returns the predicate of `filter`, or None if this node cannot run it (the scan then
    /// keeps every row).
    fn compile<'a>(&'a self, filter: &ScanFilter) -> Option<RowPredicate<'a>>;
}

/// Compiles nothing: every scan returns every row. For nodes without an upper layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoScanFilters;

impl ScanFilters for NoScanFilters {
    fn compile<'a>(&'a self, _: &ScanFilter) -> Option<RowPredicate<'a>> {
        None
    }
}
