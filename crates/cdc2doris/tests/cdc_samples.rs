//! CDC messages against their expected extraction (`expected.json`): first through `inspect`'s logic with the
//! declared format and with `auto`, then through the `cdc2doris inspect` binary.
//!
//! The corpus is `tests/fixtures/cdc` (see its README: Debezium messages recorded from the local stack, Maxwell and
//! Canal messages written from those tools' documentation). A second corpus in the same layout, e.g. a larger
//! collection of messages gathered from other projects, runs through the same checks when `CDC_SAMPLES_DIR` names
//! it; without the variable that check says it is skipped.

#![allow(
    clippy::unwrap_used,
    reason = "a broken fixture or a failed assumption fails the test loudly"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cdc2doris::decode::Format;
use cdc2doris::inspect::describe;
use serde_json::{json, Value};

/// The corpus kept in the repository.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdc")
}

/// The extra corpus named by `CDC_SAMPLES_DIR`, if any.
fn external_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("CDC_SAMPLES_DIR")?);
    assert!(
        dir.join("expected.json").is_file(),
        "CDC_SAMPLES_DIR={} has no expected.json",
        dir.display()
    );
    Some(dir)
}

struct Case {
    path: String,
    format: Format,
    topic: String,
    value: Vec<u8>,
    message_key_path: Option<PathBuf>,
    message_key: Option<Vec<u8>>,
    key_fields: Vec<String>,
    expected: Value,
}

/// Every message of the corpus in `dir` with its expectation. `expected.json` must list every message file of the
/// corpus (anything but `*.key.json`, `expected.json` and `README.md`), so that no file is silently left out.
fn cases(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let expected: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let listed: BTreeSet<&str> = expected.keys().map(String::as_str).collect();
    let on_disk = message_files(dir);
    let on_disk: BTreeSet<&str> = on_disk.iter().map(String::as_str).collect();
    assert_eq!(
        listed,
        on_disk,
        "{}/expected.json must list exactly the message files beside it",
        dir.display()
    );
    expected
        .into_iter()
        .map(|(path, entry)| {
            let format: Format = serde_json::from_value(entry["format"].clone()).unwrap();
            let message_key_path = entry["message_key"].as_str().map(|k| dir.join(k));
            let key_fields: Vec<String> =
                serde_json::from_value(entry["key_fields"].clone()).unwrap();
            let mut expected = json!({
                "format": entry["format"],
                "schema": entry["schema"],
                "table": entry["table"],
                "op": entry["op"],
            });
            if !key_fields.is_empty() {
                expected["keys"] = entry["keys"].clone();
            }
            Case {
                value: std::fs::read(dir.join(&path)).unwrap(),
                message_key: message_key_path.as_ref().map(|p| std::fs::read(p).unwrap()),
                message_key_path,
                topic: entry["topic"].as_str().unwrap().to_owned(),
                path,
                format,
                key_fields,
                expected,
            }
        })
        .collect()
}

/// The message files under `dir`, as paths relative to it with `/` separators.
fn message_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(dir).unwrap();
            let name = relative.to_string_lossy().replace('\\', "/");
            if !(name.ends_with(".key.json") || name == "expected.json" || name == "README.md") {
                found.push(name);
            }
        }
    }
    found
}

