//! Query plans: trees of relational operators whose rows flow bottom-up.
//!
//! ```text
//!   SELECT name, count(*) FROM t WHERE k > 5 GROUP BY name ORDER BY 2 DESC LIMIT 3
//!
//!   Limit 3
//!   └─ Sort #1 DESC
//!      └─ Project #0, #1
//!         └─ Aggregate group [#1] count(*)
//!            └─ Scan t spans [/Table/100/1/5/PrefixEnd - /Table/100/2) filter #0 > 5
//! ```
//!
//! Every node produces rows of a fixed width; expressions refer to the positions of their
//! input's columns (see [`crate::expr`]). Scans read through DistSender, so a scan that crosses
//! ranges is split into one request per range; `EXPLAIN` shows which ranges each span touches.

use std::fmt::Write as _;
use std::sync::Arc;

use shoal_keys::Span;

use crate::catalog::{IndexDescriptor, TableDescriptor};
use crate::expr::Expr;
use crate::types::DataType;
use crate::window::WindowCall;

/// A column of a plan's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The table (or alias) it came from, for qualified references.
    pub table: Option<String>,
    /// Its name (an alias, a column name, or `?column?`).
    pub name: String,
    /// Its type when known (NULL literals have none).
    pub data_type: Option<DataType>,
    /// Left out of `SELECT *`.
    pub hidden: bool,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFunction {
    /// `count(*)`: rows.
    CountRows,
    /// `count(x)`: non-NULL values.
    Count,
    /// `sum(x)`
    Sum,
    /// `avg(x)`
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `string_agg(x, separator)`: the non-NULL values joined, each after the first preceded
    /// by its row's separator.
    StringAgg,
    /// `bool_and(x)` (and `every(x)`): whether every non-NULL value is true.
    BoolAnd,
    /// `bool_or(x)`: whether some non-NULL value is true.
    BoolOr,
}

/// One aggregate computed by an [`Plan::Aggregate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The function.
    pub function: AggregateFunction,
    /// Its argument (absent for `count(*)`).
    pub arg: Option<Expr>,
    /// Whether only distinct argument values count.
    pub distinct: bool,
    /// `string_agg`'s separator, over the row.
    pub separator: Option<Expr>,
    /// `FILTER (WHERE …)`: only rows for which it is true count.
    pub filter: Option<Expr>,
}

impl Aggregate {
    /// The aggregate as EXPLAIN shows it: `sum(#1) filter (where #2 > 0)`.
    pub fn explain(&self) -> String {
        let arg = self.arg.as_ref().map_or("*".to_string(), show);
        let distinct = if self.distinct { "DISTINCT " } else { "" };
        let separator = self.separator.as_ref().map_or(String::new(), |s| format!(", {}", show(s)));
        let filter =
            self.filter.as_ref().map_or(String::new(), |f| format!(" FILTER (WHERE {})", show(f)));
        format!("{:?}({distinct}{arg}{separator}){filter}", self.function).to_lowercase()
    }

    /// The type of the aggregate's values over rows of `input`, where evident: counts are
    /// INT8; sum and avg are DECIMAL (integers add up exactly) or FLOAT8 over floats; min and
    /// max keep their argument's type.
    pub fn static_type(&self, input: &[Option<DataType>]) -> Option<DataType> {
        let arg = self.arg.as_ref().and_then(|a| a.static_type(input));
        match self.function {
            AggregateFunction::CountRows | AggregateFunction::Count => Some(DataType::Int(8)),
            AggregateFunction::Sum => arg.map(|t| match t {
                DataType::Float(_) => DataType::Float(8),
                _ => DataType::Decimal(None),
            }),
            AggregateFunction::Avg => arg.map(|t| match t {
                DataType::Float(_) => DataType::Float(8),
                _ => DataType::Decimal(None),
            }),
            AggregateFunction::Min | AggregateFunction::Max => arg,
            AggregateFunction::StringAgg => Some(DataType::Text),
            AggregateFunction::BoolAnd | AggregateFunction::BoolOr => Some(DataType::Bool),
        }
    }
}

