//! Typed KV operations over a [`DistSender`], alone or inside a transaction.

use std::sync::Arc;

use shoal_api::{KvError, Request, Response, Value};
use shoal_hlc::Clock;
use shoal_keys::{Key, Span};

use crate::DistSender;

/// A KV client.
#[derive(Clone)]
pub struct KvClient {
    pub(crate) sender: Arc<DistSender>,
    pub(crate) clock: Arc<Clock>,
    /// TESTING ONLY, UNSAFE: transactions skip read refresh (see
    /// [`KvClient::with_unsafe_skip_refresh`]).
    pub(crate) unsafe_skip_refresh: bool,
}

impl KvClient {
    /// Wraps a [`DistSender`]; `clock` (the node's) gives transactions their timestamps.
    pub fn new(sender: DistSender, clock: Arc<Clock>) -> Self {
        KvClient { sender: Arc::new(sender), clock, unsafe_skip_refresh: false }
    }

    /// TESTING ONLY, UNSAFE: with `on`, a transaction whose timestamp moved commits at the
    /// new timestamp without checking that what it read is unchanged there, which breaks
    /// serializability (write skew, read skew). It exists so the Jepsen harness can show its
    /// list-append checker catches exactly that.
    pub fn with_unsafe_skip_refresh(mut self, on: bool) -> Self {
        self.unsafe_skip_refresh = on;
        self
    }

    /// Reads this node's clock.
    pub fn now(&self) -> shoal_hlc::Timestamp {
        self.clock.now()
    }

    /// Returns the underlying sender.
    pub fn sender(&self) -> &DistSender {
        &self.sender
    }
}

impl KvOps for KvClient {
    /// Sends the batch. The node's clock takes in the timestamp the ranges evaluated at, so
    /// anything this node starts afterwards is ordered after the batch.
    async fn send(&self, requests: Vec<Request>) -> Result<Vec<Response>, KvError> {
        let (responses, ts) = self.sender.send_timestamped(requests).await?;
        let _ = self.clock.update(ts);
        Ok(responses)
    }
}

/// Typed operations on anything that sends batches: the [`KvClient`] (each batch on its
/// own) or a [`crate::txn::Txn`] (every batch in the transaction).
#[allow(async_fn_in_trait)]
pub trait KvOps {
    /// Sends a batch, returning one response per request.
    async fn send(&self, requests: Vec<Request>) -> Result<Vec<Response>, KvError>;

    /// Sends one request.
    async fn one(&self, request: Request) -> Result<Response, KvError> {
        let mut responses = self.send(vec![request]).await?;
        responses.pop().ok_or_else(|| KvError::Internal("a request got no response".into()))
    }

    /// Reads `key`.
    async fn get(&self, key: impl Into<Key>) -> Result<Option<Value>, KvError> {
        match self.one(Request::Get { key: key.into() }).await? {
            Response::Get(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Writes `key`.
    async fn put(&self, key: impl Into<Key>, value: impl Into<Value>) -> Result<(), KvError> {
        self.one(Request::Put { key: key.into(), value: value.into() }).await.map(|_| ())
    }

    /// Writes `key` if it currently holds `expected` (`None`: absent).
    async fn compare_and_set(
        &self,
        key: impl Into<Key>,
        expected: Option<Value>,
        value: impl Into<Value>,
    ) -> Result<(), KvError> {
        self.one(Request::ConditionalPut { key: key.into(), value: value.into(), expected })
            .await
            .map(|_| ())
    }

    /// Adds `delta` to the integer counter at `key` (absent counts as 0); returns the new value.
    async fn increment(&self, key: impl Into<Key>, delta: i64) -> Result<i64, KvError> {
        match self.one(Request::Increment { key: key.into(), delta }).await? {
            Response::Increment(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes `key`.
    async fn delete(&self, key: impl Into<Key>) -> Result<(), KvError> {
        self.one(Request::Delete { key: key.into() }).await.map(|_| ())
    }

    /// Reads `span` in key order, at most `limit` rows.
    async fn scan(&self, span: Span, limit: Option<u64>) -> Result<Vec<(Key, Value)>, KvError> {
        match self.one(Request::Scan { span, limit, filter: None }).await? {
            Response::Scan { rows, .. } => Ok(rows),
            other => Err(unexpected(other)),
        }
    }

    /// Reads `span` in reverse key order, at most `limit` rows.
    async fn reverse_scan(
        &self,
        span: Span,
        limit: Option<u64>,
    ) -> Result<Vec<(Key, Value)>, KvError> {
        match self.one(Request::ReverseScan { span, limit }).await? {
            Response::Scan { rows, .. } => Ok(rows),
            other => Err(unexpected(other)),
        }
    }
}

/// The error of a response of the wrong kind.
fn unexpected(response: Response) -> KvError {
    KvError::Internal(format!("unexpected response {response:?}"))
}
