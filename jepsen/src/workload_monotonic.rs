//! The monotonic workload: every operation is one transaction that reads the largest value in
//! a table and inserts the next one, stamped with the transaction's commit timestamp from
//! `cluster_logical_timestamp()`. Once the nemesis has healed the cluster, one final read
//! lists every row, and [`crate::checker::monotonic`] checks that values and timestamps rise
//! together, without gaps, and in real-time order.
//!
//! ```text
//!   CREATE TABLE mono (val INT PRIMARY KEY, sts TEXT)   split every 100 values
//!   inc    INSERT INTO mono SELECT coalesce(max(val), 0) + 1, cluster_logical_timestamp()
//!          FROM mono RETURNING val, sts                          → [17, "1795….0000000000"]
//!   read   SELECT val, sts FROM mono      (once, after the heal)  → [[1, "…"], [2, "…"], …]
//! ```
//!
//! Every increment conflicts with every other (each reads the maximum), so the workload is
//! slow by design: it measures order, not throughput. The timestamp a transaction returns is
//! the one it commits at, because calling `cluster_logical_timestamp()` fixes the commit
//! timestamp (a transaction that would have to move restarts instead).

use std::time::Instant;

use serde_json::{Value, json};

use crate::workload::{Generate, Outcome, Perform, Recorder, WorkloadOptions, drive};

/// The table.
pub const TABLE: &str = "mono";

/// The statements that create the table, pre-split so the nemesis has ranges to move.
pub fn setup_statements() -> Vec<String> {
    let splits: Vec<String> = (1..=8).map(|i| format!("({})", i * 100)).collect();
    vec![
        format!("CREATE TABLE {TABLE} (val INT PRIMARY KEY, sts TEXT)"),
        format!("ALTER TABLE {TABLE} SPLIT AT VALUES {}", splits.join(", ")),
    ]
}

/// Runs the increments until `until`.
pub async fn run(options: WorkloadOptions, recorder: Recorder, until: Instant) {
    let generate: Generate = std::sync::Arc::new(|_| ("inc".to_string(), Value::Null));
    let perform: Perform = std::sync::Arc::new(|client, host, _f, _value| {
        Box::pin(async move {
            let statement = format!(
                "INSERT INTO {TABLE} (val, sts) \
                 SELECT coalesce(max(val), 0) + 1, cluster_logical_timestamp() FROM {TABLE} \
                 RETURNING val, sts"
            );
            match crate::sql::transaction(&client, &host, &[(statement, Vec::new())]).await {
                Ok(results) => match results[0]["rows"].as_array().map(Vec::as_slice) {
                    Some([row]) => Outcome::Ok(json!([row[0], row[1]])),
                    _ => Outcome::Info(format!("an increment returned {}", results[0])),
                },
                Err(outcome) => outcome,
            }
        })
    });
    drive(&options, recorder, until, generate, perform).await;
}

/// The final read, as process `process`, after the heal: every row as `[val, sts]`.
pub async fn final_read(
    client: &reqwest::Client,
    hosts: &[String],
    recorder: &Recorder,
    process: u64,
) -> Result<(), String> {
    let statement = format!("SELECT val, sts FROM {TABLE}");
    let pairs =
        |rows: Vec<Value>| Value::Array(rows.into_iter().map(|r| json!([r[0], r[1]])).collect());
    crate::sql::final_read(client, hosts, recorder, process, &statement, pairs).await
}
