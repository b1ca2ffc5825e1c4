//! DistSender: sends KV requests to the ranges that hold their keys.
//!
//! ```text
//!   send([Put a, Get q, Scan [a, z)])
//!     ├─ point requests grouped by range (range cache, else a meta lookup in range 1)
//!     │    range 2: [Put a]   range 3: [Get q]        ── sent in parallel
//!     └─ span requests walk the ranges they cross, in order, until their limit
//!          Scan [a, m) on range 2, then [m, z) on range 3
//!   each part goes to the cached leaseholder, else to each replica in turn;
//!   NotLeaseholder(hint) → retry at the hint; key mismatch → evict, look up again;
//!   Unavailable (election running) → back off and retry until the deadline
//! ```
//!
//! Routing errors never reach the caller; user errors, ambiguous results and internal errors do.
//! Lock conflicts do not either: the part that met a lock pushes its holder, resolves the
//! intent and is sent again (see [`crate::conflict`]).
//!
//! # Out of scope
//!
//! Atomicity: a batch that touches several ranges is atomic only inside a transaction (see
//! [`crate::txn`]); without one, each range's part commits on its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use shoal_api::addressing::{decode_meta_record, is_meta_range_key, meta_lookup_span};
use shoal_api::txn::Transaction;
use shoal_api::{
    BatchRequest, BatchResponse, ErrorKind, KvError, RangeDescriptor, Request, Response,
};
use shoal_keys::{Key, Span, layout};

use crate::cache::RangeCache;
use crate::conflict::TxnUpdates;

/// Delivers a batch to the store on one node.
pub trait NodeSender: Send + Sync + 'static {
    /// Sends `batch` to node `node_id`.
    fn send(
        &self,
        node_id: u64,
        batch: BatchRequest,
    ) -> BoxFuture<'static, Result<BatchResponse, KvError>>;
}

/// How long a request may keep retrying while ranges elect leaders.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
const BACKOFF: Duration = Duration::from_millis(25);

/// Routes KV requests to ranges.
pub struct DistSender {
    /// Range 1's descriptor: where meta lookups go. Updated from gossip when its replicas move.
    meta_range: std::sync::RwLock<RangeDescriptor>,
    cache: RangeCache,
    sender: Arc<dyn NodeSender>,
    deadline: Duration,
    /// Transactions whose requests wait for another transaction to finish.
    pub(crate) waiting: std::sync::Mutex<std::collections::HashSet<u128>>,
}

impl DistSender {
    /// Returns a sender that finds ranges through `meta_range` (range 1).
    pub fn new(meta_range: RangeDescriptor, sender: Arc<dyn NodeSender>) -> Self {
        let cache = RangeCache::default();
        cache.insert(meta_range.clone());
        DistSender {
            meta_range: std::sync::RwLock::new(meta_range),
            cache,
            sender,
            deadline: DEFAULT_DEADLINE,
            waiting: std::sync::Mutex::default(),
        }
    }

