//! The catalog: table descriptors stored in system keys, read in each transaction, cached on
//! each node.
//!
//! ```text
//!   /System/sql/version              catalog version: incremented by every schema change
//!   /System/sql/seq                  descriptor id generator
//!   /System/sql/desc/<id>            TableDescriptor (postcard)
//!   /System/sql/ns/<name>            the table id of <name>
//! ```
//!
//! # Consistency
//!
//! Every transaction reads the catalog version once, at its first statement, inside the
//! transaction; if this node's cache holds that version it is used, otherwise every descriptor
//! is read again in the same transaction. So a transaction sees the catalog as of its own
//! timestamp, and a schema change that commits under it makes it restart (its read of the
//! version no longer refreshes), never silently use a stale schema. Schema changes are
//! transactional: a `CREATE TABLE` rolled back leaves nothing behind.
//!
//! # Out of scope
//!
//! Several databases and schemas (there is one, `defaultdb`, schema `public`); online schema
//! changes (adding an index or a NOT NULL column to a populated table backfills inside the
//! statement's transaction); descriptor leases (the version read costs one round trip per
//! transaction to the system range).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use shoal_keys::layout::system_key;
use shoal_keys::{Key, Span};
use shoal_kvclient::KvOps;

use crate::error::{Result, SqlError};
use crate::types::DataType;

/// The id of the first table; lower ids are reserved.
const FIRST_TABLE_ID: u64 = 100;

/// A column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDescriptor {
    /// Stable id: row values are keyed by it, so columns can be renamed or dropped.
    pub id: u32,
    /// Name, lower case unless quoted.
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The DEFAULT expression, as SQL text.
    pub default: Option<String>,
    /// Hidden from `SELECT *` (the generated `rowid`).
    pub hidden: bool,
}

/// An index: the primary index (id 1) holds the rows; secondary ones point to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDescriptor {
    /// Id within the table; the primary index is 1.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Indexed column ids, each ascending (true) or descending.
    pub columns: Vec<(u32, bool)>,
    /// Whether two rows may not share a key (NULLs never collide).
    pub unique: bool,
    /// Hash-sharded into this many buckets (`USING HASH`): a hidden leading bucket column
    /// spreads sequential keys over ranges.
    pub hash_buckets: Option<u32>,
}

/// A CHECK constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckConstraint {
    /// Name.
    pub name: String,
    /// The condition, as SQL text.
    pub expr: String,
}

/// A table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDescriptor {
    /// Id: the table's keys start with `/Table/<id>`.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Columns, in declaration order.
    pub columns: Vec<ColumnDescriptor>,
    /// The primary index; its columns are the primary key.
    pub primary: IndexDescriptor,
    /// Secondary indexes.
    pub indexes: Vec<IndexDescriptor>,
    /// CHECK constraints.
    pub checks: Vec<CheckConstraint>,
    /// The next column id to hand out.
    pub next_column_id: u32,
    /// The next index id to hand out.
    pub next_index_id: u32,
}

impl TableDescriptor {
    /// Returns the position of column `name` in [`TableDescriptor::columns`].
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Returns the position of the column with id `id`.
    pub fn column_position(&self, id: u32) -> Result<usize> {
        self.columns.iter().position(|c| c.id == id).ok_or_else(|| {
            SqlError::Internal(format!("table {} has no column with id {id}", self.name))
        })
    }

    /// Returns the positions of the primary key's columns.
    pub fn primary_positions(&self) -> Result<Vec<usize>> {
        self.primary.columns.iter().map(|(id, _)| self.column_position(*id)).collect()
    }

    /// Returns every index, the primary one first.
    pub fn all_indexes(&self) -> impl Iterator<Item = &IndexDescriptor> {
        std::iter::once(&self.primary).chain(&self.indexes)
    }

    /// Returns the index named `name`.
    pub fn index(&self, name: &str) -> Option<&IndexDescriptor> {
        self.all_indexes().find(|i| i.name == name)
    }
}

fn version_key() -> Key {
    system_key(b"sql/version")
}

fn seq_key() -> Key {
    system_key(b"sql/seq")
}

fn desc_key(id: u64) -> Key {
    let mut k = system_key(b"sql/desc/").into_bytes();
    k.extend_from_slice(&id.to_be_bytes());
    Key::new(k)
}

