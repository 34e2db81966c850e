//! Key extraction: which keys of the merged table a change event refreshes.
//!
//! A [`KeyRule`] names the field (or fields, for a composite key) whose values identify the merged rows to refresh,
//! and their declared [`KeyType`]. [`KeyRule::extract`] reads them from a [`Decoded`] event:
//!
//! - insert, snapshot read, upsert: from the new row (`after`); an update also from the old row when its key differs
//!   (a `job_activity` row moved from job 7 to job 9 refreshes both, the new key first). The old row is Debezium's
//!   `before`, or Maxwell/Canal's `data` overlaid with `old`; an old key that is incomplete (REPLICA IDENTITY DEFAULT
//!   sends no old row) is skipped, since the new key is then the only one known.
//! - delete: from the old row (`before`).
//! - A field missing from the row, null there, or holding the TOAST placeholder `__debezium_unavailable_value` is
//!   taken from the Kafka message key, which Debezium fills with the primary key (JsonConverter `{schema, payload}` or
//!   bare, Maxwell `{"pk.<col>": …}` or `[db, table, [{col: v}]]`, or a plain scalar for a one-field rule). So a
//!   tombstone, or a delete without row images, takes its key from the message key alone.
//! - Still missing or null: an error naming the field, topic, partition and offset.
//! - truncate and ignored messages have no keys.
//!
//! Values are read straight from the raw JSON text, so they are exact: an integer beyond 2^53 (or beyond i64, e.g.
//! BIGINT UNSIGNED) keeps every digit, and a numeric string is accepted for an integer key (Canal writes every value as
//! a string). The result lists each distinct key tuple once, in the order found.

pub mod config;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::decode::json::{self, ScanError};
use crate::decode::{Decoded, Location, MessageContext, Op, RawObject, Row, TableName};
use crate::error::ErrorClass;

/// The most fields a composite key may have.
pub const MAX_KEY_FIELDS: usize = 8;

/// What Debezium writes for an unchanged TOASTed column (`unavailable.value.placeholder`); never a key value.
pub const TOAST_PLACEHOLDER: &str = "__debezium_unavailable_value";

/// The declared type of a key field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// A 64-bit signed integer (numeric strings are accepted).
    #[default]
    Integer,
    /// A string, e.g. a UUID.
    String,
}

/// One field of a key rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyField {
    /// The column name in the row images (and in the Kafka message key).
    pub name: String,
    /// How its values are read.
    pub key_type: KeyType,
}

impl AsRef<str> for KeyField {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// Which fields of a topic's (or table's) change events are the keys to refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRule {
    fields: Vec<KeyField>,
}

/// A key rule that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRuleError {
    /// No field at all.
    #[error("a key rule needs at least one field")]
    Empty,
    /// More than [`MAX_KEY_FIELDS`].
    #[error("a key rule has at most {MAX_KEY_FIELDS} fields, this one has {0}")]
    TooMany(usize),
    /// An empty field name.
    #[error("a key field name is empty")]
    EmptyName,
    /// The same field twice.
    #[error("key field `{0}` is listed twice")]
    Duplicate(String),
}

impl KeyRule {
    /// A rule whose fields all have the same type.
    pub fn new<I, S>(fields: I, key_type: KeyType) -> Result<Self, KeyRuleError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_fields(
            fields
                .into_iter()
                .map(|name| KeyField {
                    name: name.into(),
                    key_type,
                })
                .collect(),
        )
    }

    /// A rule with a type per field, e.g. `(order_id integer, sku string)`.
    pub fn with_fields(fields: Vec<KeyField>) -> Result<Self, KeyRuleError> {
        check_field_names(&fields)?;
        Ok(KeyRule { fields })
    }

    /// The fields, in key order.
    pub fn fields(&self) -> &[KeyField] {
        &self.fields
    }

    /// The distinct key tuples `decoded` refreshes; see the module documentation for where they come from.
    pub fn extract(
        &self,
        decoded: &Decoded<'_>,
        message_key: Option<&[u8]>,
        ctx: &MessageContext<'_>,
    ) -> Result<Vec<KeyTuple>, KeyError> {
        let mut out = Vec::new();
        self.extract_into(decoded, message_key, ctx, &mut out)?;
        Ok(out)
    }

    /// Like [`KeyRule::extract`], appending to `out` (tuples already in `out` are not compared with).
    pub fn extract_into(
        &self,
        decoded: &Decoded<'_>,
        message_key: Option<&[u8]>,
        ctx: &MessageContext<'_>,
        out: &mut Vec<KeyTuple>,
    ) -> Result<(), KeyError> {
        let start = out.len();
        // Above a few tuples (a large Canal batch), a set keeps de-duplication linear.
        let mut seen: Option<HashSet<KeyTuple>> = None;
        for_each_tuple(&self.fields, decoded, message_key, ctx, |tokens| {
            let mut tuple = KeyTuple::with_capacity(tokens.len());
            for (field, token) in self.fields.iter().zip(tokens) {
                let value =
                    KeyValue::from_json(token, field.key_type).map_err(
                        |problem| match problem {
                            ValueProblem::NotScalar(found) => KeyError::NotScalar {
                                at: ctx.location(),
                                field: field.name.clone(),
                                found,
                            },
                            ValueProblem::NotInteger => KeyError::NotInteger {
                                at: ctx.location(),
                                field: field.name.clone(),
                                value: excerpt(token),
                            },
                        },
                    )?;
                tuple.push(value);
            }
            let fresh = out.get(start..).unwrap_or_default();
            let duplicate = match &mut seen {
                Some(seen) => !seen.insert(tuple.clone()),
                None => fresh.contains(&tuple),
            };
            if !duplicate {
                out.push(tuple);
                if seen.is_none() && out.len() - start > 32 {
                    seen = Some(
                        out.get(start..)
                            .unwrap_or_default()
                            .iter()
                            .cloned()
                            .collect(),
                    );
                }
            }
            Ok(())
        })
    }
}

