//! The catalog: database and table descriptors stored in system keys, read in each
//! transaction, cached on each node.
//!
//! ```text
//!   /System/sql/version                  catalog version: incremented by every schema change
//!   /System/sql/seq                      descriptor id generator
//!   /System/sql/desc/<id>                Descriptor: a database, table or view (postcard)
//!   /System/sql/ns/<parent id>/<name>    the id of <name>: databases under parent 0,
//!                                        tables and views under their database's id
//!   /System/sql/stats/<table id>         the table's statistics (postcard; crate::stats)
//! ```
//!
//! Statistics are not versioned with the descriptors: writing them does not bump the
//! version. The cache holds them beside the descriptors (in [`TableDescriptor::stats`], never
//! stored in the descriptor itself) and replaces them as [`crate::stats`] describes.
//!
//! `defaultdb` (id 1) always exists and has no descriptor; `CREATE DATABASE` adds others.
//! Each session has a current database ([`Snapshot`] is the catalog seen from it): a bare
//! table name means a table of that database, `db.t` (or `db.public.t`) one of database `db`.
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
//! Schemas other than `public`; table names containing a dot; online schema
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

/// The database every session starts in.
pub const DEFAULT_DATABASE: &str = "defaultdb";

/// The id of [`DEFAULT_DATABASE`], which has no stored descriptor.
pub const DEFAULT_DATABASE_ID: u64 = 1;

/// A database: a namespace of tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseDescriptor {
    /// Id, from the same sequence as table ids.
    pub id: u64,
    /// Name.
    pub name: String,
}

/// What `/System/sql/desc/<id>` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Descriptor {
    Database(DatabaseDescriptor),
    Table(TableDescriptor),
    // New variants go last: postcard encodes the variant's position.
    View(ViewDescriptor),
}

/// A view: a stored query, planned again wherever the view is read ([`crate::view`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDescriptor {
    /// Id, from the same sequence as table ids.
    pub id: u64,
    /// The id of the database holding the view.
    pub parent_id: u64,
    /// Name, unqualified; tables and views share one namespace.
    pub name: String,
    /// The query, as SQL text.
    pub query: String,
    /// The output column names, fixed when the view was created.
    pub columns: Vec<String>,
    /// The ids of every table and view the query reads, through other views too: what
    /// cannot be dropped without dropping this view (2BP01, or CASCADE).
    pub depends_on: Vec<u64>,
}

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
    /// The id of the database holding the table.
    pub parent_id: u64,
    /// Name, unqualified.
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
    /// The table's statistics as this node's cache last read them; not part of the stored
    /// descriptor.
    #[serde(skip)]
    pub stats: Option<Arc<crate::stats::TableStats>>,
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

fn stats_key(table_id: u64) -> Key {
    let mut k = system_key(b"sql/stats/").into_bytes();
    k.extend_from_slice(&table_id.to_be_bytes());
    Key::new(k)
}

fn stats_span() -> Span {
    Span::new(system_key(b"sql/stats/"), system_key(b"sql/stats0"))
}

fn name_key(parent_id: u64, name: &str) -> Key {
    let mut k = system_key(b"sql/ns/").into_bytes();
    k.extend_from_slice(&parent_id.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    Key::new(k)
}

/// Every database and table as of one catalog version.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// The catalog version.
    pub version: i64,
    /// Databases by name, `defaultdb` included.
    pub databases: BTreeMap<String, Arc<DatabaseDescriptor>>,
    /// Tables by database id and name.
    pub tables: BTreeMap<(u64, String), Arc<TableDescriptor>>,
    /// Views by database id and name.
    pub views: BTreeMap<(u64, String), Arc<ViewDescriptor>>,
    /// Which statistics its tables carry ([`Catalog`]'s generation of them).
    stats_generation: u64,
}

impl Contents {
    fn with_default_database(version: i64) -> Self {
        let default =
            DatabaseDescriptor { id: DEFAULT_DATABASE_ID, name: DEFAULT_DATABASE.to_string() };
        Contents {
            version,
            databases: BTreeMap::from([(default.name.clone(), Arc::new(default))]),
            tables: BTreeMap::new(),
            views: BTreeMap::new(),
            stats_generation: 0,
        }
    }

