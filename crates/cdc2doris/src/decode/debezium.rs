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
//!
//! A data event is first read by [`decode_fast`], one pass with [`super::reader`]; whatever that does not settle
//! (the other message kinds, escapes in the names or values it reads, a syntax error) is decoded with serde, which
//! also words the errors.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{self, Lenient, Text};
use super::reader::{Bail, Reader, Step};
use super::{
    image, parse, ChangeEvent, DecodeError, Decoded, Format, IgnoreReason, Ignored, MessageContext,
    Op, Position, RawObject, Row, Rows, TableName,
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
    if let Some(decoded) = decode_fast(payload) {
        return Some(Ok(decoded));
    }
    let envelope = serde_json::from_str::<Envelope<'a>>(payload).ok()?;
    if envelope.payload.is_some() && envelope.op.is_none() {
        return None;
    }
    Some(interpret(ctx, envelope, payload))
}

/// Decodes a Debezium envelope, with or without the `{schema, payload}` wrapper.
pub fn decode<'a>(ctx: &MessageContext<'_>, text: &'a str) -> Result<Decoded<'a>, DecodeError> {
    match decode_fast(text) {
        Some(decoded) => Ok(decoded),
        None => decode_with_serde(ctx, text),
    }
}

/// [`decode`] without the fast path; public for the fuzz targets, which check that both read a message alike.
#[doc(hidden)]
pub fn decode_with_serde<'a>(
    ctx: &MessageContext<'_>,
    text: &'a str,
) -> Result<Decoded<'a>, DecodeError> {
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
    let row = Row {
        before: image(ctx, FORMAT, "before", envelope.before)?,
        after: image(ctx, FORMAT, "after", envelope.after)?,
        changed_old: None,
    };
    let numbers = [
        source.lsn.0,
        source.tx_id.0,
        source.ts_ms.0,
        envelope.ts_ms.0,
    ];
    Ok(change(op, source.table_name(), numbers, row))
}

/// A data event from its parts; `numbers` are `source.lsn`, `source.txId`, `source.ts_ms` and the envelope's
/// `ts_ms`.
fn change<'a>(
    op: Op,
    table: TableName<'a>,
    numbers: [Option<u64>; 4],
    row: Row<'a>,
) -> Decoded<'a> {
    let [lsn, xid, source_ts_ms, ts_ms] = numbers;
    Decoded::Change(ChangeEvent {
        format: FORMAT,
        table,
        op,
        rows: Rows::One(row),
        position: Position {
            lsn,
            xid,
            ts_ms: source_ts_ms.filter(|&t| t > 0).or(ts_ms),
        },
    })
}

/// The operation of a data event, for the fast path (`m`, logical messages, take the serde path).
fn data_op(op: &str) -> Step<Op> {
    Ok(match op {
        "c" => Op::Insert,
        "u" => Op::Update,
        "d" => Op::Delete,
        "r" => Op::Read,
        "t" => Op::Truncate,
        _ => return Err(Bail),
    })
}

/// Decodes a data event (`op` c, u, d, r or t, with a `source` object) in one pass, or `None` for anything else —
/// other message kinds, a `{schema, payload}` wrapper, escapes in what it reads, a duplicated member, malformed
/// JSON — which [`decode_with_serde`] then decodes or refuses. When it returns a result, it is the one
/// [`decode_with_serde`] returns (`fuzz/src/lib.rs` checks this on every input).
#[doc(hidden)]
pub fn decode_fast(text: &str) -> Option<Decoded<'_>> {
    decode_fast_inner(text).ok()
}

