//! TLS for the PostgreSQL connections (`postgres.tls_mode`, `postgres.tls_ca_file`): rustls with the aws-lc-rs
//! provider, the TLS stack reqwest already brings (no OpenSSL).
//!
//! tokio-postgres asks for TLS with an SSLRequest; its `SslMode` only says what to do when the server answers "no":
//! go on in plain text (`Prefer`) or fail (`Require`). What is verified is up to the connector built here:
//!
//! | `tls_mode` | `tls_ca_file` | server offers no TLS | server certificate                         |
//! |------------|---------------|----------------------|--------------------------------------------|
//! | `disable`  | (refused)     | plain                | (no TLS at all)                            |
//! | `prefer`   | unset         | plain                | not checked: encrypted, not authenticated  |
//! | `prefer`   | set           | plain                | chain to the CA file, host name            |
//! | `require`  | unset         | fail                 | chain to the system's roots, host name     |
//! | `require`  | set           | fail                 | chain to the CA file, host name            |
//!
//! `prefer` without a CA file is libpq's `prefer`; `require` is libpq's `verify-full`, stricter than libpq's
//! `require` (which checks nothing unless a root certificate is installed). The host name checked is the host of
//! `postgres.url`, also when `hostaddr` says where to connect: a DNS name must match a DNS name of the certificate, an
//! IP address an IP address of it.
//!
//! A certificate that fails the check fails the connection with a [`TlsError`] that says what failed and what to
//! change; tokio-postgres keeps it as the source of its error, so pool errors and logs carry the same words
//! ([`tls_error`] finds it again).
//!
//! Channel binding: the stream offers `tls-server-end-point` (RFC 5929 §4), the hash of the server certificate, so a
//! server with SCRAM authentication gets SCRAM-SHA-256-PLUS, which fails if anything sits between the two ends.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256, Sha384, Sha512};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::error::ErrorClass;
use crate::merge::config::TlsMode;

/// What a TLS connection to PostgreSQL checks of the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// `tls_mode = "disable"`: no TLS.
    NoTls,
    /// `prefer` without `tls_ca_file`: encrypted, certificate not checked.
    NotVerified,
    /// Chain to the CAs of this PEM file, and host name.
    CaFile(PathBuf),
    /// Chain to the system's root certificates, and host name.
    SystemRoots,
}

impl Verification {
    /// What `tls_mode` and `tls_ca_file` ask for.
    pub fn of(mode: TlsMode, ca_file: Option<&Path>) -> Verification {
        match (mode, ca_file) {
            (TlsMode::Disable, _) => Verification::NoTls,
            (_, Some(path)) => Verification::CaFile(path.to_path_buf()),
            (TlsMode::Prefer, None) => Verification::NotVerified,
            (TlsMode::Require, None) => Verification::SystemRoots,
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verification::NoTls => f.write_str("no TLS"),
            Verification::NotVerified => f.write_str(
                "certificate not verified: tls_mode = \"prefer\" without tls_ca_file; set tls_ca_file, or use \
                 \"require\", to verify it",
            ),
            Verification::CaFile(path) => write!(
                f,
                "certificate and host name verified against tls_ca_file {}",
                path.display()
            ),
            Verification::SystemRoots => {
                f.write_str("certificate and host name verified against the system's root certificates")
            }
        }
    }
}

