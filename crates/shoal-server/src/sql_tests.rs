//! SQL logic tests: every `sql/*.slt` file at the repository root runs through the
//! `sqllogictest` crate against a three-node in-process cluster on RocksDB.
//!
//! The table keyspace is split in advance, so every table a file creates spans several
//! ranges: each of the first table ids starts a range, and each primary index is split again
//! at the integer key 10 (so `INT` keys on both sides of 10 land on different ranges), with the
//! secondary indexes on a range of their own. Files take turns on the three nodes, and each
//! file runs in one session, so BEGIN ... COMMIT spans its records.
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

/// Table ids whose keyspace is split in advance (the first ids tables get).
const SPLIT_TABLES: std::ops::Range<u64> = 101..121;

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
            Some(Output::Done(_)) | None => DBOutput::StatementComplete(0),
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
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_logic_tests_pass_on_a_three_node_cluster() {
    let _serial = SERIAL.lock().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(&dirs).await;
    let codec = TableCodec::system();
    for id in SPLIT_TABLES {
        let at_ten = codec.index_key(id, 1, &[(Datum::Int(10), Direction::Ascending)]);
        for key in [codec.table_prefix(id), at_ten, codec.index_prefix(id, 2)] {
            crate::admin::split(&nodes[0], key).await.unwrap();
        }
    }
    let engines: Vec<Arc<SqlEngine>> = nodes
        .iter()
        .map(|n| SqlEngine::new(n.require_cluster().unwrap().kv.clone(), n.node_id()))
        .collect();
    for (i, file) in slt_files().into_iter().enumerate() {
        let engine = engines[i % engines.len()].clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let engine = engine.clone();
            async move { Ok::<_, DbError>(Db { session: engine.session() }) }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}: {}", file.display(), e.display(false));
        }
    }
}
