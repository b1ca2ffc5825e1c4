//! End-to-end: the `shoal sql` shell and the `shoal demo` cluster, driven as a person drives
//! them, through a pseudo-terminal (rexpect), and as scripts (`-e`, `-f`, standard input).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rexpect::session::{PtySession, spawn_command};

fn url(node: &Node) -> String {
    format!("postgres://root@{}/defaultdb?sslmode=disable", node.pg)
}

fn sql(node: &Node, args: &[&str]) -> Output {
    let url = url(node);
    let mut all = vec!["sql", "--url", &url];
    all.extend_from_slice(args);
    shoal(&all)
}

/// A shell program under a pseudo-terminal, with its history file in `dir`.
fn terminal(dir: &Path, args: &[&str]) -> PtySession {
    let mut command = Command::new(SHOAL);
    command.args(args);
    command.env("SHOAL_HISTORY", dir.join("history")).env("TERM", "xterm");
    command.env_remove("SHOAL_URL");
    spawn_command(command, Some(60_000)).expect("spawn the shell under a pty")
}

/// Types `line` and waits for the prompt that follows its output.
fn enter(p: &mut PtySession, line: &str, prompt: &str) -> String {
    p.send_line(line).unwrap();
    p.exp_string(prompt).unwrap_or_else(|e| panic!("after {line:?}: {e}"))
}

#[test]
fn a_person_at_the_terminal_edits_queries_and_uses_meta_commands() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 1);
    let prompt = "defaultdb> ";
    let script = dir.path().join("more.sql");
    std::fs::write(
        &script,
        "INSERT INTO users VALUES (3, 'carol');\nSELECT count(*) FROM users;\n",
    )
    .unwrap();
    let csv = dir.path().join("out.csv");
    let mut p = terminal(dir.path(), &["sql", "--url", &url(&nodes[0])]);
    p.exp_string("Type \\? for help").unwrap();
    p.exp_string(prompt).unwrap();

    let out = enter(&mut p, "CREATE TABLE users (id INT PRIMARY KEY, name TEXT);", prompt);
    assert!(out.contains("CREATE TABLE"), "{out}");
    // A statement over two lines: the continuation prompt, then one result.
    p.send_line("INSERT INTO users VALUES").unwrap();
    p.exp_string("-> ").unwrap();
    let out = enter(&mut p, "(1, 'alice'), (2, 'bob');", prompt);
    assert!(out.contains("INSERT 0 2"), "{out}");
    let out = enter(&mut p, "SELECT id, name FROM users ORDER BY id;", prompt);
    assert!(out.contains(" id | name"), "{out}");
    assert!(out.contains("  1 | alice"), "{out}");
    assert!(out.contains("(2 rows)"), "{out}");

    let out = enter(&mut p, "\\d users", prompt);
    assert!(out.contains("Table \"users\""), "{out}");
    assert!(out.contains("column_name"), "{out}");
    assert!(out.contains("\"users_pkey\" UNIQUE (id)"), "{out}");
    assert!(enter(&mut p, "\\dt", prompt).contains("users"));
    assert!(enter(&mut p, "\\di", prompt).contains("users_pkey"));
    assert!(enter(&mut p, "\\l", prompt).contains("defaultdb"));

    assert!(enter(&mut p, "\\timing on", prompt).contains("Timing is on."));
    assert!(enter(&mut p, "SELECT 1;", prompt).contains("Time: "));
    enter(&mut p, "\\timing off", prompt);
    assert!(enter(&mut p, "\\x", prompt).contains("Expanded display is on."));
    let out = enter(&mut p, "SELECT id, name FROM users WHERE id = 1;", prompt);
    assert!(out.contains("-[ RECORD 1 ]"), "{out}");
    assert!(out.contains("name | alice"), "{out}");
    enter(&mut p, "\\x off", prompt);

    // \set format and \o print nothing; the results land in the file.
    enter(&mut p, "\\set format csv", prompt);
    enter(&mut p, &format!("\\o {}", csv.display()), prompt);
    enter(&mut p, "SELECT name FROM users ORDER BY id;", prompt);
    enter(&mut p, "\\o", prompt);
    enter(&mut p, "\\set format table", prompt);
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "name\nalice\nbob\n");

    let out = enter(&mut p, &format!("\\i {}", script.display()), prompt);
    assert!(out.contains("INSERT 0 1"), "{out}");
    assert!(out.contains("     3\n") || out.contains("     3\r\n"), "{out}");

    // An error is shown with its SQLSTATE and the shell goes on.
    let out = enter(&mut p, "SELECT * FROM nope;", prompt);
    assert!(out.contains("ERROR: relation \"nope\" does not exist"), "{out}");
    assert!(out.contains("SQLSTATE: 42P01"), "{out}");
    assert!(enter(&mut p, "\\bogus", prompt).contains("invalid command \\bogus"));
    // Line editing: the up arrow brings back the statement before the bad command.
    // (Each recall redraws the prompt, so the test waits for the recalled text instead.)
    p.send("\x1b[A").unwrap();
    p.flush().unwrap();
    p.exp_string("\\bogus").unwrap();
    p.send("\x1b[A").unwrap();
    p.flush().unwrap();
    p.exp_string("FROM nope;").unwrap();
    p.send_line("").unwrap();
    p.exp_string("SQLSTATE: 42P01").unwrap();
    p.exp_string(prompt).unwrap();
    assert!(enter(&mut p, "\\?", prompt).contains("\\set format FORMAT"));

    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
    let history = std::fs::read_to_string(dir.path().join("history")).unwrap();
    assert!(history.contains("SELECT * FROM nope;"), "{history}");
}

