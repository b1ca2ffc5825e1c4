//! The extended query protocol: Parse, Bind, Describe, Execute and Sync, with typed values.
//!
//! ```text
//!   Parse  "UPDATE kv SET v = $2 WHERE k = $1"  ─▶ ParseComplete      (Session::prepare)
//!   Describe S                                  ─▶ ParameterDescription [INT8, INT8], NoData
//!   Bind   [00 00 00 00 00 00 00 07 (binary INT8), "42" (text)]  ─▶ BindComplete
//!   Execute                                     ─▶ CommandComplete UPDATE 1
//!   Sync                                        ─▶ ReadyForQuery I
//! ```
//!
//! This is what drivers use (tokio-postgres, JDBC, pgx, psycopg 3): a statement is parsed
//! and typed once ([`shoal_sql::params`]), then run with values. A value comes in text, read
//! as the parameter's type when the statement runs, or in PostgreSQL's binary format, decoded
//! here; rows go out in the format each column asks for. Every Execute runs in the session
//! like a simple query's statement: in the open transaction, or in its own implicit one.
//!
//! An Execute with a row limit (a driver fetching in batches) runs the statement to the end,
//! keeps its rows in the portal and hands them out a batch at a time (PortalSuspended between
//! batches). Without a limit, rows stream to the socket as they are produced.
//!
//! After an error the connection skips messages until Sync (pgwire's AwaitingSync state), and
//! ReadyForQuery reports the session's real transaction state.
//!
//! # Hazards
//!
//! Format-code lists come from the client: one whose length matches neither 1 nor the number
//! of values or columns is a protocol violation (08P01), checked here before pgwire's
//! `Format::format_for` would index past its end.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use futures::{Sink, SinkExt};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::Execute;
use pgwire::messages::response::EmptyQueryResponse;
use rust_decimal::Decimal;
use shoal_sql::exec::Row;
use shoal_sql::plan::Column;
use shoal_sql::session_results::CollectRows;
use shoal_sql::{DataType, Output, Prepared, Session, SqlError, Value};
use tokio::sync::Mutex;

use crate::pgwire::{ClientSink, Connection, complete, error_info, pg_type, transaction_status};

/// Prepares statements in the connection's session.
pub(crate) struct Parser {
    pub(crate) session: Arc<Mutex<Option<Session>>>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let declared = types
            .iter()
            .map(|t| t.as_ref().map_or(Ok(None), data_type))
            .collect::<Result<Vec<_>, _>>()?;
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else { return Err(not_started()) };
        session.prepare(sql, &declared).await.map(Some).map_err(user_error)
    }

    fn get_parameter_types(&self, statement: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(statement.param_types.iter().map(|t| pg_type(Some(*t))).collect())
    }

    fn get_result_schema(
        &self,
        statement: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &statement.columns {
            Some(columns) => field_infos(columns, format.unwrap_or(&Format::UnifiedText)),
            None => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    /// Runs a bound portal in the session; see the module docs.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) => portal,
            // Empty and unknown portals, as pgwire answers them.
            _ => return self._on_execute(client, message).await,
        };
        if !matches!(*portal.state().lock().await, PortalExecutionState::Initial) {
            // A suspended portal: the next batch of its kept rows.
            return self._on_execute(client, message).await;
        }
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let prepared = &portal.statement.statement;
        let params = parameters(&portal, prepared)?;
        let fields = match &prepared.columns {
            Some(columns) => Some(Arc::new(field_infos(columns, &portal.result_column_format)?)),
            None => None,
        };
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else { return Err(not_started()) };
        if message.max_rows > 0 && prepared.returns_rows() {
            let mut rows = CollectRows::default();
            let result = session.execute_prepared_into(prepared, &params, &mut rows).await;
            client.set_transaction_status(transaction_status(session));
            drop(guard);
            client.set_state(PgWireConnectionState::ReadyForQuery);
            let (Output::Streamed { columns, .. } | Output::Rows { columns, .. }) =
                result.map_err(user_error)?
            else {
                return Err(PgWireError::ApiError("rows were described but none came".into()));
            };
            let fields = match fields {
                Some(fields) if fields.len() == columns.len() => fields,
                _ => Arc::new(field_infos(&columns, &portal.result_column_format)?),
            };
            let mut encoder = DataRowEncoder::new(fields.clone());
            let mut encoded = Vec::with_capacity(rows.rows.len());
            for row in rows.rows {
                encode_row(&mut encoder, &fields, row).map_err(user_error)?;
                encoded.push(Ok(encoder.take_row()));
            }
            let response = QueryResponse::new(fields, futures::stream::iter(encoded));
            portal.start(response).await;
            return self._on_execute(client, message).await;
        }
        let mut sink = ClientSink::new(&mut *client, fields);
        sink.described = true;
        let result = session.execute_prepared_into(prepared, &params, &mut sink).await;
        let status = transaction_status(session);
        drop(guard);
        client.set_transaction_status(status);
        client.set_state(PgWireConnectionState::ReadyForQuery);
        match result {
            Ok(Output::Done("")) => {
                let empty = PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new());
                client.feed(empty).await?;
            }
            Ok(output) => complete(client, output, true).await?,
            Err(e) => return Err(user_error(e)),
        }
        *portal.state().lock().await = PortalExecutionState::Finished;
        Ok(())
    }

    /// Never called: [`ExtendedQueryHandler::on_execute`] above runs portals itself.
    async fn do_query<C>(
        &self,
        _client: &mut C,
        _portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Err(PgWireError::ApiError("portals run through on_execute".into()))
    }
}

