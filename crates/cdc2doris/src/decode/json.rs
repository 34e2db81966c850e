//! Small JSON pieces the decoders share: borrowed strings, lenient position numbers, and a member scanner that reads
//! a few top-level members out of an already validated object without parsing the rest.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A JSON string borrowed from the message when it has no escapes, owned otherwise.
///
/// serde's own `Cow<str>` impl always allocates, and `#[serde(borrow)]` does not reach through `Option`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A position number (LSN, transaction id, timestamp) that is kept only when it is a non-negative integer or a
/// string holding one. Connectors disagree on these types (SQL Server's LSN is a string, Oracle's SCN too), and a
/// position is informational: an odd one must not make a message undecodable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lenient(pub Option<u64>);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenientVisitor;
        impl<'de> Visitor<'de> for LenientVisitor {
            type Value = Lenient;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient(u64::try_from(v).ok()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_str<E>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient(v.parse().ok()))
            }
            fn visit_unit<E>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_none<E>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Lenient, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lenient, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lenient, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
        }
        deserializer.deserialize_any(LenientVisitor)
    }
}

/// For `#[serde(deserialize_with)]`: a member that is present keeps its raw text, `null` included, so that
/// `"payload": null` can be told apart from a missing `payload`.
pub fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(deserializer).map(Some)
}

/// The first byte of a raw JSON value, which tells its kind.
pub fn first_byte(raw: &RawValue) -> u8 {
    raw.get().as_bytes().first().copied().unwrap_or(b' ')
}

/// Whether a raw JSON value is an object.
pub fn is_object(raw: &RawValue) -> bool {
    first_byte(raw) == b'{'
}

/// Whether a raw JSON value is `null`.
pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// The kind of a JSON value, for error messages.
pub fn kind_of(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'-' | b'0'..=b'9') => "a number",
        _ => "empty",
    }
}

/// The scanner met something that is not a JSON object. Its input is validated JSON, so apart from "not an object"
/// this means a bug, which is still reported as an error rather than a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// The value is not an object; the kind it is instead.
    NotAnObject(&'static str),
    /// The text is not well-formed JSON at this byte offset.
    Malformed(usize),
}

/// Finds top-level members of the JSON object `object` (validated JSON text) whose names are `prefix` + one of
/// `names`, storing the raw text of each member's value in `found` at the name's index. Stops reading as soon as every
/// name is found, so a key column at the start of a large row costs almost nothing. The first occurrence of a
/// duplicated name wins. `found` must be at least as long as `names`.
pub fn find_members<'a, N: AsRef<str>>(
    object: &'a str,
    names: &[N],
    prefix: &str,
    found: &mut [Option<&'a str>],
) -> Result<(), ScanError> {
    let mut scan = Scanner {
        text: object,
        bytes: object.as_bytes(),
        at: 0,
    };
    scan.skip_ws();
    if scan.peek() != Some(b'{') {
        return Err(ScanError::NotAnObject(kind_of(
            object.get(scan.at..).unwrap_or(""),
        )));
    }
    scan.at += 1;
    let wanted = names.len().min(found.len());
    let mut missing = (0..wanted)
        .filter(|&i| found.get(i).is_some_and(|f| f.is_none()))
        .count();
    if missing == 0 {
        return Ok(());
    }
    loop {
        scan.skip_ws();
        match scan.peek() {
            Some(b'}') => return Ok(()),
            Some(b',') => {
                scan.at += 1;
                continue;
            }
            Some(b'"') => {}
            _ => return Err(ScanError::Malformed(scan.at)),
        }
        let (name, escaped) = scan.string()?;
        scan.skip_ws();
        if scan.peek() != Some(b':') {
            return Err(ScanError::Malformed(scan.at));
        }
        scan.at += 1;
        scan.skip_ws();
        let value = scan.value()?;
        if let Some(index) = match_name(name, escaped, names, prefix) {
            if let Some(slot @ None) = found.get_mut(index) {
                *slot = Some(value);
                missing -= 1;
                if missing == 0 {
                    return Ok(());
                }
            }
        }
    }
}

/// The number of members of the JSON object `object` (validated JSON text).
pub fn count_members(object: &str) -> Result<usize, ScanError> {
    let mut scan = Scanner {
        text: object,
        bytes: object.as_bytes(),
        at: 0,
    };
    scan.skip_ws();
    if scan.peek() != Some(b'{') {
        return Err(ScanError::NotAnObject(kind_of(
            object.get(scan.at..).unwrap_or(""),
        )));
    }
    scan.at += 1;
    let mut count = 0;
    loop {
        scan.skip_ws();
        match scan.peek() {
            Some(b'}') => return Ok(count),
            Some(b',') => scan.at += 1,
            Some(b'"') => {
                scan.string()?;
                scan.skip_ws();
                if scan.peek() != Some(b':') {
                    return Err(ScanError::Malformed(scan.at));
                }
                scan.at += 1;
                scan.skip_ws();
                scan.value()?;
                count += 1;
            }
            _ => return Err(ScanError::Malformed(scan.at)),
        }
    }
}

