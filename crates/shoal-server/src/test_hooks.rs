//! Test hooks: HTTP endpoints through which the Jepsen harness and tests reach into a node.
//!
//! They exist only when the node was started with `shoal start --enable-test-hooks`; otherwise
//! the routes are not even registered (404). Nothing here is for production use:
//!
//! | route | effect |
//! |---|---|
//! | `POST /v1/test/clock` `{"offset_ms": N}` | shifts this node's physical clock by N ms (HLC skew) |
//! | `POST /v1/test/faults` `{"drop": [2, 3], "delay_ms": {"4": 50}}` | drops or delays this node's messages to those peers; replaces earlier faults |
//! | `GET /v1/test/replicas[?key=K]` | this node's replicas: range, span, leaseholder or not, and whether each holds key K |
//! | `POST /v1/test/transfer-lease` `{"range_id": R, "to_node": N}` | this node, if it holds R's lease, hands it to N |
//!
//! A partition between nodes a and b in the loopback fallback of the harness is two calls:
//! a drops b and b drops a. Client traffic to a node's HTTP API is never affected.
//!
//! `--unsafe-stale-reads` (which requires `--enable-test-hooks`) makes `/v1/kv/get` answer from
//! the receiving node's local replica without a lease, so that stale reads happen; the harness
//! runs it to prove its checker reports them.
//!
//! Hazard: a clock offset moves this node's HLC readings; an offset beyond the cluster's
//! maximum makes its peers refuse its messages, which is the point of that test.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use shoal_hlc::SystemClock;
use shoal_rpc::PeerFault;

use crate::http::{ApiError, ApiResult, parse};
use crate::server::Server;

/// What a node started with `--enable-test-hooks` exposes.
#[derive(Debug, Clone)]
pub struct TestHooks {
    /// The node's physical clock, whose offset the clock hook sets.
    pub clock: Arc<SystemClock>,
    /// Serve `/v1/kv/get` from any local replica without a lease (stale reads on purpose).
    pub unsafe_stale_reads: bool,
    /// Transactions started on this node skip read refresh (serializability broken on
    /// purpose; see `KvClient::with_unsafe_skip_refresh`).
    pub unsafe_skip_refresh: bool,
}

/// The test routes, added to the node's router when hooks are enabled.
pub(crate) fn routes() -> Router<Server> {
    Router::new()
        .route("/v1/test/clock", post(set_clock))
        .route("/v1/test/faults", post(set_faults))
        .route("/v1/test/replicas", get(replicas))
        .route("/v1/test/transfer-lease", post(transfer_lease))
}

fn hooks(server: &Server) -> Result<&TestHooks, ApiError> {
    server
        .inner
        .config
        .test_hooks
        .as_ref()
        .ok_or_else(|| ApiError::bad_request("this node was not started with --enable-test-hooks"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    offset_ms: i64,
}

async fn set_clock(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: ClockRequest = parse(&body)?;
    let nanos = request
        .offset_ms
        .checked_mul(1_000_000)
        .ok_or_else(|| ApiError::bad_request("offset_ms is out of range"))?;
    let hooks = hooks(&server)?;
    hooks.clock.set_offset_nanos(nanos);
    tracing::warn!(offset_ms = request.offset_ms, "test hook: physical clock offset set");
    Ok(axum::Json(json!({"offset_ms": request.offset_ms})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsRequest {
    #[serde(default)]
    drop: Vec<u64>,
    #[serde(default)]
    delay_ms: BTreeMap<u64, u64>,
}

async fn set_faults(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: FaultsRequest = parse(&body)?;
    hooks(&server)?;
    let faults = server.inner.rpc.faults();
    faults.clear();
    for &peer in &request.drop {
        faults.set(peer, PeerFault { drop: true, delay: Duration::ZERO });
    }
    for (&peer, &ms) in &request.delay_ms {
        let mut fault = faults.get(peer);
        fault.delay = Duration::from_millis(ms);
        faults.set(peer, fault);
    }
    tracing::warn!(drop = ?request.drop, delay_ms = ?request.delay_ms, "test hook: faults set");
    Ok(axum::Json(json!({"drop": request.drop, "delay_ms": request.delay_ms})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicasQuery {
    key: Option<String>,
}

async fn replicas(State(server): State<Server>, Query(query): Query<ReplicasQuery>) -> ApiResult {
    hooks(&server)?;
    let cluster = server.require_cluster()?;
    let replicas: Vec<Json> = cluster
        .store
        .replicas()
        .iter()
        .map(|replica| {
            let descriptor = replica.descriptor();
            json!({
                "range_id": descriptor.range_id,
                "start": descriptor.start_key.to_string(),
                "end": descriptor.end_key.to_string(),
                "leaseholder": replica.is_leaseholder(),
                "holds_key": query.key.as_ref().map(|k| descriptor.contains_key(k.as_bytes())),
            })
        })
        .collect();
    Ok(axum::Json(json!({"node_id": cluster.ident.node_id, "replicas": replicas})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferRequest {
    range_id: u64,
    to_node: u64,
}

async fn transfer_lease(State(server): State<Server>, body: Bytes) -> ApiResult {
    let request: TransferRequest = parse(&body)?;
    hooks(&server)?;
    let cluster = server.require_cluster()?;
    let replica = cluster
        .store
        .replica(request.range_id)
        .map_err(|e| ApiError::bad_request(format!("range {}: {e}", request.range_id)))?;
    if !replica.is_leaseholder() {
        return Err(ApiError::bad_request(format!(
            "this node does not hold the lease of range {}",
            request.range_id
        )));
    }
    let target = replica.descriptor().replica_on(request.to_node).ok_or_else(|| {
        ApiError::bad_request(format!(
            "node {} has no replica of range {}",
            request.to_node, request.range_id
        ))
    })?;
    shoal_raft::handle::transfer_leadership(replica.raft(), target.replica_id)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::warn!(
        range_id = request.range_id,
        to_node = request.to_node,
        "test hook: lease transfer"
    );
    Ok(axum::Json(json!({"range_id": request.range_id, "to_node": request.to_node})))
}
