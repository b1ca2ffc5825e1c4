//! Sessions: where statements run, in implicit or explicit transactions.
//!
//! ```text
//!   no transaction ──BEGIN──▶ open ──error──▶ aborted ──ROLLBACK/COMMIT──▶ no transaction
//!        │                     │  ──COMMIT/ROLLBACK──▶ no transaction
//!        └─ any other statement: an implicit transaction, retried on 40001
//! ```
//!
//! A statement outside BEGIN runs in its own transaction, which the session restarts on a
//! retryable error (a new epoch, or after an abort a new transaction of higher priority) up to
//! [`MAX_ATTEMPTS`] times, so clients rarely see 40001 for single statements. Inside BEGIN the
//! client owns the transaction: a retryable error is returned (40001) and, as in PostgreSQL,
//! any error leaves the transaction aborted until ROLLBACK (25P02 for other statements).
//!
//! Rows stream to the client as they are produced ([`Session::execute_into`]); a statement
//! whose first rows already went out is no longer retried ([`crate::session_results`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use shoal_kvclient::KvClient;
use shoal_kvclient::txn::Txn;
use sqlparser::ast::{self, Statement};

use crate::catalog::Catalog;
use crate::dml::{self, DmlContext};
use crate::error::{Result, SqlError};
use crate::exec::{self, ExecEnv, Row};
use crate::expr::EvalContext;
use crate::memory::MemoryBudget;
use crate::params::Prepared;
use crate::plan::Column;
use crate::planner::Planner;
use crate::runtime::SqlRuntime;
use crate::session_results::{CollectRows, Executed, deliver, finish};
pub use crate::session_results::{RESULT_BUFFER_ROWS, RowSink};
use crate::syntax::Parsed;
use crate::types::DataType;

/// How often an implicit transaction is attempted before its error is returned.
pub const MAX_ATTEMPTS: usize = 10;

/// A statement's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Rows, with their columns.
    Rows {
        /// The columns.
        columns: Vec<Column>,
        /// The rows.
        rows: Vec<Row>,
    },
    /// Rows changed (`INSERT 0 3` in PostgreSQL's terms).
    Affected {
        /// INSERT, UPDATE or DELETE.
        tag: &'static str,
        /// How many.
        count: u64,
    },
    /// A statement without rows: its tag (`CREATE TABLE`, `BEGIN`...).
    Done(&'static str),
    /// Rows sent to a [`RowSink`] ([`Session::execute_into`]): their columns and number.
    Streamed {
        /// The columns.
        columns: Vec<Column>,
        /// How many rows were sent.
        count: u64,
    },
}

/// The SQL layer of one node: the catalog cache and the KV client statements run through.
pub struct SqlEngine {
    pub(crate) client: KvClient,
    pub(crate) catalog: Catalog,
    node_id: u64,
    last_rowid: AtomicI64,
    /// Where statements' operators run; None: on the caller's runtime.
    runtime: Option<Arc<SqlRuntime>>,
    /// Each statement's memory budget, in bytes.
    query_memory_limit: AtomicUsize,
    /// Rows changed per table on this node, for automatic statistics.
    changes: Arc<crate::stats::Changes>,
}

impl SqlEngine {
    /// A SQL engine over `client`; `node_id` makes generated row ids unique across nodes.
    /// Queries run on the caller's runtime: for tests and tools, not for a node, which uses
    /// [`SqlEngine::with_runtime`].
    pub fn new(client: KvClient, node_id: u64) -> Arc<Self> {
        SqlEngine::with_runtime(client, node_id, None)
    }

    /// A SQL engine whose queries' operators run on `runtime` ([`crate::runtime`]), so that
    /// they never hold the caller's threads.
    pub fn with_runtime(
        client: KvClient,
        node_id: u64,
        runtime: Option<Arc<SqlRuntime>>,
    ) -> Arc<Self> {
        Arc::new(SqlEngine {
            client,
            catalog: Catalog::new(),
            node_id,
            last_rowid: AtomicI64::new(0),
            runtime,
            query_memory_limit: AtomicUsize::new(crate::memory::DEFAULT_QUERY_MEMORY_LIMIT),
            changes: Arc::default(),
        })
    }