/// A sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// Evaluated over the input row.
    pub expr: Expr,
    /// Ascending.
    pub ascending: bool,
    /// NULLs first (default: last when ascending and first when descending, as in PostgreSQL).
    pub nulls_first: bool,
}

/// What a subquery's rows are turned into for each row of the query around it.
#[derive(Debug, Clone, PartialEq)]
pub enum SubqueryTest {
    /// `(SELECT …)`: its one value, NULL over no rows; more than one row is 21000.
    Scalar,
    /// `EXISTS (SELECT …)`: whether it has a row (reading stops at the first).
    Exists,
    /// `operand op ANY (SELECT …)` (and `IN`, which is `= ANY`), or `op ALL` when `all`:
    /// true when the comparison holds for some row (every row), false when it holds for none
    /// (fails for some), NULL otherwise (a NULL compared, no row decided it), as in
    /// PostgreSQL. Over no rows ANY is false and ALL true, whatever the operand.
    Quantified {
        /// The left operand, over the outer row.
        operand: Expr,
        /// The comparison.
        op: crate::expr::BinaryOp,
        /// ALL rather than ANY.
        all: bool,
    },
}

/// A subquery computed by a [`Plan::Apply`], once per distinct combination of the outer
/// values it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct SubqueryPlan {
    /// The subquery, reading the outer row's values as [`Expr::Outer`] references.
    pub plan: Plan,
    /// The outer values: `Expr::Outer(i, _)` in `plan` is `params[i]` over the apply's input.
    pub params: Vec<Expr>,
    /// What the subquery's rows become.
    pub test: SubqueryTest,
    /// The plan answering it for every outer value at once, when it has one
    /// ([`crate::decorrelate`]).
    pub hashed: Option<crate::decorrelate::Decorrelated>,
}

/// A set operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperator {
    /// Rows of either input.
    Union,
    /// Rows of both inputs.
    Intersect,
    /// Rows of the left input that the right one lacks.
    Except,
}

/// How a join keeps rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Matching pairs only.
    Inner,
    /// Every left row, padded with NULLs when nothing matches.
    Left,
    /// Every row of both sides: unmatched left rows padded on the right, then unmatched
    /// right rows padded on the left.
    Full,
}

impl JoinKind {
    /// How EXPLAIN names it.
    pub fn name(self) -> &'static str {
        match self {
            JoinKind::Inner => "inner",
            JoinKind::Left => "left",
            JoinKind::Full => "full",
        }
    }
}

