//! Nemeses: the faults the harness injects while the workload runs.
//!
//! A nemesis alternates: quiet for one interval, faulty for the next, and so on; every start
//! and stop is recorded in the history as an `info` op of the `"nemesis"` process, with what it
//! did. At the end of the run everything is healed. The run counts the faults that really took
//! effect, so a run whose nemesis never managed to do anything cannot pass.
//!
//! ```text
//!   time ──▶ | quiet | partition {1} / {2,3} | quiet | partition {1,3} / {2} | heal
//! ```
//!
//! | kind | fault |
//! |---|---|
//! | `partition` | random halves (a minority of at least one node) |
//! | `isolate` | one random node cut from all others |
//! | `isolate-leaseholder` | the node holding the lease of the range the workload is using |
//! | `majority-ring` | every node sees a majority, each a different one (5+ nodes) |
//! | `bridge` | two halves that only one node in the middle sees both of |
//! | `kill` | kill -9 of a random node, restarted when the fault ends |
//! | `pause` | SIGSTOP of a random node, SIGCONT when it ends |
//! | `clock-bump` | one node's clock moved by up to ±250 ms (below the 500 ms maximum offset) |
//! | `clock-strobe` | one node's clock flipping between +0 and +200 ms every 10 ms |
//! | `clock-jump` | one node's clock 2 s ahead, beyond the maximum offset: that node must stop serving |
//! | `split` | a storm of manual range splits at the keys in use |
//! | `lease-transfer` | a storm of lease transfers between replicas |
//!
//! Two kinds joined with `+` (say `partition+kill`) run their faults in the same windows; two
//! clock nemeses never combine.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::history::{OpType, Process};
use crate::workload::{Recorder, key_name};

/// The nemeses the harness knows.
pub const KINDS: &[&str] = &[
    "none",
    "partition",
    "isolate",
    "isolate-leaseholder",
    "majority-ring",
    "bridge",
    "kill",
    "pause",
    "clock-bump",
    "clock-strobe",
    "clock-jump",
    "split",
    "lease-transfer",
];

/// How long one split of the `split` storm may take.
const SPLIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How far the `clock-jump` nemesis moves a clock.
const JUMP_MS: i64 = 2_000;
/// How long the jumped node may still answer: its leader lease (at most the maximum election
/// timeout, 3 s) must run out and peers must have refused its messages.
const JUMP_GRACE: Duration = Duration::from_secs(5);

/// Checks a nemesis spec (`kind` or `kind+kind`) against `nodes`.
pub fn validate(spec: &str, nodes: usize) -> Result<Vec<String>, String> {
    let kinds: Vec<String> = spec.split('+').map(str::to_string).collect();
    for kind in &kinds {
        if !KINDS.contains(&kind.as_str()) {
            return Err(format!("unknown nemesis {kind:?}; known: {}", KINDS.join(", ")));
        }
    }
    if kinds.len() > 2 {
        return Err(format!("{spec}: at most two nemeses combine"));
    }
    if kinds.iter().filter(|k| k.starts_with("clock")).count() > 1 {
        return Err(format!("{spec}: two clock nemeses never combine"));
    }
    if kinds.iter().any(|k| k == "majority-ring") && nodes < 5 {
        return Err("majority-ring needs at least 5 nodes".into());
    }
    if kinds.iter().any(|k| k == "bridge") && nodes < 3 {
        return Err("bridge needs at least 3 nodes".into());
    }
    Ok(kinds)
}

/// What the nemesis did.
#[derive(Debug, Default)]
pub struct NemesisReport {
    /// Faults that took effect.
    pub faults: u64,
    /// Checks that failed (a node that should have stopped serving did not).
    pub problems: Vec<String>,
}

/// A fault in force.
enum Active {
    Nothing,
    Cut,
    Killed(usize),
    Paused(usize),
    Clock(usize),
    Jumped { node: usize, since: Instant },
}