/// Why a TLS connection to PostgreSQL could not be set up or made. Nothing here holds a secret: host names, paths
/// and the names a certificate holds.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file cannot be read, or is not PEM.
    #[error("postgres.tls_ca_file {}: {reason}; give a PEM file of CA certificates", path.display())]
    CaFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O or PEM error.
        reason: String,
    },
    /// The CA file holds no certificate.
    #[error(
        "postgres.tls_ca_file {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA that signed \
         the server certificate",
        path.display()
    )]
    CaFileEmpty {
        /// The file.
        path: PathBuf,
    },
    /// A certificate of the CA file is not a usable trust anchor.
    #[error("postgres.tls_ca_file {}: certificate {number} is not usable as a CA ({reason})", path.display())]
    CaFileBadCertificate {
        /// The file.
        path: PathBuf,
        /// Its place in the file, from 1.
        number: usize,
        /// What rustls said.
        reason: String,
    },
    /// `require` without a CA file, and the system has no root certificates.
    #[error(
        "postgres.tls_mode = \"require\" verifies the server certificate, and no system root certificates were \
         found{detail}; set postgres.tls_ca_file to the PEM file of the CA that signed the server certificate"
    )]
    NoSystemRoots {
        /// What the loader reported, if anything.
        detail: String,
    },
    /// rustls refused the client configuration (no protocol version in common with the provider).
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
    /// The server's certificate is not signed by a trusted CA.
    #[error(
        "the certificate of PostgreSQL server {host} is signed by an unknown CA (not one of {trusted}); set \
         postgres.tls_ca_file to the PEM file of the CA that signed the server certificate"
    )]
    UnknownCa {
        /// The host of `postgres.url`.
        host: String,
        /// What was trusted: the CA file or the system's roots.
        trusted: String,
    },
    /// The server's certificate does not name the host connected to.
    #[error(
        "the certificate of PostgreSQL server {host} is not valid for that host name (host name mismatch; the \
         certificate names {presented}); put a name the certificate holds as the host in postgres.url, or have the \
         certificate reissued for {host}"
    )]
    HostMismatch {
        /// The host of `postgres.url`.
        host: String,
        /// The names the certificate holds, or "other names".
        presented: String,
    },
    /// The server's certificate has expired.
    #[error(
        "the certificate of PostgreSQL server {host} has expired{when}; renew the server certificate (or check \
         this machine's clock)"
    )]
    Expired {
        /// The host of `postgres.url`.
        host: String,
        /// ` (on …)`, when known.
        when: String,
    },
    /// The server's certificate is not valid yet.
    #[error(
        "the certificate of PostgreSQL server {host} is not valid yet{when}; check this machine's clock and the \
         certificate's start date"
    )]
    NotValidYet {
        /// The host of `postgres.url`.
        host: String,
        /// ` (from …)`, when known.
        when: String,
    },
    /// Another certificate problem (bad signature, wrong purpose, revoked, unsupported algorithm).
    #[error(
        "the certificate of PostgreSQL server {host} was refused ({reason}); check that postgres.tls_ca_file holds \
         the CA that signed the server certificate"
    )]
    BadCertificate {
        /// The host of `postgres.url`.
        host: String,
        /// What rustls said.
        reason: String,
    },
    /// The handshake failed for another reason (connection lost, no common protocol, an alert from the server).
    #[error("the TLS handshake with PostgreSQL server {host} failed: {source}")]
    Handshake {
        /// The host of `postgres.url`.
        host: String,
        /// The I/O error (a rustls error inside, for protocol failures).
        #[source]
        source: io::Error,
    },
    /// The host cannot be checked against a certificate.
    #[error(
        "host {host:?} of postgres.url is neither a DNS name nor an IP address, so a TLS certificate cannot be \
         checked against it"
    )]
    InvalidHostName {
        /// The host of `postgres.url`.
        host: String,
    },
    /// The connector was asked for TLS while `tls_mode = "disable"` (the driver never does this).
    #[error("TLS was asked for while postgres.tls_mode = \"disable\"")]
    Disabled,
}

impl TlsError {
    /// Whether retrying can help: only a handshake that broke off; a certificate stays wrong until someone acts.
    pub fn class(&self) -> ErrorClass {
        match self {
            TlsError::Handshake { .. } => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    /// Words rustls' handshake error as what failed and what to do.
    fn from_handshake(error: io::Error, host: &str, trusted: &str) -> TlsError {
        let host = host.to_string();
        let certificate = match error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(c)) => c.clone(),
            _ => {
                return TlsError::Handshake {
                    host,
                    source: error,
                }
            }
        };
        match certificate {
            CertificateError::UnknownIssuer => TlsError::UnknownCa {
                host,
                trusted: trusted.to_string(),
            },
            CertificateError::NotValidForName => TlsError::HostMismatch {
                host,
                presented: "other names".to_string(),
            },
            CertificateError::NotValidForNameContext { presented, .. } => TlsError::HostMismatch {
                host,
                presented: if presented.is_empty() {
                    "no host name".to_string()
                } else {
                    let names: Vec<&str> = presented.iter().map(|n| plain_name(n)).collect();
                    names.join(", ")
                },
            },
            CertificateError::Expired => TlsError::Expired {
                host,
                when: String::new(),
            },
            CertificateError::ExpiredContext { not_after, .. } => TlsError::Expired {
                host,
                when: format!(" (on {})", rfc3339(not_after)),
            },
            CertificateError::NotValidYet => TlsError::NotValidYet {
                host,
                when: String::new(),
            },
            CertificateError::NotValidYetContext { not_before, .. } => TlsError::NotValidYet {
                host,
                when: format!(" (from {})", rfc3339(not_before)),
            },
            other => TlsError::BadCertificate {
                host,
                reason: rustls::Error::InvalidCertificate(other).to_string(),
            },
        }
    }
}