/// A relational operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Rows of a table through its primary index, in key order: every row in `spans` that
    /// passes `filter`. Output: the table's columns.
    Scan {
        /// The table.
        table: Arc<TableDescriptor>,
        /// Key spans to read, in order; empty reads nothing.
        spans: Vec<Span>,
        /// Applied to each row read.
        filter: Option<Expr>,
    },
    /// Rows found through a secondary index: entries in `spans`, then each row by its
    /// primary key. Output: the table's columns.
    IndexScan {
        /// The table.
        table: Arc<TableDescriptor>,
        /// The index.
        index: IndexDescriptor,
        /// Index key spans.
        spans: Vec<Span>,
        /// Applied to each row fetched.
        filter: Option<Expr>,
    },
    /// Literal rows.
    Values {
        /// Each row's expressions (evaluated over an empty row).
        rows: Vec<Vec<Expr>>,
        /// The row width.
        width: usize,
    },
    /// Rows for which `predicate` is true.
    Filter {
        /// Input.
        source: Box<Plan>,
        /// The condition.
        predicate: Expr,
    },
    /// Computes new columns.
    Project {
        /// Input.
        source: Box<Plan>,
        /// One expression per output column.
        exprs: Vec<Expr>,
    },
    /// Groups rows; outputs the group keys, then the aggregates.
    Aggregate {
        /// Input.
        source: Box<Plan>,
        /// Group keys (none: one group, even over no rows).
        group_by: Vec<Expr>,
        /// Aggregates.
        aggregates: Vec<Aggregate>,
    },
    /// Sorts (stable, so ties keep their input order).
    Sort {
        /// Input.
        source: Box<Plan>,
        /// Keys, most significant first.
        keys: Vec<SortKey>,
    },
    /// Skips `offset` rows, then passes at most `limit`.
    Limit {
        /// Input.
        source: Box<Plan>,
        /// At most this many rows.
        limit: Option<u64>,
        /// Rows skipped first.
        offset: u64,
    },
    /// Drops rows whose key repeats an earlier row's (NULLs equal each other here).
    Distinct {
        /// Input.
        source: Box<Plan>,
        /// The key: `DISTINCT ON` expressions; none: the whole row.
        on: Vec<Expr>,
    },
    /// Computes window functions over all of its input; outputs the input's columns, then
    /// one per call ([`crate::window`]).
    Window {
        /// Input.
        source: Box<Plan>,
        /// The calls.
        calls: Vec<WindowCall>,
    },
    /// A nested-loop join: every left row against every right row (the right side is read
    /// once and buffered). Output: left columns, then right ones.
    Join {
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
        /// Inner or left.
        kind: JoinKind,
        /// The join condition over the combined row; None: a cross join.
        on: Option<Expr>,
        /// The right side's width (for NULL padding).
        right_width: usize,
    },
    /// A hash join: the right input is read once into a hash table on `right_keys`; each
    /// left row finds the right rows whose keys equal its `left_keys` (a NULL key matches
    /// nothing, as `=` never holds for NULL), and `on` decides among them. Output: left
    /// columns, then right ones, as [`Plan::Join`].
    HashJoin {
        /// Left input: streamed.
        left: Box<Plan>,
        /// Right input: buffered into the hash table.
        right: Box<Plan>,
        /// Inner or left.
        kind: JoinKind,
        /// Key expressions over the left row.
        left_keys: Vec<Expr>,
        /// Key expressions over the right row, one per left key.
        right_keys: Vec<Expr>,
        /// The rest of the join condition, over the combined row.
        on: Option<Expr>,
        /// The right side's width (for NULL padding).
        right_width: usize,
    },
    /// An index lookup join: each batch of left rows reads only its matches, by key, from
    /// the right table's index, rather than the whole table ([`crate::exec_lookup`]).
    /// Output: left columns, then the table's.
    LookupJoin {
        /// Left input.
        left: Box<Plan>,
        /// The right table.
        table: Arc<TableDescriptor>,
        /// The index looked up; None for the primary index.
        index: Option<Box<IndexDescriptor>>,
        /// For each leading column of the index, the left expression it must equal.
        lookup: Vec<Expr>,
        /// Applied to each table row read (on the ranges).
        filter: Option<Expr>,
        /// Inner or left.
        kind: JoinKind,
        /// Every equality of the join, as a hash join's keys: over the left row...
        left_keys: Vec<Expr>,
        /// ...and over the table's row, one per left key.
        right_keys: Vec<Expr>,
        /// The rest of the join condition, over the combined row.
        on: Option<Expr>,
    },
    /// Each input row followed by one column per subquery: its value for that row. Subqueries
    /// that read no outer value run once ([`crate::exec_apply`]).
    Apply {
        /// Input.
        source: Box<Plan>,
        /// The subqueries, in the order of their columns.
        subqueries: Vec<SubqueryPlan>,
    },
    /// A LATERAL join: for each left row, the right side, whose outer references read the
    /// left row's `params`, runs (once per distinct set of values) and its rows follow the
    /// left row's ([`crate::exec_lateral`]). Output: left columns, then right ones.
    Lateral {
        /// Left input.
        left: Box<Plan>,
        /// The right side, with [`Expr::Outer`] references to `params`.
        right: Box<Plan>,
        /// The values of the left row the right side reads.
        params: Vec<Expr>,
        /// Inner or left.
        kind: JoinKind,
        /// The join condition, over the combined row.
        on: Option<Expr>,
        /// The right side's width (for NULL padding).
        right_width: usize,
    },
    /// Its source, counted for EXPLAIN ANALYZE as operator `id` ([`crate::profile`]).
    Measure {
        /// The operator's number.
        id: usize,
        /// The operator.
        source: Box<Plan>,
    },
    /// `WITH RECURSIVE`: the anchor's rows, then the step's over each round's new rows,
    /// until a round adds none; without ALL, rows produced before are dropped
    /// ([`crate::exec_recursive`]).
    Recursive {
        /// The non-recursive term.
        anchor: Box<Plan>,
        /// The recursive term, reading the previous round's rows as [`Plan::WorkTable`].
        step: Box<Plan>,
        /// UNION ALL (keep repeats).
        all: bool,
    },
    /// In a recursive CTE's step: the rows the previous round produced.
    WorkTable {
        /// The types of its columns (the anchor's), where known.
        types: Vec<Option<DataType>>,
    },
    /// `left UNION / INTERSECT / EXCEPT [ALL] right`: both inputs have the same width and
    /// types; without ALL, duplicates (NULLs equal here) are removed ([`crate::exec_set`]).
    SetOp {
        /// Which operation.
        op: SetOperator,
        /// Keep duplicates (bag semantics).
        all: bool,
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
    },
}

