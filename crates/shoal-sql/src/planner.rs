//! Planning queries: from the parser's `SELECT` to a [`Plan`].
//!
//! A SELECT is planned in SQL's logical order:
//!
//! ```text
//!   FROM (scans, joins) → WHERE (filter) → GROUP BY / aggregates → HAVING (filter)
//!     → window functions → projection (+ hidden ORDER BY columns) → DISTINCT
//!     → ORDER BY → LIMIT/OFFSET → drop the hidden columns
//! ```
//!
//! `DISTINCT ON (keys)` sorts first (by the ORDER BY, whose leading items must be the
//! keys, then by the keys) and keeps each key's first row, as PostgreSQL does.
//!
//! ORDER BY may name an output column (by alias or position) or any expression over the
//! input; the latter is computed as a hidden extra column of the projection, sorted on, then
//! dropped. NULLs sort last ascending and first descending, as in PostgreSQL, unless `NULLS
//! FIRST/LAST` says otherwise. Planning ends with [`crate::optimizer`], which moves filters
//! into scans and turns predicates on key columns into key spans.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use sqlparser::ast;

use crate::binder::{Binder, Grouping, Scope, aggregate_function, ident, object_name, output_name};
use crate::catalog::{Snapshot, TableDescriptor};
use crate::correlated::OuterScope;
use crate::error::{Result, SqlError};
use crate::expr::{EvalContext, Expr};
use crate::plan::{Column, JoinKind, Plan, SortKey, SubqueryPlan};
use crate::planner_cte::CteDef;
use crate::rowcodec::RowCodec;
use crate::types::{DataType, Value};

/// A planned query: the plan and its output columns.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// The visible output columns.
    pub columns: Vec<Column>,
}

/// Plans queries against one catalog snapshot.
pub struct Planner<'a> {
    /// The catalog.
    pub catalog: &'a Snapshot,
    /// For constant folding (LIMIT values, `now()` in them).
    pub ctx: EvalContext,
    /// When planning a subquery: the query around it ([`crate::correlated`]).
    pub(crate) outer: Option<&'a OuterScope<'a>>,
    /// Subqueries bound in clauses and not yet hoisted into an apply, by placeholder.
    pub(crate) subqueries: RefCell<Vec<Option<SubqueryPlan>>>,
    /// The CTEs in scope, innermost last ([`crate::planner_cte`]).
    pub(crate) ctes: RefCell<Vec<(String, CteDef)>>,
    /// The ids of the tables and views read, shared with the planners of subqueries and
    /// views: what a view created from the query depends on.
    pub(crate) relations: Rc<RefCell<Vec<u64>>>,
}

/// What a SELECT's FROM … HAVING and window functions produce, for the projection, ORDER BY
/// and LIMIT to finish.
pub(crate) struct Selected {
    /// The plan so far.
    plan: Plan,
    /// The ungrouped columns.
    scope: Scope,
    /// The projection: expressions over the plan's rows, and the output columns.
    items: Vec<(Expr, Column)>,
    /// Set after GROUP BY or aggregates.
    grouping: Option<Grouping>,
    /// Set when window functions are computed.
    windows: Option<crate::planner_window::Windows>,
    /// DISTINCT or DISTINCT ON.
    distinct: SelectDistinct,
}

/// A SELECT's DISTINCT clause.
pub(crate) enum SelectDistinct {
    /// None (or ALL).
    No,
    /// DISTINCT: whole rows.
    Rows,
    /// DISTINCT ON (keys).
    On(Vec<ast::Expr>),
}

/// Rejects a clause Shoal does not implement.
fn unsupported(present: bool, what: &str) -> Result<()> {
    if present { Err(SqlError::NotSupported(what.to_string())) } else { Ok(()) }
}

impl<'a> Planner<'a> {
    /// A planner of top-level queries over `catalog`.
    pub fn new(catalog: &'a Snapshot, ctx: EvalContext) -> Self {
        Planner {
            catalog,
            ctx,
            outer: None,
            subqueries: RefCell::default(),
            ctes: RefCell::default(),
            relations: Rc::default(),
        }
    }

