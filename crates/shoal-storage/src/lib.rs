//! Shoal's storage: engines and MVCC.
//!
//! The bottom of the data path. An [`Engine`] is an ordered key-value store with atomic write
//! batches and a few fixed keyspaces ([`Cf`]); [`RocksEngine`] is the one every server runs,
//! [`MemoryEngine`] serves simulation and fast tests, and both pass one conformance suite.
//! [`mvcc`] builds versioned keys, separated intents, uncertainty checks and garbage
//! collection on any engine.
//!
//! ```text
//!   shoal-kvserver ──▶ mvcc::{get, scan, put, resolve_intent, gc} ──▶ WriteBatch
//!                                 │ reads                              │ applied atomically
//!                                 ▼                                    ▼
//!                         Reader / Engine  ◀──────────────  RocksEngine | MemoryEngine
//! ```
//!
//! This is the only crate that uses RocksDB (design §1); a test in `tests/` enforces it.

mod bytes;
pub mod engine;
mod error;
pub mod mvcc;

pub use engine::{
    BatchOp, Cf, Engine, EngineIterator, IterOptions, MemoryEngine, Reader, RocksEngine,
    WriteBatch, WriteOptions, scan_all,
};
pub use error::{Error, Result};
