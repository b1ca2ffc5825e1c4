//! The G2 checker: a probe for write skew, Adya's G2 (anti-dependency cycle), after Jepsen's
//! CockroachDB g2 test.
//!
//! Two tables `ga` and `gb`, both `(id INT PRIMARY KEY, k INT, v INT)`. For each key `k` two
//! `insert`s run concurrently, one per table, each one transaction:
//!
//! ```sql
//!   INSERT INTO <table> (id, k, v) SELECT $id, $k, 30
//!   WHERE NOT EXISTS (SELECT 1 FROM ga WHERE k = $k AND v % 3 = 0)
//!     AND NOT EXISTS (SELECT 1 FROM gb WHERE k = $k AND v % 3 = 0)
//! ```
//!
//! Each insert reads the predicate over both tables and writes only if it saw nothing. Under
//! serializability one of the two runs second and sees the other's row, so at most one insert
//! per key succeeds; two succeeding means each missed the other's write, an rw anti-dependency
//! in both directions:
//!
//! ```text
//!   insert  invoke  [k, "a", id]
//!   insert  ok      [k, "a", id, true]     the row was inserted
//!   insert  ok      [k, "b", id, false]    the predicate saw a row: nothing inserted
//!   insert  fail    [k, "a", id]           certainly nothing inserted
//!   insert  info    [k, "b", id]           perhaps inserted
//!
//!   per key:  ok true + ok false       fine (counted in contended_keys)
//!             ok true + fail or info   fine
//!             ok true + ok true        G2: write skew
//!             ok false, and no ok true
//!               and no info insert     PHANTOM: it saw a row nobody wrote
//! ```
//!
//! Invocations never completed count as `info`: they may have committed.
//!
//! Out of scope: which of two committed inserts came first (the verdict needs none), rows
//! from other keys (the predicate names the key), and a read of the tables afterwards (the
//! inserts' own results suffice).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::checker::note;
use crate::history::{Op, OpType, Process};

/// One insert: which table and which row id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Insert {
    /// `"a"` (table `ga`) or `"b"` (table `gb`).
    pub table: String,
    /// The row's primary key.
    pub id: u64,
}

/// A key with more than one committed insert: write skew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkewedKey {
    /// The key.
    pub key: u64,
    /// The inserts that each reported inserting their row.
    pub inserted: Vec<Insert>,
}

/// A key whose inserts saw a row that no insert could have written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhantomKey {
    /// The key.
    pub key: u64,
    /// The acknowledged inserts that saw a row and so inserted nothing.
    pub saw_a_row: Vec<Insert>,
}

/// What the checker concluded.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verdict {
    /// Distinct keys inserted into.
    pub keys: usize,
    /// Inserts invoked.
    pub inserts: usize,
    /// Inserts acknowledged (whether they inserted or saw a row).
    pub ok_inserts: usize,
    /// Acknowledged inserts that inserted their row.
    pub inserted: usize,
    /// Keys with two or more acknowledged inserts: both outcomes known, where write skew could
    /// show.
    pub contended_keys: usize,
    /// How many keys had more than one insert insert its row.
    pub skewed_keys: usize,
    /// Keys where more than one insert inserted its row (the first 100).
    pub g2: Vec<SkewedKey>,
    /// Keys where an insert saw a row that no committed or uncertain insert wrote (the first
    /// 100).
    pub phantom: Vec<PhantomKey>,
    /// Problems with the history itself (the first 100).
    pub malformed: Vec<String>,
}

impl Verdict {
    /// True when no key had two inserts succeed and no insert saw a row from nowhere.
    pub fn valid(&self) -> bool {
        self.g2.is_empty() && self.phantom.is_empty() && self.malformed.is_empty()
    }
}

/// What became of one key's inserts.
#[derive(Default)]
struct KeyOutcomes {
    /// Acknowledged, and inserted their row.
    inserted: Vec<Insert>,
    /// Acknowledged, and saw a row.
    saw_a_row: Vec<Insert>,
    /// Ended `info` or never completed: may have inserted their row.
    uncertain: usize,
}

/// An insert invoked and not yet completed.
struct OpenInsert {
    /// Its invocation's history index.
    index: u64,
    /// Its key and insert (`None`: unparsable, reported already).
    insert: Option<(u64, Insert)>,
}