    /// Returns the transactions whose requests, sent through here, are waiting for another
    /// transaction to finish (their pushes could neither abort it nor wait it out yet).
    pub fn waiting_txns(&self) -> Vec<u128> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect()
    }

    /// Returns the range cache.
    pub fn cache(&self) -> &RangeCache {
        &self.cache
    }

    /// Returns the meta range's descriptor as this sender knows it.
    pub fn meta_range(&self) -> RangeDescriptor {
        self.meta_range.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Learns a newer descriptor of the meta range (its replicas moved); older ones are
    /// ignored. Returns whether it was newer.
    pub fn update_meta_range(&self, descriptor: &RangeDescriptor) -> bool {
        let mut held = self.meta_range.write().unwrap_or_else(|p| p.into_inner());
        if descriptor.range_id != held.range_id || descriptor.generation <= held.generation {
            return false;
        }
        *held = descriptor.clone();
        drop(held);
        self.cache.insert(descriptor.clone());
        true
    }

    /// Sends `requests`, returning one response per request.
    pub async fn send(&self, requests: Vec<Request>) -> Result<Vec<Response>, KvError> {
        Ok(self.send_txn(requests, None).await?.0)
    }

    /// Sends `requests` on behalf of `txn` (or of none), returning one response per request
    /// and the transaction as the ranges left it: its write timestamp is the highest any range
    /// moved it to, and it has the serving nodes' clock readings. Locks met on the way are
    /// resolved (their holders pushed) and the part that met them sent again.
    pub async fn send_txn(
        &self,
        requests: Vec<Request>,
        txn: Option<Transaction>,
    ) -> Result<(Vec<Response>, Option<Transaction>), KvError> {
        self.send_txn_traced(requests, txn, None).await
    }

    /// [`DistSender::send_txn`], recording each range's answer, and each redirect and lock
    /// conflict on the way, into `trace` ([`crate::trace`]).
    pub async fn send_txn_traced(
        &self,
        requests: Vec<Request>,
        txn: Option<Transaction>,
        trace: Option<Arc<crate::trace::KvTrace>>,
    ) -> Result<(Vec<Response>, Option<Transaction>), KvError> {
        let txn = TxnUpdates::traced(txn, trace);
        let responses = self.send_parts(requests, &txn).await?;
        Ok((responses, txn.into_inner()))
    }

    /// Sends `requests` outside any transaction, returning the responses and the highest
    /// timestamp a range evaluated them at (writes landed at or below it).
    pub async fn send_timestamped(
        &self,
        requests: Vec<Request>,
    ) -> Result<(Vec<Response>, shoal_hlc::Timestamp), KvError> {
        let updates = TxnUpdates::new(None);
        let responses = self.send_parts(requests, &updates).await?;
        Ok((responses, updates.timestamp()))
    }

    async fn send_parts(
        &self,
        requests: Vec<Request>,
        txn: &TxnUpdates,
    ) -> Result<Vec<Response>, KvError> {
        let mut responses: Vec<Option<Response>> = vec![None; requests.len()];
        // Point requests, grouped by range and sent in parallel. A group that hits a range
        // boundary change is regrouped; groups that succeeded are never sent again.
        let deadline = tokio::time::Instant::now() + self.deadline;
        let mut pending: Vec<(usize, Request)> =
            requests.iter().cloned().enumerate().filter(|(_, r)| !r.is_ranged()).collect();
        while !pending.is_empty() {
            let mut groups: BTreeMap<u64, (RangeDescriptor, Vec<(usize, Request)>)> =
                BTreeMap::new();
            for (i, request) in pending.drain(..) {
                let descriptor = self.locate(&Locate::At(request.span().start)).await?;
                groups
                    .entry(descriptor.range_id)
                    .or_insert_with(|| (descriptor, Vec::new()))
                    .1
                    .push((i, request));
            }
            // A commit travels with writes only when they all land on its range (the one-phase
            // commit). Split across ranges, the commit could be decided before (and below) the
            // other ranges' intents: refuse before sending anything, so the coordinator commits
            // in two phases instead.
            if groups.len() > 1
                && let Some(Request::EndTxn { key, .. }) =
                    requests.iter().find(|r| matches!(r, Request::EndTxn { .. }))
            {
                return Err(KvError::RangeKeyMismatch {
                    range_id: 0,
                    key: key.clone(),
                    actual: None,
                });
            }
            let sends = groups.into_values().map(|(descriptor, group)| async move {
                let parts: Vec<Request> = group.iter().map(|(_, r)| r.clone()).collect();
                let anchor = Locate::At(parts[0].span().start);
                let result = self.send_resolving(descriptor, &anchor, parts, txn).await;
                (group, result)
            });
            for (group, result) in join_all(sends).await {
                match result {
                    Ok(response) => {
                        for ((i, _), response) in group.into_iter().zip(response.responses) {
                            responses[i] = Some(response);
                        }
                    }
                    Err(e @ KvError::RangeKeyMismatch { .. }) => {
                        if tokio::time::Instant::now() >= deadline {
                            return Err(e);
                        }
                        pending.extend(group);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        // Span requests, range by range.
        for (i, request) in requests.into_iter().enumerate() {
            match request {
                Request::Scan { span, limit, filter } => {
                    let kind = ScanKind::Forward(filter);
                    responses[i] = Some(self.scan(span, limit, kind, txn).await?)
                }
                Request::ReverseScan { span, limit } => {
                    responses[i] = Some(self.scan(span, limit, ScanKind::Reverse, txn).await?)
                }
                Request::LockingScan { span, limit } => {
                    responses[i] = Some(self.scan(span, limit, ScanKind::Locking, txn).await?)
                }
                request @ (Request::DeleteRange { .. }
                | Request::ResolveIntentRange { .. }
                | Request::Refresh { .. }) => {
                    responses[i] = Some(self.span_request(request, txn).await?)
                }
                _ => {}
            }
        }
        Ok(responses.into_iter().map(|r| r.expect("every request answered")).collect())
    }

    async fn scan(
        &self,
        span: Span,
        limit: Option<u64>,
        kind: ScanKind,
        txn: &TxnUpdates,
    ) -> Result<Response, KvError> {
        let reverse = matches!(kind, ScanKind::Reverse);
        let deadline = tokio::time::Instant::now() + self.deadline;
        let mut rows = Vec::new();
        let mut remaining = span.clone();
        while !remaining.is_empty() {
            let anchor = if reverse {
                Locate::Before(remaining.end.clone())
            } else {
                Locate::At(remaining.start.clone())
            };
            let descriptor = self.locate(&anchor).await?;
            let part = clamp(&remaining, &descriptor);
            let left = limit.map(|l| l.saturating_sub(rows.len() as u64));
            let request = match &kind {
                ScanKind::Forward(filter) => {
                    Request::Scan { span: part.clone(), limit: left, filter: filter.clone() }
                }
                ScanKind::Reverse => Request::ReverseScan { span: part.clone(), limit: left },
                ScanKind::Locking => Request::LockingScan { span: part.clone(), limit: left },
            };
            let response = match self.send_resolving(descriptor, &anchor, vec![request], txn).await
            {
                Ok(response) => response,
                // The range was split: look it up again and re-cut the remaining span.
                Err(KvError::RangeKeyMismatch { .. }) if tokio::time::Instant::now() < deadline => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(Response::Scan { rows: got, resume }) = response.responses.into_iter().next()
            else {
                return Err(KvError::Internal("a scan was answered with another response".into()));
            };
            rows.extend(got);
            if let Some(resume) = resume {
                // The limit stopped the scan inside this range: the rest is the caller's resume.
                let rest = if reverse {
                    Span { start: span.start.clone(), end: resume.end }
                } else {
                    Span { start: resume.start, end: span.end.clone() }
                };
                return Ok(Response::Scan { rows, resume: Some(rest) });
            }
            remaining = if reverse {
                Span { start: remaining.start.clone(), end: part.start }
            } else {
                Span { start: part.end, end: remaining.end.clone() }
            };
            if limit.is_some_and(|l| rows.len() as u64 >= l) && !remaining.is_empty() {
                return Ok(Response::Scan { rows, resume: Some(remaining) });
            }
        }
        Ok(Response::Scan { rows, resume: None })
    }

    /// Sends a span request without a limit or rows (delete-range, intent resolution,
    /// refresh) to every range its span crosses, in order; the response sums the counts the
    /// parts report.
    async fn span_request(&self, request: Request, txn: &TxnUpdates) -> Result<Response, KvError> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        let mut count = 0;
        let mut remaining = request.span();
        while !remaining.is_empty() {
            let anchor = Locate::At(remaining.start.clone());
            let descriptor = self.locate(&anchor).await?;
            let part = clamp(&remaining, &descriptor);
            let piece = match &request {
                Request::DeleteRange { .. } => Request::DeleteRange { span: part.clone() },
                Request::ResolveIntentRange { resolution, .. } => Request::ResolveIntentRange {
                    span: part.clone(),
                    resolution: resolution.clone(),
                },
                Request::Refresh { from, .. } => {
                    Request::Refresh { span: part.clone(), from: *from }
                }
                other => return Err(KvError::Internal(format!("{other:?} is not a span request"))),
            };
            let response = match self.send_resolving(descriptor, &anchor, vec![piece], txn).await {
                Ok(response) => response,
                // The range was split: look it up again and re-cut the remaining span.
                Err(KvError::RangeKeyMismatch { .. }) if tokio::time::Instant::now() < deadline => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(Response::DeleteRange(n) | Response::ResolveIntentRange(n)) =
                response.responses.into_iter().next()
            {
                count += n;
            }
            remaining = Span { start: part.end, end: remaining.end };
        }
        Ok(match request {
            Request::DeleteRange { .. } => Response::DeleteRange(count),
            Request::Refresh { .. } => Response::Refresh,
            _ => Response::ResolveIntentRange(count),
        })
    }

    /// Returns the descriptor of the range holding `key`, from the cache or range 1.
    pub async fn descriptor_for(&self, key: &Key) -> Result<RangeDescriptor, KvError> {
        self.locate(&Locate::At(key.clone())).await
    }

    pub(crate) async fn locate(&self, locate: &Locate) -> Result<RangeDescriptor, KvError> {
        let (key, lookup_span) = match locate {
            Locate::At(key) if is_meta_range_key(key) => return Ok(self.meta_range()),
            Locate::Before(end) if end.as_bytes() <= layout::META_MAX => {
                return Ok(self.meta_range());
            }
            Locate::At(key) => match self.cache.lookup(key) {
                Some(cached) => return Ok(cached.descriptor),
                None => (key, meta_lookup_span(key)),
            },
            Locate::Before(end) => match self.cache.lookup_before(end) {
                Some(cached) => return Ok(cached.descriptor),
                // The first record at or after /Meta/<end> ends at or after `end`.
                None => (
                    end,
                    Span {
                        start: layout::meta_key(end.as_bytes()),
                        end: Key::new(layout::META_MAX),
                    },
                ),
            },
        };
        let lookup = Request::Scan { span: lookup_span, limit: Some(1), filter: None };
        let response = self
            .send_to_range(self.meta_range(), &Locate::At(Key::MIN), vec![lookup], None, None)
            .await?;
        let Some(Response::Scan { rows, .. }) = response.responses.into_iter().next() else {
            return Err(KvError::Internal(
                "a meta lookup was answered with another response".into(),
            ));
        };
        let (_, value) = rows.into_iter().next().ok_or_else(|| {
            KvError::Internal(format!("no range holds {key}: the meta range is incomplete"))
        })?;
        let descriptor = decode_meta_record(&value)?;
        let found = match locate {
            Locate::At(key) => descriptor.contains_key(key.as_bytes()),
            Locate::Before(end) => descriptor.start_key < *end && *end <= descriptor.end_key,
        };
        if !found {
            return Err(KvError::Internal(format!(
                "meta lookup for {key} found range {}",
                descriptor.range_id
            )));
        }
        self.cache.insert(descriptor.clone());
        Ok(descriptor)
    }

    /// Sends requests that all fall in `descriptor`'s range to its leaseholder, retrying on
    /// routing errors until the deadline. `locate` re-finds the range if the descriptor is stale.
    /// The answer, and each replica that turned the batch away, are recorded in `trace`.
    pub(crate) async fn send_to_range(
        &self,
        mut descriptor: RangeDescriptor,
        locate: &Locate,
        requests: Vec<Request>,
        txn: Option<Transaction>,
        trace: Option<&crate::trace::KvTrace>,
    ) -> Result<BatchResponse, KvError> {
        let redirected = || {
            if let Some(trace) = trace {
                trace.redirect();
            }
        };
        let deadline = tokio::time::Instant::now() + self.deadline;
        let mut last_error =
            KvError::Unavailable(format!("no replica of range {} answered", descriptor.range_id));
        loop {
            let leaseholder = self.cache.leaseholder(descriptor.range_id);
            let mut order: Vec<_> = leaseholder.into_iter().collect();
            order.extend(descriptor.replicas.iter().copied().filter(|r| Some(*r) != leaseholder));
            let mut next = 0;
            let mut hints_followed = 0;
            while next < order.len() && tokio::time::Instant::now() < deadline {
                let replica = order[next];
                next += 1;
                let batch = BatchRequest {
                    range_id: descriptor.range_id,
                    requests: requests.clone(),
                    txn: txn.clone(),
                };
                match self.sender.send(replica.node_id, batch).await {
                    Ok(response) => {
                        self.cache.set_leaseholder(descriptor.range_id, replica);
                        if let Some(trace) = trace {
                            trace.batch(descriptor.range_id, replica.node_id);
                        }
                        return Ok(response);
                    }
                    Err(KvError::NotLeaseholder { leaseholder: Some(hint), .. }) => {
                        redirected();
                        self.cache.set_leaseholder(descriptor.range_id, hint);
                        // Bounded: replicas that disagree about the leaseholder must not keep
                        // this loop bouncing between them.
                        if hint != replica && hints_followed < descriptor.replicas.len() {
                            hints_followed += 1;
                            order.insert(next, hint);
                        }
                        last_error = KvError::Unavailable(format!(
                            "range {} is changing leaseholder",
                            descriptor.range_id
                        ));
                    }
                    // The range changed shape (a split): refresh the cache and let the caller
                    // re-cut its requests to the new boundaries.
                    Err(KvError::RangeKeyMismatch { range_id, key, actual }) => {
                        redirected();
                        self.cache.evict(range_id);
                        if let Some(actual) = &actual {
                            self.cache.insert((**actual).clone());
                        }
                        return Err(KvError::RangeKeyMismatch { range_id, key, actual });
                    }
                    // This node has no replica (yet): another replica may.
                    Err(e @ KvError::RangeNotFound(_)) => {
                        redirected();
                        last_error = e
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::Route | ErrorKind::Retry) => {
                        redirected();
                        last_error = e
                    }
                    Err(e) => return Err(e),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(last_error);
            }
            if matches!(last_error, KvError::RangeNotFound(_))
                && descriptor.range_id != self.meta_range().range_id
            {
                self.cache.evict(descriptor.range_id);
                descriptor = Box::pin(self.locate(locate)).await?;
            }
            // An election or lease change is under way; try again shortly.
            tokio::time::sleep(BACKOFF).await;
        }
    }
}

/// Which scan a span is read with, range by range.
enum ScanKind {
    /// [`Request::Scan`], with its pushed filter.
    Forward(Option<shoal_api::scan_filter::ScanFilter>),
    /// [`Request::ReverseScan`].
    Reverse,
    /// [`Request::LockingScan`].
    Locking,
}

/// Returns the part of `span` inside `descriptor`'s range.
fn clamp(span: &Span, descriptor: &RangeDescriptor) -> Span {
    Span {
        start: span.start.clone().max(descriptor.start_key.clone()),
        end: span.end.clone().min(descriptor.end_key.clone()),
    }
}

/// Where to find a range: the one holding a key, or the one holding the keys just below one.
pub(crate) enum Locate {
    At(Key),
    Before(Key),
}
