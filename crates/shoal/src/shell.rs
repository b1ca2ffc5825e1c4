//! `shoal sql`: an interactive SQL shell in the manner of psql, over the PostgreSQL wire
//! protocol, so it talks to any Shoal node (or any PostgreSQL server).
//!
//! ```text
//!   $ shoal sql --url postgres://root@127.0.0.1:15432/defaultdb
//!   defaultdb> SELECT id, name
//!           -> FROM users;
//!    id | name
//!   ----+-------
//!     1 | alice
//!   (1 row)
//!   defaultdb> \q
//! ```
//!
//! Three ways in: a terminal (line editing and a history file, `~/.shoal_history` or
//! `$SHOAL_HISTORY`), `-e SQL` (repeatable) and `-f FILE`; standard input that is not a
//! terminal is read as a script too. Scripts stop at the first error with exit status 1, as
//! `psql -v ON_ERROR_STOP=1` does; at the terminal an error is printed and the shell goes on.
//!
//! Statements go one at a time through the simple query protocol, so values come back as the
//! server's text and are printed as they are (see `shell_output`). Command tags (`INSERT 0 3`)
//! are rebuilt from the statement's first words and the row count, because the driver keeps
//! only the count. Meta-commands (`\d`, `\timing`, ...; `\?` lists them) are answered with
//! Shoal's SHOW statements.
//!
//! Ctrl-C while a statement runs sends the server a cancel request (the statement fails with
//! 57014); at the prompt it discards the pending input. When the connection is lost, the next
//! statement reconnects, trying each address the shell knows (in `shoal demo`, every node).
//! A lost connection is never followed by a silent retry of the statement that was running:
//! whether it committed is for the user to find out.
//!
//! Out of scope: TLS, passwords, psql variables, `\copy`, tab completion, a pager.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures::FutureExt;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::shell_input::{Format, HELP, Item, Meta, Splitter, parse_meta};
use crate::shell_output::{ResultSet, render};

/// Where `shoal sql` connects unless told otherwise: the default `--pg-addr` of `shoal start`.
pub const DEFAULT_URL: &str = "postgres://root@127.0.0.1:15432/defaultdb?sslmode=disable";

/// How long connecting to a node may take before the shell says it cannot.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Flags of `shoal sql`.
#[derive(Args, Clone)]
pub struct SqlArgs {
    /// The node to connect to, as a PostgreSQL URL (the user defaults to root).
    #[arg(long, env = "SHOAL_URL", default_value = DEFAULT_URL)]
    pub url: String,
    #[command(flatten)]
    pub script: ScriptArgs,
}

