//! Session variables: what `SET name = value` changes and `SHOW name` reads, for the settings
//! PostgreSQL clients and drivers send when they connect.
//!
//! ```text
//!   SET application_name = 'billing'     stored, shown back
//!   SET client_encoding = 'UTF8'         accepted: it is what Shoal speaks
//!   SET client_encoding = 'LATIN1'       22023: Shoal speaks only UTF8
//!   SET statement_timeout = '5s'         statements end with 57014 after 5 s; SHOW says 5s
//!   SET statement_timeout = 1500         milliseconds without a unit; SHOW says 1500ms
//!   SET lock_timeout = '5s'              0A000: not supported
//!   SET no_such_thing = 1                42704, as in PostgreSQL
//! ```
//!
//! A variable either changes what Shoal does, or may only be set to the value that describes
//! what Shoal always does. No setting is accepted and then ignored. `SET DATABASE` is not
//! here: it changes the session's current database ([`crate::database`]).
//!
//! `RESET name` and `RESET ALL` return variables to their defaults.
//!
//! Out of scope: `SET LOCAL`, `SHOW ALL`.

use std::collections::BTreeMap;

use sqlparser::ast;

use crate::binder::{ident, object_name};
use crate::error::{Result, SqlError};

/// How a variable may be set.
#[derive(Clone, Copy)]
enum Kind {
    /// Any text; it only describes the client.
    Free,
    /// Only values that mean what Shoal always does (compared case-insensitively, after
    /// folding `-`/`_` and spaces).
    Fixed(&'static [&'static str]),
    /// An integer in a range.
    Integer(i64, i64),
    /// A duration in milliseconds, 0 for none, written with PostgreSQL's units.
    Milliseconds,
    /// Read-only.
    ReadOnly,
}

/// The known variables: name, default, how they may be set.
const VARIABLES: &[(&str, &str, Kind)] = &[
    ("application_name", "", Kind::Free),
    ("client_encoding", "UTF8", Kind::Fixed(&["utf8", "unicode"])),
    ("datestyle", "ISO, MDY", Kind::Fixed(&["iso, mdy", "iso", "iso,mdy"])),
    ("default_transaction_isolation", "serializable", Kind::Fixed(&["serializable"])),
    ("extra_float_digits", "1", Kind::Integer(-15, 3)),
    ("idle_in_transaction_session_timeout", "0", Kind::Fixed(&["0"])),
    ("intervalstyle", "postgres", Kind::Fixed(&["postgres"])),
    ("lock_timeout", "0", Kind::Fixed(&["0"])),
    ("max_identifier_length", "63", Kind::ReadOnly),
    ("search_path", "public", Kind::Fixed(&["public", "\"$user\", public", "$user, public"])),
    ("server_encoding", "UTF8", Kind::ReadOnly),
    ("server_version", "15.0", Kind::ReadOnly),
    ("standard_conforming_strings", "on", Kind::Fixed(&["on"])),
    ("statement_timeout", "0", Kind::Milliseconds),
    ("timezone", "UTC", Kind::Fixed(&["utc", "etc/utc", "gmt", "z"])),
    ("transaction_isolation", "serializable", Kind::ReadOnly),
];

/// One session's variables.
#[derive(Debug, Clone, Default)]
pub struct SessionVars {
    set: BTreeMap<String, String>,
}