#[test]
fn ctrl_c_cancels_the_running_statement_and_the_shell_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 1);
    let rows: Vec<String> = (1..=2000).map(|i| format!("({i})")).collect();
    let insert = format!("INSERT INTO big VALUES {}", rows.join(", "));
    let out = sql(&nodes[0], &["-e", "CREATE TABLE big (id INT PRIMARY KEY)", "-e", &insert]);
    assert!(out.status.success(), "{}", stderr(&out));

    let prompt = "defaultdb> ";
    let mut p = terminal(dir.path(), &["sql", "--url", &url(&nodes[0])]);
    p.exp_string(prompt).unwrap();
    // 2,000³ rows: it runs until cancelled. Ctrl-C is sent until the cancel lands, because the
    // first may arrive before the statement is under way.
    p.send_line("SELECT count(*) FROM big a, big b, big c;").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while !seen.contains("SQLSTATE: 57014") {
        assert!(Instant::now() < deadline, "no cancel after 60 s: {seen}");
        p.send_control('c').unwrap();
        let wait_until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < wait_until {
            match p.try_read() {
                Some(c) => seen.push(c),
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
    // The shell is still there, on the same connection.
    let out = enter(&mut p, "SELECT count(*) FROM big;", prompt);
    assert!(out.contains("2000"), "{out}");
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn scripts_run_with_e_and_f_and_stop_at_the_first_error() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 1);
    let node = &nodes[0];

    let out = sql(
        node,
        &[
            "-e",
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)",
            "-e",
            "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "CREATE TABLE\nINSERT 0 2\n");

    // -f: meta-commands, several statements per line, a statement without `;` at the end.
    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        "\\set format csv\nSELECT id, v FROM t ORDER BY id; SELECT 'x;y' AS s\n",
    )
    .unwrap();
    let out = sql(node, &["-f", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "id,v\n1,a\n2,b\ns\nx;y\n");

    // The first error stops the script: exit 1, the SQLSTATE on stderr, nothing after it runs.
    std::fs::write(
        &script,
        "INSERT INTO t VALUES (3, 'c');\nINSERT INTO t VALUES (1, 'again');\nINSERT INTO t VALUES (4, 'd');\n",
    )
    .unwrap();
    let out = sql(node, &["-f", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("SQLSTATE: 23505"), "{}", stderr(&out));
    let out = sql(node, &["--format", "csv", "-e", "SELECT id FROM t ORDER BY id"]);
    assert_eq!(stdout(&out), "id\n1\n2\n3\n");

    // Standard input that is not a terminal is a script too.
    let mut child = Command::new(SHOAL)
        .args(["sql", "--url", &url(node)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"SELECT count(*) AS n FROM t;\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(stdout(&out).contains(" n\n---\n 3\n(1 row)\n"), "{}", stdout(&out));

    // A node that is not there is a clear error, not a hang.
    let out = shoal(&["sql", "--url", "postgres://root@127.0.0.1:1/defaultdb", "-e", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect to"), "{}", stderr(&out));
}

#[test]
fn a_ten_megabyte_statement_gets_a_clear_error_and_the_node_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), 1);
    let script = dir.path().join("huge.sql");
    std::fs::write(&script, format!("SELECT length('{}');\n", "x".repeat(10 << 20))).unwrap();
    let out = sql(&nodes[0], &["-f", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("SQLSTATE: 54000"), "{}", stderr(&out));
    assert!(stderr(&out).contains("the limit is 8388608 bytes"), "{}", stderr(&out));
    let out = sql(&nodes[0], &["-e", "SELECT 40 + 2 AS answer"]);
    assert!(stdout(&out).contains("42"), "{}", stderr(&out));
}

#[test]
fn the_demo_keeps_answering_with_one_node_down_and_stops_with_two() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = "defaultdb> ";
    let mut p = terminal(dir.path(), &["demo", "--nodes", "3", "--random-ports"]);
    p.exp_string("Shoal demo: 3 nodes").unwrap();
    p.exp_string(prompt).unwrap();
    let count = "SELECT count(*) FROM orders;";
    assert!(enter(&mut p, count, prompt).contains("1000"));
    let out = enter(&mut p, "SHOW RANGES FROM TABLE orders;", prompt);
    assert!(out.contains("(4 rows)"), "{out}");
    let out = enter(&mut p, "\\demo ls", prompt);
    assert_eq!(out.matches("running").count(), 3, "{out}");

    // Node 1 holds the shell's connection: the shell moves to another node.
    let out = enter(&mut p, "\\demo shutdown 1", prompt);
    assert!(out.contains("node 1 stopped"), "{out}");
    assert!(out.contains("reconnected to"), "{out}");
    assert!(enter(&mut p, count, prompt).contains("1000"), "one node down: still a quorum");

    // Two of three down: no quorum, so statements fail (after their deadline).
    assert!(enter(&mut p, "\\demo shutdown 3", prompt).contains("node 3 stopped"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = enter(&mut p, count, prompt);
        if out.contains("ERROR") {
            break;
        }
        assert!(Instant::now() < deadline, "still answering with two of three nodes down");
    }

    // Back to two of three: statements work again.
    assert!(enter(&mut p, "\\demo restart 3", prompt).contains("node 3 restarted"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !enter(&mut p, count, prompt).contains("1000") {
        assert!(Instant::now() < deadline, "no answer after node 3 came back");
    }
    let out = enter(&mut p, "\\demo ls", prompt);
    assert_eq!(out.matches("running").count(), 2, "{out}");
    assert!(out.contains("stopped"), "{out}");
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}
