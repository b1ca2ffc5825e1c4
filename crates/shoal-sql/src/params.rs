//! Placeholders: a statement prepared once and run with different values (`$1`, `$2` …).
//!
//! The PostgreSQL extended protocol sends a statement's text once (Parse), asks what it takes
//! and returns (Describe), then runs it with values (Bind, Execute). Shoal keeps the parsed
//! statement with its placeholders in a [`Prepared`], and on each run replaces every
//! placeholder by its value as a typed literal before the statement takes the ordinary path
//! (bind, plan, execute), as subquery results are inlined:
//!
//! ```text
//!   Parse    SELECT v FROM kv WHERE k = $1 LIMIT $2
//!   types    $1 INT8 (compared with kv.k), $2 INT8 (a LIMIT)   → ParameterDescription
//!   columns  v INT8 (planned with $1, $2 as typed NULLs)       → RowDescription
//!   Bind     ['7', '10']
//!   runs     SELECT v FROM kv WHERE k = CAST('7' AS BIGINT) LIMIT CAST('10' AS BIGINT)
//! ```
//!
//! # Parameter types
//!
//! A type the client declares wins. Otherwise the type comes from where the placeholder
//! stands: compared with, added to or listed against a typed expression (a column, a cast, a
//! number) it takes that expression's type; as an INSERT value or an UPDATE assignment, the
//! target column's; in LIMIT or OFFSET, INT8; in a cast, the cast's; in LIKE or `||`, TEXT;
//! under AND, OR or NOT, BOOL. A placeholder that nothing types is TEXT, and its value goes
//! in as an untyped string literal, which the statement then reads as it would read `'…'`
//! written by hand (PostgreSQL would refuse some of these with 42P18).
//!
//! # Result columns
//!
//! A query is planned with each placeholder a NULL of its type, and subqueries a NULL of
//! their column's type, without reading any rows. RETURNING and the SHOW statements report
//! their columns too; EXPLAIN and SHOW RANGES report none (NoData) although they return rows.
//!
//! # Hazards
//!
//! The catalog may change between Parse and Execute: execution binds the statement afresh,
//! so it sees the new schema, but the columns described earlier may no longer match (as in
//! PostgreSQL before it re-plans a cached statement).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{self, Statement};

use crate::catalog::{Snapshot, TableDescriptor};
use crate::error::{Result, SqlError};
use crate::expr::EvalContext;
use crate::plan::Column;
use crate::planner::Planner;
use crate::syntax::Parsed;
use crate::types::{DataType, Value};

/// A statement with placeholders, ready to run with values ([`crate::Session::prepare`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The statement, placeholders and all; None for an empty query.
    parsed: Option<Parsed>,
    /// Each parameter's type ($1 first): declared by the client, inferred, or TEXT.
    pub param_types: Vec<DataType>,
    /// Whether a parameter's type is known (declared or inferred), rather than TEXT by default.
    typed: Vec<bool>,
    /// The columns of the rows the statement returns; None for one without rows.
    pub columns: Option<Vec<Column>>,
}

impl Prepared {
    /// The statement to run with `params` (one value per parameter, already of the
    /// parameter's type or text to be read as it): each placeholder replaced by its value.
    /// None for an empty query.
    pub fn bind(&self, params: &[Value]) -> Result<Option<Parsed>> {
        if params.len() != self.param_types.len() {
            return Err(SqlError::ProtocolViolation(format!(
                "bind message supplies {} parameters, but prepared statement requires {}",
                params.len(),
                self.param_types.len()
            )));
        }
        let Some(parsed) = &self.parsed else { return Ok(None) };
        let mut parsed = parsed.clone();
        let _ = visit_mut(&mut parsed, |e| {
            if let Some(n) = placeholder(e) {
                // Numbers were checked when the statement was prepared.
                let i = n - 1;
                *e = if self.typed[i] {
                    crate::subquery::literal(&params[i], Some(&self.param_types[i]))
                } else {
                    match params[i].to_text() {
                        Some(text) => ast::Expr::value(ast::Value::SingleQuotedString(text)),
                        None => ast::Expr::value(ast::Value::Null),
                    }
                };
            }
            ControlFlow::<()>::Continue(())
        });
        Ok(Some(parsed))
    }

