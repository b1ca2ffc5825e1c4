//! Cluster control: real `shoal start` processes on loopback ports, started, killed, paused and
//! restarted by the harness, with Shoal's test hooks switched on.
//!
//! ```text
//!   run dir/                 one per run (under jepsen/store/)
//!     n1/ n2/ n3/            RocksDB stores, removed when the run ends
//!     n1.log ...             node logs, kept
//! ```
//!
//! With root, each node runs in a network namespace of its own and partitions are packet drops
//! ([`crate::net`]). Without root the harness falls back to loopback addresses, and partitions
//! go through each node's transport fault layer (`POST /v1/test/faults`), which drops the
//! node's messages to chosen peers; it says so when it starts. Either way, client traffic
//! from the harness to a node's HTTP API is never cut.
//!
//! Every process is killed when the [`Cluster`] is dropped, also on a panic; the harness's
//! Ctrl-C handler drops it too.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::net::{self, Namespaces};

/// Where the nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// Namespaces if the harness may create them, else loopback.
    Auto,
    /// Network namespaces on a private bridge (root).
    Namespaces,
    /// Loopback addresses and Shoal's transport fault layer.
    Loopback,
}

/// One `shoal start` process.
pub struct Node {
    /// 1-based position in the cluster (not necessarily its Shoal node id).
    pub index: usize,
    /// `127.0.0.1:PORT` of its HTTP API.
    pub http: String,
    rpc: String,
    store: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// The node id Shoal gave it at init.
    pub node_id: u64,
}

/// How the nodes are started.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The `shoal` binary.
    pub shoal: PathBuf,
    /// How many nodes.
    pub nodes: usize,
    /// The unsafe test hook the nodes start with, if any.
    pub unsafe_mode: Option<Unsafe>,
    /// Where the nodes run.
    pub network: NetworkMode,
}

/// A test hook that breaks one of Shoal's guarantees on purpose, so that a canary run shows
/// the checker catches exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsafe {
    /// `--unsafe-stale-reads`: `/v1/kv/get` answers from any replica (not linearizable).
    StaleReads,
    /// `--unsafe-skip-refresh`: transactions commit above their reads unchecked (not
    /// serializable).
    SkipRefresh,
}

impl Unsafe {
    /// The `shoal start` flag.
    pub fn flag(self) -> &'static str {
        match self {
            Unsafe::StaleReads => "--unsafe-stale-reads",
            Unsafe::SkipRefresh => "--unsafe-skip-refresh",
        }
    }
}

/// The nodes of one run.
pub struct Cluster {
    /// The nodes, in start order.
    pub nodes: Vec<Node>,
    options: ClusterOptions,
    join: String,
    /// The pairs of nodes (indices) that cannot talk now.
    cuts: Vec<(usize, usize)>,
    /// Each node's clock offset in ms, re-applied when a node restarts or resumes.
    clock_offsets: std::sync::Mutex<Vec<i64>>,
    /// The harness's HTTP client for hooks and admin calls (one pool for the whole run).
    pub http: reqwest::Client,
    /// Dropped after the nodes are killed (field order), so no process outlives its namespace.
    namespaces: Option<Namespaces>,
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// An HTTP client for the harness's own calls (not the workload's).
fn admin_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("building an HTTP client")
}

