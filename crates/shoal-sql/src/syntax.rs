//! Statement forms that CockroachDB users expect and the PostgreSQL parser does not know.
//!
//! `sqlparser`'s PostgreSQL dialect parses standard statements. A handful of CockroachDB forms
//! are recognised here first, on the token stream (so a keyword inside a string literal is
//! never mistaken for syntax), and everything else goes to the parser unchanged:
//!
//! ```text
//!   SHOW INDEXES FROM t                        → Parsed::ShowIndexes("t")
//!   SHOW RANGES FROM TABLE t                   → Parsed::ShowRanges("t")
//!   ALTER TABLE t SPLIT AT VALUES (5), (10)    → Parsed::SplitAt { table: "t", rows: VALUES … }
//!   UPSERT INTO t VALUES (1, 'a')              → Parsed::Upsert(INSERT INTO t VALUES (1, 'a'))
//!   SELECT * FROM t AS OF SYSTEM TIME '-5s'    → Parsed::AsOf { query, at: "-5s" }
//!   CREATE STATISTICS s [ON a, b] FROM t       → ANALYZE t [(a, b)]
//!   SHOW STATISTICS FOR TABLE t                → Parsed::ShowStatistics("t")
//! ```
//!
//! The time of `AS OF SYSTEM TIME` must be one literal: a negative interval (`'-5s'`,
//! `'-1m30s'`), a timestamp (`'2026-11-21 10:00:00'`) or an HLC timestamp as CockroachDB
//! prints it (`'1763719200000000000.0000000001'`, nanoseconds and a logical counter). Only
//! SELECT takes the clause; expressions computing the time are not supported.

use sqlparser::ast::{self, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace, Word};

use shoal_hlc::Timestamp;

use crate::error::{Result, SqlError};
use crate::types::{DataType, Value};

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A statement the PostgreSQL parser understood.
    Statement(Box<Statement>),
    /// `UPSERT INTO …`: an INSERT whose primary-key conflicts update the given columns.
    Upsert(Box<Statement>),
    /// `SHOW INDEXES FROM t` (also `SHOW INDEX`, `SHOW KEYS`).
    ShowIndexes(String),
    /// `SHOW RANGES FROM TABLE t`.
    ShowRanges(String),
    /// `SHOW STATISTICS FOR TABLE t`.
    ShowStatistics(String),
    /// `ALTER TABLE t SPLIT AT <query>`: split the table's ranges at each row's primary key.
    SplitAt {
        /// The table.
        table: String,
        /// The rows giving split points (usually `VALUES …`).
        rows: Box<ast::Query>,
    },
    /// A query reading the database as of a past time.
    AsOf {
        /// The query, without the clause.
        query: Box<ast::Query>,
        /// The time, as written (see the module docs).
        at: String,
    },
}

impl Parsed {
    /// Whether any expression of the statement (subqueries included) satisfies `test`.
    pub fn any_expression(&self, mut test: impl FnMut(&ast::Expr) -> bool) -> bool {
        let visit = |e: &ast::Expr| {
            if test(e) {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        };
        let found = match self {
            Parsed::Statement(s) | Parsed::Upsert(s) => ast::visit_expressions(s.as_ref(), visit),
            Parsed::AsOf { query, .. } | Parsed::SplitAt { rows: query, .. } => {
                ast::visit_expressions(query.as_ref(), visit)
            }
            Parsed::ShowIndexes(_) | Parsed::ShowRanges(_) | Parsed::ShowStatistics(_) => {
                return false;
            }
        };
        found.is_break()
    }
}

/// The longest SQL text Shoal parses at once, in bytes: as large as an HTTP request body may
/// be. Longer text is refused (54000) before the tokenizer sees it, so a runaway script
/// cannot make a node build a token list many times its size in memory.
pub const MAX_STATEMENT_BYTES: usize = 8 << 20;

/// Parses SQL text into statements; a parse failure is 42601, text over
/// [`MAX_STATEMENT_BYTES`] is 54000.
pub fn parse(sql: &str) -> Result<Vec<Parsed>> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(SqlError::ProgramLimit(format!(
            "statement is {} bytes long; the limit is {MAX_STATEMENT_BYTES} bytes (8 MiB)",
            sql.len()
        )));
    }
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize().map_err(syntax)?;
    let mut parsed = Vec::new();
    for statement in tokens.split(|t| *t == Token::SemiColon) {
        if statement.iter().all(|t| matches!(t, Token::Whitespace(_) | Token::EOF)) {
            continue;
        }
        parsed.push(parse_one(statement)?);
    }
    Ok(parsed)
}

