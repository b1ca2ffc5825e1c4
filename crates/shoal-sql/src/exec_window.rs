//! Executing window functions ([`crate::window`]).
//!
//! The operator buffers its input (under the statement's memory budget), then computes each
//! call in turn: it sorts the row numbers by PARTITION BY, then ORDER BY, walks each
//! partition once, and gives every row its value. The output is the input rows, each with
//! one column per call appended, in the order of the last call's sort (as PostgreSQL's
//! output tends to be; only an ORDER BY promises an order).
//!
//! ```text
//!   rows  0 1 2 3 4           partition by a, order by b
//!   sort  3 0 4 │ 1 2         two partitions; peers share ORDER BY values
//!   frame of row 4 (ROWS 1 PRECEDING): rows [0, 4] of its partition
//! ```
//!
//! Frames: ROWS and GROUPS bounds are positions (of rows, of peer groups); RANGE offset
//! bounds are found by binary search on the one ORDER BY key, whose non-NULL values are
//! sorted (NULLs sit together at one end and are only ever in a NULL row's frame).
//! Aggregates reuse the previous row's accumulator while the frame only grows at its end,
//! so running totals and whole-partition aggregates cost one pass; a sliding frame is
//! folded afresh for each row (rows × frame width).
//!
//! The loops yield to the runtime every `YIELD_EVERY` steps, so a cancel or timeout stops
//! a long computation there.

use futures::stream::{self, StreamExt, TryStreamExt};
use rust_decimal::Decimal;

use crate::error::{Result, SqlError};
use crate::exec::{Exec, Row, Rows, build, compare_keys, cooperative};
use crate::exec_accumulate::Accumulator;
use crate::expr::{BinaryOp, EvalContext, Expr};
use crate::memory::{Reservation, row_bytes};
use crate::plan::{Plan, SortKey};
use crate::types::Value;
use crate::window::{FrameBound, FrameUnits, WindowCall, WindowFunction};

/// How many steps (rows folded, values computed) the operator takes between yields.
const YIELD_EVERY: u64 = 1024;

