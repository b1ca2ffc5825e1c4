//! Goldenscript tests of MVCC, run against both engines.
//!
//! Each script in `testscripts/mvcc/` runs first on RocksDB (the output is compared with, or
//! with `UPDATE_GOLDENFILES=1` written to, the file) and then on the in-memory engine, whose
//! output must be identical.
//!
//! Commands (keys and values are strings, timestamps `SECONDS[.FRACTION][,LOGICAL]`):
//!
//! ```text
//! put k=KEY v=VALUE ts=TS [local=TS] non-transactional write       t1: put k=KEY v=VALUE [local=TS]
//! del k=KEY ts=TS [local=TS]         non-transactional tombstone    t1: del k=KEY [local=TS]
//! get k=KEY ts=TS [unc=TS] [local=TS] [locking=true]  read          t1: get k=KEY [ts=TS] [unc=TS] [local=TS] [locking=true]
//! scan [from=KEY] [to=KEY] ts=TS [limit=N] [reverse] [unc=TS] [local=TS]   t1: scan ...
//! gc [from=KEY] [to=KEY] threshold=TS   raise the GC threshold and collect
//! dump                               every entry of the MVCC column family
//! t1: begin ts=TS                    start t1 reading and writing at TS
//! t1: lock k=KEY [local=TS]          take an exclusive lock (what a locking read leaves)
//! t1: push ts=TS                     move t1's write timestamp and intents up (a push)
//! t1: restart ts=TS                  next epoch, reading and writing at TS
//! t1: commit [ts=TS]                 resolve t1's intents as committed (at its write ts)
//! t1: abort                          resolve t1's intents as aborted
//! t1: resolve k=KEY status=commit|abort|pending [ts=TS]   resolve one intent
//! ```
//!
//! Write commands print the batch they applied: `set a@10 = 1`, `set lock a = t1 ...`. On a
//! write, `local=` is the writing node's clock (by default the write's timestamp); on a read,
//! the reader's observation of that clock (its local uncertainty limit).

use std::collections::{BTreeSet, HashMap};
use std::error::Error as StdError;
use std::fmt::Write as _;

use goldenscript::{Command, Context};
use shoal_hlc::Timestamp;
use shoal_keys::{Key, Span, layout};
use test_each_file::test_each_path;

use super::key::decode;
use super::value::{LockKind, LockRecord, decode_version};
use super::*;
use crate::engine::{
    BatchOp, Cf, Engine, IterOptions, MemoryEngine, RocksEngine, WriteBatch, WriteOptions, scan_all,
};

test_each_path! { in "crates/shoal-storage/testscripts/mvcc" as scripts => run_script }

fn run_script(path: &std::path::Path) {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksEngine::open(dir.path().join("store")).unwrap();
    goldenscript::run(&mut Runner::new(rocks), path).expect("goldenscript failed on RocksDB");
    let script = std::fs::read_to_string(path).unwrap();
    let memory = goldenscript::generate(&mut Runner::new(MemoryEngine::new()), &script).unwrap();
    assert_eq!(memory, script, "the in-memory engine disagrees with RocksDB");
}

struct TxnState {
    name: String,
    meta: TxnMeta,
    read_ts: Timestamp,
    written: BTreeSet<Vec<u8>>,
}

struct Runner<E: Engine> {
    engine: E,
    txns: HashMap<String, TxnState>,
    gc_threshold: Timestamp,
}

type CmdResult = Result<String, Box<dyn StdError>>;

impl<E: Engine> Runner<E> {
    fn new(engine: E) -> Self {
        Runner { engine, txns: HashMap::new(), gc_threshold: Timestamp::ZERO }
    }

    fn txn(&self, name: &str) -> Result<&TxnState, Box<dyn StdError>> {
        self.txns.get(name).ok_or_else(|| format!("unknown txn {name}: begin it first").into())
    }

    fn txn_mut(&mut self, name: &str) -> Result<&mut TxnState, Box<dyn StdError>> {
        self.txns.get_mut(name).ok_or_else(|| format!("unknown txn {name}: begin it first").into())
    }

