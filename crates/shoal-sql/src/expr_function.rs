//! Scalar functions: their names and arities, and how each is evaluated.
//!
//! ```text
//!   lower('ABC')          → 'abc'          NULL in, NULL out
//!   coalesce(NULL, 2, 3)  → 2              looks at NULLs itself, as do nullif, greatest,
//!                                          least, concat and the clock functions
//!   substr('hello', 2, 3) → 'ell'          a negative count is 22011
//! ```
//!
//! Functions are looked up by name and argument count ([`Function::lookup`]); an unknown name
//! or a wrong count is 42883. `now()`, `current_date` and `cluster_logical_timestamp()` read
//! the transaction's timestamp from the [`EvalContext`], never a clock.
//!
//! `cluster_logical_timestamp()` is the transaction's *commit* timestamp, as in CockroachDB: a
//! statement calling it ([`shows_commit_timestamp`]) first fixes the transaction's commit
//! timestamp at its read timestamp, so a transaction that would have to move later restarts
//! (40001) instead of refreshing. Histories can then be ordered by the timestamps they show
//! (the Jepsen monotonic workload does).

use std::cmp::Ordering;

use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};

use crate::error::{Result, SqlError};
use crate::expr::{BinaryOp, EvalContext, Expr, binary, overflow};
use crate::types::Value;

/// Whether `parsed` calls `cluster_logical_timestamp()`, so its transaction must commit at the
/// timestamp the call shows (see `shoal_kvclient::txn::Txn::fix_commit_timestamp`).
pub fn shows_commit_timestamp(parsed: &crate::syntax::Parsed) -> bool {
    parsed.any_expression(|e| match e {
        sqlparser::ast::Expr::Function(f) => crate::binder::object_name(&f.name)
            .is_ok_and(|name| name == "cluster_logical_timestamp"),
        _ => false,
    })
}

/// A scalar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Function {
    /// `lower(text)`
    Lower,
    /// `upper(text)`
    Upper,
    /// `length(text)`, `char_length(text)`
    Length,
    /// `substring(text, from [, count])`
    Substring,
    /// `trim(text)` (both ends)
    Trim,
    /// `ltrim(text)`
    Ltrim,
    /// `rtrim(text)`
    Rtrim,
    /// `replace(text, from, to)`
    Replace,
    /// `concat(...)`: NULLs count as empty
    Concat,
    /// `strpos(text, sub)`, `position(sub IN text)`
    Strpos,
    /// `left(text, n)`
    Left,
    /// `right(text, n)`
    Right,
    /// `abs(x)`
    Abs,
    /// `round(x [, digits])`
    Round,
    /// `floor(x)`
    Floor,
    /// `ceil(x)`
    Ceil,
    /// `sqrt(x)`
    Sqrt,
    /// `power(x, y)`
    Power,
    /// `mod(x, y)`
    Mod,
    /// `sign(x)`
    Sign,
    /// `coalesce(...)`
    Coalesce,
    /// `nullif(a, b)`
    NullIf,
    /// `greatest(...)`
    Greatest,
    /// `least(...)`
    Least,
    /// `now()`, `current_timestamp`: the transaction's timestamp
    Now,
    /// `current_date`
    CurrentDate,
    /// `cluster_logical_timestamp()`: the transaction's HLC commit timestamp as text,
    /// `<nanoseconds>.<logical, 10 digits>`, the form `AS OF SYSTEM TIME` takes
    ClusterLogicalTimestamp,
    // New variants go last: pushed-down filters encode a function by its position.
    /// `x + interval`: (x, months, days, microseconds), bound from an interval literal
    /// ([`crate::expr_datetime`])
    AddInterval,
    /// `extract(field from x)`: (field as text, x), numeric
    Extract,
    /// `date_part(field, x)`: `extract` as double precision
    DatePart,
}

