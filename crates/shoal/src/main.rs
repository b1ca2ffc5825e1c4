//! The `shoal` command.
//!
//! ```text
//!   shoal start --store PATH --listen-addr HOST:PORT --http-addr HOST:PORT --join HOST:PORT,...
//!   shoal init --host HOST:PORT
//!   shoal node status --host HOST:PORT
//!   shoal debug kv put KEY VALUE | get KEY | cas KEY EXPECTED NEW | delete KEY
//!                | scan START END --host HOST:PORT
//!   shoal debug split KEY --host HOST:PORT
//!   shoal workload kv --hosts HOST:PORT,... [--target etcd] --concurrency N --duration 30s ...
//!   shoal workload bank --hosts HOST:PORT,... --accounts N --ranges R --concurrency N ...
//!   shoal workload tpcb --hosts HOST:PORT,... --scale N --ranges R --concurrency N ...
//!   shoal sql [--url postgres://root@HOST:PORT/DB] [-e SQL | -f FILE] [--format table|csv|json]
//!   shoal demo [--nodes 3] [-e SQL | -f FILE]
//! ```
//!
//! `--host` is always a node's HTTP address. Exit status: 0 success, 1 the operation failed
//! (with a message on stderr saying why), 2 bad usage.

mod client;
mod commands;
mod demo;
mod ops;
mod shell;
mod shell_input;
mod shell_output;
mod start;
mod workload;
mod workload_bank;
mod workload_tpcb;
mod workload_tpch;
mod workload_txn;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Shoal: a distributed SQL database.
#[derive(Parser)]
#[command(name = "shoal", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts a node.
    Start(StartArgs),
    /// Initializes a new cluster from the node at --host and the empty nodes it can reach.
    Init(HostArgs),
    /// Node commands.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Low-level commands for debugging and tests.
    #[command(subcommand)]
    Debug(DebugCommand),
    /// Load generators.
    #[command(subcommand)]
    Workload(WorkloadCommand),
    /// An interactive SQL shell (psql-like) on a node's PostgreSQL port; also runs scripts.
    Sql(shell::SqlArgs),
    /// Starts a cluster in this process with sample data and opens the SQL shell on it.
    Demo(demo::DemoArgs),
}

#[derive(Subcommand)]
enum WorkloadCommand {
    /// Random single-key reads and writes; reports throughput and latency percentiles.
    Kv(workload::KvArgs),
    /// Transfers between accounts in transactions, checking that money is conserved.
    Bank(workload_bank::BankArgs),
    /// pgbench's TPC-B-like transaction over SQL, checking that the balances agree.
    Tpcb(workload_tpcb::TpcbArgs),
    /// Writes TPC-H's tables as `.tbl` files (for `make bench-tpch`).
    TpchData(workload_tpch::TpchDataArgs),
}

/// Flags of `shoal start`.
#[derive(Args, Clone)]
pub struct StartArgs {
    /// The store directory (created if missing).
    #[arg(long)]
    pub store: std::path::PathBuf,
    /// The node-to-node address.
    #[arg(long, default_value = "127.0.0.1:26257")]
    pub listen_addr: String,
    /// The node-to-node address peers dial, if not --listen-addr (e.g. when listening on
    /// 0.0.0.0).
    #[arg(long)]
    pub advertise_addr: Option<String>,
    /// The HTTP API address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http_addr: String,
    /// The PostgreSQL wire protocol address (psql, drivers); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:15432")]
    pub pg_addr: String,
    /// Nodes to contact to find the cluster: their --listen-addr, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub join: Vec<String>,
    /// How long an empty store waits for any --join address to answer.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub join_timeout: Duration,
    /// How long a node may miss its liveness heartbeats before it counts as dead and its
    /// replicas are replaced elsewhere.
    #[arg(long, default_value = "4s", value_parser = parse_positive_duration)]
    pub liveness_timeout: Duration,
    /// How often the replicate and split queues look at the ranges this node leads.
    #[arg(long, default_value = "2s", value_parser = parse_positive_duration)]
    pub queue_interval: Duration,
    /// How long after a node's liveness record expired its replicas are replaced elsewhere.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub dead_node_grace: Duration,
    /// TESTING ONLY: serve /v1/test/* (clock offset, message faults, replica list) for the
    /// Jepsen harness.
    #[arg(long)]
    pub enable_test_hooks: bool,
    /// TESTING ONLY, UNSAFE: answer /v1/kv/get from the local replica without a lease, so
    /// reads may be stale (proves the Jepsen checker catches them).
    #[arg(long, requires = "enable_test_hooks")]
    pub unsafe_stale_reads: bool,
    /// TESTING ONLY, UNSAFE: transactions coordinated by this node skip read refresh, so they
    /// are not serializable (proves the Jepsen list-append checker catches it).
    #[arg(long, requires = "enable_test_hooks")]
    pub unsafe_skip_refresh: bool,
}

