//! Transport tests over real loopback sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use shoal_hlc::{Clock, DEFAULT_MAX_OFFSET, ManualClock, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::*;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Replies with the message prefixed by the receiving node's id and the lane.
struct Echo {
    node_id: u64,
}

impl Handler for Echo {
    fn handle(&self, from: u64, lane: Lane, message: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
        let reply = format!(
            "n{} got {:?} from n{from} on {lane:?}",
            self.node_id,
            String::from_utf8_lossy(&message)
        );
        Box::pin(async move { reply.into_bytes() })
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn node(node_id: u64, clock: Arc<Clock>) -> Rpc {
    Rpc::start(RpcConfig::new(node_id, loopback()), clock, Arc::new(Echo { node_id }))
        .await
        .unwrap()
}

fn system_clock() -> Arc<Clock> {
    Arc::new(Clock::system().0)
}

async fn pair() -> (Rpc, Rpc) {
    let (a, b) = (node(1, system_clock()).await, node(2, system_clock()).await);
    a.set_address(2, b.local_addr());
    b.set_address(1, a.local_addr());
    (a, b)
}

#[tokio::test]
async fn delivers_and_answers_on_each_lane() {
    let (a, _b) = pair().await;
    let reply = a.send(2, Lane::Raft, b"hello".to_vec(), TIMEOUT).await.unwrap();
    assert_eq!(String::from_utf8(reply).unwrap(), r#"n2 got "hello" from n1 on Raft"#);
    let reply = a.send(2, Lane::Snapshot, b"big".to_vec(), TIMEOUT).await.unwrap();
    assert_eq!(String::from_utf8(reply).unwrap(), r#"n2 got "big" from n1 on Snapshot"#);
}

// One thread: the sends all queue their messages before the peer task, woken by the first of
// them, runs; with worker threads the outcome would depend on scheduling.
#[tokio::test(flavor = "current_thread")]
async fn concurrent_messages_to_one_peer_share_batches() {
    let (a, _b) = pair().await;
    a.send(2, Lane::Raft, b"warm up".to_vec(), TIMEOUT).await.unwrap();
    let sends: Vec<_> = (0..500)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                a.send(2, Lane::Raft, format!("m{i}").into_bytes(), TIMEOUT).await
            })
        })
        .collect();
    for (i, send) in sends.into_iter().enumerate() {
        let reply = String::from_utf8(send.await.unwrap().unwrap()).unwrap();
        assert!(reply.contains(&format!("\"m{i}\"")), "replies match their messages: {reply}");
    }
    let (batches, messages) = a.sent();
    assert_eq!(messages, 501);
    assert!(batches < messages, "{messages} messages went in {batches} batches");
}

/// A "node" that accepts connections and never reads or writes (a paused process, or one
/// behind a partition that drops packets); abort the task to close its connections.
async fn silent_peer() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let silent = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    (addr, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_costs_only_its_own_deadline() {
    let (a, _b) = pair().await;
    let (silent, held) = silent_peer().await;
    a.set_address(3, silent);
    let a2 = a.clone();
    let stalled = tokio::spawn(async move {
        let start = Instant::now();
        let result = a2.send(3, Lane::Raft, b"anyone?".to_vec(), Duration::from_millis(300)).await;
        (result, start.elapsed())
    });
    // Meanwhile the healthy peer answers as usual.
    a.send(2, Lane::Raft, b"still there".to_vec(), TIMEOUT).await.unwrap();
    let (result, elapsed) = stalled.await.unwrap();
    assert!(matches!(result, Err(Error::Timeout { node: 3, .. })), "{result:?}");
    assert!(elapsed < Duration::from_secs(3), "the deadline bounds the wait: {elapsed:?}");
    held.abort();
}

#[tokio::test]
async fn garbage_on_the_socket_closes_that_connection_only() {
    let (a, b) = pair().await;
    let mut conn = tokio::net::TcpStream::connect(b.local_addr()).await.unwrap();
    // A plausible length prefix followed by bytes that are no valid frame.
    conn.write_all(&[0, 0, 0, 16]).await.unwrap();
    conn.write_all(&[0xde; 16]).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(TIMEOUT, conn.read(&mut buf))
        .await
        .expect("the server closes the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "connection closed: {read:?}");
    // An oversized frame is refused too.
    let mut conn = tokio::net::TcpStream::connect(b.local_addr()).await.unwrap();
    conn.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let read = tokio::time::timeout(TIMEOUT, conn.read(&mut buf)).await.expect("closed");
    assert!(matches!(read, Ok(0) | Err(_)), "connection closed: {read:?}");
    // The node keeps serving.
    a.send(2, Lane::Raft, b"after garbage".to_vec(), TIMEOUT).await.unwrap();
}

#[tokio::test]
async fn faults_drop_and_delay_messages_to_a_chosen_peer() {
    let (a, _b) = pair().await;
    a.faults().set(2, PeerFault { drop: true, ..PeerFault::default() });
    let err = a.send(2, Lane::Raft, b"x".to_vec(), TIMEOUT).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { node: 2, .. }), "{err}");

    let delay = Duration::from_millis(200);
    a.faults().set(2, PeerFault { drop: false, delay });
    let start = Instant::now();
    a.send(2, Lane::Raft, b"x".to_vec(), TIMEOUT).await.unwrap();
    assert!(start.elapsed() >= delay, "delayed by at least {delay:?}");

    a.faults().clear();
    a.send(2, Lane::Raft, b"x".to_vec(), TIMEOUT).await.unwrap();
}