impl Function {
    /// Looks a function up by name with its argument count; None if unknown.
    pub fn lookup(name: &str, args: usize) -> Option<Function> {
        use Function::*;
        let (f, arity): (Function, &dyn Fn(usize) -> bool) = match name {
            "lower" => (Lower, &|n| n == 1),
            "upper" => (Upper, &|n| n == 1),
            "length" | "char_length" | "character_length" => (Length, &|n| n == 1),
            "substring" | "substr" => (Substring, &|n| n == 2 || n == 3),
            "btrim" | "trim" => (Trim, &|n| n == 1),
            "ltrim" => (Ltrim, &|n| n == 1),
            "rtrim" => (Rtrim, &|n| n == 1),
            "replace" => (Replace, &|n| n == 3),
            "concat" => (Concat, &|n| n >= 1),
            "strpos" => (Strpos, &|n| n == 2),
            "left" => (Left, &|n| n == 2),
            "right" => (Right, &|n| n == 2),
            "abs" => (Abs, &|n| n == 1),
            "round" => (Round, &|n| n == 1 || n == 2),
            "floor" => (Floor, &|n| n == 1),
            "ceil" | "ceiling" => (Ceil, &|n| n == 1),
            "sqrt" => (Sqrt, &|n| n == 1),
            "power" | "pow" => (Power, &|n| n == 2),
            "mod" => (Mod, &|n| n == 2),
            "sign" => (Sign, &|n| n == 1),
            "coalesce" => (Coalesce, &|n| n >= 1),
            "nullif" => (NullIf, &|n| n == 2),
            "greatest" => (Greatest, &|n| n >= 1),
            "least" => (Least, &|n| n >= 1),
            "now" | "current_timestamp" | "transaction_timestamp" => (Now, &|n| n == 0),
            "current_date" => (CurrentDate, &|n| n == 0),
            "cluster_logical_timestamp" => (ClusterLogicalTimestamp, &|n| n == 0),
            "date_part" => (DatePart, &|n| n == 2),
            _ => return None,
        };
        arity(args).then_some(f)
    }
}

fn text_arg(v: &Value, f: Function) -> Result<String> {
    match v {
        Value::Text(s) => Ok(s.clone()),
        other => Err(SqlError::DatatypeMismatch(format!(
            "{f:?}() takes text, not {}",
            other.type_name()
        ))),
    }
}

