//! SQL over HTTP: `POST /v1/sql` runs statements in one session and answers with their
//! results as JSON.
//!
//! ```text
//!   POST /v1/sql {"sql": "BEGIN; UPDATE t SET v = v + 1 WHERE k = 1; SELECT v FROM t WHERE k = 1; COMMIT"}
//!   200 {"results": [{"tag": "BEGIN"},
//!                    {"tag": "UPDATE", "rows_affected": 1},
//!                    {"tag": "SELECT", "columns": [{"name": "v", "type": "INT8"}], "rows": [[8]]},
//!                    {"tag": "COMMIT"}]}
//!   409 {"error": {"code": "40001", "message": "restart transaction: …"}, "statement": 1}
//! ```
//!
//! A request may name its session's current database (`"database": "shop"`, else
//! `defaultdb`); a request is a session: statements outside BEGIN … COMMIT are implicit transactions
//! (retried by the server on 40001), and an explicit transaction must end within the request;
//! one left open is rolled back and the request fails with 25000. The first failing statement
//! stops the request; its error carries its SQLSTATE and the statement's position.
//!
//! The status says what the client should do: 400 fix the statement, 409 run the transaction
//! again (40001), 503 try again later (nothing was applied), 504 the outcome is unknown
//! (40003: the commit may or may not have happened), 500 a bug.
//!
//! Values are JSON numbers (integers, floats), booleans and null; every other type (DECIMAL,
//! text, bytes as `\x…`, dates and times) is its PostgreSQL text form, so nothing loses
//! precision. Non-finite floats are the strings `NaN`, `Infinity`, `-Infinity`.
//!
//! # Out of scope
//!
//! Sessions that outlive a request, placeholders and streaming results (the PostgreSQL wire
//! protocol is the way to those). A result holds at most [`MAX_RESULT_ROWS`] rows.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use shoal_sql::{Output, SqlError, Value};

use crate::http::{ApiError, ApiResult, parse};
use crate::server::Server;

/// The most rows one statement may return over HTTP.
pub const MAX_RESULT_ROWS: usize = 100_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    /// The session's current database (`defaultdb` if absent), as `USE` would set it.
    database: Option<String>,
}

/// Runs a request's statements.
pub(crate) async fn sql(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: SqlRequest = parse(&body)?;
    let cluster = server.require_cluster()?;
    let statements = shoal_sql::syntax::parse(&request.sql).map_err(|e| sql_error(e, 0))?;
    let mut session = cluster.sql.session();
    if let Some(database) = &request.database {
        session.set_database(database);
    }
    let mut results = Vec::with_capacity(statements.len());
    for (i, statement) in statements.iter().enumerate() {
        match session.execute_parsed(statement).await {
            Ok(output) => results.push(output_json(output).map_err(|e| sql_error(e, i))?),
            Err(e) => {
                session.abandon();
                return Err(sql_error(e, i));
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
    Ok(axum::Json(json!({ "results": results })))
}

fn sql_error(error: SqlError, statement: usize) -> ApiError {
    let status = match &error {
        SqlError::Retry { .. } => StatusCode::CONFLICT,
        SqlError::Ambiguous(_) => StatusCode::GATEWAY_TIMEOUT,
        SqlError::Unavailable(_) | SqlError::Cancelled(_) => StatusCode::SERVICE_UNAVAILABLE,
        SqlError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, error.sqlstate(), error.to_string())
        .with("statement", Json::from(statement))
}

fn output_json(output: Output) -> Result<Json, SqlError> {
    Ok(match output {
        Output::Rows { columns, rows } => {
            if rows.len() > MAX_RESULT_ROWS {
                return Err(SqlError::NotSupported(format!(
                    "results of more than {MAX_RESULT_ROWS} rows over HTTP; add a LIMIT"
                )));
            }
            let columns: Vec<Json> = columns
                .iter()
                .map(|c| json!({"name": c.name, "type": c.data_type.map(|t| t.to_string())}))
                .collect();
            let rows: Vec<Json> =
                rows.iter().map(|r| Json::Array(r.iter().map(value_json).collect())).collect();
            json!({"tag": "SELECT", "columns": columns, "rows": rows})
        }
        Output::Affected { tag, count } => json!({"tag": tag, "rows_affected": count}),
        Output::Done(tag) => json!({"tag": tag}),
        Output::Streamed { .. } => {
            return Err(SqlError::Internal("rows were streamed, not collected".into()));
        }
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
