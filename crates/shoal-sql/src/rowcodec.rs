//! How rows and index entries become keys and values.
//!
//! ```text
//!   primary index   /Table/<t>/1/<pk cols...>                    → [(col id, value)...] non-key, non-NULL
//!   unique index    /Table/<t>/<i>/<idx cols...>                 → primary key
//!                   /Table/<t>/<i>/<idx cols...>/<pk cols...>    → primary key   (an indexed NULL)
//!   other index     /Table/<t>/<i>/<idx cols...>/<pk cols...>    → primary key
//!   hash-sharded    a leading bucket column, hash(idx cols) mod buckets, before the rest
//! ```
//!
//! Key columns use the order-preserving encoding of `shoal-keys`, so a span of keys is a range
//! of SQL values; the row value is postcard-encoded and keyed by column id, so adding or
//! dropping a column does not rewrite rows. Secondary indexes are *global*: keyed by the
//! indexed value, they live on whichever range holds that value, not beside their rows.
//!
//! # Hazards
//!
//! DECIMAL values cannot be key columns yet (there is no order-preserving decimal encoding):
//! such a primary key or index is refused at CREATE time.

use shoal_keys::encoding::{Datum, Direction, decode_datum};
use shoal_keys::layout::TableCodec;
use shoal_keys::{Key, Span};

use crate::catalog::{IndexDescriptor, TableDescriptor};
use crate::error::{Result, SqlError};
use crate::types::{DataType, Value};

/// Returns the key datum of a value.
pub fn datum(value: &Value) -> Result<Datum> {
    Ok(match value {
        Value::Null => Datum::Null,
        Value::Bool(b) => Datum::Bool(*b),
        Value::Int(i) | Value::Timestamp(i) | Value::TimestampTz(i) => Datum::Int(*i),
        Value::Date(d) => Datum::Int(i64::from(*d)),
        Value::Float(f) => Datum::Float(*f),
        Value::Text(s) => Datum::String(s.clone()),
        Value::Bytes(b) => Datum::Bytes(b.clone()),
        Value::Decimal(_) => {
            return Err(SqlError::NotSupported("DECIMAL key columns".into()));
        }
    })
}

/// Returns the value of a key datum of a column of type `data_type`.
fn value_of(datum: Datum, data_type: &DataType) -> Result<Value> {
    Ok(match (datum, data_type) {
        (Datum::Null, _) => Value::Null,
        (Datum::Bool(b), _) => Value::Bool(b),
        (Datum::Int(i), DataType::Timestamp) => Value::Timestamp(i),
        (Datum::Int(i), DataType::TimestampTz) => Value::TimestampTz(i),
        (Datum::Int(i), DataType::Date) => {
            Value::Date(i32::try_from(i).map_err(|_| SqlError::Internal(format!("date key {i}")))?)
        }
        (Datum::Int(i), _) => Value::Int(i),
        (Datum::Float(f), _) => Value::Float(f),
        (Datum::String(s), _) => Value::Text(s),
        (Datum::Bytes(b), _) => Value::Bytes(b),
    })
}

/// Whether a column type can be part of a key.
pub fn is_key_type(data_type: &DataType) -> bool {
    !matches!(data_type, DataType::Decimal(_))
}

fn direction(ascending: bool) -> Direction {
    if ascending { Direction::Ascending } else { Direction::Descending }
}

