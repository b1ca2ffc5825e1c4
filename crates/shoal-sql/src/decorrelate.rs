//! Decorrelating subqueries: the plan that answers a correlated subquery for every outer
//! value at once, from one hash table.
//!
//! A correlated subquery runs per distinct outer value ([`crate::exec_apply`]). That is
//! right when each run is a point lookup, but when the correlation is not on a key every run
//! scans the inner table again: n outer values cost n scans. Most correlated subqueries that
//! people write read their outer values only in equalities, and those can be answered for
//! all outer values from one scan:
//!
//! ```text
//!   SELECT … FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.x = a.k AND b.y > 3)
//!
//!   per outer value                          decorrelated (run once)
//!   project 1                                project 1, #0           ← value, then b.x
//!   └─ scan b filter #0 = $outer0 AND …      └─ scan b filter #1 > 3
//!
//!   table: b.x → the values of the rows with that b.x
//!   outer row a.k = 7 → the rows under key 7 → EXISTS is whether there are any
//! ```
//!
//! The decorrelated plan returns, per inner row, the subquery's first column followed by the
//! inner side of each correlated equality; grouping its rows by those keys gives, for each
//! outer value, exactly the rows the correlated run would have returned, so every test of a
//! subquery (scalar with its 21000, EXISTS, `IN` and `op ANY/ALL` with their NULL rules) is
//! computed from the group just as from a run. An outer value holding a NULL matches no
//! group (`NULL = x` is never true), nor does an inner row whose key holds one.
//!
//! # What decorrelates
//!
//! The outer values may be read only by conjuncts `inner = $outer` of filters (a scan's
//! filter included) in a select-project-join tree: filters, scans, projections, sorts, inner
//! joins, and the left side of left joins, under a projection (with DISTINCT or not). The
//! two sides of each equality must hash alike (the hash join's rule, so that a hash match
//! means what `=` means). An aggregate without GROUP BY over such a tree decorrelates too:
//! `(SELECT max(v) FROM b WHERE b.x = a.k)` becomes `SELECT max(v), b.x FROM b GROUP BY
//! b.x`, and an outer value without a group gets the subquery over no rows (`count(*)` is
//! 0, not NULL), computed by the subquery's own plan over an empty input. EXISTS drops a
//! `LIMIT n` (n ≥ 1) above it. Anything else (an outer value in the select list or an
//! aggregate's argument, under HAVING, GROUP BY, another LIMIT, a window or the padded
//! side of an outer join) leaves the subquery to run per outer value.
//!
//! Out of scope: deciding from statistics: [`crate::exec_apply`] chooses at run time.

use crate::expr::{BinaryOp, Expr};
use crate::optimizer::conjuncts;
use crate::optimizer_join::{hashable, output_types};
use crate::plan::{Aggregate, JoinKind, Plan, SubqueryTest};
use crate::types::Value;

/// A subquery's decorrelated form: see the module essay.
#[derive(Debug, Clone, PartialEq)]
pub struct Decorrelated {
    /// Reads no outer value; its rows are the subquery's first column (NULL when it has
    /// none), then one key column per entry of `keys`.
    pub plan: Plan,
    /// For each key column, the parameter of the subquery its value must equal.
    pub keys: Vec<usize>,
    /// For an aggregating subquery, its plan over no rows: what an outer value without
    /// rows gets (without it, such a value gets no rows).
    pub empty: Option<Plan>,
}

/// One correlated equality pulled out of the plan: `inner` (over the plan's output) must
/// equal parameter `param`.
struct Pulled {
    param: usize,
    inner: Expr,
}

/// The decorrelated form of a subquery's (optimized) `plan`, if it has one; `test` is what
/// its rows become.
pub(crate) fn decorrelate(plan: &Plan, test: &SubqueryTest) -> Option<Decorrelated> {
    if !plan_reads_outer(plan) {
        return None;
    }
    let plan = match plan {
        // EXISTS reads one row anyway: `EXISTS (SELECT 1 … LIMIT 1)` is `EXISTS (SELECT 1 …)`.
        Plan::Limit { source, limit: Some(1..), offset: 0 } if *test == SubqueryTest::Exists => {
            source.as_ref()
        }
        other => other,
    };
    let (plan, distinct) = match plan {
        Plan::Distinct { source, on } if on.is_empty() => (source.as_ref(), true),
        other => (other, false),
    };
    let Plan::Project { source, exprs } = plan else { return None };
    if exprs.iter().any(reads_outer) {
        return None;
    }
    let first = exprs.first().cloned().unwrap_or(Expr::Literal(Value::Null));
    if let Plan::Aggregate { source, group_by, aggregates } = source.as_ref()
        && group_by.is_empty()
    {
        return aggregated(plan, source, aggregates, first);
    }
    let (source, pulled) = pull(source, true)?;
    let keys = pulled.iter().map(|p| p.param).collect();
    let exprs = std::iter::once(first).chain(pulled.into_iter().map(|p| p.inner)).collect();
    let mut plan = Plan::Project { source: Box::new(source), exprs };
    if distinct {
        plan = Plan::Distinct { source: Box::new(plan), on: Vec::new() };
    }
    Some(Decorrelated { plan, keys, empty: None })
}