    fn txn_name(&self, id: u128) -> String {
        self.txns
            .values()
            .find(|t| t.meta.id == id)
            .map_or_else(|| format!("{id:x}"), |t| t.name.clone())
    }

    /// Applies `batch` and prints its operations. MVCC tests need no durability: no sync.
    fn apply(&self, batch: WriteBatch) -> CmdResult {
        let mut out = String::new();
        for op in batch.ops() {
            match op {
                BatchOp::Put { key, value, .. } => {
                    writeln!(out, "set {}", self.format_entry(key, value)?)?;
                }
                BatchOp::Delete { key, .. } => writeln!(out, "del {}", self.format_key(key)?)?,
                BatchOp::DeleteRange { .. } => unreachable!("MVCC never deletes ranges"),
            }
        }
        self.engine.write(&batch, WriteOptions::NO_SYNC)?;
        Ok(out)
    }

    fn format_key(&self, engine_key: &[u8]) -> Result<String, Box<dyn StdError>> {
        let (key, ts) = decode(engine_key)?;
        Ok(match (layout::decode_lock_key(&key), ts) {
            (Some(locked), None) => format!("lock {}", show(locked)),
            (_, Some(ts)) => format!("{}@{}", show(&key), show_ts(ts)),
            (None, None) => format!("{} (unversioned)", show(&key)),
        })
    }

    fn format_entry(&self, engine_key: &[u8], value: &[u8]) -> Result<String, Box<dyn StdError>> {
        let (key, ts) = decode(engine_key)?;
        Ok(match (layout::decode_lock_key(&key), ts) {
            (Some(locked), None) => {
                let lock = LockRecord::decode(value)?;
                let local = if lock.local_ts < lock.txn.write_ts {
                    format!(" local={}", show_ts(lock.local_ts))
                } else {
                    String::new()
                };
                format!(
                    "lock {} = {} epoch={} ts={}{local} {}",
                    show(locked),
                    self.txn_name(lock.txn.id),
                    lock.txn.epoch,
                    show_ts(lock.txn.write_ts),
                    match &lock.kind {
                        LockKind::Intent(value) => show_value(value.as_deref()),
                        LockKind::Exclusive => "exclusive".to_string(),
                    }
                )
            }
            _ => {
                let (value, local) = decode_version(value)?;
                let local = local.map(|ts| format!(" (local={})", show_ts(ts))).unwrap_or_default();
                format!(
                    "{} = {}{local}",
                    self.format_key(engine_key)?,
                    show_value(value.as_deref())
                )
            }
        })
    }