    /// Whether the statement returns rows (its columns are described).
    pub fn returns_rows(&self) -> bool {
        self.columns.is_some()
    }

    /// Whether the statement begins or ends a transaction.
    pub fn controls_transaction(&self) -> bool {
        matches!(&self.parsed, Some(Parsed::Statement(s)) if matches!(
            s.as_ref(),
            Statement::StartTransaction { .. } | Statement::Commit { .. } | Statement::Rollback { .. }
        ))
    }
}

/// Parses the text of a statement to prepare: one statement (or none), 42601 for more.
pub fn parse(sql: &str) -> Result<Option<Parsed>> {
    let mut statements = crate::syntax::parse(sql)?;
    if statements.len() > 1 {
        return Err(SqlError::Syntax(
            "cannot insert multiple commands into a prepared statement".into(),
        ));
    }
    Ok(statements.pop())
}

/// Whether preparing `parsed` needs the catalog: to type its placeholders or describe its
/// rows. Transaction control does not, so it can be prepared in an aborted transaction.
pub fn needs_catalog(parsed: &Option<Parsed>) -> bool {
    match parsed {
        None => false,
        Some(Parsed::Statement(s)) => !matches!(
            s.as_ref(),
            Statement::StartTransaction { .. }
                | Statement::Commit { .. }
                | Statement::Rollback { .. }
        ),
        Some(_) => true,
    }
}

