//! The PostgreSQL connection pool of the merge stage, built from the `[postgres]` section.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::{ExposeSecret, SecretString};

use crate::merge::config::PostgresConfig;
use crate::merge::tls::{PgTls, TlsError};

/// Why the pool cannot be built. Holds no secret.
#[derive(Debug, thiserror::Error)]
pub enum PoolSetupError {
    /// `postgres.url` does not parse (not echoed: it may hold a password).
    #[error("postgres.url: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// The TLS settings cannot be used (e.g. an unreadable CA file).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The pool builder refused the settings.
    #[error("postgres pool: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
}

/// Builds the pool: URL, password, timeouts, and TLS as `tls_mode` and `tls_ca_file` say ([`crate::merge::tls`]),
/// with `extra` connections beyond `pool_size` (backfill streams its keys over one). Connections are made when first
/// needed.
pub fn pool(
    pg: &PostgresConfig,
    password: Option<&SecretString>,
    extra: usize,
) -> Result<Pool, PoolSetupError> {
    let mut cfg: tokio_postgres::Config = pg.url.parse().map_err(PoolSetupError::Url)?;
    if let Some(p) = password {
        cfg.password(p.expose_secret());
    }
    cfg.connect_timeout(pg.connect_timeout);
    cfg.application_name("cdc2doris");
    cfg.options(format!(
        "-c statement_timeout={}",
        pg.statement_timeout.as_millis()
    ));
    let tls = PgTls::new(pg.tls_mode, pg.tls_ca_file.as_deref())?;
    cfg.ssl_mode(tls.ssl_mode());
    let mgr = Manager::from_config(
        cfg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(mgr)
        .max_size(pg.pool_size.max(1) + extra)
        .build()?)
}

/// A pool error with its causes: the driver's own text leaves them out ("error performing TLS handshake" and no
/// word of the certificate), so every cause is appended once. Holds no secret: the causes are the server's and the
/// TLS check's words.
pub fn describe_pool_error(e: &deadpool_postgres::PoolError) -> String {
    crate::error::error_chain(e)
}
