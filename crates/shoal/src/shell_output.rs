//! The shell's output: result sets rendered as psql prints them, or as CSV or JSON.
//!
//! Values arrive as the server's text (the simple query protocol), so every format prints
//! exactly what the server sent; NULL is shown as an empty cell, an empty CSV field or JSON
//! `null`.
//!
//! ```text
//!   table (aligned)                   expanded (\x)          csv            json
//!    id |  name                       -[ RECORD 1 ]--        id,name        [{"id":"1",
//!   ----+--------                     id   | 1                1,alice         "name":"alice"}]
//!     1 | alice                       name | alice
//!   (1 row)
//! ```
//!
//! Headers are centred and numbers right-aligned, as in psql. Without column types the shell
//! calls a column numeric when every non-NULL value in it parses as a number.
//!
//! Out of scope: wrapping wide tables to the terminal's width, a pager.

use crate::shell_input::Format;

/// The rows a statement returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of values as text; None is NULL.
    pub rows: Vec<Vec<Option<String>>>,
}

/// Renders `result` in `format`; `expanded` switches the table format to one line per column.
pub fn render(result: &ResultSet, format: Format, expanded: bool) -> String {
    match format {
        Format::Table if expanded => records(result),
        Format::Table => table(result),
        Format::Csv => csv(result),
        Format::Json => json(result),
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.parse::<f64>().is_ok()
}

fn table(result: &ResultSet) -> String {
    let columns = result.columns.len();
    let mut widths: Vec<usize> = result.columns.iter().map(|c| width(c)).collect();
    let mut numeric = vec![true; columns];
    for row in &result.rows {
        for (i, value) in row.iter().enumerate().take(columns) {
            if let Some(value) = value {
                widths[i] = widths[i].max(width(value));
                numeric[i] &= is_number(value);
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = result
        .columns
        .iter()
        .zip(&widths)
        .map(|(name, &w)| {
            let left = (w - width(name)) / 2;
            format!("{}{name}{}", " ".repeat(left), " ".repeat(w - width(name) - left))
        })
        .collect();
    push_line(&mut out, &header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push_str(&rule.join("+"));
    out.push('\n');
    for row in &result.rows {
        let cells: Vec<String> = (0..columns)
            .map(|i| {
                let value = row.get(i).cloned().flatten().unwrap_or_default();
                if numeric[i] {
                    format!("{value:>w$}", w = widths[i])
                } else {
                    format!("{value:<w$}", w = widths[i])
                }
            })
            .collect();
        push_line(&mut out, &cells);
    }
    let n = result.rows.len();
    out.push_str(&format!("({n} row{})\n", if n == 1 { "" } else { "s" }));
    out
}

/// Appends ` a | b ` for `cells`, without trailing spaces.
fn push_line(out: &mut String, cells: &[String]) {
    let line: Vec<String> = cells.iter().map(|c| format!(" {c} ")).collect();
    out.push_str(line.join("|").trim_end());
    out.push('\n');
}

fn records(result: &ResultSet) -> String {
    if result.rows.is_empty() {
        return "(0 rows)\n".into();
    }
    let name_width = result.columns.iter().map(|c| width(c)).max().unwrap_or(0);
    let mut out = String::new();
    for (n, row) in result.rows.iter().enumerate() {
        out.push_str(&format!("-[ RECORD {} ]{}\n", n + 1, "-".repeat(name_width.max(4))));
        for (name, value) in result.columns.iter().zip(row) {
            let value = value.as_deref().unwrap_or("");
            out.push_str(format!("{name:<name_width$} | {value}").trim_end());
            out.push('\n');
        }
    }
    out
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn csv(result: &ResultSet) -> String {
    let mut out = String::new();
    let header: Vec<String> = result.columns.iter().map(|c| csv_field(c)).collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for row in &result.rows {
        let fields: Vec<String> =
            row.iter().map(|v| v.as_deref().map(csv_field).unwrap_or_default()).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn json(result: &ResultSet) -> String {
    let rows: Vec<serde_json::Value> = result
        .rows
        .iter()
        .map(|row| {
            let object = result
                .columns
                .iter()
                .zip(row)
                .map(|(name, value)| (name.clone(), value.clone().into()))
                .collect::<serde_json::Map<_, _>>();
            serde_json::Value::Object(object)
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&rows).unwrap_or_default();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> ResultSet {
        ResultSet {
            columns: vec!["id".into(), "name".into(), "balance".into()],
            rows: vec![
                vec![Some("1".into()), Some("alice".into()), Some("10.50".into())],
                vec![Some("22".into()), Some("bob, \"the\" builder".into()), None],
            ],
        }
    }

    #[test]
    fn tables_align_like_psql() {
        let expected = concat!(
            " id |        name        | balance\n",
            "----+--------------------+---------\n",
            "  1 | alice              |   10.50\n",
            " 22 | bob, \"the\" builder |\n",
            "(2 rows)\n",
        );
        assert_eq!(render(&users(), Format::Table, false), expected);
        let empty = ResultSet { columns: vec!["x".into()], rows: vec![] };
        assert_eq!(render(&empty, Format::Table, false), " x\n---\n(0 rows)\n");
        let one = ResultSet { columns: vec!["é".into()], rows: vec![vec![Some("ü".into())]] };
        assert_eq!(render(&one, Format::Table, false), " é\n---\n ü\n(1 row)\n");
    }

    #[test]
    fn expanded_display_prints_one_line_per_column() {
        let expected = concat!(
            "-[ RECORD 1 ]-------\n",
            "id      | 1\n",
            "name    | alice\n",
            "balance | 10.50\n",
            "-[ RECORD 2 ]-------\n",
            "id      | 22\n",
            "name    | bob, \"the\" builder\n",
            "balance |\n",
        );
        assert_eq!(render(&users(), Format::Table, true), expected);
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_json_keeps_nulls() {
        let expected = "id,name,balance\n1,alice,10.50\n22,\"bob, \"\"the\"\" builder\",\n";
        assert_eq!(render(&users(), Format::Csv, false), expected);
        let json: serde_json::Value =
            serde_json::from_str(&render(&users(), Format::Json, false)).unwrap();
        assert_eq!(json[1]["name"], "bob, \"the\" builder");
        assert_eq!(json[1]["balance"], serde_json::Value::Null);
        assert_eq!(json[0]["id"], "1");
    }
}
