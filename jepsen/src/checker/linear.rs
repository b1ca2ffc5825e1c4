//! Linearizability of one object's history: the Wing–Gong search with Lowe's memoisation, as
//! Porcupine and Knossos' `wgl` do it.
//!
//! A history is linearizable when every operation can be given one instant between its call
//! and its return such that, taken in the order of those instants, the operations are legal
//! for a sequential model. The search walks the calls and returns in time order; it tries to
//! *linearize* each call it meets (apply it to the model now) and must backtrack when it meets
//! the return of an operation it has not linearized yet (that operation had to take effect
//! before it returned):
//!
//! ```text
//!   time ─────────────────────────────────────────▶
//!   A  write 1   |-------|
//!   B  read → 1      |---------|           A must precede B: write 1, read 1  ✓
//!   C  read → 0                   |---|    C sees 0 after A's write returned  ✗
//! ```
//!
//! **Memoisation.** Reaching the same set of linearized operations with the same model state
//! twice leads to the same future, so each `(set, state)` pair is explored once. Operations with
//! unknown outcomes (`info`) return at +∞: placing them last is the same as "never happened", so
//! their step in the model must always be legal ([`Model::step`] sees `known = false`).
//!
//! The search is exponential in the worst case (it is NP-complete in general), so it runs
//! against a deadline: running out of time is [`Outcome::Unknown`], never a pass. Keep each
//! object's history small (the register workload rotates keys) and its written values unique.

use std::collections::HashSet;
use std::hash::Hash;
use std::time::Instant;

/// A sequential specification.
pub trait Model {
    /// The object's state.
    type State: Clone + Eq + Hash + std::fmt::Debug;
    /// What a call asks for together with what it returned.
    type Op: std::fmt::Debug;
    /// The initial state.
    fn init(&self) -> Self::State;
    /// The state after `op` takes effect in `state`, or `None` if `op` could not have returned
    /// what it did there. `known` is false for operations whose outcome is unknown: their step
    /// must then be legal in every state (the operation may have had no effect).
    fn step(&self, state: &Self::State, op: &Self::Op, known: bool) -> Option<Self::State>;
}

/// One operation of the history being checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<O> {
    /// When it was invoked (any monotonic unit).
    pub call: u64,
    /// When it completed; `None` when its outcome is unknown (it may take effect any time
    /// after `call`, or never).
    pub ret: Option<u64>,
    /// What it did.
    pub op: O,
}

/// The verdict on one object's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    NotLinearizable(Violation),
    /// The deadline passed first; nothing is known.
    Unknown,
}

/// Where the search got stuck, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The longest sequence of operations (indices into the input) that could be linearized.
    pub longest_prefix: Vec<usize>,
    /// The operation that could not be placed after that prefix: its return was reached
    /// before any legal place for it.
    pub stuck: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
    /// For a call, the index of its return entry.
    ret_entry: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Checks `ops` against `model`, giving up at `deadline`.
pub fn check<M: Model>(model: &M, ops: &[Operation<M::Op>], deadline: Instant) -> Outcome {
    let mut entries = build_entries(ops);
    let mut head = if entries.is_empty() { None } else { Some(0) };
    let mut state = model.init();
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut seen: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut best: (Vec<usize>, usize) = (Vec::new(), 0);
    let mut cursor = head;
    let mut steps = 0u64;

    while let Some(at) = cursor {
        steps += 1;
        if steps.is_multiple_of(4096) && Instant::now() >= deadline {
            return Outcome::Unknown;
        }
        let entry = entries[at];
        if entry.is_call {
            let operation = &ops[entry.op];
            if let Some(next_state) = model.step(&state, &operation.op, operation.ret.is_some()) {
                set_bit(&mut linearized, entry.op, true);
                if seen.insert((linearized.clone(), next_state.clone())) {
                    stack.push((at, std::mem::replace(&mut state, next_state)));
                    lift(&mut entries, &mut head, at);
                    cursor = head;
                    continue;
                }
                set_bit(&mut linearized, entry.op, false);
            }
            cursor = entry.next;
        } else {
            // The return of an operation not linearized yet: it had to take effect earlier.
            if stack.len() >= best.0.len() {
                best = (stack.iter().map(|(e, _)| entries[*e].op).collect(), entry.op);
            }
            let Some((call_at, previous)) = stack.pop() else {
                return Outcome::NotLinearizable(Violation {
                    longest_prefix: best.0,
                    stuck: best.1,
                });
            };
            state = previous;
            set_bit(&mut linearized, entries[call_at].op, false);
            unlift(&mut entries, &mut head, call_at);
            cursor = entries[call_at].next;
        }
    }
    Outcome::Linearizable
}

/// Calls and returns in time order; a call sorts before a return at the same instant, so
/// operations that merely touch count as concurrent. Unknown returns go last.
fn build_entries<O>(ops: &[Operation<O>]) -> Vec<Entry> {
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call, true, i));
        events.push((op.ret.unwrap_or(u64::MAX), false, i));
    }
    // (time, is_return, op): calls (false) before returns (true) at equal times.
    events.sort_by_key(|&(time, is_call, op)| (time, !is_call, op));
    let mut ret_entry = vec![0; ops.len()];
    for (position, &(_, is_call, op)) in events.iter().enumerate() {
        if !is_call {
            ret_entry[op] = position;
        }
    }
    let last = events.len().saturating_sub(1);
    events
        .iter()
        .enumerate()
        .map(|(position, &(_, is_call, op))| Entry {
            op,
            is_call,
            ret_entry: ret_entry[op],
            prev: position.checked_sub(1),
            next: (position < last).then_some(position + 1),
        })
        .collect()
}

fn set_bit(bits: &mut [u64], i: usize, on: bool) {
    if on {
        bits[i / 64] |= 1 << (i % 64);
    } else {
        bits[i / 64] &= !(1 << (i % 64));
    }
}

/// Removes a call and its return from the list.
fn lift(entries: &mut [Entry], head: &mut Option<usize>, call: usize) {
    let ret = entries[call].ret_entry;
    unlink(entries, head, call);
    unlink(entries, head, ret);
}

/// Puts a lifted call and its return back (in the reverse order of [`lift`]).
fn unlift(entries: &mut [Entry], head: &mut Option<usize>, call: usize) {
    let ret = entries[call].ret_entry;
    relink(entries, head, ret);
    relink(entries, head, call);
}

fn unlink(entries: &mut [Entry], head: &mut Option<usize>, at: usize) {
    let Entry { prev, next, .. } = entries[at];
    match prev {
        Some(p) => entries[p].next = next,
        None => *head = next,
    }
    if let Some(n) = next {
        entries[n].prev = prev;
    }
}

/// Undoes [`unlink`]: the entry still remembers its neighbours at the time it was removed,
/// and removals are undone in reverse order, so they are its neighbours again.
fn relink(entries: &mut [Entry], head: &mut Option<usize>, at: usize) {
    let Entry { prev, next, .. } = entries[at];
    match prev {
        Some(p) => entries[p].next = Some(at),
        None => *head = Some(at),
    }
    if let Some(n) = next {
        entries[n].prev = Some(at);
    }
}
