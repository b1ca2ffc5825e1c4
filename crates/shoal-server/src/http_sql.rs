//! SQL over HTTP: `POST /v1/sql` runs statements and answers with their results as JSON.
//!
//! ```text
//!   POST /v1/sql {"statements": [{"sql": "UPDATE t SET v = v + $1 WHERE k = $2", "args": [5, 1]},
//!                                {"sql": "SELECT v FROM t WHERE k = $1", "args": [1]}],
//!                 "timeout_ms": 2000}
//!   200 {"results": [{"tag": "UPDATE", "rows_affected": 1},
//!                    {"tag": "SELECT", "columns": ["v"], "types": ["INT8"], "rows": [[8]]}],
//!        "time_ms": 3.1, "timestamp": "1763719200000000000.0000000001", "node_id": 2}
//!   409 {"error": {"code": "40001", "sqlstate": "40001", "message": "…"}, "statement": 1}
//! ```
//!
//! **`statements`**: the statements of one request are one transaction, retried from the
//! start when it must restart (40001), up to [`MAX_ATTEMPTS`] times. Each statement's `args`
//! fill its placeholders (`$1` …) as typed values, never pasted into the text: a JSON number,
//! string, boolean or null, read as the parameter's type ([`shoal_sql::params`]); exact
//! decimals and times go as strings. `timestamp` is the HLC time the transaction read at, in
//! the form `AS OF SYSTEM TIME` takes. BEGIN, COMMIT and ROLLBACK are refused (25000).
//!
//! **`sql`**: a script of statements separated by `;`, run in order as a session would run
//! them: each in its own implicit transaction (retried by the server on 40001) unless the
//! script has BEGIN … COMMIT; a transaction left open is rolled back and the request fails
//! with 25000.
//!
//! Either form may name its session's current database (`"database": "shop"`, else
//! `defaultdb`), a `timeout_ms` (default [`DEFAULT_TIMEOUT`], at most [`MAX_TIMEOUT`]) after
//! which the statements stop with 57014 and their transaction is rolled back (a COMMIT under
//! way is never cut short), and `"consistency": "strong"`, the only consistency there is yet:
//! reads are linearizable, served by leaseholders. The first failing statement stops the
//! request; its error carries its SQLSTATE and the statement's position.
//!
//! The status says what the client should do: 400 fix the request, 409 run it again (40001),
//! 503 try again later (nothing was applied), 504 the outcome is unknown (40003: the commit
//! may or may not have happened) or the timeout passed (57014, nothing applied), 500 a bug.
//! Bodies above [`crate::http::MAX_BODY_BYTES`] get 413.
//!
//! Values are JSON numbers (integers, floats), booleans and null; every other type (DECIMAL,
//! text, bytes as `\x…`, dates and times) is its PostgreSQL text form, so nothing loses
//! precision. Non-finite floats are the strings `NaN`, `Infinity`, `-Infinity`.
//!
//! # Out of scope
//!
//! Sessions that outlive a request and streaming results (the PostgreSQL wire protocol is the
//! way to those); stale reads. A result holds at most [`MAX_RESULT_ROWS`] rows.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use shoal_sql::exec::Row;
use shoal_sql::plan::Column;
use shoal_sql::{Output, RowSink, Session, SqlError, Value};

use crate::http::{ApiError, ApiResult, parse};
use crate::server::Server;

/// The most rows one statement may return over HTTP.
pub const MAX_RESULT_ROWS: usize = 100_000;
/// How long a request's statements may run when it names no `timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `timeout_ms` a request may name.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a `statements` request's transaction is attempted before 40001 is returned.
pub const MAX_ATTEMPTS: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    /// A script of statements (the first form).
    sql: Option<String>,
    /// Statements with arguments, run as one transaction (the second form).
    statements: Option<Vec<StatementRequest>>,
    /// The session's current database (`defaultdb` if absent), as `USE` would set it.
    database: Option<String>,
    #[serde(default)]
    consistency: Consistency,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementRequest {
    sql: String,
    #[serde(default)]
    args: Vec<Json>,
}

/// How reads see the data.
#[derive(Deserialize, Default)]
#[serde(rename_all = "snake_case")]
enum Consistency {
    /// Linearizable: the latest committed data, read at the leaseholders.
    #[default]
    Strong,
}