/// Runs the nemesis `spec` against `cluster` until `until`, then heals.
pub async fn run(
    spec: &str,
    cluster: &mut Cluster,
    recorder: &Recorder,
    interval: Duration,
    seed: u64,
    until: Instant,
) -> Result<NemesisReport, String> {
    let kinds = validate(spec, cluster.nodes.len())?;
    let mut rngs: Vec<SmallRng> =
        (0..kinds.len()).map(|k| SmallRng::seed_from_u64(seed ^ (0x6e656d65 + k as u64))).collect();
    let mut report = NemesisReport::default();
    let window = if kinds.iter().any(|k| k == "clock-jump") {
        interval.max(JUMP_GRACE * 2)
    } else {
        interval
    };
    while Instant::now() + interval + window <= until {
        tokio::time::sleep(interval).await;
        let fault_ends = Instant::now() + window;
        let mut active = Vec::new();
        for (kind, rng) in kinds.iter().zip(&mut rngs) {
            let fault = start(kind, cluster, rng, recorder).await?;
            report.faults += u64::from(!matches!(fault, Active::Nothing));
            active.push(fault);
        }
        let ongoing = kinds.iter().zip(&mut rngs).map(|(kind, rng)| {
            let cluster = &*cluster;
            async move { during(kind, cluster, rng, recorder, fault_ends).await }
        });
        report.faults += futures::future::join_all(ongoing).await.into_iter().sum::<u64>();
        sleep_until(fault_ends).await;
        // In reverse: a node killed after it was cut is back before the cut heals.
        for fault in active.into_iter().rev() {
            stop(fault, cluster, recorder, &mut report).await?;
        }
    }
    cluster.heal().await?;
    event(recorder, "heal", json!("every node running, no faults"));
    Ok(report)
}

fn event(recorder: &Recorder, f: &str, value: Value) {
    recorder.record(Process::NEMESIS, OpType::Info, f, value, None, None);
}

fn name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// Every pair with one node in `a` and one in `b`.
fn pairs_between(a: &[usize], b: &[usize]) -> Vec<(usize, usize)> {
    a.iter().flat_map(|&x| b.iter().map(move |&y| (x, y))).collect()
}

async fn start(
    kind: &str,
    cluster: &mut Cluster,
    rng: &mut SmallRng,
    recorder: &Recorder,
) -> Result<Active, String> {
    let n = cluster.nodes.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    Ok(match kind {
        "partition" | "isolate" | "isolate-leaseholder" => {
            let minority: Vec<usize> = match kind {
                "partition" => order[..rng.random_range(1..=n / 2)].to_vec(),
                "isolate" => vec![order[0]],
                _ => match leaseholder_of_current_key(cluster, recorder).await {
                    Some(i) => vec![i],
                    None => {
                        event(
                            recorder,
                            "isolate-leaseholder-skipped",
                            json!("no leaseholder found"),
                        );
                        return Ok(Active::Nothing);
                    }
                },
            };
            let majority: Vec<usize> = (0..n).filter(|i| !minority.contains(i)).collect();
            cluster.cut(&pairs_between(&minority, &majority)).await?;
            let names = |side: &[usize]| side.iter().map(|&i| name(i)).collect::<Vec<_>>();
            event(
                recorder,
                &format!("start-{kind}"),
                json!({"minority": names(&minority), "majority": names(&majority)}),
            );
            Active::Cut
        }
        "majority-ring" => {
            // Nodes in a random ring; each keeps the nearest `reach` on either side, just
            // enough to see a majority (itself and 2 × reach others): 1 on 5 nodes, 2 on 7.
            let reach = (n / 2).div_ceil(2);
            let mut cut = Vec::new();
            for a in 0..n {
                for b in a + 1..n {
                    let distance = (b - a).min(n - (b - a));
                    if distance > reach {
                        cut.push((order[a], order[b]));
                    }
                }
            }
            cluster.cut(&cut).await?;
            let ring: Vec<String> = order.iter().map(|&i| name(i)).collect();
            event(recorder, "start-majority-ring", json!({"ring": ring}));
            Active::Cut
        }
        "bridge" => {
            let half = n / 2;
            let (left, rest) = order.split_at(half.max(1));
            let (bridge, right) = rest.split_at(1);
            cluster.cut(&pairs_between(left, right)).await?;
            let names = |side: &[usize]| side.iter().map(|&i| name(i)).collect::<Vec<_>>();
            event(
                recorder,
                "start-bridge",
                json!({"left": names(left), "bridge": names(bridge), "right": names(right)}),
            );
            Active::Cut
        }
        "kill" => {
            cluster.kill(order[0]);
            event(recorder, "kill", json!(name(order[0])));
            Active::Killed(order[0])
        }
        "pause" => {
            cluster.signal_pause(order[0], true)?;
            event(recorder, "pause", json!(name(order[0])));
            Active::Paused(order[0])
        }
        "clock-bump" => {
            let offset_ms: i64 = rng.random_range(-250..=250);
            cluster.set_clock(order[0], offset_ms).await?;
            event(recorder, "bump-clock", json!({"node": name(order[0]), "offset_ms": offset_ms}));
            Active::Clock(order[0])
        }
        "clock-strobe" => {
            event(
                recorder,
                "start-clock-strobe",
                json!({"node": name(order[0]), "offset_ms": 200, "period_ms": 10}),
            );
            Active::Clock(order[0])
        }
        "clock-jump" => {
            cluster.set_clock(order[0], JUMP_MS).await?;
            event(recorder, "jump-clock", json!({"node": name(order[0]), "offset_ms": JUMP_MS}));
            Active::Jumped { node: order[0], since: Instant::now() }
        }
        "split" | "lease-transfer" | "none" => Active::Nothing,
        other => return Err(format!("unknown nemesis {other:?}")),
    })
}

