//! Schema statements turned into descriptors.
//!
//! `CREATE TABLE` becomes a [`TableDescriptor`]: columns with stable ids, the primary index
//! (id 1, over the PRIMARY KEY columns, or over a hidden `rowid` column when the table has
//! none), one unique secondary index per UNIQUE constraint, and the CHECK constraints as SQL
//! text.
//!
//! ```text
//!   CREATE TABLE t (k INT PRIMARY KEY, v STRING UNIQUE, n INT CHECK (n > 0))
//!   columns  1 k INT8 NOT NULL   2 v STRING   3 n INT8
//!   indexes  1 t_pkey (k)        2 t_v_key UNIQUE (v)
//!   checks   check_n: n > 0
//! ```
//!
//! Anything else a CREATE TABLE can say (foreign keys, generated columns, partitioning,
//! storage options, `AS SELECT`) is refused as not supported rather than ignored.

use sqlparser::ast;

use crate::binder::ident;
use crate::catalog::{CheckConstraint, ColumnDescriptor, IndexDescriptor, TableDescriptor};
use crate::error::{Result, SqlError};
use crate::rowcodec::is_key_type;
use crate::types::DataType;

/// The name of the hidden key column of a table declared without a primary key.
pub const ROWID: &str = "rowid";

/// The default expression of [`ROWID`]: a unique, roughly time-ordered integer.
pub const UNIQUE_ROWID: &str = "unique_rowid()";

/// Key columns by name, each ascending (true) or descending.
type KeyColumns = Vec<(String, bool)>;

fn refuse(present: bool, what: &str) -> Result<()> {
    if present { Err(SqlError::NotSupported(format!("CREATE TABLE with {what}"))) } else { Ok(()) }
}

/// Builds the descriptor of table `id`, named `name` in database `parent_id`, from a
/// `CREATE TABLE`.
pub fn table_from_create(
    create: &ast::CreateTable,
    id: u64,
    parent_id: u64,
    name: &str,
) -> Result<TableDescriptor> {
    refuse(create.or_replace, "OR REPLACE")?;
    refuse(create.temporary || create.unlogged || create.external, "TEMPORARY/UNLOGGED/EXTERNAL")?;
    refuse(create.query.is_some(), "AS SELECT")?;
    refuse(create.like.is_some() || create.clone.is_some(), "LIKE/CLONE")?;
    refuse(create.partition_by.is_some() || create.cluster_by.is_some(), "PARTITION/CLUSTER BY")?;
    refuse(create.inherits.is_some(), "INHERITS")?;
    refuse(
        create.primary_key.is_some() || create.order_by.is_some(),
        "PRIMARY KEY/ORDER BY expressions",
    )?;
    let mut table = TableDescriptor {
        id,
        parent_id,
        name: name.to_string(),
        columns: Vec::new(),
        primary: IndexDescriptor {
            id: 1,
            name: format!("{name}_pkey"),
            columns: Vec::new(),
            unique: true,
            hash_buckets: None,
        },
        indexes: Vec::new(),
        checks: Vec::new(),
        next_column_id: 1,
        next_index_id: 2,
        stats: None,
    };
    let mut primary: Option<KeyColumns> = None;
    let mut uniques: Vec<(Option<String>, KeyColumns)> = Vec::new();
    for def in &create.columns {
        let (column, keys) = column_from_def(&mut table, def)?;
        let column_name = column.name.clone();
        table.columns.push(column);
        if keys.primary {
            if primary.is_some() {
                return Err(SqlError::InvalidTableDefinition(format!(
                    "multiple primary keys for table \"{name}\" are not allowed"
                )));
            }
            primary = Some(vec![(column_name.clone(), true)]);
        }
        if keys.unique {
            uniques.push((None, vec![(column_name, true)]));
        }
    }
    for constraint in &create.constraints {
        match constraint {
            ast::TableConstraint::PrimaryKey(pk) => {
                if primary.is_some() {
                    return Err(SqlError::InvalidTableDefinition(format!(
                        "multiple primary keys for table \"{name}\" are not allowed"
                    )));
                }
                primary = Some(index_columns(&pk.columns)?);
            }
            ast::TableConstraint::Unique(u) => {
                uniques.push((u.name.as_ref().map(ident), index_columns(&u.columns)?));
            }
            ast::TableConstraint::Check(check) => table.checks.push(CheckConstraint {
                name: check
                    .name
                    .as_ref()
                    .map_or_else(|| format!("check{}", table.checks.len() + 1), ident),
                expr: check.expr.to_string(),
            }),
            other => return Err(SqlError::NotSupported(format!("constraint {other}"))),
        }
    }
    let primary = match primary {
        Some(columns) => columns,
        None => {
            table.columns.push(ColumnDescriptor {
                id: table.next_column_id,
                name: ROWID.to_string(),
                data_type: DataType::Int(8),
                nullable: false,
                default: Some(UNIQUE_ROWID.to_string()),
                hidden: true,
            });
            table.next_column_id += 1;
            vec![(ROWID.to_string(), true)]
        }
    };
    for (column_name, ascending) in primary {
        let position = table
            .column_index(&column_name)
            .ok_or_else(|| SqlError::UndefinedColumn(column_name.clone()))?;
        let column = &mut table.columns[position];
        if !is_key_type(&column.data_type) {
            return Err(SqlError::NotSupported(format!(
                "{} primary key column {column_name}",
                column.data_type
            )));
        }
        column.nullable = false;
        table.primary.columns.push((column.id, ascending));
    }
    for (index_name, columns) in uniques {
        let suffix = columns.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join("_");
        let index = IndexDescriptor {
            id: table.next_index_id,
            name: index_name.unwrap_or_else(|| format!("{name}_{suffix}_key")),
            columns: resolve_columns(&table, &columns)?,
            unique: true,
            hash_buckets: None,
        };
        table.next_index_id += 1;
        table.indexes.push(index);
    }
    Ok(table)
}