    /// Sets the memory budget of each statement that starts from now on
    /// (`sql.query_memory_limit`).
    pub fn set_query_memory_limit(&self, bytes: usize) {
        self.query_memory_limit.store(bytes, Ordering::Relaxed);
    }

    /// The memory budget each statement gets.
    pub fn query_memory_limit(&self) -> usize {
        self.query_memory_limit.load(Ordering::Relaxed)
    }

    /// What a statement starting now runs with: the SQL runtime and a fresh memory budget.
    fn exec_env(&self) -> ExecEnv {
        ExecEnv {
            runtime: self.runtime.as_ref().map(|r| r.handle()),
            memory: MemoryBudget::new(self.query_memory_limit()),
            profile: None,
            changes: Some(self.changes.clone()),
            restarts: Vec::new(),
        }
    }

    /// Starts this node's statistics work that is due at `now_micros` (the statements'
    /// clock) in the background: reading every table's statistics when this node's copy is
    /// stale, and collecting those of tables that changed enough here ([`crate::stats`]).
    fn start_statistics_work(self: &Arc<Self>, now_micros: i64) {
        if self.catalog.claim_stats_read(now_micros) {
            let engine = self.clone();
            self.spawn(async move {
                if let Err(e) = engine.catalog.read_stats(&engine.client, now_micros).await {
                    tracing::debug!("reading table statistics: {e}");
                }
            });
        }
        if let Some(table_id) = self.changes.claim_due() {
            let engine = self.clone();
            self.spawn(async move {
                if let Err(e) = engine.collect_statistics(table_id).await {
                    tracing::debug!("collecting statistics of table {table_id}: {e}");
                }
                engine.changes.collected();
            });
        }
    }

    /// Collects table `table_id`'s statistics and stores them. The table is read as of
    /// [`crate::stats::AUTO_READ_BEHIND`] ago, in a read-only transaction: most writers in
    /// flight then have committed below that time, so the read rarely meets their intents and
    /// never pushes them. The statistics are then written in a short transaction of their
    /// own, restarted on retryable errors a few times; other failures are left to the next
    /// round of changes.
    async fn collect_statistics(&self, table_id: u64) -> Result<()> {
        let now = self.client.now();
        let behind = u64::try_from(crate::stats::AUTO_READ_BEHIND.as_nanos()).unwrap_or(0);
        let at = shoal_hlc::Timestamp::new(now.wall.saturating_sub(behind), 0);
        let reader = self.client.begin_historical(at);
        let ctx = EvalContext::at(at);
        let env = ExecEnv { changes: None, ..self.exec_env() };
        let read = async {
            let contents = self.catalog.contents(&reader).await?;
            let found = contents.tables.values().find(|t| t.id == table_id).cloned();
            match found {
                Some(table) => crate::stats::collect(&table, &[], "__auto__", &reader, ctx, &env)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        }
        .await;
        reader.rollback_in_background();
        // A table created less than that ago is read as of now instead.
        let read = match read {
            Ok(None) => {
                let txn = self.client.begin();
                let ctx = EvalContext::at(txn.read_ts());
                let read = async {
                    let contents = self.catalog.contents(&txn).await?;
                    let found = contents.tables.values().find(|t| t.id == table_id).cloned();
                    match found {
                        Some(t) => crate::stats::collect(&t, &[], "__auto__", &txn, ctx, &env)
                            .await
                            .map(Some),
                        None => Ok(None),
                    }
                }
                .await;
                txn.rollback_in_background();
                read
            }
            other => other,
        };
        let Some(stats) = read? else { return Ok(()) };
        for attempt in 1..=MAX_ATTEMPTS {
            let txn = self.client.begin();
            let written = async {
                self.catalog.write_stats(&txn, table_id, &stats).await?;
                txn.commit().await?;
                Ok::<_, SqlError>(())
            }
            .await;
            match written {
                Ok(()) => break,
                Err(e) => {
                    txn.rollback_in_background();
                    if attempt == MAX_ATTEMPTS || !matches!(e, SqlError::Retry { .. }) {
                        return Err(e);
                    }
                }
            }
        }
        self.catalog.set_stats(table_id, Some(stats));
        Ok(())
    }

    /// Runs `work` on the SQL runtime (the caller's without one).
    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        match &self.runtime {
            Some(runtime) => drop(runtime.handle().spawn(work)),
            None => drop(tokio::spawn(work)),
        }
    }

