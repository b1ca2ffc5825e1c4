//! Executing plans: each operator is a stream of rows pulled by its parent.
//!
//! ```text
//!   Limit 10 ── pulls ──▶ Filter ── pulls ──▶ Scan ── pages of 1,000 rows ──▶ DistSender
//! ```
//!
//! Scans read their spans a page at a time through the transaction, so a `LIMIT` stops the
//! reading early and a large table is never held in memory by a scan. A LIMIT right above a
//! scan (through projections only) also shrinks the page to what it wants, so `LIMIT 5`
//! asks the ranges for five rows, not a thousand. Sort, aggregation,
//! DISTINCT and the build side of a join must see all their input, and buffer it (a sort
//! under a LIMIT keeps only the rows the LIMIT can return, [`crate::exec_topk`]): they
//! reserve what they hold from the statement's memory budget ([`crate::memory`]), and a
//! statement past it fails with 53200. Joins are in [`crate::exec_join`].
//!
//! A statement's operator tree runs as one task on the SQL runtime ([`crate::runtime`]),
//! never on the threads of the node's Raft groups and RPC; every row a source produces
//! spends tokio's task budget (`cooperative`), so a task yields every few hundred rows and
//! an abort (cancel, timeout, a client gone) stops it there.
//!
//! Every read goes through the statement's transaction ([`Txn`]): the rows a statement sees
//! are a consistent snapshot at the transaction's read timestamp, and the transaction's read
//! spans are tracked for its commit-time refresh.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use shoal_api::scan_filter::ScanFilter;
use shoal_api::{Request, Response};
use shoal_keys::{Key, Span};
use shoal_kvclient::KvOps;
use shoal_kvclient::txn::Txn;

use crate::catalog::TableDescriptor;
use crate::error::{Result, SqlError};
use crate::exec_accumulate::Accumulator;
use crate::expr::{EvalContext, Expr};
use crate::memory::{MemoryBudget, Reservation};
use crate::plan::{Aggregate, Plan, SortKey};
use crate::rowcodec::RowCodec;
use crate::types::Value;

/// A row.
pub type Row = Vec<Value>;

/// A stream of rows.
pub type Rows = BoxStream<'static, Result<Row>>;

/// Pages of key-value pairs read by a scan.
type Pages = BoxStream<'static, Result<Vec<(Key, Vec<u8>)>>>;

/// A group's accumulators, and the values seen by its DISTINCT aggregates.
type GroupState = (Vec<Accumulator>, Vec<HashSet<Value>>);

/// How many rows a scan asks for at once.
const PAGE: u64 = 1000;

/// What a statement's operators run with besides their transaction: where they run, and
/// how much memory they may hold.
#[derive(Debug, Clone, Default)]
pub struct ExecEnv {
    /// The runtime operator trees run on ([`crate::runtime`]); None: the caller's own (tests
    /// and tools that have no node to protect).
    pub runtime: Option<tokio::runtime::Handle>,
    /// The statement's memory budget.
    pub memory: MemoryBudget,
    /// Set for EXPLAIN ANALYZE: where measured operators count what they do.
    pub profile: Option<Arc<crate::profile::Profile>>,
    /// Where DML counts the rows it changed, for automatic statistics; None: nowhere.
    pub changes: Option<Arc<crate::stats::Changes>>,
    /// Why earlier runs of this statement (in its own transaction) were restarted, for
    /// EXPLAIN ANALYZE; empty on the first run and inside an explicit transaction.
    pub restarts: Vec<shoal_api::txn::RetryReason>,
}

/// Returns the rows of `plan`, read through `txn`, computed on `env`'s runtime.
pub fn execute(plan: Plan, txn: Txn, ctx: EvalContext, env: &ExecEnv) -> Rows {
    let exec = Exec { txn, ctx, memory: env.memory.clone(), profile: env.profile.clone() };
    let rows = build(plan, &exec, None);
    match &env.runtime {
        Some(runtime) => crate::runtime::offload(rows, runtime),
        None => rows,
    }
}

