//! Latches: the per-range lock manager that keeps overlapping requests from evaluating at the
//! same time, while requests on different keys proceed in parallel.
//!
//! ```text
//!   range lock (RwLock)          key locks (one RwLock per key in use)
//!   Get a, Put b       shared     a: shared,  b: exclusive     ─┐ run in parallel with
//!   Put c              shared     c: exclusive                 ─┘ each other
//!   Scan [a, z)        exclusive  —                             waits for all of the above
//!   DeleteRange, split, exclusive  —
//!   ResolveIntentRange, Refresh
//! ```
//!
//! Two levels: every request takes the range lock, shared if it names only point keys and
//! exclusive if it covers a span; point requests then take their keys' locks, shared for reads
//! and exclusive for writes. Keys are locked in key order, so two requests never wait for each
//! other in a cycle.
//!
//! # Invariants
//!
//! Two requests whose key sets overlap, at least one of them writing, never hold their latches
//! at once. A request holds its latches from before its lease read until its writes applied
//! (or, for a proposal that timed out, until the proposal resolves).
//!
//! # Out of scope
//!
//! Interval latches for spans: a scan excludes every point request of the range. Good enough
//! while scans are rare next to point reads and writes; a span-interval tree replaces the range
//! lock when they are not.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use shoal_api::Request;
use shoal_keys::Key;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// A held lock, shared or exclusive.
enum Guard {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

async fn lock(lock: Arc<RwLock<()>>, exclusive: bool) -> Guard {
    if exclusive {
        Guard::Exclusive(lock.write_owned().await)
    } else {
        Guard::Shared(lock.read_owned().await)
    }
}

/// The latches a request holds; dropping it releases them.
pub struct Latches {
    // Key guards are dropped before the range guard (field order), then the key locks that no
    // one else holds or waits for are forgotten.
    keys: Vec<(Key, Guard)>,
    _range: Guard,
    manager: Arc<KeyLocks>,
}

impl Drop for Latches {
    fn drop(&mut self) {
        let keys: Vec<Key> = self.keys.drain(..).map(|(key, _)| key).collect();
        self.manager.forget_unused(&keys);
    }
}

#[derive(Default)]
struct KeyLocks {
    locks: Mutex<HashMap<Key, Arc<RwLock<()>>>>,
}

impl KeyLocks {
    fn get(&self, key: &Key) -> Arc<RwLock<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(key.clone()).or_default().clone()
    }

    fn forget_unused(&self, keys: &[Key]) {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            // Only the map holds it: nobody holds or waits for this key.
            if locks.get(key).is_some_and(|lock| Arc::strong_count(lock) == 1) {
                locks.remove(key);
            }
        }
    }
}

/// A range's latch manager.
#[derive(Default)]
pub struct LatchManager {
    range: Arc<RwLock<()>>,
    keys: Arc<KeyLocks>,
}

impl LatchManager {
    /// Waits for and takes the latches `requests` need.
    pub async fn acquire(&self, requests: &[Request]) -> Latches {
        let spans =
            requests.iter().any(|r| r.is_ranged() || matches!(r, Request::AdminSplit { .. }));
        if spans {
            let range = lock(self.range.clone(), true).await;
            return Latches { keys: Vec::new(), _range: range, manager: self.keys.clone() };
        }
        let range = lock(self.range.clone(), false).await;
        // One lock per key, exclusive if any request writes it; in key order.
        let mut wanted: BTreeMap<Key, bool> = BTreeMap::new();
        for request in requests {
            let exclusive = wanted.entry(request.span().start).or_insert(false);
            *exclusive |= request.is_write();
        }
        let mut keys = Vec::with_capacity(wanted.len());
        for (key, exclusive) in wanted {
            let guard = lock(self.keys.get(&key), exclusive).await;
            keys.push((key, guard));
        }
        Latches { keys, _range: range, manager: self.keys.clone() }
    }

    /// Returns how many keys have locks in use (for tests).
    #[cfg(test)]
    fn keys_in_use(&self) -> usize {
        self.keys.locks.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn put(key: &str) -> Request {
        Request::Put { key: Key::from(key), value: b"v".to_vec() }
    }

    fn get(key: &str) -> Request {
        Request::Get { key: Key::from(key) }
    }

    fn scan() -> Request {
        Request::Scan { span: shoal_keys::Span::new("a", "z"), limit: None, filter: None }
    }

    /// True if acquiring `requests` would wait while `held` is held.
    async fn blocks(manager: &LatchManager, requests: &[Request]) -> bool {
        tokio::time::timeout(Duration::from_millis(50), manager.acquire(requests)).await.is_err()
    }

    #[tokio::test]
    async fn requests_wait_only_for_overlapping_writes() {
        let manager = LatchManager::default();
        let held = manager.acquire(&[put("a"), get("b")]).await;
        assert!(blocks(&manager, &[get("a")]).await, "a read waits for a write of its key");
        assert!(blocks(&manager, &[put("b")]).await, "a write waits for a read of its key");
        assert!(blocks(&manager, &[scan()]).await, "a scan waits for every point request");
        assert!(!blocks(&manager, &[get("b")]).await, "reads share");
        assert!(!blocks(&manager, &[put("c"), get("d")]).await, "other keys go ahead");
        drop(held);
        assert!(!blocks(&manager, &[put("a")]).await);
        let scanning = manager.acquire(&[scan()]).await;
        assert!(blocks(&manager, &[get("q")]).await, "a point request waits for a scan");
        drop(scanning);
        assert_eq!(manager.keys_in_use(), 0, "released key locks are forgotten");
    }

    #[tokio::test]
    async fn many_requests_on_shared_keys_never_deadlock() {
        let manager = Arc::new(LatchManager::default());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let manager = manager.clone();
            // Opposite orders in the batches: locking in key order keeps them from deadlocking.
            let batch =
                if i % 2 == 0 { vec![put("x"), put("y")] } else { vec![put("y"), put("x")] };
            tasks.spawn(async move {
                let _latches = manager.acquire(&batch).await;
                tokio::task::yield_now().await;
            });
        }
        let all = async { while tasks.join_next().await.is_some() {} };
        tokio::time::timeout(Duration::from_secs(10), all).await.expect("no deadlock");
        assert_eq!(manager.keys_in_use(), 0);
    }
}
