//! Planner goldenscripts: each script in `testscripts/plan/` declares tables and shows the
//! plans of queries over them, with the key spans the optimizer derived. Scripts in
//! `testscripts/params/` show what preparing a statement with placeholders infers
//! ([`crate::params`]) and what binding values makes of it.
//!
//! ```text
//!   > CREATE TABLE t (k INT PRIMARY KEY, v STRING)     declares a table (no output)
//!   > CREATE INDEX t_v ON t (v)                        declares an index (no output)
//!   > SELECT v FROM t WHERE k = 1                      prints the plan and output columns
//!   !> SELECT nope FROM t                              prints the error and its SQLSTATE
//!   prepare "SELECT v FROM t WHERE k = $1"             prints parameter and column types
//!   bind "SELECT v FROM t WHERE k = $1" 7              prints the statement run for values
//! ```

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::sync::Arc;

use goldenscript::{Command, Context};
use sqlparser::ast::Statement;
use test_each_file::test_each_path;

use crate::catalog::{DEFAULT_DATABASE, DEFAULT_DATABASE_ID, Snapshot};
use crate::ddl::table_from_create;
use crate::expr::EvalContext;
use crate::planner::Planner;

test_each_path! { in "crates/shoal-sql/testscripts/plan" as scripts => run_script }
test_each_path! { in "crates/shoal-sql/testscripts/params" as params => run_script }

fn run_script(path: &std::path::Path) {
    let mut runner = Runner { snapshot: Snapshot::default(), next_id: 100 };
    goldenscript::run(&mut runner, path).expect("goldenscript failed");
}

struct Runner {
    snapshot: Snapshot,
    next_id: u64,
}

impl goldenscript::Runner for Runner {
    type Command = Command;

    fn run(&mut self, command: &Command, _: &Context) -> Result<String, Box<dyn StdError>> {
        let mut out = String::new();
        if matches!(command.name.as_str(), "prepare" | "bind") {
            let mut args = command.args.iter().map(|a| match a {
                goldenscript::Argument::Positional(v) => v.clone(),
                goldenscript::Argument::KeyValue(k, v) => format!("{k}={v}"),
                _ => String::new(),
            });
            let sql = args.next().ok_or("prepare and bind take the statement first")?;
            let ctx = EvalContext::at(shoal_hlc::Timestamp::ZERO);
            let parsed = crate::params::parse(&sql).map_err(with_code)?;
            let prepared = crate::params::prepare(parsed, &[], Some(&self.snapshot), ctx)
                .map_err(with_code)?;
            if command.name == "bind" {
                let values: Vec<_> = args
                    .map(|a| match a.as_str() {
                        "NULL" => crate::Value::Null,
                        _ => crate::Value::Text(a),
                    })
                    .collect();
                match prepared.bind(&values).map_err(with_code)? {
                    Some(crate::syntax::Parsed::Statement(statement)) => {
                        writeln!(out, "{statement}")?
                    }
                    other => writeln!(out, "{other:?}")?,
                }
                return Ok(out);
            }
            let params: Vec<String> = prepared
                .param_types
                .iter()
                .enumerate()
                .map(|(i, t)| format!("${} {t}", i + 1))
                .collect();
            writeln!(out, "params: {}", params.join(", "))?;
            match &prepared.columns {
                Some(columns) => {
                    let columns: Vec<String> = columns
                        .iter()
                        .map(|c| match c.data_type {
                            Some(t) => format!("{} {t}", c.name),
                            None => format!("{} ?", c.name),
                        })
                        .collect();
                    writeln!(out, "columns: {}", columns.join(", "))?;
                }
                None => writeln!(out, "no rows")?,
            }
            return Ok(out);
        }
        let statements = crate::parse(&command.name).map_err(with_code)?;
        for statement in statements {
            match statement {
                Statement::CreateTable(create) => {
                    let name = crate::binder::object_name(&create.name).map_err(with_code)?;
                    let table =
                        table_from_create(&create, self.next_id, DEFAULT_DATABASE_ID, &name)
                            .map_err(with_code)?;
                    self.next_id += 1;
                    let mut contents = (*self.snapshot.contents).clone();
                    contents.tables.insert((table.parent_id, name), Arc::new(table));
                    self.snapshot = Arc::new(contents).view(DEFAULT_DATABASE);
                }
                // Plain ascending columns only: enough to show plans that use an index.
                Statement::CreateIndex(create) => {
                    let table_name =
                        crate::binder::object_name(&create.table_name).map_err(with_code)?;
                    let table = self.snapshot.table(&table_name).map_err(with_code)?;
                    let columns: Vec<(String, bool)> =
                        create.columns.iter().map(|c| (c.column.expr.to_string(), true)).collect();
                    let mut updated = (*table).clone();
                    updated.indexes.push(crate::catalog::IndexDescriptor {
                        id: updated.next_index_id,
                        name: create.name.as_ref().map_or("idx".into(), |n| n.to_string()),
                        columns: crate::ddl::resolve_columns(&updated, &columns)
                            .map_err(with_code)?,
                        unique: create.unique,
                        hash_buckets: None,
                    });
                    updated.next_index_id += 1;
                    let mut contents = (*self.snapshot.contents).clone();
                    contents.tables.insert((table.parent_id, table_name), Arc::new(updated));
                    self.snapshot = Arc::new(contents).view(DEFAULT_DATABASE);
                }
                Statement::Query(query) => {
                    let planner =
                        Planner::new(&self.snapshot, EvalContext::at(shoal_hlc::Timestamp::ZERO));
                    let planned = planner.query(&query).map_err(with_code)?;
                    let names: Vec<&str> =
                        planned.columns.iter().map(|c| c.name.as_str()).collect();
                    writeln!(out, "columns: {}", names.join(", "))?;
                    for line in planned.plan.explain(&|_| "-".to_string()) {
                        writeln!(out, "{line}")?;
                    }
                }
                other => return Err(format!("unsupported statement {other}").into()),
            }
        }
        Ok(out)
    }
}

fn with_code(e: crate::SqlError) -> Box<dyn StdError> {
    format!("{} (SQLSTATE {})", e, e.sqlstate()).into()
}
