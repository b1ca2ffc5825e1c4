//! The list-append workload: transactions that append to and read several lists, each list a
//! row of a SQL table spread over ranges, checked by [`crate::checker::list_append`].
//!
//! ```text
//!   CREATE TABLE lists (k INT PRIMARY KEY, v TEXT)         split every 4 keys
//!   txn [["append", 5, 17], ["r", 6, null], ["append", 6, 18]]
//!     INSERT INTO lists VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = lists.v || ',' || excluded.v
//!     SELECT v FROM lists WHERE k = $1                      "3,9,12" → [3, 9, 12]
//! ```
//!
//! - **Unique values.** Every appended value is unique in the run, so a read names the
//!   transactions it saw.
//! - **Keys in generations.** [`ACTIVE_KEYS`] keys take transactions at once; after
//!   [`TXNS_PER_GENERATION`] transactions the workers move on to fresh keys, so lists stay a
//!   few dozen elements long and many transactions meet on each key.
//! - **One request per transaction.** The micro-operations of a transaction are the
//!   statements of one `POST /v1/sql`, run as one transaction and retried by the node on
//!   40001 (see [`crate::sql`] for what each answer means for the history).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::{Value, json};

use crate::checker::list_append::Micro;
use crate::workload::{Generate, Outcome, Perform, Recorder, WorkloadOptions, drive};

/// The table holding the lists.
pub const TABLE: &str = "lists";
/// Keys in use at once.
pub const ACTIVE_KEYS: u64 = 8;
/// Transactions per generation of keys.
pub const TXNS_PER_GENERATION: u64 = 200;
/// The most micro-operations in one transaction.
const MAX_OPS: usize = 4;

/// The statements that create the table, pre-split so the first generations' keys live in
/// different ranges (the split nemesis adds more).
pub fn setup_statements() -> Vec<String> {
    let splits: Vec<String> = (1..=12).map(|i| format!("({})", i * 4)).collect();
    vec![
        format!("CREATE TABLE {TABLE} (k INT PRIMARY KEY, v TEXT)"),
        format!("ALTER TABLE {TABLE} SPLIT AT VALUES {}", splits.join(", ")),
    ]
}

/// Runs the workload until `until`.
pub async fn run(options: WorkloadOptions, recorder: Recorder, until: Instant) {
    let next_value = Arc::new(AtomicU64::new(1));
    let txns = Arc::new(AtomicU64::new(0));
    let generate: Generate = Arc::new(move |rng: &mut SmallRng| {
        let generation = txns.fetch_add(1, Ordering::Relaxed) / TXNS_PER_GENERATION;
        let ops: Vec<Value> = (0..rng.random_range(1..=MAX_OPS))
            .map(|_| {
                let key = generation * ACTIVE_KEYS + rng.random_range(0..ACTIVE_KEYS);
                if rng.random_bool(0.5) {
                    let value = next_value.fetch_add(1, Ordering::Relaxed);
                    Micro::Append { key, value }.to_value()
                } else {
                    Micro::Read { key, values: None }.to_value()
                }
            })
            .collect();
        ("txn".to_string(), Value::Array(ops))
    });
    let perform: Perform = Arc::new(|client, host, _f, value| {
        Box::pin(async move { perform(&client, &host, &value).await })
    });
    drive(&options, recorder, until, generate, perform).await;
}

async fn perform(client: &reqwest::Client, host: &str, value: &Value) -> Outcome {
    let Some(ops) =
        value.as_array().and_then(|ops| ops.iter().map(Micro::parse).collect::<Option<Vec<_>>>())
    else {
        return Outcome::Fail(format!("not a transaction: {value}"));
    };
    let statements: Vec<(String, Vec<Value>)> = ops
        .iter()
        .map(|op| match op {
            Micro::Append { key, value } => (
                format!(
                    "INSERT INTO {TABLE} VALUES ($1, $2) \
                     ON CONFLICT (k) DO UPDATE SET v = {TABLE}.v || ',' || excluded.v"
                ),
                vec![json!(key), json!(value.to_string())],
            ),
            Micro::Read { key, .. } => {
                (format!("SELECT v FROM {TABLE} WHERE k = $1"), vec![json!(key)])
            }
        })
        .collect();
    let results = match crate::sql::transaction(client, host, &statements).await {
        Ok(results) => results,
        Err(outcome) => return outcome,
    };
    let mut completed = Vec::with_capacity(ops.len());
    for (op, result) in ops.into_iter().zip(results) {
        completed.push(match op {
            Micro::Read { key, .. } => match read_list(&result) {
                Some(values) => Micro::Read { key, values: Some(values) },
                // The transaction committed, but what it read is unclear: the checker must
                // not guess, so the whole operation is of unknown outcome.
                None => return Outcome::Info(format!("an unreadable list: {result}")),
            },
            append => append,
        });
    }
    Outcome::Ok(Value::Array(completed.iter().map(Micro::to_value).collect()))
}

/// The list a `SELECT v` result holds: no row is the empty list.
fn read_list(result: &Value) -> Option<Vec<u64>> {
    let rows = result["rows"].as_array()?;
    match rows.as_slice() {
        [] => Some(Vec::new()),
        [row] => {
            let text = row[0].as_str()?;
            text.split(',').map(|v| v.parse().ok()).collect()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_back_from_rows() {
        assert_eq!(read_list(&json!({"rows": []})), Some(vec![]));
        assert_eq!(read_list(&json!({"rows": [["3,9,12"]]})), Some(vec![3, 9, 12]));
        assert_eq!(read_list(&json!({"rows": [["3,x"]]})), None);
        assert_eq!(read_list(&json!({"rows": [["1"], ["2"]]})), None);
        assert_eq!(read_list(&json!({})), None);
    }
}
