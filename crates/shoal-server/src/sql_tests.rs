//! SQL logic tests: every `sql/*.slt` file at the repository root runs through the
//! `sqllogictest` crate against a three-node in-process cluster on RocksDB.
//!
//! Each file runs on a cluster of its own, started for it and shut down after it. Before
//! the file, the keyspace of the first few table ids is split, so every table a file creates
//! (up to three) spans several ranges: each table starts a range, its primary index is split
//! again at the integer key 10 (so `INT` keys on both sides of 10 land on different ranges),
//! and its secondary indexes have a range of their own. Files take turns on the three nodes
//! (the session's node is not the one that made the splits), and each file runs in one
//! session (so BEGIN ... COMMIT spans its records). `SHOAL_SLT=<part of a file name>` runs
//! only some files.
//!
//! Why a fresh cluster per file: ranges are never merged, so a corpus run on one cluster
//! leaves hundreds of ranges of dropped tables behind, and every range's Raft group costs
//! CPU. On two cores in a debug build, the later files then ran many times slower than the
//! first ones and RPCs between the nodes started to miss their deadlines (an ambiguous
//! `40003` in CI): a test of how many idle Raft groups the machine carries, not of SQL.
//!
//! Errors are shown as `message (SQLSTATE code)`, so a file can expect a code:
//! `statement error 23505`.

use std::path::PathBuf;
use std::sync::Arc;

use shoal_keys::encoding::{Datum, Direction};
use shoal_keys::layout::TableCodec;
use shoal_sql::{DataType, Output, Session, SqlEngine, SqlError};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tempfile::TempDir;

use crate::queue_tests::{SERIAL, cluster};

/// How many table ids past the next one are split before each file: at most this many
/// tables per file span several ranges. Every range's Raft group costs the cluster CPU, and
/// a few tables per file are enough to cover cross-range scans and writes.
const SPLIT_AHEAD: u64 = 3;

/// A SQL error with its SQLSTATE in its text.
#[derive(Debug)]
struct DbError(SqlError);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.0, self.0.sqlstate())
    }
}

impl std::error::Error for DbError {}

/// One session, as a sqllogictest connection.
struct Db {
    session: Session,
}