    /// The ids of the tables and views the queries planned so far read.
    pub fn relations(&self) -> Vec<u64> {
        let mut ids = self.relations.borrow().clone();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// A planner of a subquery of `parent`'s query, inside `outer`.
    pub(crate) fn nested(parent: &Planner<'a>, outer: &'a OuterScope<'a>) -> Self {
        let (subqueries, ctes) = (RefCell::default(), RefCell::default());
        Planner {
            catalog: parent.catalog,
            ctx: parent.ctx,
            outer: Some(outer),
            subqueries,
            ctes,
            relations: parent.relations.clone(),
        }
    }

    /// A binder for a clause of this planner's query.
    pub(crate) fn binder<'b>(
        &'b self,
        scope: &'b Scope,
        grouping: Option<&'b Grouping>,
    ) -> Binder<'b> {
        Binder { scope, grouping, planner: Some(self), windows: None }
    }

    /// Plans a query.
    pub fn query(&self, query: &ast::Query) -> Result<Planned> {
        let Some(with) = &query.with else { return self.query_body(query) };
        // The CTEs are visible to this query (and its subqueries) only.
        let before = self.ctes.borrow().len();
        let planned = self.define_ctes(with).and_then(|()| self.query_body(query));
        self.ctes.borrow_mut().truncate(before);
        planned
    }

    /// Plans a query once its CTEs are defined.
    fn query_body(&self, query: &ast::Query) -> Result<Planned> {
        unsupported(query.fetch.is_some(), "FETCH")?;
        unsupported(!query.locks.is_empty(), "FOR UPDATE / FOR SHARE")?;
        unsupported(query.for_clause.is_some(), "FOR clauses")?;
        unsupported(query.settings.is_some(), "SETTINGS")?;
        unsupported(query.format_clause.is_some(), "FORMAT")?;
        unsupported(!query.pipe_operators.is_empty(), "pipe operators")?;
        let order_by = match &query.order_by {
            None => &[][..],
            Some(ast::OrderBy {
                kind: ast::OrderByKind::Expressions(exprs),
                interpolate: None,
            }) => exprs.as_slice(),
            Some(other) => return Err(SqlError::NotSupported(format!("ORDER BY {other}"))),
        };
        let (limit, offset) = self.limit(query.limit_clause.as_ref())?;
        self.body(&query.body, order_by, limit, offset)
    }

    /// Plans a query's body, then ORDER BY and LIMIT over it.
    pub(crate) fn body(
        &self,
        body: &ast::SetExpr,
        order_by: &[ast::OrderByExpr],
        limit: Option<u64>,
        offset: u64,
    ) -> Result<Planned> {
        let selected = match body {
            ast::SetExpr::Select(select) => self.select_input(select, order_by)?,
            ast::SetExpr::Values(values) => {
                let (plan, columns) = self.values(values)?;
                let items =
                    (0..columns.len()).map(|i| (Expr::Column(i), columns[i].clone())).collect();
                Selected::plain(plan, Scope { columns }, items)
            }
            ast::SetExpr::Query(inner) if order_by.is_empty() && limit.is_none() && offset == 0 => {
                return self.query(inner);
            }
            ast::SetExpr::Query(inner) => self.derived(self.query(inner)?),
            ast::SetExpr::SetOperation { left, op, set_quantifier, right } => {
                self.derived(self.set_operation(left, *op, *set_quantifier, right)?)
            }
            other => return Err(SqlError::NotSupported(format!("query {other}"))),
        };
        self.finish(selected, order_by, limit, offset)
    }

    /// A planned query as the input of ORDER BY and LIMIT: its columns, unqualified.
    fn derived(&self, planned: Planned) -> Selected {
        let columns: Vec<Column> =
            planned.columns.into_iter().map(|c| Column { table: None, ..c }).collect();
        let items = columns.iter().enumerate().map(|(i, c)| (Expr::Column(i), c.clone())).collect();
        Selected::plain(planned.plan, Scope { columns }, items)
    }

    /// Plans FROM, WHERE, GROUP BY, HAVING and window functions, and binds the projection.
    fn select_input(
        &self,
        select: &ast::Select,
        order_by: &[ast::OrderByExpr],
    ) -> Result<Selected> {
        unsupported(select.top.is_some(), "TOP")?;
        unsupported(select.into.is_some(), "SELECT INTO")?;
        unsupported(!select.lateral_views.is_empty(), "LATERAL VIEW")?;
        unsupported(select.prewhere.is_some(), "PREWHERE")?;
        unsupported(!select.connect_by.is_empty(), "CONNECT BY")?;
        unsupported(!select.cluster_by.is_empty(), "CLUSTER BY")?;
        unsupported(!select.distribute_by.is_empty(), "DISTRIBUTE BY")?;
        unsupported(!select.sort_by.is_empty(), "SORT BY")?;
        unsupported(select.qualify.is_some(), "QUALIFY")?;
        unsupported(select.exclude.is_some(), "EXCLUDE")?;
        let distinct = match &select.distinct {
            None | Some(ast::Distinct::All) => SelectDistinct::No,
            Some(ast::Distinct::Distinct) => SelectDistinct::Rows,
            Some(ast::Distinct::On(keys)) => SelectDistinct::On(keys.clone()),
        };
        let windowed = |e: &ast::Expr, clause: &str| {
            if crate::binder::has_window(e) {
                return Err(SqlError::Windowing(format!(
                    "window functions are not allowed in {clause}"
                )));
            }
            Ok(())
        };

        let (mut plan, scope) = self.from(&select.from)?;
        if let Some(selection) = &select.selection {
            windowed(selection, "WHERE")?;
            if crate::binder::has_aggregate(selection) {
                return Err(SqlError::Grouping(
                    "aggregate functions are not allowed in WHERE".into(),
                ));
            }
            let predicate = self.binder(&scope, None).bind(selection)?;
            plan = self.filter(plan, predicate)?;
        }

        let grouping_sets = match &select.group_by {
            ast::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
                for e in exprs {
                    windowed(e, "GROUP BY")?;
                }
                crate::planner_grouping::GroupingSets::expand(exprs, |e| {
                    self.group_key(e, &select.projection, &scope)
                })?
            }
            other => return Err(SqlError::NotSupported(format!("{other}"))),
        };
        let group_exprs = &grouping_sets.keys;
        let mut aggregate_calls: Vec<ast::Function> = Vec::new();
        let mut grouping_calls: Vec<ast::Function> = Vec::new();
        let mut collect = |e: &ast::Expr| {
            crate::binder::visit_shallow(e, &mut |e| {
                if let ast::Expr::Function(f) = e
                    && f.over.is_none()
                    && let Ok(name) = object_name(&f.name)
                {
                    if aggregate_function(&name, false).is_some() {
                        aggregate_calls.push(f.clone());
                    } else if name == "grouping" {
                        grouping_calls.push(f.clone());
                    }
                }
            });
        };
        for item in &select.projection {
            if let ast::SelectItem::UnnamedExpr(e)
            | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
            {
                collect(e);
            }
        }
        if let Some(having) = &select.having {
            collect(having);
        }
        for o in order_by {
            collect(&o.expr);
        }
        let aggregating = !group_exprs.is_empty()
            || grouping_sets.explicit
            || !aggregate_calls.is_empty()
            || !grouping_calls.is_empty()
            || select.having.is_some();

        let mut grouping = None;
        // The types of a grouped row's columns: the group keys', then the aggregates'.
        let mut grouped_types = Vec::new();
        if aggregating {
            let binder = self.binder(&scope, None);
            let mut g = Grouping::default();
            let mut group_by = Vec::new();
            for e in group_exprs {
                g.keys.push(e.to_string());
                let key = binder.bind(e)?;
                g.bound.push(key.clone());
                group_by.push(key);
            }
            for f in &aggregate_calls {
                let text = ast::Expr::Function(f.clone()).to_string();
                if g.calls.iter().any(|(t, _)| *t == text) {
                    continue;
                }
                let aggregate = binder
                    .aggregate(f)?
                    .ok_or_else(|| SqlError::Internal(format!("{f} is no aggregate")))?;
                g.calls.push((text, aggregate));
            }
            let mut grouping_args = Vec::new();
            for f in &grouping_calls {
                let text = ast::Expr::Function(f.clone()).to_string();
                if !g.groupings.contains(&text) {
                    grouping_args.push(crate::planner_grouping::grouping_args(f, &g, &binder)?);
                    g.groupings.push(text);
                }
            }
            let ungrouped: Vec<_> = scope.columns.iter().map(|c| c.data_type).collect();
            grouped_types = group_by
                .iter()
                .map(|e| e.static_type(&ungrouped))
                .chain(g.calls.iter().map(|(_, a)| a.static_type(&ungrouped)))
                .chain(g.groupings.iter().map(|_| Some(DataType::Int(4))))
                .collect();
            let in_arguments = g.calls.iter().any(|(_, a)| {
                [&a.arg, &a.separator, &a.filter].into_iter().flatten().any(Expr::has_subquery)
            });
            if group_by.iter().any(Expr::has_subquery) || in_arguments {
                return Err(SqlError::NotSupported(
                    "subqueries in GROUP BY or in aggregate arguments".into(),
                ));
            }
            let aggregates = g.calls.iter().map(|(_, a)| a.clone()).collect();
            plan = if grouping_sets.explicit || !grouping_args.is_empty() {
                self.grouping_plan(
                    plan,
                    &group_by,
                    &grouping_sets.sets,
                    aggregates,
                    &grouping_args,
                )?
            } else {
                Plan::Aggregate { source: Box::new(plan), group_by, aggregates }
            };
            if let Some(having) = &select.having {
                windowed(having, "HAVING")?;
                let predicate = self.binder(&scope, Some(&g)).bind(having)?;
                plan = self.filter(plan, predicate)?;
            }
            grouping = Some(g);
        }

        // Output types are known for expressions over the row: the scanned one, or the
        // grouped one (group keys, then aggregates), then the window functions'.
        let mut input_types: Vec<Option<DataType>> = match grouping {
            None => scope.columns.iter().map(|c| c.data_type).collect(),
            Some(_) => grouped_types,
        };
        let projected = select.projection.iter().filter_map(|item| match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                Some(e)
            }
            _ => None,
        });
        let calls =
            crate::planner_window::window_calls(projected.chain(order_by.iter().map(|o| &o.expr)));
        let mut windows = None;
        if !calls.is_empty() {
            let binder = self.binder(&scope, grouping.as_ref());
            let (windowed, w, types) =
                self.plan_windows(plan, &calls, &select.named_window, binder, &input_types)?;
            plan = windowed;
            input_types.extend(types);
            windows = Some(w);
        }
        let binder = Binder { windows: windows.as_ref(), ..self.binder(&scope, grouping.as_ref()) };
        let typed = |e: &Expr| e.static_type(&input_types);
        let mut items = Vec::new();
        for item in &select.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    let name = output_name(e);
                    let bound = binder.bind(e)?;
                    let data_type = typed(&bound);
                    items.push((bound, Column { table: None, name, data_type, hidden: false }));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let bound = binder.bind(expr)?;
                    let data_type = typed(&bound);
                    items.push((
                        bound,
                        Column { table: None, name: ident(alias), data_type, hidden: false },
                    ));
                }
                ast::SelectItem::Wildcard(options) => {
                    wildcard_options(options)?;
                    if grouping.is_some() {
                        return Err(SqlError::Grouping(
                            "SELECT * with GROUP BY or aggregates".into(),
                        ));
                    }
                    if scope.columns.is_empty() {
                        return Err(SqlError::Syntax(
                            "SELECT * with no tables specified is not valid".into(),
                        ));
                    }
                    for (i, c) in scope.columns.iter().enumerate().filter(|(_, c)| !c.hidden) {
                        items.push((Expr::Column(i), c.clone()));
                    }
                }
                ast::SelectItem::QualifiedWildcard(kind, options) => {
                    wildcard_options(options)?;
                    let table = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(name) => {
                            object_name(name)?
                        }
                        other => return Err(SqlError::NotSupported(format!("{other}.*"))),
                    };
                    if grouping.is_some() {
                        return Err(SqlError::Grouping("t.* with GROUP BY or aggregates".into()));
                    }
                    let before = items.len();
                    for (i, c) in scope.columns.iter().enumerate() {
                        if !c.hidden && c.table.as_deref() == Some(table.as_str()) {
                            items.push((Expr::Column(i), c.clone()));
                        }
                    }
                    if items.len() == before {
                        return Err(SqlError::UndefinedTable(table));
                    }
                }
                other => return Err(SqlError::NotSupported(format!("select item {other}"))),
            }
        }
        Ok(Selected { plan, scope, items, grouping, windows, distinct })
    }

    /// Adds projection, DISTINCT, ORDER BY and LIMIT above `selected`.
    fn finish(
        &self,
        selected: Selected,
        order_by: &[ast::OrderByExpr],
        limit: Option<u64>,
        offset: u64,
    ) -> Result<Planned> {
        let Selected { plan: input, scope, items, grouping, windows, distinct } = selected;
        let binder = Binder { windows: windows.as_ref(), ..self.binder(&scope, grouping.as_ref()) };
        let visible = items.len();
        let (mut exprs, columns): (Vec<Expr>, Vec<Column>) = items.into_iter().unzip();
        let mut keys = Vec::new();
        for o in order_by {
            let (ascending, nulls_first) = sort_direction(o)?;
            let may_add = !matches!(distinct, SelectDistinct::Rows);
            let position =
                output_position(&o.expr, &columns, &mut exprs, &binder, may_add, "ORDER BY")?;
            keys.push(SortKey { expr: Expr::Column(position), ascending, nulls_first });
        }
        let mut distinct_on = Vec::new();
        if let SelectDistinct::On(on) = &distinct {
            for e in on {
                let position =
                    output_position(e, &columns, &mut exprs, &binder, true, "DISTINCT ON")?;
                distinct_on.push(Expr::Column(position));
            }
            // The ORDER BY must start with the DISTINCT ON keys (in any order), so that each
            // key's first row is the one the ORDER BY wants; the keys not in it sort next.
            let leading = keys.iter().take(distinct_on.len());
            if leading.clone().any(|k| !distinct_on.contains(&k.expr)) {
                return Err(SqlError::InvalidReference(
                    "SELECT DISTINCT ON expressions must match initial ORDER BY expressions".into(),
                ));
            }
            for key in &distinct_on {
                if !keys.iter().any(|k| k.expr == *key) {
                    keys.push(SortKey { expr: key.clone(), ascending: true, nulls_first: false });
                }
            }
        }
        let width = exprs.len();
        let input = self.hoist(input, &mut exprs)?;
        let mut plan = Plan::Project { source: Box::new(input), exprs };
        if matches!(distinct, SelectDistinct::Rows) {
            plan = Plan::Distinct { source: Box::new(plan), on: Vec::new() };
        }
        if !keys.is_empty() {
            plan = Plan::Sort { source: Box::new(plan), keys };
        }
        if !distinct_on.is_empty() {
            plan = Plan::Distinct { source: Box::new(plan), on: distinct_on };
        }
        if limit.is_some() || offset > 0 {
            plan = Plan::Limit { source: Box::new(plan), limit, offset };
        }
        if width > visible {
            plan = Plan::Project {
                source: Box::new(plan),
                exprs: (0..visible).map(Expr::Column).collect(),
            };
        }
        Ok(Planned { plan: crate::optimizer::optimize(plan), columns })
    }

    fn limit(&self, clause: Option<&ast::LimitClause>) -> Result<(Option<u64>, u64)> {
        let constant = |e: &ast::Expr, what: &str| -> Result<u64> {
            let bound = Binder::new(&Scope::default()).bind(e)?;
            match bound.eval(&[], &self.ctx)? {
                Value::Int(n) if n >= 0 => Ok(n as u64),
                other => Err(SqlError::DatatypeMismatch(format!(
                    "{what} must be a non-negative integer, not {other}"
                ))),
            }
        };
        match clause {
            None => Ok((None, 0)),
            Some(ast::LimitClause::LimitOffset { limit, offset, limit_by }) => {
                unsupported(!limit_by.is_empty(), "LIMIT BY")?;
                let limit = limit.as_ref().map(|l| constant(l, "LIMIT")).transpose()?;
                let offset = offset.as_ref().map(|o| constant(&o.value, "OFFSET")).transpose()?;
                Ok((limit, offset.unwrap_or(0)))
            }
            Some(other) => Err(SqlError::NotSupported(format!("{other}"))),
        }
    }

    fn values(&self, values: &ast::Values) -> Result<(Plan, Vec<Column>)> {
        // Rows read no table, but may read an outer query's columns (LATERAL, a subquery).
        let empty = Scope::default();
        let binder = self.binder(&empty, None);
        let rows: Vec<Vec<Expr>> = values
            .rows
            .iter()
            .map(|row| row.iter().map(|e| binder.bind(e)).collect::<Result<Vec<_>>>())
            .collect::<Result<_>>()?;
        if rows.iter().flatten().any(Expr::has_subquery) {
            return Err(SqlError::NotSupported("subqueries in VALUES".into()));
        }
        let width = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != width) {
            return Err(SqlError::Syntax("VALUES lists must all be the same length".into()));
        }
        let columns = (1..=width)
            .map(|i| Column {
                table: None,
                name: format!("column{i}"),
                data_type: None,
                hidden: false,
            })
            .collect();
        Ok((Plan::Values { rows, width }, columns))
    }

    /// Plans the FROM clause: comma-separated items are cross joins.
    pub(crate) fn from(&self, from: &[ast::TableWithJoins]) -> Result<(Plan, Scope)> {
        let mut result: Option<(Plan, Scope)> = None;
        for item in from {
            // A LATERAL item reads the items before it: it joins them directly.
            let mut joined = match result.take() {
                Some(left)
                    if item.joins.is_empty()
                        || crate::planner_lateral::lateral_subquery(&item.relation).is_some() =>
                {
                    self.comma_join(left, &item.relation)?
                }
                Some(left) => cross(left, self.table_factor(&item.relation)?),
                None => self.table_factor(&item.relation)?,
            };
            for join in &item.joins {
                joined = self.join(joined, join)?;
            }
            result = Some(joined);
        }
        Ok(result.unwrap_or((Plan::Values { rows: vec![vec![]], width: 0 }, Scope::default())))
    }

    pub(crate) fn table_factor(&self, factor: &ast::TableFactor) -> Result<(Plan, Scope)> {
        match factor {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                with_hints,
                version: None,
                partitions,
                ..
            } if with_hints.is_empty() && partitions.is_empty() => {
                let name = object_name(name)?;
                let label = alias.as_ref().map_or(name.clone(), |a| ident(&a.name));
                if let Some((plan, mut scope)) = self.cte(&name, &label) {
                    if let Some(a) = alias {
                        rename_columns(&mut scope, &a.columns, &label)?;
                    }
                    return Ok((plan, scope));
                }
                if let Some(view) = self.catalog.lookup_view(&name)? {
                    return self.view_scan(&view, alias.as_ref());
                }
                let table = self.catalog.table(&name)?;
                self.relations.borrow_mut().push(table.id);
                let label = alias.as_ref().map_or(table.name.clone(), |a| ident(&a.name));
                let (plan, mut scope) = table_scan(table, &label);
                if let Some(a) = alias {
                    rename_columns(&mut scope, &a.columns, &label)?;
                }
                Ok((plan, scope))
            }
            // LATERAL before any other item has nothing to read: a plain derived table.
            ast::TableFactor::Derived { subquery, alias, sample: None, .. } => {
                let planned = self.query(subquery)?;
                let label = alias.as_ref().map(|a| ident(&a.name));
                let mut scope = Scope { columns: planned.columns };
                if let Some(a) = alias {
                    rename_columns(&mut scope, &a.columns, &ident(&a.name))?;
                }
                for c in &mut scope.columns {
                    c.table = label.clone();
                }
                Ok((planned.plan, scope))
            }
            ast::TableFactor::NestedJoin { table_with_joins, alias: None } => {
                let mut joined = self.table_factor(&table_with_joins.relation)?;
                for join in &table_with_joins.joins {
                    joined = self.join(joined, join)?;
                }
                Ok(joined)
            }
            other => Err(SqlError::NotSupported(format!("FROM {other}"))),
        }
    }
}