/// `localhost` for webpki's `DnsName("localhost")`, `127.0.0.1` for `IpAddress(127.0.0.1)`; other forms as they are.
fn plain_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })
        .unwrap_or(presented)
}

fn rfc3339(t: UnixTime) -> String {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(t.as_secs());
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The [`TlsError`] behind a driver error, if the connection failed in the TLS handshake.
pub fn tls_error(e: &tokio_postgres::Error) -> Option<&TlsError> {
    std::error::Error::source(e).and_then(|s| s.downcast_ref::<TlsError>())
}

/// The crypto provider: the process-wide default, aws-lc-rs, installed once. reqwest takes the installed default too
/// (and falls back to its own aws-lc-rs one), so the process has one provider; if something installed another
/// default first, that one is used here as well.
fn crypto_provider() -> Arc<CryptoProvider> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err: a provider was installed already, which is as good.
        let _ = aws_lc_rs::default_provider().install_default();
    });
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(aws_lc_rs::default_provider()))
}

/// The `MakeTlsConnect` of the PostgreSQL pool, built once from the configuration.
#[derive(Clone)]
pub struct PgTls {
    mode: TlsMode,
    /// `None` for `disable`.
    connector: Option<tokio_rustls::TlsConnector>,
    /// What is trusted, for messages: the CA file or the system's roots.
    trusted: Arc<str>,
}

impl fmt::Debug for PgTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTls")
            .field("mode", &self.mode)
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

impl PgTls {
    /// Builds the connector for `tls_mode` and `tls_ca_file`: reads the CA file, or the system's roots for `require`
    /// without one.
    pub fn new(mode: TlsMode, ca_file: Option<&Path>) -> Result<PgTls, TlsError> {
        let verification = Verification::of(mode, ca_file);
        if verification == Verification::NoTls {
            return Ok(PgTls {
                mode,
                connector: None,
                trusted: Arc::from("nothing"),
            });
        }
        let provider = crypto_provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?;
        let (config, trusted) = match &verification {
            Verification::NoTls => return Err(TlsError::Disabled),
            Verification::NotVerified => (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NotVerified(provider)))
                    .with_no_client_auth(),
                "nothing (not verified)".to_string(),
            ),
            Verification::CaFile(path) => (
                builder
                    .with_root_certificates(roots_from_file(path)?)
                    .with_no_client_auth(),
                format!("the CAs in postgres.tls_ca_file {}", path.display()),
            ),
            Verification::SystemRoots => (
                builder
                    .with_root_certificates(system_roots()?)
                    .with_no_client_auth(),
                "the system's root certificates".to_string(),
            ),
        };
        Ok(PgTls {
            mode,
            connector: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
            trusted: Arc::from(trusted),
        })
    }

    /// The driver's mode: whether to ask for TLS, and whether to go on without it.
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require => SslMode::Require,
        }
    }
}

/// Every certificate of a PEM file (several may follow each other, e.g. a cloud provider's regional bundle).
fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let unreadable = |e: rustls::pki_types::pem::Error| TlsError::CaFileUnreadable {
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::Io(io) => io.to_string(),
            other => format!("not valid PEM ({other})"),
        },
    };
    let mut roots = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .enumerate()
    {
        let cert = cert.map_err(unreadable)?;
        roots
            .add(cert)
            .map_err(|e| TlsError::CaFileBadCertificate {
                path: path.to_path_buf(),
                number: i + 1,
                reason: e.to_string(),
            })?;
    }
    if roots.is_empty() {
        return Err(TlsError::CaFileEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(roots)
}

/// The system's root certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the platform's store).
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    // Certificates the platform store holds but webpki cannot use are skipped, as browsers do.
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let detail = match found.errors.first() {
            Some(e) => format!(" ({e})"),
            None => String::new(),
        };
        return Err(TlsError::NoSystemRoots { detail });
    }
    Ok(roots)
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, host: &str) -> Result<PgTlsConnect, TlsError> {
        // Called before every connection, TLS or not (a Unix socket has no host): a bad name fails only when the
        // handshake is really attempted.
        Ok(PgTlsConnect {
            connector: self.connector.clone(),
            host: host.to_string(),
            trusted: self.trusted.clone(),
        })
    }
}

/// One connection's handshake: the connector, and the host name the certificate must hold.
pub struct PgTlsConnect {
    connector: Option<tokio_rustls::TlsConnector>,
    host: String,
    trusted: Arc<str>,
}

