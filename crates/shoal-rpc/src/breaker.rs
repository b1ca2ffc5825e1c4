//! Per-peer circuit breakers: a call that hangs is cut short once a probe finds its peer
//! silent, and later calls to that peer fail at once, undelivered, until a probe gets an
//! answer again.
//!
//! ```text
//!   send(n3, Kv, put)   ──▶ waiting ... probe_after ──▶ probe n3 (fresh connection, no payload)
//!                                                          │ answered: keep waiting, probe again later
//!                                                          └ silent for probe_timeout: trip n3,
//!                                                            the call fails "may have been delivered"
//!   send(n3, …)         ──▶ breaker open: fails at once, "not delivered"
//!   reset task          ──▶ every probe_interval: probe n3; answered → breaker closed
//! ```
//!
//! Why: a peer behind a partition that drops packets, or a paused process, neither answers nor
//! resets the connection, so without a breaker every call to it waits its whole deadline (15 s
//! for a KV call), and a client with a stale leaseholder cache waits that long per request
//! (found by the Jepsen harness's `isolate-leaseholder` nemesis). CockroachDB keeps circuit
//! breakers per node in its RPC context for the same reason.
//!
//! # Invariants
//!
//! - A call refused by an open breaker was never handed to the connection: the caller may send
//!   it elsewhere, even a write ([`Error::Unreachable`]). A call cut short by a failed probe was
//!   handed over and may still be applied: [`Error::Connection`], ambiguous for writes.
//! - A probe dials a connection of its own, so it tests the peer, not a stuck connection;
//!   concurrent calls to one peer share one probe.
//! - Only a successful probe closes a breaker.
//!
//! # Hazards
//!
//! A peer too loaded to answer a probe within `probe_timeout` looks dead: its callers get
//! errors (retried elsewhere, or ambiguous) for about a `probe_interval`. The defaults leave
//! seconds of slack for that reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared as SharedFuture};

use crate::Error;
use crate::node::{Shared, ping};

/// A probe's outcome, shared by every call waiting on it.
type Probe = SharedFuture<BoxFuture<'static, Result<(), String>>>;

/// The breakers of one endpoint, by peer.
#[derive(Default)]
pub(crate) struct Breakers {
    peers: Mutex<HashMap<u64, PeerBreaker>>,
}

#[derive(Default)]
struct PeerBreaker {
    /// Why the breaker is open, if it is.
    open: Option<String>,
    /// The probe in flight, if any.
    probe: Option<Probe>,
}

impl Breakers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PeerBreaker>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails if `to`'s breaker is open.
    pub(crate) fn check(&self, to: u64) -> crate::Result<()> {
        match self.lock().get(&to).and_then(|b| b.open.clone()) {
            Some(reason) => Err(Error::Unreachable {
                node: to,
                reason: format!("its circuit breaker is open ({reason})"),
            }),
            None => Ok(()),
        }
    }

    /// Returns whether `to`'s breaker is open.
    pub(crate) fn is_open(&self, to: u64) -> bool {
        self.lock().get(&to).is_some_and(|b| b.open.is_some())
    }
}

/// Probes `to`, or joins the probe already in flight.
pub(crate) fn probe(shared: &Arc<Shared>, to: u64) -> Probe {
    let mut peers = shared.breakers.lock();
    let breaker = peers.entry(to).or_default();
    if let Some(running) = &breaker.probe
        && running.peek().is_none()
    {
        return running.clone();
    }
    let timeout = shared.config.probe_timeout;
    let probe = ping(shared.clone(), to, timeout).map(|r| r.map_err(|e| e.to_string())).boxed();
    let probe = probe.shared();
    breaker.probe = Some(probe.clone());
    probe
}

/// Opens `to`'s breaker and starts the task that closes it once a probe is answered.
pub(crate) fn trip(shared: &Arc<Shared>, to: u64, reason: &str) {
    {
        let mut peers = shared.breakers.lock();
        let breaker = peers.entry(to).or_default();
        if breaker.open.is_some() {
            return;
        }
        breaker.open = Some(reason.to_string());
    }
    tracing::warn!(node = to, "circuit breaker opened: {reason}");
    let weak = Arc::downgrade(shared);
    let interval = shared.config.probe_interval;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            // The endpoint is gone: nobody needs the breaker.
            let Some(shared) = weak.upgrade() else { return };
            if probe(&shared, to).await.is_ok() {
                if let Some(breaker) = shared.breakers.lock().get_mut(&to) {
                    breaker.open = None;
                }
                tracing::info!(node = to, "circuit breaker closed: the node answers again");
                return;
            }
        }
    });
}