fn user_error(e: SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

fn protocol(message: String) -> PgWireError {
    user_error(SqlError::ProtocolViolation(message))
}

fn not_started() -> PgWireError {
    protocol("a message before startup".into())
}

/// The format of value `i` of `count` under `format`; 08P01 for a list of the wrong length
/// or an unknown code.
fn format_at(format: &Format, i: usize, count: usize) -> PgWireResult<FieldFormat> {
    match format {
        Format::UnifiedText => Ok(FieldFormat::Text),
        Format::UnifiedBinary => Ok(FieldFormat::Binary),
        Format::Individual(codes) if codes.len() != count => {
            Err(protocol(format!("{} format codes given for {count} values", codes.len())))
        }
        Format::Individual(codes) => match codes[i] {
            0 => Ok(FieldFormat::Text),
            1 => Ok(FieldFormat::Binary),
            code => Err(protocol(format!("unsupported format code: {code}"))),
        },
    }
}

/// The descriptions of `columns`, each in the format the client asked for.
pub(crate) fn field_infos(columns: &[Column], format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let format = format_at(format, i, columns.len())?;
            Ok(FieldInfo::new(c.name.clone(), None, None, pg_type(c.data_type), format))
        })
        .collect()
}

/// The Shoal type a client names by its PostgreSQL type; None (infer it) for `unknown`.
fn data_type(t: &Type) -> PgWireResult<Option<DataType>> {
    Ok(Some(match *t {
        Type::UNKNOWN => return Ok(None),
        Type::INT2 => DataType::Int(2),
        Type::INT4 => DataType::Int(4),
        Type::INT8 => DataType::Int(8),
        Type::FLOAT4 => DataType::Float(4),
        Type::FLOAT8 => DataType::Float(8),
        Type::NUMERIC => DataType::Decimal(None),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DataType::Text,
        Type::BOOL => DataType::Bool,
        Type::BYTEA => DataType::Bytes,
        Type::TIMESTAMP => DataType::Timestamp,
        Type::TIMESTAMPTZ => DataType::TimestampTz,
        Type::DATE => DataType::Date,
        ref other => {
            return Err(user_error(SqlError::NotSupported(format!("parameters of type {other}"))));
        }
    }))
}

/// The portal's values, each as its parameter's type (binary) or as text to be read as it.
fn parameters(portal: &Portal<Prepared>, prepared: &Prepared) -> PgWireResult<Vec<Value>> {
    let count = portal.parameters.len();
    if count != prepared.param_types.len() {
        return Err(protocol(format!(
            "bind message supplies {count} parameters, but prepared statement requires {}",
            prepared.param_types.len()
        )));
    }
    let mut values = Vec::with_capacity(count);
    for (i, (raw, data_type)) in portal.parameters.iter().zip(&prepared.param_types).enumerate() {
        let format = format_at(&portal.parameter_format, i, count)?;
        let value = match (raw, format) {
            (None, _) => Value::Null,
            (Some(bytes), FieldFormat::Text) => match std::str::from_utf8(bytes) {
                Ok(text) => Value::Text(text.to_string()),
                Err(_) => {
                    return Err(user_error(SqlError::InvalidText(format!(
                        "parameter ${} is not valid UTF-8",
                        i + 1
                    ))));
                }
            },
            (Some(_), FieldFormat::Binary) => binary_parameter(portal, i, data_type)?,
        };
        values.push(value);
    }
    Ok(values)
}

