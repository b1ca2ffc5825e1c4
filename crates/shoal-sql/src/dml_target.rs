//! The rows an UPDATE or DELETE changes, planned like a SELECT.
//!
//! The target table is scanned under its alias; `UPDATE … FROM` and `DELETE … USING` join
//! it with other tables (the WHERE clause's equalities become hash-join keys, as in a
//! SELECT); WHERE and SET may hold subqueries, correlated with the target row or not. The
//! plan's rows are the target's columns, then the SET values:
//!
//! ```text
//!   UPDATE acct a SET bal = a.bal + t.amount FROM transfer t WHERE t.acct = a.id
//!
//!   project #0, #1, (#1 + #3)          (id, bal, new bal)
//!     hash join inner on #0 = #2
//!       scan acct
//!       scan transfer
//! ```
//!
//! A target row joined with several FROM rows is changed once, with the values of the
//! first (PostgreSQL leaves which one unspecified). The statement reads all its target rows
//! before writing any, so its own writes never feed back into what it reads.

use std::collections::HashSet;
use std::sync::Arc;

use sqlparser::ast;

use crate::binder::{has_aggregate, has_window, ident, object_name};
use crate::catalog::{Snapshot, TableDescriptor};
use crate::error::{Result, SqlError};
use crate::exec::Row;
use crate::expr::{EvalContext, Expr};
use crate::plan::Plan;
use crate::planner::{Planner, cross, table_scan};

/// What an UPDATE or DELETE reads: a plan of the target rows, with the SET values after
/// each row's columns.
pub(crate) struct Targets {
    /// The plan.
    pub(crate) plan: Plan,
    /// The positions of the columns SET assigns, in the order of their values.
    pub(crate) assigned: Vec<usize>,
    /// Whether other tables are joined in (rows may repeat).
    pub(crate) joined: bool,
}

/// The table an UPDATE or DELETE changes, and the name it goes by in the statement.
pub(crate) fn target(from: &ast::TableWithJoins) -> Result<(String, String)> {
    if !from.joins.is_empty() {
        return Err(SqlError::NotSupported(
            "joins in the target of UPDATE/DELETE (use FROM or USING)".into(),
        ));
    }
    match &from.relation {
        ast::TableFactor::Table { name, alias, args: None, .. } => {
            let name = object_name(name)?;
            if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                return Err(SqlError::NotSupported(
                    "column aliases on an UPDATE/DELETE target".into(),
                ));
            }
            let label = alias.as_ref().map_or_else(
                || name.rsplit('.').next().unwrap_or(&name).to_string(),
                |a| ident(&a.name),
            );
            Ok((name, label))
        }
        other => Err(SqlError::NotSupported(format!("target {other}"))),
    }
}

/// Plans the target rows of `table` (called `label`), joined with `from`, that pass
/// `selection`, with the values `assignments` give them.
pub(crate) fn plan_targets(
    catalog: &Snapshot,
    ctx: EvalContext,
    table: &Arc<TableDescriptor>,
    label: &str,
    from: &[ast::TableWithJoins],
    selection: Option<&ast::Expr>,
    assignments: &[ast::Assignment],
) -> Result<Targets> {
    let planner = Planner::new(catalog, ctx);
    let mut input = table_scan(table.clone(), label);
    if !from.is_empty() {
        let others = planner.from(from)?;
        if others.1.columns.iter().any(|c| c.table.as_deref() == Some(label)) {
            return Err(SqlError::FunctionArgument {
                code: "42712",
                message: format!("table name \"{label}\" specified more than once"),
            });
        }
        input = cross(input, others);
    }
    let (mut plan, scope) = input;
    let binder = planner.binder(&scope, None);
    if let Some(selection) = selection {
        if has_aggregate(selection) {
            return Err(SqlError::Grouping("aggregate functions are not allowed in WHERE".into()));
        }
        if has_window(selection) {
            return Err(SqlError::Windowing("window functions are not allowed in WHERE".into()));
        }
        let predicate = binder.bind(selection)?;
        plan = planner.filter(plan, predicate)?;
    }
    let set = crate::dml::assignments(table, assignments, &binder)?;
    let mut exprs: Vec<Expr> = (0..table.columns.len()).map(Expr::Column).collect();
    exprs.extend(set.iter().map(|(_, e)| e.clone()));
    let plan = planner.hoist(plan, &mut exprs)?;
    let plan = crate::optimizer::optimize(Plan::Project { source: Box::new(plan), exprs });
    Ok(Targets {
        plan,
        assigned: set.into_iter().map(|(p, _)| p).collect(),
        joined: !from.is_empty(),
    })
}

/// Keeps the first of the rows with the same primary key (a target row that joined with
/// several FROM rows).
pub(crate) fn first_per_key(table: &TableDescriptor, rows: Vec<Row>) -> Result<Vec<Row>> {
    let key = table.primary_positions()?;
    let mut seen = HashSet::new();
    Ok(rows
        .into_iter()
        .filter(|row| seen.insert(key.iter().map(|&p| row[p].clone()).collect::<Vec<_>>()))
        .collect())
}
