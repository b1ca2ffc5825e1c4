//! The RocksDB engine: one RocksDB instance per store, with a fixed column family per [`Cf`].
//!
//! A store directory holds a marker file, [`STORE_MARKER_FILE`], naming the on-disk format
//! version. Opening checks it before RocksDB touches the directory, so pointing a node at the
//! wrong directory (a home directory, another database) fails with an error naming the path
//! instead of scattering RocksDB files into it:
//!
//! ```text
//!   store/
//!     SHOAL_STORE        "shoal-store\nformat-version: 1\n"
//!     CURRENT, MANIFEST-*, *.log, *.sst, OPTIONS-*   (RocksDB)
//! ```
//!
//! # Settings
//!
//! Sized for the 2-core machines Shoal runs on (see the repository's RocksDB notes): two
//! background jobs, incremental syncs of SSTs and WAL, a bounded total WAL size (a quiet column
//! family would otherwise pin old WAL files), one shared LRU block cache holding index and
//! filter blocks. The MVCC column family extracts the escaped user key as its prefix, so a
//! point read at a timestamp consults a per-user-key bloom filter.
//!
//! # Durability
//!
//! The WAL is always on. A write with [`WriteOptions::SYNC`] is fsynced before it returns; a
//! write without it is durable after the next synced write or [`Engine::sync_wal`]. RocksDB
//! orders the WAL, so an unsynced batch never survives a crash while an earlier one is lost.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    DBRawIterator, Options, ReadOptions, SliceTransform,
};

use super::{BatchOp, Cf, Engine, EngineIterator, IterOptions, Reader, WriteBatch, WriteOptions};
use crate::mvcc::key::{mvcc_prefix, mvcc_prefix_in_domain};
use crate::{Error, Result};

/// Name of the marker file that identifies a directory as a Shoal store.
pub const STORE_MARKER_FILE: &str = "SHOAL_STORE";
/// The on-disk format version this build reads and writes.
pub const STORE_FORMAT_VERSION: u32 = 1;

const MARKER_MAGIC: &str = "shoal-store";
const MARKER_TMP_FILE: &str = "SHOAL_STORE.tmp";
const BLOCK_CACHE_BYTES: usize = 128 << 20;

/// A RocksDB-backed engine.
pub struct RocksEngine {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine").field("path", &self.path).finish()
    }
}

impl RocksEngine {
    /// Opens the store at `path`, creating it if the directory is missing or empty.
    ///
    /// Fails with [`Error::NotAStore`] if the directory holds other files but no marker, and
    /// with [`Error::UnsupportedFormat`] if the marker names a version this build cannot read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        check_or_create_marker(&path)?;

        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_bytes_per_sync(1 << 20);
        db_opts.set_wal_bytes_per_sync(512 << 10);
        db_opts.set_max_total_wal_size(256 << 20);

        let cfs = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(*cf, &cache)));
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs)
            .map_err(|e| Error::Engine(format!("opening store {}: {e}", path.display())))?;
        Ok(RocksEngine { db, path })
    }

    /// Returns the store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, cf: Cf) -> &ColumnFamily {
        self.db.cf_handle(cf.name()).expect("every Cf is created when the store opens")
    }
}

fn cf_options(cf: Cf, cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_bloom_filter(10.0, false);

    let mut opts = Options::default();
    opts.set_level_compaction_dynamic_level_bytes(true);
    match cf {
        Cf::Mvcc => {
            // Versions of one user key share a prefix; filter on it, not on whole keys (a point
            // read seeks to `key@ts`, which is rarely an exact stored key).
            table.set_whole_key_filtering(false);
            opts.set_prefix_extractor(SliceTransform::create(
                "shoal.mvcc.user_key",
                mvcc_prefix,
                Some(mvcc_prefix_in_domain),
            ));
            opts.set_memtable_prefix_bloom_ratio(0.1);
            opts.set_compression_type(DBCompressionType::Lz4);
            opts.set_bottommost_compression_type(DBCompressionType::Zstd);
        }
        Cf::Local => opts.set_compression_type(DBCompressionType::Lz4),
        // Raft entries are written once, read rarely and deleted soon: skip compression.
        Cf::Raft => opts.set_compression_type(DBCompressionType::None),
    }
    opts.set_block_based_table_factory(&table);
    opts
}

