//! Histories: what every client and the nemesis did, in Jepsen's format.
//!
//! A history is a sequence of [`Op`]s. Every client operation appears twice: an `invoke` when the
//! client sends it, then exactly one completion from the same process: `ok` (it happened, with
//! its result), `fail` (it certainly did not happen) or `info` (nobody knows; a timeout, say).
//! A process that got `info` never invokes again: its next operation may still be in flight, so
//! the worker continues under a fresh process number. Nemesis events are `info` ops of the
//! process `"nemesis"`.
//!
//! ```text
//!   {"index":0,"time":1200,"process":3,"type":"invoke","f":"cas","value":[7,[1,2]]}
//!   {"index":1,"time":1300,"process":"nemesis","type":"info","f":"start-partition","value":"..."}
//!   {"index":2,"time":2100,"process":3,"type":"ok","f":"cas","value":[7,[1,2]],"node":"n2"}
//! ```
//!
//! Field names are Jepsen's (`index`, `time` in nanoseconds since the run began, `process`,
//! `type`, `f`, `value`), so a saved history (`history.jsonl`, one op per line) can be re-checked
//! by other tools. Register operations use Jepsen's *independent* form: `value` is `[key, v]`
//! where `v` is the read value (`null` for an absent key), the written value, or `[old, new]` for
//! a compare-and-set.
//!
//! Only `fail` may be recorded for an error the database guarantees was not applied; anything
//! else is `info`.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who performed an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    /// A client process.
    Client(u64),
    /// The nemesis (always written as the string `"nemesis"`).
    Nemesis(NemesisTag),
}

/// The string `"nemesis"`, so that [`Process`] reads and writes it as Jepsen does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NemesisTag {
    /// The only value.
    #[serde(rename = "nemesis")]
    Nemesis,
}

impl Process {
    /// The nemesis process.
    pub const NEMESIS: Process = Process::Nemesis(NemesisTag::Nemesis);
}

/// What kind of history entry an op is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The operation was sent.
    Invoke,
    /// It happened.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Its outcome is unknown (or, for the nemesis, an event).
    Info,
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history.
    pub index: u64,
    /// Nanoseconds since the run began (a monotonic clock of the harness).
    pub time: u64,
    /// Who did it.
    pub process: Process,
    /// Invocation or completion.
    #[serde(rename = "type")]
    pub op_type: OpType,
    /// The function: `read`, `write`, `cas`, or a nemesis event name.
    pub f: String,
    /// Arguments (on invoke) or results (on completion).
    pub value: Value,
    /// The node the client talked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why it failed or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Errors reading a history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Reading or writing failed.
    #[error("history I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not an op.
    #[error("history line {line}: {reason}")]
    Parse {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Writes `ops` as JSON lines.
pub fn write_jsonl(ops: &[Op], out: &mut impl Write) -> std::io::Result<()> {
    for op in ops {
        serde_json::to_writer(&mut *out, op)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Reads a history written by [`write_jsonl`] (blank lines are skipped).
pub fn read_jsonl(input: impl BufRead) -> Result<Vec<Op>, HistoryError> {
    let mut ops = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let op = serde_json::from_str(&line)
            .map_err(|e| HistoryError::Parse { line: i + 1, reason: e.to_string() })?;
        ops.push(op);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ops_round_trip_with_jepsen_field_names() {
        let ops = vec![
            Op {
                index: 0,
                time: 5,
                process: Process::Client(3),
                op_type: OpType::Invoke,
                f: "cas".into(),
                value: json!([7, [1, 2]]),
                node: None,
                error: None,
            },
            Op {
                index: 1,
                time: 9,
                process: Process::NEMESIS,
                op_type: OpType::Info,
                f: "kill".into(),
                value: json!("n2"),
                node: None,
                error: None,
            },
        ];
        let mut out = Vec::new();
        write_jsonl(&ops, &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with(
            r#"{"index":0,"time":5,"process":3,"type":"invoke","f":"cas","value":[7,[1,2]]}"#
        ));
        assert!(text.contains(r#""process":"nemesis","type":"info""#));
        assert_eq!(read_jsonl(&out[..]).unwrap(), ops);
    }

    #[test]
    fn a_malformed_line_names_its_number() {
        let text = "\n{\"index\":0}\n";
        match read_jsonl(text.as_bytes()) {
            Err(HistoryError::Parse { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }
}
