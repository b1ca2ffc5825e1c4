//! Bound scalar expressions and their evaluation.
//!
//! The planner turns the parser's expressions into [`Expr`]s whose column references are
//! positions in the input row, so evaluation needs no names:
//!
//! ```text
//!   SELECT price * 2 FROM items WHERE name LIKE 'a%'     items: (id, name, price)
//!   projection  Binary(Mul, Column(2), Literal(Int(2)))
//!   filter      Like { expr: Column(1), pattern: Literal(Text("a%")), negated: false }
//! ```
//!
//! # Three-valued logic
//!
//! NULL propagates through operators and functions (except `IS [NOT] NULL`, `IS [NOT]
//! DISTINCT FROM`, `COALESCE`, `AND` and `OR`, which follow SQL's rules: `NULL AND false` is
//! false, `NULL OR true` is true). A filter keeps a row only when its condition is true.
//!
//! # Numbers
//!
//! Integer arithmetic is checked (overflow is 22003) and `int / int` truncates, as in
//! PostgreSQL; mixing an integer with a float gives a float, with a decimal a decimal.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use crate::error::{Result, SqlError};
use crate::types::{DataType, Value, decimal_to_f64};

pub use crate::expr_function::Function;
use crate::expr_function::call;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `||`
    Concat,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
}

/// A bound expression. Serializable, so that a scan's filter can travel to the ranges
/// ([`crate::pushdown`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// The input row's value at this position.
    Column(usize),
    /// `NOT e`
    Not(Box<Expr>),
    /// `-e`
    Neg(Box<Expr>),
    /// `a op b`
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `e IS [NOT] NULL` (negated: IS NOT NULL)
    IsNull(Box<Expr>, bool),
    /// `a IS [NOT] DISTINCT FROM b` (negated: IS NOT DISTINCT FROM)
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    /// `e IS [NOT] TRUE/FALSE`: the value compared, and whether negated.
    IsBool(Box<Expr>, bool, bool),
    /// `e [NOT] IN (list)`
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `e [NOT] LIKE pattern` (and ILIKE when case-insensitive)
    Like {
        /// The text.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Box<Expr>,
        /// NOT LIKE.
        negated: bool,
        /// ILIKE.
        case_insensitive: bool,
    },
    /// `CASE [operand] WHEN … THEN … ELSE … END`
    Case {
        /// Compared with each WHEN value when present; else each WHEN is a condition.
        operand: Option<Box<Expr>>,
        /// (WHEN, THEN) pairs.
        whens: Vec<(Expr, Expr)>,
        /// ELSE, NULL when absent.
        otherwise: Option<Box<Expr>>,
    },
    /// `CAST(e AS t)`, `e::t`
    Cast(Box<Expr>, DataType),
    /// A scalar function call.
    Call(Function, Vec<Expr>),
    /// In a correlated subquery, a value of the enclosing query's current row: the
    /// subquery's parameter in this slot, with its type when known. The executor replaces it
    /// with a literal before the subquery runs for an outer row ([`crate::exec_apply`]).
    Outer(usize, Option<DataType>),
    /// The result of a subquery planned in the clause being bound (an index into the
    /// planner's subqueries), with its type. Only the planner sees it: it hoists the
    /// subquery into a [`crate::plan::Plan::Apply`] below the clause and refers to the
    /// column that computes it instead ([`crate::correlated`]).
    Subquery(usize, Option<DataType>),
}

/// What evaluation needs besides the row.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct EvalContext {
    /// The transaction's timestamp in microseconds since the epoch, for `now()`.
    pub now_micros: i64,
    /// The transaction's read timestamp, for `cluster_logical_timestamp()` (also its commit
    /// timestamp when a statement calls that: see [`crate::expr_function`]).
    pub hlc: shoal_hlc::Timestamp,
}

impl EvalContext {
    /// The context of a transaction reading at `ts`.
    pub fn at(ts: shoal_hlc::Timestamp) -> Self {
        EvalContext { now_micros: i64::try_from(ts.wall / 1_000).unwrap_or(i64::MAX), hlc: ts }
    }
}

