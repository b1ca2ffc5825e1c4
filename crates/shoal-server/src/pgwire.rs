//! The PostgreSQL wire protocol: `psql` and PostgreSQL drivers talk to any node.
//!
//! ```text
//!   psql -h 127.0.0.1 -p 26258 -d defaultdb
//!     Startup{user, database} ─▶ AuthenticationOk, ParameterStatus…, BackendKeyData, ReadyForQuery I
//!     Query "BEGIN; SELECT …"  ─▶ CommandComplete BEGIN
//!                                 RowDescription, DataRow… (streamed), CommandComplete SELECT n
//!                                 ReadyForQuery T
//! ```
//!
//! Each connection is one [`Session`]: it lives as long as the connection, so a transaction
//! may span many queries, and a connection that goes away rolls its transaction back (the
//! session's drop). The startup's `database` becomes the session's current database; one that
//! does not exist is refused with FATAL 3D000, as PostgreSQL does. There is no
//! authentication yet: any user is accepted.
//!
//! A simple query may hold several statements; they run in order and the first error stops
//! the rest. Rows go out as the plan produces them (the session's [`RowSink`]), behind the
//! session's held-back buffer, so a large result never sits whole in this node's memory.
//! Values are sent in PostgreSQL's text format; the column types in RowDescription are the
//! PostgreSQL types a driver expects (INT8, NUMERIC, TIMESTAMPTZ …). ReadyForQuery reports
//! the session's transaction state: idle, in a transaction, or failed.
//!
//! The extended query protocol (placeholders, binary values) is in [`crate::pgwire_extended`].
//!
//! # Out of scope (for now)
//!
//! A cancel request (on a connection of its own, with the process id and secret key the
//! connection got at startup) stops the statement that connection is running with 57014.
//! A client that closes its connection while a statement runs stops it the same way
//! (`cancel_on_disconnect`), so abandoned queries do not keep computing.
//!
//! TLS (an SSLRequest gets `N`, so clients fall back to plain text), authentication and COPY.
//! A simple query's statements each run in their own implicit transaction (PostgreSQL runs a
//! multi-statement query in one).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::Format;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldInfo, Response, Tag};
use pgwire::api::{
    ClientInfo, ClientPortalStore, METADATA_DATABASE, PgWireConnectionState, PgWireServerHandlers,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::data::RowDescription;
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use shoal_sql::exec::Row;
use shoal_sql::plan::Column;
use shoal_sql::{DataType, Output, RowSink, Session, SqlEngine, SqlError};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};

use crate::pgwire_extended::{Parser, encode_row, field_infos};
use crate::server::Server;

/// The server version reported to clients: the PostgreSQL whose behaviour Shoal follows
/// (psql adapts its catalog queries to it).
const SERVER_VERSION: &str = "15.0 (Shoal)";

/// Accepts PostgreSQL connections on `listener` until `stop` turns true, then ends every
/// connection it accepted and returns once they are gone.
pub(crate) async fn serve(
    listener: TcpListener,
    server: Server,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let cancels = Arc::new(Cancels::default());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // Reaps finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let Ok((socket, _)) = accepted else { continue };
        let _ = socket.set_nodelay(true);
        let engine = server.cluster().map(|c| c.sql.clone());
        let cancels = cancels.clone();
        // A second handle on the socket, to notice the client going away mid-statement.
        let Ok((socket, watched)) = split_watch(socket) else { continue };
        connections.spawn(async move {
            let connection = Arc::new(Connection::new(engine, cancels.clone()));
            let handlers = Arc::new(Handlers { connection: connection.clone(), cancels });
            let watcher = tokio::spawn(cancel_on_disconnect(watched, connection.clone()));
            if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                tracing::debug!(error = %e, "pgwire connection ended with an error");
            }
            watcher.abort();
            connection.unregister();
        });
    }
    // Aborting a connection drops its session (an open transaction is abandoned, as when the
    // client disconnects) and closes its socket.
    connections.shutdown().await;
}

/// The socket, and a duplicate of it that only peeks ([`cancel_on_disconnect`]).
fn split_watch(
    socket: tokio::net::TcpStream,
) -> std::io::Result<(tokio::net::TcpStream, tokio::net::TcpStream)> {
    let socket = socket.into_std()?;
    let watched = socket.try_clone()?;
    Ok((tokio::net::TcpStream::from_std(socket)?, tokio::net::TcpStream::from_std(watched)?))
}

/// How long the watcher waits before peeking again when the client has sent bytes the
/// session has not read yet (its next message, while a statement runs).
const PEEK_AGAIN: std::time::Duration = std::time::Duration::from_millis(50);

/// Cancels the connection's running statement once the client has closed its end, so that a
/// client that gives up (or retries) leaves no work behind: while a statement computes,
/// nobody reads the socket, and the session would not notice until it next wrote. Peeking
/// never takes bytes from the protocol handler.
async fn cancel_on_disconnect(socket: tokio::net::TcpStream, connection: Arc<Connection>) {
    let mut byte = [0u8; 1];
    loop {
        match socket.peek(&mut byte).await {
            Ok(0) | Err(_) => {
                connection.cancel_statement();
                return;
            }
            // Unread bytes wake the peek at once until they are read: wait rather than spin.
            Ok(_) => tokio::time::sleep(PEEK_AGAIN).await,
        }
    }
}