#[tokio::test]
async fn unknown_and_unreachable_peers_fail_clearly() {
    let (a, _b) = pair().await;
    assert_eq!(a.send(9, Lane::Raft, vec![], TIMEOUT).await.unwrap_err(), Error::UnknownNode(9));
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    a.set_address(4, addr);
    let err = a.send(4, Lane::Raft, vec![], TIMEOUT).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { node: 4, .. }), "{err}");
}

#[tokio::test]
async fn messages_carry_the_clock_and_refuse_readings_beyond_the_max_offset() {
    const SEC: u64 = 1_000_000_000;
    let physical_a = Arc::new(ManualClock::new(100 * SEC));
    let physical_b = Arc::new(ManualClock::new(100 * SEC + 200_000_000)); // 200 ms ahead
    let clock_a = Arc::new(Clock::new(physical_a.clone(), DEFAULT_MAX_OFFSET));
    let clock_b = Arc::new(Clock::new(physical_b.clone(), DEFAULT_MAX_OFFSET));
    let (a, b) = (node(1, clock_a.clone()).await, node(2, clock_b.clone()).await);
    a.set_address(2, b.local_addr());
    b.set_address(1, a.local_addr());

    b.send(1, Lane::Raft, b"tick".to_vec(), TIMEOUT).await.unwrap();
    assert!(
        clock_a.now() > Timestamp::new(100 * SEC + 200_000_000, 0),
        "a's clock moved past b's reading"
    );

    physical_b.set(102 * SEC); // now 2 s ahead of a: beyond the 500 ms maximum
    let err = b.send(1, Lane::Raft, b"tock".to_vec(), TIMEOUT).await.unwrap_err();
    assert!(
        matches!(&err, Error::Refused { node: 1, reason } if reason.contains("maximum offset")),
        "{err}"
    );
    assert!(clock_a.now() < Timestamp::new(101 * SEC, 0), "a refused to jump forward");
}

/// Answers after a pause: a peer that is slow, not gone.
struct Slow {
    pause: Duration,
}

impl Handler for Slow {
    fn handle(&self, _: u64, _: Lane, message: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
        let pause = self.pause;
        Box::pin(async move {
            tokio::time::sleep(pause).await;
            message
        })
    }
}

/// Probes after 100 ms of silence, give up on a probe after 200 ms.
fn quick_probes(node_id: u64) -> RpcConfig {
    RpcConfig {
        probe_after: Duration::from_millis(100),
        probe_timeout: Duration::from_millis(200),
        probe_interval: Duration::from_millis(100),
        ..RpcConfig::new(node_id, loopback())
    }
}

/// A peer that accepts connections and never answers (a paused process, or one behind a
/// partition that drops packets) costs a long call a probe, not its deadline: the call fails
/// as possibly delivered, the peer's breaker opens and later calls fail at once, undelivered.
/// Once something answers at the peer's address, a probe closes the breaker again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_trips_its_breaker_and_an_answered_probe_closes_it() {
    let a =
        Rpc::start(quick_probes(1), system_clock(), Arc::new(Echo { node_id: 1 })).await.unwrap();
    let (silent, held) = silent_peer().await;
    a.set_address(3, silent);
    // Without the breaker this waits the whole minute and fails with Timeout.
    let cut = a.send(3, Lane::Kv, b"put".to_vec(), Duration::from_secs(60)).await;
    match &cut {
        Err(Error::Connection { node: 3, reason }) => assert!(reason.contains("probe"), "{reason}"),
        other => panic!("expected the call cut short by a failed probe, got {other:?}"),
    }
    assert!(a.breaker_open(3));
    let refused = a.send(3, Lane::Kv, b"put".to_vec(), Duration::from_secs(60)).await;
    match &refused {
        Err(Error::Unreachable { node: 3, reason }) => {
            assert!(reason.contains("circuit breaker"), "{reason}")
        }
        other => panic!("expected the open breaker to refuse the call, got {other:?}"),
    }
    held.abort();

    // Node 3 comes back (somewhere else): the breaker closes and calls go through.
    let back = node(3, system_clock()).await;
    a.set_address(3, back.local_addr());
    let deadline = Instant::now() + TIMEOUT;
    while a.breaker_open(3) {
        assert!(Instant::now() < deadline, "a probe answered closes the breaker");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = a.send(3, Lane::Kv, b"hello".to_vec(), TIMEOUT).await.unwrap();
    assert_eq!(String::from_utf8(reply).unwrap(), r#"n3 got "hello" from n1 on Kv"#);
}

/// A peer that is slow but answers its probes keeps its callers waiting for the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_peer_that_answers_probes_is_waited_for() {
    let a =
        Rpc::start(quick_probes(1), system_clock(), Arc::new(Echo { node_id: 1 })).await.unwrap();
    let pause = Duration::from_millis(700);
    let slow = Rpc::start(RpcConfig::new(2, loopback()), system_clock(), Arc::new(Slow { pause }))
        .await
        .unwrap();
    a.set_address(2, slow.local_addr());
    let reply = a.send(2, Lane::Kv, b"scan".to_vec(), Duration::from_secs(60)).await.unwrap();
    assert_eq!(reply, b"scan");
    assert!(!a.breaker_open(2));
}