fn decode_fast_inner(text: &str) -> Step<Decoded<'_>> {
    let mut reader = Reader::new(text);
    let (mut before, mut after, mut op) = (None, None, None);
    let mut source: Option<(TableName<'_>, [Option<u64>; 3])> = None;
    let mut ts_ms = None;
    let mut seen = 0u8;
    reader.object(|r, name| {
        let bit = match name {
            "before" => 1,
            "after" => 2,
            "source" => 4,
            "op" => 8,
            "ts_ms" => 16,
            // Serde's business: wrappers, transaction metadata, schema changes.
            "payload" | "status" | "ddl" | "tableChanges" => return Err(Bail),
            _ => return r.value().map(|_| ()),
        };
        // Serde refuses a duplicated member; let it say so.
        if seen & bit != 0 {
            return Err(Bail);
        }
        seen |= bit;
        match bit {
            1 => before = r.nullable_object()?.map(RawObject),
            2 => after = r.nullable_object()?.map(RawObject),
            4 => source = Some(read_source(r)?),
            8 => op = Some(data_op(r.plain_string()?)?),
            _ => ts_ms = r.lenient_u64()?,
        }
        Ok(())
    })?;
    reader.finish()?;
    let (Some(op), Some((table, [lsn, xid, source_ts_ms]))) = (op, source) else {
        return Err(Bail);
    };
    let row = Row {
        before,
        after,
        changed_old: None,
    };
    Ok(change(op, table, [lsn, xid, source_ts_ms, ts_ms], row))
}