/// What one connection's handlers share.
struct Handlers {
    connection: Arc<Connection>,
    cancels: Arc<Cancels>,
}

/// The node's connections by the process id and secret key each got at startup, so that a
/// cancel request, which comes on a connection of its own, reaches the right session.
#[derive(Default)]
struct Cancels {
    /// Node-wide, so process ids are unique on the node.
    keys: RandomPidSecretKeyGenerator,
    connections: std::sync::Mutex<HashMap<i32, (SecretKey, watch::Sender<u64>)>>,
}

#[async_trait]
impl CancelHandler for Cancels {
    /// Cancels the statement the connection runs, if the key matches (PostgreSQL, too, says
    /// nothing back either way).
    async fn on_cancel_request(&self, request: CancelRequest) {
        let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((key, signal)) = connections.get(&request.pid)
            // The cancel connection may decode the same 4-byte key as bytes, not an i32.
            && key.eq_value(&request.secret_key)
        {
            signal.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.connection.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.connection.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.connection.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancels.clone()
    }
}

/// One client connection: its session, once started up.
pub(crate) struct Connection {
    /// None while this node has not joined a cluster: connections are refused.
    engine: Option<Arc<SqlEngine>>,
    /// Shared with [`Connection::parser`], which prepares statements in it.
    pub(crate) session: Arc<Mutex<Option<Session>>>,
    pub(crate) parser: Arc<Parser>,
    parameters: DefaultServerParameterProvider,
    cancels: Arc<Cancels>,
    /// The process id it got at startup, under which [`Cancels`] knows it.
    pid: std::sync::Mutex<Option<i32>>,
}

impl Connection {
    fn new(engine: Option<Arc<SqlEngine>>, cancels: Arc<Cancels>) -> Self {
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.to_string();
        parameters.date_style = "ISO, MDY".to_string();
        let session = Arc::new(Mutex::new(None));
        Connection {
            engine,
            parser: Arc::new(Parser { session: session.clone() }),
            session,
            parameters,
            cancels,
            pid: std::sync::Mutex::new(None),
        }
    }

    /// Cancels the statement the connection runs, if any, as a cancel request would.
    fn cancel_statement(&self) {
        let Some(pid) = *self.pid.lock().unwrap_or_else(|p| p.into_inner()) else { return };
        if let Some((_, signal)) =
            self.cancels.connections.lock().unwrap_or_else(|p| p.into_inner()).get(&pid)
        {
            signal.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Forgets the connection's cancel key: it has closed.
    fn unregister(&self) {
        if let Some(pid) = self.pid.lock().unwrap_or_else(|p| p.into_inner()).take() {
            self.cancels.connections.lock().unwrap_or_else(|p| p.into_inner()).remove(&pid);
        }
    }
}

/// A FATAL error: the connection closes after it.
fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), code.into(), message)))
}

/// A statement's error as PostgreSQL sends it.
pub(crate) fn error_info(error: &SqlError) -> ErrorInfo {
    ErrorInfo::new("ERROR".into(), error.sqlstate().into(), error.to_string())
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(startup) = message else { return Ok(()) };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);
        let Some(engine) = &self.engine else {
            return Err(fatal("57P03", "this node has not joined a cluster yet".into()));
        };
        let mut session = engine.session();
        if let Some(database) = client.metadata().get(METADATA_DATABASE).cloned() {
            let quoted = database.replace('\'', "''");
            if let Err(e) = session.execute(&format!("SET DATABASE = '{quoted}'")).await {
                return Err(fatal(e.sqlstate(), e.to_string()));
            }
        }
        let (pid, key) = self.cancels.keys.generate(client);
        let (signal, cancelled) = watch::channel(0);
        session.set_cancel_signal(cancelled);
        *self.session.lock().await = Some(session);
        self.cancels
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid, (key.clone(), signal));
        *self.pid.lock().unwrap_or_else(|p| p.into_inner()) = Some(pid);
        client.set_pid_and_secret_key(pid, key);
        finish_authentication(client, &self.parameters).await
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    /// Runs the query's statements in the connection's session, streaming rows as they come.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else {
            return Err(fatal("08P01", "query before startup".into()));
        };
        match shoal_sql::syntax::parse(&query.query) {
            Err(e) => {
                client.feed(PgWireBackendMessage::ErrorResponse(error_info(&e).into())).await?
            }
            Ok(statements) if statements.is_empty() => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new()))
                    .await?
            }
            Ok(statements) => {
                for statement in &statements {
                    let mut sink = ClientSink::new(&mut *client, None);
                    let result = session.execute_into(statement, &mut sink).await;
                    let described = sink.described;
                    match result {
                        Ok(output) => complete(client, output, described).await?,
                        Err(e) => {
                            let error = error_info(&e).into();
                            client.feed(PgWireBackendMessage::ErrorResponse(error)).await?;
                            break;
                        }
                    }
                }
            }
        }
        let status = transaction_status(session);
        drop(guard);
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        Ok(())
    }

    /// Never called: [`SimpleQueryHandler::on_query`] above runs queries itself.
    async fn do_query<C>(&self, _: &mut C, _: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Err(PgWireError::ApiError("queries run through on_query".into()))
    }
}