/// Runs `plan` and collects its rows, counting them against `env`'s memory budget.
pub async fn collect(plan: Plan, txn: Txn, ctx: EvalContext, env: &ExecEnv) -> Result<Vec<Row>> {
    let mut reservation = env.memory.reservation("the statement's rows");
    let mut rows = execute(plan, txn, ctx, env);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        reservation.grow(crate::memory::row_bytes(&row))?;
        out.push(row);
    }
    Ok(out)
}

/// What every operator of one statement shares.
#[derive(Clone)]
pub(crate) struct Exec {
    pub(crate) txn: Txn,
    pub(crate) ctx: EvalContext,
    pub(crate) memory: MemoryBudget,
    pub(crate) profile: Option<Arc<crate::profile::Profile>>,
}

/// Spends tokio's task budget for each row, so the task yields every so often: rows computed
/// in memory (a join, VALUES) never make it wait otherwise, and an abort, another query or
/// a cancel check get their turn only at a yield ([`crate::runtime`]).
pub(crate) fn cooperative(rows: Rows) -> Rows {
    rows.then(|row| async move {
        tokio::task::consume_budget().await;
        row
    })
    .boxed()
}

/// Returns the rows of `plan`, of which the consumer wants at most `wanted` (a LIMIT above
/// it): a scan right below asks the ranges for no more than that.
pub(crate) fn build(plan: Plan, x: &Exec, wanted: Option<u64>) -> Rows {
    let page = wanted.map_or(PAGE, |n| n.clamp(1, PAGE));
    let (txn, ctx) = (x.txn.clone(), x.ctx);
    match plan {
        Plan::Scan { table, spans, filter } => {
            cooperative(scan(table, spans, filter, page, txn, ctx, x.profile.clone()))
        }
        Plan::IndexScan { table, spans, filter, .. } => {
            let profile = x.profile.clone();
            cooperative(index_scan(table, spans, filter, page, txn, ctx, profile))
        }
        Plan::Measure { id, source } => match &x.profile {
            Some(profile) => {
                // The operator's reservations count towards its own line too.
                let metered = Exec { memory: x.memory.metered(profile.meter(id)), ..x.clone() };
                crate::profile::measured(build(*source, &metered, wanted), id, profile.clone())
            }
            None => build(*source, x, wanted),
        },
        Plan::Values { rows, .. } => {
            let evaluated: Vec<Result<Row>> = rows
                .into_iter()
                .map(|row| row.iter().map(|e| e.eval(&[], &ctx)).collect())
                .collect();
            cooperative(stream::iter(evaluated).boxed())
        }
        Plan::Filter { source, predicate } => build(*source, x, None)
            .try_filter_map(move |row| {
                let keep = passes(&predicate, &row, &ctx);
                futures::future::ready(keep.map(|k| k.then_some(row)))
            })
            .boxed(),
        Plan::Project { source, exprs } => build(*source, x, wanted)
            .and_then(move |row| {
                futures::future::ready(exprs.iter().map(|e| e.eval(&row, &ctx)).collect())
            })
            .boxed(),
        Plan::Limit { source, limit, offset } => {
            let mut seen = 0u64;
            let wanted = limit.map(|l| l.saturating_add(offset));
            let skipped = build(*source, x, wanted).try_filter_map(move |row| {
                seen += 1;
                futures::future::ready(Ok((seen > offset).then_some(row)))
            });
            match limit {
                Some(limit) => skipped.take(usize::try_from(limit).unwrap_or(usize::MAX)).boxed(),
                None => skipped.boxed(),
            }
        }
        Plan::Distinct { source, on } => distinct(build(*source, x, None), on, x),
        Plan::Window { source, calls } => crate::exec_window::window(*source, calls, x),
        // Under a LIMIT, only the first `wanted` rows are ever read: keep just those.
        Plan::Sort { source, keys } if wanted.is_some() => {
            let input = build(*source, x, None);
            let k = wanted.unwrap_or(u64::MAX);
            crate::exec_topk::top_k(input, keys, k, x.memory.reservation("ORDER BY … LIMIT"), ctx)
        }
        Plan::Sort { source, keys } => {
            let input = build(*source, x, None);
            buffered(input, x.memory.reservation("ORDER BY"), move |rows| sort(rows, &keys, &ctx))
        }
        Plan::Aggregate { source, group_by, aggregates } => {
            let input = build(*source, x, None);
            let reservation = x.memory.reservation("GROUP BY");
            let rows = stream::once(async move {
                aggregate(input, &group_by, &aggregates, &ctx, reservation).await
            })
            .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
            .try_flatten()
            .boxed();
            cooperative(rows)
        }
        Plan::Join { left, right, kind, on, right_width } => {
            crate::exec_join::nested_loop(*left, *right, kind, on, right_width, x)
        }
        Plan::HashJoin { left, right, kind, left_keys, right_keys, on, right_width } => {
            let keys = crate::exec_join::JoinKeys { left: left_keys, right: right_keys };
            crate::exec_join::hash_join(*left, *right, kind, keys, on, right_width, x)
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
        } => {
            let how = crate::exec_lookup::Lookup {
                table,
                index,
                lookup,
                filter,
                kind,
                left_keys,
                right_keys,
                on,
            };
            crate::exec_lookup::lookup_join(*left, how, x)
        }
        Plan::Apply { source, subqueries } => crate::exec_apply::apply(*source, subqueries, x),
        Plan::Lateral { left, right, params, kind, on, right_width } => {
            crate::exec_lateral::lateral(*left, *right, params, kind, on, right_width, x)
        }
        Plan::SetOp { op, all, left, right } => {
            crate::exec_set::set_operation(op, all, *left, *right, x)
        }
        Plan::Recursive { anchor, step, all } => {
            crate::exec_recursive::recursive(*anchor, *step, all, x)
        }
        Plan::WorkTable { .. } => stream::once(futures::future::ready(Err(SqlError::Internal(
            "a working table read outside its recursive CTE".into(),
        ))))
        .boxed(),
    }
}

