//! HTTPS to Doris: which certificates are trusted (`doris.tls_ca_file`, else the system's roots through reqwest's
//! platform verifier), and what a refused certificate means for the user.
//!
//! reqwest's rustls backend always verifies the chain and the host name; nothing here turns that off. A refusal
//! surfaces as a [`reqwest::Error`] whose causes hold the [`rustls::Error`]; [`certificate_refusal`] finds it and says
//! what to change, so the sink can stop instead of retrying a load that cannot succeed until someone acts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::CertificateError;

/// Why the trusted certificates could not be read. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    /// The file cannot be read.
    #[error("{}: {source}; give the PEM file of the CA that signs the Doris HTTPS certificates", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no usable PEM certificate.
    #[error(
        "{}: holds no PEM certificate (-----BEGIN CERTIFICATE-----){reason}; give the CA that signs the Doris HTTPS \
         certificates",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// ` (…)`: what the parser said, if anything.
        reason: String,
    },
}

/// The CA certificates of a PEM file (at least one).
pub fn ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, CaFileError> {
    let pem = std::fs::read(path).map_err(|source| CaFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(CaFileError::NoCertificate {
            path: path.to_path_buf(),
            reason: String::new(),
        }),
        Err(e) => Err(CaFileError::NoCertificate {
            path: path.to_path_buf(),
            reason: format!(" ({e})"),
        }),
    }
}

/// The HTTP client of everything that talks to Doris over HTTP (the sink, `check`): no automatic redirects (they
/// are followed by hand, see [`super::redirect`]), and only the CAs of `doris.tls_ca_file` trusted when it is set.
pub fn http_client(
    tls_ca_file: Option<&Path>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30));
    if let Some(path) = tls_ca_file {
        builder = builder.tls_certs_only(ca_certificates(path)?);
    }
    builder.build().map_err(ClientError::Build)
}

/// Why the HTTP client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `doris.tls_ca_file` is unusable.
    #[error("doris.tls_ca_file {0}")]
    CaFile(#[from] CaFileError),
    /// reqwest refused the settings.
    #[error("cannot create the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// If `error` is a refusal of the server's certificate, what was refused and what to change; `None` otherwise (a
/// connection failure, a timeout: worth retrying). `host` is the host that was asked.
pub fn certificate_refusal(
    error: &(dyn std::error::Error + 'static),
    host: &str,
    tls_ca_file: Option<&Path>,
) -> Option<String> {
    let trusted = match tls_ca_file {
        Some(path) => format!("doris.tls_ca_file {}", path.display()),
        None => "the system's root certificates".to_string(),
    };
    let found = rustls_error(error)?;
    let rustls::Error::InvalidCertificate(refused) = found else {
        return None;
    };
    Some(match refused {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
            "the HTTPS certificate of {host} is signed by an unknown CA (not one of {trusted}); set \
             doris.tls_ca_file to the PEM file of the CA that signed it"
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
            "the HTTPS certificate of {host} is not valid for that host name (host name mismatch); use a host \
             name the certificate holds in doris.fe_urls / be_urls (and doris.be_host_rewrite for the BEs the FE \
             redirects to), or have the certificate reissued for {host}"
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
            "the HTTPS certificate of {host} has expired; renew it (or check this machine's clock)"
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
            "the HTTPS certificate of {host} is not valid yet; check this machine's clock and the certificate's \
             start date"
        ),
        other => format!(
            "the HTTPS certificate of {host} was refused ({other:?}); check that it is signed by one of {trusted}"
        ),
    })
}

/// The rustls error among the causes of `error`. `std::io::Error::source` skips the error it wraps (it returns
/// that error's own source), so a wrapped one is looked at through `get_ref`.
fn rustls_error<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = rustls_error(inner) {
                return Some(found);
            }
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = ca_certificates(&path).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let missing = ca_certificates(&dir.path().join("absent.pem")).unwrap_err();
        assert!(matches!(missing, CaFileError::Unreadable { .. }));
    }

    #[test]
    fn a_wrapped_rustls_error_is_found_and_explained() {
        let io = std::io::Error::other(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let why = certificate_refusal(&io, "fe", None).unwrap();
        assert!(why.contains("unknown CA"), "{why}");
        assert!(why.contains("doris.tls_ca_file"), "{why}");
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(certificate_refusal(&refused, "fe", None).is_none());
    }
}
