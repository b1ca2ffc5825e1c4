//! Keys and the keyspace layout of Shoal.
//!
//! Every piece of data Shoal stores lives under one byte-string key, and keys order bytewise.
//! The keyspace is split into ranges by key, so the layout decides what can live together:
//! range-local state sorts before everything else and is never addressed by users, addressing
//! records (`/Meta`) come next so the meta range is one contiguous span, then system data, then
//! SQL tables.
//!
//! ```text
//!   /Min  /Local/...  /Meta/...  /Meta/Max  /System/...  /Tenant/...  /Table/52/1/"abc"/7  /Max
//!   └── range-local ─┘└──── range 1 (never splits) ────┘└──────── everything else ─────────┘
//! ```
//!
//! This crate holds:
//!
//! - [`Key`] and [`Span`]: owned keys and half-open key intervals;
//! - [`layout`]: the region prefixes and constructors for each kind of key (design §2);
//! - [`encoding`]: the order-preserving encodings of SQL key columns and identifiers;
//! - [`pretty`]: the printer that renders keys as `/Table/52/1/"abc"/7`.
//!
//! Out of scope: MVCC timestamps in keys (added by `shoal-storage`), and value encodings
//! (`shoal-sql`).
//!
//! # Hazards
//!
//! The byte layout here is a storage format: any change reorders or orphans data on disk.

pub mod encoding;
mod error;
mod key;
pub mod layout;
pub mod pretty;

pub use encoding::{Datum, Direction};
pub use error::{Error, Result};
pub use key::{Key, Span};
pub use layout::TableCodec;