impl SessionVars {
    /// Runs a `SET` (other than `SET DATABASE`).
    pub fn set(&mut self, set: &ast::Set) -> Result<()> {
        let (name, value) = match set {
            ast::Set::SingleAssignment { scope, hivevar: false, variable, values } => {
                if matches!(scope, Some(ast::ContextModifier::Local)) {
                    return Err(SqlError::NotSupported("SET LOCAL".into()));
                }
                (object_name(variable)?, setting_text(values)?)
            }
            ast::Set::SetTimeZone { local: false, value } => {
                ("timezone".to_string(), setting_text(std::slice::from_ref(value))?)
            }
            other => return Err(SqlError::NotSupported(format!("{other}"))),
        };
        let (canonical, _, kind) = lookup(&name)?;
        match kind {
            Kind::Free => {}
            Kind::ReadOnly => return Err(SqlError::ReadOnlyParameter(canonical.to_string())),
            Kind::Fixed(allowed) => {
                let folded = value.to_lowercase();
                if !allowed.contains(&folded.as_str()) {
                    let message = format!(
                        "{canonical} = {value}: Shoal supports only {}",
                        allowed.first().copied().unwrap_or_default()
                    );
                    return Err(match canonical {
                        "client_encoding" | "datestyle" | "timezone" => {
                            SqlError::InvalidParameter(message)
                        }
                        _ => SqlError::NotSupported(message),
                    });
                }
            }
            Kind::Milliseconds => {}
            Kind::Integer(min, max) => match value.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => {}
                _ => {
                    return Err(SqlError::InvalidParameter(format!(
                        "{value} is outside the valid range for parameter \"{canonical}\" ({min} .. {max})"
                    )));
                }
            },
        }
        let value = match kind {
            Kind::Milliseconds => show_milliseconds(parse_milliseconds(canonical, &value)?),
            _ => value,
        };
        self.set.insert(canonical.to_string(), value);
        Ok(())
    }

    /// Runs a `RESET`: the variable (or, for `RESET ALL`, every variable) goes back to its
    /// default.
    pub fn reset(&mut self, reset: &ast::Reset) -> Result<()> {
        match reset {
            ast::Reset::ALL => self.set.clear(),
            ast::Reset::ConfigurationParameter(name) => {
                let (canonical, _, kind) = lookup(&object_name(name)?)?;
                if matches!(kind, Kind::ReadOnly) {
                    return Err(SqlError::ReadOnlyParameter(canonical.to_string()));
                }
                self.set.remove(canonical);
            }
            ast::Reset::SessionAuthorization => {
                return Err(SqlError::NotSupported("RESET SESSION AUTHORIZATION".into()));
            }
        }
        Ok(())
    }

    /// The statement timeout, if one is set.
    pub fn statement_timeout(&self) -> Option<std::time::Duration> {
        let shown = self.set.get("statement_timeout")?;
        let ms = parse_milliseconds("statement_timeout", shown).ok()?;
        (ms > 0).then(|| std::time::Duration::from_millis(ms as u64))
    }

    /// Returns the value `SHOW name` prints.
    pub fn show(&self, name: &str) -> Result<String> {
        let (canonical, default, _) = lookup(name)?;
        Ok(self.set.get(canonical).cloned().unwrap_or_else(|| default.to_string()))
    }
}

/// Reads a duration as PostgreSQL does for a setting in milliseconds: a number, optionally
/// fractional, with a unit (`us`, `ms`, `s`, `min`, `h`, `d`; none means ms), rounded to
/// whole milliseconds, between 0 and `i32::MAX`.
fn parse_milliseconds(name: &str, text: &str) -> Result<i64> {
    let invalid = || {
        SqlError::InvalidParameter(format!("invalid value for parameter \"{name}\": \"{text}\""))
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let per_unit = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1e3,
        "min" => 60e3,
        "h" => 3_600e3,
        "d" => 86_400e3,
        _ => return Err(invalid()),
    };
    let ms = (number * per_unit).round();
    if !(0.0..=f64::from(i32::MAX)).contains(&ms) {
        return Err(SqlError::InvalidParameter(format!(
            "{ms} ms is outside the valid range for parameter \"{name}\" (0 .. {})",
            i32::MAX
        )));
    }
    Ok(ms as i64)
}

/// Shows milliseconds in the largest unit that divides them, as PostgreSQL's SHOW does.
fn show_milliseconds(ms: i64) -> String {
    if ms == 0 {
        return "0".into();
    }
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

fn lookup(name: &str) -> Result<(&'static str, &'static str, Kind)> {
    let name = name.to_lowercase();
    let name = if name == "time zone" { "timezone".to_string() } else { name };
    VARIABLES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(n, d, k)| (*n, *d, *k))
        .ok_or(SqlError::UndefinedParameter(name))
}