impl Plan {
    /// How many columns the plan's rows have.
    pub fn width(&self) -> usize {
        match self {
            Plan::Scan { table, .. } | Plan::IndexScan { table, .. } => table.columns.len(),
            Plan::Values { width, .. } => *width,
            Plan::Project { exprs, .. } => exprs.len(),
            Plan::Aggregate { group_by, aggregates, .. } => group_by.len() + aggregates.len(),
            Plan::Filter { source, .. }
            | Plan::Sort { source, .. }
            | Plan::Limit { source, .. }
            | Plan::Distinct { source, .. } => source.width(),
            Plan::Window { source, calls } => source.width() + calls.len(),
            Plan::Join { left, right_width, .. } | Plan::HashJoin { left, right_width, .. } => {
                left.width() + right_width
            }
            Plan::Apply { source, subqueries } => source.width() + subqueries.len(),
            Plan::Lateral { left, right_width, .. } => left.width() + right_width,
            Plan::LookupJoin { left, table, .. } => left.width() + table.columns.len(),
            Plan::Measure { source, .. } => source.width(),
            Plan::SetOp { left, .. } => left.width(),
            Plan::Recursive { anchor, .. } => anchor.width(),
            Plan::WorkTable { types } => types.len(),
        }
    }

    /// Renders the plan as an indented tree (EXPLAIN); `ranges` describes which ranges a span
    /// touches.
    pub fn explain(&self, ranges: &dyn Fn(&Span) -> String) -> Vec<String> {
        self.explain_with(ranges, &|_| String::new())
    }

    /// EXPLAIN's lines, each [`Plan::Measure`]d operator's followed by `notes` of its number
    /// (EXPLAIN ANALYZE's counts).
    pub fn explain_with(
        &self,
        ranges: &dyn Fn(&Span) -> String,
        notes: &dyn Fn(usize) -> String,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        self.explain_into(&mut lines, 0, &Explaining { ranges, notes });
        lines
    }

