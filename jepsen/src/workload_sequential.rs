//! The sequential workload: a writer inserts a key's subkeys one after the other, each in its
//! own transaction and each into its own table (its own range); a reader reads them back in
//! the opposite order, again one transaction each. A subkey is acknowledged before the next
//! is written, so a reader that sees a later subkey must see every earlier one, which it
//! reads afterwards; [`crate::checker::sequential`] reports any read that does not.
//!
//! ```text
//!   CREATE TABLE seq_0 (k INT PRIMARY KEY) … seq_4
//!   write 7   INSERT INTO seq_0 VALUES (7); then seq_1; … seq_4     → [7, 5]
//!   read 7    SELECT k FROM seq_4 WHERE k = 7; then seq_3; … seq_0   → [7, [true, true, false, false, false]]
//!                                                                   (fine: read while written)
//!             [7, [false, true, …]] would be a violation: seq_1 seen, seq_0 then missed
//! ```
//!
//! Subkey `i` is written and read through node `(first + i) % n`, so the transactions of one
//! operation run on different gateways and different ranges and share nothing but the clock:
//! this checks that a read on any node sees every write acknowledged before it began
//! (real-time order across ranges and nodes, which rests on HLC and the uncertainty
//! interval), under clock skew too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::Rng;
use serde_json::{Value, json};

use crate::checker::sequential::SUBKEYS;
use crate::workload::{Generate, Outcome, Perform, Recorder, WorkloadOptions, drive};

/// The table of subkey 0; subkey `i` lives in `seq_i`.
pub const FIRST_TABLE: &str = "seq_0";
/// How far back from the newest written key readers look.
const READ_WINDOW: u64 = 4;

fn table(subkey: usize) -> String {
    format!("seq_{subkey}")
}

/// The statements that create the tables.
pub fn setup_statements() -> Vec<String> {
    (0..SUBKEYS).map(|i| format!("CREATE TABLE {} (k INT PRIMARY KEY)", table(i))).collect()
}

/// Runs writers and readers (half the operations each) until `until`.
pub async fn run(options: WorkloadOptions, recorder: Recorder, until: Instant) {
    let next_key = Arc::new(AtomicU64::new(1));
    let generate: Generate = Arc::new(move |rng| {
        if rng.random_bool(0.5) {
            ("write".to_string(), json!([next_key.fetch_add(1, Ordering::Relaxed), null]))
        } else {
            let newest = next_key.load(Ordering::Relaxed).saturating_sub(1).max(1);
            let key = newest.saturating_sub(rng.random_range(0..READ_WINDOW)).max(1);
            ("read".to_string(), json!([key, null]))
        }
    });
    let hosts = Arc::new(options.hosts.clone());
    let perform: Perform = Arc::new(move |client, host, f, value| {
        // Each subkey goes through the next node: the transactions of one operation run on
        // different gateways, whose clocks (and skews) differ.
        let hosts = hosts.clone();
        let first = hosts.iter().position(|h| *h == host).unwrap_or(0);
        let via = move |subkey: usize| hosts[(first + subkey) % hosts.len()].clone();
        Box::pin(async move {
            let key = value[0].clone();
            if f == "write" {
                for subkey in 0..SUBKEYS {
                    let insert =
                        (format!("INSERT INTO {} VALUES ($1)", table(subkey)), vec![key.clone()]);
                    match crate::sql::transaction(&client, &via(subkey), &[insert]).await {
                        Ok(_) => {}
                        Err(outcome) if subkey == 0 => return outcome,
                        // The earlier subkeys are written: the operation is partial.
                        Err(Outcome::Fail(e) | Outcome::Info(e)) => {
                            return Outcome::Info(format!("after {subkey} subkeys: {e}"));
                        }
                        Err(Outcome::Ok(_)) => {}
                    }
                }
                return Outcome::Ok(json!([key, SUBKEYS]));
            }
            let mut seen = vec![false; SUBKEYS];
            for subkey in (0..SUBKEYS).rev() {
                let select =
                    (format!("SELECT k FROM {} WHERE k = $1", table(subkey)), vec![key.clone()]);
                match crate::sql::transaction(&client, &via(subkey), &[select]).await {
                    Ok(results) => {
                        seen[subkey] = results[0]["rows"].as_array().is_some_and(|r| !r.is_empty());
                    }
                    Err(outcome) => return outcome,
                }
            }
            Outcome::Ok(json!([key, Value::from(seen)]))
        })
    });
    drive(&options, recorder, until, generate, perform).await;
}