/// The script flags `shoal sql` and `shoal demo` share.
#[derive(Args, Clone, Default)]
pub struct ScriptArgs {
    /// Runs SQL or a meta-command and exits (repeatable; each runs in order).
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    pub execute: Vec<String>,
    /// Runs the statements in FILE and exits.
    #[arg(short = 'f', long = "file", conflicts_with = "execute")]
    pub file: Option<PathBuf>,
    /// How to print rows: table, csv or json.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Runs `shoal sql`. An empty error message means the failure was already printed.
pub async fn run(args: SqlArgs) -> Result<(), String> {
    let mut shell = Shell::connect(vec![args.url], None, args.script.format).await?;
    shell.run(&args.script).await
}

/// What to do after an item.
enum Flow {
    Continue,
    Quit,
}

/// An item failed; its error was printed.
struct Failed;

/// The shell's state: the connection and the display settings.
pub struct Shell {
    /// Every URL the shell may connect to, in order of preference.
    urls: Vec<String>,
    /// Which of `urls` the client is connected to.
    connected: usize,
    client: Client,
    /// The current database (the prompt shows it; reconnecting returns to it).
    database: String,
    format: Format,
    expanded: bool,
    timing: bool,
    /// Where results go instead of standard output (`\o FILE`).
    output: Option<(PathBuf, std::fs::File)>,
    /// SIGINT, caught while a person is typing: Ctrl-C cancels the running statement
    /// instead of ending the shell. None for scripts, which Ctrl-C stops.
    interrupts: Option<tokio::signal::unix::Signal>,
    /// The nodes of `shoal demo`, when running inside it.
    demo: Option<Arc<crate::demo::Demo>>,
}

impl Shell {
    /// Connects to the first of `urls` that answers.
    pub async fn connect(
        urls: Vec<String>,
        demo: Option<Arc<crate::demo::Demo>>,
        format: Format,
    ) -> Result<Shell, String> {
        let mut last_error = String::from("no URL to connect to");
        for (i, url) in urls.iter().enumerate() {
            match connect(url, None).await {
                Ok((client, database)) => {
                    return Ok(Shell {
                        urls,
                        connected: i,
                        client,
                        database,
                        format,
                        expanded: false,
                        timing: false,
                        output: None,
                        interrupts: None,
                        demo,
                    });
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Runs the script the flags name, or standard input, or the interactive loop.
    pub async fn run(&mut self, script: &ScriptArgs) -> Result<(), String> {
        let result = if let Some(path) = &script.file {
            let text = read_script(path)?;
            self.run_script(&text).await
        } else if !script.execute.is_empty() {
            let mut result = Ok(Flow::Continue);
            for text in &script.execute {
                result = self.run_script(text).await;
                if !matches!(result, Ok(Flow::Continue)) {
                    break;
                }
            }
            result
        } else if std::io::stdin().is_terminal() {
            // Caught from here on, before any statement runs, so a Ctrl-C never finds the
            // default action (ending the process) in place.
            let interrupts =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                    .map_err(|e| format!("cannot catch Ctrl-C: {e}"))?;
            self.interrupts = Some(interrupts);
            return self.interact().await;
        } else {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            self.run_script(&text).await
        };
        result.map(|_| ()).map_err(|Failed| String::new())
    }

    async fn interact(&mut self) -> Result<(), String> {
        use rustyline::error::ReadlineError;
        let mut editor = rustyline::DefaultEditor::new()
            .map_err(|e| format!("cannot set up line editing: {e}"))?;
        let history = history_path();
        if let Some(path) = &history {
            let _ = editor.load_history(path); // a missing file is a first run
        }
        println!("# Connected to {}. Type \\? for help, \\q to quit.", self.urls[self.connected]);
        let mut splitter = Splitter::default();
        loop {
            let prompt = if splitter.pending() {
                format!("{}-> ", " ".repeat(self.database.len()))
            } else {
                format!("{}> ", self.database)
            };
            // rustyline blocks on the terminal; this lets the runtime's other work move on.
            let line = tokio::task::block_in_place(|| editor.readline(&prompt));
            let line = match line {
                Ok(line) => line,
                Err(ReadlineError::Interrupted) => {
                    splitter.reset();
                    continue;
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(format!("cannot read the terminal: {e}")),
            };
            if !line.trim().is_empty() {
                let _ = editor.add_history_entry(line.as_str());
            }
            let mut quit = false;
            for item in splitter.push_line(&line) {
                if let Ok(Flow::Quit) = self.run_item(item).await {
                    quit = true;
                    break;
                }
            }
            if quit {
                break;
            }
        }
        if let Some(path) = &history
            && let Err(e) = editor.save_history(path)
        {
            eprintln!("warning: cannot save the history to {}: {e}", path.display());
        }
        Ok(())
    }

    /// Runs every statement and meta-command of `text`, stopping at the first error.
    async fn run_script(&mut self, text: &str) -> Result<Flow, Failed> {
        let mut splitter = Splitter::default();
        for line in text.lines() {
            for item in splitter.push_line(line) {
                if let Flow::Quit = self.run_item(item).await? {
                    return Ok(Flow::Quit);
                }
            }
        }
        match splitter.finish() {
            Some(item) => self.run_item(item).await,
            None => Ok(Flow::Continue),
        }
    }

    async fn run_item(&mut self, item: Item) -> Result<Flow, Failed> {
        let result = match item {
            Item::Sql(sql) => self.run_sql(&sql).await.map(|()| Flow::Continue),
            Item::Meta(line) => match parse_meta(&line) {
                Ok(meta) => Box::pin(self.run_meta(meta)).await,
                Err(message) => Err(format!("ERROR: {message}")),
            },
        };
        result.map_err(|message| {
            eprintln!("{message}");
            Failed
        })
    }

    /// Runs one statement and prints its result.
    async fn run_sql(&mut self, sql: &str) -> Result<(), String> {
        let started = Instant::now();
        let result = self.query(sql).await?;
        let elapsed = started.elapsed();
        match result {
            Answer::Rows(rows) => {
                let text = render(&rows, self.format, self.expanded);
                self.print(&text);
            }
            Answer::Done(count) => {
                let tag = command_tag(sql, count);
                self.print(&format!("{tag}\n"));
                if matches!(first_words(sql, 1).as_slice(), [w] if w == "USE" || w == "SET") {
                    self.refresh_database().await;
                }
            }
        }
        if self.timing {
            self.print(&format!("Time: {:.3} ms\n", elapsed.as_secs_f64() * 1e3));
        }
        Ok(())
    }

    /// Sends one statement, reconnecting first if the connection was lost; Ctrl-C at a
    /// terminal sends a cancel request.
    async fn query(&mut self, sql: &str) -> Result<Answer, String> {
        if self.client.is_closed() {
            self.reconnect().await?;
        }
        let result = match self.interrupts.as_mut() {
            Some(interrupts) => {
                // A Ctrl-C from before this statement must not cancel it.
                while let Some(Some(())) = interrupts.recv().now_or_never() {}
                let cancel = self.client.cancel_token();
                let query = self.client.simple_query(sql);
                tokio::pin!(query);
                loop {
                    tokio::select! {
                        result = &mut query => break result,
                        _ = interrupts.recv() => {
                            if let Err(e) = cancel.cancel_query(NoTls).await {
                                eprintln!("could not send the cancel request: {e}");
                            }
                        }
                    }
                }
            }
            None => self.client.simple_query(sql).await,
        };
        let messages = result.map_err(|e| error_text(&e))?;
        let mut columns: Option<Vec<String>> = None;
        let mut rows = Vec::new();
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(described) => {
                    columns = Some(described.iter().map(|c| c.name().to_string()).collect());
                }
                SimpleQueryMessage::Row(row) => {
                    if columns.is_none() {
                        columns =
                            Some(row.columns().iter().map(|c| c.name().to_string()).collect());
                    }
                    rows.push((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect());
                }
                SimpleQueryMessage::CommandComplete(count) => {
                    return Ok(match columns {
                        Some(columns) => Answer::Rows(ResultSet { columns, rows }),
                        None => Answer::Done(count),
                    });
                }
                _ => {}
            }
        }
        // An empty statement (only comments) completes without a command.
        Ok(Answer::Done(0))
    }

    /// Runs `sql` for its rows, printing nothing.
    async fn rows(&mut self, sql: &str) -> Result<ResultSet, String> {
        match self.query(sql).await? {
            Answer::Rows(rows) => Ok(rows),
            Answer::Done(_) => Ok(ResultSet::default()),
        }
    }

    async fn reconnect(&mut self) -> Result<(), String> {
        let mut last_error = String::new();
        // The current node first, then the others in order.
        let order = std::iter::once(self.connected)
            .chain((0..self.urls.len()).filter(|i| *i != self.connected));
        for i in order.collect::<Vec<_>>() {
            match connect(&self.urls[i], Some(&self.database)).await {
                Ok((client, _)) => {
                    self.client = client;
                    self.connected = i;
                    eprintln!("# the connection was lost; reconnected to {}", self.urls[i]);
                    return Ok(());
                }
                Err(e) => last_error = e,
            }
        }
        Err(format!("ERROR: the connection was lost and no node answers: {last_error}"))
    }

    async fn refresh_database(&mut self) {
        if let Ok(rows) = self.rows("SHOW database").await
            && let Some(Some(name)) = rows.rows.first().and_then(|r| r.first())
        {
            self.database = name.clone();
        }
    }

    fn print(&mut self, text: &str) {
        // A closed pipe (`shoal sql -e ... | head`) is not worth a second error.
        let _ = match &mut self.output {
            Some((_, file)) => file.write_all(text.as_bytes()),
            None => std::io::stdout().write_all(text.as_bytes()),
        };
    }

    async fn run_meta(&mut self, meta: Meta) -> Result<Flow, String> {
        match meta {
            Meta::Describe(None) | Meta::Tables => self.run_sql("SHOW TABLES").await?,
            Meta::Describe(Some(table)) => self.describe(&table).await?,
            Meta::Indexes(Some(table)) => {
                self.run_sql(&format!("SHOW INDEXES FROM {table}")).await?
            }
            Meta::Indexes(None) => self.all_indexes().await?,
            Meta::Databases => self.run_sql("SHOW DATABASES").await?,
            Meta::Connect(database) => {
                self.query(&format!("USE {database}")).await?;
                self.refresh_database().await;
                eprintln!("# now using database {}", self.database);
            }
            Meta::Timing(on) => {
                self.timing = on.unwrap_or(!self.timing);
                eprintln!("Timing is {}.", if self.timing { "on" } else { "off" });
            }
            Meta::Expanded(on) => {
                self.expanded = on.unwrap_or(!self.expanded);
                eprintln!("Expanded display is {}.", if self.expanded { "on" } else { "off" });
            }
            Meta::Include(path) => {
                let text = read_script(std::path::Path::new(&path))?;
                let flow = Box::pin(self.run_script(&text))
                    .await
                    .map_err(|Failed| format!("ERROR: \\i {path}: stopped at the first error"))?;
                if let Flow::Quit = flow {
                    return Ok(Flow::Quit);
                }
            }
            Meta::Output(None) => self.output = None,
            Meta::Output(Some(path)) => {
                let file =
                    std::fs::File::create(&path).map_err(|e| format!("ERROR: \\o {path}: {e}"))?;
                self.output = Some((PathBuf::from(path), file));
            }
            Meta::SetFormat(format) => self.format = format,
            Meta::ShowSettings => {
                let output = match &self.output {
                    Some((path, _)) => path.display().to_string(),
                    None => "stdout".into(),
                };
                let on = |b: bool| if b { "on" } else { "off" };
                let text = format!(
                    "format   = {}\nexpanded = {}\ntiming   = {}\noutput   = {output}\n",
                    self.format,
                    on(self.expanded),
                    on(self.timing)
                );
                self.print(&text);
            }
            Meta::Demo(args) => {
                let Some(demo) = self.demo.clone() else {
                    return Err("ERROR: \\demo works only inside `shoal demo`".into());
                };
                let report = demo.command(&args).await.map_err(|e| format!("ERROR: {e}"))?;
                self.print(&report);
                // Leave a node the demo stopped at once, rather than at the next statement.
                if !demo.is_running(self.connected) {
                    self.reconnect().await?;
                }
            }
            Meta::Help => self.print(HELP),
            Meta::Quit => return Ok(Flow::Quit),
        }
        Ok(Flow::Continue)
    }

    /// `\d TABLE`: its columns, then its indexes as psql lists them.
    async fn describe(&mut self, table: &str) -> Result<(), String> {
        let columns = self.rows(&format!("SHOW COLUMNS FROM {table}")).await?;
        let indexes = self.rows(&format!("SHOW INDEXES FROM {table}")).await?;
        let mut text = format!("Table \"{table}\"\n");
        text.push_str(&render(&columns, Format::Table, false));
        let mut listed: Vec<(String, bool, Vec<String>)> = Vec::new();
        for row in &indexes.rows {
            let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let column = match field(4).as_str() {
                "DESC" => format!("{} DESC", field(3)),
                _ => field(3),
            };
            match listed.last_mut() {
                Some((name, _, columns)) if *name == field(0) => columns.push(column),
                _ => listed.push((field(0), field(1) == "f", vec![column])),
            }
        }
        if !listed.is_empty() {
            text.push_str("Indexes:\n");
            for (name, unique, columns) in listed {
                let unique = if unique { " UNIQUE" } else { "" };
                text.push_str(&format!("    \"{name}\"{unique} ({})\n", columns.join(", ")));
            }
        }
        self.print(&text);
        Ok(())
    }

    /// `\di`: every table's indexes in one result.
    async fn all_indexes(&mut self) -> Result<(), String> {
        let tables = self.rows("SHOW TABLES").await?;
        let mut all = ResultSet::default();
        for table in tables.rows.iter().filter_map(|r| r.first().cloned().flatten()) {
            let indexes = self.rows(&format!("SHOW INDEXES FROM \"{table}\"")).await?;
            if all.columns.is_empty() {
                all.columns = std::iter::once("table_name".to_string())
                    .chain(indexes.columns.iter().cloned())
                    .collect();
            }
            for row in indexes.rows {
                all.rows.push(std::iter::once(Some(table.clone())).chain(row).collect());
            }
        }
        if all.columns.is_empty() {
            all.columns = vec!["table_name".into(), "index_name".into()];
        }
        let text = render(&all, self.format, self.expanded);
        self.print(&text);
        Ok(())
    }
}

/// What one statement returned.
enum Answer {
    /// Rows (possibly none) under a row description.
    Rows(ResultSet),
    /// No rows; the number of rows affected.
    Done(u64),
}

/// Connects to `url`, in `database` if given; returns the client and its database.
async fn connect(url: &str, database: Option<&str>) -> Result<(Client, String), String> {
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| format!("not a PostgreSQL URL: {url:?}: {e}"))?;
    if config.get_user().is_none() {
        config.user("root");
    }
    if let Some(database) = database {
        config.dbname(database);
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    let database = config.get_dbname().unwrap_or("defaultdb").to_string();
    let connecting = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls));
    let (client, connection) = match connecting.await {
        Ok(Ok(connected)) => connected,
        Ok(Err(e)) => return Err(format!("cannot connect to {url}: {e}")),
        Err(_) => return Err(format!("cannot connect to {url}: no answer within 10 s")),
    };
    tokio::spawn(async move {
        // Ends when the server or the client closes the connection; the shell notices
        // through `Client::is_closed` and the next statement's error.
        let _ = connection.await;
    });
    Ok((client, database))
}

fn read_script(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("ERROR: cannot read {}: {e}", path.display()))
}

fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SHOAL_HISTORY") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".shoal_history"))
}

/// How an error is shown: the message, then its SQLSTATE, as `cockroach sql` prints them.
fn error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("ERROR: {}\nSQLSTATE: {}", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("\nDETAIL: {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("\nHINT: {hint}"));
            }
            text
        }
        None if error.is_closed() => format!(
            "ERROR: the connection to the server was lost ({error}); whether the statement \
             took effect is unknown\nSQLSTATE: 08006"
        ),
        None => format!("ERROR: {error}\nSQLSTATE: 08006"),
    }
}

