//! The list-append checker: Elle's inference of transaction dependencies from histories of
//! appends to lists, and the anomalies that cycles among them name.
//!
//! Every transaction is a list of micro-operations on lists identified by integer keys: append
//! a value (unique per key across the whole history) or read the whole list. Because lists only
//! grow and every value is unique, a read reveals the order of every append before it, and the
//! longest read of a key reveals its *version order*. From that order each committed
//! transaction's place relative to the others follows:
//!
//! ```text
//!   T1: append(x, 1)             x's version order, from the longest read: [1, 2]
//!   T2: append(x, 2)             ww  T1 → T2   T2 appended right after T1's value
//!   T3: read(x) = [1]            wr  T1 → T3   T3 saw T1's value last
//!                                rw  T3 → T2   T3 did not see T2's append (anti-dependency)
//! ```
//!
//! A cycle in that graph means no serial order explains what the clients saw. Cycles are named
//! as Adya does: only ww edges, **G0** (dirty write); ww and wr, **G1c** (circular information
//! flow); exactly one rw, **G-single** (read skew); more, **G2** (anti-dependency cycle, write
//! skew). Some anomalies need no cycle: **G1a** (a read saw a value whose transaction failed),
//! **G1b** (a read saw a value that its transaction later overwrote in the same key, an
//! intermediate state), **incompatible-order** (two reads of a key that are not prefixes of one
//! another), **duplicate-elements**, **garbage** (a value nobody appended) and **internal** (a
//! transaction that did not see its own earlier writes).
//!
//! Transactions that completed `ok` are in the graph; so are `info` ones (outcome unknown)
//! whose appends some read saw, since they committed. `fail` ones are not, and any sight of
//! their writes is G1a.
//!
//! Out of scope: real-time edges (strict serializability: Shoal promises serializability, and
//! linearizability per key, which the register workload checks), process-order edges, and
//! predicate reads (the g2 workload has its own checker).
//!
//! Hazard: appends that no read ever saw have no known place in the version order, so they
//! add no edges; a workload must read often enough for the check to mean something (the
//! verdict reports how many transactions the graph held).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use serde_json::Value;

use crate::history::{Op, OpType, Process};

/// How many transactions of one strongly connected component a cycle search starts from.
const MAX_CYCLE_STARTS: usize = 200;

/// One micro-operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Micro {
    /// Append `value` to list `key`.
    Append {
        /// The list.
        key: u64,
        /// The value, unique for the key.
        value: u64,
    },
    /// Read list `key`; `None` until the transaction completed `ok`.
    Read {
        /// The list.
        key: u64,
        /// What the read saw.
        values: Option<Vec<u64>>,
    },
}

impl Micro {
    /// Parses Jepsen's form: `["append", k, v]` or `["r", k, null | [v, ...]]`.
    pub fn parse(value: &Value) -> Option<Micro> {
        let parts = value.as_array()?;
        let key = parts.get(1)?.as_u64()?;
        match parts.first()?.as_str()? {
            "append" => Some(Micro::Append { key, value: parts.get(2)?.as_u64()? }),
            "r" => {
                let values = match parts.get(2) {
                    None | Some(Value::Null) => None,
                    Some(list) => Some(
                        list.as_array()?.iter().map(Value::as_u64).collect::<Option<Vec<_>>>()?,
                    ),
                };
                Some(Micro::Read { key, values })
            }
            _ => None,
        }
    }

    /// Writes Jepsen's form.
    pub fn to_value(&self) -> Value {
        match self {
            Micro::Append { key, value } => serde_json::json!(["append", key, value]),
            Micro::Read { key, values } => serde_json::json!(["r", key, values]),
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Committed; its reads are known.
    Ok,
    /// Certainly not committed.
    Fail,
    /// Unknown.
    Info,
}

/// A transaction as the checker sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Txn {
    /// The history index of its completion (or of its invocation, if it never completed).
    pub index: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Its micro-operations; reads carry values only when `outcome` is ok.
    pub ops: Vec<Micro>,
}

/// A dependency between two transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Edge {
    /// The second appended right after the first, to the same key.
    #[serde(rename = "ww")]
    Ww,
    /// The second read the first's append last.
    #[serde(rename = "wr")]
    Wr,
    /// The second appended right after what the first read (an anti-dependency).
    #[serde(rename = "rw")]
    Rw,
}

