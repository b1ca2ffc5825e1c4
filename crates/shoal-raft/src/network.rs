//! Raft messages between replicas, carried by a byte [`Transport`] the node provides.
//!
//! openraft asks each group for a network client per peer. Here every group's client wraps one
//! shared [`Transport`] (the node-to-node connection in `shoal-rpc`, or an in-process one in
//! tests) and addresses messages with an envelope naming the range and the target replica:
//!
//! ```text
//!   Raft(range 7, replica 21) ─append_entries─▶ RangeNetwork ─encode─▶ Transport::send(n2, bytes)
//!        node n2: decode RaftEnvelope { range 7, to replica 23 } ─▶ deliver(raft of 23) ─▶ bytes back
//! ```
//!
//! Messages are encoded with `postcard` over openraft's serde types; a snapshot's data is its
//! encoded [`WriteBatch`]. A transport failure becomes openraft's `Unreachable` (openraft backs
//! off before retrying); a pre-vote that cannot be delivered is an error, never a grant.
//!
//! # Out of scope
//!
//! Streaming large snapshots in chunks; coalescing messages of many ranges (the transport's job).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::storage::Snapshot;
use openraft::{OptionalSend, RaftNetworkV2};
use serde::{Deserialize, Serialize};
use shoal_storage::WriteBatch;

use crate::codec::{decode, encode};
use crate::types::{ReplicaLocation, SnapshotMeta, TypeConfig, Vote};
use crate::{RangeSnapshot, Replica, Result};

/// A failure to deliver a message or get its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The target node cannot be reached (no connection, or it is known down).
    #[error("node {0} is unreachable: {1}")]
    Unreachable(u64, String),
    /// The call did not finish before its deadline.
    #[error("call to node {0} timed out after {1:?}")]
    Timeout(u64, Duration),
    /// The connection failed during the call.
    #[error("network error talking to node {0}: {1}")]
    Network(u64, String),
}

/// Delivers encoded Raft messages to other nodes and returns their encoded answers.
pub trait Transport: Send + Sync + 'static {
    /// Sends `message` of `kind` to the node at `to` and returns its answer, within `timeout`.
    fn send(
        &self,
        to: ReplicaLocation,
        kind: MessageKind,
        message: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, std::result::Result<Vec<u8>, TransportError>>;
}

/// What a message carries, so the transport can keep large snapshots off the lane of small,
/// latency-sensitive messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Appends, heartbeats, votes, leader transfers.
    Raft,
    /// A full snapshot.
    Snapshot,
}

/// A Raft request for one replica.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRequest {
    /// Log replication and heartbeats.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// A vote request.
    Vote(VoteRequest<TypeConfig>),
    /// A pre-vote request.
    PreVote(VoteRequest<TypeConfig>),
    /// A full snapshot (data: an encoded [`WriteBatch`]).
    Snapshot {
        /// The leader's vote.
        vote: Vote,
        /// The snapshot's metadata.
        meta: SnapshotMeta,
        /// The encoded snapshot data.
        data: Vec<u8>,
    },
    /// A leadership transfer to the target.
    TransferLeader(TransferLeaderRequest<TypeConfig>),
}

/// The answer to a [`RaftRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftResponse {
    /// Answer to [`RaftRequest::AppendEntries`].
    AppendEntries(AppendEntriesResponse<TypeConfig>),
    /// Answer to [`RaftRequest::Vote`] and [`RaftRequest::PreVote`].
    Vote(VoteResponse<TypeConfig>),
    /// Answer to [`RaftRequest::Snapshot`].
    Snapshot(SnapshotResponse<TypeConfig>),
    /// Answer to [`RaftRequest::TransferLeader`].
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    /// The target could not handle the request (unknown replica, stopped, bad message).
    Error(String),
}

/// A request addressed to one replica of one range.
#[derive(Debug, Serialize, Deserialize)]
pub struct RaftEnvelope {
    /// The range.
    pub range_id: u64,
    /// The target replica.
    pub to_replica: u64,
    /// The request.
    pub request: RaftRequest,
}

impl RaftEnvelope {
    /// Encodes the envelope for the transport.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes an envelope received from the transport.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode("raft envelope", bytes)
    }
}

impl RaftResponse {
    /// Encodes the response for the transport.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a response received from the transport.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode("raft response", bytes)
    }
}