/// Where ORDER BY (or DISTINCT ON) item `e` is among the projection's `exprs`: an output
/// column by position (`1`) or by name, or an expression over the input, added to `exprs` as
/// a hidden column unless it is there already (or `may_add` is false: SELECT DISTINCT).
fn output_position(
    e: &ast::Expr,
    columns: &[Column],
    exprs: &mut Vec<Expr>,
    binder: &Binder<'_>,
    may_add: bool,
    clause: &str,
) -> Result<usize> {
    let visible = columns.len();
    Ok(match e {
        ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
            let ast::Value::Number(n, _) = &v.value else { unreachable!() };
            let p: usize = n.parse().map_err(|_| SqlError::Syntax(format!("{clause} {n}")))?;
            if p == 0 || p > visible {
                return Err(SqlError::InvalidReference(format!(
                    "{clause} position {n} is not in select list"
                )));
            }
            p - 1
        }
        ast::Expr::Identifier(id)
            if columns.iter().filter(|c| c.name == ident(id)).count() == 1 =>
        {
            columns.iter().position(|c| c.name == ident(id)).expect("counted")
        }
        e => {
            let bound = binder.bind(e)?;
            match exprs.iter().position(|x| *x == bound) {
                Some(p) => p,
                None if !may_add => {
                    return Err(SqlError::InvalidReference(
                        "for SELECT DISTINCT, ORDER BY expressions must appear in select list"
                            .into(),
                    ));
                }
                None => {
                    exprs.push(bound);
                    exprs.len() - 1
                }
            }
        }
    })
}