/// One anomaly: its name, the transactions involved (history indices) and an explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    /// G0, G1a, G1b, G1c, G-single, G2, incompatible-order, duplicate-elements, garbage,
    /// internal, duplicate-appends.
    pub name: &'static str,
    /// The transactions, by history index; for a cycle, in cycle order.
    pub txns: Vec<u64>,
    /// For a cycle, the edge from each transaction to the next (the last back to the first).
    pub edges: Vec<Edge>,
    /// What happened, for people.
    pub explanation: String,
}

/// What the checker concluded.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verdict {
    /// Transactions in the history (invocations).
    pub txns: usize,
    /// Of those, how many completed ok.
    pub ok_txns: usize,
    /// Transactions in the dependency graph.
    pub graph_txns: usize,
    /// Edges in the graph.
    pub graph_edges: usize,
    /// Anomalies found, by name.
    pub anomalies: BTreeMap<&'static str, Vec<Anomaly>>,
    /// Problems with the history itself.
    pub malformed: Vec<String>,
}

impl Verdict {
    /// True when the history shows no anomaly and is well formed.
    pub fn valid(&self) -> bool {
        self.anomalies.is_empty() && self.malformed.is_empty()
    }

    fn add(&mut self, anomaly: Anomaly) {
        let found = self.anomalies.entry(anomaly.name).or_default();
        // Enough to see the problem; a broken run can produce millions.
        if found.len() < 20 {
            found.push(anomaly);
        }
    }
}

/// Pairs each client invocation of `f` with its completion: the transactions of a history.
pub fn transactions(history: &[Op], f: &str) -> (Vec<Txn>, Vec<String>) {
    let mut open: HashMap<Process, (u64, Vec<Micro>)> = HashMap::new();
    let mut txns = Vec::new();
    let mut malformed = Vec::new();
    let parse = |op: &Op| -> Option<Vec<Micro>> {
        op.value.as_array()?.iter().map(Micro::parse).collect::<Option<Vec<_>>>()
    };
    for op in history.iter().filter(|op| op.f == f && op.process != Process::NEMESIS) {
        let Some(ops) = parse(op) else {
            malformed
                .push(format!("op {}: not a list of micro-operations: {}", op.index, op.value));
            continue;
        };
        match op.op_type {
            OpType::Invoke => {
                if open.insert(op.process, (op.index, ops)).is_some() {
                    malformed
                        .push(format!("op {}: a second invocation before completion", op.index));
                }
            }
            completion => {
                let Some((_, invoked)) = open.remove(&op.process) else {
                    malformed.push(format!("op {}: a completion without an invocation", op.index));
                    continue;
                };
                let (outcome, ops) = match completion {
                    OpType::Ok => (Outcome::Ok, ops),
                    OpType::Fail => (Outcome::Fail, invoked),
                    _ => (Outcome::Info, invoked),
                };
                txns.push(Txn { index: op.index, outcome, ops });
            }
        }
    }
    // Never completed: as good as info.
    for (index, ops) in open.into_values() {
        txns.push(Txn { index, outcome: Outcome::Info, ops });
    }
    txns.sort_by_key(|t| t.index);
    (txns, malformed)
}

/// Checks a list-append history (ops with `f = "txn"`).
pub fn check(history: &[Op]) -> Verdict {
    let (txns, malformed) = transactions(history, "txn");
    check_txns(&txns, malformed)
}

