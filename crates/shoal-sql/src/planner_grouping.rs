//! GROUPING SETS, ROLLUP and CUBE, and the `grouping()` function.
//!
//! A GROUP BY with grouping sets groups the same rows several ways at once. Each set is
//! planned as its own aggregation over the input; each one's rows are laid out like the
//! grouped row of a plain GROUP BY over every key (keys the set does not group by are NULL),
//! with one column per `grouping(…)` call after the aggregates, and UNION ALL puts them
//! together. HAVING, the select list and ORDER BY then bind against that row as usual.
//!
//! ```text
//!   GROUP BY ROLLUP (a, b)   → sets (a, b), (a), ()
//!
//!   union all
//!     project #0, #1, #2, 0          aggregate group [a, b]
//!     project #0, NULL, #1, 1        aggregate group [a]
//!     project NULL, NULL, #0, 3      aggregate group []
//! ```
//!
//! Items combine as PostgreSQL combines them: `GROUP BY a, ROLLUP (b)` is the sets of `a`
//! crossed with those of `ROLLUP (b)`: (a, b), (a). `CUBE (a, b)` is (a, b), (a), (b), ().
//! `grouping(x, y)` is a bit mask, the first argument the most significant bit, of the
//! arguments the row's set does not group by.
//!
//! Out of scope: ROLLUP and CUBE nested inside GROUPING SETS, GROUP BY DISTINCT. The input
//! is read once per set.

use sqlparser::ast;

use crate::binder::{Binder, Grouping, Scope};
use crate::error::{Result, SqlError};
use crate::expr::Expr;
use crate::plan::{Aggregate, Plan, SetOperator};
use crate::planner::Planner;
use crate::types::Value;

/// The grouping sets of a GROUP BY: the distinct key expressions, and each set as positions
/// among them. A plain GROUP BY has one set, of every key.
pub(crate) struct GroupingSets {
    /// Every key, in the order written.
    pub(crate) keys: Vec<ast::Expr>,
    /// The sets, as positions in `keys`.
    pub(crate) sets: Vec<Vec<usize>>,
    /// Whether the GROUP BY spelled out sets (ROLLUP, CUBE or GROUPING SETS).
    pub(crate) explicit: bool,
}

impl GroupingSets {
    /// Expands GROUP BY `items` (each already resolved with `resolve`, for `GROUP BY 1`).
    pub(crate) fn expand(
        items: &[ast::Expr],
        resolve: impl Fn(&ast::Expr) -> Result<ast::Expr>,
    ) -> Result<GroupingSets> {
        let mut keys: Vec<ast::Expr> = Vec::new();
        let mut explicit = false;
        // Each item's sets, as lists of expressions; then their cross product.
        let mut product: Vec<Vec<ast::Expr>> = vec![Vec::new()];
        for item in items {
            let lists: Vec<Vec<ast::Expr>> = match item {
                ast::Expr::Rollup(lists) => {
                    explicit = true;
                    (0..=lists.len()).rev().map(|n| lists[..n].concat()).collect()
                }
                ast::Expr::Cube(lists) => {
                    explicit = true;
                    let n = lists.len();
                    // PostgreSQL's order: larger sets first, then by position.
                    let mut masks: Vec<u32> = (0..(1u32 << n)).collect();
                    masks.sort_by_key(|m| {
                        (std::cmp::Reverse(m.count_ones()), std::cmp::Reverse(*m))
                    });
                    masks
                        .into_iter()
                        .map(|m| {
                            (0..n)
                                .filter(|i| m & (1 << (n - 1 - i)) != 0)
                                .flat_map(|i| lists[i].clone())
                                .collect()
                        })
                        .collect()
                }
                ast::Expr::GroupingSets(lists) => {
                    explicit = true;
                    for e in lists.iter().flatten() {
                        if matches!(
                            e,
                            ast::Expr::Rollup(_) | ast::Expr::Cube(_) | ast::Expr::GroupingSets(_)
                        ) {
                            return Err(SqlError::NotSupported(
                                "ROLLUP, CUBE or GROUPING SETS inside GROUPING SETS".into(),
                            ));
                        }
                    }
                    lists.clone()
                }
                ast::Expr::Tuple(list) if list.is_empty() => {
                    explicit = true;
                    vec![Vec::new()]
                }
                plain => vec![vec![plain.clone()]],
            };
            product = product
                .iter()
                .flat_map(|set| lists.iter().map(move |l| [set.clone(), l.clone()].concat()))
                .collect();
        }
        let mut sets = Vec::new();
        for set in product {
            let mut positions: Vec<usize> = Vec::new();
            for e in set {
                let e = resolve(&e)?;
                let position = match keys.iter().position(|k| *k == e) {
                    Some(p) => p,
                    None => {
                        keys.push(e);
                        keys.len() - 1
                    }
                };
                if !positions.contains(&position) {
                    positions.push(position);
                }
            }
            sets.push(positions);
        }
        Ok(GroupingSets { keys, sets, explicit })
    }
}

