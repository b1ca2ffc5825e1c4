//! The sequential checker: writes acknowledged in order must be seen in that order.
//!
//! A logical key `k` has [`SUBKEYS`] subkeys, subkey `i` stored in table `seq_i` (so in
//! different ranges, likely on different nodes). A `write` inserts subkey 0, then 1, and so on,
//! each in its own transaction, waiting for each acknowledgement before sending the next and
//! stopping at the first that does not succeed. A `read` reads them in the opposite order,
//! the last subkey first, each in its own transaction:
//!
//! ```text
//!   write  invoke  [k, null]
//!   write  ok      [k, 5]                 every subkey acknowledged
//!   write  info    [k, 2] or [k, null]    subkeys 0 and 1 acknowledged, the next uncertain
//!   write  fail    [k, 0] or [k, null]
//!   read   invoke  [k, null]
//!   read   ok      [k, [true, true, false, false, false]]    subkey i present?
//! ```
//!
//! Subkey `i` was acknowledged before subkey `i + 1` was written, and a read looks at subkey
//! `i` after it looked at subkey `i + 1`; so a read that saw subkey `j` must see every subkey
//! before it (sequential consistency across keys, which serializability implies here):
//!
//! ```text
//!   [true, true, true, true, true]        fine (counted in nonempty_reads)
//!   [true, true, false, false, false]     fine: concurrent with the write (partial_reads)
//!   [false, false, false, false, false]   fine: before the write
//!   [true, false, true, false, false]     NON-SEQUENTIAL: subkey 2 without subkey 1
//!   any subkey of a key never written     UNEXPECTED
//! ```
//!
//! Reads take the flags' length from the list itself, so the check does not depend on
//! [`SUBKEYS`]. Only `ok` reads are judged; writes matter only through which keys they name.
//!
//! Out of scope: whether a subkey seen belongs to a write that failed (a failed write may
//! have been acknowledged for its first subkeys before failing, so `fail` does not mean
//! nothing was written), and reads that did not complete `ok`.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::checker::note;
use crate::history::{Op, OpType, Process};

/// How many subkeys a logical key has: the workload writes tables `seq_0` to `seq_4`.
pub const SUBKEYS: usize = 5;

/// One read that broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRead {
    /// Its completion's history index.
    pub index: u64,
    /// The logical key.
    pub key: u64,
    /// Which subkeys it saw.
    pub flags: Vec<bool>,
}

/// What the checker concluded.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verdict {
    /// Writes invoked.
    pub writes: usize,
    /// Writes acknowledged (every subkey written).
    pub ok_writes: usize,
    /// Reads invoked.
    pub reads: usize,
    /// Reads completed `ok`.
    pub ok_reads: usize,
    /// Ok reads that saw at least one subkey: how much the test actually tested.
    pub nonempty_reads: usize,
    /// Ok reads that saw the first subkeys but not all, as a read concurrent with the write
    /// may.
    pub partial_reads: usize,
    /// Ok reads that saw a subkey but not one written before it (the first 100).
    pub non_sequential: Vec<BadRead>,
    /// Ok reads that saw a subkey of a key no write was invoked for (the first 100).
    pub unexpected: Vec<BadRead>,
    /// Problems with the history itself (the first 100).
    pub malformed: Vec<String>,
}

impl Verdict {
    /// True when every read saw a prefix of the subkeys, of keys that were written.
    pub fn valid(&self) -> bool {
        self.non_sequential.is_empty() && self.unexpected.is_empty() && self.malformed.is_empty()
    }
}

