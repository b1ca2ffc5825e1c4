#![allow(missing_docs)] // criterion_group! defines undocumented functions
//! What planning costs: SQL text to an optimized plan, without running it. The point SELECT
//! by primary key is the OLTP case whose overhead ADR 0012 compares with DataFusion's.
//!
//! Run: `cargo bench -p shoal-sql --bench plan` (or `make bench-plan`).

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use shoal_sql::catalog::{DEFAULT_DATABASE, DEFAULT_DATABASE_ID, Snapshot};
use shoal_sql::ddl::table_from_create;
use shoal_sql::expr::EvalContext;
use shoal_sql::planner::Planner;
use sqlparser::ast::Statement;

fn catalog() -> Snapshot {
    let mut snapshot = Snapshot::default();
    for (id, name) in [(100, "t"), (101, "u"), (102, "w")] {
        let sql = format!("CREATE TABLE {name} (k INT PRIMARY KEY, v STRING, n INT)");
        let Ok(mut statements) = shoal_sql::parse(&sql) else { panic!("parse {sql}") };
        let Some(Statement::CreateTable(create)) = statements.pop() else { panic!("{sql}") };
        let table = table_from_create(&create, id, DEFAULT_DATABASE_ID, name).expect("table");
        let mut contents = (*snapshot.contents).clone();
        contents.tables.insert((table.parent_id, name.to_string()), Arc::new(table));
        snapshot = Arc::new(contents).view(DEFAULT_DATABASE);
    }
    snapshot
}

fn plan(c: &mut Criterion) {
    let catalog = catalog();
    let ctx = EvalContext::at(shoal_hlc::Timestamp::ZERO);
    for (name, sql) in [
        ("point select", "SELECT v FROM t WHERE k = 42"),
        ("3-way join", "SELECT t.v FROM t JOIN u ON t.k = u.k JOIN w ON u.k = w.k WHERE t.k = 42"),
    ] {
        c.bench_function(&format!("parse and plan: {name}"), |b| {
            b.iter(|| {
                let Ok(mut statements) = shoal_sql::parse(sql) else { panic!("parse") };
                let Some(Statement::Query(query)) = statements.pop() else { panic!("query") };
                Planner::new(&catalog, ctx).query(&query).expect("plan")
            })
        });
    }
}

criterion_group!(benches, plan);
criterion_main!(benches);