/// Runs a request's statements.
pub(crate) async fn sql(State(server): State<Server>, body: Bytes) -> ApiResult {
    let started = Instant::now();
    let request: SqlRequest = parse(&body)?;
    let Consistency::Strong = request.consistency;
    let timeout = match request.timeout_ms {
        None => DEFAULT_TIMEOUT,
        Some(ms) if Duration::from_millis(ms) <= MAX_TIMEOUT && ms > 0 => Duration::from_millis(ms),
        Some(ms) => {
            return Err(ApiError::bad_request(format!(
                "timeout_ms must be between 1 and {}, not {ms}",
                MAX_TIMEOUT.as_millis()
            )));
        }
    };
    let cluster = server.require_cluster()?;
    let mut session = cluster.sql.session();
    if let Some(database) = &request.database {
        session.set_database(database);
    }
    let deadline = Deadline::start(&mut session, timeout);
    let answer = match (request.sql, request.statements) {
        (Some(sql), None) => {
            script(&mut session, &sql, &deadline).await.map(|results| json!({ "results": results }))
        }
        (None, Some(statements)) if !statements.is_empty() => {
            transaction(&mut session, &statements, &deadline)
                .await
                .map(|(results, timestamp)| json!({ "results": results, "timestamp": timestamp }))
        }
        _ => Err(ApiError::bad_request(
            "a request has either \"sql\" (a script) or \"statements\" (a non-empty list)",
        )),
    };
    deadline.timer.abort();
    let mut answer = answer?;
    answer["time_ms"] = Json::from(started.elapsed().as_secs_f64() * 1e3);
    answer["node_id"] = Json::from(server.node_id());
    Ok(axum::Json(answer))
}

/// A request's time limit: a timer cancels the statement running when it passes (through
/// the session's cancel signal, so the statement's transaction is rolled back as after any
/// error), and no statement starts after it.
struct Deadline {
    at: Instant,
    timeout: Duration,
    timer: tokio::task::JoinHandle<()>,
}

impl Deadline {
    fn start(session: &mut Session, timeout: Duration) -> Deadline {
        let (cancel, signal) = tokio::sync::watch::channel(0u64);
        session.set_cancel_signal(signal);
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            cancel.send_modify(|n| *n += 1);
            // Keep the sender: a dropped one would read as "nobody can cancel".
            std::future::pending::<()>().await;
        });
        Deadline { at: Instant::now() + timeout, timeout, timer }
    }

    /// Whether a statement may still start.
    fn check(&self) -> Result<(), SqlError> {
        if Instant::now() >= self.at {
            Err(self.explain(SqlError::Cancelled(String::new())))
        } else {
            Ok(())
        }
    }

    /// A cancellation past the deadline is the timeout's.
    fn explain(&self, error: SqlError) -> SqlError {
        match error {
            SqlError::Cancelled(_) if Instant::now() >= self.at => SqlError::Cancelled(format!(
                "canceling statement due to statement timeout ({} ms); its transaction was rolled back",
                self.timeout.as_millis()
            )),
            other => other,
        }
    }
}

/// Runs a script's statements in order, as one session.
async fn script(
    session: &mut Session,
    sql: &str,
    deadline: &Deadline,
) -> Result<Vec<Json>, ApiError> {
    let statements = shoal_sql::syntax::parse(sql).map_err(|e| sql_error(e, 0))?;
    let mut results = Vec::with_capacity(statements.len());
    for (i, statement) in statements.iter().enumerate() {
        let mut rows = Collect::default();
        let result = match deadline.check() {
            Ok(()) => session.execute_into(statement, &mut rows).await,
            Err(e) => Err(e),
        };
        match result.and_then(|output| output_json(output, rows.rows)) {
            Ok(result) => results.push(result),
            Err(e) => {
                session.abandon();
                return Err(sql_error(deadline.explain(e), i));
            }
        }
    }
    if session.in_transaction() {
        session.abandon();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "25000",
            "a request is one session: its transaction was left open, and has been rolled back; end it with COMMIT".into(),
        ));
    }
    Ok(results)
}

/// Runs `statements` as one transaction, again from the start while it must restart.
/// Returns their results and the timestamp the transaction read at.
async fn transaction(
    session: &mut Session,
    statements: &[StatementRequest],
    deadline: &Deadline,
) -> Result<(Vec<Json>, String), ApiError> {
    let mut attempt = 1;
    loop {
        let (results, timestamp) = match attempt_statements(session, statements, deadline).await {
            Ok(done) => done,
            Err((error, i)) => {
                session.abandon();
                if error.is_retryable() && attempt < MAX_ATTEMPTS {
                    attempt += 1;
                    continue;
                }
                return Err(sql_error(deadline.explain(error), i));
            }
        };
        // COMMIT is not cancellable: a commit cut short might still commit, and the client
        // would be told it did not.
        if let Err(error) = session.execute("COMMIT").await {
            session.abandon();
            if error.is_retryable() && attempt < MAX_ATTEMPTS {
                attempt += 1;
                continue;
            }
            return Err(sql_error(error, statements.len()));
        }
        return Ok((results, timestamp));
    }
}

