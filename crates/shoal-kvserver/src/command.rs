//! The replicated command: a batch evaluated by the leaseholder, and how apply treats it.
//!
//! ```text
//!   ProposedCommand { lease_sequence: 7, max_write_ts, writes: <encoded WriteBatch> }
//!   apply in an entry of term 7 → writes applied, clock raised to max_write_ts → Applied
//!   apply in an entry of term 8 → nothing written                          → Rejected
//! ```
//!
//! Proposer-evaluated commands are safe only if a command lands under the lease it was
//! evaluated under (design §5, invariant 3). The lease sequence is the leader's term, so apply
//! compares the command's sequence with the term of the entry that carries it and rejects a
//! mismatch deterministically: every replica sees the same entry and makes the same choice.

use serde::{Deserialize, Serialize};
use shoal_api::RangeDescriptor;
use shoal_hlc::{Clock, Timestamp};
use shoal_keys::layout::{RangeLocalKind, range_local_key};
use shoal_raft::{Command, CommandResponse};
use shoal_storage::{Cf, WriteBatch};

/// A command as proposed to a range's Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedCommand {
    /// The lease (Raft term) the command was evaluated under.
    pub lease_sequence: u64,
    /// The highest timestamp the command writes at; replicas raise their clocks to it.
    pub max_write_ts: Timestamp,
    /// The evaluated writes, an encoded [`WriteBatch`].
    pub writes: Vec<u8>,
    /// Set on a split: the descriptors after it.
    pub split: Option<SplitTrigger>,
}

/// A split as replicated: every replica that applies it shortens the left-hand range and
/// starts its replica of the right-hand one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitTrigger {
    /// The left-hand range after the split.
    pub lhs: RangeDescriptor,
    /// The new right-hand range.
    pub rhs: RangeDescriptor,
    /// The replica id of the leaseholder that proposed the split: it campaigns to lead the
    /// right-hand range.
    pub proposer: u64,
}

impl SplitTrigger {
    /// Appends the new descriptor records of both ranges to `batch`.
    pub fn record(&self, batch: &mut WriteBatch) {
        for descriptor in [&self.lhs, &self.rhs] {
            let key = range_local_key(descriptor.range_id, RangeLocalKind::Descriptor);
            batch.put(Cf::Local, key.into_bytes(), shoal_api::encode(descriptor));
        }
    }
}

/// What apply did with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    /// The writes were applied.
    Applied,
    /// The command was evaluated under another lease and had no effect.
    Rejected {
        /// The term of the entry that carried it.
        entry_term: u64,
    },
    /// The command could not be decoded: a bug; it had no effect.
    Undecodable,
}

impl ProposedCommand {
    /// Encodes the command for Raft.
    pub fn to_command(&self) -> Command {
        Command(postcard::to_stdvec(self).expect("encoding into a Vec cannot fail"))
    }

    /// Decodes a command; `None` if it is not a [`ProposedCommand`].
    pub fn decode(command: &Command) -> Option<ProposedCommand> {
        postcard::from_bytes::<ProposedCommand>(&command.0).ok()
    }

    /// Applies the command carried by an entry of `entry_term`: appends its writes to `batch`
    /// unless it was evaluated under another lease.
    pub fn apply(
        command: &Command,
        entry_term: u64,
        clock: &Clock,
        batch: &mut WriteBatch,
    ) -> ApplyOutcome {
        match Self::decode(command) {
            Some(proposed) => proposed.apply_decoded(entry_term, clock, batch),
            None => ApplyOutcome::Undecodable,
        }
    }

    /// [`ProposedCommand::apply`] of a decoded command. A split's descriptor records are the
    /// caller's to add (it also acts on them).
    pub fn apply_decoded(
        &self,
        entry_term: u64,
        clock: &Clock,
        batch: &mut WriteBatch,
    ) -> ApplyOutcome {
        let proposed = self;
        if proposed.lease_sequence != entry_term {
            return ApplyOutcome::Rejected { entry_term };
        }
        let Ok(writes) = WriteBatch::decode(&proposed.writes) else {
            return ApplyOutcome::Undecodable;
        };
        batch.extend(writes);
        // Not a decision: raising the local clock changes no replicated state. It makes a
        // future leaseholder's clock at least as high as every write it will ever serve.
        if let Err(e) = clock.update(proposed.max_write_ts) {
            // Only possible if clocks break the max-offset assumption; the write still applies
            // (apply must be deterministic), but this node's reads may now lag it.
            tracing::error!("applied a write beyond the clock's maximum offset: {e}");
        }
        ApplyOutcome::Applied
    }
}

impl ApplyOutcome {
    /// Encodes the outcome as the Raft response.
    pub fn to_response(self) -> CommandResponse {
        CommandResponse(postcard::to_stdvec(&self).expect("encoding into a Vec cannot fail"))
    }

    /// Decodes a Raft response.
    pub fn from_response(response: &CommandResponse) -> ApplyOutcome {
        postcard::from_bytes(&response.0).unwrap_or(ApplyOutcome::Undecodable)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use shoal_hlc::{DEFAULT_MAX_OFFSET, ManualClock};

    fn command(lease_sequence: u64) -> Command {
        let mut writes = WriteBatch::new();
        writes.put(Cf::Mvcc, b"k".to_vec(), b"v".to_vec());
        let max_write_ts = Timestamp::new(5_000_000_000, 0);
        ProposedCommand { lease_sequence, max_write_ts, writes: writes.encode(), split: None }
            .to_command()
    }

    #[test]
    fn a_command_applies_only_under_the_lease_it_was_evaluated_under() {
        // 100 ms behind the write: within the maximum offset, so the clock may follow it.
        let clock = Clock::new(Arc::new(ManualClock::new(4_900_000_000)), DEFAULT_MAX_OFFSET);
        let mut batch = WriteBatch::new();
        assert_eq!(
            ProposedCommand::apply(&command(7), 8, &clock, &mut batch),
            ApplyOutcome::Rejected { entry_term: 8 }
        );
        assert!(batch.is_empty(), "a rejected command writes nothing");
        assert!(clock.now() < Timestamp::new(5_000_000_000, 0), "nor moves the clock");

        assert_eq!(
            ProposedCommand::apply(&command(7), 7, &clock, &mut batch),
            ApplyOutcome::Applied
        );
        assert_eq!(batch.len(), 1);
        assert!(clock.now() > Timestamp::new(5_000_000_000, 0), "the clock rose to the write");

        let garbage = Command(vec![0xff; 3]);
        assert_eq!(
            ProposedCommand::apply(&garbage, 7, &clock, &mut WriteBatch::new()),
            ApplyOutcome::Undecodable
        );
        let outcome = ApplyOutcome::Rejected { entry_term: 3 };
        assert_eq!(ApplyOutcome::from_response(&outcome.to_response()), outcome);
    }
}
