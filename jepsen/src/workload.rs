//! The register workload: concurrent clients read, write and compare-and-set registers through
//! Shoal's `/v1/kv` HTTP API, and every operation goes into the history.
//!
//! - **Many small registers.** Keys are used in turn: each takes [`OPS_PER_KEY`] operations,
//!   then the workers move to the next, so every key's history stays small enough for the
//!   linearizability search. A few keys are active at once.
//! - **Unique writes.** Every written value is unique in the run, so a read names its writer.
//! - **Honest outcomes.** An answer says `ok`; an error Shoal guarantees was not applied (a
//!   failed comparison, a refused connection, 503 "not applied") says `fail`; everything else
//!   (timeouts, 504 ambiguous, a connection lost after sending) is `info`, and the worker then
//!   continues as a new process, since its old request may still take effect.
//!
//! ```text
//!   worker 0 ── p0: read k3 ok ── p0: cas k3 1→5 info ── p6: write k4 ...
//!   worker 1 ── p1: write k3 ok ── ...
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::history::{Op, OpType, Process};

/// Operations each key receives before the workers move on.
pub const OPS_PER_KEY: u64 = 120;
/// Keys in use at once.
pub const ACTIVE_KEYS: u64 = 3;
/// How long a worker waits after a node refused its connection.
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// Where a workload keeps its keys, so the nemesis can aim at them (split them, find their
/// leaseholder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpace {
    /// KV keys named by [`key_name`].
    Kv,
    /// Rows of a SQL table whose primary key is the workload's key.
    SqlTable(&'static str),
    /// One SQL table per key, named by the prefix and the key, whose row has the key as its
    /// primary key.
    SqlTablePerKey(&'static str),
}

impl KeySpace {
    /// The SQL table holding `key`, if the keys are rows.
    pub fn sql_table(&self, key: u64) -> Option<String> {
        match self {
            KeySpace::Kv => None,
            KeySpace::SqlTable(table) => Some(table.to_string()),
            KeySpace::SqlTablePerKey(prefix) => Some(format!("{prefix}{key}")),
        }
    }
}

/// The history being recorded, shared by clients and the nemesis.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
    keys: KeySpace,
}

impl Recorder {
    /// Starts recording a workload over KV keys; times are measured from now.
    pub fn new() -> Self {
        Self::over(KeySpace::Kv)
    }

    /// Starts recording a workload whose keys live in `keys`.
    pub fn over(keys: KeySpace) -> Self {
        Recorder { start: Instant::now(), ops: Arc::default(), keys }
    }

    /// Where the workload's keys live.
    pub fn key_space(&self) -> &KeySpace {
        &self.keys
    }

    /// Appends an op and returns it.
    pub fn record(
        &self,
        process: Process,
        op_type: OpType,
        f: &str,
        value: Value,
        node: Option<String>,
        error: Option<String>,
    ) {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        // Strictly increasing: an op that completes and one invoked in the same nanosecond
        // must not look concurrent to the checker.
        let elapsed = self.start.elapsed().as_nanos() as u64;
        let time = ops.last().map_or(elapsed, |last| elapsed.max(last.time + 1));
        let op = Op {
            index: ops.len() as u64,
            time,
            process,
            op_type,
            f: f.to_string(),
            value,
            node,
            error,
        };
        ops.push(op);
    }

    /// The key of the newest client operation: a number (set), `[key, ...]` (register,
    /// bank) or the first micro-operation's `[f, key, ...]` (transactions).
    pub fn last_key(&self) -> Option<u64> {
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.iter().rev().take(1000).find_map(|op| match op.process {
            Process::Client(_) => op
                .value
                .as_u64()
                .or_else(|| op.value[0].as_u64())
                .or_else(|| op.value[0][1].as_u64()),
            Process::Nemesis(_) => None,
        })
    }

    /// The value of the newest nemesis event `f`.
    pub fn last_nemesis_value(&self, f: &str) -> Option<Value> {
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.iter()
            .rev()
            .find(|op| op.process == Process::NEMESIS && op.f == f)
            .map(|op| op.value.clone())
    }

    /// How many client operations through `node` were invoked at or after `from` and
    /// completed `ok` before `to`.
    pub fn ok_ops_through(&self, node: &str, from: Instant, to: Instant) -> usize {
        let since = |t: Instant| t.saturating_duration_since(self.start).as_nanos() as u64;
        let (from, to) = (since(from), since(to));
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let mut invoked_at = std::collections::HashMap::new();
        let mut count = 0;
        for op in ops.iter() {
            let Process::Client(p) = op.process else { continue };
            if op.node.as_deref() != Some(node) {
                continue;
            }
            match op.op_type {
                OpType::Invoke => {
                    invoked_at.insert(p, op.time);
                }
                OpType::Ok => {
                    let invoked = invoked_at.get(&p).copied().unwrap_or(0);
                    if invoked >= from && op.time <= to {
                        count += 1;
                    }
                }
                _ => {}
            }
        }
        count
    }

