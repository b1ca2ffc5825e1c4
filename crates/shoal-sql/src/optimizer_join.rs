//! Planning joins: predicates go to the input they belong to, equalities between inputs
//! become hash-join keys, and inner joins are reordered so that each join has a key.
//!
//! ```text
//!   SELECT … FROM a, b, c WHERE c.x = b.y AND a.k = 5 AND b.z = a.k
//!
//!   filter (c.x = b.y AND a.k = 5 AND b.z = a.k)      project a.*, b.*, c.* (original order)
//!   └─ cross join                                      └─ hash join on b.y = c.x
//!      ├─ cross join                           →          ├─ hash join on a.k = b.z
//!      │  ├─ scan a                                       │  ├─ scan a spans [/a/5]  (1 row)
//!      │  └─ scan b                                       │  └─ scan b
//!      └─ scan c                                          └─ scan c
//! ```
//!
//! An *inner region* is a tree of inner and cross joins with the filter above it: its
//! leaves (tables, derived tables, LEFT joins) and the AND-ed conjuncts of every ON and the
//! WHERE. Within a region the join order is free, since inner joins commute and associate:
//! 0. a conjunct common to every branch of an OR is taken out of it (`(a AND b) OR (a AND
//!    c)` is `a AND (b OR c)`);
//! 1. a conjunct over one leaf becomes that leaf's filter (and there, key spans);
//! 2. a conjunct over no leaf (`WHERE false`) filters the first leaf;
//! 3. the leaves are joined left-deep, greedily: first the one with the fewest estimated
//!    rows, then always the smallest leaf that an equality links to those already joined
//!    (a cross join only when none is linked);
//! 4. at each step, every conjunct whose leaves are now all joined is placed there: an
//!    equality between the joined leaves and the new one is a hash key, the rest filter
//!    the joined rows;
//! 5. a projection puts the columns back in the written order.
//!
//! A LEFT join keeps its shape: a WHERE conjunct over its left side alone moves below it,
//! an ON conjunct over its right side alone filters the right input, equalities between the
//! sides are hash keys, and the rest stays in the join condition (an ON conjunct over the
//! left side alone cannot filter the left input: it only decides what matches).
//!
//! Estimates: a full scan reads the table's row count from its statistics
//! ([`crate::stats`]; 1,000 rows without), a scan's filter keeps, per conjunct, one row in
//! the column's distinct count for an equality with a constant and a third otherwise; a scan
//! with key spans 1 per span when its filter fixes the whole primary key, else 10 (at most
//! the table); any other filter a third; an aggregate
//! without groups 1 row. Only equalities
//! whose two sides have comparable types (both numeric, both text, or the same type) become
//! keys, so a hash match means exactly what `=` would.
//!
//! A FULL join moves nothing below it (every row of both inputs must reach it); its
//! equalities are hash keys.
//!
//! An inner or LEFT join whose right input is a table read whole becomes an index lookup
//! join ([`crate::exec_lookup`]) when its equalities set the leading columns of one of the
//! table's indexes (the one with the most such columns; the primary index on a tie;
//! hash-sharded ones never) and the left input is estimated at least ten times smaller:
//! reading a few keys per left row beats reading the table.
//!
//! Out of scope: reordering across LEFT joins, merge joins, join selectivity from distinct
//! counts (a hash join is estimated at its larger input, as for a key joined to a key).

use crate::expr::{BinaryOp, Expr};
use crate::optimizer::{conjuncts, optimize};
use crate::plan::{JoinKind, Plan};
use crate::rowcodec::RowCodec;
use crate::types::{DataType, TypeCategory};

/// Plans `join` (a [`Plan::Join`]) under the AND-ed `filter` conjuncts of a WHERE above it.
pub(crate) fn plan_joins(join: Plan, filter: Vec<Expr>) -> Plan {
    match join {
        Plan::Join {
            left,
            right,
            kind: kind @ (JoinKind::Left | JoinKind::Full),
            on,
            right_width,
        } => outer_join(kind, *left, *right, on, right_width, filter),
        inner => inner_region(inner, filter),
    }
}

/// One input of an inner region.
struct Leaf {
    plan: Plan,
    /// Where its columns start in the region's written layout.
    offset: usize,
    width: usize,
}

