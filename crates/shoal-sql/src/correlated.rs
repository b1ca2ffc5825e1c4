//! Planning subqueries in expressions, correlated ones included.
//!
//! Uncorrelated subqueries are usually gone before planning starts: [`crate::subquery`] runs
//! them once and writes their results into the statement, so that a key compared with one
//! still gets key spans. What is left (subqueries that read a column of an outer query, and
//! the subqueries around those) is planned here, in three steps:
//!
//! ```text
//!   SELECT a.k, (SELECT max(b.v) FROM b WHERE b.x = a.k) FROM a
//!
//!   1. bind    the binder meets the subquery and plans it with the outer scope at hand:
//!              `a.k` is not a column of b, so it resolves outward, to parameter $outer0,
//!              whose value is #0 of the outer row        → Expr::Subquery(0)
//!   2. hoist   the clause that holds it gets an apply below it, and the placeholder
//!              becomes the apply's extra column           → project #0, #1
//!                                                           └─ apply (subquery #1: $outer0 = #0)
//!   3. run     per outer row ([`crate::exec_apply`])
//! ```
//!
//! Name resolution follows SQL: a name is looked up in the subquery's own FROM first, then
//! in each enclosing query's, nearest first. A reference two levels out becomes a parameter
//! of each level in between, so every subquery reads only its direct outer row. An outer
//! column of a grouped query must be grouped (or the reference is 42803), as in PostgreSQL.
//!
//! Hoisting by clause: WHERE and HAVING split their conjuncts, so those without subqueries
//! still filter (and become key spans) below the apply; the select list and ORDER BY get one
//! apply below the projection; an inner join's ON with a subquery becomes a filter above the
//! join.
//!
//! Out of scope: subqueries in GROUP BY, in aggregate arguments and in an outer join's ON
//! (0A000); an aggregate in a subquery over only outer columns belongs to the subquery here,
//! where PostgreSQL gives it to the outer query. LATERAL subqueries in FROM use the same
//! outer scopes ([`crate::planner_lateral`]).

use std::cell::RefCell;

use sqlparser::ast;

use crate::binder::Binder;
use crate::error::{Result, SqlError};
use crate::expr::{BinaryOp, Expr};
use crate::plan::{Plan, SubqueryPlan, SubqueryTest};
use crate::planner::Planner;
use crate::types::DataType;

/// The query around a subquery being planned: where names the subquery lacks resolve, and
/// the outer values the subquery has read so far (its parameters).
pub struct OuterScope<'a> {
    binder: Binder<'a>,
    params: RefCell<Vec<Expr>>,
}

impl<'a> OuterScope<'a> {
    /// The scope of the clause `binder` binds.
    pub fn new(binder: Binder<'a>) -> Self {
        OuterScope { binder, params: RefCell::new(Vec::new()) }
    }

    /// The outer values the subquery read, as expressions over the outer row.
    pub(crate) fn into_params(self) -> Vec<Expr> {
        self.params.into_inner()
    }

    /// The planner of the outer query, whose CTEs the subquery sees.
    pub(crate) fn planner(&self) -> Option<&'a Planner<'a>> {
        self.binder.planner
    }

    /// Resolves a column reference of the subquery in the outer query: an outer reference to
    /// the parameter holding it.
    pub fn resolve(&self, column: &ast::Expr) -> Result<Expr> {
        let bound = self.binder.bind(column).map_err(|e| match e {
            SqlError::Grouping(_) => SqlError::Grouping(format!(
                "subquery uses ungrouped column \"{column}\" from outer query"
            )),
            other => other,
        })?;
        let data_type = match (&bound, self.binder.grouping) {
            (Expr::Column(i), None) => self.binder.scope.columns.get(*i).and_then(|c| c.data_type),
            (Expr::Outer(_, t), _) => *t,
            _ => None,
        };
        let mut params = self.params.borrow_mut();
        let slot = match params.iter().position(|p| *p == bound) {
            Some(slot) => slot,
            None => {
                params.push(bound);
                params.len() - 1
            }
        };
        Ok(Expr::Outer(slot, data_type))
    }
}