    /// The history so far.
    pub fn history(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

/// Workload settings.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// Concurrent workers.
    pub concurrency: usize,
    /// The nodes' HTTP addresses; worker `i` talks to node `i % len`.
    pub hosts: Vec<String>,
    /// Client timeout: a request unanswered this long becomes `info`.
    pub timeout: Duration,
    /// The seed of the workers' choices.
    pub seed: u64,
}

/// What a request came to.
pub enum Outcome {
    /// It happened; the completed value (reads filled in).
    Ok(Value),
    /// It certainly did not happen.
    Fail(String),
    /// Nobody knows.
    Info(String),
}

/// Chooses a worker's next operation: its `f` and invocation value.
pub type Generate = Arc<dyn Fn(&mut SmallRng) -> (String, Value) + Send + Sync>;

/// Performs an operation against a node: (client, node's HTTP address, f, value) → outcome.
pub type Perform = Arc<
    dyn Fn(reqwest::Client, String, String, Value) -> futures::future::BoxFuture<'static, Outcome>
        + Send
        + Sync,
>;

/// Runs `options.concurrency` workers until `until`, each generating operations, performing
/// them against its node and recording invocations and completions; a worker whose operation
/// ended `info` continues as a new process.
pub async fn drive(
    options: &WorkloadOptions,
    recorder: Recorder,
    until: Instant,
    generate: Generate,
    perform: Perform,
) {
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .no_proxy()
        .pool_max_idle_per_host(options.concurrency)
        .build()
        .expect("building an HTTP client");
    let next_process = Arc::new(AtomicU64::new(options.concurrency as u64));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..options.concurrency {
        let host = options.hosts[worker % options.hosts.len()].clone();
        let (client, recorder, next_process) =
            (client.clone(), recorder.clone(), next_process.clone());
        let (generate, perform) = (generate.clone(), perform.clone());
        let mut rng =
            SmallRng::seed_from_u64(options.seed.wrapping_mul(1000).wrapping_add(worker as u64));
        workers.spawn(async move {
            let mut process = worker as u64;
            while Instant::now() < until {
                let (f, value) = generate(&mut rng);
                let p = Process::Client(process);
                let node = Some(host.clone());
                recorder.record(p, OpType::Invoke, &f, value.clone(), node.clone(), None);
                match perform(client.clone(), host.clone(), f.clone(), value.clone()).await {
                    Outcome::Ok(result) => recorder.record(p, OpType::Ok, &f, result, node, None),
                    Outcome::Fail(e) => {
                        // A node that refuses connections (killed) answers at once: without a
                        // pause the worker would fill the history with thousands of failures.
                        let refused = e.starts_with("connect");
                        recorder.record(p, OpType::Fail, &f, value, node, Some(e));
                        if refused {
                            tokio::time::sleep(CONNECT_BACKOFF).await;
                        }
                    }
                    Outcome::Info(e) => {
                        recorder.record(p, OpType::Info, &f, value, node, Some(e));
                        process = next_process.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

/// Runs the register workload until `until`.
pub async fn run(options: WorkloadOptions, recorder: Recorder, until: Instant) {
    let next_value = Arc::new(AtomicU64::new(1));
    let key_ops = Arc::new(AtomicU64::new(0));
    let generate: Generate = Arc::new(move |rng: &mut SmallRng| {
        // Keys advance as operations are spent: op n goes to one of the active keys of
        // generation n / OPS_PER_KEY.
        let n = key_ops.fetch_add(1, Ordering::Relaxed);
        let key = (n / OPS_PER_KEY) * ACTIVE_KEYS + rng.random_range(0..ACTIVE_KEYS);
        let (f, value) = match rng.random_range(0..4) {
            0 | 1 => ("read", json!([key, null])),
            2 => ("write", json!([key, next_value.fetch_add(1, Ordering::Relaxed)])),
            _ => {
                // Expect a recent value: unique values make most CAS fail, which is fine;
                // some must succeed, so guess among the last few written.
                let newest = next_value.load(Ordering::Relaxed).max(2);
                let old = newest - rng.random_range(1..newest.min(8));
                let new = next_value.fetch_add(1, Ordering::Relaxed);
                ("cas", json!([key, [old, new]]))
            }
        };
        (f.to_string(), value)
    });
    let perform: Perform = Arc::new(|client, host, f, value| {
        Box::pin(async move {
            let key = value[0].as_u64().unwrap_or_default();
            call(&client, &host, &f, key, &value).await
        })
    });
    drive(&options, recorder, until, generate, perform).await;
}

/// The Shoal key of register `key`.
pub fn key_name(key: u64) -> String {
    format!("jepsen-{key:08}")
}

async fn call(client: &reqwest::Client, host: &str, f: &str, key: u64, value: &Value) -> Outcome {
    let (path, body) = match f {
        "read" => ("get", json!({"key": key_name(key)})),
        "write" => ("put", json!({"key": key_name(key), "value": value[1].to_string()})),
        _ => (
            "cas",
            json!({"key": key_name(key), "expected": value[1][0].to_string(), "value": value[1][1].to_string()}),
        ),
    };
    let response = match client.post(format!("http://{host}/v1/kv/{path}")).json(&body).send().await
    {
        Ok(response) => response,
        // Never connected: the request was not sent.
        Err(e) if e.is_connect() => return Outcome::Fail(format!("connect: {e}")),
        Err(e) => return Outcome::Info(e.to_string()),
    };
    let status = response.status().as_u16();
    let answer: Value = match response.json().await {
        Ok(answer) => answer,
        Err(e) => return Outcome::Info(format!("HTTP {status}, unreadable answer: {e}")),
    };
    match status {
        200 if f == "read" => match answer.get("value") {
            None => Outcome::Info(format!("a read answer without a value: {answer}")),
            Some(Value::Null) => Outcome::Ok(json!([key, null])),
            Some(Value::String(s)) => match s.parse::<u64>() {
                Ok(v) => Outcome::Ok(json!([key, v])),
                Err(_) => Outcome::Info(format!("read a value that is not a number: {s:?}")),
            },
            Some(other) => Outcome::Info(format!("unexpected read answer {other}")),
        },
        200 => Outcome::Ok(value.clone()),
        // The comparison failed, or the request was refused before anything was proposed.
        400 | 412 | 503 => Outcome::Fail(format!("HTTP {status}: {}", answer["error"]["code"])),
        _ => Outcome::Info(format!("HTTP {status}: {}", answer["error"])),
    }
}