impl<S> TlsConnect<S> for PgTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<PgTlsStream<S>, TlsError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let connector = self.connector.ok_or(TlsError::Disabled)?;
            let name = ServerName::try_from(self.host.as_str())
                .map_err(|_| TlsError::InvalidHostName {
                    host: self.host.clone(),
                })?
                .to_owned();
            match connector.connect(name, stream).await {
                Ok(stream) => Ok(PgTlsStream(stream)),
                Err(e) => Err(TlsError::from_handshake(e, &self.host, &self.trusted)),
            }
        })
    }
}

/// A TLS connection to PostgreSQL.
pub struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> TlsStream for PgTlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| tls_server_end_point(cert))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

impl<S> AsyncRead for PgTlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S> AsyncWrite for PgTlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `tls-server-end-point` channel binding data (RFC 5929 §4.1): the server certificate hashed with the hash of its
/// signature algorithm, SHA-256 for MD5 and SHA-1. `None` for an algorithm without one hash (RSASSA-PSS, Ed25519),
/// as PostgreSQL itself offers no binding then.
fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    // Object identifiers (DER contents) of the signature algorithms, by hash.
    const RSA: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
    const ECDSA_SHA1: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]; // 1.2.840.10045.4.1
    const ECDSA_SHA2: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03]; // 1.2.840.10045.4.3
    let oid = signature_algorithm(cert)?;
    let (&last, arc) = oid.split_last()?;
    let hash = if arc == RSA {
        match last {
            // md5WithRSAEncryption, sha1WithRSAEncryption, sha256WithRSAEncryption
            0x04 | 0x05 | 0x0b => 256,
            0x0c => 384,
            0x0d => 512,
            _ => return None,
        }
    } else if arc == ECDSA_SHA2 {
        match last {
            0x02 => 256,
            0x03 => 384,
            0x04 => 512,
            _ => return None,
        }
    } else if oid == ECDSA_SHA1 {
        256
    } else {
        return None;
    };
    Some(match hash {
        256 => Sha256::digest(cert).to_vec(),
        384 => Sha384::digest(cert).to_vec(),
        _ => Sha512::digest(cert).to_vec(),
    })
}

/// The algorithm OID of `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { algorithm OID, .. },
/// signatureValue }` (RFC 5280 §4.1), read without a full X.509 parser.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (SEQUENCE, certificate, _) = der_element(cert)? else {
        return None;
    };
    let (SEQUENCE, _tbs, rest) = der_element(certificate)? else {
        return None;
    };
    let (SEQUENCE, algorithm, _) = der_element(rest)? else {
        return None;
    };
    let (OID, oid, _) = der_element(algorithm)? else {
        return None;
    };
    Some(oid)
}

/// The DER element at the start of `der`: (tag, contents, what follows). Lengths of up to 4 bytes.
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// `prefer` without a CA file: the certificate is not checked (libpq's `prefer`), but the handshake signatures still
/// are, so the session keys belong to whoever holds the certificate's key.
#[derive(Debug)]
struct NotVerified(Arc<CryptoProvider>);