/// Prepares `parsed`: the number and types of its parameters (`declared` by the client where
/// given) and the columns of its rows, seen through `catalog`.
pub fn prepare(
    parsed: Option<Parsed>,
    declared: &[Option<DataType>],
    catalog: Option<&Snapshot>,
    ctx: EvalContext,
) -> Result<Prepared> {
    let mut count = declared.len();
    if let Some(parsed) = &parsed {
        let mut failure = None;
        let _ = visit(parsed, |e| {
            if let ast::Expr::Value(v) = e
                && let ast::Value::Placeholder(p) = &v.value
            {
                match placeholder_number(p) {
                    Ok(n) => count = count.max(n),
                    Err(e) => {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        });
        if let Some(e) = failure {
            return Err(e);
        }
    }
    let mut inferred = BTreeMap::new();
    if let (Some(parsed), Some(catalog)) = (&parsed, catalog)
        && count > 0
    {
        Inference { scope: tables_of(parsed, catalog), types: &mut inferred }.parsed(parsed);
    }
    let mut param_types = Vec::with_capacity(count);
    let mut typed = Vec::with_capacity(count);
    for i in 0..count {
        let known = declared.get(i).copied().flatten().or_else(|| inferred.get(&(i + 1)).copied());
        typed.push(known.is_some());
        param_types.push(known.unwrap_or(DataType::Text));
    }
    let columns = match (&parsed, catalog) {
        (Some(parsed), Some(catalog)) => {
            let mut nulls = parsed.clone();
            limits_to_one(&mut nulls);
            let _ = visit_mut(&mut nulls, |e| {
                if let Some(n) = placeholder(e) {
                    *e = crate::subquery::literal(&Value::Null, Some(&param_types[n - 1]));
                }
                ControlFlow::<()>::Continue(())
            });
            describe(nulls, catalog, ctx)?
        }
        _ => None,
    };
    Ok(Prepared { parsed, param_types, typed, columns })
}

/// Makes every placeholder LIMIT and OFFSET 1: the planner evaluates them, and NULL is not a
/// limit. (Only the columns of the plan are wanted.)
fn limits_to_one(parsed: &mut Parsed) {
    struct Limits;
    impl ast::VisitorMut for Limits {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
            if let Some(ast::LimitClause::LimitOffset { limit, offset, .. }) =
                &mut query.limit_clause
            {
                let one = || ast::Expr::value(ast::Value::Number("1".into(), false));
                if let Some(limit) = limit.as_mut().filter(|l| placeholder(l).is_some()) {
                    *limit = one();
                }
                if let Some(offset) = offset.as_mut().filter(|o| placeholder(&o.value).is_some()) {
                    offset.value = one();
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = match parsed {
        Parsed::Statement(s) | Parsed::Upsert(s) => ast::VisitMut::visit(s.as_mut(), &mut Limits),
        Parsed::AsOf { query, .. } | Parsed::SplitAt { rows: query, .. } => {
            ast::VisitMut::visit(query.as_mut(), &mut Limits)
        }
        Parsed::ShowIndexes(_) | Parsed::ShowRanges(_) | Parsed::ShowStatistics(_) => {
            ControlFlow::Continue(())
        }
    };
}

/// The number of placeholder `$n`; 42P02 for anything else (`$0`, `?`).
fn placeholder_number(p: &str) -> Result<usize> {
    match p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
        Some(n @ 1..=65535) => Ok(n),
        _ => Err(SqlError::UndefinedPlaceholder(format!("there is no parameter {p}"))),
    }
}

/// The number of the placeholder `e` is, if it is one.
fn placeholder(e: &ast::Expr) -> Option<usize> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Placeholder(p) => placeholder_number(p).ok(),
            _ => None,
        },
        ast::Expr::Nested(inner) => placeholder(inner),
        _ => None,
    }
}

fn visit<F>(parsed: &Parsed, f: F) -> ControlFlow<()>
where
    F: FnMut(&ast::Expr) -> ControlFlow<()>,
{
    match parsed {
        Parsed::Statement(s) | Parsed::Upsert(s) => ast::visit_expressions(s.as_ref(), f),
        Parsed::AsOf { query, .. } | Parsed::SplitAt { rows: query, .. } => {
            ast::visit_expressions(query.as_ref(), f)
        }
        Parsed::ShowIndexes(_) | Parsed::ShowRanges(_) | Parsed::ShowStatistics(_) => {
            ControlFlow::Continue(())
        }
    }
}

fn visit_mut<F>(parsed: &mut Parsed, f: F) -> ControlFlow<()>
where
    F: FnMut(&mut ast::Expr) -> ControlFlow<()>,
{
    match parsed {
        Parsed::Statement(s) | Parsed::Upsert(s) => ast::visit_expressions_mut(s.as_mut(), f),
        Parsed::AsOf { query, .. } | Parsed::SplitAt { rows: query, .. } => {
            ast::visit_expressions_mut(query.as_mut(), f)
        }
        Parsed::ShowIndexes(_) | Parsed::ShowRanges(_) | Parsed::ShowStatistics(_) => {
            ControlFlow::Continue(())
        }
    }
}

/// The tables a statement names, each under its alias (or name); those the catalog lacks are
/// left out (running the statement reports them).
fn tables_of(parsed: &Parsed, catalog: &Snapshot) -> Vec<(String, Arc<TableDescriptor>)> {
    struct Tables<'a> {
        catalog: &'a Snapshot,
        found: Vec<(String, Arc<TableDescriptor>)>,
    }
    impl Tables<'_> {
        fn add(&mut self, name: &ast::ObjectName, alias: Option<&ast::TableAlias>) {
            let Ok(name) = crate::binder::object_name(name) else { return };
            if let Ok(Some(table)) = self.catalog.lookup(&name) {
                let shown =
                    alias.map_or_else(|| table.name.clone(), |a| crate::binder::ident(&a.name));
                self.found.push((shown, table));
            }
        }
    }
    impl ast::Visitor for Tables<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &ast::TableFactor) -> ControlFlow<()> {
            if let ast::TableFactor::Table { name, alias, .. } = factor {
                self.add(name, alias.as_ref());
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
            if let Statement::Insert(insert) = statement
                && let ast::TableObject::TableName(name) = &insert.table
            {
                self.add(name, None);
            }
            ControlFlow::Continue(())
        }
    }
    let mut tables = Tables { catalog, found: Vec::new() };
    let _ = match parsed {
        Parsed::Statement(s) | Parsed::Upsert(s) => ast::Visit::visit(s.as_ref(), &mut tables),
        Parsed::AsOf { query, .. } => ast::Visit::visit(query.as_ref(), &mut tables),
        Parsed::SplitAt { table, rows } => {
            if let Ok(Some(t)) = catalog.lookup(table) {
                tables.found.push((t.name.clone(), t));
            }
            ast::Visit::visit(rows.as_ref(), &mut tables)
        }
        Parsed::ShowIndexes(_) | Parsed::ShowRanges(_) | Parsed::ShowStatistics(_) => {
            ControlFlow::Continue(())
        }
    };
    tables.found
}

