//! The set workload: clients insert unique integers into a SQL table while the nemesis runs;
//! once it has healed the cluster, one final read lists the table, and
//! [`crate::checker::set`] compares it with what was acknowledged.
//!
//! ```text
//!   CREATE TABLE sets (v INT PRIMARY KEY)     split every 250 values
//!   add 17   INSERT INTO sets VALUES ($1)
//!   read     SELECT v FROM sets               (once, after the heal, retried until it answers)
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use crate::workload::{Generate, Outcome, Perform, Recorder, WorkloadOptions, drive};

/// The table.
pub const TABLE: &str = "sets";

/// The statements that create the table, split so that inserts spread over ranges.
pub fn setup_statements() -> Vec<String> {
    let splits: Vec<String> = (1..=8).map(|i| format!("({})", i * 250)).collect();
    vec![
        format!("CREATE TABLE {TABLE} (v INT PRIMARY KEY)"),
        format!("ALTER TABLE {TABLE} SPLIT AT VALUES {}", splits.join(", ")),
    ]
}

/// Runs the adds until `until`.
pub async fn run(options: WorkloadOptions, recorder: Recorder, until: Instant) {
    let next = Arc::new(AtomicU64::new(1));
    let generate: Generate =
        Arc::new(move |_| ("add".to_string(), json!(next.fetch_add(1, Ordering::Relaxed))));
    let perform: Perform = Arc::new(|client, host, _f, value| {
        Box::pin(async move {
            let statement = (format!("INSERT INTO {TABLE} VALUES ($1)"), vec![value.clone()]);
            match crate::sql::transaction(&client, &host, &[statement]).await {
                Ok(_) => Outcome::Ok(value),
                Err(outcome) => outcome,
            }
        })
    });
    drive(&options, recorder, until, generate, perform).await;
}

/// The final read, as process `process`, after the heal (see [`crate::sql::final_read`]):
/// the list of every element.
pub async fn final_read(
    client: &reqwest::Client,
    hosts: &[String],
    recorder: &Recorder,
    process: u64,
) -> Result<(), String> {
    let statement = format!("SELECT v FROM {TABLE}");
    let elements =
        |rows: Vec<Value>| Value::Array(rows.into_iter().map(|row| row[0].clone()).collect());
    crate::sql::final_read(client, hosts, recorder, process, &statement, elements).await
}
