//! `shoal-jepsen`: runs the harness against real `shoal` processes, or re-checks a history.
//!
//! ```text
//!   shoal-jepsen run --nemesis partition --nodes 5 --time-limit 300s --seed 7
//!   shoal-jepsen run --workload list-append --nemesis kill
//!   shoal-jepsen smoke                 every nemesis on 3 nodes, plus the unsafe canaries
//!   shoal-jepsen smoke --nodes 5 --only g2,monotonic    a part of the full matrix
//!   shoal-jepsen check history.jsonl   re-check a saved history
//! ```
//!
//! Every run and the smoke matrix end with `jepsen: N passed, M failed`; the exit status is
//! non-zero if anything failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shoal_jepsen::cluster::{NetworkMode, Unsafe};
use shoal_jepsen::run::{self, RunOptions, Workload};
use shoal_jepsen::{history, nemesis};

#[derive(Parser)]
#[command(name = "shoal-jepsen", about = "Jepsen-style fault injection for Shoal")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One run: one workload under one nemesis.
    Run {
        #[command(flatten)]
        common: Common,
        /// The nemesis (`shoal-jepsen nemeses` lists them); two combine as `a+b`.
        #[arg(long, default_value = "partition")]
        nemesis: String,
        /// Start the nodes with --unsafe-stale-reads.
        #[arg(long, group = "unsafe")]
        unsafe_stale_reads: bool,
        /// Start the nodes with --unsafe-skip-refresh.
        #[arg(long, group = "unsafe")]
        unsafe_skip_refresh: bool,
        /// Pass only if the checker reports a violation.
        #[arg(long)]
        expect_invalid: bool,
    },
    /// A matrix of nemeses, then the unsafe canaries, which must be reported invalid. On 5
    /// nodes or more, every workload runs every nemesis and some pairs, and there is a g2
    /// canary too. On fewer, the register workload runs one nemesis of each family and a
    /// pair, and list-append and bank run a partition, a crash and a clock nemesis.
    Smoke {
        #[command(flatten)]
        common: Common,
        /// Only these workloads (and their canaries), e.g. `--only monotonic,g2`, to run the
        /// full matrix in parts.
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<Workload>,
    },
    /// Lists the nemeses.
    Nemeses,
    /// Re-checks a saved history (register or list-append, told apart by its operations).
    Check {
        /// The history (JSON lines).
        history: PathBuf,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// The workload of `run`.
    #[arg(long, value_enum, default_value = "register")]
    workload: Workload,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// How long each run's workload lasts.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    time_limit: Duration,
    /// The nemesis's quiet and faulty periods.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6)]
    concurrency: usize,
    /// The seed of the run's choices (default: from the clock; always printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The shoal binary (default: the one next to this program).
    #[arg(long, env = "SHOAL_BIN")]
    shoal: Option<PathBuf>,
    /// Where runs keep their files (default: jepsen/store).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Where nodes run: auto (namespaces when root, else loopback), namespaces, loopback.
    #[arg(long, default_value = "auto")]
    network: String,
}

