//! Binding: resolving the parser's expressions against the columns in scope.
//!
//! A [`Scope`] lists the columns a clause can see, in row order. Binding an identifier finds
//! its position (`t.a` or `a`; an `a` found in two tables is ambiguous, 42702). After a
//! GROUP BY, expressions are bound against the *grouped* row instead: an expression equal to a
//! group key (written the same, or meaning the same column: `t.a` for the key `a`), or an
//! aggregate call, becomes a column of the aggregate's output, and any other column
//! reference is a grouping error (42803).
//!
//! ```text
//!   SELECT a + 1, count(*) FROM t GROUP BY a        t: (k, a)
//!   group keys   [a]           → grouped row: (a, count(*))
//!   a + 1        Binary(Add, Column(0), 1)
//!   count(*)     Column(1)
//! ```

use sqlparser::ast;

use crate::error::{Result, SqlError};
use crate::expr::{BinaryOp, Expr, Function};
use crate::plan::{Aggregate, AggregateFunction, Column, SubqueryTest};
use crate::types::{DataType, Value, parse_text};

/// The columns visible to an expression.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// In row order.
    pub columns: Vec<Column>,
}

impl Scope {
    /// Finds a column by optional table qualifier and name.
    pub fn resolve(&self, table: Option<&str>, name: &str) -> Result<usize> {
        let matches: Vec<usize> = (0..self.columns.len())
            .filter(|&i| {
                let c = &self.columns[i];
                c.name == name && table.is_none_or(|t| c.table.as_deref() == Some(t))
            })
            .collect();
        // Several: the one `*` shows wins (a USING column over the inputs' hidden copies).
        let found = match matches.as_slice() {
            [] => None,
            [one] => Some(*one),
            many => {
                let shown: Vec<usize> =
                    many.iter().copied().filter(|&i| !self.columns[i].hidden).collect();
                match shown.as_slice() {
                    [one] => Some(*one),
                    _ => return Err(SqlError::AmbiguousColumn(name.to_string())),
                }
            }
        };
        if let Some(t) = table
            && !self.columns.iter().any(|c| c.table.as_deref() == Some(t))
        {
            return Err(SqlError::MissingFromEntry(t.to_string()));
        }
        found.ok_or_else(|| {
            SqlError::UndefinedColumn(match table {
                Some(t) => format!("{t}.{name}"),
                None => name.to_string(),
            })
        })
    }
}

/// The grouped row an expression is bound against after GROUP BY.
#[derive(Debug, Clone, Default)]
pub struct Grouping {
    /// Group key expressions, as SQL text.
    pub keys: Vec<String>,
    /// The same keys bound over the ungrouped row, so that `t.a`, `a` and `alias.a` all
    /// find the key `a`.
    pub bound: Vec<Expr>,
    /// Aggregate calls, as SQL text, with what they compute over the ungrouped row.
    pub calls: Vec<(String, Aggregate)>,
    /// `grouping(…)` calls, as SQL text: columns after the aggregates'
    /// ([`crate::planner_grouping`]).
    pub groupings: Vec<String>,
}

/// Normalizes an identifier: unquoted ones fold to lower case, as in PostgreSQL.
pub fn ident(id: &ast::Ident) -> String {
    if id.quote_style.is_some() { id.value.clone() } else { id.value.to_lowercase() }
}

/// An object name as the catalog looks it up: `t`, or `db.t` for a table of another
/// database. `public.t` is `t` and `db.public.t` is `db.t`; other schemas are not supported.
pub fn object_name(name: &ast::ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(id) if !id.value.contains('.') => Ok(ident(id)),
            other => Err(SqlError::NotSupported(format!("name {other}"))),
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [name] => Ok(name.clone()),
        [schema, name] if schema == "public" => Ok(name.clone()),
        [database, name] => Ok(format!("{database}.{name}")),
        [database, schema, name] if schema == "public" => Ok(format!("{database}.{name}")),
        _ => Err(SqlError::NotSupported(format!("qualified name {name}"))),
    }
}

/// Returns the aggregate function named `name`, if it is one.
pub fn aggregate_function(name: &str, star: bool) -> Option<AggregateFunction> {
    Some(match (name, star) {
        ("count", true) => AggregateFunction::CountRows,
        ("count", false) => AggregateFunction::Count,
        ("sum", false) => AggregateFunction::Sum,
        ("avg", false) => AggregateFunction::Avg,
        ("min", false) => AggregateFunction::Min,
        ("max", false) => AggregateFunction::Max,
        ("string_agg", false) => AggregateFunction::StringAgg,
        ("bool_and" | "every", false) => AggregateFunction::BoolAnd,
        ("bool_or", false) => AggregateFunction::BoolOr,
        _ => return None,
    })
}

