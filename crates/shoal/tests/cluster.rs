//! End-to-end: real `shoal` processes on loopback ports, driven through the command line and
//! the HTTP API exactly as an operator would.
//!
//! - Three nodes form a cluster with `shoal start` + `shoal init`; after two manual splits
//!   (`shoal debug split`), 1,000 keys written with `shoal debug kv put` survive `kill -9` of a node (the one that bootstrapped the cluster and
//!   so led its ranges) and its restart.
//! - `shoal start` refuses, with a message naming the cause, a port in use and `--join`
//!   addresses that never answer; `shoal debug kv` against a stopped node says so.
//! - The HTTP API answers bad input with JSON errors and statuses, never a crash.
//! - The real `psql` runs statements and transactions over the PostgreSQL wire protocol.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;

const KEYS: usize = 1_000;

/// Scans every `key-` key through `node` and checks all `KEYS` are there with their values.
fn assert_all_keys(node: &Node) {
    let scan = node.kv(&["scan", "key-", "key.", "--limit", "10000"]);
    assert!(scan.status.success(), "scan through {} failed: {}", node.http, stderr(&scan));
    let rows: Vec<String> = stdout(&scan).lines().map(str::to_string).collect();
    let expected: Vec<String> = (0..KEYS).map(|i| format!("key-{i:04}\tvalue-{i:04}")).collect();
    assert_eq!(rows.len(), KEYS, "rows read through {}", node.http);
    assert_eq!(rows, expected);
}

#[test]
fn keys_survive_kill_9_of_a_node_and_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), 3);
    // Three ranges hold the keys, so writes and scans cross range boundaries.
    for split_key in ["key-0333", "key-0666"] {
        let split = shoal(&["debug", "split", split_key, "--host", &nodes[1].http]);
        assert!(split.status.success(), "split at {split_key}: {}", stderr(&split));
        assert!(stdout(&split).contains(&format!("[\"{split_key}\", ")), "{}", stdout(&split));
    }

    // 1,000 keys, each written by its own `shoal debug kv put`, spread over the three nodes.
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let nodes = &nodes;
            scope.spawn(move || {
                for i in (worker..KEYS).step_by(8) {
                    let (key, value) = (format!("key-{i:04}"), format!("value-{i:04}"));
                    let put = nodes[i % 3].kv(&["put", &key, &value]);
                    assert!(put.status.success(), "put {key}: {}", stderr(&put));
                }
            });
        }
    });
    assert_all_keys(&nodes[1]);

    let status = shoal(&["node", "status", "--host", &nodes[2].http]);
    assert!(status.status.success(), "{}", stderr(&status));

    // Node 1 bootstrapped the cluster and leads its ranges: the hardest node to lose.
    nodes[0].kill9();
    let down = nodes[0].kv(&["get", "key-0001"]);
    assert!(!down.status.success());
    assert!(stderr(&down).contains("cannot reach the node at"), "{}", stderr(&down));
    // The survivors elect new leaseholders and serve every acknowledged write.
    assert_all_keys(&nodes[1]);
    let put = nodes[2].kv(&["put", "written-while-down", "yes"]);
    assert!(put.status.success(), "{}", stderr(&put));

    // The killed node restarts from its store and serves everything, including what it missed.
    nodes[0].start();
    assert_all_keys(&nodes[0]);
    let get = nodes[0].kv(&["get", "written-while-down"]);
    assert_eq!(stdout(&get).trim(), "yes", "{}", stderr(&get));
    let cas = nodes[0].kv(&["cas", "written-while-down", "no", "maybe"]);
    assert!(!cas.status.success());
    assert!(
        stderr(&cas).contains("condition failed: the current value is \"yes\""),
        "{}",
        stderr(&cas)
    );
}