#[async_trait::async_trait]
impl AsyncDB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let outputs = self.session.execute(sql).await.map_err(DbError)?;
        Ok(match outputs.into_iter().last() {
            Some(Output::Rows { columns, rows }) => DBOutput::Rows {
                types: columns
                    .iter()
                    .map(|c| match c.data_type {
                        Some(DataType::Int(_)) => DefaultColumnType::Integer,
                        Some(DataType::Float(_) | DataType::Decimal(_)) => {
                            DefaultColumnType::FloatingPoint
                        }
                        Some(_) => DefaultColumnType::Text,
                        None => DefaultColumnType::Any,
                    })
                    .collect(),
                rows: rows
                    .into_iter()
                    .map(|row| {
                        row.iter()
                            .map(|v| match v.to_text() {
                                None => "NULL".to_string(),
                                Some(text) if text.is_empty() => "(empty)".to_string(),
                                Some(text) => text,
                            })
                            .collect()
                    })
                    .collect(),
            },
            Some(Output::Affected { count, .. }) => DBOutput::StatementComplete(count),
            Some(Output::Done(_) | Output::Streamed { .. }) | None => {
                DBOutput::StatementComplete(0)
            }
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "shoal"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sql"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    // `SHOAL_SLT=joins` runs only the files whose names contain `joins`.
    if let Ok(only) = std::env::var("SHOAL_SLT") {
        files.retain(|f| f.file_name().is_some_and(|n| n.to_string_lossy().contains(&only)));
    }
    files
}

/// A three-node cluster with each node's own SQL engine (queries on its SQL runtime).
async fn sql_cluster(dirs: &[TempDir]) -> (Vec<crate::server::Server>, Vec<Arc<SqlEngine>>) {
    let nodes = cluster(dirs).await;
    let engines = nodes.iter().map(|n| n.require_cluster().unwrap().sql.clone()).collect();
    (nodes, engines)
}

/// Splits the keyspace of the next [`SPLIT_AHEAD`] table ids (those not split yet, which
/// start at `*split_upto`): at each table's prefix, its primary index at key 10, and its
/// secondary indexes.
async fn split_ahead(node: &crate::server::Server, engine: &SqlEngine, split_upto: &mut u64) {
    let next = engine.peek_next_table_id().await.unwrap();
    let codec = TableCodec::system();
    for id in (*split_upto).max(next)..next + SPLIT_AHEAD {
        let at_ten = codec.index_key(id, 1, &[(Datum::Int(10), Direction::Ascending)]);
        for key in [codec.table_prefix(id), at_ten, codec.index_prefix(id, 2)] {
            crate::admin::split(node, key).await.unwrap();
        }
    }
    *split_upto = (*split_upto).max(next + SPLIT_AHEAD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_logic_tests_pass_on_a_three_node_cluster() {
    let _serial = SERIAL.lock().await;
    let mut failures = Vec::new();
    for (i, file) in slt_files().into_iter().enumerate() {
        let started = std::time::Instant::now();
        let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let (nodes, engines) = sql_cluster(&dirs).await;
        split_ahead(&nodes[0], &engines[0], &mut 0).await;
        let engine = engines[1 + i % (engines.len() - 1)].clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let engine = engine.clone();
            async move { Ok::<_, DbError>(Db { session: engine.session() }) }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}: {}", file.display(), e.display(false)));
        }
        drop((runner, engines));
        for node in nodes {
            node.shutdown().await;
        }
        eprintln!("slt: {} took {:?}", file.display(), started.elapsed());
    }
    assert!(failures.is_empty(), "{} files failed:\n{}", failures.len(), failures.join("\n"));
}

/// Runs `sql` in `session`, returning the rows as text.
async fn rows(session: &mut Session, sql: &str) -> Vec<Vec<String>> {
    match session.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).pop() {
        Some(Output::Rows { rows, .. }) => rows
            .into_iter()
            .map(|r| r.iter().map(|v| v.to_text().unwrap_or_else(|| "NULL".into())).collect())
            .collect(),
        other => panic!("{sql}: no rows but {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn as_of_system_time_reads_the_past_and_show_ranges_lists_the_splits() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, engines) = sql_cluster(&dirs).await;
    split_ahead(&nodes[0], &engines[0], &mut 0).await;
    let mut session = engines[1].session();
    session.execute("CREATE TABLE t (k INT PRIMARY KEY, v TEXT)").await.unwrap();
    session.execute("INSERT INTO t VALUES (1, 'old'), (20, 'old')").await.unwrap();
    let before = rows(&mut session, "SELECT cluster_logical_timestamp()").await[0][0].clone();
    session.execute("UPDATE t SET v = 'new'").await.unwrap();
    session.execute("INSERT INTO t VALUES (30, 'new')").await.unwrap();

    // Read on another node, as of the earlier timestamp and now.
    let mut other = engines[2].session();
    let past = format!("SELECT k, v FROM t AS OF SYSTEM TIME '{before}' ORDER BY k");
    assert_eq!(rows(&mut other, &past).await, [["1", "old"], ["20", "old"]]);
    let now = rows(&mut other, "SELECT k, v FROM t ORDER BY k").await;
    assert_eq!(now, [["1", "new"], ["20", "new"], ["30", "new"]]);
    // Before the table existed, it did not exist.
    let genesis = "SELECT k FROM t AS OF SYSTEM TIME '1000000000000000000'";
    assert_eq!(other.execute(genesis).await.unwrap_err().sqlstate(), "42P01");
    let future = "SELECT k FROM t AS OF SYSTEM TIME '9000000000000000000'";
    assert_eq!(other.execute(future).await.unwrap_err().sqlstate(), "22023");
    other.execute("BEGIN").await.unwrap();
    assert_eq!(other.execute(&past).await.unwrap_err().sqlstate(), "0A000");
    other.execute("ROLLBACK").await.unwrap();

    // The pre-split table has ranges starting at its prefix, at key 10 and at its index span;
    // a manual split adds one at 25.
    session.execute("ALTER TABLE t SPLIT AT VALUES (25)").await.unwrap();
    let ranges = rows(&mut session, "SHOW RANGES FROM TABLE t").await;
    let bounds: Vec<(&str, &str)> = ranges.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(
        bounds,
        [
            ("/Table/101", "/Table/101/1/10"),
            ("/Table/101/1/10", "/Table/101/1/25"),
            ("/Table/101/1/25", "/Table/101/2"),
            ("/Table/101/2", "/Table/102"),
        ]
    );
    for range in &ranges {
        assert_eq!(range[3], "{1,2,3}", "every range has three replicas: {range:?}");
    }
    assert_eq!(rows(&mut session, "SELECT v FROM t WHERE k = 30").await, [["new"]]);
}

/// `cluster_logical_timestamp()` is the commit timestamp: a row written with it is visible as
/// of exactly that time and not a moment before, and a transaction that showed it and then
/// would have to commit later (another session read the key it writes in between) restarts
/// with 40001 rather than refresh to a timestamp it did not show.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_logical_timestamp_is_the_commit_timestamp() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (_nodes, engines) = sql_cluster(&dirs).await;
    let mut session = engines[0].session();
    session.execute("CREATE TABLE m (k INT PRIMARY KEY, ts TEXT)").await.unwrap();
    session.execute("INSERT INTO m VALUES (1, cluster_logical_timestamp())").await.unwrap();
    let shown = rows(&mut session, "SELECT ts FROM m WHERE k = 1").await[0][0].clone();
    let (wall, logical) = shown.split_once('.').unwrap();
    let (wall, logical): (u64, u64) = (wall.parse().unwrap(), logical.parse().unwrap());
    let before = if logical > 0 {
        format!("{wall}.{:010}", logical - 1)
    } else {
        format!("{}.0000000000", wall - 1)
    };
    let mut other = engines[1].session();
    let as_of = |at: &str| format!("SELECT k FROM m AS OF SYSTEM TIME '{at}'");
    assert_eq!(rows(&mut other, &as_of(&shown)).await, [["1"]]);
    assert!(rows(&mut other, &as_of(&before)).await.is_empty(), "visible before {shown}");

    // Writing key 2 after another session read it moves the writer's timestamp up.
    for (key, shows_timestamp) in [(2, false), (3, true)] {
        session.execute("BEGIN").await.unwrap();
        let first = if shows_timestamp { "SELECT cluster_logical_timestamp()" } else { "SELECT 1" };
        rows(&mut session, first).await;
        rows(&mut other, &format!("SELECT k FROM m WHERE k = {key}")).await;
        let insert = session.execute(&format!("INSERT INTO m VALUES ({key}, 'x')")).await;
        let result = match insert {
            Ok(_) => session.execute("COMMIT").await,
            Err(e) => Err(e),
        };
        if shows_timestamp {
            assert_eq!(result.unwrap_err().sqlstate(), "40001", "a fixed timestamp moved");
            let _ = session.execute("ROLLBACK").await;
        } else {
            result.expect("without the function the transaction refreshes and commits");
        }
    }
    assert_eq!(rows(&mut other, "SELECT k FROM m ORDER BY k").await, [["1"], ["2"]]);
}

/// Inserts, updates of indexed columns, deletes and upserts from six sessions on three nodes;
/// afterwards every index holds exactly the entries the rows call for: none missing (a row
/// without its entry) and none extra (an entry pointing to a row that is gone or changed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn indexes_match_their_rows_after_a_concurrent_mixed_workload() {
    use rand::{Rng, SeedableRng};
    use shoal_kvclient::KvOps;

    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, engines) = sql_cluster(&dirs).await;
    split_ahead(&nodes[0], &engines[0], &mut 0).await;
    let mut setup = engines[0].session();
    setup
        .execute(
            "CREATE TABLE t (k INT PRIMARY KEY, a INT, b TEXT UNIQUE, c INT);
             CREATE INDEX t_a ON t (a);
             CREATE INDEX t_ac ON t (a DESC, c);
             CREATE INDEX t_c ON t USING HASH (c) WITH (bucket_count = 4)",
        )
        .await
        .unwrap();
    const WORKERS: u64 = 6;
    const OPS: usize = 60;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let engine = engines[w as usize % engines.len()].clone();
        workers.spawn(async move {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(w);
            let mut session = engine.session();
            let mut done = 0;
            for _ in 0..OPS {
                let k = rng.random_range(0..40);
                let a = rng.random_range(0..8);
                let b = rng.random_range(0..60);
                let c = rng.random_range(0..5);
                let sql = match rng.random_range(0..5) {
                    0 => format!("INSERT INTO t VALUES ({k}, {a}, 'b{b}', {c})"),
                    1 => format!("UPDATE t SET a = {a}, c = {c} WHERE k = {k}"),
                    2 => {
                        format!("UPDATE t SET b = 'b{b}', a = a + 1 WHERE k >= {k} AND k < {k} + 3")
                    }
                    3 => format!("DELETE FROM t WHERE k = {k}"),
                    _ => format!("UPSERT INTO t VALUES ({k}, {a}, 'b{b}', NULL)"),
                };
                let statement = if rng.random_bool(0.3) {
                    format!(
                        "BEGIN; {sql}; UPDATE t SET c = c + 1 WHERE k = {}; COMMIT",
                        (k + 7) % 40
                    )
                } else {
                    sql
                };
                match session.execute(&statement).await {
                    Ok(_) => done += 1,
                    // Unique violations and restarts inside BEGIN are expected; anything else
                    // is a bug.
                    Err(e) if matches!(e.sqlstate(), "23505" | "40001") => {}
                    Err(e) => panic!("{statement}: {e}"),
                }
                if session.in_transaction() {
                    session.execute("ROLLBACK").await.unwrap();
                }
            }
            done
        });
    }
    let mut succeeded = 0;
    while let Some(done) = workers.join_next().await {
        succeeded += done.unwrap();
    }
    assert!(succeeded > WORKERS as usize * OPS / 2, "only {succeeded} statements succeeded");

    // Read the rows and every index's raw entries in one transaction.
    let kv = nodes[0].require_cluster().unwrap().kv.clone();
    let txn = kv.begin();
    let table = shoal_sql::catalog::Catalog::new()
        .contents(&txn)
        .await
        .unwrap()
        .view("defaultdb")
        .table("t")
        .unwrap();
    let rows: Vec<Vec<shoal_sql::Value>> =
        match engines[0].session().execute("SELECT k, a, b, c FROM t").await.unwrap().pop() {
            Some(Output::Rows { rows, .. }) => rows,
            other => panic!("{other:?}"),
        };
    assert!(!rows.is_empty(), "the workload left no rows");
    let codec = shoal_sql::rowcodec::RowCodec::default();
    assert_eq!(table.indexes.len(), 4);
    for index in &table.indexes {
        let mut expected: Vec<(shoal_keys::Key, Vec<u8>)> =
            rows.iter().map(|r| codec.index_entry(&table, index, r).unwrap()).collect();
        expected.sort();
        let span = codec.index_span(&table, index);
        let actual: Vec<(shoal_keys::Key, Vec<u8>)> =
            txn.scan(span, None).await.unwrap().into_iter().map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(
            actual.len(),
            expected.len(),
            "index {} has {} entries for {} rows",
            index.name,
            actual.len(),
            rows.len()
        );
        assert_eq!(actual, expected, "index {} differs from its rows", index.name);
    }
    txn.rollback().await.unwrap();
}