/// `source`, as [`Source`] reads it: the table, and `lsn`, `txId`, `ts_ms`.
fn read_source<'a>(r: &mut Reader<'a>) -> Step<(TableName<'a>, [Option<u64>; 3])> {
    let (mut schema, mut db, mut table) = (None, None, None);
    let mut numbers = [None; 3];
    let mut seen = 0u8;
    r.object(|r, name| {
        let bit = match name {
            "schema" => 1,
            "db" => 2,
            "table" => 4,
            "lsn" => 8,
            "txId" => 16,
            "ts_ms" => 32,
            _ => return r.value().map(|_| ()),
        };
        if seen & bit != 0 {
            return Err(Bail);
        }
        seen |= bit;
        match bit {
            1 => schema = r.nullable_plain_string()?,
            2 => db = r.nullable_plain_string()?,
            4 => table = r.nullable_plain_string()?,
            8 => numbers[0] = r.lenient_u64()?,
            16 => numbers[1] = r.lenient_u64()?,
            _ => numbers[2] = r.lenient_u64()?,
        }
        Ok(())
    })?;
    let non_empty = |s: Option<&'a str>| s.filter(|s| !s.is_empty()).map(Cow::Borrowed);
    let table = TableName {
        schema: non_empty(schema).or(non_empty(db)),
        table: non_empty(table),
    };
    Ok((table, numbers))
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

    #[test]
    fn fast_path_takes_data_events_and_leaves_the_rest() {
        let ctx = MessageContext::new("srv.public.jobs", 0, 5);
        let data = r#" {"before":null,"after":{"id":1},"source":{"schema":"public","table":"jobs","lsn":7},"op":"c"} "#;
        assert!(decode_fast(data).is_some());
        assert_eq!(decode_fast(data), decode_with_serde(&ctx, data).ok());
        for other in [
            r#"{"status":"BEGIN","id":"1"}"#,
            r#"{"ts_ms":1}"#,
            r#"{"op":"m","source":{}}"#,
            r#"{"op":"c","source":{},"op":"u"}"#,
            r#"{"op":"c","source":{"table":"j\u006fbs"}}"#,
            r#"{"op":"c","source":{"lsn":-1}}"#,
            r#"{"op":"c","source":null}"#,
            r#"{"op":"c","source":{},"after":[1]}"#,
            r#"{"op":"c","source":{},"after":{"id":01}}"#,
            r#"{"schema":{},"payload":{"op":"c","source":{}}}"#,
        ] {
            assert_eq!(decode_fast(other), None, "{other}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A JSON value, mostly of the kind `kind` ("object", "op", "text", "number"), sometimes of another.
        fn value(kind: &'static str) -> impl Strategy<Value = String> {
            let right = match kind {
                "object" => prop::sample::select(vec![
                    "null",
                    "{}",
                    r#"{"id":1,"job_id":"7","note":"a\"b","n":[1.5e3,{"x":null}]}"#,
                ])
                .boxed(),
                "op" => {
                    prop::sample::select(vec![r#""c""#, r#""u""#, r#""d""#, r#""r""#, r#""t""#])
                        .boxed()
                }
                "text" => {
                    prop::sample::select(vec![r#""public""#, r#""jobs""#, r#""""#, "null"]).boxed()
                }
                _ => {
                    prop::sample::select(vec!["0", "7", "18446744073709551615", r#""12""#, "null"])
                        .boxed()
                }
            };
            let wrong = prop::sample::select(vec![
                "null",
                "{}",
                "[1,{}]",
                r#""m""#,
                r#""x""#,
                r#""j\u006fbs""#,
                "18446744073709551616",
                "-1",
                "-0",
                "1.5",
                "1e400",
                "2e3",
                "true",
                r#""+5""#,
            ]);
            prop_oneof![8 => right.prop_map(str::to_owned), 1 => wrong.prop_map(str::to_owned)]
        }

        fn member(name: &'static str, kind: &'static str) -> impl Strategy<Value = String> {
            (value(kind), prop::sample::select(vec!["", " ", "\n\t"]))
                .prop_map(move |(value, ws)| format!("{ws}\"{name}\"{ws}:{ws}{value}"))
        }

        /// Members in a random order, each present or not, with now and then a duplicate or a stranger.
        fn object(members: Vec<BoxedStrategy<String>>) -> impl Strategy<Value = String> {
            let strangers = prop::sample::select(vec![
                r#""status":"BEGIN""#,
                r#""payload":{}"#,
                r#""x":[{"y":"}"}]"#,
                r#""op":"u""#,
                r#""lsn":1"#,
            ]);
            let parts: Vec<_> = members
                .into_iter()
                .map(|m| prop::option::weighted(0.85, m))
                .collect();
            (
                parts,
                prop::option::weighted(0.2, strangers),
                any::<prop::sample::Index>(),
                any::<u64>(),
            )
                .prop_map(|(parts, stranger, at, seed)| {
                    let mut members: Vec<String> = parts.into_iter().flatten().collect();
                    if let Some(stranger) = stranger {
                        members.insert(at.index(members.len() + 1), stranger.to_owned());
                    }
                    // A cheap shuffle, so that no member order is favoured.
                    let n = members.len();
                    for i in 0..n {
                        members.swap(i, (seed as usize).wrapping_mul(i + 7) % n);
                    }
                    format!("{{{}}}", members.join(","))
                })
        }

        fn envelope() -> impl Strategy<Value = String> {
            let source = object(vec![
                member("schema", "text").boxed(),
                member("db", "text").boxed(),
                member("table", "text").boxed(),
                member("lsn", "number").boxed(),
                member("txId", "number").boxed(),
                member("ts_ms", "number").boxed(),
                member("version", "text").boxed(),
            ])
            .prop_map(|s| format!("\"source\":{s}"));
            object(vec![
                member("before", "object").boxed(),
                member("after", "object").boxed(),
                member("op", "op").boxed(),
                member("ts_ms", "number").boxed(),
                member("transaction", "object").boxed(),
                source.boxed(),
            ])
        }

        /// Whatever the fast path decodes, serde decodes the same way — on envelopes of every shape, and on them
        /// cut short or with a byte changed. Most generated envelopes must take the fast path, or this proves little.
        #[test]
        fn fast_path_agrees_with_serde() {
            let ctx = MessageContext::new("srv.public.jobs", 0, 5);
            let cases = proptest::test_runner::Config::default().cases.max(1000);
            let mut runner =
                proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
                    cases,
                    ..Default::default()
                });
            let taken = std::cell::Cell::new(0u32);
            let mutation = (
                any::<prop::sample::Index>(),
                any::<prop::sample::Index>(),
                prop::sample::select(b"{}[]\",:\\ 0an".to_vec()),
            );
            runner
                .run(&(envelope(), mutation), |(text, (cut, flip, byte))| {
                    let mut variants = vec![text.clone()];
                    variants.push(text[..cut.index(text.len() + 1)].to_owned());
                    let mut changed = text.clone().into_bytes();
                    let i = flip.index(changed.len());
                    changed[i] = byte;
                    variants.extend(String::from_utf8(changed));
                    for (n, text) in variants.iter().enumerate() {
                        if let Some(fast) = decode_fast(text) {
                            if n == 0 {
                                taken.set(taken.get() + 1);
                            }
                            let slow = decode_with_serde(&ctx, text).map_err(|e| e.to_string());
                            prop_assert_eq!(Ok(fast), slow, "{}", text);
                        }
                    }
                    Ok(())
                })
                .unwrap();
            assert!(
                taken.get() * 5 >= cases,
                "only {} of {cases} envelopes took the fast path",
                taken.get()
            );
        }
    }
}
