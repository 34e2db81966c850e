//! CDC event decoding: one Kafka message value (and key) → one change event.
//!
//! [`decode`] reads only what routing and key extraction need: the source table, the operation, the position, and the
//! row images as borrowed raw JSON ([`RawObject`]). A JsonConverter `schema` block is not read at all, and nothing is
//! allocated for a message beyond an escaped table name or a Canal message's list of rows; [`crate::keys`] then reads
//! the key columns straight out of the raw images. A Debezium data event, the common message, is read in one
//! validating pass by a small reader of our own (`reader.rs`); everything else, and every error, goes through serde.
//!
//! One file per wire format, each with the format's rules stated at the top:
//! [`debezium`] (the envelope, with or without schemas), [`unwrapped`] (after ExtractNewRecordState), [`maxwell`],
//! [`canal`] (Canal's flat-message JSON), and [`auto`] (detection from the message's top-level members).
//!
//! Messages that carry no row change (transaction markers, heartbeats, DDL, logical messages, bootstrap markers, a
//! tombstone without a key) are not errors: they decode to [`Decoded::Ignore`] with the reason.

pub mod auto;
pub mod canal;
pub mod debezium;
pub(crate) mod json;
pub mod maxwell;
pub(crate) mod reader;
pub mod unwrapped;

use std::borrow::Cow;
use std::fmt;

use serde_json::value::RawValue;

use crate::error::ErrorClass;

/// The wire format of a topic's messages.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Detect the format from the message itself.
    #[default]
    Auto,
    /// Debezium envelope from the JSON converter, with or without schemas.
    Debezium,
    /// Debezium after the ExtractNewRecordState transform.
    DebeziumUnwrapped,
    /// Maxwell's daemon JSON.
    Maxwell,
    /// Canal JSON (flat message).
    Canal,
}

impl Format {
    /// The name used in the configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Debezium => "debezium",
            Format::DebeziumUnwrapped => "debezium-unwrapped",
            Format::Maxwell => "maxwell",
            Format::Canal => "canal",
        }
    }
}

impl Format {
    /// The format's name in a sentence: "a malformed Debezium message".
    pub fn noun(self) -> &'static str {
        match self {
            Format::Auto => "CDC",
            Format::Debezium => "Debezium",
            Format::DebeziumUnwrapped => "unwrapped Debezium",
            Format::Maxwell => "Maxwell",
            Format::Canal => "Canal",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message came from; carried into every error so that it names the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageContext<'a> {
    /// The Kafka topic. Unwrapped records and tombstones take their schema and table from it.
    pub topic: &'a str,
    /// The partition, or -1 for a message not read from Kafka (`inspect`, tests).
    pub partition: i32,
    /// The offset within the partition, or -1 for a message not read from Kafka.
    pub offset: i64,
}

impl<'a> MessageContext<'a> {
    /// A message read from `topic` at `partition`/`offset`.
    pub fn new(topic: &'a str, partition: i32, offset: i64) -> Self {
        MessageContext {
            topic,
            partition,
            offset,
        }
    }

    /// A message that was not read from Kafka (inspect, tests): only its topic is known.
    pub fn detached(topic: &'a str) -> Self {
        MessageContext {
            topic,
            partition: -1,
            offset: -1,
        }
    }

    /// An owned copy for an error.
    pub fn location(&self) -> Location {
        Location {
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// The owned topic/partition/offset of a message, as errors print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The Kafka topic.
    pub topic: String,
    /// The partition, -1 when not read from Kafka.
    pub partition: i32,
    /// The offset, -1 when not read from Kafka.
    pub offset: i64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.topic.is_empty() {
            f.write_str("(no topic)")?;
        } else {
            write!(f, "topic `{}`", self.topic)?;
        }
        if self.partition >= 0 {
            write!(f, " partition {} offset {}", self.partition, self.offset)?;
        }
        Ok(())
    }
}

/// The kind of row change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A new row (Debezium `c`, Maxwell `insert`, Canal `INSERT`).
    Insert,
    /// A changed row (`u`, `update`, `UPDATE`).
    Update,
    /// An unwrapped Debezium record that does not say whether it was an insert, update or snapshot read.
    Upsert,
    /// A removed row, including a tombstone with a key.
    Delete,
    /// A snapshot read (Debezium `r`, Maxwell `bootstrap-insert`, Canal `INIT`).
    Read,
    /// The whole table was emptied; carries no keys.
    Truncate,
}

impl Op {
    /// The lower-case name `inspect` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Upsert => "upsert",
            Op::Delete => "delete",
            Op::Read => "read",
            Op::Truncate => "truncate",
        }
    }
}

