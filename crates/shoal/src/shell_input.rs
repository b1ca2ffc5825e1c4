//! The shell's input: lines in, statements and meta-commands out.
//!
//! A person types SQL over several lines and ends each statement with `;`; a script holds many
//! statements, some spanning lines, some sharing one. [`Splitter`] takes lines one at a time
//! and hands back each complete statement. It knows enough of PostgreSQL's lexical rules that a
//! `;` inside a string, a quoted name, a comment or a dollar-quoted body does not end anything:
//!
//! ```text
//!   line                                  state after        emitted
//!   INSERT INTO t VALUES (1, 'a;b');      Normal             "INSERT INTO t VALUES (1, 'a;b')"
//!   SELECT 1; SELECT                      Normal (pending)   "SELECT 1"
//!   2 /* ; */ ;                           Normal             "SELECT\n2 /* ; */"
//!   SELECT $$ ;                           Dollar("$$")       -
//!   $$;                                   Normal             "SELECT $$ ;\n$$"
//!   \d users                              (unchanged)        Meta("\d users")
//! ```
//!
//! A line that starts with a backslash is a meta-command (`\d`, `\timing`, ...), as in psql,
//! even while a statement is pending: the pending text is kept. [`parse_meta`] turns it into
//! a [`Meta`].
//!
//! Out of scope: backslash commands in the middle of a line, psql variables and `:name`
//! interpolation, `\copy`.
//!
//! Hazard: the scan works on bytes. That is safe for UTF-8 because every byte it looks for is
//! ASCII, and no byte of a multi-byte character is.

use std::fmt;

/// Something the shell runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// One SQL statement, without its terminating `;`.
    Sql(String),
    /// A backslash command line, such as `\d users`.
    Meta(String),
}

/// Where the scanner is inside the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum State {
    #[default]
    Normal,
    /// Inside `'...'`.
    Quoted,
    /// Inside `E'...'`, where a backslash escapes the next character.
    EscapeQuoted,
    /// Inside `"..."`.
    DoubleQuoted,
    /// After `--`, up to the end of the line.
    LineComment,
    /// Inside `/* ... */`, which nests in PostgreSQL.
    BlockComment(u32),
    /// Inside a dollar-quoted body opened by the tag, such as `$$` or `$fn$`.
    Dollar(String),
}

/// Collects lines into complete statements.
#[derive(Debug, Default)]
pub struct Splitter {
    /// The pending statement's text.
    buffer: String,
    state: State,
    /// Whether `buffer` holds anything besides whitespace and comments.
    significant: bool,
}

