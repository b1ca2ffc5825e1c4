//! Planning window functions ([`crate::window`]).
//!
//! The planner collects the window calls of the select list and ORDER BY (each distinct
//! call once, by its SQL text), binds their arguments, PARTITION BY and ORDER BY against
//! the row they run over (the scanned row, or the grouped one after GROUP BY), and puts one
//! [`Plan::Window`] above HAVING. Binding the select list afterwards finds each call as a
//! column of the window operator's output ([`Windows`]).
//!
//! ```text
//!   SELECT a, rank() OVER w FROM t WINDOW w AS (ORDER BY a)     t: (k, a)
//!
//!   Window rank() over (order [#1])      → row (k, a, rank)
//!   Project #1, #2
//! ```
//!
//! Named windows follow PostgreSQL: `OVER w` uses w as defined; `OVER (w ORDER BY …)`
//! copies w's PARTITION BY and adds an ORDER BY (if w has none) and a frame, and may not
//! copy a window that has a frame. The frame checks and their SQLSTATEs are PostgreSQL's
//! (42P20, 42P10 for a column in an offset).

use sqlparser::ast;

use crate::binder::{
    Binder, FunctionArg, Scope, aggregate_call, aggregate_function, function_args, has_window,
    ident, object_name,
};
use crate::error::{Result, SqlError};
use crate::expr::Expr;
use crate::plan::{Plan, SortKey};
use crate::planner::{Planner, sort_direction};
use crate::types::DataType;
use crate::window::{Frame, FrameBound, FrameUnits, WindowCall, WindowFunction};

/// The window calls a query computes, as the binder finds them: call `j` (by SQL text) is
/// column `base + j` of the window operator's output.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    /// Where the calls' columns start: the width of the row they run over.
    pub base: usize,
    /// The calls, as SQL text.
    pub calls: Vec<String>,
}

/// The window calls in `exprs`, each once, in the order they first appear.
pub(crate) fn window_calls<'e>(
    exprs: impl IntoIterator<Item = &'e ast::Expr>,
) -> Vec<ast::Function> {
    let mut calls: Vec<ast::Function> = Vec::new();
    for e in exprs {
        crate::binder::visit_shallow(e, &mut |e| {
            if let ast::Expr::Function(f) = e
                && f.over.is_some()
                && !calls.iter().any(|c| c.to_string() == f.to_string())
            {
                calls.push(f.clone());
            }
        });
    }
    calls
}

impl Planner<'_> {
    /// Puts a [`Plan::Window`] computing `calls` over `plan`, whose rows have `input`'s
    /// types and bind with `binder`. Returns the plan, what the select list's binder needs,
    /// and the calls' types.
    pub(crate) fn plan_windows(
        &self,
        plan: Plan,
        calls: &[ast::Function],
        named: &[ast::NamedWindowDefinition],
        binder: Binder<'_>,
        input: &[Option<DataType>],
    ) -> Result<(Plan, Windows, Vec<Option<DataType>>)> {
        let bound: Vec<WindowCall> =
            calls.iter().map(|f| window_call(f, named, binder, input)).collect::<Result<_>>()?;
        if bound.iter().any(|c| {
            let mut found = false;
            c.clone().map_exprs(&mut |e| {
                found |= e.has_subquery();
                e
            });
            found
        }) {
            return Err(SqlError::NotSupported("subqueries in window function calls".into()));
        }
        let types = bound.iter().map(|c| c.static_type(input)).collect();
        let windows =
            Windows { base: input.len(), calls: calls.iter().map(|f| f.to_string()).collect() };
        Ok((Plan::Window { source: Box::new(plan), calls: bound }, windows, types))
    }
}

