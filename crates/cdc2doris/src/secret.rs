//! Secrets (passwords) read from an environment variable or a file, never from the config file itself.
//!
//! A secret is named in the config by `password_env` (the variable's name) or `password_file` (a path), never both.
//! Errors name the variable or the file, never the value.

use std::env::VarError;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// Looks an environment variable up. [`process_env`] in production; a map in tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// The process environment, for [`read_secret`].
pub fn process_env(name: &str) -> Result<String, VarError> {
    std::env::var(name)
}

/// Why a secret could not be read. The messages name the variable or file, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Both sources were configured.
    #[error("both password_env and password_file are set; keep one")]
    BothSources,
    /// The environment variable is not set.
    #[error("environment variable {var} is not set; export it, or remove password_env")]
    EnvNotSet {
        /// The variable's name.
        var: String,
    },
    /// The environment variable holds bytes that are not UTF-8.
    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable's name.
        var: String,
    },
    /// The environment variable is set but empty.
    #[error("environment variable {var} is empty; set the password, or remove password_env")]
    EnvEmpty {
        /// The variable's name.
        var: String,
    },
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error("{}: not valid UTF-8", path.display())]
    FileNotUnicode {
        /// The file.
        path: PathBuf,
    },
    /// The file is empty (after trimming one trailing newline).
    #[error("{}: empty; write the password into it, or remove password_file", path.display())]
    FileEmpty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads a secret from `env_var` or `file` (one trailing newline trimmed). `Ok(None)` when neither is configured.
pub fn read_secret(
    env_var: Option<&str>,
    file: Option<&Path>,
    env: EnvLookup<'_>,
) -> Result<Option<SecretString>, SecretError> {
    match (env_var, file) {
        (Some(_), Some(_)) => Err(SecretError::BothSources),
        (None, None) => Ok(None),
        (Some(var), None) => match env(var) {
            Ok(v) if v.is_empty() => Err(SecretError::EnvEmpty {
                var: var.to_string(),
            }),
            Ok(v) => Ok(Some(SecretString::from(v))),
            Err(VarError::NotPresent) => Err(SecretError::EnvNotSet {
                var: var.to_string(),
            }),
            Err(VarError::NotUnicode(_)) => Err(SecretError::EnvNotUnicode {
                var: var.to_string(),
            }),
        },
        (None, Some(path)) => {
            let bytes = std::fs::read(path).map_err(|source| SecretError::File {
                path: path.to_path_buf(),
                source,
            })?;
            let mut text = String::from_utf8(bytes).map_err(|_| SecretError::FileNotUnicode {
                path: path.to_path_buf(),
            })?;
            // Trim exactly one trailing newline (`echo pw > file`); other whitespace may be part of the password.
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            if text.is_empty() {
                return Err(SecretError::FileEmpty {
                    path: path.to_path_buf(),
                });
            }
            Ok(Some(SecretString::from(text)))
        }
    }
}

/// `url` fit for a message: the userinfo of its authority (`user:password@`) replaced by `***@`, whether or not
/// the rest of it parses. For echoing a URL a user wrote that is refused.
pub fn url_without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // No authority to find: say nothing of it if it could hold credentials.
        return if url.contains('@') {
            "(not shown: it holds '@')".to_string()
        } else {
            url.to_string()
        };
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://***@{}{tail}", &authority[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "PW" => Ok("s3cret".to_string()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn reads_env_and_file() {
        let pw = read_secret(Some("PW"), None, &env).unwrap().unwrap();
        assert_eq!(pw.expose_secret(), "s3cret");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, " two words \n\n").unwrap();
        let pw = read_secret(None, Some(&path), &env).unwrap().unwrap();
        assert_eq!(
            pw.expose_secret(),
            " two words \n",
            "only one newline is trimmed"
        );
        std::fs::write(&path, "crlf\r\n").unwrap();
        let pw = read_secret(None, Some(&path), &env).unwrap().unwrap();
        assert_eq!(pw.expose_secret(), "crlf");

        assert!(read_secret(None, None, &env).unwrap().is_none());
    }

    #[test]
    fn urls_lose_their_userinfo_even_when_malformed() {
        assert_eq!(
            url_without_userinfo("http://root:s3cret@127.0.0.1:99999/x?a=1"),
            "http://***@127.0.0.1:99999/x?a=1"
        );
        assert_eq!(
            url_without_userinfo("https://u:p@ss:w@[::1:8040"),
            "https://***@[::1:8040"
        );
        assert_eq!(url_without_userinfo("http://fe:8030"), "http://fe:8030");
        assert!(!url_without_userinfo("root:s3cret@fe:8030").contains("s3cret"));
    }

    #[test]
    fn errors_name_the_source_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret").unwrap();
        let both = read_secret(Some("PW"), Some(&path), &env).unwrap_err();
        assert!(matches!(both, SecretError::BothSources));
        assert!(!both.to_string().contains("s3cret"));

        let missing = read_secret(Some("NOPE"), None, &env).unwrap_err();
        assert!(missing.to_string().contains("NOPE"), "{missing}");
        let empty = read_secret(Some("EMPTY"), None, &env).unwrap_err();
        assert!(empty.to_string().contains("EMPTY is empty"), "{empty}");

        let absent = dir.path().join("absent");
        let err = read_secret(None, Some(&absent), &env).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");

        // Debug output of a secret is redacted too.
        let pw = read_secret(Some("PW"), None, &env).unwrap();
        assert!(!format!("{pw:?}").contains("s3cret"));
    }
}