/// Infers placeholder types from where they stand (see the module docs).
struct Inference<'a> {
    scope: Vec<(String, Arc<TableDescriptor>)>,
    types: &'a mut BTreeMap<usize, DataType>,
}

impl Inference<'_> {
    fn parsed(&mut self, parsed: &Parsed) {
        if let Parsed::Statement(s) | Parsed::Upsert(s) = parsed {
            self.statement(s);
        }
        if let Parsed::SplitAt { table, rows } = parsed
            && let Some((_, t)) = self.scope.iter().find(|(n, _)| n == table).cloned()
        {
            let types: Vec<_> =
                t.columns.iter().filter(|c| !c.hidden).map(|c| Some(c.data_type)).collect();
            self.values_rows(rows, &types);
        }
        let _ = visit(parsed, |e| {
            self.expr(e);
            ControlFlow::Continue(())
        });
        let query = match parsed {
            Parsed::Statement(s) => match s.as_ref() {
                Statement::Query(q) => Some(q.as_ref()),
                _ => None,
            },
            Parsed::AsOf { query, .. } => Some(query.as_ref()),
            _ => None,
        };
        if let Some(query) = query {
            self.limits(query);
        }
    }

    fn set(&mut self, e: &ast::Expr, data_type: Option<DataType>) {
        if let (Some(n), Some(t)) = (placeholder(e), data_type) {
            self.types.entry(n).or_insert(t);
        }
    }

    /// INSERT values and UPDATE assignments take their column's type.
    fn statement(&mut self, statement: &Statement) {
        match statement {
            Statement::Insert(insert) => {
                let Some((_, table)) = self.scope.first().cloned() else { return };
                let columns: Vec<_> = if insert.columns.is_empty() {
                    table.columns.iter().filter(|c| !c.hidden).map(|c| Some(c.data_type)).collect()
                } else {
                    insert
                        .columns
                        .iter()
                        .map(|c| {
                            let name = crate::binder::object_name(c).ok()?;
                            table.columns.iter().find(|d| d.name == name).map(|d| d.data_type)
                        })
                        .collect()
                };
                if let Some(source) = &insert.source {
                    self.values_rows(source, &columns);
                }
            }
            Statement::Update(update) => {
                for assignment in &update.assignments {
                    if let ast::AssignmentTarget::ColumnName(name) = &assignment.target
                        && let Some(last) = name.0.last().and_then(|p| p.as_ident())
                    {
                        let column = self.column(None, &crate::binder::ident(last));
                        self.set(&assignment.value, column);
                    }
                }
            }
            _ => {}
        }
    }

    /// Values rows take the types of the columns they fill, position by position.
    fn values_rows(&mut self, source: &ast::Query, types: &[Option<DataType>]) {
        if let ast::SetExpr::Values(values) = source.body.as_ref() {
            for row in &values.rows {
                for (e, data_type) in row.iter().zip(types) {
                    self.set(e, *data_type);
                }
            }
        }
    }

    fn limits(&mut self, query: &ast::Query) {
        if let Some(ast::LimitClause::LimitOffset { limit, offset, .. }) = &query.limit_clause {
            if let Some(limit) = limit {
                self.set(limit, Some(DataType::Int(8)));
            }
            if let Some(offset) = offset {
                self.set(&offset.value, Some(DataType::Int(8)));
            }
        }
    }

    fn expr(&mut self, e: &ast::Expr) {
        use ast::BinaryOperator as B;
        use ast::Expr as E;
        match e {
            E::BinaryOp { left, op: B::And | B::Or, right } => {
                self.set(left, Some(DataType::Bool));
                self.set(right, Some(DataType::Bool));
            }
            E::BinaryOp { left, op: B::StringConcat, right } => {
                self.set(left, Some(DataType::Text));
                self.set(right, Some(DataType::Text));
            }
            E::BinaryOp { left, right, .. } => {
                let (l, r) = (self.type_of(left), self.type_of(right));
                self.set(left, r);
                self.set(right, l);
            }
            E::UnaryOp { op: ast::UnaryOperator::Not, expr } => {
                self.set(expr, Some(DataType::Bool))
            }
            E::Between { expr, low, high, .. } => {
                let t = self.type_of(expr);
                self.set(low, t);
                self.set(high, t);
                let bound = self.type_of(low).or_else(|| self.type_of(high));
                self.set(expr, bound);
            }
            E::InList { expr, list, .. } => {
                let t = self.type_of(expr);
                for item in list {
                    self.set(item, t);
                }
                let item = list.iter().find_map(|i| self.type_of(i));
                self.set(expr, item);
            }
            E::Cast { expr, data_type, .. } => self.set(expr, DataType::from_ast(data_type).ok()),
            E::Like { expr, pattern, .. } | E::ILike { expr, pattern, .. } => {
                self.set(expr, Some(DataType::Text));
                self.set(pattern, Some(DataType::Text));
            }
            _ => {}
        }
    }

    /// The type of an expression where it is evident without binding it.
    fn type_of(&self, e: &ast::Expr) -> Option<DataType> {
        use ast::Expr as E;
        match e {
            E::Identifier(id) => self.column(None, &crate::binder::ident(id)),
            E::CompoundIdentifier(parts) => {
                let column = crate::binder::ident(parts.last()?);
                let table = parts.len().checked_sub(2).map(|i| crate::binder::ident(&parts[i]));
                self.column(table.as_deref(), &column)
            }
            E::Cast { data_type, .. } => DataType::from_ast(data_type).ok(),
            E::Nested(inner) | E::UnaryOp { expr: inner, .. } => self.type_of(inner),
            E::Value(v) => match &v.value {
                ast::Value::Number(..) | ast::Value::Boolean(_) => {
                    crate::binder::literal(&v.value).ok()?.data_type()
                }
                ast::Value::Placeholder(p) => {
                    placeholder_number(p).ok().and_then(|n| self.types.get(&n).copied())
                }
                _ => None,
            },
            E::BinaryOp { left, op, right } if is_arithmetic(op) => {
                self.type_of(left).or_else(|| self.type_of(right))
            }
            _ => None,
        }
    }

    /// The type of column `name` of `table` (an alias or name), or of the first table in
    /// scope having it.
    fn column(&self, table: Option<&str>, name: &str) -> Option<DataType> {
        self.scope
            .iter()
            .filter(|(shown, t)| table.is_none_or(|want| want == shown || want == t.name))
            .find_map(|(_, t)| t.columns.iter().find(|c| c.name == name))
            .map(|c| c.data_type)
    }
}