    /// These contents with each table carrying its entry of `stats`.
    fn with_stats(&self, stats: &Statistics) -> Contents {
        let tables = self
            .tables
            .iter()
            .map(|(key, table)| {
                let wanted = stats.tables.get(&table.id).cloned();
                let table = if table.stats == wanted {
                    table.clone()
                } else {
                    Arc::new(TableDescriptor { stats: wanted, ..(**table).clone() })
                };
                (key.clone(), table)
            })
            .collect();
        Contents { tables, stats_generation: stats.generation, ..self.clone() }
    }

    /// The catalog seen from database `database`: its tables are the ones bare names mean.
    pub fn view(self: &Arc<Self>, database: &str) -> Snapshot {
        let database_id = self.databases.get(database).map(|d| d.id);
        let tables = match database_id {
            Some(id) => self
                .tables
                .range((id, String::new())..(id + 1, String::new()))
                .map(|((_, name), t)| (name.clone(), t.clone()))
                .collect(),
            None => BTreeMap::new(),
        };
        Snapshot {
            version: self.version,
            database: database.to_string(),
            database_id,
            tables,
            contents: self.clone(),
        }
    }
}

/// The catalog as of one version, seen from a session's current database.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The catalog version.
    pub version: i64,
    /// The current database's name.
    pub database: String,
    /// Its id, or None if it does not exist (another session dropped it).
    pub database_id: Option<u64>,
    /// The current database's tables, by name.
    pub tables: BTreeMap<String, Arc<TableDescriptor>>,
    /// Every database and table.
    pub contents: Arc<Contents>,
}

impl Default for Snapshot {
    /// An empty catalog seen from `defaultdb`.
    fn default() -> Self {
        Arc::new(Contents::with_default_database(0)).view(DEFAULT_DATABASE)
    }
}

impl Snapshot {
    /// Returns the table `name` (bare, or `db.t`) or a 42P01 error.
    pub fn table(&self, name: &str) -> Result<Arc<TableDescriptor>> {
        match self.lookup(name)? {
            Some(table) => Ok(table),
            None if self.lookup_view(name)?.is_some() => Err(SqlError::NotSupported(format!(
                "\"{name}\" is a view; only SELECT reads views"
            ))),
            None => Err(SqlError::UndefinedTable(name.to_string())),
        }
    }

    /// Returns the table `name` (bare, or `db.t`) if it exists; an error if its database
    /// does not.
    pub fn lookup(&self, name: &str) -> Result<Option<Arc<TableDescriptor>>> {
        let (parent_id, bare) = self.resolve(name)?;
        Ok(self.contents.tables.get(&(parent_id, bare)).cloned())
    }

    /// Returns the database id and unqualified name that `name` (bare, or `db.t`) means;
    /// 3D000 if the database does not exist.
    pub fn resolve(&self, name: &str) -> Result<(u64, String)> {
        let (database, bare) = name.split_once('.').unwrap_or((&self.database, name));
        let id = self
            .contents
            .databases
            .get(database)
            .map(|d| d.id)
            .ok_or_else(|| SqlError::UndefinedDatabase(database.to_string()))?;
        Ok((id, bare.to_string()))
    }

    /// Returns the view `name` (bare, or `db.v`) if it exists.
    pub fn lookup_view(&self, name: &str) -> Result<Option<Arc<ViewDescriptor>>> {
        let (parent_id, bare) = self.resolve(name)?;
        Ok(self.contents.views.get(&(parent_id, bare)).cloned())
    }

    /// The views that read relation `id` (directly or through other views).
    pub fn dependents(&self, id: u64) -> Vec<Arc<ViewDescriptor>> {
        self.contents.views.values().filter(|v| v.depends_on.contains(&id)).cloned().collect()
    }

    /// Returns the table of the current database holding index `name`.
    pub fn table_of_index(&self, name: &str) -> Option<Arc<TableDescriptor>> {
        self.tables.values().find(|t| t.indexes.iter().any(|i| i.name == name)).cloned()
    }
}

/// One node's catalog cache.
#[derive(Debug, Default)]
pub struct Catalog {
    cached: Mutex<Option<Arc<Contents>>>,
    stats: Mutex<Statistics>,
}

