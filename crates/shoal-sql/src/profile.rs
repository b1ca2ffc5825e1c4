//! EXPLAIN ANALYZE: what each operator of a statement did when it ran.
//!
//! Before the statement runs, [`instrument`] wraps each operator of its plan in a
//! [`Plan::Measure`] with the operator's number (pre-order, as EXPLAIN lists them). The
//! executor then counts, per operator, the rows it produced and the time spent pulling them
//! (inclusive of its inputs, as PostgreSQL's "actual time" is); the statement as a whole
//! counts its KV read requests, the peak of its memory budget, its restarts, and (when it has
//! correlated subqueries) how many times they ran for one outer value and how many switched
//! to their decorrelated plan ([`crate::exec_apply`]). A KV trace on the transaction
//! ([`shoal_kvclient::trace`]) says where the requests went: the batches the ranges
//! answered, each range with the nodes that served it, and what got in the way (redirects,
//! other transactions' locks, read refreshes).
//!
//! ```text
//!   EXPLAIN ANALYZE SELECT k FROM t WHERE v > 1
//!
//!   project #0  (actual rows=2 time=0.21ms)
//!     scan t spans [...] on r12 - filter (#1 > 1)  (actual rows=2 time=0.19ms)
//!   kv: 1 batch to 1 range on 1 node (r12 on n1), redirects 0, lock conflicts 0, read refreshes 0
//!   execution: 2 rows in 0.25ms, kv requests 1, peak memory 96 B, restarts 0
//! ```
//!
//! Each operator also shows the most memory its own reservations held at once (a sort's
//! buffer, a hash join's build side; [`crate::memory`]), when it held any.
//!
//! Restarts: a statement in its own transaction that restarts runs again whole; the footer
//! names the reasons of the runs before, and every other count is the last run's. Inside an
//! explicit transaction the client restarts, so the count is always 0 there.
//!
//! Not measured: the plans of subqueries and of LATERAL right sides, which are re-planned per
//! outer value (their operators' lines carry no counts; the apply or lateral join above them
//! includes their time and memory); the KV work of uncorrelated subqueries, which run before
//! the statement is planned.

use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use futures::stream::StreamExt;

use shoal_kvclient::trace::KvTrace;

use crate::error::Result;
use crate::exec::{Row, Rows};
use crate::plan::Plan;

/// What one operator did.
#[derive(Debug, Clone, Default)]
pub struct OperatorStats {
    /// Rows produced.
    pub rows: u64,
    /// Time spent producing them, inputs included.
    pub time: Duration,
    /// The most memory its own reservations held at once (its inputs' not included).
    pub memory: usize,
}

/// The counts of one statement's run.
#[derive(Debug, Default)]
pub struct Profile {
    operators: Mutex<Vec<OperatorStats>>,
    meters: Vec<std::sync::Arc<crate::memory::Meter>>,
    kv_requests: AtomicU64,
    subquery_runs: AtomicU64,
    subqueries_hashed: AtomicU64,
    kv: std::sync::Arc<KvTrace>,
}

impl Profile {
    /// A profile for a plan of `operators` instrumented operators.
    pub fn new(operators: usize) -> Self {
        Profile {
            operators: Mutex::new(vec![OperatorStats::default(); operators]),
            meters: (0..operators).map(|_| std::sync::Arc::default()).collect(),
            kv_requests: AtomicU64::new(0),
            subquery_runs: AtomicU64::new(0),
            subqueries_hashed: AtomicU64::new(0),
            kv: std::sync::Arc::default(),
        }
    }

    /// What operator `id` did so far.
    pub fn operator(&self, id: usize) -> OperatorStats {
        let stats = self.operators.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        let memory = self.meters.get(id).map_or(0, |m| m.peak());
        OperatorStats { memory, ..stats.unwrap_or_default() }
    }

    /// Where operator `id`'s memory reservations are counted.
    pub(crate) fn meter(&self, id: usize) -> std::sync::Arc<crate::memory::Meter> {
        self.meters.get(id).cloned().unwrap_or_default()
    }

    /// The KV read requests the statement's scans sent.
    pub fn kv_requests(&self) -> u64 {
        self.kv_requests.load(Ordering::Relaxed)
    }