    fn explain_into(&self, out: &mut Vec<String>, depth: usize, how: &Explaining<'_>) {
        let ranges = how.ranges;
        if let Plan::Measure { id, source } = self {
            let first = out.len();
            source.explain_into(out, depth, how);
            let note = (how.notes)(*id);
            if let Some(line) = out.get_mut(first)
                && !note.is_empty()
            {
                line.push_str("  ");
                line.push_str(&note);
            }
            return;
        }
        let pad = "  ".repeat(depth);
        let mut line = String::new();
        let spans = |spans: &[Span]| -> String {
            if spans.is_empty() {
                return "none".into();
            }
            spans
                .iter()
                .map(|s| format!("[{} - {}) on {}", s.start, s.end, ranges(s)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Plan::Scan { table, spans: s, filter } => {
                let _ = write!(line, "scan {} spans {}", table.name, spans(s));
                if let Some(f) = filter {
                    let _ = write!(line, " filter {}", show(f));
                }
            }
            Plan::IndexScan { table, index, spans: s, filter } => {
                let _ = write!(line, "index scan {}@{} spans {}", table.name, index.name, spans(s));
                if let Some(f) = filter {
                    let _ = write!(line, " filter {}", show(f));
                }
            }
            Plan::Values { rows, .. } => {
                let _ = write!(line, "values {} rows", rows.len());
            }
            Plan::Filter { predicate, .. } => {
                let _ = write!(line, "filter {}", show(predicate));
            }
            Plan::Project { exprs, .. } => {
                let shown: Vec<String> = exprs.iter().map(show).collect();
                let _ = write!(line, "project {}", shown.join(", "));
            }
            Plan::Aggregate { group_by, aggregates, .. } => {
                let groups: Vec<String> = group_by.iter().map(show).collect();
                let aggs: Vec<String> = aggregates.iter().map(Aggregate::explain).collect();
                let _ = write!(line, "aggregate group [{}] {}", groups.join(", "), aggs.join(", "));
            }
            Plan::Sort { keys, .. } => {
                let shown: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        format!("{} {}", show(&k.expr), if k.ascending { "ASC" } else { "DESC" })
                    })
                    .collect();
                let _ = write!(line, "sort {}", shown.join(", "));
            }
            Plan::Limit { limit, offset, source } => {
                let _ = write!(
                    line,
                    "limit {} offset {offset}",
                    limit.map_or("ALL".into(), |l| l.to_string())
                );
                // A sort the limit reads (through projections) keeps only the top rows.
                let mut below = source.as_ref();
                while let Plan::Project { source, .. } = below {
                    below = source;
                }
                if limit.is_some() && matches!(below, Plan::Sort { .. }) {
                    line.push_str(" (top-k sort)");
                }
            }
            Plan::Distinct { on, .. } if on.is_empty() => line.push_str("distinct"),
            Plan::Distinct { on, .. } => {
                let keys: Vec<String> = on.iter().map(show).collect();
                let _ = write!(line, "distinct on [{}]", keys.join(", "));
            }
            Plan::Window { calls, .. } => {
                let shown: Vec<String> = calls.iter().map(WindowCall::explain).collect();
                let _ = write!(line, "window {}", shown.join(", "));
            }
            Plan::Join { kind, on, .. } => {
                let _ = write!(line, "{} join", kind.name());
                match on {
                    Some(on) => {
                        let _ = write!(line, " on {}", show(on));
                    }
                    None => line.push_str(" (cross)"),
                }
            }
            Plan::HashJoin { left, kind, left_keys, right_keys, on, .. } => {
                let shift = left.width();
                let keys: Vec<String> = left_keys
                    .iter()
                    .zip(right_keys)
                    .map(|(l, r)| {
                        let r = r.clone().map_columns(&|c| c + shift);
                        format!("{} = {}", show(l), show(&r))
                    })
                    .collect();
                let kind = kind.name();
                let _ = write!(line, "hash join {kind} on {}", keys.join(", "));
                if let Some(on) = on {
                    let _ = write!(line, " filter {}", show(on));
                }
            }
            Plan::LookupJoin {
                left,
                table,
                index,
                left_keys,
                right_keys,
                filter,
                kind,
                on,
                ..
            } => {
                let shift = left.width();
                let keys: Vec<String> = (left_keys.iter().zip(right_keys))
                    .map(|(l, r)| {
                        format!("{} = {}", show(l), show(&r.clone().map_columns(&|c| c + shift)))
                    })
                    .collect();
                let index = index.as_ref().map_or("primary", |i| i.name.as_str());
                let _ = write!(
                    line,
                    "lookup join {} {}@{index} on {}",
                    kind.name(),
                    table.name,
                    keys.join(", ")
                );
                for (what, e) in [("table filter", filter), ("filter", on)] {
                    if let Some(e) = e {
                        let _ = write!(line, " {what} {}", show(e));
                    }
                }
            }
            Plan::Apply { source, subqueries } => {
                let first = source.width();
                let _ = write!(line, "apply");
                out.push(format!("{pad}{line}{}", estimated(self)));
                source.explain_into(out, depth + 1, how);
                for (i, s) in subqueries.iter().enumerate() {
                    let test = match &s.test {
                        SubqueryTest::Scalar => "scalar".to_string(),
                        SubqueryTest::Exists => "exists".to_string(),
                        SubqueryTest::Quantified { operand, op, all } => format!(
                            "{} {} {}",
                            show(operand),
                            op.symbol(),
                            if *all { "ALL" } else { "ANY" }
                        ),
                    };
                    let params: Vec<String> = s.params.iter().map(show).collect();
                    let correlated = match params.is_empty() {
                        true => "uncorrelated".to_string(),
                        false => format!("outer values {}", params.join(", ")),
                    };
                    out.push(format!("{pad}  subquery #{} {test}, {correlated}", first + i));
                    s.plan.explain_into(out, depth + 2, how);
                    if let Some(hashed) = &s.hashed {
                        let keys: Vec<String> = (hashed.keys.iter().enumerate())
                            .map(|(k, param)| format!("#{} = $outer{param}", k + 1))
                            .collect();
                        out.push(format!("{pad}  or once, hashed on {}", keys.join(", ")));
                        hashed.plan.explain_into(out, depth + 2, how);
                    }
                }
                return;
            }
            Plan::Lateral { kind, params, on, .. } => {
                let shown: Vec<String> = params.iter().map(show).collect();
                let _ =
                    write!(line, "lateral {} join, outer values {}", kind.name(), shown.join(", "));
                if let Some(on) = on {
                    let _ = write!(line, " on {}", show(on));
                }
            }
            Plan::Recursive { all, .. } => {
                let _ = write!(line, "recursive union{}", if *all { " all" } else { "" });
            }
            Plan::WorkTable { .. } => line.push_str("working table"),
            Plan::Measure { .. } => unreachable!("explained above"),
            Plan::SetOp { op, all, .. } => {
                let name = format!("{op:?}").to_lowercase();
                let _ = write!(line, "{name}{}", if *all { " all" } else { "" });
            }
        }
        out.push(format!("{pad}{line}{}", estimated(self)));
        for child in self.children() {
            child.explain_into(out, depth + 1, how);
        }
    }

