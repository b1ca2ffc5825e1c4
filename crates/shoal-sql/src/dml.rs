//! Statements that change rows: INSERT (with `ON CONFLICT`), UPDATE and DELETE.
//!
//! Every row change writes the primary index entry and the entry of every secondary index, in
//! the statement's transaction, so an index is never out of step with its table:
//!
//! ```text
//!   INSERT INTO t VALUES (1, 'a')        t: (k PRIMARY KEY, v UNIQUE)
//!     ConditionalPut /Table/t/1/1     = (v='a')   expected absent   → else 23505 t_pkey
//!     ConditionalPut /Table/t/2/'a'   = /Table/t/1/1  expected absent → else 23505 t_v_key
//!   UPDATE t SET v = 'b' WHERE k = 1
//!     Put /Table/t/1/1 = (v='b');  Delete /Table/t/2/'a';  ConditionalPut /Table/t/2/'b'
//! ```
//!
//! Unique entries are written with conditional puts, so two transactions inserting the same
//! value conflict in the KV layer and one of them fails, whichever range holds the entry.
//! UPDATE and DELETE first read every target row, then write: a statement never sees its own
//! writes (no Halloween problem).

use std::sync::Arc;

use shoal_api::{KvError, Request};
use shoal_keys::Key;
use shoal_kvclient::KvOps;
use shoal_kvclient::txn::Txn;
use sqlparser::ast;

use crate::binder::{Binder, Scope, ident, object_name};
use crate::catalog::{Snapshot, TableDescriptor};
use crate::error::{Result, SqlError};
use crate::exec::{self, Row, passes};
use crate::expr::{EvalContext, Expr};
use crate::plan::Column;
use crate::planner::{Planner, table_scan};
use crate::rowcodec::RowCodec;
use crate::session::Output;

/// What a row-changing statement needs.
pub struct DmlContext<'a> {
    /// The transaction.
    pub txn: &'a Txn,
    /// The catalog.
    pub catalog: &'a Snapshot,
    /// Evaluation context.
    pub ctx: EvalContext,
    /// Makes `rowid` values.
    pub rowids: &'a (dyn Fn() -> i64 + Send + Sync),
    /// Where the statement's reads run and the memory they may hold.
    pub env: &'a crate::exec::ExecEnv,
}

/// A table's columns as a scope, labelled with the table's name.
pub(crate) fn table_scope(table: &Arc<TableDescriptor>) -> Scope {
    table_scan(table.clone(), &table.name).1
}

/// Parses a stored expression (a DEFAULT or CHECK).
pub(crate) fn parse_expr(text: &str) -> Result<ast::Expr> {
    sqlparser::parser::Parser::new(&sqlparser::dialect::PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::Internal(format!("stored expression {text}: {e}")))
}

/// Binds the RETURNING list over the table's columns.
pub(crate) fn returning(
    table: &Arc<TableDescriptor>,
    label: &str,
    items: &[ast::SelectItem],
) -> Result<(Vec<Expr>, Vec<Column>)> {
    let scope = table_scan(table.clone(), label).1;
    let binder = Binder::new(&scope);
    let types: Vec<_> = scope.columns.iter().map(|c| c.data_type).collect();
    let mut exprs = Vec::new();
    let mut columns = Vec::new();
    for item in items {
        match item {
            ast::SelectItem::Wildcard(_) => {
                for (i, c) in scope.columns.iter().enumerate().filter(|(_, c)| !c.hidden) {
                    exprs.push(Expr::Column(i));
                    columns.push(c.clone());
                }
            }
            ast::SelectItem::UnnamedExpr(e) => {
                let bound = binder.bind(e)?;
                let data_type = bound.static_type(&types);
                exprs.push(bound);
                let name = crate::binder::output_name(e);
                columns.push(Column { table: None, name, data_type, hidden: false });
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                let bound = binder.bind(expr)?;
                let data_type = bound.static_type(&types);
                exprs.push(bound);
                columns.push(Column { table: None, name: ident(alias), data_type, hidden: false });
            }
            other => return Err(SqlError::NotSupported(format!("RETURNING {other}"))),
        }
    }
    Ok((exprs, columns))
}

