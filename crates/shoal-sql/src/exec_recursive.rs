//! Executing `WITH RECURSIVE`: rounds of the recursive term over the previous round's rows.
//!
//! ```text
//!   anchor ──▶ round 0 rows ──▶ step(working table := round 0) ──▶ round 1 rows ──▶ …
//!   output: round 0, round 1, … until a round is empty
//! ```
//!
//! Each round binds the step's [`Plan::WorkTable`] leaves to the previous round's rows (as
//! literal VALUES) and runs it like any plan, so it reads through the statement's
//! transaction and snapshot. Without ALL, a row already produced is dropped from its round
//! (and so never feeds the next one), which is how a cycle in the data ends. Every row
//! produced is held under the statement's memory budget until the statement ends; a runaway
//! recursion fails with 53200 or 57014, like any statement that grows or runs too long.
//!
//! Rows stream out round by round: the first round's rows reach the client before the
//! second round starts, and a LIMIT above stops the rounds.

use std::collections::HashSet;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::Result;
use crate::exec::{Exec, Row, Rows, build, cooperative};
use crate::expr::Expr;
use crate::memory::{Reservation, row_bytes};
use crate::plan::{Plan, SubqueryPlan};

struct Rounds {
    /// The rows of the round being streamed, and what is left of it.
    current: std::vec::IntoIter<Row>,
    /// The rows of the round being streamed, for the next round's working table.
    working: Vec<Row>,
    step: Plan,
    all: bool,
    seen: HashSet<Row>,
    x: Exec,
    reservation: Reservation,
}

/// The rows of `anchor UNION [ALL] step`, repeated over each round's new rows.
pub(crate) fn recursive(anchor: Plan, step: Plan, all: bool, x: &Exec) -> Rows {
    let x = x.clone();
    let rows = async move {
        let mut rounds = Rounds {
            current: Vec::new().into_iter(),
            working: Vec::new(),
            step,
            all,
            seen: HashSet::new(),
            reservation: x.memory.reservation("WITH RECURSIVE"),
            x,
        };
        let first = build(anchor, &rounds.x, None);
        rounds.take_round(first).await?;
        let rows = stream::try_unfold(rounds, |mut r| async move {
            loop {
                if let Some(row) = r.current.next() {
                    return Ok(Some((row, r)));
                }
                if r.working.is_empty() {
                    return Ok(None);
                }
                let working = std::mem::take(&mut r.working);
                let step = crate::optimizer::optimize(bind_working_table(r.step.clone(), &working));
                let next = build(step, &r.x, None);
                r.take_round(next).await?;
            }
        });
        Ok::<_, crate::error::SqlError>(rows)
    };
    cooperative(stream::once(rows).try_flatten().boxed())
}

impl Rounds {
    /// Reads a round's rows, dropping repeats without ALL.
    async fn take_round(&mut self, mut rows: Rows) -> Result<()> {
        let mut round = Vec::new();
        while let Some(row) = rows.try_next().await? {
            if !self.all {
                if self.seen.contains(&row) {
                    continue;
                }
                self.reservation.grow(row_bytes(&row))?;
                self.seen.insert(row.clone());
            }
            self.reservation.grow(row_bytes(&row))?;
            round.push(row);
        }
        self.working = round.clone();
        self.current = round.into_iter();
        Ok(())
    }
}

/// `plan` with each working table replaced by `rows`, in subqueries too.
fn bind_working_table(plan: Plan, rows: &[Row]) -> Plan {
    let sub = |p: Box<Plan>| Box::new(bind_working_table(*p, rows));
    match plan {
        Plan::WorkTable { types } => Plan::Values {
            rows: rows.iter().map(|r| r.iter().cloned().map(Expr::Literal).collect()).collect(),
            width: types.len(),
        },
        leaf @ (Plan::Scan { .. } | Plan::IndexScan { .. } | Plan::Values { .. }) => leaf,
        Plan::Filter { source, predicate } => Plan::Filter { source: sub(source), predicate },
        Plan::Project { source, exprs } => Plan::Project { source: sub(source), exprs },
        Plan::Aggregate { source, group_by, aggregates } => {
            Plan::Aggregate { source: sub(source), group_by, aggregates }
        }
        Plan::Sort { source, keys } => Plan::Sort { source: sub(source), keys },
        Plan::Limit { source, limit, offset } => Plan::Limit { source: sub(source), limit, offset },
        Plan::Distinct { source, on } => Plan::Distinct { source: sub(source), on },
        Plan::Window { source, calls } => Plan::Window { source: sub(source), calls },
        Plan::Measure { id, source } => Plan::Measure { id, source: sub(source) },
        Plan::Join { left, right, kind, on, right_width } => {
            Plan::Join { left: sub(left), right: sub(right), kind, on, right_width }
        }
        Plan::HashJoin { left, right, kind, left_keys, right_keys, on, right_width } => {
            Plan::HashJoin {
                left: sub(left),
                right: sub(right),
                kind,
                left_keys,
                right_keys,
                on,
                right_width,
            }
        }
        Plan::Lateral { left, right, params, kind, on, right_width } => {
            Plan::Lateral { left: sub(left), right: sub(right), params, kind, on, right_width }
        }
        Plan::Apply { source, subqueries } => Plan::Apply {
            source: sub(source),
            subqueries: subqueries
                .into_iter()
                .map(|s| SubqueryPlan { plan: bind_working_table(s.plan, rows), ..s })
                .collect(),
        },
        Plan::SetOp { op, all, left, right } => {
            Plan::SetOp { op, all, left: sub(left), right: sub(right) }
        }
        // A nested recursive CTE has its own working table.
        nested @ Plan::Recursive { .. } => nested,
    }
}