impl Expr {
    /// The type of the expression's values over rows of `input`, where it is evident without
    /// evaluating (a column, a cast, a literal, a comparison, arithmetic on typed operands);
    /// None when it is not (NULL, CASE, most functions).
    pub fn static_type(&self, input: &[Option<DataType>]) -> Option<DataType> {
        use BinaryOp::*;
        match self {
            Expr::Literal(v) => v.data_type(),
            Expr::Column(i) => input.get(*i).copied().flatten(),
            Expr::Cast(_, t) => Some(*t),
            Expr::Outer(_, t) | Expr::Subquery(_, t) => *t,
            Expr::Not(_)
            | Expr::IsNull(..)
            | Expr::IsDistinct(..)
            | Expr::IsBool(..)
            | Expr::InList(..)
            | Expr::Like { .. } => Some(DataType::Bool),
            Expr::Binary(Eq | NotEq | Lt | LtEq | Gt | GtEq | And | Or, ..) => Some(DataType::Bool),
            Expr::Binary(Concat, ..) => Some(DataType::Text),
            Expr::Neg(e) => e.static_type(input),
            Expr::Binary(Add | Sub | Mul | Div | Mod, a, b) => {
                match (a.static_type(input)?, b.static_type(input)?) {
                    (DataType::Int(_), DataType::Int(_)) => Some(DataType::Int(8)),
                    (DataType::Float(_), DataType::Int(_) | DataType::Float(_))
                    | (DataType::Int(_), DataType::Float(_)) => Some(DataType::Float(8)),
                    (DataType::Decimal(_), DataType::Int(_) | DataType::Decimal(_))
                    | (DataType::Int(_), DataType::Decimal(_)) => Some(DataType::Decimal(None)),
                    _ => None,
                }
            }
            Expr::Call(Function::Now, _) => Some(DataType::TimestampTz),
            Expr::Call(Function::AddInterval, args) => match args.first()?.static_type(input)? {
                DataType::TimestampTz => Some(DataType::TimestampTz),
                _ => Some(DataType::Timestamp),
            },
            Expr::Call(Function::Extract, _) => Some(DataType::Decimal(None)),
            Expr::Call(Function::DatePart, _) => Some(DataType::Float(8)),
            Expr::Call(Function::CurrentDate, _) => Some(DataType::Date),
            Expr::Call(Function::Length | Function::Strpos, _) => Some(DataType::Int(8)),
            Expr::Call(
                Function::Lower
                | Function::Upper
                | Function::Substring
                | Function::Trim
                | Function::Ltrim
                | Function::Rtrim
                | Function::Replace
                | Function::Concat
                | Function::Left
                | Function::Right
                | Function::ClusterLogicalTimestamp,
                _,
            ) => Some(DataType::Text),
            _ => None,
        }
    }

