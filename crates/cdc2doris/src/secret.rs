//! Secrets (passwords) read from an environment variable or a file, never from the config file itself.