/// Checks a G2 history: `insert` ops, two per key.
pub fn check(history: &[Op]) -> Verdict {
    let mut verdict = Verdict::default();
    let mut open: HashMap<u64, OpenInsert> = HashMap::new();
    // Ordered, so that reports list keys in order.
    let mut keys: BTreeMap<u64, KeyOutcomes> = BTreeMap::new();
    for op in history.iter().filter(|op| op.f == "insert") {
        let Process::Client(process) = op.process else { continue };
        if op.op_type == OpType::Invoke {
            verdict.inserts += 1;
            let insert = match parse_invocation(&op.value) {
                Ok((key, insert)) => {
                    keys.entry(key).or_default();
                    Some((key, insert))
                }
                Err(e) => {
                    note(&mut verdict.malformed, format!("op {}: {e}", op.index));
                    None
                }
            };
            // Opened even when unparsable, so that its completion is not reported as well.
            if let Some(earlier) = open.insert(process, OpenInsert { index: op.index, insert }) {
                let problem = format!(
                    "op {}: process {process} invoked while op {} was open",
                    op.index, earlier.index
                );
                note(&mut verdict.malformed, problem);
            }
            continue;
        }
        let Some(OpenInsert { index: invoked_at, insert }) = open.remove(&process) else {
            let problem = format!("op {}: completes nothing of process {process}", op.index);
            note(&mut verdict.malformed, problem);
            continue;
        };
        if op.op_type == OpType::Ok {
            verdict.ok_inserts += 1;
        }
        let Some((key, insert)) = insert else { continue };
        match op.op_type {
            OpType::Ok => {
                let inserted = match parse_completion(&op.value, key, &insert) {
                    Ok(inserted) => inserted,
                    Err(e) => {
                        let problem = format!("op {} (invoked at op {invoked_at}): {e}", op.index);
                        note(&mut verdict.malformed, problem);
                        continue;
                    }
                };
                let outcomes = keys.entry(key).or_default();
                if inserted {
                    verdict.inserted += 1;
                    outcomes.inserted.push(insert);
                } else {
                    outcomes.saw_a_row.push(insert);
                }
            }
            OpType::Info => keys.entry(key).or_default().uncertain += 1,
            // Failed: certainly nothing inserted. (An invoke was handled above.)
            OpType::Fail | OpType::Invoke => {}
        }
    }
    // Never completed: as uncertain as info.
    for open_insert in open.into_values() {
        if let Some((key, _)) = open_insert.insert {
            keys.entry(key).or_default().uncertain += 1;
        }
    }

    verdict.keys = keys.len();
    for (key, outcomes) in keys {
        if outcomes.inserted.len() + outcomes.saw_a_row.len() >= 2 {
            verdict.contended_keys += 1;
        }
        if outcomes.inserted.len() > 1 {
            verdict.skewed_keys += 1;
            note(&mut verdict.g2, SkewedKey { key, inserted: outcomes.inserted });
        } else if !outcomes.saw_a_row.is_empty()
            && outcomes.inserted.is_empty()
            && outcomes.uncertain == 0
        {
            note(&mut verdict.phantom, PhantomKey { key, saw_a_row: outcomes.saw_a_row });
        }
    }
    verdict
}

/// `[k, "a"|"b", id]` → the key and the insert.
fn parse_invocation(value: &Value) -> Result<(u64, Insert), String> {
    match value.as_array().map(Vec::as_slice) {
        Some([key, table, id]) => parse_insert(key, table, id),
        _ => Err(format!("{value} is not [key, table, id]")),
    }
}

/// `[k, "a"|"b", id, inserted]` → `inserted`, once `k`, table and id match the invocation's.
fn parse_completion(value: &Value, invoked_key: u64, invoked: &Insert) -> Result<bool, String> {
    let Some([key, table, id, inserted]) = value.as_array().map(Vec::as_slice) else {
        return Err(format!("{value} is not [key, table, id, inserted]"));
    };
    let (key, insert) = parse_insert(key, table, id)?;
    if (key, &insert) != (invoked_key, invoked) {
        return Err(format!("{value} does not match the invocation's key, table and id"));
    }
    inserted.as_bool().ok_or(format!("inserted {inserted} is not a bool"))
}

