//! Nemeses: the faults the harness injects while the workload runs.
//!
//! A nemesis alternates: quiet for one interval, faulty for the next, and so on; every start
//! and stop is recorded in the history as an `info` op of the `"nemesis"` process, with what it
//! did. At the end of the run everything is healed. The run counts the faults that really
//! took effect, so a run whose nemesis never managed to do anything cannot pass.
//!
//! ```text
//!   time ──▶ | quiet | partition {1} / {2,3} | quiet | partition {1,3} / {2} | heal
//! ```
//!
//! Kinds: `partition` (random halves, through each node's transport fault layer), `kill`
//! (kill -9 of a random node, restarted when the fault ends), `pause` (SIGSTOP / SIGCONT),
//! `clock` (one node's clock bumped by up to ±250 ms, below the 500 ms maximum offset),
//! `split` (a storm of manual range splits at the workload's keys), `none`.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::cluster::Cluster;
use crate::history::{OpType, Process};
use crate::workload::{ACTIVE_KEYS, OPS_PER_KEY, Recorder};

/// The nemeses the harness knows.
pub const KINDS: &[&str] = &["none", "partition", "kill", "pause", "clock", "split"];

/// Runs nemesis `kind` against `cluster` until `until`, then heals. Returns how many faults
/// took effect.
pub async fn run(
    kind: &str,
    cluster: &mut Cluster,
    recorder: &Recorder,
    interval: Duration,
    seed: u64,
    until: Instant,
) -> Result<u64, String> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x6e656d65);
    let mut done = 0;
    let event = |f: &str, value: serde_json::Value| {
        recorder.record(Process::NEMESIS, OpType::Info, f, value, None, None);
    };
    let n = cluster.nodes.len();
    while Instant::now() + interval * 2 <= until {
        tokio::time::sleep(interval).await;
        let fault_ends = Instant::now() + interval;
        match kind {
            "none" => tokio::time::sleep(interval).await,
            "partition" => {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                let (minority, majority) = order.split_at(rng.random_range(1..=n / 2));
                let ids = |side: &[usize]| -> Vec<u64> {
                    side.iter().map(|&i| cluster.nodes[i].node_id).collect()
                };
                let (minority_ids, majority_ids) = (ids(minority), ids(majority));
                for &i in minority {
                    cluster.hook(i, "/v1/test/faults", json!({"drop": majority_ids})).await?;
                }
                for &i in majority {
                    cluster.hook(i, "/v1/test/faults", json!({"drop": minority_ids})).await?;
                }
                event(
                    "start-partition",
                    json!({"minority": minority_ids, "majority": majority_ids}),
                );
                done += 1;
                sleep_until(fault_ends).await;
                for i in 0..n {
                    cluster.hook(i, "/v1/test/faults", json!({})).await?;
                }
                event("stop-partition", json!("healed"));
            }
            "kill" => {
                let i = rng.random_range(0..n);
                cluster.kill(i);
                event("kill", json!(format!("n{}", i + 1)));
                done += 1;
                sleep_until(fault_ends).await;
                cluster.restart(i).await?;
                event("restart", json!(format!("n{}", i + 1)));
            }
            "pause" => {
                let i = rng.random_range(0..n);
                cluster.signal_pause(i, true)?;
                event("pause", json!(format!("n{}", i + 1)));
                done += 1;
                sleep_until(fault_ends).await;
                cluster.signal_pause(i, false)?;
                event("resume", json!(format!("n{}", i + 1)));
            }
            "clock" => {
                let i = rng.random_range(0..n);
                let offset_ms: i64 = rng.random_range(-250..=250);
                cluster.hook(i, "/v1/test/clock", json!({"offset_ms": offset_ms})).await?;
                event("bump-clock", json!({"node": format!("n{}", i + 1), "offset_ms": offset_ms}));
                done += 1;
                sleep_until(fault_ends).await;
                cluster.hook(i, "/v1/test/clock", json!({"offset_ms": 0})).await?;
                event("reset-clock", json!(format!("n{}", i + 1)));
            }
            "split" => {
                let mut splits = 0;
                while Instant::now() < fault_ends {
                    // A key the workload is using about now (the generations it has reached).
                    let history_len = recorder.history().len() as u64;
                    let generation = history_len / 2 / OPS_PER_KEY;
                    let key = generation * ACTIVE_KEYS + rng.random_range(0..ACTIVE_KEYS);
                    let key = format!("jepsen-{key:08}");
                    let i = rng.random_range(0..n);
                    let url = format!("http://{}/v1/admin/split", cluster.nodes[i].http);
                    let answer = crate::cluster::admin_client()
                        .post(&url)
                        .json(&json!({"key": key}))
                        .send()
                        .await;
                    match answer {
                        Ok(a) if a.status().is_success() => {
                            event("split", json!(key));
                            splits += 1;
                        }
                        // Refusals (an existing boundary, a busy range) are part of the storm.
                        Ok(a) => {
                            let why = a.text().await.unwrap_or_default();
                            event("split-refused", json!({"key": key, "answer": why}));
                        }
                        Err(e) => {
                            event("split-refused", json!({"key": key, "error": e.to_string()}))
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                done += splits;
            }
            other => return Err(format!("unknown nemesis {other:?}; known: {}", KINDS.join(", "))),
        }
    }
    cluster.heal().await?;
    event("heal", json!("every node running, no faults"));
    Ok(done)
}

async fn sleep_until(deadline: Instant) {
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
}