/// The rows that pushed filters left out on every node's store.
fn rows_filtered(nodes: &[crate::server::Server]) -> u64 {
    let filtered = |n: &crate::server::Server| {
        n.require_cluster().unwrap().store.metrics().scan_rows_filtered.get()
    };
    nodes.iter().map(filtered).sum()
}

/// The rows that scans returned on every node's store.
fn rows_returned(nodes: &[crate::server::Server]) -> u64 {
    let returned = |n: &crate::server::Server| {
        n.require_cluster().unwrap().store.metrics().scan_rows_returned.get()
    };
    nodes.iter().map(returned).sum()
}

/// A three-node cluster with table `t (k INT PRIMARY KEY, <value>)` split over several ranges,
/// holding rows 1..=`rows` written as `row(k)`.
async fn table_t(
    dirs: &[TempDir],
    value: &str,
    rows: i64,
    row: impl Fn(i64) -> String,
) -> (Vec<crate::server::Server>, Vec<Arc<SqlEngine>>) {
    let (nodes, engines) = sql_cluster(dirs).await;
    split_ahead(&nodes[0], &engines[0], &mut 0).await;
    let mut session = engines[0].session();
    session.execute(&format!("CREATE TABLE t (k INT PRIMARY KEY, {value})")).await.unwrap();
    for chunk in (1..=rows).collect::<Vec<i64>>().chunks(500) {
        let values: Vec<String> = chunk.iter().map(|&k| row(k)).collect();
        session.execute(&format!("INSERT INTO t VALUES {}", values.join(", "))).await.unwrap();
    }
    (nodes, engines)
}

