//! End-to-end: PostgreSQL drivers against real `shoal` processes.
//!
//! - `tokio-postgres` (the extended protocol: Parse, Describe, Bind, Execute, binary values)
//!   prepares statements, learns their parameter and column types, round-trips every Shoal type
//!   in binary, fetches a portal in batches, runs transactions and sees SQLSTATEs.
//! - Hand-written protocol messages that break the rules get 08P01 and the connection goes on.
//! - A cancel request stops a running query with 57014.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use common::*;
use rust_decimal::Decimal;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

/// Starts a three-node cluster without blocking the test's runtime.
async fn three_nodes(dir: &std::path::Path) -> Vec<Node> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || cluster(&dir, 3)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_prepares_binds_and_reads_typed_values() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = three_nodes(dir.path()).await;
    let client = connect(&nodes[0]).await;
    client
        .batch_execute(
            "CREATE TABLE things (id INT PRIMARY KEY, name TEXT, price DECIMAL, score FLOAT,
                small INT4, ok BOOL, born DATE, seen TIMESTAMP, at TIMESTAMPTZ, data BYTES)",
        )
        .await
        .unwrap();

    // Parameter types come from the columns the placeholders meet.
    let insert = client
        .prepare("INSERT INTO things VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .await
        .unwrap();
    let expected_params = [
        Type::INT8,
        Type::TEXT,
        Type::NUMERIC,
        Type::FLOAT8,
        Type::INT4,
        Type::BOOL,
        Type::DATE,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::BYTEA,
    ];
    assert_eq!(insert.params(), expected_params);
    assert!(insert.columns().is_empty(), "an INSERT returns no rows");
    let price: Decimal = "12.50".parse().unwrap();
    let born = NaiveDate::from_ymd_opt(1815, 12, 10).unwrap();
    let seen: NaiveDateTime = born.and_hms_micro_opt(9, 30, 0, 250).unwrap();
    let at: DateTime<Utc> = DateTime::from_timestamp_micros(1_763_700_000_123_456).unwrap();
    let data = vec![0u8, 1, 254, 255];
    let inserted = client
        .execute(
            &insert,
            &[&1i64, &"ada", &price, &2.5f64, &-7i32, &true, &born, &seen, &at, &data],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let nulls: [Option<&str>; 9] = [None; 9];
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&2i64];
    let none_i64: Option<i64> = None;
    let typed_nulls: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
        &nulls[0],
        &None::<Decimal>,
        &None::<f64>,
        &None::<i32>,
        &None::<bool>,
        &None::<NaiveDate>,
        &None::<NaiveDateTime>,
        &None::<DateTime<Utc>>,
        &None::<Vec<u8>>,
    ];
    params.extend(typed_nulls);
    assert_eq!(client.execute(&insert, &params).await.unwrap(), 1);
    let _ = none_i64;

    // Every type comes back, in binary, from another node.
    let other = connect(&nodes[1]).await;
    let select = other
        .prepare("SELECT id, name, price, score, small, ok, born, seen, at, data FROM things WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(select.params(), [Type::INT8]);
    let types: Vec<Type> = select.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(types, expected_params);
    let row = other.query_one(&select, &[&1i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, String>(1), "ada");
    assert_eq!(row.get::<_, Decimal>(2), price);
    assert_eq!(row.get::<_, f64>(3), 2.5);
    assert_eq!(row.get::<_, i32>(4), -7);
    assert!(row.get::<_, bool>(5));
    assert_eq!(row.get::<_, NaiveDate>(6), born);
    assert_eq!(row.get::<_, NaiveDateTime>(7), seen);
    assert_eq!(row.get::<_, DateTime<Utc>>(8), at);
    assert_eq!(row.get::<_, Vec<u8>>(9), data);
    let row = other.query_one(&select, &[&2i64]).await.unwrap();
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, Option<Decimal>>(2), None);
    assert!(other.query_opt(&select, &[&3i64]).await.unwrap().is_none());

    // Placeholders in LIMIT, IN, BETWEEN, arithmetic and casts.
    for id in 3..=20i64 {
        client
            .execute(
                "INSERT INTO things (id, name, score) VALUES ($1, $2, $3)",
                &[&id, &format!("n{id}"), &(id as f64 / 2.0)],
            )
            .await
            .unwrap();
    }
    let rows = client
        .query(
            "SELECT id FROM things WHERE id BETWEEN $1 AND $2 ORDER BY id LIMIT $3",
            &[&5i64, &15i64, &3i64],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [5, 6, 7]);
    let rows = client
        .query(
            "SELECT name FROM things WHERE id IN ($1, $2) AND score > $3 - 1 ORDER BY id",
            &[&4i64, &10i64, &2i64],
        )
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["n4", "n10"]);
    let row =
        client.query_one("SELECT $1::INT8 + 1, $2::TEXT || '!'", &[&41i64, &"hi"]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, String>(1)), (42, "hi!".to_string()));
    let row = client
        .query_one(
            "UPDATE things SET score = $1 WHERE id = $2 RETURNING id, score",
            &[&9.5f64, &3i64],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, f64>(1)), (3, 9.5));

    // A portal read in batches of 4 (PortalSuspended between them).
    let mut client = client;
    let txn = client.transaction().await.unwrap();
    let portal =
        txn.bind("SELECT id FROM things WHERE id >= $1 ORDER BY id", &[&10i64]).await.unwrap();
    let mut batches = Vec::new();
    loop {
        let batch = txn.query_portal(&portal, 4).await.unwrap();
        if batch.is_empty() {
            break;
        }
        batches.push(batch.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>());
    }
    assert_eq!(batches, [vec![10, 11, 12, 13], vec![14, 15, 16, 17], vec![18, 19, 20]]);
    txn.commit().await.unwrap();

    // Transactions: a rolled-back update leaves no trace, a committed one is seen elsewhere.
    let txn = client.transaction().await.unwrap();
    txn.execute("UPDATE things SET name = $1 WHERE id = $2", &[&"gone", &1i64]).await.unwrap();
    txn.rollback().await.unwrap();
    let txn = client.transaction().await.unwrap();
    txn.execute("UPDATE things SET name = $1 WHERE id = $2", &[&"kept", &2i64]).await.unwrap();
    txn.commit().await.unwrap();
    let rows = other.query("SELECT name FROM things WHERE id <= 2 ORDER BY id", &[]).await.unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["ada", "kept"]);

    // Errors carry SQLSTATEs, and the session goes on.
    let err = client.execute(&insert, &params).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION), "{err}");
    let err = client.prepare("SELECT * FROM nowhere WHERE id = $1").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{err}");
    let err = client.prepare("SELECT 1; SELECT 2").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::SYNTAX_ERROR), "{err}");
    let err = client.query("SELECT $1::INT8 / 0", &[&1i64]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO), "{err}");
    let txn = client.transaction().await.unwrap();
    let err = txn.query("SELECT * FROM nowhere", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{err}");
    let err = txn.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION), "{err}");
    txn.rollback().await.unwrap();
    let count: i64 = client.query_one("SELECT count(*) FROM things", &[]).await.unwrap().get(0);
    assert_eq!(count, 20);
}