fn syntax(e: impl std::fmt::Display) -> SqlError {
    SqlError::Syntax(e.to_string())
}

fn significant(tokens: &[Token]) -> Vec<(usize, &Token)> {
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t, Token::Whitespace(_) | Token::EOF))
        .collect()
}

/// Whether `token` is the unquoted word `word` (case-insensitive).
fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(Word { value, quote_style: None, .. }) if value.eq_ignore_ascii_case(word))
}

/// The object name a word stands for: unquoted names fold to lower case.
fn name(token: &Token) -> Option<String> {
    match token {
        Token::Word(w) if w.quote_style.is_some() => Some(w.value.clone()),
        Token::Word(w) => Some(w.value.to_lowercase()),
        _ => None,
    }
}

fn parse_one(tokens: &[Token]) -> Result<Parsed> {
    let sig = significant(tokens);
    let words = |pattern: &[&str]| {
        sig.len() >= pattern.len() && pattern.iter().zip(&sig).all(|(w, (_, t))| is_word(t, w))
    };
    let name_at = |i: usize| sig.get(i).and_then(|(_, t)| name(t));
    if sig.len() == 4
        && (words(&["show", "indexes", "from"])
            || words(&["show", "index", "from"])
            || words(&["show", "keys", "from"]))
        && let Some(table) = name_at(3)
    {
        return Ok(Parsed::ShowIndexes(table));
    }
    if sig.len() == 5
        && words(&["show", "ranges", "from", "table"])
        && let Some(table) = name_at(4)
    {
        return Ok(Parsed::ShowRanges(table));
    }
    if sig.len() == 5
        && words(&["show", "statistics", "for", "table"])
        && let Some(table) = name_at(4)
    {
        return Ok(Parsed::ShowStatistics(table));
    }
    // CREATE STATISTICS name [ON columns] FROM table: the statistics' name is not kept
    // apart (a table has one set), so this is ANALYZE of those columns.
    if words(&["create", "statistics"]) && sig.len() >= 5 && name_at(2).is_some() {
        let from = sig.iter().position(|(_, t)| is_word(t, "from"));
        let Some(from) = from.filter(|&f| f + 2 == sig.len() && (f == 3 || f > 4)) else {
            return Err(SqlError::Syntax(
                "CREATE STATISTICS takes a name, optionally ON columns, then FROM a table".into(),
            ));
        };
        let table = tokens[sig[from].0 + 1..].to_vec();
        let mut analyze =
            vec![Token::make_keyword("ANALYZE"), Token::Whitespace(Whitespace::Space)];
        analyze.extend(table);
        if from > 3 {
            if !is_word(sig[3].1, "on") {
                return Err(SqlError::Syntax(
                    "expected ON or FROM after the statistics' name".into(),
                ));
            }
            analyze.push(Token::LParen);
            analyze.extend(tokens[sig[3].0 + 1..sig[from].0].iter().cloned());
            analyze.push(Token::RParen);
        }
        return Ok(Parsed::Statement(Box::new(parse_standard(analyze)?)));
    }
    if words(&["alter", "table"])
        && sig.len() > 5
        && is_word(sig[3].1, "split")
        && is_word(sig[4].1, "at")
        && let Some(table) = name_at(2)
    {
        let rest = tokens[sig[4].0 + 1..].to_vec();
        let mut parser = Parser::new(&PostgreSqlDialect {}).with_tokens(rest);
        let rows = parser.parse_query().map_err(syntax)?;
        parser.expect_token(&Token::EOF).map_err(syntax)?;
        return Ok(Parsed::SplitAt { table, rows });
    }
    if words(&["upsert", "into"]) {
        let mut rewritten = tokens.to_vec();
        rewritten[sig[0].0] = Token::make_keyword("INSERT");
        let statement = parse_standard(rewritten)?;
        return match statement {
            Statement::Insert(ref insert) if insert.on.is_none() => {
                Ok(Parsed::Upsert(Box::new(statement)))
            }
            _ => Err(SqlError::Syntax("UPSERT does not take ON CONFLICT".into())),
        };
    }
    if let Some(at) = sig.windows(4).position(|w| {
        is_word(w[0].1, "as")
            && is_word(w[1].1, "of")
            && is_word(w[2].1, "system")
            && is_word(w[3].1, "time")
    }) {
        let time = match sig.get(at + 4).map(|(_, t)| *t) {
            Some(Token::SingleQuotedString(s)) => s.clone(),
            Some(Token::Number(n, _)) => n.clone(),
            _ => {
                return Err(SqlError::NotSupported(
                    "AS OF SYSTEM TIME takes one literal: an interval such as '-5s', a timestamp or an HLC timestamp".into(),
                ));
            }
        };
        let mut rest = tokens.to_vec();
        for (i, _) in &sig[at..at + 5] {
            rest[*i] = Token::Whitespace(Whitespace::Space);
        }
        return match parse_standard(rest)? {
            Statement::Query(query) => Ok(Parsed::AsOf { query, at: time }),
            _ => Err(SqlError::NotSupported("AS OF SYSTEM TIME outside SELECT".into())),
        };
    }
    Ok(Parsed::Statement(Box::new(parse_standard(tokens.to_vec())?)))
}

