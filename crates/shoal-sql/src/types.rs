//! SQL types and values.
//!
//! A [`Value`] is one SQL datum; [`DataType`] is a column's declared type, which narrows what
//! a value may be (widths, lengths, precision) and decides casts. Integers of every width are
//! `i64` with range checks at assignment, as in CockroachDB (where `INT` is 64-bit);
//! timestamps are microseconds since the Unix epoch, in UTC for `TIMESTAMPTZ`; dates are days
//! since the epoch.
//!
//! ```text
//!   SQL               DataType          Value
//!   INT, BIGINT       Int(8)            Int(i64)         INT2/SMALLINT: Int(2), INT4: Int(4)
//!   FLOAT, DOUBLE     Float(8)          Float(f64)       REAL/FLOAT4: Float(4), rounded to f32
//!   DECIMAL(p, s)     Decimal(p, s)     Decimal          28 significant digits at most
//!   TEXT, VARCHAR(n)  Text / Varchar(n) Text             CHAR(n): padded with spaces
//!   BOOL              Bool              Bool
//!   BYTEA             Bytes             Bytes
//!   TIMESTAMP(TZ)     Timestamp(Tz)     Timestamp(µs)    TimestampTz(µs, UTC)
//!   DATE              Date              Date(days)
//! ```
//!
//! # NULL
//!
//! `Value::Null` has no type. Comparisons with it yield NULL ([`Value::sql_cmp`] returns
//! `None`); sorting puts it first ascending ([`Value::sort_cmp`], as CockroachDB does).
//!
//! # Text format
//!
//! [`Value::to_text`] is PostgreSQL's text output: `t`/`f` for booleans, `\x…` for bytes,
//! `2024-01-02 03:04:05.5` for timestamps, `+00:00` after a `TIMESTAMPTZ`.
//! Formatting and parsing text live in [`crate::types_text`].

use std::cmp::Ordering;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SqlError};
pub use crate::types_text::parse_text;
use crate::types_text::{format_date, format_float, format_timestamp};

/// A column's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// A 2-, 4- or 8-byte integer.
    Int(u8),
    /// A 4- or 8-byte float.
    Float(u8),
    /// An exact number with at most `precision` digits, `scale` of them after the point.
    Decimal(Option<(u8, u8)>),
    /// Text of any length.
    Text,
    /// Text of at most n characters.
    Varchar(u32),
    /// Text of exactly n characters, padded with spaces.
    Char(u32),
    /// A boolean.
    Bool,
    /// A byte string.
    Bytes,
    /// A date and time without a time zone.
    Timestamp,
    /// An instant, shown in UTC.
    TimestampTz,
    /// A date.
    Date,
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Int(2) => write!(f, "INT2"),
            DataType::Int(4) => write!(f, "INT4"),
            DataType::Int(_) => write!(f, "INT8"),
            DataType::Float(4) => write!(f, "FLOAT4"),
            DataType::Float(_) => write!(f, "FLOAT8"),
            DataType::Decimal(None) => write!(f, "DECIMAL"),
            DataType::Decimal(Some((p, s))) => write!(f, "DECIMAL({p},{s})"),
            DataType::Text => write!(f, "STRING"),
            DataType::Varchar(n) => write!(f, "VARCHAR({n})"),
            DataType::Char(n) => write!(f, "CHAR({n})"),
            DataType::Bool => write!(f, "BOOL"),
            DataType::Bytes => write!(f, "BYTES"),
            DataType::Timestamp => write!(f, "TIMESTAMP"),
            DataType::TimestampTz => write!(f, "TIMESTAMPTZ"),
            DataType::Date => write!(f, "DATE"),
        }
    }
}

/// A type's category, as PostgreSQL groups types (`pg_type.typcategory`): values of one
/// category compare with each other, values of two categories do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeCategory {
    /// Integers, floats and decimals.
    Numeric,
    /// Text, varchar and char.
    String,
    /// Booleans.
    Boolean,
    /// Byte strings.
    Bytes,
    /// Dates and timestamps.
    DateTime,
}

