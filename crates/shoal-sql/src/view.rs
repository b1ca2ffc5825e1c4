//! Views: `CREATE [OR REPLACE] VIEW`, `DROP VIEW`, and reading a view in FROM.
//!
//! A view is a stored query ([`ViewDescriptor`]): its SQL text, its output column names
//! (fixed at creation, as PostgreSQL fixes them), and the ids of every table and view it
//! reads. Reading a view plans its query again, in the reading statement's transaction and
//! catalog, as if it were written in FROM as a derived table; the optimizer then sees one
//! plan, so a filter on the view's columns reaches the scans under it.
//!
//! ```text
//!   CREATE VIEW rich AS SELECT id, name FROM emp WHERE salary > 100
//!   SELECT name FROM rich WHERE id = 7
//!     → scan emp spans [/Table/100/1/7 - /Table/100/1/8) filter (salary > 100)
//! ```
//!
//! Dependencies: dropping a table or view that a view reads fails with 2BP01 unless
//! CASCADE drops the views too. A view's query is planned at creation, so it must be valid
//! then; its subqueries are planned with it, never run and frozen into its text.
//!
//! Out of scope: writing through views (INSERT / UPDATE / DELETE on a view are 0A000, where
//! PostgreSQL updates simple views), materialized and temporary views, `WITH CHECK OPTION`,
//! and column-level dependencies: a view over a column that ALTER TABLE then drops fails
//! when read (42703) instead of blocking the drop. A view over `SELECT *` keeps the columns
//! it had when created, as in PostgreSQL.

use std::collections::BTreeSet;
use std::sync::Arc;

use sqlparser::ast;

use crate::binder::{ident, object_name};
use crate::catalog::{Catalog, Snapshot, ViewDescriptor};
use crate::error::{Result, SqlError};
use crate::expr::{EvalContext, Expr};
use crate::plan::{Column, Plan};
use crate::planner::{Planner, rename_columns};
use crate::session::Output;
use crate::syntax::Parsed;
use shoal_kvclient::txn::Txn;

/// How many tables and views one statement may read through views: past it, views are
/// taken to read each other in a cycle (54001).
const MAX_VIEW_EXPANSION: usize = 10_000;

impl Planner<'_> {
    /// Plans a read of `view`, labelled by `alias` or the view's name.
    pub(crate) fn view_scan(
        &self,
        view: &ViewDescriptor,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Plan, crate::binder::Scope)> {
        self.relations.borrow_mut().push(view.id);
        if self.relations.borrow().len() > MAX_VIEW_EXPANSION {
            return Err(SqlError::FunctionArgument {
                code: "54001",
                message: format!("infinite recursion detected in view \"{}\"", view.name),
            });
        }
        let query = parse_query(&view.query)?;
        // The view's query sees no CTE and no column of the statement reading it.
        let planner =
            Planner { relations: self.relations.clone(), ..Planner::new(self.catalog, self.ctx) };
        let planned = planner.query(&query)?;
        let width = view.columns.len();
        if planned.columns.len() < width {
            return Err(SqlError::InvalidTableDefinition(format!(
                "view \"{}\" reads fewer columns than it was created with; re-create it",
                view.name
            )));
        }
        let plan = if planned.columns.len() > width {
            Plan::Project {
                source: Box::new(planned.plan),
                exprs: (0..width).map(Expr::Column).collect(),
            }
        } else {
            planned.plan
        };
        let label = alias.map_or(view.name.clone(), |a| ident(&a.name));
        let columns = planned
            .columns
            .into_iter()
            .zip(&view.columns)
            .map(|(c, name)| Column {
                table: Some(label.clone()),
                name: name.clone(),
                data_type: c.data_type,
                hidden: false,
            })
            .collect();
        let mut scope = crate::binder::Scope { columns };
        if let Some(a) = alias {
            rename_columns(&mut scope, &a.columns, &label)?;
        }
        Ok((plan, scope))
    }
}

/// Parses a stored view query.
fn parse_query(sql: &str) -> Result<ast::Query> {
    match crate::syntax::parse(sql)?.pop() {
        Some(Parsed::Statement(statement)) => match *statement {
            ast::Statement::Query(query) => Ok(*query),
            other => Err(SqlError::Internal(format!("a view holds {other}"))),
        },
        _ => Err(SqlError::Internal(format!("a view holds {sql}"))),
    }
}

