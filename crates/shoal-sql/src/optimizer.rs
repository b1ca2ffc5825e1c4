//! Rewrites plans: filters move into scans, and predicates on key columns become key spans.
//!
//! ```text
//!   Filter (k = 5 AND v > 1)                 Scan t spans [/Table/t/1/5, /Table/t/1/5/PrefixEnd)
//!   └─ Scan t spans [whole table]     →           filter (k = 5 AND v > 1)
//! ```
//!
//! Span derivation looks at the AND-ed conjuncts of a scan's filter. On the primary key it
//! uses equalities on a prefix of the key columns (`k = 5`), an `IN` list on the first one,
//! and a range (`<`, `<=`, `>`, `>=`, `BETWEEN`) on the column after the equalities. When the
//! primary key gives nothing, a secondary index whose leading columns are all fixed by
//! equalities is used instead (an index scan, then a lookup of each row). The filter itself
//! stays on the scan, so a span only ever narrows what is read, never what is returned.
//!
//! Joins, and the filters above them, are planned by [`crate::optimizer_join`]: it pushes
//! each predicate to the input it belongs to (where this module turns it into spans), makes
//! equalities between inputs hash-join keys and orders inner joins.
//!
//! Out of scope: cost-based choices of spans and indexes, merging overlapping IN spans,
//! ranges on hash-sharded or descending columns.

use shoal_keys::{Key, Span};

use crate::catalog::{IndexDescriptor, TableDescriptor};
use crate::expr::{BinaryOp, Expr};
use crate::plan::Plan;
use crate::rowcodec::RowCodec;
use crate::types::Value;

/// Optimizes a plan bottom-up.
pub fn optimize(plan: Plan) -> Plan {
    match plan {
        Plan::Filter { source, predicate } if matches!(*source, Plan::Join { .. }) => {
            crate::optimizer_join::plan_joins(
                *source,
                conjuncts(&predicate).into_iter().cloned().collect(),
            )
        }
        join @ Plan::Join { .. } => crate::optimizer_join::plan_joins(join, Vec::new()),
        // Through a projection that only picks columns (a RIGHT join's reordering, USING),
        // so the filter reaches the join or scan below.
        Plan::Filter { source, predicate }
            if matches!(source.as_ref(), Plan::Project { exprs, .. }
                if exprs.iter().all(|e| matches!(e, Expr::Column(_)))) =>
        {
            let Plan::Project { source: inner, exprs } = *source else { unreachable!() };
            let picked: Vec<usize> = exprs
                .iter()
                .map(|e| match e {
                    Expr::Column(i) => *i,
                    _ => unreachable!("checked above"),
                })
                .collect();
            let predicate = predicate.map_columns(&|c| picked[c]);
            let filtered = optimize(Plan::Filter { source: inner, predicate });
            Plan::Project { source: Box::new(filtered), exprs }
        }
        Plan::Filter { source, predicate } => match optimize(*source) {
            Plan::Scan { table, spans, filter } => {
                let filter = Some(match filter {
                    Some(f) => Expr::Binary(BinaryOp::And, Box::new(f), Box::new(predicate)),
                    None => predicate,
                });
                derive_spans(Plan::Scan { table, spans, filter })
            }
            other => Plan::Filter { source: Box::new(other), predicate },
        },
        Plan::Project { source, exprs } => match optimize(*source) {
            // A projection that only picks columns of another one is folded into it (the
            // join planner's column reordering under the SELECT list's projection).
            Plan::Project { source, exprs: inner }
                if exprs.iter().all(|e| matches!(e, Expr::Column(i) if *i < inner.len())) =>
            {
                let picked = exprs
                    .iter()
                    .map(|e| match e {
                        Expr::Column(i) => inner[*i].clone(),
                        other => other.clone(),
                    })
                    .collect();
                Plan::Project { source, exprs: picked }
            }
            other => Plan::Project { source: Box::new(other), exprs },
        },
        Plan::Aggregate { source, group_by, aggregates } => {
            Plan::Aggregate { source: Box::new(optimize(*source)), group_by, aggregates }
        }
        Plan::Sort { source, keys } => Plan::Sort { source: Box::new(optimize(*source)), keys },
        Plan::Limit { source, limit, offset } => {
            Plan::Limit { source: Box::new(optimize(*source)), limit, offset }
        }
        Plan::Distinct { source, on } => Plan::Distinct { source: Box::new(optimize(*source)), on },
        Plan::Measure { id, source } => Plan::Measure { id, source: Box::new(optimize(*source)) },
        Plan::Window { source, calls } => {
            Plan::Window { source: Box::new(optimize(*source)), calls }
        }
        // A correlated subquery's scans get spans again once its outer values are bound.
        scan @ Plan::Scan { filter: Some(_), .. } => derive_spans(scan),
        // The right side is optimized once its outer values are bound, row by row.
        Plan::Lateral { left, right, params, kind, on, right_width } => {
            Plan::Lateral { left: Box::new(optimize(*left)), right, params, kind, on, right_width }
        }
        Plan::Apply { source, subqueries } => {
            Plan::Apply { source: Box::new(optimize(*source)), subqueries }
        }
        lookup @ Plan::LookupJoin { .. } => lookup.map_inputs(optimize),
        Plan::Recursive { anchor, step, all } => Plan::Recursive {
            anchor: Box::new(optimize(*anchor)),
            step: Box::new(optimize(*step)),
            all,
        },
        Plan::SetOp { op, all, left, right } => Plan::SetOp {
            op,
            all,
            left: Box::new(optimize(*left)),
            right: Box::new(optimize(*right)),
        },
        Plan::HashJoin { left, right, kind, left_keys, right_keys, on, right_width } => {
            Plan::HashJoin {
                left: Box::new(optimize(*left)),
                right: Box::new(optimize(*right)),
                kind,
                left_keys,
                right_keys,
                on,
                right_width,
            }
        }
        other => other,
    }
}

