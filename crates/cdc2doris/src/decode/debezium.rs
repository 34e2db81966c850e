//! The Debezium envelope, as written by Kafka Connect's JsonConverter.
//!
//! - With `schemas.enable=true` the value is `{"schema": …, "payload": <envelope>}`; without, it is the envelope. The
//!   `schema` block is not read at all ([`super::decode`] finds the payload from the end): schema *names* can be
//!   stale (the table comes from `source`), and the schema is most of such a message's bytes.
//! - A data event has both `op` and `source`: `c` insert, `u` update, `d` delete, `r` snapshot read, `t` truncate,
//!   `m` a PostgreSQL logical-decoding message (ignored).
//! - The table is `source.schema` + `source.table`; the MySQL connector has no `source.schema`, so its database
//!   (`source.db`) stands in.
//! - Messages without rows: transaction metadata (`status` BEGIN/END on `<prefix>.transaction`), schema changes
//!   (`ddl`/`tableChanges`, MySQL/SQL Server/Oracle), heartbeats (`{"ts_ms": …}` on `__debezium-heartbeat.<prefix>`).
//! - Position: `source.lsn`, `source.txId`, `source.ts_ms` (the envelope's `ts_ms`, when the connector processed the
//!   change, is the fallback).

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{self, Lenient, Text};
use super::{
    image, parse, ChangeEvent, DecodeError, Decoded, Format, IgnoreReason, Ignored, MessageContext,
    Op, Position, Row, Rows, TableName,
};

const FORMAT: Format = Format::Debezium;

/// The members of an envelope (or of its `{schema, payload}` wrapper) that decoding looks at; others are skipped.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    before: Option<&'a RawValue>,
    #[serde(borrow, default)]
    after: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<Source<'a>>,
    #[serde(borrow, default)]
    op: Option<Text<'a>>,
    #[serde(default)]
    ts_ms: Lenient,
    /// The envelope inside a `{schema, payload}` wrapper; `null` is kept to tell a null payload from none.
    #[serde(borrow, default, deserialize_with = "json::present")]
    payload: Option<&'a RawValue>,
    // `schema` is not named: serde skips unknown members without building them.
    /// Transaction metadata: `status` BEGIN/END.
    #[serde(default)]
    status: Option<IgnoredAny>,
    /// Schema-change events.
    #[serde(default)]
    ddl: Option<IgnoredAny>,
    #[serde(default, rename = "tableChanges")]
    table_changes: Option<IgnoredAny>,
}

/// `source`: which table, and where in the log.
#[derive(Deserialize)]
struct Source<'a> {
    #[serde(borrow, default)]
    schema: Option<Text<'a>>,
    #[serde(borrow, default)]
    db: Option<Text<'a>>,
    #[serde(borrow, default)]
    table: Option<Text<'a>>,
    #[serde(default)]
    lsn: Lenient,
    #[serde(default, rename = "txId")]
    tx_id: Lenient,
    #[serde(default)]
    ts_ms: Lenient,
}

impl<'a> Source<'a> {
    fn table_name(self) -> TableName<'a> {
        let non_empty = |t: Option<Text<'a>>| t.map(|t| t.0).filter(|s| !s.is_empty());
        TableName {
            schema: non_empty(self.schema).or(non_empty(self.db)),
            table: non_empty(self.table),
        }
    }
}

/// Decodes the payload of a `{schema, payload}` wrapper found by [`json::wrapped_payload`]; `None` when it is not
/// an envelope after all, for the caller to decode the whole message with [`decode`].
pub fn decode_payload<'a>(
    ctx: &MessageContext<'_>,
    payload: &'a str,
) -> Option<Result<Decoded<'a>, DecodeError>> {
    let envelope = serde_json::from_str::<Envelope<'a>>(payload).ok()?;
    if envelope.payload.is_some() && envelope.op.is_none() {
        return None;
    }
    Some(interpret(ctx, envelope, payload))
}

/// Decodes a Debezium envelope, with or without the `{schema, payload}` wrapper.
pub fn decode<'a>(ctx: &MessageContext<'_>, text: &'a str) -> Result<Decoded<'a>, DecodeError> {
    let envelope: Envelope<'a> = parse(ctx, FORMAT, text)?;
    let (envelope, text) = match envelope.payload {
        Some(payload) if envelope.op.is_none() && envelope.source.is_none() => {
            if json::is_null(payload) {
                return Err(DecodeError::MissingField {
                    at: ctx.location(),
                    format: FORMAT,
                    field: "payload",
                });
            }
            if !json::is_object(payload) {
                return Err(DecodeError::WrongType {
                    at: ctx.location(),
                    format: FORMAT,
                    field: "payload",
                    expected: "an object",
                    found: json::kind_of(payload.get()),
                });
            }
            let inner: Envelope<'a> = parse(ctx, FORMAT, payload.get())?;
            if inner.payload.is_some() && inner.op.is_none() {
                return Err(DecodeError::UnknownEnvelope {
                    at: ctx.location(),
                    format: FORMAT,
                    detail: "a `payload` inside `payload`",
                });
            }
            (inner, payload.get())
        }
        _ => (envelope, text),
    };
    interpret(ctx, envelope, text)
}