    /// How many query tasks run on this node's SQL runtime now (0 without one).
    pub fn running_query_tasks(&self) -> usize {
        self.runtime.as_ref().map_or(0, |r| r.alive_tasks())
    }

    /// The id the next table will get, as [`Catalog::peek_next_id`] says.
    pub async fn peek_next_table_id(&self) -> Result<u64> {
        self.catalog.peek_next_id(&self.client).await
    }

    /// Opens a session.
    pub fn session(self: &Arc<Self>) -> Session {
        Session {
            engine: self.clone(),
            txn: TxnState::None,
            catalog: Default::default(),
            database: std::sync::Mutex::new(crate::catalog::DEFAULT_DATABASE.to_string()),
            result_buffer_rows: RESULT_BUFFER_ROWS,
            vars: Default::default(),
            cancel: None,
            restarts: std::sync::Mutex::default(),
        }
    }

    /// A new row id: the transaction's time in microseconds shifted left 15 bits, with the
    /// node id in the low bits, increasing on this node (CockroachDB's `unique_rowid()`).
    fn rowid(&self, now_micros: i64) -> i64 {
        let candidate = (now_micros << 15) | (self.node_id as i64 & 0x7fff);
        let mut last = self.last_rowid.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(last + (1 << 15));
            match self.last_rowid.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(current) => last = current,
            }
        }
    }
}

enum TxnState {
    None,
    Open(Txn),
    Aborted(Txn),
}

/// A client's session.
pub struct Session {
    pub(crate) engine: Arc<SqlEngine>,
    txn: TxnState,
    /// The catalog as the current transaction (id, epoch) read it. Reading the version once
    /// per transaction is enough: it stays in the read set, so a schema change committed
    /// meanwhile still fails the refresh and restarts the transaction (a new epoch rereads).
    /// A schema statement of the transaction itself clears it.
    catalog: std::sync::Mutex<Option<(u128, u32, Arc<crate::catalog::Contents>)>>,
    /// The current database: where bare table names are looked up.
    pub(crate) database: std::sync::Mutex<String>,
    /// How many rows [`Session::execute_into`] holds back before streaming.
    result_buffer_rows: usize,
    /// What `SET` changed.
    pub(crate) vars: std::sync::Mutex<crate::session_vars::SessionVars>,
    /// Bumped to cancel the running statement ([`Session::set_cancel_signal`]).
    cancel: Option<tokio::sync::watch::Receiver<u64>>,
    /// Why the statement running now in its own transaction was restarted so far (EXPLAIN
    /// ANALYZE reports them).
    restarts: std::sync::Mutex<Vec<shoal_api::txn::RetryReason>>,
}

impl Drop for Session {
    /// A session that goes away (its client disconnected) rolls back its transaction.
    fn drop(&mut self) {
        self.abandon();
    }
}

impl Session {
    /// Rolls back the session's transaction, if one is open, in the background.
    pub fn abandon(&mut self) {
        if let TxnState::Open(txn) | TxnState::Aborted(txn) =
            std::mem::replace(&mut self.txn, TxnState::None)
        {
            txn.rollback_in_background();
        }
    }