/// The timestamp an `AS OF SYSTEM TIME` literal names, given the clock reading `now`.
pub fn as_of_timestamp(at: &str, now: Timestamp) -> Result<Timestamp> {
    let at = at.trim();
    let invalid = || {
        SqlError::InvalidParameter(format!(
            "AS OF SYSTEM TIME: \"{at}\" is neither a negative interval, a timestamp nor an HLC timestamp"
        ))
    };
    let ts = if let Some(interval) = at.strip_prefix('-') {
        let back = parse_interval(interval).ok_or_else(invalid)?;
        let nanos = u64::try_from(back.as_nanos()).map_err(|_| invalid())?;
        Timestamp::new(now.wall.checked_sub(nanos).ok_or_else(invalid)?, 0)
    } else if let Some((wall, logical)) = parse_hlc(at) {
        Timestamp::new(wall, logical)
    } else {
        match crate::types::parse_text(at, &DataType::TimestampTz).map_err(|_| invalid())? {
            Value::TimestampTz(micros) => {
                let wall = u64::try_from(micros).map_err(|_| invalid())?;
                Timestamp::new(wall.checked_mul(1_000).ok_or_else(invalid)?, 0)
            }
            _ => return Err(invalid()),
        }
    };
    if ts > now {
        return Err(SqlError::InvalidParameter(
            "AS OF SYSTEM TIME: cannot specify a timestamp in the future".into(),
        ));
    }
    if ts.is_zero() {
        return Err(invalid());
    }
    Ok(ts)
}

/// `<nanoseconds>[.<logical counter, 10 digits>]`, as CockroachDB prints HLC timestamps.
fn parse_hlc(text: &str) -> Option<(u64, u32)> {
    let (wall, logical) = text.split_once('.').unwrap_or((text, ""));
    if wall.is_empty() || !wall.bytes().all(|b| b.is_ascii_digit()) || logical.len() > 10 {
        return None;
    }
    if !logical.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let logical = if logical.is_empty() { 0 } else { format!("{logical:0<10}").parse().ok()? };
    Some((wall.parse().ok()?, logical))
}

/// An interval such as `5s`, `1m30s`, `250ms` or `2 minutes`.
fn parse_interval(text: &str) -> Option<std::time::Duration> {
    let mut total = 0.0_f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len =
            rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_alphabetic()).unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "ms" | "millisecond" | "milliseconds" => 1e-3,
            "us" | "µs" | "microsecond" | "microseconds" => 1e-6,
            "ns" | "nanosecond" | "nanoseconds" => 1e-9,
            _ => return None,
        };
        total += number * seconds;
        rest = rest[unit_len..].trim_start();
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

