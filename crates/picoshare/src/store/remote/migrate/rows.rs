//! A SQLite row of any table as PostgreSQL parameters (TEXT, BIGINT,
//! BYTEA, NULL), for the tables the copy mirrors as they are.

use rusqlite::Connection;

/// One row of any table, as text, integers, blobs or nulls.
pub(super) type Row = Vec<rusqlite::types::Value>;

pub(super) fn read_rows(conn: &Connection, sql: &str) -> anyhow::Result<Vec<Row>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<rusqlite::Result<Row>>()
        })?
        .collect::<rusqlite::Result<Vec<Row>>>()?;
    Ok(rows)
}

/// SQL NULL for a parameter of any type.
#[derive(Debug)]
struct Null;

impl tokio_postgres::types::ToSql for Null {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        _: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(tokio_postgres::types::IsNull::Yes)
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Turns SQLite values into PostgreSQL parameters (TEXT, BIGINT, BYTEA, NULL).
fn to_params(row: &Row) -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> {
    use rusqlite::types::Value;
    row.iter()
        .map(|v| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
            match v {
                Value::Null => Box::new(Null),
                Value::Integer(i) => Box::new(*i),
                // No column of PicoShare's holds a real; keep it as text.
                Value::Real(f) => Box::new(f.to_string()),
                Value::Text(t) => Box::new(t.clone()),
                Value::Blob(b) => Box::new(b.clone()),
            }
        })
        .collect()
}

/// Runs a prepared statement with one source row's values as parameters.
pub(super) async fn insert_row(
    tx: &tokio_postgres::Transaction<'_>,
    stmt: &tokio_postgres::Statement,
    row: &Row,
) -> Result<u64, tokio_postgres::Error> {
    let params = to_params(row);
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    tx.execute(stmt, &refs).await
}