/// Which of `names` (after `prefix`) the raw member name token `name` (with its quotes) is.
fn match_name<N: AsRef<str>>(
    name: &str,
    escaped: bool,
    names: &[N],
    prefix: &str,
) -> Option<usize> {
    if !escaped {
        let inner = name.as_bytes().get(1..name.len().saturating_sub(1))?;
        let bare = match prefix.as_bytes() {
            [] => inner,
            prefix => inner.strip_prefix(prefix)?,
        };
        return names
            .iter()
            .position(|n| same_bytes(n.as_ref().as_bytes(), bare));
    }
    let unescaped = serde_json::from_str::<String>(name).ok()?;
    let bare = unescaped.strip_prefix(prefix)?;
    names.iter().position(|n| n.as_ref() == bare)
}

/// `a == b` for the short strings member names are, without a call to `memcmp` (which costs more than the whole
/// comparison here: this runs for every member a key scan passes).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= x ^ y;
    }
    difference == 0
}

/// Bytes that end a run inside a string: `"` and `\\`.
static IN_STRING: [u8; 256] = byte_classes(b"\"\\");
/// Bytes that matter while skipping an object or array: quotes and brackets.
static IN_COMPOSITE: [u8; 256] = byte_classes(b"\"{}[]");

const fn byte_classes(special: &[u8]) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < special.len() {
        table[special[i] as usize] = 1;
        i += 1;
    }
    table
}

