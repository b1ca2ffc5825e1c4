//! Known-bad (and known-good) list-append histories: each anomaly the checker names, built by
//! hand, must be found, and nothing must be found in a serializable history.

use serde_json::json;

use super::list_append::{Micro, Outcome, Txn, Verdict, check, check_txns};
use crate::history::{Op, OpType, Process};

fn ap(key: u64, value: u64) -> Micro {
    Micro::Append { key, value }
}

fn rd(key: u64, values: &[u64]) -> Micro {
    Micro::Read { key, values: Some(values.to_vec()) }
}

fn t(index: u64, ops: Vec<Micro>) -> Txn {
    Txn { index, outcome: Outcome::Ok, ops }
}

fn with(outcome: Outcome, index: u64, ops: Vec<Micro>) -> Txn {
    Txn { index, outcome, ops }
}

fn verdict(txns: &[Txn]) -> Verdict {
    check_txns(txns, Vec::new())
}

/// The names of the anomalies found.
fn names(verdict: &Verdict) -> Vec<&'static str> {
    verdict.anomalies.keys().copied().collect()
}

#[test]
fn a_serial_history_is_valid() {
    const X: u64 = 1;
    const Y: u64 = 2;
    let v = verdict(&[
        t(1, vec![ap(X, 1), rd(Y, &[])]),
        t(2, vec![rd(X, &[1]), ap(X, 2), ap(Y, 1)]),
        t(3, vec![rd(X, &[1, 2]), rd(Y, &[1])]),
        // Unknown outcome, seen committed: joins the graph, still no cycle.
        with(Outcome::Info, 4, vec![ap(Y, 2)]),
        t(5, vec![rd(Y, &[1, 2])]),
        // Failed and never seen: no trace.
        with(Outcome::Fail, 6, vec![ap(X, 9)]),
    ]);
    assert!(v.valid(), "{:?}", v.anomalies);
    assert_eq!((v.txns, v.ok_txns, v.graph_txns), (6, 4, 5));
    assert!(v.graph_edges >= 4, "{v:?}");
}

#[test]
fn g0_write_cycle() {
    // T1 and T2 append to x and y; x says T1 came first, y says T2 did.
    let v = verdict(&[
        t(1, vec![ap(1, 1), ap(2, 1)]),
        t(2, vec![ap(1, 2), ap(2, 2)]),
        t(3, vec![rd(1, &[1, 2]), rd(2, &[2, 1])]),
    ]);
    assert_eq!(names(&v), ["G0"]);
    let g0 = &v.anomalies["G0"][0];
    assert_eq!(g0.edges.len(), 2);
    assert!(g0.explanation.contains("-ww->"), "{}", g0.explanation);
}

#[test]
fn g1a_aborted_read() {
    let v = verdict(&[with(Outcome::Fail, 1, vec![ap(1, 1)]), t(2, vec![rd(1, &[1])])]);
    assert_eq!(names(&v), ["G1a"]);
    assert_eq!(v.anomalies["G1a"][0].txns, [1, 2]);
}

#[test]
fn g1b_intermediate_read() {
    let v = verdict(&[t(1, vec![ap(1, 1), ap(1, 2)]), t(2, vec![rd(1, &[1])])]);
    assert!(names(&v).contains(&"G1b"), "{:?}", v.anomalies);
}

#[test]
fn g1c_circular_information_flow() {
    // Each read the other's write.
    let v = verdict(&[t(1, vec![ap(1, 1), rd(2, &[1])]), t(2, vec![ap(2, 1), rd(1, &[1])])]);
    assert_eq!(names(&v), ["G1c"]);
    assert_eq!(v.anomalies["G1c"][0].edges, [super::list_append::Edge::Wr; 2]);
}

#[test]
fn g_single_read_skew() {
    // T2 sees T1's y but not its x.
    let v = verdict(&[
        t(1, vec![ap(1, 1), ap(2, 1)]),
        t(2, vec![rd(1, &[]), rd(2, &[1])]),
        t(3, vec![rd(1, &[1])]),
    ]);
    assert_eq!(names(&v), ["G-single"]);
    let cycle = &v.anomalies["G-single"][0];
    assert_eq!(cycle.edges.iter().filter(|e| **e == super::list_append::Edge::Rw).count(), 1);
}

#[test]
fn g2_write_skew() {
    // Each read the key the other then appended to, and saw it empty.
    let v = verdict(&[
        t(1, vec![rd(1, &[]), ap(2, 1)]),
        t(2, vec![rd(2, &[]), ap(1, 1)]),
        t(3, vec![rd(1, &[1]), rd(2, &[1])]),
    ]);
    assert_eq!(names(&v), ["G2"]);
    assert_eq!(v.anomalies["G2"][0].edges, [super::list_append::Edge::Rw; 2]);
}

#[test]
fn anomalies_without_cycles() {
    let v = verdict(&[
        t(1, vec![ap(1, 1)]),
        t(2, vec![ap(1, 2)]),
        t(3, vec![rd(1, &[1, 2])]),
        t(4, vec![rd(1, &[2])]),
    ]);
    assert!(names(&v).contains(&"incompatible-order"), "{:?}", v.anomalies);

    let v = verdict(&[t(1, vec![rd(1, &[]), ap(1, 1), rd(1, &[])])]);
    assert_eq!(names(&v), ["internal"]);

    let v = verdict(&[t(1, vec![rd(1, &[9])])]);
    assert_eq!(names(&v), ["garbage"]);

    let v = verdict(&[t(1, vec![ap(1, 1)]), t(2, vec![rd(1, &[1, 1])])]);
    assert!(names(&v).contains(&"duplicate-elements"), "{:?}", v.anomalies);

    let v = verdict(&[t(1, vec![ap(1, 1)]), t(2, vec![ap(1, 1)])]);
    assert_eq!(names(&v), ["duplicate-appends"]);
}

fn op(index: u64, process: Process, op_type: OpType, value: serde_json::Value) -> Op {
    Op {
        index,
        time: index * 10,
        process,
        op_type,
        f: "txn".into(),
        value,
        node: None,
        error: None,
    }
}

#[test]
fn histories_pair_invocations_with_completions() {
    let p = Process::Client;
    let history = vec![
        op(0, p(0), OpType::Invoke, json!([["append", 1, 1], ["r", 2, null]])),
        op(1, p(1), OpType::Invoke, json!([["r", 1, null]])),
        op(2, Process::NEMESIS, OpType::Info, json!("start-partition")),
        op(3, p(0), OpType::Ok, json!([["append", 1, 1], ["r", 2, []]])),
        op(4, p(1), OpType::Info, json!([["r", 1, null]])),
        op(5, p(2), OpType::Invoke, json!([["r", 1, null]])),
        op(6, p(2), OpType::Ok, json!([["r", 1, [1]]])),
        op(7, p(3), OpType::Invoke, json!([["append", 2, 5]])),
        op(8, p(3), OpType::Fail, json!([["append", 2, 5]])),
        op(9, p(4), OpType::Ok, json!([["r", 1, [1]]])),
        op(10, p(5), OpType::Invoke, json!([["fly", 1]])),
    ];
    let v = check(&history);
    assert!(v.anomalies.is_empty(), "{:?}", v.anomalies);
    assert_eq!(v.malformed.len(), 2, "{:?}", v.malformed);
    assert_eq!((v.txns, v.ok_txns), (4, 2));
    // Micro-operations round-trip through Jepsen's JSON form.
    for micro in [ap(3, 4), rd(3, &[4]), Micro::Read { key: 3, values: None }] {
        assert_eq!(Micro::parse(&micro.to_value()), Some(micro));
    }
}
