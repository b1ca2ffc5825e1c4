//! Executing set operations: `UNION`, `INTERSECT` and `EXCEPT`, with or without `ALL`.
//!
//! ```text
//!   left  {1, 1, 2, NULL}      right {1, NULL, NULL, 3}
//!
//!   UNION ALL      1 1 2 NULL 1 NULL NULL 3      both inputs, in order
//!   UNION          1 2 NULL 3                    first occurrences
//!   INTERSECT ALL  1 NULL                        min(m, n) copies of each row
//!   INTERSECT      1 NULL
//!   EXCEPT ALL     1 2                           max(m - n, 0) copies
//!   EXCEPT         2
//! ```
//!
//! Rows compare as in DISTINCT, so NULLs equal each other (PostgreSQL's rule for set
//! operations: `NULL INTERSECT NULL` is one NULL row). UNION ALL streams; the others hold the
//! right input's distinct rows with their counts (INTERSECT, EXCEPT) or every distinct row
//! seen (UNION) under the statement's memory budget, and stream the left input against them.
//! Output order is the left input's, then (for UNION) the right's: only an ORDER BY over the
//! whole operation promises an order.

use std::collections::HashMap;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::exec::{Exec, Row, Rows, build, cooperative};
use crate::memory::row_bytes;
use crate::plan::{Plan, SetOperator};

/// The rows of `left op right`.
pub(crate) fn set_operation(op: SetOperator, all: bool, left: Plan, right: Plan, x: &Exec) -> Rows {
    let (left, right) = (build(left, x, None), build(right, x, None));
    if op == SetOperator::Union {
        let both = left.chain(right).boxed();
        return match all {
            true => both,
            false => crate::exec::distinct(both, Vec::new(), x),
        };
    }
    let mut reservation = x.memory.reservation(match op {
        SetOperator::Intersect => "INTERSECT",
        _ => "EXCEPT",
    });
    let rows = async move {
        let mut counts: HashMap<Row, usize> = HashMap::new();
        let mut right = right;
        while let Some(row) = right.try_next().await? {
            match counts.get_mut(&row) {
                Some(n) => *n += 1,
                None => {
                    reservation.grow(row_bytes(&row))?;
                    counts.insert(row, 1);
                }
            }
        }
        // EXCEPT (without ALL) emits each surviving row once: it is then counted here, so
        // that its repeats are dropped like rows of the right input.
        let kept = left.try_filter_map(move |row| {
            let keep = match (op, all, counts.get_mut(&row)) {
                (SetOperator::Intersect, _, Some(n)) if *n > 0 => {
                    *n = if all { *n - 1 } else { 0 };
                    Ok(true)
                }
                (SetOperator::Intersect, ..) => Ok(false),
                (_, true, Some(n)) if *n > 0 => {
                    *n -= 1;
                    Ok(false)
                }
                (_, true, _) => Ok(true),
                (_, false, Some(_)) => Ok(false),
                (_, false, None) => reservation.grow(row_bytes(&row)).map(|()| {
                    counts.insert(row.clone(), 0);
                    true
                }),
            };
            futures::future::ready(keep.map(|keep| keep.then_some(row)))
        });
        Ok::<_, crate::error::SqlError>(kept)
    };
    cooperative(stream::once(rows).try_flatten().boxed())
}
