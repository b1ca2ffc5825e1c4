//! Checking a history: runs the workload's checker and sums its verdict up in the terms a run
//! reports (valid, a violation found, how much was checked, one line of conclusion).
//!
//! ```text
//!   history ─▶ checker::<workload>::check ─▶ Verdict ─▶ Checked { valid, violation, ops,
//!                                                                ok_ops, scope, checker,
//!                                                                verdict (JSON) }
//! ```
//!
//! `shoal-jepsen run` writes the verdict to `verdict.json` next to the history;
//! `shoal-jepsen check` prints it.

use std::path::Path;
use std::time::Duration;

use crate::checker::register::{self, KeyResult};
use crate::checker::{bank, g2, list_append, monotonic, sequential, set};
use crate::history::Op;
use crate::run::Workload;
use crate::{report, workload_bank};

/// Violation pages written per run.
const MAX_PAGES: usize = 10;

/// Checks `ops` as a history of `workload`; a register violation's timeline pages go into
/// `pages` if given. `budget` bounds the linearizability search.
pub fn check(workload: Workload, ops: &[Op], budget: Duration, pages: Option<&Path>) -> Checked {
    match workload {
        Workload::Register => check_register(ops, budget, pages),
        Workload::ListAppend => check_list_append(ops),
        Workload::Bank | Workload::BankTables => check_bank(ops),
        Workload::Set => check_set(ops),
        Workload::Monotonic => check_monotonic(ops),
        Workload::Sequential => check_sequential(ops),
        Workload::G2 => check_g2(ops),
    }
}

fn to_json(verdict: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(verdict).unwrap_or_default()
}

/// What a checker concluded, in the terms a run reports.
pub struct Checked {
    /// No anomaly, and the history was complete enough to check.
    pub valid: bool,
    /// An anomaly was found (what an unsafe canary needs).
    pub violation: bool,
    /// Operations checked.
    pub ops: usize,
    /// How many of them were ok.
    pub ok_ops: usize,
    /// What the check covered ("on 12 keys").
    pub scope: String,
    /// The checker's one-line conclusion.
    pub checker: String,
    /// The checker's whole verdict, for `verdict.json`.
    pub verdict: serde_json::Value,
}

