//! What the end-to-end tests share: real `shoal` processes on loopback ports, and the real
//! `psql`. Each test binary uses part of it.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// A port that was free a moment ago, never handed out twice by this process. Taken below
/// Linux's ephemeral range (32768 and up), where outgoing connections take their ports: a port
/// from that range can be grabbed by some connection between this check and the node's bind.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 100) * 100;
    loop {
        let offset = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = u16::try_from(base + offset % 2_700).expect("below 32768");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Waits until something accepts connections at `addr`.
pub fn wait_listening(addr: &str, child: &mut Child) {
    let addr: SocketAddr = addr.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "the node at {addr} exited early");
        assert!(Instant::now() < deadline, "nothing listens at {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn shoal(args: &[&str]) -> Output {
    Command::new(SHOAL).args(args).output().expect("run shoal")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One `shoal start` process; killed when dropped.
pub struct Node {
    pub store: PathBuf,
    pub rpc: String,
    pub http: String,
    pub pg: String,
    pub join: String,
    pub log: PathBuf,
    pub child: Option<Child>,
    /// More `shoal start` flags.
    pub extra: Vec<String>,
}

impl Node {
    pub fn new(dir: &Path, name: &str) -> Node {
        Node {
            store: dir.join(name),
            rpc: format!("127.0.0.1:{}", free_port()),
            http: format!("127.0.0.1:{}", free_port()),
            pg: format!("127.0.0.1:{}", free_port()),
            join: String::new(),
            log: dir.join(format!("{name}.log")),
            child: None,
            extra: Vec::new(),
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(SHOAL);
        command.args(["start", "--store", self.store.to_str().unwrap()]);
        command.args([
            "--listen-addr",
            &self.rpc,
            "--http-addr",
            &self.http,
            "--pg-addr",
            &self.pg,
        ]);
        if !self.join.is_empty() {
            command.args(["--join", &self.join]);
        }
        command.args(&self.extra);
        command
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut child = self
            .command()
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn shoal start");
        wait_listening(&self.http, &mut child);
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    pub fn kv(&self, args: &[&str]) -> Output {
        let mut all = vec!["debug", "kv"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--host", &self.http]);
        shoal(&all)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn cluster(dir: &Path, n: usize) -> Vec<Node> {
    cluster_with(dir, n, &[])
}

pub fn cluster_with(dir: &Path, n: usize, extra: &[&str]) -> Vec<Node> {
    let mut nodes: Vec<Node> = (1..=n).map(|i| Node::new(dir, &format!("n{i}"))).collect();
    let join = nodes.iter().map(|n| n.rpc.clone()).collect::<Vec<_>>().join(",");
    for node in &mut nodes {
        node.join = join.clone();
        node.extra = extra.iter().map(|s| s.to_string()).collect();
        node.start();
    }
    let init = shoal(&["init", "--host", &nodes[0].http]);
    assert!(init.status.success(), "init failed: {}", stderr(&init));
    assert!(stdout(&init).contains("initialized"), "{}", stdout(&init));
    nodes
}

/// Runs the real `psql` against `node`'s PostgreSQL port with `args`, feeding it `stdin`.
pub fn psql(node: &Node, database: &str, args: &[&str], stdin: &str) -> Output {
    let (host, port) = node.pg.split_once(':').unwrap();
    let mut child = Command::new("psql")
        .args(["-X", "-h", host, "-p", port, "-U", "root", "-d", database])
        .args(["-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-A", "-t"])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGSSLMODE", "disable")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql runs (Debian's postgresql-client; .ci/install-deps installs it)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A tokio-postgres connection to `node` as `root` on `defaultdb`; the connection's task runs
/// until the client drops.
pub async fn connect(node: &Node) -> tokio_postgres::Client {
    let (host, port) = node.pg.split_once(':').unwrap();
    let config = format!("host={host} port={port} user=root dbname=defaultdb connect_timeout=10");
    let (client, connection) =
        tokio_postgres::connect(&config, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
