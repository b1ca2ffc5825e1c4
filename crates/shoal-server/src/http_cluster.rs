//! The HTTP API for operating ranges and nodes: status, metrics, settings, decommission and
//! drain.
//!
//! ```text
//!   GET  /v1/ranges                         → every range: span, replicas, leaseholder, size,
//!                                             QPS, applied/commit index, per-follower lag
//!   GET  /v1/ranges/hot[?limit=N]           → the busiest ranges with their hottest keys
//!   GET  /metrics                           → Prometheus text
//!   GET  /v1/settings                       → every cluster setting and its value
//!   PUT  /v1/settings/{name} {"value": N}   → sets it
//!   POST /v1/nodes/{id}/decommission        → marks the node decommissioning; its replicas move
//!   GET  /v1/nodes/{id}/decommission        → {"membership", "replicas": N left on it}
//!   POST /v1/nodes/{id}/recommission        → back to active
//!   POST /v1/nodes/{id}/drain               → the node hands its leases away
//!   GET  /v1/nodes/{id}/drain               → {"draining", "leases": N it still holds}
//! ```
//!
//! Replica and lease counts for decommission and drain come from the addressing records and
//! the range reports, not from the node itself, so progress shows even when it is down.
//! Decommissioning finishes (the record says `decommissioned`) the first time progress is asked
//! for with no replica left.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::http::{ApiError, ApiResult, parse};
use crate::liveness::{self, NodeMembership};
use crate::server::Server;
use crate::{settings, status};

/// The routes of this module.
pub(crate) fn routes() -> Router<Server> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/ranges", get(ranges))
        .route("/v1/ranges/hot", get(hot_ranges))
        .route("/v1/settings", get(list_settings))
        .route("/v1/settings/{name}", axum::routing::put(set_setting))
        .route("/v1/nodes/{id}/decommission", get(decommission_progress).post(decommission))
        .route("/v1/nodes/{id}/recommission", axum::routing::post(recommission))
        .route("/v1/nodes/{id}/drain", get(drain_progress).post(drain))
}

async fn metrics(State(server): State<Server>) -> Result<axum::response::Response, ApiError> {
    let text = crate::metrics::render(&server).await?;
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(CONTENT_TYPE, content_type)], text).into_response())
}

async fn ranges(State(server): State<Server>) -> ApiResult {
    let report = status::ranges(&server).await?;
    Ok(axum::Json(json!(report)))
}

#[derive(Deserialize)]
struct HotQuery {
    limit: Option<usize>,
}

async fn hot_ranges(State(server): State<Server>, Query(query): Query<HotQuery>) -> ApiResult {
    let report = status::ranges(&server).await?;
    let mut hot: Vec<_> = report
        .ranges
        .into_iter()
        .filter_map(|r| {
            let leaseholder = r.leaseholder?;
            Some(json!({
                "range_id": r.range_id,
                "start_key": r.start_key,
                "end_key": r.end_key,
                "leaseholder_node": leaseholder.node_id,
                "qps": leaseholder.qps,
                "hottest_keys": leaseholder.hottest_keys
                    .iter()
                    .map(|(key, samples)| json!({"key": key, "samples": samples}))
                    .collect::<Vec<_>>(),
            }))
        })
        .collect();
    hot.sort_by(|a, b| {
        let qps = |v: &serde_json::Value| v["qps"].as_f64().unwrap_or(0.0);
        qps(b).total_cmp(&qps(a))
    });
    hot.truncate(query.limit.unwrap_or(10));
    Ok(axum::Json(json!({"ranges": hot, "unreachable_nodes": report.unreachable_nodes})))
}

async fn list_settings(State(server): State<Server>) -> ApiResult {
    let cluster = server.require_cluster()?;
    let mut out = Vec::new();
    for setting in settings::ALL {
        let value = settings::get(&cluster.kv, setting).await?;
        out.push(json!({
            "name": setting.name,
            "value": value,
            "default": setting.default,
            "min": setting.min,
            "max": setting.max,
            "description": setting.description,
        }));
    }
    Ok(axum::Json(json!({"settings": out})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingRequest {
    value: u64,
}

async fn set_setting(
    State(server): State<Server>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let request: SettingRequest = parse(&body)?;
    let Some(setting) = settings::find(&name) else {
        return Err(ApiError::bad_request(format!("no setting is called {name:?}")));
    };
    let cluster = server.require_cluster()?;
    settings::set(&cluster.kv, setting, request.value).await?;
    Ok(axum::Json(json!({"name": setting.name, "value": request.value})))
}

/// How many replicas the addressing records place on `node_id`.
async fn replicas_on(server: &Server, node_id: u64) -> Result<usize, ApiError> {
    let report = status::ranges(server).await?;
    Ok(report.ranges.iter().filter(|r| r.descriptor.replica_on(node_id).is_some()).count())
}

async fn decommission(State(server): State<Server>, Path(node_id): Path<u64>) -> ApiResult {
    let cluster = server.require_cluster()?;
    let record =
        liveness::set_membership(&cluster.kv, node_id, NodeMembership::Decommissioning).await?;
    let replicas = replicas_on(&server, node_id).await?;
    Ok(axum::Json(
        json!({"node_id": node_id, "membership": record.membership, "replicas": replicas}),
    ))
}

async fn recommission(State(server): State<Server>, Path(node_id): Path<u64>) -> ApiResult {
    let cluster = server.require_cluster()?;
    let record = liveness::set_membership(&cluster.kv, node_id, NodeMembership::Active).await?;
    Ok(axum::Json(json!({"node_id": node_id, "membership": record.membership})))
}

async fn decommission_progress(
    State(server): State<Server>,
    Path(node_id): Path<u64>,
) -> ApiResult {
    let cluster = server.require_cluster()?;
    let records = liveness::read_all(&cluster.kv).await?;
    let Some(record) = records.into_iter().find(|r| r.node_id == node_id) else {
        return Err(ApiError::bad_request(format!("node {node_id} has no liveness record")));
    };
    let replicas = replicas_on(&server, node_id).await?;
    let mut membership = record.membership;
    if membership == NodeMembership::Decommissioning && replicas == 0 {
        membership = liveness::set_membership(&cluster.kv, node_id, NodeMembership::Decommissioned)
            .await?
            .membership;
    }
    Ok(axum::Json(json!({"node_id": node_id, "membership": membership, "replicas": replicas})))
}

async fn drain(State(server): State<Server>, Path(node_id): Path<u64>) -> ApiResult {
    let cluster = server.require_cluster()?;
    let record = liveness::set_draining(&cluster.kv, node_id, true).await?;
    drain_report(&server, node_id, record.draining).await
}

async fn drain_progress(State(server): State<Server>, Path(node_id): Path<u64>) -> ApiResult {
    let cluster = server.require_cluster()?;
    let records = liveness::read_all(&cluster.kv).await?;
    let draining = records.iter().any(|r| r.node_id == node_id && r.draining);
    drain_report(&server, node_id, draining).await
}

async fn drain_report(server: &Server, node_id: u64, draining: bool) -> ApiResult {
    let report = status::ranges(server).await?;
    let leases = report.ranges.iter().filter(|r| r.leaseholder_node == Some(node_id)).count();
    Ok(axum::Json(json!({"node_id": node_id, "draining": draining, "leases": leases})))
}
