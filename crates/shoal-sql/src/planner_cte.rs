//! Planning `WITH` common table expressions, `WITH RECURSIVE` included.
//!
//! A CTE is planned once, where it is defined, and each reference in a FROM clause (of the
//! query, of a later CTE, or of a subquery) reads a copy of its plan. For read-only queries
//! that is what PostgreSQL's inlining gives (the results are the same whether a CTE is
//! computed once or per reference); `MATERIALIZED` is accepted and means the same here.
//!
//! A recursive CTE is `anchor UNION [ALL] step`, where `step` reads the CTE itself: the
//! rows the previous round produced (the *working table*). [`Plan::Recursive`] runs the
//! anchor, then the step over each round's new rows until a round adds none:
//!
//! ```text
//!   WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r
//!
//!   round   working table   step produces
//!   anchor  -               1
//!   1       1               2
//!   2       2               3
//!   3       3               (none: done)        → 1, 2, 3
//! ```
//!
//! With UNION (not ALL) a round keeps only rows never produced before, so a cycle ends.
//! The step's columns are cast to the anchor's types. A query that never stops runs into
//! `statement_timeout` or the memory budget, as any other statement does.
//!
//! Out of scope: a recursive reference inside a subquery of the step, more than one
//! recursive reference, mutually recursive CTEs, SEARCH and CYCLE clauses.

use sqlparser::ast;

use crate::binder::{Scope, ident};
use crate::error::{Result, SqlError};
use crate::expr::Expr;
use crate::plan::{Column, Plan};
use crate::planner::{Planned, Planner};

/// A CTE visible to the query being planned.
#[derive(Debug, Clone)]
pub(crate) enum CteDef {
    /// A planned CTE: each reference copies the plan.
    Planned(Planned),
    /// The recursive CTE whose step is being planned: a reference reads the working table.
    Working(Vec<Column>),
}

impl Planner<'_> {
    /// Plans the CTEs of `with`, making each visible to the ones after it and to the query
    /// (the caller removes them after the query).
    pub(crate) fn define_ctes(&self, with: &ast::With) -> Result<()> {
        for cte in &with.cte_tables {
            if cte.from.is_some() {
                return Err(SqlError::NotSupported(format!("WITH … FROM in {}", cte.alias)));
            }
            let name = ident(&cte.alias.name);
            let aliases: Vec<String> = cte.alias.columns.iter().map(|c| ident(&c.name)).collect();
            let planned = match cte.query.body.as_ref() {
                ast::SetExpr::SetOperation {
                    left,
                    op: ast::SetOperator::Union,
                    set_quantifier,
                    right,
                } if with.recursive && reads(right, &name) => {
                    let all = matches!(set_quantifier, ast::SetQuantifier::All);
                    self.recursive(&name, &aliases, left, all, right)?
                }
                _ => rename(self.query(&cte.query)?, &name, &aliases)?,
            };
            self.ctes.borrow_mut().push((name, CteDef::Planned(planned)));
        }
        Ok(())
    }

    /// Plans `anchor UNION [ALL] step`, the step reading `name` as the working table.
    fn recursive(
        &self,
        name: &str,
        aliases: &[String],
        anchor: &ast::SetExpr,
        all: bool,
        step: &ast::SetExpr,
    ) -> Result<Planned> {
        let anchor = rename(self.set_side(anchor)?, name, aliases)?;
        self.ctes.borrow_mut().push((name.to_string(), CteDef::Working(anchor.columns.clone())));
        let step = self.set_side(step);
        self.ctes.borrow_mut().pop();
        let step = step?;
        if step.columns.len() != anchor.columns.len() {
            return Err(SqlError::Syntax(
                "each UNION query must have the same number of columns".into(),
            ));
        }
        let casts: Vec<Expr> = anchor
            .columns
            .iter()
            .zip(&step.columns)
            .enumerate()
            .map(|(i, (a, s))| match a.data_type {
                Some(t) if s.data_type != Some(t) => Expr::Cast(Box::new(Expr::Column(i)), t),
                _ => Expr::Column(i),
            })
            .collect();
        let step = Plan::Project { source: Box::new(step.plan), exprs: casts };
        let plan = Plan::Recursive { anchor: Box::new(anchor.plan), step: Box::new(step), all };
        Ok(Planned { plan, columns: anchor.columns })
    }

    /// The CTE `name` as a FROM item labelled `label`, if one is visible here or in the
    /// queries around this one.
    pub(crate) fn cte(&self, name: &str, label: &str) -> Option<(Plan, Scope)> {
        let found =
            self.ctes.borrow().iter().rev().find(|(n, _)| n == name).map(|(_, d)| d.clone());
        let def = match found {
            Some(def) => def,
            None => return self.outer.and_then(|o| o.planner()).and_then(|p| p.cte(name, label)),
        };
        let (plan, columns) = match def {
            CteDef::Planned(planned) => (planned.plan, planned.columns),
            CteDef::Working(columns) => {
                let types = columns.iter().map(|c| c.data_type).collect();
                (Plan::WorkTable { types }, columns)
            }
        };
        let columns =
            columns.into_iter().map(|c| Column { table: Some(label.to_string()), ..c }).collect();
        Some((plan, Scope { columns }))
    }
}

/// Gives a CTE's columns the names of its column list.
fn rename(mut planned: Planned, name: &str, aliases: &[String]) -> Result<Planned> {
    if aliases.len() > planned.columns.len() {
        return Err(SqlError::InvalidReference(format!(
            "WITH query \"{name}\" has {} columns available but {} columns specified",
            planned.columns.len(),
            aliases.len()
        )));
    }
    for (c, alias) in planned.columns.iter_mut().zip(aliases) {
        c.name = alias.clone();
    }
    Ok(planned)
}

/// Whether `body` names the table `name` anywhere (the mark of a recursive term).
fn reads(body: &ast::SetExpr, name: &str) -> bool {
    let mut found = false;
    let _ = ast::visit_relations(body, |relation| {
        if let [ast::ObjectNamePart::Identifier(id)] = relation.0.as_slice()
            && ident(id) == name
        {
            found = true;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}
