//! The g2 workload: Adya's G2 (anti-dependency cycles, "write skew") probed with predicate
//! reads. For each key two transactions run at once, one inserting into table `ga`, one into
//! `gb`, each only if neither table has a row matching a predicate on the key. They write
//! different rows of different tables, so nothing but their reads orders them: a serializable
//! database lets at most one insert per key happen. [`crate::checker::g2`] counts them.
//!
//! ```text
//!   CREATE TABLE ga (id INT PRIMARY KEY, k INT, v INT), index on k; the same for gb
//!   insert [5, "a", 9]   INSERT INTO ga (id, k, v) SELECT 9, 5, 30
//!                        WHERE NOT EXISTS (SELECT 1 FROM ga WHERE k = 5 AND v % 3 = 0)
//!                          AND NOT EXISTS (SELECT 1 FROM gb WHERE k = 5 AND v % 3 = 0)
//!                        → [5, "a", 9, true]   (inserted; false: the predicate saw a row)
//!   insert [5, "b", 10]  the same into gb, at the same time
//! ```
//!
//! Shoal prevents the skew with the timestamp cache and read refresh: the second writer's
//! write lands under the first one's predicate read, is pushed above it, and its refresh
//! then finds the first one's row. With `--unsafe-skip-refresh` both inserts can commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::json;

use crate::workload::{Generate, Outcome, Perform, Recorder, WorkloadOptions, drive};

/// The table the nemesis aims at.
pub const TABLE_A: &str = "ga";

/// The statements that create the two tables with their indexes on the key.
pub fn setup_statements() -> Vec<String> {
    ["ga", "gb"]
        .iter()
        .flat_map(|t| {
            [
                format!("CREATE TABLE {t} (id INT PRIMARY KEY, k INT, v INT)"),
                format!("CREATE INDEX {t}_k ON {t} (k)"),
            ]
        })
        .collect()
}

/// Runs the inserts, two per key, until `until`.
pub async fn run(options: WorkloadOptions, recorder: Recorder, until: Instant) {
    let next = Arc::new(AtomicU64::new(0));
    let generate: Generate = Arc::new(move |_| {
        // Consecutive operations share a key: two workers take them at about the same time.
        let n = next.fetch_add(1, Ordering::Relaxed);
        let table = if n.is_multiple_of(2) { "a" } else { "b" };
        ("insert".to_string(), json!([n / 2 + 1, table, n + 1]))
    });
    let perform: Perform = Arc::new(|client, host, _f, value| {
        Box::pin(async move {
            let table = if value[1] == "a" { "ga" } else { "gb" };
            let insert = format!(
                "INSERT INTO {table} (id, k, v) SELECT $1, $2, 30 \
                 WHERE NOT EXISTS (SELECT 1 FROM ga WHERE k = $2 AND v % 3 = 0) \
                 AND NOT EXISTS (SELECT 1 FROM gb WHERE k = $2 AND v % 3 = 0)"
            );
            let args = vec![value[2].clone(), value[0].clone()];
            match crate::sql::transaction(&client, &host, &[(insert, args)]).await {
                Ok(results) => match results[0]["rows_affected"].as_u64() {
                    Some(n @ (0 | 1)) => Outcome::Ok(json!([value[0], value[1], value[2], n == 1])),
                    _ => Outcome::Info(format!("an insert answered {}", results[0])),
                },
                Err(outcome) => outcome,
            }
        })
    });
    drive(&options, recorder, until, generate, perform).await;
}
