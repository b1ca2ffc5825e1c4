//! Table statistics: row counts and per-column distinct and NULL counts, which the join
//! planner's estimates read ([`crate::optimizer_join`]).
//!
//! ```text
//!   ANALYZE t  /  CREATE STATISTICS s FROM t     scan t once, in the statement's transaction
//!        │                                         count rows; per column, distinct values
//!        ▼                                         (exact up to a cap) and NULLs
//!   /System/sql/stats/<table id>  (postcard)    ──▶ this node's catalog cache at once;
//!                                                   the others within STATS_REFRESH
//!   rows written by INSERT/UPDATE/DELETE on a node: once they reach 20 % of the last row
//!   count (at least AUTO_MIN_CHANGES), that node collects the table's statistics again in
//!   the background: one table at a time, read as of AUTO_READ_BEHIND ago (a read-only
//!   transaction that neither meets nor pushes the writers in flight), then stored in a
//!   short transaction of its own
//! ```
//!
//! # Why statistics are not part of the catalog version
//!
//! Every transaction reads the catalog version, and a schema change bumps it, which makes
//! the transactions in flight that must refresh their reads restart (see [`crate::catalog`]).
//! Statistics change far more often than schemas (automatically, under write load), and
//! a stale estimate only costs a worse plan, never a wrong answer. So writing statistics
//! leaves the version alone: each node's catalog cache holds the statistics beside the
//! descriptors, replaces them when it collects new ones itself, and reads them all again
//! (outside any transaction) when they are older than [`STATS_REFRESH`] by the clock of the
//! statements it serves. Nothing reads the statistics keys in a user transaction, so
//! collecting them never conflicts with one.
//!
//! # Invariants
//!
//! - Statistics only steer plans: every operator is correct for any estimate.
//! - Distinct counts are exact up to [`DISTINCT_CAP`] values per column, then the column
//!   counts as unique (the safe guess for an equality's selectivity).
//!
//! Out of scope: histograms, multi-column statistics (`CREATE STATISTICS s ON a, b` collects
//! each column's own), and sampling: collecting reads the whole table.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use shoal_kvclient::txn::Txn;

use crate::catalog::{Catalog, Snapshot, TableDescriptor};
use crate::error::{Result, SqlError};
use crate::expr::EvalContext;
use crate::plan::Column;
use crate::plan::Plan;
use crate::rowcodec::RowCodec;
use crate::session::Output;
use crate::types::{DataType, Value};

/// How old a node's copy of the statistics may get before it reads them again, in
/// microseconds of the statements' clock.
pub const STATS_REFRESH: i64 = 10_000_000;

/// Rows changed on one node that make it collect a table's statistics again, at least.
pub const AUTO_MIN_CHANGES: u64 = 500;

/// How far behind the present automatic collection reads a table.
pub const AUTO_READ_BEHIND: std::time::Duration = std::time::Duration::from_secs(1);

/// Distinct values counted exactly per column.
pub const DISTINCT_CAP: usize = 100_000;

/// What one collection found in a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    /// The name it was collected under (`__auto__` for ANALYZE and automatic collection).
    pub name: String,
    /// Rows in the table.
    pub row_count: u64,
    /// Per column, by column id.
    pub columns: Vec<ColumnStats>,
    /// When it was collected: the collecting transaction's clock, microseconds.
    pub collected_at_micros: i64,
}

/// One column's statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// The column's id.
    pub column_id: u32,
    /// Distinct non-NULL values.
    pub distinct: u64,
    /// NULLs.
    pub nulls: u64,
}

impl TableStats {
    /// The statistics of the column with id `column_id`, if collected.
    pub fn column(&self, column_id: u32) -> Option<&ColumnStats> {
        self.columns.iter().find(|c| c.column_id == column_id)
    }
}

/// Reads `table` whole in `txn` and counts what [`TableStats`] holds, for the columns at
/// `positions` (all when empty).
pub async fn collect(
    table: &Arc<TableDescriptor>,
    positions: &[usize],
    name: &str,
    txn: &Txn,
    ctx: EvalContext,
    env: &crate::exec::ExecEnv,
) -> Result<TableStats> {
    let positions: Vec<usize> = match positions {
        [] => (0..table.columns.len()).collect(),
        some => some.to_vec(),
    };
    let whole = vec![RowCodec::default().index_span(table, &table.primary)];
    let scan = Plan::Scan { table: table.clone(), spans: whole, filter: None };
    let mut rows = crate::exec::execute(scan, txn.clone(), ctx, env);
    let mut seen: Vec<HashSet<Value>> = positions.iter().map(|_| HashSet::new()).collect();
    let mut capped = vec![false; positions.len()];
    let mut nulls = vec![0u64; positions.len()];
    let mut held = vec![0usize; positions.len()];
    let mut row_count = 0u64;
    let mut reservation = env.memory.reservation("ANALYZE");
    while let Some(row) = rows.try_next().await? {
        row_count += 1;
        for (i, &position) in positions.iter().enumerate() {
            match row.get(position) {
                None | Some(Value::Null) => nulls[i] += 1,
                Some(_) if capped[i] => {}
                Some(value) => {
                    if seen[i].len() >= DISTINCT_CAP {
                        capped[i] = true;
                        reservation.shrink(held[i]);
                        seen[i] = HashSet::new();
                    } else if !seen[i].contains(value) {
                        let bytes = crate::memory::value_bytes(value);
                        reservation.grow(bytes)?;
                        held[i] += bytes;
                        seen[i].insert(value.clone());
                    }
                }
            }
        }
    }
    let columns = positions
        .iter()
        .enumerate()
        .map(|(i, &position)| ColumnStats {
            column_id: table.columns[position].id,
            distinct: if capped[i] { row_count - nulls[i] } else { seen[i].len() as u64 },
            nulls: nulls[i],
        })
        .collect();
    Ok(TableStats {
        name: name.to_string(),
        row_count,
        columns,
        collected_at_micros: ctx.now_micros,
    })
}