/// Decodes binary parameter `i` as `data_type`.
fn binary_parameter(
    portal: &Portal<Prepared>,
    i: usize,
    data_type: &DataType,
) -> PgWireResult<Value> {
    let t = pg_type(Some(*data_type));
    let bad = |e: PgWireError| {
        user_error(SqlError::FunctionArgument {
            code: "22P03",
            message: format!("incorrect binary data format in bind parameter {}: {e}", i + 1),
        })
    };
    let value = match data_type {
        DataType::Int(2) => portal.parameter::<i16>(i, &t).map(|v| v.map(|v| Value::Int(v.into()))),
        DataType::Int(4) => portal.parameter::<i32>(i, &t).map(|v| v.map(|v| Value::Int(v.into()))),
        DataType::Int(_) => portal.parameter::<i64>(i, &t).map(|v| v.map(Value::Int)),
        DataType::Float(4) => {
            portal.parameter::<f32>(i, &t).map(|v| v.map(|v| Value::Float(v.into())))
        }
        DataType::Float(_) => portal.parameter::<f64>(i, &t).map(|v| v.map(Value::Float)),
        DataType::Decimal(_) => portal.parameter::<Decimal>(i, &t).map(|v| v.map(Value::Decimal)),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => {
            portal.parameter::<String>(i, &t).map(|v| v.map(Value::Text))
        }
        DataType::Bool => portal.parameter::<bool>(i, &t).map(|v| v.map(Value::Bool)),
        DataType::Bytes => portal.parameter::<Vec<u8>>(i, &t).map(|v| v.map(Value::Bytes)),
        DataType::Timestamp => portal
            .parameter::<NaiveDateTime>(i, &t)
            .map(|v| v.map(|v| Value::Timestamp(v.and_utc().timestamp_micros()))),
        DataType::TimestampTz => portal
            .parameter::<DateTime<FixedOffset>>(i, &t)
            .map(|v| v.map(|v| Value::TimestampTz(v.timestamp_micros()))),
        DataType::Date => portal.parameter::<NaiveDate>(i, &t).map(|v| {
            v.map(|v| Value::Date((v - DateTime::UNIX_EPOCH.date_naive()).num_days() as i32))
        }),
    };
    Ok(value.map_err(bad)?.unwrap_or(Value::Null))
}

/// Encodes one row, each value in its column's type and format.
pub(crate) fn encode_row(
    encoder: &mut DataRowEncoder,
    fields: &[FieldInfo],
    row: Row,
) -> shoal_sql::Result<()> {
    let failed =
        |e: PgWireError| SqlError::Internal(format!("encoding a value for the client: {e}"));
    for (value, field) in row.into_iter().zip(fields) {
        if field.format() == FieldFormat::Text {
            encoder.encode_field(&value.to_text()).map_err(failed)?;
            continue;
        }
        let out_of_range = || SqlError::DatetimeOverflow(format!("{value:?} out of range"));
        let t = field.datatype();
        match (t, &value) {
            (_, Value::Null) => encoder.encode_field(&None::<String>),
            (&Type::INT2, Value::Int(i)) => encoder.encode_field(
                &i16::try_from(*i).map_err(|_| SqlError::NumericOutOfRange("smallint".into()))?,
            ),
            (&Type::INT4, Value::Int(i)) => encoder.encode_field(
                &i32::try_from(*i).map_err(|_| SqlError::NumericOutOfRange("integer".into()))?,
            ),
            (&Type::INT8, Value::Int(i)) => encoder.encode_field(i),
            (&Type::FLOAT4, Value::Float(f)) => encoder.encode_field(&(*f as f32)),
            (&Type::FLOAT8, Value::Float(f)) => encoder.encode_field(f),
            (&Type::FLOAT8, Value::Int(i)) => encoder.encode_field(&(*i as f64)),
            (&Type::NUMERIC, Value::Decimal(d)) => encoder.encode_field(d),
            (&Type::NUMERIC, Value::Int(i)) => encoder.encode_field(&Decimal::from(*i)),
            (&Type::BOOL, Value::Bool(b)) => encoder.encode_field(b),
            (&Type::BYTEA, Value::Bytes(b)) => encoder.encode_field(b),
            (&Type::TIMESTAMP, Value::Timestamp(m)) => encoder.encode_field(
                &DateTime::from_timestamp_micros(*m).ok_or_else(out_of_range)?.naive_utc(),
            ),
            (&Type::TIMESTAMPTZ, Value::TimestampTz(m)) => {
                encoder.encode_field(&DateTime::from_timestamp_micros(*m).ok_or_else(out_of_range)?)
            }
            (&Type::DATE, Value::Date(d)) => encoder.encode_field(
                &DateTime::UNIX_EPOCH
                    .date_naive()
                    .checked_add_signed(chrono::Duration::days((*d).into()))
                    .ok_or_else(out_of_range)?,
            ),
            (&Type::TEXT | &Type::VARCHAR | &Type::BPCHAR, v) => encoder.encode_field(&v.to_text()),
            (t, v) => {
                return Err(SqlError::Internal(format!("a {t} column holds {v:?}")));
            }
        }
        .map_err(failed)?;
    }
    Ok(())
}
