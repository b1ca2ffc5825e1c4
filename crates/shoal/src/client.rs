//! A client of one node's HTTP API, for the commands that inspect or drive a cluster.
//!
//! It talks to exactly the node named by `--host` and never to another: when that node is
//! down the command says so, rather than quietly asking someone else.

use std::time::Duration;

use serde_json::{Value, json};

/// Why a command failed, worded for the person who ran it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered at the address.
    #[error(
        "cannot reach the node at {host}: {reason} (is it running, and is --host its --http-addr?)"
    )]
    Unreachable {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The node answered with an error.
    #[error("{message} [{code}, HTTP {status}]")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// The message.
        message: String,
        /// The whole answer.
        body: Value,
    },
    /// The node answered something that is not the API's JSON.
    #[error("the node at {host} answered something unexpected: {reason}")]
    Protocol {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

/// A client of the node at one host.
#[derive(Clone)]
pub struct NodeClient {
    host: String,
    http: reqwest::Client,
}

/// How long one request may take: longer than a node's own bound on a write (it answers
/// "ambiguous" when that passes), so a slow cluster is reported by the node, not guessed at here.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl NodeClient {
    /// Returns a client of the node whose HTTP API listens at `host` (`HOST:PORT`).
    pub fn new(host: &str) -> Self {
        let host = host.trim_start_matches("http://").trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(1024)
            .build()
            .expect("a client with plain settings builds");
        NodeClient { host, http }
    }

    /// POSTs `body` to `path` and returns the JSON answer.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        let request = self.http.post(format!("http://{}{path}", self.host)).json(&body);
        self.finish(request).await
    }

    /// PUTs `body` to `path` and returns the JSON answer.
    pub async fn put(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        let request = self.http.put(format!("http://{}{path}", self.host)).json(&body);
        self.finish(request).await
    }

    /// GETs `path` and returns the JSON answer.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.finish(self.http.get(format!("http://{}{path}", self.host))).await
    }

    async fn finish(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            host: self.host.clone(),
            reason: describe(&e),
        })?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| ClientError::Protocol { host: self.host.clone(), reason: describe(&e) })?;
        if status.is_success() {
            return Ok(body);
        }
        let field = |name: &str| body["error"][name].as_str().unwrap_or("unknown").to_string();
        Err(ClientError::Api {
            status: status.as_u16(),
            code: field("code"),
            message: field("message"),
            body,
        })
    }

    /// Reads `key`.
    pub async fn kv_get(&self, key: &str, encoding: &str) -> Result<Option<Value>, ClientError> {
        let answer = self.post("/v1/kv/get", json!({"key": key, "encoding": encoding})).await?;
        Ok(Some(answer["value"].clone()).filter(|v| !v.is_null()))
    }

    /// Writes `key`.
    pub async fn kv_put(&self, key: &str, value: &str, encoding: &str) -> Result<(), ClientError> {
        let body = json!({"key": key, "value": value, "encoding": encoding});
        self.post("/v1/kv/put", body).await.map(|_| ())
    }
}

/// The innermost cause of a request failure ("connection refused", "operation timed out").
fn describe(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    if error.is_timeout() {
        format!("no answer within {REQUEST_TIMEOUT:?}")
    } else {
        source.to_string()
    }
}