fn is_arithmetic(op: &ast::BinaryOperator) -> bool {
    use ast::BinaryOperator as B;
    matches!(op, B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo)
}

/// The columns of the rows `parsed` returns (placeholders already typed NULLs), planned
/// without reading rows; None when it returns none (or they cannot be known beforehand).
fn describe(parsed: Parsed, catalog: &Snapshot, ctx: EvalContext) -> Result<Option<Vec<Column>>> {
    let columns_of = |output: crate::Output| match output {
        crate::Output::Rows { columns, .. } => Some(columns),
        _ => None,
    };
    let plan = |query: &ast::Query| -> Result<Vec<Column>> {
        let mut query = query.clone();
        without_subqueries(&mut query, catalog, ctx)?;
        Ok(Planner::new(catalog, ctx).query(&query)?.columns)
    };
    let statement = match &parsed {
        Parsed::AsOf { query, .. } => return plan(query).map(Some),
        Parsed::ShowIndexes(table) => {
            return Ok(columns_of(crate::schema::show_indexes(catalog.table(table)?.as_ref())));
        }
        Parsed::ShowStatistics(table) => {
            return Ok(columns_of(crate::stats::show(catalog.table(table)?.as_ref())));
        }
        Parsed::Statement(s) | Parsed::Upsert(s) => s.as_ref(),
        Parsed::ShowRanges(_) | Parsed::SplitAt { .. } => return Ok(None),
    };
    let returning = |table: &ast::ObjectName, items: &Option<Vec<ast::SelectItem>>| {
        let Some(items) = items else { return Ok(None) };
        let table = catalog.table(&crate::binder::object_name(table)?)?;
        Ok(Some(crate::dml::returning(&table, &table.name.clone(), items)?.1))
    };
    match statement {
        Statement::Query(query) => plan(query).map(Some),
        Statement::Insert(ast::Insert {
            table: ast::TableObject::TableName(table),
            returning: items,
            ..
        }) => returning(table, items),
        Statement::Update(ast::Update { table, returning: items, .. }) => match &table.relation {
            ast::TableFactor::Table { name, .. } => returning(name, items),
            _ => Ok(None),
        },
        Statement::Delete(ast::Delete { from, returning: items, .. }) => {
            let tables = match from {
                ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
            };
            match tables.first().map(|t| &t.relation) {
                Some(ast::TableFactor::Table { name, .. }) => returning(name, items),
                _ => Ok(None),
            }
        }
        Statement::ShowTables { .. } => Ok(columns_of(crate::schema::show_tables(catalog))),
        Statement::ShowDatabases { .. } => Ok(columns_of(crate::database::show(catalog))),
        Statement::ShowColumns { show_options, .. } => match &show_options.show_in {
            Some(ast::ShowStatementIn { parent_name: Some(name), .. }) => {
                let table = catalog.table(&crate::binder::object_name(name)?)?;
                Ok(columns_of(crate::schema::show_columns(&table)))
            }
            _ => Ok(None),
        },
        Statement::ShowVariable { variable } => {
            let name = variable.iter().map(crate::binder::ident).collect::<Vec<_>>().join("_");
            Ok(Some(vec![Column {
                table: None,
                name,
                data_type: Some(DataType::Text),
                hidden: false,
            }]))
        }
        _ => Ok(None),
    }
}

