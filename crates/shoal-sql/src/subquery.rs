//! Subqueries in expressions: `IN (SELECT …)`, `EXISTS (SELECT …)` and scalar `(SELECT …)`.
//!
//! Shoal runs *uncorrelated* subqueries once, before the statement is planned, in the
//! statement's transaction, and writes their results into the statement as literals. The
//! planner then sees ordinary constants, so a key column compared with a subquery still gets
//! point lookups:
//!
//! ```text
//!   DELETE FROM orders WHERE customer IN (SELECT id FROM customers WHERE city = 'Oslo')
//!     1. run   SELECT id FROM customers WHERE city = 'Oslo'      → 4, 9
//!     2. write DELETE FROM orders WHERE customer IN (CAST('4' AS BIGINT), CAST('9' AS BIGINT))
//!     3. plan and run the rewritten statement
//! ```
//!
//! Nested subqueries run innermost first. Each literal is a cast of the value's text form to
//! the subquery column's type, so types survive the round trip (a DATE stays a DATE).
//!
//! # Semantics
//!
//! - A scalar subquery yields NULL over no rows, and fails with 21000 over more than one.
//! - `x IN (subquery)` over no rows is false (and `NOT IN` true), even when `x` is NULL.
//! - `EXISTS` stops reading at the first row.
//!
//! A statement with a `WITH` clause is left whole to the planner (a CTE may shadow a table
//! of the same name, which a subquery planned alone would read instead).
//!
//! # Correlated subqueries
//!
//! A subquery that reads a column of an outer query cannot run alone: planning it alone
//! finds the column missing, and it is left in the statement for the planner, which runs it
//! per outer row ([`crate::correlated`]). So is a subquery around such a one. A subquery
//! naming a column that no query has fails there, with the error planning it alone gave.
//!
//! # Out of scope
//!
//! A large `IN` subquery becomes a large list, evaluated per row by linear search.

use std::collections::HashMap;
use std::ops::ControlFlow;

use futures::TryStreamExt;
use shoal_kvclient::txn::Txn;
use sqlparser::ast;

use crate::catalog::Snapshot;
use crate::error::{Result, SqlError};
use crate::exec;
use crate::expr::EvalContext;
use crate::planner::Planner;
use crate::syntax::Parsed;
use crate::types::{DataType, Value};

fn subquery_of(e: &ast::Expr) -> Option<&ast::Query> {
    match e {
        ast::Expr::Subquery(q)
        | ast::Expr::InSubquery { subquery: q, .. }
        | ast::Expr::Exists { subquery: q, .. } => Some(q),
        _ => None,
    }
}

/// Whether a parsed statement has a subquery in an expression.
pub fn parsed_has_subquery(parsed: &Parsed) -> bool {
    parsed.any_expression(|e| subquery_of(e).is_some())
}

/// Runs the subqueries of a parsed statement, as [`inline`].
pub async fn inline_parsed(
    parsed: &mut Parsed,
    catalog: &Snapshot,
    txn: &Txn,
    ctx: EvalContext,
    env: &exec::ExecEnv,
) -> Result<()> {
    match parsed {
        Parsed::Statement(s) | Parsed::Upsert(s) => {
            inline(s.as_mut(), catalog, txn, ctx, env).await
        }
        Parsed::AsOf { query, .. } | Parsed::SplitAt { rows: query, .. } => {
            inline(query.as_mut(), catalog, txn, ctx, env).await
        }
        Parsed::ShowIndexes(_) | Parsed::ShowRanges(_) | Parsed::ShowStatistics(_) => Ok(()),
    }
}

/// What a subquery evaluated to.
enum Outcome {
    /// The single value of a scalar subquery (NULL over no rows).
    Scalar(Box<ast::Expr>),
    /// The values of a one-column subquery, for IN.
    List(Vec<ast::Expr>),
    /// Whether any row came back, for EXISTS.
    Any(bool),
}

