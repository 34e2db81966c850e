//! What a panic shows. A panic is a bug, but its message is built by whatever code panicked — ours or a
//! dependency's — and may quote a value that holds a password. [`install`] replaces Rust's default report with one
//! that masks every secret the loaded configuration holds ([`mask_in_panics`]) and goes through the logs (so a JSON
//! log stays JSON); without a log subscriber it is written to stderr like the default report.

use std::sync::{Mutex, Once, PoisonError};

use secrecy::{ExposeSecret, SecretString};

/// What replaces a secret in a panic report.
pub const MASK: &str = "***";

static SECRETS: Mutex<Vec<SecretString>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Replaces the process's panic report with the masked one. Idempotent.
pub fn install() {
    INSTALL.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = masked(&payload_text(info.payload()));
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "an unknown location".to_string());
            let thread = std::thread::current();
            let thread = thread.name().unwrap_or("<unnamed>");
            let backtrace = std::backtrace::Backtrace::capture();
            let backtrace = match backtrace.status() {
                std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
                _ => String::new(),
            };
            if tracing::dispatcher::has_been_set() {
                tracing::error!(
                    thread,
                    location,
                    "panic (a bug; please report it): {message}{backtrace}"
                );
            } else {
                eprintln!(
                    "cdc2doris: thread '{thread}' panicked at {location}: {message}{backtrace}"
                );
            }
        }));
    });
}

/// Adds secrets to mask in panic reports (the passwords of a loaded configuration).
pub fn mask_in_panics<'a>(secrets: impl IntoIterator<Item = &'a SecretString>) {
    let mut known = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    for secret in secrets {
        let value = secret.expose_secret();
        if !value.is_empty() && !known.iter().any(|k| k.expose_secret() == value) {
            known.push(SecretString::from(value.to_string()));
        }
    }
}

/// `text` with every registered secret replaced by [`MASK`], longest first (a secret that contains another is
/// masked whole).
pub fn masked(text: &str) -> String {
    let known = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut values: Vec<&str> = known.iter().map(|s| s.expose_secret()).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for value in values {
        if out.contains(value) {
            out = out.replace(value, MASK);
        }
    }
    out
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_masked_whole_even_when_another_is_part_of_it() {
        mask_in_panics(&[
            SecretString::from("pw-part"),
            SecretString::from("pw-part-and-more"),
        ]);
        assert_eq!(
            masked("a=pw-part-and-more b=pw-part c=other"),
            "a=*** b=*** c=other"
        );
    }
}