/// Why a message carries no row change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// Debezium transaction metadata (BEGIN/END on `<prefix>.transaction`).
    TransactionMetadata,
    /// A Debezium heartbeat (`__debezium-heartbeat.<prefix>`).
    Heartbeat,
    /// DDL: a Debezium schema-change event, Maxwell `table-*`/`database-*`, a Canal `isDdl` message.
    SchemaChange,
    /// A PostgreSQL logical-decoding message (Debezium `op: m`).
    LogicalMessage,
    /// Maxwell `bootstrap-start` / `bootstrap-complete`.
    BootstrapMarker,
    /// A null value without a Kafka key: nothing says which row it removes.
    TombstoneWithoutKey,
    /// A null value on a Maxwell or Canal topic, formats that never write tombstones.
    NullValue,
}

impl IgnoreReason {
    /// A short name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::TransactionMetadata => "transaction_metadata",
            IgnoreReason::Heartbeat => "heartbeat",
            IgnoreReason::SchemaChange => "schema_change",
            IgnoreReason::LogicalMessage => "logical_message",
            IgnoreReason::BootstrapMarker => "bootstrap_marker",
            IgnoreReason::TombstoneWithoutKey => "tombstone_without_key",
            IgnoreReason::NullValue => "null_value",
        }
    }
}

/// The table a message is about, when it names one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableName<'a> {
    /// The PostgreSQL schema, or the MySQL database (Debezium MySQL, Maxwell, Canal).
    pub schema: Option<Cow<'a, str>>,
    /// The bare table name.
    pub table: Option<Cow<'a, str>>,
}

impl<'a> TableName<'a> {
    /// Schema and table from a topic named `<prefix>.<schema>.<table>` (Debezium's default): the last two
    /// dot-separated parts; a topic without a dot is taken as the table name alone.
    pub fn from_topic(topic: &'a str) -> Self {
        if topic.is_empty() {
            return TableName::default();
        }
        match topic.rsplit_once('.') {
            None => TableName {
                schema: None,
                table: Some(Cow::Borrowed(topic)),
            },
            Some((rest, table)) => {
                let schema = rest.rsplit_once('.').map_or(rest, |(_, schema)| schema);
                TableName {
                    schema: Some(Cow::Borrowed(schema)),
                    table: Some(Cow::Borrowed(table)),
                }
            }
        }
    }
}

/// The position of a change in the source database's log, when the message carries it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// PostgreSQL LSN of the change (Debezium `source.lsn`, unwrapped `__lsn`).
    pub lsn: Option<u64>,
    /// Source transaction id (Debezium `source.txId`, Maxwell `xid`).
    pub xid: Option<u64>,
    /// When the change happened in the source database, in milliseconds since the epoch (Debezium `source.ts_ms`,
    /// Maxwell `ts` × 1000, Canal `es`).
    pub ts_ms: Option<u64>,
}

/// The raw text of a JSON object in a message, already checked to be well-formed: a row image, read without being
/// parsed (key extraction picks its few fields out of it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawObject<'a>(&'a str);

impl<'a> RawObject<'a> {
    /// The object's text, from `{` to `}`.
    pub fn get(self) -> &'a str {
        self.0
    }

    /// `text` (well-formed JSON, e.g. after serde accepted it) without surrounding whitespace, when it is an object.
    pub(crate) fn of_checked(text: &'a str) -> Option<Self> {
        let text = text.trim_matches([' ', '\t', '\n', '\r']);
        text.starts_with('{').then_some(RawObject(text))
    }
}

