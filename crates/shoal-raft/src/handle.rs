//! What the KV server needs from a running replica, in Shoal's terms: lease checks, proposals
//! with outcomes classified for routing, leadership and bootstrap. Keeps openraft's types out
//! of the layers above.

use std::collections::{BTreeMap, BTreeSet};

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
/// uncommitted one trips its assertions). A committed vote comes with a leader lease: every
/// replica would refuse to vote for anyone until an election timeout passed, leaving the new
/// range leaderless (unavailable) that long. Nobody serves the new range under that vote, so
/// the lease protects nothing: each replica drops it at once, the way openraft does when a
/// leader hands its leadership over (a transfer request from the seeded vote to the proposer).
/// On the proposer's own replica that request also starts its election.
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
        .map_err(|e| Error::Stopped(e.to_string()))?;
    let hand_over = openraft::raft::TransferLeaderRequest::new(vote, proposer, Some(split_log_id));
    let handed_over = replica
        .handle_transfer_leader(hand_over)
        .await
        .map_err(|e| Error::Stopped(e.to_string()))?;
    // Refused only if the vote already moved on (a peer campaigned first): the lease is gone
    // anyway.
    let _ = handed_over;
    Ok(())
}

/// Asks this replica to stand for election now.
pub async fn campaign(replica: &Replica) -> Result<()> {
    replica.trigger().elect(false).await.map_err(|e| Error::Stopped(e.to_string()))
}

/// Asks this replica, if it leads, to hand leadership (and so the lease) to replica `to`.
/// Returns at once; the transfer happens if `to` is up to date and reachable.
pub async fn transfer_leadership(replica: &Replica, to: u64) -> Result<()> {
    replica.trigger().transfer_leader(to).await.map_err(|e| Error::Stopped(e.to_string()))
}

/// Stands for election every `retry` until this replica leads, at most `attempts` times;
/// returns whether it leads. For a range just split off: its peers create their replicas when
/// they apply the split, a moment after the proposer does, and vote requests that arrive
/// before then fail. Waiting for the election timeout instead would leave the new range
/// without a leader (unavailable) for seconds.
pub async fn campaign_until_leader(
    replica: &Replica,
    attempts: u32,
    retry: std::time::Duration,
) -> Result<bool> {
    let me = replica.metrics().borrow_watched().id;
    for _ in 0..attempts {
        if replica.metrics().borrow_watched().current_leader == Some(me) {
            return Ok(true);
        }
        campaign(replica).await?;
        let _ = replica
            .wait(Some(retry))
            .metrics(|m| m.current_leader == Some(m.id), "this replica leads")
            .await;
    }
    Ok(replica.metrics().borrow_watched().current_leader == Some(me))
}

/// A range's Raft membership as one replica sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipView {
    /// Voters of the (last, if joint) configuration.
    pub voters: BTreeSet<u64>,
    /// Every replica named, voter or learner, with its location.
    pub members: BTreeMap<u64, ReplicaLocation>,
    /// Whether a voter change is half done (a joint configuration is in force).
    pub joint: bool,
    /// The log id of the entry that introduced this membership: the precondition that
    /// serializes membership changes (see [`set_voters`]).
    pub log_id: Option<crate::types::LogId>,
}

impl MembershipView {
    /// Returns the learners: members that are not voters.
    pub fn learners(&self) -> BTreeSet<u64> {
        self.members.keys().copied().filter(|id| !self.voters.contains(id)).collect()
    }
}

/// Returns the membership in force on `replica` (possibly not committed yet).
pub fn membership(replica: &Replica) -> MembershipView {
    let metrics = replica.metrics().borrow_watched().clone();
    let stored = &metrics.membership_config;
    let joint = stored.get_joint_config();
    MembershipView {
        voters: joint.last().cloned().unwrap_or_default(),
        members: stored.nodes().map(|(id, location)| (*id, *location)).collect(),
        joint: joint.len() > 1,
        log_id: *stored.log_id(),
    }
}

/// Where a range's log stands on one replica, and, on a leader, each follower's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogProgress {
    /// Whether this replica leads.
    pub leader: bool,
    /// The Raft term.
    pub term: u64,
    /// The last log index.
    pub last_index: u64,
    /// The last committed index this replica knows of.
    pub committed_index: u64,
    /// The last applied index.
    pub applied_index: u64,
    /// On a leader: each other member's highest replicated index (0 if none yet).
    pub matched: BTreeMap<u64, u64>,
    /// On a leader: how long ago each other member last acknowledged a message, if it ever
    /// did.
    pub last_ack: BTreeMap<u64, Option<std::time::Duration>>,
}

