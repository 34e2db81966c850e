//! `--resume`'s checkpoint file: which backfill it is of, and how far it got. Written atomically after every loaded
//! batch.

use std::path::{Path, PathBuf};

use super::KeysError;

/// What `--resume` keeps: which run it is of, and the last key of the last loaded batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Checkpoint {
    pub(super) keys_query: String,
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
    /// Every key up to this one (in key order) was loaded.
    pub(super) after: Option<String>,
    /// Keys loaded so far, over every run.
    pub(super) keys: u64,
    /// The last batch was loaded.
    pub(super) done: bool,
}

impl Checkpoint {
    pub(super) fn read(path: &Path) -> Result<Option<Checkpoint>, KeysError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|source| {
                KeysError::CheckpointSyntax {
                    path: path.to_path_buf(),
                    source,
                }
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeysError::Checkpoint {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the checkpoint to a temporary file beside it, synced, then renames it over the old one: a crash leaves
    /// the old checkpoint or the new one, never half of one.
    pub(super) fn write(&self, path: &Path) -> Result<(), KeysError> {
        use std::io::Write;
        let err = |source| KeysError::Checkpoint {
            path: path.to_path_buf(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let text = serde_json::to_string(self).unwrap_or_default();
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}
