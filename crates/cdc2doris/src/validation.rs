//! What every configuration section's validation shares. Each section is validated beside the stage that uses it
//! (`[kafka]` in `source/config.rs`, `[postgres]` and `[merge]` in `merge/config.rs`, `[keys]` in
//! `keys/config.rs`, `[doris]` in `sink/doris/config.rs`, `[batch]` in `batch.rs`, `[dead_letter]` in
//! `dead_letter.rs`); `config` calls each one and collects their [`Problem`]s.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::error::Problem;
use crate::secret::{read_secret, EnvLookup};

/// Where a section is validated: the config file's directory (relative paths resolve against it) and the
/// environment secrets are read from.
#[derive(Clone, Copy)]
pub struct SectionContext<'a> {
    /// The config file's directory.
    pub base_dir: &'a Path,
    /// Looks environment variables up.
    pub env: EnvLookup<'a>,
}

impl SectionContext<'_> {
    /// `path` made absolute against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Reads a section's password from `password_env` or `password_file` (resolved in place); a failure is a
    /// problem at the TOML path to blame, without the value.
    pub fn password(
        &self,
        section: &str,
        password_env: Option<&str>,
        password_file: &mut Option<PathBuf>,
        p: &mut Vec<Problem>,
    ) -> Option<SecretString> {
        *password_file = password_file.as_deref().map(|f| self.resolve(f));
        match read_secret(password_env, password_file.as_deref(), self.env) {
            Ok(pw) => pw,
            Err(e) => {
                let field = if password_env.is_some() {
                    "password_env"
                } else {
                    "password_file"
                };
                p.push(Problem::new(format!("{section}.{field}"), e.to_string()));
                None
            }
        }
    }
}

/// A problem at `path` when `value` is empty or blank; `what` says what to write there.
pub fn require_nonempty(value: &str, path: &str, what: &str, p: &mut Vec<Problem>) {
    if value.trim().is_empty() {
        p.push(Problem::new(path, format!("empty; {what}")));
    }
}

/// A key as written in a TOML path: bare if it can be, quoted otherwise.
pub fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::toml_key;

    #[test]
    fn toml_keys_are_bare_when_they_can_be() {
        assert_eq!(toml_key("max_keys"), "max_keys");
        assert_eq!(toml_key("sasl.password"), "\"sasl.password\"");
        assert_eq!(toml_key(""), "\"\"");
    }
}
