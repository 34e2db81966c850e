//! Debezium records after the ExtractNewRecordState transform ("unwrapped").
//!
//! - The value is the row itself, optionally inside the JsonConverter's `{"schema": …, "payload": <row>}`. There is
//!   no `op` and no `source`; the transform's `add.fields` appends metadata columns with the prefix `__`: `__op`,
//!   `__table`, `__schema`, `__lsn`, `__source_ts_ms`, …
//! - Operation: `"__deleted": "true"` (a string; `delete.tombstone.handling.mode=rewrite`) is a delete of the row it
//!   carries (the `before` image). Otherwise `__op` says `c`/`u`/`r`/`d`/`t`, and a record with neither is an upsert.
//!   With the default mode (`tombstone`) deletes are dropped and only the tombstone (null value) remains: that is
//!   handled before any format in [`super::decode`].
//! - The table comes from the topic `<prefix>.<schema>.<table>` unless `__schema`/`__table` are present.
//! - A record is a wrapper when its only members are `schema` and `payload`: a table whose only columns are `schema`
//!   and `payload` would be misread, a risk taken for not needing the converter's settings.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{self, Lenient, Text};
use super::{
    parse, ChangeEvent, DecodeError, Decoded, Format, IgnoreReason, Ignored, MessageContext, Op,
    Position, RawObject, Row, Rows, TableName,
};

const FORMAT: Format = Format::DebeziumUnwrapped;

/// The metadata columns of a record (and the wrapper's members); the row's own columns are skipped.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(rename = "__op", borrow, default)]
    op: Option<Text<'a>>,
    #[serde(rename = "__deleted", borrow, default)]
    deleted: Option<&'a RawValue>,
    #[serde(rename = "__schema", borrow, default)]
    schema_name: Option<Text<'a>>,
    #[serde(rename = "__table", borrow, default)]
    table: Option<Text<'a>>,
    #[serde(rename = "__lsn", default)]
    lsn: Lenient,
    #[serde(rename = "__txId", default)]
    tx_id: Lenient,
    #[serde(rename = "__source_ts_ms", default)]
    source_ts_ms: Lenient,
    #[serde(borrow, default, deserialize_with = "json::present")]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "json::present")]
    schema: Option<&'a RawValue>,
}

/// Decodes an unwrapped record, with or without the `{schema, payload}` wrapper.
pub fn decode<'a>(ctx: &MessageContext<'a>, text: &'a str) -> Result<Decoded<'a>, DecodeError> {
    let record: Record<'a> = parse(ctx, FORMAT, text)?;
    let (record, row) = match (record.payload, record.schema) {
        (Some(payload), Some(_)) if json::count_members(text) == Ok(2) => {
            if !json::is_object(payload) {
                return Err(DecodeError::WrongType {
                    at: ctx.location(),
                    format: FORMAT,
                    field: "payload",
                    expected: "an object",
                    found: json::kind_of(payload.get()),
                });
            }
            (parse(ctx, FORMAT, payload.get())?, payload.get())
        }
        // The record is the row: take it whole.
        _ => (record, text),
    };
    let Some(row) = RawObject::of_checked(row) else {
        return Err(DecodeError::WrongType {
            at: ctx.location(),
            format: FORMAT,
            field: "value",
            expected: "an object",
            found: json::kind_of(row.trim_start()),
        });
    };
    interpret(ctx, record, row)
}

/// Decodes the payload of a `{schema, payload}` wrapper found by [`json::wrapped_payload`]; `None` when it is not a
/// record after all, for the caller to decode the whole message with [`decode`].
pub fn decode_payload<'a>(
    ctx: &MessageContext<'a>,
    payload: &'a str,
) -> Option<Result<Decoded<'a>, DecodeError>> {
    let record = serde_json::from_str::<Record<'a>>(payload).ok()?;
    let row = RawObject::of_checked(payload)?;
    Some(interpret(ctx, record, row))
}