/// This node's copy of every table's statistics.
#[derive(Debug, Default)]
struct Statistics {
    /// Bumped by every change of `tables`.
    generation: u64,
    tables: BTreeMap<u64, Arc<crate::stats::TableStats>>,
    /// When they were last read whole (the statements' clock, microseconds); None: never.
    read_at_micros: Option<i64>,
    /// A read is under way.
    reading: bool,
}

impl Catalog {
    /// Returns an empty cache.
    pub fn new() -> Self {
        Catalog::default()
    }

    /// Returns the catalog as `txn` sees it: the cached contents if their version is the one
    /// the transaction reads, else every descriptor read again through `txn`.
    pub async fn contents(&self, txn: &impl KvOps) -> Result<Arc<Contents>> {
        let version = match txn.get(version_key()).await? {
            Some(bytes) => decode_counter(&bytes)?,
            None => 0,
        };
        let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(cached) = cached
            && cached.version == version
        {
            return Ok(self.with_current_stats(cached));
        }
        let mut contents = Contents::with_default_database(version);
        let mut start = desc_span().start;
        loop {
            let page = txn.scan(Span::new(start.clone(), desc_span().end), Some(256)).await?;
            for (_, bytes) in &page {
                match postcard::from_bytes(bytes)
                    .map_err(|e| SqlError::Internal(format!("corrupt descriptor: {e}")))?
                {
                    Descriptor::Database(d) => {
                        contents.databases.insert(d.name.clone(), Arc::new(d));
                    }
                    Descriptor::Table(t) => {
                        contents.tables.insert((t.parent_id, t.name.clone()), Arc::new(t));
                    }
                    Descriptor::View(v) => {
                        contents.views.insert((v.parent_id, v.name.clone()), Arc::new(v));
                    }
                }
            }
            match page.last() {
                Some((key, _)) if page.len() == 256 => start = key.next(),
                _ => break,
            }
        }
        let contents = {
            let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            Arc::new(contents.with_stats(&stats))
        };
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if cached.as_ref().is_none_or(|c| c.version <= version) {
            *cached = Some(contents.clone());
        }
        Ok(contents)
    }

    /// `contents` with this node's current statistics, cached in their place.
    fn with_current_stats(&self, contents: Arc<Contents>) -> Arc<Contents> {
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        if contents.stats_generation == stats.generation {
            return contents;
        }
        let updated = Arc::new(contents.with_stats(&stats));
        drop(stats);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if cached.as_ref().is_some_and(|c| c.version == updated.version) {
            *cached = Some(updated.clone());
        }
        updated
    }

    /// Records `stats` as table `table_id`'s statistics on this node (None: it has none).
    pub fn set_stats(&self, table_id: u64, stats: Option<crate::stats::TableStats>) {
        let mut state = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        match stats {
            // An older collection finishing late (automatic ones read behind) never replaces
            // a newer one.
            Some(stats)
                if state
                    .tables
                    .get(&table_id)
                    .is_some_and(|s| s.collected_at_micros > stats.collected_at_micros) =>
            {
                return;
            }
            Some(stats) => state.tables.insert(table_id, Arc::new(stats)),
            None => state.tables.remove(&table_id),
        };
        state.generation += 1;
    }

    /// Whether this node's statistics are older than [`crate::stats::STATS_REFRESH`] at
    /// `now_micros` and no read is under way; if so, the caller is to read them
    /// ([`Catalog::read_stats`]) and a read counts as under way.
    pub fn claim_stats_read(&self, now_micros: i64) -> bool {
        let mut state = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let stale = state
            .read_at_micros
            .is_none_or(|at| now_micros.saturating_sub(at) >= crate::stats::STATS_REFRESH);
        if stale && !state.reading {
            state.reading = true;
            return true;
        }
        false
    }

