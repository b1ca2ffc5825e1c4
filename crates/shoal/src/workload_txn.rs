//! What the transactional workloads (`bank`, `tpcb`) share: closed-loop clients that each run
//! one transaction at a time until the duration ends, and the report.
//!
//! ```text
//!   client c: rng = seed + c
//!             loop until the deadline {
//!               choices = rng                                   (a restart reuses them)
//!               loop { attempt(node, choices) → done | refused      → record the latency
//!                                             → restart (409)      → count its reason, again
//!                                             → ambiguous (504)    → count it, move on
//!                                             → other error        → count it, move on }
//!             }
//! ```
//!
//! A transaction's latency covers all its attempts, as a client sees it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::client::{ClientError, NodeClient};

/// How an attempt that did not fail ended.
pub enum Outcome {
    /// The transaction committed.
    Done,
    /// The transaction decided not to write (a transfer without the money) and rolled back.
    Refused,
}

/// One kind of transaction, run by every client.
pub trait TxnWorkload: Send + Sync + 'static {
    /// Runs one attempt of a transaction, its choices drawn from `rng` (a restart is given an
    /// `rng` in the same state, so it makes the same choices).
    fn attempt(
        &self,
        node: &NodeClient,
        rng: &mut SmallRng,
    ) -> impl Future<Output = Result<Outcome, ClientError>> + Send;

    /// The reason of a failure that asks for the transaction to be run again; None for others.
    fn restart_reason(&self, error: &ClientError) -> Option<String>;
}

/// What the clients counted.
pub struct Tally {
    /// Latencies of finished transactions (committed or refused), in µs.
    pub latencies: Histogram<u64>,
    /// Transactions that decided not to write.
    pub refused: u64,
    /// Restarts, by reason.
    pub restarts: BTreeMap<String, u64>,
    /// Commits whose outcome is unknown (HTTP 504).
    pub ambiguous: u64,
    /// Other failures, by message.
    pub errors: BTreeMap<String, u64>,
}

/// The longest latency recorded, in µs; anything slower is recorded as this.
const MAX_LATENCY_MICROS: u64 = 120_000_000;

/// Runs `concurrency` clients over `nodes` (client c on node c mod n) until `duration` has
/// passed; returns what they counted and how long they ran.
pub async fn run_clients<W: TxnWorkload>(
    workload: Arc<W>,
    nodes: &[NodeClient],
    concurrency: usize,
    duration: Duration,
    seed: u64,
) -> Result<(Tally, Duration), String> {
    let tally = Arc::new(Mutex::new(Tally {
        latencies: Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).expect("valid bounds"),
        refused: 0,
        restarts: BTreeMap::new(),
        ambiguous: 0,
        errors: BTreeMap::new(),
    }));
    let start = Instant::now();
    let deadline = start + duration;
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..concurrency {
        let node = nodes[c % nodes.len()].clone();
        let (tally, workload) = (tally.clone(), workload.clone());
        clients.spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed.wrapping_add(c as u64));
            while Instant::now() < deadline {
                let began = Instant::now();
                let choices = rng.clone();
                loop {
                    let mut attempt_rng = choices.clone();
                    let outcome = workload.attempt(&node, &mut attempt_rng).await;
                    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                    let restart = outcome.as_ref().err().and_then(|e| workload.restart_reason(e));
                    if let Some(reason) = restart {
                        *tally.restarts.entry(reason).or_default() += 1;
                        continue;
                    }
                    rng = attempt_rng;
                    match outcome {
                        Ok(outcome) => {
                            if matches!(outcome, Outcome::Refused) {
                                tally.refused += 1;
                            }
                            let micros = (began.elapsed().as_micros() as u64).max(1);
                            let _ = tally.latencies.record(micros.min(MAX_LATENCY_MICROS));
                        }
                        Err(ClientError::Api { status: 504, .. }) => tally.ambiguous += 1,
                        Err(e) => *tally.errors.entry(e.to_string()).or_default() += 1,
                    }
                    break;
                }
            }
        });
    }
    while let Some(finished) = clients.join_next().await {
        finished.map_err(|e| format!("a client failed: {e}"))?;
    }
    let elapsed = start.elapsed();
    let tally = Arc::try_unwrap(tally)
        .map_err(|_| "a client outlived the run".to_string())?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    Ok((tally, elapsed))
}

fn ms(micros: u64) -> String {
    format!("{:.1}ms", micros as f64 / 1000.0)
}

/// Prints throughput, latency percentiles, restarts by reason and errors; `what` names the
/// transactions (`transfers`, `transactions`).
pub fn report(tally: &Tally, elapsed: Duration, what: &str) {
    let h = &tally.latencies;
    println!("elapsed {:.1}s", elapsed.as_secs_f64());
    println!(
        "{what}: {}, {:.0} txn/s, p50 {}, p90 {}, p99 {}, max {}",
        h.len(),
        h.len() as f64 / elapsed.as_secs_f64(),
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    );
    let restarts: u64 = tally.restarts.values().sum();
    println!("restarts: {restarts}");
    for (reason, count) in &tally.restarts {
        println!("  {count} × {reason}");
    }
    println!("ambiguous: {}", tally.ambiguous);
    println!("errors: {}", tally.errors.values().sum::<u64>());
    for (message, count) in tally.errors.iter().take(10) {
        println!("  {count} × {message}");
    }
}