impl Cluster {
    /// Starts `options.nodes` nodes in `dir`, initializes the cluster and waits until every
    /// node answers.
    pub async fn start(dir: &Path, mut options: ClusterOptions) -> Result<Cluster, String> {
        options.shoal = options
            .shoal
            .canonicalize()
            .map_err(|e| format!("{}: {e}", options.shoal.display()))?;
        let namespaces = match options.network {
            NetworkMode::Loopback => None,
            NetworkMode::Namespaces => Some(Namespaces::create(options.nodes)?),
            NetworkMode::Auto => {
                match net::namespaces_available().and_then(|()| Namespaces::create(options.nodes)) {
                    Ok(namespaces) => Some(namespaces),
                    Err(why) => {
                        println!(
                            "jepsen: no network namespaces ({why}): nodes run on loopback and \
                         partitions use Shoal's transport fault layer"
                        );
                        None
                    }
                }
            }
        };
        let mut nodes = Vec::new();
        for index in 1..=options.nodes {
            let (rpc, http) = match &namespaces {
                Some(ns) => {
                    let addr = ns.address(index - 1);
                    (format!("{addr}:26257"), format!("{addr}:8080"))
                }
                None => {
                    (format!("127.0.0.1:{}", free_port()?), format!("127.0.0.1:{}", free_port()?))
                }
            };
            nodes.push(Node {
                index,
                http,
                rpc,
                store: dir.join(format!("n{index}")),
                log: dir.join(format!("n{index}.log")),
                child: None,
                paused: false,
                node_id: 0,
            });
        }
        let join = nodes.iter().map(|n| n.rpc.clone()).collect::<Vec<_>>().join(",");
        let clock_offsets = std::sync::Mutex::new(vec![0; nodes.len()]);
        let http = admin_client();
        let mut cluster = Cluster {
            nodes,
            options,
            join,
            cuts: Vec::new(),
            clock_offsets,
            http: http.clone(),
            namespaces,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        for node in &cluster.nodes {
            wait_for(&format!("n{} to listen", node.index), Duration::from_secs(60), || {
                std::net::TcpStream::connect(&node.http).is_ok()
            })
            .await?;
        }
        let first = cluster.nodes[0].http.clone();
        let init = http
            .post(format!("http://{first}/v1/cluster/init"))
            .json(&json!({}))
            .send()
            .await
            .map_err(|e| format!("init through {first}: {e}"))?;
        if !init.status().is_success() {
            return Err(format!("init through {first}: {}", init.text().await.unwrap_or_default()));
        }
        for i in 0..cluster.nodes.len() {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(info) = cluster.replicas(i).await {
                    cluster.nodes[i].node_id = info["node_id"].as_u64().unwrap_or(0);
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("n{} never joined the cluster", i + 1));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("{}: {e}", node.log.display()))?;
        let mut command = match &self.namespaces {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &ns.namespace(i)]).arg(&self.options.shoal);
                command
            }
            None => Command::new(&self.options.shoal),
        };
        command
            .args(["start", "--store"])
            .arg(&node.store)
            .args(["--listen-addr", &node.rpc, "--http-addr", &node.http, "--join", &self.join])
            .args(["--pg-addr", "127.0.0.1:0"])
            .arg("--enable-test-hooks")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        if let Some(mode) = self.options.unsafe_mode {
            command.arg(mode.flag());
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.options.shoal.display()))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// `GET /v1/test/replicas` of node `i`.
    pub async fn replicas(&self, i: usize) -> Result<Value, String> {
        let url = format!("http://{}/v1/test/replicas", self.nodes[i].http);
        let response = self.http.get(&url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url}: {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }

    /// Posts `body` to a test hook of node `i`.
    pub async fn hook(&self, i: usize, path: &str, body: Value) -> Result<(), String> {
        let url = format!("http://{}{path}", self.nodes[i].http);
        let response =
            self.http.post(&url).json(&body).send().await.map_err(|e| format!("{url}: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("{url}: {}", response.text().await.unwrap_or_default()))
        }
    }

    /// Whether nodes run in namespaces (real packet drops).
    pub fn uses_namespaces(&self) -> bool {
        self.namespaces.is_some()
    }

    /// Cuts the network between every pair in `pairs` (indices), in both directions, on top of
    /// the cuts already in place.
    pub async fn cut(&mut self, pairs: &[(usize, usize)]) -> Result<(), String> {
        self.cuts.extend_from_slice(pairs);
        match &self.namespaces {
            Some(ns) => ns.cut(pairs),
            None => self.apply_fault_layer().await,
        }
    }

    /// Removes every cut.
    pub async fn heal_network(&mut self) -> Result<(), String> {
        self.cuts.clear();
        match &self.namespaces {
            Some(ns) => ns.heal(),
            None => self.apply_fault_layer().await,
        }
    }

    /// Tells each reachable node which peers to drop, from the current cuts. A node that is
    /// down or paused gets its list when it comes back ([`Cluster::restart`],
    /// [`Cluster::signal_pause`]).
    async fn apply_fault_layer(&self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if self.reachable(i) {
                self.hook(i, "/v1/test/faults", json!({"drop": self.dropped_by(i)})).await?;
            }
        }
        Ok(())
    }

    /// The node ids node `i` must not talk to (loopback mode).
    fn dropped_by(&self, i: usize) -> Vec<u64> {
        if self.namespaces.is_some() {
            return Vec::new(); // the cuts are packet drops in the namespaces
        }
        self.cuts
            .iter()
            .filter_map(|&(a, b)| match (a == i, b == i) {
                (true, _) => Some(self.nodes[b].node_id),
                (_, true) => Some(self.nodes[a].node_id),
                _ => None,
            })
            .collect()
    }

    /// Whether node `i` runs and is not paused, so its hooks answer.
    pub fn reachable(&self, i: usize) -> bool {
        self.nodes[i].child.is_some() && !self.nodes[i].paused
    }

    /// Sets node `i`'s clock offset; a node that is down or paused gets it when it is back.
    pub async fn set_clock(&self, i: usize, offset_ms: i64) -> Result<(), String> {
        self.clock_offsets.lock().unwrap_or_else(|p| p.into_inner())[i] = offset_ms;
        if self.reachable(i) {
            self.hook(i, "/v1/test/clock", json!({"offset_ms": offset_ms})).await?;
        }
        Ok(())
    }

    /// Re-applies node `i`'s faults and clock offset (after a restart or a resume).
    async fn resync(&self, i: usize) -> Result<(), String> {
        let offset_ms = self.clock_offsets.lock().unwrap_or_else(|p| p.into_inner())[i];
        self.hook(i, "/v1/test/faults", json!({"drop": self.dropped_by(i)})).await?;
        self.hook(i, "/v1/test/clock", json!({"offset_ms": offset_ms})).await
    }

    /// kill -9 node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts node `i` on its store (after [`Cluster::kill`]).
    pub async fn restart(&mut self, i: usize) -> Result<(), String> {
        if self.nodes[i].child.is_some() {
            return Ok(());
        }
        self.spawn(i)?;
        self.wait_answering(i).await?;
        self.resync(i).await
    }

    /// Waits until node `i` answers HTTP. A restarted member accepts connections at once but
    /// answers only once its replicas run, which takes longer when it comes back into a
    /// partition (it first tries its `--join` addresses).
    async fn wait_answering(&self, i: usize) -> Result<(), String> {
        let url = format!("http://{}/health", self.nodes[i].http);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.get(&url).send().await.is_err() {
            if Instant::now() > deadline {
                return Err(format!("n{} did not answer within 60 s of its restart", i + 1));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Whether node `i` runs (it may be paused).
    pub fn running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// SIGSTOP (`pause = true`) or SIGCONT node `i`.
    pub fn signal_pause(&mut self, i: usize, pause: bool) -> Result<(), String> {
        let Some(child) = &self.nodes[i].child else { return Ok(()) };
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .map_err(|e| format!("kill {signal}: {e}"))?;
        if !status.success() {
            return Err(format!("kill {signal} {} failed", child.id()));
        }
        self.nodes[i].paused = pause;
        Ok(())
    }

    /// SIGCONT node `i` and re-apply the faults and clock offset it missed while paused.
    pub async fn resume(&mut self, i: usize) -> Result<(), String> {
        self.signal_pause(i, false)?;
        if self.nodes[i].child.is_some() {
            self.resync(i).await?;
        }
        Ok(())
    }

    /// Resumes paused nodes, restarts killed ones and clears every fault and clock offset.
    pub async fn heal(&mut self) -> Result<(), String> {
        self.cuts.clear();
        if let Some(ns) = &self.namespaces {
            ns.heal()?;
        }
        self.clock_offsets.lock().unwrap_or_else(|p| p.into_inner()).fill(0);
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                self.resume(i).await?;
            }
            self.restart(i).await?; // a no-op for a running node
            self.resync(i).await?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    /// Kills every node and removes the stores, also when a run fails or is interrupted; the
    /// namespaces go afterwards (field order), so no process outlives its network.
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                let _ = self.signal_pause(i, false);
            }
            self.kill(i);
        }
        for node in &self.nodes {
            let _ = std::fs::remove_dir_all(&node.store);
        }
    }
}

/// Polls `condition` every 100 ms until it holds or `limit` passes.
pub async fn wait_for(
    what: &str,
    limit: Duration,
    mut condition: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !condition() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
