//! A validating, allocation-free JSON reader for the decoders' fast path.
//!
//! serde's derived deserializers spend most of a message's decode time on their own machinery (a visitor call and an
//! owned-or-borrowed string per member name, an error value threaded through every step); the data event of a
//! Debezium topic, by far the most common message, needs none of it. [`Reader`] walks the text once, checks the same
//! grammar serde_json checks (RFC 8259: string escapes and control characters, number syntax, literals, brackets,
//! trailing characters), and hands back the raw text of the values a decoder keeps.
//!
//! It never reports an error of its own: anything it does not settle — a syntax error, an escaped member name, a
//! duplicated member, nesting deeper than [`MAX_DEPTH`], a shape the fast path does not cover — is a [`Bail`], and the
//! caller decodes the message with serde instead, which accepts it or says precisely what is wrong. The fast path may
//! therefore be strict; it must only never accept what serde would refuse, nor read it differently. Both are checked
//! on every fuzz input (`fuzz/src/lib.rs`) and by the property tests below.

/// The fast path does not settle this message; decode it with serde.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bail;

/// A fast-path step.
pub type Step<T> = Result<T, Bail>;

/// Nesting deeper than this bails (serde_json's own limit is 128).
pub const MAX_DEPTH: u32 = 64;

/// A cursor over JSON text.
pub struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader { text, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Step<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    fn since(&self, start: usize) -> Step<&'a str> {
        self.text.get(start..self.at).ok_or(Bail)
    }

    /// Checks that only whitespace follows.
    pub fn finish(mut self) -> Step<()> {
        self.skip_ws();
        if self.at == self.text.len() {
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Reads an object member by member: `each` gets the reader at the member's value, which it must consume with
    /// one of the reading methods, and the member's name (names with escapes bail).
    pub fn object(&mut self, mut each: impl FnMut(&mut Self, &'a str) -> Step<()>) -> Step<()> {
        self.skip_ws();
        self.expect(b'{')?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            let name = self.plain_string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            each(self, name)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }

    /// A string without escapes, returned without its quotes; a string with escapes bails.
    pub fn plain_string(&mut self) -> Step<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        if self.string_rest()? {
            return Err(Bail);
        }
        self.text.get(start..self.at - 1).ok_or(Bail)
    }

    /// A plain string or `null`.
    pub fn nullable_plain_string(&mut self) -> Step<Option<&'a str>> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Ok(None);
        }
        self.plain_string().map(Some)
    }

    /// An object's raw text, or `None` for `null`; any other value bails.
    pub fn nullable_object(&mut self) -> Step<Option<&'a str>> {
        match self.peek() {
            Some(b'n') => self.literal(b"null").map(|()| None),
            Some(b'{') => self.value().map(Some),
            _ => Err(Bail),
        }
    }

    /// A log position the way [`super::json::Lenient`] reads one: an integer (or a string holding one) that fits in
    /// u64, `None` for a string that does not hold one, `null`, a boolean, an object or an array. Any other number
    /// bails: serde_json parses a fraction, an exponent or a too-long integer as a float and refuses one beyond f64
    /// (`1e400`), and reads `-0` and `-1` differently.
    pub fn lenient_u64(&mut self) -> Step<Option<u64>> {
        match self.peek() {
            Some(b'0'..=b'9') => self.number()?.parse().map(Some).map_err(|_| Bail),
            Some(b'"') => Ok(self.plain_string()?.parse().ok()),
            Some(b'-') => Err(Bail),
            _ => self.value().map(|_| None),
        }
    }

    /// Skips one value of any kind, checking it, and returns its raw text.
    pub fn value(&mut self) -> Step<&'a str> {
        let start = self.at;
        match self.peek() {
            Some(b'{' | b'[') => self.composite()?,
            _ => self.scalar()?,
        }
        self.since(start)
    }

    fn literal(&mut self, word: &[u8]) -> Step<()> {
        let end = self.at + word.len();
        if self.text.as_bytes().get(self.at..end) == Some(word) {
            self.at = end;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    fn scalar(&mut self) -> Step<()> {
        match self.peek() {
            Some(b'"') => {
                self.at += 1;
                self.string_rest().map(|_| ())
            }
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => Err(Bail),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, returned as text.
    fn number(&mut self) -> Step<&'a str> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Bail),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        // `01` or `1x`: serde_json refuses a digit or letter glued to a number; so does whatever reads on.
        self.since(start)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Step<()> {
        let start = self.at;
        self.digits();
        if self.at == start {
            Err(Bail)
        } else {
            Ok(())
        }
    }

    /// The rest of a string after its opening quote, up to and including the closing one. Returns whether it had
    /// escapes. Control characters and malformed escapes bail.
    fn string_rest(&mut self) -> Step<bool> {
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        loop {
            self.at = special_from(bytes, self.at);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match bytes.get(self.at + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 2
                        }
                        Some(b'u') => {
                            let hex = bytes.get(self.at + 2..self.at + 6).ok_or(Bail)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(Bail);
                            }
                            self.at += 6;
                        }
                        _ => return Err(Bail),
                    }
                }
                // A control character, or the end of the text.
                _ => return Err(Bail),
            }
        }
    }

    /// A `{…}` or `[…]` value with everything in it, without recursion: one bit per open level says whether it is
    /// an array.
    fn composite(&mut self) -> Step<()> {
        let mut arrays: u64 = 0;
        let mut depth: u32 = 0;
        'open: loop {
            // At `{` or `[`.
            let is_array = self.peek() == Some(b'[');
            self.at += 1;
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(Bail);
            }
            arrays = arrays << 1 | u64::from(is_array);
            self.skip_ws();
            let close = if is_array { b']' } else { b'}' };
            if self.peek() == Some(close) {
                self.at += 1;
                depth -= 1;
                arrays >>= 1;
                if depth == 0 {
                    return Ok(());
                }
            } else {
                if !is_array {
                    self.member_name()?;
                }
                if let Some(b'{' | b'[') = self.peek() {
                    continue 'open;
                }
                self.scalar()?;
            }
            // After a value at the current level: the next element, or the end of one or more levels.
            loop {
                self.skip_ws();
                let in_array = arrays & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        self.skip_ws();
                        if !in_array {
                            self.member_name()?;
                        }
                        if let Some(b'{' | b'[') = self.peek() {
                            continue 'open;
                        }
                        self.scalar()?;
                    }
                    Some(b']') if in_array => self.close_level(&mut depth, &mut arrays),
                    Some(b'}') if !in_array => self.close_level(&mut depth, &mut arrays),
                    _ => return Err(Bail),
                }
                if depth == 0 {
                    return Ok(());
                }
            }
        }
    }

    fn close_level(&mut self, depth: &mut u32, arrays: &mut u64) {
        self.at += 1;
        *depth -= 1;
        *arrays >>= 1;
    }

    /// `"name" :` inside an object being skipped, and the whitespace after it.
    fn member_name(&mut self) -> Step<()> {
        self.expect(b'"')?;
        self.string_rest()?;
        self.skip_ws();
        self.expect(b':')?;
        self.skip_ws();
        Ok(())
    }
}