/// Whether `expr` contains an aggregate call of its own query (not one in a subquery).
pub fn has_aggregate(expr: &ast::Expr) -> bool {
    let mut found = false;
    visit_shallow(expr, &mut |e| {
        if let ast::Expr::Function(f) = e
            && f.over.is_none()
            && let Ok(name) = object_name(&f.name)
            && aggregate_function(&name, false).is_some()
        {
            found = true;
        }
    });
    found
}

/// Whether `expr` contains a window function call of its own query.
pub fn has_window(expr: &ast::Expr) -> bool {
    let mut found = false;
    visit_shallow(expr, &mut |e| {
        if let ast::Expr::Function(f) = e
            && f.over.is_some()
        {
            found = true;
        }
    });
    found
}

/// Calls `f` on `expr` and every expression inside it, except those inside subqueries
/// (they belong to another query: its aggregates are not this one's).
pub fn visit_shallow(expr: &ast::Expr, f: &mut impl FnMut(&ast::Expr)) {
    struct Shallow<'f, F> {
        depth: usize,
        f: &'f mut F,
    }
    impl<F: FnMut(&ast::Expr)> ast::Visitor for Shallow<'_, F> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &ast::Query) -> std::ops::ControlFlow<()> {
            self.depth += 1;
            std::ops::ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &ast::Query) -> std::ops::ControlFlow<()> {
            self.depth -= 1;
            std::ops::ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &ast::Expr) -> std::ops::ControlFlow<()> {
            if self.depth == 0 {
                (self.f)(e);
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let _ = ast::Visit::visit(expr, &mut Shallow { depth: 0, f });
}

/// Binds expressions against a scope (and, after GROUP BY, a grouping).
#[derive(Clone, Copy)]
pub struct Binder<'a> {
    /// The ungrouped columns.
    pub scope: &'a Scope,
    /// Set after GROUP BY: expressions bind to the grouped row.
    pub grouping: Option<&'a Grouping>,
    /// The planner of the query the clause belongs to, which plans the subqueries the
    /// clause holds and knows the queries around it ([`crate::correlated`]); None where
    /// subqueries cannot stand (LIMIT, VALUES, DDL defaults).
    pub planner: Option<&'a crate::planner::Planner<'a>>,
    /// Set once window functions are computed: each call is a column of their output.
    pub windows: Option<&'a crate::planner_window::Windows>,
}

impl<'a> Binder<'a> {
    /// A binder over `scope`, where subqueries cannot stand.
    pub fn new(scope: &'a Scope) -> Self {
        Binder { scope, grouping: None, planner: None, windows: None }
    }

