//! Transactions over HTTP: one batch as an implicit transaction, or an explicit transaction
//! held open across requests.
//!
//! ```text
//!   POST /v1/txn {"ops": [...], "commit": true}          implicit: one transaction, retried by
//!                                                       the server on restarts → {"results"}
//!   POST /v1/txn {"ops": [...]}                          begins → {"txn": "<id>", "results"}
//!   POST /v1/txn {"txn": "<id>", "ops": [...]}           more ops in it
//!   POST /v1/txn {"txn": "<id>", "ops": [...], "commit": true}   ops and commit (one phase
//!                                                       if they stay on one range)
//!   POST /v1/txn {"txn": "<id>", "rollback": true}
//!   ops: {"op": "get", "key"} | {"op": "put", "key", "value"} | {"op": "delete", "key"}
//!      | {"op": "scan", "start", "end", "limit"}
//!   results: {"value": v | null} | {"ok": true} | {"rows": [{"key", "value"}]}
//! ```
//!
//! A restart error is HTTP 409 `{"error": {"code": "restart_transaction", "reason", ..}}` (the
//! SQLSTATE 40001 of the HTTP API); the open transaction is then rolled back and forgotten, and
//! the client runs it again from the start. An open transaction idle for
//! [`SESSION_IDLE_TIMEOUT`] is rolled back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use shoal_api::{KvError, Request, Response};
use shoal_keys::{Key, Span, layout};
use shoal_kvclient::KvOps;
use shoal_kvclient::txn::Txn;

use crate::http::{
    ApiError, ApiResult, DEFAULT_SCAN_LIMIT, Encoding, MAX_SCAN_LIMIT, kv_error, parse, user_key,
};
use crate::server::Server;

/// How long an open transaction may go without a request before it is rolled back.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The most operations one request may carry.
pub const MAX_OPS: usize = 10_000;

/// Open transactions of this node, by id.
#[derive(Default)]
pub struct TxnSessions {
    open: Mutex<HashMap<u128, (Txn, Instant)>>,
}

impl TxnSessions {
    fn insert(&self, txn: Txn) -> u128 {
        let id = txn.meta().id;
        self.lock().insert(id, (txn, Instant::now()));
        id
    }

    fn get(&self, id: u128) -> Option<Txn> {
        let mut open = self.lock();
        let (txn, used) = open.get_mut(&id)?;
        *used = Instant::now();
        Some(txn.clone())
    }

    fn remove(&self, id: u128) -> Option<Txn> {
        self.lock().remove(&id).map(|(txn, _)| txn)
    }

    /// Rolls back the transactions idle for too long.
    fn reap(&self) {
        let idle: Vec<Txn> = {
            let mut open = self.lock();
            let expired: Vec<u128> = open
                .iter()
                .filter(|(_, (_, used))| used.elapsed() > SESSION_IDLE_TIMEOUT)
                .map(|(id, _)| *id)
                .collect();
            expired.into_iter().filter_map(|id| open.remove(&id)).map(|(t, _)| t).collect()
        };
        for txn in idle {
            tokio::spawn(async move { txn.rollback().await });
        }
    }

