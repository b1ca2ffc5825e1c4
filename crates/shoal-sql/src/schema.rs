//! Schema changes beyond CREATE TABLE, and statements that describe the schema and plans.
//!
//! `CREATE INDEX` adds the index to the descriptor and backfills it from the table's rows in
//! the same transaction, so the index is complete the moment anyone can see it (no online
//! schema change: a large table makes a large transaction). `DROP INDEX` removes the
//! descriptor entry and deletes the index's key span.
//!
//! ```text
//!   CREATE INDEX t_v ON t (v)          backfill: every row r → Put /Table/t/<i>/<r.v>/<r.pk>
//!   CREATE INDEX … USING HASH (v)      a leading bucket column: /Table/t/<i>/<bucket>/<v>/…
//!   EXPLAIN SELECT …                   the plan, each scan's spans and the ranges they touch
//! ```

use std::sync::Arc;

use shoal_api::Request;
use shoal_keys::Span;
use shoal_kvclient::txn::Txn;
use shoal_kvclient::{KvClient, KvOps};
use sqlparser::ast;

use crate::binder::{ident, object_name};
use crate::catalog::{Catalog, IndexDescriptor, Snapshot, TableDescriptor};
use crate::error::{Result, SqlError};
use crate::exec;
use crate::expr::EvalContext;
use crate::plan::{Column, Plan};
use crate::rowcodec::RowCodec;
use crate::session::Output;
use crate::types::{DataType, Value};

/// Buckets of a hash-sharded index when `bucket_count` is not given (CockroachDB's default).
pub const DEFAULT_BUCKETS: u32 = 16;

/// Runs `CREATE INDEX`: adds the index and backfills it.
pub async fn create_index(
    txn: &Txn,
    catalog: &Catalog,
    snapshot: &Snapshot,
    create: &ast::CreateIndex,
    ctx: EvalContext,
    env: &exec::ExecEnv,
) -> Result<Output> {
    if create.concurrently
        || !create.include.is_empty()
        || create.predicate.is_some()
        || create.nulls_distinct.is_some()
    {
        return Err(SqlError::NotSupported(
            "CONCURRENTLY, INCLUDE, partial or NULLS DISTINCT indexes".into(),
        ));
    }
    let table = snapshot.table(&object_name(&create.table_name)?)?;
    let hash_buckets = match &create.using {
        None | Some(ast::IndexType::BTree) => None,
        Some(ast::IndexType::Hash) => Some(bucket_count(&create.with)?),
        Some(other) => return Err(SqlError::NotSupported(format!("index type {other}"))),
    };
    if hash_buckets.is_none() && !create.with.is_empty() {
        return Err(SqlError::NotSupported("index storage parameters".into()));
    }
    let columns: Vec<(String, bool)> = create
        .columns
        .iter()
        .map(|c| match &c.column.expr {
            ast::Expr::Identifier(id) if c.operator_class.is_none() => {
                Ok((ident(id), !matches!(c.column.options.sort, Some(ast::OrderBySort::Desc))))
            }
            other => Err(SqlError::NotSupported(format!("index on {other}"))),
        })
        .collect::<Result<_>>()?;
    let name = match &create.name {
        Some(name) => object_name(name)?,
        None => {
            let suffix = columns.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join("_");
            format!("{}_{suffix}_idx", table.name)
        }
    };
    if snapshot.tables.values().any(|t| t.index(&name).is_some())
        || snapshot.tables.contains_key(&name)
    {
        if create.if_not_exists {
            return Ok(Output::Done("CREATE INDEX"));
        }
        return Err(SqlError::DuplicateTable(name));
    }
    let mut updated = (*table).clone();
    let index = IndexDescriptor {
        id: updated.next_index_id,
        name,
        columns: crate::ddl::resolve_columns(&updated, &columns)?,
        unique: create.unique,
        hash_buckets,
    };
    updated.next_index_id += 1;
    updated.indexes.push(index.clone());
    backfill(txn, &table, &updated, &index, ctx, env).await?;
    catalog.write_table(txn, &updated).await?;
    Ok(Output::Done("CREATE INDEX"))
}