/// The first occurrence of each of `rows` (NULLs equal each other), the rows seen held under
/// the statement's budget.
pub(crate) fn distinct(rows: Rows, on: Vec<Expr>, x: &Exec) -> Rows {
    let mut seen: HashSet<Row> = HashSet::new();
    let mut reservation = x.memory.reservation("DISTINCT");
    let ctx = x.ctx;
    rows.try_filter_map(move |row| {
        let key: Result<Row> = match on.is_empty() {
            true => Ok(row.clone()),
            false => on.iter().map(|e| e.eval(&row, &ctx)).collect(),
        };
        let kept = key.and_then(|key| {
            if seen.contains(&key) {
                return Ok(None);
            }
            reservation.grow(crate::memory::row_bytes(&key))?;
            seen.insert(key);
            Ok(Some(row))
        });
        futures::future::ready(kept)
    })
    .boxed()
}

/// Whether `row` passes `predicate` (NULL does not).
pub fn passes(predicate: &Expr, row: &[Value], ctx: &EvalContext) -> Result<bool> {
    Ok(predicate.eval(row, ctx)?.as_condition()? == Some(true))
}

/// Runs `finish` over all of `input`'s rows, held under `reservation`, then streams its
/// result (the reservation is given back when the last row has gone).
fn buffered(
    mut input: Rows,
    mut reservation: Reservation,
    finish: impl FnOnce(Vec<Row>) -> Result<Vec<Row>> + Send + 'static,
) -> Rows {
    let rows = stream::once(async move {
        let mut rows = Vec::new();
        while let Some(row) = input.try_next().await? {
            reservation.grow(crate::memory::row_bytes(&row))?;
            rows.push(row);
        }
        let finished = finish(rows)?;
        // The closure owns the reservation: it lives as long as the rows it accounts for.
        Ok::<_, SqlError>(stream::iter(finished).map(move |row| {
            let _held = &reservation;
            Ok(row)
        }))
    })
    .try_flatten()
    .boxed();
    cooperative(rows)
}