/// Checks the store marker at `path`, or creates it for a new store.
fn check_or_create_marker(path: &Path) -> Result<()> {
    let not_a_store = |reason: String| Error::NotAStore { path: path.to_path_buf(), reason };
    if path.exists() && !path.is_dir() {
        return Err(not_a_store("it is not a directory".into()));
    }
    let marker = path.join(STORE_MARKER_FILE);
    match fs::read_to_string(&marker) {
        Ok(contents) => {
            let mut lines = contents.lines();
            if lines.next() != Some(MARKER_MAGIC) {
                return Err(not_a_store(format!(
                    "{STORE_MARKER_FILE} is not a Shoal store marker"
                )));
            }
            let version = lines
                .next()
                .and_then(|l| l.strip_prefix("format-version: "))
                .and_then(|v| v.trim().parse::<u32>().ok())
                .ok_or_else(|| not_a_store(format!("{STORE_MARKER_FILE} has no format version")))?;
            if version != STORE_FORMAT_VERSION {
                return Err(Error::UnsupportedFormat {
                    path: path.to_path_buf(),
                    found: version,
                    supported: STORE_FORMAT_VERSION,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(path).map_err(|e| io_error(path, e))?;
            // A leftover temporary marker means a crash while creating the store: start over.
            let tmp = path.join(MARKER_TMP_FILE);
            if tmp.exists() {
                fs::remove_file(&tmp).map_err(|e| io_error(&tmp, e))?;
            }
            let has_files = fs::read_dir(path).map_err(|e| io_error(path, e))?.next().is_some();
            if has_files {
                return Err(not_a_store(format!(
                    "the directory is not empty and has no {STORE_MARKER_FILE} marker"
                )));
            }
            write_marker(path)
        }
        Err(e) => Err(io_error(&marker, e)),
    }
}

/// Writes the marker durably: temporary file, fsync, rename, fsync of the directory, so a
/// crash leaves either no marker (an empty directory, recreated on the next open) or a whole one.
fn write_marker(path: &Path) -> Result<()> {
    let tmp = path.join(MARKER_TMP_FILE);
    let mut file = fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
    write!(file, "{MARKER_MAGIC}\nformat-version: {STORE_FORMAT_VERSION}\n")
        .and_then(|_| file.sync_all())
        .map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, path.join(STORE_MARKER_FILE)).map_err(|e| io_error(path, e))?;
    fs::File::open(path).and_then(|dir| dir.sync_all()).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), message: e.to_string() }
}

fn engine_error(e: rocksdb::Error) -> Error {
    Error::Engine(e.into_string())
}

impl Reader for RocksEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf), key).map_err(engine_error)
    }

    fn iter(&self, cf: Cf, opts: IterOptions) -> Result<Box<dyn EngineIterator + '_>> {
        let mut read_opts = ReadOptions::default();
        if let Some(lower) = opts.lower {
            read_opts.set_iterate_lower_bound(lower);
        }
        if let Some(upper) = opts.upper {
            read_opts.set_iterate_upper_bound(upper);
        }
        if opts.prefix_same_as_start {
            read_opts.set_prefix_same_as_start(true);
        } else {
            // With a prefix extractor, RocksDB's default seek mode only works within one
            // prefix; scans cross user keys and need total order.
            read_opts.set_total_order_seek(true);
        }
        Ok(Box::new(RocksIterator(self.db.raw_iterator_cf_opt(self.cf(cf), read_opts))))
    }
}

impl Engine for RocksEngine {
    fn write(&self, batch: &WriteBatch, opts: WriteOptions) -> Result<()> {
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.ops() {
            match op {
                BatchOp::Put { cf, key, value } => rocks_batch.put_cf(self.cf(*cf), key, value),
                BatchOp::Delete { cf, key } => rocks_batch.delete_cf(self.cf(*cf), key),
                BatchOp::DeleteRange { cf, start, end } => {
                    if start < end {
                        rocks_batch.delete_range_cf(self.cf(*cf), start, end)
                    }
                }
            }
        }
        let mut write_opts = rocksdb::WriteOptions::default();
        write_opts.set_sync(opts.sync);
        self.db.write_opt(rocks_batch, &write_opts).map_err(engine_error)
    }