/// Checks transactions already paired.
pub fn check_txns(txns: &[Txn], malformed: Vec<String>) -> Verdict {
    let mut verdict = Verdict {
        txns: txns.len(),
        ok_txns: txns.iter().filter(|t| t.outcome == Outcome::Ok).count(),
        malformed,
        ..Verdict::default()
    };
    // Who appended what: (key, value) → transaction position in `txns`.
    let mut writer: HashMap<(u64, u64), usize> = HashMap::new();
    for (i, txn) in txns.iter().enumerate() {
        for op in &txn.ops {
            if let Micro::Append { key, value } = op
                && let Some(previous) = writer.insert((*key, *value), i)
            {
                verdict.add(Anomaly {
                    name: "duplicate-appends",
                    txns: vec![txns[previous].index, txn.index],
                    edges: vec![],
                    explanation: format!("value {value} was appended to key {key} twice"),
                });
            }
        }
    }
    // Reads of committed transactions, by key: (transaction position, values).
    let mut reads: BTreeMap<u64, Vec<(usize, &[u64])>> = BTreeMap::new();
    for (i, txn) in txns.iter().enumerate().filter(|(_, t)| t.outcome == Outcome::Ok) {
        internal(txn, &mut verdict);
        for op in &txn.ops {
            if let Micro::Read { key, values: Some(values) } = op {
                reads.entry(*key).or_default().push((i, values));
            }
        }
    }
    let mut committed: HashSet<usize> =
        (0..txns.len()).filter(|i| txns[*i].outcome == Outcome::Ok).collect();
    let mut orders: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (key, key_reads) in &reads {
        let order = version_order(*key, key_reads, txns, &mut verdict);
        for value in &order {
            match writer.get(&(*key, *value)) {
                None => verdict.add(Anomaly {
                    name: "garbage",
                    txns: key_reads.iter().map(|(i, _)| txns[*i].index).collect(),
                    edges: vec![],
                    explanation: format!("key {key} holds {value}, which nobody appended"),
                }),
                Some(w) if txns[*w].outcome == Outcome::Fail => {
                    let readers = key_reads.iter().filter(|(_, r)| r.contains(value));
                    verdict.add(Anomaly {
                        name: "G1a",
                        txns: std::iter::once(txns[*w].index)
                            .chain(readers.map(|(i, _)| txns[*i].index))
                            .collect(),
                        edges: vec![],
                        explanation: format!(
                            "key {key}: value {value} of a failed transaction was read"
                        ),
                    });
                }
                // An info transaction whose append was seen committed.
                Some(w) => {
                    committed.insert(*w);
                }
            }
        }
        intermediate_reads(*key, key_reads, &writer, txns, &mut verdict);
        orders.insert(*key, order);
    }
    cycles(txns, &committed, &writer, &reads, &orders, &mut verdict);
    verdict
}

/// A transaction must see its own appends, after what it read before them.
fn internal(txn: &Txn, verdict: &mut Verdict) {
    let mut known: HashMap<u64, Vec<u64>> = HashMap::new();
    for op in &txn.ops {
        match op {
            Micro::Append { key, value } => {
                if let Some(list) = known.get_mut(key) {
                    list.push(*value);
                }
            }
            Micro::Read { key, values: Some(values) } => {
                if let Some(expected) = known.get(key)
                    && expected != values
                {
                    verdict.add(Anomaly {
                        name: "internal",
                        txns: vec![txn.index],
                        edges: vec![],
                        explanation: format!(
                            "key {key}: read {values:?} where its own earlier operations \
                             imply {expected:?}"
                        ),
                    });
                }
                known.insert(*key, values.clone());
            }
            Micro::Read { values: None, .. } => {}
        }
    }
}