impl Splitter {
    /// Takes one line (without its newline) and returns what it completes.
    pub fn push_line(&mut self, line: &str) -> Vec<Item> {
        if self.state == State::Normal && line.trim_start().starts_with('\\') {
            return vec![Item::Meta(line.trim().to_string())];
        }
        let text = format!("{line}\n");
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let next = bytes.get(i + 1).copied();
            match &mut self.state {
                State::Normal => match b {
                    b'\'' => {
                        let escape = i > 0
                            && matches!(bytes[i - 1], b'e' | b'E')
                            && (i < 2 || !is_ident_byte(bytes[i - 2]));
                        self.state = if escape { State::EscapeQuoted } else { State::Quoted };
                        self.significant = true;
                    }
                    b'"' => {
                        self.state = State::DoubleQuoted;
                        self.significant = true;
                    }
                    b'-' if next == Some(b'-') => {
                        self.state = State::LineComment;
                        i += 1;
                    }
                    b'/' if next == Some(b'*') => {
                        self.state = State::BlockComment(1);
                        i += 1;
                    }
                    b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => {
                        self.significant = true;
                        if let Some(tag) = dollar_tag(&bytes[i..]) {
                            i += tag.len() - 1;
                            self.state = State::Dollar(tag);
                        }
                    }
                    b';' => {
                        self.buffer.push_str(&text[start..i]);
                        if self.significant {
                            out.push(Item::Sql(self.buffer.trim().to_string()));
                        }
                        self.buffer.clear();
                        self.significant = false;
                        start = i + 1;
                    }
                    _ if !b.is_ascii_whitespace() => self.significant = true,
                    _ => {}
                },
                State::Quoted => {
                    if b == b'\'' {
                        self.state = State::Normal;
                    }
                }
                State::EscapeQuoted => match b {
                    b'\\' => i += 1,
                    b'\'' => self.state = State::Normal,
                    _ => {}
                },
                State::DoubleQuoted => {
                    if b == b'"' {
                        self.state = State::Normal;
                    }
                }
                State::LineComment => {
                    if b == b'\n' {
                        self.state = State::Normal;
                    }
                }
                State::BlockComment(depth) => {
                    if b == b'/' && next == Some(b'*') {
                        *depth += 1;
                        i += 1;
                    } else if b == b'*' && next == Some(b'/') {
                        *depth -= 1;
                        i += 1;
                        if *depth == 0 {
                            self.state = State::Normal;
                        }
                    }
                }
                State::Dollar(tag) => {
                    if bytes[i..].starts_with(tag.as_bytes()) {
                        i += tag.len() - 1;
                        self.state = State::Normal;
                    }
                }
            }
            i += 1;
        }
        self.buffer.push_str(&text[start..]);
        if !self.pending() {
            self.buffer.clear();
        }
        out
    }

    /// Whether a statement has been started and not yet ended.
    pub fn pending(&self) -> bool {
        self.significant || self.state != State::Normal
    }

    /// Returns the unterminated statement at the end of a script, if there is one (a script's
    /// last statement may omit its `;`).
    pub fn finish(&mut self) -> Option<Item> {
        let significant = std::mem::take(&mut self.significant);
        self.state = State::Normal;
        let text = std::mem::take(&mut self.buffer);
        significant.then(|| Item::Sql(text.trim().to_string()))
    }

    /// Drops the pending statement (Ctrl-C at the prompt).
    pub fn reset(&mut self) {
        *self = Splitter::default();
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The dollar-quote tag at the start of `bytes` (`$$`, `$body$`), if it opens one; `$1` is a
/// placeholder, not a tag.
fn dollar_tag(bytes: &[u8]) -> Option<String> {
    let end = bytes[1..].iter().position(|b| *b == b'$')? + 1;
    let name = &bytes[1..end];
    let valid =
        name.first().is_none_or(|b| !b.is_ascii_digit()) && name.iter().all(|b| is_ident_byte(*b));
    valid.then(|| String::from_utf8_lossy(&bytes[..=end]).into_owned())
}

/// How result rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header and a row count, as psql prints them.
    #[default]
    Table,
    /// RFC 4180 CSV with a header line; NULL is an empty field.
    Csv,
    /// One JSON array of objects per result, values as the server's text (NULL is null).
    Json,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
        })
    }
}

/// A meta-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    /// `\d [table]`: the tables, or one table's columns and indexes.
    Describe(Option<String>),
    /// `\dt`: the tables.
    Tables,
    /// `\di [table]`: indexes, of one table or all.
    Indexes(Option<String>),
    /// `\l`: the databases.
    Databases,
    /// `\c DATABASE`: switch databases.
    Connect(String),
    /// `\timing [on|off]`: print each statement's time (no argument toggles).
    Timing(Option<bool>),
    /// `\x [on|off]`: expanded display, one line per column (no argument toggles).
    Expanded(Option<bool>),
    /// `\i FILE`: run the statements in a file.
    Include(String),
    /// `\o [FILE]`: send results to a file, or back to standard output.
    Output(Option<String>),
    /// `\set format FORMAT`.
    SetFormat(Format),
    /// `\set` alone: show the settings.
    ShowSettings,
    /// `\demo ARGS...`: control the nodes of `shoal demo`.
    Demo(Vec<String>),
    /// `\?`.
    Help,
    /// `\q`.
    Quit,
}

/// What `\?` prints.
pub const HELP: &str = "\
General
  \\q                     quit
  \\?                     this help
Informational
  \\d [TABLE]             list tables, or describe one (columns and indexes)
  \\dt                    list tables
  \\di [TABLE]            list indexes
  \\l                     list databases
Connection
  \\c DATABASE            use another database
Input and output
  \\i FILE                run the statements in FILE
  \\o [FILE]              send results to FILE, or back to standard output