impl fmt::Debug for RawObject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The row images of one changed row, as borrowed raw JSON objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Row<'a> {
    /// The row before the change: Debezium `before` (every column with REPLICA IDENTITY FULL, only the key columns or
    /// nothing otherwise), or the deleted row of a Maxwell/Canal/unwrapped delete.
    pub before: Option<RawObject<'a>>,
    /// The row after the change: Debezium `after`, Maxwell/Canal `data` of an insert or update, an unwrapped record.
    pub after: Option<RawObject<'a>>,
    /// Maxwell/Canal `old`: the previous values of the changed columns only. The old row is `after` overlaid with it.
    pub changed_old: Option<RawObject<'a>>,
}

/// The rows of a change event: one, or several for a Canal message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows<'a> {
    /// Debezium, unwrapped and Maxwell messages carry one row.
    One(Row<'a>),
    /// A Canal message carries one entry per `data[]` element.
    Many(Vec<Row<'a>>),
}

impl<'a> Rows<'a> {
    /// The rows as a slice.
    pub fn as_slice(&self) -> &[Row<'a>] {
        match self {
            Rows::One(row) => std::slice::from_ref(row),
            Rows::Many(rows) => rows,
        }
    }
}

/// A decoded row change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent<'a> {
    /// The format the message was decoded as (never [`Format::Auto`]).
    pub format: Format,
    /// The source table.
    pub table: TableName<'a>,
    /// The kind of change.
    pub op: Op,
    /// The row images.
    pub rows: Rows<'a>,
    /// Where in the source log the change happened.
    pub position: Position,
}

/// A message that carries no row change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored<'a> {
    /// The format the message was decoded as (never [`Format::Auto`]).
    pub format: Format,
    /// Why it carries no row.
    pub reason: IgnoreReason,
    /// The table it is about, if any (DDL and bootstrap markers name one).
    pub table: TableName<'a>,
}

/// What a Kafka message means to the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A row change whose keys must be refreshed.
    Change(ChangeEvent<'a>),
    /// No row change; the offset can be committed without doing anything.
    Ignore(Ignored<'a>),
}

impl<'a> Decoded<'a> {
    /// The format the message was decoded as.
    pub fn format(&self) -> Format {
        match self {
            Decoded::Change(c) => c.format,
            Decoded::Ignore(i) => i.format,
        }
    }

    /// The table the message names, if any.
    pub fn table(&self) -> &TableName<'a> {
        match self {
            Decoded::Change(c) => &c.table,
            Decoded::Ignore(i) => &i.table,
        }
    }
}

/// A message that cannot be decoded. Every variant names the message; all are permanent: the same bytes will fail
/// the same way, so the pipeline must stop or dead-letter the message, not retry it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The value is not UTF-8, not JSON, truncated, or a member has the wrong JSON type.
    #[error("{at}: malformed {} message: {source}", format.noun())]
    Json {
        at: Location,
        format: Format,
        #[source]
        source: serde_json::Error,
    },
    /// The value is valid JSON but none of the shapes the format defines.
    #[error("{at}: not a {} message: {detail}", format.noun())]
    UnknownEnvelope {
        at: Location,
        format: Format,
        detail: &'static str,
    },
    /// A member the format requires is missing or null.
    #[error("{at}: the {} message has no `{field}`", format.noun())]
    MissingField {
        at: Location,
        format: Format,
        field: &'static str,
    },
    /// A member has a JSON type the format does not allow.
    #[error("{at}: in the {} message, `{field}` is {found}, expected {expected}", format.noun())]
    WrongType {
        at: Location,
        format: Format,
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    /// The operation is not one the format defines.
    #[error("{at}: the {} message has unknown operation {field} `{op}`", format.noun())]
    UnknownOp {
        at: Location,
        format: Format,
        field: &'static str,
        op: String,
    },
}

