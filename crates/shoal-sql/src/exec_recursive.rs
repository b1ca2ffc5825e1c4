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
    match plan {
        Plan::WorkTable { types } => Plan::Values {
            rows: rows.iter().map(|r| r.iter().cloned().map(Expr::Literal).collect()).collect(),
            width: types.len(),
        },
        // A nested recursive CTE has its own working table.
        nested @ Plan::Recursive { .. } => nested,
        // Plans run per outer value may read the working table too.
        Plan::Apply { source, subqueries } => Plan::Apply {
            source: Box::new(bind_working_table(*source, rows)),
            subqueries: subqueries
                .into_iter()
                .map(|s| SubqueryPlan {
                    plan: bind_working_table(s.plan, rows),
                    hashed: s.hashed.map(|h| crate::decorrelate::Decorrelated {
                        plan: bind_working_table(h.plan, rows),
                        keys: h.keys,
                        empty: h.empty.map(|e| bind_working_table(e, rows)),
                    }),
                    ..s
                })
                .collect(),
        },
        Plan::Lateral { left, right, params, kind, on, right_width } => Plan::Lateral {
            left: Box::new(bind_working_table(*left, rows)),
            right: Box::new(bind_working_table(*right, rows)),
            params,
            kind,
            on,
            right_width,
        },
        other => other.map_inputs(|input| bind_working_table(input, rows)),
    }
}
