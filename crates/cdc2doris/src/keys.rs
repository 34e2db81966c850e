//! Key extraction: which keys of the merged table a change event refreshes.

/// The declared type of a key field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// A 64-bit signed integer (numeric strings are accepted).
    #[default]
    Integer,
    /// A string, e.g. a UUID.
    String,
}