impl Binder<'_> {
    /// Plans a subquery met in an expression and returns its placeholder.
    pub(crate) fn subquery(&self, query: &ast::Query, test: SubqueryTest) -> Result<Expr> {
        let Some(planner) = self.planner else {
            return Err(SqlError::NotSupported(format!("a subquery here: ({query})")));
        };
        if let SubqueryTest::Quantified { operand, .. } = &test
            && operand.has_subquery()
        {
            return Err(SqlError::NotSupported("a subquery compared with a subquery".into()));
        }
        let outer = OuterScope::new(Binder {
            scope: self.scope,
            grouping: self.grouping,
            planner: self.planner,
            windows: None,
        });
        let planned = Planner::nested(planner, &outer).query(query)?;
        let exists = matches!(test, SubqueryTest::Exists);
        if !exists && planned.columns.len() != 1 {
            return Err(SqlError::Syntax(match test {
                SubqueryTest::Scalar => "subquery must return only one column".into(),
                _ => "subquery has too many columns".into(),
            }));
        }
        let data_type = match test {
            SubqueryTest::Scalar => planned.columns[0].data_type,
            _ => Some(DataType::Bool),
        };
        let params = outer.params.into_inner();
        let hashed = crate::decorrelate::decorrelate(&planned.plan, &test);
        Ok(planner.register(SubqueryPlan { plan: planned.plan, params, test, hashed }, data_type))
    }

    /// Binds `operand op ANY/ALL (subquery)`; `IN` is `= ANY` and `NOT IN` its negation.
    pub(crate) fn quantified(
        &self,
        operand: &ast::Expr,
        op: BinaryOp,
        right: &ast::Expr,
        all: bool,
    ) -> Result<Expr> {
        let ast::Expr::Subquery(query) = right else {
            return Err(SqlError::NotSupported(format!("ANY/ALL over {right} (only subqueries)")));
        };
        let operand = self.bind(operand)?;
        self.subquery(query, SubqueryTest::Quantified { operand, op, all })
    }
}

impl Planner<'_> {
    /// Keeps a planned subquery until its clause hoists it, and returns its placeholder.
    pub(crate) fn register(&self, subquery: SubqueryPlan, data_type: Option<DataType>) -> Expr {
        let mut subqueries = self.subqueries.borrow_mut();
        subqueries.push(Some(subquery));
        Expr::Subquery(subqueries.len() - 1, data_type)
    }

    /// Puts the subqueries `exprs` hold into an apply over `source`, and points `exprs` at
    /// the apply's columns for them. `source` is returned as it is when there are none.
    pub(crate) fn hoist(&self, source: Plan, exprs: &mut [Expr]) -> Result<Plan> {
        let mut ids = Vec::new();
        for e in exprs.iter() {
            e.walk(&mut |e| {
                if let Expr::Subquery(id, _) = e
                    && !ids.contains(id)
                {
                    ids.push(*id);
                }
            });
        }
        if ids.is_empty() {
            return Ok(source);
        }
        let width = source.width();
        let mut subqueries = Vec::with_capacity(ids.len());
        for id in &ids {
            let taken = self.subqueries.borrow_mut().get_mut(*id).and_then(Option::take);
            subqueries.push(
                taken.ok_or_else(|| SqlError::Internal(format!("subquery {id} hoisted twice")))?,
            );
        }
        for e in exprs.iter_mut() {
            let moved = std::mem::replace(e, Expr::Literal(crate::types::Value::Null));
            *e = moved.map_leaves(&|leaf| match leaf {
                Expr::Subquery(id, _) => {
                    Expr::Column(width + ids.iter().position(|i| *i == id).expect("collected"))
                }
                other => other,
            });
        }
        Ok(Plan::Apply { source: Box::new(source), subqueries })
    }

    /// `source` filtered by `predicate`: conjuncts without subqueries filter below the apply
    /// that computes the others' subqueries; the apply's columns are dropped again above.
    pub(crate) fn filter(&self, source: Plan, predicate: Expr) -> Result<Plan> {
        if !predicate.has_subquery() {
            return Ok(Plan::Filter { source: Box::new(source), predicate });
        }
        let width = source.width();
        let (with, without): (Vec<Expr>, Vec<Expr>) = crate::optimizer::conjuncts(&predicate)
            .into_iter()
            .cloned()
            .partition(Expr::has_subquery);
        let mut plan = source;
        if let Some(predicate) = and_all(without) {
            plan = Plan::Filter { source: Box::new(plan), predicate };
        }
        let mut exprs = [and_all(with).expect("a conjunct holds the subquery")];
        plan = self.hoist(plan, &mut exprs)?;
        let [predicate] = exprs;
        plan = Plan::Filter { source: Box::new(plan), predicate };
        Ok(Plan::Project { source: Box::new(plan), exprs: (0..width).map(Expr::Column).collect() })
    }
}

/// The conjunction of `parts`, None for none.
fn and_all(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|a, b| Expr::Binary(BinaryOp::And, Box::new(a), Box::new(b)))
}