impl Case {
    fn run(&self, format: Format, key_fields: Option<&[String]>) -> Value {
        let line = describe(
            format,
            &self.topic,
            key_fields,
            &self.value,
            self.message_key.as_deref(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", self.path));
        assert!(!line.contains('\n'));
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", self.path))
    }

    fn key_fields(&self) -> Option<&[String]> {
        (!self.key_fields.is_empty()).then_some(self.key_fields.as_slice())
    }
}

fn with_declared_format(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let got = case.run(case.format, case.key_fields());
        if got != case.expected {
            failures.push(format!(
                "{}:\n  got      {got}\n  expected {}",
                case.path, case.expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} messages differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn with_auto_detection(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let mut expected = case.expected.clone();
        if case.value.is_empty() {
            // A tombstone has no content to tell an unwrapped topic from an enveloped one.
            expected["format"] = json!("debezium");
        }
        let got = case.run(Format::Auto, case.key_fields());
        if got != expected {
            failures.push(format!(
                "{}:\n  got      {got}\n  expected {expected}",
                case.path
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} messages differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn without_keys_an_empty_key_list(cases: &[Case]) {
    let mut seen = 0;
    for case in cases
        .iter()
        .filter(|c| matches!(c.expected["op"].as_str(), Some("ignore" | "truncate")))
    {
        let got = case.run(case.format, Some(&["id".to_owned()]));
        assert_eq!(got["keys"], json!([]), "{}", case.path);
        seen += 1;
    }
    assert!(seen > 0, "the corpus has no message without rows");
}

fn binary_prints_one_line_each(dir: &Path, cases: &[Case]) {
    for case in cases {
        let value_path = dir.join(&case.path);
        let mut args = vec![
            "--format".to_owned(),
            case.format.as_str().to_owned(),
            "--topic".to_owned(),
            case.topic.clone(),
        ];
        if let Some(key) = &case.message_key_path {
            args.extend(["--message-key".to_owned(), key.display().to_string()]);
        }
        if !case.key_fields.is_empty() {
            args.extend(["--key".to_owned(), case.key_fields.join(",")]);
        }
        args.push(value_path.display().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = binary(&args, b"");
        assert_eq!((code, stderr.as_str()), (0, ""), "{}", case.path);
        assert_eq!(stdout.lines().count(), 1, "{}: {stdout}", case.path);
        let got: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(got, case.expected, "{}", case.path);
    }
}

#[test]
fn every_fixture_with_its_declared_format() {
    with_declared_format(&cases(&fixtures_dir()));
}

#[test]
fn every_fixture_with_auto_detection() {
    with_auto_detection(&cases(&fixtures_dir()));
}

#[test]
fn fixtures_without_rows_print_an_empty_key_list() {
    without_keys_an_empty_key_list(&cases(&fixtures_dir()));
}

#[test]
fn the_binary_prints_one_line_per_fixture() {
    let dir = fixtures_dir();
    binary_prints_one_line_each(&dir, &cases(&dir));
}

#[test]
fn every_format_has_fixtures() {
    let cases = cases(&fixtures_dir());
    for format in [
        Format::Debezium,
        Format::DebeziumUnwrapped,
        Format::Maxwell,
        Format::Canal,
    ] {
        assert!(
            cases.iter().any(|c| c.format == format),
            "no fixture for {}",
            format.as_str()
        );
    }
    // Debezium with and without schemas, both recorded.
    assert!(cases.iter().any(|c| c.path.ends_with(".schema.json")));
    assert!(cases
        .iter()
        .any(|c| c.format == Format::Debezium && !c.path.contains(".schema.")));
}

#[test]
fn key_numbers_keep_every_digit() {
    // An int64 above 2^53: a parser that goes through f64 would print ...976.
    for path in [
        "debezium-postgres/customers-03-insert.json",
        "debezium-postgres/customers-03-insert.schema.json",
        "debezium-unwrapped/customers-03-insert.json",
    ] {
        let case = cases(&fixtures_dir())
            .into_iter()
            .find(|c| c.path == path)
            .unwrap();
        let line = describe(
            case.format,
            &case.topic,
            case.key_fields(),
            &case.value,
            case.message_key.as_deref(),
        )
        .unwrap();
        assert!(
            line.ends_with(r#""keys":[[1152921504606846977]]}"#),
            "{path}: {line}"
        );
    }
}

/// The extra corpus of `CDC_SAMPLES_DIR` through every check above; says so when it is skipped.
#[test]
fn the_external_corpus_when_cdc_samples_dir_names_one() {
    let Some(dir) = external_dir() else {
        // Straight to stderr: the test harness captures `eprintln!` of a passing test, and this should be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the_external_corpus_when_cdc_samples_dir_names_one: CDC_SAMPLES_DIR is not set \
             (the fixtures in tests/fixtures/cdc ran)"
        );
        return;
    };
    let cases = cases(&dir);
    eprintln!("{} messages in {}", cases.len(), dir.display());
    with_declared_format(&cases);
    with_auto_detection(&cases);
    without_keys_an_empty_key_list(&cases);
    binary_prints_one_line_each(&dir, &cases);
}

fn binary(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .arg("inspect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_binary_reads_stdin_and_fails_with_code_2() {
    let (code, stdout, _) = binary(
        &["--key", "id"],
        br#"{"op":"c","source":{"schema":"s","table":"t"},"after":{"id":7}}"#,
    );
    assert_eq!((code, stdout.as_str()), (0, "{\"format\":\"debezium\",\"schema\":\"s\",\"table\":\"t\",\"op\":\"insert\",\"keys\":[[7]]}\n"));

    let (code, stdout, _) = binary(&["--topic", "a.b.c", "--key", "id", "-"], b"");
    assert_eq!((code, stdout.as_str()), (0, "{\"format\":\"debezium\",\"schema\":\"b\",\"table\":\"c\",\"op\":\"ignore\",\"keys\":[]}\n"));

    for (args, input, want) in [
        (
            &[][..],
            &br#"{"op":"c","source":{"#[..],
            "EOF while parsing",
        ),
        (&[], b"[1,2]", "`value` is an array"),
        (
            &["--format", "maxwell"],
            br#"{"type":"frob","data":{}}"#,
            "unknown operation type `frob`",
        ),
        (
            &["--key", "job_id"],
            br#"{"op":"c","source":{},"after":{"id":1}}"#,
            "key field `job_id` is missing",
        ),
        (
            &["--key", "id", "--topic", "t"],
            br#"{"op":"d","source":{},"before":null}"#,
            "key field `id` is missing",
        ),
        (
            &["--message-key", "/nonexistent/key.json"],
            b"{}",
            "cannot read /nonexistent/key.json",
        ),
        (
            &["/nonexistent/value.json"],
            b"",
            "cannot read /nonexistent/value.json",
        ),
    ] {
        let (code, stdout, stderr) = binary(args, input);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("cdc2doris inspect: ") && stderr.contains(want),
            "{args:?}: {stderr}"
        );
    }
}