fn flatten(plan: Plan, offset: usize, leaves: &mut Vec<Leaf>, parts: &mut Vec<Expr>) {
    match plan {
        Plan::Join { left, right, kind: JoinKind::Inner, on, .. } => {
            let left_width = left.width();
            if let Some(on) = on {
                parts.extend(
                    conjuncts(&on).into_iter().map(|c| c.clone().map_columns(&|p| p + offset)),
                );
            }
            flatten(*left, offset, leaves, parts);
            flatten(*right, offset + left_width, leaves, parts);
        }
        other => {
            let width = other.width();
            leaves.push(Leaf { plan: other, offset, width });
        }
    }
}

/// The leaves a conjunct reads, by index.
fn leaves_of(e: &Expr, leaves: &[Leaf]) -> Vec<usize> {
    let mut out: Vec<usize> = e
        .columns()
        .into_iter()
        .filter_map(|c| leaves.iter().position(|l| (l.offset..l.offset + l.width).contains(&c)))
        .collect();
    out.dedup();
    out
}

fn inner_region(join: Plan, filter: Vec<Expr>) -> Plan {
    let mut leaves = Vec::new();
    let mut parts = filter;
    flatten(join, 0, &mut leaves, &mut parts);
    let parts: Vec<Expr> = parts.into_iter().flat_map(factor_or).collect();
    let types: Vec<Option<DataType>> = leaves.iter().flat_map(|l| output_types(&l.plan)).collect();
    let width = types.len();

    // 1 and 2: conjuncts over one leaf (or none) filter it.
    let mut pushed: Vec<Vec<Expr>> = leaves.iter().map(|_| Vec::new()).collect();
    let mut joining: Vec<(Expr, Vec<usize>)> = Vec::new();
    for part in parts {
        let over = leaves_of(&part, &leaves);
        match over.as_slice() {
            [] => pushed[0].push(part),
            [one] => {
                let offset = leaves[*one].offset;
                pushed[*one].push(part.map_columns(&|c| c - offset));
            }
            _ => joining.push((part, over)),
        }
    }
    for (leaf, filter) in leaves.iter_mut().zip(pushed) {
        let plan = std::mem::replace(&mut leaf.plan, Plan::Values { rows: vec![], width: 0 });
        leaf.plan = optimize(with_filter(plan, filter));
    }

    // 3: the order.
    let estimates: Vec<f64> = leaves.iter().map(|l| estimate(&l.plan)).collect();
    let smallest = |candidates: &mut dyn Iterator<Item = usize>| {
        candidates.min_by(|a, b| estimates[*a].total_cmp(&estimates[*b]).then(a.cmp(b)))
    };
    let mut order: Vec<usize> = Vec::new();
    let mut joined = vec![false; leaves.len()];
    while order.len() < leaves.len() {
        let linked = |i: usize| {
            joining.iter().any(|(e, over)| {
                over.contains(&i)
                    && over.iter().any(|o| joined[*o])
                    && equality_sides(e, &leaves, &types).is_some()
            })
        };
        let next = smallest(&mut (0..leaves.len()).filter(|&i| !joined[i] && linked(i)))
            .or_else(|| smallest(&mut (0..leaves.len()).filter(|&i| !joined[i])))
            .expect("a leaf is left");
        joined[next] = true;
        order.push(next);
    }

    // 4: build left-deep, placing each conjunct once all its leaves are in.
    let mut leaf_plans: Vec<Option<Plan>> = leaves
        .iter_mut()
        .map(|l| Some(std::mem::replace(&mut l.plan, Plan::Values { rows: vec![], width: 0 })))
        .collect();
    let mut new_offset = vec![0; leaves.len()];
    let mut at = 0;
    for &i in &order {
        new_offset[i] = at;
        at += leaves[i].width;
    }
    let to_new = |c: usize| {
        let i = leaves.iter().position(|l| (l.offset..l.offset + l.width).contains(&c));
        let i = i.expect("a column of some leaf");
        new_offset[i] + c - leaves[i].offset
    };
    let mut in_tree = vec![false; leaves.len()];
    let mut tree = leaf_plans[order[0]].take().expect("each leaf once");
    in_tree[order[0]] = true;
    for &i in &order[1..] {
        in_tree[i] = true;
        let right = leaf_plans[i].take().expect("each leaf once");
        let right_width = leaves[i].width;
        let (mut left_keys, mut right_keys, mut residual) = (Vec::new(), Vec::new(), Vec::new());
        let mut rest = Vec::new();
        for (part, over) in joining {
            if !over.iter().all(|o| in_tree[*o]) {
                rest.push((part, over));
                continue;
            }
            match equality_sides(&part, &leaves, &types) {
                Some((a, b)) if side_is(&b, i, &leaves) && !over_leaf(&a, i, &leaves) => {
                    left_keys.push(a.map_columns(&to_new));
                    right_keys.push(b.map_columns(&|c| c - leaves[i].offset));
                }
                Some((a, b)) if side_is(&a, i, &leaves) && !over_leaf(&b, i, &leaves) => {
                    left_keys.push(b.map_columns(&to_new));
                    right_keys.push(a.map_columns(&|c| c - leaves[i].offset));
                }
                _ => residual.push(part.map_columns(&to_new)),
            }
        }
        joining = rest;
        let on = and_all(residual);
        tree = if left_keys.is_empty() {
            Plan::Join {
                left: Box::new(tree),
                right: Box::new(right),
                kind: JoinKind::Inner,
                on,
                right_width,
            }
        } else {
            equi_join(tree, right, JoinKind::Inner, (left_keys, right_keys), on, right_width)
        };
    }

    // 5: the written column order.
    match tree {
        tree if (0..width).all(|c| to_new(c) == c) => tree,
        // The last join's own reordering (a hash join built on its left side) folds in.
        Plan::Project { source, exprs } => {
            Plan::Project { source, exprs: (0..width).map(|c| exprs[to_new(c)].clone()).collect() }
        }
        tree => Plan::Project {
            source: Box::new(tree),
            exprs: (0..width).map(|c| Expr::Column(to_new(c))).collect(),
        },
    }
}

