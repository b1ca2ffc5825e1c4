//! Executing subqueries in expressions: the [`Plan::Apply`] operator.
//!
//! An apply streams its input and, for each row, computes the value of each of its
//! subqueries for that row, appended as extra columns that the clause above reads:
//!
//! ```text
//!   SELECT a.k FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.x = a.k)
//!
//!   project #0
//!   └─ filter #1                      #1: the subquery's value for the row
//!      └─ apply
//!         ├─ scan a
//!         └─ subquery #1 exists, outer values #0
//!            └─ scan b filter (#1 = $outer0)
//!
//!   for the row a.k = 7:  $outer0 := 7 → scan b filter (#1 = 7) → a row? → true
//! ```
//!
//! For an outer row, the subquery's [`Expr::Outer`] references are replaced with the row's
//! values, and the bound plan is optimized again before it runs, so a correlated equality on
//! a key column becomes a point lookup (the OLTP case: a few outer rows must not each scan a
//! whole table). Subqueries inside the subquery keep their own outer references: they are
//! bound when *they* run.
//!
//! # Invariants
//!
//! - A subquery's result depends only on its outer values (and the statement's snapshot), so
//!   results are cached per distinct combination of them: a subquery that reads no outer
//!   value runs once, and repeated outer values cost a hash lookup.
//! - What a subquery returns is held under the statement's memory budget; the cache gives
//!   way first (it is emptied when a new result does not fit in the cache's share), so a
//!   statement fails with 53200 only when a single result is too big for the budget.
//! - Scalar subqueries read at most two rows (the second only to fail with 21000), EXISTS
//!   one; a quantified comparison (`IN`, `ANY`, `ALL`) reads them all.
//!
//! # Per outer value, or once hashed
//!
//! A subquery that [`crate::decorrelate`] could decorrelate starts per outer value all the
//! same: with few outer rows and a correlation on a key, point lookups are the cheapest
//! plan, and a single outer row costs one run either way. When a run had to read a whole
//! table, the next new outer value switches the subquery to its decorrelated plan: it runs
//! once, its rows are kept grouped by their keys, and every outer row from then on (cached
//! values included) is answered from its group, so n outer values cost one scan instead of
//! n. Both give the same rows for a value, at the statement's snapshot. A table that would
//! take more than the cache's share of the budget is dropped, and the subquery goes on per
//! outer value.
//!
//! Out of scope: subqueries that return more than one column (row comparisons), and
//! choosing from statistics rather than from what the first run read.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::{Result, SqlError};
use crate::exec::{Exec, Row, Rows, build, cooperative};
use crate::expr::{EvalContext, Expr};
use crate::memory::{Reservation, row_bytes};
use crate::plan::{Aggregate, Plan, SortKey, SubqueryPlan, SubqueryTest};
use crate::types::Value;

/// The part of the statement's memory budget a subquery cache may hold before it is emptied.
const CACHE_SHARE: usize = 4;

/// A subquery and the results it gave for the outer values seen so far.
struct Cached {
    subquery: SubqueryPlan,
    results: HashMap<Vec<Value>, Arc<Vec<Value>>>,
    /// Whether a run for one outer value read a whole table: the next outer value switches
    /// to the decorrelated plan, if there is one.
    scanned_whole: bool,
    /// The decorrelated plan's rows, grouped by their keys, once it has run.
    hashed: Option<Hashed>,
}

/// A decorrelated subquery's rows, grouped by their keys.
struct Hashed {
    groups: HashMap<Vec<Value>, Arc<Vec<Value>>>,
    /// What an outer value without a group gets.
    missing: Arc<Vec<Value>>,
}

struct ApplyState {
    input: Rows,
    subqueries: Vec<Cached>,
    x: Exec,
    /// Holds the cached results.
    cache: Reservation,
    /// Hold the decorrelated subqueries' tables.
    tables: Vec<Reservation>,
}