/// `bytes` without JSON whitespace at either end.
pub fn trim_ws(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Where the `payload` of a JsonConverter wrapper `{"schema": …, "payload": {…}}` probably is, found without reading
/// the schema, which is most of such a message's bytes: the converter writes `schema` first and `payload` last, so
/// the payload is the object after the last `"payload":` member name and before the final `}`.
///
/// Returns the bytes from that object's `{` up to (not including) the final `}`. The caller parses them with serde,
/// which validates them; if that fails (the last `"payload":` was a column inside the payload, or the message is
/// malformed) the caller parses the whole message instead, which then finds the payload or reports the error. The
/// schema block itself is never validated.
pub fn wrapped_payload(bytes: &[u8]) -> Option<&[u8]> {
    const NAME: &[u8] = b"\"payload\"";
    let body = trim_ws(bytes).strip_prefix(b"{")?.strip_suffix(b"}")?;
    if !trim_ws(body).starts_with(b"\"schema\"") {
        return None;
    }
    // The last `"payload"` directly followed by `:`; colons are few, and memrchr finds them fast.
    let colon = memchr::memrchr_iter(b':', body)
        .find(|&at| body.get(..at).is_some_and(|b| b.ends_with(NAME)))?;
    // A member name follows `{` or `,`; anything else (a backslash, a letter) means the match is inside a string.
    let name_start = colon.checked_sub(NAME.len())?;
    if !trim_ws(body.get(..name_start)?).ends_with(b",") {
        return None;
    }
    let payload = trim_ws(body.get(colon + 1..)?);
    payload.starts_with(b"{").then_some(payload)
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn slice(&self, start: usize) -> Result<&'a str, ScanError> {
        self.text
            .get(start..self.at)
            .ok_or(ScanError::Malformed(start))
    }

    /// A string token starting at the current `"`: its text with quotes, and whether it has escapes.
    fn string(&mut self) -> Result<(&'a str, bool), ScanError> {
        let start = self.at;
        self.at += 1;
        let mut escaped = false;
        loop {
            self.skip_while(&IN_STRING);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok((self.slice(start)?, escaped));
                }
                Some(_) => {
                    // A backslash: skip it and the escaped byte.
                    escaped = true;
                    self.at += 2;
                }
                None => return Err(ScanError::Malformed(start)),
            }
        }
    }

    /// Advances over bytes whose class in `table` is 0.
    fn skip_while(&mut self, table: &[u8; 256]) {
        while let Some(&b) = self.bytes.get(self.at) {
            if table[usize::from(b)] != 0 {
                break;
            }
            self.at += 1;
        }
    }

    /// Skips one value starting at the current byte and returns its text.
    fn value(&mut self) -> Result<&'a str, ScanError> {
        let start = self.at;
        match self.peek() {
            Some(b'"') => {
                self.string()?;
            }
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    self.skip_while(&IN_COMPOSITE);
                    match self.peek() {
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                self.at += 1;
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return Err(ScanError::Malformed(start)),
                    }
                    self.at += 1;
                }
            }
            Some(_) => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.at += 1;
                }
                if self.at == start {
                    return Err(ScanError::Malformed(start));
                }
            }
            None => return Err(ScanError::Malformed(start)),
        }
        self.slice(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(
        object: &'a str,
        names: &[&str],
        prefix: &str,
    ) -> Result<Vec<Option<&'a str>>, ScanError> {
        let mut found = vec![None; names.len()];
        find_members(object, names, prefix, &mut found)?;
        Ok(found)
    }

    #[test]
    fn finds_members_and_keeps_their_exact_text() {
        let object = r#" { "a" : {"x":[1,"}"]}, "id":1152921504606846977 ,"s":"q\"}","n":null} "#;
        assert_eq!(
            find(object, &["id", "s", "n", "zz"], "").unwrap(),
            vec![
                Some("1152921504606846977"),
                Some(r#""q\"}""#),
                Some("null"),
                None
            ]
        );
    }

    #[test]
    fn escaped_names_and_prefixes() {
        let object = r#"{"\u0069d":7,"pk.text":"t"}"#;
        assert_eq!(find(object, &["id"], "").unwrap(), vec![Some("7")]);
        assert_eq!(
            find(object, &["text"], "pk.").unwrap(),
            vec![Some(r#""t""#)]
        );
    }

    #[test]
    fn first_duplicate_wins_and_non_objects_are_reported() {
        assert_eq!(
            find(r#"{"id":1,"id":2}"#, &["id"], "").unwrap(),
            vec![Some("1")]
        );
        assert_eq!(
            find("[1]", &["id"], ""),
            Err(ScanError::NotAnObject("an array"))
        );
        assert_eq!(
            find("null", &["id"], ""),
            Err(ScanError::NotAnObject("null"))
        );
    }

    #[test]
    fn finds_the_wrapped_payload() {
        let found = |text: &'static str| {
            wrapped_payload(text.as_bytes()).map(|p| std::str::from_utf8(p).unwrap())
        };
        let text = r#" {"schema":{"fields":[{"f":"payload"}]},"payload":{"op":"c","after":{"x":"\"payload\":{"}}} "#;
        assert_eq!(
            found(text),
            Some(r#"{"op":"c","after":{"x":"\"payload\":{"}}"#)
        );
        // The last `"payload":` is a column: the candidate is wrong, and serde will refuse it (trailing characters).
        let text = r#"{"schema":{},"payload":{"after":{"id":1,"payload":{"a":1}}}}"#;
        assert_eq!(found(text), Some(r#"{"a":1}}}"#));
        for text in [
            r#"{"payload":{},"schema":{}}"#,
            r#"{"schema":{},"payload":null}"#,
            r#"{"schema":{},"x":{"a\"payload":{}}}"#,
            r#"{"schema":{},"payload":{}} x"#,
            r#"{"schema":{"#,
            "[]",
            "",
        ] {
            assert_eq!(found(text), None, "{text}");
        }
        assert_eq!(trim_ws(b" \t\r\n"), b"");
        assert_eq!(trim_ws(b" {} "), b"{}");
    }

    #[test]
    fn counts_members() {
        assert_eq!(count_members(r#" {"a":{"b":1},"c":[{}],"d":"}"} "#), Ok(3));
        assert_eq!(count_members("{}"), Ok(0));
        assert!(count_members("{\"a\":").is_err());
    }

    #[test]
    fn truncated_text_is_an_error_not_a_panic() {
        for text in [
            r#"{"id":"#,
            r#"{"id"#,
            r#"{"a":{"b":[1,2"#,
            r#"{"a":"\"#,
            "{",
            r#"{"a" 1}"#,
        ] {
            assert!(find(text, &["id"], "").is_err(), "{text}");
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<u64>().prop_map(serde_json::Value::from),
                // No floats: serde_json's default float parsing does not round-trip, and numbers are skipped alike.
                ".{0,8}".prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                    prop::collection::btree_map(".{0,4}", inner, 0..4)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// The scanner finds exactly what serde_json finds, compact or pretty-printed.
            #[test]
            fn scanner_agrees_with_serde_json(
                members in prop::collection::btree_map(".{0,4}", value(), 0..6),
                names in prop::collection::btree_set(".{0,4}", 1..4).prop_map(|n| n.into_iter().collect::<Vec<_>>()),
                pretty in any::<bool>(),
            ) {
                let object = serde_json::Value::Object(members.clone().into_iter().collect());
                let text = if pretty { serde_json::to_string_pretty(&object) } else { serde_json::to_string(&object) }
                    .unwrap();
                let mut found = vec![None; names.len()];
                find_members(&text, &names, "", &mut found).unwrap();
                for (name, found) in names.iter().zip(&found) {
                    let found = found.map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap());
                    prop_assert_eq!(found.as_ref(), members.get(name.as_str()));
                }
                prop_assert_eq!(count_members(&text), Ok(members.len()));
            }

            /// Any prefix of a valid object is an error or a partial answer, never a panic.
            #[test]
            fn prefixes_never_panic(members in prop::collection::btree_map(".{0,4}", value(), 0..6), cut in any::<prop::sample::Index>()) {
                let text = serde_json::to_string(&serde_json::Value::Object(members.into_iter().collect())).unwrap();
                let mut end = cut.index(text.len() + 1);
                while !text.is_char_boundary(end) { end -= 1; }
                let mut found = [None; 2];
                let _ = find_members(&text[..end], &["a", "b"], "", &mut found);
                let _ = count_members(&text[..end]);
            }
        }
    }
}