/// Runs every subquery in `node` in `txn` and replaces it with its result.
pub async fn inline<V: ast::VisitMut + ast::Visit>(
    node: &mut V,
    catalog: &Snapshot,
    txn: &Txn,
    ctx: EvalContext,
    env: &exec::ExecEnv,
) -> Result<()> {
    // A CTE may shadow a table's name, which a subquery planned alone would read instead:
    // with a WITH anywhere, the planner runs every subquery itself.
    if defines_ctes(node) {
        return Ok(());
    }
    // Pre-order: every subquery comes before the subqueries nested in it, so evaluating in
    // reverse order has each subquery's own subqueries done before it runs.
    // `x op ANY/ALL (subquery)` compares x with every row: the planner runs those
    // ([`crate::correlated`]), since a scalar result here would be the wrong question.
    // Addresses, not pointers, so the future stays Send.
    let mut quantified: Vec<usize> = Vec::new();
    let _ = ast::visit_expressions(node, |e| {
        if let ast::Expr::AnyOp { right, .. } | ast::Expr::AllOp { right, .. } = e {
            quantified.push(right.as_ref() as *const ast::Expr as usize);
        }
        ControlFlow::<()>::Continue(())
    });
    let mut pending: Vec<ast::Expr> = Vec::new();
    let _ = ast::visit_expressions(node, |e| {
        if subquery_of(e).is_some() && !quantified.contains(&(e as *const ast::Expr as usize)) {
            pending.push(e.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    // Results are keyed by the subquery's text once its own subqueries are replaced: the
    // final substitution visits children before parents, so that is the text it finds.
    let mut done: HashMap<String, (Vec<Value>, Option<DataType>, usize)> = HashMap::new();
    for expr in pending.into_iter().rev() {
        let mut query = subquery_of(&expr).expect("collected as a subquery").clone();
        substitute(&mut query, &done)?;
        let text = query.to_string();
        if done.contains_key(&text) {
            continue;
        }
        let exists_only = matches!(expr, ast::Expr::Exists { .. });
        let planned = match Planner::new(catalog, ctx).query(&query) {
            Ok(planned) => planned,
            // It reads an outer query's column: the planner runs it per outer row.
            // Or a CTE of the statement: the planner knows those.
            Err(
                SqlError::UndefinedColumn(_)
                | SqlError::MissingFromEntry(_)
                | SqlError::UndefinedTable(_),
            ) => continue,
            Err(e) => return Err(e),
        };
        let width = planned.columns.len();
        let data_type = planned.columns.first().and_then(|c| c.data_type);
        let mut rows = exec::execute(planned.plan, txn.clone(), ctx, env);
        let mut values = Vec::new();
        let mut reservation = env.memory.reservation("a subquery's result");
        while let Some(row) = rows.try_next().await? {
            reservation.grow(crate::memory::row_bytes(&row))?;
            values.push(row.into_iter().next().unwrap_or(Value::Null));
            if exists_only || values.len() > 1 && matches!(expr, ast::Expr::Subquery(_)) {
                break;
            }
        }
        done.insert(text, (values, data_type, width));
    }
    substitute(node, &done)
}

/// Whether some query in `node` has a WITH clause.
fn defines_ctes<V: ast::Visit>(node: &V) -> bool {
    struct Finder(bool);
    impl ast::Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
            self.0 |= query.with.is_some();
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = node.visit(&mut finder);
    finder.0
}

/// Replaces each evaluated subquery in `node` by its result.
fn substitute<V: ast::VisitMut>(
    node: &mut V,
    done: &HashMap<String, (Vec<Value>, Option<DataType>, usize)>,
) -> Result<()> {
    let mut failure = None;
    let _ = ast::visit_expressions_mut(node, |e| {
        let Some(q) = subquery_of(e) else { return ControlFlow::Continue(()) };
        let Some((values, data_type, width)) = done.get(&q.to_string()) else {
            return ControlFlow::Continue(());
        };
        match outcome(e, values, data_type.as_ref(), *width) {
            Ok(outcome) => {
                *e = rewrite(std::mem::replace(e, ast::Expr::value(ast::Value::Null)), outcome);
                ControlFlow::Continue(())
            }
            Err(err) => {
                failure = Some(err);
                ControlFlow::Break(())
            }
        }
    });
    failure.map_or(Ok(()), Err)
}

fn outcome(
    e: &ast::Expr,
    values: &[Value],
    data_type: Option<&DataType>,
    width: usize,
) -> Result<Outcome> {
    if !matches!(e, ast::Expr::Exists { .. }) && width != 1 {
        return Err(SqlError::Syntax("subquery has too many columns".into()));
    }
    Ok(match e {
        ast::Expr::Exists { .. } => Outcome::Any(!values.is_empty()),
        ast::Expr::InSubquery { .. } => {
            Outcome::List(values.iter().map(|v| literal(v, data_type)).collect())
        }
        _ => match values {
            [] => Outcome::Scalar(Box::new(literal(&Value::Null, data_type))),
            [v] => Outcome::Scalar(Box::new(literal(v, data_type))),
            _ => {
                return Err(SqlError::Cardinality(
                    "more than one row returned by a subquery used as an expression".into(),
                ));
            }
        },
    })
}

fn rewrite(e: ast::Expr, outcome: Outcome) -> ast::Expr {
    let boolean = |b: bool| ast::Expr::value(ast::Value::Boolean(b));
    match (e, outcome) {
        (ast::Expr::Exists { negated, .. }, Outcome::Any(any)) => boolean(any != negated),
        (ast::Expr::InSubquery { negated, .. }, Outcome::List(list)) if list.is_empty() => {
            boolean(negated)
        }
        (ast::Expr::InSubquery { expr, negated, .. }, Outcome::List(list)) => {
            ast::Expr::InList { expr, list, negated }
        }
        (_, Outcome::Scalar(value)) => ast::Expr::Nested(value),
        (e, _) => e,
    }
}

/// A literal for `value`: its text cast to the column's type.
pub(crate) fn literal(value: &Value, data_type: Option<&DataType>) -> ast::Expr {
    let text = match value.to_text() {
        Some(text) => ast::Expr::value(ast::Value::SingleQuotedString(text)),
        None => ast::Expr::value(ast::Value::Null),
    };
    let Some(data_type) = data_type.cloned().or_else(|| value.data_type()) else {
        return text;
    };
    ast::Expr::Cast {
        kind: ast::CastKind::Cast,
        expr: Box::new(text),
        data_type: data_type.to_ast(),
        format: None,
    }
}
