//! The commands that talk to a running node: `init`, `node status` and `debug kv`.

use clap::Subcommand;
use comfy_table::Table;
use serde_json::{Value, json};

use crate::client::{ClientError, NodeClient};

/// A `shoal debug kv` operation.
#[derive(Subcommand)]
pub enum KvOp {
    /// Writes KEY = VALUE.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Prints the value of KEY; exits 1 if it is absent.
    Get {
        /// The key.
        key: String,
    },
    /// Writes NEW if KEY holds EXPECTED (with --expected-absent: if KEY is absent; then give
    /// only KEY NEW). Exits 1 with the current value if not.
    Cas {
        /// KEY EXPECTED NEW, or KEY NEW with --expected-absent.
        #[arg(num_args = 2..=3, required = true)]
        args: Vec<String>,
        /// Succeed only if the key is absent.
        #[arg(long)]
        expected_absent: bool,
    },
    /// Deletes KEY.
    Delete {
        /// The key.
        key: String,
    },
    /// Prints every key in [START, END) with its value, tab-separated, in key order.
    Scan {
        /// The first key.
        start: String,
        /// The end (exclusive).
        end: String,
        /// The most rows to print.
        #[arg(long)]
        limit: Option<u64>,
    },
}

/// `shoal init`.
pub async fn init(host: &str) -> Result<(), String> {
    let client = NodeClient::new(host);
    let report = client.post("/v1/cluster/init", json!({})).await.map_err(|e| e.to_string())?;
    println!("cluster {} initialized", report["cluster_id"].as_str().unwrap_or("?"));
    for node in report["nodes"].as_array().into_iter().flatten() {
        println!(
            "  node {}  rpc {}  http {}",
            node["node_id"],
            node["rpc_addr"].as_str().unwrap_or("?"),
            node["http_addr"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// `shoal node status`.
pub async fn node_status(host: &str, as_json: bool) -> Result<(), String> {
    let client = NodeClient::new(host);
    let answer = client.get("/v1/nodes").await.map_err(|e| e.to_string())?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["id", "address", "http", "live", "replicas", "leases", "last heard"]);
    for node in answer["nodes"].as_array().into_iter().flatten() {
        let status = &node["status"];
        let address = &status["address"];
        table.add_row([
            address["node_id"].to_string(),
            text(&address["rpc_addr"]),
            text(&address["http_addr"]),
            if node["live"].as_bool() == Some(true) { "live" } else { "DEAD" }.to_string(),
            status["replicas"].to_string(),
            status["leases"].to_string(),
            format!("{}ms ago", node["last_heard_ms"]),
        ]);
    }
    println!("cluster {}", text(&answer["cluster_id"]));
    println!("{table}");
    Ok(())
}

fn text(value: &Value) -> String {
    value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string())
}

/// Prints a key or value as the API returned it: a string, or `{"base64": ...}` for bytes that
/// are not UTF-8.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(o) if o.contains_key("base64") => format!("base64:{}", text(&o["base64"])),
        other => other.to_string(),
    }
}

/// `shoal debug kv`.
pub async fn kv(host: &str, op: KvOp, base64: bool) -> Result<(), String> {
    let client = NodeClient::new(host);
    let encoding = if base64 { "base64" } else { "utf8" };
    let failed = |e: ClientError| e.to_string();
    match op {
        KvOp::Put { key, value } => {
            client.kv_put(&key, &value, encoding).await.map_err(failed)?;
            println!("OK");
        }
        KvOp::Get { key } => match client.kv_get(&key, encoding).await.map_err(failed)? {
            Some(value) => println!("{}", shown(&value)),
            None => return Err(format!("key {key:?} not found")),
        },
        KvOp::Cas { args, expected_absent } => {
            let (key, expected, value) = match (expected_absent, args.as_slice()) {
                (false, [key, expected, value]) => (key, Some(expected), value),
                (true, [key, value]) => (key, None, value),
                (false, _) => return Err("cas takes KEY EXPECTED NEW".into()),
                (true, _) => return Err("cas --expected-absent takes KEY NEW".into()),
            };
            let body =
                json!({"key": key, "expected": expected, "value": value, "encoding": encoding});
            match client.post("/v1/kv/cas", body).await {
                Ok(_) => println!("OK"),
                Err(ClientError::Api { code, body, .. }) if code == "condition_failed" => {
                    let actual = match &body["actual"] {
                        Value::Null => "absent".to_string(),
                        value => format!("{:?}", shown(value)),
                    };
                    return Err(format!("condition failed: the current value is {actual}"));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        KvOp::Delete { key } => {
            let body = json!({"key": key, "encoding": encoding});
            client.post("/v1/kv/delete", body).await.map_err(failed)?;
            println!("OK");
        }
        KvOp::Scan { start, end, limit } => {
            let body = json!({"start": start, "end": end, "limit": limit, "encoding": encoding});
            let answer = client.post("/v1/kv/scan", body).await.map_err(failed)?;
            for row in answer["rows"].as_array().into_iter().flatten() {
                println!("{}\t{}", shown(&row["key"]), shown(&row["value"]));
            }
        }
    }
    Ok(())
}

/// `shoal debug split`.
pub async fn split(host: &str, key: &str, base64: bool) -> Result<(), String> {
    let client = NodeClient::new(host);
    let encoding = if base64 { "base64" } else { "utf8" };
    let body = json!({"key": key, "encoding": encoding});
    let answer = client.post("/v1/admin/split", body).await.map_err(|e| e.to_string())?;
    for side in ["lhs", "rhs"] {
        let range = &answer[side];
        println!(
            "range {}\t[{}, {})\treplicas on nodes {}",
            range["range_id"],
            text(&range["start_key"]),
            text(&range["end_key"]),
            range["replicas"]
        );
    }
    Ok(())
}
