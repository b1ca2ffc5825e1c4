//! One harness run: a fresh cluster, one workload under one nemesis, then the check.
//!
//! ```text
//!   start cluster ─▶ workload ∥ nemesis (until the time limit) ─▶ heal ─▶ save history
//!                                                                  ─▶ check ─▶ verdict
//! ```
//!
//! Workloads: `register` (linearizable registers over `/v1/kv`, checked by
//! [`crate::checker::register`]) and `list-append` (transactions over SQL, checked for
//! serializability anomalies by [`crate::checker::list_append`]).
//!
//! A run passes only if its checker finds the history valid **and** it was not idle: enough
//! operations succeeded and the nemesis really injected faults. A run started with
//! `expect_invalid` (an unsafe canary) passes only if the checker reports a violation.
//! Everything a run produces is kept in its directory: `history.jsonl`, `verdict.json`, node
//! logs and, for a register violation, one `violation-key-N.html` timeline per bad key. The
//! stores are removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::checker::register::{self, KeyResult};
use crate::checker::{bank, list_append, set};
use crate::cluster::{Cluster, ClusterOptions, NetworkMode};
use crate::history::Op;
use crate::workload::{KeySpace, Recorder, WorkloadOptions};
use crate::workload_bank::{self, Layout};
use crate::{history, nemesis, report, sql, workload, workload_list_append, workload_set};

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Read, write and compare-and-set registers over `/v1/kv`: linearizability.
    Register,
    /// Transactions appending to and reading lists over SQL: serializability (Elle).
    ListAppend,
    /// Transfers between accounts, rows of one table, and reads of every balance over SQL.
    Bank,
    /// The bank with one table per account.
    BankTables,
    /// Unique inserts into a table, then one final read: nothing acknowledged lost.
    Set,
}