impl Selected {
    /// A query's rows as they are: no grouping, windows or DISTINCT.
    fn plain(plan: Plan, scope: Scope, items: Vec<(Expr, Column)>) -> Selected {
        Selected { plan, scope, items, grouping: None, windows: None, distinct: SelectDistinct::No }
    }
}

/// An ORDER BY item's direction: (ascending, NULLs first). NULLs sort last ascending and
/// first descending unless NULLS FIRST / LAST says otherwise.
pub(crate) fn sort_direction(o: &ast::OrderByExpr) -> Result<(bool, bool)> {
    if o.with_fill.is_some() {
        return Err(SqlError::NotSupported("WITH FILL".into()));
    }
    let ascending = match &o.options.sort {
        None | Some(ast::OrderBySort::Asc) => true,
        Some(ast::OrderBySort::Desc) => false,
        Some(other) => return Err(SqlError::NotSupported(format!("ORDER BY {other:?}"))),
    };
    Ok((ascending, o.options.nulls_first.unwrap_or(!ascending)))
}

/// Renames the visible columns of `scope` by a FROM alias's column list (`t AS x(a, b)`):
/// the first ones, in order; more names than columns is 42P10.
pub(crate) fn rename_columns(
    scope: &mut Scope,
    names: &[ast::TableAliasColumnDef],
    label: &str,
) -> Result<()> {
    let available = scope.columns.iter().filter(|c| !c.hidden).count();
    if names.len() > available {
        return Err(SqlError::InvalidReference(format!(
            "table \"{label}\" has {available} columns available but {} columns specified",
            names.len()
        )));
    }
    for (column, name) in scope.columns.iter_mut().filter(|c| !c.hidden).zip(names) {
        column.name = ident(&name.name);
    }
    Ok(())
}