/// The session's transaction state, as ReadyForQuery reports it.
pub(crate) fn transaction_status(session: &Session) -> TransactionStatus {
    if session.transaction_failed() {
        TransactionStatus::Error
    } else if session.in_transaction() {
        TransactionStatus::Transaction
    } else {
        TransactionStatus::Idle
    }
}

/// Sends a statement's CommandComplete (and a RowDescription if no rows described it).
pub(crate) async fn complete<C>(client: &mut C, output: Output, described: bool) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let tag = match output {
        Output::Streamed { columns, count } => {
            if !described {
                let description = row_description(&columns)?;
                client.feed(PgWireBackendMessage::RowDescription(description)).await?;
            }
            Tag::new("SELECT").with_rows(count as usize)
        }
        // `execute_into` streams every result; a collected one would be a bug.
        Output::Rows { .. } => {
            return Err(PgWireError::ApiError("a result was collected, not streamed".into()));
        }
        Output::Affected { tag: "INSERT", count } => {
            Tag::new("INSERT").with_oid(0).with_rows(count as usize)
        }
        Output::Affected { tag, count } => Tag::new(tag).with_rows(count as usize),
        Output::Done(tag) => Tag::new(tag),
    };
    client.feed(PgWireBackendMessage::CommandComplete(tag.into())).await?;
    Ok(())
}

/// Writes a result's rows to the client as the session produces them.
pub(crate) struct ClientSink<'a, C> {
    client: &'a mut C,
    /// Whether the rows were described already (the extended protocol's Describe did, or the
    /// first batch sent a RowDescription).
    pub(crate) described: bool,
    /// The columns' descriptions with their formats; text ones from the first batch if None.
    fields: Option<Arc<Vec<FieldInfo>>>,
}

impl<'a, C> ClientSink<'a, C> {
    pub(crate) fn new(client: &'a mut C, fields: Option<Arc<Vec<FieldInfo>>>) -> Self {
        ClientSink { client, described: false, fields }
    }
}

impl<C> RowSink for ClientSink<'_, C>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
{
    async fn send(&mut self, columns: &[Column], rows: Vec<Row>) -> shoal_sql::Result<()> {
        let gone = |e: C::Error| SqlError::Cancelled(format!("the client went away: {e:?}"));
        let fields = match &self.fields {
            Some(fields) if fields.len() == columns.len() => fields.clone(),
            _ => {
                let text = field_infos(columns, &Format::UnifiedText)
                    .map_err(|e| SqlError::Internal(format!("describing columns: {e}")))?;
                self.fields.insert(Arc::new(text)).clone()
            }
        };
        if !self.described {
            self.described = true;
            let description = RowDescription::new(fields.iter().map(Into::into).collect());
            self.client
                .feed(PgWireBackendMessage::RowDescription(description))
                .await
                .map_err(gone)?;
        }
        let mut encoder = DataRowEncoder::new(fields.clone());
        for row in rows {
            encode_row(&mut encoder, &fields, row)?;
            self.client
                .feed(PgWireBackendMessage::DataRow(encoder.take_row()))
                .await
                .map_err(gone)?;
        }
        Ok(())
    }
}

fn row_description(columns: &[Column]) -> PgWireResult<RowDescription> {
    let fields = field_infos(columns, &Format::UnifiedText)?;
    Ok(RowDescription::new(fields.iter().map(Into::into).collect()))
}

/// The PostgreSQL type of a column (TEXT when unknown, as for a NULL literal).
pub(crate) fn pg_type(data_type: Option<DataType>) -> Type {
    match data_type {
        Some(DataType::Int(2)) => Type::INT2,
        Some(DataType::Int(4)) => Type::INT4,
        Some(DataType::Int(_)) => Type::INT8,
        Some(DataType::Float(4)) => Type::FLOAT4,
        Some(DataType::Float(_)) => Type::FLOAT8,
        Some(DataType::Decimal(_)) => Type::NUMERIC,
        Some(DataType::Text) | None => Type::TEXT,
        Some(DataType::Varchar(_)) => Type::VARCHAR,
        Some(DataType::Char(_)) => Type::BPCHAR,
        Some(DataType::Bool) => Type::BOOL,
        Some(DataType::Bytes) => Type::BYTEA,
        Some(DataType::Timestamp) => Type::TIMESTAMP,
        Some(DataType::TimestampTz) => Type::TIMESTAMPTZ,
        Some(DataType::Date) => Type::DATE,
    }
}