    fn sync_wal(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(engine_error)
    }
}

struct RocksIterator<'a>(DBRawIterator<'a>);

impl EngineIterator for RocksIterator<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.0.seek(key);
    }

    fn seek_for_prev(&mut self, key: &[u8]) {
        self.0.seek_for_prev(key);
    }

    fn seek_to_first(&mut self) {
        self.0.seek_to_first();
    }

    fn seek_to_last(&mut self) {
        self.0.seek_to_last();
    }

    fn next(&mut self) {
        self.0.next();
    }

    fn prev(&mut self) {
        self.0.prev();
    }

    fn valid(&self) -> Result<bool> {
        if self.0.valid() {
            return Ok(true);
        }
        self.0.status().map_err(engine_error)?;
        Ok(false)
    }

    fn key(&self) -> &[u8] {
        self.0.key().expect("key() on an invalid iterator")
    }

    fn value(&self) -> &[u8] {
        self.0.value().expect("value() on an invalid iterator")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::scan_all;

    #[test]
    fn reopened_store_returns_exactly_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let mut expected = std::collections::BTreeMap::new();
        {
            let engine = RocksEngine::open(&path).unwrap();
            for round in 0..50u32 {
                let mut batch = WriteBatch::new();
                for i in 0..20u32 {
                    let key = format!("key-{:04}", (round * 7 + i) % 300).into_bytes();
                    if (round + i) % 5 == 0 {
                        batch.delete(Cf::Mvcc, key.clone());
                        expected.remove(&key);
                    } else {
                        let value = format!("value-{round}-{i}").into_bytes();
                        batch.put(Cf::Mvcc, key.clone(), value.clone());
                        expected.insert(key, value);
                    }
                }
                batch.put(Cf::Raft, round.to_be_bytes().to_vec(), b"entry".to_vec());
                // Alternate synced and unsynced writes; a clean close keeps both.
                let opts = if round % 2 == 0 { WriteOptions::SYNC } else { WriteOptions::NO_SYNC };
                engine.write(&batch, opts).unwrap();
            }
        }
        let engine = RocksEngine::open(&path).unwrap();
        let got: std::collections::BTreeMap<_, _> =
            scan_all(&engine, Cf::Mvcc, IterOptions::default()).unwrap().into_iter().collect();
        assert_eq!(got, expected);
        assert_eq!(scan_all(&engine, Cf::Raft, IterOptions::default()).unwrap().len(), 50);
        assert!(scan_all(&engine, Cf::Local, IterOptions::default()).unwrap().is_empty());
    }

    #[test]
    fn refuses_a_directory_that_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "my files").unwrap();
        let err = RocksEngine::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::NotAStore { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.path().display().to_string()) && msg.contains("not a Shoal store"),
            "{msg}"
        );
        // Nothing was created in it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let file = dir.path().join("notes.txt");
        let err = RocksEngine::open(&file).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");

        std::fs::write(dir.path().join(STORE_MARKER_FILE), "something else\n").unwrap();
        let err = RocksEngine::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is not a Shoal store marker"), "{err}");
    }

    #[test]
    fn refuses_an_unknown_format_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        drop(RocksEngine::open(&path).unwrap());
        std::fs::write(path.join(STORE_MARKER_FILE), "shoal-store\nformat-version: 99\n").unwrap();
        let err = RocksEngine::open(&path).unwrap_err();
        assert_eq!(
            err,
            Error::UnsupportedFormat {
                path: path.clone(),
                found: 99,
                supported: STORE_FORMAT_VERSION
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("format version 99"),
            "{msg}"
        );
    }

    #[test]
    fn recovers_from_a_crash_while_creating_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MARKER_TMP_FILE), "shoal-st").unwrap();
        RocksEngine::open(dir.path()).unwrap();
        assert!(!dir.path().join(MARKER_TMP_FILE).exists());
    }

    #[test]
    fn creates_a_store_in_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open(dir.path()).unwrap();
        assert_eq!(engine.path(), dir.path());
        let marker = std::fs::read_to_string(dir.path().join(STORE_MARKER_FILE)).unwrap();
        assert_eq!(marker, "shoal-store\nformat-version: 1\n");
    }
}