impl Workload {
    /// The name runs and files use.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::ListAppend => "list-append",
            Workload::Bank => "bank",
            Workload::BankTables => "bank-tables",
            Workload::Set => "set",
        }
    }

    fn bank_layout(self) -> Option<Layout> {
        match self {
            Workload::Bank => Some(Layout::OneTable),
            Workload::BankTables => Some(Layout::TablePerAccount),
            _ => None,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The workload.
    pub workload: Workload,
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
    /// Start the nodes with `--unsafe-skip-refresh`.
    pub unsafe_skip_refresh: bool,
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

impl Workload {
    /// Fewest `ok` operations a run must have to count (an idle run proves nothing). Bank
    /// transfers contend for eight accounts and restart each other (Shoal has no locking
    /// reads yet), so a 30 s bank run completes fewer of them.
    fn min_ok_ops(self) -> usize {
        match self {
            Workload::Register | Workload::ListAppend | Workload::Set => 50,
            Workload::Bank | Workload::BankTables => 30,
        }
    }
}

/// Runs once.
pub async fn run(options: &RunOptions) -> Result<RunResult, String> {
    let unsafe_mode = options.unsafe_stale_reads || options.unsafe_skip_refresh;
    let name = format!(
        "{}-{}{}-{}",
        options.workload.name(),
        options.nemesis.replace('+', "-and-"),
        if unsafe_mode { "-unsafe" } else { "" },
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
        unsafe_skip_refresh: options.unsafe_skip_refresh,
        network: options.network,
    };
    let mut cluster = Cluster::start(&dir, cluster_options).await?;
    let hosts: Vec<String> = cluster.nodes.iter().map(|n| n.http.clone()).collect();
    let (recorder, timeout) = match options.workload {
        Workload::Register => (Recorder::new(), Duration::from_secs(2)),
        workload => {
            let (statements, keys) = match workload.bank_layout() {
                None if workload == Workload::Set => {
                    (workload_set::setup_statements(), KeySpace::SqlTable(workload_set::TABLE))
                }
                None => (
                    workload_list_append::setup_statements(),
                    KeySpace::SqlTable(workload_list_append::TABLE),
                ),
                Some(Layout::OneTable) => (
                    workload_bank::setup_statements(Layout::OneTable),
                    KeySpace::SqlTable(workload_bank::TABLE),
                ),
                Some(Layout::TablePerAccount) => (
                    workload_bank::setup_statements(Layout::TablePerAccount),
                    KeySpace::SqlTablePerKey(workload_bank::TABLE_PREFIX),
                ),
            };
            sql::setup(&cluster.http, &hosts, &statements).await?;
            let timeout = Duration::from_millis(sql::SQL_TIMEOUT_MS) + Duration::from_secs(1);
            (Recorder::over(keys), timeout)
        }
    };
    let until = Instant::now() + options.time_limit;
    let workload_options = WorkloadOptions {
        concurrency: options.concurrency,
        hosts: hosts.clone(),
        timeout,
        seed: options.seed,
    };
    let workload = match options.workload {
        Workload::Register => {
            tokio::spawn(workload::run(workload_options, recorder.clone(), until))
        }
        Workload::ListAppend => {
            tokio::spawn(workload_list_append::run(workload_options, recorder.clone(), until))
        }
        Workload::Bank | Workload::BankTables => {
            let layout = options.workload.bank_layout().unwrap_or(Layout::OneTable);
            tokio::spawn(workload_bank::run(layout, workload_options, recorder.clone(), until))
        }
        Workload::Set => tokio::spawn(workload_set::run(workload_options, recorder.clone(), until)),
    };
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
    if options.workload == Workload::Set && report.is_ok() {
        // After the heal, before the nodes go: a process number no worker reaches.
        workload_set::final_read(&cluster.http, &hosts, &recorder, 1 << 40).await?;
    }
    let network = if cluster.uses_namespaces() { "namespaces" } else { "loopback" };
    drop(cluster); // kills the nodes, removes the stores and the namespaces
    let report = report?;
    let faults = report.faults;

    let ops = recorder.history();
    let mut file = std::fs::File::create(dir.join("history.jsonl")).map_err(|e| e.to_string())?;
    history::write_jsonl(&ops, &mut file).map_err(|e| e.to_string())?;
    let checked = match options.workload {
        Workload::Register => check_register(&ops, options.check_budget, &dir)?,
        Workload::ListAppend => check_list_append(&ops, &dir)?,
        Workload::Bank | Workload::BankTables => check_bank(&ops, &dir)?,
        Workload::Set => check_set(&ops, &dir)?,
    };

    let mut problems = report.problems;
    let min_ok_ops = options.workload.min_ok_ops();
    if checked.ok_ops < min_ok_ops {
        problems
            .push(format!("only {} ok operations (at least {min_ok_ops} needed)", checked.ok_ops));
    }
    if options.nemesis != "none" && faults == 0 {
        problems.push(format!("the {} nemesis never took effect", options.nemesis));
    }
    let expected = if options.expect_invalid { checked.violation } else { checked.valid };
    let passed = expected && problems.is_empty();
    let summary = format!(
        "{} {name}: {}{}; {} ops ({} ok), {}, {faults} faults, {network}{}",
        if passed { "PASS" } else { "FAIL" },
        checked.checker,
        if options.expect_invalid { " (a violation was expected)" } else { "" },
        checked.ops,
        checked.ok_ops,
        checked.scope,
        if problems.is_empty() { String::new() } else { format!("; {}", problems.join("; ")) },
    );
    println!("jepsen: {summary}");
    Ok(RunResult { passed, summary, dir })
}

/// What a checker concluded, in the terms a run reports.
struct Checked {
    /// No anomaly, and the history was complete enough to check.
    valid: bool,
    /// An anomaly was found (what an unsafe canary needs).
    violation: bool,
    /// Operations checked, and how many of them were ok.
    ops: usize,
    ok_ops: usize,
    /// What the check covered ("on 12 keys").
    scope: String,
    /// The checker's one-line conclusion.
    checker: String,
}

fn write_verdict(dir: &Path, verdict: &impl serde::Serialize) -> Result<(), String> {
    let json = serde_json::to_string_pretty(verdict).unwrap_or_default();
    std::fs::write(dir.join("verdict.json"), json).map_err(|e| e.to_string())
}

fn check_register(ops: &[Op], budget: Duration, dir: &Path) -> Result<Checked, String> {
    let verdict = register::check(ops, budget);
    write_verdict(dir, &verdict)?;
    // A timeline for the first few bad keys; the verdict lists them all.
    for (key, (key_ops, result)) in verdict.invalid.iter().take(MAX_PAGES) {
        if let KeyResult::Invalid { longest_prefix, stuck } = result {
            let page = report::violation_page(*key, key_ops, longest_prefix, *stuck);
            let _ = std::fs::write(dir.join(format!("violation-key-{key}.html")), page);
        }
    }
    let checker = if verdict.valid() {
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
    Ok(Checked {
        valid: verdict.valid(),
        violation: !verdict.invalid.is_empty(),
        ops: verdict.ops,
        ok_ops: verdict.ok_ops,
        scope: format!("on {} keys", verdict.keys),
        checker,
    })
}

fn check_list_append(ops: &[Op], dir: &Path) -> Result<Checked, String> {
    let verdict = list_append::check(ops);
    write_verdict(dir, &verdict)?;
    let checker = if verdict.valid() {
        "serializable (no anomaly)".to_string()
    } else if !verdict.anomalies.is_empty() {
        let found: Vec<String> =
            verdict.anomalies.iter().map(|(name, a)| format!("{name} ×{}", a.len())).collect();
        let first = verdict.anomalies.values().flatten().next().map(|a| a.explanation.clone());
        format!("ANOMALIES {} (first: {})", found.join(", "), first.unwrap_or_default())
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Ok(Checked {
        valid: verdict.valid(),
        violation: verdict.anomalies.keys().any(|name| *name != "duplicate-appends"),
        ops: verdict.txns,
        ok_ops: verdict.ok_txns,
        scope: format!(
            "{} transactions and {} edges in the graph",
            verdict.graph_txns, verdict.graph_edges
        ),
        checker,
    })
}

fn check_set(ops: &[Op], dir: &Path) -> Result<Checked, String> {
    let verdict = set::check(ops);
    write_verdict(dir, &verdict)?;
    let checker = if verdict.valid() {
        format!("every acknowledged add present ({} recovered from unknown)", verdict.recovered)
    } else if !verdict.lost.is_empty() || !verdict.unexpected.is_empty() {
        format!("LOST {:?}, UNEXPECTED {:?}", verdict.lost, verdict.unexpected)
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Ok(Checked {
        valid: verdict.valid(),
        violation: !verdict.lost.is_empty() || !verdict.unexpected.is_empty(),
        ops: verdict.adds,
        ok_ops: verdict.ok_adds,
        scope: format!("{} in the final read", verdict.read),
        checker,
    })
}

fn check_bank(ops: &[Op], dir: &Path) -> Result<Checked, String> {
    let verdict = bank::check(ops, workload_bank::ACCOUNTS, workload_bank::INITIAL);
    write_verdict(dir, &verdict)?;
    let checker = if verdict.valid() {
        "money conserved, no negative balance".to_string()
    } else if let Some(bad) = verdict.bad_reads.first() {
        format!("{} BAD READS (first: op {}: {})", verdict.bad_read_count, bad.index, bad.problem)
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Ok(Checked {
        valid: verdict.valid(),
        violation: verdict.bad_read_count > 0,
        ops: verdict.ops,
        ok_ops: verdict.ok_ops,
        scope: format!("{} reads", verdict.reads),
        checker,
    })
}

/// Which workload a saved history came from: transactions are list-append, transfers bank
/// (either layout: the history is the same).
pub fn workload_of(ops: &[Op]) -> Workload {
    if ops.iter().any(|op| op.f == "txn" && !matches!(op.value, Value::String(_))) {
        Workload::ListAppend
    } else if ops.iter().any(|op| op.f == "transfer") {
        Workload::Bank
    } else if ops.iter().any(|op| op.f == "add") {
        Workload::Set
    } else {
        Workload::Register
    }
}

/// The directory under which runs keep their files by default: `jepsen/store`.
pub fn default_store() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("store")
}
