//! `shoal workload tpcb`: pgbench's TPC-B-like transaction over SQL, through `POST /v1/sql`.
//!
//! ```text
//!   setup    branches (--scale rows), tellers (10 per branch), accounts (--accounts-per-branch
//!            per branch), history (empty); the accounts split into --ranges ranges
//!   clients  loop until the duration ends {
//!              aid, tid, bid, delta = random
//!              BEGIN;
//!              UPDATE accounts SET abalance = abalance + delta WHERE aid = …;
//!              SELECT abalance FROM accounts WHERE aid = …;
//!              UPDATE tellers SET tbalance = tbalance + delta WHERE tid = …;
//!              UPDATE branches SET bbalance = bbalance + delta WHERE bid = …;
//!              INSERT INTO history (tid, bid, aid, delta, mtime) VALUES (…, now());
//!              COMMIT                                         (one HTTP request)
//!              40001 (HTTP 409)? count its reason and run the transaction again
//!            }
//!   report   transactions/s, latency of whole transactions (with their restarts)
//!            p50/p90/p99/max, restarts by reason, errors; then the check: the sums of the
//!            account, teller and branch balances and of the history deltas are equal, and
//!            history has one row per committed transaction
//! ```
//!
//! Every transaction updates one of only `--scale` branch rows, so with few branches the
//! branch row is the bottleneck, as in pgbench: that contention is part of what it measures.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::{Value, json};

use crate::client::{ClientError, NodeClient};
use crate::workload_txn::{Outcome, TxnWorkload, report, run_clients};

/// Flags of `shoal workload tpcb`.
#[derive(Args, Clone)]
pub struct TpcbArgs {
    /// Shoal HTTP addresses; clients are spread over them.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:8080")]
    pub hosts: Vec<String>,
    /// Concurrent clients, each with one transaction in flight.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Number of branches (pgbench's scale factor).
    #[arg(long, default_value_t = 1)]
    pub scale: usize,
    /// Accounts per branch (pgbench has 100000).
    #[arg(long, default_value_t = 10_000)]
    pub accounts_per_branch: usize,
    /// Split the accounts table into this many ranges before starting.
    #[arg(long, default_value_t = 4)]
    pub ranges: usize,
    /// Seed of the clients' random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

const TELLERS_PER_BRANCH: usize = 10;
/// Rows per INSERT while loading.
const LOAD_BATCH: usize = 500;

async fn sql(node: &NodeClient, sql: String) -> Result<Value, ClientError> {
    node.post("/v1/sql", json!({ "sql": sql })).await
}

/// Creates and fills the tables, dropping earlier ones.
async fn setup(node: &NodeClient, args: &TpcbArgs) -> Result<(), String> {
    let run = |text: String| async move { sql(node, text).await.map_err(|e| e.to_string()) };
    run("DROP TABLE IF EXISTS branches, tellers, accounts, history".into()).await?;
    run("CREATE TABLE branches (bid INT PRIMARY KEY, bbalance INT NOT NULL, filler TEXT)".into())
        .await?;
    run("CREATE TABLE tellers (tid INT PRIMARY KEY, bid INT NOT NULL, tbalance INT NOT NULL, filler TEXT)".into())
        .await?;
    run("CREATE TABLE accounts (aid INT PRIMARY KEY, bid INT NOT NULL, abalance INT NOT NULL, filler TEXT)".into())
        .await?;
    run(
        "CREATE TABLE history (tid INT, bid INT, aid INT, delta INT, mtime TIMESTAMP, filler TEXT)"
            .into(),
    )
    .await?;
    let accounts = args.scale * args.accounts_per_branch;
    if args.ranges > 1 {
        let points: Vec<String> =
            (1..args.ranges).map(|r| format!("({})", 1 + r * accounts / args.ranges)).collect();
        run(format!("ALTER TABLE accounts SPLIT AT VALUES {}", points.join(", "))).await?;
    }
    let branches: Vec<String> = (1..=args.scale).map(|b| format!("({b}, 0)")).collect();
    run(format!("INSERT INTO branches (bid, bbalance) VALUES {}", branches.join(", "))).await?;
    let tellers: Vec<String> = (1..=args.scale * TELLERS_PER_BRANCH)
        .map(|t| format!("({t}, {}, 0)", 1 + (t - 1) / TELLERS_PER_BRANCH))
        .collect();
    run(format!("INSERT INTO tellers (tid, bid, tbalance) VALUES {}", tellers.join(", "))).await?;
    for chunk in (1..=accounts).collect::<Vec<_>>().chunks(LOAD_BATCH) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|a| format!("({a}, {}, 0)", 1 + (a - 1) / args.accounts_per_branch))
            .collect();
        run(format!("INSERT INTO accounts (aid, bid, abalance) VALUES {}", rows.join(", ")))
            .await?;
    }
    Ok(())
}

