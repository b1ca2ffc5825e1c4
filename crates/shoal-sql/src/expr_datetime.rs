//! Date and time arithmetic with interval literals, and `extract`.
//!
//! ```text
//!   date '1998-12-01' - interval '90' day    → timestamp '1998-09-02 00:00:00'
//!   timestamp '2020-01-31 10:00' + interval '1 month'   → '2020-02-29 10:00:00'
//!   extract(year from date '1995-03-15')      → 1995   (numeric, as PostgreSQL 15)
//! ```
//!
//! Shoal has no INTERVAL type yet (no interval columns, values or output). An interval
//! *literal* added to or subtracted from a date or timestamp is bound here into one call
//! that adds its months, days and microseconds in that order, as PostgreSQL does: months
//! first, clamped to the end of a shorter month (`2020-01-31 + 1 month` is `2020-02-29`),
//! then days, then the time. A date plus an interval is a timestamp, as in PostgreSQL; a
//! timestamp with time zone stays one (Shoal's are UTC). Any other use of an interval is
//! 0A000.
//!
//! `extract(field from x)` returns numeric. Dates take the calendar fields and epoch
//! (`hour` of a date is 0A000, as in PostgreSQL 15); timestamps also the time fields, where
//! `second` carries the microseconds as a fraction.
//!
//! Out of scope: interval values and columns, `age()`, `date_trunc`, time zones other than
//! UTC, intervals written `'1 day 02:00:00'`.

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, TimeDelta, Timelike};
use rust_decimal::Decimal;
use sqlparser::ast;

use crate::error::{Result, SqlError};
use crate::types::Value;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// An interval literal's parts: what PostgreSQL keeps apart, since a month has no fixed
/// length and a day may not (daylight saving time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntervalParts {
    /// Months (a year is 12).
    pub months: i64,
    /// Days (a week is 7).
    pub days: i64,
    /// Microseconds of time.
    pub micros: i64,
}

impl IntervalParts {
    /// The interval negated (for `x - interval`).
    pub fn negated(self) -> IntervalParts {
        IntervalParts { months: -self.months, days: -self.days, micros: -self.micros }
    }
}

fn not_supported(what: impl std::fmt::Display) -> SqlError {
    SqlError::NotSupported(format!(
        "interval {what} (only literals such as '3 months' or '90' DAY, added to a date or timestamp)"
    ))
}

/// The parts of an interval literal: `INTERVAL '90' DAY`, `INTERVAL '3 months'`,
/// `INTERVAL '1 year 2 days'`.
pub fn interval_literal(interval: &ast::Interval) -> Result<IntervalParts> {
    if interval.last_field.is_some() || interval.fractional_seconds_precision.is_some() {
        return Err(not_supported(interval));
    }
    let text = match interval.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            ast::Value::Number(n, _) => n.clone(),
            _ => return Err(not_supported(interval)),
        },
        _ => return Err(not_supported(interval)),
    };
    match &interval.leading_field {
        Some(field) => {
            let n: i64 = text.trim().parse().map_err(|_| invalid(&text))?;
            add_unit(IntervalParts::default(), n, &field.to_string().to_lowercase(), &text)
        }
        None => {
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.is_empty() || !words.len().is_multiple_of(2) {
                return Err(invalid(&text));
            }
            let mut parts = IntervalParts::default();
            for pair in words.chunks(2) {
                let n: i64 = pair[0].parse().map_err(|_| invalid(&text))?;
                parts = add_unit(parts, n, &pair[1].to_lowercase(), &text)?;
            }
            Ok(parts)
        }
    }
}

fn invalid(text: &str) -> SqlError {
    SqlError::InvalidDatetimeFormat(format!("invalid input syntax for type interval: \"{text}\""))
}