/// `ANALYZE [t [(columns)]]` (and `CREATE STATISTICS`, rewritten to it): collects the
/// statistics of `t`, or of every table of the current database, and stores them.
pub async fn analyze(
    txn: &Txn,
    catalog: &Catalog,
    snapshot: &Snapshot,
    analyze: &sqlparser::ast::Analyze,
    ctx: EvalContext,
    env: &crate::exec::ExecEnv,
) -> Result<Output> {
    let tables: Vec<Arc<TableDescriptor>> = match &analyze.table_name {
        Some(name) => vec![snapshot.table(&crate::binder::object_name(name)?)?],
        None => snapshot.tables.values().cloned().collect(),
    };
    // Every table is read before any statistics are written: the transaction then holds its
    // intents on the statistics keys for a moment, not for the whole scan (an automatic
    // collection writing the same key meanwhile would have to wait for it, or push it).
    let mut collected = Vec::with_capacity(tables.len());
    for table in tables {
        let positions = analyze
            .columns
            .iter()
            .map(|c| {
                let name = crate::binder::ident(c);
                // PostgreSQL's text: column "c" of relation "t" does not exist.
                table.column_index(&name).ok_or_else(|| {
                    SqlError::UndefinedColumn(format!("{name}\" of relation \"{}", table.name))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        collected.push((table.id, collect_on_sql_runtime(table, positions, txn, ctx, env).await?));
    }
    for (table_id, stats) in collected {
        catalog.write_stats(txn, table_id, &stats).await?;
        // Seen by this node's next statement, even before the commit: an estimate only.
        catalog.set_stats(table_id, Some(stats));
    }
    Ok(Output::Done("ANALYZE"))
}

/// [`collect`] on the SQL runtime when there is one, so that counting the rows never takes
/// the node runtime's threads (the session awaits it there); dropping the future (a cancel,
/// a timeout) aborts the collection.
async fn collect_on_sql_runtime(
    table: Arc<TableDescriptor>,
    positions: Vec<usize>,
    txn: &Txn,
    ctx: EvalContext,
    env: &crate::exec::ExecEnv,
) -> Result<TableStats> {
    let Some(runtime) = env.runtime.clone() else {
        return collect(&table, &positions, "__auto__", txn, ctx, env).await;
    };
    struct AbortOnDrop(tokio::task::JoinHandle<Result<TableStats>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let (txn, env) = (txn.clone(), env.clone());
    let mut task = AbortOnDrop(
        runtime
            .spawn(async move { collect(&table, &positions, "__auto__", &txn, ctx, &env).await }),
    );
    match (&mut task.0).await {
        Ok(result) => result,
        Err(e) => Err(SqlError::Internal(format!("statistics collection stopped: {e}"))),
    }
}

/// `SHOW STATISTICS FOR TABLE t`: one row per column with statistics.
pub fn show(table: &TableDescriptor) -> Output {
    let column = |name: &str, data_type| Column {
        table: None,
        name: name.to_string(),
        data_type: Some(data_type),
        hidden: false,
    };
    let columns = vec![
        column("statistics_name", DataType::Text),
        column("column_names", DataType::Text),
        column("row_count", DataType::Int(8)),
        column("distinct_count", DataType::Int(8)),
        column("null_count", DataType::Int(8)),
    ];
    let count = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let rows = table
        .stats
        .iter()
        .flat_map(|stats| {
            stats.columns.iter().filter_map(|c| {
                let name = &table.columns.iter().find(|d| d.id == c.column_id)?.name;
                Some(vec![
                    Value::Text(stats.name.clone()),
                    Value::Text(format!("{{{name}}}")),
                    count(stats.row_count),
                    count(c.distinct),
                    count(c.nulls),
                ])
            })
        })
        .collect();
    Output::Rows { columns, rows }
}

/// Rows changed on this node per table since its statistics were last collected here: what
/// decides when automatic collection runs again.
///
/// One collection at a time per node: a bulk load writes faster than a table can be read
/// again, and the threshold only grows once a collection has finished (it is a share of the
/// row count the last one found), so collections started per statement would pile up and
/// starve the load. A table that comes due while another collects waits its turn.
#[derive(Debug, Default)]
pub struct Changes {
    state: Mutex<ChangesState>,
}

#[derive(Debug, Default)]
struct ChangesState {
    changed: HashMap<u64, u64>,
    /// Tables whose statistics are due, in the order they came due.
    due: Vec<u64>,
    /// The table being collected now, if any.
    collecting: Option<u64>,
}

impl Changes {
    /// Counts `rows` changed in `table`; true when that makes its statistics due (the
    /// count then starts again).
    pub fn note(&self, table: &TableDescriptor, rows: u64) -> bool {
        if rows == 0 {
            return false;
        }
        let known = table.stats.as_ref().map_or(0, |s| s.row_count);
        let due_at = AUTO_MIN_CHANGES.max(known / 5);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let waiting = state.due.contains(&table.id) || state.collecting == Some(table.id);
        let count = state.changed.entry(table.id).or_default();
        *count += rows;
        if *count >= due_at && !waiting {
            state.changed.remove(&table.id);
            state.due.push(table.id);
            return true;
        }
        false
    }

    /// The next table whose statistics are due, unless a collection runs already; the
    /// caller collects it, then calls [`Changes::collected`].
    pub fn claim_due(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.collecting.is_some() || state.due.is_empty() {
            return None;
        }
        let table_id = state.due.remove(0);
        state.collecting = Some(table_id);
        Some(table_id)
    }

    /// Ends the collection [`Changes::claim_due`] handed out.
    pub fn collected(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).collecting = None;
    }
}

/// What a condition the statistics say nothing about is guessed to keep.
pub const UNKNOWN_SELECTIVITY: f64 = 1.0 / 3.0;

/// Rows a table without statistics is guessed to hold.
pub const UNKNOWN_TABLE_ROWS: f64 = 1000.0;

/// The rows `table` holds, by its statistics (at least one), or the guess without them.
pub(crate) fn table_rows(table: &TableDescriptor) -> f64 {
    table.stats.as_ref().map_or(UNKNOWN_TABLE_ROWS, |s| (s.row_count as f64).max(1.0))
}

/// The share of `table`'s rows that `filter` (over the table's columns) keeps: per AND-ed
/// conjunct, one in the column's distinct count for `column = constant`, the column's NULL
/// share for `column IS NULL` (the rest for `IS NOT NULL`), [`UNKNOWN_SELECTIVITY`]
/// otherwise.
pub(crate) fn selectivity(table: &TableDescriptor, filter: &crate::expr::Expr) -> f64 {
    use crate::expr::{BinaryOp, Expr};
    let column = |position: usize| {
        let stats = table.stats.as_ref()?;
        Some((stats.row_count, stats.column(table.columns.get(position)?.id)?.clone()))
    };
    crate::optimizer::conjuncts(filter)
        .into_iter()
        .map(|conjunct| match conjunct {
            Expr::Binary(BinaryOp::Eq, a, b) => match (a.as_ref(), b.as_ref()) {
                (Expr::Column(c), Expr::Literal(v)) | (Expr::Literal(v), Expr::Column(c))
                    if !v.is_null() =>
                {
                    column(*c)
                        .map_or(UNKNOWN_SELECTIVITY, |(_, s)| 1.0 / (s.distinct.max(1) as f64))
                }
                _ => UNKNOWN_SELECTIVITY,
            },
            Expr::IsNull(e, negated) => match e.as_ref() {
                Expr::Column(c) => column(*c).map_or(UNKNOWN_SELECTIVITY, |(rows, s)| {
                    let nulls = s.nulls as f64 / (rows.max(1) as f64);
                    if *negated { 1.0 - nulls } else { nulls }
                }),
                _ => UNKNOWN_SELECTIVITY,
            },
            _ => UNKNOWN_SELECTIVITY,
        })
        .product()
}

/// Whether `filter` fixes every primary key column of `table` (each equal to a constant, or
/// a one-column key in an IN list): each key span then holds at most one row.
pub(crate) fn fixes_primary_key(table: &TableDescriptor, filter: &crate::expr::Expr) -> bool {
    use crate::expr::{BinaryOp, Expr};
    let Ok(key) = table.primary_positions() else { return false };
    let parts = crate::optimizer::conjuncts(filter);
    let fixed = |position: usize| {
        parts.iter().any(|p| match p {
            Expr::Binary(BinaryOp::Eq, a, b) => matches!(
                (a.as_ref(), b.as_ref()),
                (Expr::Column(c), Expr::Literal(_)) | (Expr::Literal(_), Expr::Column(c)) if *c == position
            ),
            Expr::InList(e, _, false) => key.len() == 1 && matches!(e.as_ref(), Expr::Column(c) if *c == position),
            _ => false,
        })
    };
    !key.is_empty() && key.iter().all(|&p| fixed(p))
}
