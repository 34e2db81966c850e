//! Reading the target table the way Doris users do: over the FE's MySQL protocol port (`doris.query_port`), text
//! protocol, one connection.

use mysql_async::prelude::Queryable;
use secrecy::ExposeSecret;

use super::compare::DorisType;
use super::{Key, VerifyError};
use crate::config::Config;

/// A connection to the FE query port and what `DESC` said about the table.
pub struct DorisReader {
    conn: mysql_async::Conn,
    /// `` `db`.`table` ``.
    table: String,
    /// Every column, in table order, with its type.
    pub columns: Vec<(String, DorisType)>,
    /// `` `key column` ``.
    key: String,
    select_list: String,
}

/// Which rows to read.
pub enum DorisRange<'a> {
    /// Keys in `(after, up_to]`; `None` is unbounded.
    Between {
        after: Option<&'a Key>,
        up_to: Option<&'a Key>,
    },
    /// These keys.
    Points(&'a [Key]),
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A key as a MySQL literal: integers as they are, strings quoted (backslash and quote escaped).
fn literal(key: &Key) -> String {
    match key {
        Key::Int(i) => i.to_string(),
        Key::Str(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
    }
}

/// How to reach the FE query port with the service's user and password: the options and `host:port` (for messages).
/// The host is `doris.query_host`, else the host of the first FE (or BE) URL.
pub fn query_port_opts(config: &Config) -> Result<(mysql_async::OptsBuilder, String), VerifyError> {
    let doris = &config.file.doris;
    let host = match &doris.query_host {
        Some(h) => h.clone(),
        None => doris
            .fe_urls
            .iter()
            .chain(&doris.be_urls)
            .find_map(|u| reqwest::Url::parse(u).ok()?.host_str().map(str::to_owned))
            .ok_or(VerifyError::NoQueryHost)?,
    };
    let password = config
        .doris_password
        .as_ref()
        .map(|p| p.expose_secret().to_owned())
        .unwrap_or_default();
    let where_ = format!("{host}:{}", doris.query_port);
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(doris.query_port)
        .user(Some(doris.user.clone()))
        .pass(Some(password))
        .prefer_socket(false);
    Ok((opts, where_))
}

/// `` `db`.`table` `` of `[doris]`.
pub fn table_name(config: &Config) -> String {
    format!(
        "{}.{}",
        quote_ident(&config.file.doris.database),
        quote_ident(&config.file.doris.table)
    )
}

impl DorisReader {
    /// Connects and reads the table's columns with `DESC`.
    pub async fn connect(config: &Config) -> Result<DorisReader, VerifyError> {
        let doris = &config.file.doris;
        let (opts, where_) = query_port_opts(config)?;
        let mut conn =
            mysql_async::Conn::new(opts)
                .await
                .map_err(|source| VerifyError::DorisConnect {
                    address: where_,
                    user: doris.user.clone(),
                    source,
                })?;
        let table = format!(
            "{}.{}",
            quote_ident(&doris.database),
            quote_ident(&doris.table)
        );
        let desc: Vec<mysql_async::Row> =
            conn.query(format!("DESC {table}"))
                .await
                .map_err(|source| VerifyError::DorisQuery {
                    statement: "DESC",
                    table: table.clone(),
                    source,
                })?;
        let mut columns = Vec::with_capacity(desc.len());
        for mut row in desc {
            let name: Option<String> = row.take(0);
            let ty: Option<String> = row.take(1);
            if let (Some(name), Some(ty)) = (name, ty) {
                columns.push((name, DorisType::parse(&ty)));
            }
        }
        let key_column = &config.file.merge.key_column;
        if !columns.iter().any(|(c, _)| c == key_column) {
            return Err(VerifyError::NoKeyColumn {
                table,
                column: key_column.clone(),
            });
        }
        let select_list = columns
            .iter()
            .map(|(c, _)| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(DorisReader {
            conn,
            table,
            columns,
            key: quote_ident(key_column),
            select_list,
        })
    }

    /// The rows of a range or of some keys, in key order; each cell as Doris prints it (`None` is NULL).
    pub async fn rows(
        &mut self,
        range: DorisRange<'_>,
    ) -> Result<Vec<Vec<Option<String>>>, VerifyError> {
        let key = &self.key;
        let filter = match range {
            DorisRange::Between { after, up_to } => {
                let mut conds = Vec::new();
                if let Some(a) = after {
                    conds.push(format!("{key} > {}", literal(a)));
                }
                if let Some(u) = up_to {
                    conds.push(format!("{key} <= {}", literal(u)));
                }
                if conds.is_empty() {
                    String::new()
                } else {
                    format!(" WHERE {}", conds.join(" AND "))
                }
            }
            DorisRange::Points(keys) => {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let list: Vec<String> = keys.iter().map(literal).collect();
                format!(" WHERE {key} IN ({})", list.join(", "))
            }
        };
        let sql = format!(
            "SELECT {} FROM {}{filter} ORDER BY {key}",
            self.select_list, self.table
        );
        let rows: Vec<mysql_async::Row> =
            self.conn
                .query(sql.as_str())
                .await
                .map_err(|source| VerifyError::DorisQuery {
                    statement: "SELECT",
                    table: self.table.clone(),
                    source,
                })?;
        Ok(rows
            .into_iter()
            .map(|mut row| {
                (0..row.len())
                    .map(|i| row.take::<Option<String>, _>(i).flatten())
                    .collect()
            })
            .collect())
    }

    /// Every key of the table, streamed (memory holds one row at a time), to `f` as Doris prints it.
    pub async fn for_each_key(&mut self, mut f: impl FnMut(String)) -> Result<(), VerifyError> {
        let sql = format!("SELECT {} FROM {}", self.key, self.table);
        let table = self.table.clone();
        let error = |source| VerifyError::DorisQuery {
            statement: "SELECT",
            table: table.clone(),
            source,
        };
        let mut result = self.conn.query_iter(sql.as_str()).await.map_err(error)?;
        result
            .for_each(|mut row| {
                if let Some(Some(text)) = row.take::<Option<String>, _>(0) {
                    f(text);
                }
            })
            .await
            .map_err(error)?;
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}