/// The node to talk to.
#[derive(Args, Clone)]
pub struct HostArgs {
    /// The node's HTTP address.
    #[arg(long, global = true, default_value = "127.0.0.1:8080")]
    pub host: String,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Lists the cluster's nodes with liveness, replica and lease counts.
    Status {
        #[command(flatten)]
        host: HostArgs,
        /// Prints JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Moves every replica off node ID, reporting progress until none is left.
    Decommission {
        /// The node.
        id: u64,
        #[command(flatten)]
        host: HostArgs,
        /// Returns once the node is marked, without waiting for its replicas to move.
        #[arg(long)]
        no_wait: bool,
    },
    /// Makes a decommissioning node a full member again.
    Recommission {
        /// The node.
        id: u64,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Moves every lease off node ID, reporting progress until none is left.
    Drain {
        /// The node.
        id: u64,
        #[command(flatten)]
        host: HostArgs,
        /// Returns once the node is marked, without waiting for its leases to move.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Reads and writes keys through the node's /v1/kv API.
    Kv {
        #[command(subcommand)]
        op: commands::KvOp,
        #[command(flatten)]
        host: HostArgs,
        /// Keys and values are base64 (in arguments and output) instead of UTF-8.
        #[arg(long, global = true)]
        base64: bool,
    },
    /// Lists every range: span, replicas, leaseholder, size, QPS, Raft indexes, follower lag.
    Ranges {
        #[command(flatten)]
        host: HostArgs,
        /// Lists the busiest ranges and their hottest keys instead.
        #[arg(long)]
        hot: bool,
        /// Prints JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Lists the cluster settings, or sets NAME to VALUE.
    Settings {
        /// The setting to change.
        name: Option<String>,
        /// Its new value.
        #[arg(requires = "name")]
        value: Option<u64>,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Splits the range holding KEY at KEY (manual split).
    Split {
        /// The first key of the new right-hand range.
        key: String,
        #[command(flatten)]
        host: HostArgs,
        /// KEY is base64 instead of UTF-8.
        #[arg(long)]
        base64: bool,
    },
}

/// [`parse_duration`], refusing zero (an interval of zero would be a busy loop).
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("must be more than zero".into()),
        duration => Ok(duration),
    }
}

/// Parses `500ms`, `2s`, `1m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) =
        text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration like 500ms, 2s or 1m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(60 * n)),
        _ => Err(format!("{text:?} has an unknown unit (use ms, s or m)")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Start(args) => start::run(args).await,
            Command::Init(host) => commands::init(&host.host).await,
            Command::Node(NodeCommand::Status { host, json }) => {
                commands::node_status(&host.host, json).await
            }
            Command::Debug(DebugCommand::Kv { op, host, base64 }) => {
                commands::kv(&host.host, op, base64).await
            }
            Command::Debug(DebugCommand::Split { key, host, base64 }) => {
                commands::split(&host.host, &key, base64).await
            }
            Command::Debug(DebugCommand::Ranges { host, hot, json }) => {
                ops::ranges(&host.host, hot, json).await
            }
            Command::Debug(DebugCommand::Settings { name, value, host }) => match (name, value) {
                (Some(name), Some(value)) => ops::settings(&host.host, Some((name, value))).await,
                (Some(name), None) => Err(format!("give a value to set {name} to")),
                _ => ops::settings(&host.host, None).await,
            },
            Command::Node(NodeCommand::Decommission { id, host, no_wait }) => {
                ops::decommission(&host.host, id, no_wait).await
            }
            Command::Node(NodeCommand::Recommission { id, host }) => {
                ops::recommission(&host.host, id).await
            }
            Command::Node(NodeCommand::Drain { id, host, no_wait }) => {
                ops::drain(&host.host, id, no_wait).await
            }
            Command::Workload(WorkloadCommand::Kv(args)) => workload::run(args).await,
            Command::Workload(WorkloadCommand::Bank(args)) => workload_bank::run(args).await,
            Command::Workload(WorkloadCommand::Tpcb(args)) => workload_tpcb::run(args).await,
            Command::Workload(WorkloadCommand::TpchData(args)) => workload_tpch::run(args),
            Command::Sql(args) => shell::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // The shell prints its own errors and returns an empty message.
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_or_say_why_not() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("1h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