/// One attempt: BEGIN and every statement, leaving the transaction open for COMMIT.
async fn attempt_statements(
    session: &mut Session,
    statements: &[StatementRequest],
    deadline: &Deadline,
) -> Result<(Vec<Json>, String), (SqlError, usize)> {
    session.execute("BEGIN").await.map_err(|e| (e, 0))?;
    let mut results = Vec::with_capacity(statements.len());
    for (i, statement) in statements.iter().enumerate() {
        let at = |e| (e, i);
        deadline.check().map_err(at)?;
        let prepared = session.prepare(&statement.sql, &[]).await.map_err(at)?;
        if prepared.controls_transaction() {
            return Err(at(SqlError::TransactionState {
                code: "25000",
                message: "a request's statements are one transaction: BEGIN, COMMIT and ROLLBACK do not belong in them".into(),
            }));
        }
        if statement.args.len() != prepared.param_types.len() {
            return Err(at(SqlError::ProtocolViolation(format!(
                "{} args given for {} placeholders",
                statement.args.len(),
                prepared.param_types.len()
            ))));
        }
        let args =
            statement.args.iter().map(arg_value).collect::<Result<Vec<_>, _>>().map_err(at)?;
        let mut rows = Collect::default();
        let output =
            session.execute_prepared_into(&prepared, &args, &mut rows).await.map_err(at)?;
        results.push(output_json(output, rows.rows).map_err(at)?);
    }
    let timestamp =
        session.transaction_timestamp().map(|ts| format!("{}.{:010}", ts.wall, ts.logical));
    Ok((results, timestamp.unwrap_or_default()))
}

/// An argument as a value: JSON numbers, strings, booleans and null.
fn arg_value(arg: &Json) -> Result<Value, SqlError> {
    Ok(match arg {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            // Read as the parameter's type: a DECIMAL parameter gets the number's digits.
            None => Value::Text(n.to_string()),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(_) | Json::Object(_) => {
            return Err(SqlError::DatatypeMismatch(format!(
                "an arg must be a number, string, boolean or null, not {arg}"
            )));
        }
    })
}

fn sql_error(error: SqlError, statement: usize) -> ApiError {
    let status = match &error {
        SqlError::Retry { .. } => StatusCode::CONFLICT,
        SqlError::Ambiguous(_) | SqlError::Cancelled(_) => StatusCode::GATEWAY_TIMEOUT,
        SqlError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        SqlError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, error.sqlstate(), error.to_string())
        .with_sqlstate(error.sqlstate())
        .with("statement", Json::from(statement))
}

/// Collects a statement's rows, refusing more than [`MAX_RESULT_ROWS`] (before they all sit
/// in memory).
#[derive(Default)]
struct Collect {
    rows: Vec<Row>,
}

impl RowSink for Collect {
    async fn send(&mut self, _: &[Column], rows: Vec<Row>) -> shoal_sql::Result<()> {
        if self.rows.len() + rows.len() > MAX_RESULT_ROWS {
            return Err(SqlError::NotSupported(format!(
                "results of more than {MAX_RESULT_ROWS} rows over HTTP; add a LIMIT"
            )));
        }
        self.rows.extend(rows);
        Ok(())
    }
}

fn output_json(output: Output, streamed: Vec<Row>) -> Result<Json, SqlError> {
    let rows_json = |columns: &[Column], rows: &[Row]| {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let types: Vec<Json> = columns
            .iter()
            .map(|c| c.data_type.map_or(Json::Null, |t| Json::String(t.to_string())))
            .collect();
        let rows: Vec<Json> =
            rows.iter().map(|r| Json::Array(r.iter().map(value_json).collect())).collect();
        json!({"tag": "SELECT", "columns": names, "types": types, "rows": rows})
    };
    Ok(match output {
        Output::Rows { columns, rows } => rows_json(&columns, &rows),
        Output::Streamed { columns, .. } => rows_json(&columns, &streamed),
        Output::Affected { tag, count } => json!({"tag": tag, "rows_affected": count}),
        Output::Done(tag) => json!({"tag": tag}),
    })
}

fn value_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) if f.is_finite() => Json::from(*f),
        other => other.to_text().map_or(Json::Null, Json::String),
    }
}