/// Each row of `source` followed by the value of each subquery for it.
pub(crate) fn apply(source: Plan, subqueries: Vec<SubqueryPlan>, x: &Exec) -> Rows {
    let state = ApplyState {
        input: build(source, x, None),
        subqueries: subqueries
            .into_iter()
            .map(|subquery| Cached {
                subquery,
                results: HashMap::new(),
                scanned_whole: false,
                hashed: None,
            })
            .collect(),
        x: x.clone(),
        cache: x.memory.reservation("subquery results"),
        tables: Vec::new(),
    };
    let rows = stream::try_unfold(state, |mut s| async move {
        let Some(mut row) = s.input.try_next().await? else { return Ok(None) };
        let mut values = Vec::with_capacity(s.subqueries.len());
        for i in 0..s.subqueries.len() {
            values.push(s.value(i, &row).await?);
        }
        row.extend(values);
        Ok(Some((row, s)))
    });
    cooperative(rows.boxed())
}

impl ApplyState {
    /// The value of subquery `i` for `row`.
    async fn value(&mut self, i: usize, row: &Row) -> Result<Value> {
        let ctx = self.x.ctx;
        let params: Vec<Value> = self.subqueries[i]
            .subquery
            .params
            .iter()
            .map(|p| p.eval(row, &ctx))
            .collect::<Result<_>>()?;
        let cached = &self.subqueries[i];
        let known = match &cached.hashed {
            Some(table) => Some(group(table, &params)),
            None => cached.results.get(&params).cloned(),
        };
        let results = match known {
            Some(results) => results,
            None if self.subqueries[i].scanned_whole && self.hash(i).await? => {
                group(self.subqueries[i].hashed.as_ref().expect("just built"), &params)
            }
            None => {
                let results = Arc::new(self.run(i, &params).await?);
                self.subqueries[i].results.insert(params, results.clone());
                results
            }
        };
        test(&self.subqueries[i].subquery.test, &results, row, &ctx)
    }

    /// Runs subquery `i`'s decorrelated plan, if it has one, and keeps its rows grouped by
    /// their keys; false (and per-value runs from then on) when it has none or its table
    /// would take more than the cache's share of the memory budget.
    async fn hash(&mut self, i: usize) -> Result<bool> {
        let Some(decorrelated) = self.subqueries[i].subquery.hashed.take() else {
            return Ok(false);
        };
        let wanted = wanted(&self.subqueries[i].subquery.test);
        let share = self.x.memory.limit() / CACHE_SHARE;
        let missing = match decorrelated.empty {
            Some(empty) => {
                let mut rows = build(crate::optimizer::optimize(empty), &self.x, Some(1));
                let row = rows.try_next().await?.unwrap_or_default();
                vec![row.into_iter().next().unwrap_or(Value::Null)]
            }
            None => Vec::new(),
        };
        let mut rows = build(crate::optimizer::optimize(decorrelated.plan), &self.x, None);
        let mut table: HashMap<Vec<Value>, Vec<Value>> = HashMap::new();
        let mut reservation = self.x.memory.reservation("decorrelated subqueries");
        while let Some(row) = rows.try_next().await? {
            let mut row = row.into_iter();
            let value = row.next().unwrap_or(Value::Null);
            let keys: Vec<Value> = row.collect();
            // `NULL = x` is never true: a row with a NULL key is no outer value's.
            if keys.iter().any(|k| matches!(k, Value::Null)) {
                continue;
            }
            let key_bytes = if table.contains_key(&keys) { 0 } else { row_bytes(&keys) };
            let values = table.entry(keys).or_default();
            if wanted.is_some_and(|w| values.len() as u64 >= w) {
                continue;
            }
            let bytes = crate::memory::value_bytes(&value) + key_bytes;
            if reservation.bytes() + bytes > share || reservation.grow(bytes).is_err() {
                return Ok(false);
            }
            values.push(value);
        }
        self.tables.push(reservation);
        if let Some(profile) = &self.x.profile {
            profile.count_subquery_hashed();
        }
        let groups = table.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        let cached = &mut self.subqueries[i];
        cached.hashed = Some(Hashed { groups, missing: Arc::new(missing) });
        cached.results.clear();
        Ok(true)
    }

