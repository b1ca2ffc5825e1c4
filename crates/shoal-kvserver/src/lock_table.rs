//! The lock table: where requests that met another transaction's intent wait for it to go.
//!
//! ```text
//!   t2: Put b     → evaluation finds t1's intent on b → waits on b (latches released)
//!   t1: commit    → ResolveIntent b applied here      → b's waiters wake, re-evaluate
//!   (no release within LOCK_WAIT) → the request fails with LockConflict; the sender pushes t1
//! ```
//!
//! Intents live in the engine; this table only tracks who waits for which key. A waiter
//! registers while it still holds its latches, so a resolution (which needs the key's write
//! latch) cannot slip between its evaluation and its wait.
//!
//! # Out of scope
//!
//! Fair queueing: every waiter of a key wakes at once and the latches decide who goes first.
//! Waiting on locks held by transactions the table has not seen resolved elsewhere: those are
//! the sender's to push (see `shoal-kvclient`'s conflict resolution).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_keys::{Key, Span};
use tokio::sync::Notify;

/// How long a request waits in the lock table for an intent to be resolved before it gives
/// up and lets its sender push the intent's transaction.
pub const LOCK_WAIT: Duration = Duration::from_millis(50);

/// Waiters by locked key.
#[derive(Debug, Default)]
pub struct LockTable {
    waiters: Mutex<BTreeMap<Key, Arc<Notify>>>,
}

impl LockTable {
    /// Returns a wait for any of `keys` to be released. Call with the keys' latches held, then
    /// release them and await the result.
    pub fn wait_for(self: &Arc<Self>, keys: impl IntoIterator<Item = Key>) -> LockWait {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let notifies = keys
            .into_iter()
            .map(|key| (key.clone(), waiters.entry(key).or_default().clone()))
            .collect();
        LockWait { table: self.clone(), notifies }
    }

    /// Wakes every waiter on a key in `span`: their locks were resolved.
    pub fn released(&self, span: &Span) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<Key> =
            waiters.range(span.start.clone()..span.end.clone()).map(|(k, _)| k.clone()).collect();
        for key in keys {
            if let Some(notify) = waiters.remove(&key) {
                notify.notify_waiters();
            }
        }
    }

    /// Returns how many keys have waiters.
    pub fn len(&self) -> usize {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Returns true if no key has waiters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A registered wait for locked keys.
pub struct LockWait {
    table: Arc<LockTable>,
    notifies: Vec<(Key, Arc<Notify>)>,
}

impl LockWait {
    /// Waits until a key is released or `timeout` passes; returns true if one was released.
    pub async fn wait(self, timeout: Duration) -> bool {
        let mut futures: Vec<_> =
            self.notifies.iter().map(|(_, n)| Box::pin(n.notified())).collect();
        if futures.is_empty() {
            return false;
        }
        for future in &mut futures {
            future.as_mut().enable();
        }
        // Enabled first, then checked: a release from now on wakes a future, and one before
        // it removed the key's entry.
        {
            let waiters = self.table.waiters.lock().unwrap_or_else(|p| p.into_inner());
            let released = self.notifies.iter().any(|(key, notify)| {
                !waiters.get(key).is_some_and(|held| Arc::ptr_eq(held, notify))
            });
            if released {
                return true;
            }
        }
        tokio::time::timeout(timeout, futures::future::select_all(futures)).await.is_ok()
    }
}

impl Drop for LockWait {
    fn drop(&mut self) {
        let mut waiters = self.table.waiters.lock().unwrap_or_else(|p| p.into_inner());
        for (key, notify) in self.notifies.drain(..) {
            // Only the table and this wait hold it: nobody else waits for the key.
            if Arc::strong_count(&notify) == 2
                && waiters.get(&key).is_some_and(|held| Arc::ptr_eq(held, &notify))
            {
                waiters.remove(&key);
            }
        }
    }
}