/// Plans a LEFT or FULL join. A LEFT join moves a WHERE conjunct over its left side below it
/// and an ON conjunct over its right side into the right input; a FULL join keeps every row
/// of both inputs, so nothing moves below it. Equalities between the sides are hash keys.
fn outer_join(
    kind: JoinKind,
    left: Plan,
    right: Plan,
    on: Option<Expr>,
    right_width: usize,
    filter: Vec<Expr>,
) -> Plan {
    let left_width = left.width();
    let pushes = kind == JoinKind::Left;
    let (below, above): (Vec<Expr>, Vec<Expr>) =
        filter.into_iter().partition(|e| pushes && e.columns().iter().all(|&c| c < left_width));
    let mut types = output_types(&left);
    types.extend(output_types(&right));
    let mut right_filter = Vec::new();
    let (mut left_keys, mut right_keys, mut residual) = (Vec::new(), Vec::new(), Vec::new());
    for part in on.iter().flat_map(|on| conjuncts(on).into_iter().cloned().collect::<Vec<_>>()) {
        let columns = part.columns();
        if pushes && !columns.is_empty() && columns.iter().all(|&c| c >= left_width) {
            right_filter.push(part.map_columns(&|c| c - left_width));
            continue;
        }
        match equality_split(&part, left_width, &types) {
            Some((l, r)) => {
                left_keys.push(l);
                right_keys.push(r.map_columns(&|c| c - left_width));
            }
            None => residual.push(part),
        }
    }
    let left = optimize(with_filter(left, below));
    let right = optimize(with_filter(right, right_filter));
    let on = and_all(residual);
    let join = if left_keys.is_empty() {
        Plan::Join { left: Box::new(left), right: Box::new(right), kind, on, right_width }
    } else {
        equi_join(left, right, kind, (left_keys, right_keys), on, right_width)
    };
    with_filter(join, above)
}

