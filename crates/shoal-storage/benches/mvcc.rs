#![allow(missing_docs)] // criterion_group! generates undocumented public functions.

//! MVCC micro-benchmarks on the RocksDB engine: put, get and scan.
//!
//! Run with `make bench`; criterion reports each as operations per second (`thrpt`). Stores
//! live in a temporary directory on the machine's disk. Unsynced puts measure the MVCC and
//! RocksDB write path (in a server, durability comes from the Raft log's group commit);
//! synced puts add one WAL fsync per write.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shoal_hlc::Timestamp;
use shoal_keys::Span;
use shoal_storage::mvcc::{self, ReadOptions, ScanOptions};
use shoal_storage::{Engine, RocksEngine, WriteBatch, WriteOptions};

const PRELOADED_KEYS: u64 = 100_000;
const VERSIONS_PER_KEY: u64 = 3;

fn key(i: u64) -> Vec<u8> {
    format!("user{i:010}").into_bytes()
}

/// A small deterministic generator, so runs are comparable.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn preloaded() -> (RocksEngine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(dir.path().join("store")).unwrap();
    let value = vec![b'v'; 100];
    for version in 1..=VERSIONS_PER_KEY {
        for chunk in (0..PRELOADED_KEYS).collect::<Vec<_>>().chunks(1000) {
            let mut batch = WriteBatch::new();
            for &i in chunk {
                mvcc::put(
                    &engine,
                    &mut batch,
                    &key(i),
                    Timestamp::new(version * 10, 0),
                    Timestamp::new(version * 10, 0),
                    Some(&value),
                    None,
                )
                .unwrap();
            }
            engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
        }
    }
    (engine, dir)
}

fn bench_put(c: &mut Criterion) {
    let mut group = c.benchmark_group("mvcc");
    group.throughput(Throughput::Elements(1));
    let value = vec![b'v'; 100];
    for (name, opts) in [("put", WriteOptions::NO_SYNC), ("put_sync", WriteOptions::SYNC)] {
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open(dir.path().join("store")).unwrap();
        let mut i = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let mut batch = WriteBatch::new();
                let ts = Timestamp::new(10, 0);
                mvcc::put(&engine, &mut batch, &key(i), ts, ts, Some(&value), None).unwrap();
                engine.write(&batch, opts).unwrap();
            })
        });
    }
    group.finish();
}

fn bench_reads(c: &mut Criterion) {
    let (engine, _dir) = preloaded();
    let mut group = c.benchmark_group("mvcc");
    group.throughput(Throughput::Elements(1));
    let mut rng = XorShift(0x9e3779b97f4a7c15);
    group.bench_function("get", |b| {
        b.iter(|| {
            let k = key(rng.next() % PRELOADED_KEYS);
            let found =
                mvcc::get(&engine, &k, Timestamp::new(25, 0), ReadOptions::default()).unwrap();
            assert!(found.is_some());
        })
    });
    group.bench_function("get_missing", |b| {
        b.iter(|| {
            let k = key(PRELOADED_KEYS + rng.next() % PRELOADED_KEYS);
            let found =
                mvcc::get(&engine, &k, Timestamp::new(25, 0), ReadOptions::default()).unwrap();
            assert!(found.is_none());
        })
    });
    group.bench_function("scan_100", |b| {
        b.iter_batched(
            || {
                let start = rng.next() % (PRELOADED_KEYS - 200);
                Span::new(key(start), key(start + 1000))
            },
            |span| {
                let opts = ScanOptions { limit: Some(100), ..ScanOptions::default() };
                let result = mvcc::scan(&engine, &span, Timestamp::new(25, 0), opts).unwrap();
                assert_eq!(result.rows.len(), 100);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = bench_put, bench_reads
}
criterion_main!(benches);
