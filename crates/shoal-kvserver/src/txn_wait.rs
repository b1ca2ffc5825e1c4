//! The transaction wait queue: where pushes that may not abort their pushee wait, on the
//! leaseholder of the pushee's record, and where deadlocks are found.
//!
//! ```text
//!   t1 holds a, waits for b        t2 holds b, waits for a
//!   push(t2) by t1 waits at t2's record      queue(t2) = {t1}
//!   push(t1) by t2 waits at t1's record      queue(t1) = {t2}
//!   t1 asks its own record who waits for it (QueryTxn): {t2}; pushes t2 again with
//!   dependents {t2}: t2 waits for t1 and t1 for t2 — a cycle. The side of lower
//!   (priority, id) is aborted by whichever push sees the cycle with the right to do it.
//! ```
//!
//! Entries are in memory on the leaseholder: a push that times out or finds the lease moved
//! simply pushes again. A waiter registers while holding its latch (see [`crate::lock_table`]
//! for the same pattern), so a record change between its evaluation and its wait wakes it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// How long one push waits in the queue before answering "still pending": the pusher then
/// refreshes its dependents (for deadlock detection) and pushes again.
pub const PUSH_WAIT: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Pushee {
    changed: Arc<Notify>,
    /// Pushers waiting, with the transactions waiting for them in turn.
    waiting: HashMap<u128, BTreeSet<u128>>,
}

/// Pushes waiting for transactions whose records this range holds.
#[derive(Debug, Default)]
pub struct TxnWaitQueue {
    pushees: Mutex<HashMap<u128, Pushee>>,
}

impl TxnWaitQueue {
    /// Registers `pusher` (with its dependents) as waiting for `pushee`. Call with the
    /// record's latch held, then release it and await the result.
    pub fn wait_for(self: &Arc<Self>, pushee: u128, pusher: Option<(u128, Vec<u128>)>) -> PushWait {
        let mut pushees = self.pushees.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pushees.entry(pushee).or_default();
        if let Some((id, dependents)) = &pusher {
            entry.waiting.entry(*id).or_default().extend(dependents.iter().copied());
        }
        PushWait {
            queue: self.clone(),
            pushee,
            pusher: pusher.map(|(id, _)| id),
            changed: entry.changed.clone(),
        }
    }

    /// Wakes the pushes waiting for `txn_id`: its record changed.
    pub fn changed(&self, txn_id: u128) {
        let removed = self.pushees.lock().unwrap_or_else(|p| p.into_inner()).remove(&txn_id);
        if let Some(pushee) = removed {
            pushee.changed.notify_waiters();
        }
    }

    /// Returns the transactions waiting for `txn_id`, directly or through others.
    pub fn dependents(&self, txn_id: u128) -> Vec<u128> {
        let pushees = self.pushees.lock().unwrap_or_else(|p| p.into_inner());
        let Some(pushee) = pushees.get(&txn_id) else { return Vec::new() };
        let mut all = BTreeSet::new();
        for (pusher, dependents) in &pushee.waiting {
            all.insert(*pusher);
            all.extend(dependents.iter().copied());
        }
        all.remove(&txn_id);
        all.into_iter().collect()
    }
}

/// A registered wait for a pushee's record to change.
pub struct PushWait {
    queue: Arc<TxnWaitQueue>,
    pushee: u128,
    pusher: Option<u128>,
    changed: Arc<Notify>,
}

impl PushWait {
    /// Waits until the pushee's record changes or `timeout` passes.
    pub async fn wait(&self, timeout: Duration) {
        let mut notified = Box::pin(self.changed.notified());
        notified.as_mut().enable();
        {
            let pushees = self.queue.pushees.lock().unwrap_or_else(|p| p.into_inner());
            let same =
                pushees.get(&self.pushee).is_some_and(|p| Arc::ptr_eq(&p.changed, &self.changed));
            if !same {
                return; // Changed between registration and now.
            }
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }
}

impl Drop for PushWait {
    fn drop(&mut self) {
        let mut pushees = self.queue.pushees.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = pushees.get_mut(&self.pushee) else { return };
        if !Arc::ptr_eq(&entry.changed, &self.changed) {
            return;
        }
        if let Some(pusher) = self.pusher {
            entry.waiting.remove(&pusher);
        }
        if entry.waiting.is_empty() && Arc::strong_count(&entry.changed) == 2 {
            pushees.remove(&self.pushee);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dependents_are_the_waiters_and_theirs_and_leave_with_them() {
        let queue = Arc::new(TxnWaitQueue::default());
        let first = queue.wait_for(1, Some((2, vec![3, 4])));
        let second = queue.wait_for(1, Some((5, vec![1])));
        assert_eq!(queue.dependents(1), vec![2, 3, 4, 5]);
        drop(first);
        assert_eq!(queue.dependents(1), vec![5]);
        drop(second);
        assert!(queue.dependents(1).is_empty());
        assert!(queue.pushees.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_change_wakes_waiters_even_one_made_before_they_wait() {
        let queue = Arc::new(TxnWaitQueue::default());
        let wait = queue.wait_for(1, None);
        queue.changed(1);
        // Would time out after an hour if the change were missed.
        tokio::time::timeout(Duration::from_secs(5), wait.wait(Duration::from_secs(3600)))
            .await
            .expect("woken");
        let wait = Arc::new(queue.wait_for(1, None));
        let waiting = tokio::spawn({
            let wait = wait.clone();
            async move { wait.wait(Duration::from_secs(3600)).await }
        });
        tokio::task::yield_now().await;
        queue.changed(1);
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("woken").unwrap();
    }
}