impl DecodeError {
    /// How the pipeline should react: every decode error is [`ErrorClass::Permanent`].
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }

    /// The message the error is about.
    pub fn location(&self) -> &Location {
        match self {
            DecodeError::Json { at, .. }
            | DecodeError::UnknownEnvelope { at, .. }
            | DecodeError::MissingField { at, .. }
            | DecodeError::WrongType { at, .. }
            | DecodeError::UnknownOp { at, .. } => at,
        }
    }
}

/// Decodes one Kafka message: its value (`None` for a tombstone) and its key, which decides whether a tombstone is a
/// delete (with a key) or ignorable (without). The result borrows from `value`.
///
/// An empty value and the JSON literal `null` are treated like a tombstone.
pub fn decode<'a>(
    format: Format,
    ctx: &MessageContext<'a>,
    key: Option<&[u8]>,
    value: Option<&'a [u8]>,
) -> Result<Decoded<'a>, DecodeError> {
    let bytes = value
        .map(json::trim_ws)
        .filter(|b| !b.is_empty() && *b != b"null");
    let Some(bytes) = bytes else {
        return Ok(tombstone(format, ctx, key));
    };
    // A JsonConverter `{schema, payload}` wrapper: decode the payload alone, never reading (nor checking the
    // UTF-8 of) the schema. Whatever the fast path cannot settle goes through the full parse below.
    if let Some(payload) = json::wrapped_payload(bytes).and_then(|p| std::str::from_utf8(p).ok()) {
        let fast = match format {
            Format::Auto => auto::decode_payload(ctx, payload),
            Format::Debezium => debezium::decode_payload(ctx, payload),
            Format::DebeziumUnwrapped => unwrapped::decode_payload(ctx, payload),
            Format::Maxwell | Format::Canal => None,
        };
        if let Some(decoded) = fast {
            return decoded;
        }
    }
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::Json {
        at: ctx.location(),
        format,
        source: <serde_json::Error as serde::de::Error>::custom(format_args!("not UTF-8: {e}")),
    })?;
    // Every format's value is a JSON object; serde would otherwise accept a struct written as an array.
    if text.trim_start().as_bytes().first() != Some(&b'{') {
        let found = parse::<serde::de::IgnoredAny>(ctx, format, text)
            .map(|_| json::kind_of(text.trim_start()))?;
        return Err(DecodeError::WrongType {
            at: ctx.location(),
            format,
            field: "value",
            expected: "an object",
            found,
        });
    }
    match format {
        Format::Auto => auto::decode(ctx, text),
        Format::Debezium => debezium::decode(ctx, text),
        Format::DebeziumUnwrapped => unwrapped::decode(ctx, text),
        Format::Maxwell => maxwell::decode(ctx, text),
        Format::Canal => canal::decode(ctx, text),
    }
}

/// A null value. Debezium writes one after each delete, and with ExtractNewRecordState's default settings it is the
/// only sign of a delete; its Kafka key holds the primary key, and the table comes from the topic.
fn tombstone<'a>(format: Format, ctx: &MessageContext<'a>, key: Option<&[u8]>) -> Decoded<'a> {
    let format = match format {
        Format::Auto => Format::Debezium,
        other => other,
    };
    let has_key = key.is_some_and(|k| {
        let k = k.trim_ascii();
        !k.is_empty() && k != b"null"
    });
    let table = TableName::from_topic(ctx.topic);
    match format {
        Format::Maxwell | Format::Canal => Decoded::Ignore(Ignored {
            format,
            reason: IgnoreReason::NullValue,
            table: TableName::default(),
        }),
        _ if !has_key => Decoded::Ignore(Ignored {
            format,
            reason: IgnoreReason::TombstoneWithoutKey,
            table,
        }),
        _ => Decoded::Change(ChangeEvent {
            format,
            table,
            op: Op::Delete,
            rows: Rows::One(Row::default()),
            position: Position::default(),
        }),
    }
}

