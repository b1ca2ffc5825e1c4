//! The register checker: every key of the register workload is a compare-and-set register,
//! checked for linearizability on its own (a history is linearizable iff each object's is).
//!
//! From a history it pairs each `invoke` with its process's completion, drops what cannot
//! constrain the result (`fail` ops, which certainly did not happen, and reads with unknown
//! results), splits the rest by key and checks the keys in parallel against one deadline:
//!
//! ```text
//!   history ─▶ pair invoke/completion ─▶ by key ─▶ [k1: ops] ─▶ linear::check ─┐
//!                                              └─▶ [k2: ops] ─▶ linear::check ─┼─▶ Verdict
//! ```
//!
//! The verdict is valid only if every key is linearizable: one invalid key makes it invalid,
//! and a key whose search ran out of time makes it unknown, which does not pass either.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::linear::{self, Model, Operation, Outcome};
use crate::history::{Op, OpType, Process};

/// A register operation with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RegisterOp {
    /// Read `value` (`None`: the key was absent).
    Read(Option<i64>),
    /// Wrote the value.
    Write(i64),
    /// Replaced `.0` with `.1`.
    Cas(i64, i64),
}

/// A compare-and-set register that starts absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct CasRegister;

impl Model for CasRegister {
    type State = Option<i64>;
    type Op = RegisterOp;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(&self, state: &Option<i64>, op: &RegisterOp, known: bool) -> Option<Option<i64>> {
        match *op {
            RegisterOp::Read(value) => (value == *state).then_some(*state),
            RegisterOp::Write(value) => Some(Some(value)),
            RegisterOp::Cas(old, new) if *state == Some(old) => Some(Some(new)),
            // A CAS whose outcome is unknown may have failed its comparison: no effect.
            RegisterOp::Cas(..) if !known => Some(*state),
            RegisterOp::Cas(..) => None,
        }
    }
}

/// One key's operations, as the checker saw them (for reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyOp {
    /// The process.
    pub process: u64,
    /// History index of the invocation.
    pub invoke_index: u64,
    /// When it was invoked (ns).
    pub call: u64,
    /// When it completed (ns); `None` when the outcome is unknown.
    pub ret: Option<u64>,
    /// What it did.
    pub op: RegisterOp,
}

/// The result for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum KeyResult {
    /// Linearizable.
    Valid,
    /// Not linearizable: where the search got stuck.
    Invalid {
        /// The longest linearizable prefix (indices into the key's ops).
        longest_prefix: Vec<usize>,
        /// The op that could not be placed after it.
        stuck: usize,
    },
    /// The search ran out of time.
    Unknown,
}

/// The verdict on a whole register history.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// How many keys were checked.
    pub keys: usize,
    /// How many operations the checker used (invoke/completion pairs that were not dropped).
    pub ops: usize,
    /// How many of them completed `ok`.
    pub ok_ops: usize,
    /// Keys that are not linearizable, with their ops, in key order.
    pub invalid: BTreeMap<u64, (Vec<KeyOp>, KeyResult)>,
    /// Keys whose search ran out of time.
    pub unknown: Vec<u64>,
    /// Problems with the history itself (a completion without an invocation, say).
    pub malformed: Vec<String>,
}

impl Verdict {
    /// True only when every key is linearizable and the history was well formed.
    pub fn valid(&self) -> bool {
        self.invalid.is_empty() && self.unknown.is_empty() && self.malformed.is_empty()
    }
}

/// Checks a register history, spending at most `budget` on the search.
pub fn check(history: &[Op], budget: Duration) -> Verdict {
    let (by_key, malformed) = key_ops(history);
    let ops = by_key.values().map(Vec::len).sum();
    let ok_ops = by_key.values().flatten().filter(|op| op.ret.is_some()).count();
    let deadline = Instant::now() + budget;
    let keys: Vec<(u64, Vec<KeyOp>)> = by_key.into_iter().collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(keys.len());
    // One result per key, in key order (chunks are joined in order).
    let mut results: Vec<KeyResult> = Vec::new();
    if threads > 0 {
        let chunk = keys.len().div_ceil(threads);
        results = std::thread::scope(|scope| {
            let workers: Vec<_> = keys
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter().map(|(_, ops)| check_key(ops, deadline)).collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().expect("a checker thread panicked")).collect()
        });
    }
    let mut verdict = Verdict {
        keys: keys.len(),
        ops,
        ok_ops,
        invalid: BTreeMap::new(),
        unknown: Vec::new(),
        malformed,
    };
    for ((key, ops), result) in keys.into_iter().zip(results) {
        match result {
            KeyResult::Valid => {}
            KeyResult::Unknown => verdict.unknown.push(key),
            invalid => {
                verdict.invalid.insert(key, (ops, invalid));
            }
        }
    }
    verdict
}

