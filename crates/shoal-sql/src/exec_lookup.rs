//! Executing index lookup joins: the [`Plan::LookupJoin`] operator.
//!
//! A hash join reads its right input whole. When the left input is a few rows and the right
//! one a large table with an index on the join key (the OLTP case: an order and its
//! customer), reading the table whole is most of the work. A lookup join instead reads the
//! left rows in batches and, for each batch, scans only the index keys its rows name:
//!
//! ```text
//!   SELECT … FROM orders o JOIN customers c ON c.id = o.customer WHERE o.id = 7
//!
//!   lookup join inner customers@primary on #1 = #3
//!   └─ scan orders spans [/orders/1/7]        → o.customer = 42
//!
//!   batch [o.customer 42] → scan customers spans [/customers/1/42] → one row → joined
//! ```
//!
//! For each batch of up to [`BATCH`] left rows: the lookup expressions give each row's
//! leading index values, which become one point span each (cast to the column's type as
//! the optimizer casts constants; a value that does not fit, or a NULL, names no key and
//! matches nothing); the spans are sorted and deduplicated and read as one primary or index
//! scan, with the table filter on the ranges; the rows read are hashed by the join's full
//! equality keys, and each left row of the batch is matched as in a hash join, in the left
//! input's order. A LEFT join pads a left row that matches nothing.
//!
//! # Invariants
//!
//! - The lookup only narrows what is read: every row it returns is still matched on all the
//!   join's equality keys and its remaining condition, so the result is the hash join's.
//! - Memory is one batch's right rows, under the statement's budget.
//!
//! Out of scope: choosing the batch size from statistics, and FULL joins (the unmatched
//! right rows would need the whole table).

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use shoal_keys::Span;

use crate::catalog::{IndexDescriptor, TableDescriptor};
use crate::error::Result;
use crate::exec::{Exec, Row, Rows, build, cooperative, passes};
use crate::expr::Expr;
use crate::memory::row_bytes;
use crate::plan::{JoinKind, Plan};
use crate::rowcodec::RowCodec;
use crate::types::Value;

/// Left rows looked up together: one scan request per batch.
pub const BATCH: usize = 128;

/// What a lookup join reads, and how it matches.
pub(crate) struct Lookup {
    pub(crate) table: Arc<TableDescriptor>,
    pub(crate) index: Option<Box<IndexDescriptor>>,
    pub(crate) lookup: Vec<Expr>,
    pub(crate) filter: Option<Expr>,
    pub(crate) kind: JoinKind,
    pub(crate) left_keys: Vec<Expr>,
    pub(crate) right_keys: Vec<Expr>,
    pub(crate) on: Option<Expr>,
}

/// Each left row of `left` joined with the rows of the table it looks up.
pub(crate) fn lookup_join(left: Plan, how: Lookup, x: &Exec) -> Rows {
    let how = Arc::new(how);
    let x = x.clone();
    let batches = build(left, &x, None).try_chunks(BATCH).map_err(|e| e.1);
    let joined = batches.and_then(move |batch| {
        let (how, x) = (how.clone(), x.clone());
        async move { join_batch(&how, batch, &x).await }
    });
    cooperative(joined.map_ok(|rows| stream::iter(rows.into_iter().map(Ok))).try_flatten().boxed())
}

/// The joined rows of one batch of left rows.
async fn join_batch(how: &Lookup, batch: Vec<Row>, x: &Exec) -> Result<Vec<Row>> {
    let ctx = x.ctx;
    let table = &how.table;
    let codec = RowCodec::default();
    let index = how.index.as_deref().unwrap_or(&table.primary);
    let positions: Vec<usize> = index
        .columns
        .iter()
        .take(how.lookup.len())
        .map(|(id, _)| table.column_position(*id))
        .collect::<Result<_>>()?;
    let mut spans = Vec::with_capacity(batch.len());
    for row in &batch {
        let mut prefix = Vec::with_capacity(how.lookup.len());
        for (e, &position) in how.lookup.iter().zip(&positions) {
            match crate::optimizer::key_value(table, position, &e.eval(row, &ctx)?) {
                Some(v) => prefix.push(v),
                None => break,
            }
        }
        if prefix.len() == how.lookup.len()
            && let Some(key) = codec.index_prefix(table, index, &prefix)?
        {
            spans.push(Span::prefix(key));
        }
    }
    spans.sort_by(|a, b| a.start.cmp(&b.start));
    spans.dedup();
    let mut matches: HashMap<Vec<Value>, Vec<Row>> = HashMap::new();
    let mut reservation = x.memory.reservation("a lookup join's batch");
    if !spans.is_empty() {
        let (table, filter) = (table.clone(), how.filter.clone());
        let scan = match &how.index {
            None => Plan::Scan { table, spans, filter },
            Some(index) => Plan::IndexScan { table, index: (**index).clone(), spans, filter },
        };
        let mut rows = build(scan, x, None);
        while let Some(row) = rows.try_next().await? {
            let key: Vec<Value> =
                how.right_keys.iter().map(|e| e.eval(&row, &ctx)).collect::<Result<_>>()?;
            if key.iter().any(Value::is_null) {
                continue;
            }
            reservation.grow(row_bytes(&row))?;
            matches.entry(key).or_default().push(row);
        }
    }
    let right_width = how.table.columns.len();
    let mut out = Vec::new();
    for row in batch {
        let key: Vec<Value> =
            how.left_keys.iter().map(|e| e.eval(&row, &ctx)).collect::<Result<_>>()?;
        let mut matched = false;
        if !key.iter().any(Value::is_null)
            && let Some(rights) = matches.get(&key)
        {
            for right in rights {
                let mut joined = row.clone();
                joined.extend(right.iter().cloned());
                if how.on.as_ref().map_or(Ok(true), |on| passes(on, &joined, &ctx))? {
                    reservation.grow(row_bytes(&joined))?;
                    matched = true;
                    out.push(joined);
                }
            }
        }
        if !matched && how.kind == JoinKind::Left {
            let mut padded = row;
            padded.extend(std::iter::repeat_n(Value::Null, right_width));
            out.push(padded);
        }
    }
    Ok(out)
}
