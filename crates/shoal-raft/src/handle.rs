//! What the KV server needs from a running replica, in Shoal's terms: lease checks, proposals
//! with outcomes classified for routing, leadership and bootstrap. Keeps openraft's types out
//! of the layers above.

use std::collections::BTreeMap;

use openraft::ReadPolicy;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, LinearizableReadError, RaftError};

use crate::{Command, CommandResponse, Error, Replica, ReplicaLocation, Result};

/// Why a replica cannot serve or propose now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotServing {
    /// Another replica leads (or nobody does yet); `leader` is the best guess. Nothing was
    /// proposed: the caller may retry elsewhere.
    NotLeader {
        /// The leader's replica id, if known.
        leader: Option<u64>,
    },
    /// A quorum cannot be reached, or the replica is stopping. Nothing was proposed.
    Unavailable(String),
    /// The proposal may or may not commit (leadership changed after it was appended, or the
    /// replica stopped): the outcome is unknown.
    Ambiguous(String),
}

/// Waits until this replica holds a valid leader lease and has applied everything committed
/// before the lease read began: after it returns, local reads are linearizable. Returns the
/// term of the leadership that granted the read: the lease sequence to evaluate under.
pub async fn lease_read(replica: &Replica) -> std::result::Result<u64, NotServing> {
    match replica.ensure_linearizable(ReadPolicy::LeaseRead).await {
        Ok(read_log_id) => Ok(read_log_id.committed_leader_id().term),
        Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
            Err(NotServing::NotLeader { leader: f.leader_id })
        }
        Err(RaftError::APIError(e)) => Err(NotServing::Unavailable(e.to_string())),
        Err(RaftError::Fatal(e)) => Err(NotServing::Unavailable(e.to_string())),
    }
}

/// Proposes `command` and waits until it is committed and applied here.
pub async fn propose(
    replica: &Replica,
    command: Command,
) -> std::result::Result<CommandResponse, NotServing> {
    match replica.client_write(command).await {
        Ok(response) => Ok(response.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(NotServing::NotLeader { leader: f.leader_id })
        }
        Err(RaftError::APIError(e)) => Err(NotServing::Ambiguous(e.to_string())),
        Err(RaftError::Fatal(e)) => Err(NotServing::Ambiguous(e.to_string())),
    }
}

/// Returns the replica id this replica believes leads, if any.
pub fn current_leader(replica: &Replica) -> Option<u64> {
    replica.metrics().borrow_watched().current_leader
}

/// Bootstraps a new group with `members` (replica id → location). Call on one replica only.
pub async fn initialize(replica: &Replica, members: BTreeMap<u64, ReplicaLocation>) -> Result<()> {
    replica
        .initialize(members)
        .await
        .map_err(|e| Error::Stopped(format!("initializing the group: {e}")))
}

/// Waits until `replica` knows a leader that `accept` approves, and returns its replica id;
/// `None` if none appears within `timeout`.
pub async fn wait_for_leader(
    replica: &Replica,
    timeout: std::time::Duration,
    accept: impl Fn(u64) -> bool + Send + Sync,
) -> Option<u64> {
    let metrics = replica
        .wait(Some(timeout))
        .metrics(|m| m.current_leader.is_some_and(&accept), "a leader")
        .await
        .ok()?;
    metrics.current_leader
}

/// Returns the index of the last entry `replica` applied.
pub fn applied_index(replica: &Replica) -> Option<u64> {
    replica.metrics().borrow_watched().last_applied.map(|id| id.index)
}

/// Waits until `replica` applied the entry at `index`; false if it did not within `timeout`.
pub async fn wait_for_applied(replica: &Replica, index: u64, timeout: std::time::Duration) -> bool {
    replica.wait(Some(timeout)).applied_index_at_least(Some(index), "applied").await.is_ok()
}

/// Waits until `replica` leads with a lease (it committed an entry of its own term, so a quorum
/// acknowledged it); false if it does not within `timeout`.
pub async fn wait_for_lease(replica: &Replica, timeout: std::time::Duration) -> bool {
    replica
        .wait(Some(timeout))
        .metrics(
            |m| {
                m.state == openraft::ServerState::Leader
                    && m.cluster_committed.is_some_and(|c| c.leader_id.term == m.current_term)
            },
            "leading with a lease",
        )
        .await
        .is_ok()
}

/// Seeds a range split off another at `split_log_id`: `replica` must be a fresh replica of the
/// new range (empty log, no state). Installs a snapshot that holds no data (the data is already
/// in this store, under the old range) at the split entry, with the membership the old range
/// had there, so the new group's log starts after the split and a replica added later catches
/// up by a real snapshot, never from an empty log.
///
/// The vote is the split's proposer at the split's term, committed: the proposer led the old
/// range at that term, with the same members. openraft requires a committed vote here (an
/// uncommitted one trips its assertions). The cost: every replica then honours that leader's
/// lease, so the proposer's [`campaign`] wins only once an election timeout has passed, and the
/// new range is unavailable for about that long after a split.
pub async fn seed_split(
    replica: &Replica,
    split_log_id: crate::types::LogId,
    membership: crate::types::StoredMembership,
    proposer: u64,
) -> Result<()> {
    let vote = crate::types::Vote::new_committed(split_log_id.leader_id.term, proposer);
    let meta =
        crate::types::SnapshotMeta { last_log_id: Some(split_log_id), last_membership: membership };
    let snapshot = openraft::storage::Snapshot { meta, snapshot: shoal_storage::WriteBatch::new() };
    replica
        .install_full_snapshot(vote, snapshot)
        .await
        .map(|_| ())
        .map_err(|e| Error::Stopped(e.to_string()))
}

/// Asks this replica to stand for election now.
pub async fn campaign(replica: &Replica) -> Result<()> {
    replica.trigger().elect(false).await.map_err(|e| Error::Stopped(e.to_string()))
}