/// The keys a column definition declares.
#[derive(Debug, Default)]
pub struct ColumnKeys {
    /// `PRIMARY KEY`.
    pub primary: bool,
    /// `UNIQUE`.
    pub unique: bool,
}

/// Reads one column definition of `table`: the column (with the next column id, which it
/// takes) and the keys it declares. Its CHECK constraints are added to the table.
pub fn column_from_def(
    table: &mut TableDescriptor,
    def: &ast::ColumnDef,
) -> Result<(ColumnDescriptor, ColumnKeys)> {
    let column_name = ident(&def.name);
    if table.column_index(&column_name).is_some() {
        return Err(SqlError::DuplicateColumn(column_name));
    }
    let mut column = ColumnDescriptor {
        id: table.next_column_id,
        name: column_name.clone(),
        data_type: DataType::from_ast(&def.data_type)?,
        nullable: true,
        default: None,
        hidden: false,
    };
    let mut keys = ColumnKeys::default();
    for option in &def.options {
        match &option.option {
            ast::ColumnOption::Null => column.nullable = true,
            ast::ColumnOption::NotNull => column.nullable = false,
            ast::ColumnOption::Default(e) => column.default = Some(e.to_string()),
            ast::ColumnOption::PrimaryKey(_) => keys.primary = true,
            ast::ColumnOption::Unique(_) => keys.unique = true,
            ast::ColumnOption::Check(check) => table.checks.push(CheckConstraint {
                name: check.name.as_ref().map_or_else(|| format!("check_{column_name}"), ident),
                expr: check.expr.to_string(),
            }),
            other => return Err(SqlError::NotSupported(format!("column option {other}"))),
        }
    }
    table.next_column_id += 1;
    Ok((column, keys))
}

/// Reads the columns of a key: names and directions.
fn index_columns(columns: &[ast::IndexColumn]) -> Result<KeyColumns> {
    columns
        .iter()
        .map(|c| {
            if c.operator_class.is_some() || c.column.options.nulls_first.is_some() {
                return Err(SqlError::NotSupported(format!("index column {}", c.column)));
            }
            let ascending = !matches!(c.column.options.sort, Some(ast::OrderBySort::Desc));
            match &c.column.expr {
                ast::Expr::Identifier(id) => Ok((ident(id), ascending)),
                other => Err(SqlError::NotSupported(format!("index on expression {other}"))),
            }
        })
        .collect()
}

/// Resolves named key columns to ids, checking they can be key columns.
pub fn resolve_columns(
    table: &TableDescriptor,
    columns: &[(String, bool)],
) -> Result<Vec<(u32, bool)>> {
    columns
        .iter()
        .map(|(name, ascending)| {
            let position =
                table.column_index(name).ok_or_else(|| SqlError::UndefinedColumn(name.clone()))?;
            let column = &table.columns[position];
            if !is_key_type(&column.data_type) {
                return Err(SqlError::NotSupported(format!(
                    "{} key column {name}",
                    column.data_type
                )));
            }
            Ok((column.id, *ascending))
        })
        .collect()
}
