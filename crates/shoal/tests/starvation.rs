//! End-to-end: no query can take its node offline.
//!
//! Three cross joins of 1,000-row tables (more queries than the machine has cores, each of
//! them a billion rows of work) run at once on one node of a real three-node cluster. While
//! they run, the busy node must stay what the cluster needs it to be:
//!
//! - its liveness record, read by another node, never lapses, and gossip keeps it live;
//! - its liveness epoch stays the same: no node found its record expired and took its leases
//!   away (the allocator may still move leases for balance, which is not a failure);
//! - its `/health` answers, and so does a point SELECT on another connection to it;
//!
//! and `statement_timeout` then ends each join with 57014. A client that cancels gets 57014
//! mid-join too: see `pgwire.rs`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value as Json;
use tokio_postgres::error::SqlState;

/// The bound on each probe's answer: a node that cannot answer within the liveness timeout
/// (4 s) would be declared dead, so half of it is a clear failure line.
const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// Each join's statement timeout.
const JOIN_TIMEOUT: &str = "15s";

async fn get_json(http: &reqwest::Client, url: String) -> Json {
    let answer = http.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(answer.status().is_success(), "GET {url}: {}", answer.status());
    answer.json().await.unwrap()
}

/// The busy node's liveness record as `via` reads it.
async fn liveness(http: &reqwest::Client, via: &Node, node_id: u64) -> Json {
    let view = get_json(http, format!("http://{}/v1/nodes", via.http)).await;
    view["liveness"]
        .as_array()
        .expect("liveness records are readable")
        .iter()
        .find(|r| r["node_id"].as_u64() == Some(node_id))
        .cloned()
        .expect("the busy node has a liveness record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_joins_leave_their_node_live_and_answering_until_statement_timeout_ends_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let nodes = tokio::task::spawn_blocking(move || cluster(&path, 3)).await.unwrap();
    let http = reqwest::Client::builder().timeout(PROBE_DEADLINE).build().unwrap();
    let busy = &nodes[0];
    let busy_id =
        get_json(&http, format!("http://{}/health", busy.http)).await["node_id"].as_u64().unwrap();

    let setup = connect(busy).await;
    setup.batch_execute("CREATE TABLE n (k INT PRIMARY KEY)").await.unwrap();
    let values: Vec<String> = (0..1_000).map(|i| format!("({i})")).collect();
    setup.batch_execute(&format!("INSERT INTO n VALUES {}", values.join(","))).await.unwrap();
    let epoch_before = liveness(&http, &nodes[1], busy_id).await["epoch"].clone();
    assert!(epoch_before.is_u64(), "a liveness epoch: {epoch_before}");

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut joins = Vec::new();
    for _ in 0..cores + 1 {
        let client = connect(busy).await;
        client.batch_execute(&format!("SET statement_timeout = '{JOIN_TIMEOUT}'")).await.unwrap();
        joins.push(tokio::spawn(async move {
            let sql = "SELECT count(*) FROM n a, n b, n c WHERE a.k + b.k + c.k = -1";
            client.query_one(sql, &[]).await
        }));
    }

    let probe = connect(busy).await;
    let mut probes = 0;
    while !joins.iter().all(|j| j.is_finished()) {
        let health = format!("http://{}/health", busy.http);
        let answer = http.get(&health).send().await;
        assert!(answer.is_ok_and(|a| a.status().is_success()), "the busy node's /health answers");

        let point = probe.query_one("SELECT k FROM n WHERE k = 7", &[]);
        let row = tokio::time::timeout(PROBE_DEADLINE, point).await;
        let row = row.expect("a point SELECT answers while the joins run").unwrap();
        assert_eq!(row.get::<_, i64>(0), 7);

        let record = liveness(&http, &nodes[1], busy_id).await;
        assert_eq!(record["live"], Json::Bool(true), "the busy node's liveness lapsed: {record}");
        let view = get_json(&http, format!("http://{}/v1/nodes", nodes[1].http)).await;
        let gossip = view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["status"]["address"]["node_id"].as_u64() == Some(busy_id))
            .cloned()
            .expect("gossip knows the busy node");
        assert_eq!(gossip["live"], Json::Bool(true), "gossip lost the busy node: {gossip}");
        probes += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(probes >= 10, "the joins ran for a while ({probes} probes), as they should");

    for join in joins {
        let err = join.await.unwrap().expect_err("a billion-row join does not finish");
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
        let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
        assert!(message.contains("statement timeout"), "{message}");
    }
    let epoch_after = liveness(&http, &nodes[1], busy_id).await["epoch"].clone();
    assert_eq!(epoch_after, epoch_before, "no node took the busy node's leases for lapsing");
    // The node serves as before.
    let count: i64 = setup.query_one("SELECT count(*) FROM n", &[]).await.unwrap().get(0);
    assert_eq!(count, 1_000);
}
