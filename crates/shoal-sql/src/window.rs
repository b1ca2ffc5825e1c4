//! Window functions: what a [`Plan::Window`](crate::plan::Plan::Window) computes.
//!
//! A window function computes one value per input row from the rows of its *partition*
//! (the rows with the same PARTITION BY values), in the partition's ORDER BY order. Ranking
//! functions look at the row's position and its *peers* (rows equal in the ORDER BY
//! keys); `lag` / `lead` at rows a fixed distance away; value functions and aggregates at
//! the row's *frame*, a stretch of the partition around it.
//!
//! ```text
//!   SELECT k, sum(k) OVER (ORDER BY k ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t
//!
//!   k   frame        sum
//!   1   [1]          1
//!   2   [1, 2]       3
//!   3   [2, 3]       5        the frame slides: ROWS counts rows,
//!   3   [3, 3]       6        RANGE counts ORDER BY values (peers move together),
//!                             GROUPS counts peer groups
//! ```
//!
//! The default frame is PostgreSQL's, `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`:
//! with an ORDER BY, a running total that includes the row's peers; without one, the whole
//! partition. The window operator runs after GROUP BY and HAVING and before DISTINCT,
//! ORDER BY and LIMIT, so a window function may take an aggregate as its argument
//! (`sum(count(*)) OVER ()`).
//!
//! Out of scope: `EXCLUDE` (the parser does not read it), `IGNORE NULLS`, DISTINCT in a
//! windowed aggregate (0A000, as in PostgreSQL), RANGE offsets over dates and timestamps
//! (no INTERVAL type yet). Execution is in [`crate::exec_window`], planning in
//! [`crate::planner_window`].

use crate::expr::Expr;
use crate::plan::{Aggregate, SortKey, show};
use crate::types::DataType;

/// What a window function computes.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowFunction {
    /// `row_number()`: the row's position in its partition, from 1.
    RowNumber,
    /// `rank()`: the position of the row's first peer.
    Rank,
    /// `dense_rank()`: the number of the row's peer group.
    DenseRank,
    /// `percent_rank()`: (rank − 1) / (partition rows − 1), or 0.
    PercentRank,
    /// `cume_dist()`: the share of the partition up to the row's last peer.
    CumeDist,
    /// `ntile(n)`: which of n near-equal buckets the row falls into.
    Ntile,
    /// `lag(value [, offset [, default]])`: `value` at the row `offset` rows before.
    Lag,
    /// `lead(value [, offset [, default]])`: `value` at the row `offset` rows after.
    Lead,
    /// `first_value(value)` over the frame.
    FirstValue,
    /// `last_value(value)` over the frame.
    LastValue,
    /// `nth_value(value, n)` over the frame.
    NthValue,
    /// An aggregate over the frame.
    Aggregate(Aggregate),
}

impl WindowFunction {
    /// The window function named `name` taking `args` arguments, if there is one (aggregates
    /// are looked up separately).
    pub fn lookup(name: &str, args: usize) -> Option<WindowFunction> {
        use WindowFunction as W;
        Some(match (name, args) {
            ("row_number", 0) => W::RowNumber,
            ("rank", 0) => W::Rank,
            ("dense_rank", 0) => W::DenseRank,
            ("percent_rank", 0) => W::PercentRank,
            ("cume_dist", 0) => W::CumeDist,
            ("ntile", 1) => W::Ntile,
            ("lag", 1..=3) => W::Lag,
            ("lead", 1..=3) => W::Lead,
            ("first_value", 1) => W::FirstValue,
            ("last_value", 1) => W::LastValue,
            ("nth_value", 2) => W::NthValue,
            _ => return None,
        })
    }

    /// Whether `name` is a window function (of some number of arguments).
    pub fn is_window_function(name: &str) -> bool {
        (0..=3).any(|n| WindowFunction::lookup(name, n).is_some())
    }
}

/// How a frame's offsets count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameUnits {
    /// Rows.
    Rows,
    /// ORDER BY values: the frame holds the rows whose key is within the offset.
    Range,
    /// Peer groups.
    Groups,
}

/// One end of a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameBound {
    /// The partition's first row.
    UnboundedPreceding,
    /// An offset before the current row (a constant expression).
    Preceding(Expr),
    /// The current row (in RANGE and GROUPS: its first or last peer).
    CurrentRow,
    /// An offset after the current row.
    Following(Expr),
    /// The partition's last row.
    UnboundedFollowing,
}

/// The rows of a partition that a value function or aggregate sees from the current row.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// How the offsets count.
    pub units: FrameUnits,
    /// The first row.
    pub start: FrameBound,
    /// The last row.
    pub end: FrameBound,
}

