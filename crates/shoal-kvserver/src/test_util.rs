//! Helpers shared by this crate's tests.

use shoal_api::{RangeDescriptor, ReplicaDescriptor};
use shoal_keys::Key;

/// Range 1 over the whole keyspace, with replica `n` on node `n` for n in 1..=3.
pub fn descriptor() -> RangeDescriptor {
    RangeDescriptor {
        range_id: 1,
        start_key: Key::MIN,
        end_key: Key::max(),
        replicas: (1..=3)
            .map(|n| ReplicaDescriptor { node_id: n, store_id: 1, replica_id: n })
            .collect(),
        next_replica_id: 4,
        generation: 0,
    }
}