    fn run_txn(&mut self, name: &str, command: &Command) -> CmdResult {
        let mut args = command.consume_args();
        let mut out = String::new();
        match command.name.as_str() {
            "begin" => {
                let ts: Timestamp = args.lookup_parse("ts")?.ok_or("ts= required")?;
                let priority = args.lookup_parse("priority")?.unwrap_or(1);
                args.reject_rest()?;
                let id = self.txns.len() as u128 + 1;
                let meta = TxnMeta { id, anchor: Key::MIN, epoch: 0, write_ts: ts, priority };
                let state = TxnState {
                    name: name.to_string(),
                    meta,
                    read_ts: ts,
                    written: BTreeSet::new(),
                };
                self.txns.insert(name.to_string(), state);
            }
            "put" | "del" => {
                let key = args.lookup("k").ok_or("k= required")?.as_bytes().to_vec();
                let value = if command.name == "put" {
                    Some(args.lookup("v").ok_or("v= required")?)
                } else {
                    None
                };
                let local: Option<Timestamp> = args.lookup_parse("local")?;
                args.reject_rest()?;
                let txn = self.txn_mut(name)?;
                if txn.written.is_empty() {
                    txn.meta.anchor = Key::new(key.clone());
                }
                txn.written.insert(key.clone());
                let meta = txn.meta.clone();
                let mut batch = WriteBatch::new();
                put(
                    &self.engine,
                    &mut batch,
                    &key,
                    meta.write_ts,
                    local.unwrap_or(meta.write_ts),
                    value.map(str::as_bytes),
                    Some(&meta),
                )?;
                out = self.apply(batch)?;
            }
            "lock" => {
                let key = args.lookup("k").ok_or("k= required")?.as_bytes().to_vec();
                let local: Option<Timestamp> = args.lookup_parse("local")?;
                args.reject_rest()?;
                let txn = self.txn_mut(name)?;
                if txn.written.is_empty() {
                    txn.meta.anchor = Key::new(key.clone());
                }
                txn.written.insert(key.clone());
                let meta = txn.meta.clone();
                let mut batch = WriteBatch::new();
                acquire_lock(
                    &self.engine,
                    &mut batch,
                    &key,
                    &meta,
                    local.unwrap_or(meta.write_ts),
                )?;
                out = self.apply(batch)?;
            }
            "get" | "scan" => {
                let txn = self.txn(name)?;
                let (meta, read_ts) = (txn.meta.clone(), txn.read_ts);
                out = self.read(command, args, read_ts, Some(&meta))?;
            }
            "push" => {
                let ts: Timestamp = args.lookup_parse("ts")?.ok_or("ts= required")?;
                args.reject_rest()?;
                let txn = self.txn_mut(name)?;
                txn.meta.write_ts = txn.meta.write_ts.max(ts);
                writeln!(out, "write ts {}", show_ts(txn.meta.write_ts))?;
                // A pusher moves the pushed transaction's intents up as it meets them.
                let txn = self.txn(name)?;
                let resolution = Resolution::Pending { write_ts: txn.meta.write_ts };
                let mut batch = WriteBatch::new();
                for key in &txn.written {
                    resolve_intent(&self.engine, &mut batch, key, txn.meta.id, resolution)?;
                }
                out += &self.apply(batch)?;
            }
            "restart" => {
                let ts: Timestamp = args.lookup_parse("ts")?.ok_or("ts= required")?;
                args.reject_rest()?;
                let txn = self.txn_mut(name)?;
                txn.meta.epoch += 1;
                txn.meta.write_ts = ts;
                txn.read_ts = ts;
                writeln!(out, "epoch {} at {}", txn.meta.epoch, show_ts(ts))?;
            }
            "commit" | "abort" => {
                let ts: Option<Timestamp> = args.lookup_parse("ts")?;
                args.reject_rest()?;
                let txn = self.txn(name)?;
                let resolution = match command.name.as_str() {
                    "commit" => Resolution::Commit {
                        commit_ts: ts.unwrap_or(txn.meta.write_ts),
                        epoch: txn.meta.epoch,
                    },
                    _ => Resolution::Abort,
                };
                let mut batch = WriteBatch::new();
                for key in &txn.written {
                    resolve_intent(&self.engine, &mut batch, key, txn.meta.id, resolution)?;
                }
                out = self.apply(batch)?;
            }
            "resolve" => {
                let key = args.lookup("k").ok_or("k= required")?.as_bytes().to_vec();
                let status = args.lookup("status").ok_or("status= required")?;
                let ts: Option<Timestamp> = args.lookup_parse("ts")?;
                args.reject_rest()?;
                let txn = self.txn(name)?;
                let resolution = match status {
                    "commit" => Resolution::Commit {
                        commit_ts: ts.unwrap_or(txn.meta.write_ts),
                        epoch: txn.meta.epoch,
                    },
                    "abort" => Resolution::Abort,
                    "pending" => Resolution::Pending { write_ts: ts.unwrap_or(txn.meta.write_ts) },
                    other => return Err(format!("unknown status {other}").into()),
                };
                let mut batch = WriteBatch::new();
                let resolved =
                    resolve_intent(&self.engine, &mut batch, &key, txn.meta.id, resolution)?;
                if !resolved {
                    writeln!(out, "no intent of {name} on {}", show(&key))?;
                }
                out += &self.apply(batch)?;
            }
            "refresh" => {
                // Would the transaction's reads of [k, end) at its read timestamp see the same
                // data at `to`?
                let start = args.lookup("k").ok_or("k= required")?.to_string();
                let end =
                    args.lookup("end").map(str::to_string).unwrap_or_else(|| start.clone() + "\0");
                let to: Timestamp = args.lookup_parse("to")?.ok_or("to= required")?;
                args.reject_rest()?;
                let txn = self.txn(name)?;
                let span = Span::new(start.as_str(), end.as_str());
                match refresh_conflict(&self.engine, &span, txn.read_ts, to, Some(txn.meta.id))? {
                    None => writeln!(out, "refresh to {} ok", show_ts(to))?,
                    Some(RefreshConflict::Version { key, ts }) => writeln!(
                        out,
                        "refresh failed: {} has a version at {}",
                        show(key.as_bytes()),
                        show_ts(ts)
                    )?,
                    Some(RefreshConflict::Intent { key, txn }) => writeln!(
                        out,
                        "refresh failed: {} has an intent of {}",
                        show(key.as_bytes()),
                        self.txn_name(txn.id)
                    )?,
                }
            }
            other => return Err(format!("unknown txn command {other}").into()),
        }
        Ok(out)
    }

