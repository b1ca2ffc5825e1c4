//! The statements a session runs by themselves: DML, DDL, EXPLAIN and SHOW, once the
//! session has a transaction and a catalog for them ([`crate::session`] decides those, and
//! runs queries, transaction control and session variables itself).

use shoal_kvclient::KvOps;
use sqlparser::ast::{self, Statement};

use crate::dml::{self, DmlContext};
use crate::error::{Result, SqlError};
use crate::plan::Column;
use crate::planner::Planner;
use crate::session::{Output, Session, first_words, plain_show};
use crate::types::DataType;

impl Session {
    /// Runs a standard statement.
    pub(crate) async fn run_statement(
        &self,
        d: &DmlContext<'_>,
        statement: &Statement,
    ) -> Result<Output> {
        let (txn, catalog, ctx) = (d.txn, d.catalog, d.ctx);
        match statement {
            Statement::Insert(insert) => dml::insert(d, insert).await,
            Statement::Update(update) => dml::update(d, update).await,
            Statement::Delete(delete) => dml::delete(d, delete).await,
            Statement::AlterTable(alter) => {
                crate::alter::alter_table(d, &self.engine.catalog, alter).await
            }
            Statement::CreateTable(create) => {
                let name = crate::binder::object_name(&create.name)?;
                if catalog.lookup(&name)?.is_some() || catalog.lookup_view(&name)?.is_some() {
                    if create.if_not_exists {
                        return Ok(Output::Done("CREATE TABLE"));
                    }
                    return Err(SqlError::DuplicateTable(name));
                }
                let (parent_id, bare) = catalog.resolve(&name)?;
                let id = self.engine.catalog.next_id(txn).await?;
                let table = crate::ddl::table_from_create(create, id, parent_id, &bare)?;
                self.engine.catalog.write_table(txn, &table).await?;
                Ok(Output::Done("CREATE TABLE"))
            }
            Statement::CreateView(create) => {
                crate::view::create(txn, &self.engine.catalog, catalog, create, ctx).await
            }
            Statement::Drop {
                object_type: ast::ObjectType::View,
                if_exists,
                names,
                cascade,
                purge: false,
                temporary: false,
                ..
            } => {
                let cache = &self.engine.catalog;
                crate::view::drop(txn, cache, catalog, names, *if_exists, *cascade).await
            }
            Statement::Drop {
                object_type: ast::ObjectType::Table,
                if_exists,
                names,
                cascade,
                purge: false,
                temporary: false,
                ..
            } => {
                for name in names {
                    let name = crate::binder::object_name(name)?;
                    let Some(table) = catalog.lookup(&name)? else {
                        if catalog.lookup_view(&name)?.is_some() {
                            return Err(SqlError::WrongObjectType(format!(
                                "\"{name}\" is not a table"
                            )));
                        }
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::UndefinedTable(name));
                    };
                    let cache = &self.engine.catalog;
                    crate::view::drop_dependents(txn, cache, catalog, table.id, &name, *cascade)
                        .await?;
                    let span = crate::rowcodec::RowCodec::default().table_span(&table);
                    txn.send(vec![shoal_api::Request::DeleteRange { span }]).await?;
                    self.engine.catalog.drop_table(txn, &table).await?;
                }
                Ok(Output::Done("DROP TABLE"))
            }
            Statement::CreateDatabase { .. } => {
                crate::database::create(txn, &self.engine.catalog, catalog, statement).await
            }
            Statement::Drop {
                object_type: ast::ObjectType::Database,
                if_exists,
                names,
                restrict,
                purge: false,
                temporary: false,
                table: None,
                ..
            } => {
                let catalog_cache = &self.engine.catalog;
                crate::database::drop(txn, catalog_cache, catalog, names, *if_exists, *restrict)
                    .await
            }
            Statement::ShowDatabases { terse: false, history: false, show_options }
                if plain_show(show_options) =>
            {
                Ok(crate::database::show(catalog))
            }
            Statement::Use(_) | Statement::Set(_) => {
                match (crate::database::target(statement, catalog)?, statement) {
                    (Some(database), _) => {
                        *self.database.lock().unwrap_or_else(|p| p.into_inner()) = database;
                    }
                    (None, Statement::Set(set)) => {
                        self.vars.lock().unwrap_or_else(|p| p.into_inner()).set(set)?;
                    }
                    (None, _) => {
                        return Err(SqlError::NotSupported(format!("statement {statement}")));
                    }
                }
                Ok(Output::Done("SET"))
            }
            Statement::Reset(reset) => {
                self.vars.lock().unwrap_or_else(|p| p.into_inner()).reset(&reset.reset)?;
                Ok(Output::Done("RESET"))
            }
            Statement::ShowVariable { variable } => {
                let name = variable.iter().map(crate::binder::ident).collect::<Vec<_>>().join(" ");
                let value = match name.as_str() {
                    "database" => self.database(),
                    _ => self.vars.lock().unwrap_or_else(|p| p.into_inner()).show(&name)?,
                };
                let column = Column {
                    table: None,
                    name: name.replace(' ', "_"),
                    data_type: Some(DataType::Text),
                    hidden: false,
                };
                let rows = vec![vec![crate::Value::Text(value)]];
                Ok(Output::Rows { columns: vec![column], rows })
            }
            Statement::Analyze(analyze)
                if analyze.partitions.is_none()
                    && !analyze.for_columns
                    && !analyze.cache_metadata
                    && !analyze.noscan
                    && !analyze.compute_statistics =>
            {
                crate::stats::analyze(txn, &self.engine.catalog, catalog, analyze, ctx, d.env).await
            }
            Statement::CreateIndex(create) => {
                crate::schema::create_index(txn, &self.engine.catalog, catalog, create, ctx, d.env)
                    .await
            }
            Statement::Drop {
                object_type: ast::ObjectType::Index,
                if_exists,
                names,
                cascade: false,
                purge: false,
                temporary: false,
                ..
            } => {
                crate::schema::drop_index(txn, &self.engine.catalog, catalog, names, *if_exists)
                    .await
            }
            Statement::Explain {
                statement,
                analyze: true,
                verbose: false,
                estimate: false,
                format: None,
                options: None,
                ..
            } => {
                let Statement::Query(query) = statement.as_ref() else {
                    return Err(SqlError::NotSupported(
                        "EXPLAIN ANALYZE of statements other than queries".into(),
                    ));
                };
                crate::profile::explain_analyze(d, &self.engine.client, query).await
            }
            Statement::Explain {
                statement,
                analyze: false,
                verbose: false,
                estimate: false,
                format: None,
                options: None,
                ..
            } => {
                let Statement::Query(query) = statement.as_ref() else {
                    return Err(SqlError::NotSupported(
                        "EXPLAIN of statements other than queries".into(),
                    ));
                };
                let planned = Planner::new(catalog, ctx).query(query)?;
                crate::schema::explain(&self.engine.client, &planned.plan).await
            }
            Statement::ShowTables {
                terse: false,
                history: false,
                extended: false,
                full: false,
                external: false,
                show_options,
            } if plain_show(show_options) => Ok(crate::schema::show_tables(catalog)),
            Statement::ShowColumns { extended: false, full: false, show_options } => {
                let table = match &show_options.show_in {
                    Some(ast::ShowStatementIn { parent_name: Some(name), .. })
                        if show_options.filter_position.is_none()
                            && show_options.limit.is_none() =>
                    {
                        catalog.table(&crate::binder::object_name(name)?)?
                    }
                    _ => return Err(SqlError::NotSupported("this SHOW COLUMNS form".into())),
                };
                Ok(crate::schema::show_columns(&table))
            }
            other => Err(SqlError::NotSupported(format!("statement {}", first_words(other)))),
        }
    }
}