/// Replaces each subquery in `query` by a NULL of its result's type (EXISTS by FALSE), so
/// the query can be planned for its columns without running anything.
fn without_subqueries(query: &mut ast::Query, catalog: &Snapshot, ctx: EvalContext) -> Result<()> {
    let mut failure = None;
    // Children come before parents: a subquery's own subqueries are gone when it is planned.
    let _ = ast::visit_expressions_mut(query, |e| {
        let null_of = |q: &ast::Query| -> Result<ast::Expr> {
            let planned = Planner::new(catalog, ctx).query(q)?;
            let data_type = planned.columns.first().and_then(|c| c.data_type);
            Ok(crate::subquery::literal(&Value::Null, data_type.as_ref()))
        };
        let replaced = match e {
            ast::Expr::Exists { .. } => Ok(ast::Expr::value(ast::Value::Boolean(false))),
            ast::Expr::Subquery(q) => null_of(q).map(|n| ast::Expr::Nested(Box::new(n))),
            ast::Expr::InSubquery { expr, subquery, negated } => null_of(subquery).map(|n| {
                ast::Expr::InList { expr: expr.clone(), list: vec![n], negated: *negated }
            }),
            _ => return ControlFlow::Continue(()),
        };
        match replaced {
            Ok(r) => {
                *e = r;
                ControlFlow::Continue(())
            }
            Err(err) => {
                failure = Some(err);
                ControlFlow::Break(())
            }
        }
    });
    failure.map_or(Ok(()), Err)
}