    /// Returns how many transactions are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Returns true if none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, (Txn, Instant)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Deserialize, Clone)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum Op {
    Get { key: String },
    Put { key: String, value: String },
    Delete { key: String },
    Scan { start: String, end: String, limit: Option<u64> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxnRequest {
    txn: Option<String>,
    #[serde(default)]
    ops: Vec<Op>,
    #[serde(default)]
    commit: bool,
    #[serde(default)]
    rollback: bool,
    #[serde(default)]
    encoding: Encoding,
}

fn to_request(op: &Op, enc: Encoding) -> Result<Request, ApiError> {
    Ok(match op {
        Op::Get { key } => Request::Get { key: user_key(enc, "key", key)? },
        Op::Put { key, value } => {
            Request::Put { key: user_key(enc, "key", key)?, value: enc.decode("value", value)? }
        }
        Op::Delete { key } => Request::Delete { key: user_key(enc, "key", key)? },
        Op::Scan { start, end, limit } => {
            let start = user_key(enc, "start", start)?;
            let end = match enc.decode("end", end)? {
                end if end.as_slice() > layout::MAX => Key::max(),
                end => Key::new(end),
            };
            if start >= end {
                return Err(ApiError::bad_request("start must sort before end"));
            }
            let limit = limit.unwrap_or(DEFAULT_SCAN_LIMIT);
            if limit == 0 || limit > MAX_SCAN_LIMIT {
                return Err(ApiError::bad_request(format!(
                    "limit must be between 1 and {MAX_SCAN_LIMIT}"
                )));
            }
            Request::Scan { span: Span { start, end }, limit: Some(limit), filter: None }
        }
    })
}

fn to_result(response: &Response, enc: Encoding) -> Json {
    match response {
        Response::Get(value) => json!({"value": enc.encode_opt(value.as_deref())}),
        Response::Scan { rows, .. } => {
            let rows: Vec<Json> = rows
                .iter()
                .map(|(k, v)| json!({"key": enc.encode(k.as_bytes()), "value": enc.encode(v)}))
                .collect();
            json!({"rows": rows})
        }
        _ => json!({"ok": true}),
    }
}

fn parse_id(text: &str) -> Result<u128, ApiError> {
    u128::from_str_radix(text, 16)
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not a transaction id")))
}

/// `POST /v1/txn`.
pub(crate) async fn txn(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: TxnRequest = parse(&body)?;
    let enc = request.encoding;
    if request.ops.len() > MAX_OPS {
        return Err(ApiError::bad_request(format!("at most {MAX_OPS} operations per request")));
    }
    if request.commit && request.rollback {
        return Err(ApiError::bad_request("commit and rollback exclude each other"));
    }
    let requests =
        request.ops.iter().map(|op| to_request(op, enc)).collect::<Result<Vec<_>, _>>()?;
    let cluster = server.require_cluster()?;
    cluster.sessions.reap();
    let results = |responses: Vec<Response>| -> Json {
        Json::Array(responses.iter().map(|r| to_result(r, enc)).collect())
    };
    let Some(id) = request.txn.as_deref().map(parse_id).transpose()? else {
        if request.rollback {
            return Err(ApiError::bad_request("rollback names no transaction"));
        }
        if request.commit {
            // Implicit: the server restarts it as often as needed.
            let responses = cluster
                .kv
                .txn(|t: Txn| {
                    let requests = requests.clone();
                    async move { t.commit_with(requests).await }
                })
                .await
                .map_err(|e| kv_error(e, enc))?;
            return Ok(axum::Json(json!({"results": results(responses)})));
        }
        let txn = cluster.kv.begin();
        let responses = run(&txn, requests).await.map_err(|e| kv_error(e, enc))?;
        let id = cluster.sessions.insert(txn);
        return Ok(axum::Json(json!({"txn": format!("{id:x}"), "results": results(responses)})));
    };
    let Some(txn) = cluster.sessions.get(id) else {
        return Err(ApiError::not_found(format!("no open transaction {id:x} on this node")));
    };
    if request.rollback {
        cluster.sessions.remove(id);
        txn.rollback().await.map_err(|e| kv_error(e, enc))?;
        return Ok(axum::Json(json!({"ok": true})));
    }
    let outcome =
        if request.commit { txn.commit_with(requests).await } else { run(&txn, requests).await };
    match outcome {
        Ok(responses) => {
            if request.commit {
                cluster.sessions.remove(id);
            }
            let id = (!request.commit).then(|| format!("{id:x}"));
            Ok(axum::Json(json!({"txn": id, "results": results(responses)})))
        }
        Err(e) => {
            // The client starts over; whatever the transaction wrote is cleaned up.
            if let Some(txn) = cluster.sessions.remove(id)
                && !matches!(e, KvError::Ambiguous(_))
            {
                tokio::spawn(async move { txn.rollback().await });
            }
            Err(kv_error(e, enc))
        }
    }
}

async fn run(txn: &Txn, requests: Vec<Request>) -> Result<Vec<Response>, KvError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    txn.send(requests).await
}
