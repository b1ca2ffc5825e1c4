//! Transaction goldenscripts: each script in `testscripts/txn/` runs concurrent transactions
//! against three in-process stores (ranges split at "m") and records what each saw.
//!
//! ```text
//!   t1: begin [priority=N]      t1: get k=a        t1: put k=a v=1     t1: del k=a
//!   t1: scan k=a end=z          t1: inc k=a by=5   t1: commit          t1: rollback
//!   t1: get k=a lock / t1: scan k=a end=z lock     locking reads (SELECT … FOR UPDATE)
//!   t1: restart                 t1: crash (its coordinator dies: no heartbeat, no cleanup)
//!   t1: fix-ts                  fixes the commit timestamp (as cluster_logical_timestamp())
//!   t2: put k=a v=2 [async]     runs in the background; prints "blocked" while it waits for
//!                               another transaction, or its result if it finishes first
//!   t2: await                   waits for t2's background operation and prints its result
//!   get k=a / put k=a v=1 / scan k=a end=z      outside any transaction
//!   advance 6s / advance 100ms  moves every node's clock forward
//! ```
//!
//! Every node and the gateway share one manual clock, so time moves only when a script says
//! so: values written after a transaction began are inside its uncertainty window, and
//! records expire only on `advance`. Transaction `tN` has id N, so who wins a tie is fixed.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use goldenscript::{Command, Context};
use shoal_api::{KvError, Request, Response};
use shoal_hlc::{Clock, DEFAULT_MAX_OFFSET, ManualClock};
use shoal_keys::{Key, Span};
use test_each_file::test_each_path;

use crate::tests::cluster_with;
use crate::txn::{DEFAULT_PRIORITY, Txn};
use crate::{KvClient, KvOps};

test_each_path! { in "crates/shoal-kvclient/testscripts/txn" as scripts => run_script }

fn run_script(path: &std::path::Path) {
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap(),
    );
    let mut runner = runtime.block_on(Runner::new(runtime.clone()));
    goldenscript::run(&mut runner, path).expect("goldenscript failed");
}

type CmdResult = Result<String, Box<dyn StdError>>;

struct Runner {
    runtime: Arc<tokio::runtime::Runtime>,
    client: Arc<KvClient>,
    physical: Arc<ManualClock>,
    txns: HashMap<String, Arc<Txn>>,
    background: HashMap<String, tokio::task::JoinHandle<String>>,
    _net: Arc<shoal_raft::testing::LocalNet>,
}

impl Runner {
    async fn new(runtime: Arc<tokio::runtime::Runtime>) -> Self {
        let physical = Arc::new(ManualClock::new(1_000_000_000_000));
        let clock = || Arc::new(Clock::new(physical.clone(), DEFAULT_MAX_OFFSET));
        let (client, net, _stores) = cluster_with(vec![clock(), clock(), clock()], clock()).await;
        // Both user ranges serve a first request, which starts their leases' timestamp caches
        // above the clock plus the maximum offset; then the clock passes that, so scripts
        // start where a range has been serving for a while.
        for key in ["a", "z"] {
            client.get(key).await.expect("a first read");
        }
        physical.advance(2 * DEFAULT_MAX_OFFSET);
        Runner {
            runtime,
            client: Arc::new(client),
            physical,
            txns: HashMap::new(),
            background: HashMap::new(),
            _net: net,
        }
    }

    fn txn(&self, name: &str) -> Result<Arc<Txn>, Box<dyn StdError>> {
        self.txns.get(name).cloned().ok_or_else(|| format!("no transaction {name}").into())
    }
}

impl goldenscript::Runner for Runner {
    type Command = Command;

    fn run(&mut self, command: &Command, context: &Context) -> CmdResult {
        let runtime = self.runtime.clone();
        match &context.prefix {
            None => runtime.block_on(self.run_plain(command)),
            Some(name) => {
                let name = name.clone();
                runtime.block_on(self.run_txn(&name, command, context.tags.contains("async")))
            }
        }
    }
}

/// Parses the operation of a command into the request it sends, if it is one.
fn request_of(command: &Command) -> Result<Option<Request>, Box<dyn StdError>> {
    let mut args = command.consume_args();
    let key = |args: &mut goldenscript::ArgumentConsumer<'_>| -> Result<Key, Box<dyn StdError>> {
        Ok(Key::from(args.take_key("k").ok_or("k= required")?))
    };
    let request = match command.name.as_str() {
        "get" => {
            let key = key(&mut args)?;
            match args.next_pos() {
                Some("lock") => Request::LockingGet { key },
                Some(other) => return Err(format!("unexpected argument {other}").into()),
                None => Request::Get { key },
            }
        }
        "put" => Request::Put {
            key: key(&mut args)?,
            value: args.take_key("v").ok_or("v= required")?.as_bytes().to_vec(),
        },
        "del" => Request::Delete { key: key(&mut args)? },
        "inc" => {
            let key = key(&mut args)?;
            let delta = args.take_key("by").map(str::parse).transpose()?.unwrap_or(1);
            Request::Increment { key, delta }
        }
        "scan" => {
            let start = key(&mut args)?;
            let end = Key::from(args.take_key("end").ok_or("end= required")?);
            let span = Span::new(start, end);
            match args.next_pos() {
                Some("lock") => Request::LockingScan { span, limit: None },
                Some(other) => return Err(format!("unexpected argument {other}").into()),
                None => Request::Scan { span, limit: None, filter: None },
            }
        }
        _ => return Ok(None),
    };
    args.reject_next()?;
    Ok(Some(request))
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Prints a response the way scripts read it.
fn show_response(request: &Request, response: &Response) -> String {
    match (request, response) {
        (Request::Get { key } | Request::LockingGet { key }, Response::Get(value)) => {
            format!("{} → {}\n", show(key.as_bytes()), value.as_deref().map_or("∅".into(), show))
        }
        (_, Response::Scan { rows, .. }) => {
            if rows.is_empty() {
                return "(none)\n".into();
            }
            rows.iter().map(|(k, v)| format!("{} → {}\n", show(k.as_bytes()), show(v))).collect()
        }
        (Request::Increment { key, .. }, Response::Increment(n)) => {
            format!("{} → {n}\n", show(key.as_bytes()))
        }
        _ => String::new(),
    }
}