/// A WHERE clause on a table scan runs on the ranges: they ship only the rows that pass, the
/// answers stay the same (across pages and ranges), and evaluation errors still reach the
/// client with their SQLSTATE.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_run_on_the_ranges_and_rows_that_fail_them_stay_there() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, engines) = table_t(&dirs, "v INT", 3000, |k| format!("({k}, {})", k % 100)).await;

    let before = rows_filtered(&nodes);
    let mut reader = engines[1].session();
    assert_eq!(rows(&mut reader, "SELECT count(*) FROM t WHERE v = 7").await, [["30"]]);
    let left_out = rows_filtered(&nodes) - before;
    assert!(left_out >= 2970, "only {left_out} of 2,970 failing rows were left out at the ranges");

    // More passing rows than a page: the scan resumes after the last row a range kept.
    assert_eq!(
        rows(&mut reader, "SELECT count(*), sum(k) FROM t WHERE v >= 50").await,
        [["1500", "2286750"]]
    );
    let first = rows(&mut reader, "SELECT k FROM t WHERE v = 99 LIMIT 3").await;
    assert_eq!(first, [["99"], ["199"], ["299"]]);
    // A row the predicate cannot judge reaches the gateway, which reports the error.
    let error = reader.execute("SELECT k FROM t WHERE 10 / (v - 7) > 100").await.unwrap_err();
    assert_eq!(error.sqlstate(), "22012", "{error}");
    // now() on the ranges is the transaction's time, as at the gateway.
    let all = "SELECT count(*) FROM t WHERE now() > '2000-01-01'::TIMESTAMPTZ AND k > 0";
    assert_eq!(rows(&mut reader, all).await, [["3000"]]);
}

