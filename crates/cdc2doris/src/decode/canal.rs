//! Canal's flat-message JSON (as Canal server writes it to Kafka, and as Flink's `canal-json` format reads it).
//!
//! - Members: `database`, `table`, `type`, `isDdl`, `pkNames`, `data[]`, `old[]`, `es` (binlog time, ms), `ts`, and
//!   `id`, which is a batch id, not a row id.
//! - One message carries several rows: `INSERT` and `UPDATE` upsert every `data[i]`, `DELETE` deletes every `data[i]`,
//!   `INIT` (Flink's snapshot rows) reads them. `old[i]` lines up with `data[i]` and holds the previous values of the
//!   changed columns (the Flink CDC pipeline sink puts the whole old row there).
//! - `TRUNCATE` is a table wipe. Other DDL (`isDdl: true`, or a DDL `type` such as `CREATE`, `ALTER`, `ERASE`) has
//!   `data: null` and is ignored.
//! - Canal server writes every column value as a string (`"id":"101"`); the Flink CDC pipeline sink writes typed JSON.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{Lenient, Text};
use super::{
    image, parse, ChangeEvent, DecodeError, Decoded, Format, IgnoreReason, Ignored, MessageContext,
    Op, Position, Row, Rows, TableName,
};

const FORMAT: Format = Format::Canal;

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    database: Option<Text<'a>>,
    #[serde(borrow, default)]
    table: Option<Text<'a>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(rename = "isDdl", default)]
    is_ddl: Option<bool>,
    #[serde(borrow, default)]
    data: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    old: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    es: Lenient,
}

/// Decodes a Canal flat message.
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
    let position = Position {
        lsn: None,
        xid: None,
        ts_ms: message.es.0,
    };
    let ignore_ddl = || {
        Ok(Decoded::Ignore(Ignored {
            format: FORMAT,
            reason: IgnoreReason::SchemaChange,
            table: table.clone(),
        }))
    };
    let op = match kind.0.as_ref() {
        "TRUNCATE" => Op::Truncate,
        _ if message.is_ddl == Some(true) => return ignore_ddl(),
        "INSERT" => Op::Insert,
        "UPDATE" => Op::Update,
        "DELETE" => Op::Delete,
        "INIT" => Op::Read,
        "CREATE" | "ALTER" | "ERASE" | "RENAME" | "CINDEX" | "DINDEX" | "QUERY" => {
            return ignore_ddl()
        }
        other => {
            return Err(DecodeError::UnknownOp {
                at: ctx.location(),
                format: FORMAT,
                field: "type",
                op: other.to_owned(),
            })
        }
    };
    if op == Op::Truncate {
        let rows = Rows::One(Row::default());
        return Ok(Decoded::Change(ChangeEvent {
            format: FORMAT,
            table,
            op,
            rows,
            position,
        }));
    }
    let Some(data) = message.data else {
        return Err(DecodeError::MissingField {
            at: ctx.location(),
            format: FORMAT,
            field: "data",
        });
    };
    let old = message.old.unwrap_or_default();
    let mut rows = Vec::with_capacity(data.len());
    for (i, raw) in data.into_iter().enumerate() {
        let Some(row) = image(ctx, FORMAT, "data[]", Some(raw))? else {
            return Err(DecodeError::MissingField {
                at: ctx.location(),
                format: FORMAT,
                field: "data[]",
            });
        };
        rows.push(match op {
            Op::Delete => Row {
                before: Some(row),
                ..Row::default()
            },
            Op::Update => Row {
                after: Some(row),
                changed_old: image(ctx, FORMAT, "old[]", old.get(i).copied())?,
                ..Row::default()
            },
            _ => Row {
                after: Some(row),
                ..Row::default()
            },
        });
    }
    Ok(Decoded::Change(ChangeEvent {
        format: FORMAT,
        table,
        op,
        rows: Rows::Many(rows),
        position,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Result<Decoded<'_>, DecodeError> {
        decode(&MessageContext::new("inventory.products", 0, 3), text)
    }

    #[test]
    fn update_aligns_old_rows_with_data_rows() {
        let Decoded::Change(c) = dec(
            r#"{"database":"d","table":"t","type":"UPDATE","isDdl":false,"es":7,
                "data":[{"id":"1"},{"id":"2"},{"id":"3"}],"old":[{"id":"0"},null]}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.op, Op::Update);
        assert_eq!(c.position.ts_ms, Some(7));
        let rows = c.rows.as_slice();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].changed_old.unwrap().get(), r#"{"id":"0"}"#);
        assert!(rows[1].changed_old.is_none() && rows[2].changed_old.is_none());
    }

    #[test]
    fn ddl_and_truncate() {
        let d = dec(r#"{"database":"d","table":"t","type":"TRUNCATE","isDdl":true,"data":null}"#)
            .unwrap();
        assert!(matches!(
            d,
            Decoded::Change(ChangeEvent {
                op: Op::Truncate,
                ..
            })
        ));
        for text in [
            r#"{"type":"CREATE","isDdl":true,"data":null}"#,
            r#"{"type":"WHATEVER","isDdl":true}"#,
            r#"{"type":"ALTER"}"#,
        ] {
            assert!(
                matches!(
                    dec(text).unwrap(),
                    Decoded::Ignore(Ignored {
                        reason: IgnoreReason::SchemaChange,
                        ..
                    })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_messages() {
        for (text, want) in [
            (r#"{"type":"INSERT"}"#, "no `data`"),
            (r#"{"type":"INSERT","data":[1]}"#, "`data[]` is a number"),
            (r#"{"type":"INSERT","data":[null]}"#, "no `data[]`"),
            (
                r#"{"type":"UPDATE","data":[{}],"old":[[]]}"#,
                "`old[]` is an array",
            ),
            (r#"{"type":"INSERT","data":{}}"#, "invalid type"),
            (
                r#"{"type":"UPSERT","data":[]}"#,
                "unknown operation type `UPSERT`",
            ),
            (r#"{"data":[]}"#, "no `type`"),
        ] {
            let err = dec(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