/// Splits a condition into its AND-ed parts.
pub(crate) fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Binary(BinaryOp::And, a, b) => {
            let mut out = conjuncts(a);
            out.extend(conjuncts(b));
            out
        }
        other => vec![other],
    }
}

/// A column compared with a constant: `(column, op, value)`, the column on the left.
fn comparison(e: &Expr) -> Option<(usize, BinaryOp, Value)> {
    let Expr::Binary(op, a, b) = e else { return None };
    let flip = |op: BinaryOp| match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        other => other,
    };
    match (a.as_ref(), b.as_ref()) {
        (Expr::Column(c), Expr::Literal(v)) => Some((*c, *op, v.clone())),
        (Expr::Literal(v), Expr::Column(c)) => Some((*c, flip(*op), v.clone())),
        _ => None,
    }
}

/// Casts a constant to a key column's type, so it encodes like the stored keys (an integer
/// literal compared with a FLOAT column, say). None when it does not fit: no span then.
pub(crate) fn key_value(table: &TableDescriptor, position: usize, v: &Value) -> Option<Value> {
    if v.is_null() {
        return None;
    }
    let column = &table.columns[position];
    let cast = column.data_type.assign(v.clone(), &column.name).ok()?;
    // A lossy cast (2.5 into an INT column) must not narrow the scan.
    (cast.sort_cmp(v) == std::cmp::Ordering::Equal).then_some(cast)
}

/// Sets a scan's spans from its filter, or turns it into an index scan.
fn derive_spans(plan: Plan) -> Plan {
    let Plan::Scan { table, spans, filter: Some(filter) } = plan else { return plan };
    let codec = RowCodec::default();
    let parts = conjuncts(&filter);
    if let Some(derived) = index_spans(&codec, &table, &table.primary, &parts) {
        return Plan::Scan { table, spans: derived, filter: Some(filter) };
    }
    for index in &table.indexes {
        if let Some(derived) = index_spans(&codec, &table, index, &parts) {
            let index = index.clone();
            return Plan::IndexScan { table, index, spans: derived, filter: Some(filter) };
        }
    }
    Plan::Scan { table, spans, filter: Some(filter) }
}