/// A client's end of a streamed result: the size of each batch it received; it goes away
/// (fails) after `stop_after` batches if set.
#[derive(Default)]
struct Batches {
    sizes: Vec<usize>,
    stop_after: Option<usize>,
}

impl shoal_sql::RowSink for Batches {
    async fn send(
        &mut self,
        _: &[shoal_sql::plan::Column],
        rows: Vec<shoal_sql::exec::Row>,
    ) -> shoal_sql::Result<()> {
        self.sizes.push(rows.len());
        if Some(self.sizes.len()) == self.stop_after {
            return Err(SqlError::Cancelled("the client went away".into()));
        }
        Ok(())
    }
}

/// A large result reaches the client in batches while the scan is still reading: a client
/// that goes away after the first batch leaves most of the table unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_stream_to_the_client_while_the_scan_reads() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, engines) = table_t(&dirs, "v TEXT", 5000, |k| format!("({k}, 'row {k}')")).await;
    let query = shoal_sql::syntax::parse("SELECT k, v FROM t").unwrap().remove(0);
    let mut reader = engines[2].session();
    reader.set_result_buffer_rows(100);

    let mut all = Batches::default();
    match reader.execute_into(&query, &mut all).await.unwrap() {
        Output::Streamed { count, columns } => {
            assert_eq!((count, columns.len()), (5000, 2));
        }
        other => panic!("not streamed: {other:?}"),
    }
    assert_eq!(all.sizes.iter().sum::<usize>(), 5000);
    assert!(all.sizes.len() >= 40, "5,000 rows came in {} batches", all.sizes.len());
    assert!(all.sizes.iter().all(|&n| n <= 101), "a batch held more than the buffer");

    let before = rows_returned(&nodes);
    let mut gone = Batches { stop_after: Some(1), ..Batches::default() };
    let error = reader.execute_into(&query, &mut gone).await.unwrap_err();
    assert_eq!(error.sqlstate(), "57014", "{error}");
    let read = rows_returned(&nodes) - before;
    assert!(read < 2500, "{read} rows were read for a client that took 101");
    // A LIMIT over a scan asks the ranges for that many rows.
    let before = rows_returned(&nodes);
    assert_eq!(rows(&mut reader, "SELECT k FROM t LIMIT 3 OFFSET 2").await, [["3"], ["4"], ["5"]]);
    let read = rows_returned(&nodes) - before;
    assert!(read < 100, "{read} rows were read for LIMIT 3 OFFSET 2");
    // The session is usable afterwards: the statement's transaction was rolled back.
    assert_eq!(rows(&mut reader, "SELECT count(*) FROM t").await, [["5000"]]);
}

