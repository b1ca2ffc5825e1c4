//! Talking SQL to a node through `POST /v1/sql`, with outcomes classified for a history.
//!
//! A request's statements run as one transaction, which the node retries from the start on
//! 40001; the answer is the rows of each statement. What an error means for the history:
//!
//! ```text
//!   200                         ok
//!   409 (40001, retries spent)  fail: rolled back
//!   400 (bad input, 42xxx ...)  fail: refused before anything ran
//!   503 (58000)                 fail: unavailable, nothing applied
//!   504 (40003 ambiguous, 57014 timeout), client timeout, lost connection   info
//!   connection refused          fail: never sent
//! ```
//!
//! A 57014 from the request's `timeout_ms` is recorded `info` even though the server rolls the
//! transaction back: the deadline may fire while COMMIT is in flight, which the server lets
//! finish.

use serde_json::{Value, json};

use std::time::{Duration, Instant};

use crate::history::{OpType, Process};
use crate::workload::{Outcome, Recorder};

/// How long a final read may keep trying while the healed cluster recovers.
const FINAL_READ_DEADLINE: Duration = Duration::from_secs(60);

/// How long the node may spend on one request before it gives up (57014).
pub const SQL_TIMEOUT_MS: u64 = 5_000;

/// Runs `statements` (text and arguments) as one transaction on `host`; `Ok` holds each
/// statement's result object (`rows`, or `rows_affected`).
pub async fn transaction(
    client: &reqwest::Client,
    host: &str,
    statements: &[(String, Vec<Value>)],
) -> Result<Vec<Value>, Outcome> {
    let body = json!({
        "statements": statements
            .iter()
            .map(|(sql, args)| json!({"sql": sql, "args": args}))
            .collect::<Vec<_>>(),
        "timeout_ms": SQL_TIMEOUT_MS,
    });
    let response = match client.post(format!("http://{host}/v1/sql")).json(&body).send().await {
        Ok(response) => response,
        Err(e) if e.is_connect() => return Err(Outcome::Fail(format!("connect: {e}"))),
        Err(e) => return Err(Outcome::Info(e.to_string())),
    };
    let status = response.status().as_u16();
    let answer: Value = match response.json().await {
        Ok(answer) => answer,
        Err(e) => return Err(Outcome::Info(format!("HTTP {status}, unreadable answer: {e}"))),
    };
    let error = || {
        let e = &answer["error"];
        format!("HTTP {status} {}: {}", e["sqlstate"].as_str().unwrap_or("-"), e["message"])
    };
    match status {
        200 => match answer["results"].as_array() {
            Some(results) if results.len() == statements.len() => Ok(results.clone()),
            _ => Err(Outcome::Info(format!("an answer without its results: {answer}"))),
        },
        400 | 409 | 503 => Err(Outcome::Fail(error())),
        _ => Err(Outcome::Info(error())),
    }
}

/// Runs each of `statements` once, on the first of `hosts` that answers, retrying while the
/// cluster settles (no leader yet: 503); for a workload's setup, before any fault. Refusals
/// (4xx) are final.
pub async fn setup(
    client: &reqwest::Client,
    hosts: &[String],
    statements: &[String],
) -> Result<(), String> {
    for sql in statements {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut last = String::new();
        'statement: loop {
            if std::time::Instant::now() >= deadline {
                return Err(format!("setup: {sql:?} did not run within 60 s: {last}"));
            }
            for host in hosts {
                let body = json!({"sql": sql});
                match client.post(format!("http://{host}/v1/sql")).json(&body).send().await {
                    Ok(answer) if answer.status().is_success() => break 'statement,
                    Ok(answer) if answer.status().is_client_error() => {
                        let text = answer.text().await.unwrap_or_default();
                        return Err(format!("setup: {sql:?} refused: {text}"));
                    }
                    Ok(answer) => last = answer.text().await.unwrap_or_default(),
                    Err(e) => last = e.to_string(),
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// A workload's final read, as process `process`, once the nemesis has healed the cluster:
/// runs `statement` on every node in turn until one answers, and records the attempts, the
/// successful one as an ok `read` whose value is `shape` of its rows.
pub async fn final_read(
    client: &reqwest::Client,
    hosts: &[String],
    recorder: &Recorder,
    process: u64,
    statement: &str,
    shape: impl Fn(Vec<Value>) -> Value,
) -> Result<(), String> {
    let deadline = Instant::now() + FINAL_READ_DEADLINE;
    let statement = (statement.to_string(), Vec::new());
    let mut last = String::new();
    while Instant::now() < deadline {
        for host in hosts {
            let p = Process::Client(process);
            let node = Some(host.clone());
            recorder.record(p, OpType::Invoke, "read", Value::Null, node.clone(), None);
            match transaction(client, host, std::slice::from_ref(&statement)).await {
                Ok(results) => {
                    let rows = results[0]["rows"].as_array().cloned().unwrap_or_default();
                    recorder.record(p, OpType::Ok, "read", shape(rows), node, None);
                    return Ok(());
                }
                Err(Outcome::Fail(e) | Outcome::Info(e)) => {
                    recorder.record(p, OpType::Fail, "read", Value::Null, node, Some(e.clone()));
                    last = e;
                }
                Err(Outcome::Ok(_)) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("the final read found no node to answer within 60 s: {last}"))
}