    /// Binds an expression.
    pub fn bind(&self, expr: &ast::Expr) -> Result<Expr> {
        use ast::Expr as A;
        if let Some(windows) = self.windows
            && let A::Function(f) = expr
            && f.over.is_some()
        {
            let text = expr.to_string();
            if let Some(j) = windows.calls.iter().position(|t| *t == text) {
                return Ok(Expr::Column(windows.base + j));
            }
        }
        if let Some(grouping) = self.grouping {
            let text = expr.to_string();
            if let Some(i) = grouping.keys.iter().position(|k| *k == text) {
                return Ok(Expr::Column(i));
            }
            if let Some(j) = grouping.calls.iter().position(|(t, _)| *t == text) {
                return Ok(Expr::Column(grouping.keys.len() + j));
            }
            if let Some(j) = grouping.groupings.iter().position(|t| *t == text) {
                return Ok(Expr::Column(grouping.keys.len() + grouping.calls.len() + j));
            }
            // By meaning: the expression over the ungrouped row is a key's, however written.
            if !matches!(expr, A::Value(_)) && !has_aggregate(expr) {
                let ungrouped = Binder::new(self.scope);
                if let Ok(bound) = ungrouped.bind(expr)
                    && let Some(i) = grouping.bound.iter().position(|k| *k == bound)
                {
                    return Ok(Expr::Column(i));
                }
            }
        }
        Ok(match expr {
            A::Identifier(id) => self.column(None, &ident(id), expr)?,
            A::CompoundIdentifier(parts) => match parts.as_slice() {
                [table, column] => self.column(Some(&ident(table)), &ident(column), expr)?,
                _ => return Err(SqlError::NotSupported(format!("column reference {expr}"))),
            },
            A::Value(v) => Expr::Literal(literal(&v.value)?),
            A::TypedString(ts) => {
                let to = DataType::from_ast(&ts.data_type)?;
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => return Err(SqlError::NotSupported(format!("typed literal {other}"))),
                };
                Expr::Literal(parse_text(&text, &to)?)
            }
            A::Nested(e) => self.bind(e)?,
            A::UnaryOp { op, expr } => match op {
                ast::UnaryOperator::Not => Expr::Not(Box::new(self.bind(expr)?)),
                ast::UnaryOperator::Minus => match self.bind(expr)? {
                    // Fold negative literals, so -9223372036854775808 reads.
                    Expr::Literal(Value::Int(i)) => Expr::Literal(Value::Int(-i)),
                    other => Expr::Neg(Box::new(other)),
                },
                ast::UnaryOperator::Plus => self.bind(expr)?,
                other => return Err(SqlError::NotSupported(format!("operator {other}"))),
            },
            // An interval literal added to or subtracted from a date or timestamp.
            A::BinaryOp {
                left,
                op: op @ (ast::BinaryOperator::Plus | ast::BinaryOperator::Minus),
                right,
            } if matches!(right.as_ref(), A::Interval(_))
                || (matches!(op, ast::BinaryOperator::Plus)
                    && matches!(left.as_ref(), A::Interval(_))) =>
            {
                let (at, interval) = match (left.as_ref(), right.as_ref()) {
                    (at, A::Interval(interval)) if !matches!(at, A::Interval(_)) => (at, interval),
                    (A::Interval(interval), at) if !matches!(at, A::Interval(_)) => (at, interval),
                    _ => return Err(SqlError::NotSupported(format!("interval arithmetic {expr}"))),
                };
                let mut parts = crate::expr_datetime::interval_literal(interval)?;
                if matches!(op, ast::BinaryOperator::Minus) {
                    parts = parts.negated();
                }
                let int = |n: i64| Expr::Literal(Value::Int(n));
                let args =
                    vec![self.bind(at)?, int(parts.months), int(parts.days), int(parts.micros)];
                Expr::Call(Function::AddInterval, args)
            }
            A::Extract { field, expr: of, .. } => {
                let field = field.to_string().to_lowercase();
                let of = self.bind(of)?;
                let types: Vec<Option<DataType>> =
                    self.scope.columns.iter().map(|c| c.data_type).collect();
                let date_only = matches!(of.static_type(&types), Some(DataType::Date));
                if !crate::expr_datetime::extract_field_known(&field, date_only) {
                    let kind = if date_only { "date" } else { "timestamp" };
                    return Err(SqlError::NotSupported(format!(
                        "unit \"{field}\" not supported for type {kind}"
                    )));
                }
                Expr::Call(Function::Extract, vec![Expr::Literal(Value::Text(field)), of])
            }
            A::BinaryOp { left, op: ast_op, right } => {
                let op = binary_op(ast_op)?;
                let (left, right) = (self.bind(left)?, self.bind(right)?);
                self.check_comparable(ast_op, &left, &right)?;
                Expr::Binary(op, Box::new(left), Box::new(right))
            }
            A::IsNull(e) => Expr::IsNull(Box::new(self.bind(e)?), false),
            A::IsNotNull(e) => Expr::IsNull(Box::new(self.bind(e)?), true),
            A::IsTrue(e) => Expr::IsBool(Box::new(self.bind(e)?), true, false),
            A::IsNotTrue(e) => Expr::IsBool(Box::new(self.bind(e)?), true, true),
            A::IsFalse(e) => Expr::IsBool(Box::new(self.bind(e)?), false, false),
            A::IsNotFalse(e) => Expr::IsBool(Box::new(self.bind(e)?), false, true),
            A::IsDistinctFrom(a, b) => {
                Expr::IsDistinct(Box::new(self.bind(a)?), Box::new(self.bind(b)?), false)
            }
            A::IsNotDistinctFrom(a, b) => {
                Expr::IsDistinct(Box::new(self.bind(a)?), Box::new(self.bind(b)?), true)
            }
            A::InList { expr, list, negated } => Expr::InList(
                Box::new(self.bind(expr)?),
                list.iter().map(|e| self.bind(e)).collect::<Result<_>>()?,
                *negated,
            ),
            A::Between { expr, negated, low, high } => {
                let e = self.bind(expr)?;
                let range = Expr::Binary(
                    BinaryOp::And,
                    Box::new(Expr::Binary(
                        BinaryOp::GtEq,
                        Box::new(e.clone()),
                        Box::new(self.bind(low)?),
                    )),
                    Box::new(Expr::Binary(BinaryOp::LtEq, Box::new(e), Box::new(self.bind(high)?))),
                );
                if *negated { Expr::Not(Box::new(range)) } else { range }
            }
            A::Like { negated, any: false, expr, pattern, escape_char: None } => Expr::Like {
                expr: Box::new(self.bind(expr)?),
                pattern: Box::new(self.bind(pattern)?),
                negated: *negated,
                case_insensitive: false,
            },
            A::ILike { negated, any: false, expr, pattern, escape_char: None } => Expr::Like {
                expr: Box::new(self.bind(expr)?),
                pattern: Box::new(self.bind(pattern)?),
                negated: *negated,
                case_insensitive: true,
            },
            A::Case { operand, conditions, else_result, .. } => Expr::Case {
                operand: operand.as_ref().map(|o| self.bind(o).map(Box::new)).transpose()?,
                whens: conditions
                    .iter()
                    .map(|w| Ok((self.bind(&w.condition)?, self.bind(&w.result)?)))
                    .collect::<Result<_>>()?,
                otherwise: else_result.as_ref().map(|e| self.bind(e).map(Box::new)).transpose()?,
            },
            A::Cast { expr, data_type, format: None, .. } => {
                Expr::Cast(Box::new(self.bind(expr)?), DataType::from_ast(data_type)?)
            }
            A::Substring { expr, substring_from, substring_for, .. } => {
                let mut args = vec![self.bind(expr)?];
                args.push(match substring_from {
                    Some(from) => self.bind(from)?,
                    None => Expr::Literal(Value::Int(1)),
                });
                if let Some(count) = substring_for {
                    args.push(self.bind(count)?);
                }
                Expr::Call(Function::Substring, args)
            }
            A::Trim { expr, trim_where: None, trim_what: None, trim_characters: None } => {
                Expr::Call(Function::Trim, vec![self.bind(expr)?])
            }
            A::Position { expr, r#in } => {
                Expr::Call(Function::Strpos, vec![self.bind(r#in)?, self.bind(expr)?])
            }
            A::Ceil {
                expr,
                field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
            } => Expr::Call(Function::Ceil, vec![self.bind(expr)?]),
            A::Floor {
                expr,
                field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
            } => Expr::Call(Function::Floor, vec![self.bind(expr)?]),
            A::Function(f) => self.function(f)?,
            A::Subquery(query) => self.subquery(query, SubqueryTest::Scalar)?,
            A::Exists { subquery, negated } => {
                let exists = self.subquery(subquery, SubqueryTest::Exists)?;
                if *negated { Expr::Not(Box::new(exists)) } else { exists }
            }
            A::InSubquery { expr, subquery, negated } => {
                let operand = self.bind(expr)?;
                let test = SubqueryTest::Quantified { operand, op: BinaryOp::Eq, all: false };
                let any = self.subquery(subquery, test)?;
                if *negated { Expr::Not(Box::new(any)) } else { any }
            }
            A::AnyOp { left, compare_op, right, .. } => {
                self.quantified(left, binary_op(compare_op)?, right, false)?
            }
            A::AllOp { left, compare_op, right } => {
                self.quantified(left, binary_op(compare_op)?, right, true)?
            }
            other => return Err(SqlError::NotSupported(format!("expression {other}"))),
        })
    }

    /// Refuses a comparison of two columns whose types PostgreSQL has no operator for, like
    /// `text = bigint` (42883), where Shoal would otherwise read the text as a number row by
    /// row. Literals and other expressions are still typed at run time.
    fn check_comparable(&self, op: &ast::BinaryOperator, left: &Expr, right: &Expr) -> Result<()> {
        use ast::BinaryOperator as B;
        if !matches!(op, B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq) {
            return Ok(());
        }
        let column_type = |e: &Expr| match e {
            Expr::Column(i) => self.scope.columns.get(*i).and_then(|c| c.data_type),
            _ => None,
        };
        if let (Some(a), Some(b)) = (column_type(left), column_type(right))
            && a.category() != b.category()
        {
            return Err(SqlError::UndefinedOperator(format!(
                "{} {op} {}",
                a.pg_name(),
                b.pg_name()
            )));
        }
        Ok(())
    }

    /// Resolves a column reference (`reference` is its text): here, or failing that in the
    /// queries around a subquery ([`crate::correlated`]).
    fn column(&self, table: Option<&str>, name: &str, reference: &ast::Expr) -> Result<Expr> {
        match self.scope.resolve(table, name) {
            // Not a group key (checked first): only valid inside an aggregate.
            Ok(_) if self.grouping.is_some() => Err(SqlError::Grouping(format!(
                "column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"
            ))),
            Ok(i) => Ok(Expr::Column(i)),
            Err(e @ (SqlError::UndefinedColumn(_) | SqlError::MissingFromEntry(_))) => {
                match self.planner.and_then(|p| p.outer) {
                    // The error of the query that knew most of the name: the one where
                    // the table was found, else this one.
                    Some(outer) => {
                        outer.resolve(reference).map_err(|outer_error| match (&e, outer_error) {
                            (SqlError::MissingFromEntry(_), o @ SqlError::UndefinedColumn(_)) => o,
                            (_, SqlError::UndefinedColumn(_) | SqlError::MissingFromEntry(_)) => e,
                            (_, other) => other,
                        })
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn function(&self, f: &ast::Function) -> Result<Expr> {
        let name = object_name(&f.name)?;
        if f.over.is_some() {
            return Err(SqlError::Windowing("window functions are not allowed here".into()));
        }
        if f.filter.is_some() || !f.within_group.is_empty() {
            return Err(SqlError::NotSupported(format!("filtered function {f}")));
        }
        let (args, distinct) = function_args(f)?;
        if aggregate_function(&name, false).is_some() {
            return Err(SqlError::Grouping(format!(
                "aggregate function {name}() is not allowed here"
            )));
        }
        if crate::window::WindowFunction::is_window_function(&name) {
            return Err(SqlError::WrongObjectType(format!(
                "window function {name} requires an OVER clause"
            )));
        }
        if distinct {
            return Err(SqlError::NotSupported(format!("DISTINCT in {name}()")));
        }
        let bound: Vec<Expr> = args
            .iter()
            .map(|a| match a {
                FunctionArg::Expr(e) => self.bind(e),
                FunctionArg::Star => {
                    Err(SqlError::Syntax(format!("{name}(*) is not a function call")))
                }
            })
            .collect::<Result<_>>()?;
        let function = Function::lookup(&name, bound.len()).ok_or_else(|| {
            SqlError::UndefinedFunction(format!("{name}() with {} arguments", bound.len()))
        })?;
        Ok(Expr::Call(function, bound))
    }

    /// Binds an aggregate call (against the ungrouped scope), if `expr` is one.
    pub fn aggregate(&self, f: &ast::Function) -> Result<Option<Aggregate>> {
        let name = object_name(&f.name)?;
        let (args, distinct) = function_args(f)?;
        let star = matches!(args.as_slice(), [FunctionArg::Star]);
        let Some(function) = aggregate_function(&name, star) else { return Ok(None) };
        if f.over.is_some() {
            return Err(SqlError::Internal(format!("window function {f} bound as an aggregate")));
        }
        let ungrouped =
            Binder { scope: self.scope, grouping: None, planner: self.planner, windows: None };
        let unnested = |e: &ast::Expr| {
            if has_aggregate(e) {
                return Err(SqlError::Grouping("aggregate function calls cannot be nested".into()));
            }
            if has_window(e) {
                return Err(SqlError::Grouping(
                    "aggregate function calls cannot contain window function calls".into(),
                ));
            }
            ungrouped.bind(e)
        };
        aggregate_call(f, &name, function, &args, distinct, unnested).map(Some)
    }
}

/// Binds the parts of aggregate call `f` (of `function`, with `args`) with `bind`.
pub(crate) fn aggregate_call(
    f: &ast::Function,
    name: &str,
    function: AggregateFunction,
    args: &[FunctionArg<'_>],
    distinct: bool,
    bind: impl Fn(&ast::Expr) -> Result<Expr>,
) -> Result<Aggregate> {
    let two = function == AggregateFunction::StringAgg;
    let (arg, separator) = match args {
        [FunctionArg::Star] => (None, None),
        [FunctionArg::Expr(e)] if !two => (Some(bind(e)?), None),
        [FunctionArg::Expr(e), FunctionArg::Expr(s)] if two => (Some(bind(e)?), Some(bind(s)?)),
        _ => {
            return Err(SqlError::UndefinedFunction(format!(
                "{name}() with {} arguments",
                args.len()
            )));
        }
    };
    let filter = match &f.filter {
        Some(condition) => Some(bind(condition)?),
        None => None,
    };
    Ok(Aggregate { function, arg, distinct, separator, filter })
}

/// A function argument.
pub(crate) enum FunctionArg<'e> {
    /// An expression.
    Expr(&'e ast::Expr),
    /// `*`.
    Star,
}

/// A call's arguments, and whether they are DISTINCT.
pub(crate) fn function_args(f: &ast::Function) -> Result<(Vec<FunctionArg<'_>>, bool)> {
    match &f.args {
        ast::FunctionArguments::None => Ok((vec![], false)),
        ast::FunctionArguments::Subquery(_) => {
            Err(SqlError::NotSupported(format!("subquery argument in {f}")))
        }
        ast::FunctionArguments::List(list) => {
            if !list.clauses.is_empty() {
                return Err(SqlError::NotSupported(format!("argument clauses in {f}")));
            }
            let distinct =
                matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
            let args = list
                .args
                .iter()
                .map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                        Ok(FunctionArg::Expr(e))
                    }
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => {
                        Ok(FunctionArg::Star)
                    }
                    other => Err(SqlError::NotSupported(format!("argument {other}"))),
                })
                .collect::<Result<_>>()?;
            Ok((args, distinct))
        }
    }
}

fn binary_op(op: &ast::BinaryOperator) -> Result<BinaryOp> {
    use ast::BinaryOperator as B;
    Ok(match op {
        B::Plus => BinaryOp::Add,
        B::Minus => BinaryOp::Sub,
        B::Multiply => BinaryOp::Mul,
        B::Divide => BinaryOp::Div,
        B::Modulo => BinaryOp::Mod,
        B::StringConcat => BinaryOp::Concat,
        B::Eq => BinaryOp::Eq,
        B::NotEq => BinaryOp::NotEq,
        B::Lt => BinaryOp::Lt,
        B::LtEq => BinaryOp::LtEq,
        B::Gt => BinaryOp::Gt,
        B::GtEq => BinaryOp::GtEq,
        B::And => BinaryOp::And,
        B::Or => BinaryOp::Or,
        other => return Err(SqlError::NotSupported(format!("operator {other}"))),
    })
}

/// Reads a literal. Numbers without a point or exponent are integers (decimals when too large
/// for one), with a point decimals, as in PostgreSQL.
pub fn literal(v: &ast::Value) -> Result<Value> {
    use ast::Value as V;
    Ok(match v {
        V::Number(n, _) => {
            if let Ok(i) = n.parse::<i64>() {
                Value::Int(i)
            } else if n.contains(['e', 'E']) {
                Value::Float(n.parse().map_err(|_| SqlError::InvalidText(format!("number {n}")))?)
            } else {
                parse_text(n, &DataType::Decimal(None))?
            }
        }
        V::SingleQuotedString(s) | V::EscapedStringLiteral(s) => Value::Text(s.clone()),
        V::DollarQuotedString(s) => Value::Text(s.value.clone()),
        V::HexStringLiteral(h) => parse_text(&format!("\\x{h}"), &DataType::Bytes)?,
        V::Boolean(b) => Value::Bool(*b),
        V::Null => Value::Null,
        V::Placeholder(p) => return Err(SqlError::NotSupported(format!("placeholder {p}"))),
        other => return Err(SqlError::NotSupported(format!("literal {other}"))),
    })
}

/// The output name of a projected expression, as PostgreSQL chooses it.
pub fn output_name(expr: &ast::Expr) -> String {
    match expr {
        ast::Expr::Identifier(id) => ident(id),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(ident).unwrap_or_default(),
        ast::Expr::Function(f) => object_name(&f.name).unwrap_or_else(|_| "?column?".into()),
        ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => output_name(expr),
        ast::Expr::Case { .. } => "case".into(),
        _ => "?column?".into(),
    }
}