    /// The session's current database.
    pub fn database(&self) -> String {
        self.database.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `name` the current database, as `USE name` does without checking that it exists:
    /// if it does not, statements naming its tables fail with 3D000.
    pub fn set_database(&mut self, name: &str) {
        *self.database.lock().unwrap_or_else(|p| p.into_inner()) = name.to_string();
    }

    /// Sets how many rows [`Session::execute_into`] holds back before it streams them (and
    /// can no longer retry the statement on 40001); [`RESULT_BUFFER_ROWS`] by default.
    pub fn set_result_buffer_rows(&mut self, rows: usize) {
        self.result_buffer_rows = rows;
    }

    /// Lets the running statement be cancelled: each change of the watched value stops the
    /// statement running at that moment with 57014 (a PostgreSQL cancel request). A change
    /// while no statement runs cancels nothing, as in PostgreSQL.
    pub fn set_cancel_signal(&mut self, signal: tokio::sync::watch::Receiver<u64>) {
        self.cancel = Some(signal);
    }

    /// Runs `work` until it finishes, the statement is cancelled, or `statement_timeout`
    /// passes (both 57014). Dropping `work` midway is safe for the callers: each holds its
    /// transaction outside `work` and rolls it back (or marks it aborted) on the error; the
    /// statement's operators, on the SQL runtime, stop at their next yield when their row
    /// stream is dropped ([`crate::runtime`]).
    async fn cancellable<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let timeout = self.vars.lock().unwrap_or_else(|p| p.into_inner()).statement_timeout();
        let timed_out = async move {
            match timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending::<()>().await,
            }
        };
        let mut signal = self.cancel.clone();
        if let Some(signal) = &mut signal {
            signal.borrow_and_update();
        }
        let cancelled = async move {
            let changed = match &mut signal {
                Some(signal) => signal.changed().await.is_ok(),
                None => false,
            };
            if !changed {
                // No signal, or the connection is gone: nobody can cancel any more.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = work => result,
            () = cancelled => Err(SqlError::Cancelled("canceling statement due to user request".into())),
            () = timed_out => Err(SqlError::Cancelled("canceling statement due to statement timeout".into())),
        }
    }

    /// Whether the explicit transaction failed and waits for ROLLBACK (PostgreSQL's `E`
    /// transaction status).
    pub fn transaction_failed(&self) -> bool {
        matches!(self.txn, TxnState::Aborted(_))
    }

    /// The timestamp the open explicit transaction reads at, if one is open.
    pub fn transaction_timestamp(&self) -> Option<shoal_hlc::Timestamp> {
        match &self.txn {
            TxnState::Open(txn) | TxnState::Aborted(txn) => Some(txn.read_ts()),
            TxnState::None => None,
        }
    }

    /// Whether an explicit transaction is open (or aborted, waiting for ROLLBACK).
    pub fn in_transaction(&self) -> bool {
        !matches!(self.txn, TxnState::None)
    }

    /// Runs every statement of `sql`, returning their results; stops at the first error.
    pub async fn execute(&mut self, sql: &str) -> Result<Vec<Output>> {
        let mut outputs = Vec::new();
        for parsed in crate::syntax::parse(sql)? {
            outputs.push(self.execute_parsed(&parsed).await?);
        }
        Ok(outputs)
    }

    /// Runs one statement.
    pub async fn execute_statement(&mut self, statement: &Statement) -> Result<Output> {
        self.execute_parsed(&Parsed::Statement(Box::new(statement.clone()))).await
    }

    /// Runs one parsed statement, collecting its rows.
    pub async fn execute_parsed(&mut self, parsed: &Parsed) -> Result<Output> {
        let mut sink = CollectRows::default();
        match self.execute_with(parsed, &mut sink, usize::MAX).await? {
            Output::Streamed { columns, .. } => Ok(Output::Rows { columns, rows: sink.rows }),
            output => Ok(output),
        }
    }