fn desc_span() -> Span {
    Span::new(system_key(b"sql/desc/"), system_key(b"sql/desc0"))
}

fn name_key(name: &str) -> Key {
    let mut k = system_key(b"sql/ns/").into_bytes();
    k.extend_from_slice(name.as_bytes());
    Key::new(k)
}

/// The tables as of one catalog version.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The catalog version.
    pub version: i64,
    /// Tables by name.
    pub tables: BTreeMap<String, Arc<TableDescriptor>>,
}

impl Snapshot {
    /// Returns the table `name` or a 42P01 error.
    pub fn table(&self, name: &str) -> Result<Arc<TableDescriptor>> {
        self.tables.get(name).cloned().ok_or_else(|| SqlError::UndefinedTable(name.to_string()))
    }

    /// Returns the table holding index `name`.
    pub fn table_of_index(&self, name: &str) -> Option<Arc<TableDescriptor>> {
        self.tables.values().find(|t| t.indexes.iter().any(|i| i.name == name)).cloned()
    }
}

/// One node's catalog cache.
#[derive(Debug, Default)]
pub struct Catalog {
    cached: Mutex<Option<Arc<Snapshot>>>,
}

impl Catalog {
    /// Returns an empty cache.
    pub fn new() -> Self {
        Catalog::default()
    }

    /// Returns the catalog as `txn` sees it: the cached snapshot if its version is the one the
    /// transaction reads, else every descriptor read again through `txn`.
    pub async fn snapshot(&self, txn: &impl KvOps) -> Result<Arc<Snapshot>> {
        let version = match txn.get(version_key()).await? {
            Some(bytes) => decode_counter(&bytes)?,
            None => 0,
        };
        if let Some(cached) = self.cached.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && cached.version == version
        {
            return Ok(cached.clone());
        }
        let mut tables = BTreeMap::new();
        let mut start = desc_span().start;
        loop {
            let page = txn.scan(Span::new(start.clone(), desc_span().end), Some(256)).await?;
            for (_, bytes) in &page {
                let table: TableDescriptor = postcard::from_bytes(bytes)
                    .map_err(|e| SqlError::Internal(format!("corrupt table descriptor: {e}")))?;
                tables.insert(table.name.clone(), Arc::new(table));
            }
            match page.last() {
                Some((key, _)) if page.len() == 256 => start = key.next(),
                _ => break,
            }
        }
        let snapshot = Arc::new(Snapshot { version, tables });
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if cached.as_ref().is_none_or(|c| c.version <= version) {
            *cached = Some(snapshot.clone());
        }
        Ok(snapshot)
    }

    /// Allocates a new table id.
    pub async fn next_id(&self, txn: &impl KvOps) -> Result<u64> {
        let n = txn.increment(seq_key(), 1).await?;
        Ok(FIRST_TABLE_ID + u64::try_from(n).unwrap_or(0))
    }

    /// The id the next table will get (unless another takes it first); for tests and tools
    /// that prepare ranges for tables about to be created.
    pub async fn peek_next_id(&self, kv: &impl KvOps) -> Result<u64> {
        let n = kv.increment(seq_key(), 0).await?;
        Ok(FIRST_TABLE_ID + u64::try_from(n).unwrap_or(0) + 1)
    }

    /// Creates or replaces a table's descriptor and name, and bumps the catalog version.
    pub async fn write_table(&self, txn: &impl KvOps, table: &TableDescriptor) -> Result<()> {
        let bytes = postcard::to_allocvec(table)
            .map_err(|e| SqlError::Internal(format!("encoding a descriptor: {e}")))?;
        txn.put(desc_key(table.id), bytes).await?;
        txn.put(name_key(&table.name), table.id.to_be_bytes().to_vec()).await?;
        txn.increment(version_key(), 1).await?;
        Ok(())
    }

    /// Removes a table's descriptor and name, and bumps the catalog version.
    pub async fn drop_table(&self, txn: &impl KvOps, table: &TableDescriptor) -> Result<()> {
        txn.delete(desc_key(table.id)).await?;
        txn.delete(name_key(&table.name)).await?;
        txn.increment(version_key(), 1).await?;
        Ok(())
    }
}

/// Reads a counter written by `Increment` (decimal text).
fn decode_counter(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| SqlError::Internal(format!("corrupt catalog version {bytes:?}")))
}
