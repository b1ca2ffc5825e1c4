//! The monotonic checker: a counter built from read-then-insert transactions must grow by one
//! at a time, in commit-timestamp order and in real-time order.
//!
//! Each `inc` is one SQL transaction that reads the table's largest `val` and inserts the next
//! one together with its own commit timestamp (`cluster_logical_timestamp()`), returning both.
//! Once the nemesis has healed the cluster, one final `read` lists every row:
//!
//! ```text
//!   inc   invoke  null
//!   inc   ok      [3, "1795345800331500031.0000000002"]    val, sts ("<wall nanos>.<logical>")
//!   inc   fail    null                                      certainly not inserted
//!   inc   info    null                                      perhaps inserted
//!   read  invoke  null
//!   read  ok      [[1, "…"], [3, "…"], [2, "…"]]          every row, in any order
//! ```
//!
//! Under serializability each `inc` sees every earlier committed `inc`, so the rows must be a
//! chain. The verdict names each way the chain can break:
//!
//! ```text
//!   an ok inc's (val, sts) is not in the read exactly              lost
//!   more rows unexplained by ok incs than incs that ended info      unexpected
//!   two rows, or two ok incs, with one val or one sts               duplicates
//!   the read's vals are not exactly 1..=max                         gaps
//!   by sts, a later row has a smaller val (adjacent pairs)          timestamp_order
//!   A was acknowledged before B was invoked, yet A.val >= B.val     realtime
//!   no ok final read, unparsable values or timestamps               malformed
//! ```
//!
//! Timestamps compare as the tuple (wall, logical), never as strings: `"9.0000000002"` is
//! earlier than `"10.0000000001"`. Each pair of rows is reported under one name only: two rows
//! with equal vals or equal timestamps are duplicates, and `timestamp_order` looks only at
//! pairs where both strictly differ.
//!
//! The history must be in time order (the harness records it so); the real-time check walks it
//! once, remembering for each open `inc` the largest val acknowledged before its invocation.
//!
//! Out of scope: which failed or uncertain `inc` produced which unmatched row (their values are
//! `null`, so only the count of unmatched rows is bounded), and reads other than the last `ok`
//! one (earlier reads may fail while the cluster heals).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::checker::{EXAMPLES, note};
use crate::history::{Op, OpType, Process};

/// How many members of one group of duplicates a message names.
const DUPLICATES_NAMED: usize = 10;

/// A hybrid-logical-clock commit timestamp, as `cluster_logical_timestamp()` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Wall-clock nanoseconds.
    pub wall: u64,
    /// The logical counter that orders events within one wall-clock value.
    pub logical: u64,
}

impl Timestamp {
    /// Parses `"<wall>.<logical>"` (decimal digits on both sides; the logical part is printed
    /// with 10 digits, but any count is accepted since only the numbers matter).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let (wall, logical) = text.split_once('.')?;
        // `u64::from_str` also accepts a leading `+`, which the database never prints.
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(wall) || !digits(logical) {
            return None;
        }
        Some(Timestamp { wall: wall.parse().ok()?, logical: logical.parse().ok()? })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:010}", self.wall, self.logical)
    }
}

impl Serialize for Timestamp {
    // As the database prints it, so that reports can be compared with its output.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One row of the counter table: a value and the commit timestamp of the `inc` that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Row {
    /// The counter value.
    pub val: u64,
    /// The commit timestamp.
    pub sts: Timestamp,
}

impl Row {
    /// Parses `[val, "sts"]`.
    pub fn parse(value: &Value) -> Result<Row, String> {
        let Some([val, sts]) = value.as_array().map(Vec::as_slice) else {
            return Err(format!("{value} is not [val, \"sts\"]"));
        };
        let val = val.as_u64().ok_or(format!("val {val} is not a non-negative integer"))?;
        // The workload inserts coalesce(max(val), 0) + 1: a 0 cannot be a row it wrote.
        if val == 0 {
            return Err("val 0: the counter starts at 1".into());
        }
        let sts = sts
            .as_str()
            .and_then(Timestamp::parse)
            .ok_or(format!("sts {sts} is not a \"<wall>.<logical>\" string"))?;
        Ok(Row { val, sts })
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.val, self.sts)
    }
}

