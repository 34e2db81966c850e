//! Column types and cell values: parsing load input (text or JSON) into typed values the way a Doris BE casts
//! them, and rendering them back (rows endpoint, persistence log).
//!
//! Every value has one canonical text form (`Value::to_text`) that `parse_text` reads back unchanged; the
//! persistence log relies on that round trip.

use std::cmp::Ordering;
use std::fmt::Write as _;

/// A column type the emulator can check values against (spec §6 "Literals").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    LargeInt,
    Float,
    Double,
    /// DECIMAL(p,s) / DECIMALV3(p,s); p ≤ 38.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    /// DATETIME(p) / DATETIMEV2(p); p ≤ 6 fractional digits.
    DateTime {
        precision: u8,
    },
    /// CHAR(n): n bytes.
    Char(u32),
    /// VARCHAR(n): n bytes (Doris counts bytes, not characters).
    Varchar(u32),
    String,
    /// JSON / JSONB: stored as minified JSON text, key order kept.
    Json,
}

impl ColType {
    /// The type name as Doris prints it in `DESC`.
    pub fn sql_name(&self) -> String {
        match self {
            ColType::Boolean => "BOOLEAN".into(),
            ColType::TinyInt => "TINYINT".into(),
            ColType::SmallInt => "SMALLINT".into(),
            ColType::Int => "INT".into(),
            ColType::BigInt => "BIGINT".into(),
            ColType::LargeInt => "LARGEINT".into(),
            ColType::Float => "FLOAT".into(),
            ColType::Double => "DOUBLE".into(),
            ColType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            ColType::Date => "DATE".into(),
            ColType::DateTime { precision } => format!("DATETIME({precision})"),
            ColType::Char(n) => format!("CHAR({n})"),
            ColType::Varchar(n) => format!("VARCHAR({n})"),
            ColType::String => "STRING".into(),
            ColType::Json => "JSON".into(),
        }
    }

    fn int_range(&self) -> Option<(i128, i128)> {
        match self {
            ColType::TinyInt => Some((i8::MIN as i128, i8::MAX as i128)),
            ColType::SmallInt => Some((i16::MIN as i128, i16::MAX as i128)),
            ColType::Int => Some((i32::MIN as i128, i32::MAX as i128)),
            ColType::BigInt => Some((i64::MIN as i128, i64::MAX as i128)),
            ColType::LargeInt => Some((i128::MIN, i128::MAX)),
            _ => None,
        }
    }
}

/// A total-ordered f64 so rows can be sorted and used as keys.
#[derive(Clone, Copy, Debug)]
pub struct F64(pub f64);

impl PartialEq for F64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}
impl Eq for F64 {}
impl PartialOrd for F64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for F64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One stored cell. `Null` sorts first, which is also the "smallest sequence value" rule of spec §6.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(F64),
    /// Unscaled decimal; the scale is the column's.
    Decimal(i128),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00:00 (wall clock of the load time zone).
    DateTime(i64),
    Str(Box<str>),
    Json(Box<str>),
}

/// Why a value did not convert. The split matters: `Invalid` becomes NULL when `strict_mode` is off, the others
/// always filter the row (spec §6 strict_mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvError {
    /// Not a literal of the type (strict on: filtered; off: NULL).
    Invalid,
    /// Valid literal but outside the type (decimal precision): always filtered.
    OutOfRange,
    /// String longer than the declared byte length: always filtered.
    TooLong { max: u32, actual: usize },
}

/// A JSON value as it appears in the load body, borrowed where possible.
#[derive(Debug, Clone)]
pub enum JsonCell<'a> {
    Null,
    Bool(bool),
    /// A JSON number, exactly as written.
    Number(&'a str),
    /// A JSON string, unescaped.
    Str(std::borrow::Cow<'a, str>),
    /// An object or array, raw text.
    Nested(&'a str),
}

impl JsonCell<'_> {
    /// The text Doris's JSON reader hands to the cast for non-JSON columns.
    pub fn as_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            JsonCell::Null => None,
            JsonCell::Bool(b) => Some(if *b { "true".into() } else { "false".into() }),
            JsonCell::Number(n) => Some((*n).into()),
            JsonCell::Str(s) => Some(std::borrow::Cow::Borrowed(s.as_ref())),
            JsonCell::Nested(raw) => Some((*raw).into()),
        }
    }
}

