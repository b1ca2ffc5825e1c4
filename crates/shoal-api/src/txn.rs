//! Transactions on the wire: the coordinator's view of a transaction, its record, and the
//! requests that push and resolve it.
//!
//! ```text
//!   Transaction { id, anchor: "acct/7", epoch: 0, priority,
//!                 read_ts: 10, write_ts: 12,          ← pushed: must refresh reads 10 → 12
//!                 uncertainty_limit: 10+max_offset, observed: [(n2, 11)] }
//!   record at /Local/Txn/acct/7/<id>: TxnRecord { status: PENDING, write_ts: 12, heartbeat }
//! ```
//!
//! A transaction reads at `read_ts` and writes intents at `write_ts`; it may commit only when
//! the two are equal, after a refresh has shown that nothing it read changed in between. The
//! record, on the range holding `anchor`, is the single place where the transaction's fate is
//! decided: `EndTxn` moves it to COMMITTED, a successful push to ABORTED, never both.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_hlc::Timestamp;
use shoal_keys::Key;

/// How often a coordinator heartbeats its transaction's record.
pub const TXN_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a pending record may go without a heartbeat before any pusher may abort it: five
/// missed heartbeats, so a busy coordinator is not mistaken for a dead one.
pub const TXN_EXPIRY: Duration = Duration::from_secs(5);

/// The fate of a transaction, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxnStatus {
    /// Running: its intents are locks, its outcome unknown.
    Pending,
    /// Committed at the record's `write_ts`: its intents become versions.
    Committed,
    /// Aborted: its intents are garbage.
    Aborted,
}

impl TxnStatus {
    /// Returns true once the status can no longer change.
    pub fn is_final(self) -> bool {
        !matches!(self, TxnStatus::Pending)
    }
}

impl std::fmt::Display for TxnStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TxnStatus::Pending => "PENDING",
            TxnStatus::Committed => "COMMITTED",
            TxnStatus::Aborted => "ABORTED",
        })
    }
}

/// What intents and pushers know of a transaction: who it is, where its record lives, and the
/// epoch and timestamp of its writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxnMeta {
    /// The unique id.
    pub id: u128,
    /// The key whose range holds the record.
    pub anchor: Key,
    /// Incremented on each restart; intents of older epochs are discarded at commit.
    pub epoch: u32,
    /// The timestamp of the transaction's intents.
    pub write_ts: Timestamp,
    /// Decides pushes: a pusher of higher priority aborts, a lower one waits.
    pub priority: u32,
}

impl TxnMeta {
    /// Returns the first eight hex digits of the id, for messages.
    pub fn short_id(&self) -> String {
        short_id(self.id)
    }
}

/// Returns the first eight hex digits of a transaction id (fewer for small ids).
pub fn short_id(id: u128) -> String {
    let mut s = format!("{id:x}");
    s.truncate(8);
    s
}

/// A node's clock reading observed by a transaction: values that node wrote when its clock
/// read above it (their local timestamps) were written after the transaction started, so they
/// are not uncertain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedTimestamp {
    /// The node.
    pub node_id: u64,
    /// Its clock when the transaction first heard from it.
    pub ts: Timestamp,
}

/// A transaction as its coordinator sends it with every batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Identity, anchor, epoch, write timestamp and priority.
    pub meta: TxnMeta,
    /// Reads see the database as of this timestamp.
    pub read_ts: Timestamp,
    /// Values above `read_ts` and at or below this may have been written before the
    /// transaction started (clock skew): reading past one restarts the read above it.
    pub uncertainty_limit: Timestamp,
    /// Clock readings of nodes the transaction talked to, lowering their uncertainty limit.
    pub observed: Vec<ObservedTimestamp>,
}

impl Transaction {
    /// Returns the transaction's observation of `node_id`'s clock, if it has one: values that
    /// node wrote with a later clock reading were written after the transaction started.
    pub fn observed_on(&self, node_id: u64) -> Option<Timestamp> {
        self.observed.iter().find(|o| o.node_id == node_id).map(|o| o.ts)
    }

