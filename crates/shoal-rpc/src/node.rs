//! A node's endpoint: the listener that answers peers and the outgoing queues to each peer.
//!
//! ```text
//!   send(n2, Raft, msg) ─▶ queue (n2, Raft) ─▶ batcher: drain queue ─▶ deliver(hdr, [m1..mk])
//!   send(n2, Raft, msg) ─▶       │                 one connection per (peer, lane), multiplexed:
//!   send(n3, Snapshot, s) ─▶ queue (n3, Snapshot)  several batches in flight at once
//! ```
//!
//! Each `(peer, lane)` pair has a queue drained by one task: every message waiting when the task
//! wakes goes into one `deliver` call, so many ranges' Raft messages to one node share a frame.
//! Calls are pipelined over the connection, so a slow batch does not hold later ones back. A
//! broken connection is dropped and re-dialled by the next batch.
//!
//! Every call has a deadline. The caller's wait is bounded by it even if the peer accepted the
//! connection and never answers; other peers have their own queues and connections, so one
//! stalled peer delays nobody else.
//!
//! The HLC travels both ways: the sender's reading in the request header updates the receiver's
//! clock, and the receiver's reading in the answer updates the sender's. A reading beyond the
//! maximum offset is refused by the receiving clock and the call fails.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use shoal_hlc::Clock;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context};
use tokio::sync::{mpsc, oneshot};

use crate::breaker::{self, Breakers};
use crate::faults::Faults;
use crate::wire::{
    ANY_NODE, DeliverResult, Header, Lane, MAX_FRAME_BYTES, NodeService, NodeServiceClient, Payload,
};
use crate::{Error, Result};

/// Handles messages that arrive from peers.
pub trait Handler: Send + Sync + 'static {
    /// Handles one message from node `from` on `lane` and returns the reply bytes.
    fn handle(&self, from: u64, lane: Lane, message: Vec<u8>) -> BoxFuture<'static, Vec<u8>>;
}

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// This node's id.
    pub node_id: u64,
    /// Where to listen (port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// How long dialling a peer may take.
    pub connect_timeout: Duration,
    /// The most messages in one batch.
    pub max_batch: usize,
    /// A call unanswered this long makes the endpoint probe its peer (see `breaker`).
    pub probe_after: Duration,
    /// How long a probe waits for the peer's answer before the peer's breaker opens.
    pub probe_timeout: Duration,
    /// How often an open breaker probes its peer to close again.
    pub probe_interval: Duration,
}

impl RpcConfig {
    /// Settings with defaults for `node_id` listening on `listen_addr`.
    pub fn new(node_id: u64, listen_addr: SocketAddr) -> Self {
        RpcConfig {
            node_id,
            listen_addr,
            connect_timeout: Duration::from_secs(2),
            max_batch: 512,
            // A fresh connection and an empty call take a millisecond on a healthy network;
            // seconds of slack keep a loaded peer from looking dead.
            probe_after: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(2),
            probe_interval: Duration::from_secs(1),
        }
    }
}

/// A node's transport endpoint. Cloning shares it.
#[derive(Clone)]
pub struct Rpc {
    inner: Arc<Inner>,
}

/// What the peer tasks need; it holds no queue, so peer tasks end when the endpoint goes.
pub(crate) struct Shared {
    pub(crate) config: RpcConfig,
    /// This node's id: [`ANY_NODE`] until the node learns it (an uninitialized store).
    node_id: Arc<AtomicU64>,
    clock: Arc<Clock>,
    addresses: RwLock<HashMap<u64, SocketAddr>>,
    batches_sent: AtomicU64,
    messages_sent: AtomicU64,
    faults: Faults,
    pub(crate) breakers: Breakers,
}

struct Inner {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    queues: Mutex<HashMap<(u64, Lane), mpsc::UnboundedSender<Outgoing>>>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stop accepting once the last handle is gone; open connections end with their peers.
        self.accept_loop.abort();
    }
}

struct Outgoing {
    message: Vec<u8>,
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<u8>>>,
}

