//! Replica changes of a range, made by its leaseholder: adding a voter through a learner,
//! removing or replacing a voter, dropping a stray learner, handing the lease over.
//!
//! ```text
//!   add n4:      purge the log ─▶ learner r7 on n4 (snapshot) ─▶ voters {r1,r2,r3} → {r1,r2,r3,r7}
//!   replace r3:  purge the log ─▶ learner r7 on n4 (snapshot) ─▶ voters {r1,r2,r3} → {r1,r2,r7}
//!   remove r3:                                                   voters {r1,r2,r3} → {r1,r2}
//! ```
//!
//! Voter changes go through openraft's joint consensus, so a quorum of both the old and the new
//! voters accepts every entry in between. Every replica applies each membership entry by
//! rewriting the range's descriptor record in the same write (see the store's applier), so the
//! descriptor always names exactly the replicas of the membership in force.
//!
//! # Invariants
//!
//! - Changes of one range are serialized: one at a time on the leaseholder (a mutex), and each
//!   voter change is proposed only if the membership is still the one it was planned on
//!   (openraft's `LastMembershipLogId` precondition), so a change planned by an old leaseholder
//!   cannot land on top of another.
//! - A new replica always catches up from a snapshot, never by replaying the log from its first
//!   entry (bootstrap seeded the first ranges' data outside the log).
//! - A replica id is never reused: new ids come from the descriptor's `next_replica_id`, which
//!   every membership entry moves above all ids it names.
//! - The leaseholder never removes itself: it hands the lease to another voter first.
//!
//! # Hazards
//!
//! A change interrupted between the joint and the final configuration (a leaseholder crash)
//! leaves the range in joint consensus; the next leaseholder's replicate queue finishes it.

use std::time::Duration;

use shoal_api::{KvError, ReplicaDescriptor};
use shoal_raft::ReplicaLocation;
use shoal_raft::handle::{self, LogProgress, MembershipView};

use crate::replica::RangeReplica;

impl RangeReplica {
    /// Returns the membership this replica sees.
    pub fn membership(&self) -> MembershipView {
        handle::membership(self.raft())
    }

    /// Returns this replica's log progress (and, on the leader, its followers').
    pub fn log_progress(&self) -> LogProgress {
        handle::log_progress(self.raft())
    }

    /// Adds `target` (whose replica already exists, empty, on its node) as a learner, waits
    /// until it caught up by snapshot, then makes it a voter, replacing `remove` if given.
    pub async fn add_voter(
        &self,
        target: ReplicaDescriptor,
        remove: Option<u64>,
        timeout: Duration,
    ) -> Result<(), KvError> {
        let _serialized = self.changes.lock().await;
        self.check_can_change(remove)?;
        handle::purge_log_for_new_replicas(self.raft(), timeout)
            .await
            .map_err(|e| self.not_serving_error(e))?;
        let location = ReplicaLocation { node_id: target.node_id, store_id: target.store_id };
        handle::add_learner(self.raft(), target.replica_id, location, timeout)
            .await
            .map_err(|e| self.not_serving_error(e))?;
        let membership = self.membership();
        let mut voters = membership.voters.clone();
        voters.insert(target.replica_id);
        if let Some(remove) = remove {
            voters.remove(&remove);
        }
        handle::set_voters(self.raft(), voters, membership.log_id)
            .await
            .map_err(|e| self.not_serving_error(e))
    }

    /// Removes voter `replica_id` (never this replica: transfer the lease first).
    pub async fn remove_voter(&self, replica_id: u64) -> Result<(), KvError> {
        let _serialized = self.changes.lock().await;
        self.check_can_change(Some(replica_id))?;
        let membership = self.membership();
        let mut voters = membership.voters.clone();
        if !voters.remove(&replica_id) {
            return Ok(());
        }
        if voters.is_empty() {
            return Err(KvError::InvalidArgument("a range keeps at least one voter".into()));
        }
        handle::set_voters(self.raft(), voters, membership.log_id)
            .await
            .map_err(|e| self.not_serving_error(e))
    }

    /// Leaves a joint configuration left by an interrupted change, keeping its newer voters.
    pub async fn finish_joint_change(&self) -> Result<(), KvError> {
        let _serialized = self.changes.lock().await;
        self.check_can_change(None)?;
        let membership = self.membership();
        if !membership.joint {
            return Ok(());
        }
        handle::set_voters(self.raft(), membership.voters, membership.log_id)
            .await
            .map_err(|e| self.not_serving_error(e))
    }

    /// Drops learner `replica_id` (left by an interrupted addition).
    pub async fn remove_learner(&self, replica_id: u64) -> Result<(), KvError> {
        let _serialized = self.changes.lock().await;
        self.check_can_change(Some(replica_id))?;
        if !self.membership().learners().contains(&replica_id) {
            return Ok(());
        }
        handle::remove_learner(self.raft(), replica_id).await.map_err(|e| self.not_serving_error(e))
    }

    /// Asks the group to hand leadership, and so the lease, to voter `replica_id`. Returns at
    /// once; the transfer happens if the target is up to date and reachable.
    pub async fn transfer_lease(&self, replica_id: u64) -> Result<(), KvError> {
        if !self.membership().voters.contains(&replica_id) {
            return Err(KvError::InvalidArgument(format!(
                "replica {replica_id} is not a voter of range {}",
                self.descriptor().range_id
            )));
        }
        handle::transfer_leadership(self.raft(), replica_id)
            .await
            .map_err(|e| KvError::Unavailable(e.to_string()))
    }

    fn check_can_change(&self, removing: Option<u64>) -> Result<(), KvError> {
        if !self.is_leaseholder() {
            return Err(self.not_leaseholder_error());
        }
        if removing == Some(self.replica_id()) {
            return Err(KvError::InvalidArgument(
                "the leaseholder does not remove itself; transfer the lease first".into(),
            ));
        }
        Ok(())
    }
}
