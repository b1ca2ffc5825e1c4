//! Top-K sort: `ORDER BY … LIMIT k` keeps only the k best rows seen so far.
//!
//! A sort under a LIMIT (through projections) is told how many rows its consumer can take
//! (`limit + offset`). It keeps those rows in a max-heap ordered by the sort keys, the worst
//! on top: a new row better than the worst replaces it. Memory holds k rows, not the
//! input, and the work is n log k.
//!
//! ```text
//!   ORDER BY v LIMIT 2      input 5 1 4 2 3
//!   heap (worst on top)     [5] [5 1] [4 1] [2 1] [2 1]   → 1 2
//! ```
//!
//! Ties keep their input order, as the full sort's do: each row carries its arrival number,
//! and among equal keys the later row is the worse one.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::{Result, SqlError};
use crate::exec::{Row, Rows, compare_keys, cooperative};
use crate::expr::EvalContext;
use crate::memory::{Reservation, row_bytes};
use crate::plan::SortKey;
use crate::types::Value;

/// A row in the heap, with its sort key values and arrival number.
struct Ranked {
    key: Vec<Value>,
    seq: u64,
    row: Row,
    keys: Arc<Vec<SortKey>>,
    bytes: usize,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_keys(&self.key, &other.key, &self.keys).then(self.seq.cmp(&other.seq))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// The first `k` rows of `input` in `keys` order.
pub(crate) fn top_k(
    mut input: Rows,
    keys: Vec<SortKey>,
    k: u64,
    mut reservation: Reservation,
    ctx: EvalContext,
) -> Rows {
    let keys = Arc::new(keys);
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    let rows = stream::once(async move {
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::new();
        let mut seq = 0;
        while let Some(row) = input.try_next().await? {
            if k == 0 {
                break;
            }
            let key: Vec<Value> =
                keys.iter().map(|s| s.expr.eval(&row, &ctx)).collect::<Result<_>>()?;
            let bytes = row_bytes(&row) + row_bytes(&key);
            let ranked = Ranked { key, seq, row, keys: keys.clone(), bytes };
            seq += 1;
            if heap.len() == k {
                if heap.peek().is_some_and(|worst| ranked >= *worst) {
                    continue;
                }
                if let Some(worst) = heap.pop() {
                    reservation.shrink(worst.bytes);
                }
            }
            reservation.grow(ranked.bytes)?;
            heap.push(ranked);
        }
        let sorted: Vec<Row> = heap.into_sorted_vec().into_iter().map(|r| r.row).collect();
        // The closure owns the reservation: it lives as long as the rows it accounts for.
        Ok::<_, SqlError>(stream::iter(sorted).map(move |row| {
            let _held = &reservation;
            Ok(row)
        }))
    })
    .try_flatten()
    .boxed();
    cooperative(rows)
}