    /// Evaluates the expression over `row`.
    pub fn eval(&self, row: &[Value], ctx: &EvalContext) -> Result<Value> {
        Ok(match self {
            Expr::Literal(v) => v.clone(),
            Expr::Column(i) => row.get(*i).cloned().ok_or_else(|| {
                SqlError::Internal(format!("column {i} of a {}-column row", row.len()))
            })?,
            Expr::Not(e) => match e.eval(row, ctx)?.as_condition()? {
                None => Value::Null,
                Some(b) => Value::Bool(!b),
            },
            Expr::Neg(e) => negate(e.eval(row, ctx)?)?,
            Expr::Binary(BinaryOp::And, a, b) => {
                let left = a.eval(row, ctx)?.as_condition()?;
                if left == Some(false) {
                    return Ok(Value::Bool(false));
                }
                match (left, b.eval(row, ctx)?.as_condition()?) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Expr::Binary(BinaryOp::Or, a, b) => {
                let left = a.eval(row, ctx)?.as_condition()?;
                if left == Some(true) {
                    return Ok(Value::Bool(true));
                }
                match (left, b.eval(row, ctx)?.as_condition()?) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                }
            }
            Expr::Binary(op, a, b) => binary(*op, a.eval(row, ctx)?, b.eval(row, ctx)?)?,
            Expr::IsNull(e, negated) => Value::Bool(e.eval(row, ctx)?.is_null() != *negated),
            Expr::IsDistinct(a, b, negated) => {
                let (a, b) = (a.eval(row, ctx)?, b.eval(row, ctx)?);
                let distinct = match (a.is_null(), b.is_null()) {
                    (true, true) => false,
                    (true, false) | (false, true) => true,
                    (false, false) => a.sql_cmp(&b)? != Some(Ordering::Equal),
                };
                Value::Bool(distinct != *negated)
            }
            Expr::IsBool(e, want, negated) => {
                let is = e.eval(row, ctx)?.as_condition()? == Some(*want);
                Value::Bool(is != *negated)
            }
            Expr::InList(e, list, negated) => {
                let value = e.eval(row, ctx)?;
                if value.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    match value.sql_cmp(&item.eval(row, ctx)?)? {
                        Some(Ordering::Equal) => return Ok(Value::Bool(!*negated)),
                        None => saw_null = true,
                        Some(_) => {}
                    }
                }
                if saw_null { Value::Null } else { Value::Bool(*negated) }
            }
            Expr::Like { expr, pattern, negated, case_insensitive } => {
                match (expr.eval(row, ctx)?, pattern.eval(row, ctx)?) {
                    (Value::Null, _) | (_, Value::Null) => Value::Null,
                    (Value::Text(s), Value::Text(p)) => {
                        let matched = if *case_insensitive {
                            like(&s.to_lowercase(), &p.to_lowercase())
                        } else {
                            like(&s, &p)
                        };
                        Value::Bool(matched != *negated)
                    }
                    (a, b) => {
                        return Err(SqlError::DatatypeMismatch(format!(
                            "unsupported binary operator: {} LIKE {}",
                            a.type_name(),
                            b.type_name()
                        )));
                    }
                }
            }
            Expr::Case { operand, whens, otherwise } => {
                let operand = operand.as_ref().map(|o| o.eval(row, ctx)).transpose()?;
                for (when, then) in whens {
                    let hit = match &operand {
                        Some(value) => {
                            value.sql_cmp(&when.eval(row, ctx)?)? == Some(Ordering::Equal)
                        }
                        None => when.eval(row, ctx)?.as_condition()? == Some(true),
                    };
                    if hit {
                        return then.eval(row, ctx);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row, ctx)?,
                    None => Value::Null,
                }
            }
            Expr::Cast(e, to) => e.eval(row, ctx)?.cast(to)?,
            Expr::Call(f, args) => call(*f, args, row, ctx)?,
            Expr::Outer(slot, _) => {
                return Err(SqlError::Internal(format!("outer reference ${slot} left unbound")));
            }
            Expr::Subquery(id, _) => {
                return Err(SqlError::Internal(format!("subquery {id} was never hoisted")));
            }
        })
    }

    /// Whether the expression reads no column (it can be folded to a constant).
    pub fn is_constant(&self) -> bool {
        let mut constant = true;
        self.walk(&mut |e| {
            if matches!(e, Expr::Column(_) | Expr::Outer(..) | Expr::Subquery(..)) {
                constant = false;
            }
        });
        constant
    }

    /// Visits this expression and every sub-expression.
    pub fn walk(&self, visit: &mut impl FnMut(&Expr)) {
        visit(self);
        match self {
            Expr::Literal(_) | Expr::Column(_) | Expr::Outer(..) | Expr::Subquery(..) => {}
            Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e, _) | Expr::IsBool(e, ..) => e.walk(visit),
            Expr::Cast(e, _) => e.walk(visit),
            Expr::Binary(_, a, b) | Expr::IsDistinct(a, b, _) => {
                a.walk(visit);
                b.walk(visit);
            }
            Expr::InList(e, list, _) => {
                e.walk(visit);
                list.iter().for_each(|i| i.walk(visit));
            }
            Expr::Like { expr, pattern, .. } => {
                expr.walk(visit);
                pattern.walk(visit);
            }
            Expr::Case { operand, whens, otherwise } => {
                operand.iter().for_each(|o| o.walk(visit));
                for (w, t) in whens {
                    w.walk(visit);
                    t.walk(visit);
                }
                otherwise.iter().for_each(|o| o.walk(visit));
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.walk(visit)),
        }
    }
}

fn negate(v: Value) -> Result<Value> {
    Ok(match v {
        Value::Null => Value::Null,
        Value::Int(i) => Value::Int(
            i.checked_neg()
                .ok_or_else(|| SqlError::NumericOutOfRange("integer out of range".into()))?,
        ),
        Value::Float(f) => Value::Float(-f),
        Value::Decimal(d) => Value::Decimal(-d),
        other => {
            return Err(SqlError::DatatypeMismatch(format!(
                "unsupported unary operator: -{}",
                other.type_name()
            )));
        }
    })
}

/// The numeric form two operands are computed in.
enum Numbers {
    Int(i64, i64),
    Float(f64, f64),
    Decimal(Decimal, Decimal),
}

