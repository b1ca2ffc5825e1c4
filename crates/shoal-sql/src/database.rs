//! Databases: `CREATE DATABASE`, `DROP DATABASE`, `SHOW DATABASES`, and choosing a session's
//! current database with `USE d` or `SET DATABASE = d`.
//!
//! ```text
//!   CREATE DATABASE shop;            /System/sql/desc/107  Database { id: 107, name: shop }
//!   USE shop;                        /System/sql/ns/0/shop → 107
//!   CREATE TABLE items (…);          /System/sql/ns/107/items → 108
//!   SELECT * FROM defaultdb.t;       a table of another database, by its qualified name
//! ```
//!
//! A database is a namespace: its tables' keys are `/Table/<id>/…` like any other table's, so
//! databases share ranges and transactions freely, and one transaction may span several.
//! `DROP DATABASE` drops its tables with their data (CockroachDB's default, CASCADE) unless
//! RESTRICT is given; `defaultdb` cannot be dropped, nor the session's current database
//! (PostgreSQL's 55006).
//!
//! Out of scope: owners, privileges, encodings and other options (refused with 0A000), and
//! schemas other than `public`.

use shoal_kvclient::KvOps;
use shoal_kvclient::txn::Txn;
use sqlparser::ast::{self, Statement};

use crate::binder::{ident, object_name};
use crate::catalog::{Catalog, DEFAULT_DATABASE, DatabaseDescriptor, Snapshot};
use crate::error::{Result, SqlError};
use crate::plan::Column;
use crate::rowcodec::RowCodec;
use crate::session::Output;
use crate::types::{DataType, Value};

/// Runs `CREATE DATABASE [IF NOT EXISTS] name`.
pub async fn create(
    txn: &Txn,
    catalog: &Catalog,
    snapshot: &Snapshot,
    statement: &Statement,
) -> Result<Output> {
    let Statement::CreateDatabase { db_name, if_not_exists, .. } = statement else {
        return Err(SqlError::Internal("CREATE DATABASE expected".into()));
    };
    // The parser knows many dialects' options; a statement that prints differently from its
    // plain form carries one of them, and none is supported.
    let name = database_name(db_name)?;
    let plain =
        format!("CREATE DATABASE {}{db_name}", if *if_not_exists { "IF NOT EXISTS " } else { "" });
    if statement.to_string() != plain {
        return Err(SqlError::NotSupported(format!("options of {statement}")));
    }
    if snapshot.contents.databases.contains_key(&name) {
        if *if_not_exists {
            return Ok(Output::Done("CREATE DATABASE"));
        }
        return Err(SqlError::DuplicateDatabase(name));
    }
    let id = catalog.next_id(txn).await?;
    catalog.write_database(txn, &DatabaseDescriptor { id, name }).await?;
    Ok(Output::Done("CREATE DATABASE"))
}

/// Runs `DROP DATABASE [IF EXISTS] name [CASCADE | RESTRICT]`.
pub async fn drop(
    txn: &Txn,
    catalog: &Catalog,
    snapshot: &Snapshot,
    names: &[ast::ObjectName],
    if_exists: bool,
    restrict: bool,
) -> Result<Output> {
    for name in names {
        let name = database_name(name)?;
        let Some(database) = snapshot.contents.databases.get(&name).cloned() else {
            if if_exists {
                continue;
            }
            return Err(SqlError::UndefinedDatabase(name));
        };
        if name == DEFAULT_DATABASE {
            return Err(SqlError::NotSupported(format!("dropping {DEFAULT_DATABASE}")));
        }
        if name == snapshot.database {
            return Err(SqlError::ObjectInUse("cannot drop the currently open database".into()));
        }
        let tables: Vec<_> = snapshot
            .contents
            .tables
            .range((database.id, String::new())..(database.id + 1, String::new()))
            .map(|(_, t)| t.clone())
            .collect();
        if restrict && !tables.is_empty() {
            return Err(SqlError::DependentObjects(format!(
                "database \"{name}\" is not empty and RESTRICT was specified"
            )));
        }
        let views: Vec<_> = snapshot
            .contents
            .views
            .range((database.id, String::new())..(database.id + 1, String::new()))
            .map(|(_, v)| v.clone())
            .collect();
        if restrict && !views.is_empty() {
            return Err(SqlError::DependentObjects(format!(
                "database \"{name}\" is not empty and RESTRICT was specified"
            )));
        }
        for view in views {
            catalog.drop_view(txn, &view).await?;
        }
        for table in tables {
            let span = RowCodec::default().table_span(&table);
            txn.send(vec![shoal_api::Request::DeleteRange { span }]).await?;
            catalog.drop_table(txn, &table).await?;
        }
        catalog.drop_database(txn, &database).await?;
    }
    Ok(Output::Done("DROP DATABASE"))
}

/// Runs `SHOW DATABASES`.
pub fn show(snapshot: &Snapshot) -> Output {
    let column = Column {
        table: None,
        name: "database_name".into(),
        data_type: Some(DataType::Text),
        hidden: false,
    };
    let rows =
        snapshot.contents.databases.keys().map(|name| vec![Value::Text(name.clone())]).collect();
    Output::Rows { columns: vec![column], rows }
}

/// The database a `USE d` or `SET DATABASE = d` names, which must exist (3D000), or None
/// if `statement` is neither.
pub fn target(statement: &Statement, snapshot: &Snapshot) -> Result<Option<String>> {
    let name = match statement {
        Statement::Use(ast::Use::Object(name) | ast::Use::Database(name)) => database_name(name)?,
        Statement::Set(ast::Set::SingleAssignment {
            scope: None,
            hivevar: false,
            variable,
            values,
        }) if object_name(variable)? == "database" => match values.as_slice() {
            [ast::Expr::Identifier(id)] => ident(id),
            [ast::Expr::Value(v)] => match &v.value {
                ast::Value::SingleQuotedString(s) => s.clone(),
                other => {
                    return Err(SqlError::InvalidParameter(format!(
                        "invalid value for database: {other}"
                    )));
                }
            },
            _ => return Err(SqlError::InvalidParameter("SET DATABASE takes one name".into())),
        },
        _ => return Ok(None),
    };
    if !snapshot.contents.databases.contains_key(&name) {
        return Err(SqlError::UndefinedDatabase(name));
    }
    Ok(Some(name))
}

/// A database's name: one identifier.
fn database_name(name: &ast::ObjectName) -> Result<String> {
    let name = object_name(name)?;
    if name.contains('.') {
        return Err(SqlError::InvalidParameter(format!("invalid database name {name}")));
    }
    Ok(name)
}