/// Checks a sequential history: `write` and `read` ops on logical keys.
pub fn check(history: &[Op]) -> Verdict {
    let mut verdict = Verdict::default();
    // Open invocations by process, with their key (`None`: unparsable, reported already).
    let mut open: HashMap<u64, (&Op, Option<u64>)> = HashMap::new();
    let mut written: HashSet<u64> = HashSet::new();
    // Every ok read, judged at the end (as a `BadRead` only if it is one).
    let mut ok_reads: Vec<BadRead> = Vec::new();
    for op in history {
        let Process::Client(process) = op.process else { continue };
        if op.f != "write" && op.f != "read" {
            continue;
        }
        let key = match key_of(&op.value) {
            Ok(key) => Some(key),
            Err(e) => {
                note(&mut verdict.malformed, format!("op {}: {e}", op.index));
                None
            }
        };
        if op.op_type == OpType::Invoke {
            if op.f == "write" {
                verdict.writes += 1;
                written.extend(key);
            } else {
                verdict.reads += 1;
            }
            // Opened even with a bad key, so that its completion is not reported as well.
            if let Some((earlier, _)) = open.insert(process, (op, key)) {
                let problem = format!(
                    "op {}: process {process} invoked while op {} was open",
                    op.index, earlier.index
                );
                note(&mut verdict.malformed, problem);
            }
            continue;
        }
        let Some((invocation, invoked_key)) = open.remove(&process) else {
            let problem = format!("op {}: completes nothing of process {process}", op.index);
            note(&mut verdict.malformed, problem);
            continue;
        };
        if invocation.f != op.f {
            let problem = format!(
                "op {}: a {} completes the {} of op {}",
                op.index, op.f, invocation.f, invocation.index
            );
            note(&mut verdict.malformed, problem);
            continue;
        }
        match (op.f.as_str(), op.op_type) {
            ("write", OpType::Ok) => verdict.ok_writes += 1,
            ("read", OpType::Ok) => verdict.ok_reads += 1,
            _ => {}
        }
        let (Some(invoked_key), Some(key)) = (invoked_key, key) else { continue };
        if invoked_key != key {
            let problem = format!(
                "op {}: completes key {key}, but op {} invoked key {invoked_key}",
                op.index, invocation.index
            );
            note(&mut verdict.malformed, problem);
            continue;
        }
        if op.f == "read" && op.op_type == OpType::Ok {
            match flags(&op.value) {
                Ok(flags) => ok_reads.push(BadRead { index: op.index, key, flags }),
                Err(e) => note(&mut verdict.malformed, format!("op {}: {e}", op.index)),
            }
        }
    }
    // Judged once every write is known: a read may see a write invoked after it was (the
    // write's invocation and the read's run concurrently).
    for read in ok_reads {
        if !read.flags.iter().any(|&seen| seen) {
            continue;
        }
        verdict.nonempty_reads += 1;
        if !written.contains(&read.key) {
            note(&mut verdict.unexpected, read.clone());
        }
        // A prefix has no absent subkey followed by a present one.
        let sequential = read.flags.windows(2).all(|pair| pair[0] || !pair[1]);
        if !sequential {
            note(&mut verdict.non_sequential, read);
        } else if !read.flags.iter().all(|&seen| seen) {
            verdict.partial_reads += 1;
        }
    }
    verdict
}

/// The key of `[k, ...]`.
fn key_of(value: &Value) -> Result<u64, String> {
    match value.as_array().map(Vec::as_slice) {
        Some([key, _]) => key.as_u64().ok_or(format!("key {key} is not a non-negative integer")),
        _ => Err(format!("{value} is not [key, value]")),
    }
}