fn bucket_count(with: &[ast::Expr]) -> Result<u32> {
    let option = match with {
        [] => return Ok(DEFAULT_BUCKETS),
        [option] => option,
        _ => return Err(SqlError::NotSupported("index options other than bucket_count".into())),
    };
    if let ast::Expr::BinaryOp { left, op: ast::BinaryOperator::Eq, right } = option
        && matches!(left.as_ref(), ast::Expr::Identifier(id) if ident(id) == "bucket_count")
        && let ast::Expr::Value(v) = right.as_ref()
        && let ast::Value::Number(n, _) = &v.value
    {
        return match n.parse::<u32>() {
            Ok(b @ 2..=2048) => Ok(b),
            _ => Err(SqlError::InvalidParameter(format!(
                "bucket_count {n} must be between 2 and 2048"
            ))),
        };
    }
    Err(SqlError::NotSupported(format!("index option {option}")))
}

/// Writes `index`'s entry for every row of `table` (read with the old descriptor).
async fn backfill(
    txn: &Txn,
    old: &Arc<TableDescriptor>,
    new: &TableDescriptor,
    index: &IndexDescriptor,
    ctx: EvalContext,
    env: &exec::ExecEnv,
) -> Result<()> {
    let (plan, _) = crate::planner::table_scan(old.clone(), &old.name);
    // Entries are written as rows arrive: the table is never held in memory.
    let mut rows = exec::execute(plan, txn.clone(), ctx, env);
    let codec = RowCodec::default();
    while let Some(row) = futures::TryStreamExt::try_next(&mut rows).await? {
        let (key, value) = codec.index_entry(new, index, &row)?;
        let has_null = index
            .columns
            .iter()
            .any(|(id, _)| new.column_position(*id).is_ok_and(|p| row[p].is_null()));
        let request = if index.unique && !has_null {
            Request::ConditionalPut { key, value, expected: None }
        } else {
            Request::Put { key, value }
        };
        match txn.send(vec![request]).await {
            Err(shoal_api::KvError::ConditionFailed { .. }) => {
                return Err(SqlError::Unique { constraint: index.name.clone() });
            }
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Runs `DROP INDEX`.
pub async fn drop_index(
    txn: &Txn,
    catalog: &Catalog,
    snapshot: &Snapshot,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<Output> {
    for name in names {
        let name = object_name(name)?;
        let Some(table) = snapshot.table_of_index(&name) else {
            if if_exists {
                continue;
            }
            return Err(SqlError::UndefinedObject(name));
        };
        let mut updated = (*table).clone();
        let position = updated.indexes.iter().position(|i| i.name == name).expect("found by name");
        let index = updated.indexes.remove(position);
        let span = RowCodec::default().index_span(&table, &index);
        txn.send(vec![Request::DeleteRange { span }]).await?;
        catalog.write_table(txn, &updated).await?;
    }
    Ok(Output::Done("DROP INDEX"))
}

/// The range ids a span touches, in key order.
async fn ranges_of(client: &KvClient, span: &Span) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    let mut at = span.start.clone();
    while at < span.end {
        let descriptor = client.sender().descriptor_for(&at).await?;
        ids.push(descriptor.range_id);
        if descriptor.end_key <= at {
            break;
        }
        at = descriptor.end_key.clone();
    }
    Ok(ids)
}

fn spans_of(plan: &Plan, out: &mut Vec<Span>) {
    match plan {
        Plan::Scan { spans, .. } | Plan::IndexScan { spans, .. } => {
            out.extend(spans.iter().cloned())
        }
        Plan::Values { .. } | Plan::WorkTable { .. } => {}
        Plan::Recursive { anchor, step, .. } => {
            spans_of(anchor, out);
            spans_of(step, out);
        }
        Plan::Filter { source, .. }
        | Plan::Project { source, .. }
        | Plan::Aggregate { source, .. }
        | Plan::Sort { source, .. }
        | Plan::Limit { source, .. }
        | Plan::Distinct { source, .. }
        | Plan::Window { source, .. }
        | Plan::Measure { source, .. }
        | Plan::LookupJoin { left: source, .. } => spans_of(source, out),
        Plan::Join { left, right, .. }
        | Plan::HashJoin { left, right, .. }
        | Plan::SetOp { left, right, .. }
        | Plan::Lateral { left, right, .. } => {
            spans_of(left, out);
            spans_of(right, out);
        }
        Plan::Apply { source, subqueries } => {
            spans_of(source, out);
            subqueries.iter().for_each(|s| spans_of(&s.plan, out));
        }
    }
}

/// Runs `EXPLAIN`: the plan as rows of text, each scan with its spans and their ranges.
pub async fn explain(client: &KvClient, plan: &Plan) -> Result<Output> {
    explain_with(client, plan, &|_| String::new(), Vec::new()).await
}

/// EXPLAIN ANALYZE's output: the plan with each measured operator's counts, then `footer`.
pub async fn explain_analyzed(
    client: &KvClient,
    plan: &Plan,
    profile: &crate::profile::Profile,
    footer: Vec<String>,
) -> Result<Output> {
    let notes = |id: usize| crate::profile::show(&profile.operator(id));
    explain_with(client, plan, &notes, footer).await
}

async fn explain_with(
    client: &KvClient,
    plan: &Plan,
    notes: &(dyn Fn(usize) -> String + Sync),
    footer: Vec<String>,
) -> Result<Output> {
    let mut spans = Vec::new();
    spans_of(plan, &mut spans);
    let mut ranges = Vec::new();
    for span in spans {
        let ids = ranges_of(client, &span).await?;
        ranges.push((span, ids));
    }
    let describe = |span: &Span| -> String {
        match ranges.iter().find(|(s, _)| s == span) {
            Some((_, ids)) => {
                let ids: Vec<String> = ids.iter().map(|i| format!("r{i}")).collect();
                ids.join(" ")
            }
            None => "?".into(),
        }
    };
    let lines = plan.explain_with(&describe, notes).into_iter().chain(footer);
    let rows = lines.map(|line| vec![Value::Text(line)]).collect();
    Ok(Output::Rows { columns: vec![text_column("info")], rows })
}

fn text_column(name: &str) -> Column {
    Column { table: None, name: name.into(), data_type: Some(DataType::Text), hidden: false }
}

/// Runs `SHOW TABLES`.
pub fn show_tables(snapshot: &Snapshot) -> Output {
    let rows = snapshot.tables.keys().map(|name| vec![Value::Text(name.clone())]).collect();
    Output::Rows { columns: vec![text_column("table_name")], rows }
}

/// Runs `SHOW COLUMNS FROM t`.
pub fn show_columns(table: &TableDescriptor) -> Output {
    let rows = table
        .columns
        .iter()
        .filter(|c| !c.hidden)
        .map(|c| {
            vec![
                Value::Text(c.name.clone()),
                Value::Text(c.data_type.to_string()),
                Value::Bool(c.nullable),
                c.default.clone().map_or(Value::Null, Value::Text),
            ]
        })
        .collect();
    let columns = vec![
        text_column("column_name"),
        text_column("data_type"),
        Column {
            table: None,
            name: "is_nullable".into(),
            data_type: Some(DataType::Bool),
            hidden: false,
        },
        text_column("column_default"),
    ];
    Output::Rows { columns, rows }
}

/// Runs `SHOW INDEXES FROM t`: one row per index column.
pub fn show_indexes(table: &TableDescriptor) -> Output {
    let mut rows = Vec::new();
    for index in table.all_indexes() {
        for (i, (column_id, ascending)) in index.columns.iter().enumerate() {
            let column = table
                .column_position(*column_id)
                .map(|p| table.columns[p].name.clone())
                .unwrap_or_default();
            rows.push(vec![
                Value::Text(index.name.clone()),
                Value::Bool(!index.unique),
                Value::Int(i as i64 + 1),
                Value::Text(column),
                Value::Text(if *ascending { "ASC" } else { "DESC" }.into()),
            ]);
        }
    }
    let columns = vec![
        text_column("index_name"),
        Column {
            table: None,
            name: "non_unique".into(),
            data_type: Some(DataType::Bool),
            hidden: false,
        },
        Column {
            table: None,
            name: "seq_in_index".into(),
            data_type: Some(DataType::Int(8)),
            hidden: false,
        },
        text_column("column_name"),
        text_column("direction"),
    ];
    Output::Rows { columns, rows }
}