fn check_register(ops: &[Op], budget: Duration, pages: Option<&Path>) -> Checked {
    let verdict = register::check(ops, budget);
    // A timeline for the first few bad keys; the verdict lists them all.
    for (key, (key_ops, result)) in verdict.invalid.iter().take(MAX_PAGES) {
        if let KeyResult::Invalid { longest_prefix, stuck } = result {
            let page = report::violation_page(*key, key_ops, longest_prefix, *stuck);
            if let Some(dir) = pages {
                let _ = std::fs::write(dir.join(format!("violation-key-{key}.html")), page);
            }
        }
    }
    let checker = if verdict.valid() {
        "linearizable".to_string()
    } else if !verdict.invalid.is_empty() {
        let keys: Vec<_> = verdict.invalid.keys().take(5).collect();
        let more = verdict.invalid.len().saturating_sub(keys.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        format!("NOT linearizable (keys {keys:?}{more})")
    } else if !verdict.unknown.is_empty() {
        format!("unknown: the search ran out of time on keys {:?}", verdict.unknown)
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Checked {
        valid: verdict.valid(),
        violation: !verdict.invalid.is_empty(),
        ops: verdict.ops,
        ok_ops: verdict.ok_ops,
        scope: format!("on {} keys", verdict.keys),
        checker,
        verdict: to_json(&verdict),
    }
}

fn check_list_append(ops: &[Op]) -> Checked {
    let verdict = list_append::check(ops);
    let checker = if verdict.valid() {
        "serializable (no anomaly)".to_string()
    } else if !verdict.anomalies.is_empty() {
        let found: Vec<String> =
            verdict.anomalies.iter().map(|(name, a)| format!("{name} ×{}", a.len())).collect();
        let first = verdict.anomalies.values().flatten().next().map(|a| a.explanation.clone());
        format!("ANOMALIES {} (first: {})", found.join(", "), first.unwrap_or_default())
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Checked {
        valid: verdict.valid(),
        violation: verdict.anomalies.keys().any(|name| *name != "duplicate-appends"),
        ops: verdict.txns,
        ok_ops: verdict.ok_txns,
        scope: format!(
            "{} transactions and {} edges in the graph",
            verdict.graph_txns, verdict.graph_edges
        ),
        checker,
        verdict: to_json(&verdict),
    }
}

fn check_set(ops: &[Op]) -> Checked {
    let verdict = set::check(ops);
    let checker = if verdict.valid() {
        format!("every acknowledged add present ({} recovered from unknown)", verdict.recovered)
    } else if !verdict.lost.is_empty() || !verdict.unexpected.is_empty() {
        format!("LOST {:?}, UNEXPECTED {:?}", verdict.lost, verdict.unexpected)
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Checked {
        valid: verdict.valid(),
        violation: !verdict.lost.is_empty() || !verdict.unexpected.is_empty(),
        ops: verdict.adds,
        ok_ops: verdict.ok_adds,
        scope: format!("{} in the final read", verdict.read),
        checker,
        verdict: to_json(&verdict),
    }
}

fn check_bank(ops: &[Op]) -> Checked {
    let verdict = bank::check(ops, workload_bank::ACCOUNTS, workload_bank::INITIAL);
    let checker = if verdict.valid() {
        "money conserved, no negative balance".to_string()
    } else if let Some(bad) = verdict.bad_reads.first() {
        format!("{} BAD READS (first: op {}: {})", verdict.bad_read_count, bad.index, bad.problem)
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Checked {
        valid: verdict.valid(),
        violation: verdict.bad_read_count > 0,
        ops: verdict.ops,
        ok_ops: verdict.ok_ops,
        scope: format!("{} reads", verdict.reads),
        checker,
        verdict: to_json(&verdict),
    }
}

fn check_monotonic(ops: &[Op]) -> Checked {
    let verdict = monotonic::check(ops);
    let checker = if verdict.valid() {
        "values rise with commit timestamps, without gaps, in real-time order".to_string()
    } else if verdict.malformed.is_empty() {
        let mut found = Vec::new();
        for (name, count) in [
            ("lost", verdict.lost.len()),
            ("unexpected", verdict.unexpected.len()),
            ("duplicates", verdict.duplicates.len()),
            ("gaps", verdict.gaps.len()),
            ("timestamp-order", verdict.timestamp_order.len()),
            ("realtime", verdict.realtime.len()),
        ] {
            if count > 0 {
                found.push(format!("{name} ×{count}"));
            }
        }
        format!("VIOLATIONS {}", found.join(", "))
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Checked {
        valid: verdict.valid(),
        violation: !verdict.valid() && verdict.malformed.is_empty(),
        ops: verdict.incs,
        ok_ops: verdict.ok_incs,
        scope: format!("{} rows in the final read", verdict.rows),
        checker,
        verdict: to_json(&verdict),
    }
}

fn check_sequential(ops: &[Op]) -> Checked {
    let verdict = sequential::check(ops);
    let checker = if verdict.valid() {
        "every read saw a prefix of the subkeys".to_string()
    } else if verdict.malformed.is_empty() {
        format!(
            "NOT SEQUENTIAL: {} reads skipped an earlier subkey, {} saw unwritten keys",
            verdict.non_sequential.len(),
            verdict.unexpected.len()
        )
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Checked {
        valid: verdict.valid(),
        violation: !verdict.non_sequential.is_empty() || !verdict.unexpected.is_empty(),
        ops: verdict.writes + verdict.reads,
        ok_ops: verdict.ok_writes + verdict.ok_reads,
        scope: format!(
            "{} reads saw subkeys, {} of them partly",
            verdict.nonempty_reads, verdict.partial_reads
        ),
        checker,
        verdict: to_json(&verdict),
    }
}

fn check_g2(ops: &[Op]) -> Checked {
    let verdict = g2::check(ops);
    let checker = if verdict.valid() {
        "at most one insert per key (no write skew)".to_string()
    } else if verdict.malformed.is_empty() {
        format!(
            "G2: {} keys with two inserts, {} phantom reads",
            verdict.skewed_keys,
            verdict.phantom.len()
        )
    } else {
        format!("malformed history: {:?}", verdict.malformed)
    };
    Checked {
        valid: verdict.valid(),
        violation: !verdict.g2.is_empty() || !verdict.phantom.is_empty(),
        ops: verdict.inserts,
        ok_ops: verdict.ok_inserts,
        scope: format!(
            "{} keys, {} with both outcomes known, {} inserted",
            verdict.keys, verdict.contended_keys, verdict.inserted
        ),
        checker,
        verdict: to_json(&verdict),
    }
}
