//! Planning one join of a FROM clause: its kind, its condition, and the columns it shows.
//!
//! ```text
//!   a JOIN b ON …            inner           a LEFT JOIN b ON …      every a row
//!   a RIGHT JOIN b ON …      every b row     a FULL JOIN b ON …      every row of both
//!   a JOIN b USING (x)       ON a.x = b.x, one x shown      a NATURAL JOIN b   USING every shared name
//! ```
//!
//! A RIGHT join is planned as the LEFT join with the inputs swapped, under a projection that
//! puts the columns back in the written order. A FULL join keeps both sides whole: the
//! executor pads the left rows no right row matched, then the right rows no left row matched
//! ([`crate::exec_join`]), and the optimizer moves none of its WHERE conjuncts below it.
//!
//! `USING` and `NATURAL` join on equal names and show each joined column once, first, as
//! PostgreSQL does: `SELECT *` gives the joined columns, then the others of the left input,
//! then those of the right. The joined column is the left value in an inner or LEFT join,
//! the right one in a RIGHT join and `COALESCE(left, right)` in a FULL join. The inputs'
//! own columns stay reachable by qualified name (`a.x`), hidden from `*`.

use sqlparser::ast;

use crate::binder::{Scope, object_name};
use crate::error::{Result, SqlError};
use crate::expr::{BinaryOp, Expr, Function};
use crate::plan::{Column, JoinKind, Plan};
use crate::planner::Planner;

/// Which rows a written join keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Written {
    Inner,
    Left,
    Right,
    Full,
}

impl Planner<'_> {
    /// Joins `left` with the relation of `join`.
    pub(crate) fn join(&self, left: (Plan, Scope), join: &ast::Join) -> Result<(Plan, Scope)> {
        use ast::JoinOperator as J;
        if let J::Join(ast::JoinConstraint::None) | J::Inner(ast::JoinConstraint::None) =
            &join.join_operator
        {
            return Err(SqlError::Syntax("JOIN needs ON or USING (or CROSS JOIN)".into()));
        }
        let (written, constraint) = match &join.join_operator {
            J::Join(c) | J::Inner(c) | J::CrossJoin(c) => (Written::Inner, c),
            J::Left(c) | J::LeftOuter(c) => (Written::Left, c),
            J::Right(c) | J::RightOuter(c) => (Written::Right, c),
            J::FullOuter(c) => (Written::Full, c),
            other => {
                return Err(SqlError::NotSupported(
                    format!("join {other:?}").chars().take(60).collect(),
                ));
            }
        };
        if let Some((subquery, alias)) = crate::planner_lateral::lateral_subquery(&join.relation) {
            let on = match constraint {
                ast::JoinConstraint::On(e) => Some(e),
                ast::JoinConstraint::None => None,
                _ => return Err(SqlError::NotSupported("USING or NATURAL with LATERAL".into())),
            };
            return match written {
                Written::Inner | Written::Left if on.is_some() || written == Written::Inner => {
                    self.lateral_join(left, subquery, alias, written == Written::Left, on)
                }
                Written::Left => {
                    Err(SqlError::Syntax("an outer join needs an ON condition".into()))
                }
                _ => Err(SqlError::InvalidReference(
                    "the combining JOIN type must be INNER or LEFT for a LATERAL reference".into(),
                )),
            };
        }
        let right = self.table_factor(&join.relation)?;
        let (left_plan, left_scope) = left;
        let (right_plan, right_scope) = right;
        let (left_width, right_width) = (left_scope.columns.len(), right_scope.columns.len());
        let names = match constraint {
            ast::JoinConstraint::Using(names) => {
                Some(names.iter().map(object_name).collect::<Result<Vec<_>>>()?)
            }
            ast::JoinConstraint::Natural => Some(shared_names(&left_scope, &right_scope)),
            _ => None,
        };
        let mut merged = Vec::new();
        for name in names.iter().flatten() {
            let l = left_scope.resolve(None, name).map_err(|e| using_error(e, name, "left"))?;
            let r = right_scope.resolve(None, name).map_err(|e| using_error(e, name, "right"))?;
            merged.push((name.clone(), l, left_width + r));
        }
        let mut scope = left_scope;
        scope.columns.extend(right_scope.columns);
        let on = match constraint {
            ast::JoinConstraint::On(e) => Some(self.binder(&scope, None).bind(e)?),
            ast::JoinConstraint::None if written != Written::Inner => {
                return Err(SqlError::Syntax("an outer join needs an ON condition".into()));
            }
            _ => merged
                .iter()
                .map(|(_, l, r)| eq(Expr::Column(*l), Expr::Column(*r)))
                .reduce(|a, b| Expr::Binary(BinaryOp::And, Box::new(a), Box::new(b))),
        };
        // A subquery in ON is computed above the join, which an inner join allows.
        let (on, above) = match on {
            Some(on) if on.has_subquery() && written != Written::Inner => {
                return Err(SqlError::NotSupported("subqueries in an outer join's ON".into()));
            }
            Some(on) if on.has_subquery() => (None, Some(on)),
            on => (on, None),
        };
        let mut plan = match written {
            Written::Right => {
                let swap = |c: usize| if c < left_width { c + right_width } else { c - left_width };
                let swapped = Plan::Join {
                    left: Box::new(right_plan),
                    right: Box::new(left_plan),
                    kind: JoinKind::Left,
                    on: on.map(|e| e.map_columns(&swap)),
                    right_width: left_width,
                };
                let exprs = (right_width..right_width + left_width).chain(0..right_width);
                Plan::Project {
                    source: Box::new(swapped),
                    exprs: exprs.map(Expr::Column).collect(),
                }
            }
            _ => Plan::Join {
                left: Box::new(left_plan),
                right: Box::new(right_plan),
                kind: match written {
                    Written::Left => JoinKind::Left,
                    Written::Full => JoinKind::Full,
                    _ => JoinKind::Inner,
                },
                on,
                right_width,
            },
        };
        if let Some(predicate) = above {
            plan = self.filter(plan, predicate)?;
        }
        if names.is_some() {
            (plan, scope) = show_merged(plan, scope, &merged, written);
        }
        Ok((plan, scope))
    }
}

