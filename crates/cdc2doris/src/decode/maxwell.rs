//! Maxwell's daemon JSON.
//!
//! - Members: `database`, `table`, `type`, `ts` (seconds), `xid`, `data` (the complete row), `old` (the previous
//!   values of the changed columns only), and optionally `primary_key_columns`, `position`, `commit`, `xoffset`.
//! - Operation: `insert`, `update`, `delete`, and `bootstrap-insert` (a snapshot read). `bootstrap-start` /
//!   `bootstrap-complete` carry `data: {}` and DDL (`table-*`, `database-*`, with `--output_ddl`) carries `def`
//!   instead of rows: both are ignored.
//! - A delete's `data` is the deleted row (the `before` image). An update's old row is `data` overlaid with `old`, so a
//!   key column in `old` means the key changed.
//! - The topic is usually the fixed `maxwell`, so the table only ever comes from `database` + `table`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{Lenient, Text};
use super::{
    image, parse, ChangeEvent, DecodeError, Decoded, Format, IgnoreReason, Ignored, MessageContext,
    Op, Position, Row, Rows, TableName,
};

const FORMAT: Format = Format::Maxwell;

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    database: Option<Text<'a>>,
    #[serde(borrow, default)]
    table: Option<Text<'a>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(default)]
    ts: Lenient,
    #[serde(default)]
    xid: Lenient,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old: Option<&'a RawValue>,
}

/// Decodes a Maxwell message.
pub fn decode<'a>(ctx: &MessageContext<'_>, text: &'a str) -> Result<Decoded<'a>, DecodeError> {
    let message: Message<'a> = parse(ctx, FORMAT, text)?;
    let table = TableName {
        schema: message.database.map(|t| t.0),
        table: message.table.map(|t| t.0),
    };
    let Some(kind) = message.kind else {
        return Err(DecodeError::MissingField {
            at: ctx.location(),
            format: FORMAT,
            field: "type",
        });
    };
    let ignore = |reason, table| {
        Ok(Decoded::Ignore(Ignored {
            format: FORMAT,
            reason,
            table,
        }))
    };
    let op = match kind.0.as_ref() {
        "insert" => Op::Insert,
        "update" => Op::Update,
        "delete" => Op::Delete,
        "bootstrap-insert" => Op::Read,
        "bootstrap-start" | "bootstrap-complete" => {
            return ignore(IgnoreReason::BootstrapMarker, table)
        }
        "table-create" | "table-alter" | "table-drop" | "database-create" | "database-alter"
        | "database-drop" => return ignore(IgnoreReason::SchemaChange, table),
        other => {
            return Err(DecodeError::UnknownOp {
                at: ctx.location(),
                format: FORMAT,
                field: "type",
                op: other.to_owned(),
            })
        }
    };
    let Some(data) = image(ctx, FORMAT, "data", message.data)? else {
        return Err(DecodeError::MissingField {
            at: ctx.location(),
            format: FORMAT,
            field: "data",
        });
    };
    let row = match op {
        Op::Delete => Row {
            before: Some(data),
            ..Row::default()
        },
        Op::Update => Row {
            after: Some(data),
            changed_old: image(ctx, FORMAT, "old", message.old)?,
            ..Row::default()
        },
        _ => Row {
            after: Some(data),
            ..Row::default()
        },
    };
    let position = Position {
        lsn: None,
        xid: message.xid.0,
        ts_ms: message.ts.0.and_then(|s| s.checked_mul(1000)),
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

    fn dec(text: &str) -> Result<Decoded<'_>, DecodeError> {
        decode(&MessageContext::new("maxwell", 1, 2), text)
    }

    #[test]
    fn update_keeps_data_and_old() {
        let Decoded::Change(c) =
            dec(r#"{"database":"d","table":"t","type":"update","ts":5,"xid":9,"data":{"id":2},"old":{"id":1}}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.op, Op::Update);
        assert_eq!(
            (c.table.schema.as_deref(), c.table.table.as_deref()),
            (Some("d"), Some("t"))
        );
        assert_eq!(
            c.position,
            Position {
                lsn: None,
                xid: Some(9),
                ts_ms: Some(5000)
            }
        );
        let row = c.rows.as_slice()[0];
        assert_eq!(
            (row.after.unwrap().get(), row.changed_old.unwrap().get()),
            (r#"{"id":2}"#, r#"{"id":1}"#)
        );
    }

    #[test]
    fn delete_data_is_the_before_image() {
        let Decoded::Change(c) = dec(r#"{"type":"delete","data":{"id":2}}"#).unwrap() else {
            panic!()
        };
        assert_eq!(c.op, Op::Delete);
        assert!(c.rows.as_slice()[0].before.is_some() && c.rows.as_slice()[0].after.is_none());
    }

    #[test]
    fn markers_and_ddl_are_ignored_and_bad_messages_fail() {
        for (text, reason) in [
            (
                r#"{"database":"d","table":"t","type":"bootstrap-start","data":{}}"#,
                IgnoreReason::BootstrapMarker,
            ),
            (
                r#"{"database":"d","type":"database-create","def":{}}"#,
                IgnoreReason::SchemaChange,
            ),
        ] {
            assert!(
                matches!(dec(text).unwrap(), Decoded::Ignore(i) if i.reason == reason),
                "{text}"
            );
        }
        for (text, want) in [
            (
                r#"{"type":"frob","data":{}}"#,
                "unknown operation type `frob`",
            ),
            (r#"{"data":{}}"#, "no `type`"),
            (r#"{"type":"insert"}"#, "no `data`"),
            (r#"{"type":"insert","data":[1]}"#, "`data` is an array"),
            (
                r#"{"type":"update","data":{},"old":"x"}"#,
                "`old` is a string",
            ),
            (r#"{"type":7}"#, "invalid type"),
        ] {
            let err = dec(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
