//! Accumulators: the running state of one aggregate, shared by GROUP BY
//! ([`crate::exec`]) and windowed aggregates ([`crate::exec_window`]).
//!
//! An accumulator folds in the non-NULL argument values of the rows that pass the
//! aggregate's FILTER (`Accumulator::input` picks them), and says its value at any time
//! (`Accumulator::value`): a window frame that grows row by row reads a running total
//! without starting again.
//!
//! ```text
//!   sum:   None ─ 1 ─▶ 1 ─ 2 ─▶ 3 ─ NULL (skipped) ─▶ 3      value: 3
//!   count: 0 ─────────▶ 1 ─────▶ 2                           value: 2
//! ```
//!
//! Integer sums add up as decimals, so they are exact and cannot overflow (PostgreSQL's
//! `sum(bigint)` is numeric too). DISTINCT is the caller's concern: it decides which
//! values reach the accumulator.

use rust_decimal::Decimal;

use crate::error::{Result, SqlError};
use crate::expr::{BinaryOp, EvalContext, Expr};
use crate::memory::Reservation;
use crate::plan::{Aggregate, AggregateFunction};
use crate::types::Value;

/// The running state of one aggregate over some rows.
#[derive(Debug, Clone)]
pub(crate) enum Accumulator {
    /// `count`: rows or non-NULL values.
    Count(i64),
    /// `sum`: none yet, or the total.
    Sum(Option<Value>),
    /// `avg`: the total and how many values.
    Avg(Option<Value>, i64),
    /// `min` / `max`: the best value yet.
    Extreme(Option<Value>),
    /// `string_agg`: the values joined so far.
    Text(Option<String>),
    /// `bool_and` / `bool_or`.
    Bool(Option<bool>),
}

impl Accumulator {
    /// An accumulator that has seen nothing.
    pub(crate) fn new(function: AggregateFunction) -> Accumulator {
        match function {
            AggregateFunction::CountRows | AggregateFunction::Count => Accumulator::Count(0),
            AggregateFunction::Sum => Accumulator::Sum(None),
            AggregateFunction::Avg => Accumulator::Avg(None, 0),
            AggregateFunction::Min | AggregateFunction::Max => Accumulator::Extreme(None),
            AggregateFunction::StringAgg => Accumulator::Text(None),
            AggregateFunction::BoolAnd | AggregateFunction::BoolOr => Accumulator::Bool(None),
        }
    }

    /// The value `row` gives aggregate `a`: None when the row does not count (FILTER false,
    /// or a NULL argument). `count(*)` counts every row that passes its filter.
    pub(crate) fn input(a: &Aggregate, row: &[Value], ctx: &EvalContext) -> Result<Option<Value>> {
        if let Some(filter) = &a.filter
            && !crate::exec::passes(filter, row, ctx)?
        {
            return Ok(None);
        }
        let value = match &a.arg {
            Some(arg) => arg.eval(row, ctx)?,
            None => Value::Bool(true),
        };
        Ok((!value.is_null()).then_some(value))
    }

    /// Folds in `value`, the non-NULL input of `row`; text built up by `string_agg` is
    /// held under `reservation`.
    pub(crate) fn add(
        &mut self,
        a: &Aggregate,
        value: Value,
        row: &[Value],
        ctx: &EvalContext,
        reservation: &mut Reservation,
    ) -> Result<()> {
        *self = match (std::mem::replace(self, Accumulator::Count(0)), a.function) {
            (Accumulator::Count(n), _) => Accumulator::Count(n + 1),
            (Accumulator::Sum(s), _) => Accumulator::Sum(add(s, numeric(value, "sum")?)?),
            (Accumulator::Avg(s, n), _) => Accumulator::Avg(add(s, numeric(value, "avg")?)?, n + 1),
            (Accumulator::Extreme(None), _) => Accumulator::Extreme(Some(value)),
            (Accumulator::Extreme(Some(best)), f) => {
                let ord = value.sql_cmp(&best)?.unwrap_or(std::cmp::Ordering::Equal);
                let better = if f == AggregateFunction::Min { ord.is_lt() } else { ord.is_gt() };
                Accumulator::Extreme(Some(if better { value } else { best }))
            }
            (Accumulator::Text(joined), _) => {
                let text = value.to_text().unwrap_or_default();
                Accumulator::Text(Some(match joined {
                    None => {
                        reservation.grow(text.len())?;
                        text
                    }
                    Some(mut joined) => {
                        let separator = match &a.separator {
                            Some(s) => s.eval(row, ctx)?.to_text().unwrap_or_default(),
                            None => String::new(),
                        };
                        reservation.grow(separator.len() + text.len())?;
                        joined.push_str(&separator);
                        joined.push_str(&text);
                        joined
                    }
                }))
            }
            (Accumulator::Bool(b), f) => {
                let v = value.as_condition()?.unwrap_or(f == AggregateFunction::BoolAnd);
                Accumulator::Bool(Some(match (b, f) {
                    (None, _) => v,
                    (Some(b), AggregateFunction::BoolAnd) => b && v,
                    (Some(b), _) => b || v,
                }))
            }
        };
        Ok(())
    }

    /// The aggregate's value over what it has seen (NULL over nothing, but 0 for counts).
    pub(crate) fn value(&self, ctx: &EvalContext) -> Result<Value> {
        Ok(match self {
            Accumulator::Count(n) => Value::Int(*n),
            Accumulator::Sum(s) | Accumulator::Extreme(s) => s.clone().unwrap_or(Value::Null),
            Accumulator::Text(t) => t.clone().map_or(Value::Null, Value::Text),
            Accumulator::Bool(b) => b.map_or(Value::Null, Value::Bool),
            Accumulator::Avg(None, _) => Value::Null,
            Accumulator::Avg(Some(s), n) => Expr::Binary(
                BinaryOp::Div,
                Box::new(Expr::Literal(match s {
                    Value::Int(i) => Value::Decimal(Decimal::from(*i)),
                    other => other.clone(),
                })),
                Box::new(Expr::Literal(Value::Int(*n))),
            )
            .eval(&[], ctx)?,
        })
    }
}

fn add(sum: Option<Value>, v: Value) -> Result<Option<Value>> {
    let v = match v {
        // Integer sums are exact and cannot overflow: they add up as decimals.
        Value::Int(i) => Value::Decimal(Decimal::from(i)),
        other => other,
    };
    Ok(Some(match sum {
        None => v,
        Some(s) => {
            Expr::Binary(BinaryOp::Add, Box::new(Expr::Literal(s)), Box::new(Expr::Literal(v)))
                .eval(&[], &EvalContext::at(shoal_hlc::Timestamp::ZERO))?
        }
    }))
}

fn numeric(v: Value, f: &str) -> Result<Value> {
    match v {
        Value::Int(_) | Value::Float(_) | Value::Decimal(_) => Ok(v),
        other => Err(SqlError::DatatypeMismatch(format!(
            "{f}() takes a number, not {}",
            other.type_name()
        ))),
    }
}