/// The first `n` words of `sql` in upper case, after any leading comments.
fn first_words(sql: &str, n: usize) -> Vec<String> {
    let mut rest = sql.trim_start();
    loop {
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after).trim_start();
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after).trim_start();
        } else {
            break;
        }
    }
    rest.split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .take(n)
        .map(str::to_uppercase)
        .collect()
}

/// The command tag psql would print for `sql` having affected `rows` rows.
fn command_tag(sql: &str, rows: u64) -> String {
    let words = first_words(sql, 3);
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match word(0) {
        "INSERT" => format!("INSERT 0 {rows}"),
        "UPDATE" | "DELETE" | "UPSERT" | "SELECT" => format!("{} {rows}", word(0)),
        "CREATE" | "DROP" | "ALTER" => {
            let object = if word(1) == "UNIQUE" { word(2) } else { word(1) };
            format!("{} {object}", word(0))
        }
        "BEGIN" | "START" => "BEGIN".into(),
        "COMMIT" | "END" => "COMMIT".into(),
        "ROLLBACK" | "ABORT" => "ROLLBACK".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tags_follow_the_statement() {
        assert_eq!(command_tag("insert into t values (1), (2)", 2), "INSERT 0 2");
        assert_eq!(command_tag("-- why\nUPDATE t SET a = 1", 5), "UPDATE 5");
        assert_eq!(command_tag("/* x */ delete from t", 0), "DELETE 0");
        assert_eq!(command_tag("CREATE UNIQUE INDEX i ON t (a)", 0), "CREATE INDEX");
        assert_eq!(command_tag("create table t(a int)", 0), "CREATE TABLE");
        assert_eq!(command_tag("START TRANSACTION", 0), "BEGIN");
        assert_eq!(command_tag("set database = d", 0), "SET");
    }
}