impl DataType {
    /// The type's category.
    pub fn category(&self) -> TypeCategory {
        match self {
            DataType::Int(_) | DataType::Float(_) | DataType::Decimal(_) => TypeCategory::Numeric,
            DataType::Text | DataType::Varchar(_) | DataType::Char(_) => TypeCategory::String,
            DataType::Bool => TypeCategory::Boolean,
            DataType::Bytes => TypeCategory::Bytes,
            DataType::Timestamp | DataType::TimestampTz | DataType::Date => TypeCategory::DateTime,
        }
    }

    /// The name PostgreSQL gives the type in error messages (`bigint`, `text`, ...).
    pub fn pg_name(&self) -> &'static str {
        match self {
            DataType::Int(2) => "smallint",
            DataType::Int(4) => "integer",
            DataType::Int(_) => "bigint",
            DataType::Float(4) => "real",
            DataType::Float(_) => "double precision",
            DataType::Decimal(_) => "numeric",
            DataType::Text => "text",
            DataType::Varchar(_) => "character varying",
            DataType::Char(_) => "character",
            DataType::Bool => "boolean",
            DataType::Bytes => "bytea",
            DataType::Timestamp => "timestamp without time zone",
            DataType::TimestampTz => "timestamp with time zone",
            DataType::Date => "date",
        }
    }

    /// The parser's AST for this type; [`DataType::from_ast`] reads it back unchanged.
    pub fn to_ast(&self) -> sqlparser::ast::DataType {
        use sqlparser::ast::{CharacterLength, DataType as A, ExactNumberInfo, TimezoneInfo};
        let length =
            |n: u32| Some(CharacterLength::IntegerLength { length: u64::from(n), unit: None });
        match self {
            DataType::Int(2) => A::SmallInt(None),
            DataType::Int(4) => A::Int4(None),
            DataType::Int(_) => A::BigInt(None),
            DataType::Float(4) => A::Real,
            DataType::Float(_) => A::DoublePrecision,
            DataType::Decimal(None) => A::Numeric(ExactNumberInfo::None),
            DataType::Decimal(Some((p, s))) => {
                A::Numeric(ExactNumberInfo::PrecisionAndScale(u64::from(*p), i64::from(*s)))
            }
            DataType::Text => A::Text,
            DataType::Varchar(n) => A::Varchar(length(*n)),
            DataType::Char(n) => A::Char(length(*n)),
            DataType::Bool => A::Boolean,
            DataType::Bytes => A::Bytea,
            DataType::Timestamp => A::Timestamp(None, TimezoneInfo::None),
            DataType::TimestampTz => A::Timestamp(None, TimezoneInfo::WithTimeZone),
            DataType::Date => A::Date,
        }
    }

    /// Reads a type from the parser's AST; unknown types are not supported.
    pub fn from_ast(ast: &sqlparser::ast::DataType) -> Result<Self> {
        use sqlparser::ast::{CharacterLength, DataType as A, ExactNumberInfo};
        let length = |len: &Option<CharacterLength>| match len {
            Some(CharacterLength::IntegerLength { length, .. }) => {
                u32::try_from(*length).map_err(|_| SqlError::InvalidText("length too large".into()))
            }
            Some(CharacterLength::Max) | None => Ok(0),
        };
        Ok(match ast {
            A::SmallInt(_) | A::Int2(_) => DataType::Int(2),
            A::Int4(_) => DataType::Int(4),
            A::Int(_) | A::Integer(_) | A::BigInt(_) | A::Int8(_) | A::Int64 => DataType::Int(8),
            A::Real | A::Float4 => DataType::Float(4),
            A::Float(_) | A::Double(_) | A::DoublePrecision | A::Float8 | A::Float64 => {
                DataType::Float(8)
            }
            A::Decimal(info) | A::Numeric(info) | A::Dec(info) => match info {
                ExactNumberInfo::None => DataType::Decimal(None),
                ExactNumberInfo::Precision(p) => DataType::Decimal(Some((decimal_digits(*p)?, 0))),
                ExactNumberInfo::PrecisionAndScale(p, s) => {
                    let (p, s) = (decimal_digits(*p)?, u64::try_from(*s).unwrap_or(u64::MAX));
                    let s = decimal_digits(s)?;
                    if s > p {
                        return Err(SqlError::InvalidText(format!(
                            "DECIMAL scale {s} must be between 0 and precision {p}"
                        )));
                    }
                    DataType::Decimal(Some((p, s)))
                }
            },
            A::Text | A::String(_) => DataType::Text,
            A::Varchar(len) | A::CharacterVarying(len) | A::CharVarying(len) => {
                match length(len)? {
                    0 => DataType::Text,
                    n => DataType::Varchar(n),
                }
            }
            A::Char(len) | A::Character(len) => DataType::Char(length(len)?.max(1)),
            A::Bool | A::Boolean => DataType::Bool,
            A::Bytea | A::Bytes(_) => DataType::Bytes,
            A::Timestamp(_, tz) => match tz {
                sqlparser::ast::TimezoneInfo::WithTimeZone | sqlparser::ast::TimezoneInfo::Tz => {
                    DataType::TimestampTz
                }
                _ => DataType::Timestamp,
            },
            A::TimestampNtz(_) => DataType::Timestamp,
            A::Date => DataType::Date,
            other => return Err(SqlError::NotSupported(format!("type {other}"))),
        })
    }

    /// Whether the type is a number.
    pub fn is_numeric(&self) -> bool {
        matches!(self, DataType::Int(_) | DataType::Float(_) | DataType::Decimal(_))
    }

    /// Whether the type is text.
    pub fn is_text(&self) -> bool {
        matches!(self, DataType::Text | DataType::Varchar(_) | DataType::Char(_))
    }

    /// Returns the PostgreSQL type OID (for the wire protocol and the HTTP API's `types`).
    pub fn pg_oid(&self) -> u32 {
        match self {
            DataType::Int(2) => 21,
            DataType::Int(4) => 23,
            DataType::Int(_) => 20,
            DataType::Float(4) => 700,
            DataType::Float(_) => 701,
            DataType::Decimal(_) => 1700,
            DataType::Text => 25,
            DataType::Varchar(_) => 1043,
            DataType::Char(_) => 1042,
            DataType::Bool => 16,
            DataType::Bytes => 17,
            DataType::Timestamp => 1114,
            DataType::TimestampTz => 1184,
            DataType::Date => 1082,
        }
    }

    /// Converts `value` for storage in a column of this type: an implicit cast where one is
    /// allowed (an integer into a float column, text literals into dates...), then width and
    /// length checks. `column` names the column in errors.
    pub fn assign(&self, value: Value, column: &str) -> Result<Value> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let cast = match (&value, self) {
            // Text into a non-text column reads the text, as an untyped literal would.
            (Value::Text(_), t) if !t.is_text() => value.cast(t)?,
            (Value::Int(_) | Value::Float(_) | Value::Decimal(_), t) if t.is_numeric() => {
                value.cast(t)?
            }
            (Value::Timestamp(_) | Value::TimestampTz(_) | Value::Date(_), t)
                if matches!(t, DataType::Timestamp | DataType::TimestampTz | DataType::Date) =>
            {
                value.cast(t)?
            }
            (Value::Text(s), DataType::Varchar(n)) => {
                if s.chars().count() > *n as usize {
                    return Err(SqlError::StringTooLong(format!(
                        "value too long for type VARCHAR({n}) (column \"{column}\")"
                    )));
                }
                value
            }
            (Value::Text(s), DataType::Char(n)) => {
                let len = s.trim_end_matches(' ').chars().count();
                if len > *n as usize {
                    return Err(SqlError::StringTooLong(format!(
                        "value too long for type CHAR({n}) (column \"{column}\")"
                    )));
                }
                value.cast(self)?
            }
            (v, t) if v.data_type().is_some_and(|vt| same_family(&vt, t)) => value,
            (v, t) => {
                return Err(SqlError::DatatypeMismatch(format!(
                    "value type {} doesn't match type {t} of column \"{column}\"",
                    v.type_name()
                )));
            }
        };
        Ok(cast)
    }
}

