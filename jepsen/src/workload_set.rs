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
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::history::{OpType, Process};
use crate::workload::{Generate, Outcome, Perform, Recorder, WorkloadOptions, drive};

/// The table.
pub const TABLE: &str = "sets";
/// How long the final read may keep trying while the healed cluster recovers.
const FINAL_READ_DEADLINE: Duration = Duration::from_secs(60);

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

/// The final read, as process `process`: tries every node in turn until one answers (the
/// cluster has just been healed), recording the attempt that succeeded.
pub async fn final_read(
    client: &reqwest::Client,
    hosts: &[String],
    recorder: &Recorder,
    process: u64,
) -> Result<(), String> {
    let deadline = Instant::now() + FINAL_READ_DEADLINE;
    let statement = (format!("SELECT v FROM {TABLE}"), Vec::new());
    let mut last = String::new();
    while Instant::now() < deadline {
        for host in hosts {
            let p = Process::Client(process);
            recorder.record(p, OpType::Invoke, "read", Value::Null, Some(host.clone()), None);
            match crate::sql::transaction(client, host, std::slice::from_ref(&statement)).await {
                Ok(results) => {
                    let values: Vec<Value> = results[0]["rows"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|row| row[0].clone())
                        .collect();
                    recorder.record(p, OpType::Ok, "read", json!(values), Some(host.clone()), None);
                    return Ok(());
                }
                Err(Outcome::Fail(e) | Outcome::Info(e)) => {
                    recorder.record(
                        p,
                        OpType::Fail,
                        "read",
                        Value::Null,
                        Some(host.clone()),
                        Some(e.clone()),
                    );
                    last = e;
                }
                Err(Outcome::Ok(_)) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("the final read found no node to answer within 60 s: {last}"))
}