/// Classifies an envelope; `text` is its JSON, for the rare look at members no field names.
fn interpret<'a>(
    ctx: &MessageContext<'_>,
    envelope: Envelope<'a>,
    text: &str,
) -> Result<Decoded<'a>, DecodeError> {
    let ignore = |reason, table| {
        Ok(Decoded::Ignore(Ignored {
            format: FORMAT,
            reason,
            table,
        }))
    };
    let Some(op) = envelope.op else {
        if envelope.status.is_some() {
            return ignore(IgnoreReason::TransactionMetadata, TableName::default());
        }
        if envelope.ddl.is_some() || envelope.table_changes.is_some() {
            return ignore(
                IgnoreReason::SchemaChange,
                envelope.source.map(Source::table_name).unwrap_or_default(),
            );
        }
        let only_ts_ms = envelope.ts_ms.0.is_some() && json::count_members(text) == Ok(1);
        if only_ts_ms {
            return ignore(IgnoreReason::Heartbeat, TableName::default());
        }
        return Err(DecodeError::UnknownEnvelope {
            at: ctx.location(),
            format: FORMAT,
            detail: "no `op` (a data event), `status` (transaction metadata), `ddl` (schema change) or lone `ts_ms` \
                     (heartbeat)",
        });
    };
    let op = match op.0.as_ref() {
        "c" => Op::Insert,
        "u" => Op::Update,
        "d" => Op::Delete,
        "r" => Op::Read,
        "t" => Op::Truncate,
        "m" => return ignore(IgnoreReason::LogicalMessage, TableName::default()),
        other => {
            return Err(DecodeError::UnknownOp {
                at: ctx.location(),
                format: FORMAT,
                field: "op",
                op: other.to_owned(),
            })
        }
    };
    let Some(source) = envelope.source else {
        return Err(DecodeError::MissingField {
            at: ctx.location(),
            format: FORMAT,
            field: "source",
        });
    };
    let position = Position {
        lsn: source.lsn.0,
        xid: source.tx_id.0,
        ts_ms: source.ts_ms.0.filter(|&t| t > 0).or(envelope.ts_ms.0),
    };
    let row = Row {
        before: image(ctx, FORMAT, "before", envelope.before)?,
        after: image(ctx, FORMAT, "after", envelope.after)?,
        changed_old: None,
    };
    Ok(Decoded::Change(ChangeEvent {
        format: FORMAT,
        table: source.table_name(),
        op,
        rows: Rows::One(row),
        position,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Result<Decoded<'_>, DecodeError> {
        decode(&MessageContext::new("srv.public.jobs", 0, 5), text)
    }

    fn change(text: &str) -> ChangeEvent<'_> {
        match dec(text).unwrap() {
            Decoded::Change(c) => c,
            other => panic!("not a change: {other:?}"),
        }
    }

    #[test]
    fn schemaless_update_with_position() {
        let c = change(
            r#"{"before":{"id":1,"job_id":7},"after":{"id":1,"job_id":9},"op":"u","ts_ms":99,
               "source":{"schema":"public","db":"pg","table":"job_activity","lsn":18446744073709551615,"txId":5,"ts_ms":42}}"#,
        );
        assert_eq!(c.op, Op::Update);
        assert_eq!(c.table.schema.as_deref(), Some("public"));
        assert_eq!(c.table.table.as_deref(), Some("job_activity"));
        assert_eq!(
            c.position,
            Position {
                lsn: Some(u64::MAX),
                xid: Some(5),
                ts_ms: Some(42)
            }
        );
        let row = c.rows.as_slice()[0];
        assert_eq!(row.before.unwrap().get(), r#"{"id":1,"job_id":7}"#);
        assert_eq!(row.after.unwrap().get(), r#"{"id":1,"job_id":9}"#);
    }

    #[test]
    fn wrapped_envelope_skips_schema_and_mysql_uses_db() {
        let c = change(
            r#"{"schema":{"type":"struct","fields":[{"field":"op"}]},
                "payload":{"op":"d","before":{"id":2},"after":null,"source":{"db":"inventory","table":"t","lsn":"0000:01"}}}"#,
        );
        assert_eq!(c.op, Op::Delete);
        assert_eq!(c.table.schema.as_deref(), Some("inventory"));
        assert_eq!(c.position.lsn, None);
        assert!(c.rows.as_slice()[0].after.is_none());
    }

    #[test]
    fn rows_that_are_not_changes_are_ignored() {
        let reason = |t| match dec(t).unwrap() {
            Decoded::Ignore(i) => i.reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(r#"{"status":"BEGIN","id":"1:2","ts_ms":1}"#),
            IgnoreReason::TransactionMetadata
        );
        assert_eq!(
            reason(r#"{"ts_ms":1565787098802}"#),
            IgnoreReason::Heartbeat
        );
        assert_eq!(
            reason(
                r#"{"schema":{"name":"io.debezium.connector.common.Heartbeat"},"payload":{"ts_ms":1}}"#
            ),
            IgnoreReason::Heartbeat
        );
        assert_eq!(
            reason(r#"{"source":{"db":"d"},"ddl":"ALTER TABLE t"}"#),
            IgnoreReason::SchemaChange
        );
        assert_eq!(
            reason(r#"{"op":"m","source":{"schema":""},"message":{}}"#),
            IgnoreReason::LogicalMessage
        );
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        for (text, want) in [
            (r#"{"op":"x","source":{}}"#, "unknown operation op `x`"),
            (r#"{"op":"c","after":{}}"#, "no `source`"),
            (
                r#"{"op":"c","after":[1],"source":{}}"#,
                "`after` is an array",
            ),
            (r#"{"id":1}"#, "not a Debezium message"),
            (r#"{"ts_ms":1,"x":2}"#, "not a Debezium message"),
            (r#"{"schema":{},"payload":null}"#, "no `payload`"),
            (
                r#"{"schema":{},"payload":{"payload":{}}}"#,
                "`payload` inside",
            ),
            (r#"{"op":1}"#, "invalid type"),
            (r#"{"op":"c","source":{"table":5}}"#, "invalid type"),
        ] {
            let err = dec(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