/// `part` as conjuncts, with those common to every branch of an OR taken out of it:
/// `(a AND b) OR (a AND c)` is `a AND (b OR c)`, so `a` (TPC-H Q19's join key) can become a
/// hash key or a leaf's filter. A branch left with nothing makes the OR true: it goes.
fn factor_or(part: Expr) -> Vec<Expr> {
    fn disjuncts(e: &Expr, out: &mut Vec<Expr>) {
        match e {
            Expr::Binary(BinaryOp::Or, a, b) => {
                disjuncts(a, out);
                disjuncts(b, out);
            }
            other => out.push(other.clone()),
        }
    }
    if !matches!(part, Expr::Binary(BinaryOp::Or, ..)) {
        return vec![part];
    }
    let mut branches = Vec::new();
    disjuncts(&part, &mut branches);
    // `x = y` and `y = x` are one condition.
    let canonical = |e: &Expr| match e {
        Expr::Binary(BinaryOp::Eq, a, b) if format!("{a:?}") > format!("{b:?}") => {
            Expr::Binary(BinaryOp::Eq, b.clone(), a.clone())
        }
        other => other.clone(),
    };
    let branch_parts: Vec<Vec<Expr>> =
        branches.iter().map(|b| conjuncts(b).into_iter().map(canonical).collect()).collect();
    let common: Vec<Expr> = branch_parts[0]
        .iter()
        .filter(|c| branch_parts[1..].iter().all(|b| b.contains(c)))
        .fold(Vec::new(), |mut seen, c| {
            if !seen.contains(c) {
                seen.push(c.clone());
            }
            seen
        });
    if common.is_empty() {
        return vec![part];
    }
    let rests: Vec<Option<Expr>> = branch_parts
        .into_iter()
        .map(|b| and_all(b.into_iter().filter(|c| !common.contains(c)).collect()))
        .collect();
    let mut out = common;
    if rests.iter().all(Option::is_some) {
        let rest = rests.into_iter().flatten();
        out.extend(rest.reduce(|a, b| Expr::Binary(BinaryOp::Or, Box::new(a), Box::new(b))));
    }
    out
}

/// `plan` under the AND of `filter` (itself when empty).
fn with_filter(plan: Plan, filter: Vec<Expr>) -> Plan {
    match and_all(filter) {
        Some(predicate) => Plan::Filter { source: Box::new(plan), predicate },
        None => plan,
    }
}

fn and_all(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|a, b| Expr::Binary(BinaryOp::And, Box::new(a), Box::new(b)))
}

/// The two sides of an equality `a = b` whose types let a hash table compare them.
fn equality_sides(e: &Expr, leaves: &[Leaf], types: &[Option<DataType>]) -> Option<(Expr, Expr)> {
    let Expr::Binary(BinaryOp::Eq, a, b) = e else { return None };
    let (la, lb) = (leaves_of(a, leaves), leaves_of(b, leaves));
    if la.is_empty() || lb.is_empty() || la.iter().any(|x| lb.contains(x)) {
        return None;
    }
    hashable(a, b, types).then(|| (a.as_ref().clone(), b.as_ref().clone()))
}

/// An equality with one side over the left input alone and the other over the right alone.
fn equality_split(e: &Expr, left_width: usize, types: &[Option<DataType>]) -> Option<(Expr, Expr)> {
    let Expr::Binary(BinaryOp::Eq, a, b) = e else { return None };
    let left_only = |x: &Expr| {
        let c = x.columns();
        !c.is_empty() && c.iter().all(|&c| c < left_width)
    };
    let right_only = |x: &Expr| {
        let c = x.columns();
        !c.is_empty() && c.iter().all(|&c| c >= left_width)
    };
    if !hashable(a, b, types) {
        return None;
    }
    if left_only(a) && right_only(b) {
        Some((a.as_ref().clone(), b.as_ref().clone()))
    } else if left_only(b) && right_only(a) {
        Some((b.as_ref().clone(), a.as_ref().clone()))
    } else {
        None
    }
}

/// Whether `a = b` may be a hash key: a hash match must mean exactly what `=` would.
pub(crate) fn hashable(a: &Expr, b: &Expr, types: &[Option<DataType>]) -> bool {
    // Numbers hash by value across widths and kinds; text and varchar alike. CHAR pads, so
    // it hashes only with itself.
    let unpadded = |t: DataType| !matches!(t, DataType::Char(_));
    match (a.static_type(types), b.static_type(types)) {
        (Some(x), Some(y)) => {
            x == y
                || (x.category() == y.category()
                    && matches!(x.category(), TypeCategory::Numeric | TypeCategory::String)
                    && unpadded(x)
                    && unpadded(y))
        }
        _ => false,
    }
}