/// The longest read of `key`, which every other read must be a prefix of.
fn version_order(
    key: u64,
    key_reads: &[(usize, &[u64])],
    txns: &[Txn],
    verdict: &mut Verdict,
) -> Vec<u64> {
    let (longest_reader, longest) =
        key_reads.iter().max_by_key(|(_, r)| r.len()).map_or((0, &[][..]), |(i, r)| (*i, *r));
    for (i, read) in key_reads {
        let mut seen = HashSet::new();
        if let Some(dup) = read.iter().find(|v| !seen.insert(**v)) {
            verdict.add(Anomaly {
                name: "duplicate-elements",
                txns: vec![txns[*i].index],
                edges: vec![],
                explanation: format!("key {key}: read {read:?} holds {dup} twice"),
            });
        }
        if !longest.starts_with(read) {
            verdict.add(Anomaly {
                name: "incompatible-order",
                txns: vec![txns[*i].index, txns[longest_reader].index],
                edges: vec![],
                explanation: format!(
                    "key {key}: read {read:?} is not a prefix of read {longest:?}"
                ),
            });
        }
    }
    longest.to_vec()
}

/// G1b: a read whose last value was not its writer's last append to the key.
fn intermediate_reads(
    key: u64,
    key_reads: &[(usize, &[u64])],
    writer: &HashMap<(u64, u64), usize>,
    txns: &[Txn],
    verdict: &mut Verdict,
) {
    for (reader, read) in key_reads {
        let Some(last) = read.last() else { continue };
        let Some(&w) = writer.get(&(key, *last)) else { continue };
        if w == *reader {
            continue;
        }
        let final_append = txns[w].ops.iter().rev().find_map(|op| match op {
            Micro::Append { key: k, value } if *k == key => Some(*value),
            _ => None,
        });
        if final_append != Some(*last) {
            verdict.add(Anomaly {
                name: "G1b",
                txns: vec![txns[w].index, txns[*reader].index],
                edges: vec![],
                explanation: format!(
                    "key {key}: read {read:?} ends in {last}, which its writer followed with \
                     another append to the key"
                ),
            });
        }
    }
}

/// Builds the dependency graph of committed transactions and names its cycles.
fn cycles(
    txns: &[Txn],
    committed: &HashSet<usize>,
    writer: &HashMap<(u64, u64), usize>,
    reads: &BTreeMap<u64, Vec<(usize, &[u64])>>,
    orders: &BTreeMap<u64, Vec<u64>>,
    verdict: &mut Verdict,
) {
    let mut graph: DiGraph<usize, Edge> = DiGraph::new();
    let mut node: HashMap<usize, NodeIndex> = HashMap::new();
    let mut sorted: Vec<usize> = committed.iter().copied().collect();
    sorted.sort_unstable();
    for t in sorted {
        node.insert(t, graph.add_node(t));
    }
    let mut edges: HashSet<(usize, usize, Edge)> = HashSet::new();
    let mut link = |from: usize, to: usize, edge: Edge| {
        if from != to && node.contains_key(&from) && node.contains_key(&to) {
            edges.insert((from, to, edge));
        }
    };
    for (key, order) in orders {
        let writers: Vec<usize> =
            order.iter().filter_map(|v| writer.get(&(*key, *v)).copied()).collect();
        for pair in writers.windows(2) {
            link(pair[0], pair[1], Edge::Ww);
        }
        for (reader, read) in reads.get(key).into_iter().flatten() {
            if let Some(last) = read.last().and_then(|v| writer.get(&(*key, *v))) {
                link(*last, *reader, Edge::Wr);
            }
            // The append right after what the reader saw: the reader came before it.
            if let Some(next) = order.get(read.len()).and_then(|v| writer.get(&(*key, *v))) {
                link(*reader, *next, Edge::Rw);
            }
        }
    }
    let mut sorted_edges: Vec<_> = edges.into_iter().collect();
    sorted_edges.sort_unstable();
    for (from, to, edge) in &sorted_edges {
        graph.add_edge(node[from], node[to], *edge);
    }
    verdict.graph_txns = graph.node_count();
    verdict.graph_edges = graph.edge_count();
    for component in petgraph::algo::tarjan_scc(&graph) {
        if component.len() < 2 {
            continue;
        }
        let members: HashSet<NodeIndex> = component.iter().copied().collect();
        let mut starts = component.clone();
        starts.sort_unstable();
        // Each search is a breadth-first walk of the component; a few hundred starting points
        // find a cycle of each kind the component has without going quadratic on a huge one.
        starts.truncate(MAX_CYCLE_STARTS);
        if let Some((name, cycle)) = classify(&graph, &members, &starts) {
            let txn_indices = cycle.iter().map(|(n, _)| txns[graph[*n]].index).collect();
            let cycle_edges: Vec<Edge> = cycle.iter().map(|(_, e)| *e).collect();
            let explanation = cycle
                .iter()
                .map(|(n, e)| format!("T{} -{}->", txns[graph[*n]].index, edge_name(*e)))
                .collect::<Vec<_>>()
                .join(" ")
                + &format!(" T{}", txns[graph[cycle[0].0]].index);
            verdict.add(Anomaly { name, txns: txn_indices, edges: cycle_edges, explanation });
        }
    }
}