/// Time-zone context of one load (`timezone` header): offsets in input literals are converted into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadTz {
    /// Offset of the load time zone from UTC, in seconds.
    pub offset_secs: i32,
}

/// Parses a time-zone name as accepted in the `timezone` header and in literals: `+08:00`, `-0530`, `Z`, `UTC`,
/// and a few fixed-offset IANA names. Returns the offset in seconds.
pub fn parse_tz(s: &str) -> Option<i32> {
    let s = s.trim();
    match s {
        "Z" | "z" | "UTC" | "utc" | "Etc/UTC" | "GMT" | "UCT" | "Universal" => return Some(0),
        "Asia/Shanghai" | "Asia/Hong_Kong" | "Asia/Singapore" | "Asia/Taipei" | "PRC" | "CST" => {
            return Some(8 * 3600)
        }
        "Asia/Tokyo" | "Asia/Seoul" => return Some(9 * 3600),
        "Asia/Kolkata" | "Asia/Calcutta" => return Some(5 * 3600 + 1800),
        _ => {}
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    if !rest.is_ascii() {
        return None;
    }
    let (h, m) = if let Some((h, m)) = rest.split_once(':') {
        (h, m)
    } else if rest.len() == 4 {
        rest.split_at(2)
    } else {
        (rest, "0")
    };
    let h: i32 = parse_digits(h)?;
    let m: i32 = parse_digits(m)?;
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses one input literal into a value of `ty`. `None` input is SQL NULL.
pub fn parse_text(ty: &ColType, s: &str, tz: LoadTz) -> Result<Value, ConvError> {
    match ty {
        ColType::Char(n) | ColType::Varchar(n) => {
            if s.len() > *n as usize {
                Err(ConvError::TooLong {
                    max: *n,
                    actual: s.len(),
                })
            } else {
                Ok(Value::Str(s.into()))
            }
        }
        ColType::String => Ok(Value::Str(s.into())),
        ColType::Json => {
            let min = minify_json(s).ok_or(ConvError::Invalid)?;
            Ok(Value::Json(min.into()))
        }
        ColType::Boolean => {
            let t = s.trim();
            if t.eq_ignore_ascii_case("true") || t == "1" {
                Ok(Value::Bool(true))
            } else if t.eq_ignore_ascii_case("false") || t == "0" {
                Ok(Value::Bool(false))
            } else {
                Err(ConvError::Invalid)
            }
        }
        ColType::TinyInt
        | ColType::SmallInt
        | ColType::Int
        | ColType::BigInt
        | ColType::LargeInt => {
            let t = s.trim();
            let t = t.strip_prefix('+').unwrap_or(t);
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConvError::Invalid);
            }
            let v: i128 = t.parse().map_err(|_| ConvError::Invalid)?;
            let (lo, hi) = ty.int_range().ok_or(ConvError::Invalid)?;
            if v < lo || v > hi {
                return Err(ConvError::Invalid);
            }
            Ok(Value::Int(v))
        }
        ColType::Float | ColType::Double => {
            let t = s.trim();
            let v: f64 = t.parse().map_err(|_| ConvError::Invalid)?;
            if !v.is_finite() {
                return Err(ConvError::Invalid);
            }
            if matches!(ty, ColType::Float) {
                Ok(Value::Float(F64(v as f32 as f64)))
            } else {
                Ok(Value::Float(F64(v)))
            }
        }
        ColType::Decimal { precision, scale } => {
            parse_decimal(s.trim(), *precision, *scale).map(Value::Decimal)
        }
        ColType::Date => {
            let (days, _) =
                parse_datetime_parts(s.trim(), 0, tz, true).ok_or(ConvError::Invalid)?;
            Ok(Value::Date(days))
        }
        ColType::DateTime { precision } => {
            let (days, micros) =
                parse_datetime_parts(s.trim(), *precision, tz, false).ok_or(ConvError::Invalid)?;
            Ok(Value::DateTime(days as i64 * 86_400_000_000 + micros))
        }
    }
}