fn add_unit(parts: IntervalParts, n: i64, unit: &str, text: &str) -> Result<IntervalParts> {
    let mul = |a: i64, b: i64| a.checked_mul(b).ok_or_else(|| invalid(text));
    let add = |a: i64, b: i64| a.checked_add(b).ok_or_else(|| invalid(text));
    let mut p = parts;
    match unit.trim_end_matches('s') {
        "year" | "yr" | "y" => p.months = add(p.months, mul(n, 12)?)?,
        "month" | "mon" => p.months = add(p.months, n)?,
        "week" | "w" => p.days = add(p.days, mul(n, 7)?)?,
        "day" | "d" => p.days = add(p.days, n)?,
        "hour" | "hr" | "h" => p.micros = add(p.micros, mul(n, 3_600_000_000)?)?,
        "minute" | "min" | "m" => p.micros = add(p.micros, mul(n, 60_000_000)?)?,
        "second" | "sec" => p.micros = add(p.micros, mul(n, 1_000_000)?)?,
        _ => return Err(invalid(text)),
    }
    Ok(p)
}

fn out_of_range() -> SqlError {
    SqlError::DatetimeOverflow("timestamp out of range".into())
}

fn naive(micros: i64) -> Result<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc()).ok_or_else(out_of_range)
}

fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date")
}

/// `value + interval`: a date becomes a timestamp; NULL stays NULL.
pub fn add_interval(value: &Value, interval: IntervalParts) -> Result<Value> {
    let micros = match value {
        Value::Null => return Ok(Value::Null),
        Value::Date(d) => i64::from(*d) * MICROS_PER_DAY,
        Value::Timestamp(t) | Value::TimestampTz(t) => *t,
        other => {
            return Err(SqlError::UndefinedOperator(format!(
                "operator does not exist: {} + interval",
                other.type_name()
            )));
        }
    };
    let mut at = naive(micros)?;
    let months = u32::try_from(interval.months.unsigned_abs()).map_err(|_| out_of_range())?;
    at = if interval.months >= 0 {
        at.checked_add_months(Months::new(months))
    } else {
        at.checked_sub_months(Months::new(months))
    }
    .ok_or_else(out_of_range)?;
    at = at.checked_add_signed(TimeDelta::days(interval.days)).ok_or_else(out_of_range)?;
    at =
        at.checked_add_signed(TimeDelta::microseconds(interval.micros)).ok_or_else(out_of_range)?;
    let micros = at.and_utc().timestamp_micros();
    Ok(match value {
        Value::TimestampTz(_) => Value::TimestampTz(micros),
        _ => Value::Timestamp(micros),
    })
}

/// Whether `extract` knows `field`, for a date (`date_only`) or a timestamp.
pub fn extract_field_known(field: &str, date_only: bool) -> bool {
    const CALENDAR: &[&str] = &[
        "year",
        "quarter",
        "month",
        "week",
        "day",
        "dow",
        "isodow",
        "doy",
        "epoch",
        "decade",
        "century",
        "millennium",
        "isoyear",
    ];
    const TIME: &[&str] = &["hour", "minute", "second", "milliseconds", "microseconds"];
    CALENDAR.contains(&field) || (!date_only && TIME.contains(&field))
}

