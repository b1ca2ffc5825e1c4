//! `ALTER TABLE`: adding and dropping columns, and splitting a table's ranges by hand; and
//! `SHOW RANGES`, which lists those ranges.
//!
//! Like `CREATE INDEX`, a column change happens in one transaction: the new descriptor and
//! every row it affects are written together, so no one ever sees half a change. Rows are
//! keyed by column id ([`crate::rowcodec`]), so the rows themselves only need rewriting when
//! the new column's value is not NULL:
//!
//! ```text
//!   ALTER TABLE t ADD COLUMN n INT                 descriptor only: old rows read n as NULL
//!   ALTER TABLE t ADD COLUMN n INT DEFAULT 7       descriptor + every row rewritten with n = 7
//!   ALTER TABLE t ADD COLUMN e TEXT UNIQUE         descriptor + a unique index, backfilled
//!   ALTER TABLE t DROP COLUMN n                    descriptor, minus indexes and CHECKs on n;
//!                                                  the stored values of n become unreachable
//!   ALTER TABLE t SPLIT AT VALUES (10), (20)       AdminSplit at /Table/t/1/10, /Table/t/1/20
//! ```
//!
//! # Out of scope
//!
//! Online schema changes: a large table makes a large transaction, and concurrent writers of
//! the table conflict with it. A dropped column's values stay in the rows until each row is
//! next written. Dropping a primary key column, `RENAME`, `ALTER COLUMN` and constraints added
//! by `ALTER TABLE` are not supported.

use std::sync::Arc;

use futures::TryStreamExt;
use shoal_api::Request;
use shoal_kvclient::txn::Txn;
use shoal_kvclient::{KvClient, KvOps};
use sqlparser::ast;

use crate::binder::{Binder, Scope, ident, object_name};
use crate::catalog::{Catalog, IndexDescriptor, Snapshot, TableDescriptor};
use crate::dml::{self, DmlContext};
use crate::error::{Result, SqlError};
use crate::exec::{self, Row};
use crate::plan::Column;
use crate::planner::{Planner, table_scan};
use crate::rowcodec::RowCodec;
use crate::session::Output;
use crate::types::{DataType, Value};

/// Runs an `ALTER TABLE` statement.
pub async fn alter_table(
    d: &DmlContext<'_>,
    catalog: &Catalog,
    alter: &ast::AlterTable,
) -> Result<Output> {
    if alter.only || alter.location.is_some() || alter.on_cluster.is_some() {
        return Err(SqlError::NotSupported("this ALTER TABLE form".into()));
    }
    let name = object_name(&alter.name)?;
    let Some(table) = d.catalog.lookup(&name)? else {
        if alter.if_exists {
            return Ok(Output::Done("ALTER TABLE"));
        }
        return Err(SqlError::UndefinedTable(name));
    };
    let mut table = table;
    for operation in &alter.operations {
        table = match operation {
            ast::AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                column_position: None,
                ..
            } => {
                let exists = table.column_index(&ident(&column_def.name)).is_some();
                if exists && *if_not_exists {
                    continue;
                }
                add_column(d, table, column_def).await?
            }
            ast::AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                drop_behavior: None | Some(ast::DropBehavior::Restrict),
                ..
            } => {
                let mut current = table;
                for column in column_names {
                    current = drop_column(d.txn, current, &ident(column), *if_exists).await?;
                }
                current
            }
            other => {
                return Err(SqlError::NotSupported(format!("ALTER TABLE … {other}")));
            }
        };
    }
    catalog.write_table(d.txn, &table).await?;
    Ok(Output::Done("ALTER TABLE"))
}

/// Adds a column, rewriting the rows when it has a value and building its unique index.
async fn add_column(
    d: &DmlContext<'_>,
    old: Arc<TableDescriptor>,
    def: &ast::ColumnDef,
) -> Result<Arc<TableDescriptor>> {
    let mut table = (*old).clone();
    let (column, keys) = crate::ddl::column_from_def(&mut table, def)?;
    if keys.primary {
        return Err(SqlError::NotSupported("adding a PRIMARY KEY column".into()));
    }
    let default = match column.default.as_deref() {
        None => None,
        Some(crate::ddl::UNIQUE_ROWID) => {
            return Err(SqlError::NotSupported(
                "adding a column defaulting to unique_rowid()".into(),
            ));
        }
        Some(text) => Some(Binder::new(&Scope::default()).bind(&dml::parse_expr(text)?)?),
    };
    let column_name = column.name.clone();
    table.columns.push(column);
    if keys.unique {
        let columns = crate::ddl::resolve_columns(&table, &[(column_name.clone(), true)])?;
        table.indexes.push(IndexDescriptor {
            id: table.next_index_id,
            name: format!("{}_{column_name}_key", table.name),
            columns,
            unique: true,
            hash_buckets: None,
        });
        table.next_index_id += 1;
    }
    let table = Arc::new(table);
    let checks = dml::bound_checks(&table)?;
    let (plan, _) = table_scan(old.clone(), &old.name);
    let mut rows = exec::execute(plan, d.txn.clone(), d.ctx, d.env);
    while let Some(row) = rows.try_next().await? {
        let mut before: Row = row;
        before.push(Value::Null);
        let mut after = before.clone();
        if let Some(default) = &default {
            *after.last_mut().expect("a column was added") = default.eval(&[], &d.ctx)?;
        }
        let after = dml::validate(&table, &checks, after, &d.ctx)?;
        if after == before {
            continue;
        }
        let (requests, unique) = dml::row_writes(&table, Some(&before), Some(&after))?;
        dml::write_row(d.txn, requests.clone(), &unique, &requests).await?;
    }
    Ok(table)
}