/// Binds one window call.
fn window_call(
    f: &ast::Function,
    named: &[ast::NamedWindowDefinition],
    binder: Binder<'_>,
    input: &[Option<DataType>],
) -> Result<WindowCall> {
    let name = object_name(&f.name)?;
    if f.null_treatment.is_some() {
        return Err(SqlError::NotSupported("IGNORE NULLS and RESPECT NULLS".into()));
    }
    if !f.within_group.is_empty() {
        return Err(SqlError::NotSupported(format!("WITHIN GROUP in {name}()")));
    }
    let over = f.over.as_ref().ok_or_else(|| SqlError::Internal(format!("{f} has no OVER")))?;
    let spec = resolve(over, named, named.len())?;
    let (args, distinct) = function_args(f)?;
    let argument = |e: &ast::Expr| {
        if has_window(e) {
            return Err(SqlError::Windowing("window function calls cannot be nested".into()));
        }
        binder.bind(e)
    };
    let star = matches!(args.as_slice(), [FunctionArg::Star]);
    let (function, bound_args) = if let Some(aggregate) = aggregate_function(&name, star) {
        if distinct {
            return Err(SqlError::NotSupported(
                "DISTINCT is not implemented for window functions".into(),
            ));
        }
        let a = aggregate_call(f, &name, aggregate, &args, false, argument)?;
        (WindowFunction::Aggregate(a), Vec::new())
    } else if let Some(function) = WindowFunction::lookup(&name, args.len()) {
        if f.filter.is_some() {
            return Err(SqlError::NotSupported(
                "FILTER is not implemented for non-aggregate window functions".into(),
            ));
        }
        if distinct {
            return Err(SqlError::NotSupported(
                "DISTINCT is not implemented for window functions".into(),
            ));
        }
        let bound = args
            .iter()
            .map(|a| match a {
                FunctionArg::Expr(e) => argument(e),
                FunctionArg::Star => {
                    Err(SqlError::Syntax(format!("{name}(*) is not a function call")))
                }
            })
            .collect::<Result<Vec<Expr>>>()?;
        (function, bound)
    } else if WindowFunction::is_window_function(&name) {
        return Err(SqlError::UndefinedFunction(format!("{name}() with {} arguments", args.len())));
    } else {
        return Err(SqlError::WrongObjectType(format!(
            "OVER specified, but {name} is not a window function nor an aggregate function"
        )));
    };

    let definition = |e: &ast::Expr| {
        if has_window(e) {
            return Err(SqlError::Windowing(
                "window functions are not allowed in window definitions".into(),
            ));
        }
        binder.bind(e)
    };
    let partition_by = spec.partition_by.iter().map(definition).collect::<Result<Vec<_>>>()?;
    let order_by = spec
        .order_by
        .iter()
        .map(|o| {
            let (ascending, nulls_first) = sort_direction(o)?;
            Ok(SortKey { expr: definition(&o.expr)?, ascending, nulls_first })
        })
        .collect::<Result<Vec<_>>>()?;
    let frame = match &spec.window_frame {
        None => Frame::default(),
        Some(frame) => bound_frame(frame, &order_by, input)?,
    };
    Ok(WindowCall { function, args: bound_args, partition_by, order_by, frame })
}

/// The window `over` names or spells out, with named windows (those of `named` before
/// `before`) filled in.
fn resolve(
    over: &ast::WindowType,
    named: &[ast::NamedWindowDefinition],
    before: usize,
) -> Result<ast::WindowSpec> {
    let lookup = |name: &ast::Ident| -> Result<ast::WindowSpec> {
        let wanted = ident(name);
        let position = named[..before]
            .iter()
            .position(|d| ident(&d.0) == wanted)
            .ok_or_else(|| SqlError::UndefinedWindow(wanted.clone()))?;
        match &named[position].1 {
            ast::NamedWindowExpr::NamedWindow(other) => {
                resolve(&ast::WindowType::NamedWindow(other.clone()), named, position)
            }
            ast::NamedWindowExpr::WindowSpec(spec) => {
                resolve(&ast::WindowType::WindowSpec(spec.clone()), named, position)
            }
        }
    };
    match over {
        ast::WindowType::NamedWindow(name) => lookup(name),
        ast::WindowType::WindowSpec(spec) => {
            let Some(base_name) = &spec.window_name else { return Ok(spec.clone()) };
            let base = lookup(base_name)?;
            let shown = ident(base_name);
            if !spec.partition_by.is_empty() {
                return Err(SqlError::Windowing(format!(
                    "cannot override PARTITION BY clause of window \"{shown}\""
                )));
            }
            if !spec.order_by.is_empty() && !base.order_by.is_empty() {
                return Err(SqlError::Windowing(format!(
                    "cannot override ORDER BY clause of window \"{shown}\""
                )));
            }
            if base.window_frame.is_some() {
                return Err(SqlError::Windowing(format!(
                    "cannot copy window \"{shown}\" because it has a frame clause"
                )));
            }
            Ok(ast::WindowSpec {
                window_name: None,
                partition_by: base.partition_by,
                order_by: if spec.order_by.is_empty() {
                    base.order_by
                } else {
                    spec.order_by.clone()
                },
                window_frame: spec.window_frame.clone(),
            })
        }
    }
}

