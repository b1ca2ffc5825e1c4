//! The HTTP API: KV access, cluster initialization and node status, as JSON.
//!
//! ```text
//!   POST /v1/kv/get     {"key": "a"}                          → {"key": "a", "value": "1" | null}
//!   POST /v1/kv/put     {"key": "a", "value": "1"}            → {"ok": true}
//!   POST /v1/kv/cas     {"key": "a", "expected": "1" | null, "value": "2"}
//!                                                            → {"ok": true}
//!                                                            | 412 {"error": .., "actual": ..}
//!   POST /v1/kv/delete  {"key": "a"}                          → {"ok": true}
//!   POST /v1/kv/scan    {"start": "a", "end": "z", "limit": 10}
//!                                                            → {"rows": [{"key", "value"}]}
//!   POST /v1/txn        {"ops": [..], "commit": true}          → {"results": [..]} (see http_txn)
//!   POST /v1/sql        {"sql": "SELECT 1; …"}                 → {"results": [..]} (see http_sql)
//!   POST /v1/admin/split {"key": "m"}                        → {"lhs": range, "rhs": range}
//!   POST /v1/cluster/init                                    → {"cluster_id", "nodes"}
//!   GET  /v1/nodes                                           → {"nodes": [...]}
//!   GET  /health                                             → {"node_id", "cluster_id", ..}
//!   GET  /health?ready=1                                     → 200 {"ready": true} | 503
//!   GET  /v1/openapi.json                                    → this API, as OpenAPI 3.0
//! ```
//!
//! `/health` answers while the process runs (liveness); `/health?ready=1` only when the node
//! can serve: it has joined a cluster, it can read the node-liveness records (so the system
//! ranges have a quorum) within [`READY_TIMEOUT`], and it is neither draining nor
//! decommissioned. Load balancers route by it. The OpenAPI document is `docs/openapi.json`.
//!
//! A request body may hold at most [`MAX_BODY_BYTES`]; a larger one gets 413.
//!
//! Ranges, metrics, settings, decommission and drain: see `http_cluster`.
//!
//! Keys and values are UTF-8 strings unless the request says `"encoding": "base64"`, which
//! then applies to every key and value in the request and the answer.
//!
//! Every request is routed through this node's DistSender, whichever range it touches.
//! Errors are JSON `{"error": {"code", "message"}}` with a status saying what the caller may
//! do: 400 bad input, 412 compare-and-set mismatch, 503 unavailable (not applied; retry),
//! 504 ambiguous (may or may not have been applied), 500 internal.
//!
//! # Out of scope
//!
//! Authentication and TLS. Keys below `/System/Max` (meta and system records) are refused.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use shoal_api::KvError;
use shoal_keys::{Key, Span, layout};
use shoal_kvclient::KvOps;

use crate::error::Error;
use crate::server::Server;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// How long `/health?ready=1` waits for the node-liveness records.
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// The API's OpenAPI document, served at `GET /v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// The most rows one scan returns when the request names no limit.
pub const DEFAULT_SCAN_LIMIT: u64 = 1_000;
/// The most rows one scan may ask for.
pub const MAX_SCAN_LIMIT: u64 = 100_000;

/// Serves the API on `listener` until `stop` turns true; then lets the requests in flight
/// finish, closes every connection and returns.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    server: Server,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    if let Err(e) =
        axum::serve(listener.tap_io(no_delay), router(server)).with_graceful_shutdown(stopped).await
    {
        tracing::error!("the HTTP server stopped: {e}");
    }
}

/// Answers go out at once rather than waiting for the client's acknowledgement of the previous
/// segment (Nagle's algorithm), which would add up to a delayed-ACK timeout to a request.
fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!("setting TCP_NODELAY on an HTTP connection failed: {e}");
    }
}

fn router(server: Server) -> Router {
    let router = Router::new()
        .route("/health", get(health))
        .route("/v1/nodes", get(nodes))
        .route("/v1/cluster/init", post(init))
        .route("/v1/kv/get", post(kv_get))
        .route("/v1/kv/put", post(kv_put))
        .route("/v1/kv/cas", post(kv_cas))
        .route("/v1/kv/delete", post(kv_delete))
        .route("/v1/kv/scan", post(kv_scan))
        .route("/v1/txn", post(crate::http_txn::txn))
        .route("/v1/sql", post(crate::http_sql::sql))
        .route("/v1/admin/split", post(admin_split))
        .route("/v1/openapi.json", get(openapi))
        .merge(crate::http_cluster::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(too_large_as_json));
    let router = match server.inner.config.test_hooks {
        Some(_) => router.merge(crate::test_hooks::routes()),
        None => router,
    };
    router.with_state(server)
}