impl ServerCertVerifier for NotVerified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate-shaped DER value: SEQUENCE { SEQUENCE {} (tbs), SEQUENCE { OID }, BIT STRING }.
    fn fake_certificate(oid: &[u8]) -> Vec<u8> {
        let mut algorithm = vec![0x06, oid.len() as u8];
        algorithm.extend_from_slice(oid);
        let mut body = vec![0x30, 0x00, 0x30, algorithm.len() as u8];
        body.extend_from_slice(&algorithm);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut cert = vec![0x30, 0x81, body.len() as u8];
        cert.extend_from_slice(&body);
        cert
    }

    const SHA256_WITH_RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    const ECDSA_WITH_SHA384: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const SHA1_WITH_RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
    const ED25519: [u8; 3] = [0x2b, 0x65, 0x70];
    const RSASSA_PSS: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];

    #[test]
    fn the_signature_algorithm_is_read_from_long_and_short_lengths() {
        let cert = fake_certificate(&SHA256_WITH_RSA);
        assert_eq!(signature_algorithm(&cert), Some(&SHA256_WITH_RSA[..]));
        // A truncated certificate yields nothing rather than reading past the end.
        assert_eq!(signature_algorithm(&cert[..cert.len() - 4]), None);
        assert_eq!(signature_algorithm(&[]), None);
        assert_eq!(signature_algorithm(&[0x30, 0x84, 0xff, 0xff]), None);
    }

    #[test]
    fn channel_binding_hashes_with_the_signature_hash() {
        let cert = fake_certificate(&SHA256_WITH_RSA);
        assert_eq!(
            tls_server_end_point(&cert),
            Some(Sha256::digest(&cert).to_vec())
        );
        let cert = fake_certificate(&ECDSA_WITH_SHA384);
        assert_eq!(
            tls_server_end_point(&cert),
            Some(Sha384::digest(&cert).to_vec())
        );
        // RFC 5929 §4.1: SHA-1 is replaced by SHA-256.
        let cert = fake_certificate(&SHA1_WITH_RSA);
        assert_eq!(
            tls_server_end_point(&cert),
            Some(Sha256::digest(&cert).to_vec())
        );
        // No single hash: no binding.
        assert_eq!(tls_server_end_point(&fake_certificate(&ED25519)), None);
        assert_eq!(tls_server_end_point(&fake_certificate(&RSASSA_PSS)), None);
    }

    #[test]
    fn verification_follows_mode_and_ca_file() {
        let ca = Path::new("/etc/ca.pem");
        assert_eq!(
            Verification::of(TlsMode::Disable, None),
            Verification::NoTls
        );
        assert_eq!(
            Verification::of(TlsMode::Prefer, None),
            Verification::NotVerified
        );
        assert_eq!(
            Verification::of(TlsMode::Prefer, Some(ca)),
            Verification::CaFile(ca.to_path_buf())
        );
        assert_eq!(
            Verification::of(TlsMode::Require, None),
            Verification::SystemRoots
        );
        assert_eq!(
            Verification::of(TlsMode::Require, Some(ca)),
            Verification::CaFile(ca.to_path_buf())
        );
    }

    #[test]
    fn certificate_errors_say_what_failed_and_the_fix() {
        let wrap = |c: CertificateError| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(c),
            )
        };
        let e = TlsError::from_handshake(
            wrap(CertificateError::UnknownIssuer),
            "db",
            "the system's roots",
        );
        assert!(matches!(e, TlsError::UnknownCa { .. }));
        let text = e.to_string();
        assert!(
            text.contains("unknown CA") && text.contains("set postgres.tls_ca_file"),
            "{text}"
        );

        let e = TlsError::from_handshake(
            wrap(CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("db.example")
                    .map(|n| n.to_owned())
                    .unwrap(),
                presented: vec![
                    "DnsName(\"localhost\")".to_string(),
                    "IpAddress(127.0.0.1)".to_string(),
                ],
            }),
            "db.example",
            "x",
        );
        let text = e.to_string();
        assert!(
            text.contains("host name mismatch") && text.contains("postgres.url"),
            "{text}"
        );
        assert!(
            text.contains("the certificate names localhost, 127.0.0.1)"),
            "{text}"
        );

        let e = TlsError::from_handshake(
            wrap(CertificateError::ExpiredContext {
                time: UnixTime::since_unix_epoch(Duration::from_secs(2_000_000_000)),
                not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000)),
            }),
            "db",
            "x",
        );
        let text = e.to_string();
        assert!(
            text.contains("has expired (on 2023-11-14T22:13:20Z)"),
            "{text}"
        );
        assert_eq!(e.class(), ErrorClass::Permanent);

        let e = TlsError::from_handshake(
            io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof"),
            "db",
            "x",
        );
        assert!(matches!(e, TlsError::Handshake { .. }));
        assert_eq!(e.class(), ErrorClass::Transient);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = PgTls::new(TlsMode::Require, Some(&empty)).unwrap_err();
        assert!(matches!(e, TlsError::CaFileEmpty { .. }), "{e}");

        let missing = dir.path().join("missing.pem");
        let e = PgTls::new(TlsMode::Require, Some(&missing)).unwrap_err();
        assert!(matches!(e, TlsError::CaFileUnreadable { .. }), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = PgTls::new(TlsMode::Prefer, Some(&garbage)).unwrap_err();
        assert!(
            matches!(e, TlsError::CaFileBadCertificate { number: 1, .. }),
            "{e}"
        );
    }

    #[test]
    fn disable_builds_no_connector() {
        let tls = PgTls::new(TlsMode::Disable, None).unwrap();
        assert!(tls.connector.is_none());
        assert_eq!(tls.ssl_mode(), SslMode::Disable);
        assert_eq!(
            PgTls::new(TlsMode::Prefer, None).unwrap().ssl_mode(),
            SslMode::Prefer
        );
    }
}