/// EXPLAIN ANALYZE runs the query and shows, per operator, the rows it produced and its time,
/// then the statement's rows, KV requests and peak memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explain_analyze_counts_each_operators_rows() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (_nodes, engines) = table_t(&dirs, "v INT", 300, |k| format!("({k}, {})", k % 10)).await;
    let mut session = engines[0].session();
    let lines: Vec<String> = rows(
        &mut session,
        "EXPLAIN ANALYZE SELECT v, count(*) FROM t WHERE v < 3 GROUP BY v ORDER BY v LIMIT 2",
    )
    .await
    .into_iter()
    .map(|mut row| row.remove(0))
    .collect();
    let find = |operator: &str| {
        lines
            .iter()
            .find(|l| l.trim_start().starts_with(operator))
            .unwrap_or_else(|| panic!("no {operator} line in {lines:#?}"))
            .clone()
    };
    // 90 rows pass the filter, which runs on the ranges; 3 groups; the limit keeps 2.
    assert!(find("scan t").contains("(actual rows=90 "), "{lines:#?}");
    assert!(find("aggregate").contains("(actual rows=3 "), "{lines:#?}");
    // The aggregate held its groups; the scan holds nothing of its own.
    assert!(find("aggregate").contains(" memory="), "{lines:#?}");
    assert!(!find("scan t").contains(" memory="), "{lines:#?}");
    assert!(find("limit 2").contains("(actual rows=2 "), "{lines:#?}");
    let footer = lines.last().unwrap();
    assert!(footer.starts_with("execution: 2 rows in "), "{footer}");
    let kv: u64 =
        footer.split("kv requests ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(kv >= 1, "{footer}");
    assert!(!footer.contains("peak memory 0 B"), "{footer}");
    assert!(footer.contains(", restarts 0"), "{footer}");
    // Every range the scan's spans cross answered it, and the trace names them.
    let traced = &lines[lines.len() - 2];
    assert!(traced.starts_with("kv: "), "{lines:#?}");
    let scanned = find("scan t");
    let on = scanned.split(" on ").nth(1).unwrap().split_whitespace();
    let is_range = |w: &&str| w.len() > 1 && w.starts_with('r') && w[1..].parse::<u64>().is_ok();
    for range in on.take_while(is_range) {
        assert!(traced.contains(&format!("{range} on n")), "{range} of {scanned} in {traced}");
    }
    assert!(traced.ends_with("redirects 0, lock conflicts 0, read refreshes 0"), "{traced}");

    // A join: each input's rows, and the join's.
    let lines: Vec<String> = rows(
        &mut session,
        "EXPLAIN ANALYZE SELECT a.k FROM t a JOIN t b ON a.k = b.v WHERE b.k < 20",
    )
    .await
    .into_iter()
    .map(|mut row| row.remove(0))
    .collect();
    // 19 rows of b; their v (k % 10) is a's key for 18 of them (b.k = 10 has v = 0).
    // b's 19 rows look up their a by key.
    let join = lines.iter().find(|l| l.contains("lookup join inner t@primary")).expect("a lookup");
    assert!(join.contains("(actual rows=18 "), "{lines:#?}");
    let scan = lines.iter().find(|l| l.contains("filter (#0 < 20)")).expect("the scan of b");
    assert!(scan.contains("(actual rows=19 "), "{lines:#?}");
}

/// EXPLAIN ANALYZE's KV line counts the locks of other transactions a statement met: a read
/// of a row another transaction is writing waits for it to commit, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explain_analyze_counts_the_locks_a_statement_waited_for() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, engines) = table_t(&dirs, "v INT", 20, |k| format!("({k}, {k})")).await;
    let mut writer = engines[1].session();
    writer.execute("BEGIN").await.unwrap();
    writer.execute("UPDATE t SET v = 0 WHERE k = 5").await.unwrap();

    let mut reader = engines[0].session();
    let read = tokio::spawn(async move {
        rows(&mut reader, "EXPLAIN ANALYZE SELECT v FROM t WHERE k = 5").await
    });
    // The reader is queued behind the writer's lock: commit, and it reads the new value.
    let cluster = nodes[0].require_cluster().unwrap();
    let sender = cluster.kv.sender();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while sender.waiting_txns().is_empty() {
        assert!(!read.is_finished(), "the read did not wait: {:?}", read.await);
        assert!(tokio::time::Instant::now() < deadline, "the read never waited for the lock");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    writer.execute("COMMIT").await.unwrap();
    let lines: Vec<String> = read.await.unwrap().into_iter().map(|mut r| r.remove(0)).collect();
    let traced = &lines[lines.len() - 2];
    assert!(traced.contains("lock conflicts 1,"), "{lines:#?}");
    assert!(lines.last().unwrap().starts_with("execution: 1 rows"), "{lines:#?}");
}