fn numbers(a: &Value, b: &Value) -> Option<Numbers> {
    use Value::*;
    Some(match (a, b) {
        (Int(x), Int(y)) => Numbers::Int(*x, *y),
        (Float(x), Float(y)) => Numbers::Float(*x, *y),
        (Int(x), Float(y)) => Numbers::Float(*x as f64, *y),
        (Float(x), Int(y)) => Numbers::Float(*x, *y as f64),
        (Decimal(x), Decimal(y)) => Numbers::Decimal(*x, *y),
        (Int(x), Decimal(y)) => Numbers::Decimal((*x).into(), *y),
        (Decimal(x), Int(y)) => Numbers::Decimal(*x, (*y).into()),
        (Float(x), Decimal(y)) => Numbers::Float(*x, decimal_to_f64(y)),
        (Decimal(x), Float(y)) => Numbers::Float(decimal_to_f64(x), *y),
        _ => return None,
    })
}

pub(crate) fn overflow() -> SqlError {
    SqlError::NumericOutOfRange("integer out of range".into())
}

pub(crate) fn binary(op: BinaryOp, a: Value, b: Value) -> Result<Value> {
    use BinaryOp::*;
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let mismatch = |a: &Value, b: &Value| {
        SqlError::DatatypeMismatch(format!(
            "unsupported binary operator: {} {} {}",
            a.type_name(),
            op.symbol(),
            b.type_name()
        ))
    };
    match op {
        Eq | NotEq | Lt | LtEq | Gt | GtEq => {
            let ord = a.sql_cmp(&b)?.expect("neither is NULL");
            let result = match op {
                Eq => ord == Ordering::Equal,
                NotEq => ord != Ordering::Equal,
                Lt => ord == Ordering::Less,
                LtEq => ord != Ordering::Greater,
                Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            };
            Ok(Value::Bool(result))
        }
        Concat => match (&a, &b) {
            (Value::Bytes(x), Value::Bytes(y)) => Ok(Value::Bytes([x.as_slice(), y].concat())),
            (Value::Text(_), _) | (_, Value::Text(_)) => Ok(Value::Text(format!(
                "{}{}",
                a.to_text().unwrap_or_default(),
                b.to_text().unwrap_or_default()
            ))),
            _ => Err(mismatch(&a, &b)),
        },
        Add | Sub | Mul | Div | Mod => {
            if let Some(result) = datetime_arith(op, &a, &b) {
                return result;
            }
            let Some(n) = numbers(&a, &b) else { return Err(mismatch(&a, &b)) };
            arith(op, n)
        }
        And | Or => unreachable!("evaluated with short-circuiting"),
    }
}

/// Date arithmetic: date ± int (days) and date - date (days); None for other operands.
fn datetime_arith(op: BinaryOp, a: &Value, b: &Value) -> Option<Result<Value>> {
    match (op, a, b) {
        (BinaryOp::Add, Value::Date(d), Value::Int(n))
        | (BinaryOp::Add, Value::Int(n), Value::Date(d)) => Some(shift_date(*d, *n)),
        (BinaryOp::Sub, Value::Date(d), Value::Int(n)) => {
            Some(n.checked_neg().ok_or_else(overflow).and_then(|n| shift_date(*d, n)))
        }
        (BinaryOp::Sub, Value::Date(x), Value::Date(y)) => {
            Some(Ok(Value::Int(i64::from(*x) - i64::from(*y))))
        }
        _ => None,
    }
}

fn shift_date(d: i32, n: i64) -> Result<Value> {
    i64::from(d)
        .checked_add(n)
        .and_then(|v| i32::try_from(v).ok())
        .map(Value::Date)
        .ok_or_else(|| SqlError::DatetimeOverflow("date out of range".into()))
}