/// The index of the first `"`, `\` or control character at or after `from` (or the length), eight bytes at a time.
fn special_from(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(chunk);
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let quote = word ^ (ONES * u64::from(b'"'));
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        let found = (control | quote | backslash) & HIGH;
        if found != 0 {
            // The lowest flagged byte is exact; borrows can only flag bytes above a real match.
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return at;
        }
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the reader accepts `text` as one JSON value.
    fn accepts(text: &str) -> bool {
        let mut reader = Reader::new(text);
        reader.skip_ws();
        reader.value().is_ok() && reader.finish().is_ok()
    }

    fn serde_accepts(text: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    }

    #[test]
    fn grammar_cases_agree_with_serde_json() {
        for text in [
            "{}",
            "[]",
            " { \"a\" : [ 1 , -0.5e+7 , true , false , null , \"x\\u00e9\\n\" , { } , [ ] ] } ",
            r#"{"a":{"b":{"c":[[[{"d":"\""}]]]}}}"#,
            "0",
            "-0",
            "1E5",
            "\"\\ud800\"",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "{\"a\" 1}",
            "{\"a\":}",
            "{1:2}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "1e+",
            "tru",
            "nulll",
            "\"\\x\"",
            "\"\\u12G4\"",
            "\"a\u{1}b\"",
            "\"\u{7f}\u{e9}\u{1F600}\"",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
            "[}",
            "{]",
            "{\"a\":[1}",
            "\"unterminated",
            "[",
            "",
            "{} x",
            "{}{}",
        ] {
            assert_eq!(accepts(text), serde_accepts(text), "{text:?}");
        }
    }

    #[test]
    fn depth_beyond_the_limit_bails() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(accepts(&deep(MAX_DEPTH as usize)));
        assert!(!accepts(&deep(MAX_DEPTH as usize + 1)));
    }

    #[test]
    fn objects_give_names_and_raw_values() {
        let mut reader = Reader::new(r#" {"a" : {"x":[1,"}"]} , "b":"s","c":null,"d":7} "#);
        let mut seen = Vec::new();
        reader
            .object(|r, name| {
                let value = match name {
                    "b" => r.plain_string()?.to_owned(),
                    "c" => format!("{:?}", r.nullable_plain_string()?),
                    "d" => format!("{:?}", r.lenient_u64()?),
                    _ => r.value()?.to_owned(),
                };
                seen.push((name, value));
                Ok(())
            })
            .unwrap();
        reader.finish().unwrap();
        assert_eq!(
            seen,
            [
                ("a", r#"{"x":[1,"}"]}"#.to_owned()),
                ("b", "s".to_owned()),
                ("c", "None".to_owned()),
                ("d", "Some(7)".to_owned()),
            ]
        );
        let escaped_name = Reader::new(r#"{"\u0061":1}"#).object(|r, _| r.value().map(|_| ()));
        assert_eq!(escaped_name, Err(Bail));
    }

    #[test]
    fn lenient_numbers_read_like_serde() {
        let read = |text: &str| Reader::new(text).lenient_u64();
        assert_eq!(read("18446744073709551615"), Ok(Some(u64::MAX)));
        assert_eq!(read("18446744073709551616"), Err(Bail));
        assert_eq!(read("1.5"), Err(Bail));
        assert_eq!(read("1e3"), Err(Bail));
        assert_eq!(read("1e400"), Err(Bail));
        assert_eq!(read("\"42\""), Ok(Some(42)));
        assert_eq!(read("\"+42\""), Ok(Some(42)));
        assert_eq!(read("\"0000:01\""), Ok(None));
        assert_eq!(read("null"), Ok(None));
        assert_eq!(read("[1]"), Ok(None));
        assert_eq!(read("-1"), Err(Bail));
    }

    #[test]
    fn special_bytes_are_found_in_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    if at + 1 < len {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(special_from(&bytes, 0), at, "{bytes:?}");
                }
            }
            assert_eq!(special_from(&vec![0xc3; len], 0), len);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// On any text, the reader accepts exactly what serde_json accepts (within the depth limit).
            #[test]
            fn any_text(text in r#"[\[\]{}",:0-9eE.+\- a-z\\\x01é]{0,24}"#) {
                let reader_ok = accepts(&text);
                if reader_ok {
                    prop_assert!(serde_accepts(&text), "{:?}", text);
                }
                let shallow = text.matches(['[', '{']).count() <= MAX_DEPTH as usize;
                if serde_accepts(&text) && shallow {
                    prop_assert!(reader_ok, "{:?}", text);
                }
            }

            /// Valid documents, compact or pretty, are accepted and read back whole.
            #[test]
            fn valid_documents(value in any_json(), pretty in any::<bool>()) {
                let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }
                    .unwrap();
                let mut reader = Reader::new(&text);
                prop_assert_eq!(reader.value(), Ok(text.as_str()));
                // Any strict prefix is not a document.
                for end in (0..text.len()).filter(|&e| text.is_char_boundary(e)) {
                    let prefix = &text[..end];
                    prop_assert_eq!(accepts(prefix), serde_accepts(prefix), "{:?}", prefix);
                }
            }
        }

        fn any_json() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(serde_json::Value::from),
                "\\PC{0,6}".prop_map(serde_json::Value::from),
                "[\\x00-\\x1f\"\\\\]{0,3}".prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                    prop::collection::btree_map("\\PC{0,4}", inner, 0..4)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }
    }
}