fn same_family(a: &DataType, b: &DataType) -> bool {
    (a.is_text() && b.is_text())
        || (a.is_numeric() && b.is_numeric())
        || std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn decimal_digits(n: u64) -> Result<u8> {
    match u8::try_from(n) {
        Ok(n @ 1..=28) => Ok(n),
        _ => Err(SqlError::NotSupported(format!("DECIMAL precision {n} (at most 28 digits)"))),
    }
}

/// One SQL datum.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// An exact number.
    Decimal(Decimal),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// Microseconds since 1970-01-01 00:00:00, no time zone.
    Timestamp(i64),
    /// Microseconds since the Unix epoch, an instant.
    TimestampTz(i64),
    /// Days since 1970-01-01.
    Date(i32),
}

impl PartialEq for Value {
    /// Equality as sorting sees it: NULL equals NULL, NaN equals NaN (for DISTINCT, GROUP BY).
    fn eq(&self, other: &Self) -> bool {
        self.sort_cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Numbers equal across types must hash alike: hash their f64 when integral-valued.
        match self {
            Value::Null => 0u8.hash(state),
            Value::Bool(b) => b.hash(state),
            Value::Int(i) => (*i as f64).to_bits().hash(state),
            Value::Float(f) => {
                let f = if *f == 0.0 { 0.0 } else { *f };
                if f.is_nan() { u64::MAX.hash(state) } else { f.to_bits().hash(state) }
            }
            Value::Decimal(d) => {
                use rust_decimal::prelude::ToPrimitive;
                d.to_f64().unwrap_or(f64::NAN).to_bits().hash(state)
            }
            Value::Text(s) => s.hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::Timestamp(t) | Value::TimestampTz(t) => t.hash(state),
            Value::Date(d) => d.hash(state),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_text() {
            Some(text) => f.write_str(&text),
            None => f.write_str("NULL"),
        }
    }
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

impl Value {
    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value's type, None for NULL.
    pub fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => DataType::Bool,
            Value::Int(_) => DataType::Int(8),
            Value::Float(_) => DataType::Float(8),
            Value::Decimal(_) => DataType::Decimal(None),
            Value::Text(_) => DataType::Text,
            Value::Bytes(_) => DataType::Bytes,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::TimestampTz(_) => DataType::TimestampTz,
            Value::Date(_) => DataType::Date,
        })
    }

    /// The name of the value's type, for errors.
    pub fn type_name(&self) -> String {
        self.data_type().map_or_else(|| "unknown".to_string(), |t| t.to_string())
    }

    /// Compares two values as SQL does: None if either is NULL. Numbers compare across
    /// types; values of unrelated types are a type error.
    pub fn sql_cmp(&self, other: &Value) -> Result<Option<Ordering>> {
        if self.is_null() || other.is_null() {
            return Ok(None);
        }
        // A string compared with a date, time or number is read as one, as PostgreSQL types
        // a quoted literal from the other side (`d = '2024-03-10'`).
        match (self, other) {
            (Value::Text(s), v) | (v, Value::Text(s))
                if !matches!(v, Value::Text(_) | Value::Bytes(_)) =>
            {
                let data_type = v.data_type().expect("a non-NULL value has a type");
                let parsed = parse_text(s, &data_type)?;
                let (a, b) =
                    if matches!(self, Value::Text(_)) { (&parsed, other) } else { (self, &parsed) };
                return Ok(Some(a.sort_cmp(b)));
            }
            _ => {}
        }
        if !comparable(self, other) {
            return Err(SqlError::DatatypeMismatch(format!(
                "unsupported comparison operator: {} with {}",
                self.type_name(),
                other.type_name()
            )));
        }
        Ok(Some(self.sort_cmp(other)))
    }

    /// A total order for sorting and grouping: NULL first, NaN below every other float,
    /// numbers across types by value, values of unrelated types by a fixed type order.
    pub fn sort_cmp(&self, other: &Value) -> Ordering {
        use Value::*;
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (Null, _) => Ordering::Less,
            (_, Null) => Ordering::Greater,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => float_cmp(*a, *b),
            (Decimal(a), Decimal(b)) => a.cmp(b),
            (Int(a), Float(b)) => float_cmp(*a as f64, *b),
            (Float(a), Int(b)) => float_cmp(*a, *b as f64),
            (Int(a), Decimal(b)) => rust_decimal::Decimal::from(*a).cmp(b),
            (Decimal(a), Int(b)) => a.cmp(&rust_decimal::Decimal::from(*b)),
            (Float(a), Decimal(b)) => float_cmp(*a, decimal_to_f64(b)),
            (Decimal(a), Float(b)) => float_cmp(decimal_to_f64(a), *b),
            (Text(a), Text(b)) => a.cmp(b),
            (Bytes(a), Bytes(b)) => a.cmp(b),
            (Timestamp(a), Timestamp(b)) | (TimestampTz(a), TimestampTz(b)) => a.cmp(b),
            (Timestamp(a), TimestampTz(b)) | (TimestampTz(a), Timestamp(b)) => a.cmp(b),
            (Date(a), Date(b)) => a.cmp(b),
            (Date(a), Timestamp(b) | TimestampTz(b)) => (*a as i64 * MICROS_PER_DAY).cmp(b),
            (Timestamp(a) | TimestampTz(a), Date(b)) => a.cmp(&(*b as i64 * MICROS_PER_DAY)),
            (a, b) => a.type_rank().cmp(&b.type_rank()),
        }
    }

    fn type_rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) | Value::Decimal(_) => 2,
            Value::Text(_) => 3,
            Value::Bytes(_) => 4,
            Value::Timestamp(_) | Value::TimestampTz(_) | Value::Date(_) => 5,
        }
    }

    /// Reads the value as a boolean condition: NULL is None; non-booleans are a type error.
    pub fn as_condition(&self) -> Result<Option<bool>> {
        match self {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            other => Err(SqlError::DatatypeMismatch(format!(
                "argument of WHERE must be type bool, not type {}",
                other.type_name()
            ))),
        }
    }

    /// Casts to `to` as `CAST(v AS to)` does: text parses, numbers convert (rounding to the
    /// target's scale or failing out of range), text truncates to VARCHAR(n).
    pub fn cast(self, to: &DataType) -> Result<Value> {
        use Value::*;
        let out_of_range = |v: &dyn fmt::Display| {
            SqlError::NumericOutOfRange(format!("{v} is out of range for type {to}"))
        };
        let value = match (self, to) {
            (Null, _) => Null,
            (Int(i), DataType::Int(width)) => {
                check_int_width(i, *width).ok_or_else(|| out_of_range(&i))?;
                Int(i)
            }
            (Float(f), DataType::Int(width)) => {
                let rounded = f.round_ties_even();
                if !rounded.is_finite() || rounded < i64::MIN as f64 || rounded >= i64::MAX as f64 {
                    return Err(out_of_range(&f));
                }
                let i = rounded as i64;
                check_int_width(i, *width).ok_or_else(|| out_of_range(&f))?;
                Int(i)
            }
            (Decimal(d), DataType::Int(width)) => {
                use rust_decimal::prelude::ToPrimitive;
                let i = d
                    .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                    .to_i64()
                    .ok_or_else(|| out_of_range(&d))?;
                check_int_width(i, *width).ok_or_else(|| out_of_range(&d))?;
                Int(i)
            }
            (Int(i), DataType::Float(w)) => Float(round_float(i as f64, *w)),
            (Float(f), DataType::Float(w)) => Float(round_float(f, *w)),
            (Decimal(d), DataType::Float(w)) => Float(round_float(decimal_to_f64(&d), *w)),
            (Int(i), DataType::Decimal(spec)) => Decimal(fit_decimal(i.into(), *spec, to)?),
            (Float(f), DataType::Decimal(spec)) => {
                let d =
                    rust_decimal::Decimal::from_f64_retain(f).ok_or_else(|| out_of_range(&f))?;
                Decimal(fit_decimal(d.normalize(), *spec, to)?)
            }
            (Decimal(d), DataType::Decimal(spec)) => Decimal(fit_decimal(d, *spec, to)?),
            (Bool(b), DataType::Bool) => Bool(b),
            (Int(i), DataType::Bool) => Bool(i != 0),
            (Bool(b), DataType::Int(_)) => Int(i64::from(b)),
            (Text(s), t) => parse_text(&s, t)?,
            (Bytes(b), DataType::Bytes) => Bytes(b),
            // The output format abbreviates to t/f; a cast spells it out, as in PostgreSQL.
            (Bool(b), t) if t.is_text() => parse_text(if b { "true" } else { "false" }, t)?,
            (v, t) if t.is_text() => parse_text(&v.to_text().unwrap_or_default(), t)?,
            (Timestamp(t), DataType::Timestamp) | (TimestampTz(t), DataType::Timestamp) => {
                Timestamp(t)
            }
            (Timestamp(t), DataType::TimestampTz) | (TimestampTz(t), DataType::TimestampTz) => {
                TimestampTz(t)
            }
            (Timestamp(t) | TimestampTz(t), DataType::Date) => {
                Date(i32::try_from(t.div_euclid(MICROS_PER_DAY)).map_err(|_| out_of_range(&t))?)
            }
            (Date(d), DataType::Date) => Date(d),
            (Date(d), DataType::Timestamp) => Timestamp(d as i64 * MICROS_PER_DAY),
            (Date(d), DataType::TimestampTz) => TimestampTz(d as i64 * MICROS_PER_DAY),
            (v, t) => {
                return Err(SqlError::DatatypeMismatch(format!(
                    "invalid cast from {} to {t}",
                    v.type_name()
                )));
            }
        };
        Ok(value)
    }

    /// PostgreSQL's text output of the value; None for NULL.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(true) => "t".into(),
            Value::Bool(false) => "f".into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f),
            Value::Decimal(d) => d.to_string(),
            Value::Text(s) => s.clone(),
            Value::Bytes(b) => {
                let mut out = String::with_capacity(2 + 2 * b.len());
                out.push_str("\\x");
                for byte in b {
                    out.push_str(&format!("{byte:02x}"));
                }
                out
            }
            Value::Timestamp(t) => format_timestamp(*t),
            Value::TimestampTz(t) => format!("{}+00:00", format_timestamp(*t)),
            Value::Date(d) => format_date(*d),
        })
    }
}