/// The bucket of a hash-sharded index entry: FNV-1a over the encoded indexed values.
fn bucket(datums: &[(Datum, Direction)], buckets: u32) -> i64 {
    let mut encoded = Vec::new();
    for (datum, _) in datums {
        shoal_keys::encoding::encode_datum(&mut encoded, datum, Direction::Ascending);
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in encoded {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from((hash % u64::from(buckets.max(1))) as u32)
}

/// Encodes rows of one table.
#[derive(Debug, Clone)]
pub struct RowCodec {
    codec: TableCodec,
}

impl Default for RowCodec {
    fn default() -> Self {
        RowCodec { codec: TableCodec::system() }
    }
}

impl RowCodec {
    /// Returns the span of every entry of `index` of `table`.
    pub fn index_span(&self, table: &TableDescriptor, index: &IndexDescriptor) -> Span {
        Span::prefix(self.codec.index_prefix(table.id, u64::from(index.id)))
    }

    /// Returns the span of every key of `table`.
    pub fn table_span(&self, table: &TableDescriptor) -> Span {
        Span::prefix(self.codec.table_prefix(table.id))
    }

    /// Returns the key datums of `index` for `row` (bucket first when hash-sharded).
    fn index_datums(
        &self,
        table: &TableDescriptor,
        index: &IndexDescriptor,
        row: &[Value],
    ) -> Result<Vec<(Datum, Direction)>> {
        let mut datums = Vec::with_capacity(index.columns.len() + 1);
        for (column_id, ascending) in &index.columns {
            let position = table.column_position(*column_id)?;
            datums.push((datum(&row[position])?, direction(*ascending)));
        }
        if let Some(buckets) = index.hash_buckets {
            datums.insert(0, (Datum::Int(bucket(&datums, buckets)), Direction::Ascending));
        }
        Ok(datums)
    }

    /// Returns the key of `row` in the primary index.
    pub fn primary_key(&self, table: &TableDescriptor, row: &[Value]) -> Result<Key> {
        let datums = self.index_datums(table, &table.primary, row)?;
        Ok(self.codec.index_key(table.id, u64::from(table.primary.id), &datums))
    }

    /// Returns the key prefix of primary-index rows whose leading key columns equal `values`
    /// (a point lookup when every key column is given). None when the index is hash-sharded
    /// and not every column is given (the bucket is unknown).
    pub fn primary_prefix(&self, table: &TableDescriptor, values: &[Value]) -> Result<Option<Key>> {
        self.index_prefix(table, &table.primary, values)
    }

    /// As [`RowCodec::primary_prefix`], for any index.
    pub fn index_prefix(
        &self,
        table: &TableDescriptor,
        index: &IndexDescriptor,
        values: &[Value],
    ) -> Result<Option<Key>> {
        let mut datums: Vec<(Datum, Direction)> = values
            .iter()
            .zip(&index.columns)
            .map(|(v, (_, asc))| Ok((datum(v)?, direction(*asc))))
            .collect::<Result<_>>()?;
        if let Some(buckets) = index.hash_buckets {
            if values.len() < index.columns.len() {
                return Ok(None);
            }
            datums.insert(0, (Datum::Int(bucket(&datums, buckets)), Direction::Ascending));
        }
        Ok(Some(self.codec.index_key(table.id, u64::from(index.id), &datums)))
    }

    /// Encodes the non-key, non-NULL columns of `row`.
    pub fn encode_value(&self, table: &TableDescriptor, row: &[Value]) -> Result<Vec<u8>> {
        let key_columns: Vec<u32> = table.primary.columns.iter().map(|(id, _)| *id).collect();
        let stored: Vec<(u32, &Value)> = table
            .columns
            .iter()
            .zip(row)
            .filter(|(c, v)| !key_columns.contains(&c.id) && !v.is_null())
            .map(|(c, v)| (c.id, v))
            .collect();
        postcard::to_allocvec(&stored)
            .map_err(|e| SqlError::Internal(format!("encoding a row: {e}")))
    }

    /// Decodes a primary-index entry into a row in column order.
    pub fn decode_row(
        &self,
        table: &TableDescriptor,
        key: &Key,
        value: &[u8],
    ) -> Result<Vec<Value>> {
        let mut row = vec![Value::Null; table.columns.len()];
        let prefix = self.codec.index_prefix(table.id, u64::from(table.primary.id));
        let mut rest = key
            .as_bytes()
            .strip_prefix(prefix.as_bytes())
            .ok_or_else(|| SqlError::Internal(format!("{key} is not a row of {}", table.name)))?;
        if table.primary.hash_buckets.is_some() {
            rest = decode_datum(rest).map_err(corrupt)?.2;
        }
        for (column_id, _) in &table.primary.columns {
            let position = table.column_position(*column_id)?;
            let (datum, _, tail) = decode_datum(rest).map_err(corrupt)?;
            row[position] = value_of(datum, &table.columns[position].data_type)?;
            rest = tail;
        }
        let stored: Vec<(u32, Value)> = postcard::from_bytes(value).map_err(corrupt)?;
        for (column_id, value) in stored {
            // A value of a dropped column is skipped.
            if let Ok(position) = table.column_position(column_id) {
                row[position] = value;
            }
        }
        Ok(row)
    }

    /// Returns the entry of `row` in secondary index `index`: its key and value (the row's
    /// primary key).
    pub fn index_entry(
        &self,
        table: &TableDescriptor,
        index: &IndexDescriptor,
        row: &[Value],
    ) -> Result<(Key, Vec<u8>)> {
        let primary = self.primary_key(table, row)?;
        let mut datums = self.index_datums(table, index, row)?;
        let has_null = datums.iter().any(|(d, _)| matches!(d, Datum::Null));
        if !index.unique || has_null {
            for (column_id, ascending) in &table.primary.columns {
                let position = table.column_position(*column_id)?;
                datums.push((datum(&row[position])?, direction(*ascending)));
            }
        }
        let key = self.codec.index_key(table.id, u64::from(index.id), &datums);
        Ok((key, primary.into_bytes()))
    }
}

fn corrupt(e: impl std::fmt::Display) -> SqlError {
    SqlError::Internal(format!("corrupt row: {e}"))
}