    /// This operator with `f` applied to each of its inputs (sources, both sides of a join or
    /// set operation, a recursive CTE's anchor and step, a LATERAL join's left side), not to
    /// the plans that run per outer value (subqueries, a LATERAL right side).
    pub fn map_inputs(self, mut f: impl FnMut(Plan) -> Plan) -> Plan {
        let mut sub = |p: Box<Plan>| Box::new(f(*p));
        match self {
            Plan::Filter { source, predicate } => Plan::Filter { source: sub(source), predicate },
            Plan::Project { source, exprs } => Plan::Project { source: sub(source), exprs },
            Plan::Aggregate { source, group_by, aggregates } => {
                Plan::Aggregate { source: sub(source), group_by, aggregates }
            }
            Plan::Sort { source, keys } => Plan::Sort { source: sub(source), keys },
            Plan::Limit { source, limit, offset } => {
                Plan::Limit { source: sub(source), limit, offset }
            }
            Plan::Distinct { source, on } => Plan::Distinct { source: sub(source), on },
            Plan::Window { source, calls } => Plan::Window { source: sub(source), calls },
            Plan::Measure { id, source } => Plan::Measure { id, source: sub(source) },
            Plan::Apply { source, subqueries } => Plan::Apply { source: sub(source), subqueries },
            Plan::Join { left, right, kind, on, right_width } => {
                let left = sub(left);
                Plan::Join { left, right: sub(right), kind, on, right_width }
            }
            Plan::HashJoin { left, right, kind, left_keys, right_keys, on, right_width } => {
                let left = sub(left);
                let right = sub(right);
                Plan::HashJoin { left, right, kind, left_keys, right_keys, on, right_width }
            }
            Plan::SetOp { op, all, left, right } => {
                let left = sub(left);
                Plan::SetOp { op, all, left, right: sub(right) }
            }
            Plan::Recursive { anchor, step, all } => {
                let anchor = sub(anchor);
                Plan::Recursive { anchor, step: sub(step), all }
            }
            Plan::Lateral { left, right, params, kind, on, right_width } => {
                Plan::Lateral { left: sub(left), right, params, kind, on, right_width }
            }
            Plan::LookupJoin {
                left,
                table,
                index,
                lookup,
                filter,
                kind,
                left_keys,
                right_keys,
                on,
            } => {
                let left = sub(left);
                Plan::LookupJoin {
                    left,
                    table,
                    index,
                    lookup,
                    filter,
                    kind,
                    left_keys,
                    right_keys,
                    on,
                }
            }
            leaf @ (Plan::Scan { .. }
            | Plan::IndexScan { .. }
            | Plan::Values { .. }
            | Plan::WorkTable { .. }) => leaf,
        }
    }