/// Converts a JSON cell into a value of `ty` (JSON load). NULL for a JSON null.
pub fn parse_json_cell(ty: &ColType, cell: &JsonCell<'_>, tz: LoadTz) -> Result<Value, ConvError> {
    match (ty, cell) {
        (_, JsonCell::Null) => Ok(Value::Null),
        (ColType::Json, JsonCell::Nested(raw)) | (ColType::Json, JsonCell::Number(raw)) => Ok(
            Value::Json(minify_json(raw).ok_or(ConvError::Invalid)?.into()),
        ),
        (ColType::Json, JsonCell::Bool(b)) => {
            Ok(Value::Json(if *b { "true".into() } else { "false".into() }))
        }
        (ColType::Json, JsonCell::Str(s)) => parse_text(ty, s, tz),
        (ColType::Boolean, JsonCell::Bool(b)) => Ok(Value::Bool(*b)),
        (_, other) => match other.as_text() {
            Some(text) => parse_text(ty, &text, tz),
            None => Ok(Value::Null),
        },
    }
}

const POW10: [i128; 39] = {
    let mut p = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// Rewrites `1.5e3` / `15E-2` as plain decimal text (JSON numbers may use exponents).
fn expand_exponent(s: &str) -> Option<String> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    let (mant, exp) = s.split_once(['e', 'E'])?;
    let exp: i32 = exp.parse().ok()?;
    if exp.abs() > 60 {
        return None;
    }
    let (sign, mant) = match mant.as_bytes().first() {
        Some(b'-') => ("-", &mant[1..]),
        Some(b'+') => ("", &mant[1..]),
        _ => ("", mant),
    };
    let (i, f) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{i}{f}");
    let point = i.len() as i32 + exp;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    Some(format!("{sign}{text}"))
}

fn parse_decimal(s: &str, precision: u8, scale: u8) -> Result<i128, ConvError> {
    if s.contains(['e', 'E']) {
        let plain = expand_exponent(s).ok_or(ConvError::Invalid)?;
        return parse_decimal(&plain, precision, scale);
    }
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ConvError::Invalid);
    }
    let int_part = int_part.trim_start_matches('0');
    let max_int_digits = (precision - scale) as usize;
    if int_part.len() > max_int_digits {
        return Err(ConvError::OutOfRange);
    }
    let mut v: i128 = 0;
    for b in int_part.bytes() {
        v = v * 10 + (b - b'0') as i128;
    }
    let scale = scale as usize;
    let fb = frac_part.as_bytes();
    for i in 0..scale {
        let d = fb.get(i).map(|b| (b - b'0') as i128).unwrap_or(0);
        v = v * 10 + d;
    }
    // Extra fraction digits are rounded half away from zero, like a Doris cast.
    if let Some(b) = fb.get(scale) {
        if *b >= b'5' {
            v += 1;
        }
    }
    if v >= POW10[precision as usize] {
        return Err(ConvError::OutOfRange);
    }
    Ok(if neg { -v } else { v })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses `YYYY-MM-DD[( |T|:)HH:MM[:SS[.f+]]][offset]` or `YYYYMMDD[HHMMSS]` into (days, micros of day) in the load