/// The rows of `source` with the value of each of `calls` appended.
pub(crate) fn window(source: Plan, calls: Vec<WindowCall>, x: &Exec) -> Rows {
    let mut input = build(source, x, None);
    let mut reservation = x.memory.reservation("window functions");
    let ctx = x.ctx;
    let rows = stream::once(async move {
        let mut rows: Vec<Row> = Vec::new();
        while let Some(row) = input.try_next().await? {
            reservation.grow(row_bytes(&row))?;
            rows.push(row);
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut columns = Vec::with_capacity(calls.len());
        let mut steps = Steps(0);
        for call in &calls {
            let (sorted, values) =
                evaluate(&rows, call, &order, &ctx, &mut reservation, &mut steps).await?;
            order = sorted;
            columns.push(values);
        }
        let mut out = Vec::with_capacity(rows.len());
        for &i in &order {
            let mut row = std::mem::take(&mut rows[i]);
            row.extend(columns.iter_mut().map(|c| std::mem::replace(&mut c[i], Value::Null)));
            out.push(row);
        }
        // The closure owns the reservation: it lives as long as the rows it accounts for.
        Ok::<_, SqlError>(stream::iter(out).map(move |row| {
            let _held = &reservation;
            Ok(row)
        }))
    })
    .try_flatten()
    .boxed();
    cooperative(rows)
}

/// Counts work, yielding to the runtime now and then.
struct Steps(u64);

impl Steps {
    async fn step(&mut self, n: u64) {
        let before = self.0 / YIELD_EVERY;
        self.0 += n;
        if self.0 / YIELD_EVERY != before {
            tokio::task::yield_now().await;
        }
    }
}

/// Computes `call` for every row: returns the row numbers in the call's sort order, and the
/// values by row number.
async fn evaluate(
    rows: &[Row],
    call: &WindowCall,
    base: &[usize],
    ctx: &EvalContext,
    reservation: &mut Reservation,
    steps: &mut Steps,
) -> Result<(Vec<usize>, Vec<Value>)> {
    let mut partition_keys = Vec::with_capacity(rows.len());
    let mut order_keys = Vec::with_capacity(rows.len());
    for row in rows {
        let p: Row = call.partition_by.iter().map(|e| e.eval(row, ctx)).collect::<Result<_>>()?;
        let o: Row = call.order_by.iter().map(|k| k.expr.eval(row, ctx)).collect::<Result<_>>()?;
        reservation.grow(row_bytes(&p) + row_bytes(&o) + 2 * std::mem::size_of::<usize>())?;
        partition_keys.push(p);
        order_keys.push(o);
        steps.step(1).await;
    }
    let by_partition: Vec<SortKey> = call
        .partition_by
        .iter()
        .map(|_| SortKey { expr: Expr::Literal(Value::Null), ascending: true, nulls_first: false })
        .collect();
    let mut sorted = base.to_vec();
    sorted.sort_by(|&a, &b| {
        compare_keys(&partition_keys[a], &partition_keys[b], &by_partition)
            .then_with(|| compare_keys(&order_keys[a], &order_keys[b], &call.order_by))
    });
    let start = offset(&call.frame.start, ctx, "starting")?;
    let end = offset(&call.frame.end, ctx, "ending")?;
    let mut values = vec![Value::Null; rows.len()];
    let mut first = 0;
    while first < sorted.len() {
        let mut last = first + 1;
        while last < sorted.len()
            && compare_keys(
                &partition_keys[sorted[first]],
                &partition_keys[sorted[last]],
                &by_partition,
            )
            .is_eq()
        {
            last += 1;
        }
        let partition = Partition::new(
            rows,
            &sorted[first..last],
            &order_keys,
            call,
            start.clone(),
            end.clone(),
        );
        partition.compute(ctx, &mut values, reservation, steps).await?;
        first = last;
    }
    Ok((sorted, values))
}

/// A frame bound's offset, evaluated once (it is a constant): PostgreSQL refuses NULL
/// (22004) and negative ones (22013).
fn offset(bound: &FrameBound, ctx: &EvalContext, which: &str) -> Result<Option<Value>> {
    let (FrameBound::Preceding(e) | FrameBound::Following(e)) = bound else { return Ok(None) };
    let value = e.eval(&[], ctx)?;
    if value.is_null() {
        return Err(SqlError::FunctionArgument {
            code: "22004",
            message: format!("frame {which} offset must not be null"),
        });
    }
    if value.sort_cmp(&Value::Int(0)).is_lt() {
        return Err(SqlError::FunctionArgument {
            code: "22013",
            message: format!("frame {which} offset must not be negative"),
        });
    }
    Ok(Some(value))
}

/// One partition of one call: its rows in order, and their peer groups.
struct Partition<'a> {
    rows: &'a [Row],
    /// Row numbers, in the call's order.
    order: &'a [usize],
    order_keys: &'a [Row],
    call: &'a WindowCall,
    start: Option<Value>,
    end: Option<Value>,
    /// The peer group of each position.
    group_of: Vec<usize>,
    /// Where each peer group starts; the last entry is the partition's length.
    group_starts: Vec<usize>,
}

impl<'a> Partition<'a> {
    fn new(
        rows: &'a [Row],
        order: &'a [usize],
        order_keys: &'a [Row],
        call: &'a WindowCall,
        start: Option<Value>,
        end: Option<Value>,
    ) -> Self {
        let mut group_of = Vec::with_capacity(order.len());
        let mut group_starts = Vec::new();
        for i in 0..order.len() {
            let peer = i > 0
                && compare_keys(&order_keys[order[i - 1]], &order_keys[order[i]], &call.order_by)
                    .is_eq();
            if !peer {
                group_starts.push(i);
            }
            group_of.push(group_starts.len() - 1);
        }
        group_starts.push(order.len());
        Partition { rows, order, order_keys, call, start, end, group_of, group_starts }
    }

