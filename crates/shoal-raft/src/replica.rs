//! Starting a range replica: one openraft `Raft` over the store's shared engine and writer.

use std::sync::Arc;

use openraft::{Config, SnapshotPolicy};
use shoal_storage::Engine;

use crate::network::{RangeNetworkFactory, Transport};
use crate::{Applier, Error, LogStore, LogWriter, RangeStateMachine, Result, TypeConfig};

/// A running range replica (an openraft handle; cheap to clone).
pub type Replica = openraft::Raft<TypeConfig, RangeStateMachine>;

/// Raft timers and thresholds, in milliseconds and entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTimers {
    /// How often a leader sends heartbeats.
    pub heartbeat_ms: u64,
    /// The election timeout is drawn from `[election_min_ms, election_max_ms)`.
    pub election_min_ms: u64,
    /// See `election_min_ms`.
    pub election_max_ms: u64,
    /// Build a snapshot (and later purge the log) after this many applied entries.
    pub snapshot_after_entries: u64,
    /// Log entries kept after a snapshot, so slightly lagging followers catch up from the log.
    pub logs_kept_after_snapshot: u64,
    /// How long one snapshot may take to be sent and installed (a synced write on the
    /// receiver). openraft's default, 200 ms, is shorter than a loaded machine's fsync: every
    /// retry then builds a newer snapshot of a busy range and fails the same way, and the new
    /// replica never catches up.
    pub snapshot_timeout_ms: u64,
}

impl RaftTimers {
    /// Production timers sized for many groups per node (design §5).
    pub const PRODUCTION: RaftTimers = RaftTimers {
        heartbeat_ms: 500,
        election_min_ms: 1500,
        election_max_ms: 3000,
        snapshot_after_entries: 10_000,
        logs_kept_after_snapshot: 1_000,
        snapshot_timeout_ms: 60_000,
    };
    /// Fast timers for in-process tests.
    pub const FAST: RaftTimers = RaftTimers {
        heartbeat_ms: 50,
        election_min_ms: 200,
        election_max_ms: 400,
        snapshot_after_entries: 10_000,
        logs_kept_after_snapshot: 1_000,
        snapshot_timeout_ms: 10_000,
    };

    fn config(&self) -> Result<Config> {
        Config {
            cluster_name: "shoal".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_after_entries),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            install_snapshot_timeout: self.snapshot_timeout_ms,
            // A partitioned replica that comes back must not disrupt a healthy leader.
            enable_pre_vote: Some(true),
            ..Config::default()
        }
        .validate()
        .map_err(|e| Error::Stopped(format!("invalid Raft configuration: {e}")))
    }
}

/// Everything a store shares between its replicas.
#[derive(Clone)]
pub struct ReplicaContext {
    /// The store's engine.
    pub engine: Arc<dyn Engine>,
    /// The store's group-commit log writer.
    pub writer: LogWriter,
    /// Gives commands their meaning.
    pub applier: Arc<dyn Applier>,
    /// Carries Raft messages to other nodes.
    pub transport: Arc<dyn Transport>,
    /// Raft timers.
    pub timers: RaftTimers,
}

/// Starts replica `replica_id` of `range_id` from whatever its log and state hold on disk.
pub async fn start_replica(
    ctx: &ReplicaContext,
    range_id: u64,
    replica_id: u64,
) -> Result<Replica> {
    let config = Arc::new(ctx.timers.config()?);
    let log = LogStore::new(range_id, ctx.engine.clone(), ctx.writer.clone());
    let state_machine = RangeStateMachine::new(range_id, ctx.engine.clone(), ctx.applier.clone());
    let network = RangeNetworkFactory::new(range_id, ctx.transport.clone());
    Replica::new(replica_id, config, network, log, state_machine).await.map_err(|e| {
        Error::Stopped(format!("starting replica {replica_id} of range {range_id}: {e}"))
    })
}