fn arith(op: BinaryOp, n: Numbers) -> Result<Value> {
    use BinaryOp::*;
    Ok(match n {
        Numbers::Int(x, y) => Value::Int(match op {
            Add => x.checked_add(y).ok_or_else(overflow)?,
            Sub => x.checked_sub(y).ok_or_else(overflow)?,
            Mul => x.checked_mul(y).ok_or_else(overflow)?,
            Div if y == 0 => return Err(SqlError::DivisionByZero),
            Div => x.checked_div(y).ok_or_else(overflow)?,
            Mod if y == 0 => return Err(SqlError::DivisionByZero),
            _ => x.checked_rem(y).unwrap_or(0),
        }),
        Numbers::Float(x, y) => Value::Float(match op {
            Add => x + y,
            Sub => x - y,
            Mul => x * y,
            Div | Mod if y == 0.0 => return Err(SqlError::DivisionByZero),
            Div => x / y,
            _ => x % y,
        }),
        Numbers::Decimal(x, y) => {
            let out_of_range = || SqlError::NumericOutOfRange("decimal out of range".into());
            Value::Decimal(match op {
                Add => x.checked_add(y).ok_or_else(out_of_range)?,
                Sub => x.checked_sub(y).ok_or_else(out_of_range)?,
                Mul => x.checked_mul(y).ok_or_else(out_of_range)?,
                Div | Mod if y.is_zero() => return Err(SqlError::DivisionByZero),
                Div => x.checked_div(y).ok_or_else(out_of_range)?.normalize(),
                _ => x.checked_rem(y).ok_or_else(out_of_range)?,
            })
        }
    })
}

impl BinaryOp {
    /// The operator as SQL writes it.
    pub fn symbol(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Concat => "||",
            Eq => "=",
            NotEq => "<>",
            Lt => "<",
            LtEq => "<=",
            Gt => ">",
            GtEq => ">=",
            And => "AND",
            Or => "OR",
        }
    }
}

/// SQL LIKE: `%` matches any run, `_` one character, `\` escapes the next one.
pub fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    // Iterative matching with backtracking to the last `%`, linear in practice.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('%') => {
                star = Some((p, t));
                p += 1;
            }
            Some('\\') if pattern.get(p + 1) == Some(&text[t]) => {
                p += 2;
                t += 1;
            }
            Some('_') => {
                p += 1;
                t += 1;
            }
            Some(c) if *c != '\\' && *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CTX: EvalContext = EvalContext { now_micros: 0, hlc: shoal_hlc::Timestamp::ZERO };

    fn lit(v: Value) -> Box<Expr> {
        Box::new(Expr::Literal(v))
    }

    #[test]
    fn three_valued_logic() {
        let and = Expr::Binary(BinaryOp::And, lit(Value::Null), lit(Value::Bool(false)));
        assert_eq!(and.eval(&[], &CTX).unwrap(), Value::Bool(false));
        let or = Expr::Binary(BinaryOp::Or, lit(Value::Null), lit(Value::Bool(true)));
        assert_eq!(or.eval(&[], &CTX).unwrap(), Value::Bool(true));
        let or = Expr::Binary(BinaryOp::Or, lit(Value::Null), lit(Value::Bool(false)));
        assert!(or.eval(&[], &CTX).unwrap().is_null());
        let in_list = Expr::InList(lit(Value::Int(1)), vec![Expr::Literal(Value::Null)], false);
        assert!(in_list.eval(&[], &CTX).unwrap().is_null());
    }

    #[test]
    fn arithmetic_is_checked() {
        let div = Expr::Binary(BinaryOp::Div, lit(Value::Int(7)), lit(Value::Int(2)));
        assert_eq!(div.eval(&[], &CTX).unwrap(), Value::Int(3));
        let zero = Expr::Binary(BinaryOp::Div, lit(Value::Int(1)), lit(Value::Int(0)));
        assert_eq!(zero.eval(&[], &CTX).unwrap_err().sqlstate(), "22012");
        let big = Expr::Binary(BinaryOp::Mul, lit(Value::Int(i64::MAX)), lit(Value::Int(2)));
        assert_eq!(big.eval(&[], &CTX).unwrap_err().sqlstate(), "22003");
    }

    #[test]
    fn like_patterns() {
        assert!(like("abc", "a%"));
        assert!(like("abc", "_b_"));
        assert!(!like("abc", "a_"));
        assert!(like("a%c", "a\\%c"));
        assert!(!like("abc", "a\\%c"));
        assert!(like("", "%"));
    }

    proptest! {
        #[test]
        fn like_never_panics(text in ".{0,12}", pattern in "[a%_\\\\]{0,8}") {
            let _ = like(&text, &pattern);
        }

        #[test]
        fn a_literal_pattern_matches_only_itself(text in "[a-c]{0,6}", other in "[a-c]{0,6}") {
            prop_assert_eq!(like(&text, &other), text == other);
        }
    }
}