    /// Runs one parsed statement, streaming its rows (if it has any) into `sink` as they are
    /// produced ([`crate::session_results`]); such a result is [`Output::Streamed`].
    pub async fn execute_into<S: RowSink>(
        &mut self,
        parsed: &Parsed,
        sink: &mut S,
    ) -> Result<Output> {
        self.execute_with(parsed, sink, self.result_buffer_rows).await
    }

    /// Prepares `sql` (one statement with placeholders `$1` …) for [`Session::execute_prepared_into`]:
    /// its parameter types (`declared` by the client where given, else inferred) and the
    /// columns of its rows, seen through the catalog of the session's transaction (or of a
    /// fresh one outside a transaction). See [`crate::params`].
    pub async fn prepare(&mut self, sql: &str, declared: &[Option<DataType>]) -> Result<Prepared> {
        let parsed = crate::params::parse(sql)?;
        if !crate::params::needs_catalog(&parsed) {
            return crate::params::prepare(
                parsed,
                declared,
                None,
                EvalContext::at(Default::default()),
            );
        }
        let (txn, own) = match &self.txn {
            TxnState::Open(txn) => (txn.clone(), false),
            TxnState::Aborted(_) => return Err(aborted()),
            TxnState::None => (self.engine.client.begin(), true),
        };
        let result = async {
            let catalog = self.catalog_for(&txn).await?;
            crate::params::prepare(parsed, declared, Some(&catalog), EvalContext::at(txn.read_ts()))
        }
        .await;
        if own {
            // It only read the catalog: nothing to commit.
            txn.rollback_in_background();
        } else if result.is_err() {
            // As in PostgreSQL, a statement that fails to prepare fails the transaction.
            self.txn = TxnState::Aborted(txn);
        }
        result
    }

    /// Runs a prepared statement with `params`, one value per parameter (of its type, or
    /// text to be read as that type), streaming its rows into `sink` as
    /// [`Session::execute_into`] does. An empty statement is [`Output::Done`] with an empty tag.
    pub async fn execute_prepared_into<S: RowSink>(
        &mut self,
        prepared: &Prepared,
        params: &[crate::Value],
        sink: &mut S,
    ) -> Result<Output> {
        match prepared.bind(params)? {
            Some(parsed) => self.execute_into(&parsed, sink).await,
            None => Ok(Output::Done("")),
        }
    }

    async fn execute_with<S: RowSink>(
        &mut self,
        parsed: &Parsed,
        sink: &mut S,
        buffer_rows: usize,
    ) -> Result<Output> {
        // Restarts are counted per statement, by the implicit transaction that takes them.
        self.restarts.lock().unwrap_or_else(|p| p.into_inner()).clear();
        match parsed {
            Parsed::Statement(statement) => match statement.as_ref() {
                Statement::StartTransaction { .. } => {
                    if !self.in_transaction() {
                        self.txn = TxnState::Open(self.engine.client.begin());
                    }
                    return Ok(Output::Done("BEGIN"));
                }
                Statement::Commit { chain: false, .. } => {
                    return match std::mem::replace(&mut self.txn, TxnState::None) {
                        TxnState::None => Ok(Output::Done("COMMIT")),
                        TxnState::Open(txn) => match txn.commit().await {
                            Ok(()) => Ok(Output::Done("COMMIT")),
                            Err(e) => {
                                // A commit that failed for certain (a refresh that failed, an
                                // abort) leaves the record and intents behind: roll them back
                                // now rather than have others wait for the record to expire.
                                // An ambiguous one may have committed: leave it be.
                                if !matches!(e, shoal_api::KvError::Ambiguous(_)) {
                                    txn.rollback_in_background();
                                }
                                Err(e.into())
                            }
                        },
                        TxnState::Aborted(txn) => {
                            txn.rollback_in_background();
                            Ok(Output::Done("ROLLBACK"))
                        }
                    };
                }
                Statement::Rollback { chain: false, savepoint: None } => {
                    if let TxnState::Open(txn) | TxnState::Aborted(txn) =
                        std::mem::replace(&mut self.txn, TxnState::None)
                    {
                        txn.rollback_in_background();
                    }
                    return Ok(Output::Done("ROLLBACK"));
                }
                _ => {}
            },
            Parsed::AsOf { at, .. } => {
                if self.in_transaction() {
                    return Err(SqlError::NotSupported(
                        "AS OF SYSTEM TIME inside an explicit transaction".into(),
                    ));
                }
                let client = &self.engine.client;
                let txn =
                    client.begin_historical(crate::syntax::as_of_timestamp(at, client.now())?);
                let result = self.run_and_send(&txn, parsed, sink, buffer_rows).await;
                txn.rollback_in_background();
                return result;
            }
            _ => {}
        }
        match &self.txn {
            TxnState::Aborted(_) => Err(aborted()),
            TxnState::Open(txn) => {
                let txn = txn.clone();
                let result = self.run_and_send(&txn, parsed, sink, buffer_rows).await;
                if result.is_err() {
                    self.txn = TxnState::Aborted(txn);
                }
                result
            }
            TxnState::None => self.run_implicit(parsed, sink, buffer_rows).await,
        }
    }