/// Which table's events a rule takes, on a topic that carries several: `table`, or `schema.table` (the schema is the
/// PostgreSQL schema, or the MySQL database of Maxwell, Canal and Debezium MySQL events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMatch {
    schema: Option<String>,
    table: String,
}

impl TableMatch {
    /// Parses `table` or `schema.table`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (schema, table) = match text.split_once('.') {
            Some((schema, table)) => (Some(schema), table),
            None => (None, text),
        };
        let bad = |part: &str| part.is_empty() || part.contains(['.', ' ', '"', '`']);
        if bad(table) || schema.is_some_and(bad) {
            return Err(format!(
                "{text:?} is not `table` or `schema.table` (unquoted names, one dot at most)"
            ));
        }
        Ok(TableMatch {
            schema: schema.map(str::to_owned),
            table: table.to_owned(),
        })
    }

    /// The schema (or database), when the rule names one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Whether an event about `table` is one of this rule's: same table name, and the same schema when the rule
    /// names one. An event that names no table matches nothing.
    pub fn matches(&self, table: &TableName<'_>) -> bool {
        let same_table = table.table.as_deref() == Some(self.table.as_str());
        let same_schema = match &self.schema {
            None => true,
            Some(schema) => table.schema.as_deref() == Some(schema.as_str()),
        };
        same_table && same_schema
    }
}

impl fmt::Display for TableMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

/// Which of a topic's rules takes an event about `table`: the first whose table matches, else the first that names no
/// table (it takes every other table); `None` when neither exists. `cdc2doris run` and `inspect --config` both pick
/// with it.
pub fn rule_for_table<'r, R>(
    rules: &'r [(Option<TableMatch>, R)],
    table: &TableName<'_>,
) -> Option<&'r R> {
    rules
        .iter()
        .find(|(m, _)| m.as_ref().is_some_and(|m| m.matches(table)))
        .or_else(|| rules.iter().find(|(m, _)| m.is_none()))
        .map(|(_, rule)| rule)
}

fn check_field_names<N: AsRef<str>>(fields: &[N]) -> Result<(), KeyRuleError> {
    if fields.is_empty() {
        return Err(KeyRuleError::Empty);
    }
    if fields.len() > MAX_KEY_FIELDS {
        return Err(KeyRuleError::TooMany(fields.len()));
    }
    for (i, field) in fields.iter().enumerate() {
        let name = field.as_ref();
        if name.is_empty() {
            return Err(KeyRuleError::EmptyName);
        }
        if fields.iter().take(i).any(|f| f.as_ref() == name) {
            return Err(KeyRuleError::Duplicate(name.to_owned()));
        }
    }
    Ok(())
}

/// One key tuple: a value per rule field, in rule order.
pub type KeyTuple = Vec<KeyValue>;

/// One exact key value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    /// An integer that fits in i64.
    Int(i64),
    /// An integer outside i64 (BIGINT UNSIGNED, NUMERIC(20) in string mode), as its exact decimal digits with an
    /// optional leading `-` and no leading zeros.
    BigInt(String),
    /// A string (UUID, text key), unescaped.
    Str(String),
}

/// Why a token is not a value of the declared type.
enum ValueProblem {
    NotScalar(&'static str),
    NotInteger,
}

impl KeyValue {
    /// Reads a raw JSON scalar (a number or a string; null and the TOAST placeholder are filtered out before) as
    /// `key_type`. A number is accepted for a string key as its exact text.
    fn from_json(token: &str, key_type: KeyType) -> Result<KeyValue, ValueProblem> {
        let text = match token.as_bytes().first() {
            Some(b'"') => unescape(token).ok_or(ValueProblem::NotScalar("a malformed string"))?,
            Some(b'-' | b'0'..=b'9') => Cow::Borrowed(token),
            _ => return Err(ValueProblem::NotScalar(json::kind_of(token))),
        };
        match key_type {
            KeyType::String => Ok(KeyValue::Str(text.into_owned())),
            KeyType::Integer => parse_integer(&text).ok_or(ValueProblem::NotInteger),
        }
    }