impl Rpc {
    /// Starts listening and returns the endpoint.
    pub async fn start(
        config: RpcConfig,
        clock: Arc<Clock>,
        handler: Arc<dyn Handler>,
    ) -> Result<Rpc> {
        let listen_error = |e: &dyn std::fmt::Display| Error::Listen {
            addr: config.listen_addr.to_string(),
            reason: e.to_string(),
        };
        let mut listener =
            tarpc::serde_transport::tcp::listen(config.listen_addr, Bincode::default)
                .await
                .map_err(|e| listen_error(&e))?;
        listener.config_mut().max_frame_length(MAX_FRAME_BYTES);
        let local_addr = listener.local_addr();
        let node_id = Arc::new(AtomicU64::new(config.node_id));
        let server = Server { node_id: node_id.clone(), clock: clock.clone(), handler };
        let accept_loop = tokio::spawn(async move {
            // Connections live in this set: when the endpoint goes, aborting this task drops
            // the set and closes every connection, as a process exit would.
            let mut connections = tokio::task::JoinSet::new();
            while let Some(accepted) = listener.next().await {
                while connections.try_join_next().is_some() {}
                match accepted {
                    Ok(transport) => {
                        no_delay(transport.get_ref());
                        let channel = BaseChannel::with_defaults(transport);
                        connections.spawn(channel.execute(server.clone().serve()).for_each(
                            |call| async {
                                tokio::spawn(call);
                            },
                        ));
                    }
                    Err(e) => tracing::warn!("accepting a peer connection failed: {e}"),
                }
            }
        });
        let shared = Shared {
            config,
            node_id,
            clock,
            addresses: RwLock::default(),
            batches_sent: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            faults: Faults::default(),
            breakers: Breakers::default(),
        };
        let inner =
            Inner { shared: Arc::new(shared), local_addr, queues: Mutex::default(), accept_loop };
        Ok(Rpc { inner: Arc::new(inner) })
    }

    /// Returns the address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Returns this node's id.
    pub fn node_id(&self) -> u64 {
        self.inner.shared.node_id.load(Ordering::Acquire)
    }

    /// Sets this node's id, once a node started on an uninitialized store learns it.
    pub fn set_node_id(&self, node_id: u64) {
        self.inner.shared.node_id.store(node_id, Ordering::Release);
    }

    /// Sends one message to whichever node listens at `addr`, over a connection of its own
    /// that closes afterwards. For the few messages sent before the peer's id is known
    /// (joining, bootstrapping); everything else goes through [`Rpc::send`].
    pub async fn call_addr(
        &self,
        addr: SocketAddr,
        lane: Lane,
        message: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let shared = &self.inner.shared;
        let mut payloads =
            call_once(shared, addr, ANY_NODE, lane, vec![Payload(message)], timeout).await?;
        match payloads.len() {
            1 => Ok(payloads.remove(0).0),
            _ => Err(Error::Refused { node: ANY_NODE, reason: "answer count mismatch".into() }),
        }
    }

    /// Returns how many batches and messages this endpoint has sent.
    pub fn sent(&self) -> (u64, u64) {
        (
            self.inner.shared.batches_sent.load(Ordering::Relaxed),
            self.inner.shared.messages_sent.load(Ordering::Relaxed),
        )
    }