/// Prints an error without its timestamps, which differ from run to run.
fn show_error(error: &KvError) -> String {
    match error {
        KvError::TxnRetry { reason, .. } => format!("restart transaction ({reason})"),
        other => other.to_string(),
    }
}

impl Runner {
    async fn run_plain(&mut self, command: &Command) -> CmdResult {
        if command.name == "advance" {
            let mut args = command.consume_args();
            let by = args.next_pos().ok_or("a duration is required")?.to_string();
            args.reject_next()?;
            let duration = match by.strip_suffix("ms") {
                Some(ms) => Duration::from_millis(ms.parse()?),
                None => Duration::from_secs(by.trim_end_matches('s').parse()?),
            };
            self.physical.advance(duration);
            return Ok(String::new());
        }
        let request =
            request_of(command)?.ok_or_else(|| format!("unknown command {}", command.name))?;
        let mut responses = self.client.send(vec![request.clone()]).await?;
        let response = responses.pop().ok_or("no response")?;
        Ok(show_response(&request, &response))
    }

    async fn run_txn(&mut self, name: &str, command: &Command, background: bool) -> CmdResult {
        match command.name.as_str() {
            "begin" => {
                let mut args = command.consume_args();
                let priority = args
                    .take_key("priority")
                    .map(str::parse)
                    .transpose()?
                    .unwrap_or(DEFAULT_PRIORITY);
                args.reject_next()?;
                let id: u128 = name.trim_start_matches('t').parse()?;
                let txn = self.client.begin_with_id(id, priority);
                self.txns.insert(name.to_string(), Arc::new(txn));
                return Ok(String::new());
            }
            "await" => {
                let handle =
                    self.background.remove(name).ok_or("nothing runs in the background")?;
                let out = tokio::time::timeout(Duration::from_secs(30), handle).await??;
                return Ok(if out.is_empty() { "ok\n".into() } else { out });
            }
            "crash" => {
                // The coordinator is gone: no heartbeat, no rollback, intents left behind.
                self.txns.remove(name).ok_or("no such transaction")?;
                return Ok(String::new());
            }
            "restart" => {
                self.txn(name)?.restart();
                return Ok(String::new());
            }
            "fix-ts" => {
                let txn = self.txn(name)?;
                let fixed = txn.fix_commit_timestamp();
                return Ok(if fixed == txn.read_ts() {
                    String::new()
                } else {
                    "the fixed timestamp is not the read timestamp\n".into()
                });
            }
            _ => {}
        }
        let txn = self.txn(name)?;
        let request = request_of(command)?;
        let op_name = command.name.clone();
        if request.is_none() && !matches!(op_name.as_str(), "commit" | "rollback") {
            return Err(format!("unknown command {op_name}").into());
        }
        let op = async move {
            let read_ts = txn.read_ts();
            let result = match &request {
                Some(request) => txn
                    .send(vec![request.clone()])
                    .await
                    .map(|mut r| r.pop().map(|r| show_response(request, &r)).unwrap_or_default()),
                None if op_name == "commit" => txn.commit().await.map(|()| String::new()),
                None => txn.rollback().await.map(|()| String::new()),
            };
            let mut out = String::new();
            if txn.read_ts() != read_ts {
                out += "(timestamp moved up: earlier reads refreshed)\n";
            }
            match result {
                Ok(shown) => out += &shown,
                Err(e) => {
                    let _ = writeln!(out, "Error: {}", show_error(&e));
                }
            }
            out
        };
        if !background {
            let out = op.await;
            // An error fails the command (a script marks expected failures with `!`).
            if let Some(error) = out.lines().find_map(|l| l.strip_prefix("Error: ")) {
                return Err(error.to_string().into());
            }
            return Ok(out);
        }
        let id = self.txn(name)?.meta().id;
        let handle = tokio::spawn(op);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if handle.is_finished() {
                return Ok(handle.await?);
            }
            if self.client.sender().waiting_txns().contains(&id) {
                self.background.insert(name.to_string(), handle);
                return Ok("blocked\n".into());
            }
            if tokio::time::Instant::now() > deadline {
                return Err("the operation neither finished nor waited".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