    /// The value as JSON: integers as bare numbers (every digit), strings quoted.
    pub fn to_json(&self) -> String {
        match self {
            KeyValue::Int(i) => i.to_string(),
            KeyValue::BigInt(digits) => digits.clone(),
            KeyValue::Str(s) => serde_json::Value::from(s.as_str()).to_string(),
        }
    }

    /// The value as a JSON value; an integer beyond `i64` becomes its digits as a string, so that no reader rounds
    /// it through a double.
    pub fn to_json_value(&self) -> serde_json::Value {
        match self {
            KeyValue::Int(i) => serde_json::Value::from(*i),
            KeyValue::BigInt(s) | KeyValue::Str(s) => serde_json::Value::from(s.as_str()),
        }
    }

    /// Whether the value can be bound as an element of a `key_type` query parameter (`$1` is an `int8[]` for
    /// `integer`, a `text[]` for `string`): an integer beyond 64 bits cannot be an `integer` key.
    pub fn fits(&self, key_type: KeyType) -> bool {
        matches!(
            (self, key_type),
            (KeyValue::Int(_), _) | (_, KeyType::String)
        )
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Int(i) => write!(f, "{i}"),
            KeyValue::BigInt(s) | KeyValue::Str(s) => f.write_str(s),
        }
    }
}

/// `-?[0-9]+` as an exact integer; anything else (fractions, exponents, signs, spaces) is not one.
fn parse_integer(text: &str) -> Option<KeyValue> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(KeyValue::Int(i));
    }
    let significant = digits.trim_start_matches('0');
    let sign = if text.starts_with('-') { "-" } else { "" };
    Some(KeyValue::BigInt(format!("{sign}{significant}")))
}

/// The contents of a JSON string token, borrowed when it has no escapes.
fn unescape(token: &str) -> Option<Cow<'_, str>> {
    let inner = token.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(token).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The start of a value, for an error message.
fn excerpt(token: &str) -> String {
    let mut end = token.len().min(64);
    while !token.is_char_boundary(end) {
        end -= 1;
    }
    token.get(..end).unwrap_or_default().to_owned()
}

/// A key that cannot be extracted. All are permanent: the message will not change.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The field is in neither the row image nor the Kafka message key.
    #[error("{at}: key field `{field}` is missing from {looked_in}")]
    Missing {
        at: Location,
        field: String,
        looked_in: &'static str,
    },
    /// The field is null where it was found, and no later source (Kafka message key, old row) has it.
    #[error(
        "{at}: key field `{field}` is null in {image}, and no other source has a value for it"
    )]
    Null {
        at: Location,
        field: String,
        image: &'static str,
    },
    /// The field holds the TOAST placeholder where it was found, and no later source has it.
    #[error(
        "{at}: key field `{field}` holds the TOAST placeholder `{TOAST_PLACEHOLDER}` in {image}, and no other source \
         has a value for it; set REPLICA IDENTITY FULL on the table or key on a primary-key column"
    )]
    Unavailable {
        at: Location,
        field: String,
        image: &'static str,
    },
    /// The value is an object, array or boolean.
    #[error("{at}: key field `{field}` is {found}, not a number or string")]
    NotScalar {
        at: Location,
        field: String,
        found: &'static str,
    },
    /// The field is declared integer but holds something else.
    #[error("{at}: key field `{field}` is declared integer but holds `{value}`")]
    NotInteger {
        at: Location,
        field: String,
        value: String,
    },
    /// The Kafka message key was needed but is not JSON.
    #[error("{at}: key field `{field}` must come from the Kafka message key, which is not valid JSON: {detail}")]
    BadMessageKey {
        at: Location,
        field: String,
        detail: String,
    },
    /// A row image could not be read (a bug: images are validated when decoded).
    #[error("{at}: the {image} image is unreadable at byte {byte}")]
    Unreadable {
        at: Location,
        image: &'static str,
        byte: usize,
    },
}

impl KeyError {
    /// Every key error is [`ErrorClass::Permanent`].
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// The distinct key tuples of `decoded` as the raw JSON tokens found in the message, exactly as written (for
/// `inspect`, which has no declared types). Errors as in [`KeyRule::extract`].
pub fn exact_tuples<'s, N: AsRef<str>>(
    fields: &[N],
    decoded: &Decoded<'s>,
    message_key: Option<&'s [u8]>,
    ctx: &MessageContext<'_>,
) -> Result<Vec<Vec<&'s str>>, KeyError> {
    let mut out: Vec<Vec<&'s str>> = Vec::new();
    for_each_tuple(fields, decoded, message_key, ctx, |tokens| {
        if !out.iter().any(|t| t.as_slice() == tokens) {
            out.push(tokens.to_vec());
        }
        Ok(())
    })?;
    Ok(out)
}