    /// Records where node `node_id` listens.
    pub fn set_address(&self, node_id: u64, addr: SocketAddr) {
        self.inner
            .shared
            .addresses
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node_id, addr);
    }

    /// Returns the fault injector of outgoing messages.
    pub fn faults(&self) -> &Faults {
        &self.inner.shared.faults
    }

    /// Returns whether node `to`'s circuit breaker is open: calls to it fail at once until a
    /// probe gets an answer (see `breaker`).
    pub fn breaker_open(&self, to: u64) -> bool {
        self.inner.shared.breakers.is_open(to)
    }

    /// Sends `message` to node `to` on `lane` and waits for the reply, at most `timeout`.
    pub async fn send(
        &self,
        to: u64,
        lane: Lane,
        message: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let shared = &self.inner.shared;
        shared.breakers.check(to)?;
        let fault = shared.faults.get(to);
        if fault.drop {
            return Err(Error::Unreachable {
                node: to,
                reason: "dropped by fault injection".into(),
            });
        }
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay.min(timeout)).await;
        }
        let queue = self.queue(to, lane)?;
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        queue
            .send(Outgoing { message, deadline, reply })
            .map_err(|_| Error::Connection { node: to, reason: "the peer queue stopped".into() })?;
        await_answer(shared, to, answer, timeout).await
    }

    fn queue(&self, to: u64, lane: Lane) -> Result<mpsc::UnboundedSender<Outgoing>> {
        let mut queues = self.inner.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queue) = queues.get(&(to, lane))
            && !queue.is_closed()
        {
            return Ok(queue.clone());
        }
        if self.inner.shared.address(to).is_none() {
            return Err(Error::UnknownNode(to));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let peer = Peer {
            shared: self.inner.shared.clone(),
            to,
            lane,
            client: Arc::default(),
            dials: AtomicU64::new(0),
        };
        tokio::spawn(peer.run(rx));
        queues.insert((to, lane), tx.clone());
        Ok(tx)
    }
}

/// Waits for a call's answer, at most `timeout`. A call unanswered for `probe_after` probes
/// its peer; a peer that does not answer the probe either has its breaker opened, and the call
/// fails then rather than at its deadline. Calls too short for a probe to help just wait.
async fn await_answer(
    shared: &Arc<Shared>,
    to: u64,
    answer: oneshot::Receiver<Result<Vec<u8>>>,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let stopped = || Error::Connection { node: to, reason: "the peer queue stopped".into() };
    tokio::pin!(answer);
    loop {
        let probe_at = tokio::time::Instant::now() + shared.config.probe_after;
        if probe_at + shared.config.probe_timeout >= deadline {
            return match tokio::time::timeout_at(deadline, &mut answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(stopped()),
                Err(_) => Err(Error::Timeout { node: to, after: timeout }),
            };
        }
        tokio::select! {
            result = &mut answer => return result.unwrap_or_else(|_| Err(stopped())),
            () = tokio::time::sleep_until(probe_at) => {}
        }
        let probe = breaker::probe(shared, to);
        tokio::select! {
            result = &mut answer => return result.unwrap_or_else(|_| Err(stopped())),
            probed = probe => if let Err(reason) = probed {
                let reason = format!("a probe got no answer: {reason}");
                breaker::trip(shared, to, &reason);
                return Err(Error::Connection { node: to, reason: format!("no answer, and {reason}") });
            }
        }
    }
}

/// Checks that node `to` answers at all: an empty call over a connection of its own (a stuck
/// connection says nothing about the peer), at most `timeout`. Injected faults apply.
pub(crate) async fn ping(shared: Arc<Shared>, to: u64, timeout: Duration) -> Result<()> {
    let fault = shared.faults.get(to);
    if fault.drop {
        return Err(Error::Unreachable { node: to, reason: "dropped by fault injection".into() });
    }
    if !fault.delay.is_zero() {
        tokio::time::sleep(fault.delay.min(timeout)).await;
    }
    let addr = shared.address(to).ok_or(Error::UnknownNode(to))?;
    call_once(&shared, addr, to, Lane::Control, Vec::new(), timeout).await.map(|_| ())
}