/// time zone, fractions rounded to `precision` digits (with carry). For DATE the time part is dropped.
fn parse_datetime_parts(s: &str, precision: u8, tz: LoadTz, date_only: bool) -> Option<(i32, i64)> {
    let b = s.as_bytes();
    let (y, m, d, rest): (i64, u32, u32, &str) =
        if b.len() >= 8 && b[..8].iter().all(u8::is_ascii_digit) {
            let y = s[0..4].parse().ok()?;
            let m = s[4..6].parse().ok()?;
            let d = s[6..8].parse().ok()?;
            (y, m, d, &s[8..])
        } else {
            let mut parts = s.splitn(3, '-');
            let y = parts.next()?;
            let m = parts.next()?;
            let tail = parts.next()?;
            let dlen = tail.bytes().take_while(u8::is_ascii_digit).count();
            if y.len() != 4 || m.is_empty() || m.len() > 2 || dlen == 0 || dlen > 2 {
                return None;
            }
            (
                parse_digits(y)?,
                parse_digits(m)?,
                parse_digits(&tail[..dlen])?,
                &tail[dlen..],
            )
        };
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || !(0..=9999).contains(&y) {
        return None;
    }
    let mut days = days_from_civil(y, m, d);
    let mut micros: i64 = 0;
    let mut rest = rest;
    // `2023-07-20:05:48:31` is read like `2023-07-20 05:48:31` (apache/doris test_csv_with_enclose_and_escape).
    if let Some(r) = rest.strip_prefix(['T', ' ', ':']) {
        rest = r;
        let hb = rest.as_bytes();
        let compact = hb.len() >= 6 && hb[..6].iter().all(u8::is_ascii_digit);
        let (hh, mm, ss, after) = if compact {
            (&rest[0..2], &rest[2..4], &rest[4..6], &rest[6..])
        } else {
            let hlen = rest.bytes().take_while(u8::is_ascii_digit).count();
            let hh = &rest[..hlen];
            let r = rest[hlen..].strip_prefix(':')?;
            let mlen = r.bytes().take_while(u8::is_ascii_digit).count();
            let mm = &r[..mlen];
            let r = &r[mlen..];
            if let Some(r) = r.strip_prefix(':') {
                let slen = r.bytes().take_while(u8::is_ascii_digit).count();
                (hh, mm, &r[..slen], &r[slen..])
            } else {
                (hh, mm, "0", r)
            }
        };
        let (h, mi, se): (i64, i64, i64) =
            (parse_digits(hh)?, parse_digits(mm)?, parse_digits(ss)?);
        if hh.len() > 2 || mm.len() > 2 || ss.len() > 2 || h > 23 || mi > 59 || se > 59 {
            return None;
        }
        micros = (h * 3600 + mi * 60 + se) * 1_000_000;
        rest = after;
        if let Some(r) = rest.strip_prefix('.') {
            let flen = r.bytes().take_while(u8::is_ascii_digit).count();
            let frac = &r.as_bytes()[..flen];
            let p = precision as usize;
            let mut v: i64 = 0;
            for i in 0..p {
                v = v * 10 + frac.get(i).map(|b| (b - b'0') as i64).unwrap_or(0);
            }
            if frac.get(p).is_some_and(|b| *b >= b'5') {
                v += 1;
            }
            micros += v * 10i64.pow(6 - precision as u32);
            rest = &r[flen..];
        }
        let tail = rest.trim_start();
        if !tail.is_empty() {
            let off = parse_tz(tail)?;
            micros += (tz.offset_secs as i64 - off as i64) * 1_000_000;
        }
    } else if !rest.is_empty() {
        return None;
    }
    days += micros.div_euclid(86_400_000_000);
    micros = micros.rem_euclid(86_400_000_000);
    if date_only {
        micros = 0;
    }
    Some((i32::try_from(days).ok()?, micros))
}

