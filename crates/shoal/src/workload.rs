//! `shoal workload kv`: a closed-loop KV load generator with latency histograms.
//!
//! ```text
//!   N clients, each: loop until the duration ends {
//!       key = random of --keys (padded to --key-size), read with --read-percent, else write
//!       record the latency in an HDR histogram (µs), count errors by message
//!   }
//!   every second: elapsed, ops/s in that second, p50 / p99 of that second, errors so far
//!   at the end:   per operation: ops, ops/s, p50 / p99 / p99.9 / max
//! ```
//!
//! The same generator drives Shoal (its HTTP `/v1/kv` API, clients spread over `--hosts`) and
//! etcd (`--target etcd`, its gRPC API through the `etcd-client` crate; reads are etcd's
//! default linearizable reads, as Shoal's are), so both see identical load.
//!
//! Failed operations are counted and reported, never retried: the histogram holds successes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::client::NodeClient;

/// What `shoal workload kv` drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A Shoal cluster through its HTTP API.
    Shoal,
    /// An etcd cluster through its gRPC API.
    Etcd,
}

/// Flags of `shoal workload kv`.
#[derive(Args, Clone)]
pub struct KvArgs {
    /// Where to send load: Shoal HTTP addresses, or etcd client URLs with --target etcd.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:8080")]
    pub hosts: Vec<String>,
    /// The system under load.
    #[arg(long, value_enum, default_value = "shoal")]
    pub target: Target,
    /// Concurrent clients, each with one operation in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Percentage of operations that are reads (the rest are writes).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_percent: u8,
    /// Key size in bytes (at least 8).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// How many distinct keys the clients choose from.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Seed of the clients' random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// One kind of operation's results.
struct OpStats {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

impl OpStats {
    fn new() -> Self {
        // 1 µs to 60 s at 3 significant digits.
        let histogram = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        OpStats { total: histogram(), interval: histogram() }
    }

    fn record(&mut self, micros: u64) {
        let micros = micros.clamp(1, 60_000_000);
        let _ = self.total.record(micros);
        let _ = self.interval.record(micros);
    }
}

/// What the clients share.
struct Shared {
    reads: Mutex<OpStats>,
    writes: Mutex<OpStats>,
    errors: Mutex<BTreeMap<String, u64>>,
    error_count: AtomicU64,
}

/// A connection to the system under load.
#[derive(Clone)]
enum Client {
    Shoal(NodeClient),
    Etcd(etcd_client::KvClient),
}

impl Client {
    async fn write(&mut self, key: &str, value: &str) -> Result<(), String> {
        match self {
            Client::Shoal(node) => node.kv_put(key, value, "utf8").await.map_err(|e| e.to_string()),
            Client::Etcd(kv) => {
                kv.put(key, value, None).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }

    async fn read(&mut self, key: &str) -> Result<(), String> {
        match self {
            Client::Shoal(node) => {
                node.kv_get(key, "utf8").await.map(|_| ()).map_err(|e| e.to_string())
            }
            Client::Etcd(kv) => kv.get(key, None).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

fn ms(micros: u64) -> String {
    format!("{:.2}ms", micros as f64 / 1000.0)
}

/// Runs `shoal workload kv`.
pub async fn run(args: KvArgs) -> Result<(), String> {
    if args.key_size < 8 {
        return Err("--key-size must be at least 8".into());
    }
    if args.concurrency == 0 || args.keys == 0 || args.hosts.is_empty() {
        return Err("--concurrency, --keys and --hosts must not be empty".into());
    }
    let clients: Vec<Client> = match args.target {
        Target::Shoal => args.hosts.iter().map(|h| Client::Shoal(NodeClient::new(h))).collect(),
        Target::Etcd => {
            let client = etcd_client::Client::connect(&args.hosts, None)
                .await
                .map_err(|e| format!("cannot connect to etcd at {:?}: {e}", args.hosts))?;
            vec![Client::Etcd(client.kv_client())]
        }
    };
    println!(
        "workload kv: target {:?} at {}, {} clients, {:?}, {}% reads, {} B keys, {} B values, {} keys",
        args.target,
        args.hosts.join(","),
        args.concurrency,
        args.duration,
        args.read_percent,
        args.key_size,
        args.value_size,
        args.keys
    );
    let shared = Arc::new(Shared {
        reads: Mutex::new(OpStats::new()),
        writes: Mutex::new(OpStats::new()),
        errors: Mutex::default(),
        error_count: AtomicU64::new(0),
    });
    let start = Instant::now();
    let deadline = start + args.duration;
    let value: String = "v".repeat(args.value_size);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency {
        let mut client = clients[worker % clients.len()].clone();
        let (shared, value, args) = (shared.clone(), value.clone(), args.clone());
        workers.spawn(async move {
            let mut rng = SmallRng::seed_from_u64(args.seed.wrapping_add(worker as u64));
            let width = args.key_size - 3;
            while Instant::now() < deadline {
                let key = format!("wl-{:0width$}", rng.random_range(0..args.keys));
                let read = rng.random_range(0..100) < args.read_percent;
                let began = Instant::now();
                let result =
                    if read { client.read(&key).await } else { client.write(&key, &value).await };
                let micros = began.elapsed().as_micros() as u64;
                match result {
                    Ok(()) => {
                        let stats = if read { &shared.reads } else { &shared.writes };
                        stats.lock().unwrap_or_else(|p| p.into_inner()).record(micros);
                    }
                    Err(e) => {
                        shared.error_count.fetch_add(1, Ordering::Relaxed);
                        *shared
                            .errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(e)
                            .or_default() += 1;
                    }
                }
            }
        });
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => progress(&shared, start),
            finished = workers.join_next() => match finished {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(format!("a client failed: {e}")),
                None => break,
            },
        }
    }
    report(&shared, start.elapsed());
    Ok(())
}

fn progress(shared: &Shared, start: Instant) {
    let mut line = format!("{:>5.0}s", start.elapsed().as_secs_f64());
    for (name, stats) in [("put", &shared.writes), ("get", &shared.reads)] {
        let mut stats = stats.lock().unwrap_or_else(|p| p.into_inner());
        let interval = &stats.interval;
        if !interval.is_empty() {
            line += &format!(
                "  {name} {:>6}/s p50 {} p99 {}",
                interval.len(),
                ms(interval.value_at_quantile(0.5)),
                ms(interval.value_at_quantile(0.99))
            );
        }
        stats.interval.reset();
    }
    line += &format!("  errors {}", shared.error_count.load(Ordering::Relaxed));
    println!("{line}");
}

fn report(shared: &Shared, elapsed: Duration) {
    println!("elapsed {:.1}s", elapsed.as_secs_f64());
    for (name, stats) in [("put", &shared.writes), ("get", &shared.reads)] {
        let stats = stats.lock().unwrap_or_else(|p| p.into_inner());
        let h = &stats.total;
        if h.is_empty() {
            continue;
        }
        println!(
            "{name}: {} ops, {:.0} ops/s, p50 {}, p99 {}, p99.9 {}, max {}",
            h.len(),
            h.len() as f64 / elapsed.as_secs_f64(),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max())
        );
    }
    let errors = shared.errors.lock().unwrap_or_else(|p| p.into_inner());
    println!("errors: {}", errors.values().sum::<u64>());
    for (message, count) in errors.iter().take(10) {
        println!("  {count} × {message}");
    }
}