/// Returns the spans of `index` that hold every row satisfying `parts`, if the conjuncts
/// constrain its leading column.
fn index_spans(
    codec: &RowCodec,
    table: &TableDescriptor,
    index: &IndexDescriptor,
    parts: &[&Expr],
) -> Option<Vec<Span>> {
    let positions: Vec<usize> = index
        .columns
        .iter()
        .map(|(id, _)| table.column_position(*id).ok())
        .collect::<Option<_>>()?;
    // Equalities on a prefix of the key.
    let mut prefix = Vec::new();
    for &position in &positions {
        let found = parts.iter().find_map(|p| match comparison(p) {
            Some((c, BinaryOp::Eq, v)) if c == position => key_value(table, position, &v),
            _ => None,
        });
        match found {
            Some(v) => prefix.push(v),
            None => break,
        }
    }
    if !prefix.is_empty() {
        let key = codec.index_prefix(table, index, &prefix).ok()??;
        let range = if prefix.len() < positions.len() && index.hash_buckets.is_none() {
            range_on(codec, table, index, &prefix, positions[prefix.len()], parts)
        } else {
            None
        };
        return Some(vec![range.unwrap_or_else(|| Span::prefix(key))]);
    }
    let first = *positions.first()?;
    // An IN list on the first column: one span per value, in key order.
    for p in parts {
        if let Expr::InList(e, list, false) = p
            && matches!(e.as_ref(), Expr::Column(c) if *c == first)
        {
            let mut values = Vec::new();
            for item in list {
                let Expr::Literal(v) = item else { return None };
                if v.is_null() {
                    continue;
                }
                values.push(key_value(table, first, v)?);
            }
            let mut spans = Vec::new();
            for v in values {
                spans.push(Span::prefix(codec.index_prefix(table, index, &[v]).ok()??));
            }
            spans.sort_by(|a, b| a.start.cmp(&b.start));
            spans.dedup();
            return Some(spans);
        }
    }
    if index.hash_buckets.is_some() {
        return None;
    }
    range_on(codec, table, index, &[], first, parts).map(|s| vec![s])
}

/// A span for a range predicate on the key column after `prefix` (ascending columns only).
fn range_on(
    codec: &RowCodec,
    table: &TableDescriptor,
    index: &IndexDescriptor,
    prefix: &[Value],
    position: usize,
    parts: &[&Expr],
) -> Option<Span> {
    let (_, ascending) = index.columns.get(prefix.len())?;
    if !ascending {
        return None;
    }
    let base = codec.index_prefix(table, index, prefix).ok()??;
    let whole = Span::prefix(base.clone());
    let mut start: Option<Key> = None;
    let mut end: Option<Key> = None;
    for p in parts {
        let Some((c, op, v)) = comparison(p) else { continue };
        if c != position {
            continue;
        }
        let Some(v) = key_value(table, position, &v) else { continue };
        let mut values = prefix.to_vec();
        values.push(v);
        let at = codec.index_prefix(table, index, &values).ok()??;
        match op {
            // Rows with the value start at `at`; those above it start after its prefix.
            BinaryOp::Gt => start = Some(max_key(start, Span::prefix(at).end)),
            BinaryOp::GtEq => start = Some(max_key(start, at)),
            BinaryOp::Lt => end = Some(min_key(end, at)),
            BinaryOp::LtEq => end = Some(min_key(end, Span::prefix(at).end)),
            _ => {}
        }
    }
    if start.is_none() && end.is_none() {
        return None;
    }
    // NULLs sort first and never satisfy a comparison: start above them.
    let mut above_null = prefix.to_vec();
    above_null.push(Value::Null);
    let null_end = Span::prefix(codec.index_prefix(table, index, &above_null).ok()??).end;
    let start = max_key(start, null_end).max(whole.start.clone());
    let end = end.unwrap_or(whole.end.clone()).min(whole.end);
    Some(if start < end { Span { start, end } } else { Span { start: start.clone(), end: start } })
}

fn max_key(a: Option<Key>, b: Key) -> Key {
    a.map_or(b.clone(), |a| a.max(b))
}

fn min_key(a: Option<Key>, b: Key) -> Key {
    a.map_or(b.clone(), |a| a.min(b))
}