fn parse_insert(key: &Value, table: &Value, id: &Value) -> Result<(u64, Insert), String> {
    let key = key.as_u64().ok_or(format!("key {key} is not a non-negative integer"))?;
    let table = match table.as_str() {
        Some(name @ ("a" | "b")) => name.to_string(),
        _ => return Err(format!("table {table} is not \"a\" or \"b\"")),
    };
    let id = id.as_u64().ok_or(format!("id {id} is not a non-negative integer"))?;
    Ok((key, Insert { table, id }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(index: u64, process: u64, op_type: OpType, f: &str, value: Value) -> Op {
        let process = Process::Client(process);
        Op { index, time: index, process, op_type, f: f.into(), value, node: None, error: None }
    }

    /// Both inserts of `key`, concurrent, by processes `2 * key` and `2 * key + 1`, with ids
    /// `10 * key` (table a) and `10 * key + 1` (table b); `None` as an outcome: `fail`, `Some`:
    /// `ok` with that `inserted`. Ops from index `10 * key`.
    fn pair(key: u64, a: Outcome, b: Outcome) -> Vec<Op> {
        let index = key * 10;
        let mut ops = Vec::new();
        for (i, (table, outcome)) in [("a", a), ("b", b)].into_iter().enumerate() {
            let process = key * 2 + i as u64;
            let id = key * 10 + i as u64;
            ops.push(op(
                index + i as u64,
                process,
                OpType::Invoke,
                "insert",
                json!([key, table, id]),
            ));
            let completion = match outcome {
                Outcome::Ok(inserted) => {
                    op(0, process, OpType::Ok, "insert", json!([key, table, id, inserted]))
                }
                Outcome::Fail => op(0, process, OpType::Fail, "insert", json!([key, table, id])),
                Outcome::Info => op(0, process, OpType::Info, "insert", json!([key, table, id])),
                Outcome::Open => continue,
            };
            ops.push(Op { index: index + 2 + i as u64, time: index + 2 + i as u64, ..completion });
        }
        ops
    }

    #[derive(Clone, Copy)]
    enum Outcome {
        Ok(bool),
        Fail,
        Info,
        Open,
    }
    use Outcome::{Fail, Info, Open};

    fn insert(table: &str, id: u64) -> Insert {
        Insert { table: table.into(), id }
    }

    #[test]
    fn at_most_one_insert_per_key_is_valid() {
        let history = [
            pair(1, Outcome::Ok(true), Outcome::Ok(false)),
            pair(2, Outcome::Ok(false), Outcome::Ok(true)),
            pair(3, Outcome::Ok(true), Fail),
            // The row seen may be the uncertain insert's.
            pair(4, Info, Outcome::Ok(false)),
            pair(5, Outcome::Ok(false), Open),
            pair(6, Fail, Fail),
            vec![Op { process: Process::NEMESIS, ..op(99, 0, OpType::Info, "kill", json!("n1")) }],
        ]
        .concat();
        let verdict = check(&history);
        assert!(verdict.valid(), "{verdict:?}");
        let counters = (verdict.keys, verdict.inserts, verdict.ok_inserts, verdict.inserted);
        assert_eq!(counters, (6, 12, 7, 3));
        assert_eq!(verdict.contended_keys, 2);
    }

    #[test]
    fn two_inserts_of_a_key_both_succeeding_are_g2() {
        let history = [
            pair(1, Outcome::Ok(true), Outcome::Ok(false)),
            pair(2, Outcome::Ok(true), Outcome::Ok(true)),
        ]
        .concat();
        let verdict = check(&history);
        assert!(!verdict.valid());
        assert!(verdict.phantom.is_empty() && verdict.malformed.is_empty());
        assert_eq!(
            verdict.g2,
            [SkewedKey { key: 2, inserted: vec![insert("a", 20), insert("b", 21)] }]
        );
        assert_eq!((verdict.inserted, verdict.contended_keys, verdict.skewed_keys), (3, 2, 1));
    }

    #[test]
    fn a_row_seen_that_nobody_wrote_is_a_phantom() {
        let history = [
            pair(1, Outcome::Ok(false), Fail),
            pair(2, Outcome::Ok(false), Outcome::Ok(false)),
            pair(3, Outcome::Ok(true), Outcome::Ok(false)),
        ]
        .concat();
        let verdict = check(&history);
        assert!(!verdict.valid());
        assert!(verdict.g2.is_empty() && verdict.malformed.is_empty());
        assert_eq!(
            verdict.phantom,
            [
                PhantomKey { key: 1, saw_a_row: vec![insert("a", 10)] },
                PhantomKey { key: 2, saw_a_row: vec![insert("a", 20), insert("b", 21)] },
            ]
        );
    }

    #[test]
    fn malformed_histories_are_reported_not_panicked_on() {
        let history = vec![
            op(0, 1, OpType::Invoke, "insert", json!([1, "c", 10])),
            op(1, 1, OpType::Ok, "insert", json!([1, "c", 10, true])),
            op(2, 2, OpType::Invoke, "insert", json!([1, "a", 11])),
            op(3, 2, OpType::Ok, "insert", json!([1, "a", 11, "yes"])),
            op(4, 3, OpType::Invoke, "insert", json!([1, "b", 12])),
            op(5, 3, OpType::Ok, "insert", json!([1, "b", 13, false])),
            op(6, 4, OpType::Ok, "insert", json!([1, "b", 14, false])),
            op(7, 5, OpType::Invoke, "insert", json!(null)),
            op(8, 5, OpType::Invoke, "insert", json!([-1, "a", 15])),
            op(9, 6, OpType::Invoke, "insert", json!([2, "a", 16])),
            op(10, 6, OpType::Ok, "insert", json!([2, "a", 16])),
        ];
        let verdict = check(&history);
        assert_eq!(verdict.malformed.len(), 8, "{:#?}", verdict.malformed);
        assert!(!verdict.valid());
    }
}