/// Parses `text` as `T`, naming the message and format on failure.
pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(
    ctx: &MessageContext<'_>,
    format: Format,
    text: &'a str,
) -> Result<T, DecodeError> {
    serde_json::from_str(text).map_err(|source| DecodeError::Json {
        at: ctx.location(),
        format,
        source,
    })
}

/// Checks that a row image is a JSON object (or null, which is no image).
pub(crate) fn image<'a>(
    ctx: &MessageContext<'_>,
    format: Format,
    field: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<Option<RawObject<'a>>, DecodeError> {
    match raw {
        None => Ok(None),
        Some(raw) if json::is_null(raw) => Ok(None),
        Some(raw) if json::is_object(raw) => Ok(Some(RawObject(raw.get()))),
        Some(raw) => Err(DecodeError::WrongType {
            at: ctx.location(),
            format,
            field,
            expected: "an object",
            found: json::kind_of(raw.get()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_from_topic() {
        let t = TableName::from_topic("PostgreSQL_server.public.customers");
        assert_eq!(
            (t.schema.as_deref(), t.table.as_deref()),
            (Some("public"), Some("customers"))
        );
        let t = TableName::from_topic("a.b.c.public.jobs");
        assert_eq!(
            (t.schema.as_deref(), t.table.as_deref()),
            (Some("public"), Some("jobs"))
        );
        let t = TableName::from_topic("inventory.products");
        assert_eq!(
            (t.schema.as_deref(), t.table.as_deref()),
            (Some("inventory"), Some("products"))
        );
        let t = TableName::from_topic("jobs");
        assert_eq!(
            (t.schema.as_deref(), t.table.as_deref()),
            (None, Some("jobs"))
        );
        assert_eq!(TableName::from_topic(""), TableName::default());
    }

    #[test]
    fn tombstones() {
        let ctx = MessageContext::new("srv.public.jobs", 3, 17);
        let d = decode(Format::Debezium, &ctx, Some(b"{\"id\":1}"), None).unwrap();
        assert!(matches!(
            d,
            Decoded::Change(ChangeEvent { op: Op::Delete, .. })
        ));
        for value in [&b""[..], b"  ", b"null"] {
            let d = decode(Format::Auto, &ctx, Some(b"{\"id\":1}"), Some(value)).unwrap();
            assert!(matches!(
                d,
                Decoded::Change(ChangeEvent {
                    op: Op::Delete,
                    format: Format::Debezium,
                    ..
                })
            ));
        }
        let d = decode(Format::DebeziumUnwrapped, &ctx, None, None).unwrap();
        assert!(matches!(
            d,
            Decoded::Ignore(Ignored {
                reason: IgnoreReason::TombstoneWithoutKey,
                ..
            })
        ));
        let d = decode(Format::Maxwell, &ctx, Some(b"{}"), None).unwrap();
        assert!(matches!(
            d,
            Decoded::Ignore(Ignored {
                reason: IgnoreReason::NullValue,
                ..
            })
        ));
    }

    #[test]
    fn errors_name_the_message() {
        let ctx = MessageContext::new("srv.public.jobs", 3, 17);
        let err = decode(Format::Debezium, &ctx, None, Some(b"{\"op\":\"c\"")).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Permanent);
        let text = err.to_string();
        assert!(
            text.starts_with("topic `srv.public.jobs` partition 3 offset 17: "),
            "{text}"
        );
        for (value, want) in [
            (&b"[1]"[..], "`value` is an array"),
            (b"7", "`value` is a number"),
            (b"x", "expected value"),
        ] {
            for format in [
                Format::Auto,
                Format::Debezium,
                Format::DebeziumUnwrapped,
                Format::Maxwell,
                Format::Canal,
            ] {
                let err = decode(format, &ctx, None, Some(value))
                    .unwrap_err()
                    .to_string();
                assert!(err.contains(want), "{format}: {err}");
            }
        }
        let err = decode(Format::Debezium, &ctx, None, Some(b"\xff\xfe")).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