/// Checks a new row: types, NOT NULL, CHECK constraints. Returns the row as stored.
pub(crate) fn validate(
    table: &TableDescriptor,
    checks: &[(String, Expr)],
    row: Row,
    ctx: &EvalContext,
) -> Result<Row> {
    let mut out = Vec::with_capacity(row.len());
    for (column, value) in table.columns.iter().zip(row) {
        let value = column.data_type.assign(value, &column.name)?;
        if value.is_null() && !column.nullable {
            return Err(SqlError::NotNull { column: column.name.clone() });
        }
        out.push(value);
    }
    for (name, check) in checks {
        // NULL passes a CHECK; only false fails it.
        if check.eval(&out, ctx)?.as_condition()? == Some(false) {
            return Err(SqlError::Check(name.clone()));
        }
    }
    Ok(out)
}

pub(crate) fn bound_checks(table: &Arc<TableDescriptor>) -> Result<Vec<(String, Expr)>> {
    let scope = table_scope(table);
    table
        .checks
        .iter()
        .map(|c| Ok((c.name.clone(), Binder::new(&scope).bind(&parse_expr(&c.expr)?)?)))
        .collect()
}

/// Keys that must not exist yet, each with the index it belongs to (for the error).
type UniqueKeys = Vec<(Key, String)>;

/// The writes that store `new` in place of `old` (either may be absent), with the unique
/// keys that must not exist yet, named by their index.
pub(crate) fn row_writes(
    table: &TableDescriptor,
    old: Option<&Row>,
    new: Option<&Row>,
) -> Result<(Vec<Request>, UniqueKeys)> {
    let codec = RowCodec::default();
    let mut requests = Vec::new();
    let mut unique = Vec::new();
    let old_pk = old.map(|r| codec.primary_key(table, r)).transpose()?;
    let new_pk = new.map(|r| codec.primary_key(table, r)).transpose()?;
    if let Some(old_pk) = &old_pk
        && Some(old_pk) != new_pk.as_ref()
    {
        requests.push(Request::Delete { key: old_pk.clone() });
    }
    if let (Some(pk), Some(row)) = (&new_pk, new) {
        let value = codec.encode_value(table, row)?;
        if Some(pk) == old_pk.as_ref() {
            requests.push(Request::Put { key: pk.clone(), value });
        } else {
            requests.push(Request::ConditionalPut { key: pk.clone(), value, expected: None });
            unique.push((pk.clone(), table.primary.name.clone()));
        }
    }
    for index in &table.indexes {
        let old_entry = old.map(|r| codec.index_entry(table, index, r)).transpose()?;
        let new_entry = new.map(|r| codec.index_entry(table, index, r)).transpose()?;
        if old_entry == new_entry {
            continue;
        }
        if let Some((key, _)) = &old_entry
            && new_entry.as_ref().is_none_or(|(k, _)| k != key)
        {
            requests.push(Request::Delete { key: key.clone() });
        }
        if let Some((key, value)) = new_entry {
            let has_null = index.columns.iter().any(|(id, _)| {
                table.column_position(*id).is_ok_and(|p| new.is_some_and(|r| r[p].is_null()))
            });
            let same_key = old_entry.as_ref().is_some_and(|(k, _)| *k == key);
            if index.unique && !has_null && !same_key {
                requests.push(Request::ConditionalPut { key: key.clone(), value, expected: None });
                unique.push((key, index.name.clone()));
            } else {
                requests.push(Request::Put { key, value });
            }
        }
    }
    Ok((requests, unique))
}

