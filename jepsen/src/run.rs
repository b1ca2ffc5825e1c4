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

use crate::cluster::{Cluster, ClusterOptions, NetworkMode, Unsafe};
use crate::history::Op;
use crate::workload::{KeySpace, Recorder, WorkloadOptions};
use crate::workload_bank::{self, Layout};
use crate::{
    history, nemesis, run_check, sql, workload, workload_g2, workload_list_append,
    workload_monotonic, workload_sequential, workload_set,
};

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
    /// Increments stamped with `cluster_logical_timestamp()`: values rise with commit
    /// timestamps and in real-time order.
    Monotonic,
    /// Subkeys written in order on different ranges, read back in reverse: no later subkey
    /// seen without the earlier ones.
    Sequential,
    /// Pairs of inserts guarded by predicate reads on two tables: no write skew (G2).
    G2,
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
            Workload::Monotonic => "monotonic",
            Workload::Sequential => "sequential",
            Workload::G2 => "g2",
        }
    }

    /// The SQL statements that prepare the workload's tables and where its keys live; None
    /// for the KV register.
    fn sql_setup(self) -> Option<(Vec<String>, KeySpace)> {
        Some(match self {
            Workload::Register => return None,
            Workload::ListAppend => (
                workload_list_append::setup_statements(),
                KeySpace::SqlTable(workload_list_append::TABLE),
            ),
            Workload::Bank => (
                workload_bank::setup_statements(Layout::OneTable),
                KeySpace::SqlTable(workload_bank::TABLE),
            ),
            Workload::BankTables => (
                workload_bank::setup_statements(Layout::TablePerAccount),
                KeySpace::SqlTablePerKey(workload_bank::TABLE_PREFIX),
            ),
            Workload::Set => {
                (workload_set::setup_statements(), KeySpace::SqlTable(workload_set::TABLE))
            }
            Workload::Monotonic => (
                workload_monotonic::setup_statements(),
                KeySpace::SqlTable(workload_monotonic::TABLE),
            ),
            Workload::Sequential => (
                workload_sequential::setup_statements(),
                KeySpace::SqlTable(workload_sequential::FIRST_TABLE),
            ),
            Workload::G2 => {
                (workload_g2::setup_statements(), KeySpace::SqlTable(workload_g2::TABLE_A))
            }
        })
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
    /// The unsafe test hook the nodes start with, if any.
    pub unsafe_mode: Option<Unsafe>,
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

impl Workload {
    /// Fewest `ok` operations a run must have to count (an idle run proves nothing). Bank
    /// transfers contend for eight accounts and restart each other (Shoal has no locking
    /// reads yet), so a 30 s bank run completes fewer of them.
    fn min_ok_ops(self) -> usize {
        match self {
            Workload::Register
            | Workload::ListAppend
            | Workload::Set
            | Workload::Sequential
            | Workload::G2 => 50,
            // Every increment conflicts with every other.
            Workload::Bank | Workload::BankTables | Workload::Monotonic => 30,
        }
    }
}

/// Runs once.
pub async fn run(options: &RunOptions) -> Result<RunResult, String> {
    let name = format!(
        "{}-{}{}-{}",
        options.workload.name(),
        options.nemesis.replace('+', "-and-"),
        if options.unsafe_mode.is_some() { "-unsafe" } else { "" },
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
        unsafe_mode: options.unsafe_mode,
        network: options.network,
    };
    let mut cluster = Cluster::start(&dir, cluster_options).await?;
    let hosts: Vec<String> = cluster.nodes.iter().map(|n| n.http.clone()).collect();
    let (recorder, timeout) = match options.workload.sql_setup() {
        None => (Recorder::new(), Duration::from_secs(2)),
        Some((statements, keys)) => {
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
        Workload::Monotonic => {
            tokio::spawn(workload_monotonic::run(workload_options, recorder.clone(), until))
        }
        Workload::Sequential => {
            tokio::spawn(workload_sequential::run(workload_options, recorder.clone(), until))
        }
        Workload::G2 => tokio::spawn(workload_g2::run(workload_options, recorder.clone(), until)),
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
    if report.is_ok() {
        // After the heal, before the nodes go: a process number no worker reaches.
        let (http, reader) = (&cluster.http, 1 << 40);
        match options.workload {
            Workload::Set => workload_set::final_read(http, &hosts, &recorder, reader).await?,
            Workload::Monotonic => {
                workload_monotonic::final_read(http, &hosts, &recorder, reader).await?
            }
            _ => {}
        }
    }
    let network = if cluster.uses_namespaces() { "namespaces" } else { "loopback" };
    drop(cluster); // kills the nodes, removes the stores and the namespaces
    let report = report?;
    let faults = report.faults;

    let ops = recorder.history();
    let mut file = std::fs::File::create(dir.join("history.jsonl")).map_err(|e| e.to_string())?;
    history::write_jsonl(&ops, &mut file).map_err(|e| e.to_string())?;
    let checked = run_check::check(options.workload, &ops, options.check_budget, Some(&dir));
    let verdict = serde_json::to_string_pretty(&checked.verdict).unwrap_or_default();
    std::fs::write(dir.join("verdict.json"), verdict).map_err(|e| e.to_string())?;

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

/// Which workload a saved history came from, by the operations in it: transactions are
/// list-append, transfers bank (either layout: the history is the same), and so on.
pub fn workload_of(ops: &[Op]) -> Workload {
    let has = |f: &str| ops.iter().any(|op| op.f == f);
    if ops.iter().any(|op| op.f == "txn" && !matches!(op.value, Value::String(_))) {
        Workload::ListAppend
    } else if has("transfer") {
        Workload::Bank
    } else if has("add") {
        Workload::Set
    } else if has("inc") {
        Workload::Monotonic
    } else if has("insert") {
        Workload::G2
    } else if ops.iter().any(|op| op.f == "read" && op.value[1].is_array()) {
        Workload::Sequential
    } else {
        Workload::Register
    }
}

/// The directory under which runs keep their files by default: `jepsen/store`.
pub fn default_store() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("store")
}