/// What the checker concluded.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verdict {
    /// `inc`s invoked.
    pub incs: usize,
    /// `inc`s acknowledged.
    pub ok_incs: usize,
    /// `inc`s whose outcome is unknown (ended `info`, or never completed).
    pub info_incs: usize,
    /// Rows in the final read.
    pub rows: usize,
    /// Rows matching no acknowledged `inc`; up to `info_incs` of them are legitimate.
    pub unmatched: usize,
    /// Acknowledged `inc`s missing from the read or read with another timestamp (the first 100).
    pub lost: Vec<String>,
    /// When `unmatched` exceeds `info_incs`: the unmatched rows (the first 100; which of them
    /// the uncertain `inc`s explain is unknowable).
    pub unexpected: Vec<Row>,
    /// Vals or timestamps shared by two rows, or by two acknowledged `inc`s (the first 100).
    pub duplicates: Vec<String>,
    /// Vals missing from `1..=max` in the read (the first 100).
    pub gaps: Vec<u64>,
    /// Adjacent rows in timestamp order whose vals decrease (the first 100).
    pub timestamp_order: Vec<String>,
    /// `inc`s whose val is not above one acknowledged before they were invoked (the first 100).
    pub realtime: Vec<String>,
    /// Problems with the history itself (no final read, say; the first 100).
    pub malformed: Vec<String>,
}

impl Verdict {
    /// True when the rows form one chain agreeing with timestamps and real time, nothing
    /// acknowledged is missing and nothing unasked for appeared.
    pub fn valid(&self) -> bool {
        self.lost.is_empty()
            && self.unexpected.is_empty()
            && self.duplicates.is_empty()
            && self.gaps.is_empty()
            && self.timestamp_order.is_empty()
            && self.realtime.is_empty()
            && self.malformed.is_empty()
    }
}

/// An `inc` invoked and not yet completed.
struct OpenInc {
    /// Its invocation's history index.
    index: u64,
    /// The largest (val, completion index) acknowledged before it was invoked: its val must be
    /// larger.
    floor: Option<(u64, u64)>,
}

/// An acknowledged `inc`.
struct OkInc {
    /// Its completion's history index.
    index: u64,
    /// What it inserted.
    row: Row,
}

/// Checks a monotonic history: `inc` ops returning `[val, "sts"]` and a final `read` of every
/// row.
pub fn check(history: &[Op]) -> Verdict {
    let mut verdict = Verdict::default();
    let mut open: HashMap<u64, OpenInc> = HashMap::new();
    // The largest (val, completion index) acknowledged so far, in time order.
    let mut acknowledged_max: Option<(u64, u64)> = None;
    let mut ok_incs: Vec<OkInc> = Vec::new();
    let mut final_read: Option<Vec<Row>> = None;
    for op in history {
        let Process::Client(process) = op.process else { continue };
        match (op.f.as_str(), op.op_type) {
            ("inc", OpType::Invoke) => {
                verdict.incs += 1;
                let fresh = OpenInc { index: op.index, floor: acknowledged_max };
                if let Some(earlier) = open.insert(process, fresh) {
                    let problem = format!(
                        "op {}: process {process} invoked an inc while op {} was open",
                        op.index, earlier.index
                    );
                    note(&mut verdict.malformed, problem);
                }
            }
            ("inc", completion) => {
                let Some(invocation) = open.remove(&process) else {
                    let problem = format!("op {}: completes no inc of process {process}", op.index);
                    note(&mut verdict.malformed, problem);
                    continue;
                };
                match completion {
                    OpType::Ok => {
                        verdict.ok_incs += 1;
                        let row = match Row::parse(&op.value) {
                            Ok(row) => row,
                            Err(e) => {
                                note(&mut verdict.malformed, format!("op {}: {e}", op.index));
                                continue;
                            }
                        };
                        if let Some((floor, floor_index)) = invocation.floor
                            && floor >= row.val
                        {
                            let problem = format!(
                                "the inc invoked at op {} and acknowledged at op {} got val {}, \
                                 but op {floor_index} had already acknowledged val {floor}",
                                invocation.index, op.index, row.val
                            );
                            note(&mut verdict.realtime, problem);
                        }
                        acknowledged_max = acknowledged_max.max(Some((row.val, op.index)));
                        ok_incs.push(OkInc { index: op.index, row });
                    }
                    OpType::Info => verdict.info_incs += 1,
                    // Failed: certainly not inserted. (An invoke was matched above.)
                    OpType::Fail | OpType::Invoke => {}
                }
            }
            ("read", OpType::Ok) => {
                let Some(values) = op.value.as_array() else {
                    let problem =
                        format!("op {}: read {} is not a list of rows", op.index, op.value);
                    note(&mut verdict.malformed, problem);
                    continue;
                };
                // Keep the parsable rows: one bad row should not hide what the others show.
                let mut rows = Vec::with_capacity(values.len());
                for value in values {
                    match Row::parse(value) {
                        Ok(row) => rows.push(row),
                        Err(e) => note(&mut verdict.malformed, format!("op {}: {e}", op.index)),
                    }
                }
                final_read = Some(rows);
            }
            _ => {}
        }
    }
    // Never completed: as uncertain as info.
    verdict.info_incs += open.len();

    let acknowledged = "acknowledged incs";
    report_shared(&ok_incs, |inc| inc.row.val, acknowledged, "val", describe_inc, &mut verdict);
    report_shared(&ok_incs, |inc| inc.row.sts, acknowledged, "sts", describe_inc, &mut verdict);

    let Some(rows) = final_read else {
        note(&mut verdict.malformed, "no successful final read".into());
        return verdict;
    };
    verdict.rows = rows.len();
    report_shared(&rows, |row| row.val, "read rows", "val", Row::to_string, &mut verdict);
    report_shared(&rows, |row| row.sts, "read rows", "sts", Row::to_string, &mut verdict);
    lost(&ok_incs, &rows, &mut verdict);
    unexpected(&ok_incs, &rows, &mut verdict);
    gaps(&rows, &mut verdict);
    timestamp_order(rows, &mut verdict);
    verdict
}