    fn read(
        &self,
        command: &Command,
        mut args: goldenscript::ArgumentConsumer<'_>,
        default_ts: Timestamp,
        txn: Option<&TxnMeta>,
    ) -> CmdResult {
        let ts: Timestamp = args.lookup_parse("ts")?.unwrap_or(default_ts);
        let uncertainty_limit: Option<Timestamp> = args.lookup_parse("unc")?;
        let local_uncertainty_limit: Option<Timestamp> = args.lookup_parse("local")?;
        let locking: bool = args.lookup_parse("locking")?.unwrap_or(false);
        let read = ReadOptions {
            txn,
            uncertainty_limit,
            local_uncertainty_limit,
            gc_threshold: self.gc_threshold,
            locking,
        };
        let mut out = String::new();
        if command.name == "get" {
            let key = args.lookup("k").ok_or("k= required")?.as_bytes().to_vec();
            args.reject_rest()?;
            match get(&self.engine, &key, ts, read)? {
                Some(v) => writeln!(out, "{} → {} @{}", show(&key), show(&v.value), show_ts(v.ts))?,
                None => writeln!(out, "{} → none", show(&key))?,
            }
            return Ok(out);
        }
        let span = span_arg(&mut args)?;
        let limit: Option<usize> = args.lookup_parse("limit")?;
        // keep=<text>: a pushed filter keeping only values that contain <text>.
        let keep: Option<String> = args.lookup("keep").map(str::to_string);
        let reverse = match args.next_pos() {
            Some("reverse") => true,
            Some(other) => return Err(format!("unexpected argument {other}").into()),
            None => false,
        };
        args.reject_rest()?;
        let opts = ScanOptions { read, limit, reverse };
        let result = match keep {
            Some(text) => scan_filtered(&self.engine, &span, ts, opts, &mut |_, value| {
                value.windows(text.len()).any(|w| w == text.as_bytes())
            })?,
            None => scan(&self.engine, &span, ts, opts)?,
        };
        for (key, v) in &result.rows {
            writeln!(out, "{} → {} @{}", show(key.as_bytes()), show(&v.value), show_ts(v.ts))?;
        }
        if result.rows.is_empty() {
            writeln!(out, "no rows")?;
        }
        if let Some(resume) = result.resume {
            writeln!(
                out,
                "resume [{}, {})",
                show(resume.start.as_bytes()),
                show(resume.end.as_bytes())
            )?;
        }
        Ok(out)
    }
}

/// Parses `from=` and `to=` into a span; they default to the whole user keyspace.
fn span_arg(args: &mut goldenscript::ArgumentConsumer<'_>) -> Result<Span, Box<dyn StdError>> {
    let from = args.lookup("from").map(Key::from).unwrap_or(Key::new(layout::META_PREFIX));
    let to = args.lookup("to").map(Key::from).unwrap_or_else(Key::max);
    Ok(Span { start: from, end: to })
}

