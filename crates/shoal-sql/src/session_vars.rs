//! Session variables: what `SET name = value` changes and `SHOW name` reads, for the settings
//! PostgreSQL clients and drivers send when they connect.
//!
//! ```text
//!   SET application_name = 'billing'     stored, shown back
//!   SET client_encoding = 'UTF8'         accepted: it is what Shoal speaks
//!   SET client_encoding = 'LATIN1'       22023: Shoal speaks only UTF8
//!   SET statement_timeout = 0            accepted: no timeout is what Shoal does
//!   SET statement_timeout = '5s'         0A000: not supported
//!   SET no_such_thing = 1                42704, as in PostgreSQL
//! ```
//!
//! A variable either changes what Shoal does, or may only be set to the value that describes
//! what Shoal always does. No setting is accepted and then ignored. `SET DATABASE` is not
//! here: it changes the session's current database ([`crate::database`]).
//!
//! Out of scope: `SET LOCAL`, `RESET`, `SHOW ALL`.

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
    ("statement_timeout", "0", Kind::Fixed(&["0"])),
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
            Kind::ReadOnly => {
                return Err(SqlError::InvalidParameter(format!(
                    "parameter \"{canonical}\" cannot be changed"
                )));
            }
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
            Kind::Integer(min, max) => match value.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => {}
                _ => {
                    return Err(SqlError::InvalidParameter(format!(
                        "{value} is outside the valid range for parameter \"{canonical}\" ({min} .. {max})"
                    )));
                }
            },
        }
        self.set.insert(canonical.to_string(), value);
        Ok(())
    }

    /// Returns the value `SHOW name` prints.
    pub fn show(&self, name: &str) -> Result<String> {
        let (canonical, default, _) = lookup(name)?;
        Ok(self.set.get(canonical).cloned().unwrap_or_else(|| default.to_string()))
    }
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
        assert_eq!(code(set(&mut vars, "SET statement_timeout = '5s'")), "0A000");
        assert_eq!(code(set(&mut vars, "SET extra_float_digits = 9")), "22023");
        assert_eq!(code(set(&mut vars, "SET no_such_thing = 1")), "42704");
        assert_eq!(code(set(&mut vars, "SET server_version = '16'")), "22023");
        assert_eq!(code(set(&mut vars, "SET LOCAL application_name = 'x'")), "0A000");
        assert_eq!(vars.show("no_such_thing").unwrap_err().sqlstate(), "42704");
    }
}