    /// Runs a statement in `txn` and sends all its rows.
    async fn run_and_send<S: RowSink>(
        &self,
        txn: &Txn,
        parsed: &Parsed,
        sink: &mut S,
        buffer_rows: usize,
    ) -> Result<Output> {
        let mut streamed = false;
        self.cancellable(async {
            let executed = self.run(txn, parsed).await?;
            let (output, held) = deliver(executed, sink, buffer_rows, &mut streamed).await?;
            finish(sink, &output, held, streamed).await?;
            Ok(output)
        })
        .await
    }

    /// Runs a statement in its own transaction, restarting it on retryable errors unless some
    /// of its rows already went to the client.
    async fn run_implicit<S: RowSink>(
        &self,
        parsed: &Parsed,
        sink: &mut S,
        buffer_rows: usize,
    ) -> Result<Output> {
        let client = &self.engine.client;
        let mut txn = client.begin();
        let mut attempt = 1;
        let mut streamed = false;
        loop {
            let result = async {
                let delivered = self
                    .cancellable(async {
                        let executed = self.run(&txn, parsed).await?;
                        deliver(executed, sink, buffer_rows, &mut streamed).await
                    })
                    .await?;
                // Not cancellable: a commit stopped midway might still commit, and the client
                // would be told it did not.
                txn.commit().await?;
                Ok::<_, SqlError>(delivered)
            }
            .await;
            match result {
                Ok((output, held)) => {
                    finish(sink, &output, held, streamed).await?;
                    return Ok(output);
                }
                Err(SqlError::Retry { reason, .. }) if attempt < MAX_ATTEMPTS && !streamed => {
                    attempt += 1;
                    self.restarts.lock().unwrap_or_else(|p| p.into_inner()).push(reason);
                    if reason.is_abort() {
                        let priority = txn.meta().priority.saturating_add(1);
                        txn.rollback_in_background();
                        txn = client.begin_with_priority(priority);
                    } else {
                        txn.restart();
                    }
                }
                Err(e) => {
                    if !matches!(e, SqlError::Ambiguous(_)) {
                        txn.rollback_in_background();
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The catalog `txn` sees, from the current database: read once per transaction and
    /// epoch.
    async fn catalog_for(&self, txn: &Txn) -> Result<Arc<crate::catalog::Snapshot>> {
        let meta = txn.meta();
        let cached = self.catalog.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let contents = match cached {
            Some((id, epoch, contents)) if (id, epoch) == (meta.id, meta.epoch) => contents,
            _ => {
                let contents = self.engine.catalog.contents(txn).await?;
                *self.catalog.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((meta.id, meta.epoch, contents.clone()));
                contents
            }
        };
        Ok(Arc::new(contents.view(&self.database())))
    }

    /// Runs a parsed statement in `txn`, after running its subqueries; a query's rows are
    /// left to be pulled.
    async fn run(&self, txn: &Txn, parsed: &Parsed) -> Result<Executed> {
        let catalog = self.catalog_for(txn).await?;
        if let Parsed::Statement(statement) = parsed
            && matches!(
                statement.as_ref(),
                Statement::CreateTable(_)
                    | Statement::CreateDatabase { .. }
                    | Statement::CreateIndex(_)
                    | Statement::AlterTable(_)
                    | Statement::CreateView(_)
                    | Statement::Drop { .. }
            )
        {
            // This statement changes the catalog: the next one reads it again.
            *self.catalog.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        if crate::expr_function::shows_commit_timestamp(parsed) {
            txn.fix_commit_timestamp();
        }
        let ctx = EvalContext::at(txn.read_ts());
        let mut env = self.engine.exec_env();
        env.restarts = self.restarts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let now_micros = ctx.now_micros;
        self.engine.start_statistics_work(now_micros);
        let inlined;
        // A view keeps its subqueries: they run whenever it is read.
        let defines_view = matches!(parsed, Parsed::Statement(s) if matches!(s.as_ref(), Statement::CreateView(_)));
        let parsed = if !defines_view && crate::subquery::parsed_has_subquery(parsed) {
            let mut copy = parsed.clone();
            crate::subquery::inline_parsed(&mut copy, &catalog, txn, ctx, &env).await?;
            inlined = copy;
            &inlined
        } else {
            parsed
        };
        let query = match parsed {
            Parsed::Statement(statement) => match statement.as_ref() {
                Statement::Query(query) => Some(query),
                _ => None,
            },
            Parsed::AsOf { query, .. } => Some(query),
            _ => None,
        };
        if let Some(query) = query {
            let planned = Planner::new(&catalog, ctx).query(query)?;
            let rows = exec::execute(planned.plan, txn.clone(), ctx, &env);
            return Ok(Executed::Rows { columns: planned.columns, rows });
        }
        let rowids = || self.engine.rowid(now_micros);
        let d = DmlContext { txn, catalog: &catalog, ctx, rowids: &rowids, env: &env };
        let client = &self.engine.client;
        let output = match parsed {
            Parsed::Statement(statement) => self.run_statement(&d, statement).await,
            Parsed::Upsert(statement) => match statement.as_ref() {
                Statement::Insert(insert) => dml::upsert(&d, insert).await,
                _ => Err(SqlError::Internal("UPSERT parsed as something else".into())),
            },
            Parsed::AsOf { .. } => Err(SqlError::Internal("a query was not planned".into())),
            Parsed::ShowIndexes(table) => {
                let table = catalog.table(table)?;
                Ok(crate::schema::show_indexes(&table))
            }
            Parsed::ShowRanges(table) => crate::alter::show_ranges(client, &catalog, table).await,
            Parsed::ShowStatistics(table) => Ok(crate::stats::show(catalog.table(table)?.as_ref())),
            Parsed::SplitAt { table, rows } => {
                crate::alter::split_at(client, txn, &catalog, table, rows, ctx, &env).await
            }
        };
        output.map(Executed::Output)
    }
}

/// The error for statements in a transaction that failed (25P02).
fn aborted() -> SqlError {
    SqlError::TransactionState {
        code: "25P02",
        message: "current transaction is aborted, commands ignored until end of transaction block"
            .into(),
    }
}

/// Whether a SHOW has no IN, LIKE, STARTS WITH or LIMIT.
pub(crate) fn plain_show(o: &ast::ShowStatementOptions) -> bool {
    o.show_in.is_none()
        && o.starts_with.is_none()
        && o.limit.is_none()
        && o.limit_from.is_none()
        && o.filter_position.is_none()
}

/// The first words of a statement, for errors.
pub(crate) fn first_words(statement: &Statement) -> String {
    statement.to_string().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The type shown for a column of unknown type (a NULL literal): text, as PostgreSQL does.
pub fn column_type(column: &Column) -> DataType {
    column.data_type.unwrap_or(DataType::Text)
}