/// A subquery `project (first) ← aggregate (aggregates) ← source` decorrelated: the
/// aggregate groups by the correlated equalities' inner sides, and an outer value without
/// rows gets what the aggregates make of no rows (`count(*)` 0, `max` NULL).
fn aggregated(
    project: &Plan,
    source: &Plan,
    aggregates: &[Aggregate],
    first: Expr,
) -> Option<Decorrelated> {
    let aggregate_reads_outer =
        |a: &Aggregate| [&a.arg, &a.separator, &a.filter].into_iter().flatten().any(reads_outer);
    if aggregates.iter().any(aggregate_reads_outer) {
        return None;
    }
    let (pulled_source, pulled) = pull(source, true)?;
    let k = pulled.len();
    let keys = pulled.iter().map(|p| p.param).collect();
    let grouped = Plan::Aggregate {
        source: Box::new(pulled_source),
        group_by: pulled.into_iter().map(|p| p.inner).collect(),
        aggregates: aggregates.to_vec(),
    };
    let exprs =
        std::iter::once(first.map_columns(&|c| c + k)).chain((0..k).map(Expr::Column)).collect();
    let plan = Plan::Project { source: Box::new(grouped), exprs };
    // The subquery over no rows: its own plan with the aggregate's input emptied.
    let no_rows = Plan::Values { rows: Vec::new(), width: source.width() };
    let empty = project.clone().map_inputs(|aggregate| aggregate.map_inputs(|_| no_rows.clone()));
    Some(Decorrelated { plan, keys, empty: Some(empty) })
}

/// `plan` without its correlated equalities, and those equalities over its output. With
/// `widen`, the output may gain columns at its end (a projection keeps the inner sides it
/// would otherwise drop); without it, the plan's width must stay as it is (it is a join's
/// input).
fn pull(plan: &Plan, widen: bool) -> Option<(Plan, Vec<Pulled>)> {
    if !plan_reads_outer(plan) {
        return Some((plan.clone(), Vec::new()));
    }
    match plan {
        Plan::Filter { source, predicate } => {
            let (source, mut pulled) = pull(source, widen)?;
            let types = output_types(&source);
            let kept = split(predicate, &types, &mut pulled)?;
            let plan = match kept {
                Some(predicate) => Plan::Filter { source: Box::new(source), predicate },
                None => source,
            };
            Some((plan, pulled))
        }
        Plan::Scan { table, spans, filter: Some(filter) } => {
            let mut pulled = Vec::new();
            let types = output_types(plan);
            let filter = split(filter, &types, &mut pulled)?;
            Some((Plan::Scan { table: table.clone(), spans: spans.clone(), filter }, pulled))
        }
        Plan::IndexScan { table, index, spans, filter: Some(filter) } => {
            let mut pulled = Vec::new();
            let types = output_types(plan);
            let filter = split(filter, &types, &mut pulled)?;
            let plan = Plan::IndexScan {
                table: table.clone(),
                index: index.clone(),
                spans: spans.clone(),
                filter,
            };
            Some((plan, pulled))
        }
        Plan::Project { source, exprs } if widen && !exprs.iter().any(reads_outer) => {
            let (source, pulled) = pull(source, true)?;
            let mut exprs = exprs.clone();
            let pulled = pulled
                .into_iter()
                .map(|p| {
                    exprs.push(p.inner);
                    Pulled { param: p.param, inner: Expr::Column(exprs.len() - 1) }
                })
                .collect();
            Some((Plan::Project { source: Box::new(source), exprs }, pulled))
        }
        Plan::Sort { source, keys } if !keys.iter().any(|k| reads_outer(&k.expr)) => {
            // Order means nothing to a test of the subquery's rows: the sort goes.
            pull(source, widen)
        }
        Plan::Join { left, right, kind, on, right_width } => {
            let (left, right, mut pulled) = pull_join(left, right, *kind)?;
            let on = pull_on(on.as_ref(), *kind, &left, &right, &mut pulled)?;
            let plan = Plan::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind: *kind,
                on,
                right_width: *right_width,
            };
            Some((plan, pulled))
        }
        Plan::HashJoin { left, right, kind, left_keys, right_keys, on, right_width } => {
            if left_keys.iter().chain(right_keys).any(reads_outer) {
                return None;
            }
            let (left, right, mut pulled) = pull_join(left, right, *kind)?;
            let on = pull_on(on.as_ref(), *kind, &left, &right, &mut pulled)?;
            let plan = Plan::HashJoin {
                left: Box::new(left),
                right: Box::new(right),
                kind: *kind,
                left_keys: left_keys.clone(),
                right_keys: right_keys.clone(),
                on,
                right_width: *right_width,
            };
            Some((plan, pulled))
        }
        _ => None,
    }
}

