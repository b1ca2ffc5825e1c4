//! The columns an expression reads, and rewriting its leaves: what the join planner needs to
//! push a predicate to the input it belongs to and to rewrite it for a new column layout, and
//! what a correlated subquery needs to take an outer row's values.
//!
//! ```text
//!   (#1 = #4) AND (#4 > 7)     columns {1, 4}
//!   map_columns(|c| c - 3) on (#4 > 7)  →  (#1 > 7)      (the right input's own positions)
//!   bind_outer([7]) on (#0 = $outer0)   →  (#0 = 7)
//! ```
//!
//! An outer reference is not a column of the row: `columns` leaves it out, so a predicate
//! that compares a column with one is pushed to that column's input like a constant.

use crate::expr::Expr;
use crate::types::Value;

impl Expr {
    /// Adds the positions of every column the expression reads to `out`.
    pub fn columns_into(&self, out: &mut Vec<usize>) {
        self.for_each_child(&mut |e| {
            if let Expr::Column(i) = e {
                out.push(*i);
            }
        });
    }

    /// The positions of the columns the expression reads, sorted, without repeats.
    pub fn columns(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.columns_into(&mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Calls `f` on this expression and every expression inside it, parents first.
    fn for_each_child(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Literal(_) | Expr::Column(_) | Expr::Outer(..) | Expr::Subquery(..) => {}
            Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e, _) | Expr::IsBool(e, ..) => {
                e.for_each_child(f)
            }
            Expr::Cast(e, _) => e.for_each_child(f),
            Expr::Binary(_, a, b) | Expr::IsDistinct(a, b, _) => {
                a.for_each_child(f);
                b.for_each_child(f);
            }
            Expr::InList(e, list, _) => {
                e.for_each_child(f);
                list.iter().for_each(|x| x.for_each_child(f));
            }
            Expr::Like { expr, pattern, .. } => {
                expr.for_each_child(f);
                pattern.for_each_child(f);
            }
            Expr::Case { operand, whens, otherwise } => {
                if let Some(o) = operand {
                    o.for_each_child(f);
                }
                for (w, t) in whens {
                    w.for_each_child(f);
                    t.for_each_child(f);
                }
                if let Some(o) = otherwise {
                    o.for_each_child(f);
                }
            }
            Expr::Call(_, args) => args.iter().for_each(|x| x.for_each_child(f)),
        }
    }

    /// The expression with every column position `c` replaced by `f(c)`.
    pub fn map_columns(self, f: &impl Fn(usize) -> usize) -> Expr {
        self.map_leaves(&|e| match e {
            Expr::Column(i) => Expr::Column(f(i)),
            other => other,
        })
    }

    /// The expression with each outer reference replaced by its value in `values`: what a
    /// correlated subquery computes for one outer row ([`crate::exec_apply`]).
    pub fn bind_outer(self, values: &[Value]) -> Expr {
        self.map_leaves(&|e| match e {
            Expr::Outer(slot, _) => Expr::Literal(values.get(slot).cloned().unwrap_or(Value::Null)),
            other => other,
        })
    }

    /// Whether the expression holds a subquery the planner has not hoisted yet.
    pub fn has_subquery(&self) -> bool {
        let mut found = false;
        self.for_each_child(&mut |e| found |= matches!(e, Expr::Subquery(..)));
        found
    }

    /// The expression with every leaf (literal, column, outer reference, subquery) replaced
    /// by `f(leaf)`.
    pub fn map_leaves(self, f: &impl Fn(Expr) -> Expr) -> Expr {
        let boxed = |e: Box<Expr>| Box::new(e.map_leaves(f));
        match self {
            leaf @ (Expr::Literal(_) | Expr::Column(_) | Expr::Outer(..) | Expr::Subquery(..)) => {
                f(leaf)
            }
            Expr::Not(e) => Expr::Not(boxed(e)),
            Expr::Neg(e) => Expr::Neg(boxed(e)),
            Expr::Binary(op, a, b) => Expr::Binary(op, boxed(a), boxed(b)),
            Expr::IsNull(e, n) => Expr::IsNull(boxed(e), n),
            Expr::IsDistinct(a, b, n) => Expr::IsDistinct(boxed(a), boxed(b), n),
            Expr::IsBool(e, want, n) => Expr::IsBool(boxed(e), want, n),
            Expr::InList(e, list, n) => {
                Expr::InList(boxed(e), list.into_iter().map(|x| x.map_leaves(f)).collect(), n)
            }
            Expr::Like { expr, pattern, negated, case_insensitive } => {
                Expr::Like { expr: boxed(expr), pattern: boxed(pattern), negated, case_insensitive }
            }
            Expr::Case { operand, whens, otherwise } => Expr::Case {
                operand: operand.map(boxed),
                whens: whens.into_iter().map(|(w, t)| (w.map_leaves(f), t.map_leaves(f))).collect(),
                otherwise: otherwise.map(boxed),
            },
            Expr::Cast(e, t) => Expr::Cast(boxed(e), t),
            Expr::Call(func, args) => {
                Expr::Call(func, args.into_iter().map(|x| x.map_leaves(f)).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::expr::{BinaryOp, Expr};
    use crate::types::Value;

    fn eq(a: Expr, b: Expr) -> Expr {
        Expr::Binary(BinaryOp::Eq, Box::new(a), Box::new(b))
    }

    #[test]
    fn columns_are_found_everywhere_and_moved_together() {
        let e = Expr::Binary(
            BinaryOp::And,
            Box::new(eq(Expr::Column(4), Expr::Column(1))),
            Box::new(Expr::InList(
                Box::new(Expr::Column(4)),
                vec![Expr::Literal(Value::Int(1)), Expr::Column(6)],
                false,
            )),
        );
        assert_eq!(e.columns(), vec![1, 4, 6]);
        let moved = e.map_columns(&|c| c + 10);
        assert_eq!(moved.columns(), vec![11, 14, 16]);
    }
}