fn scan(
    table: Arc<TableDescriptor>,
    spans: Vec<Span>,
    filter: Option<Expr>,
    page: u64,
    txn: Txn,
    ctx: EvalContext,
    profile: Option<Arc<crate::profile::Profile>>,
) -> Rows {
    let codec = RowCodec::default();
    let pushed = filter.as_ref().map(|f| crate::pushdown::scan_filter(&table, f, &ctx));
    pages(spans, pushed, page, txn, profile)
        .and_then(move |page| {
            let rows: Result<Vec<Row>> = page
                .into_iter()
                .map(|(key, value)| codec.decode_row(&table, &key, &value))
                .filter_map(|row| match row {
                    Ok(row) => match filter.as_ref().map(|f| passes(f, &row, &ctx)) {
                        None | Some(Ok(true)) => Some(Ok(row)),
                        Some(Ok(false)) => None,
                        Some(Err(e)) => Some(Err(e)),
                    },
                    Err(e) => Some(Err(e)),
                })
                .collect();
            futures::future::ready(rows)
        })
        .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}

/// Reads `spans` in order, `page` rows at a time; with a filter, the ranges return only the
/// rows it keeps ([`crate::pushdown`]).
/// Each request sent is counted in `profile` (EXPLAIN ANALYZE).
fn pages(
    spans: Vec<Span>,
    filter: Option<ScanFilter>,
    page: u64,
    txn: Txn,
    profile: Option<Arc<crate::profile::Profile>>,
) -> Pages {
    let mut spans = std::collections::VecDeque::from(spans);
    let current = spans.pop_front();
    stream::try_unfold((current, spans, txn), move |(current, mut rest, txn)| {
        let filter = filter.clone();
        let profile = profile.clone();
        async move {
            let Some(span) = current else { return Ok(None) };
            if span.is_empty() {
                let next = rest.pop_front();
                return Ok(Some((Vec::new(), (next, rest, txn))));
            }
            if let Some(profile) = &profile {
                profile.count_kv_request();
            }
            let request = Request::Scan { span, limit: Some(page), filter };
            let Some(Response::Scan { rows, resume }) = txn.send(vec![request]).await?.pop() else {
                return Err(SqlError::Internal("a scan was answered with another response".into()));
            };
            let next = resume.or_else(|| rest.pop_front());
            Ok(Some((rows, (next, rest, txn))))
        }
    })
    .boxed()
}

/// Reads an index's entries in `spans` and fetches the rows they point to.
fn index_scan(
    table: Arc<TableDescriptor>,
    spans: Vec<Span>,
    filter: Option<Expr>,
    page: u64,
    txn: Txn,
    ctx: EvalContext,
    profile: Option<Arc<crate::profile::Profile>>,
) -> Rows {
    let fetch = txn.clone();
    let codec = RowCodec::default();
    pages(spans, None, page, txn, profile.clone())
        .and_then(move |entries| {
            if let (Some(profile), false) = (&profile, entries.is_empty()) {
                profile.count_kv_request();
            }
            let fetch = fetch.clone();
            let table = table.clone();
            let filter = filter.clone();
            let codec = codec.clone();
            async move {
                let gets: Vec<Request> = entries
                    .iter()
                    .map(|(_, primary)| Request::Get { key: Key::new(primary.clone()) })
                    .collect();
                if gets.is_empty() {
                    return Ok(Vec::new());
                }
                let responses = fetch.send(gets).await?;
                let mut rows = Vec::new();
                for ((_, primary), response) in entries.into_iter().zip(responses) {
                    let Response::Get(Some(value)) = response else {
                        return Err(SqlError::Internal(format!(
                            "index entry of {} points to a missing row",
                            table.name
                        )));
                    };
                    let row = codec.decode_row(&table, &Key::new(primary), &value)?;
                    if filter.as_ref().map_or(Ok(true), |f| passes(f, &row, &ctx))? {
                        rows.push(row);
                    }
                }
                Ok(rows)
            }
        })
        .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}