    fn row(&self, position: usize) -> &'a Row {
        &self.rows[self.order[position]]
    }

    /// Where the peer group of `position` starts, and where it ends (exclusive).
    fn peers(&self, position: usize) -> (usize, usize) {
        let g = self.group_of[position];
        (self.group_starts[g], self.group_starts[g + 1])
    }

    async fn compute(
        &self,
        ctx: &EvalContext,
        values: &mut [Value],
        reservation: &mut Reservation,
        steps: &mut Steps,
    ) -> Result<()> {
        use WindowFunction as W;
        let n = self.order.len();
        let groups = self.group_starts.len() - 1;
        let arg = |i: usize, position: usize| -> Result<Value> {
            self.call.args.get(i).map_or(Ok(Value::Null), |a| a.eval(self.row(position), ctx))
        };
        // An aggregate's accumulator and the frame it has folded.
        let mut running: Option<(Accumulator, usize, usize)> = None;
        for i in 0..n {
            let value = match &self.call.function {
                W::RowNumber => Value::Int(i as i64 + 1),
                W::Rank => Value::Int(self.peers(i).0 as i64 + 1),
                W::DenseRank => Value::Int(self.group_of[i] as i64 + 1),
                W::PercentRank if n > 1 => Value::Float(self.peers(i).0 as f64 / (n - 1) as f64),
                W::PercentRank => Value::Float(0.0),
                W::CumeDist => Value::Float(self.peers(i).1 as f64 / n as f64),
                W::Ntile => ntile(arg(0, 0)?, i, n)?,
                W::Lag | W::Lead => {
                    let distance = match self.call.args.get(1) {
                        None => Value::Int(1),
                        Some(_) => arg(1, i)?,
                    };
                    match distance {
                        Value::Null => Value::Null,
                        Value::Int(d) => {
                            let d = if self.call.function == W::Lag { -d } else { d };
                            match i64::try_from(i).ok().and_then(|i| i.checked_add(d)) {
                                Some(t) if (0..n as i64).contains(&t) => arg(0, t as usize)?,
                                _ => arg(2, i)?,
                            }
                        }
                        other => {
                            return Err(SqlError::DatatypeMismatch(format!(
                                "the offset of lag and lead is an integer, not {}",
                                other.type_name()
                            )));
                        }
                    }
                }
                W::FirstValue | W::LastValue | W::NthValue => {
                    let (start, end) = self.frame(i, groups)?;
                    let target = match self.call.function {
                        W::FirstValue => Some(start),
                        W::LastValue => end.checked_sub(1),
                        _ => match arg(1, i)? {
                            Value::Null => None,
                            Value::Int(k) if k > 0 => {
                                usize::try_from(k - 1).ok().and_then(|k| start.checked_add(k))
                            }
                            _ => {
                                return Err(SqlError::FunctionArgument {
                                    code: "22016",
                                    message: "argument of nth_value must be greater than zero"
                                        .into(),
                                });
                            }
                        },
                    };
                    match target {
                        Some(t) if t >= start && t < end => arg(0, t)?,
                        _ => Value::Null,
                    }
                }
                W::Aggregate(a) => {
                    let (start, end) = self.frame(i, groups)?;
                    let reuse = matches!(&running, Some((_, s, e)) if *s == start && *e <= end);
                    if !reuse {
                        running = Some((Accumulator::new(a.function), start, start));
                    }
                    let (acc, _, folded) = running.as_mut().expect("set above");
                    for p in *folded..end.max(*folded) {
                        let row = self.row(p);
                        if let Some(v) = Accumulator::input(a, row, ctx)? {
                            acc.add(a, v, row, ctx, reservation)?;
                        }
                    }
                    steps.step(end.saturating_sub(*folded) as u64).await;
                    *folded = end.max(*folded);
                    acc.value(ctx)?
                }
            };
            reservation.grow(crate::memory::value_bytes(&value))?;
            values[self.order[i]] = value;
            steps.step(1).await;
        }
        Ok(())
    }

    /// The frame of position `i`: where it starts, and where it ends (exclusive). An
    /// empty frame has `start >= end`.
    fn frame(&self, i: usize, groups: usize) -> Result<(usize, usize)> {
        let n = self.order.len();
        let frame = &self.call.frame;
        let count = |v: &Option<Value>| -> usize {
            match v {
                Some(Value::Int(k)) => usize::try_from(*k).unwrap_or(usize::MAX),
                _ => 0,
            }
        };
        let (first_peer, end_peer) = self.peers(i);
        let g = self.group_of[i];
        let start = match (&frame.start, frame.units) {
            (FrameBound::UnboundedPreceding, _) => 0,
            (FrameBound::UnboundedFollowing, _) => n,
            (FrameBound::CurrentRow, FrameUnits::Rows) => i,
            (FrameBound::CurrentRow, _) => first_peer,
            (FrameBound::Preceding(_), FrameUnits::Rows) => i.saturating_sub(count(&self.start)),
            (FrameBound::Following(_), FrameUnits::Rows) => {
                i.saturating_add(count(&self.start)).min(n)
            }
            (FrameBound::Preceding(_), FrameUnits::Groups) => {
                self.group_starts[g.saturating_sub(count(&self.start))]
            }
            (FrameBound::Following(_), FrameUnits::Groups) => {
                self.group_starts[g.saturating_add(count(&self.start)).min(groups)]
            }
            (bound, FrameUnits::Range) => self.range_bound(i, bound, true)?,
        };
        let end = match (&frame.end, frame.units) {
            (FrameBound::UnboundedPreceding, _) => 0,
            (FrameBound::UnboundedFollowing, _) => n,
            (FrameBound::CurrentRow, FrameUnits::Rows) => i + 1,
            (FrameBound::CurrentRow, _) => end_peer,
            (FrameBound::Preceding(_), FrameUnits::Rows) => {
                (i + 1).saturating_sub(count(&self.end))
            }
            (FrameBound::Following(_), FrameUnits::Rows) => {
                (i + 1).saturating_add(count(&self.end)).min(n)
            }
            (FrameBound::Preceding(_), FrameUnits::Groups) => match g.checked_sub(count(&self.end))
            {
                Some(h) => self.group_starts[h + 1],
                None => 0,
            },
            (FrameBound::Following(_), FrameUnits::Groups) => {
                self.group_starts[g.saturating_add(count(&self.end)).min(groups - 1) + 1]
            }
            (bound, FrameUnits::Range) => self.range_bound(i, bound, false)?,
        };
        Ok((start, end))
    }

    /// A RANGE offset bound of position `i`: the first position of the frame (`start`), or
    /// the position after its last.
    fn range_bound(&self, i: usize, bound: &FrameBound, start: bool) -> Result<usize> {
        let key = &self.order_keys[self.order[i]][0];
        let (first_peer, end_peer) = self.peers(i);
        if key.is_null() {
            // A NULL key's frame, with an offset, is its NULL peers.
            return Ok(if start { first_peer } else { end_peer });
        }
        let (offset, preceding) = match bound {
            FrameBound::Preceding(_) => (if start { &self.start } else { &self.end }, true),
            FrameBound::Following(_) => (if start { &self.start } else { &self.end }, false),
            _ => return Err(SqlError::Internal(format!("range bound {bound:?}"))),
        };
        let offset = offset.clone().unwrap_or(Value::Int(0));
        let ascending = self.call.order_by[0].ascending;
        // Preceding means smaller keys in ascending order, larger ones in descending order.
        let op = if preceding == ascending { BinaryOp::Sub } else { BinaryOp::Add };
        let exact = |v: &Value| match v {
            Value::Int(i) => Value::Decimal(Decimal::from(*i)),
            other => other.clone(),
        };
        let target = Expr::Binary(
            op,
            Box::new(Expr::Literal(exact(key))),
            Box::new(Expr::Literal(exact(&offset))),
        )
        .eval(&[], &EvalContext::at(shoal_hlc::Timestamp::ZERO))?;
        // The non-NULL keys, sorted, are one stretch of the partition.
        let nulls_first = self.call.order_by[0].nulls_first;
        let keyed = |p: usize| !self.order_keys[self.order[p]][0].is_null();
        let n = self.order.len();
        let (lo, hi) = if nulls_first {
            ((0..n).find(|&p| keyed(p)).unwrap_or(n), n)
        } else {
            (0, (0..n).rev().find(|&p| keyed(p)).map_or(0, |p| p + 1))
        };
        let stretch = &self.order[lo..hi];
        let before = |r: &usize| {
            let ord = self.order_keys[*r][0].sort_cmp(&target);
            let ord = if ascending { ord } else { ord.reverse() };
            // The frame starts at the first key not before the target, and ends after the
            // last key not beyond it.
            if start { ord.is_lt() } else { ord.is_le() }
        };
        Ok(lo + stretch.partition_point(before))
    }
}

/// `ntile(buckets)` for position `i` of `n`: the first `n % buckets` buckets hold one row
/// more than the others.
fn ntile(buckets: Value, i: usize, n: usize) -> Result<Value> {
    let buckets = match buckets {
        Value::Null => return Ok(Value::Null),
        Value::Int(b) if b > 0 => usize::try_from(b).unwrap_or(usize::MAX),
        Value::Int(_) => {
            return Err(SqlError::FunctionArgument {
                code: "22014",
                message: "argument of ntile must be greater than zero".into(),
            });
        }
        other => {
            return Err(SqlError::DatatypeMismatch(format!(
                "ntile takes an integer, not {}",
                other.type_name()
            )));
        }
    };
    let (size, extra) = (n / buckets, n % buckets);
    let big = extra * (size + 1);
    let bucket = if i < big { i / (size + 1) } else { extra + (i - big) / size.max(1) };
    Ok(Value::Int(bucket as i64 + 1))
}
