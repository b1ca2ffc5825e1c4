//! `shoal demo`: a whole cluster in one process, with sample data and the shell open on it.
//!
//! The nodes are real: each has its own RocksDB store (in a temporary directory removed on
//! exit), its own node-to-node, HTTP and pgwire listeners on loopback ports, and they talk over
//! TCP exactly as separate processes do. Only the process is shared.
//!
//! ```text
//!   shoal demo --nodes 3
//!     bind nodes on 26257/8080/15432 and up (or ports the OS picks), each joining the others
//!     init from the first: it hellos the others, which become nodes 2 and 3 (more join later)
//!     load the sample schema (customers, orders) and split it into several ranges
//!     print the addresses; open the shell on node 1 (every node's URL to fall back on)
//!   demo> \demo shutdown 2      node 2's server stops; its store stays
//!   demo> \demo restart 2       node 2 starts again on the same store and ports
//! ```
//!
//! Invariants: a node restarts on the addresses it first bound (its peers know it by them),
//! and node numbers in `\demo` commands are node ids.
//!
//! Out of scope: adding nodes to a running demo, crashes (shutdown is graceful; `kill -9` of
//! real processes is what the end-to-end tests and the Jepsen harness do), saving the data.
//!
//! Hazard: the nodes share one tokio runtime with the shell, so a node that blocks a worker
//! thread slows its neighbours in a way separate processes would not.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use shoal_hlc::Clock;
use shoal_server::{Server, ServerConfig};
use tokio::sync::Mutex;

use crate::client::NodeClient;
use crate::shell::{ScriptArgs, Shell};

/// Flags of `shoal demo`.
#[derive(Args, Clone)]
pub struct DemoArgs {
    /// How many nodes to start (ranges keep three replicas, so three or more survive one
    /// node's loss).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub nodes: u8,
    /// Listen on ports the OS picks, instead of 26257, 8080 and 15432 and up (which the demo
    /// uses only when every one of them is free).
    #[arg(long)]
    pub random_ports: bool,
    #[command(flatten)]
    pub script: ScriptArgs,
}

/// The sample schema: two tables, split so that their rows live in several ranges.
const SCHEMA: &str = "
CREATE TABLE customers (
    id INT PRIMARY KEY,
    name TEXT NOT NULL,
    city TEXT NOT NULL
);
CREATE TABLE orders (
    id INT PRIMARY KEY,
    customer_id INT NOT NULL,
    amount DECIMAL(10, 2) NOT NULL,
    placed_at TIMESTAMP NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_id);
ALTER TABLE customers SPLIT AT VALUES (50);
ALTER TABLE orders SPLIT AT VALUES (250), (500), (750);
";

const CUSTOMERS: usize = 100;
const ORDERS: usize = 1_000;
const CITIES: [&str; 5] = ["Amsterdam", "Lisbon", "Nairobi", "Osaka", "Valparaíso"];
const NAMES: [&str; 10] =
    ["Ada", "Bao", "Chidi", "Dara", "Emil", "Farah", "Goran", "Hana", "Ines", "Jun"];

/// One node of the demo.
struct Slot {
    /// How it was started; its addresses are the ones it first bound.
    config: ServerConfig,
    /// The running server, or None while it is shut down.
    server: Option<Server>,
}

/// The demo's nodes, ordered by node id.
pub struct Demo {
    slots: Mutex<Vec<Slot>>,
    /// Which slots run, readable without the lock (the shell asks after each `\demo`).
    running: std::sync::Mutex<Vec<bool>>,
    clock: Arc<Clock>,
    /// The stores; removed when the demo ends.
    dir: tempfile::TempDir,
}

