//! The checkers must be able to fail: known-bad histories are reported invalid, known-good
//! ones valid, and on tiny random histories the search agrees with a brute-force oracle.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::linear::{self, Model, Operation, Outcome};
use super::register::{self, CasRegister, RegisterOp};
use crate::history::{Op, OpType, Process};

use RegisterOp::{Cas, Read, Write};

fn op(call: u64, ret: Option<u64>, op: RegisterOp) -> Operation<RegisterOp> {
    Operation { call, ret, op }
}

fn outcome(ops: &[Operation<RegisterOp>]) -> Outcome {
    linear::check(&CasRegister, ops, Instant::now() + Duration::from_secs(10))
}

fn assert_invalid(ops: &[Operation<RegisterOp>]) -> linear::Violation {
    match outcome(ops) {
        Outcome::NotLinearizable(v) => v,
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn a_stale_read_is_caught() {
    let v = assert_invalid(&[
        op(0, Some(10), Write(1)),
        op(20, Some(30), Write(2)),
        op(40, Some(50), Read(Some(1))),
    ]);
    assert_eq!(v.stuck, 2, "the read is what cannot be placed");
    assert_eq!(v.longest_prefix, vec![0, 1]);
}

#[test]
fn a_lost_write_is_caught() {
    assert_invalid(&[op(0, Some(10), Write(1)), op(20, Some(30), Read(None))]);
}

#[test]
fn a_cas_on_a_stale_value_is_caught() {
    assert_invalid(&[
        op(0, Some(10), Write(1)),
        op(20, Some(30), Write(2)),
        op(40, Some(50), Cas(1, 3)),
    ]);
}

#[test]
fn two_successful_cas_from_one_value_are_caught() {
    assert_invalid(&[
        op(0, Some(10), Write(1)),
        op(20, Some(30), Cas(1, 2)),
        op(20, Some(30), Cas(1, 3)),
    ]);
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [Some(1), Some(2)] {
        let ops =
            [op(0, Some(10), Write(1)), op(20, Some(40), Write(2)), op(25, Some(30), Read(seen))];
        assert_eq!(outcome(&ops), Outcome::Linearizable, "read of {seen:?}");
    }
}

#[test]
fn operations_that_touch_are_concurrent() {
    // The read is invoked at the instant the write returns: either order is allowed.
    let ops = [op(0, Some(10), Write(1)), op(10, Some(20), Read(None))];
    assert_eq!(outcome(&ops), Outcome::Linearizable);
}

#[test]
fn an_unknown_write_may_or_may_not_take_effect() {
    let appears = [op(0, None, Write(1)), op(50, Some(60), Read(Some(1)))];
    assert_eq!(outcome(&appears), Outcome::Linearizable);
    let never = [op(0, None, Write(1)), op(50, Some(60), Read(None))];
    assert_eq!(outcome(&never), Outcome::Linearizable);
    // But it cannot take effect before it was invoked.
    let too_early = [op(0, Some(10), Read(Some(1))), op(20, None, Write(1))];
    assert_invalid(&too_early);
}

#[test]
fn an_unknown_cas_may_have_failed_its_comparison() {
    let ops = [op(0, Some(10), Write(1)), op(20, None, Cas(5, 6)), op(30, Some(40), Read(Some(1)))];
    assert_eq!(outcome(&ops), Outcome::Linearizable);
}

#[test]
fn running_out_of_time_is_unknown_not_a_pass() {
    // Many concurrent writes and a read of a value nobody wrote: the search must try a great
    // many orders before it can say no, and the deadline has already passed.
    let mut ops: Vec<_> = (0..16).map(|v| op(0, Some(100), Write(v))).collect();
    ops.push(op(200, Some(300), Read(Some(99))));
    assert_eq!(linear::check(&CasRegister, &ops, Instant::now()), Outcome::Unknown);
    assert!(matches!(outcome(&ops), Outcome::NotLinearizable(_)), "with time it says no");
}

// ---- whole histories ---------------------------------------------------------------------

struct HistoryBuilder {
    ops: Vec<Op>,
}

impl HistoryBuilder {
    fn new() -> Self {
        HistoryBuilder { ops: Vec::new() }
    }

    fn push(&mut self, process: u64, time: u64, op_type: OpType, f: &str, value: Value) {
        self.ops.push(Op {
            index: self.ops.len() as u64,
            time,
            process: Process::Client(process),
            op_type,
            f: f.into(),
            value,
            node: None,
            error: None,
        });
    }
}

#[test]
fn history_keys_are_checked_separately_and_fail_ops_are_dropped() {
    let mut h = HistoryBuilder::new();
    // Key 1 is fine; on key 2 a write that certainly failed is nevertheless read.
    h.push(0, 0, OpType::Invoke, "write", json!([1, 5]));
    h.push(0, 10, OpType::Ok, "write", json!([1, 5]));
    h.push(1, 20, OpType::Invoke, "read", json!([1, null]));
    h.push(1, 30, OpType::Ok, "read", json!([1, 5]));
    h.push(0, 40, OpType::Invoke, "write", json!([2, 7]));
    h.push(0, 50, OpType::Fail, "write", json!([2, 7]));
    h.push(1, 60, OpType::Invoke, "read", json!([2, null]));
    h.push(1, 70, OpType::Ok, "read", json!([2, 7]));
    let verdict = register::check(&h.ops, Duration::from_secs(10));
    assert!(!verdict.valid());
    assert_eq!(verdict.keys, 2);
    assert_eq!(verdict.invalid.keys().copied().collect::<Vec<_>>(), vec![2]);
    assert!(verdict.malformed.is_empty(), "{:?}", verdict.malformed);
}

#[test]
fn unknown_reads_are_dropped_and_dangling_writes_are_unknown() {
    let mut h = HistoryBuilder::new();
    h.push(0, 0, OpType::Invoke, "write", json!([1, 5]));
    h.push(0, 10, OpType::Info, "write", json!([1, 5]));
    h.push(1, 20, OpType::Invoke, "read", json!([1, null]));
    h.push(1, 30, OpType::Info, "read", json!([1, null]));
    h.push(2, 40, OpType::Invoke, "write", json!([1, 6])); // never completes
    h.push(3, 50, OpType::Invoke, "read", json!([1, null]));
    h.push(3, 60, OpType::Ok, "read", json!([1, 6]));
    let verdict = register::check(&h.ops, Duration::from_secs(10));
    assert!(verdict.valid(), "{verdict:?}");
    assert_eq!(verdict.ops, 3, "the unknown read is dropped");
    assert_eq!(verdict.ok_ops, 1);
}

#[test]
fn a_malformed_history_does_not_pass() {
    let mut h = HistoryBuilder::new();
    h.push(0, 0, OpType::Ok, "read", json!([1, null]));
    let verdict = register::check(&h.ops, Duration::from_secs(10));
    assert!(!verdict.valid());
    assert_eq!(verdict.malformed.len(), 1);
}

// ---- the brute-force oracle -------------------------------------------------------------

/// Is there an order of some subset of the unknown ops plus every known op that respects real
/// time and is legal for the register? Tries them all.
fn oracle(ops: &[Operation<RegisterOp>]) -> bool {
    let unknown: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    (0..1u32 << unknown.len()).any(|mask| {
        let chosen: Vec<usize> = (0..ops.len())
            .filter(|&i| match unknown.iter().position(|&u| u == i) {
                Some(bit) => mask & (1 << bit) != 0,
                None => true,
            })
            .collect();
        permutations_ok(ops, &chosen, &mut Vec::new(), &mut vec![false; ops.len()])
    })
}

fn permutations_ok(
    ops: &[Operation<RegisterOp>],
    chosen: &[usize],
    order: &mut Vec<usize>,
    used: &mut Vec<bool>,
) -> bool {
    if order.len() == chosen.len() {
        let mut state = CasRegister.init();
        return order.iter().all(|&i| match CasRegister.step(&state, &ops[i].op, true) {
            Some(next) => {
                state = next;
                true
            }
            None => false,
        });
    }
    for &i in chosen {
        if used[i] {
            continue;
        }
        // Real time: i may come next only if no unplaced chosen op returned before i began.
        let blocked = chosen
            .iter()
            .any(|&j| !used[j] && j != i && ops[j].ret.is_some_and(|r| r < ops[i].call));
        if blocked {
            continue;
        }
        used[i] = true;
        order.push(i);
        if permutations_ok(ops, chosen, order, used) {
            return true;
        }
        order.pop();
        used[i] = false;
    }
    false
}

fn arb_op() -> impl Strategy<Value = Operation<RegisterOp>> {
    let kind = prop_oneof![
        (proptest::option::of(1i64..3)).prop_map(Read),
        (1i64..3).prop_map(Write),
        (1i64..3, 1i64..3).prop_map(|(a, b)| Cas(a, b)),
    ];
    (0u64..20, 0u64..10, proptest::bool::weighted(0.8), kind).prop_map(|(call, len, known, op)| {
        // Reads with unknown results are dropped before the search, so none are generated.
        let known = known || matches!(op, Read(_));
        Operation { call, ret: known.then_some(call + len), op }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_search_agrees_with_brute_force(ops in proptest::collection::vec(arb_op(), 0..7)) {
        let expected = oracle(&ops);
        let got = outcome(&ops);
        prop_assert_eq!(got == Outcome::Linearizable, expected, "ops: {:?}, got {:?}", ops, got);
    }
}