/// Runs `CREATE [OR REPLACE] VIEW`.
pub async fn create(
    txn: &Txn,
    cache: &Catalog,
    snapshot: &Snapshot,
    create: &ast::CreateView,
    ctx: EvalContext,
) -> Result<Output> {
    let unsupported = [
        (create.materialized, "materialized views"),
        (create.temporary, "temporary views"),
        (create.or_alter || create.secure || create.copy_grants, "this CREATE VIEW form"),
        (create.to.is_some() || create.params.is_some(), "this CREATE VIEW form"),
        (!create.cluster_by.is_empty() || create.comment.is_some(), "this CREATE VIEW form"),
        (create.with_no_schema_binding, "WITH NO SCHEMA BINDING"),
        (!matches!(create.options, ast::CreateTableOptions::None), "view options"),
    ];
    if let Some((_, what)) = unsupported.iter().find(|(present, _)| *present) {
        return Err(SqlError::NotSupported((*what).into()));
    }
    let name = object_name(&create.name)?;
    if snapshot.lookup(&name)?.is_some() {
        return Err(SqlError::DuplicateTable(name));
    }
    let existing = snapshot.lookup_view(&name)?;
    if existing.is_some() && !create.or_replace {
        if create.if_not_exists {
            return Ok(Output::Done("CREATE VIEW"));
        }
        return Err(SqlError::DuplicateTable(name));
    }
    // The planner is not Send: it must be gone before the first await.
    let (planned, depends_on) = {
        let planner = Planner::new(snapshot, ctx);
        (planner.query(&create.query)?, planner.relations())
    };
    if create.columns.len() > planned.columns.len() {
        return Err(SqlError::Syntax(
            "CREATE VIEW specifies more column names than columns".into(),
        ));
    }
    let columns: Vec<String> = planned
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| create.columns.get(i).map_or(c.name.clone(), |def| ident(&def.name)))
        .collect();
    let mut seen = BTreeSet::new();
    if let Some(twice) = columns.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(SqlError::DuplicateColumn(twice.clone()));
    }
    let (parent_id, bare) = snapshot.resolve(&name)?;
    let id = match &existing {
        Some(old) => {
            if depends_on.contains(&old.id) {
                return Err(SqlError::InvalidTableDefinition(format!(
                    "infinite recursion: view \"{bare}\" would read itself"
                )));
            }
            check_replacement(old, &columns)?;
            old.id
        }
        None => cache.next_id(txn).await?,
    };
    let view = ViewDescriptor {
        id,
        parent_id,
        name: bare,
        query: create.query.to_string(),
        columns,
        depends_on,
    };
    cache.write_view(txn, &view).await?;
    Ok(Output::Done("CREATE VIEW"))
}

/// PostgreSQL's rule for `CREATE OR REPLACE VIEW`: the new query keeps the old columns'
/// names, in order, and may add columns after them (42P16).
fn check_replacement(old: &ViewDescriptor, columns: &[String]) -> Result<()> {
    if columns.len() < old.columns.len() {
        return Err(SqlError::InvalidTableDefinition("cannot drop columns from view".into()));
    }
    for (was, now) in old.columns.iter().zip(columns) {
        if was != now {
            return Err(SqlError::InvalidTableDefinition(format!(
                "cannot change name of view column \"{was}\" to \"{now}\""
            )));
        }
    }
    Ok(())
}

/// Runs `DROP VIEW [IF EXISTS] names [CASCADE]`.
pub async fn drop(
    txn: &Txn,
    cache: &Catalog,
    snapshot: &Snapshot,
    names: &[ast::ObjectName],
    if_exists: bool,
    cascade: bool,
) -> Result<Output> {
    // Views dropped by the same statement need no CASCADE to go together.
    let mut named = BTreeSet::new();
    for name in names {
        if let Some(view) = snapshot.lookup_view(&object_name(name)?)? {
            named.insert(view.id);
        }
    }
    let mut dropped = BTreeSet::new();
    for name in names {
        let name = object_name(name)?;
        let Some(view) = snapshot.lookup_view(&name)? else {
            if snapshot.lookup(&name)?.is_some() {
                return Err(SqlError::WrongObjectType(format!("\"{name}\" is not a view")));
            }
            if if_exists {
                continue;
            }
            return Err(SqlError::UndefinedTable(name));
        };
        let mut doomed = dependents(snapshot, view.id, &view.name, "view", cascade, &named)?;
        doomed.push(view);
        for v in doomed {
            if dropped.insert(v.id) {
                cache.drop_view(txn, &v).await?;
            }
        }
    }
    Ok(Output::Done("DROP VIEW"))
}

/// The views that must go with relation `id` (`kind` `name`), leaving out those the
/// statement drops anyway: all of them under CASCADE; with RESTRICT any is 2BP01.
pub fn dependents(
    snapshot: &Snapshot,
    id: u64,
    name: &str,
    kind: &str,
    cascade: bool,
    also_dropped: &BTreeSet<u64>,
) -> Result<Vec<Arc<ViewDescriptor>>> {
    let mut views = snapshot.dependents(id);
    views.retain(|v| !also_dropped.contains(&v.id));
    if !cascade && let Some(first) = views.first() {
        return Err(SqlError::DependentObjects(format!(
            "cannot drop {kind} {name} because other objects depend on it: view {} depends on {kind} {name}",
            first.name
        )));
    }
    Ok(views)
}

/// Drops the views that must go with relation `id` before it goes (CASCADE), or refuses.
pub async fn drop_dependents(
    txn: &Txn,
    cache: &Catalog,
    snapshot: &Snapshot,
    id: u64,
    name: &str,
    cascade: bool,
) -> Result<()> {
    for view in dependents(snapshot, id, name, "table", cascade, &BTreeSet::new())? {
        cache.drop_view(txn, &view).await?;
    }
    Ok(())
}