/// Runs `shoal demo`.
pub async fn run(args: DemoArgs) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("shoal-demo-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    log_to(&dir.path().join("demo.log"))?;
    println!(
        "# Starting {} nodes in this process (stores in {}) ...",
        args.nodes,
        dir.path().display()
    );
    let ports = choose_ports(usize::from(args.nodes), args.random_ports)?;
    let demo = Arc::new(Demo::start(dir, &ports).await?);
    let loaded = demo.load_sample_data().await;
    let result = match loaded {
        Ok(()) => {
            println!("{}", demo.banner().await);
            match Shell::connect(demo.pg_urls().await, Some(demo.clone()), args.script.format).await
            {
                Ok(mut shell) => shell.run(&args.script).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    demo.stop_all().await;
    result
}

/// Sends the nodes' logs to a file, so they do not interleave with the shell's output.
fn log_to(path: &std::path::Path) -> Result<(), String> {
    let file = std::fs::File::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
                .unwrap_or_else(|_| "info,openraft=warn,tarpc=warn".into()),
        )
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The `[rpc, http, pgwire]` ports of `n` nodes: `shoal start`'s defaults counting up per node
/// (so the tour's `curl localhost:8080` and `psql -p 15432` work) when all of them are free and
/// `random` is not asked for; otherwise ports the OS hands out. Every node must know the
/// others' ports before any starts, so each can name them all in its join list.
fn choose_ports(n: usize, random: bool) -> Result<Vec<[u16; 3]>, String> {
    let wanted: Vec<[u16; 3]> = (0..n as u16).map(|i| [26257 + i, 8080 + i, 15432 + i]).collect();
    let free = |port: &u16| std::net::TcpListener::bind(loopback(*port)).is_ok();
    if !random && wanted.iter().flatten().all(free) {
        return Ok(wanted);
    }
    // Held all at once, so the OS hands out distinct ports; released just before the nodes
    // bind them.
    let held: Vec<std::net::TcpListener> = (0..3 * n)
        .map(|_| std::net::TcpListener::bind(loopback(0)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find free ports: {e}"))?;
    let ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find free ports: {e}"))?;
    Ok(ports.chunks(3).map(|c| [c[0], c[1], c[2]]).collect())
}

fn pg_url(addr: Option<SocketAddr>) -> String {
    match addr {
        Some(addr) => format!("postgres://root@{addr}/defaultdb?sslmode=disable"),
        None => String::new(),
    }
}

impl Demo {
    /// Binds a node on each `[rpc, http, pgwire]` port triple and forms them into a cluster.
    async fn start(dir: tempfile::TempDir, ports: &[[u16; 3]]) -> Result<Demo, String> {
        let clock = Arc::new(Clock::system().0);
        let rpc_addrs: Vec<String> = ports.iter().map(|p| loopback(p[0]).to_string()).collect();
        let mut slots: Vec<Slot> = Vec::new();
        for (i, [rpc, http, pg]) in ports.iter().copied().enumerate() {
            let store = dir.path().join(format!("store{}", i + 1));
            let mut config = ServerConfig::new(store, loopback(rpc), loopback(http));
            config.pg_addr = Some(loopback(pg));
            config.join = rpc_addrs.iter().filter(|a| **a != rpc_addrs[i]).cloned().collect();
            let server = Server::bind(config.clone(), clock.clone())
                .await
                .map_err(|e| format!("cannot start node {}: {e}", i + 1))?;
            slots.push(Slot { config, server: Some(server) });
        }
        let servers: Vec<Server> = slots.iter().filter_map(|s| s.server.clone()).collect();
        let joining: Vec<_> = servers[1..]
            .iter()
            .map(|s| {
                let s = s.clone();
                tokio::spawn(async move { s.join_cluster().await })
            })
            .collect();
        // The first node's init hellos the others in join-list order: they become nodes 2
        // and 3; any more join by themselves as 4, 5, ...
        servers[0]
            .init_cluster("demo".into())
            .await
            .map_err(|e| format!("cannot initialize the cluster: {e}"))?;
        for joined in joining {
            joined
                .await
                .map_err(|e| format!("a node failed to join: {e}"))?
                .map_err(|e| format!("a node failed to join: {e}"))?;
        }
        slots.sort_by_key(|s| s.server.as_ref().map_or(0, Server::node_id));
        Ok(Demo {
            running: std::sync::Mutex::new(vec![true; slots.len()]),
            slots: Mutex::new(slots),
            clock,
            dir,
        })
    }

    async fn load_sample_data(&self) -> Result<(), String> {
        let node = {
            let slots = self.slots.lock().await;
            slots[0].server.clone().ok_or("node 1 is not running")?
        };
        let cluster = node.require_cluster().map_err(|e| e.to_string())?;
        let mut session = cluster.sql.session();
        let mut script = String::from(SCHEMA);
        let customers: Vec<String> = (1..=CUSTOMERS)
            .map(|id| {
                let name = format!("{} {}", NAMES[id % NAMES.len()], id);
                format!("({id}, '{name}', '{}')", CITIES[id % CITIES.len()])
            })
            .collect();
        writeln!(script, "INSERT INTO customers VALUES {};", customers.join(", ")).ok();
        let orders: Vec<String> = (1..=ORDERS)
            .map(|id| {
                let customer = (id * 37) % CUSTOMERS + 1;
                let amount = (id * 7919) % 50_000;
                let day = id % 28 + 1;
                let hour = id % 24;
                format!(
                    "({id}, {customer}, {}.{:02}, '2026-11-{day:02} {hour:02}:00:00')",
                    amount / 100,
                    amount % 100
                )
            })
            .collect();
        writeln!(script, "INSERT INTO orders VALUES {};", orders.join(", ")).ok();
        // A fresh cluster may still be electing leaders: a statement that found no leader
        // (58000) or had to restart (40001) did not take effect and is run again.
        for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                match session.execute(statement).await {
                    Ok(_) => break,
                    Err(e)
                        if tokio::time::Instant::now() < deadline
                            && matches!(e.sqlstate(), "58000" | "40001") =>
                    {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => return Err(format!("cannot load the sample data: {e}")),
                }
            }
        }
        Ok(())
    }

    /// Every node's pgwire URL, by node id.
    async fn pg_urls(&self) -> Vec<String> {
        self.slots.lock().await.iter().map(|s| pg_url(s.config.pg_addr)).collect()
    }

    async fn banner(&self) -> String {
        let slots = self.slots.lock().await;
        let mut text = format!(
            "# Shoal demo: {} nodes in one process, stores in {} (deleted on exit).\n",
            slots.len(),
            self.dir.path().display()
        );
        for (i, slot) in slots.iter().enumerate() {
            let http = slot.config.http_addr;
            writeln!(text, "#   node {}: sql {}", i + 1, pg_url(slot.config.pg_addr)).ok();
            writeln!(text, "#           http http://{http}/v1/sql  metrics http://{http}/metrics")
                .ok();
        }
        writeln!(
            text,
            "# Sample data: customers ({CUSTOMERS} rows) and orders ({ORDERS} rows), in several \
             ranges. Try:\n\
             #   SELECT city, count(*) FROM customers GROUP BY city ORDER BY city;\n\
             #   SHOW RANGES FROM TABLE orders;\n\
             #   \\demo shutdown 2       then query again: two of three replicas still agree\n\
             #   \\demo shutdown 3       with two nodes down there is no quorum: queries fail\n\
             #   \\demo restart 2        and they work again\n\
             # Logs: {}",
            self.dir.path().join("demo.log").display()
        )
        .ok();
        text
    }

    /// Whether node `index + 1` is running.
    pub fn is_running(&self, index: usize) -> bool {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(index).copied().unwrap_or(false)
    }

    fn set_running(&self, index: usize, on: bool) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running[index] = on;
    }

    /// Runs a `\demo` command, returning what to print.
    pub async fn command(&self, args: &[String]) -> Result<String, String> {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["ls"] => self.list().await,
            ["shutdown", n] => {
                let index = self.index(n).await?;
                let server = self.slots.lock().await[index].server.take();
                let server = server.ok_or(format!("node {n} is not running"))?;
                server.shutdown().await;
                self.set_running(index, false);
                Ok(format!("node {n} stopped\n"))
            }
            ["restart", n] => {
                let index = self.index(n).await?;
                let mut slots = self.slots.lock().await;
                if slots[index].server.is_some() {
                    return Err(format!("node {n} is already running"));
                }
                let server = Server::bind(slots[index].config.clone(), self.clock.clone())
                    .await
                    .map_err(|e| format!("cannot restart node {n}: {e}"))?;
                server.join_cluster().await.map_err(|e| format!("node {n}: {e}"))?;
                slots[index].server = Some(server);
                self.set_running(index, true);
                Ok(format!("node {n} restarted\n"))
            }
            _ => Err("usage: \\demo ls | \\demo shutdown N | \\demo restart N".into()),
        }
    }

    async fn index(&self, n: &str) -> Result<usize, String> {
        let count = self.slots.lock().await.len();
        match n.parse::<usize>() {
            Ok(n) if (1..=count).contains(&n) => Ok(n - 1),
            _ => Err(format!("no node {n:?}: the demo has nodes 1 to {count}")),
        }
    }

    /// `\demo ls`: each node's addresses and state, with liveness as a running node sees it.
    async fn list(&self) -> Result<String, String> {
        let slots = self.slots.lock().await;
        let reporter = slots.iter().find(|s| s.server.is_some()).map(|s| s.config.http_addr);
        let mut seen = serde_json::Value::Null;
        if let Some(http) = reporter {
            // Liveness and counts come from the cluster's view; a stopped node shows as dead
            // once its liveness record expires (a few seconds), not at once.
            let answer = NodeClient::new(&http.to_string()).get("/v1/nodes").await;
            seen = answer.unwrap_or_default();
        }
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        table.set_header(["node", "process", "liveness", "replicas", "leases", "sql", "http"]);
        for (i, slot) in slots.iter().enumerate() {
            let id = i as u64 + 1;
            let status = seen["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|n| n["status"]["address"]["node_id"].as_u64() == Some(id));
            let field =
                |name: &str| status.map_or("?".to_string(), |s| s["status"][name].to_string());
            let live = match status.and_then(|s| s["live"].as_bool()) {
                Some(true) => "live",
                Some(false) => "dead",
                None => "?",
            };
            table.add_row([
                id.to_string(),
                if slot.server.is_some() { "running" } else { "stopped" }.to_string(),
                live.to_string(),
                field("replicas"),
                field("leases"),
                slot.config.pg_addr.map(|a| a.to_string()).unwrap_or_default(),
                slot.config.http_addr.to_string(),
            ]);
        }
        Ok(format!("{table}\n"))
    }

    /// Stops every running node (at exit), so each store closes cleanly before it is removed.
    async fn stop_all(&self) {
        let mut slots = self.slots.lock().await;
        for slot in slots.iter_mut() {
            if let Some(server) = slot.server.take() {
                server.shutdown().await;
            }
        }
    }
}