/// The flags of `[k, [b0, b1, ...]]`.
fn flags(value: &Value) -> Result<Vec<bool>, String> {
    let flags = match value.as_array().map(Vec::as_slice) {
        Some([_, flags]) => flags.as_array(),
        _ => None,
    };
    flags
        .and_then(|flags| flags.iter().map(Value::as_bool).collect())
        .ok_or(format!("{value} is not [key, [bool, ...]]"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(index: u64, process: u64, op_type: OpType, f: &str, value: Value) -> Op {
        let process = Process::Client(process);
        Op { index, time: index, process, op_type, f: f.into(), value, node: None, error: None }
    }

    /// A write of `key` by `process` at `index` and `index + 1`, ending `outcome` with `n`.
    fn write(index: u64, process: u64, key: u64, outcome: OpType, n: Value) -> Vec<Op> {
        vec![
            op(index, process, OpType::Invoke, "write", json!([key, null])),
            op(index + 1, process, outcome, "write", json!([key, n])),
        ]
    }

    /// An ok read of `key` by `process` at `index` and `index + 1`, seeing `flags`.
    fn read(index: u64, process: u64, key: u64, flags: &[bool]) -> Vec<Op> {
        vec![
            op(index, process, OpType::Invoke, "read", json!([key, null])),
            op(index + 1, process, OpType::Ok, "read", json!([key, flags])),
        ]
    }

    const ALL: [bool; SUBKEYS] = [true; SUBKEYS];
    const NONE: [bool; SUBKEYS] = [false; SUBKEYS];

    #[test]
    fn reads_of_prefixes_are_valid() {
        let history = [
            read(0, 2, 1, &NONE),
            write(2, 1, 1, OpType::Ok, json!(SUBKEYS)),
            // Concurrent with the write of key 2: sees its first two subkeys.
            vec![op(4, 1, OpType::Invoke, "write", json!([2, null]))],
            read(5, 2, 2, &[true, true, false, false, false]),
            vec![op(7, 1, OpType::Info, "write", json!([2, 3]))],
            read(8, 2, 1, &ALL),
            write(10, 3, 3, OpType::Fail, json!(0)),
            write(12, 3, 4, OpType::Info, Value::Null),
            read(14, 2, 3, &NONE),
            // Another length of flags is accepted.
            read(16, 2, 1, &[true, true, true]),
            vec![Op { process: Process::NEMESIS, ..op(18, 0, OpType::Info, "kill", json!("n1")) }],
            vec![op(19, 4, OpType::Invoke, "read", json!([1, null]))],
            vec![op(20, 4, OpType::Fail, "read", json!([1, null]))],
        ]
        .concat();
        let verdict = check(&history);
        assert!(verdict.valid(), "{verdict:?}");
        let counters = (verdict.writes, verdict.ok_writes, verdict.reads, verdict.ok_reads);
        assert_eq!(counters, (4, 1, 6, 5));
        assert_eq!((verdict.nonempty_reads, verdict.partial_reads), (3, 1));
    }

    #[test]
    fn a_subkey_seen_without_an_earlier_one_is_non_sequential() {
        let history = [
            write(0, 1, 7, OpType::Ok, json!(SUBKEYS)),
            read(2, 2, 7, &[true, false, true, true, true]),
            read(4, 2, 7, &[false, false, false, false, true]),
        ]
        .concat();
        let verdict = check(&history);
        assert!(!verdict.valid());
        assert!(verdict.unexpected.is_empty() && verdict.malformed.is_empty());
        let expected = [
            BadRead { index: 3, key: 7, flags: vec![true, false, true, true, true] },
            BadRead { index: 5, key: 7, flags: vec![false, false, false, false, true] },
        ];
        assert_eq!(verdict.non_sequential, expected);
        assert_eq!((verdict.nonempty_reads, verdict.partial_reads), (2, 0));
    }

    #[test]
    fn a_subkey_of_a_key_never_written_is_unexpected() {
        let history = [
            write(0, 1, 1, OpType::Ok, json!(SUBKEYS)),
            read(2, 2, 9, &[true, false, false, false, false]),
        ]
        .concat();
        let verdict = check(&history);
        assert!(!verdict.valid());
        assert!(verdict.non_sequential.is_empty() && verdict.malformed.is_empty());
        assert_eq!(
            verdict.unexpected,
            [BadRead { index: 3, key: 9, flags: vec![true, false, false, false, false] }]
        );

        // A write invoked after the read began still explains it.
        let history = [read(0, 2, 9, &ALL), write(1, 1, 9, OpType::Ok, json!(SUBKEYS))].concat();
        assert!(check(&history).valid());
    }

    #[test]
    fn malformed_histories_are_reported_not_panicked_on() {
        let history = vec![
            op(0, 1, OpType::Invoke, "read", json!([1, null])),
            op(1, 1, OpType::Ok, "read", json!([1, [true, "yes"]])),
            op(2, 1, OpType::Invoke, "read", json!("key 1")),
            op(3, 1, OpType::Ok, "read", json!([1, [true]])),
            op(4, 2, OpType::Ok, "read", json!([1, [true]])),
            op(5, 3, OpType::Invoke, "read", json!([1, null])),
            op(6, 3, OpType::Ok, "read", json!([2, [true]])),
            op(7, 4, OpType::Invoke, "write", json!([1, null])),
            op(8, 4, OpType::Ok, "read", json!([1, [true]])),
            op(9, 5, OpType::Invoke, "write", json!([-1, null])),
            op(10, 5, OpType::Invoke, "read", json!([1, null])),
            op(11, 5, OpType::Ok, "read", json!([1, 5])),
        ];
        let verdict = check(&history);
        assert_eq!(verdict.malformed.len(), 8, "{:#?}", verdict.malformed);
        assert!(!verdict.valid());
    }
}