fn wildcard_options(options: &ast::WildcardAdditionalOptions) -> Result<()> {
    let plain = options.opt_ilike.is_none()
        && options.opt_exclude.is_none()
        && options.opt_except.is_none()
        && options.opt_replace.is_none()
        && options.opt_rename.is_none();
    if plain { Ok(()) } else { Err(SqlError::NotSupported(format!("* {options}"))) }
}

pub(crate) fn cross(left: (Plan, Scope), right: (Plan, Scope)) -> (Plan, Scope) {
    let right_width = right.1.columns.len();
    let mut scope = left.1;
    scope.columns.extend(right.1.columns);
    let plan = Plan::Join {
        left: Box::new(left.0),
        right: Box::new(right.0),
        kind: JoinKind::Inner,
        on: None,
        right_width,
    };
    (plan, scope)
}

/// A full scan of `table`, its columns labelled `label`.
pub fn table_scan(table: Arc<TableDescriptor>, label: &str) -> (Plan, Scope) {
    let columns = table
        .columns
        .iter()
        .map(|c| Column {
            table: Some(label.to_string()),
            name: c.name.clone(),
            data_type: Some(c.data_type),
            hidden: c.hidden,
        })
        .collect();
    let spans = vec![RowCodec::default().index_span(&table, &table.primary)];
    (Plan::Scan { table, spans, filter: None }, Scope { columns })
}