/// Where a value was looked for, for error messages.
#[derive(Clone, Copy)]
enum Source<'s> {
    Image(&'static str, Option<RawObject<'s>>),
    MessageKey,
}

/// Why a field found in a source could not be used.
#[derive(Clone, Copy)]
enum Unusable {
    Null(&'static str),
    Placeholder(&'static str),
}

/// Calls `emit` with each key tuple of `decoded` (not yet de-duplicated), as raw JSON tokens in field order.
fn for_each_tuple<'s, N: AsRef<str>>(
    fields: &[N],
    decoded: &Decoded<'s>,
    message_key: Option<&'s [u8]>,
    ctx: &MessageContext<'_>,
    mut emit: impl FnMut(&[&'s str]) -> Result<(), KeyError>,
) -> Result<(), KeyError> {
    let Decoded::Change(change) = decoded else {
        return Ok(());
    };
    if change.op == Op::Truncate {
        return Ok(());
    }
    let fields = fields
        .get(..MAX_KEY_FIELDS.min(fields.len()))
        .unwrap_or_default();
    let n = fields.len();
    if n == 0 {
        return Ok(());
    }
    let mut message_key = LazyMessageKey::new(message_key);
    // Every tuple goes out through here: a key value must be a number or a string.
    let mut emit = |tuple: &[&'s str]| {
        for (field, token) in fields.iter().zip(tuple) {
            if !matches!(token.as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9')) {
                return Err(KeyError::NotScalar {
                    at: ctx.location(),
                    field: field.as_ref().to_owned(),
                    found: json::kind_of(token),
                });
            }
        }
        emit(tuple)
    };
    for &Row {
        before,
        after,
        changed_old,
    } in change.rows.as_slice()
    {
        let mut new = [None; MAX_KEY_FIELDS];
        let new = new.get_mut(..n).unwrap_or_default();
        match change.op {
            Op::Delete => {
                let sources = [Source::Image("before", before), Source::MessageKey];
                resolve(fields, &sources, new, &mut message_key, ctx)?;
                emit(tokens(new).as_slice())?;
            }
            Op::Update => {
                let looked_in = [
                    Source::Image("after", after),
                    Source::MessageKey,
                    Source::Image("before", before),
                ];
                resolve(fields, &looked_in, new, &mut message_key, ctx)?;
                let new = tokens(new);
                emit(new.as_slice())?;
                if let Some(old) = old_tuple(fields, new.as_slice(), before, changed_old) {
                    if old.as_slice() != new.as_slice() {
                        emit(old.as_slice())?;
                    }
                }
            }
            Op::Insert | Op::Read | Op::Upsert => {
                let sources = [Source::Image("after", after), Source::MessageKey];
                resolve(fields, &sources, new, &mut message_key, ctx)?;
                emit(tokens(new).as_slice())?;
            }
            Op::Truncate => {}
        }
    }
    Ok(())
}

/// A key tuple as raw tokens, on the stack.
#[derive(Clone, Copy)]
struct Tokens<'s> {
    buf: [&'s str; MAX_KEY_FIELDS],
    len: usize,
}

impl<'s> Tokens<'s> {
    fn as_slice(&self) -> &[&'s str] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The filled slots as a tuple (all are `Some` after a successful [`resolve`]).
fn tokens<'s>(slots: &[Option<&'s str>]) -> Tokens<'s> {
    let mut tuple = Tokens {
        buf: [""; MAX_KEY_FIELDS],
        len: 0,
    };
    for (out, token) in tuple.buf.iter_mut().zip(slots.iter().flatten()) {
        *out = token;
        tuple.len += 1;
    }
    tuple
}

/// The key of the row before an update, when it is fully known: Maxwell/Canal `old` overlaid on the new key (only
/// when `old` has a key column), else Debezium `before` (every field present, non-null, not the placeholder).
fn old_tuple<'s, N: AsRef<str>>(
    fields: &[N],
    new: &[&'s str],
    before: Option<RawObject<'s>>,
    changed_old: Option<RawObject<'s>>,
) -> Option<Tokens<'s>> {
    let mut slots = [None; MAX_KEY_FIELDS];
    let slots = slots.get_mut(..fields.len())?;
    if let Some(changed) = changed_old {
        json::find_members(changed.get(), fields, "", slots).ok()?;
        if slots.iter().all(Option::is_none) {
            return None;
        }
        for (slot, new) in slots.iter_mut().zip(new) {
            slot.get_or_insert(new);
        }
    } else {
        json::find_members(before?.get(), fields, "", slots).ok()?;
    }
    let usable = slots
        .iter()
        .all(|s| s.is_some_and(|t| classify(t).is_none()));
    usable.then(|| tokens(slots))
}

/// Whether a found token cannot be a key value: null, or the TOAST placeholder.
fn classify(token: &str) -> Option<fn(&'static str) -> Unusable> {
    if token == "null" {
        Some(Unusable::Null)
    } else if token.len() == TOAST_PLACEHOLDER.len() + 2
        && unescape(token).is_some_and(|s| s == TOAST_PLACEHOLDER)
    {
        Some(Unusable::Placeholder)
    } else {
        None
    }
}

/// Fills every slot from the first source that has a usable value for its field, or fails naming the first field
/// none has.
fn resolve<'s, N: AsRef<str>>(
    fields: &[N],
    sources: &[Source<'s>],
    slots: &mut [Option<&'s str>],
    message_key: &mut LazyMessageKey<'s>,
    ctx: &MessageContext<'_>,
) -> Result<(), KeyError> {
    let mut why = [None::<Unusable>; MAX_KEY_FIELDS];
    for source in sources {
        if slots.iter().all(Option::is_some) {
            return Ok(());
        }
        let had: [bool; MAX_KEY_FIELDS] =
            std::array::from_fn(|i| slots.get(i).is_some_and(Option::is_some));
        match *source {
            Source::Image(_, None) => continue,
            Source::Image(name, Some(raw)) => {
                json::find_members(raw.get(), fields, "", slots)
                    .map_err(|e| unreadable(ctx, name, e))?;
            }
            Source::MessageKey => {
                if let Err(detail) = message_key.find(fields, slots) {
                    let field = slots
                        .iter()
                        .position(Option::is_none)
                        .and_then(|i| fields.get(i));
                    return Err(KeyError::BadMessageKey {
                        at: ctx.location(),
                        field: field.map_or("", |f| f.as_ref()).to_owned(),
                        detail,
                    });
                }
            }
        }
        let image = match source {
            Source::Image("before", _) => "the before image",
            Source::Image(_, _) => "the after image",
            Source::MessageKey => "the Kafka message key",
        };
        for (i, slot) in slots.iter_mut().enumerate() {
            let newly_found = !had.get(i).copied().unwrap_or(true);
            if let (true, Some(token)) = (newly_found, *slot) {
                if let Some(problem) = classify(token) {
                    *slot = None;
                    if let Some(w @ None) = why.get_mut(i) {
                        *w = Some(problem(image));
                    }
                }
            }
        }
    }
    let Some(i) = slots.iter().position(Option::is_none) else {
        return Ok(());
    };
    let at = ctx.location();
    let field = fields.get(i).map_or("", |f| f.as_ref()).to_owned();
    Err(match why.get(i).copied().flatten() {
        Some(Unusable::Null(image)) => KeyError::Null { at, field, image },
        Some(Unusable::Placeholder(image)) => KeyError::Unavailable { at, field, image },
        None => KeyError::Missing {
            at,
            field,
            looked_in: describe(sources),
        },
    })
}

fn describe(sources: &[Source<'_>]) -> &'static str {
    match sources.first() {
        Some(Source::Image("before", Some(_))) => "the before image and the Kafka message key",
        Some(Source::Image("before", None)) => {
            "the Kafka message key (the message has no row image)"
        }
        Some(Source::Image(_, Some(_))) => "the after image and the Kafka message key",
        _ => "the Kafka message key (the message has no row image)",
    }
}

fn unreadable(ctx: &MessageContext<'_>, image: &'static str, error: ScanError) -> KeyError {
    let byte = match error {
        ScanError::NotAnObject(_) => 0,
        ScanError::Malformed(byte) => byte,
    };
    KeyError::Unreadable {
        at: ctx.location(),
        image,
        byte,
    }
}

/// The Kafka message key, parsed the first time a field is looked up in it.
struct LazyMessageKey<'s> {
    bytes: Option<&'s [u8]>,
    parsed: Option<Result<KeyShape<'s>, String>>,
}

/// The shapes a Kafka message key takes.
enum KeyShape<'s> {
    /// No key, or a null one.
    Absent,
    /// A struct of key columns (Debezium, bare or the `payload` of `{schema, payload}`), or Maxwell's hash format
    /// whose columns are named `pk.<col>`.
    Object(&'s str),
    /// Maxwell's array format `[database, table, [{col: value}, …]]`: the third element.
    Columns(Vec<&'s RawValue>),
    /// A bare number or string: the key of a one-field rule.
    Scalar(&'s str),
}

impl<'s> LazyMessageKey<'s> {
    fn new(bytes: Option<&'s [u8]>) -> Self {
        LazyMessageKey {
            bytes,
            parsed: None,
        }
    }

    fn shape(&mut self) -> &Result<KeyShape<'s>, String> {
        let bytes = self.bytes;
        self.parsed.get_or_insert_with(|| parse_message_key(bytes))
    }

    /// Fills the still-empty slots from the key; an error if the key is needed but unreadable.
    fn find<N: AsRef<str>>(
        &mut self,
        fields: &[N],
        slots: &mut [Option<&'s str>],
    ) -> Result<(), String> {
        match self.shape() {
            Err(detail) => Err(detail.clone()),
            Ok(KeyShape::Absent) => Ok(()),
            Ok(KeyShape::Object(text)) => {
                let text = *text;
                json::find_members(text, fields, "", slots).map_err(|e| format!("{e:?}"))?;
                json::find_members(text, fields, "pk.", slots).map_err(|e| format!("{e:?}"))
            }
            Ok(KeyShape::Columns(columns)) => {
                for column in columns {
                    // Elements that are not objects hold no column.
                    let _ = json::find_members(column.get(), fields, "", slots);
                }
                Ok(())
            }
            Ok(KeyShape::Scalar(token)) => {
                if let [slot @ None] = slots {
                    *slot = Some(*token);
                }
                Ok(())
            }
        }
    }
}

fn shape_of(raw: &RawValue) -> Result<KeyShape<'_>, String> {
    Ok(match json::first_byte(raw) {
        b'{' => KeyShape::Object(raw.get()),
        b'[' => {
            let (_, _, columns): (IgnoredAny, IgnoredAny, Vec<&RawValue>) =
                serde_json::from_str(raw.get()).map_err(|e| {
                    format!(
                        "an array key is not Maxwell's [database, table, [{{column: value}}]]: {e}"
                    )
                })?;
            KeyShape::Columns(columns)
        }
        b'n' => KeyShape::Absent,
        b't' | b'f' => return Err("the key is a boolean".to_owned()),
        _ => KeyShape::Scalar(raw.get()),
    })
}

fn parse_message_key(bytes: Option<&[u8]>) -> Result<KeyShape<'_>, String> {
    let Some(bytes) = bytes else {
        return Ok(KeyShape::Absent);
    };
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    if text.trim().is_empty() {
        return Ok(KeyShape::Absent);
    }
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if json::first_byte(raw) == b'{' {
        let mut wrapper = [None; 2];
        json::find_members(raw.get(), &["schema", "payload"], "", &mut wrapper)
            .map_err(|e| format!("{e:?}"))?;
        if let [Some(_), Some(payload)] = wrapper {
            let payload: &RawValue = serde_json::from_str(payload).map_err(|e| e.to_string())?;
            return shape_of(payload);
        }
    }
    shape_of(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, Format};

    fn keys(
        format: Format,
        value: &str,
        key: Option<&str>,
        rule: &KeyRule,
    ) -> Result<Vec<KeyTuple>, KeyError> {
        let ctx = MessageContext::new("srv.public.job_activity", 2, 40);
        let decoded = decode(
            format,
            &ctx,
            key.map(str::as_bytes),
            Some(value.as_bytes()).filter(|v| !v.is_empty()),
        )
        .expect("decodes");
        rule.extract(&decoded, key.map(str::as_bytes), &ctx)
    }

    fn int(fields: &[&str]) -> KeyRule {
        KeyRule::new(fields.iter().copied(), KeyType::Integer).unwrap()
    }

    use KeyValue::{BigInt, Int, Str};

    #[test]
    fn update_that_moves_a_row_refreshes_new_then_old() {
        let value = r#"{"op":"u","source":{"schema":"public","table":"job_activity"},
            "before":{"id":1,"job_id":7},"after":{"id":1,"job_id":9}}"#;
        assert_eq!(
            keys(Format::Debezium, value, None, &int(&["job_id"])).unwrap(),
            vec![vec![Int(9)], vec![Int(7)]]
        );
        assert_eq!(
            keys(Format::Debezium, value, None, &int(&["id"])).unwrap(),
            vec![vec![Int(1)]]
        );
    }

    #[test]
    fn maxwell_and_canal_old_overlay() {
        let value = r#"{"database":"d","table":"t","type":"update","data":{"id":2,"job_id":9},"old":{"job_id":7}}"#;
        assert_eq!(
            keys(Format::Maxwell, value, None, &int(&["id", "job_id"])).unwrap(),
            vec![vec![Int(2), Int(9)], vec![Int(2), Int(7)]]
        );
        assert_eq!(
            keys(Format::Maxwell, value, None, &int(&["id"])).unwrap(),
            vec![vec![Int(2)]]
        );
        let value = r#"{"database":"d","table":"t","type":"UPDATE","data":[{"id":"1"},{"id":"2"},{"id":"1"}],
            "old":[{"id":"5"},{"x":"1"}],"pkNames":["id"]}"#;
        assert_eq!(
            keys(Format::Canal, value, None, &int(&["id"])).unwrap(),
            vec![vec![Int(1)], vec![Int(5)], vec![Int(2)]]
        );
    }

    #[test]
    fn exact_values() {
        let value = r#"{"id":18446744073709551615,"s":"00012345678901234567890","u":"3f1c","n":-9223372036854775808}"#;
        let rule = KeyRule::with_fields(vec![
            KeyField {
                name: "id".into(),
                key_type: KeyType::Integer,
            },
            KeyField {
                name: "s".into(),
                key_type: KeyType::Integer,
            },
            KeyField {
                name: "u".into(),
                key_type: KeyType::String,
            },
            KeyField {
                name: "n".into(),
                key_type: KeyType::Integer,
            },
        ])
        .unwrap();
        assert_eq!(
            keys(Format::DebeziumUnwrapped, value, None, &rule).unwrap(),
            vec![vec![
                BigInt("18446744073709551615".into()),
                BigInt("12345678901234567890".into()),
                Str("3f1c".into()),
                Int(i64::MIN)
            ]]
        );
        let rule = KeyRule::new(["id"], KeyType::String).unwrap();
        assert_eq!(
            keys(Format::DebeziumUnwrapped, value, None, &rule).unwrap(),
            vec![vec![Str("18446744073709551615".into())]]
        );
        assert_eq!(
            BigInt("18446744073709551615".into()).to_json(),
            "18446744073709551615"
        );
        assert_eq!(Str("a\"b".into()).to_json(), r#""a\"b""#);
    }

    #[test]
    fn message_key_fills_in_for_missing_null_and_placeholder() {
        let rule = int(&["id"]);
        let delete = r#"{"op":"d","source":{"table":"t"},"before":null,"after":null}"#;
        for key in [
            r#"{"id":5}"#,
            r#"{"schema":{"type":"struct"},"payload":{"id":5}}"#,
            r#"{"database":"d","table":"t","pk.id":5}"#,
            r#"["d","t",[{"id":5}]]"#,
            "5",
            r#"{"schema":{"type":"int64"},"payload":5}"#,
        ] {
            assert_eq!(
                keys(Format::Debezium, delete, Some(key), &rule).unwrap(),
                vec![vec![Int(5)]],
                "{key}"
            );
        }
        assert_eq!(
            keys(Format::Debezium, "", Some(r#"{"id":5}"#), &rule).unwrap(),
            vec![vec![Int(5)]]
        );
        let toast = r#"{"op":"u","source":{"table":"t"},"before":null,"after":{"id":"__debezium_unavailable_value"}}"#;
        assert_eq!(
            keys(Format::Debezium, toast, Some(r#"{"id":6}"#), &rule).unwrap(),
            vec![vec![Int(6)]]
        );
    }

    #[test]
    fn errors_name_field_topic_partition_offset() {
        let rule = int(&["job_id"]);
        let check = |value: &str, key: Option<&str>, want: &str| {
            let err = keys(Format::Debezium, value, key, &rule).unwrap_err();
            assert_eq!(err.class(), ErrorClass::Permanent);
            let text = err.to_string();
            assert!(
                text.starts_with(
                    "topic `srv.public.job_activity` partition 2 offset 40: key field `job_id`"
                ),
                "{text}"
            );
            assert!(text.contains(want), "{text}");
        };
        check(
            r#"{"op":"c","source":{},"after":{"id":1}}"#,
            None,
            "missing from the after image",
        );
        check(
            r#"{"op":"c","source":{},"after":{"job_id":null}}"#,
            Some(r#"{"id":1}"#),
            "is null in the after image",
        );
        check(
            r#"{"op":"c","source":{},"after":{"job_id":"__debezium_unavailable_value"}}"#,
            None,
            "TOAST placeholder",
        );
        check(
            r#"{"op":"c","source":{},"after":{"job_id":1.5}}"#,
            None,
            "declared integer but holds `1.5`",
        );
        check(
            r#"{"op":"c","source":{},"after":{"job_id":"12a"}}"#,
            None,
            "declared integer but holds `\"12a\"`",
        );
        check(
            r#"{"op":"c","source":{},"after":{"job_id":{"a":1}}}"#,
            None,
            "is an object",
        );
        check(
            r#"{"op":"c","source":{},"after":{"job_id":true}}"#,
            None,
            "is a boolean",
        );
        check(r#"{"op":"d","source":{}}"#, Some("{nope"), "not valid JSON");
        check(
            r#"{"op":"d","source":{}}"#,
            None,
            "(the message has no row image)",
        );
    }

    /// Found by the `debezium_unwrapped` fuzz target: `exact_tuples` (inspect) printed a boolean as a key.
    #[test]
    fn fuzz_regression_boolean_key_is_not_a_key() {
        let ctx = MessageContext::detached("srv.public.t");
        for value in [
            &b"  {\"id\":true}\n"[..],
            br#"{"id":{"a":1}}"#,
            br#"{"id":[1]}"#,
        ] {
            let decoded = decode(Format::DebeziumUnwrapped, &ctx, None, Some(value)).unwrap();
            let err = exact_tuples(&["id"], &decoded, None, &ctx).unwrap_err();
            assert!(matches!(err, KeyError::NotScalar { .. }), "{err}");
        }
    }

    /// Found by the `debezium` fuzz target: a tombstone whose key is a number with a huge exponent. The token is valid
    /// JSON (kept exactly for inspect) but no integer, and must not be taken for one.
    #[test]
    fn fuzz_regression_exponent_key() {
        let ctx = MessageContext::detached("srv.public.t");
        let key = &b"-922337203685477591e40009"[..];
        let decoded = decode(Format::Debezium, &ctx, Some(key), None).unwrap();
        assert_eq!(
            exact_tuples(&["id"], &decoded, Some(key), &ctx).unwrap(),
            vec![vec!["-922337203685477591e40009"]]
        );
        let err = int(&["id"]).extract(&decoded, Some(key), &ctx).unwrap_err();
        assert!(matches!(err, KeyError::NotInteger { .. }), "{err}");
    }

    #[test]
    fn nothing_for_truncate_and_ignored() {
        let rule = int(&["id"]);
        assert!(
            keys(Format::Debezium, r#"{"op":"t","source":{}}"#, None, &rule)
                .unwrap()
                .is_empty()
        );
        assert!(keys(Format::Debezium, r#"{"status":"BEGIN"}"#, None, &rule)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rules_are_checked() {
        assert_eq!(
            KeyRule::new(Vec::<String>::new(), KeyType::Integer),
            Err(KeyRuleError::Empty)
        );
        assert_eq!(
            KeyRule::new(["a", "a"], KeyType::Integer),
            Err(KeyRuleError::Duplicate("a".into()))
        );
        assert_eq!(
            KeyRule::new([""], KeyType::Integer),
            Err(KeyRuleError::EmptyName)
        );
        assert_eq!(
            KeyRule::new((0..9).map(|i| i.to_string()), KeyType::Integer),
            Err(KeyRuleError::TooMany(9))
        );
    }

    #[test]
    fn large_batches_are_deduplicated() {
        let rows: Vec<String> = (0..200)
            .map(|i| format!(r#"{{"id":"{}"}}"#, i % 50))
            .collect();
        let value = format!(r#"{{"type":"INSERT","data":[{}]}}"#, rows.join(","));
        let got = keys(Format::Canal, &value, None, &int(&["id"])).unwrap();
        assert_eq!(got, (0..50).map(|i| vec![Int(i)]).collect::<Vec<_>>());
    }

    #[test]
    fn table_matches() {
        let table = |schema: Option<&'static str>, table: Option<&'static str>| TableName {
            schema: schema.map(Cow::Borrowed),
            table: table.map(Cow::Borrowed),
        };
        let bare = TableMatch::parse(" job_activity ").unwrap();
        assert!(bare.matches(&table(Some("public"), Some("job_activity"))));
        assert!(bare.matches(&table(None, Some("job_activity"))));
        assert!(!bare.matches(&table(Some("public"), Some("jobs"))));
        assert!(!bare.matches(&table(None, None)));
        let qualified = TableMatch::parse("shop.orders").unwrap();
        assert_eq!(qualified.to_string(), "shop.orders");
        assert!(qualified.matches(&table(Some("shop"), Some("orders"))));
        assert!(!qualified.matches(&table(Some("crm"), Some("orders"))));
        assert!(!qualified.matches(&table(None, Some("orders"))));
        let rules = [
            (Some(TableMatch::parse("crm.orders").unwrap()), 0),
            (None, 1),
            (Some(TableMatch::parse("orders").unwrap()), 2),
        ];
        assert_eq!(
            rule_for_table(&rules, &table(Some("crm"), Some("orders"))),
            Some(&0)
        );
        assert_eq!(
            rule_for_table(&rules, &table(Some("shop"), Some("orders"))),
            Some(&2)
        );
        assert_eq!(
            rule_for_table(&rules, &table(Some("shop"), Some("lines"))),
            Some(&1)
        );
        assert_eq!(
            rule_for_table(&rules[2..], &table(None, Some("lines"))),
            None
        );
        for bad in ["", ".", "a.", ".b", "a.b.c", "a b", "\"T\""] {
            assert!(TableMatch::parse(bad).is_err(), "{bad}");
        }
    }
}
