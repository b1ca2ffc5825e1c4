//! Planning LATERAL subqueries in FROM.
//!
//! A LATERAL subquery may read the columns of the FROM items before it. It is planned like
//! a correlated subquery ([`crate::correlated`]), with the joined items on its left as its
//! outer scope: each left column it reads becomes a parameter, and a [`Plan::Lateral`] runs
//! it per left row ([`crate::exec_lateral`]).
//!
//! ```text
//!   SELECT d.id, x.n FROM d, LATERAL (SELECT count(*) AS n FROM t WHERE t.d = d.id) x
//!
//!   lateral inner join, outer values #0
//!     scan d
//!     aggregate group [] countrows(*)
//!       scan t filter (#1 = $outer0)
//! ```
//!
//! Joins: `, LATERAL`, `[INNER | CROSS] JOIN LATERAL` and `LEFT JOIN LATERAL … ON`;
//! PostgreSQL refuses RIGHT and FULL (42P10), as Shoal does. Out of scope: LATERAL function
//! calls (there are no set-returning functions), USING and NATURAL with LATERAL.

use sqlparser::ast;

use crate::binder::{Scope, ident};
use crate::correlated::OuterScope;
use crate::error::{Result, SqlError};
use crate::plan::{JoinKind, Plan};
use crate::planner::{Planner, rename_columns};

impl Planner<'_> {
    /// Joins `left` with the LATERAL subquery `subquery` (called `alias`): an inner join, or
    /// a left one (`left_join`) on `on`.
    pub(crate) fn lateral_join(
        &self,
        left: (Plan, Scope),
        subquery: &ast::Query,
        alias: Option<&ast::TableAlias>,
        left_join: bool,
        on: Option<&ast::Expr>,
    ) -> Result<(Plan, Scope)> {
        let (left_plan, left_scope) = left;
        let outer = OuterScope::new(self.binder(&left_scope, None));
        let planned = Planner::nested(self, &outer).query(subquery)?;
        let params = outer.into_params();
        let label = alias.map(|a| ident(&a.name));
        let mut right = Scope { columns: planned.columns };
        if let Some(a) = alias {
            rename_columns(&mut right, &a.columns, &ident(&a.name))?;
        }
        for c in &mut right.columns {
            c.table = label.clone();
        }
        let right_width = right.columns.len();
        let mut scope = left_scope;
        scope.columns.extend(right.columns);
        let on = match on {
            Some(e) => Some(self.binder(&scope, None).bind(e)?),
            None => None,
        };
        if on.as_ref().is_some_and(|e| e.has_subquery()) {
            return Err(SqlError::NotSupported("subqueries in the ON of a LATERAL join".into()));
        }
        let kind = if left_join { JoinKind::Left } else { JoinKind::Inner };
        let plan = Plan::Lateral {
            left: Box::new(left_plan),
            right: Box::new(planned.plan),
            params,
            kind,
            on,
            right_width,
        };
        Ok((plan, scope))
    }

    /// Joins `left` with FROM item `factor`, which may be LATERAL (`, LATERAL (…)`).
    pub(crate) fn comma_join(
        &self,
        left: (Plan, Scope),
        factor: &ast::TableFactor,
    ) -> Result<(Plan, Scope)> {
        match factor {
            ast::TableFactor::Derived { lateral: true, subquery, alias, sample: None } => {
                self.lateral_join(left, subquery, alias.as_ref(), false, None)
            }
            other => Ok(crate::planner::cross(left, self.table_factor(other)?)),
        }
    }
}

/// The LATERAL subquery of join operand `factor`, if it is one.
pub(crate) fn lateral_subquery(
    factor: &ast::TableFactor,
) -> Option<(&ast::Query, Option<&ast::TableAlias>)> {
    match factor {
        ast::TableFactor::Derived { lateral: true, subquery, alias, sample: None } => {
            Some((subquery, alias.as_ref()))
        }
        _ => None,
    }
}