    /// Counts one KV read request.
    pub(crate) fn count_kv_request(&self) {
        self.kv_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one run of a correlated subquery for one outer value.
    pub(crate) fn count_subquery_run(&self) {
        self.subquery_runs.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one subquery switched to its decorrelated plan ([`crate::exec_apply`]).
    pub(crate) fn count_subquery_hashed(&self) {
        self.subqueries_hashed.fetch_add(1, Ordering::Relaxed);
    }

    /// The statement's subquery work, for the footer: empty when it ran none.
    fn subqueries(&self) -> String {
        let runs = self.subquery_runs.load(Ordering::Relaxed);
        let hashed = self.subqueries_hashed.load(Ordering::Relaxed);
        match (runs, hashed) {
            (0, 0) => String::new(),
            _ => format!(", subquery runs {runs}, hashed {hashed}"),
        }
    }

    fn record(&self, id: usize, rows: u64, time: Duration) {
        let mut operators = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stats) = operators.get_mut(id) {
            stats.rows += rows;
            stats.time += time;
        }
    }
}

/// `plan` with each operator of its main tree wrapped in a [`Plan::Measure`], numbered from
/// `*next` in pre-order; `*next` ends past the last number.
pub fn instrument(plan: Plan, next: &mut usize) -> Plan {
    let id = *next;
    *next += 1;
    let plan = match plan {
        measured @ Plan::Measure { .. } => measured,
        other => other.map_inputs(|input| instrument(input, next)),
    };
    Plan::Measure { id, source: Box::new(plan) }
}

/// Counts the rows `inner` produces and the time spent pulling them, as operator `id`.
pub(crate) fn measured(inner: Rows, id: usize, profile: std::sync::Arc<Profile>) -> Rows {
    Measured { inner, id, profile }.boxed()
}

struct Measured {
    inner: Rows,
    id: usize,
    profile: std::sync::Arc<Profile>,
}

impl Stream for Measured {
    type Item = Result<Row>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Wall-clock time of this process's own work, for the report only: nothing decides on
        // it, so it is read here rather than injected.
        let started = Instant::now();
        let polled = self.inner.poll_next_unpin(cx);
        let row = matches!(polled, Poll::Ready(Some(Ok(_))));
        self.profile.record(self.id, u64::from(row), started.elapsed());
        polled
    }
}

/// Runs `query` with its operators measured, and returns its plan with what each did.
pub async fn explain_analyze(
    d: &crate::dml::DmlContext<'_>,
    client: &shoal_kvclient::KvClient,
    query: &sqlparser::ast::Query,
) -> Result<crate::session::Output> {
    let planned = crate::planner::Planner::new(d.catalog, d.ctx).query(query)?;
    let mut operators = 0;
    let plan = instrument(planned.plan, &mut operators);
    let profile = std::sync::Arc::new(Profile::new(operators));
    let env = crate::exec::ExecEnv { profile: Some(profile.clone()), ..d.env.clone() };
    let tracing = Tracing::start(d.txn, &profile.kv);
    // Wall-clock time of the run, for the report only.
    let started = Instant::now();
    let mut rows = crate::exec::execute(plan.clone(), d.txn.clone(), d.ctx, &env);
    let mut count = 0u64;
    while futures::TryStreamExt::try_next(&mut rows).await?.is_some() {
        count += 1;
    }
    let elapsed = started.elapsed();
    drop(tracing);
    let footer = vec![
        show_kv(&profile.kv.summary()),
        format!(
            "execution: {count} rows in {:.3}ms, kv requests {}, peak memory {}, {}{}",
            elapsed.as_secs_f64() * 1000.0,
            profile.kv_requests(),
            crate::memory::show_bytes(env.memory.peak()),
            show_restarts(&env.restarts),
            profile.subqueries(),
        ),
    ];
    crate::schema::explain_analyzed(client, &plan, &profile, footer).await
}

/// Records `txn`'s KV work into a trace until dropped (also when the statement fails or is
/// cancelled midway).
struct Tracing<'a>(&'a shoal_kvclient::txn::Txn);

impl<'a> Tracing<'a> {
    fn start(txn: &'a shoal_kvclient::txn::Txn, trace: &std::sync::Arc<KvTrace>) -> Self {
        txn.set_trace(Some(trace.clone()));
        Tracing(txn)
    }
}

impl Drop for Tracing<'_> {
    fn drop(&mut self) {
        self.0.set_trace(None);
    }
}

/// `restarts 0`, or `restarts 2 (write_too_old, refresh_failed)`.
fn show_restarts(restarts: &[shoal_api::txn::RetryReason]) -> String {
    match restarts {
        [] => "restarts 0".into(),
        reasons => {
            let names: Vec<&str> = reasons.iter().map(|r| r.name()).collect();
            format!("restarts {} ({})", reasons.len(), names.join(", "))
        }
    }
}

/// The KV trace's footer line: where the statement's batches went and what got in their way.
pub(crate) fn show_kv(kv: &shoal_kvclient::trace::KvTraceSummary) -> String {
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let ranges: Vec<String> = kv
        .ranges
        .iter()
        .map(|(range, nodes)| {
            let nodes: Vec<String> = nodes.iter().map(|n| format!("n{n}")).collect();
            format!("r{range} on {}", nodes.join(" "))
        })
        .collect();
    let served = match ranges.is_empty() {
        true => String::new(),
        false => format!(" ({})", ranges.join(", ")),
    };
    format!(
        "kv: {} to {} on {}{served}, redirects {}, lock conflicts {}, read refreshes {}",
        count(kv.batches as usize, "batch", "batches"),
        count(kv.ranges.len(), "range", "ranges"),
        count(kv.nodes().len(), "node", "nodes"),
        kv.redirects,
        kv.lock_conflicts,
        kv.refreshes,
    )
}

/// An operator's counts as EXPLAIN ANALYZE shows them (memory only for operators that
/// held some).
pub fn show(stats: &OperatorStats) -> String {
    let memory = match stats.memory {
        0 => String::new(),
        bytes => format!(" memory={}", crate::memory::show_bytes(bytes)),
    };
    format!("(actual rows={} time={:.3}ms{memory})", stats.rows, stats.time.as_secs_f64() * 1000.0)
}