/// Binds and checks a frame clause.
fn bound_frame(
    frame: &ast::WindowFrame,
    order_by: &[SortKey],
    input: &[Option<DataType>],
) -> Result<Frame> {
    let units = match frame.units {
        ast::WindowFrameUnits::Rows => FrameUnits::Rows,
        ast::WindowFrameUnits::Range => FrameUnits::Range,
        ast::WindowFrameUnits::Groups => FrameUnits::Groups,
    };
    let unit_name = format!("{}", frame.units);
    let key_type = order_by.first().and_then(|k| k.expr.static_type(input));
    let offset = |e: &ast::Expr| -> Result<Expr> {
        let empty = Scope::default();
        let bound = Binder::new(&empty).bind(e).map_err(|err| match err {
            SqlError::UndefinedColumn(_) | SqlError::MissingFromEntry(_) => {
                SqlError::InvalidReference(format!(
                    "argument of {unit_name} must not contain variables"
                ))
            }
            other => other,
        })?;
        let offset_type = bound.static_type(&[]);
        let fits = match (units, key_type, offset_type) {
            (_, _, None) => true,
            (FrameUnits::Rows | FrameUnits::Groups, _, Some(t)) => matches!(t, DataType::Int(_)),
            (FrameUnits::Range, None, Some(_)) => true,
            (FrameUnits::Range, Some(DataType::Int(_)), Some(t)) => matches!(t, DataType::Int(_)),
            (FrameUnits::Range, Some(DataType::Float(_)), Some(t)) => {
                matches!(t, DataType::Int(_) | DataType::Float(_))
            }
            (FrameUnits::Range, Some(DataType::Decimal(_)), Some(t)) => {
                matches!(t, DataType::Int(_) | DataType::Decimal(_))
            }
            (FrameUnits::Range, Some(_), Some(_)) => false,
        };
        if !fits {
            return Err(match units {
                FrameUnits::Range => SqlError::NotSupported(format!(
                    "RANGE with offset PRECEDING/FOLLOWING for column type {} and offset type {}",
                    key_type.map_or("unknown".into(), |t| t.to_string()),
                    offset_type.map_or("unknown".into(), |t| t.to_string()),
                )),
                _ => SqlError::DatatypeMismatch(format!(
                    "argument of {unit_name} must be type bigint, not type {}",
                    offset_type.map_or("unknown".into(), |t| t.to_string())
                )),
            });
        }
        Ok(bound)
    };
    let bound = |b: &ast::WindowFrameBound, start: bool| -> Result<FrameBound> {
        Ok(match b {
            ast::WindowFrameBound::CurrentRow => FrameBound::CurrentRow,
            ast::WindowFrameBound::Preceding(None) => FrameBound::UnboundedPreceding,
            ast::WindowFrameBound::Following(None) => FrameBound::UnboundedFollowing,
            ast::WindowFrameBound::Preceding(Some(e)) => FrameBound::Preceding(offset(e)?),
            ast::WindowFrameBound::Following(Some(e)) => FrameBound::Following(offset(e)?),
        })
        .and_then(|bound| match (&bound, start) {
            (FrameBound::UnboundedFollowing, true) => {
                Err(SqlError::Windowing("frame start cannot be UNBOUNDED FOLLOWING".into()))
            }
            (FrameBound::UnboundedPreceding, false) => {
                Err(SqlError::Windowing("frame end cannot be UNBOUNDED PRECEDING".into()))
            }
            _ => Ok(bound),
        })
    };
    let start = bound(&frame.start_bound, true)?;
    let end = match &frame.end_bound {
        None => FrameBound::CurrentRow,
        Some(b) => bound(b, false)?,
    };
    match (&start, &end) {
        (FrameBound::CurrentRow, FrameBound::Preceding(_)) => {
            return Err(SqlError::Windowing(
                "frame starting from current row cannot have preceding rows".into(),
            ));
        }
        (FrameBound::Following(_), FrameBound::Preceding(_) | FrameBound::CurrentRow) => {
            return Err(SqlError::Windowing(
                "frame starting from following row cannot have preceding rows".into(),
            ));
        }
        _ => {}
    }
    let has_offset =
        |b: &FrameBound| matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_));
    if units == FrameUnits::Groups && order_by.is_empty() {
        return Err(SqlError::Windowing("GROUPS mode requires an ORDER BY clause".into()));
    }
    if units == FrameUnits::Range && (has_offset(&start) || has_offset(&end)) && order_by.len() != 1
    {
        return Err(SqlError::Windowing(
            "RANGE with offset PRECEDING/FOLLOWING requires exactly one ORDER BY column".into(),
        ));
    }
    Ok(Frame { units, start, end })
}