/// The text of a setting's value: `x`, `'x'`, `5`, `-1`, or a list `a, b`.
fn setting_text(values: &[ast::Expr]) -> Result<String> {
    let parts: Vec<String> = values
        .iter()
        .map(|v| match v {
            ast::Expr::Identifier(id) => Ok(ident(id)),
            ast::Expr::Value(value) => match &value.value {
                ast::Value::SingleQuotedString(s) => Ok(s.clone()),
                ast::Value::Number(n, _) => Ok(n.clone()),
                ast::Value::Boolean(b) => Ok(if *b { "on" } else { "off" }.to_string()),
                other => Err(SqlError::InvalidParameter(format!("invalid setting {other}"))),
            },
            ast::Expr::UnaryOp { op: ast::UnaryOperator::Minus, expr } => {
                Ok(format!("-{}", setting_text(std::slice::from_ref(expr))?))
            }
            other => Err(SqlError::InvalidParameter(format!("invalid setting {other}"))),
        })
        .collect::<Result<_>>()?;
    if parts.is_empty() {
        return Err(SqlError::InvalidParameter("SET needs a value".into()));
    }
    Ok(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(vars: &mut SessionVars, sql: &str) -> Result<()> {
        match crate::parse(sql)?.remove(0) {
            ast::Statement::Set(s) => vars.set(&s),
            other => panic!("not a SET: {other}"),
        }
    }

    #[test]
    fn settings_are_kept_refused_or_fixed_to_what_shoal_does() {
        let mut vars = SessionVars::default();
        set(&mut vars, "SET application_name = 'billing'").unwrap();
        assert_eq!(vars.show("application_name").unwrap(), "billing");
        set(&mut vars, "SET client_encoding TO 'UTF8'").unwrap();
        set(&mut vars, "SET extra_float_digits = 3").unwrap();
        assert_eq!(vars.show("extra_float_digits").unwrap(), "3");
        set(&mut vars, "SET TIME ZONE 'UTC'").unwrap();
        set(&mut vars, "SET search_path = public").unwrap();
        set(&mut vars, "SET statement_timeout = 0").unwrap();
        assert_eq!(vars.show("TimeZone").unwrap(), "UTC");
        assert_eq!(vars.show("server_version").unwrap(), "15.0");
        let code = |r: Result<()>| r.unwrap_err().sqlstate();
        assert_eq!(code(set(&mut vars, "SET client_encoding = 'LATIN1'")), "22023");
        assert_eq!(code(set(&mut vars, "SET lock_timeout = '5s'")), "0A000");
        assert_eq!(code(set(&mut vars, "SET extra_float_digits = 9")), "22023");
        assert_eq!(code(set(&mut vars, "SET no_such_thing = 1")), "42704");
        assert_eq!(code(set(&mut vars, "SET server_version = '16'")), "55P02");
        assert_eq!(code(set(&mut vars, "SET LOCAL application_name = 'x'")), "0A000");
        assert_eq!(vars.show("no_such_thing").unwrap_err().sqlstate(), "42704");
    }

    fn reset(vars: &mut SessionVars, sql: &str) -> Result<()> {
        match crate::parse(sql)?.remove(0) {
            ast::Statement::Reset(r) => vars.reset(&r.reset),
            other => panic!("not a RESET: {other}"),
        }
    }

    /// RESET's answers, checked against PostgreSQL 15.
    #[test]
    fn reset_returns_variables_to_their_defaults() {
        let mut vars = SessionVars::default();
        set(&mut vars, "SET application_name = 'billing'").unwrap();
        set(&mut vars, "SET extra_float_digits = 2").unwrap();
        reset(&mut vars, "RESET application_name").unwrap();
        assert_eq!(vars.show("application_name").unwrap(), "");
        assert_eq!(vars.show("extra_float_digits").unwrap(), "2");
        reset(&mut vars, "RESET ALL").unwrap();
        assert_eq!(vars.show("extra_float_digits").unwrap(), "1");
        assert_eq!(reset(&mut vars, "RESET server_version").unwrap_err().sqlstate(), "55P02");
        assert_eq!(reset(&mut vars, "RESET nosuch").unwrap_err().sqlstate(), "42704");
    }

    /// What SHOW prints after each SET, checked against PostgreSQL 15.
    #[test]
    fn statement_timeout_reads_and_shows_units_as_postgresql_does() {
        let mut vars = SessionVars::default();
        assert_eq!(vars.statement_timeout(), None);
        for (value, shown) in [
            ("5000", "5s"),
            ("'1500ms'", "1500ms"),
            ("'1min'", "1min"),
            ("'2 s'", "2s"),
            ("'3h'", "3h"),
            ("'1.5s'", "1500ms"),
            ("86400000", "1d"),
            ("'100us'", "0"),
            ("0", "0"),
        ] {
            set(&mut vars, &format!("SET statement_timeout = {value}")).unwrap();
            assert_eq!(vars.show("statement_timeout").unwrap(), shown, "{value}");
        }
        assert_eq!(vars.statement_timeout(), None, "0 turns it off");
        set(&mut vars, "SET statement_timeout = '250ms'").unwrap();
        assert_eq!(vars.statement_timeout(), Some(std::time::Duration::from_millis(250)));
        let err = set(&mut vars, "SET statement_timeout = 'abc'").unwrap_err();
        assert_eq!(err.to_string(), "invalid value for parameter \"statement_timeout\": \"abc\"");
        let err = set(&mut vars, "SET statement_timeout = -1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "-1 ms is outside the valid range for parameter \"statement_timeout\" (0 .. 2147483647)"
        );
        assert_eq!(err.sqlstate(), "22023");
    }
}
