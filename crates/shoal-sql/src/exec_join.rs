//! Executing joins: hash joins for equality conditions, nested loops for the rest.
//!
//! ```text
//!   hash join on #0 = #3                 nested loop on (#0 + #3) > 7
//!   ├─ left: streamed, each row probes   ├─ left: streamed
//!   └─ right: read once into a table     └─ right: read once, every left row
//!      keyed by its key values              meets every right row
//! ```
//!
//! Both read their right input completely before the first left row, and hold it under the
//! statement's memory budget ([`crate::memory`]); the left input streams, so a join's memory
//! is its right side. A hash join costs one pass over each input plus the matching pairs; a
//! nested loop costs the product of the inputs, which is why the optimizer turns every
//! equality between the two sides into hash keys ([`crate::optimizer_join`]).
//!
//! NULLs: a row whose key holds a NULL matches nothing (`NULL = x` is never true), and in a
//! LEFT join its left row is padded with NULLs like any unmatched one. Key values compare as
//! `=` does for the types the optimizer lets through (numbers of any width alike, text with
//! text): [`Value`]'s `Hash` agrees with its equality across numeric types.
//!
//! Out of scope here: merge joins, index lookup joins, spilling a build side to disk.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::{Result, SqlError};
use crate::exec::{Exec, Row, Rows, build, cooperative, passes};
use crate::expr::{EvalContext, Expr};
use crate::memory::{Reservation, row_bytes};
use crate::plan::{JoinKind, Plan};
use crate::types::Value;

/// A hash join's key expressions: one over the left row and one over the right row per key.
pub(crate) struct JoinKeys {
    /// Over the left row.
    pub(crate) left: Vec<Expr>,
    /// Over the right row.
    pub(crate) right: Vec<Expr>,
}

/// Every left row against every right row; `on` over the combined row.
pub(crate) fn nested_loop(
    left: Plan,
    right: Plan,
    kind: JoinKind,
    on: Option<Expr>,
    right_width: usize,
    x: &Exec,
) -> Rows {
    let right_rows = build(right, x, None);
    let left_rows = build(left, x, None);
    let ctx = x.ctx;
    let mut reservation = x.memory.reservation("a nested-loop join");
    let joined = async move {
        let right: Arc<Vec<Row>> = Arc::new(collect_reserved(right_rows, &mut reservation).await?);
        Ok::<_, SqlError>(
            left_rows
                .and_then(move |l| {
                    let _held = &reservation;
                    let candidates = right.iter();
                    let rows = join_row(&l, candidates, kind, on.as_ref(), right_width, &ctx);
                    futures::future::ready(rows)
                })
                .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
                .try_flatten(),
        )
    };
    cooperative(stream::once(joined).try_flatten().boxed())
}

/// Each left row against the right rows with equal keys; `on` decides among them.
pub(crate) fn hash_join(
    left: Plan,
    right: Plan,
    kind: JoinKind,
    keys: JoinKeys,
    on: Option<Expr>,
    right_width: usize,
    x: &Exec,
) -> Rows {
    let mut right_rows = build(right, x, None);
    let left_rows = build(left, x, None);
    let ctx = x.ctx;
    let mut reservation = x.memory.reservation("a hash join");
    let joined = async move {
        let mut table: HashMap<Vec<Value>, Vec<Row>> = HashMap::new();
        while let Some(row) = right_rows.try_next().await? {
            let key = eval_all(&keys.right, &row, &ctx)?;
            if key.iter().any(Value::is_null) {
                // It can match no left row.
                continue;
            }
            reservation.grow(row_bytes(&row) + row_bytes(&key))?;
            table.entry(key).or_default().push(row);
        }
        let left_keys = keys.left;
        Ok::<_, SqlError>(
            left_rows
                .and_then(move |l| {
                    let _held = &reservation;
                    let rows = eval_all(&left_keys, &l, &ctx).and_then(|key| {
                        let candidates = match key.iter().any(Value::is_null) {
                            true => None,
                            false => table.get(&key),
                        };
                        let candidates = candidates.into_iter().flatten();
                        join_row(&l, candidates, kind, on.as_ref(), right_width, &ctx)
                    });
                    futures::future::ready(rows)
                })
                .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
                .try_flatten(),
        )
    };
    cooperative(stream::once(joined).try_flatten().boxed())
}

/// Reads all of `rows`, reserving each.
async fn collect_reserved(mut rows: Rows, reservation: &mut Reservation) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        reservation.grow(row_bytes(&row))?;
        out.push(row);
    }
    Ok(out)
}

fn eval_all(exprs: &[Expr], row: &[Value], ctx: &EvalContext) -> Result<Vec<Value>> {
    exprs.iter().map(|e| e.eval(row, ctx)).collect()
}

/// Joins one left row with each candidate right row that passes `on`; a LEFT join pads a
/// left row that none passed.
fn join_row<'a>(
    left: &Row,
    candidates: impl Iterator<Item = &'a Row>,
    kind: JoinKind,
    on: Option<&Expr>,
    right_width: usize,
    ctx: &EvalContext,
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for r in candidates {
        let mut row = Vec::with_capacity(left.len() + r.len());
        row.extend(left.iter().cloned());
        row.extend(r.iter().cloned());
        if on.map_or(Ok(true), |on| passes(on, &row, ctx))? {
            out.push(row);
        }
    }
    if out.is_empty() && kind == JoinKind::Left {
        let mut row = left.clone();
        row.extend(std::iter::repeat_n(Value::Null, right_width));
        out.push(row);
    }
    Ok(out)
}