    /// Records a node's clock reading; the first one per node is kept (it is the lowest).
    pub fn observe(&mut self, node_id: u64, ts: Timestamp) {
        if !self.observed.iter().any(|o| o.node_id == node_id) {
            self.observed.push(ObservedTimestamp { node_id, ts });
        }
    }

    /// Returns the first eight hex digits of the id.
    pub fn short_id(&self) -> String {
        self.meta.short_id()
    }
}

/// A transaction record, stored on the anchor's range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    /// The transaction (its write timestamp is the highest any push or heartbeat set).
    pub meta: TxnMeta,
    /// Its status.
    pub status: TxnStatus,
    /// The coordinator's last heartbeat, on the record leaseholder's clock. A pending record
    /// whose heartbeat is older than the expiry may be aborted by anyone.
    pub last_heartbeat: Timestamp,
    /// Why an aborted record was aborted, if a pusher did it.
    pub abort_reason: Option<RetryReason>,
}

impl TxnRecord {
    /// Returns the error a request of this (aborted) transaction fails with.
    pub fn abort_error(&self) -> crate::KvError {
        let reason = self.abort_reason.unwrap_or(RetryReason::Aborted);
        let why = match reason {
            RetryReason::Deadlock => " to break a deadlock",
            RetryReason::AbortedByPush => " by a conflicting transaction (expired or outranked)",
            _ => "",
        };
        crate::KvError::TxnRetry {
            reason,
            detail: format!("transaction {} was aborted{why}", self.meta.short_id()),
            txn: None,
        }
    }
}

/// What a pusher wants from a transaction whose lock it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushKind {
    /// Move the pushee's write timestamp above `push_to`, so a reader at `push_to` can ignore
    /// its intent. Always succeeds against a pending transaction.
    Timestamp,
    /// Abort the pushee. Succeeds if it is expired, of lower priority, or in a deadlock with
    /// the pusher; otherwise the push waits for it to finish.
    Abort,
}

/// How an intent is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentResolution {
    /// The transaction whose intents these are (its final or pushed timestamp in `write_ts`).
    pub txn: TxnMeta,
    /// Committed, aborted, or pending but pushed to `txn.write_ts`.
    pub status: TxnStatus,
    /// Set when someone other than the owner aborts the intents: the range then records the
    /// transaction in its abort span, so the owner cannot read around its lost writes.
    pub poison: bool,
}

/// Why a transaction must restart. Each is SQLSTATE 40001.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RetryReason {
    /// A write found a committed version above the transaction's timestamp where moving
    /// above it was not possible.
    WriteTooOld,
    /// A read found a value in its uncertainty window and could not refresh past it.
    Uncertainty,
    /// The write timestamp moved, and a value the transaction read changed since.
    RefreshFailed,
    /// The record's write timestamp was pushed above the transaction's reads: the coordinator
    /// refreshes them (and turns this into [`RetryReason::RefreshFailed`] if it cannot).
    Pushed,
    /// Another transaction aborted this one (it was expired or of lower priority).
    AbortedByPush,
    /// This transaction was chosen to break a deadlock.
    Deadlock,
    /// The record's range aborted it for another reason (its record was already final).
    Aborted,
}

impl RetryReason {
    /// Returns true if the transaction itself is gone and a new one must start.
    pub fn is_abort(self) -> bool {
        matches!(self, RetryReason::AbortedByPush | RetryReason::Deadlock | RetryReason::Aborted)
    }

    /// A stable short name, used in metrics and messages.
    pub fn name(self) -> &'static str {
        match self {
            RetryReason::WriteTooOld => "write_too_old",
            RetryReason::Uncertainty => "uncertainty",
            RetryReason::RefreshFailed => "refresh_failed",
            RetryReason::Pushed => "pushed",
            RetryReason::AbortedByPush => "aborted_by_push",
            RetryReason::Deadlock => "deadlock",
            RetryReason::Aborted => "aborted",
        }
    }
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