/// What runs for the whole fault window; returns how many faults it caused.
async fn during(
    kind: &str,
    cluster: &Cluster,
    rng: &mut SmallRng,
    recorder: &Recorder,
    until: Instant,
) -> u64 {
    let mut done = 0;
    match kind {
        "clock-strobe" => {
            // The node was chosen at start: the one whose clock the start event names.
            let Some(node) = last_event_node(recorder, "start-clock-strobe") else { return 0 };
            let mut high = false;
            while Instant::now() < until {
                high = !high;
                let offset_ms = if high { 200 } else { 0 };
                if cluster
                    .hook(node, "/v1/test/clock", json!({"offset_ms": offset_ms}))
                    .await
                    .is_ok()
                {
                    done = 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        "split" => {
            while Instant::now() < until {
                let Some(key) = recorder.last_key() else { break };
                let i = rng.random_range(0..cluster.nodes.len());
                let (path, body, key) = match recorder.key_space().sql_table(key) {
                    None => ("admin/split", json!({"key": key_name(key)}), json!(key_name(key))),
                    Some(table) => (
                        "sql",
                        json!({"sql": format!("ALTER TABLE {table} SPLIT AT VALUES ({key})")}),
                        json!(key),
                    ),
                };
                let url = format!("http://{}/v1/{path}", cluster.nodes[i].http);
                // A split waits for every leaseholder it needs (the id counter's, the range's,
                // the addressing records'): during a partition that includes failovers, so it
                // gets longer than the harness's usual 5 s.
                let request = cluster.http.post(&url).timeout(SPLIT_TIMEOUT);
                match request.json(&body).send().await {
                    Ok(a) if a.status().is_success() => {
                        event(recorder, "split", json!(key));
                        done += 1;
                    }
                    // Refusals (an existing boundary, a busy range) are part of the storm.
                    Ok(a) => {
                        let why = a.text().await.unwrap_or_default();
                        event(recorder, "split-refused", json!({"key": key, "answer": why}));
                    }
                    Err(e) => event(
                        recorder,
                        "split-refused",
                        json!({"key": key, "error": e.to_string()}),
                    ),
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        "lease-transfer" => {
            while Instant::now() < until {
                if let Some((from, range_id, to)) = transfer_candidate(cluster, rng).await {
                    let body = json!({"range_id": range_id, "to_node": cluster.nodes[to].node_id});
                    if cluster.hook(from, "/v1/test/transfer-lease", body).await.is_ok() {
                        event(
                            recorder,
                            "transfer-lease",
                            json!({"range": range_id, "from": name(from), "to": name(to)}),
                        );
                        done += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        _ => {}
    }
    done
}

async fn stop(
    fault: Active,
    cluster: &mut Cluster,
    recorder: &Recorder,
    report: &mut NemesisReport,
) -> Result<(), String> {
    match fault {
        Active::Nothing => {}
        Active::Cut => {
            cluster.heal_network().await?;
            event(recorder, "stop-partition", json!("healed"));
        }
        Active::Killed(i) => {
            cluster.restart(i).await?;
            event(recorder, "restart", json!(name(i)));
        }
        Active::Paused(i) => {
            cluster.resume(i).await?;
            event(recorder, "resume", json!(name(i)));
        }
        Active::Clock(i) => {
            cluster.set_clock(i, 0).await?;
            event(recorder, "reset-clock", json!(name(i)));
        }
        Active::Jumped { node, since } => {
            // The jumped node must have stopped serving once its lease ran out.
            let ended = Instant::now();
            let served =
                recorder.ok_ops_through(&cluster.nodes[node].http, since + JUMP_GRACE, ended);
            if served > 0 {
                report.problems.push(format!(
                    "{} served {served} operations with its clock {JUMP_MS} ms ahead",
                    name(node)
                ));
            }
            cluster.hook(node, "/v1/test/clock", json!({"offset_ms": 0})).await?;
            event(
                recorder,
                "reset-clock",
                json!({"node": name(node), "served_while_skewed": served}),
            );
        }
    }
    Ok(())
}

async fn sleep_until(deadline: Instant) {
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
}

/// The node named by the newest nemesis event `f` (its `node` field, `"nN"`).
fn last_event_node(recorder: &Recorder, f: &str) -> Option<usize> {
    let name = recorder.last_nemesis_value(f)?;
    let name = name["node"].as_str()?;
    name.strip_prefix('n')?.parse::<usize>().ok()?.checked_sub(1)
}

/// The node holding the lease of the range that holds the key the workload used last.
async fn leaseholder_of_current_key(cluster: &Cluster, recorder: &Recorder) -> Option<usize> {
    let key = recorder.last_key()?;
    if let Some(table) = recorder.key_space().sql_table(key) {
        return sql_leaseholder(cluster, &table, key).await;
    }
    let key = key_name(key);
    for i in 0..cluster.nodes.len() {
        let url = format!("http://{}/v1/test/replicas?key={key}", cluster.nodes[i].http);
        let Ok(answer) = cluster.http.get(&url).send().await else { continue };
        let Ok(info) = answer.json::<Value>().await else { continue };
        let holds = info["replicas"].as_array().is_some_and(|replicas| {
            replicas
                .iter()
                .any(|r| r["leaseholder"] == json!(true) && r["holds_key"] == json!(true))
        });
        if holds {
            return Some(i);
        }
    }
    None
}

/// The leaseholder of the range of `table` holding primary key `key`, from `SHOW RANGES` as
/// the first node that answers has it (its cache may lag a lease move by a moment).
async fn sql_leaseholder(cluster: &Cluster, table: &str, key: u64) -> Option<usize> {
    let body = json!({"sql": format!("SHOW RANGES FROM TABLE {table}")});
    for node in &cluster.nodes {
        let url = format!("http://{}/v1/sql", node.http);
        let Ok(answer) = cluster.http.post(&url).json(&body).send().await else { continue };
        let Ok(answer) = answer.json::<Value>().await else { continue };
        let Some(rows) = answer["results"][0]["rows"].as_array() else { continue };
        let holder = rows.iter().find_map(|row| {
            let contains = bound(&row[0]).is_none_or(|start| start <= key)
                && bound(&row[1]).is_none_or(|end| key < end);
            if contains { row[4].as_u64() } else { None }
        })?;
        return cluster.nodes.iter().position(|n| n.node_id == holder);
    }
    None
}

/// The primary key a range bound of a one-integer-column table names (`/Table/104/1/12`), or
/// None for a bound outside the primary index (`/Table/104`, `/Table/105`).
fn bound(pretty: &Value) -> Option<u64> {
    let parts: Vec<&str> = pretty.as_str()?.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["Table", _, "1", key] => key.parse().ok(),
        _ => None,
    }
}

/// A lease to move: (node holding it, range, node to move it to).
async fn transfer_candidate(cluster: &Cluster, rng: &mut SmallRng) -> Option<(usize, u64, usize)> {
    let mut holders: Vec<(usize, u64)> = Vec::new();
    let mut replicas: Vec<(usize, u64)> = Vec::new();
    for i in 0..cluster.nodes.len() {
        let Ok(info) = cluster.replicas(i).await else { continue };
        for r in info["replicas"].as_array().into_iter().flatten() {
            let Some(range_id) = r["range_id"].as_u64() else { continue };
            replicas.push((i, range_id));
            if r["leaseholder"] == json!(true) {
                holders.push((i, range_id));
            }
        }
    }
    let &(from, range_id) = holders.choose(rng)?;
    let targets: Vec<usize> =
        replicas.iter().filter(|&&(i, r)| r == range_id && i != from).map(|&(i, _)| i).collect();
    Some((from, range_id, *targets.choose(rng)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_bounds_of_a_table_name_primary_keys() {
        assert_eq!(bound(&json!("/Table/104/1/12")), Some(12));
        assert_eq!(bound(&json!("/Table/104")), None);
        assert_eq!(bound(&json!("/Table/104/2/5")), None);
        assert_eq!(bound(&json!(null)), None);
    }

    #[test]
    fn nemesis_specs_are_checked() {
        assert_eq!(validate("partition+kill", 3).unwrap(), vec!["partition", "kill"]);
        assert!(validate("partition", 1).is_ok());
        for (spec, nodes, why) in [
            ("flood", 3, "unknown"),
            ("kill+pause+split", 3, "at most two"),
            ("clock-bump+clock-strobe", 3, "two clock"),
            ("majority-ring", 3, "5 nodes"),
            ("bridge", 2, "3 nodes"),
        ] {
            let error = validate(spec, nodes).unwrap_err();
            assert!(error.contains(why), "{spec}: {error}");
        }
    }
}