/// Sends a row's writes; a failed conditional put becomes a unique violation naming the index
/// whose key is taken by another row.
pub(crate) async fn write_row(
    txn: &Txn,
    requests: Vec<Request>,
    unique: &[(Key, String)],
    mine: &[Request],
) -> Result<()> {
    match txn.send(requests).await {
        Ok(_) => Ok(()),
        Err(KvError::ConditionFailed { .. }) => {
            for (key, name) in unique {
                let ours = mine.iter().find_map(|r| match r {
                    Request::ConditionalPut { key: k, value, .. } if k == key => Some(value),
                    _ => None,
                });
                match txn.get(key.clone()).await? {
                    Some(found) if Some(&found) != ours => {
                        return Err(SqlError::Unique { constraint: name.clone() });
                    }
                    _ => {}
                }
            }
            let constraint = unique.first().map_or_else(String::new, |(_, n)| n.clone());
            Err(SqlError::Unique { constraint })
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs an INSERT.
pub async fn insert(d: &DmlContext<'_>, insert: &ast::Insert) -> Result<Output> {
    if insert.or.is_some() || insert.ignore || insert.overwrite || insert.partitioned.is_some() {
        return Err(SqlError::NotSupported("this INSERT form".into()));
    }
    if !insert.assignments.is_empty()
        || !insert.after_columns.is_empty()
        || insert.table_alias.is_some()
    {
        return Err(SqlError::NotSupported("this INSERT form".into()));
    }
    let name = match &insert.table {
        ast::TableObject::TableName(name) => object_name(name)?,
        other => return Err(SqlError::NotSupported(format!("INSERT INTO {other}"))),
    };
    let table = d.catalog.table(&name)?;
    let targets: Vec<usize> = if insert.columns.is_empty() {
        table.columns.iter().enumerate().filter(|(_, c)| !c.hidden).map(|(i, _)| i).collect()
    } else {
        insert
            .columns
            .iter()
            .map(|c| {
                let column = object_name(c)?;
                table.column_index(&column).ok_or(SqlError::UndefinedColumn(column))
            })
            .collect::<Result<_>>()?
    };
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].contains(t) {
            return Err(SqlError::DuplicateColumn(table.columns[*t].name.clone()));
        }
    }
    let source = insert
        .source
        .as_ref()
        .ok_or_else(|| SqlError::NotSupported("INSERT without VALUES".into()))?;
    let planned = Planner::new(d.catalog, d.ctx).query(source)?;
    let rows: Vec<Row> = exec::collect(planned.plan, d.txn.clone(), d.ctx, d.env).await?;
    let defaults: Vec<Option<Expr>> = table
        .columns
        .iter()
        .map(|c| match c.default.as_deref() {
            None | Some(crate::ddl::UNIQUE_ROWID) => Ok(None),
            Some(text) => Ok(Some(Binder::new(&Scope::default()).bind(&parse_expr(text)?)?)),
        })
        .collect::<Result<_>>()?;
    let checks = bound_checks(&table)?;
    let conflict = on_conflict(&table, insert.on.as_ref())?;
    let (ret_exprs, ret_columns) = match &insert.returning {
        Some(items) => returning(&table, &table.name, items)?,
        None => (Vec::new(), Vec::new()),
    };
    let codec = RowCodec::default();
    let mut count = 0;
    let mut returned = Vec::new();
    let mut pending = PendingWrites::default();
    for source_row in rows {
        // Without a column list, fewer values fill the first columns and the rest take their
        // defaults, as in PostgreSQL.
        let implicit_prefix = insert.columns.is_empty() && source_row.len() < targets.len();
        if source_row.len() != targets.len() && !implicit_prefix {
            return Err(SqlError::Syntax(format!(
                "INSERT has {} expressions but {} target columns",
                source_row.len(),
                targets.len()
            )));
        }
        let mut row: Row = vec![crate::Value::Null; table.columns.len()];
        for (i, column) in table.columns.iter().enumerate() {
            row[i] = match &defaults[i] {
                Some(e) => e.eval(&[], &d.ctx)?,
                None if column.default.as_deref() == Some(crate::ddl::UNIQUE_ROWID) => {
                    crate::Value::Int((d.rowids)())
                }
                None => crate::Value::Null,
            };
        }
        for (value, target) in source_row.into_iter().zip(&targets) {
            row[*target] = value;
        }
        let row = validate(&table, &checks, row, &d.ctx)?;
        let written = match &conflict {
            Conflict::Error => {
                let (requests, unique) = row_writes(&table, None, Some(&row))?;
                pending.add(d.txn, requests, unique).await?;
                Some(row)
            }
            Conflict::DoNothing { .. } | Conflict::DoUpdate(..) => {
                let pk = codec.primary_key(&table, &row)?;
                let existing = match d.txn.get(pk.clone()).await? {
                    Some(value) => Some(codec.decode_row(&table, &pk, &value)?),
                    None => None,
                };
                match (existing, &conflict) {
                    (None, Conflict::DoNothing { any_constraint: true })
                        if taken_unique_key(d.txn, &table, &row).await? =>
                    {
                        None
                    }
                    (None, _) => {
                        let (requests, unique) = row_writes(&table, None, Some(&row))?;
                        write_row(d.txn, requests.clone(), &unique, &requests).await?;
                        Some(row)
                    }
                    (Some(_), Conflict::DoNothing { .. }) => None,
                    (Some(old), Conflict::DoUpdate(assignments, filter)) => {
                        // Expressions see the existing row, then `excluded` (the proposed one).
                        let mut both = old.clone();
                        both.extend(row.iter().cloned());
                        if filter.as_ref().map_or(Ok(true), |f| passes(f, &both, &d.ctx))? {
                            let mut new = old.clone();
                            for (position, e) in assignments {
                                new[*position] = e.eval(&both, &d.ctx)?;
                            }
                            let new = validate(&table, &checks, new, &d.ctx)?;
                            let (requests, unique) = row_writes(&table, Some(&old), Some(&new))?;
                            write_row(d.txn, requests.clone(), &unique, &requests).await?;
                            Some(new)
                        } else {
                            None
                        }
                    }
                    (Some(_), Conflict::Error) => unreachable!(),
                }
            }
        };
        if let Some(row) = written {
            count += 1;
            if !ret_exprs.is_empty() {
                returned
                    .push(ret_exprs.iter().map(|e| e.eval(&row, &d.ctx)).collect::<Result<_>>()?);
            }
        }
    }
    pending.flush(d.txn).await?;
    Ok(finish(d, &table, "INSERT", count, ret_columns, returned, insert.returning.is_some()))
}

/// Rows an INSERT sends per KV batch.
const INSERT_BATCH_ROWS: usize = 128;

/// Row writes gathered into one KV batch, so a multi-row INSERT makes one round of requests
/// per [`INSERT_BATCH_ROWS`] rows rather than one per row. A batch may not write a key twice,
/// so a row writing a key already in the batch sends the batch first (its conditional put then
/// finds the earlier row's write: a unique violation, as it should be).
#[derive(Default)]
struct PendingWrites {
    requests: Vec<Request>,
    unique: UniqueKeys,
    keys: std::collections::HashSet<Key>,
    rows: usize,
}

impl PendingWrites {
    async fn add(&mut self, txn: &Txn, requests: Vec<Request>, unique: UniqueKeys) -> Result<()> {
        let keys: Vec<Key> = requests
            .iter()
            .filter_map(|r| match r {
                Request::Put { key, .. }
                | Request::ConditionalPut { key, .. }
                | Request::Delete { key } => Some(key.clone()),
                _ => None,
            })
            .collect();
        if keys.iter().any(|k| self.keys.contains(k)) {
            self.flush(txn).await?;
        }
        self.keys.extend(keys);
        self.requests.extend(requests);
        self.unique.extend(unique);
        self.rows += 1;
        if self.rows >= INSERT_BATCH_ROWS {
            self.flush(txn).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, txn: &Txn) -> Result<()> {
        if self.requests.is_empty() {
            return Ok(());
        }
        let requests = std::mem::take(&mut self.requests);
        let unique = std::mem::take(&mut self.unique);
        self.keys.clear();
        self.rows = 0;
        write_row(txn, requests.clone(), &unique, &requests).await
    }
}

/// Whether another row holds one of `row`'s unique secondary keys (NULLs never collide).
async fn taken_unique_key(txn: &Txn, table: &TableDescriptor, row: &Row) -> Result<bool> {
    let codec = RowCodec::default();
    for index in table.indexes.iter().filter(|i| i.unique) {
        let has_null = index
            .columns
            .iter()
            .any(|(id, _)| table.column_position(*id).is_ok_and(|p| row[p].is_null()));
        if has_null {
            continue;
        }
        let (key, _) = codec.index_entry(table, index, row)?;
        if txn.get(key).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs `UPSERT INTO t (cols) …`: an INSERT that, where a row's primary key exists, sets the
/// listed columns that are not part of the key to the new values (CockroachDB's UPSERT).
pub async fn upsert(d: &DmlContext<'_>, insert: &ast::Insert) -> Result<Output> {
    let name = match &insert.table {
        ast::TableObject::TableName(name) => object_name(name)?,
        other => return Err(SqlError::NotSupported(format!("UPSERT INTO {other}"))),
    };
    let table = d.catalog.table(&name)?;
    let targets: Vec<String> = if insert.columns.is_empty() {
        table.columns.iter().filter(|c| !c.hidden).map(|c| c.name.clone()).collect()
    } else {
        insert.columns.iter().map(object_name).collect::<Result<_>>()?
    };
    let key_ids: Vec<u32> = table.primary.columns.iter().map(|(id, _)| *id).collect();
    let assignments: Vec<ast::Assignment> = targets
        .iter()
        .filter(|name| {
            table.column_index(name).is_none_or(|p| !key_ids.contains(&table.columns[p].id))
        })
        .map(|name| ast::Assignment {
            target: ast::AssignmentTarget::ColumnName(ast::ObjectName::from(vec![
                ast::Ident::with_quote('"', name),
            ])),
            value: ast::Expr::CompoundIdentifier(vec![
                ast::Ident::new("excluded"),
                ast::Ident::with_quote('"', name),
            ]),
        })
        .collect();
    let action = if assignments.is_empty() {
        ast::OnConflictAction::DoNothing
    } else {
        ast::OnConflictAction::DoUpdate(ast::DoUpdate { assignments, selection: None })
    };
    let mut insert = insert.clone();
    insert.on = Some(ast::OnInsert::OnConflict(ast::OnConflict { conflict_target: None, action }));
    self::insert(d, &insert).await
}

/// A DML statement's output; its rows changed count towards `table`'s next automatic
/// statistics ([`crate::stats`]).
fn finish(
    d: &DmlContext<'_>,
    table: &TableDescriptor,
    tag: &'static str,
    count: u64,
    columns: Vec<Column>,
    rows: Vec<Row>,
    returning: bool,
) -> Output {
    if let Some(changes) = &d.env.changes {
        changes.note(table, count);
    }
    if returning { Output::Rows { columns, rows } } else { Output::Affected { tag, count } }
}

/// What an INSERT does when a row's primary key exists.
enum Conflict {
    Error,
    /// Skip the row; `any_constraint` (no conflict target) also skips rows whose unique
    /// secondary keys are taken.
    DoNothing {
        any_constraint: bool,
    },
    /// Assignments (column position, expression over existing ++ excluded) and a filter.
    DoUpdate(Vec<(usize, Expr)>, Option<Expr>),
}

fn on_conflict(table: &Arc<TableDescriptor>, on: Option<&ast::OnInsert>) -> Result<Conflict> {
    let Some(on) = on else { return Ok(Conflict::Error) };
    let ast::OnInsert::OnConflict(c) = on else {
        return Err(SqlError::NotSupported("ON DUPLICATE KEY UPDATE".into()));
    };
    match &c.conflict_target {
        None => {}
        Some(ast::ConflictTarget::Columns(columns)) => {
            let names: Vec<String> = columns.iter().map(ident).collect();
            let pk: Vec<String> = table
                .primary
                .columns
                .iter()
                .filter_map(|(id, _)| {
                    table.column_position(*id).ok().map(|p| table.columns[p].name.clone())
                })
                .collect();
            if names != pk {
                return Err(SqlError::NotSupported(
                    "ON CONFLICT on columns other than the primary key".into(),
                ));
            }
        }
        Some(other) => return Err(SqlError::NotSupported(format!("ON CONFLICT {other}"))),
    }
    Ok(match &c.action {
        ast::OnConflictAction::DoNothing => {
            Conflict::DoNothing { any_constraint: c.conflict_target.is_none() }
        }
        ast::OnConflictAction::DoUpdate(update) => {
            let mut scope = table_scope(table);
            let excluded: Vec<Column> = scope
                .columns
                .iter()
                .map(|c| Column { table: Some("excluded".into()), ..c.clone() })
                .collect();
            scope.columns.extend(excluded);
            let binder = Binder::new(&scope);
            let assignments = assignments(table, &update.assignments, &binder)?;
            let filter = update.selection.as_ref().map(|s| binder.bind(s)).transpose()?;
            Conflict::DoUpdate(assignments, filter)
        }
    })
}

pub(crate) fn assignments(
    table: &TableDescriptor,
    list: &[ast::Assignment],
    binder: &Binder<'_>,
) -> Result<Vec<(usize, Expr)>> {
    let mut out: Vec<(usize, Expr)> = Vec::new();
    for a in list {
        let ast::AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(SqlError::NotSupported("tuple assignments".into()));
        };
        let column = object_name(name)?;
        let position =
            table.column_index(&column).ok_or(SqlError::UndefinedColumn(column.clone()))?;
        if out.iter().any(|(p, _)| *p == position) {
            return Err(SqlError::DuplicateColumn(column));
        }
        out.push((position, binder.bind(&a.value)?));
    }
    Ok(out)
}

/// Runs an UPDATE, with FROM and subqueries anywhere in SET and WHERE ([`crate::dml_target`]).
pub async fn update(d: &DmlContext<'_>, update: &ast::Update) -> Result<Output> {
    if update.or.is_some() || !update.order_by.is_empty() || update.limit.is_some() {
        return Err(SqlError::NotSupported("this UPDATE form".into()));
    }
    let (name, label) = crate::dml_target::target(&update.table)?;
    let table = d.catalog.table(&name)?;
    let from = match &update.from {
        None => &[][..],
        Some(
            ast::UpdateTableFromKind::AfterSet(from) | ast::UpdateTableFromKind::BeforeSet(from),
        ) => from.as_slice(),
    };
    let targets = crate::dml_target::plan_targets(
        d.catalog,
        d.ctx,
        &table,
        &label,
        from,
        update.selection.as_ref(),
        &update.assignments,
    )?;
    let checks = bound_checks(&table)?;
    let (ret_exprs, ret_columns) = match &update.returning {
        Some(items) => returning(&table, &label, items)?,
        None => (Vec::new(), Vec::new()),
    };
    let mut rows = exec::collect(targets.plan, d.txn.clone(), d.ctx, d.env).await?;
    if targets.joined {
        rows = crate::dml_target::first_per_key(&table, rows)?;
    }
    let width = table.columns.len();
    let mut count = 0;
    let mut returned = Vec::new();
    for mut row in rows {
        let values = row.split_off(width);
        let old = row;
        let mut new = old.clone();
        for (position, value) in targets.assigned.iter().zip(values) {
            new[*position] = value;
        }
        let new = validate(&table, &checks, new, &d.ctx)?;
        let (requests, unique) = row_writes(&table, Some(&old), Some(&new))?;
        write_row(d.txn, requests.clone(), &unique, &requests).await?;
        count += 1;
        if !ret_exprs.is_empty() {
            returned.push(ret_exprs.iter().map(|e| e.eval(&new, &d.ctx)).collect::<Result<_>>()?);
        }
    }
    Ok(finish(d, &table, "UPDATE", count, ret_columns, returned, update.returning.is_some()))
}

/// Runs a DELETE, with USING and subqueries in WHERE ([`crate::dml_target`]).
pub async fn delete(d: &DmlContext<'_>, delete: &ast::Delete) -> Result<Output> {
    if !delete.order_by.is_empty() || delete.limit.is_some() || !delete.tables.is_empty() {
        return Err(SqlError::NotSupported("this DELETE form".into()));
    }
    let from = match &delete.from {
        ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from) => from,
    };
    let [from] = from.as_slice() else {
        return Err(SqlError::NotSupported("DELETE from several tables (use USING)".into()));
    };
    let (name, label) = crate::dml_target::target(from)?;
    let table = d.catalog.table(&name)?;
    let using = delete.using.as_deref().unwrap_or_default();
    let targets = crate::dml_target::plan_targets(
        d.catalog,
        d.ctx,
        &table,
        &label,
        using,
        delete.selection.as_ref(),
        &[],
    )?;
    let (ret_exprs, ret_columns) = match &delete.returning {
        Some(items) => returning(&table, &label, items)?,
        None => (Vec::new(), Vec::new()),
    };
    let mut rows = exec::collect(targets.plan, d.txn.clone(), d.ctx, d.env).await?;
    if targets.joined {
        rows = crate::dml_target::first_per_key(&table, rows)?;
    }
    let mut count = 0;
    let mut returned = Vec::new();
    for old in rows {
        let (requests, _) = row_writes(&table, Some(&old), None)?;
        d.txn.send(requests).await?;
        count += 1;
        if !ret_exprs.is_empty() {
            returned.push(ret_exprs.iter().map(|e| e.eval(&old, &d.ctx)).collect::<Result<_>>()?);
        }
    }
    Ok(finish(d, &table, "DELETE", count, ret_columns, returned, delete.returning.is_some()))
}