/// Checks one key's operations.
pub fn check_key(ops: &[KeyOp], deadline: Instant) -> KeyResult {
    let operations: Vec<Operation<RegisterOp>> =
        ops.iter().map(|o| Operation { call: o.call, ret: o.ret, op: o.op }).collect();
    match linear::check(&CasRegister, &operations, deadline) {
        Outcome::Linearizable => KeyResult::Valid,
        Outcome::Unknown => KeyResult::Unknown,
        Outcome::NotLinearizable(v) => {
            KeyResult::Invalid { longest_prefix: v.longest_prefix, stuck: v.stuck }
        }
    }
}

/// Pairs invocations with completions and groups the usable ones by key.
fn key_ops(history: &[Op]) -> (BTreeMap<u64, Vec<KeyOp>>, Vec<String>) {
    let mut open: HashMap<u64, &Op> = HashMap::new();
    let mut by_key: BTreeMap<u64, Vec<KeyOp>> = BTreeMap::new();
    let mut malformed = Vec::new();
    let mut take = |invoke: &Op, completion: Option<&Op>, process: u64| -> Result<(), String> {
        let known = completion.filter(|c| c.op_type == OpType::Ok);
        if completion.is_some_and(|c| c.op_type == OpType::Fail) {
            return Ok(()); // certainly did not happen
        }
        let (key, op) = match invoke.f.as_str() {
            "read" => match known {
                None => return Ok(()), // an unknown read constrains nothing
                Some(done) => {
                    let (key, value) = key_and_value(&done.value)?;
                    (key, RegisterOp::Read(int_or_null(value)?))
                }
            },
            "write" => {
                let (key, value) = key_and_value(&invoke.value)?;
                (key, RegisterOp::Write(int(value)?))
            }
            "cas" => {
                let (key, value) = key_and_value(&invoke.value)?;
                match value.as_array().map(Vec::as_slice) {
                    Some([old, new]) => (key, RegisterOp::Cas(int(old)?, int(new)?)),
                    _ => return Err(format!("cas value {value} is not [old, new]")),
                }
            }
            other => return Err(format!("unknown register function {other:?}")),
        };
        by_key.entry(key).or_default().push(KeyOp {
            process,
            invoke_index: invoke.index,
            call: invoke.time,
            ret: known.map(|c| c.time),
            op,
        });
        Ok(())
    };
    for op in history {
        let Process::Client(process) = op.process else { continue };
        let result = match op.op_type {
            OpType::Invoke => match open.insert(process, op) {
                Some(earlier) => Err(format!(
                    "process {process} invoked op {} while op {} was open",
                    op.index, earlier.index
                )),
                None => Ok(()),
            },
            _ => match open.remove(&process) {
                Some(invoke) => take(invoke, Some(op), process),
                None => Err(format!("op {} completes nothing of process {process}", op.index)),
            },
        };
        if let Err(e) = result {
            malformed.push(e);
        }
    }
    // Invocations never completed: outcome unknown.
    let mut dangling: Vec<_> = open.into_iter().collect();
    dangling.sort_by_key(|(_, op)| op.index);
    for (process, invoke) in dangling {
        if let Err(e) = take(invoke, None, process) {
            malformed.push(e);
        }
    }
    (by_key, malformed)
}

fn key_and_value(value: &Value) -> Result<(u64, &Value), String> {
    match value.as_array().map(Vec::as_slice) {
        Some([key, v]) => Ok((key.as_u64().ok_or(format!("key {key} is not a number"))?, v)),
        _ => Err(format!("value {value} is not [key, value]")),
    }
}

fn int(value: &Value) -> Result<i64, String> {
    value.as_i64().ok_or(format!("{value} is not an integer"))
}

fn int_or_null(value: &Value) -> Result<Option<i64>, String> {
    if value.is_null() { Ok(None) } else { int(value).map(Some) }
}