#[test]
fn start_refuses_a_port_in_use_and_join_addresses_that_never_answer() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let mut node = Node::new(dir.path(), "a");
    node.http = taken.clone();
    let output = node.command().output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("cannot listen on {taken} (--http-addr)")),
        "{}",
        stderr(&output)
    );

    let nobody = format!("127.0.0.1:{}", free_port());
    node.http = format!("127.0.0.1:{}", free_port());
    node.join = nobody.clone();
    let output = node.command().args(["--join-timeout", "1s"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("none of the --join addresses answered") && message.contains(&nobody),
        "{message}"
    );

    // The unsafe testing mode cannot be switched on by itself.
    let output = node.command().arg("--unsafe-stale-reads").output().unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--enable-test-hooks"), "{}", stderr(&output));
}

#[test]
fn the_http_api_answers_bad_input_with_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 1);
    let url = |path: &str| format!("http://{}{path}", nodes[0].http);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let post = |path: &str, body: Vec<u8>| http.post(url(path)).body(body).send();
        let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
            ("/v1/kv/put", b"{not json".to_vec(), 400, "bad_request"),
            ("/v1/kv/put", vec![0xff, 0x00, 0x13], 400, "bad_request"),
            ("/v1/kv/put", br#"{"key": "a"}"#.to_vec(), 400, "bad_request"),
            ("/v1/kv/put", br#"{"key": "", "value": "x"}"#.to_vec(), 400, "bad_request"),
            ("/v1/kv/put", br#"{"key": "\u0002meta", "value": "x"}"#.to_vec(), 400, "bad_request"),
            ("/v1/kv/get", br#"{"key": "%%%", "encoding": "base64"}"#.to_vec(), 400, "bad_request"),
            ("/v1/kv/scan", br#"{"start": "b", "end": "a"}"#.to_vec(), 400, "bad_request"),
            (
                "/v1/kv/cas",
                br#"{"key": "c", "expected": "x", "value": "y"}"#.to_vec(),
                412,
                "condition_failed",
            ),
            ("/v1/txn", br#"{"ops": [{"op": "fly", "key": "a"}]}"#.to_vec(), 400, "bad_request"),
            ("/v1/txn", br#"{"txn": "zz", "ops": []}"#.to_vec(), 400, "bad_request"),
            ("/v1/txn", br#"{"txn": "abc", "ops": []}"#.to_vec(), 404, "not_found"),
            ("/v1/txn", br#"{"rollback": true}"#.to_vec(), 400, "bad_request"),
            (
                "/v1/txn",
                br#"{"ops": [], "commit": true, "rollback": true}"#.to_vec(),
                400,
                "bad_request",
            ),
            ("/v1/sql", b"{not json".to_vec(), 400, "bad_request"),
            ("/v1/sql", br#"{"sql": 5}"#.to_vec(), 400, "bad_request"),
            ("/v1/sql", br#"{"sql": "SELEC 1"}"#.to_vec(), 400, "42601"),
            ("/v1/sql", br#"{"sql": "SELECT * FROM nowhere"}"#.to_vec(), 400, "42P01"),
            ("/v1/sql", br#"{"sql": "SELECT 1 / 0"}"#.to_vec(), 400, "22012"),
            ("/v1/sql", br#"{"sql": "BEGIN; SELECT 1"}"#.to_vec(), 400, "25000"),
            (
                "/v1/sql",
                br#"{"sql": "SHOW TABLES", "database": "x", "y": 1}"#.to_vec(),
                400,
                "bad_request",
            ),
            (
                "/v1/sql",
                br#"{"sql": "SELECT * FROM t", "database": "nowhere"}"#.to_vec(),
                400,
                "3D000",
            ),
            (
                "/v1/sql",
                serde_json::json!({"sql": "SELECT '\u{1F600}' ; \u{0}"}).to_string().into_bytes(),
                400,
                "42601",
            ),
            ("/v1/sql", br#"{"statements": []}"#.to_vec(), 400, "bad_request"),
            (
                "/v1/sql",
                br#"{"sql": "SELECT 1", "statements": [{"sql": "SELECT 1"}]}"#.to_vec(),
                400,
                "bad_request",
            ),
            (
                "/v1/sql",
                br#"{"statements": [{"sql": "SELECT 1", "x": 1}]}"#.to_vec(),
                400,
                "bad_request",
            ),
            (
                "/v1/sql",
                br#"{"statements": [{"sql": "SELECT $1", "args": [[1]]}]}"#.to_vec(),
                400,
                "42804",
            ),
            ("/v1/sql", br#"{"statements": [{"sql": "SELECT $1 + 1"}]}"#.to_vec(), 400, "08P01"),
            (
                "/v1/sql",
                br#"{"statements": [{"sql": "SELECT $1::INT8", "args": ["x"]}]}"#.to_vec(),
                400,
                "22P02",
            ),
            ("/v1/sql", br#"{"statements": [{"sql": "BEGIN"}]}"#.to_vec(), 400, "25000"),
            (
                "/v1/sql",
                br#"{"sql": "SELECT 1", "consistency": "stale"}"#.to_vec(),
                400,
                "bad_request",
            ),
            ("/v1/sql", br#"{"sql": "SELECT 1", "timeout_ms": 0}"#.to_vec(), 400, "bad_request"),
        ];
        for (path, body, status, code) in cases {
            let response = post(path, body.clone()).await.unwrap();
            assert_eq!(
                response.status().as_u16(),
                status,
                "{path} {}",
                String::from_utf8_lossy(&body)
            );
            let answer: serde_json::Value = response.json().await.unwrap();
            assert_eq!(answer["error"]["code"], code, "{answer}");
        }
        // An oversized body is refused once the limit is passed, without reading it all. The
        // node may close the connection while the body is still being sent, so it is sent by
        // another thread and its write errors are expected.
        let socket = TcpStream::connect(&nodes[0].http).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut writer = socket.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let size = 9 << 20;
            let head = format!(
                "POST /v1/kv/put HTTP/1.1\r\nHost: shoal\r\nContent-Length: {size}\r\n\r\n"
            );
            let _ = writer.write_all(head.as_bytes());
            let _ = writer.write_all(&vec![b'x'; size]);
        });
        let mut answer = String::new();
        let _ = BufReader::new(socket).read_line(&mut answer);
        let _ = sender.join();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // Values that are not UTF-8 round-trip through base64.
        let put = post(
            "/v1/kv/put",
            br#"{"key": "Ynl0ZXM=", "value": "/wA=", "encoding": "base64"}"#.to_vec(),
        );
        assert_eq!(put.await.unwrap().status().as_u16(), 200);
        let get: serde_json::Value = post("/v1/kv/get", br#"{"key": "bytes"}"#.to_vec())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(get["value"], serde_json::json!({"base64": "/wA="}));
        // An explicit transaction: its writes are invisible until it commits.
        let json = |body: serde_json::Value| serde_json::to_vec(&body).unwrap();
        let begun: serde_json::Value = post(
            "/v1/txn",
            json(serde_json::json!({"ops": [{"op": "put", "key": "t/a", "value": "1"}]})),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let txn = begun["txn"].as_str().expect("an open transaction").to_string();
        let read = json(serde_json::json!({"ops": [{"op": "get", "key": "t/a"}], "commit": true}));
        let outside = tokio::spawn(post("/v1/txn", read.clone()));
        let commit = json(serde_json::json!({"txn": txn, "commit": true,
            "ops": [{"op": "put", "key": "t/b", "value": "2"}]}));
        assert_eq!(post("/v1/txn", commit).await.unwrap().status().as_u16(), 200);
        // The outside reader waited for the transaction and saw its write.
        let seen: serde_json::Value = outside.await.unwrap().unwrap().json().await.unwrap();
        assert_eq!(seen["results"][0]["value"], "1", "{seen}");
        let both = json(serde_json::json!({"commit": true, "ops": [
            {"op": "scan", "start": "t/", "end": "t0"}]}));
        let rows: serde_json::Value = post("/v1/txn", both).await.unwrap().json().await.unwrap();
        assert_eq!(rows["results"][0]["rows"].as_array().map(Vec::len), Some(2), "{rows}");
        // Test hooks exist only on nodes started with --enable-test-hooks.
        let hook = post("/v1/test/clock", br#"{"offset_ms": 1000}"#.to_vec()).await.unwrap();
        assert_eq!(hook.status().as_u16(), 404);
        // The node is still fine.
        let health = http.get(url("/health")).send().await.unwrap();
        assert_eq!(health.status().as_u16(), 200);
    });
}

#[test]
fn workload_kv_reports_throughput_and_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 1);
    let output = shoal(&[
        "workload",
        "kv",
        "--hosts",
        &nodes[0].http,
        "--concurrency",
        "4",
        "--duration",
        "2s",
        "--read-percent",
        "50",
        "--keys",
        "100",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = stdout(&output);
    for expected in ["put: ", "get: ", "p99.9", "errors: 0"] {
        assert!(report.contains(expected), "{expected:?} missing from:\n{report}");
    }
    // The writes are real: a key of the workload's key space reads back its value.
    let scan = nodes[0].kv(&["scan", "wl-", "wl.", "--limit", "1"]);
    assert!(stdout(&scan).starts_with("wl-"), "{}", stdout(&scan));
}

#[test]
fn workload_bank_moves_money_across_ranges_and_keeps_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 3);
    let hosts = nodes.iter().map(|n| n.http.clone()).collect::<Vec<_>>().join(",");
    let output = shoal(&[
        "workload",
        "bank",
        "--hosts",
        &hosts,
        "--accounts",
        "50",
        "--ranges",
        "3",
        "--concurrency",
        "8",
        "--duration",
        "3s",
    ]);
    assert!(output.status.success(), "{}\n{}", stdout(&output), stderr(&output));
    let report = stdout(&output);
    for expected in
        ["txn/s", "restarts: ", "check: 50 accounts, total 5000 (expected 5000), 0 negative"]
    {
        assert!(report.contains(expected), "{expected:?} missing from:\n{report}");
    }
}

#[test]
fn sql_over_http_and_workload_tpcb_keep_the_balances_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 3);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let sql = |node: usize, text: &str| {
            let url = format!("http://{}/v1/sql", nodes[node].http);
            let request = http.post(url).json(&serde_json::json!({ "sql": text }));
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (status, answer) = sql(
            0,
            "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT, f FLOAT, d DECIMAL, b BOOL);
             INSERT INTO kv VALUES (1, 'one', 1.5, 2.50, true), (2, NULL, 'NaN', NULL, false)",
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["results"][1], serde_json::json!({"tag": "INSERT", "rows_affected": 2}));
        // Another node reads it, typed: numbers, booleans and null in JSON, the rest as text.
        let (status, answer) = sql(2, "SELECT k, v, f, d, b FROM kv ORDER BY k").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["results"][0]["rows"],
            serde_json::json!([[1, "one", 1.5, "2.50", true], [2, null, "NaN", null, false]])
        );
        assert_eq!(answer["results"][0]["columns"], serde_json::json!(["k", "v", "f", "d", "b"]));
        assert_eq!(
            answer["results"][0]["types"],
            serde_json::json!(["INT8", "STRING", "FLOAT8", "DECIMAL", "BOOL"])
        );
        assert_eq!(answer["node_id"], 3, "{answer}");
        // Statements with args are one transaction: typed values, never pasted into the text.
        let url = format!("http://{}/v1/sql", nodes[1].http);
        let body = serde_json::json!({"statements": [
            {"sql": "UPDATE kv SET v = $1, d = $2 WHERE k = $3", "args": ["it's; DROP TABLE kv", "0.10", 2]},
            {"sql": "SELECT v, d, d + $1 FROM kv WHERE k = $2", "args": [1, 2]},
        ]});
        let answer: serde_json::Value =
            http.post(&url).json(&body).send().await.unwrap().json().await.unwrap();
        assert_eq!(answer["results"][0], serde_json::json!({"tag": "UPDATE", "rows_affected": 1}));
        assert_eq!(answer["results"][1]["rows"], serde_json::json!([["it's; DROP TABLE kv", "0.10", "1.10"]]));
        assert_eq!(answer["node_id"], 2);
        assert!(answer["time_ms"].as_f64().is_some_and(|t| t > 0.0), "{answer}");
        // The timestamp reads the past with AS OF SYSTEM TIME.
        let at = answer["timestamp"].as_str().expect("a timestamp").to_string();
        let (_, past) = sql(0, &format!("SELECT count(*) FROM kv AS OF SYSTEM TIME '{at}'")).await;
        assert_eq!(past["results"][0]["rows"], serde_json::json!([[2]]), "{past}");
        // A failing statement rolls back the ones before it.
        let body = serde_json::json!({"statements": [
            {"sql": "UPDATE kv SET v = 'lost' WHERE k = $1", "args": [1]},
            {"sql": "INSERT INTO kv (k) VALUES ($1)", "args": [1]},
        ]});
        let response = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["sqlstate"], "23505", "{answer}");
        assert_eq!(answer["statement"], 1);
        let (_, answer) = sql(0, "SELECT v FROM kv WHERE k = 1").await;
        assert_eq!(answer["results"][0]["rows"], serde_json::json!([["one"]]));
        // A statement past the request's timeout stops (57014); the node serves on.
        let body = serde_json::json!({"timeout_ms": 300, "statements": [
            {"sql": "SELECT count(*) FROM kv a, kv b, kv c, kv d, kv e, kv f, kv g, kv h, kv i, kv j, kv l, kv m, kv n, kv o, kv p, kv q, kv r, kv s, kv t, kv u, kv w, kv x, kv y, kv z"},
        ]});
        let response = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 504);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["sqlstate"], "57014", "{answer}");
        // Readiness, and the API's own description.
        let ready = http.get(format!("http://{}/health?ready=1", nodes[1].http)).send().await.unwrap();
        assert_eq!(ready.status().as_u16(), 200);
        assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["ready"], true);
        let openapi: serde_json::Value = http
            .get(format!("http://{}/v1/openapi.json", nodes[1].http))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(openapi["paths"]["/v1/sql"]["post"].is_object(), "{openapi}");
        // A failed statement in a transaction rolls all of it back.
        let (status, answer) = sql(
            1,
            "BEGIN; UPDATE kv SET v = 'changed' WHERE k = 1; INSERT INTO kv (k) VALUES (1); COMMIT",
        )
        .await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("23505")), "{answer}");
        assert_eq!(answer["statement"], 2);
        let (_, answer) = sql(0, "SELECT v FROM kv WHERE k = 1").await;
        assert_eq!(answer["results"][0]["rows"], serde_json::json!([["one"]]));
        // A request names its database; bare names are that database's tables.
        let (status, answer) =
            sql(1, "CREATE DATABASE shop; CREATE TABLE shop.kv (k INT PRIMARY KEY)").await;
        assert_eq!(status, 200, "{answer}");
        let url = format!("http://{}/v1/sql", nodes[2].http);
        let body = serde_json::json!({"sql": "INSERT INTO kv VALUES (7); SELECT k FROM kv; SELECT count(*) FROM defaultdb.kv", "database": "shop"});
        let answer: serde_json::Value =
            http.post(url).json(&body).send().await.unwrap().json().await.unwrap();
        assert_eq!(answer["results"][1]["rows"], serde_json::json!([[7]]), "{answer}");
        assert_eq!(answer["results"][2]["rows"], serde_json::json!([[2]]), "{answer}");
    });
    let hosts = nodes.iter().map(|n| n.http.clone()).collect::<Vec<_>>().join(",");
    let output = shoal(&[
        "workload",
        "tpcb",
        "--hosts",
        &hosts,
        "--scale",
        "2",
        "--accounts-per-branch",
        "200",
        "--ranges",
        "3",
        "--concurrency",
        "6",
        "--duration",
        "3s",
    ]);
    assert!(output.status.success(), "{}\n{}", stdout(&output), stderr(&output));
    let report = stdout(&output);
    for expected in ["txn/s", "restarts: ", "check: accounts "] {
        assert!(report.contains(expected), "{expected:?} missing from:\n{report}");
    }
}

/// Polls `shoal debug ranges --json` through `host` until `condition` holds for its answer.
fn wait_for_ranges(host: &str, what: &str, condition: impl Fn(&serde_json::Value) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let output = shoal(&["debug", "ranges", "--json", "--host", host]);
        if output.status.success()
            && let Ok(report) = serde_json::from_str::<serde_json::Value>(&stdout(&output))
            && condition(&report)
        {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether some range of the report has a replica on `node_id`.
fn has_replica_on(report: &serde_json::Value, node_id: u64) -> bool {
    report["ranges"].as_array().into_iter().flatten().any(|range| {
        let replicas = range["descriptor"]["replicas"].as_array().cloned().unwrap_or_default();
        replicas.iter().any(|r| r["node_id"].as_u64() == Some(node_id))
    })
}

#[test]
fn operators_list_ranges_decommission_a_node_and_drain_another() {
    let dir = tempfile::tempdir().unwrap();
    let fast = ["--queue-interval", "200ms", "--liveness-timeout", "3s"];
    let mut nodes = cluster_with(dir.path(), 3, &fast);
    let mut n4 = Node::new(dir.path(), "n4");
    n4.join = nodes[0].rpc.clone();
    n4.extra = fast.iter().map(|s| s.to_string()).collect();
    n4.start();
    for i in 0..20 {
        let put = nodes[0].kv(&["put", &format!("op-{i:02}"), "v"]);
        assert!(put.status.success(), "{}", stderr(&put));
    }
    // The replicate queues move replicas onto the new node.
    wait_for_ranges(&nodes[1].http, "node 4 hosts a replica", |r| has_replica_on(r, 4));
    let listing = shoal(&["debug", "ranges", "--host", &nodes[1].http]);
    assert!(listing.status.success(), "{}", stderr(&listing));
    let table = stdout(&listing);
    // (Not whether n4 shows: the queues may move that replica again in between.)
    assert!(table.contains("follower lag") && table.contains("2 ranges"), "{table}");
    let hot = shoal(&["debug", "ranges", "--hot", "--host", &nodes[1].http]);
    assert!(hot.status.success() && stdout(&hot).contains("hottest keys"), "{}", stdout(&hot));

    let decommission = shoal(&["node", "decommission", "4", "--host", &nodes[0].http]);
    let out = stdout(&decommission);
    assert!(decommission.status.success(), "{out}{}", stderr(&decommission));
    assert!(out.contains("0 replicas left") && out.contains("decommissioned"), "{out}");
    wait_for_ranges(&nodes[1].http, "node 4 holds nothing", |r| !has_replica_on(r, 4));
    for i in 0..20 {
        let get = nodes[2].kv(&["get", &format!("op-{i:02}")]);
        assert!(get.status.success() && stdout(&get).trim() == "v", "{}", stderr(&get));
    }

    let drain = shoal(&["node", "drain", "1", "--host", &nodes[1].http]);
    let out = stdout(&drain);
    assert!(drain.status.success(), "{out}{}", stderr(&drain));
    assert!(out.contains("0 leases left"), "{out}");
    let settings =
        shoal(&["debug", "settings", "replication_factor", "3", "--host", &nodes[2].http]);
    assert!(settings.status.success(), "{}", stderr(&settings));
    let bad = shoal(&["debug", "settings", "replication_factor", "99", "--host", &nodes[2].http]);
    assert!(!bad.status.success() && stderr(&bad).contains("between 1 and 7"), "{}", stderr(&bad));
    nodes.push(n4);
}

#[test]
fn psql_runs_statements_and_transactions_over_the_wire_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 3);
    let setup =
        "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT, balance DECIMAL, opened DATE);
                 INSERT INTO accounts VALUES (1, 'ada', 10.50, '2024-01-02'), (2, NULL, 0, NULL);";
    let output = psql(&nodes[0], "defaultdb", &[], setup);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "CREATE TABLE\nINSERT 0 2\n", "psql prints each tag");

    // Another node reads it; NULLs print empty, values in PostgreSQL's text format.
    let query = "SELECT id, owner, balance, opened, balance > 1 FROM accounts ORDER BY id";
    let output = psql(&nodes[1], "defaultdb", &["-c", query], "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "1|ada|10.50|2024-01-02|t\n2||0||f\n");

    // A transaction spans statements of one connection; an error aborts it until ROLLBACK.
    let script = "BEGIN;
                  UPDATE accounts SET balance = balance - 5 WHERE id = 1;
                  UPDATE accounts SET balance = balance + 5 WHERE id = 2;
                  SELECT sum(balance) FROM accounts;
                  COMMIT;
                  SELECT balance FROM accounts ORDER BY id;";
    let output = psql(&nodes[2], "defaultdb", &[], script);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "BEGIN\nUPDATE 1\nUPDATE 1\n10.50\nCOMMIT\n5.50\n5\n");
    let script = "BEGIN; INSERT INTO accounts VALUES (1, 'dup', 0, NULL);\nSELECT 1;\n";
    let output = psql(&nodes[1], "defaultdb", &["-v", "ON_ERROR_STOP=0"], script);
    let errors = stderr(&output);
    assert!(errors.contains("ERROR:  23505"), "{errors}");
    assert!(errors.contains("ERROR:  25P02"), "{errors}");

    // Errors carry their SQLSTATE; psql exits non-zero.
    let output = psql(&nodes[0], "defaultdb", &["-c", "SELECT * FROM nowhere"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("ERROR:  42P01: relation \"nowhere\" does not exist"));
    let output = psql(&nodes[0], "defaultdb", &["-c", "SELEC 1"], "");
    assert!(stderr(&output).contains("ERROR:  42601"), "{}", stderr(&output));
    // An unknown database is refused at connection, as PostgreSQL does.
    let output = psql(&nodes[0], "nowhere", &["-c", "SELECT 1"], "");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let refused = "FATAL:  database \"nowhere\" does not exist";
    assert!(stderr(&output).contains(refused), "{}", stderr(&output));

    // A client that disconnects inside a transaction leaves nothing behind: its write is
    // rolled back, and the row it wrote can be written at once by someone else.
    let script = "BEGIN; INSERT INTO accounts VALUES (3, 'gone', 1, NULL);\n";
    let output = psql(&nodes[0], "defaultdb", &[], script);
    assert!(output.status.success(), "{}", stderr(&output));
    let script = "INSERT INTO accounts VALUES (3, 'kept', 1, NULL); SELECT owner FROM accounts WHERE id = 3;";
    let output = psql(&nodes[1], "defaultdb", &[], script);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "INSERT 0 1\nkept\n");

    // Garbage on the socket closes that connection only.
    let mut garbage = TcpStream::connect(&nodes[0].pg).unwrap();
    garbage.write_all(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 8, 1, 2, 3, 4]).unwrap();
    garbage.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = std::io::Read::read(&mut garbage, &mut [0u8; 256]);
    let output = psql(&nodes[0], "defaultdb", &["-c", "SELECT count(*) FROM accounts"], "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "3\n");
}