/// A correlated subquery runs per outer value while each run is a point lookup, and switches
/// to its decorrelated plan (one scan, grouped by the correlated key) once a run had to read
/// the whole table: EXPLAIN ANALYZE counts both, and either way the answer is the join's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn correlated_subqueries_switch_to_one_hashed_run_when_runs_scan_whole_tables() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (_nodes, engines) = table_t(&dirs, "v INT", 300, |k| format!("({k}, {})", k % 10)).await;
    let mut session = engines[1].session();
    let footer = |lines: Vec<Vec<String>>| lines.last().unwrap()[0].clone();

    // b.v is no key: the first outer value's run scans t, and the rest are hashed.
    let scanning = "SELECT count(*) FROM t a WHERE EXISTS (SELECT 1 FROM t b WHERE b.v = a.k)";
    assert_eq!(rows(&mut session, scanning).await, [["9"]]);
    let joined = "SELECT count(DISTINCT a.k) FROM t a JOIN t b ON b.v = a.k";
    assert_eq!(rows(&mut session, joined).await, [["9"]]);
    let analyzed = footer(rows(&mut session, &format!("EXPLAIN ANALYZE {scanning}")).await);
    assert!(analyzed.ends_with("subquery runs 1, hashed 1"), "{analyzed}");

    // b.k is the key: each of the 10 distinct outer values is one point lookup.
    let looking_up = "SELECT count(*) FROM t a WHERE EXISTS (SELECT 1 FROM t b WHERE b.k = a.v)";
    assert_eq!(rows(&mut session, looking_up).await, [["270"]]);
    let analyzed = footer(rows(&mut session, &format!("EXPLAIN ANALYZE {looking_up}")).await);
    assert!(analyzed.ends_with("subquery runs 10, hashed 0"), "{analyzed}");

    // An aggregate: outer values without rows get count(*) = 0 from the hashed plan too.
    let counted =
        "SELECT sum(n) FROM (SELECT (SELECT count(*) FROM t b WHERE b.v = a.k) AS n FROM t a) s";
    assert_eq!(rows(&mut session, counted).await, [["270"]]);
    let analyzed = footer(rows(&mut session, &format!("EXPLAIN ANALYZE {counted}")).await);
    assert!(analyzed.ends_with("subquery runs 1, hashed 1"), "{analyzed}");
}

/// The OLTP join: a few rows of one table joined on another table's key read only the keys
/// they name (a lookup join), not the other table whole, on the primary index and on a
/// secondary one, and give the hash join's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_few_rows_joined_on_a_key_look_up_only_their_matches() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, engines) = table_t(&dirs, "v INT", 2000, |k| format!("({k}, {})", k % 1000)).await;
    let mut session = engines[1].session();
    session.execute("CREATE INDEX t_v ON t (v)").await.unwrap();

    // a.k = 7 gives a.v = 7; b.k = 7 is one row of the primary index.
    let by_key = "SELECT a.k, b.k, b.v FROM t a JOIN t b ON b.k = a.v WHERE a.k = 7";
    let plan = rows(&mut session, &format!("EXPLAIN {by_key}")).await.concat().join("\n");
    assert!(plan.contains("lookup join inner t@primary"), "{plan}");
    let (answer, scanned) = rows_counting_reads(&nodes, &mut session, by_key).await;
    assert_eq!(answer, [["7", "7", "7"]]);
    // Two point lookups, plus at most a few system rows (the node reading the table
    // statistics in the background), never the table's 2,000.
    assert!(scanned <= 10, "{scanned} rows read for two point lookups");

    // Through the secondary index: b.v = 7 holds for b.k 7 and 1007.
    let by_index =
        "SELECT a.k, b.k FROM t a JOIN t b ON b.v = a.k WHERE a.k IN (7, 8) ORDER BY b.k";
    let plan = rows(&mut session, &format!("EXPLAIN {by_index}")).await.concat().join("\n");
    assert!(plan.contains("lookup join inner t@t_v"), "{plan}");
    let (answer, scanned) = rows_counting_reads(&nodes, &mut session, by_index).await;
    assert_eq!(answer, [["7", "7"], ["8", "8"], ["7", "1007"], ["8", "1008"]]);
    assert!(scanned <= 20, "{scanned} rows read for two index lookups");

    // Two whole tables: a hash join, which reads both (the same answer for the same rows).
    let whole = "SELECT count(*) FROM t a JOIN t b ON b.k = a.v";
    let plan = rows(&mut session, &format!("EXPLAIN {whole}")).await.concat().join("\n");
    assert!(plan.contains("hash join"), "{plan}");
    assert_eq!(rows(&mut session, whole).await, [["1998"]]);
}

