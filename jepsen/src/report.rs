//! A small HTML page showing a linearizability violation on a timeline.
//!
//! One row per process, one bar per operation from its call to its return (to the right edge
//! when the outcome is unknown). The operations the search could linearize are green, the one
//! it could not place is red, the rest grey; hovering a bar shows its history index and times.
//! Only operations near the stuck one are drawn, so the page stays readable:
//!
//! ```text
//!   p3  [write 4]────────┐
//!   p5        [read → 2]  ← red: no legal place after the green prefix
//!   p7  [cas 2→4]──
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::checker::register::{KeyOp, RegisterOp};

/// How many operations before and after the stuck one the page shows.
const CONTEXT_OPS: usize = 12;

/// Renders the violation on `key`: `ops` are the key's operations, `longest_prefix` and
/// `stuck` index into them.
pub fn violation_page(key: u64, ops: &[KeyOp], longest_prefix: &[usize], stuck: usize) -> String {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].call, i));
    let position = order.iter().position(|&i| i == stuck).unwrap_or(0);
    let shown =
        &order[position.saturating_sub(CONTEXT_OPS)..(position + CONTEXT_OPS + 1).min(order.len())];
    let start = shown.iter().map(|&i| ops[i].call).min().unwrap_or(0);
    let end = shown
        .iter()
        .map(|&i| ops[i].ret.unwrap_or(ops[i].call))
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let end = end + (end - start) / 10 + 1; // room for unknown outcomes to run off the edge
    let span = (end - start) as f64;
    let linearized: BTreeSet<usize> = longest_prefix.iter().copied().collect();
    let processes: BTreeSet<u64> = shown.iter().map(|&i| ops[i].process).collect();

    let mut rows = String::new();
    for process in &processes {
        let _ = write!(rows, "<div class=row><span class=label>p{process}</span>");
        for &i in shown.iter().filter(|&&i| ops[i].process == *process) {
            let op = &ops[i];
            let left = (op.call - start) as f64 / span * 100.0;
            let right = (op.ret.unwrap_or(end) - start) as f64 / span * 100.0;
            let class = if i == stuck {
                "stuck"
            } else if linearized.contains(&i) {
                "done"
            } else {
                "other"
            };
            let ret = op.ret.map_or("unknown".to_string(), |r| format!("{r} ns"));
            let _ = write!(
                rows,
                "<div class='op {class}' style='left:{left:.3}%;width:{:.3}%' \
                 title='history index {}; call {} ns; return {ret}'>{}</div>",
                (right - left).max(0.5),
                op.invoke_index,
                op.call,
                describe(&op.op),
            );
        }
        rows.push_str("</div>\n");
    }
    let prefix: Vec<String> = longest_prefix.iter().map(|&i| describe(&ops[i].op)).collect();
    format!(
        "<!doctype html>\n<html><head><meta charset=utf-8><title>key {key}: not linearizable</title>\n\
         <style>body{{font:14px sans-serif;margin:2em}}.row{{position:relative;height:28px;\
         margin-left:4em;border-bottom:1px solid #eee}}.label{{position:absolute;left:-4em;top:6px}}\
         .op{{position:absolute;top:3px;height:20px;font-size:12px;overflow:hidden;white-space:nowrap;\
         border-radius:3px;padding:0 3px;box-sizing:border-box}}.done{{background:#9d9}}\
         .stuck{{background:#e66;color:#fff}}.other{{background:#ccc}}</style></head><body>\n\
         <h1>Key {key} is not linearizable</h1>\n\
         <p>The search linearized {} operations (green, in order: {}) and then found no legal \
         place for <b>{}</b> (red, history index {}): its return came before any state in which \
         it could have taken effect.</p>\n{rows}\
         <p>Time runs left to right from {start} ns to {end} ns after the run began; bars \
         reaching the right edge have unknown outcomes.</p></body></html>\n",
        longest_prefix.len(),
        html_escape(&prefix.join(", ")),
        html_escape(&describe(&ops[stuck].op)),
        ops[stuck].invoke_index,
    )
}

fn describe(op: &RegisterOp) -> String {
    match op {
        RegisterOp::Read(Some(v)) => format!("read → {v}"),
        RegisterOp::Read(None) => "read → nil".into(),
        RegisterOp::Write(v) => format!("write {v}"),
        RegisterOp::Cas(a, b) => format!("cas {a}→{b}"),
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_marks_the_stuck_operation_and_the_prefix() {
        let op = |process, call, ret, op| KeyOp { process, invoke_index: call, call, ret, op };
        let ops = vec![
            op(1, 0, Some(10), RegisterOp::Write(1)),
            op(2, 20, Some(30), RegisterOp::Write(2)),
            op(3, 40, Some(50), RegisterOp::Read(Some(1))),
            op(4, 45, None, RegisterOp::Cas(2, 3)),
        ];
        let page = violation_page(9, &ops, &[0, 1], 2);
        assert!(page.contains("Key 9 is not linearizable"));
        assert!(page.contains("class='op stuck'") && page.contains("read → 1</div>"));
        assert_eq!(page.matches("class='op done'").count(), 2);
        assert!(page.contains("title='history index 45; call 45 ns; return unknown'"));
    }
}