Formatting
  \\set format FORMAT     table (default), csv or json
  \\x [on|off]            expanded display: one line per column
  \\timing [on|off]       print how long each statement took
  \\set                   show the settings
Demo (inside `shoal demo` only)
  \\demo ls               list the demo's nodes
  \\demo shutdown N       stop node N (its store stays)
  \\demo restart N        start node N again
";

/// Parses a meta-command line (starting with `\`); a `--` word starts a comment.
pub fn parse_meta(line: &str) -> Result<Meta, String> {
    let mut words = line.split_whitespace().take_while(|w| !w.starts_with("--"));
    let command = words.next().unwrap_or_default();
    let args: Vec<&str> = words.collect();
    let one = |args: &[&str]| -> Result<Option<String>, String> {
        match args {
            [] => Ok(None),
            [arg] => Ok(Some(arg.to_string())),
            _ => Err(format!("{command}: too many arguments")),
        }
    };
    let switch = |args: &[&str]| -> Result<Option<bool>, String> {
        match one(args)?.as_deref() {
            None => Ok(None),
            Some("on") => Ok(Some(true)),
            Some("off") => Ok(Some(false)),
            Some(other) => Err(format!("{command}: expected on or off, got {other:?}")),
        }
    };
    let required = |args: &[&str], what: &str| -> Result<String, String> {
        one(args)?.ok_or_else(|| format!("{command}: missing {what}"))
    };
    match command {
        "\\d" => Ok(Meta::Describe(one(&args)?)),
        "\\dt" => one(&args).map(|_| Meta::Tables),
        "\\di" => Ok(Meta::Indexes(one(&args)?)),
        "\\l" => one(&args).map(|_| Meta::Databases),
        "\\c" | "\\connect" => Ok(Meta::Connect(required(&args, "database name")?)),
        "\\timing" => Ok(Meta::Timing(switch(&args)?)),
        "\\x" => Ok(Meta::Expanded(switch(&args)?)),
        "\\i" => Ok(Meta::Include(required(&args, "file name")?)),
        "\\o" => Ok(Meta::Output(one(&args)?)),
        "\\set" => match args.as_slice() {
            [] => Ok(Meta::ShowSettings),
            ["format", format] => clap::ValueEnum::from_str(format, true)
                .map(Meta::SetFormat)
                .map_err(|_| format!("\\set format: {format:?} is not table, csv or json")),
            [name, ..] => Err(format!("\\set: unknown setting {name:?} (only format)")),
        },
        "\\demo" => Ok(Meta::Demo(args.iter().map(|s| s.to_string()).collect())),
        "\\?" | "\\h" | "\\help" => Ok(Meta::Help),
        "\\q" | "\\quit" => Ok(Meta::Quit),
        other => Err(format!("invalid command {other}. Try \\? for help.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(lines: &[&str]) -> (Vec<Item>, Option<Item>) {
        let mut splitter = Splitter::default();
        let items = lines.iter().flat_map(|l| splitter.push_line(l)).collect();
        (items, splitter.finish())
    }

    fn sql(s: &str) -> Item {
        Item::Sql(s.into())
    }

    #[test]
    fn semicolons_end_statements_outside_quotes_and_comments() {
        let (items, rest) = split(&["INSERT INTO t VALUES (1, 'a;b'); SELECT \"x;\" FROM t;"]);
        assert_eq!(
            items,
            vec![sql("INSERT INTO t VALUES (1, 'a;b')"), sql("SELECT \"x;\" FROM t")]
        );
        assert_eq!(rest, None);
        let (items, _) = split(&["SELECT 1 -- not ; the end", "; SELECT /* ; /* ; */ ; */ 2;"]);
        assert_eq!(
            items,
            vec![sql("SELECT 1 -- not ; the end"), sql("SELECT /* ; /* ; */ ; */ 2")]
        );
        let (items, _) = split(&["SELECT 'it''s;'; SELECT E'a\\';b';"]);
        assert_eq!(items, vec![sql("SELECT 'it''s;'"), sql("SELECT E'a\\';b'")]);
        let (items, _) = split(&["SELECT $$ ; $$, $tag$ $$ ; $tag$;", "SELECT $1;"]);
        assert_eq!(items, vec![sql("SELECT $$ ; $$, $tag$ $$ ; $tag$"), sql("SELECT $1")]);
        let (items, _) = split(&["SELECT 'héllo;'; SELECT 'ü';"]);
        assert_eq!(items, vec![sql("SELECT 'héllo;'"), sql("SELECT 'ü'")]);
    }

    #[test]
    fn statements_span_lines_and_comments_alone_are_not_statements() {
        let mut splitter = Splitter::default();
        assert!(splitter.push_line("SELECT").is_empty());
        assert!(splitter.pending());
        assert_eq!(splitter.push_line("  1;"), vec![sql("SELECT\n  1")]);
        assert!(!splitter.pending());
        assert!(splitter.push_line("-- only a comment").is_empty());
        assert!(splitter.push_line(";;").is_empty());
        assert!(!splitter.pending());
        assert!(splitter.push_line("/* open").is_empty());
        assert!(splitter.pending(), "an open comment keeps the continuation prompt");
        assert!(splitter.push_line("close */").is_empty());
        assert!(!splitter.pending());
        assert_eq!(splitter.push_line("SELECT 'a").len(), 0);
        assert_eq!(splitter.push_line("b';"), vec![sql("SELECT 'a\nb'")]);
    }

    #[test]
    fn the_last_statement_of_a_script_needs_no_semicolon() {
        assert_eq!(split(&["SELECT 1; SELECT 2"]).1, Some(sql("SELECT 2")));
        assert_eq!(split(&["SELECT 1;", "  "]).1, None);
    }

    #[test]
    fn backslash_lines_are_meta_commands_and_keep_the_pending_statement() {
        let mut splitter = Splitter::default();
        splitter.push_line("SELECT");
        assert_eq!(splitter.push_line("  \\timing on"), vec![Item::Meta("\\timing on".into())]);
        assert_eq!(splitter.push_line("1;"), vec![sql("SELECT\n1")]);
        // Inside a string a backslash line is text.
        splitter.push_line("SELECT 'a");
        assert_eq!(splitter.push_line("\\x';"), vec![sql("SELECT 'a\n\\x'")]);
    }

    #[test]
    fn meta_commands_parse_or_say_why_not() {
        assert_eq!(parse_meta("\\d"), Ok(Meta::Describe(None)));
        assert_eq!(parse_meta("\\d users"), Ok(Meta::Describe(Some("users".into()))));
        assert_eq!(parse_meta("\\dt"), Ok(Meta::Tables));
        assert_eq!(parse_meta("\\di t"), Ok(Meta::Indexes(Some("t".into()))));
        assert_eq!(parse_meta("\\l"), Ok(Meta::Databases));
        assert_eq!(parse_meta("\\c shop"), Ok(Meta::Connect("shop".into())));
        assert_eq!(parse_meta("\\timing"), Ok(Meta::Timing(None)));
        assert_eq!(parse_meta("\\x on"), Ok(Meta::Expanded(Some(true))));
        assert_eq!(parse_meta("\\i a.sql"), Ok(Meta::Include("a.sql".into())));
        assert_eq!(parse_meta("\\o"), Ok(Meta::Output(None)));
        assert_eq!(parse_meta("\\set format CSV"), Ok(Meta::SetFormat(Format::Csv)));
        assert_eq!(parse_meta("\\set"), Ok(Meta::ShowSettings));
        assert_eq!(
            parse_meta("\\demo shutdown 2"),
            Ok(Meta::Demo(vec!["shutdown".into(), "2".into()]))
        );
        assert_eq!(parse_meta("\\q"), Ok(Meta::Quit));
        assert_eq!(parse_meta("\\dt -- the tables"), Ok(Meta::Tables));
        assert_eq!(parse_meta("\\?"), Ok(Meta::Help));
        assert!(parse_meta("\\x maybe").unwrap_err().contains("on or off"));
        assert!(parse_meta("\\i").unwrap_err().contains("missing file name"));
        assert!(parse_meta("\\set format xml").unwrap_err().contains("not table, csv or json"));
        assert!(parse_meta("\\set color on").unwrap_err().contains("unknown setting"));
        assert!(parse_meta("\\dt a b").unwrap_err().contains("too many"));
        assert_eq!(parse_meta("\\zz").unwrap_err(), "invalid command \\zz. Try \\? for help.");
    }
}
