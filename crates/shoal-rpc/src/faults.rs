//! Fault injection: drop or delay messages to chosen peers.
//!
//! Used by tests, and by the Jepsen harness when it cannot partition the network itself. A
//! node starts with no faults; nothing in production sets them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to messages for one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerFault {
    /// Drop every message (the peer looks unreachable).
    pub drop: bool,
    /// Hold every message this long before sending it.
    pub delay: Duration,
}

/// The faults of one node's outgoing messages, by peer. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    peers: Arc<Mutex<HashMap<u64, PeerFault>>>,
}

impl Faults {
    /// Sets the fault for messages to `peer`.
    pub fn set(&self, peer: u64, fault: PeerFault) {
        self.lock().insert(peer, fault);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Returns the fault for `peer`.
    pub fn get(&self, peer: u64) -> PeerFault {
        self.lock().get(&peer).copied().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PeerFault>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
}
