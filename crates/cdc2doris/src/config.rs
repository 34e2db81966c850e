//! The service configuration: one TOML file.
