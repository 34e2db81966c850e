//! `cdc2doris inspect`: decode one message and print what the service makes of it.
//!
//! ```text
//! cdc2doris inspect [--format auto|debezium|debezium-unwrapped|maxwell|canal] [--topic NAME]
//!                   [--message-key FILE] [--key FIELD[,FIELD...]] [FILE|-]
//! ```
//!
//! prints one JSON line, e.g. `{"format":"debezium","schema":"public","table":"jobs","op":"update","keys":[[42]]}`:
//! the format (detected with `auto`), the source schema (or MySQL database) and table, the operation (`ignore` for a
//! message without rows), and with `--key` the distinct key tuples, each value exactly as written in the message.
//! Malformed input, or a key that cannot be found, exits with code 2 and one line on stderr.
//!
//! With `--config FILE --topic NAME` the service's own rules decide instead of `--format` and `--key`: the topic's
//! format, then the rule for the message's table (`keys.rules[].table`) or the topic's rule without one, printed as
//! `"rule":"keys.rules[1]"` before the keys — or `"rule":null` and no keys when no rule takes the table, an event
//! the service ignores. Resolve queries are not run (they need PostgreSQL): the keys printed are the values they
//! would receive.

use std::io::Read;
use std::path::PathBuf;

use crate::config::{self, ConfigFile, ParseError};
use crate::decode::{self, DecodeError, Decoded, Format, MessageContext};
use crate::keys::{self, KeyError, KeyRuleError, KeyType, TableMatch};

/// Arguments of `cdc2doris inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The wire format of the message; `auto` detects it.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// The topic the message came from. Unwrapped records and tombstones take their schema and table from a topic
    /// named `<prefix>.<schema>.<table>`.
    #[arg(long, value_name = "NAME")]
    pub topic: Option<String>,
    /// A file holding the message's Kafka key (a tombstone's only content).
    #[arg(long, value_name = "FILE")]
    pub message_key: Option<PathBuf>,
    /// The key field, or comma-separated fields of a composite key, whose values to print.
    #[arg(long, value_name = "FIELD[,FIELD...]", value_delimiter = ',')]
    pub key: Option<Vec<String>>,
    /// Use the format and key rules of this configuration file for `--topic` (instead of `--format`/`--key`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["format", "key"], requires = "topic")]
    pub config: Option<PathBuf>,
    /// The message value: a file, or `-` for standard input. An empty input is a tombstone.
    #[arg(default_value = "-", value_name = "FILE|-")]
    pub input: String,
}

