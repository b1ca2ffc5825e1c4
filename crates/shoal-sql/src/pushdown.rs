//! Filters pushed to the ranges: a scan of a table's rows carries its WHERE predicate, and
//! each range returns only the rows that pass it.
//!
//! ```text
//!   SELECT k FROM t WHERE v % 100 = 7          (t: 100,000 rows over 4 ranges)
//!
//!   without pushdown: every range ships every row; the gateway keeps 1,000
//!   with pushdown:    Scan { span, limit: 1000, filter: <table t, v % 100 = 7, now()> }
//!                     each range decodes its rows and ships the 1,000 that pass
//! ```
//!
//! The program ([`Program`], postcard) holds what a range needs to judge a row without the
//! catalog: the table's descriptor (to decode keys and values), the predicate as a bound
//! [`Expr`] over the table's columns, and the statement's [`EvalContext`] (so `now()` means
//! the transaction's time there too). The KV layer sees only bytes and a
//! [`ScanFilters`] implementation ([`SqlScanFilters`]) that the server installs in its store.
//!
//! # Invariants
//!
//! - The scan still filters what comes back ([`crate::exec`]): pushdown can only leave out
//!   rows the gateway would have dropped, so a range that cannot compile the program (an
//!   older node, a corrupt one) returns every row and the answer is unchanged.
//! - A row whose predicate fails to evaluate (a division by zero, a bad cast) or whose bytes
//!   do not decode is kept: the gateway evaluates it again and reports the error with its
//!   SQLSTATE, exactly as without pushdown.
//! - Predicates are deterministic: they read only the row and the context.
//!
//! # Out of scope
//!
//! Pushing filters into secondary index scans (their rows are looked up at the gateway),
//! aggregation and projection at the ranges (DistSQL's job in CockroachDB), and a cost model
//! deciding when pushing does not pay (a filter that keeps every row costs a decode twice).

use serde::{Deserialize, Serialize};
use shoal_api::scan_filter::{RowPredicate, ScanFilter, ScanFilters};

use crate::catalog::TableDescriptor;
use crate::exec::passes;
use crate::expr::{EvalContext, Expr};
use crate::rowcodec::RowCodec;

/// What a range needs to filter a table's rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Program {
    /// The table whose primary index is scanned.
    pub table: TableDescriptor,
    /// The predicate over the table's columns, in descriptor order.
    pub predicate: Expr,
    /// The statement's evaluation context.
    pub ctx: EvalContext,
}

/// Returns the filter that makes a range keep only `table`'s rows passing `predicate`.
pub fn scan_filter(table: &TableDescriptor, predicate: &Expr, ctx: &EvalContext) -> ScanFilter {
    let program = Program { table: table.clone(), predicate: predicate.clone(), ctx: *ctx };
    ScanFilter {
        program: postcard::to_allocvec(&program).expect("encoding into a Vec cannot fail"),
    }
}

/// Compiles [`Program`]s on a node's store.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlScanFilters;

impl ScanFilters for SqlScanFilters {
    fn compile<'a>(&'a self, filter: &ScanFilter) -> Option<RowPredicate<'a>> {
        let program: Program = postcard::from_bytes(&filter.program).ok()?;
        let codec = RowCodec::default();
        Some(Box::new(move |key, value| match codec.decode_row(&program.table, key, value) {
            Ok(row) => passes(&program.predicate, &row, &program.ctx).unwrap_or(true),
            Err(_) => true,
        }))
    }
}

#[cfg(test)]
mod tests {
    use shoal_keys::Key;

    use super::*;
    use crate::ddl::table_from_create;
    use crate::expr::BinaryOp;
    use crate::types::Value;

    fn table() -> TableDescriptor {
        let Ok(statement) = crate::parse("CREATE TABLE t (k INT PRIMARY KEY, v INT)") else {
            panic!("parse")
        };
        let sqlparser::ast::Statement::CreateTable(create) = &statement[0] else { panic!() };
        table_from_create(create, 100, 1, "t").expect("descriptor")
    }

    fn row(table: &TableDescriptor, k: i64, v: Value) -> (Key, Vec<u8>) {
        let codec = RowCodec::default();
        let row = [Value::Int(k), v];
        (
            codec.primary_key(table, &row).expect("key"),
            codec.encode_value(table, &row).expect("value"),
        )
    }

    #[test]
    fn a_compiled_filter_keeps_passing_rows_and_rows_it_cannot_judge() {
        let table = table();
        let ctx = EvalContext::at(shoal_hlc::Timestamp::ZERO);
        // 10 / v > 1: false for v = 20, true for v = 2, an error (division by zero) for v = 0.
        let predicate = Expr::Binary(
            BinaryOp::Gt,
            Box::new(Expr::Binary(
                BinaryOp::Div,
                Box::new(Expr::Literal(Value::Int(10))),
                Box::new(Expr::Column(1)),
            )),
            Box::new(Expr::Literal(Value::Int(1))),
        );
        let filter = scan_filter(&table, &predicate, &ctx);
        let filters = SqlScanFilters;
        let Some(mut keep) = filters.compile(&filter) else { panic!("does not compile") };
        let (k, v) = row(&table, 1, Value::Int(20));
        assert!(!keep(&k, &v));
        let (k, v) = row(&table, 2, Value::Int(2));
        assert!(keep(&k, &v));
        let (k, v) = row(&table, 3, Value::Int(0));
        assert!(keep(&k, &v), "a row whose predicate fails is kept for the gateway to report");
        assert!(keep(&Key::from("garbage"), b"\xff\x00"), "undecodable rows are kept");
    }

    #[test]
    fn garbage_programs_do_not_compile() {
        let filters = SqlScanFilters;
        for program in [vec![], vec![0xff; 7], b"not a program".to_vec()] {
            assert!(filters.compile(&ScanFilter { program }).is_none());
        }
    }
}
