//! Executing LATERAL joins: the [`Plan::Lateral`] operator.
//!
//! For each left row, the right side's outer references are bound to the row's values, the
//! bound plan is optimized (a correlated key equality becomes a point lookup) and run, and
//! each of its rows follows the left row. A LEFT lateral join pads a left row that nothing
//! on the right matched with NULLs.
//!
//! ```text
//!   SELECT d.name, top.v FROM d, LATERAL (SELECT v FROM t WHERE t.d = d.id
//!                                         ORDER BY v DESC LIMIT 2) top
//!   for the row d.id = 7: limit 2 (sort (scan t spans [/t/7])) → 0, 1 or 2 rows
//! ```
//!
//! As with [`crate::exec_apply`], the right side's rows depend only on the outer values,
//! so they are cached per distinct combination, under the statement's memory budget: the
//! cache is emptied when a new result does not fit in its share.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::Result;
use crate::exec::{Exec, Row, Rows, build, cooperative, passes};
use crate::expr::Expr;
use crate::memory::{Reservation, row_bytes};
use crate::plan::{JoinKind, Plan};
use crate::types::Value;

/// The part of the statement's memory budget the cache of right-side rows may hold.
const CACHE_SHARE: usize = 4;

struct LateralState {
    input: Rows,
    right: Plan,
    params: Vec<Expr>,
    kind: JoinKind,
    on: Option<Expr>,
    right_width: usize,
    x: Exec,
    cached: HashMap<Vec<Value>, Arc<Vec<Row>>>,
    cache: Reservation,
    /// Joined rows not yet passed on.
    pending: VecDeque<Row>,
}

/// The rows of `left`, each joined with the rows `right` gives for it.
pub(crate) fn lateral(
    left: Plan,
    right: Plan,
    params: Vec<Expr>,
    kind: JoinKind,
    on: Option<Expr>,
    right_width: usize,
    x: &Exec,
) -> Rows {
    let state = LateralState {
        input: build(left, x, None),
        right,
        params,
        kind,
        on,
        right_width,
        x: x.clone(),
        cached: HashMap::new(),
        cache: x.memory.reservation("LATERAL results"),
        pending: VecDeque::new(),
    };
    let rows = stream::try_unfold(state, |mut s| async move {
        loop {
            if let Some(row) = s.pending.pop_front() {
                return Ok(Some((row, s)));
            }
            let Some(left) = s.input.try_next().await? else { return Ok(None) };
            s.join(left).await?;
        }
    });
    cooperative(rows.boxed())
}

impl LateralState {
    /// Queues the rows `left` joins with.
    async fn join(&mut self, left: Row) -> Result<()> {
        let ctx = self.x.ctx;
        let values: Vec<Value> =
            self.params.iter().map(|p| p.eval(&left, &ctx)).collect::<Result<_>>()?;
        let rights = match self.cached.get(&values) {
            Some(rows) => rows.clone(),
            None => {
                let rows = Arc::new(self.run(&values).await?);
                self.cached.insert(values, rows.clone());
                rows
            }
        };
        let mut matched = false;
        for right in rights.iter() {
            let mut joined = left.clone();
            joined.extend(right.iter().cloned());
            if let Some(on) = &self.on
                && !passes(on, &joined, &ctx)?
            {
                continue;
            }
            matched = true;
            self.pending.push_back(joined);
        }
        if !matched && self.kind == JoinKind::Left {
            let mut padded = left;
            padded.extend(std::iter::repeat_n(Value::Null, self.right_width));
            self.pending.push_back(padded);
        }
        Ok(())
    }

    /// Runs the right side for the outer values `values`.
    async fn run(&mut self, values: &[Value]) -> Result<Vec<Row>> {
        let bound = crate::exec_apply::bind_plan(self.right.clone(), values);
        let mut rows = build(crate::optimizer::optimize(bound), &self.x, None);
        let mut out = Vec::new();
        self.reserve(row_bytes(values))?;
        while let Some(row) = rows.try_next().await? {
            self.reserve(row_bytes(&row))?;
            out.push(row);
        }
        Ok(out)
    }

    /// Reserves `bytes` for a result, emptying the cache first when its share is used up.
    fn reserve(&mut self, bytes: usize) -> Result<()> {
        let share = self.x.memory.limit() / CACHE_SHARE;
        if self.cache.bytes() + bytes > share {
            self.cached.clear();
            self.cache = self.x.memory.reservation("LATERAL results");
        }
        self.cache.grow(bytes)
    }
}