/// Delivers `messages` to whichever node listens at `addr` (which must be node `to`, unless
/// `to` is [`ANY_NODE`]) over a connection of its own that closes afterwards.
async fn call_once(
    shared: &Shared,
    addr: SocketAddr,
    to: u64,
    lane: Lane,
    messages: Vec<Payload>,
    timeout: Duration,
) -> Result<Vec<Payload>> {
    let unreachable = |reason: String| Error::NoAnswer { addr: addr.to_string(), reason };
    let call = async {
        let mut connecting = tarpc::serde_transport::tcp::connect(addr, Bincode::default);
        connecting.config_mut().max_frame_length(MAX_FRAME_BYTES);
        let transport = connecting.await.map_err(|e| unreachable(e.to_string()))?;
        no_delay(transport.get_ref());
        let client = NodeServiceClient::new(client::Config::default(), transport).spawn();
        let header = shared.header(to, lane);
        let mut ctx = context::current();
        ctx.deadline = Instant::now() + timeout;
        let expected = messages.len();
        match client.deliver(ctx, header, messages).await {
            Ok(Ok((answer, payloads))) if payloads.len() == expected => {
                shared
                    .clock
                    .update(answer.clock())
                    .map_err(|e| Error::Refused { node: answer.from, reason: e.to_string() })?;
                Ok(payloads)
            }
            Ok(Ok(_)) => Err(Error::Refused { node: to, reason: "answer count mismatch".into() }),
            Ok(Err(reason)) => Err(Error::Refused { node: to, reason }),
            Err(e) => Err(unreachable(e.to_string())),
        }
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(unreachable(format!("nothing within {timeout:?}"))))
}

impl Shared {
    /// The header of a call to `to` on `lane`, with this node's clock reading now.
    fn header(&self, to: u64, lane: Lane) -> Header {
        let now = self.clock.now();
        Header {
            from: self.node_id.load(Ordering::Acquire),
            to,
            lane,
            clock_wall: now.wall,
            clock_logical: now.logical,
        }
    }

    fn address(&self, node_id: u64) -> Option<SocketAddr> {
        self.addresses.read().unwrap_or_else(|p| p.into_inner()).get(&node_id).copied()
    }
}

/// Turns Nagle's algorithm off: calls are small and pipelined, and a message held back until
/// the previous one is acknowledged would add a round trip (or a delayed-ACK timeout) to a
/// Raft commit. Failing to set it costs only latency, so the failure is logged, not returned.
fn no_delay(stream: &tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!("setting TCP_NODELAY on a peer connection failed: {e}");
    }
}

/// The task that drains one `(peer, lane)` queue into batches.
struct Peer {
    shared: Arc<Shared>,
    to: u64,
    lane: Lane,
    /// The current connection and a number that identifies it, so a late failure of an old
    /// connection never discards a newer one.
    client: Arc<Mutex<Option<(u64, NodeServiceClient)>>>,
    /// How many connections this peer task has dialled (the next connection's number).
    dials: AtomicU64,
}