/// Appends one frontend message: its type byte, length and body.
fn message(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
}

/// Reads backend messages until ReadyForQuery, returning their type bytes and bodies.
fn until_ready(socket: &mut TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    loop {
        let mut header = [0u8; 5];
        socket.read_exact(&mut header).expect("a backend message");
        let len = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 4];
        socket.read_exact(&mut body).unwrap();
        let kind = header[0];
        messages.push((kind, body));
        if kind == b'Z' {
            return messages;
        }
    }
}

fn sqlstates(messages: &[(u8, Vec<u8>)]) -> Vec<String> {
    messages
        .iter()
        .filter(|(kind, _)| *kind == b'E')
        .filter_map(|(_, body)| {
            body.split(|b| *b == 0)
                .find_map(|field| field.strip_prefix(b"C"))
                .map(|code| String::from_utf8_lossy(code).into_owned())
        })
        .collect()
}

#[test]
fn protocol_violations_get_08p01_and_the_connection_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 3);
    let mut socket = TcpStream::connect(&nodes[0].pg).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut startup = Vec::new();
    startup.extend_from_slice(&196608u32.to_be_bytes());
    startup.extend_from_slice(b"user\0root\0database\0defaultdb\0\0");
    let mut out = ((startup.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&startup);
    socket.write_all(&out).unwrap();
    let ready = until_ready(&mut socket);
    assert_eq!(ready.first().map(|m| m.0), Some(b'R'), "AuthenticationOk first");

    // A Bind with two values for a statement with one placeholder, then an Execute that must
    // be skipped, then Sync.
    let mut out = Vec::new();
    message(&mut out, b'P', b"\0SELECT $1::INT8\0\0\0");
    let mut bind = b"\0\0\0\0\0\x02".to_vec();
    for value in [b"1", b"2"] {
        bind.extend_from_slice(&1u32.to_be_bytes());
        bind.extend_from_slice(value);
    }
    bind.extend_from_slice(&0u16.to_be_bytes());
    message(&mut out, b'B', &bind);
    message(&mut out, b'E', b"\0\0\0\0\0");
    message(&mut out, b'S', b"");
    socket.write_all(&out).unwrap();
    let replies = until_ready(&mut socket);
    assert_eq!(sqlstates(&replies), ["08P01"], "{replies:?}");
    assert!(!replies.iter().any(|m| m.0 == b'D'), "the Execute after the error was skipped");
    assert_eq!(replies.last().unwrap().1, b"I", "idle after an error outside a transaction");

    // Three result-format codes for a one-column result; a binary INT8 of three bytes.
    let mut out = Vec::new();
    let mut bind = b"\0\0\0\0\0\x01".to_vec();
    bind.extend_from_slice(&1u32.to_be_bytes());
    bind.extend_from_slice(b"5");
    bind.extend_from_slice(&3u16.to_be_bytes());
    bind.extend_from_slice(&[0, 1, 0, 1, 0, 1]);
    message(&mut out, b'B', &bind);
    message(&mut out, b'E', b"\0\0\0\0\0");
    message(&mut out, b'S', b"");
    let mut bind = b"\0\0\0\x01\0\x01\0\x01".to_vec();
    bind.extend_from_slice(&3u32.to_be_bytes());
    bind.extend_from_slice(&[1, 2, 3]);
    bind.extend_from_slice(&0u16.to_be_bytes());
    message(&mut out, b'B', &bind);
    message(&mut out, b'E', b"\0\0\0\0\0");
    message(&mut out, b'S', b"");
    socket.write_all(&out).unwrap();
    assert_eq!(sqlstates(&until_ready(&mut socket)), ["08P01"]);
    assert_eq!(sqlstates(&until_ready(&mut socket)), ["22P03"]);

    // The connection still runs statements, with text values.
    let mut out = Vec::new();
    let mut bind = b"\0\0\0\0\0\x01".to_vec();
    bind.extend_from_slice(&2u32.to_be_bytes());
    bind.extend_from_slice(b"41");
    bind.extend_from_slice(&0u16.to_be_bytes());
    message(&mut out, b'B', &bind);
    message(&mut out, b'E', b"\0\0\0\0\0");
    message(&mut out, b'S', b"");
    socket.write_all(&out).unwrap();
    let replies = until_ready(&mut socket);
    assert!(sqlstates(&replies).is_empty(), "{replies:?}");
    let row = replies.iter().find(|m| m.0 == b'D').expect("a row");
    assert!(row.1.ends_with(b"41"), "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_stops_a_running_query() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = three_nodes(dir.path()).await;
    let client = connect(&nodes[0]).await;
    client.batch_execute("CREATE TABLE n (i INT PRIMARY KEY)").await.unwrap();
    let values: Vec<String> = (0..2_000).map(|i| format!("({i})")).collect();
    client.batch_execute(&format!("INSERT INTO n VALUES {}", values.join(","))).await.unwrap();
    // A cross join of 2,000 × 2,000 × 2,000 rows, counted: it runs far longer than any test.
    let token = client.cancel_token();
    let running = tokio::spawn(async move {
        let result = client.query_one("SELECT count(*) FROM n a, n b, n c", &[]).await;
        (result, client)
    });
    // Cancel until the query is gone: a cancel sent before the query started finds nothing
    // to stop, as in PostgreSQL.
    while !running.is_finished() {
        token.cancel_query(NoTls).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (result, client) = running.await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    let count: i64 = client.query_one("SELECT count(*) FROM n", &[]).await.unwrap().get(0);
    assert_eq!(count, 2_000, "the connection serves the next query");
}

/// The node's `shoal_sql_query_tasks` gauge: statements' operator trees running there.
async fn query_tasks(node: &Node) -> f64 {
    let text =
        reqwest::get(format!("http://{}/metrics", node.http)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("shoal_sql_query_tasks "))
        .unwrap_or_else(|| panic!("no shoal_sql_query_tasks in {text}"))
        .parse()
        .unwrap()
}

/// A client that disconnects while its query runs leaves no work behind: the server cancels
/// the statement (without it, the cross join would compute until a timeout ends it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_stops_its_query() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = three_nodes(dir.path()).await;
    let setup = connect(&nodes[0]).await;
    setup.batch_execute("CREATE TABLE d (i INT PRIMARY KEY)").await.unwrap();
    let values: Vec<String> = (0..2_000).map(|i| format!("({i})")).collect();
    setup.batch_execute(&format!("INSERT INTO d VALUES {}", values.join(","))).await.unwrap();
    // A connection whose socket the test owns: aborting its task closes it.
    let (host, port) = nodes[0].pg.split_once(':').unwrap();
    let config = format!("host={host} port={port} user=root dbname=defaultdb");
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await.unwrap();
    let socket = tokio::spawn(connection);
    let running = tokio::spawn(async move {
        let _ = client.query_one("SELECT count(*) FROM d a, d b, d c", &[]).await;
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while query_tasks(&nodes[0]).await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "the query never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The client goes away mid-query: its socket closes.
    socket.abort();
    running.abort();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while query_tasks(&nodes[0]).await > 0.0 {
        assert!(std::time::Instant::now() < deadline, "the query still runs after its client left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The node still serves its other connections.
    let count: i64 = setup.query_one("SELECT count(*) FROM d", &[]).await.unwrap().get(0);
    assert_eq!(count, 2_000);
}