/// Returns `replica`'s log progress.
pub fn log_progress(replica: &Replica) -> LogProgress {
    let metrics = replica.metrics().borrow_watched().clone();
    let me = metrics.id;
    let matched = metrics
        .replication
        .iter()
        .flatten()
        .filter(|(id, _)| **id != me)
        .map(|(id, log_id)| (*id, log_id.map_or(0, |l| l.index)))
        .collect();
    let last_ack = metrics
        .heartbeat
        .iter()
        .flatten()
        .filter(|(id, _)| **id != me)
        .map(|(id, at)| (*id, at.map(|at| openraft::Instant::elapsed(&*at))))
        .collect();
    LogProgress {
        leader: metrics.current_leader == Some(me),
        term: metrics.current_term,
        last_index: metrics.last_log_index.unwrap_or(0),
        committed_index: metrics
            .cluster_committed
            .or(metrics.local_committed)
            .map_or(0, |l| l.index),
        applied_index: metrics.last_applied.map_or(0, |l| l.index),
        matched,
        last_ack,
    }
}

/// Makes sure that a replica added from now on catches up by snapshot, never by replaying the
/// log from its first entry: the first entries of a bootstrapped range do not hold the data
/// bootstrap seeded, so a replica that replayed them would miss it. Purging just the first
/// entry is enough (a new replica starts before it, so it must get a snapshot), and leaves the
/// entries existing followers still need alone. Purging needs a snapshot covering the entry:
/// one is built first if none was (cheap: see [`crate::RangeStateMachine`]). A range split off
/// another starts from a snapshot, so it has nothing to purge.
pub async fn purge_log_for_new_replicas(
    replica: &Replica,
    timeout: std::time::Duration,
) -> std::result::Result<(), NotServing> {
    let unavailable = |what: &str| NotServing::Unavailable(format!("{what} timed out"));
    let metrics = replica.metrics().borrow_watched().clone();
    if metrics.purged.is_some() {
        return Ok(());
    }
    let first = metrics.purged.map_or(0, |p| p.index + 1);
    if metrics.snapshot.is_none_or(|s| s.index < first) {
        replica.trigger().snapshot().await.map_err(|e| NotServing::Unavailable(e.to_string()))?;
        replica
            .wait(Some(timeout))
            .metrics(|m| m.snapshot.is_some_and(|s| s.index >= first), "a snapshot")
            .await
            .map_err(|_| unavailable("building a snapshot"))?;
    }
    replica.trigger().purge_log(first).await.map_err(|e| NotServing::Unavailable(e.to_string()))?;
    replica
        .wait(Some(timeout))
        .metrics(|m| m.purged.is_some(), "purging the log")
        .await
        .map_err(|_| unavailable("purging the log"))?;
    Ok(())
}

fn write_error(e: RaftError<crate::TypeConfig, ClientWriteError<crate::TypeConfig>>) -> NotServing {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            NotServing::NotLeader { leader: f.leader_id }
        }
        RaftError::APIError(e) => NotServing::Ambiguous(e.to_string()),
        RaftError::Fatal(e) => NotServing::Ambiguous(e.to_string()),
    }
}

/// Adds replica `id` at `location` as a learner and waits until it caught up with the leader,
/// at most `timeout` (then `Ambiguous`: the learner may still be added).
pub async fn add_learner(
    replica: &Replica,
    id: u64,
    location: ReplicaLocation,
    timeout: std::time::Duration,
) -> std::result::Result<(), NotServing> {
    match tokio::time::timeout(timeout, replica.add_learner(id, location, true)).await {
        Ok(result) => result.map(|_| ()).map_err(write_error),
        Err(_) => {
            Err(NotServing::Ambiguous(format!("replica {id} did not catch up in {timeout:?}")))
        }
    }
}

/// Changes the voters to exactly `voters` (through a joint configuration), dropping replaced
/// voters from the group, but only if the membership is still the one introduced at
/// `expected` (changes of one range are serialized this way). Every new voter must be a
/// learner already.
pub async fn set_voters(
    replica: &Replica,
    voters: BTreeSet<u64>,
    expected: Option<crate::types::LogId>,
) -> std::result::Result<(), NotServing> {
    let precondition =
        openraft::raft::Precondition::LastMembershipLogId { last_membership_log_id: expected };
    replica
        .change_membership_if(
            openraft::ChangeMembers::ReplaceAllVoters(voters),
            false,
            [precondition],
        )
        .await
        .map(|_| ())
        .map_err(write_error)
}

/// Removes learner `id` from the group.
pub async fn remove_learner(replica: &Replica, id: u64) -> std::result::Result<(), NotServing> {
    let ids = BTreeSet::from([id]);
    replica
        .change_membership(openraft::ChangeMembers::RemoveNodes(ids), false)
        .await
        .map(|_| ())
        .map_err(write_error)
}
