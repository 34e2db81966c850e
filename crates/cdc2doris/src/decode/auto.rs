//! Format detection from a message's top-level members, for `--format auto`.
//!
//! The members that tell the formats apart, in the order they are tried:
//! - `{schema, payload}`: a JsonConverter wrapper; the payload decides between the Debezium envelope and an unwrapped
//!   record.
//! - `op` + `source`, `status` (transaction metadata), `ddl`/`tableChanges` (schema change), or `ts_ms` alone
//!   (heartbeat): the Debezium envelope.
//! - `isDdl`, `pkNames`, or an array `data`: Canal.
//! - `type` + `database`: Maxwell.
//! - Any other object: an unwrapped record (a row is an arbitrary object).
//!
//! A Debezium data event, the common case, is recognised and decoded in one pass ([`debezium::decode_fast`]); any
//! other message is read once more than decoding with a declared format does.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{self, Text};
use super::{
    canal, debezium, maxwell, parse, unwrapped, DecodeError, Decoded, Format, MessageContext,
};

/// Which distinguishing members an object has.
#[derive(Default)]
struct Probe<'a> {
    members: usize,
    op: bool,
    source: bool,
    status: bool,
    ddl: bool,
    ts_ms: bool,
    schema: bool,
    payload: Option<&'a RawValue>,
    is_ddl: bool,
    pk_names: bool,
    data_is_array: bool,
    kind: bool,
    database: bool,
}

impl<'de> Deserialize<'de> for Probe<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProbeVisitor;
        impl<'de> Visitor<'de> for ProbeVisitor {
            type Value = Probe<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe<'de>, A::Error> {
                let mut probe = Probe::default();
                while let Some(name) = map.next_key::<Text<'de>>()? {
                    probe.members += 1;
                    let flag = match name.0.as_ref() {
                        "payload" => {
                            probe.payload = Some(map.next_value::<&'de RawValue>()?);
                            continue;
                        }
                        "data" => {
                            probe.data_is_array =
                                json::first_byte(map.next_value::<&'de RawValue>()?) == b'[';
                            continue;
                        }
                        "op" => &mut probe.op,
                        "source" => &mut probe.source,
                        "status" => &mut probe.status,
                        "ddl" | "tableChanges" => &mut probe.ddl,
                        "ts_ms" => &mut probe.ts_ms,
                        "schema" => &mut probe.schema,
                        "isDdl" => &mut probe.is_ddl,
                        "pkNames" => &mut probe.pk_names,
                        "type" => &mut probe.kind,
                        "database" => &mut probe.database,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *flag = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(probe)
            }
        }
        deserializer.deserialize_map(ProbeVisitor)
    }
}

impl Probe<'_> {
    fn is_debezium_envelope(&self) -> bool {
        (self.op && self.source) || self.status || self.ddl || (self.ts_ms && self.members == 1)
    }
}

/// The payload of a `{schema, payload}` wrapper found by [`json::wrapped_payload`]: an envelope or an unwrapped
/// record; `None` when it is neither, for the caller to decode the whole message with [`decode`].
pub fn decode_payload<'a>(
    ctx: &MessageContext<'a>,
    payload: &'a str,
) -> Option<Result<Decoded<'a>, DecodeError>> {
    // A data event is what detection would find (`op` + `source`) and decode; skip the probe.
    if let Some(decoded) = debezium::decode_fast(payload) {
        return Some(Ok(decoded));
    }
    let probe = serde_json::from_str::<Probe>(payload).ok()?;
    if probe.is_debezium_envelope() {
        debezium::decode_payload(ctx, payload)
    } else {
        unwrapped::decode_payload(ctx, payload)
    }
}

/// Detects the format of `text` (a JSON object), then decodes it as that format.
pub fn decode<'a>(ctx: &MessageContext<'a>, text: &'a str) -> Result<Decoded<'a>, DecodeError> {
    if let Some(decoded) = debezium::decode_fast(text) {
        return Ok(decoded);
    }
    match detect(ctx, text)? {
        Format::Debezium => debezium::decode(ctx, text),
        Format::Maxwell => maxwell::decode(ctx, text),
        Format::Canal => canal::decode(ctx, text),
        _ => unwrapped::decode(ctx, text),
    }
}

/// The format of `text` (a JSON object), by the rules at the top of this file.
pub fn detect(ctx: &MessageContext<'_>, text: &str) -> Result<Format, DecodeError> {
    let probe: Probe = parse(ctx, Format::Auto, text)?;
    if probe.is_debezium_envelope() {
        return Ok(Format::Debezium);
    }
    if let Some(payload) = probe.payload.filter(|_| probe.schema && probe.members == 2) {
        if !json::is_object(payload) {
            // Neither decoder accepts it; let the envelope decoder say why.
            return Ok(Format::Debezium);
        }
        let inner: Probe = parse(ctx, Format::Auto, payload.get())?;
        return Ok(if inner.is_debezium_envelope() {
            Format::Debezium
        } else {
            Format::DebeziumUnwrapped
        });
    }
    if probe.is_ddl || probe.pk_names || probe.data_is_array {
        return Ok(Format::Canal);
    }
    if probe.kind && probe.database {
        return Ok(Format::Maxwell);
    }
    Ok(Format::DebeziumUnwrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_shape() {
        let ctx = MessageContext::detached("t");
        for (text, want) in [
            (r#"{"op":"c","source":{},"after":{}}"#, Format::Debezium),
            (
                r#"{"schema":{},"payload":{"op":"c","source":{}}}"#,
                Format::Debezium,
            ),
            (r#"{"schema":{},"payload":{"ts_ms":1}}"#, Format::Debezium),
            (r#"{"schema":{},"payload":null}"#, Format::Debezium),
            (r#"{"status":"END","id":"1"}"#, Format::Debezium),
            (r#"{"ts_ms":1}"#, Format::Debezium),
            (
                r#"{"source":{},"ddl":"x","tableChanges":[]}"#,
                Format::Debezium,
            ),
            (
                r#"{"schema":{},"payload":{"id":1}}"#,
                Format::DebeziumUnwrapped,
            ),
            (
                r#"{"id":1,"type":"x","ts_ms":5}"#,
                Format::DebeziumUnwrapped,
            ),
            (r#"{"id":1,"__op":"c"}"#, Format::DebeziumUnwrapped),
            (r#"{"type":"INSERT","data":[{}]}"#, Format::Canal),
            (
                r#"{"type":"CREATE","isDdl":true,"data":null}"#,
                Format::Canal,
            ),
            (
                r#"{"type":"insert","database":"d","data":{}}"#,
                Format::Maxwell,
            ),
        ] {
            assert_eq!(detect(&ctx, text).unwrap(), want, "{text}");
        }
    }
}