/// The rows of `sql`, and how many rows the stores' scans returned for it.
async fn rows_counting_reads(
    nodes: &[crate::server::Server],
    session: &mut Session,
    sql: &str,
) -> (Vec<Vec<String>>, u64) {
    let before = rows_returned(nodes);
    let answer = rows(session, sql).await;
    (answer, rows_returned(nodes) - before)
}

/// Runs `sql` on `session` every 100 ms until its rows satisfy `done`, failing after 30 s.
async fn poll_rows(session: &mut Session, sql: &str, done: impl Fn(&[Vec<String>]) -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answer = rows(session, sql).await;
        if done(&answer) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sql} still gives {answer:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Table statistics: collected automatically once enough rows changed, and by ANALYZE /
/// CREATE STATISTICS; shown by SHOW STATISTICS; read by the planner, whose estimates pick
/// a lookup join once the small side is known small, on every node (the others read new
/// statistics within seconds); the answer is the same either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statistics_are_collected_and_steer_join_plans() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (_nodes, engines) = sql_cluster(&dirs).await;
    let mut session = engines[1].session();
    for sql in [
        "CREATE TABLE big (k INT PRIMARY KEY, v INT)",
        "CREATE INDEX big_v ON big (v)",
        "CREATE TABLE small (k INT PRIMARY KEY, v INT)",
    ] {
        session.execute(sql).await.unwrap();
    }
    for chunk in (1..=2000).collect::<Vec<i64>>().chunks(500) {
        let values: Vec<String> = chunk.iter().map(|k| format!("({k}, {})", k % 100)).collect();
        let insert = format!("INSERT INTO big VALUES {}", values.join(", "));
        session.execute(&insert).await.unwrap();
    }
    let values: Vec<String> = (1..=20).map(|k| format!("({k}, {k})")).collect();
    let insert = format!("INSERT INTO small VALUES {}", values.join(", "));
    session.execute(&insert).await.unwrap();

    // 2,000 rows written here: this node collected big's statistics by itself (as of a
    // moment ago, so not necessarily of the last rows).
    poll_rows(&mut session, "SHOW STATISTICS FOR TABLE big", |rows| {
        rows.iter().any(|r| r[1] == "{v}" && r[2].parse::<u64>().unwrap() >= 500 && r[3] == "100")
    })
    .await;
    session.execute("ANALYZE big").await.unwrap();
    let shown = rows(&mut session, "SHOW STATISTICS FOR TABLE big").await;
    assert_eq!(shown[1], ["__auto__", "{v}", "2000", "100", "0"]);
    // 20 rows are too few for that: small has none, and counts as 1,000 rows.
    assert!(rows(&mut session, "SHOW STATISTICS FOR TABLE small").await.is_empty());
    let join = "SELECT count(*) FROM small s JOIN big b ON b.v = s.v";
    let explain = format!("EXPLAIN {join}");
    let plan = rows(&mut session, &explain).await.concat().join("\n");
    assert!(plan.contains("hash join") && !plan.contains("lookup join"), "{plan}");
    assert_eq!(rows(&mut session, join).await, [["400"]]);

    // Known to be 20 rows, small looks up its matches through big's index on v.
    session.execute("ANALYZE small").await.unwrap();
    let shown = rows(&mut session, "SHOW STATISTICS FOR TABLE small").await;
    assert_eq!(shown, [["__auto__", "{k}", "20", "20", "0"], ["__auto__", "{v}", "20", "20", "0"]]);
    let plan = rows(&mut session, &explain).await.concat().join("\n");
    assert!(plan.contains("lookup join inner big@big_v"), "{plan}");
    assert_eq!(rows(&mut session, join).await, [["400"]]);

    // Another node reads the new statistics by itself.
    let mut other = engines[2].session();
    poll_rows(&mut other, &explain, |rows| rows.concat().join("\n").contains("lookup join")).await;

    // CockroachDB's form, for some columns; PostgreSQL's errors.
    session.execute("CREATE STATISTICS s ON v FROM small").await.unwrap();
    let shown = rows(&mut session, "SHOW STATISTICS FOR TABLE small").await;
    assert_eq!(shown, [["__auto__", "{v}", "20", "20", "0"]]);
    let err = session.execute("ANALYZE nope").await.unwrap_err();
    assert_eq!(err.sqlstate(), "42P01", "{err}");
    let err = session.execute("ANALYZE small (nope)").await.unwrap_err();
    assert_eq!(err.sqlstate(), "42703", "{err}");
    assert_eq!(err.to_string(), "column \"nope\" of relation \"small\" does not exist");
}