/// Hands `request` to the local replica `raft` and returns its answer.
pub async fn deliver(raft: &Replica, request: RaftRequest) -> RaftResponse {
    let error = |e: &dyn std::fmt::Display| RaftResponse::Error(e.to_string());
    match request {
        RaftRequest::AppendEntries(rpc) => {
            raft.append_entries(rpc).await.map_or_else(|e| error(&e), RaftResponse::AppendEntries)
        }
        RaftRequest::Vote(rpc) => {
            raft.vote(rpc).await.map_or_else(|e| error(&e), RaftResponse::Vote)
        }
        RaftRequest::PreVote(rpc) => {
            raft.pre_vote(rpc).await.map_or_else(|e| error(&e), RaftResponse::Vote)
        }
        RaftRequest::Snapshot { vote, meta, data } => match WriteBatch::decode(&data) {
            Ok(batch) => raft
                .install_full_snapshot(vote, Snapshot { meta, snapshot: batch })
                .await
                .map_or_else(|e| error(&e), RaftResponse::Snapshot),
            Err(e) => error(&e),
        },
        RaftRequest::TransferLeader(rpc) => raft
            .handle_transfer_leader(rpc)
            .await
            .map_or_else(|e| error(&e), RaftResponse::TransferLeader),
    }
}

/// Creates the network clients of one range's Raft group.
#[derive(Clone)]
pub struct RangeNetworkFactory {
    range_id: u64,
    transport: Arc<dyn Transport>,
}

impl RangeNetworkFactory {
    /// Returns the factory for `range_id`, sending through `transport`.
    pub fn new(range_id: u64, transport: Arc<dyn Transport>) -> Self {
        RangeNetworkFactory { range_id, transport }
    }
}

impl RaftNetworkFactory<TypeConfig> for RangeNetworkFactory {
    type Network = RangeNetwork;

    async fn new_client(&mut self, target: u64, node: &ReplicaLocation) -> Self::Network {
        RangeNetwork {
            range_id: self.range_id,
            target,
            location: *node,
            transport: self.transport.clone(),
        }
    }
}

/// The network client from one replica to one peer replica.
pub struct RangeNetwork {
    range_id: u64,
    target: u64,
    location: ReplicaLocation,
    transport: Arc<dyn Transport>,
}

impl RangeNetwork {
    async fn call(
        &self,
        request: RaftRequest,
        timeout: Duration,
    ) -> std::result::Result<RaftResponse, RPCError<TypeConfig>> {
        let kind = match request {
            RaftRequest::Snapshot { .. } => MessageKind::Snapshot,
            _ => MessageKind::Raft,
        };
        let envelope = RaftEnvelope { range_id: self.range_id, to_replica: self.target, request };
        let bytes =
            self.transport.send(self.location, kind, envelope.encode(), timeout).await.map_err(
                |e| match e {
                    // A slow answer is not an unreachable node: openraft backs off from
                    // unreachable ones, which would delay a merely busy follower further.
                    TransportError::Network(..) | TransportError::Timeout(..) => {
                        RPCError::Network(NetworkError::new(&e))
                    }
                    _ => RPCError::Unreachable(Unreachable::new(&e)),
                },
            )?;
        match RaftResponse::decode(&bytes) {
            Ok(RaftResponse::Error(message)) => Err(RPCError::Network(NetworkError::from_string(
                format!("replica {} of range {}: {message}", self.target, self.range_id),
            ))),
            Ok(response) => Ok(response),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

fn unexpected(response: RaftResponse) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::from_string(format!("unexpected response {response:?}")))
}

impl RaftNetworkV2<TypeConfig> for RangeNetwork {
    type SnapshotData = WriteBatch;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::result::Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRequest::AppendEntries(rpc), option.soft_ttl()).await? {
            RaftResponse::AppendEntries(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::result::Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRequest::Vote(rpc), option.soft_ttl()).await? {
            RaftResponse::Vote(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::result::Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRequest::PreVote(rpc), option.soft_ttl()).await? {
            RaftResponse::Vote(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: RangeSnapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> std::result::Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let request =
            RaftRequest::Snapshot { vote, meta: snapshot.meta, data: snapshot.snapshot.encode() };
        match self.call(request, option.hard_ttl()).await? {
            RaftResponse::Snapshot(response) => Ok(response),
            other => Err(unexpected(other).into()),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::result::Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRequest::TransferLeader(req), option.soft_ttl()).await? {
            RaftResponse::TransferLeader(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }
}
