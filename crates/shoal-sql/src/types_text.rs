//! Values as text: PostgreSQL's text output for floats, timestamps and dates, and reading a
//! value of a given type from text (literals, casts, pgwire text parameters).
//!
//! ```text
//!   parse_text("2024-01-02 03:04:05+02", TimestampTz) → TimestampTz(µs of 01:04:05 UTC)
//!   format_float(1e21) → "1e+21"      format_float(0.1) → "0.1"
//! ```
//!
//! Formats follow PostgreSQL 15 where Shoal has the type (see [`crate::types`] for the
//! deliberate differences).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;

use crate::error::{Result, SqlError};
use crate::types::{DataType, Value, fit_decimal, round_float};

pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "Infinity".into()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".into()
    } else if f == 0.0 {
        "0".into()
    } else if f.abs() >= 1e15 || f.abs() < 1e-4 {
        // PostgreSQL switches to exponent notation for very large or small magnitudes.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp:0>2}"),
            Some((mantissa, exp)) => format!("{mantissa}e-{:0>2}", &exp[1..]),
            None => s,
        }
    } else {
        format!("{f}")
    }
}

pub(crate) fn format_timestamp(micros: i64) -> String {
    match DateTime::from_timestamp_micros(micros) {
        Some(dt) => {
            let naive = dt.naive_utc();
            let frac = micros.rem_euclid(1_000_000);
            let base = naive.format("%Y-%m-%d %H:%M:%S").to_string();
            if frac == 0 {
                base
            } else {
                let digits = format!("{frac:06}");
                format!("{base}.{}", digits.trim_end_matches('0'))
            }
        }
        None => format!("<timestamp {micros}>"),
    }
}

pub(crate) fn format_date(days: i32) -> String {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    match epoch.checked_add_signed(chrono::TimeDelta::days(days as i64)) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => format!("<date {days}>"),
    }
}

/// Parses text as a value of type `to` (string literals, `CAST('…' AS t)`).
pub fn parse_text(s: &str, to: &DataType) -> Result<Value> {
    let invalid = || SqlError::InvalidText(format!("invalid input syntax for type {to}: \"{s}\""));
    let trimmed = s.trim();
    Ok(match to {
        DataType::Int(width) => {
            let digits = trimmed.strip_prefix(['-', '+']).unwrap_or(trimmed);
            let i: i64 = trimmed.parse().map_err(|_| {
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    SqlError::NumericOutOfRange(format!(
                        "value \"{s}\" is out of range for type {to}"
                    ))
                } else {
                    invalid()
                }
            })?;
            Value::Int(i).cast(&DataType::Int(*width))?
        }
        DataType::Float(w) => {
            let f = match trimmed.to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "infinity" | "inf" | "+infinity" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                other => other.parse().map_err(|_| invalid())?,
            };
            Value::Float(round_float(f, *w))
        }
        DataType::Decimal(spec) => {
            let d = Decimal::from_str_exact(trimmed)
                .or_else(|_| Decimal::from_scientific(trimmed))
                .map_err(|_| invalid())?;
            Value::Decimal(fit_decimal(d, *spec, to)?)
        }
        DataType::Text => Value::Text(s.to_string()),
        DataType::Varchar(n) => Value::Text(s.chars().take(*n as usize).collect()),
        DataType::Char(n) => {
            let mut text: String = s.trim_end_matches(' ').chars().take(*n as usize).collect();
            let len = text.chars().count();
            text.extend(std::iter::repeat_n(' ', *n as usize - len));
            Value::Text(text)
        }
        DataType::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "y" | "on" | "1" => Value::Bool(true),
            "f" | "false" | "no" | "n" | "off" | "0" => Value::Bool(false),
            _ => return Err(invalid()),
        },
        DataType::Bytes => match s.strip_prefix("\\x") {
            Some(hex) => Value::Bytes(parse_hex(hex).ok_or_else(|| {
                SqlError::InvalidParameter(format!("invalid hexadecimal data in \"{s}\""))
            })?),
            None => Value::Bytes(s.as_bytes().to_vec()),
        },
        DataType::Timestamp => {
            Value::Timestamp(parse_timestamp(trimmed).ok_or_else(|| datetime_error(s, to))?)
        }
        DataType::TimestampTz => {
            Value::TimestampTz(parse_timestamp_tz(trimmed).ok_or_else(|| datetime_error(s, to))?)
        }
        DataType::Date => {
            let date = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").map_err(|e| {
                use chrono::format::ParseErrorKind;
                match e.kind() {
                    // Well formed, but no such day (2024-02-30).
                    ParseErrorKind::OutOfRange | ParseErrorKind::Impossible => {
                        SqlError::DatetimeOverflow(format!("date out of range: \"{s}\""))
                    }
                    _ => SqlError::InvalidDatetimeFormat(format!(
                        "invalid input syntax for type {to}: \"{s}\""
                    )),
                }
            })?;
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
            Value::Date(
                i32::try_from((date - epoch).num_days())
                    .map_err(|_| SqlError::DatetimeOverflow(format!("date out of range: {s}")))?,
            )
        }
    })
}

/// Text that looks like a date and time but names none (`2024-01-01 25:00:00`) is out of
/// range (22008); anything else is not a date or time at all (22007).
fn datetime_error(s: &str, to: &DataType) -> SqlError {
    let shaped =
        s.contains('-') && s.trim().chars().all(|c| c.is_ascii_digit() || "-: .+T".contains(c));
    if shaped {
        SqlError::DatetimeOverflow(format!("date/time field value out of range: \"{s}\""))
    } else {
        SqlError::InvalidDatetimeFormat(format!("invalid input syntax for type {to}: \"{s}\""))
    }
}

fn parse_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, format) {
            return Some(dt);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.and_time(NaiveTime::MIN))
}

fn parse_timestamp(s: &str) -> Option<i64> {
    // A zone in a plain TIMESTAMP literal is ignored, as PostgreSQL does.
    parse_naive(s)
        .or_else(|| {
            DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z").ok().map(|d| d.naive_local())
        })
        .map(|dt| dt.and_utc().timestamp_micros())
}

fn parse_timestamp_tz(s: &str) -> Option<i64> {
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f %#z"]
    {
        if let Ok(dt) = DateTime::parse_from_str(s, format) {
            return Some(dt.timestamp_micros());
        }
    }
    // No zone: the session's, which is UTC.
    parse_naive(s).map(|dt| dt.and_utc().timestamp_micros())
}