fn parse_standard(tokens: Vec<Token>) -> Result<Statement> {
    let mut statements = Parser::new(&PostgreSqlDialect {})
        .with_tokens(tokens)
        .parse_statements()
        .map_err(syntax)?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        n => Err(SqlError::Internal(format!("one statement's tokens parsed as {n} statements"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Parsed {
        let mut parsed = parse(sql).expect("parses");
        assert_eq!(parsed.len(), 1, "{sql}");
        parsed.remove(0)
    }

    #[test]
    fn cockroach_forms_are_recognised() {
        assert_eq!(one("SHOW INDEXES FROM Users"), Parsed::ShowIndexes("users".into()));
        assert_eq!(one("show index from \"T\";"), Parsed::ShowIndexes("T".into()));
        assert_eq!(one("SHOW RANGES FROM TABLE t"), Parsed::ShowRanges("t".into()));
        let huge = format!("SELECT '{}'", "x".repeat(MAX_STATEMENT_BYTES));
        assert_eq!(parse(&huge).unwrap_err().sqlstate(), "54000");
        let largest = format!("SELECT '{}'", "x".repeat(MAX_STATEMENT_BYTES - 9));
        assert_eq!(parse(&largest).unwrap().len(), 1);
        let Parsed::SplitAt { table, rows } = one("ALTER TABLE t SPLIT AT VALUES (5), (10)") else {
            panic!("not a split");
        };
        assert_eq!((table.as_str(), rows.to_string().as_str()), ("t", "VALUES (5), (10)"));
        let Parsed::Upsert(insert) = one("UPSERT INTO t (a, b) VALUES (1, 'x')") else {
            panic!("not an upsert");
        };
        assert_eq!(insert.to_string(), "INSERT INTO t (a, b) VALUES (1, 'x')");
        let Parsed::AsOf { query, at } =
            one("SELECT * FROM t AS OF SYSTEM TIME '-5s' WHERE a = 1 ORDER BY a")
        else {
            panic!("not AS OF");
        };
        assert_eq!(at, "-5s");
        assert_eq!(query.to_string(), "SELECT * FROM t WHERE a = 1 ORDER BY a");
    }

    #[test]
    fn keywords_inside_strings_are_not_syntax() {
        let Parsed::Statement(s) = one("SELECT 'AS OF SYSTEM TIME x', 'UPSERT INTO'") else {
            panic!("not standard");
        };
        assert_eq!(s.to_string(), "SELECT 'AS OF SYSTEM TIME x', 'UPSERT INTO'");
        assert_eq!(parse("SELECT 1; ; SELECT 2;").expect("parses").len(), 2);
    }

    proptest::proptest! {
        /// Garbage never panics the parser: it parses or is an error.
        #[test]
        fn arbitrary_text_never_panics(sql in "\\PC{0,64}") {
            let _ = parse(&sql);
        }

        /// Fragments of the recognised forms, shuffled, never panic either.
        #[test]
        fn shuffled_keywords_never_panic(words in proptest::collection::vec(
            proptest::sample::select(vec![
                "SHOW", "INDEXES", "RANGES", "FROM", "TABLE", "ALTER", "SPLIT", "AT", "VALUES",
                "UPSERT", "INTO", "AS", "OF", "SYSTEM", "TIME", "'-5s'", "(1)", ",", ";", "t",
                "SELECT", "*",
            ]),
            0..12,
        )) {
            let _ = parse(&words.join(" "));
        }
    }

    #[test]
    fn as_of_times_read_as_intervals_timestamps_or_hlc() {
        // 2025-11-21 10:00:00 UTC.
        let now = Timestamp::new(1_763_719_200_000_000_000, 5);
        let at = |s: &str| as_of_timestamp(s, now);
        assert_eq!(at("-5s").unwrap(), Timestamp::new(now.wall - 5_000_000_000, 0));
        assert_eq!(at("-1m30s").unwrap(), Timestamp::new(now.wall - 90_000_000_000, 0));
        assert_eq!(at("-250ms").unwrap(), Timestamp::new(now.wall - 250_000_000, 0));
        assert_eq!(at("- 2 minutes").unwrap(), Timestamp::new(now.wall - 120_000_000_000, 0));
        assert_eq!(
            at("1763719100000000000.0000000002").unwrap(),
            Timestamp::new(1_763_719_100_000_000_000, 2)
        );
        assert_eq!(
            at("1763719100000000000").unwrap(),
            Timestamp::new(1_763_719_100_000_000_000, 0)
        );
        assert_eq!(
            at("2025-11-21 10:00:00").unwrap(),
            Timestamp::new(1_763_719_200_000_000_000, 0)
        );
        for bad in ["5s", "-5 fortnights", "-", "yesterday", "1763719200000000000.00000000001"] {
            assert!(matches!(at(bad), Err(SqlError::InvalidParameter(_))), "{bad}");
        }
        assert!(
            matches!(at("1863719100000000000"), Err(SqlError::InvalidParameter(m)) if m.contains("future"))
        );
    }

    #[test]
    fn malformed_forms_are_syntax_errors() {
        for sql in [
            "ALTER TABLE t SPLIT AT",
            "UPSERT INTO t VALUES (1) ON CONFLICT DO NOTHING",
            "SELECT * FROM t AS OF SYSTEM TIME",
            "SELEC 1",
            "SELECT 'unterminated",
        ] {
            let err = parse(sql).expect_err(sql);
            assert!(matches!(err, SqlError::Syntax(_) | SqlError::NotSupported(_)), "{sql}: {err}");
        }
    }
}