impl Planner<'_> {
    /// Resolves `GROUP BY 1` to the first projection item, and `GROUP BY name` to the
    /// select item named so when no input column has that name (PostgreSQL's rule: an input
    /// column wins).
    pub(crate) fn group_key(
        &self,
        e: &ast::Expr,
        projection: &[ast::SelectItem],
        scope: &Scope,
    ) -> Result<ast::Expr> {
        if let ast::Expr::Identifier(id) = e {
            let name = crate::binder::ident(id);
            let aliased = projection.iter().find_map(|item| match item {
                ast::SelectItem::ExprWithAlias { expr, alias }
                    if crate::binder::ident(alias) == name =>
                {
                    Some(expr)
                }
                _ => None,
            });
            if let Some(expr) = aliased
                && scope.resolve(None, &name).is_err()
            {
                return Ok(expr.clone());
            }
        }
        if let ast::Expr::Value(v) = e
            && let ast::Value::Number(n, _) = &v.value
        {
            let position: usize =
                n.parse().map_err(|_| SqlError::Syntax(format!("GROUP BY {n}")))?;
            return match projection.get(position.wrapping_sub(1)) {
                Some(
                    ast::SelectItem::UnnamedExpr(e)
                    | ast::SelectItem::ExprWithAlias { expr: e, .. },
                ) => Ok(e.clone()),
                _ => Err(SqlError::InvalidReference(format!(
                    "GROUP BY position {n} is not in select list"
                ))),
            };
        }
        Ok(e.clone())
    }

    /// Plans the aggregation of `input` by `sets` of the bound `keys`, with the columns of
    /// `grouping(…)` calls (each as the key positions of its arguments) after the aggregates.
    pub(crate) fn grouping_plan(
        &self,
        input: Plan,
        keys: &[Expr],
        sets: &[Vec<usize>],
        aggregates: Vec<Aggregate>,
        groupings: &[Vec<usize>],
    ) -> Result<Plan> {
        let mut plan: Option<Plan> = None;
        for set in sets {
            let aggregated = Plan::Aggregate {
                source: Box::new(input.clone()),
                group_by: set.iter().map(|&k| keys[k].clone()).collect(),
                aggregates: aggregates.clone(),
            };
            let mut exprs: Vec<Expr> = (0..keys.len())
                .map(|k| match set.iter().position(|&s| s == k) {
                    Some(p) => Expr::Column(p),
                    None => Expr::Literal(Value::Null),
                })
                .collect();
            exprs.extend((0..aggregates.len()).map(|a| Expr::Column(set.len() + a)));
            for args in groupings {
                let mask =
                    args.iter().fold(0i64, |mask, k| (mask << 1) | i64::from(!set.contains(k)));
                exprs.push(Expr::Literal(Value::Int(mask)));
            }
            let branch = Plan::Project { source: Box::new(aggregated), exprs };
            plan = Some(match plan {
                None => branch,
                Some(left) => Plan::SetOp {
                    op: SetOperator::Union,
                    all: true,
                    left: Box::new(left),
                    right: Box::new(branch),
                },
            });
        }
        plan.ok_or_else(|| SqlError::Internal("a GROUP BY without grouping sets".into()))
    }
}

/// The key positions of `grouping(args)`'s arguments: each must be a key (42803).
pub(crate) fn grouping_args(
    f: &ast::Function,
    g: &Grouping,
    ungrouped: &Binder<'_>,
) -> Result<Vec<usize>> {
    let (args, _) = crate::binder::function_args(f)?;
    let refused = || {
        SqlError::Grouping(
            "arguments to GROUPING must be grouping expressions of the associated query level"
                .into(),
        )
    };
    if args.is_empty() || args.len() > 31 {
        return Err(refused());
    }
    args.iter()
        .map(|a| {
            let crate::binder::FunctionArg::Expr(e) = a else { return Err(refused()) };
            let text = e.to_string();
            if let Some(k) = g.keys.iter().position(|t| *t == text) {
                return Ok(k);
            }
            let bound = ungrouped.bind(e)?;
            g.bound.iter().position(|k| *k == bound).ok_or_else(refused)
        })
        .collect()
}
