//! `shoal-jepsen`: runs the harness, or re-checks a saved history.

use std::process::ExitCode;
use std::time::Duration;

use shoal_jepsen::checker::register;
use shoal_jepsen::history;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["check", path] => check(path),
        _ => {
            eprintln!("usage: shoal-jepsen check HISTORY.jsonl");
            ExitCode::from(2)
        }
    }
}

fn check(path: &str) -> ExitCode {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("cannot open {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let ops = match history::read_jsonl(std::io::BufReader::new(file)) {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    let verdict = register::check(&ops, Duration::from_secs(60));
    println!("{}", serde_json::to_string_pretty(&verdict).unwrap_or_default());
    if verdict.valid() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
