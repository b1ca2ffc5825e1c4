//! One harness run: a fresh cluster, the register workload under one nemesis, then the check.
//!
//! ```text
//!   start cluster ─▶ workload ∥ nemesis (until the time limit) ─▶ heal ─▶ save history
//!                                                                  ─▶ check ─▶ verdict
//! ```
//!
//! A run passes only if the history is linearizable **and** it was not idle: enough operations
//! succeeded and the nemesis really injected faults. A run started with `expect_invalid` (the
//! unsafe canary) passes only if the checker reports a violation. Everything a run produces is
//! kept in its directory: `history.jsonl`, `verdict.json`, node logs and, on a violation, one
//! `violation-key-N.html` timeline per bad key. The stores are removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::checker::register::{self, KeyResult};
use crate::cluster::{Cluster, ClusterOptions, NetworkMode};
use crate::workload::{Recorder, WorkloadOptions};
use crate::{history, nemesis, report, workload};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The nemesis.
    pub nemesis: String,
    /// Nodes.
    pub nodes: usize,
    /// How long the workload runs.
    pub time_limit: Duration,
    /// Quiet and faulty periods of the nemesis.
    pub interval: Duration,
    /// Workers.
    pub concurrency: usize,
    /// The seed (printed; rerun with it to repeat the schedule of choices).
    pub seed: u64,
    /// Start the nodes with `--unsafe-stale-reads`.
    pub unsafe_stale_reads: bool,
    /// The run passes only if the checker finds a violation.
    pub expect_invalid: bool,
    /// The `shoal` binary.
    pub shoal: PathBuf,
    /// Where runs keep their files.
    pub store: PathBuf,
    /// The linearizability search's time budget.
    pub check_budget: Duration,
    /// Where the nodes run.
    pub network: NetworkMode,
}

/// What a run came to.
#[derive(Debug)]
pub struct RunResult {
    /// Whether it passed.
    pub passed: bool,
    /// One line for the summary.
    pub summary: String,
    /// The run's directory.
    pub dir: PathBuf,
}

/// Violation pages written per run.
const MAX_PAGES: usize = 10;

/// Fewest `ok` operations a run must have to count (an idle run proves nothing).
const MIN_OK_OPS: usize = 50;

/// Runs once.
pub async fn run(options: &RunOptions) -> Result<RunResult, String> {
    let name = format!(
        "register-{}{}-{}",
        options.nemesis.replace('+', "-and-"),
        if options.unsafe_stale_reads { "-unsafe" } else { "" },
        options.seed
    );
    let dir = options.store.join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    println!(
        "jepsen: run {name}: {} nodes, nemesis {}, {:?}, seed {} (files in {})",
        options.nodes,
        options.nemesis,
        options.time_limit,
        options.seed,
        dir.display()
    );
    let cluster_options = ClusterOptions {
        shoal: options.shoal.clone(),
        nodes: options.nodes,
        unsafe_stale_reads: options.unsafe_stale_reads,
        network: options.network,
    };
    let mut cluster = Cluster::start(&dir, cluster_options).await?;
    let recorder = Recorder::new();
    let until = Instant::now() + options.time_limit;
    let workload = tokio::spawn(workload::run(
        WorkloadOptions {
            concurrency: options.concurrency,
            hosts: cluster.nodes.iter().map(|n| n.http.clone()).collect(),
            timeout: Duration::from_secs(2),
            seed: options.seed,
        },
        recorder.clone(),
        until,
    ));
    let report = nemesis::run(
        &options.nemesis,
        &mut cluster,
        &recorder,
        options.interval,
        options.seed,
        until,
    )
    .await;
    workload.await.map_err(|e| format!("the workload panicked: {e}"))?;
    let network = if cluster.uses_namespaces() { "namespaces" } else { "loopback" };
    drop(cluster); // kills the nodes, removes the stores and the namespaces
    let report = report?;
    let faults = report.faults;

    let ops = recorder.history();
    let mut file = std::fs::File::create(dir.join("history.jsonl")).map_err(|e| e.to_string())?;
    history::write_jsonl(&ops, &mut file).map_err(|e| e.to_string())?;
    let verdict = register::check(&ops, options.check_budget);
    let json = serde_json::to_string_pretty(&verdict).unwrap_or_default();
    std::fs::write(dir.join("verdict.json"), json).map_err(|e| e.to_string())?;
    // A timeline for the first few bad keys; the verdict lists them all.
    for (key, (key_ops, result)) in verdict.invalid.iter().take(MAX_PAGES) {
        if let KeyResult::Invalid { longest_prefix, stuck } = result {
            let page = report::violation_page(*key, key_ops, longest_prefix, *stuck);
            let _ = std::fs::write(dir.join(format!("violation-key-{key}.html")), page);
        }
    }

    let mut problems = report.problems;
    if verdict.ok_ops < MIN_OK_OPS {
        problems
            .push(format!("only {} ok operations (at least {MIN_OK_OPS} needed)", verdict.ok_ops));
    }
    if options.nemesis != "none" && faults == 0 {
        problems.push(format!("the {} nemesis never took effect", options.nemesis));
    }
    let linearizable = verdict.valid();
    let checker = if linearizable {
        "linearizable".to_string()
    } else if !verdict.invalid.is_empty() {
        let keys: Vec<_> = verdict.invalid.keys().take(5).collect();
        let more = verdict.invalid.len().saturating_sub(keys.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        format!("NOT linearizable (keys {keys:?}{more})")
    } else if !verdict.unknown.is_empty() {
        format!("unknown: the search ran out of time on keys {:?}", verdict.unknown)
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    let expected = if options.expect_invalid { !verdict.invalid.is_empty() } else { linearizable };
    let passed = expected && problems.is_empty();
    let summary = format!(
        "{} {name}: {checker}{}; {} ops ({} ok) on {} keys, {faults} faults, {network}{}",
        if passed { "PASS" } else { "FAIL" },
        if options.expect_invalid { " (a violation was expected)" } else { "" },
        verdict.ops,
        verdict.ok_ops,
        verdict.keys,
        if problems.is_empty() { String::new() } else { format!("; {}", problems.join("; ")) },
    );
    println!("jepsen: {summary}");
    Ok(RunResult { passed, summary, dir })
}

/// The directory under which runs keep their files by default: `jepsen/store`.
pub fn default_store() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("store")
}
