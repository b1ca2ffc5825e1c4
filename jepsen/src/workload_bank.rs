//! The bank workloads: transfers between accounts and reads of every balance, over SQL,
//! checked by [`crate::checker::bank`] (the total never changes, no balance goes negative).
//!
//! Two layouts of the same accounts:
//!
//! ```text
//!   bank         accounts (id INT PRIMARY KEY, balance INT)   one row per account, in two
//!                                                             ranges (split at 4) to start
//!   bank-tables  accounts_0 .. accounts_7 (id, balance)       one table per account
//! ```
//!
//! A transfer `[from, to, amount]` is one request, so one transaction. It moves the money only
//! if the source holds enough; both updates test the source's balance as it was before either
//! ran, so they agree on whether to move it:
//!
//! ```text
//!   UPDATE <to>   SET balance = balance + $amount WHERE id = $to   AND (<from's balance>) >= $amount
//!   UPDATE <from> SET balance = balance - $amount WHERE id = $from AND balance >= $amount
//! ```
//!
//! A read is one `SELECT` of every balance (a UNION-free read of every table for bank-tables:
//! one statement per table, all in one transaction).

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::{Map, Value, json};

use crate::workload::{Generate, Outcome, Perform, Recorder, WorkloadOptions, drive};

/// Accounts.
pub const ACCOUNTS: u64 = 8;
/// Each account's opening balance.
pub const INITIAL: i64 = 100;
/// The single table of `bank`.
pub const TABLE: &str = "accounts";
/// The table name prefix of `bank-tables` (`accounts_0`, ...).
pub const TABLE_PREFIX: &str = "accounts_";

/// Where the accounts live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One table, one row per account.
    OneTable,
    /// One table per account.
    TablePerAccount,
}

impl Layout {
    fn table(self, account: u64) -> String {
        match self {
            Layout::OneTable => TABLE.to_string(),
            Layout::TablePerAccount => format!("{TABLE_PREFIX}{account}"),
        }
    }
}

/// The statements that create and fill the accounts.
pub fn setup_statements(layout: Layout) -> Vec<String> {
    match layout {
        Layout::OneTable => {
            let rows: Vec<String> = (0..ACCOUNTS).map(|id| format!("({id}, {INITIAL})")).collect();
            // Two ranges to start with, so transfers cross ranges; the split nemesis splits
            // at the other accounts as the run goes.
            vec![
                format!("CREATE TABLE {TABLE} (id INT PRIMARY KEY, balance INT NOT NULL)"),
                format!("INSERT INTO {TABLE} VALUES {}", rows.join(", ")),
                format!("ALTER TABLE {TABLE} SPLIT AT VALUES ({})", ACCOUNTS / 2),
            ]
        }
        Layout::TablePerAccount => (0..ACCOUNTS)
            .flat_map(|id| {
                let table = layout.table(id);
                [
                    format!("CREATE TABLE {table} (id INT PRIMARY KEY, balance INT NOT NULL)"),
                    format!("INSERT INTO {table} VALUES ({id}, {INITIAL})"),
                ]
            })
            .collect(),
    }
}

/// Runs the workload until `until`: one operation in four is a read.
pub async fn run(layout: Layout, options: WorkloadOptions, recorder: Recorder, until: Instant) {
    let generate: Generate = Arc::new(|rng: &mut SmallRng| {
        if rng.random_range(0..4) == 0 {
            return ("read".to_string(), Value::Null);
        }
        let from = rng.random_range(0..ACCOUNTS);
        let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
        ("transfer".to_string(), json!([from, to, rng.random_range(1..=5)]))
    });
    let perform: Perform = Arc::new(move |client, host, f, value| {
        Box::pin(async move { perform(layout, &client, &host, &f, &value).await })
    });
    drive(&options, recorder, until, generate, perform).await;
}

fn transfer_statements(
    layout: Layout,
    from: u64,
    to: u64,
    amount: u64,
) -> Vec<(String, Vec<Value>)> {
    let (from_table, to_table) = (layout.table(from), layout.table(to));
    let args = vec![json!(from), json!(to), json!(amount)];
    vec![
        (
            format!(
                "UPDATE {to_table} SET balance = balance + $3::INT WHERE id = $2::INT \
                 AND (SELECT balance FROM {from_table} WHERE id = $1::INT) >= $3::INT"
            ),
            args.clone(),
        ),
        (
            format!(
                "UPDATE {from_table} SET balance = balance - $3::INT WHERE id = $1::INT \
                 AND balance >= $3::INT AND $2::INT >= 0"
            ),
            args,
        ),
    ]
}

fn read_statements(layout: Layout) -> Vec<(String, Vec<Value>)> {
    match layout {
        Layout::OneTable => vec![(format!("SELECT id, balance FROM {TABLE}"), vec![])],
        Layout::TablePerAccount => (0..ACCOUNTS)
            .map(|id| (format!("SELECT id, balance FROM {}", layout.table(id)), vec![]))
            .collect(),
    }
}

async fn perform(
    layout: Layout,
    client: &reqwest::Client,
    host: &str,
    f: &str,
    value: &Value,
) -> Outcome {
    let statements = match (f, value.as_array().map(Vec::as_slice)) {
        ("read", _) => read_statements(layout),
        ("transfer", Some([from, to, amount])) => {
            match (from.as_u64(), to.as_u64(), amount.as_u64()) {
                (Some(from), Some(to), Some(amount)) => {
                    transfer_statements(layout, from, to, amount)
                }
                _ => return Outcome::Fail(format!("not a transfer: {value}")),
            }
        }
        _ => return Outcome::Fail(format!("unknown operation {f} {value}")),
    };
    let results = match crate::sql::transaction(client, host, &statements).await {
        Ok(results) => results,
        Err(outcome) => return outcome,
    };
    if f == "transfer" {
        return Outcome::Ok(value.clone());
    }
    let mut balances = Map::new();
    for row in results.iter().filter_map(|r| r["rows"].as_array()).flatten() {
        match (row[0].as_u64(), row[1].as_i64()) {
            (Some(id), Some(balance)) => {
                balances.insert(id.to_string(), json!(balance));
            }
            // Committed, but unreadable: the checker must not guess.
            _ => return Outcome::Info(format!("an unreadable balance row: {row}")),
        }
    }
    Outcome::Ok(Value::Object(balances))
}