fn comparable(a: &Value, b: &Value) -> bool {
    a.type_rank() == b.type_rank()
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Converts a decimal to the nearest float.
pub(crate) fn decimal_to_f64(d: &Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(f64::NAN)
}

fn check_int_width(i: i64, width: u8) -> Option<i64> {
    let ok = match width {
        2 => i16::try_from(i).is_ok(),
        4 => i32::try_from(i).is_ok(),
        _ => true,
    };
    ok.then_some(i)
}

pub(crate) fn round_float(f: f64, width: u8) -> f64 {
    if width == 4 { f as f32 as f64 } else { f }
}

pub(crate) fn fit_decimal(d: Decimal, spec: Option<(u8, u8)>, to: &DataType) -> Result<Decimal> {
    let Some((precision, scale)) = spec else { return Ok(d) };
    let mut rounded = d.round_dp_with_strategy(
        u32::from(scale),
        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
    );
    rounded.rescale(u32::from(scale));
    // Digits before the point may be at most precision - scale.
    let integral = rounded.trunc().abs();
    let limit = Decimal::from_i128_with_scale(10i128.pow(u32::from(precision - scale)), 0);
    if integral >= limit {
        return Err(SqlError::NumericOutOfRange(format!(
            "value {d} overflows type {to}: at most {} digits before the decimal point",
            precision - scale
        )));
    }
    Ok(rounded)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn text_output_matches_postgres() {
        assert_eq!(Value::Bool(true).to_text().unwrap(), "t");
        assert_eq!(Value::Float(2.0).to_text().unwrap(), "2");
        assert_eq!(Value::Float(1e20).to_text().unwrap(), "1e+20");
        assert_eq!(Value::Bytes(vec![0xde, 0xad]).to_text().unwrap(), "\\xdead");
        let ts = parse_text("2024-01-02 03:04:05.5", &DataType::Timestamp).unwrap();
        assert_eq!(ts.to_text().unwrap(), "2024-01-02 03:04:05.5");
        let tz = parse_text("2024-01-02 03:04:05+02", &DataType::TimestampTz).unwrap();
        assert_eq!(tz.to_text().unwrap(), "2024-01-02 01:04:05+00:00");
        let date = parse_text("1969-12-31", &DataType::Date).unwrap();
        assert_eq!(date.to_text().unwrap(), "1969-12-31");
        assert!(Value::Null.to_text().is_none());
    }

    #[test]
    fn casts_check_ranges_and_round() {
        assert!(matches!(
            Value::Int(70_000).cast(&DataType::Int(2)),
            Err(SqlError::NumericOutOfRange(_))
        ));
        let d = parse_text("12.345", &DataType::Decimal(Some((5, 2)))).unwrap();
        assert_eq!(d.to_text().unwrap(), "12.35");
        assert!(parse_text("1234.5", &DataType::Decimal(Some((5, 2)))).is_err());
        assert_eq!(Value::Float(2.5).cast(&DataType::Int(8)).unwrap(), Value::Int(2));
        assert!(matches!(parse_text("abc", &DataType::Int(8)), Err(SqlError::InvalidText(_))));
        assert_eq!(
            DataType::Varchar(3).assign(Value::Text("abcd".into()), "c").unwrap_err().sqlstate(),
            "22001"
        );
    }

    #[test]
    fn nulls_compare_unknown_but_sort_first() {
        assert_eq!(Value::Null.sql_cmp(&Value::Int(1)).unwrap(), None);
        assert_eq!(Value::Null.sort_cmp(&Value::Int(1)), Ordering::Less);
        assert_eq!(Value::Int(1).sql_cmp(&Value::Float(1.0)).unwrap(), Some(Ordering::Equal));
        // Text against a number or a date reads as one (a quoted literal's type comes from
        // the other side); text that does not read so is an error, as are unrelated types.
        assert_eq!(Value::Int(1).sql_cmp(&Value::Text("1".into())).unwrap(), Some(Ordering::Equal));
        assert_eq!(Value::Text("2".into()).sql_cmp(&Value::Int(10)).unwrap(), Some(Ordering::Less));
        assert_eq!(
            Value::Date(1).sql_cmp(&Value::Text("1970-01-02".into())).unwrap(),
            Some(Ordering::Equal)
        );
        assert!(Value::Int(1).sql_cmp(&Value::Text("one".into())).is_err());
        assert!(Value::Int(1).sql_cmp(&Value::Bytes(vec![1])).is_err());
    }

    proptest! {
        #[test]
        fn parsing_text_never_panics(s in ".{0,24}") {
            for t in [DataType::Int(8), DataType::Float(8), DataType::Decimal(Some((10, 2))),
                      DataType::Bool, DataType::Bytes, DataType::Timestamp, DataType::TimestampTz,
                      DataType::Date, DataType::Char(3), DataType::Varchar(2)] {
                let _ = parse_text(&s, &t);
            }
        }

        #[test]
        fn integers_round_trip_through_text(i in any::<i64>()) {
            let text = Value::Int(i).to_text().unwrap();
            prop_assert_eq!(parse_text(&text, &DataType::Int(8)).unwrap(), Value::Int(i));
        }
    }
}