/// Whether `e` reads columns of leaf `i` only.
fn side_is(e: &Expr, i: usize, leaves: &[Leaf]) -> bool {
    leaves_of(e, leaves) == [i]
}

/// Whether `e` reads any column of leaf `i`.
fn over_leaf(e: &Expr, i: usize, leaves: &[Leaf]) -> bool {
    leaves_of(e, leaves).contains(&i)
}

/// The types of a plan's output columns, where evident.
pub(crate) fn output_types(plan: &Plan) -> Vec<Option<DataType>> {
    match plan {
        Plan::Scan { table, .. } | Plan::IndexScan { table, .. } => {
            table.columns.iter().map(|c| Some(c.data_type)).collect()
        }
        Plan::Values { rows, width } => match rows.first() {
            Some(row) => row.iter().map(|e| e.static_type(&[])).collect(),
            None => vec![None; *width],
        },
        Plan::Project { source, exprs } => {
            let input = output_types(source);
            exprs.iter().map(|e| e.static_type(&input)).collect()
        }
        Plan::Aggregate { source, group_by, aggregates } => {
            let input = output_types(source);
            group_by
                .iter()
                .map(|e| e.static_type(&input))
                .chain(aggregates.iter().map(|a| a.static_type(&input)))
                .collect()
        }
        Plan::Filter { source, .. }
        | Plan::Sort { source, .. }
        | Plan::Limit { source, .. }
        | Plan::Distinct { source, .. }
        | Plan::Measure { source, .. } => output_types(source),
        Plan::Window { source, calls } => {
            let mut types = output_types(source);
            let input = types.clone();
            types.extend(calls.iter().map(|c| c.static_type(&input)));
            types
        }
        Plan::Join { left, right, .. }
        | Plan::HashJoin { left, right, .. }
        | Plan::Lateral { left, right, .. } => {
            let mut types = output_types(left);
            types.extend(output_types(right));
            types
        }
        Plan::LookupJoin { left, table, .. } => {
            let mut types = output_types(left);
            types.extend(table.columns.iter().map(|c| Some(c.data_type)));
            types
        }
        Plan::Apply { source, subqueries } => {
            let mut types = output_types(source);
            types.extend(subqueries.iter().map(|s| match s.test {
                crate::plan::SubqueryTest::Scalar => {
                    output_types(&s.plan).first().copied().flatten()
                }
                _ => Some(DataType::Bool),
            }));
            types
        }
        Plan::SetOp { left, .. } => output_types(left),
        Plan::Recursive { anchor, .. } => output_types(anchor),
        Plan::WorkTable { types } => types.clone(),
    }
}

/// Rows a plan is guessed to produce (see the module essay), from the tables' statistics
/// where they have some.
pub(crate) fn estimate(plan: &Plan) -> f64 {
    const FILTER_KEEPS: f64 = crate::stats::UNKNOWN_SELECTIVITY;
    match plan {
        Plan::Scan { table, spans, filter } => {
            let table_rows = crate::stats::table_rows(table);
            let whole = vec![RowCodec::default().index_span(table, &table.primary)];
            if *spans != whole {
                let per_span = match filter {
                    Some(f) if crate::stats::fixes_primary_key(table, f) => 1.0,
                    _ => 10.0,
                };
                return (per_span * spans.len() as f64).min(table_rows);
            }
            match filter {
                Some(filter) => (table_rows * crate::stats::selectivity(table, filter)).max(1.0),
                None => table_rows,
            }
        }
        Plan::IndexScan { table, spans, .. } => {
            (10.0 * spans.len() as f64).min(crate::stats::table_rows(table))
        }
        Plan::Values { rows, .. } => rows.len() as f64,
        Plan::Filter { source, .. } => estimate(source) * FILTER_KEEPS,
        Plan::Project { source, .. }
        | Plan::Sort { source, .. }
        | Plan::Distinct { source, .. }
        | Plan::Window { source, .. }
        | Plan::Measure { source, .. } => estimate(source),
        Plan::Limit { source, limit, .. } => {
            let rows = estimate(source);
            limit.map_or(rows, |l| rows.min(l as f64))
        }
        Plan::Aggregate { source, group_by, .. } => {
            if group_by.is_empty() {
                1.0
            } else {
                (estimate(source) / 10.0).max(1.0)
            }
        }
        Plan::Join { left, right, .. } => estimate(left) * estimate(right),
        Plan::HashJoin { left, right, .. } => estimate(left).max(estimate(right)),
        Plan::LookupJoin { left, .. } => estimate(left),
        Plan::Apply { source, .. } => estimate(source),
        Plan::Lateral { left, right, .. } => estimate(left) * estimate(right),
        Plan::SetOp { left, right, .. } => estimate(left) + estimate(right),
        Plan::Recursive { anchor, step, .. } => estimate(anchor) + 10.0 * estimate(step),
        Plan::WorkTable { .. } => 10.0,
    }
}