impl Common {
    fn options(&self, nemesis: &str) -> Result<RunOptions, String> {
        let shoal = match &self.shoal {
            Some(path) => path.clone(),
            None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("shoal"),
        };
        if !shoal.exists() {
            return Err(format!(
                "no shoal binary at {} (build it with `cargo build -p shoal`, or pass --shoal)",
                shoal.display()
            ));
        }
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
        let network = match self.network.as_str() {
            "auto" => NetworkMode::Auto,
            "namespaces" => NetworkMode::Namespaces,
            "loopback" => NetworkMode::Loopback,
            other => return Err(format!("--network {other:?}: use auto, namespaces or loopback")),
        };
        nemesis::validate(nemesis, self.nodes)?;
        Ok(RunOptions {
            workload: self.workload,
            network,
            nemesis: nemesis.to_string(),
            nodes: self.nodes,
            time_limit: self.time_limit,
            interval: self.interval,
            concurrency: self.concurrency,
            seed,
            unsafe_mode: None,
            expect_invalid: false,
            shoal,
            store: self.store.clone().unwrap_or_else(run::default_store),
            check_budget: Duration::from_secs(60),
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shoal-jepsen: cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let plans = match plans(cli.command) {
        Ok(Plans::Runs(plans)) => plans,
        Ok(Plans::Check(path)) => return check(&path),
        Ok(Plans::List) => {
            println!("{}", nemesis::KINDS.join("\n"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("shoal-jepsen: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        tokio::select! {
            code = run_all(plans) => code,
            signal = interrupted() => {
                // Dropping the run's future drops its cluster, which kills every node and
                // removes its stores and namespaces.
                eprintln!("shoal-jepsen: {signal}; nodes stopped, namespaces removed");
                ExitCode::from(130)
            }
        }
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "interrupted";
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = terminate.recv() => "terminated",
    }
}

enum Plans {
    Runs(Vec<RunOptions>),
    Check(PathBuf),
    List,
}

/// The pairs the full matrix (5 nodes or more) adds to every single nemesis.
const FULL_PAIRS: &[&str] =
    &["partition+kill", "isolate-leaseholder+split", "pause+lease-transfer", "kill+clock-bump"];

/// The smoke matrix on fewer than 5 nodes: one of each family, and one pair.
const SMOKE: &[&str] = &[
    "partition",
    "isolate-leaseholder",
    "bridge",
    "kill",
    "pause",
    "clock-strobe",
    "clock-jump",
    "split",
    "lease-transfer",
    "partition+kill",
];

/// The SQL workloads' runs of the smoke matrix on fewer than 5 nodes: a partition, a crash and
/// a clock nemesis.
const SQL_SMOKE: &[&str] = &["partition", "kill", "clock-strobe"];

fn plans(command: Command) -> Result<Plans, String> {
    Ok(match command {
        Command::Run {
            common,
            nemesis,
            unsafe_stale_reads,
            unsafe_skip_refresh,
            expect_invalid,
        } => {
            let mut options = common.options(&nemesis)?;
            options.unsafe_mode = [
                (unsafe_stale_reads, Unsafe::StaleReads),
                (unsafe_skip_refresh, Unsafe::SkipRefresh),
            ]
            .into_iter()
            .find_map(|(on, mode)| on.then_some(mode));
            options.expect_invalid = expect_invalid;
            Plans::Runs(vec![options])
        }
        Command::Nemeses => Plans::List,
        Command::Smoke { common, only } => {
            let full = common.nodes >= 5;
            let full_matrix: Vec<&str> = {
                let singles = nemesis::KINDS.iter().copied().filter(|k| *k != "none");
                singles.chain(FULL_PAIRS.iter().copied()).collect()
            };
            let workloads: Vec<Workload> = if full {
                <Workload as clap::ValueEnum>::value_variants().to_vec()
            } else {
                vec![Workload::Register, Workload::ListAppend, Workload::Bank]
            };
            let wanted = |w: &Workload| only.is_empty() || only.contains(w);
            let mut runs = Vec::new();
            for workload in workloads.into_iter().filter(wanted) {
                let matrix = match workload {
                    _ if full => full_matrix.as_slice(),
                    Workload::Register => SMOKE,
                    _ => SQL_SMOKE,
                };
                let common = Common { workload, ..common.clone() };
                for spec in matrix {
                    runs.push(common.options(spec)?);
                }
            }
            // The canaries: stale reads break linearizability, skipped refreshes break
            // serializability; each checker must say so.
            let mut canaries = vec![
                (Workload::Register, "partition", Unsafe::StaleReads),
                (Workload::ListAppend, "none", Unsafe::SkipRefresh),
            ];
            if full {
                canaries.push((Workload::G2, "none", Unsafe::SkipRefresh));
            }
            for (workload, spec, mode) in canaries.into_iter().filter(|c| wanted(&c.0)) {
                let mut canary = Common { workload, ..common.clone() }.options(spec)?;
                canary.unsafe_mode = Some(mode);
                canary.expect_invalid = true;
                runs.push(canary);
            }
            Plans::Runs(runs)
        }
        Command::Check { history } => Plans::Check(history),
    })
}

async fn run_all(plans: Vec<RunOptions>) -> ExitCode {
    let mut results = Vec::new();
    for options in &plans {
        match run::run(options).await {
            Ok(result) => results.push((result.passed, result.summary)),
            Err(e) => {
                let summary =
                    format!("FAIL nemesis {} seed {}: {e}", options.nemesis, options.seed);
                println!("jepsen: {summary}");
                results.push((false, summary));
            }
        }
    }
    let passed = results.iter().filter(|(ok, _)| *ok).count();
    println!();
    for (_, summary) in &results {
        println!("  {summary}");
    }
    println!("jepsen: {passed} passed, {} failed", results.len() - passed);
    if passed == results.len() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn check(path: &PathBuf) -> ExitCode {
    let ops = match std::fs::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| history::read_jsonl(std::io::BufReader::new(f)).map_err(|e| e.to_string()))
    {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("shoal-jepsen: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let workload = run::workload_of(&ops);
    let checked = shoal_jepsen::run_check::check(workload, &ops, Duration::from_secs(60), None);
    println!("{}", serde_json::to_string_pretty(&checked.verdict).unwrap_or_default());
    println!("{} history: {}; {}", workload.name(), checked.checker, checked.scope);
    let valid = checked.valid;
    if valid { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