impl Default for Frame {
    /// PostgreSQL's default: RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW.
    fn default() -> Self {
        Frame {
            units: FrameUnits::Range,
            start: FrameBound::UnboundedPreceding,
            end: FrameBound::CurrentRow,
        }
    }
}

/// One window function call of a [`Plan::Window`](crate::plan::Plan::Window).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowCall {
    /// What it computes.
    pub function: WindowFunction,
    /// Its arguments over the input row (an aggregate keeps its own in the [`Aggregate`]).
    pub args: Vec<Expr>,
    /// PARTITION BY, over the input row.
    pub partition_by: Vec<Expr>,
    /// ORDER BY, over the input row.
    pub order_by: Vec<SortKey>,
    /// The frame.
    pub frame: Frame,
}

impl WindowCall {
    /// The type of the call's value, given the input's column types.
    pub fn static_type(&self, input: &[Option<DataType>]) -> Option<DataType> {
        use WindowFunction as W;
        match &self.function {
            W::RowNumber | W::Rank | W::DenseRank => Some(DataType::Int(8)),
            W::Ntile => Some(DataType::Int(4)),
            W::PercentRank | W::CumeDist => Some(DataType::Float(8)),
            W::Lag | W::Lead | W::FirstValue | W::LastValue | W::NthValue => {
                self.args.first().and_then(|a| a.static_type(input))
            }
            W::Aggregate(a) => a.static_type(input),
        }
    }

    /// The call as EXPLAIN shows it.
    pub fn explain(&self) -> String {
        let call = match &self.function {
            WindowFunction::Aggregate(a) => a.explain(),
            other => {
                let name = match other {
                    WindowFunction::RowNumber => "row_number",
                    WindowFunction::Rank => "rank",
                    WindowFunction::DenseRank => "dense_rank",
                    WindowFunction::PercentRank => "percent_rank",
                    WindowFunction::CumeDist => "cume_dist",
                    WindowFunction::Ntile => "ntile",
                    WindowFunction::Lag => "lag",
                    WindowFunction::Lead => "lead",
                    WindowFunction::FirstValue => "first_value",
                    WindowFunction::LastValue => "last_value",
                    WindowFunction::NthValue => "nth_value",
                    WindowFunction::Aggregate(_) => unreachable!("matched above"),
                };
                let args: Vec<String> = self.args.iter().map(show).collect();
                format!("{name}({})", args.join(", "))
            }
        };
        let mut over = Vec::new();
        if !self.partition_by.is_empty() {
            let keys: Vec<String> = self.partition_by.iter().map(show).collect();
            over.push(format!("partition [{}]", keys.join(", ")));
        }
        if !self.order_by.is_empty() {
            let keys: Vec<String> = self
                .order_by
                .iter()
                .map(|k| format!("{}{}", show(&k.expr), if k.ascending { "" } else { " desc" }))
                .collect();
            over.push(format!("order [{}]", keys.join(", ")));
        }
        if self.frame != Frame::default() {
            let bound = |b: &FrameBound| match b {
                FrameBound::UnboundedPreceding => "unbounded preceding".to_string(),
                FrameBound::Preceding(e) => format!("{} preceding", show(e)),
                FrameBound::CurrentRow => "current row".to_string(),
                FrameBound::Following(e) => format!("{} following", show(e)),
                FrameBound::UnboundedFollowing => "unbounded following".to_string(),
            };
            over.push(format!(
                "{:?} {} to {}",
                self.frame.units,
                bound(&self.frame.start),
                bound(&self.frame.end)
            ));
        }
        format!("{call} over ({})", over.join(" ").to_lowercase())
    }

    /// Every expression of the call, for rewriting (outer values bound, and so on).
    pub fn map_exprs(self, f: &mut impl FnMut(Expr) -> Expr) -> WindowCall {
        let mut bound = |b: FrameBound| match b {
            FrameBound::Preceding(e) => FrameBound::Preceding(f(e)),
            FrameBound::Following(e) => FrameBound::Following(f(e)),
            other => other,
        };
        let frame =
            Frame { start: bound(self.frame.start), end: bound(self.frame.end), ..self.frame };
        let function = match self.function {
            WindowFunction::Aggregate(a) => WindowFunction::Aggregate(Aggregate {
                arg: a.arg.map(&mut *f),
                separator: a.separator.map(&mut *f),
                filter: a.filter.map(&mut *f),
                ..a
            }),
            other => other,
        };
        WindowCall {
            function,
            args: self.args.into_iter().map(&mut *f).collect(),
            partition_by: self.partition_by.into_iter().map(&mut *f).collect(),
            order_by: self.order_by.into_iter().map(|k| SortKey { expr: f(k.expr), ..k }).collect(),
            frame,
        }
    }
}
