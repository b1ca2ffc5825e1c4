//! Cluster settings: named integers stored in KV at `/System/settings/<name>`, so every node
//! reads the same value and a change takes effect everywhere at the next queue pass.
//!
//! ```text
//!   PUT /v1/settings/replication_factor {"value": 5}   → /System/settings/replication_factor = "5"
//!   replicate queue, each pass: replication_factor = 5 (3 while unset)
//! ```
//!
//! Values are checked against each setting's bounds when written, and again when read (a bad
//! stored value falls back to the default with a warning rather than stopping the queues).

use shoal_api::addressing::setting_key;
use shoal_kvclient::KvClient;
use shoal_kvclient::KvOps;

use crate::error::{Error, Result};

/// A cluster setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Its name.
    pub name: &'static str,
    /// Its value while unset.
    pub default: u64,
    /// The smallest accepted value.
    pub min: u64,
    /// The largest accepted value.
    pub max: u64,
    /// What it controls.
    pub description: &'static str,
}

/// How many voters every range keeps.
pub const REPLICATION_FACTOR: Setting = Setting {
    name: "replication_factor",
    default: 3,
    min: 1,
    max: 7,
    description: "voters per range",
};

/// A range larger than this (live bytes) is split by the split queue.
pub const RANGE_MAX_BYTES: Setting = Setting {
    name: "range_max_bytes",
    default: 512 << 20,
    min: 1 << 10,
    max: 1 << 40,
    description: "split ranges above this many bytes",
};

/// A range serving more requests per second than this, over the load window, is split by load.
pub const SPLIT_QPS_THRESHOLD: Setting = Setting {
    name: "split_qps_threshold",
    default: 2500,
    min: 1,
    max: 1 << 32,
    description: "split ranges above this many requests per second",
};

/// Each SQL statement's memory budget in bytes; 0 (the default) means the node's own default,
/// a sixteenth of its memory. Nodes apply a change within a queue interval.
pub const SQL_QUERY_MEMORY_LIMIT: Setting = Setting {
    name: "sql.query_memory_limit",
    default: 0,
    min: 0,
    max: 1 << 40,
    description: "bytes each SQL statement may hold in sorts, joins, aggregates (0: node default)",
};

/// Every setting.
pub const ALL: [Setting; 4] =
    [REPLICATION_FACTOR, RANGE_MAX_BYTES, SPLIT_QPS_THRESHOLD, SQL_QUERY_MEMORY_LIMIT];

/// Returns the setting called `name`.
pub fn find(name: &str) -> Option<Setting> {
    ALL.into_iter().find(|s| s.name == name)
}

/// Reads `setting` (its default while unset).
pub async fn get(kv: &KvClient, setting: Setting) -> Result<u64> {
    let Some(bytes) = kv.get(setting_key(setting.name)).await? else {
        return Ok(setting.default);
    };
    let parsed = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse::<u64>().ok());
    match parsed {
        Some(value) if (setting.min..=setting.max).contains(&value) => Ok(value),
        _ => {
            tracing::warn!(
                setting = setting.name,
                "a stored setting is invalid; using its default"
            );
            Ok(setting.default)
        }
    }
}

/// Writes `setting`, refusing values outside its bounds.
pub async fn set(kv: &KvClient, setting: Setting, value: u64) -> Result<()> {
    if !(setting.min..=setting.max).contains(&value) {
        return Err(Error::Kv(shoal_api::KvError::InvalidArgument(format!(
            "{} must be between {} and {}, not {value}",
            setting.name, setting.min, setting.max
        ))));
    }
    kv.put(setting_key(setting.name), value.to_string().into_bytes()).await?;
    Ok(())
}
