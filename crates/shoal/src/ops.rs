//! Operator commands over the ranges and nodes API: `shoal debug ranges`, `shoal node
//! decommission`, `shoal node drain`, `shoal debug settings`.
//!
//! ```text
//!   shoal debug ranges            table of every range (GET /v1/ranges)
//!   shoal debug ranges --hot      the busiest ranges and their hottest keys
//!   shoal node decommission 4     POST, then one progress line a second until no replica is left
//!   shoal node drain 4            POST, then one progress line a second until no lease is left
//!   shoal debug settings [NAME VALUE]  lists the cluster settings, or sets one
//! ```

use std::time::Duration;

use comfy_table::Table;
use serde_json::{Value, json};

use crate::client::NodeClient;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(header.to_vec());
    table
}

fn text(value: &Value) -> String {
    value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string())
}

/// Formats a byte count for people.
fn bytes(value: &Value) -> String {
    let Some(n) = value.as_u64() else { return "-".into() };
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// `shoal debug ranges`.
pub async fn ranges(host: &str, hot: bool, as_json: bool) -> Result<(), String> {
    let client = NodeClient::new(host);
    let path = if hot { "/v1/ranges/hot" } else { "/v1/ranges" };
    let answer = client.get(path).await.map_err(|e| e.to_string())?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
        return Ok(());
    }
    let rows = answer["ranges"].as_array().cloned().unwrap_or_default();
    if hot {
        let mut out = table(&["range", "start", "end", "lease", "qps", "hottest keys (samples)"]);
        for range in &rows {
            let keys: Vec<String> = range["hottest_keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| format!("{} ({})", text(&k["key"]), k["samples"]))
                .collect();
            out.add_row([
                range["range_id"].to_string(),
                text(&range["start_key"]),
                text(&range["end_key"]),
                format!("n{}", range["leaseholder_node"]),
                format!("{:.1}", range["qps"].as_f64().unwrap_or(0.0)),
                keys.join(", "),
            ]);
        }
        println!("{out}");
    } else {
        let mut out = table(&[
            "range",
            "start",
            "end",
            "replicas",
            "lease",
            "size",
            "qps",
            "applied",
            "commit",
            "follower lag",
        ]);
        for range in &rows {
            let lease = &range["leaseholder"];
            let voters: Vec<u64> = lease["voters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .collect();
            let replicas: Vec<String> = range["descriptor"]["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let learner = !voters.is_empty()
                        && r["replica_id"].as_u64().is_some_and(|id| !voters.contains(&id));
                    format!("n{}{}", r["node_id"], if learner { "(learner)" } else { "" })
                })
                .collect();
            let lag: Vec<String> = lease["followers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    format!(
                        "n{}: {} / {:.1}s",
                        f["node_id"],
                        f["lag_entries"],
                        f["lag_seconds"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            let known = !lease.is_null();
            let shown = |v: &Value| if known { v.to_string() } else { "-".into() };
            out.add_row([
                range["range_id"].to_string(),
                text(&range["start_key"]),
                text(&range["end_key"]),
                replicas.join(","),
                range["leaseholder_node"].as_u64().map_or("none".into(), |n| format!("n{n}")),
                bytes(&lease["size_bytes"]),
                if known {
                    format!("{:.1}", lease["qps"].as_f64().unwrap_or(0.0))
                } else {
                    "-".into()
                },
                shown(&lease["applied_index"]),
                shown(&lease["committed_index"]),
                lag.join(", "),
            ]);
        }
        println!("{out}");
        println!("{} ranges", rows.len());
    }
    let unreachable = answer["unreachable_nodes"].as_array().cloned().unwrap_or_default();
    if !unreachable.is_empty() {
        let nodes: Vec<String> = unreachable.iter().map(|n| format!("n{n}")).collect();
        println!("unreachable: {}", nodes.join(", "));
    }
    Ok(())
}

/// Polls `path` once a second, printing how many `things` the node still has (the answer's
/// `field`), until none is left; returns the last answer.
async fn watch_until_none(
    client: &NodeClient,
    node_id: u64,
    path: &str,
    field: &str,
    things: &str,
) -> Result<Value, String> {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let progress = client.get(path).await.map_err(|e| e.to_string())?;
        let left = progress[field].as_u64().unwrap_or(u64::MAX);
        println!("node {node_id}: {left} {things} left");
        if left == 0 {
            return Ok(progress);
        }
    }
}

/// `shoal node decommission ID`: marks the node and, unless `no_wait`, reports progress until
/// no replica is left on it.
pub async fn decommission(host: &str, node_id: u64, no_wait: bool) -> Result<(), String> {
    let client = NodeClient::new(host);
    let path = format!("/v1/nodes/{node_id}/decommission");
    let answer = client.post(&path, json!({})).await.map_err(|e| e.to_string())?;
    println!("node {node_id}: decommissioning, {} replicas to move", answer["replicas"]);
    if !no_wait {
        let done = watch_until_none(&client, node_id, &path, "replicas", "replicas").await?;
        println!("node {node_id}: {}", text(&done["membership"]));
    }
    Ok(())
}

/// `shoal node recommission ID`.
pub async fn recommission(host: &str, node_id: u64) -> Result<(), String> {
    let client = NodeClient::new(host);
    let path = format!("/v1/nodes/{node_id}/recommission");
    let answer = client.post(&path, json!({})).await.map_err(|e| e.to_string())?;
    println!("node {node_id}: {}", text(&answer["membership"]));
    Ok(())
}

/// `shoal node drain ID`: the node hands its leases away; reports progress until none is
/// left unless `no_wait`.
pub async fn drain(host: &str, node_id: u64, no_wait: bool) -> Result<(), String> {
    let client = NodeClient::new(host);
    let path = format!("/v1/nodes/{node_id}/drain");
    let answer = client.post(&path, json!({})).await.map_err(|e| e.to_string())?;
    println!("node {node_id}: draining, {} leases to move", answer["leases"]);
    if !no_wait {
        watch_until_none(&client, node_id, &path, "leases", "leases").await?;
        println!("node {node_id}: drained");
    }
    Ok(())
}

/// `shoal debug settings [NAME VALUE]`.
pub async fn settings(host: &str, set: Option<(String, u64)>) -> Result<(), String> {
    let client = NodeClient::new(host);
    if let Some((name, value)) = set {
        let path = format!("/v1/settings/{name}");
        client.put(&path, json!({"value": value})).await.map_err(|e| e.to_string())?;
        println!("{name} = {value}");
        return Ok(());
    }
    let answer = client.get("/v1/settings").await.map_err(|e| e.to_string())?;
    let mut out = table(&["setting", "value", "default", "description"]);
    for setting in answer["settings"].as_array().into_iter().flatten() {
        out.add_row([
            text(&setting["name"]),
            setting["value"].to_string(),
            setting["default"].to_string(),
            text(&setting["description"]),
        ]);
    }
    println!("{out}");
    Ok(())
}