    /// Runs subquery `i` for the outer values `params`: the first column of its rows (as
    /// many as its test needs), reserved in the cache.
    async fn run(&mut self, i: usize, params: &[Value]) -> Result<Vec<Value>> {
        let subquery = &self.subqueries[i].subquery;
        let wanted = wanted(&subquery.test);
        let plan = crate::optimizer::optimize(bind_plan(subquery.plan.clone(), params));
        self.subqueries[i].scanned_whole |= reads_whole_table(&plan);
        if let Some(profile) = &self.x.profile {
            profile.count_subquery_run();
        }
        let mut rows = build(plan, &self.x, wanted);
        let mut values = Vec::new();
        self.reserve(row_bytes(params))?;
        while let Some(row) = rows.try_next().await? {
            let value = row.into_iter().next().unwrap_or(Value::Null);
            self.reserve(crate::memory::value_bytes(&value))?;
            values.push(value);
            if wanted.is_some_and(|w| values.len() as u64 >= w) {
                break;
            }
        }
        Ok(values)
    }

    /// Reserves `bytes` for a result, emptying the cache first when its share is used up.
    fn reserve(&mut self, bytes: usize) -> Result<()> {
        let share = self.x.memory.limit() / CACHE_SHARE;
        if self.cache.bytes() + bytes > share {
            for cached in &mut self.subqueries {
                cached.results.clear();
            }
            self.cache = self.x.memory.reservation("subquery results");
        }
        self.cache.grow(bytes)
    }
}

/// How many rows of a subquery its test reads: scalar subqueries two (the second only to
/// fail with 21000), EXISTS one, quantified comparisons all.
fn wanted(test: &SubqueryTest) -> Option<u64> {
    match test {
        SubqueryTest::Exists => Some(1),
        SubqueryTest::Scalar => Some(2),
        SubqueryTest::Quantified { .. } => None,
    }
}

/// The rows a decorrelated subquery's `table` holds for the outer values `params` (a NULL
/// among them matches no group).
fn group(table: &Hashed, params: &[Value]) -> Arc<Vec<Value>> {
    table.groups.get(params).unwrap_or(&table.missing).clone()
}

/// Whether `plan` reads some table whole (so running it per outer value scans it again for
/// each).
fn reads_whole_table(plan: &Plan) -> bool {
    match plan {
        Plan::Scan { table, spans, .. } => {
            *spans == [crate::rowcodec::RowCodec::default().index_span(table, &table.primary)]
        }
        other => other.children().into_iter().any(reads_whole_table),
    }
}

/// What a subquery's `results` make of it for `row`.
fn test(test: &SubqueryTest, results: &[Value], row: &Row, ctx: &EvalContext) -> Result<Value> {
    Ok(match test {
        SubqueryTest::Scalar => match results {
            [] => Value::Null,
            [value] => value.clone(),
            _ => {
                return Err(SqlError::Cardinality(
                    "more than one row returned by a subquery used as an expression".into(),
                ));
            }
        },
        SubqueryTest::Exists => Value::Bool(!results.is_empty()),
        SubqueryTest::Quantified { operand, op, all } => {
            let left = operand.eval(row, ctx)?;
            let mut undecided = false;
            for value in results {
                match crate::expr::binary(*op, left.clone(), value.clone())?.as_condition()? {
                    Some(holds) if holds != *all => return Ok(Value::Bool(holds)),
                    Some(_) => {}
                    None => undecided = true,
                }
            }
            if undecided { Value::Null } else { Value::Bool(*all) }
        }
    })
}