fn int_arg(v: &Value, f: Function) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(SqlError::DatatypeMismatch(format!(
            "{f:?}() takes an integer, not {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn call(f: Function, args: &[Expr], row: &[Value], ctx: &EvalContext) -> Result<Value> {
    use Function::*;
    // Functions that look at NULL arguments themselves.
    match f {
        Coalesce => {
            for a in args {
                let v = a.eval(row, ctx)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            return Ok(Value::Null);
        }
        Concat => {
            let mut out = String::new();
            for a in args {
                out.push_str(&a.eval(row, ctx)?.to_text().unwrap_or_default());
            }
            return Ok(Value::Text(out));
        }
        Greatest | Least => {
            let mut best: Option<Value> = None;
            for a in args {
                let v = a.eval(row, ctx)?;
                if v.is_null() {
                    continue;
                }
                best = Some(match best {
                    None => v,
                    Some(b) => {
                        let ord = v.sql_cmp(&b)?.expect("neither is NULL");
                        let take = if f == Greatest { ord.is_gt() } else { ord.is_lt() };
                        if take { v } else { b }
                    }
                });
            }
            return Ok(best.unwrap_or(Value::Null));
        }
        NullIf => {
            let (a, b) = (args[0].eval(row, ctx)?, args[1].eval(row, ctx)?);
            return Ok(if a.sql_cmp(&b)? == Some(Ordering::Equal) { Value::Null } else { a });
        }
        Now => return Ok(Value::TimestampTz(ctx.now_micros)),
        ClusterLogicalTimestamp => {
            return Ok(Value::Text(format!("{}.{:010}", ctx.hlc.wall, ctx.hlc.logical)));
        }
        CurrentDate => {
            return Ok(Value::Date((ctx.now_micros.div_euclid(86_400_000_000)) as i32));
        }
        _ => {}
    }
    let values: Vec<Value> = args.iter().map(|a| a.eval(row, ctx)).collect::<Result<_>>()?;
    if values.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let v = &values[0];
    Ok(match f {
        AddInterval => {
            let part = |i: usize| int_arg(&values[i], f);
            let interval = crate::expr_datetime::IntervalParts {
                months: part(1)?,
                days: part(2)?,
                micros: part(3)?,
            };
            crate::expr_datetime::add_interval(v, interval)?
        }
        Extract | DatePart => {
            let field = text_arg(v, f)?.to_lowercase();
            match crate::expr_datetime::extract(&field, &values[1])? {
                Value::Decimal(d) if f == DatePart => Value::Float(d.to_f64().unwrap_or(f64::NAN)),
                other => other,
            }
        }
        Lower => Value::Text(text_arg(v, f)?.to_lowercase()),
        Upper => Value::Text(text_arg(v, f)?.to_uppercase()),
        Length => match v {
            Value::Bytes(b) => Value::Int(b.len() as i64),
            _ => Value::Int(text_arg(v, f)?.chars().count() as i64),
        },
        Substring => {
            let s: Vec<char> = text_arg(v, f)?.chars().collect();
            let from = int_arg(&values[1], f)?;
            let end = match values.get(2) {
                Some(count) => {
                    let count = int_arg(count, f)?;
                    if count < 0 {
                        return Err(SqlError::FunctionArgument {
                            code: "22011",
                            message: "negative substring length not allowed".into(),
                        });
                    }
                    from.saturating_add(count)
                }
                None => i64::MAX,
            };
            let start = from.max(1) - 1;
            let end = (end - 1).clamp(0, s.len() as i64);
            let start = start.min(end);
            Value::Text(s[start as usize..end as usize].iter().collect())
        }
        Trim => Value::Text(text_arg(v, f)?.trim_matches(' ').to_string()),
        Ltrim => Value::Text(text_arg(v, f)?.trim_start_matches(' ').to_string()),
        Rtrim => Value::Text(text_arg(v, f)?.trim_end_matches(' ').to_string()),
        Replace => {
            let from = text_arg(&values[1], f)?;
            let s = text_arg(v, f)?;
            if from.is_empty() {
                Value::Text(s)
            } else {
                Value::Text(s.replace(&from, &text_arg(&values[2], f)?))
            }
        }
        Strpos => {
            let (s, sub) = (text_arg(v, f)?, text_arg(&values[1], f)?);
            Value::Int(s.find(&sub).map_or(0, |i| s[..i].chars().count() as i64 + 1))
        }
        Left | Right => {
            let s: Vec<char> = text_arg(v, f)?.chars().collect();
            let n = int_arg(&values[1], f)?;
            let len = s.len() as i64;
            let keep = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
            let out: String = if f == Left {
                s[..keep].iter().collect()
            } else {
                s[s.len() - keep..].iter().collect()
            };
            Value::Text(out)
        }
        Abs => match v {
            Value::Int(i) => Value::Int(i.checked_abs().ok_or_else(overflow)?),
            Value::Float(x) => Value::Float(x.abs()),
            Value::Decimal(d) => Value::Decimal(d.abs()),
            other => return Err(numeric_expected(f, other)),
        },
        Round => {
            let digits = match values.get(1) {
                Some(d) => int_arg(d, f)?,
                None => 0,
            };
            match v {
                Value::Int(i) => Value::Int(*i),
                Value::Float(x) if values.len() == 1 => Value::Float(x.round_ties_even()),
                Value::Float(x) => {
                    let scale = 10f64.powi(digits.clamp(-300, 300) as i32);
                    Value::Float((x * scale).round() / scale)
                }
                Value::Decimal(d) => Value::Decimal(d.round_dp_with_strategy(
                    u32::try_from(digits.max(0)).unwrap_or(0),
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                )),
                other => return Err(numeric_expected(f, other)),
            }
        }
        Floor | Ceil => match v {
            Value::Int(i) => Value::Int(*i),
            Value::Float(x) => Value::Float(if f == Floor { x.floor() } else { x.ceil() }),
            Value::Decimal(d) => Value::Decimal(if f == Floor { d.floor() } else { d.ceil() }),
            other => return Err(numeric_expected(f, other)),
        },
        Sqrt => {
            let x = as_f64(v, f)?;
            if x < 0.0 {
                return Err(SqlError::FunctionArgument {
                    code: "2201F",
                    message: "cannot take square root of a negative number".into(),
                });
            }
            Value::Float(x.sqrt())
        }
        Power => Value::Float(as_f64(v, f)?.powf(as_f64(&values[1], f)?)),
        Mod => binary(BinaryOp::Mod, v.clone(), values[1].clone())?,
        Sign => match v {
            Value::Int(i) => Value::Int(i.signum()),
            Value::Float(x) => Value::Float(if *x == 0.0 { 0.0 } else { x.signum() }),
            Value::Decimal(d) => Value::Decimal(
                Decimal::from_i32(d.cmp(&Decimal::ZERO) as i32).unwrap_or(Decimal::ZERO),
            ),
            other => return Err(numeric_expected(f, other)),
        },
        Coalesce
        | Concat
        | Greatest
        | Least
        | NullIf
        | Now
        | CurrentDate
        | ClusterLogicalTimestamp => {
            unreachable!("handled above")
        }
    })
}

fn as_f64(v: &Value, f: Function) -> Result<f64> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(x) => Ok(*x),
        Value::Decimal(d) => Ok(d.to_f64().unwrap_or(f64::NAN)),
        other => Err(numeric_expected(f, other)),
    }
}

fn numeric_expected(f: Function, v: &Value) -> SqlError {
    SqlError::DatatypeMismatch(format!("{f:?}() takes a number, not {}", v.type_name()))
}
