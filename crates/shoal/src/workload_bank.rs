//! `shoal workload bank`: money moves between accounts in transactions; the total never
//! changes and no balance goes below zero.
//!
//! ```text
//!   setup    --accounts N accounts of --balance each, in one transaction; --ranges R splits
//!            the accounts into R ranges
//!   clients  loop until the duration ends {
//!              from, to, amount = random; POST /v1/txn [get from, get to]        (opens it)
//!              balance < amount? rollback : POST /v1/txn [put from, put to] + commit
//!              restart (HTTP 409)? count its reason and run the transfer again
//!            }
//!   report   transfers/s, latency of whole transfers (with their restarts) p50/p90/p99/max,
//!            restarts by reason, errors; then it checks the total and that no balance is
//!            negative
//! ```
//!
//! It is the shape of toyDB's bank workload (read two balances, move money if there is
//! enough), so the two can be compared on one machine.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::{Value, json};

use crate::client::{ClientError, NodeClient};
use crate::workload_txn::{Outcome, TxnWorkload, report, run_clients};

/// Flags of `shoal workload bank`.
#[derive(Args, Clone)]
pub struct BankArgs {
    /// Shoal HTTP addresses; clients are spread over them.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:8080")]
    pub hosts: Vec<String>,
    /// Concurrent clients, each with one transfer in flight.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Number of accounts.
    #[arg(long, default_value_t = 1000)]
    pub accounts: usize,
    /// Initial balance of each account.
    #[arg(long, default_value_t = 100)]
    pub balance: i64,
    /// The largest amount one transfer moves.
    #[arg(long, default_value_t = 50)]
    pub max_transfer: i64,
    /// Split the accounts into this many ranges before starting (1: no splits).
    #[arg(long, default_value_t = 1)]
    pub ranges: usize,
    /// Seed of the clients' random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn account(i: usize) -> String {
    format!("bank/{i:06}")
}

/// Transfers between random accounts.
struct Bank {
    accounts: usize,
    max_transfer: i64,
}

impl TxnWorkload for Bank {
    async fn attempt(&self, node: &NodeClient, rng: &mut SmallRng) -> Result<Outcome, ClientError> {
        let from = rng.random_range(0..self.accounts);
        let to = (from + rng.random_range(1..self.accounts)) % self.accounts;
        let amount = rng.random_range(1..=self.max_transfer.max(1));
        transfer(node, from, to, amount).await
    }

    fn restart_reason(&self, error: &ClientError) -> Option<String> {
        match error {
            ClientError::Api { status: 409, body, .. } => {
                Some(body.get("reason").and_then(Value::as_str).unwrap_or("unknown").to_string())
            }
            _ => None,
        }
    }
}

fn balance_of(result: &Value) -> Result<i64, String> {
    result["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("an account without a balance: {result}"))
}

/// One attempt at a transfer.
async fn transfer(
    node: &NodeClient,
    from: usize,
    to: usize,
    amount: i64,
) -> Result<Outcome, ClientError> {
    let read =
        json!({"ops": [{"op": "get", "key": account(from)}, {"op": "get", "key": account(to)}]});
    let answer = node.post("/v1/txn", read).await?;
    let txn = answer["txn"].clone();
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    let balances = results.iter().map(balance_of).collect::<Result<Vec<_>, _>>();
    let (from_balance, to_balance) = match balances.as_deref() {
        Ok([from, to]) => (*from, *to),
        _ => {
            let _ = node.post("/v1/txn", json!({"txn": txn, "rollback": true})).await;
            let reason = format!("the balances came back as {answer}");
            return Err(ClientError::Protocol { host: "the node".into(), reason });
        }
    };
    if from_balance < amount {
        node.post("/v1/txn", json!({"txn": txn, "rollback": true})).await?;
        return Ok(Outcome::Refused);
    }
    let write = json!({"txn": txn, "commit": true, "ops": [
        {"op": "put", "key": account(from), "value": (from_balance - amount).to_string()},
        {"op": "put", "key": account(to), "value": (to_balance + amount).to_string()},
    ]});
    node.post("/v1/txn", write).await?;
    Ok(Outcome::Done)
}

/// Creates the accounts (if they are not there) and splits them into ranges.
async fn setup(node: &NodeClient, args: &BankArgs) -> Result<(), String> {
    for chunk in (0..args.accounts).collect::<Vec<_>>().chunks(1000) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"op": "put", "key": account(*i), "value": args.balance.to_string()}))
            .collect();
        node.post("/v1/txn", json!({"ops": ops, "commit": true}))
            .await
            .map_err(|e| e.to_string())?;
    }
    for r in 1..args.ranges {
        let key = account(r * args.accounts / args.ranges);
        match node.post("/v1/admin/split", json!({"key": key})).await {
            Ok(_) => {}
            // Already split there by an earlier run.
            Err(ClientError::Api { status: 400, .. }) => {}
            Err(e) => return Err(format!("splitting at {key}: {e}")),
        }
    }
    Ok(())
}

/// Reads every balance in one transaction.
async fn balances(node: &NodeClient, accounts: usize) -> Result<Vec<i64>, String> {
    let scan = json!({"ops": [{"op": "scan", "start": "bank/", "end": "bank0", "limit": accounts}], "commit": true});
    let answer = node.post("/v1/txn", scan).await.map_err(|e| e.to_string())?;
    let rows = answer["results"][0]["rows"].as_array().cloned().unwrap_or_default();
    rows.iter().map(|row| balance_of(&json!({"value": row["value"]}))).collect()
}

/// Runs `shoal workload bank`.
pub async fn run(args: BankArgs) -> Result<(), String> {
    if args.accounts < 2 || args.concurrency == 0 || args.hosts.is_empty() || args.ranges == 0 {
        return Err(
            "--accounts must be at least 2; --concurrency, --ranges, --hosts non-empty".into()
        );
    }
    let nodes: Vec<NodeClient> = args.hosts.iter().map(|h| NodeClient::new(h)).collect();
    setup(&nodes[0], &args).await?;
    let total = args.balance * args.accounts as i64;
    println!(
        "workload bank: {} accounts of {} over {} ranges, {} clients, {:?}, hosts {}",
        args.accounts,
        args.balance,
        args.ranges,
        args.concurrency,
        args.duration,
        args.hosts.join(",")
    );
    let bank = Arc::new(Bank { accounts: args.accounts, max_transfer: args.max_transfer });
    let (tally, elapsed) =
        run_clients(bank, &nodes, args.concurrency, args.duration, args.seed).await?;
    report(&tally, elapsed, "transfers");
    println!("refused for lack of money: {}", tally.refused);
    let balances = balances(&nodes[0], args.accounts).await?;
    let sum: i64 = balances.iter().sum();
    let negative = balances.iter().filter(|b| **b < 0).count();
    println!(
        "check: {} accounts, total {sum} (expected {total}), {negative} negative",
        balances.len()
    );
    if sum != total || negative > 0 || balances.len() != args.accounts {
        return Err("the bank's invariants do not hold".into());
    }
    Ok(())
}