/// Why `inspect` could not describe a message.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The message value could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The key fields could not be found or read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A key is not of the rule's key type (`run` dead-letters the message).
    #[error(transparent)]
    KeyType(#[from] crate::merge::postgres::KeyTypeError),
    /// `--key` is not a usable list of fields.
    #[error("--key: {0}")]
    KeyRule(#[from] KeyRuleError),
    /// The `--config` file is not a valid configuration.
    #[error("--config: {0}")]
    Config(#[from] ParseError),
    /// A rule's `table` in the `--config` file is not `table` or `schema.table`.
    #[error("--config: keys.rules[{0}].table: {1}")]
    BadTable(usize, String),
    /// The `--config` file has no rule for the topic.
    #[error("--config has no keys.rules entry for topic {0:?}")]
    NoRule(String),
    /// An input file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What `inspect` prints for one message (without the newline): see the module documentation.
pub fn describe(
    format: Format,
    topic: &str,
    key_fields: Option<&[String]>,
    value: &[u8],
    message_key: Option<&[u8]>,
) -> Result<String, InspectError> {
    let ctx = MessageContext::detached(topic);
    let decoded = decode::decode(format, &ctx, message_key, Some(value))?;
    render(
        &decoded,
        &ctx,
        key_fields,
        KeyType::String,
        message_key,
        None,
    )
}

/// What `inspect --config` prints: the topic's format, and the keys of the rule that takes the message's table, as
/// `cdc2doris run` picks it.
pub fn describe_with_config(
    file: &ConfigFile,
    topic: &str,
    value: &[u8],
    message_key: Option<&[u8]>,
) -> Result<String, InspectError> {
    let mut rules: Vec<(Option<TableMatch>, (usize, &config::KeyRuleConfig))> = Vec::new();
    for (i, rule) in file.keys.rules.iter().enumerate() {
        if rule.topic == topic {
            let table = rule
                .table
                .as_deref()
                .map(TableMatch::parse)
                .transpose()
                .map_err(|why| InspectError::BadTable(i, why))?;
            rules.push((table, (i, rule)));
        }
    }
    let Some((_, (_, first))) = rules.first() else {
        return Err(InspectError::NoRule(topic.to_owned()));
    };
    let ctx = MessageContext::detached(topic);
    let decoded = decode::decode(first.format, &ctx, message_key, Some(value))?;
    if let Decoded::Ignore(_) = decoded {
        return render(&decoded, &ctx, Some(&[]), first.key_type, message_key, None);
    }
    match keys::rule_for_table(&rules, decoded.table()) {
        Some((i, rule)) => render(
            &decoded,
            &ctx,
            Some(&rule.fields),
            rule.key_type,
            message_key,
            Some(Some(&format!("keys.rules[{i}]"))),
        ),
        None => render(
            &decoded,
            &ctx,
            None,
            first.key_type,
            message_key,
            Some(None),
        ),
    }
}

/// The line for a decoded message; `rule` is printed when given (`Some(None)`: no rule takes it). A key that is not
/// of `key_type` is the error `run` dead-letters the message with.
fn render(
    decoded: &Decoded<'_>,
    ctx: &MessageContext<'_>,
    key_fields: Option<&[String]>,
    key_type: KeyType,
    message_key: Option<&[u8]>,
    rule: Option<Option<&str>>,
) -> Result<String, InspectError> {
    let op = match decoded {
        Decoded::Change(change) => change.op.as_str(),
        Decoded::Ignore(_) => "ignore",
    };
    let table = decoded.table();
    let mut line = String::with_capacity(128);
    line.push_str("{\"format\":");
    push_json_string(&mut line, decoded.format().as_str());
    line.push_str(",\"schema\":");
    push_optional(&mut line, table.schema.as_deref());
    line.push_str(",\"table\":");
    push_optional(&mut line, table.table.as_deref());
    line.push_str(",\"op\":");
    push_json_string(&mut line, op);
    if let Some(rule) = rule {
        line.push_str(",\"rule\":");
        push_optional(&mut line, rule);
    }
    if let Some(fields) = key_fields.filter(|f| !f.is_empty()) {
        let rule = keys::KeyRule::new(fields.iter().map(String::as_str), key_type)?;
        // The typed extraction checks each value as `run` does; the exact text is printed.
        for tuple in rule.extract(decoded, message_key, ctx)? {
            crate::merge::postgres::MergeKeys::from_keys(tuple, key_type)?;
        }
        let tuples = keys::exact_tuples(fields, decoded, message_key, ctx)?;
        line.push_str(",\"keys\":[");
        for (i, tuple) in tuples.iter().enumerate() {
            line.push_str(if i == 0 { "[" } else { ",[" });
            line.push_str(&tuple.join(","));
            line.push(']');
        }
        line.push(']');
    } else if key_fields.is_some() {
        line.push_str(",\"keys\":[]");
    }
    line.push('}');
    Ok(line)
}

fn push_json_string(line: &mut String, s: &str) {
    line.push_str(&serde_json::Value::from(s).to_string());
}

fn push_optional(line: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_json_string(line, s),
        None => line.push_str("null"),
    }
}

fn read_input(path: &str) -> Result<Vec<u8>, InspectError> {
    let mut bytes = Vec::new();
    let result = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    result.map(|()| bytes).map_err(|source| InspectError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Runs `inspect`; returns the process exit code: 0, or 2 after one line on stderr.
pub fn run(args: &InspectArgs) -> i32 {
    let result = (|| {
        let value = read_input(&args.input)?;
        let message_key = match &args.message_key {
            Some(path) => Some(read_input(&path.to_string_lossy())?),
            None => None,
        };
        let topic = args.topic.as_deref().unwrap_or("");
        match &args.config {
            Some(path) => {
                let text = read_input(&path.to_string_lossy())?;
                let file = config::parse(&String::from_utf8_lossy(&text))?;
                describe_with_config(&file, topic, &value, message_key.as_deref())
            }
            None => describe(
                args.format,
                topic,
                args.key.as_deref(),
                &value,
                message_key.as_deref(),
            ),
        }
    })();
    match result {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(err) => {
            let text = err.to_string().replace(['\n', '\r'], " ");
            eprintln!("cdc2doris inspect: {text}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_debezium_update() {
        let value = br#"{"op":"u","source":{"schema":"public","table":"jobs"},"before":null,"after":{"id":42}}"#;
        let line = describe(Format::Auto, "", Some(&["id".to_owned()]), value, None).unwrap();
        assert_eq!(
            line,
            r#"{"format":"debezium","schema":"public","table":"jobs","op":"update","keys":[[42]]}"#
        );
        let line = describe(Format::Auto, "", None, value, None).unwrap();
        assert_eq!(
            line,
            r#"{"format":"debezium","schema":"public","table":"jobs","op":"update"}"#
        );
    }

    #[test]
    fn ignored_messages_have_no_keys() {
        let line = describe(
            Format::Auto,
            "srv.transaction",
            Some(&["id".to_owned()]),
            br#"{"status":"BEGIN"}"#,
            None,
        );
        assert_eq!(
            line.unwrap(),
            r#"{"format":"debezium","schema":null,"table":null,"op":"ignore","keys":[]}"#
        );
    }

    #[test]
    fn bad_key_list() {
        let err = describe(
            Format::Auto,
            "",
            Some(&["a".to_owned(), "a".to_owned()]),
            b"{\"id\":1}",
            None,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "--key: key field `a` is listed twice");
    }

    #[test]
    fn with_a_config_the_rule_of_the_table_decides() {
        let file = crate::config::parse(
            r#"
[kafka]
bootstrap_servers = ["k:9092"]
group_id = "g"
topics = ["maxwell", "srv.public.jobs"]
[postgres]
url = "postgres://u@h/d"
[keys]
[[keys.rules]]
topic = "maxwell"
table = "shop.job_activity"
format = "maxwell"
fields = ["job_id"]
[[keys.rules]]
topic = "maxwell"
table = "jobs"
format = "maxwell"
fields = ["id"]
[[keys.rules]]
topic = "srv.public.jobs"
fields = ["id"]
[merge]
query_file = "merge.sql"
key_column = "job_id"
[doris]
fe_urls = ["http://fe:8030"]
database = "d"
table = "t"
sequence_column = "v"
[dead_letter]
path = "dl.jsonl"
"#,
        )
        .unwrap();
        let maxwell = |table: &str| {
            format!(
                r#"{{"database":"shop","table":"{table}","type":"update","data":{{"id":5,"job_id":9}},"old":{{"job_id":8}}}}"#
            )
        };
        let line = |topic: &str, value: &str| {
            describe_with_config(&file, topic, value.as_bytes(), None).map_err(|e| e.to_string())
        };
        assert_eq!(
            line("maxwell", &maxwell("job_activity")).unwrap(),
            r#"{"format":"maxwell","schema":"shop","table":"job_activity","op":"update","rule":"keys.rules[0]","keys":[[9],[8]]}"#
        );
        assert_eq!(
            line("maxwell", &maxwell("jobs")).unwrap(),
            r#"{"format":"maxwell","schema":"shop","table":"jobs","op":"update","rule":"keys.rules[1]","keys":[[5]]}"#
        );
        assert_eq!(
            line("maxwell", &maxwell("audit_log")).unwrap(),
            r#"{"format":"maxwell","schema":"shop","table":"audit_log","op":"update","rule":null}"#
        );
        assert_eq!(
            line("srv.public.jobs", r#"{"ts_ms":1}"#).unwrap(),
            r#"{"format":"debezium","schema":null,"table":null,"op":"ignore","keys":[]}"#
        );
        let err = line("other", "{}").unwrap_err();
        assert!(
            err.contains("no keys.rules entry for topic \"other\""),
            "{err}"
        );
    }
    /// A key `run` would dead-letter for its type (a word, or a number beyond 64 bits, where the rule's key type is
    /// integer) is an error in `inspect --config` too, with the same words.
    #[test]
    fn with_a_config_a_key_not_of_the_rule_type_is_an_error() {
        let file = crate::config::parse(
            r#"
[kafka]
bootstrap_servers = ["k:9092"]
group_id = "g"
topics = ["srv.public.jobs"]
[postgres]
url = "postgres://u@h/d"
[keys]
[[keys.rules]]
topic = "srv.public.jobs"
fields = ["id"]
[merge]
query_file = "merge.sql"
key_column = "id"
[doris]
fe_urls = ["http://fe:8030"]
database = "d"
table = "t"
sequence_column = "v"
[dead_letter]
path = "dl.jsonl"
"#,
        )
        .unwrap();
        let update = |id: &str| {
            format!(
                r#"{{"op":"u","source":{{"schema":"public","table":"jobs"}},"before":null,"after":{{"id":{id}}}}}"#
            )
        };
        let line = |value: &str| {
            describe_with_config(&file, "srv.public.jobs", value.as_bytes(), None)
                .map_err(|e| e.to_string())
        };
        assert!(line(&update("42")).unwrap().ends_with(r#""keys":[[42]]}"#));
        // A word: the rule's extraction refuses it.
        let value = update(r#""forty-two""#);
        let ctx = crate::decode::MessageContext::detached("srv.public.jobs");
        let decoded =
            crate::decode::decode(Format::Debezium, &ctx, None, Some(value.as_bytes())).unwrap();
        let rule = keys::KeyRule::new(["id"], KeyType::Integer).unwrap();
        let run_says = rule.extract(&decoded, None, &ctx).unwrap_err().to_string();
        assert_eq!(line(&value).unwrap_err(), run_says);
        // Beyond 64 bits: binding it as the merge query's $1 refuses it.
        let big = keys::KeyValue::BigInt("18446744073709551616".into());
        let run_says = crate::merge::postgres::MergeKeys::from_keys([big], KeyType::Integer)
            .unwrap_err()
            .to_string();
        assert_eq!(line(&update("18446744073709551616")).unwrap_err(), run_says);
    }
}