/// A failed request: its status, machine-readable code, message and extra fields.
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    sqlstate: Option<&'static str>,
    extra: Option<(&'static str, Json)>,
}

impl ApiError {
    /// An error with a status, a machine-readable code and a message.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        ApiError { status, code, message, sqlstate: None, extra: None }
    }

    /// Adds the SQLSTATE of a SQL error to the error object.
    pub(crate) fn with_sqlstate(mut self, sqlstate: &'static str) -> Self {
        self.sqlstate = Some(sqlstate);
        self
    }

    /// Adds a field next to `error` in the answer.
    pub(crate) fn with(mut self, name: &'static str, value: Json) -> Self {
        self.extra = Some((name, value));
        self
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
            sqlstate: None,
            extra: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            sqlstate: None,
            extra: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if let Some(sqlstate) = self.sqlstate {
            body["error"]["sqlstate"] = Json::from(sqlstate);
        }
        if let Some((name, value)) = self.extra {
            body[name] = value;
        }
        (self.status, axum::Json(body)).into_response()
    }
}

pub(crate) fn kv_error(error: KvError, encoding: Encoding) -> ApiError {
    let (status, code) = match &error {
        KvError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "invalid_argument"),
        KvError::ConditionFailed { .. } => (StatusCode::PRECONDITION_FAILED, "condition_failed"),
        KvError::Ambiguous(_) => (StatusCode::GATEWAY_TIMEOUT, "ambiguous"),
        KvError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        // Retryable: the client should run the transaction again (SQLSTATE 40001).
        KvError::TxnRetry { .. } => (StatusCode::CONFLICT, "restart_transaction"),
        KvError::LockConflict { .. }
        | KvError::Unavailable(_)
        | KvError::NotLeaseholder { .. }
        | KvError::RangeKeyMismatch { .. }
        | KvError::RangeNotFound(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let extra = match &error {
        KvError::ConditionFailed { actual } => {
            Some(("actual", encoding.encode_opt(actual.as_deref())))
        }
        KvError::TxnRetry { reason, .. } => Some(("reason", Json::String(reason.name().into()))),
        _ => None,
    };
    ApiError { status, code, message: error.to_string(), sqlstate: None, extra }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let (status, code) = match &error {
            Error::Kv(e) => return kv_error(e.clone(), Encoding::Utf8),
            Error::NotInitialized => (StatusCode::SERVICE_UNAVAILABLE, "not_initialized"),
            Error::AlreadyInitialized(_) => (StatusCode::CONFLICT, "already_initialized"),
            Error::Peer(_) => (StatusCode::BAD_GATEWAY, "peer_failed"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError { status, code, message: error.to_string(), sqlstate: None, extra: None }
    }
}

/// How keys and values are written in JSON.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Encoding {
    #[default]
    Utf8,
    Base64,
}

impl Encoding {
    pub(crate) fn decode(self, field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
        match self {
            Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
            Encoding::Base64 => BASE64
                .decode(text)
                .map_err(|e| ApiError::bad_request(format!("{field} is not valid base64: {e}"))),
        }
    }

    pub(crate) fn encode(self, bytes: &[u8]) -> Json {
        match self {
            Encoding::Base64 => Json::String(BASE64.encode(bytes)),
            // Lossless or nothing: bytes that are not UTF-8 are sent as base64 in an object
            // that says so, never mangled.
            Encoding::Utf8 => match std::str::from_utf8(bytes) {
                Ok(text) => Json::String(text.to_string()),
                Err(_) => json!({"base64": BASE64.encode(bytes)}),
            },
        }
    }

    pub(crate) fn encode_opt(self, bytes: Option<&[u8]>) -> Json {
        bytes.map_or(Json::Null, |b| self.encode(b))
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

/// Decodes a user key, refusing the reserved keyspace.
pub(crate) fn user_key(encoding: Encoding, field: &str, text: &str) -> Result<Key, ApiError> {
    let bytes = encoding.decode(field, text)?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(format!("{field} is empty")));
    }
    if bytes.as_slice() < layout::SYSTEM_MAX {
        return Err(ApiError::bad_request(format!(
            "{field} falls in the reserved system keyspace (keys starting with bytes 0x00-0x04)"
        )));
    }
    if bytes.as_slice() >= layout::MAX {
        return Err(ApiError::bad_request(format!("{field} is at or beyond /Max (0xffff)")));
    }
    Ok(Key::new(bytes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRequest {
    key: String,
    #[serde(default)]
    encoding: Encoding,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutRequest {
    key: String,
    value: String,
    #[serde(default)]
    encoding: Encoding,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasRequest {
    key: String,
    expected: Option<String>,
    value: String,
    #[serde(default)]
    encoding: Encoding,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanRequest {
    start: String,
    end: String,
    limit: Option<u64>,
    #[serde(default)]
    encoding: Encoding,
}

pub(crate) type ApiResult = Result<axum::Json<Json>, ApiError>;

async fn kv_get(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: KeyRequest = parse(&body)?;
    let enc = request.encoding;
    let key = user_key(enc, "key", &request.key)?;
    let cluster = server.require_cluster()?;
    let unsafe_read = match &server.inner.config.test_hooks {
        Some(hooks) if hooks.unsafe_stale_reads => cluster.store.read_local_unsafe(key.as_bytes()),
        _ => None,
    };
    let value = match unsafe_read {
        Some(read) => read,
        None => cluster.kv.get(key).await,
    }
    .map_err(|e| kv_error(e, enc))?;
    Ok(axum::Json(json!({"key": request.key, "value": enc.encode_opt(value.as_deref())})))
}

async fn kv_put(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: PutRequest = parse(&body)?;
    let enc = request.encoding;
    let key = user_key(enc, "key", &request.key)?;
    let value = enc.decode("value", &request.value)?;
    let cluster = server.require_cluster()?;
    cluster.kv.put(key, value).await.map_err(|e| kv_error(e, enc))?;
    Ok(axum::Json(json!({"ok": true})))
}

async fn kv_cas(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: CasRequest = parse(&body)?;
    let enc = request.encoding;
    let key = user_key(enc, "key", &request.key)?;
    let expected = request.expected.as_deref().map(|e| enc.decode("expected", e)).transpose()?;
    let value = enc.decode("value", &request.value)?;
    let cluster = server.require_cluster()?;
    cluster.kv.compare_and_set(key, expected, value).await.map_err(|e| kv_error(e, enc))?;
    Ok(axum::Json(json!({"ok": true})))
}

async fn kv_delete(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: KeyRequest = parse(&body)?;
    let enc = request.encoding;
    let key = user_key(enc, "key", &request.key)?;
    let cluster = server.require_cluster()?;
    cluster.kv.delete(key).await.map_err(|e| kv_error(e, enc))?;
    Ok(axum::Json(json!({"ok": true})))
}

async fn kv_scan(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: ScanRequest = parse(&body)?;
    let enc = request.encoding;
    let start = user_key(enc, "start", &request.start)?;
    let end = match enc.decode("end", &request.end)? {
        end if end.as_slice() > layout::MAX => Key::max(),
        end => Key::new(end),
    };
    if start >= end {
        return Err(ApiError::bad_request("start must sort before end"));
    }
    let limit = request.limit.unwrap_or(DEFAULT_SCAN_LIMIT);
    if limit == 0 || limit > MAX_SCAN_LIMIT {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_SCAN_LIMIT}")));
    }
    let cluster = server.require_cluster()?;
    let rows =
        cluster.kv.scan(Span { start, end }, Some(limit)).await.map_err(|e| kv_error(e, enc))?;
    let rows: Vec<Json> = rows
        .iter()
        .map(|(k, v)| json!({"key": enc.encode(k.as_bytes()), "value": enc.encode(v)}))
        .collect();
    Ok(axum::Json(json!({"rows": rows})))
}

async fn admin_split(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: KeyRequest = parse(&body)?;
    let key = user_key(request.encoding, "key", &request.key)?;
    let (lhs, rhs) = crate::admin::split(&server, key).await?;
    let range = |d: &shoal_api::RangeDescriptor| {
        json!({
            "range_id": d.range_id,
            "start_key": d.start_key.to_string(),
            "end_key": d.end_key.to_string(),
            "replicas": d.replicas.iter().map(|r| r.node_id).collect::<Vec<_>>(),
        })
    };
    Ok(axum::Json(json!({"lhs": range(&lhs), "rhs": range(&rhs)})))
}

async fn init(State(server): State<Server>) -> ApiResult {
    let cluster_id = uuid::Uuid::new_v4().to_string();
    let report = server.init_cluster(cluster_id).await?;
    Ok(axum::Json(json!(report)))
}

/// The nodes as gossip sees them, and their liveness records as this node reads them now
/// (`live`: the record's expiration is past this node's clock; null when unreadable).
async fn nodes(State(server): State<Server>) -> ApiResult {
    let cluster = server.require_cluster()?;
    let now = server.inner.clock.now();
    let liveness = match crate::liveness::read_all(&cluster.kv).await {
        Ok(records) => Json::Array(
            records
                .iter()
                .map(|r| {
                    json!({
                        "node_id": r.node_id,
                        "epoch": r.epoch,
                        "expiration": r.expiration.to_string(),
                        "live": r.is_live(now),
                        "expires_in_ms": r.expiration.wall.saturating_sub(now.wall) / 1_000_000,
                    })
                })
                .collect(),
        ),
        Err(e) => {
            tracing::debug!("reading liveness records: {e}");
            Json::Null
        }
    };
    Ok(axum::Json(json!({
        "cluster_id": cluster.ident.cluster_id,
        "nodes": cluster.gossip.view(),
        "liveness": liveness,
    })))
}

/// `413` from the body limit comes as plain text: make it the API's JSON error.
async fn too_large_as_json(response: Response) -> Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let message = format!("the request body is larger than {MAX_BODY_BYTES} bytes");
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message).into_response()
}

async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Deserialize)]
struct HealthQuery {
    /// Present (`ready=1`): answer whether the node can serve, not only whether it runs.
    ready: Option<String>,
}

async fn health(
    State(server): State<Server>,
    query: axum::extract::Query<HealthQuery>,
) -> Response {
    let cluster_id = server.cluster().map(|c| c.ident.cluster_id.clone());
    let mut body = json!({
        "node_id": server.node_id(),
        "cluster_id": cluster_id,
        "rpc_addr": server.rpc_addr().to_string(),
        "http_addr": server.http_addr().to_string(),
    });
    if query.ready.as_deref().is_none_or(|r| r == "0" || r == "false") {
        return axum::Json(body).into_response();
    }
    let not_ready = readiness(&server).await.err();
    body["ready"] = Json::Bool(not_ready.is_none());
    match not_ready {
        None => axum::Json(body).into_response(),
        Some(reason) => {
            body["reason"] = Json::String(reason);
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

/// Why the node cannot serve, if it cannot.
async fn readiness(server: &Server) -> Result<(), String> {
    let cluster = server.cluster().ok_or("the node has not joined a cluster")?;
    let records = tokio::time::timeout(READY_TIMEOUT, crate::liveness::read_all(&cluster.kv))
        .await
        .map_err(|_| format!("the node-liveness records did not answer within {READY_TIMEOUT:?}"))?
        .map_err(|e| format!("the node-liveness records cannot be read: {e}"))?;
    let own = records.iter().find(|r| r.node_id == server.node_id());
    match own {
        None => Err("the node has no liveness record yet".into()),
        Some(record) if record.draining => Err("the node is draining".into()),
        Some(record) if record.membership != crate::liveness::NodeMembership::Active => {
            Err(format!("the node's membership is {:?}", record.membership))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `docs/openapi.json` lists exactly the routes the router serves (test hooks aside).
    /// `make openapi-check` runs a schema validator over it.
    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: Json = serde_json::from_str(OPENAPI).expect("docs/openapi.json is JSON");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
        let documented: BTreeSet<String> =
            doc["paths"].as_object().expect("paths").keys().cloned().collect();
        let mut served = BTreeSet::new();
        for source in [include_str!("http.rs"), include_str!("http_cluster.rs")] {
            for (at, _) in source.match_indices(".route(\"") {
                let path = &source[at + 8..];
                served.insert(path[..path.find('"').expect("a closing quote")].to_string());
            }
        }
        assert_eq!(documented, served);
    }
}
