//! Planning set operations: `UNION`, `INTERSECT` and `EXCEPT`, with or without `ALL`.
//!
//! ```text
//!   SELECT a FROM t UNION SELECT b::numeric FROM u ORDER BY 1 LIMIT 3
//!
//!   limit 3
//!   └─ sort #0
//!      └─ union                          output: t's column name `a`, type NUMERIC
//!         ├─ project #0::DECIMAL         (INT8 widened to the common type)
//!         │  └─ scan t
//!         └─ project (#1::DECIMAL)
//!            └─ scan u
//! ```
//!
//! Both sides must have as many columns (42601). Each output column takes the left side's
//! name and the two sides' common type: the same type, the typed side when the other is a
//! NULL literal, or the wider number (integer < decimal < float) within the numeric
//! category; types of different categories do not match (42804, as PostgreSQL says it). A
//! side whose column has another type is cast to the common one, so equal values compare
//! and hash alike. The grammar's precedence (INTERSECT binds tighter than UNION and EXCEPT)
//! and parentheses come from the parser; a parenthesised side may have its own ORDER BY and
//! LIMIT. ORDER BY and LIMIT after the last side apply to the whole.
//!
//! Out of scope: a string literal on one side does not adopt the other side's type (it is
//! TEXT, so `SELECT 1 UNION SELECT 'a'` is 42804 where PostgreSQL reports 22P02).

use sqlparser::ast;

use crate::error::{Result, SqlError};
use crate::expr::Expr;
use crate::plan::{Column, Plan, SetOperator};
use crate::planner::{Planned, Planner};
use crate::types::DataType;

impl Planner<'_> {
    /// Plans `left op right`.
    pub(crate) fn set_operation(
        &self,
        left: &ast::SetExpr,
        op: ast::SetOperator,
        quantifier: ast::SetQuantifier,
        right: &ast::SetExpr,
    ) -> Result<Planned> {
        let (op, name) = match op {
            ast::SetOperator::Union => (SetOperator::Union, "UNION"),
            ast::SetOperator::Intersect => (SetOperator::Intersect, "INTERSECT"),
            ast::SetOperator::Except => (SetOperator::Except, "EXCEPT"),
            other => return Err(SqlError::NotSupported(format!("set operator {other}"))),
        };
        let all = match quantifier {
            ast::SetQuantifier::All => true,
            ast::SetQuantifier::None | ast::SetQuantifier::Distinct => false,
            other => return Err(SqlError::NotSupported(format!("{name} {other}"))),
        };
        let (left, right) = (self.set_side(left)?, self.set_side(right)?);
        if left.columns.len() != right.columns.len() {
            return Err(SqlError::Syntax(format!(
                "each {name} query must have the same number of columns"
            )));
        }
        let types: Vec<Option<DataType>> = left
            .columns
            .iter()
            .zip(&right.columns)
            .map(|(l, r)| common_type(name, l.data_type, r.data_type))
            .collect::<Result<_>>()?;
        let columns = left
            .columns
            .iter()
            .zip(&types)
            .map(|(c, t)| Column {
                table: None,
                name: c.name.clone(),
                data_type: *t,
                hidden: false,
            })
            .collect();
        let plan = Plan::SetOp {
            op,
            all,
            left: Box::new(cast_to(left, &types)),
            right: Box::new(cast_to(right, &types)),
        };
        Ok(Planned { plan, columns })
    }

    /// Plans one side of a set operation.
    pub(crate) fn set_side(&self, side: &ast::SetExpr) -> Result<Planned> {
        match side {
            ast::SetExpr::Query(query) => self.query(query),
            other => self.body(other, &[], None, 0),
        }
    }
}

/// The type both sides' column values take.
fn common_type(
    operation: &str,
    left: Option<DataType>,
    right: Option<DataType>,
) -> Result<Option<DataType>> {
    use DataType::*;
    let (l, r) = match (left, right) {
        (None, t) | (t, None) => return Ok(t),
        (Some(l), Some(r)) if l == r => return Ok(Some(l)),
        (Some(l), Some(r)) => (l, r),
    };
    Ok(Some(match (l, r) {
        (Int(a), Int(b)) => Int(a.max(b)),
        (Float(a), Float(b)) => Float(a.max(b)),
        (Float(_), Int(_) | Decimal(_)) | (Int(_) | Decimal(_), Float(_)) => Float(8),
        (Decimal(_), Int(_) | Decimal(_)) | (Int(_), Decimal(_)) => Decimal(None),
        (a, b)
            if a.category() == b.category()
                && a.category() == crate::types::TypeCategory::String =>
        {
            Text
        }
        (Timestamp, TimestampTz) | (TimestampTz, Timestamp) => TimestampTz,
        (Date, Timestamp) | (Timestamp, Date) => Timestamp,
        (Date, TimestampTz) | (TimestampTz, Date) => TimestampTz,
        (a, b) => {
            return Err(SqlError::DatatypeMismatch(format!(
                "{operation} types {} and {} cannot be matched",
                a.pg_name(),
                b.pg_name()
            )));
        }
    }))
}

/// `side`'s plan with each column whose type is not the common one cast to it.
fn cast_to(side: Planned, types: &[Option<DataType>]) -> Plan {
    let differs = side.columns.iter().zip(types).any(|(c, t)| t.is_some() && c.data_type != *t);
    if !differs {
        return side.plan;
    }
    let exprs = side
        .columns
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (c, t))| match t {
            Some(t) if c.data_type != Some(*t) => Expr::Cast(Box::new(Expr::Column(i)), *t),
            _ => Expr::Column(i),
        })
        .collect();
    Plan::Project { source: Box::new(side.plan), exprs }
}