impl Peer {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
        // A batch is answered when its slowest message is: fine for Raft messages, which are
        // all quick, but a KV request waits for a Raft round trip, so KV requests each travel in
        // their own call (still pipelined over the one connection).
        let max_batch = match self.lane {
            Lane::Raft | Lane::Snapshot => self.shared.config.max_batch,
            Lane::Kv | Lane::Control => 1,
        };
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            let (live, expired): (Vec<_>, Vec<_>) =
                batch.into_iter().partition(|m| m.deadline > now);
            for message in expired {
                let _ = message
                    .reply
                    .send(Err(Error::Timeout { node: self.to, after: Duration::ZERO }));
            }
            if live.is_empty() {
                continue;
            }
            let client = match self.connect().await {
                Ok(client) => client,
                Err(e) => {
                    for message in live {
                        let _ = message.reply.send(Err(e.clone()));
                    }
                    continue;
                }
            };
            // Pipelined: the next batch may go out before this one is answered.
            tokio::spawn(self.call(client, live));
        }
    }

    async fn connect(&self) -> Result<(u64, NodeServiceClient)> {
        if let Some(current) = self.client.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(current);
        }
        let unreachable = |reason: String| Error::Unreachable { node: self.to, reason };
        // Looked up at each dial: a restarted peer may listen somewhere else.
        let addr = self.shared.address(self.to).ok_or(Error::UnknownNode(self.to))?;
        let mut connecting = tarpc::serde_transport::tcp::connect(addr, Bincode::default);
        connecting.config_mut().max_frame_length(MAX_FRAME_BYTES);
        let transport = tokio::time::timeout(self.shared.config.connect_timeout, connecting)
            .await
            .map_err(|_| unreachable(format!("connecting to {addr} timed out")))?
            .map_err(|e| unreachable(format!("connecting to {addr}: {e}")))?;
        no_delay(transport.get_ref());
        let new_client = NodeServiceClient::new(client::Config::default(), transport);
        let client = new_client.client;
        let generation = self.dials.fetch_add(1, Ordering::Relaxed);
        // When the connection ends (the peer closed it, or died and its kernel reset it),
        // forget it at once: the next batch then dials, and a dead peer refuses the dial, which
        // says clearly that nothing was delivered. Sending into a dead connection instead
        // would fail the same way as a connection lost mid-call: ambiguous.
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, client.clone()));
        let (dispatch, slot) = (new_client.dispatch, self.client.clone());
        tokio::spawn(async move {
            if let Err(e) = dispatch.await {
                tracing::debug!("a peer connection failed: {e}");
            }
            let mut current = slot.lock().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|(g, _)| *g == generation) {
                *current = None;
            }
        });
        Ok((generation, client))
    }

    fn call(
        &self,
        (generation, client): (u64, NodeServiceClient),
        batch: Vec<Outgoing>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (to, lane, inner, slot) =
            (self.to, self.lane, self.shared.clone(), self.client.clone());
        async move {
            let header = inner.header(to, lane);
            let mut ctx = context::current();
            ctx.deadline = batch.iter().map(|m| m.deadline).max().expect("a non-empty batch");
            let (payloads, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|m| (Payload(m.message), m.reply)).unzip();
            inner.batches_sent.fetch_add(1, Ordering::Relaxed);
            inner.messages_sent.fetch_add(payloads.len() as u64, Ordering::Relaxed);
            let result = match client.deliver(ctx, header, payloads).await {
                // The peer handled the batch: a failure from here on leaves its outcome unknown
                // to the callers, which a connection error says.
                Ok(Ok((answer, payloads))) => match inner.clock.update(answer.clock()) {
                    Ok(()) if payloads.len() == replies.len() => Ok(payloads),
                    Ok(()) => Err(Error::Connection {
                        node: to,
                        reason: "the answer holds the wrong number of replies".into(),
                    }),
                    Err(e) => Err(Error::Connection {
                        node: to,
                        reason: format!("the answer's clock was refused: {e}"),
                    }),
                },
                Ok(Err(reason)) => Err(Error::Refused { node: to, reason }),
                Err(e) => {
                    // Broken, or silent past the deadline (a half-open connection to a dead host
                    // looks exactly like that): forget this connection so the next batch
                    // re-dials, unless a newer one already replaced it.
                    let mut current = slot.lock().unwrap_or_else(|p| p.into_inner());
                    if current.as_ref().is_some_and(|(g, _)| *g == generation) {
                        *current = None;
                    }
                    match e {
                        tarpc::client::RpcError::DeadlineExceeded => {
                            Err(Error::Timeout { node: to, after: Duration::ZERO })
                        }
                        e => Err(Error::Connection { node: to, reason: e.to_string() }),
                    }
                }
            };
            match result {
                Ok(payloads) => {
                    for (reply, payload) in replies.into_iter().zip(payloads) {
                        let _ = reply.send(Ok(payload.0));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

/// Answers peers' batches.
#[derive(Clone)]
struct Server {
    node_id: Arc<AtomicU64>,
    clock: Arc<Clock>,
    handler: Arc<dyn Handler>,
}

impl NodeService for Server {
    async fn deliver(
        self,
        _: context::Context,
        header: Header,
        messages: Vec<Payload>,
    ) -> DeliverResult {
        let node_id = self.node_id.load(Ordering::Acquire);
        if header.to != ANY_NODE && header.to != node_id {
            return Err(format!("this is node {node_id}, not node {}", header.to));
        }
        self.clock.update(header.clock()).map_err(|e| e.to_string())?;
        let handled =
            messages.into_iter().map(|m| self.handler.handle(header.from, header.lane, m.0));
        let replies = futures::future::join_all(handled).await;
        let now = self.clock.now();
        let answer = Header {
            from: node_id,
            to: header.from,
            lane: header.lane,
            clock_wall: now.wall,
            clock_logical: now.logical,
        };
        Ok((answer, replies.into_iter().map(Payload).collect()))
    }
}
