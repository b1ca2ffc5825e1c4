//! The set checker: every acknowledged insert is in the final read, and nothing else is.
//!
//! Clients add unique integers; once the nemesis has healed the cluster, one final read lists
//! the set. Then, for each element:
//!
//! ```text
//!   add ok,   read has it       fine
//!   add ok,   read lacks it     LOST: an acknowledged write is gone
//!   add info, either            fine (it may or may not have happened); counted as recovered
//!   add fail, read has it       UNEXPECTED: a write that was refused took effect
//!   never added, read has it    UNEXPECTED
//! ```
//!
//! A history without a successful final read cannot be checked and is invalid.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::history::{Op, OpType, Process};

/// What the checker concluded.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verdict {
    /// Adds invoked.
    pub adds: usize,
    /// Adds acknowledged.
    pub ok_adds: usize,
    /// Elements in the final read.
    pub read: usize,
    /// Acknowledged adds missing from the final read (the first 100).
    pub lost: Vec<u64>,
    /// Elements read that were never added, or whose add failed (the first 100).
    pub unexpected: Vec<u64>,
    /// Adds of unknown outcome that the read shows happened.
    pub recovered: usize,
    /// Problems with the history itself (no final read, say).
    pub malformed: Vec<String>,
}

impl Verdict {
    /// True when nothing acknowledged was lost and nothing unasked for appeared.
    pub fn valid(&self) -> bool {
        self.lost.is_empty() && self.unexpected.is_empty() && self.malformed.is_empty()
    }
}

/// Checks a set history: `add` ops with a number, and a final `read` with the list of numbers.
pub fn check(history: &[Op]) -> Verdict {
    let mut verdict = Verdict::default();
    let clients = history.iter().filter(|op| matches!(op.process, Process::Client(_)));
    let (mut attempted, mut acknowledged, mut failed) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut final_read: Option<BTreeSet<u64>> = None;
    for op in clients {
        match (op.f.as_str(), op.op_type) {
            ("add", OpType::Invoke) => {
                verdict.adds += 1;
                attempted.extend(op.value.as_u64());
            }
            ("add", OpType::Ok) => {
                verdict.ok_adds += 1;
                acknowledged.extend(op.value.as_u64());
            }
            ("add", OpType::Fail) => failed.extend(op.value.as_u64()),
            ("read", OpType::Ok) => {
                let elements: Option<BTreeSet<u64>> =
                    op.value.as_array().and_then(|v| v.iter().map(Value::as_u64).collect());
                match elements {
                    Some(elements) => final_read = Some(elements),
                    None => verdict.malformed.push(format!("op {}: not a list", op.index)),
                }
            }
            _ => {}
        }
    }
    let Some(read) = final_read else {
        verdict.malformed.push("no successful final read".into());
        return verdict;
    };
    verdict.read = read.len();
    verdict.lost = acknowledged.difference(&read).take(100).copied().collect();
    verdict.unexpected = read
        .iter()
        .filter(|v| !attempted.contains(*v) || failed.contains(*v))
        .take(100)
        .copied()
        .collect();
    verdict.recovered = read
        .iter()
        .filter(|v| attempted.contains(*v) && !acknowledged.contains(*v) && !failed.contains(*v))
        .count();
    verdict
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(index: u64, process: u64, op_type: OpType, f: &str, value: Value) -> Op {
        let process = Process::Client(process);
        Op { index, time: index, process, op_type, f: f.into(), value, node: None, error: None }
    }

    #[test]
    fn lost_and_unexpected_elements_are_found() {
        let adds = |n: u64, outcome: OpType| {
            vec![
                op(n * 2, n, OpType::Invoke, "add", json!(n)),
                op(n * 2 + 1, n, outcome, "add", json!(n)),
            ]
        };
        let mut history: Vec<Op> = [
            adds(1, OpType::Ok),
            adds(2, OpType::Ok),
            adds(3, OpType::Info),
            adds(4, OpType::Fail),
            adds(5, OpType::Info),
        ]
        .concat();
        let read = |values: Value| {
            vec![
                op(100, 9, OpType::Invoke, "read", Value::Null),
                op(101, 9, OpType::Ok, "read", values),
            ]
        };
        let good = [history.clone(), read(json!([1, 2, 3]))].concat();
        let verdict = check(&good);
        assert!(verdict.valid(), "{verdict:?}");
        assert_eq!((verdict.adds, verdict.ok_adds, verdict.read, verdict.recovered), (5, 2, 3, 1));

        let verdict = check(&[history.clone(), read(json!([1, 4, 9]))].concat());
        assert_eq!(verdict.lost, [2]);
        assert_eq!(verdict.unexpected, [4, 9]);

        assert_eq!(check(&history).malformed, ["no successful final read"]);
        history.extend(read(json!("garbage")));
        assert_eq!(check(&history).malformed.len(), 2);
    }
}