fn describe_inc(inc: &OkInc) -> String {
    format!("{} (op {})", inc.row, inc.index)
}

/// Reports, as duplicates, each value of `key` that more than one of `items` has.
fn report_shared<T, K: Ord + fmt::Display>(
    items: &[T],
    key: impl Fn(&T) -> K,
    context: &str,
    what: &str,
    describe: impl Fn(&T) -> String,
    verdict: &mut Verdict,
) {
    let mut groups: BTreeMap<K, Vec<&T>> = BTreeMap::new();
    for item in items {
        groups.entry(key(item)).or_default().push(item);
    }
    for (shared, group) in groups.into_iter().filter(|(_, group)| group.len() > 1) {
        let named: Vec<String> = group.iter().take(DUPLICATES_NAMED).map(|t| describe(t)).collect();
        let problem =
            format!("{} {context} share {what} {shared}: {}", group.len(), named.join(", "));
        note(&mut verdict.duplicates, problem);
    }
}

/// Every acknowledged `inc` must be in the read with the timestamp it returned.
fn lost(ok_incs: &[OkInc], rows: &[Row], verdict: &mut Verdict) {
    let read: HashSet<Row> = rows.iter().copied().collect();
    let mut read_by_val: HashMap<u64, Vec<Timestamp>> = HashMap::new();
    for row in rows {
        read_by_val.entry(row.val).or_default().push(row.sts);
    }
    for inc in ok_incs.iter().filter(|inc| !read.contains(&inc.row)) {
        let problem = match read_by_val.get(&inc.row.val).and_then(|sts| sts.first()) {
            Some(other) => format!(
                "op {}: val {} committed at {}, but the read has it at {other}",
                inc.index, inc.row.val, inc.row.sts
            ),
            None => format!("op {}: {} is missing from the read", inc.index, inc.row),
        };
        note(&mut verdict.lost, problem);
    }
}

/// Rows matching no acknowledged `inc` must be few enough for the uncertain `inc`s to explain.
fn unexpected(ok_incs: &[OkInc], rows: &[Row], verdict: &mut Verdict) {
    // A multiset: one acknowledged inc explains one row, not two identical ones.
    let mut explainable: HashMap<Row, usize> = HashMap::new();
    for inc in ok_incs {
        *explainable.entry(inc.row).or_default() += 1;
    }
    let mut unmatched = Vec::new();
    for row in rows {
        match explainable.get_mut(row) {
            Some(count) if *count > 0 => *count -= 1,
            _ => unmatched.push(*row),
        }
    }
    verdict.unmatched = unmatched.len();
    if unmatched.len() > verdict.info_incs {
        verdict.unexpected = unmatched.into_iter().take(EXAMPLES).collect();
    }
}