    /// Reads every table's statistics through `kv` (outside any transaction) and makes
    /// them this node's; `now_micros` is when, by the statements' clock.
    pub async fn read_stats(&self, kv: &impl KvOps, now_micros: i64) -> Result<()> {
        let read = async {
            let mut tables = BTreeMap::new();
            let mut start = stats_span().start;
            loop {
                let page = kv.scan(Span::new(start.clone(), stats_span().end), Some(256)).await?;
                for (key, bytes) in &page {
                    let bytes_of_id =
                        key.as_bytes().len().checked_sub(8).map(|at| &key.as_bytes()[at..]);
                    let id = bytes_of_id
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map(u64::from_be_bytes)
                        .ok_or_else(|| {
                            SqlError::Internal(format!("corrupt statistics key {key}"))
                        })?;
                    let stats: crate::stats::TableStats = postcard::from_bytes(bytes)
                        .map_err(|e| SqlError::Internal(format!("corrupt statistics: {e}")))?;
                    tables.insert(id, Arc::new(stats));
                }
                match page.last() {
                    Some((key, _)) if page.len() == 256 => start = key.next(),
                    _ => break,
                }
            }
            Ok::<_, SqlError>(tables)
        };
        let result = read.await;
        let mut state = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        state.reading = false;
        let tables = result?;
        if tables != state.tables {
            state.tables = tables;
            state.generation += 1;
        }
        state.read_at_micros = Some(now_micros);
        Ok(())
    }

    /// Stores table `table_id`'s statistics in `txn` (the catalog version stays).
    pub async fn write_stats(
        &self,
        txn: &impl KvOps,
        table_id: u64,
        stats: &crate::stats::TableStats,
    ) -> Result<()> {
        // An older collection finishing late never replaces a newer one.
        if let Some(stored) = txn.get(stats_key(table_id)).await?
            && let Ok(stored) = postcard::from_bytes::<crate::stats::TableStats>(&stored)
            && stored.collected_at_micros > stats.collected_at_micros
        {
            return Ok(());
        }
        let bytes = postcard::to_allocvec(stats)
            .map_err(|e| SqlError::Internal(format!("encoding statistics: {e}")))?;
        txn.put(stats_key(table_id), bytes).await?;
        Ok(())
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
        let name = name_key(table.parent_id, &table.name);
        write_descriptor(txn, table.id, name, &Descriptor::Table(table.clone())).await
    }

    /// Removes a table's descriptor and name, and bumps the catalog version.
    pub async fn drop_table(&self, txn: &impl KvOps, table: &TableDescriptor) -> Result<()> {
        txn.delete(stats_key(table.id)).await?;
        drop_descriptor(txn, table.id, name_key(table.parent_id, &table.name)).await
    }

    /// Creates or replaces a view's descriptor and name, and bumps the catalog version.
    pub async fn write_view(&self, txn: &impl KvOps, view: &ViewDescriptor) -> Result<()> {
        let name = name_key(view.parent_id, &view.name);
        write_descriptor(txn, view.id, name, &Descriptor::View(view.clone())).await
    }

    /// Removes a view's descriptor and name, and bumps the catalog version.
    pub async fn drop_view(&self, txn: &impl KvOps, view: &ViewDescriptor) -> Result<()> {
        drop_descriptor(txn, view.id, name_key(view.parent_id, &view.name)).await
    }

    /// Creates a database's descriptor and name, and bumps the catalog version.
    pub async fn write_database(&self, txn: &impl KvOps, db: &DatabaseDescriptor) -> Result<()> {
        let name = name_key(0, &db.name);
        write_descriptor(txn, db.id, name, &Descriptor::Database(db.clone())).await
    }

    /// Removes a database's descriptor and name (not its tables), and bumps the version.
    pub async fn drop_database(&self, txn: &impl KvOps, db: &DatabaseDescriptor) -> Result<()> {
        drop_descriptor(txn, db.id, name_key(0, &db.name)).await
    }
}

async fn write_descriptor(
    txn: &impl KvOps,
    id: u64,
    name: Key,
    descriptor: &Descriptor,
) -> Result<()> {
    let bytes = postcard::to_allocvec(descriptor)
        .map_err(|e| SqlError::Internal(format!("encoding a descriptor: {e}")))?;
    txn.put(desc_key(id), bytes).await?;
    txn.put(name, id.to_be_bytes().to_vec()).await?;
    txn.increment(version_key(), 1).await?;
    Ok(())
}

async fn drop_descriptor(txn: &impl KvOps, id: u64, name: Key) -> Result<()> {
    txn.delete(desc_key(id)).await?;
    txn.delete(name).await?;
    txn.increment(version_key(), 1).await?;
    Ok(())
}

/// Reads a counter written by `Increment` (decimal text).
fn decode_counter(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| SqlError::Internal(format!("corrupt catalog version {bytes:?}")))
}
