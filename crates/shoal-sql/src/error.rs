//! SQL errors, each with the SQLSTATE a PostgreSQL client expects.
//!
//! The variants say what the caller must do: fix the statement (syntax, undefined objects,
//! types, constraints), retry the transaction ([`SqlError::Retry`], 40001), find out whether a
//! commit happened ([`SqlError::Ambiguous`]), or give up ([`SqlError::Internal`]). Nothing that
//! Shoal does not support is silently ignored: it is [`SqlError::NotSupported`] (0A000).

use shoal_api::KvError;
use shoal_api::txn::RetryReason;

/// A SQL error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// The statement does not parse (42601).
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A table that does not exist (42P01).
    #[error("relation \"{0}\" does not exist")]
    UndefinedTable(String),
    /// A column that does not exist (42703).
    #[error("column \"{0}\" does not exist")]
    UndefinedColumn(String),
    /// An index that does not exist (42704).
    #[error("index \"{0}\" does not exist")]
    UndefinedObject(String),
    /// A configuration parameter that does not exist (42704).
    #[error("unrecognized configuration parameter \"{0}\"")]
    UndefinedParameter(String),
    /// A placeholder that names no parameter, like `$0` (42P02).
    #[error("{0}")]
    UndefinedPlaceholder(String),
    /// A message that breaks the wire protocol's rules, like a Bind with the wrong number of
    /// values (08P01).
    #[error("{0}")]
    ProtocolViolation(String),
    /// A configuration parameter that cannot be changed, like `server_version` (55P02).
    #[error("parameter \"{0}\" cannot be changed")]
    ReadOnlyParameter(String),
    /// An operator with no version for its operands' types, like `text = bigint` (42883).
    #[error("operator does not exist: {0}")]
    UndefinedOperator(String),
    /// A function that does not exist (42883).
    #[error("function {0} does not exist")]
    UndefinedFunction(String),
    /// A database that does not exist (3D000).
    #[error("database \"{0}\" does not exist")]
    UndefinedDatabase(String),
    /// A database that already exists (42P04).
    #[error("database \"{0}\" already exists")]
    DuplicateDatabase(String),
    /// An object others depend on, such as a database with tables dropped with RESTRICT
    /// (2BP01).
    #[error("{0}")]
    DependentObjects(String),
    /// An object in use, such as the session's current database (55006).
    #[error("{0}")]
    ObjectInUse(String),
    /// A table or index that already exists (42P07).
    #[error("relation \"{0}\" already exists")]
    DuplicateTable(String),
    /// A table definition that contradicts itself, such as two primary keys (42P16).
    #[error("{0}")]
    InvalidTableDefinition(String),
    /// A column defined twice (42701).
    #[error("column \"{0}\" specified more than once")]
    DuplicateColumn(String),
    /// A name that matches several columns (42702).
    #[error("column reference \"{0}\" is ambiguous")]
    AmbiguousColumn(String),
    /// Values of the wrong type for an operator, column or function (42804).
    #[error("{0}")]
    DatatypeMismatch(String),
    /// Text that does not read as the wanted type (22P02).
    #[error("{0}")]
    InvalidText(String),
    /// A date or time out of range or malformed (22008).
    #[error("{0}")]
    DatetimeOverflow(String),
    /// Date or time text in no format Shoal reads (22007).
    #[error("{0}")]
    InvalidDatetimeFormat(String),
    /// A function argument out of the function's domain: a negative substring length
    /// (22011), the square root of a negative number (2201F).
    #[error("{message}")]
    FunctionArgument {
        /// The SQLSTATE.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A qualified column reference whose table is not in the FROM clause (42P01).
    #[error("missing FROM-clause entry for table \"{0}\"")]
    MissingFromEntry(String),
    /// A number out of its type's range (22003).
    #[error("{0}")]
    NumericOutOfRange(String),
    /// A string longer than its column allows (22001).
    #[error("{0}")]
    StringTooLong(String),
    /// Division by zero (22012).
    #[error("division by zero")]
    DivisionByZero,
    /// A parameter or option value out of its allowed range (22023).
    #[error("{0}")]
    InvalidParameter(String),
    /// A grouping or aggregate misuse (42803).
    #[error("{0}")]
    Grouping(String),
    /// A window name that no WINDOW clause defines (42704).
    #[error("window \"{0}\" does not exist")]
    UndefinedWindow(String),
    /// A window function misused: in WHERE, nested, or with an impossible frame (42P20).
    #[error("{0}")]
    Windowing(String),
    /// A name used as the wrong kind of object: `OVER` on a plain function, a window
    /// function without one (42809).
    #[error("{0}")]
    WrongObjectType(String),
    /// A subquery returning several rows where one is wanted (21000).
    #[error("{0}")]
    Cardinality(String),
    /// A statement beyond one of Shoal's limits, such as its length (54000).
    #[error("{0}")]
    ProgramLimit(String),
    /// A reference to an output column that is not there: `ORDER BY 5` over three columns,
    /// or a DISTINCT query ordered by something it does not select (42P10).
    #[error("{0}")]
    InvalidReference(String),
    /// A NULL in a NOT NULL column (23502).
    #[error("null value in column \"{column}\" violates not-null constraint")]
    NotNull {
        /// The column.
        column: String,
    },
    /// A duplicate key in a unique index (23505).
    #[error("duplicate key value violates unique constraint \"{constraint}\"")]
    Unique {
        /// The index.
        constraint: String,
    },
    /// A row failing a CHECK constraint (23514).
    #[error("failed to satisfy CHECK constraint ({0})")]
    Check(String),
    /// An invalid transaction state, such as COMMIT without BEGIN (25P01) or a statement in an
    /// aborted transaction (25P02).
    #[error("{message}")]
    TransactionState {
        /// 25P01 or 25P02.
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// Something Shoal does not do (0A000).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// The transaction must be retried (40001).
    #[error("restart transaction: {reason}: {detail}")]
    Retry {
        /// Why (write_too_old, uncertainty, ...).
        reason: RetryReason,
        /// Details.
        detail: String,
    },
    /// A commit whose outcome is unknown (40003).
    #[error("result is ambiguous: {0}")]
    Ambiguous(String),
    /// The cluster could not serve the request now (58000 class: system error, retry later).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A statement cancelled by its deadline (57014).
    #[error("query cancelled: {0}")]
    Cancelled(String),
    /// A query that needs more memory than its budget allows (53200): it stops, and nothing
    /// else on the node is disturbed. Retrying it as it is fails the same way.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    /// A bug or corrupt data (XX000).
    #[error("internal error: {0}")]
    Internal(String),
}

impl SqlError {
    /// Returns the SQLSTATE code.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SqlError::Syntax(_) => "42601",
            SqlError::UndefinedTable(_) => "42P01",
            SqlError::UndefinedColumn(_) => "42703",
            SqlError::UndefinedObject(_) => "42704",
            SqlError::UndefinedParameter(_) => "42704",
            SqlError::UndefinedPlaceholder(_) => "42P02",
            SqlError::ProtocolViolation(_) => "08P01",
            SqlError::ReadOnlyParameter(_) => "55P02",
            SqlError::UndefinedFunction(_) | SqlError::UndefinedOperator(_) => "42883",
            SqlError::UndefinedDatabase(_) => "3D000",
            SqlError::DuplicateDatabase(_) => "42P04",
            SqlError::DependentObjects(_) => "2BP01",
            SqlError::ObjectInUse(_) => "55006",
            SqlError::DuplicateTable(_) => "42P07",
            SqlError::InvalidTableDefinition(_) => "42P16",
            SqlError::DuplicateColumn(_) => "42701",
            SqlError::AmbiguousColumn(_) => "42702",
            SqlError::DatatypeMismatch(_) => "42804",
            SqlError::InvalidText(_) => "22P02",
            SqlError::DatetimeOverflow(_) => "22008",
            SqlError::InvalidDatetimeFormat(_) => "22007",
            SqlError::FunctionArgument { code, .. } => code,
            SqlError::MissingFromEntry(_) => "42P01",
            SqlError::NumericOutOfRange(_) => "22003",
            SqlError::StringTooLong(_) => "22001",
            SqlError::DivisionByZero => "22012",
            SqlError::InvalidParameter(_) => "22023",
            SqlError::Grouping(_) => "42803",
            SqlError::Windowing(_) => "42P20",
            SqlError::UndefinedWindow(_) => "42704",
            SqlError::WrongObjectType(_) => "42809",
            SqlError::Cardinality(_) => "21000",
            SqlError::ProgramLimit(_) => "54000",
            SqlError::InvalidReference(_) => "42P10",
            SqlError::NotNull { .. } => "23502",
            SqlError::Unique { .. } => "23505",
            SqlError::Check(_) => "23514",
            SqlError::TransactionState { code, .. } => code,
            SqlError::NotSupported(_) => "0A000",
            SqlError::Retry { .. } => "40001",
            SqlError::Ambiguous(_) => "40003",
            SqlError::Unavailable(_) => "58000",
            SqlError::Cancelled(_) => "57014",
            SqlError::OutOfMemory(_) => "53200",
            SqlError::Internal(_) => "XX000",
        }
    }

    /// Whether retrying the whole transaction may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SqlError::Retry { .. })
    }
}

impl From<KvError> for SqlError {
    fn from(e: KvError) -> Self {
        match e {
            KvError::TxnRetry { reason, detail, .. } => SqlError::Retry { reason, detail },
            KvError::Ambiguous(msg) => SqlError::Ambiguous(msg),
            // Not "unavailable: unavailable: ...".
            KvError::Unavailable(msg) => SqlError::Unavailable(msg),
            KvError::InvalidArgument(msg) => SqlError::Internal(msg),
            other => match other.kind() {
                shoal_api::ErrorKind::Route
                | shoal_api::ErrorKind::Retry
                | shoal_api::ErrorKind::Conflict => SqlError::Unavailable(other.to_string()),
                _ => SqlError::Internal(other.to_string()),
            },
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, SqlError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_restarts_become_40001_with_their_reason() {
        let e: SqlError =
            KvError::TxnRetry { reason: RetryReason::WriteTooOld, detail: "k".into(), txn: None }
                .into();
        assert_eq!(e.sqlstate(), "40001");
        assert!(e.to_string().contains("write_too_old"), "{e}");
        assert!(e.is_retryable());
    }
}
