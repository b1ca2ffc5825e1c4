//! How a session hands a statement's rows to its client: streamed as they are produced, with
//! a small held-back buffer that keeps automatic retries possible.
//!
//! ```text
//!   scan pages ─▶ operators ─▶ held back (≤ buffer rows) ─▶ RowSink (pgwire, HTTP, tests)
//!                                   │ overflow: sent now; from here on the statement
//!                                   │ cannot be retried by the server
//!                                   └ at the end: sent after the implicit commit
//! ```
//!
//! A statement outside BEGIN is retried by the session on 40001 ([`super::session`]), but a
//! retry must not repeat rows the client already has. So, as CockroachDB does with its
//! `results_buffer_size`, the session holds back the first rows: a result that fits in the
//! buffer reaches the client only after its transaction committed, and can be retried any
//! number of times; a larger one streams, and a restart after its first rows went out
//! reaches the client as 40001. Memory is bounded by the buffer plus the scan's page, not by
//! the result, except where an operator must see everything (sort, aggregation, DISTINCT,
//! the right side of a join).
//!
//! # Hazards
//!
//! A sink that blocks (a slow client) holds the transaction open, and with it its intents
//! and its place in others' conflict checks, as in any database that streams.

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::Result;
use crate::exec::{Row, Rows};
use crate::plan::Column;
use crate::session::Output;

/// How many rows a session holds back before streaming them (see the module comment).
pub const RESULT_BUFFER_ROWS: usize = 256;

/// Where a statement's rows go, in order, as they are produced.
pub trait RowSink: Send {
    /// Takes the next rows of a result whose columns are `columns`. Called at least once per
    /// result (with no rows when it is empty). An error (the client went away) stops the
    /// statement and rolls back its implicit transaction.
    fn send(
        &mut self,
        columns: &[Column],
        rows: Vec<Row>,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

/// A sink that keeps every row: what [`super::Session::execute_parsed`] returns.
#[derive(Debug, Default)]
pub struct CollectRows {
    /// The rows received.
    pub rows: Vec<Row>,
}

impl RowSink for CollectRows {
    async fn send(&mut self, _: &[Column], rows: Vec<Row>) -> Result<()> {
        self.rows.extend(rows);
        Ok(())
    }
}

/// What running a statement produced: an output, or rows still to be pulled.
pub(crate) enum Executed {
    /// Finished.
    Output(Output),
    /// Rows to stream.
    Rows {
        /// Their columns.
        columns: Vec<Column>,
        /// The rows, pulled from the plan as they are sent.
        rows: Rows,
    },
}

/// Pulls `executed`'s rows into `sink`, holding back up to `buffer_rows` of them: returns the
/// statement's output and the rows held back, which [`finish`] sends. Sets `*streamed` once a
/// row went out.
pub(crate) async fn deliver<S: RowSink>(
    executed: Executed,
    sink: &mut S,
    buffer_rows: usize,
    streamed: &mut bool,
) -> Result<(Output, Vec<Row>)> {
    let (columns, mut rows) = match executed {
        Executed::Output(Output::Rows { columns, rows }) => {
            (columns, stream::iter(rows.into_iter().map(Ok)).boxed())
        }
        Executed::Output(output) => return Ok((output, Vec::new())),
        Executed::Rows { columns, rows } => (columns, rows),
    };
    let mut held = Vec::new();
    let mut count = 0u64;
    while let Some(row) = rows.try_next().await? {
        held.push(row);
        count += 1;
        if held.len() > buffer_rows {
            *streamed = true;
            sink.send(&columns, std::mem::take(&mut held)).await?;
        }
    }
    Ok((Output::Streamed { columns, count }, held))
}

/// Sends the rows [`deliver`] held back (and, for an empty result, the columns).
pub(crate) async fn finish<S: RowSink>(
    sink: &mut S,
    output: &Output,
    held: Vec<Row>,
    streamed: bool,
) -> Result<()> {
    match output {
        Output::Streamed { columns, .. } if !held.is_empty() || !streamed => {
            sink.send(columns, held).await
        }
        _ => Ok(()),
    }
}
