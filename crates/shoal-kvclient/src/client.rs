//! Typed KV operations over a [`DistSender`].

use shoal_api::{KvError, Request, Response, Value};
use shoal_keys::{Key, Span};

use crate::DistSender;

/// A KV client.
pub struct KvClient {
    sender: DistSender,
}

impl KvClient {
    /// Wraps a [`DistSender`].
    pub fn new(sender: DistSender) -> Self {
        KvClient { sender }
    }

    /// Returns the underlying sender.
    pub fn sender(&self) -> &DistSender {
        &self.sender
    }

    async fn one(&self, request: Request) -> Result<Response, KvError> {
        let mut responses = self.sender.send(vec![request]).await?;
        responses.pop().ok_or_else(|| KvError::Internal("a request got no response".into()))
    }

    /// Reads `key`.
    pub async fn get(&self, key: impl Into<Key>) -> Result<Option<Value>, KvError> {
        match self.one(Request::Get { key: key.into() }).await? {
            Response::Get(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Writes `key`.
    pub async fn put(&self, key: impl Into<Key>, value: impl Into<Value>) -> Result<(), KvError> {
        self.one(Request::Put { key: key.into(), value: value.into() }).await.map(|_| ())
    }

    /// Writes `key` if it currently holds `expected` (`None`: absent).
    pub async fn compare_and_set(
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
    pub async fn increment(&self, key: impl Into<Key>, delta: i64) -> Result<i64, KvError> {
        match self.one(Request::Increment { key: key.into(), delta }).await? {
            Response::Increment(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: impl Into<Key>) -> Result<(), KvError> {
        self.one(Request::Delete { key: key.into() }).await.map(|_| ())
    }

    /// Reads `span` in key order, at most `limit` rows.
    pub async fn scan(&self, span: Span, limit: Option<u64>) -> Result<Vec<(Key, Value)>, KvError> {
        match self.one(Request::Scan { span, limit }).await? {
            Response::Scan { rows, .. } => Ok(rows),
            other => Err(unexpected(other)),
        }
    }

    /// Reads `span` in reverse key order, at most `limit` rows.
    pub async fn reverse_scan(
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

fn unexpected(response: Response) -> KvError {
    KvError::Internal(format!("unexpected response {response:?}"))
}