impl<E: Engine> goldenscript::Runner for Runner<E> {
    type Command = Command;

    fn run(&mut self, command: &Command, context: &Context) -> CmdResult {
        if let Some(name) = &context.prefix {
            return self.run_txn(name, command);
        }
        let mut args = command.consume_args();
        let mut out = String::new();
        match command.name.as_str() {
            "put" | "del" => {
                let key = args.lookup("k").ok_or("k= required")?.as_bytes().to_vec();
                let ts: Timestamp = args.lookup_parse("ts")?.ok_or("ts= required")?;
                let value = if command.name == "put" {
                    Some(args.lookup("v").ok_or("v= required")?)
                } else {
                    None
                };
                let local: Timestamp = args.lookup_parse("local")?.unwrap_or(ts);
                args.reject_rest()?;
                let mut batch = WriteBatch::new();
                put(&self.engine, &mut batch, &key, ts, local, value.map(str::as_bytes), None)?;
                out = self.apply(batch)?;
            }
            "get" | "scan" => out = self.read(command, args, Timestamp::MAX, None)?,
            "gc" => {
                let span = span_arg(&mut args)?;
                let threshold: Timestamp =
                    args.lookup_parse("threshold")?.ok_or("threshold= required")?;
                args.reject_rest()?;
                // The threshold rises before collection, as a range must persist it first.
                self.gc_threshold = self.gc_threshold.max(threshold);
                let mut batch = WriteBatch::new();
                let stats = gc(&self.engine, &mut batch, &span, threshold)?;
                out = self.apply(batch)?;
                writeln!(
                    out,
                    "gc: removed {} versions, threshold {}",
                    stats.versions_removed,
                    show_ts(self.gc_threshold)
                )?;
            }
            "dump" => {
                args.reject_rest()?;
                for (key, value) in scan_all(&self.engine, Cf::Mvcc, IterOptions::default())? {
                    writeln!(out, "{}", self.format_entry(&key, &value)?)?;
                }
            }
            other => return Err(format!("unknown command {other}").into()),
        }
        Ok(out)
    }
}

/// Small extensions over goldenscript's argument consumer.
trait ArgsExt<'a> {
    fn lookup(&mut self, key: &str) -> Option<&'a str>;
    fn lookup_parse<T: std::str::FromStr>(
        &mut self,
        key: &str,
    ) -> Result<Option<T>, Box<dyn StdError>>
    where
        T::Err: std::fmt::Display;
    fn reject_rest(&self) -> Result<(), Box<dyn StdError>>;
}

impl<'a> ArgsExt<'a> for goldenscript::ArgumentConsumer<'a> {
    fn lookup(&mut self, key: &str) -> Option<&'a str> {
        self.take_key(key)
    }

    fn lookup_parse<T: std::str::FromStr>(
        &mut self,
        key: &str,
    ) -> Result<Option<T>, Box<dyn StdError>>
    where
        T::Err: std::fmt::Display,
    {
        self.take_key(key)
            .map(|v| v.parse::<T>().map_err(|e| format!("{key}={v}: {e}").into()))
            .transpose()
    }

    fn reject_rest(&self) -> Result<(), Box<dyn StdError>> {
        self.reject_next()
    }
}

/// Prints a key or value: as text when printable, else escaped.
fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

fn show_value(value: Option<&[u8]>) -> String {
    value.map_or_else(|| "∅".to_string(), show)
}

/// Prints a timestamp compactly: `10`, `10.5`, `10,1`.
fn show_ts(ts: Timestamp) -> String {
    let secs = ts.wall / 1_000_000_000;
    let nanos = ts.wall % 1_000_000_000;
    let mut s = secs.to_string();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        s = format!("{s}.{}", fraction.trim_end_matches('0'));
    }
    if ts.logical != 0 {
        s = format!("{s},{}", ts.logical);
    }
    s
}