/// The read's vals must be exactly `1..=max`.
fn gaps(rows: &[Row], verdict: &mut Verdict) {
    let vals: BTreeSet<u64> = rows.iter().map(|row| row.val).collect();
    let mut expected = 1;
    for val in vals {
        // `take` keeps this bounded even if a garbage val is huge.
        let room = EXAMPLES - verdict.gaps.len();
        verdict.gaps.extend((expected..val).take(room));
        expected = val.saturating_add(1);
    }
}

/// In timestamp order, vals must increase.
fn timestamp_order(mut rows: Vec<Row>, verdict: &mut Verdict) {
    rows.sort_by_key(|row| (row.sts, row.val));
    for pair in rows.windows(2) {
        let [earlier, later] = pair else { continue };
        // Equal timestamps or equal vals are duplicates, reported already.
        if earlier.sts < later.sts && earlier.val > later.val {
            let problem = format!(
                "val {} committed at {}, before val {} at {}",
                earlier.val, earlier.sts, later.val, later.sts
            );
            note(&mut verdict.timestamp_order, problem);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(index: u64, process: u64, op_type: OpType, f: &str, value: Value) -> Op {
        let process = Process::Client(process);
        Op { index, time: index, process, op_type, f: f.into(), value, node: None, error: None }
    }

    /// The timestamp with wall time `wall` and logical counter 0.
    fn sts(wall: u64) -> String {
        format!("{wall}.0000000000")
    }

    /// An `inc` by `process` invoked at `start`, acknowledged at `end` with `[val, sts(wall)]`.
    fn inc(start: u64, end: u64, process: u64, val: u64, wall: u64) -> Vec<Op> {
        vec![
            op(start, process, OpType::Invoke, "inc", Value::Null),
            op(end, process, OpType::Ok, "inc", json!([val, sts(wall)])),
        ]
    }

    /// The final read, at indexes 1000 and 1001.
    fn read(rows: &[(u64, u64)]) -> Vec<Op> {
        let rows: Vec<Value> = rows.iter().map(|&(val, wall)| json!([val, sts(wall)])).collect();
        vec![
            op(1000, 99, OpType::Invoke, "read", Value::Null),
            op(1001, 99, OpType::Ok, "read", Value::Array(rows)),
        ]
    }

    /// The history's ops sorted by index (time), as the harness records them.
    fn history(parts: Vec<Vec<Op>>) -> Vec<Op> {
        let mut ops = parts.concat();
        ops.sort_by_key(|op| op.index);
        ops
    }

    /// The kinds of problem a verdict reports.
    fn kinds(verdict: &Verdict) -> Vec<&'static str> {
        let lists = [
            ("lost", verdict.lost.is_empty()),
            ("unexpected", verdict.unexpected.is_empty()),
            ("duplicates", verdict.duplicates.is_empty()),
            ("gaps", verdict.gaps.is_empty()),
            ("timestamp_order", verdict.timestamp_order.is_empty()),
            ("realtime", verdict.realtime.is_empty()),
            ("malformed", verdict.malformed.is_empty()),
        ];
        lists.into_iter().filter(|(_, empty)| !empty).map(|(kind, _)| kind).collect()
    }

    #[test]
    fn timestamps_compare_as_numbers_not_strings() {
        let earlier = Timestamp::parse("9.0000000002").expect("parses");
        let later = Timestamp::parse("10.0000000001").expect("parses");
        assert!(earlier < later);
        assert_eq!(later, Timestamp { wall: 10, logical: 1 });
        assert_eq!(
            Timestamp::parse("1795345800331500031.0000000002").map(|t| t.to_string()),
            Some("1795345800331500031.0000000002".to_string())
        );
        for bad in ["", "12", ".1", "1.", "+1.0", "1.-2", "1.2.3", "x.0", "99999999999999999999.0"]
        {
            assert_eq!(Timestamp::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_chain_of_incs_with_uncertain_and_failed_ones_is_valid() {
        let ops = history(vec![
            inc(0, 1, 1, 1, 100),
            // Two concurrent incs: either order is fine.
            inc(2, 5, 1, 3, 300),
            inc(3, 4, 2, 2, 200),
            // Uncertain but committed: explains the unmatched row 4.
            vec![op(6, 3, OpType::Invoke, "inc", Value::Null)],
            vec![op(7, 3, OpType::Info, "inc", Value::Null)],
            // Failed: no row.
            vec![op(8, 4, OpType::Invoke, "inc", Value::Null)],
            vec![op(9, 4, OpType::Fail, "inc", Value::Null)],
            inc(10, 11, 5, 5, 500),
            // Uncertain and never completed, not committed.
            vec![op(12, 6, OpType::Invoke, "inc", Value::Null)],
            vec![Op { process: Process::NEMESIS, ..op(13, 0, OpType::Info, "heal", Value::Null) }],
            // A read that failed while the cluster healed.
            vec![op(14, 98, OpType::Invoke, "read", Value::Null)],
            vec![op(15, 98, OpType::Fail, "read", Value::Null)],
            read(&[(3, 300), (1, 100), (4, 400), (2, 200), (5, 500)]),
        ]);
        let verdict = check(&ops);
        assert!(verdict.valid(), "{verdict:?}");
        let counters = (verdict.incs, verdict.ok_incs, verdict.info_incs, verdict.rows);
        assert_eq!(counters, (7, 4, 2, 5));
        assert_eq!(verdict.unmatched, 1);
    }

    #[test]
    fn an_acknowledged_inc_missing_or_rewritten_is_lost() {
        let incs = vec![inc(0, 1, 1, 1, 100), inc(2, 3, 1, 2, 200), inc(4, 5, 1, 3, 300)];
        let verdict = check(&history([incs.clone(), vec![read(&[(1, 100), (2, 200)])]].concat()));
        assert_eq!(kinds(&verdict), ["lost"]);
        assert_eq!(verdict.lost, ["op 5: 3@300.0000000000 is missing from the read"]);

        // Val 2 read with another timestamp; an uncertain inc explains the unmatched row.
        let uncertain = vec![
            op(6, 2, OpType::Invoke, "inc", Value::Null),
            op(7, 2, OpType::Info, "inc", Value::Null),
        ];
        let rewritten = read(&[(1, 100), (2, 250), (3, 300)]);
        let verdict = check(&history([incs, vec![uncertain, rewritten]].concat()));
        assert_eq!(kinds(&verdict), ["lost"]);
        assert_eq!(
            verdict.lost,
            ["op 3: val 2 committed at 200.0000000000, but the read has it at 250.0000000000"]
        );
    }

    #[test]
    fn rows_beyond_what_uncertain_incs_explain_are_unexpected() {
        let incs = vec![inc(0, 1, 1, 1, 100), inc(2, 3, 1, 2, 200)];
        let verdict =
            check(&history([incs.clone(), vec![read(&[(1, 100), (2, 200), (3, 300)])]].concat()));
        assert_eq!(kinds(&verdict), ["unexpected"]);
        assert_eq!(verdict.unmatched, 1);
        assert_eq!(verdict.unexpected, [Row { val: 3, sts: Timestamp { wall: 300, logical: 0 } }]);

        // One uncertain inc explains one such row.
        let uncertain = vec![op(4, 2, OpType::Invoke, "inc", Value::Null)];
        let read_3 = read(&[(1, 100), (2, 200), (3, 300)]);
        assert!(check(&history([incs.clone(), vec![uncertain.clone(), read_3]].concat())).valid());
        let read_4 = read(&[(1, 100), (2, 200), (3, 300), (4, 400)]);
        let verdict = check(&history([incs, vec![uncertain, read_4]].concat()));
        assert_eq!(kinds(&verdict), ["unexpected"]);
        assert_eq!((verdict.unmatched, verdict.unexpected.len()), (2, 2));
    }

    #[test]
    fn shared_vals_and_timestamps_are_duplicates() {
        // Two concurrent incs both read max 1 and inserted 2: a lost update.
        let same_val = history(vec![
            inc(0, 1, 1, 1, 100),
            inc(2, 5, 1, 2, 200),
            inc(3, 4, 2, 2, 201),
            read(&[(1, 100), (2, 200), (2, 201)]),
        ]);
        let verdict = check(&same_val);
        assert_eq!(kinds(&verdict), ["duplicates"]);
        assert_eq!(
            verdict.duplicates,
            [
                "2 acknowledged incs share val 2: 2@201.0000000000 (op 4), 2@200.0000000000 (op 5)",
                "2 read rows share val 2: 2@200.0000000000, 2@201.0000000000",
            ]
        );

        let same_sts = history(vec![
            inc(0, 1, 1, 1, 100),
            inc(2, 5, 1, 2, 200),
            inc(3, 4, 2, 3, 200),
            read(&[(1, 100), (2, 200), (3, 200)]),
        ]);
        let verdict = check(&same_sts);
        assert_eq!(kinds(&verdict), ["duplicates"]);
        assert_eq!(verdict.duplicates.len(), 2, "{:?}", verdict.duplicates);
        assert!(verdict.duplicates[1].starts_with("2 read rows share sts 200.0000000000"));
    }

    #[test]
    fn missing_vals_are_gaps() {
        let ops =
            history(vec![inc(0, 1, 1, 1, 100), inc(2, 3, 1, 4, 400), read(&[(1, 100), (4, 400)])]);
        let verdict = check(&ops);
        assert_eq!(kinds(&verdict), ["gaps"]);
        assert_eq!(verdict.gaps, [2, 3]);

        // A huge val does not make the list (or the time to build it) huge.
        let huge = u64::MAX - 1;
        let ops = history(vec![inc(0, 1, 1, huge, 100), read(&[(huge, 100)])]);
        assert_eq!(check(&ops).gaps.len(), EXAMPLES);
    }

    #[test]
    fn vals_decreasing_in_timestamp_order_are_reported() {
        // Concurrent, so real time allows either order; the timestamps do not.
        let ops =
            history(vec![inc(0, 3, 1, 1, 200), inc(1, 2, 2, 2, 100), read(&[(1, 200), (2, 100)])]);
        let verdict = check(&ops);
        assert_eq!(kinds(&verdict), ["timestamp_order"]);
        assert_eq!(
            verdict.timestamp_order,
            ["val 2 committed at 100.0000000000, before val 1 at 200.0000000000"]
        );
    }

    #[test]
    fn a_smaller_val_after_an_acknowledged_larger_one_breaks_real_time() {
        // Val 2 acknowledged at op 1; the inc invoked at op 2 got val 1. The timestamps agree
        // with the vals, so only real time is violated.
        let ops = history(vec![
            inc(0, 1, 1, 2, 200),
            inc(2, 3, 1, 1, 100),
            // Concurrent with both: constrained by neither.
            inc(4, 9, 2, 4, 400),
            inc(5, 6, 1, 3, 300),
            read(&[(1, 100), (2, 200), (3, 300), (4, 400)]),
        ]);
        let verdict = check(&ops);
        assert_eq!(kinds(&verdict), ["realtime"]);
        assert_eq!(
            verdict.realtime,
            ["the inc invoked at op 2 and acknowledged at op 3 got val 1, but op 1 had already \
              acknowledged val 2"]
        );
    }

    #[test]
    fn malformed_histories_are_reported_not_panicked_on() {
        let incs = vec![inc(0, 1, 1, 1, 100)];
        let verdict = check(&history(incs.clone()));
        assert_eq!(verdict.malformed, ["no successful final read"]);
        assert!(!verdict.valid());

        let ops = history(vec![
            incs[0].clone(),
            vec![op(2, 2, OpType::Invoke, "inc", Value::Null)],
            vec![op(3, 2, OpType::Ok, "inc", json!([2, "not a timestamp"]))],
            vec![op(4, 3, OpType::Invoke, "inc", Value::Null)],
            vec![op(5, 3, OpType::Ok, "inc", json!("garbage"))],
            vec![op(6, 4, OpType::Ok, "inc", json!([3, sts(300)]))],
            vec![op(7, 5, OpType::Invoke, "inc", Value::Null)],
            vec![op(8, 5, OpType::Invoke, "inc", Value::Null)],
            vec![op(9, 5, OpType::Ok, "inc", json!([0, sts(400)]))],
            vec![op(10, 9, OpType::Ok, "read", json!({"rows": []}))],
            vec![op(11, 9, OpType::Ok, "read", json!([[1, sts(100)], [2, 17], "x"]))],
        ]);
        let verdict = check(&ops);
        assert_eq!(verdict.malformed.len(), 8, "{:#?}", verdict.malformed);
        // The parsable row of the read still counts.
        assert_eq!(verdict.rows, 1);
        assert!(!verdict.valid());
    }
}