/// pgbench's TPC-B-like transaction, in one request.
struct Tpcb {
    scale: usize,
    accounts_per_branch: usize,
}

impl TxnWorkload for Tpcb {
    async fn attempt(&self, node: &NodeClient, rng: &mut SmallRng) -> Result<Outcome, ClientError> {
        let aid = rng.random_range(1..=self.scale * self.accounts_per_branch);
        let tid = rng.random_range(1..=self.scale * TELLERS_PER_BRANCH);
        let bid = rng.random_range(1..=self.scale);
        let delta: i64 = rng.random_range(-5000..=5000);
        let text = format!(
            "BEGIN; \
             UPDATE accounts SET abalance = abalance + {delta} WHERE aid = {aid}; \
             SELECT abalance FROM accounts WHERE aid = {aid}; \
             UPDATE tellers SET tbalance = tbalance + {delta} WHERE tid = {tid}; \
             UPDATE branches SET bbalance = bbalance + {delta} WHERE bid = {bid}; \
             INSERT INTO history (tid, bid, aid, delta, mtime) VALUES ({tid}, {bid}, {aid}, {delta}, now()); \
             COMMIT"
        );
        sql(node, text).await.map(|_| Outcome::Done)
    }

    /// A 40001's reason, from its message (`restart transaction: <reason>: …`).
    fn restart_reason(&self, error: &ClientError) -> Option<String> {
        match error {
            ClientError::Api { status: 409, message, .. } => Some(
                message
                    .strip_prefix("restart transaction: ")
                    .and_then(|m| m.split(':').next())
                    .unwrap_or("unknown")
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// The one integer a single-value query returns (NULL as 0).
fn scalar(answer: &Value, statement: usize) -> Result<i64, String> {
    let value = &answer["results"][statement]["rows"][0][0];
    match value {
        Value::Null => Ok(0),
        v => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| format!("statement {statement} of the check answered {value}")),
    }
}

/// Runs `shoal workload tpcb`.
pub async fn run(args: TpcbArgs) -> Result<(), String> {
    if args.scale == 0
        || args.accounts_per_branch == 0
        || args.concurrency == 0
        || args.hosts.is_empty()
        || args.ranges == 0
    {
        return Err("--scale, --accounts-per-branch, --concurrency, --ranges must be positive; --hosts non-empty".into());
    }
    let nodes: Vec<NodeClient> = args.hosts.iter().map(|h| NodeClient::new(h)).collect();
    setup(&nodes[0], &args).await?;
    println!(
        "workload tpcb: {} branches, {} tellers, {} accounts over {} ranges, {} clients, {:?}, hosts {}",
        args.scale,
        args.scale * TELLERS_PER_BRANCH,
        args.scale * args.accounts_per_branch,
        args.ranges,
        args.concurrency,
        args.duration,
        args.hosts.join(",")
    );
    let tpcb = Arc::new(Tpcb { scale: args.scale, accounts_per_branch: args.accounts_per_branch });
    let (tally, elapsed) =
        run_clients(tpcb, &nodes, args.concurrency, args.duration, args.seed).await?;
    report(&tally, elapsed, "transactions");
    let (committed, ambiguous) = (tally.latencies.len() as i64, tally.ambiguous as i64);
    let check = "SELECT sum(abalance) FROM accounts; SELECT sum(tbalance) FROM tellers; \
                 SELECT sum(bbalance) FROM branches; SELECT sum(delta) FROM history; \
                 SELECT count(*) FROM history";
    let answer = sql(&nodes[0], check.into()).await.map_err(|e| e.to_string())?;
    let sums: Vec<i64> = (0..4).map(|i| scalar(&answer, i)).collect::<Result<_, _>>()?;
    let history = scalar(&answer, 4)?;
    println!(
        "check: accounts {}, tellers {}, branches {}, history {} ({history} rows for {committed} committed, {} ambiguous)",
        sums[0], sums[1], sums[2], sums[3], ambiguous
    );
    let rows_ok = history >= committed && history <= committed + ambiguous;
    if sums.iter().any(|s| *s != sums[0]) || !rows_ok {
        return Err("the TPC-B invariants do not hold".into());
    }
    Ok(())
}