/// `extract(field from value)`, as numeric.
pub fn extract(field: &str, value: &Value) -> Result<Value> {
    let (at, is_date) = match value {
        Value::Null => return Ok(Value::Null),
        Value::Date(d) => {
            let date = epoch_date()
                .checked_add_signed(TimeDelta::days(i64::from(*d)))
                .ok_or_else(out_of_range)?;
            (date.and_hms_opt(0, 0, 0).expect("midnight"), true)
        }
        Value::Timestamp(t) | Value::TimestampTz(t) => (naive(*t)?, false),
        other => {
            return Err(SqlError::UndefinedFunction(format!(
                "function extract(unknown, {}) does not exist",
                other.type_name()
            )));
        }
    };
    if !extract_field_known(field, is_date) {
        let kind = if is_date { "date" } else { "timestamp" };
        return Err(SqlError::NotSupported(format!(
            "unit \"{field}\" not supported for type {kind}"
        )));
    }
    let int = |n: i64| Value::Decimal(Decimal::from(n));
    let year = i64::from(at.year());
    let micros_of_minute = i64::from(at.second()) * 1_000_000 + i64::from(at.nanosecond() / 1000);
    Ok(match field {
        "year" => int(year),
        "isoyear" => int(i64::from(at.iso_week().year())),
        "quarter" => int(i64::from((at.month() - 1) / 3 + 1)),
        "month" => int(i64::from(at.month())),
        "week" => int(i64::from(at.iso_week().week())),
        "day" => int(i64::from(at.day())),
        "dow" => int(i64::from(at.weekday().num_days_from_sunday())),
        "isodow" => int(i64::from(at.weekday().number_from_monday())),
        "doy" => int(i64::from(at.ordinal())),
        "decade" => int(year.div_euclid(10)),
        "century" => int(if year > 0 { (year + 99) / 100 } else { -((99 - year) / 100) }),
        "millennium" => int(if year > 0 { (year + 999) / 1000 } else { -((999 - year) / 1000) }),
        "hour" => int(i64::from(at.hour())),
        "minute" => int(i64::from(at.minute())),
        "second" => Value::Decimal(Decimal::new(micros_of_minute, 6)),
        "milliseconds" => Value::Decimal(Decimal::new(micros_of_minute, 3)),
        "microseconds" => int(micros_of_minute),
        "epoch" => {
            let micros = at.and_utc().timestamp_micros();
            if is_date { int(micros / 1_000_000) } else { Value::Decimal(Decimal::new(micros, 6)) }
        }
        _ => unreachable!("checked by extract_field_known"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn literal(text: &str, field: Option<ast::DateTimeField>) -> ast::Interval {
        ast::Interval {
            value: Box::new(ast::Expr::value(ast::Value::SingleQuotedString(text.into()))),
            leading_field: field,
            leading_precision: None,
            last_field: None,
            fractional_seconds_precision: None,
        }
    }

    #[test]
    fn interval_literals_read_as_postgresql_does() {
        let parts = |text, field| interval_literal(&literal(text, field)).unwrap();
        let day = Some(ast::DateTimeField::Day);
        assert_eq!(parts("90", day), IntervalParts { days: 90, ..Default::default() });
        let year = Some(ast::DateTimeField::Year);
        assert_eq!(parts("1", year), IntervalParts { months: 12, ..Default::default() });
        let mixed = parts("1 year 2 mons 3 weeks -4 hours", None);
        assert_eq!(mixed, IntervalParts { months: 14, days: 21, micros: -4 * 3_600_000_000 });
        for bad in ["", "soon", "1", "1 fortnight", "x days"] {
            let err = interval_literal(&literal(bad, None)).unwrap_err();
            assert_eq!(err.sqlstate(), "22007", "{bad}: {err}");
        }
    }

    #[test]
    fn months_are_added_first_and_clamped_to_the_month_end() {
        let jan31 = Value::Date(18292); // 2020-01-31
        let plus = |months, days| add_interval(&jan31, IntervalParts { months, days, micros: 0 });
        let text = |v: Value| v.to_text().unwrap();
        assert_eq!(text(plus(1, 0).unwrap()), "2020-02-29 00:00:00");
        assert_eq!(text(plus(1, 1).unwrap()), "2020-03-01 00:00:00");
        assert_eq!(text(plus(-2, 0).unwrap()), "2019-11-30 00:00:00");
        assert_eq!(plus(i64::MAX, 0).unwrap_err().sqlstate(), "22008");
    }

    proptest! {
        #[test]
        fn arbitrary_interval_text_never_panics(text in "\\PC{0,40}") {
            let _ = interval_literal(&literal(&text, None));
            let _ = interval_literal(&literal(&text, Some(ast::DateTimeField::Month)));
        }

        #[test]
        fn arbitrary_arithmetic_never_panics(
            micros in any::<i64>(),
            months in any::<i64>(),
            days in any::<i64>(),
            shift in any::<i64>(),
        ) {
            let at = Value::Timestamp(micros);
            let _ = add_interval(&at, IntervalParts { months, days, micros: shift });
            for field in ["year", "week", "isoyear", "century", "epoch", "second"] {
                let _ = extract(field, &at);
            }
        }
    }
}