    pub(crate) fn children(&self) -> Vec<&Plan> {
        match self {
            Plan::Scan { .. }
            | Plan::IndexScan { .. }
            | Plan::Values { .. }
            | Plan::WorkTable { .. } => vec![],
            Plan::Recursive { anchor, step, .. } => vec![anchor, step],
            Plan::Filter { source, .. }
            | Plan::Project { source, .. }
            | Plan::Aggregate { source, .. }
            | Plan::Sort { source, .. }
            | Plan::Limit { source, .. }
            | Plan::Distinct { source, .. }
            | Plan::Window { source, .. }
            | Plan::Measure { source, .. }
            | Plan::LookupJoin { left: source, .. } => vec![source],
            Plan::Join { left, right, .. }
            | Plan::HashJoin { left, right, .. }
            | Plan::SetOp { left, right, .. }
            | Plan::Lateral { left, right, .. } => vec![left, right],
            Plan::Apply { source, .. } => vec![source],
        }
    }
}

/// The rows the planner estimates `plan` produces, as EXPLAIN shows them.
fn estimated(plan: &Plan) -> String {
    format!("  (est rows={:.0})", crate::optimizer_join::estimate(plan))
}

/// How EXPLAIN describes spans and measured operators.
struct Explaining<'a> {
    ranges: &'a dyn Fn(&Span) -> String,
    notes: &'a dyn Fn(usize) -> String,
}

/// A compact rendering of a bound expression for EXPLAIN: columns as `#i`.
pub fn show(e: &Expr) -> String {
    match e {
        Expr::Literal(v) => match v {
            crate::types::Value::Text(s) => format!("'{s}'"),
            other => other.to_string(),
        },
        Expr::Column(i) => format!("#{i}"),
        Expr::Not(e) => format!("NOT {}", show(e)),
        Expr::Neg(e) => format!("-{}", show(e)),
        Expr::Binary(op, a, b) => {
            format!("({} {} {})", show(a), op.symbol(), show(b))
        }
        Expr::IsNull(e, negated) => {
            format!("{} IS {}NULL", show(e), if *negated { "NOT " } else { "" })
        }
        Expr::IsDistinct(a, b, negated) => format!(
            "{} IS {}DISTINCT FROM {}",
            show(a),
            if *negated { "NOT " } else { "" },
            show(b)
        ),
        Expr::IsBool(e, want, negated) => format!(
            "{} IS {}{}",
            show(e),
            if *negated { "NOT " } else { "" },
            if *want { "TRUE" } else { "FALSE" }
        ),
        Expr::InList(e, list, negated) => {
            let items: Vec<String> = list.iter().map(show).collect();
            format!("{} {}IN ({})", show(e), if *negated { "NOT " } else { "" }, items.join(", "))
        }
        Expr::Like { expr, pattern, negated, case_insensitive } => format!(
            "{} {}{} {}",
            show(expr),
            if *negated { "NOT " } else { "" },
            if *case_insensitive { "ILIKE" } else { "LIKE" },
            show(pattern)
        ),
        Expr::Case { .. } => "CASE …".into(),
        Expr::Cast(e, t) => format!("{}::{t}", show(e)),
        Expr::Call(f, args) => {
            let args: Vec<String> = args.iter().map(show).collect();
            format!("{}({})", format!("{f:?}").to_lowercase(), args.join(", "))
        }
        Expr::Outer(slot, _) => format!("$outer{slot}"),
        Expr::Subquery(id, _) => format!("(subquery {id})"),
    }
}