/// The non-hidden column names both inputs have, in the left input's order.
fn shared_names(left: &Scope, right: &Scope) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in left.columns.iter().filter(|c| !c.hidden) {
        if right.columns.iter().any(|r| !r.hidden && r.name == c.name) && !names.contains(&c.name) {
            names.push(c.name.clone());
        }
    }
    names
}

fn using_error(e: SqlError, name: &str, side: &str) -> SqlError {
    match e {
        SqlError::UndefinedColumn(_) => SqlError::UndefinedColumn(format!(
            "{name}\" specified in USING clause does not exist in {side} table"
        )),
        other => other,
    }
}

fn eq(a: Expr, b: Expr) -> Expr {
    Expr::Binary(BinaryOp::Eq, Box::new(a), Box::new(b))
}

/// Puts the joined columns of USING / NATURAL first and hides the inputs' copies of them.
fn show_merged(
    plan: Plan,
    scope: Scope,
    merged: &[(String, usize, usize)],
    written: Written,
) -> (Plan, Scope) {
    let mut columns = Vec::new();
    let mut exprs = Vec::new();
    for (name, l, r) in merged {
        let (left, right) = (&scope.columns[*l], &scope.columns[*r]);
        let (expr, data_type) = match written {
            Written::Right => (Expr::Column(*r), right.data_type),
            Written::Full => (
                Expr::Call(Function::Coalesce, vec![Expr::Column(*l), Expr::Column(*r)]),
                left.data_type.or(right.data_type),
            ),
            _ => (Expr::Column(*l), left.data_type),
        };
        exprs.push(expr);
        columns.push(Column { table: None, name: name.clone(), data_type, hidden: false });
    }
    let joined: Vec<usize> = merged.iter().flat_map(|(_, l, r)| [*l, *r]).collect();
    for (i, c) in scope.columns.into_iter().enumerate() {
        exprs.push(Expr::Column(i));
        columns.push(Column { hidden: c.hidden || joined.contains(&i), ..c });
    }
    (Plan::Project { source: Box::new(plan), exprs }, Scope { columns })
}
