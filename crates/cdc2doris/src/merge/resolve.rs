//! Resolve queries: the keys of the merged table a change of another table touches, e.g.
//! `SELECT id FROM jobs WHERE client_id = ANY($1)` for a change of `clients_to_exclude`
//! (`keys.rules[].resolve_query`).

use deadpool_postgres::ClientWrapper;
use tokio_postgres::types::Type;

use crate::error::ErrorClass;
use crate::keys::{KeyType, KeyValue};
use crate::merge::postgres::{classify_pg_error, describe_pg_error, KeyTypeError, MergeKeys};

/// One rule's resolve query, ready to run.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// The topic whose rule it is (for messages).
    pub topic: String,
    /// `SELECT (r.k)::text FROM (<query>) AS r(k)`, `$1` typed as `value_type`'s array.
    pub sql: String,
    /// Type of the values bound as `$1`.
    pub value_type: KeyType,
}

/// Why a resolve query failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A value is not of the rule's key type.
    #[error(transparent)]
    Value(#[from] KeyTypeError),
    /// PostgreSQL refused the query or the connection failed.
    #[error("{}", describe_pg_error(.0))]
    Postgres(#[source] tokio_postgres::Error),
    /// A row's first column is not a key of the merged table's key type.
    #[error("it returned {text:?}, not a 64-bit integer key")]
    NotAKey {
        /// The value, as text.
        text: String,
    },
}

impl ResolveError {
    /// The error without anything that may quote row data.
    pub fn summary(&self) -> String {
        match self {
            ResolveError::Value(_) => "a value is not of the rule's key type".to_string(),
            ResolveError::Postgres(e) => crate::merge::postgres::describe_pg_error_without_data(e),
            ResolveError::NotAKey { .. } => {
                "it returned a value that is not a 64-bit integer key".to_string()
            }
        }
    }

    /// Whether the error follows the data of some value asked about (a data exception, SQLSTATE class 22, or a
    /// result that is not a key) rather than the query or the server: the values can be split to find it.
    pub fn is_data_error(&self) -> bool {
        match self {
            ResolveError::NotAKey { .. } => true,
            ResolveError::Value(_) => false,
            ResolveError::Postgres(e) => e.code().is_some_and(|c| c.code().starts_with("22")),
        }
    }

    /// Whether retrying can help.
    pub fn class(&self) -> ErrorClass {
        match self {
            ResolveError::Value(_) | ResolveError::NotAKey { .. } => ErrorClass::Permanent,
            ResolveError::Postgres(e) => classify_pg_error(e),
        }
    }
}

impl Resolver {
    /// Wraps a resolve query so its first column comes back as text whatever its type.
    pub fn new(topic: &str, query: &str, value_type: KeyType) -> Resolver {
        let body = crate::merge::postgres::trim_query(query);
        Resolver {
            topic: topic.to_string(),
            sql: format!("SELECT (r.k)::text FROM (\n{body}\n) AS r(k)"),
            value_type,
        }
    }

    /// Runs the query once for `values`; the keys it returns are typed as `key_type` (NULLs are skipped).
    pub async fn run(
        &self,
        client: &ClientWrapper,
        values: &[KeyValue],
        key_type: KeyType,
    ) -> Result<Vec<KeyValue>, ResolveError> {
        let params = MergeKeys::from_keys(values.iter().cloned(), self.value_type)?;
        let stmt = client
            .prepare_typed_cached(
                &self.sql,
                &[match self.value_type {
                    KeyType::Integer => Type::INT8_ARRAY,
                    KeyType::String => Type::TEXT_ARRAY,
                }],
            )
            .await
            .map_err(ResolveError::Postgres)?;
        let rows = match &params {
            MergeKeys::Int(v) => client.query(&stmt, &[v]).await,
            MergeKeys::Str(v) => client.query(&stmt, &[v]).await,
        }
        .map_err(ResolveError::Postgres)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let text: Option<String> = row.try_get(0).map_err(ResolveError::Postgres)?;
            let Some(text) = text else { continue };
            out.push(match key_type {
                KeyType::Integer => KeyValue::Int(
                    text.parse()
                        .map_err(|_| ResolveError::NotAKey { text: text.clone() })?,
                ),
                KeyType::String => KeyValue::Str(text),
            });
        }
        Ok(out)
    }
}