fn sort(rows: Vec<Row>, keys: &[SortKey], ctx: &EvalContext) -> Result<Vec<Row>> {
    let mut keyed: Vec<(Vec<Value>, Row)> = rows
        .into_iter()
        .map(|row| Ok((keys.iter().map(|k| k.expr.eval(&row, ctx)).collect::<Result<_>>()?, row)))
        .collect::<Result<_>>()?;
    keyed.sort_by(|(a, _), (b, _)| compare_keys(a, b, keys));
    Ok(keyed.into_iter().map(|(_, row)| row).collect())
}

/// Orders two rows' sort key values as `keys` say (NULLs first or last, each key ascending
/// or descending).
pub(crate) fn compare_keys(a: &[Value], b: &[Value], keys: &[SortKey]) -> std::cmp::Ordering {
    for ((x, y), key) in a.iter().zip(b).zip(keys) {
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => {
                if key.nulls_first {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            }
            (false, true) => {
                if key.nulls_first {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Less
                }
            }
            (false, false) => {
                let ord = x.sort_cmp(y);
                if key.ascending { ord } else { ord.reverse() }
            }
        };
        if ord.is_ne() {
            return ord;
        }
    }
    std::cmp::Ordering::Equal
}

/// How many input rows an aggregation folds between yields to the runtime.
const YIELD_EVERY_ROWS: u64 = 1024;

/// Folds the input's rows into their groups as they arrive: memory holds one accumulator per
/// group, never the input.
async fn aggregate(
    mut rows: Rows,
    group_by: &[Expr],
    aggregates: &[Aggregate],
    ctx: &EvalContext,
    mut reservation: Reservation,
) -> Result<Vec<Row>> {
    let fresh = || -> Vec<Accumulator> {
        aggregates.iter().map(|a| Accumulator::new(a.function)).collect()
    };
    // Groups in first-seen order, so output is deterministic before any ORDER BY.
    let mut order: Vec<Vec<Value>> = Vec::new();
    let mut groups: HashMap<Vec<Value>, GroupState> = HashMap::new();
    let mut seen: u64 = 0;
    while let Some(row) = rows.try_next().await? {
        seen += 1;
        if seen.is_multiple_of(YIELD_EVERY_ROWS) {
            // Rows computed in memory (a join) never make the task wait: give way now and
            // then, so the runtime's other tasks, and a cancel request, get their turn.
            tokio::task::yield_now().await;
        }
        let row = &row;
        let key: Vec<Value> = group_by.iter().map(|e| e.eval(row, ctx)).collect::<Result<_>>()?;
        if !groups.contains_key(&key) {
            // The key is held twice (the map and the order), plus one accumulator per
            // aggregate.
            let accumulators = aggregates.len() * std::mem::size_of::<Accumulator>();
            reservation.grow(2 * crate::memory::row_bytes(&key) + accumulators)?;
        }
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            (fresh(), vec![HashSet::new(); aggregates.len()])
        });
        for (i, a) in aggregates.iter().enumerate() {
            let Some(value) = Accumulator::input(a, row, ctx)? else { continue };
            if a.distinct {
                if entry.1[i].contains(&value) {
                    continue;
                }
                reservation.grow(crate::memory::value_bytes(&value))?;
                entry.1[i].insert(value.clone());
            }
            entry.0[i].add(a, value, row, ctx, &mut reservation)?;
        }
    }
    if order.is_empty() && group_by.is_empty() {
        order.push(Vec::new());
        groups.insert(Vec::new(), (fresh(), vec![]));
    }
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        let (accs, _) = groups.remove(&key).expect("every ordered group exists");
        let mut row = key;
        for acc in accs {
            row.push(acc.value(ctx)?);
        }
        out.push(row);
    }
    Ok(out)
}
