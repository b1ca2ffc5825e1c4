//! The bank checker: money moves between accounts but is never made or lost.
//!
//! Transfers move an amount between two accounts inside one transaction, only when the source
//! holds enough; reads see every balance in one transaction. Under snapshot isolation or
//! better each read must show
//!
//! ```text
//!   every account present      balances = {0: 97, 1: 103, ..., 7: 100}
//!   no balance below zero      min = 0 or more
//!   the initial total          sum = ACCOUNTS × INITIAL
//! ```
//!
//! A read that fails one of these saw a transfer half done (a dirty or fractured read) or a
//! lost update. Only `ok` reads count; transfers are not checked one by one (their effect shows
//! in the reads).
//!
//! Out of scope: which transfers took effect (the reads do not name them).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::history::{Op, OpType};

/// One read that broke an invariant.
#[derive(Debug, Clone, Serialize)]
pub struct BadRead {
    /// Its history index.
    pub index: u64,
    /// What was wrong.
    pub problem: String,
    /// The balances it saw.
    pub balances: BTreeMap<u64, i64>,
}

/// What the checker concluded.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verdict {
    /// Operations (invocations).
    pub ops: usize,
    /// Of those, completed ok.
    pub ok_ops: usize,
    /// Reads checked.
    pub reads: usize,
    /// Reads that broke an invariant (the first 20).
    pub bad_reads: Vec<BadRead>,
    /// How many reads broke an invariant.
    pub bad_read_count: usize,
    /// Problems with the history itself.
    pub malformed: Vec<String>,
}

impl Verdict {
    /// True when every read showed every account, none negative, and the initial total.
    pub fn valid(&self) -> bool {
        self.bad_read_count == 0 && self.malformed.is_empty()
    }
}

/// Checks a bank history: `accounts` accounts that started with `initial` each.
pub fn check(history: &[Op], accounts: u64, initial: i64) -> Verdict {
    let mut verdict = Verdict::default();
    let total = accounts as i64 * initial;
    for op in history.iter().filter(|op| op.f == "read" || op.f == "transfer") {
        match op.op_type {
            OpType::Invoke => verdict.ops += 1,
            OpType::Ok => verdict.ok_ops += 1,
            _ => {}
        }
        if op.f != "read" || op.op_type != OpType::Ok {
            continue;
        }
        verdict.reads += 1;
        let Some(balances) = balances(&op.value) else {
            verdict.malformed.push(format!("op {}: not a map of balances: {}", op.index, op.value));
            continue;
        };
        let sum: i64 = balances.values().sum();
        let problem = if balances.len() as u64 != accounts {
            Some(format!("{} accounts instead of {accounts}", balances.len()))
        } else if let Some((id, b)) = balances.iter().find(|(_, b)| **b < 0) {
            Some(format!("account {id} is negative ({b})"))
        } else if sum != total {
            Some(format!("the total is {sum}, not {total}"))
        } else {
            None
        };
        if let Some(problem) = problem {
            verdict.bad_read_count += 1;
            if verdict.bad_reads.len() < 20 {
                verdict.bad_reads.push(BadRead { index: op.index, problem, balances });
            }
        }
    }
    verdict
}

/// `{"0": 97, "1": 103}` → balances by account.
fn balances(value: &Value) -> Option<BTreeMap<u64, i64>> {
    value
        .as_object()?
        .iter()
        .map(|(id, balance)| Some((id.parse().ok()?, balance.as_i64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::history::Process;

    fn op(index: u64, op_type: OpType, f: &str, value: Value) -> Op {
        let process = Process::Client(index % 3);
        Op { index, time: index, process, op_type, f: f.into(), value, node: None, error: None }
    }

    #[test]
    fn reads_must_show_every_account_none_negative_and_the_total() {
        let history = vec![
            op(0, OpType::Invoke, "transfer", json!([0, 1, 5])),
            op(1, OpType::Ok, "transfer", json!([0, 1, 5])),
            op(2, OpType::Invoke, "read", Value::Null),
            op(3, OpType::Ok, "read", json!({"0": 5, "1": 15})),
            op(4, OpType::Ok, "read", json!({"0": 5, "1": 10})),
            op(5, OpType::Ok, "read", json!({"0": -1, "1": 21})),
            op(6, OpType::Ok, "read", json!({"0": 20})),
            op(7, OpType::Fail, "read", Value::Null),
        ];
        let verdict = check(&history, 2, 10);
        assert!(!verdict.valid());
        assert_eq!((verdict.ops, verdict.ok_ops, verdict.reads), (2, 5, 4));
        let problems: Vec<&str> = verdict.bad_reads.iter().map(|b| b.problem.as_str()).collect();
        assert_eq!(
            problems,
            ["the total is 15, not 20", "account 0 is negative (-1)", "1 accounts instead of 2"]
        );
        assert!(check(&history[..4], 2, 10).valid());
        let garbled = vec![op(0, OpType::Ok, "read", json!([1, 2]))];
        assert_eq!(check(&garbled, 2, 10).malformed.len(), 1);
    }
}