fn edge_name(edge: Edge) -> &'static str {
    match edge {
        Edge::Ww => "ww",
        Edge::Wr => "wr",
        Edge::Rw => "rw",
    }
}

/// A cycle through `members` (one strongly connected component), preferring the most severe
/// anomaly it can show: G0, then G1c, then G-single, else G2. Each step is a node and the edge
/// leaving it.
fn classify(
    graph: &DiGraph<usize, Edge>,
    members: &HashSet<NodeIndex>,
    starts: &[NodeIndex],
) -> Option<(&'static str, Vec<(NodeIndex, Edge)>)> {
    let only = |allowed: &'static [Edge]| move |e: Edge| allowed.contains(&e);
    for (name, allowed) in [("G0", &[Edge::Ww][..]), ("G1c", &[Edge::Ww, Edge::Wr][..])] {
        for start in starts {
            if let Some(cycle) = find_path(graph, members, *start, *start, only(allowed)) {
                return Some((name, cycle));
            }
        }
    }
    // One anti-dependency closed by a path of ww and wr edges.
    for start in starts {
        for edge in graph.edges(*start) {
            use petgraph::visit::EdgeRef;
            if *edge.weight() != Edge::Rw || !members.contains(&edge.target()) {
                continue;
            }
            let back =
                find_path(graph, members, edge.target(), *start, only(&[Edge::Ww, Edge::Wr]));
            if let Some(rest) = back {
                let mut cycle = vec![(*start, Edge::Rw)];
                cycle.extend(rest);
                return Some(("G-single", cycle));
            }
        }
    }
    let start = *starts.first()?;
    find_path(graph, members, start, start, |_| true).map(|cycle| ("G2", cycle))
}

/// The shortest path from `from` to `to` (a cycle when they are equal) through `members`, using
/// edges `allowed` accepts; each step is a node and the edge taken from it.
fn find_path(
    graph: &DiGraph<usize, Edge>,
    members: &HashSet<NodeIndex>,
    from: NodeIndex,
    to: NodeIndex,
    allowed: impl Fn(Edge) -> bool,
) -> Option<Vec<(NodeIndex, Edge)>> {
    use petgraph::visit::EdgeRef;
    let mut came_from: HashMap<NodeIndex, (NodeIndex, Edge)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        for edge in graph.edges(at) {
            let next = edge.target();
            if !allowed(*edge.weight()) || !members.contains(&next) {
                continue;
            }
            if next == to {
                let mut path = vec![(at, *edge.weight())];
                let mut cursor = at;
                while cursor != from {
                    let (previous, e) = came_from[&cursor];
                    path.push((previous, e));
                    cursor = previous;
                }
                path.reverse();
                return Some(path);
            }
            if next != from && !came_from.contains_key(&next) {
                came_from.insert(next, (at, *edge.weight()));
                queue.push_back(next);
            }
        }
    }
    None
}