/// Minifies JSON text (whitespace outside strings removed, key order kept); `None` if it is not valid JSON.
pub fn minify_json(s: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(s).ok()?;
    let mut out = String::with_capacity(s.len());
    let mut in_str = false;
    let mut escaped = false;
    for c in s.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    Some(out)
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Canonical text of the value (`None` for NULL); `parse_text(ty, text)` gives the same value back.
    pub fn to_text(&self, ty: &ColType) -> Option<String> {
        let mut s = String::new();
        match self {
            Value::Null => return None,
            Value::Bool(b) => s.push_str(if *b { "1" } else { "0" }),
            Value::Int(i) => {
                let _ = write!(s, "{i}");
            }
            Value::Float(f) => {
                if matches!(ty, ColType::Float) {
                    let _ = write!(s, "{}", f.0 as f32);
                } else {
                    let _ = write!(s, "{}", f.0);
                }
            }
            Value::Decimal(v) => {
                let scale = match ty {
                    ColType::Decimal { scale, .. } => *scale as u32,
                    _ => 0,
                };
                if *v < 0 {
                    s.push('-');
                }
                let a = v.unsigned_abs();
                let p = 10u128.pow(scale);
                let _ = write!(s, "{}", a / p);
                if scale > 0 {
                    let _ = write!(s, ".{:0width$}", a % p, width = scale as usize);
                }
            }
            Value::Date(d) => {
                let (y, m, dd) = civil_from_days(*d as i64);
                let _ = write!(s, "{y:04}-{m:02}-{dd:02}");
            }
            Value::DateTime(us) => {
                let days = us.div_euclid(86_400_000_000);
                let rem = us.rem_euclid(86_400_000_000);
                let (y, m, d) = civil_from_days(days);
                let secs = rem / 1_000_000;
                let _ = write!(
                    s,
                    "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
                    secs / 3600,
                    secs / 60 % 60,
                    secs % 60
                );
                let p = match ty {
                    ColType::DateTime { precision } => *precision as u32,
                    _ => 6,
                };
                if p > 0 {
                    let frac = (rem % 1_000_000) / 10i64.pow(6 - p);
                    let _ = write!(s, ".{:0width$}", frac, width = p as usize);
                }
            }
            Value::Str(v) | Value::Json(v) => s.push_str(v),
        }
        Some(s)
    }

    /// Appends the value as JSON for the rows endpoint: integers and floats as numbers (LARGEINT beyond the f64-safe
    /// range as a string), booleans as `true`/`false`, DECIMAL/DATE/DATETIME as their canonical strings, JSON
    /// columns as nested JSON.
    pub fn write_json(&self, ty: &ColType, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                if matches!(ty, ColType::LargeInt) && i.unsigned_abs() > (1u128 << 53) {
                    let _ = write!(out, "\"{i}\"");
                } else {
                    let _ = write!(out, "{i}");
                }
            }
            // A DOUBLE in shortest round-trip form with an exponent for large magnitudes (`{}` would print 309
            // digits for 1.7976931348623157e308, which JSON readers may overflow); NaN/inf are not JSON numbers.
            Value::Float(f) if matches!(ty, ColType::Double) && f.0.is_finite() => {
                let _ = write!(out, "{:?}", f.0);
            }
            Value::Float(_) => match self.to_text(ty) {
                Some(t) if t.parse::<f64>().is_ok_and(f64::is_finite) => out.push_str(&t),
                Some(t) => write_json_string(&t, out),
                None => out.push_str("null"),
            },
            Value::Json(j) => out.push_str(j),
            Value::Str(s) => write_json_string(s, out),
            other => {
                if let Some(t) = other.to_text(ty) {
                    write_json_string(&t, out);
                }
            }
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: LoadTz = LoadTz { offset_secs: 0 };

    #[test]
    fn decimal_rounds_and_checks_precision() {
        let ty = ColType::Decimal {
            precision: 12,
            scale: 2,
        };
        assert_eq!(parse_text(&ty, "12.345", UTC), Ok(Value::Decimal(1235)));
        assert_eq!(parse_text(&ty, "-0.5", UTC), Ok(Value::Decimal(-50)));
        assert_eq!(parse_text(&ty, "abc", UTC), Err(ConvError::Invalid));
        let small = ColType::Decimal {
            precision: 1,
            scale: 0,
        };
        assert_eq!(parse_text(&small, "10", UTC), Err(ConvError::OutOfRange));
        assert_eq!(Value::Decimal(-5).to_text(&ty).as_deref(), Some("-0.05"));
        assert_eq!(parse_text(&ty, "1.5e3", UTC), Ok(Value::Decimal(150_000)));
        assert_eq!(parse_text(&ty, "125E-4", UTC), Ok(Value::Decimal(1)));
        assert_eq!(parse_text(&ty, "aé1e-1", UTC), Err(ConvError::Invalid));
        assert_eq!(parse_tz("+a€"), None);
        let f = parse_text(&ColType::Float, "0.1", UTC).unwrap();
        assert_eq!(f.to_text(&ColType::Float).as_deref(), Some("0.1"));
    }

    #[test]
    fn datetime_fractions_round_with_carry_and_offsets_convert() {
        let ty = ColType::DateTime { precision: 3 };
        let v = parse_text(&ty, "2024-12-31 23:59:59.9996", UTC).unwrap();
        assert_eq!(v.to_text(&ty).as_deref(), Some("2025-01-01 00:00:00.000"));
        let v = parse_text(
            &ty,
            "2024-01-01T08:00:00Z",
            LoadTz {
                offset_secs: 8 * 3600,
            },
        )
        .unwrap();
        assert_eq!(v.to_text(&ty).as_deref(), Some("2024-01-01 16:00:00.000"));
        assert_eq!(
            parse_text(&ty, "2024-02-30 00:00:00", UTC),
            Err(ConvError::Invalid)
        );
        let d = parse_text(&ColType::Date, "20240229", UTC).unwrap();
        assert_eq!(d.to_text(&ColType::Date).as_deref(), Some("2024-02-29"));
    }

    #[test]
    fn ints_check_range_and_strings_check_bytes() {
        assert_eq!(
            parse_text(&ColType::TinyInt, "128", UTC),
            Err(ConvError::Invalid)
        );
        assert_eq!(
            parse_text(&ColType::BigInt, "-42", UTC),
            Ok(Value::Int(-42))
        );
        assert!(matches!(
            parse_text(&ColType::Varchar(3), "äbc", UTC),
            Err(ConvError::TooLong { max: 3, actual: 4 })
        ));
        assert_eq!(
            minify_json("{ \"b\" : [1, 2], \"a\": \" x \" }").as_deref(),
            Some("{\"b\":[1,2],\"a\":\" x \"}")
        );
    }
}