/// Both inputs of a join without their correlated equalities, which are returned over the
/// join's output. Only an inner join's right side may give some up: below a LEFT or FULL
/// join, an equality on the padded side decides which rows are padded.
fn pull_join(left: &Plan, right: &Plan, kind: JoinKind) -> Option<(Plan, Plan, Vec<Pulled>)> {
    let (left, mut pulled) = match kind {
        JoinKind::Inner | JoinKind::Left => pull(left, false)?,
        JoinKind::Full if !plan_reads_outer(left) => (left.clone(), Vec::new()),
        JoinKind::Full => return None,
    };
    let shift = left.width();
    let (right, right_pulled) = match kind {
        JoinKind::Inner => pull(right, false)?,
        _ if !plan_reads_outer(right) => (right.clone(), Vec::new()),
        _ => return None,
    };
    pulled.extend(
        right_pulled
            .into_iter()
            .map(|p| Pulled { param: p.param, inner: p.inner.map_columns(&|c| c + shift) }),
    );
    Some((left, right, pulled))
}

/// A join's condition without its correlated equalities (an inner join's only: the
/// condition of an outer join decides which rows are padded).
fn pull_on(
    on: Option<&Expr>,
    kind: JoinKind,
    left: &Plan,
    right: &Plan,
    pulled: &mut Vec<Pulled>,
) -> Option<Option<Expr>> {
    match on {
        Some(on) if kind == JoinKind::Inner => {
            let types = [output_types(left), output_types(right)].concat();
            split(on, &types, pulled)
        }
        Some(on) if reads_outer(on) => None,
        other => Some(other.cloned()),
    }
}

/// Moves the correlated equalities among `predicate`'s conjuncts into `pulled` and returns
/// the rest; None when some other conjunct reads an outer value.
fn split(
    predicate: &Expr,
    types: &[Option<crate::types::DataType>],
    pulled: &mut Vec<Pulled>,
) -> Option<Option<Expr>> {
    let mut kept: Option<Expr> = None;
    for conjunct in conjuncts(predicate) {
        if !reads_outer(conjunct) {
            kept = Some(match kept {
                Some(k) => Expr::Binary(BinaryOp::And, Box::new(k), Box::new(conjunct.clone())),
                None => conjunct.clone(),
            });
            continue;
        }
        let Expr::Binary(BinaryOp::Eq, a, b) = conjunct else { return None };
        let (param, inner) = match (a.as_ref(), b.as_ref()) {
            (Expr::Outer(param, _), inner) | (inner, Expr::Outer(param, _))
                if !reads_outer(inner) =>
            {
                (*param, inner)
            }
            _ => return None,
        };
        if !hashable(a, b, types) {
            return None;
        }
        pulled.push(Pulled { param, inner: inner.clone() });
    }
    Some(kept)
}

/// Whether `e` reads an outer value.
fn reads_outer(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |e| found |= matches!(e, Expr::Outer(..)));
    found
}

/// Whether `plan` reads an outer value of its own level (nested subqueries' own outer
/// references are theirs; their parameters, which are over this plan's rows, count).
fn plan_reads_outer(plan: &Plan) -> bool {
    crate::exec_apply::bind_plan(plan.clone(), &[]) != *plan
}