/// Drops a column and the secondary indexes and CHECK constraints that use it.
async fn drop_column(
    txn: &Txn,
    table: Arc<TableDescriptor>,
    name: &str,
    if_exists: bool,
) -> Result<Arc<TableDescriptor>> {
    let Some(position) = table.column_index(name).filter(|p| !table.columns[*p].hidden) else {
        if if_exists {
            return Ok(table);
        }
        return Err(SqlError::UndefinedColumn(name.to_string()));
    };
    let id = table.columns[position].id;
    if table.primary.columns.iter().any(|(c, _)| *c == id) {
        return Err(SqlError::NotSupported(format!(
            "dropping column \"{name}\", which is part of the primary key"
        )));
    }
    if table.columns.iter().filter(|c| !c.hidden).count() == 1 {
        return Err(SqlError::NotSupported("dropping a table's last column".into()));
    }
    let mut updated = (*table).clone();
    let codec = RowCodec::default();
    let (dropped, kept): (Vec<_>, Vec<_>) =
        updated.indexes.drain(..).partition(|i| i.columns.iter().any(|(c, _)| *c == id));
    updated.indexes = kept;
    for index in &dropped {
        txn.send(vec![Request::DeleteRange { span: codec.index_span(&table, index) }]).await?;
    }
    updated.columns.remove(position);
    // A CHECK naming the column goes with it, as in PostgreSQL.
    let scope = table_scan(Arc::new(updated.clone()), &updated.name).1;
    updated
        .checks
        .retain(|c| dml::parse_expr(&c.expr).and_then(|e| Binder::new(&scope).bind(&e)).is_ok());
    Ok(Arc::new(updated))
}

/// Runs `ALTER TABLE t SPLIT AT <rows>`: one split per row, at the primary key prefix the
/// row gives. Returns each split key.
pub async fn split_at(
    client: &KvClient,
    txn: &Txn,
    snapshot: &Snapshot,
    table: &str,
    rows: &ast::Query,
    ctx: crate::expr::EvalContext,
    env: &exec::ExecEnv,
) -> Result<Output> {
    let table = snapshot.table(table)?;
    let planned = Planner::new(snapshot, ctx).query(rows)?;
    let rows: Vec<Row> = exec::collect(planned.plan, txn.clone(), ctx, env).await?;
    let key_types: Vec<DataType> = table
        .primary
        .columns
        .iter()
        .map(|(id, _)| table.column_position(*id).map(|p| table.columns[p].data_type))
        .collect::<Result<_>>()?;
    let codec = RowCodec::default();
    let mut out = Vec::new();
    for row in rows {
        if row.is_empty() || row.len() > key_types.len() {
            return Err(SqlError::Syntax(format!(
                "SPLIT AT rows need 1 to {} values (the primary key columns)",
                key_types.len()
            )));
        }
        let values = row
            .into_iter()
            .zip(&key_types)
            .map(|(v, t)| v.cast(t))
            .collect::<Result<Vec<Value>>>()?;
        let Some(key) = codec.primary_prefix(&table, &values)? else {
            return Err(SqlError::InvalidParameter("cannot split at a NULL key".into()));
        };
        let pretty = shoal_keys::pretty::pretty(key.as_bytes());
        match client.split_at(key.clone()).await {
            Ok(_) => {}
            // Already a range boundary: nothing to do, as in CockroachDB. (The store's answer
            // is the only sign; a fresh lookup could be stale in the node's range cache.)
            Err(shoal_api::KvError::InvalidArgument(m))
                if m.contains("is already the start of range") => {}
            Err(e) => return Err(e.into()),
        }
        out.push(vec![Value::Bytes(key.as_bytes().to_vec()), Value::Text(pretty)]);
    }
    Ok(Output::Rows {
        columns: vec![column("key", DataType::Bytes), column("pretty", DataType::Text)],
        rows: out,
    })
}

/// Runs `SHOW RANGES FROM TABLE t`: each range holding the table's keys, with its
/// replicas and leaseholder as this node last heard.
pub async fn show_ranges(client: &KvClient, snapshot: &Snapshot, table: &str) -> Result<Output> {
    let table = snapshot.table(table)?;
    let span = RowCodec::default().table_span(&table);
    let ranges = client.ranges_in(&span).await?;
    let rows = ranges
        .into_iter()
        .map(|r| {
            let start = r.start_key.clone().max(span.start.clone());
            let end = r.end_key.clone().min(span.end.clone());
            let replicas: Vec<String> = r.replicas.iter().map(|x| x.node_id.to_string()).collect();
            let leaseholder = client.sender().cache().leaseholder(r.range_id);
            vec![
                Value::Text(shoal_keys::pretty::pretty(start.as_bytes())),
                Value::Text(shoal_keys::pretty::pretty(end.as_bytes())),
                Value::Int(r.range_id as i64),
                Value::Text(format!("{{{}}}", replicas.join(","))),
                leaseholder.map_or(Value::Null, |l| Value::Int(l.node_id as i64)),
            ]
        })
        .collect();
    Ok(Output::Rows {
        columns: vec![
            column("start_key", DataType::Text),
            column("end_key", DataType::Text),
            column("range_id", DataType::Int(8)),
            column("replicas", DataType::Text),
            column("lease_holder", DataType::Int(8)),
        ],
        rows,
    })
}

fn column(name: &str, data_type: DataType) -> Column {
    Column { table: None, name: name.into(), data_type: Some(data_type), hidden: false }
}
