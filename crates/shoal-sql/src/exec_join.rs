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
//! LEFT join its left row is padded with NULLs like any unmatched one. A FULL join also marks
//! each right row a left row matched, and after the left input ends emits the unmarked ones
//! padded on the left. Key values compare as
//! `=` does for the types the optimizer lets through (numbers of any width alike, text with
//! text): [`Value`]'s `Hash` agrees with its equality across numeric types.
//!
//! Index lookup joins are [`crate::exec_lookup`]'s. Out of scope: merge joins, spilling a
//! build side to disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    let left_width = left.width();
    let right_rows = build(right, x, None);
    let left_rows = build(left, x, None);
    let ctx = x.ctx;
    let mut reservation = x.memory.reservation("a nested-loop join");
    let joined = async move {
        let right: Arc<Vec<Row>> = Arc::new(collect_reserved(right_rows, &mut reservation).await?);
        let matched = Arc::new(Mutex::new(vec![false; right.len()]));
        let (all_right, seen) = (right.clone(), matched.clone());
        let pairs = left_rows
            .and_then(move |l| {
                let _held = &reservation;
                let candidates = right.iter().enumerate();
                let mut matched = matched.lock().expect("poisoned");
                let track = (kind == JoinKind::Full).then_some(matched.as_mut_slice());
                let rows = join_row(&l, candidates, kind, on.as_ref(), right_width, track, &ctx);
                futures::future::ready(rows)
            })
            .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
            .try_flatten();
        Ok::<_, SqlError>(pairs.chain(unmatched(kind, all_right, seen, left_width)))
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
    let left_width = left.width();
    let mut right_rows = build(right, x, None);
    let left_rows = build(left, x, None);
    let ctx = x.ctx;
    let mut reservation = x.memory.reservation("a hash join");
    let joined = async move {
        // Right rows by key, as positions in `all`; a FULL join keeps even the rows whose
        // key holds a NULL, which match nothing, to pad them at the end.
        let mut all: Vec<Row> = Vec::new();
        let mut table: HashMap<Vec<Value>, Vec<usize>> = HashMap::new();
        while let Some(row) = right_rows.try_next().await? {
            let key = eval_all(&keys.right, &row, &ctx)?;
            let matchable = !key.iter().any(Value::is_null);
            if !matchable && kind != JoinKind::Full {
                continue;
            }
            reservation.grow(row_bytes(&row) + row_bytes(&key))?;
            if matchable {
                table.entry(key).or_default().push(all.len());
            }
            all.push(row);
        }
        let all = Arc::new(all);
        let matched = Arc::new(Mutex::new(vec![false; all.len()]));
        let (all_right, seen) = (all.clone(), matched.clone());
        let left_keys = keys.left;
        let pairs = left_rows
            .and_then(move |l| {
                let _held = &reservation;
                let rows = eval_all(&left_keys, &l, &ctx).and_then(|key| {
                    let positions = match key.iter().any(Value::is_null) {
                        true => None,
                        false => table.get(&key),
                    };
                    let candidates = positions.into_iter().flatten().map(|&i| (i, &all[i]));
                    let mut matched = matched.lock().expect("poisoned");
                    let track = (kind == JoinKind::Full).then_some(matched.as_mut_slice());
                    join_row(&l, candidates, kind, on.as_ref(), right_width, track, &ctx)
                });
                futures::future::ready(rows)
            })
            .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
            .try_flatten();
        Ok::<_, SqlError>(pairs.chain(unmatched(kind, all_right, seen, left_width)))
    };
    cooperative(stream::once(joined).try_flatten().boxed())
}

/// After the left input of a FULL join: its right rows that no left row matched, padded on
/// the left with NULLs. Nothing for other joins.
fn unmatched(
    kind: JoinKind,
    right: Arc<Vec<Row>>,
    matched: Arc<Mutex<Vec<bool>>>,
    left_width: usize,
) -> Rows {
    if kind != JoinKind::Full {
        return stream::empty().boxed();
    }
    let rows = stream::once(async move {
        let matched = matched.lock().expect("poisoned").clone();
        let padded: Vec<Result<Row>> = right
            .iter()
            .zip(matched)
            .filter(|(_, m)| !m)
            .map(|(r, _)| {
                let mut row = vec![Value::Null; left_width];
                row.extend(r.iter().cloned());
                Ok(row)
            })
            .collect();
        stream::iter(padded)
    })
    .flatten();
    cooperative(rows.boxed())
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

/// Joins one left row with each candidate right row (and its position) that passes `on`;
/// a LEFT or FULL join pads a left row that none passed, and a FULL join marks in `matched`
/// the right rows that passed.
fn join_row<'a>(
    left: &Row,
    candidates: impl Iterator<Item = (usize, &'a Row)>,
    kind: JoinKind,
    on: Option<&Expr>,
    right_width: usize,
    mut matched: Option<&mut [bool]>,
    ctx: &EvalContext,
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for (i, r) in candidates {
        let mut row = Vec::with_capacity(left.len() + r.len());
        row.extend(left.iter().cloned());
        row.extend(r.iter().cloned());
        if on.map_or(Ok(true), |on| passes(on, &row, ctx))? {
            if let Some(matched) = matched.as_deref_mut() {
                matched[i] = true;
            }
            out.push(row);
        }
    }
    if out.is_empty() && kind != JoinKind::Inner {
        let mut row = left.clone();
        row.extend(std::iter::repeat_n(Value::Null, right_width));
        out.push(row);
    }
    Ok(out)
}