/// `plan` with its outer references replaced by `values`. Subqueries nested in it keep theirs
/// (they refer to their own parameters), but their parameters, which are expressions over
/// this plan's rows, are bound.
pub(crate) fn bind_plan(plan: Plan, values: &[Value]) -> Plan {
    let e = |e: Expr| e.bind_outer(values);
    let opt = |e: Option<Expr>| e.map(|e| e.bind_outer(values));
    let all = |es: Vec<Expr>| es.into_iter().map(|e| e.bind_outer(values)).collect::<Vec<_>>();
    let sub = |p: Box<Plan>| Box::new(bind_plan(*p, values));
    match plan {
        Plan::Scan { table, spans, filter } => Plan::Scan { table, spans, filter: opt(filter) },
        Plan::IndexScan { table, index, spans, filter } => {
            Plan::IndexScan { table, index, spans, filter: opt(filter) }
        }
        Plan::Values { rows, width } => {
            Plan::Values { rows: rows.into_iter().map(all).collect(), width }
        }
        Plan::Filter { source, predicate } => {
            Plan::Filter { source: sub(source), predicate: e(predicate) }
        }
        Plan::Project { source, exprs } => Plan::Project { source: sub(source), exprs: all(exprs) },
        Plan::Aggregate { source, group_by, aggregates } => Plan::Aggregate {
            source: sub(source),
            group_by: all(group_by),
            aggregates: aggregates
                .into_iter()
                .map(|a| Aggregate {
                    arg: opt(a.arg),
                    separator: opt(a.separator),
                    filter: opt(a.filter),
                    ..a
                })
                .collect(),
        },
        Plan::Sort { source, keys } => Plan::Sort {
            source: sub(source),
            keys: keys.into_iter().map(|k| SortKey { expr: e(k.expr), ..k }).collect(),
        },
        Plan::Limit { source, limit, offset } => Plan::Limit { source: sub(source), limit, offset },
        Plan::Distinct { source, on } => Plan::Distinct { source: sub(source), on: all(on) },
        Plan::Window { source, calls } => Plan::Window {
            source: sub(source),
            calls: calls.into_iter().map(|c| c.map_exprs(&mut |x| x.bind_outer(values))).collect(),
        },
        Plan::Join { left, right, kind, on, right_width } => {
            Plan::Join { left: sub(left), right: sub(right), kind, on: opt(on), right_width }
        }
        Plan::LookupJoin {
            left,
            table,
            index,
            lookup,
            filter,
            kind,
            left_keys,
            right_keys,
            on,
        } => Plan::LookupJoin {
            left: sub(left),
            table,
            index,
            lookup: all(lookup),
            filter: opt(filter),
            kind,
            left_keys: all(left_keys),
            right_keys: all(right_keys),
            on: opt(on),
        },
        Plan::HashJoin { left, right, kind, left_keys, right_keys, on, right_width } => {
            Plan::HashJoin {
                left: sub(left),
                right: sub(right),
                kind,
                left_keys: all(left_keys),
                right_keys: all(right_keys),
                on: opt(on),
                right_width,
            }
        }
        // The right side's own outer references are its parameters: bound when it runs.
        Plan::Lateral { left, right, params, kind, on, right_width } => Plan::Lateral {
            left: sub(left),
            right,
            params: all(params),
            kind,
            on: opt(on),
            right_width,
        },
        Plan::Apply { source, subqueries } => Plan::Apply {
            source: sub(source),
            subqueries: subqueries
                .into_iter()
                .map(|s| SubqueryPlan {
                    plan: s.plan,
                    params: all(s.params),
                    hashed: s.hashed,
                    test: match s.test {
                        SubqueryTest::Quantified { operand, op, all } => {
                            SubqueryTest::Quantified { operand: e(operand), op, all }
                        }
                        other => other,
                    },
                })
                .collect(),
        },
        Plan::SetOp { op, all, left, right } => {
            Plan::SetOp { op, all, left: sub(left), right: sub(right) }
        }
        Plan::Recursive { anchor, step, all } => {
            Plan::Recursive { anchor: sub(anchor), step: sub(step), all }
        }
        Plan::WorkTable { types } => Plan::WorkTable { types },
        Plan::Measure { id, source } => Plan::Measure { id, source: sub(source) },
    }
}