/// The operation, table and row of a record.
fn interpret<'a>(
    ctx: &MessageContext<'a>,
    record: Record<'a>,
    row: RawObject<'a>,
) -> Result<Decoded<'a>, DecodeError> {
    let deleted = match record.deleted.map(RawValue::get) {
        None | Some("null" | "\"false\"" | "false") => false,
        Some("\"true\"" | "true") => true,
        Some(other) => {
            return Err(DecodeError::WrongType {
                at: ctx.location(),
                format: FORMAT,
                field: "__deleted",
                expected: "\"true\" or \"false\"",
                found: json::kind_of(other),
            })
        }
    };
    let from_topic = TableName::from_topic(ctx.topic);
    let table = TableName {
        schema: record.schema_name.map(|t| t.0).or(from_topic.schema),
        table: record.table.map(|t| t.0).or(from_topic.table),
    };
    let op = match record.op.as_ref().map(|t| t.0.as_ref()) {
        _ if deleted => Op::Delete,
        None => Op::Upsert,
        Some("c") => Op::Insert,
        Some("u") => Op::Update,
        Some("r") => Op::Read,
        Some("d") => Op::Delete,
        Some("t") => Op::Truncate,
        Some("m") => {
            return Ok(Decoded::Ignore(Ignored {
                format: FORMAT,
                reason: IgnoreReason::LogicalMessage,
                table,
            }));
        }
        Some(other) => {
            return Err(DecodeError::UnknownOp {
                at: ctx.location(),
                format: FORMAT,
                field: "__op",
                op: other.to_owned(),
            })
        }
    };
    let row = match op {
        Op::Delete => Row {
            before: Some(row),
            ..Row::default()
        },
        Op::Truncate => Row::default(),
        _ => Row {
            after: Some(row),
            ..Row::default()
        },
    };
    let position = Position {
        lsn: record.lsn.0,
        xid: record.tx_id.0,
        ts_ms: record.source_ts_ms.0,
    };
    Ok(Decoded::Change(ChangeEvent {
        format: FORMAT,
        table,
        op,
        rows: Rows::One(row),
        position,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change<'a>(topic: &'a str, text: &'a str) -> ChangeEvent<'a> {
        match decode(&MessageContext::detached(topic), text).unwrap() {
            Decoded::Change(c) => c,
            other => panic!("not a change: {other:?}"),
        }
    }

    #[test]
    fn plain_record_is_an_upsert_of_the_whole_row() {
        let c = change("srv.crm.contacts", r#" {"id":1,"schema":"x","type":"t"} "#);
        assert_eq!(c.op, Op::Upsert);
        assert_eq!(
            (c.table.schema.as_deref(), c.table.table.as_deref()),
            (Some("crm"), Some("contacts"))
        );
        assert_eq!(
            c.rows.as_slice()[0].after.unwrap().get(),
            r#"{"id":1,"schema":"x","type":"t"}"#
        );
    }

    #[test]
    fn metadata_columns_decide_op_table_and_position() {
        let c = change(
            "srv.a.b",
            r#"{"id":1,"__op":"u","__table":"t","__lsn":7,"__source_ts_ms":9,"__deleted":"false"}"#,
        );
        assert_eq!(c.op, Op::Update);
        assert_eq!(
            (c.table.schema.as_deref(), c.table.table.as_deref()),
            (Some("a"), Some("t"))
        );
        assert_eq!(
            c.position,
            Position {
                lsn: Some(7),
                xid: None,
                ts_ms: Some(9)
            }
        );
        let c = change("srv.a.b", r#"{"id":1,"__op":"u","__deleted":"true"}"#);
        assert_eq!(c.op, Op::Delete);
        assert!(c.rows.as_slice()[0].before.is_some());
        let c = change("srv.a.b", r#"{"id":1,"__deleted":true}"#);
        assert_eq!(c.op, Op::Delete);
    }

    #[test]
    fn wrapped_record() {
        let c = change(
            "srv.a.b",
            r#"{"schema":{"type":"struct"},"payload":{"id":"x","__schema":"s","__op":"r"}}"#,
        );
        assert_eq!(c.op, Op::Read);
        assert_eq!(c.table.schema.as_deref(), Some("s"));
        assert_eq!(
            c.rows.as_slice()[0].after.unwrap().get(),
            r#"{"id":"x","__schema":"s","__op":"r"}"#
        );
    }

    #[test]
    fn bad_records() {
        let ctx = MessageContext::detached("t");
        for (text, want) in [
            (r#"{"id":1,"__op":"x"}"#, "unknown operation __op `x`"),
            (r#"{"id":1,"__deleted":1}"#, "`__deleted` is a number"),
            (r#"{"schema":{},"payload":[1]}"#, "`payload` is an array"),
            (r#"{"id":1"#, "EOF"),
        ] {
            let err = decode(&ctx, text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