/// How much smaller than a table its other input must be estimated for a lookup join:
/// reading a few keys per left row must beat reading the table once.
const LOOKUP_RATIO: f64 = 10.0;

/// The join of `left` and `right` on equality keys: a lookup join
/// ([`crate::exec_lookup`]) when `right` is a table read whole, led on some index by
/// columns the keys equal, and `left` is estimated [`LOOKUP_RATIO`] times smaller; a hash
/// join otherwise, built on the side estimated smaller.
fn equi_join(
    left: Plan,
    right: Plan,
    kind: JoinKind,
    (left_keys, right_keys): (Vec<Expr>, Vec<Expr>),
    on: Option<Expr>,
    right_width: usize,
) -> Plan {
    let lookup = match &right {
        Plan::Scan { table, spans, .. }
            if kind != JoinKind::Full
                && *spans == [RowCodec::default().index_span(table, &table.primary)]
                && estimate(&left) * LOOKUP_RATIO <= estimate(&right) =>
        {
            lookup_index(table, &left_keys, &right_keys)
        }
        _ => None,
    };
    match (lookup, right) {
        (Some((index, lookup)), Plan::Scan { table, filter, .. }) => Plan::LookupJoin {
            left: Box::new(left),
            index: (index != table.primary).then(|| Box::new(index)),
            table,
            lookup,
            filter,
            kind,
            left_keys,
            right_keys,
            on,
        },
        // A hash join holds its right input: an inner join builds on the smaller side, and a
        // projection puts the columns back.
        (_, right) if kind == JoinKind::Inner && estimate(&right) > estimate(&left) => {
            let left_width = left.width();
            let swapped = |c: usize| if c < left_width { c + right_width } else { c - left_width };
            let join = Plan::HashJoin {
                left: Box::new(right),
                right: Box::new(left),
                kind,
                left_keys: right_keys,
                right_keys: left_keys,
                on: on.map(|on| on.map_columns(&swapped)),
                right_width: left_width,
            };
            let exprs = (0..left_width + right_width).map(|c| Expr::Column(swapped(c))).collect();
            Plan::Project { source: Box::new(join), exprs }
        }
        (_, right) => Plan::HashJoin {
            left: Box::new(left),
            right: Box::new(right),
            kind,
            left_keys,
            right_keys,
            on,
            right_width,
        },
    }
}

/// The index of `table` with the most leading columns that the join keys set (the primary
/// index on a tie), and the left key for each of those columns; None when no index leads
/// with one. Hash-sharded indexes are skipped (their keys start with a bucket).
fn lookup_index(
    table: &crate::catalog::TableDescriptor,
    left_keys: &[Expr],
    right_keys: &[Expr],
) -> Option<(crate::catalog::IndexDescriptor, Vec<Expr>)> {
    let mut best: Option<(crate::catalog::IndexDescriptor, Vec<Expr>)> = None;
    for index in std::iter::once(&table.primary).chain(&table.indexes) {
        if index.hash_buckets.is_some() {
            continue;
        }
        let mut lookup = Vec::new();
        for (id, _) in &index.columns {
            let Ok(position) = table.column_position(*id) else { break };
            let key = right_keys.iter().position(|r| *r == Expr::Column(position));
            match key {
                Some(k) => lookup.push(left_keys[k].clone()),
                None => break,
            }
        }
        if !lookup.is_empty() && best.as_ref().is_none_or(|(_, l)| lookup.len() > l.len()) {
            best = Some((index.clone(), lookup));
        }
    }
    best
}
