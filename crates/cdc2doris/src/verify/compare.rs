//! Type-aware equality of one column: the merge query's value (a member of `to_jsonb(row)`, kept as raw JSON text so
//! no digit of a numeric is lost) against the text Doris returns over MySQL for a column of a known Doris type.
//!
//! The rules follow what a Stream Load of the same JSON would have stored: a DECIMAL holds the value rounded to its
//! scale (half away from zero), a DATETIME(p) the time rounded to p fractional digits, a BOOLEAN prints as 1/0,
//! FLOAT/DOUBLE are binary floats, JSON compares as a document (key order and spacing do not matter).

use serde_json::value::RawValue;

/// The Doris column types are read once, by the schema stage (`DESC` text to [`DorisType`]); comparison uses them.
pub use crate::schema::DorisType;

/// A merge-query value as text: strings unquoted, numbers and booleans as written, nested JSON raw; `None` is NULL.
pub fn json_text(raw: &RawValue) -> Option<String> {
    let s = raw.get().trim();
    match s.as_bytes().first() {
        Some(b'n') if s == "null" => None,
        Some(b'"') => serde_json::from_str::<String>(s).ok(),
        _ => Some(s.to_owned()),
    }
}

/// True when Doris's `doris` text holds the merge query's `pg` value in a column of type `ty`.
pub fn same(ty: &DorisType, pg: &RawValue, doris: Option<&str>) -> bool {
    let expected = json_text(pg);
    let (expected, actual) = match (expected, doris) {
        (None, None) => return true,
        (Some(e), Some(a)) => (e, a),
        _ => return false,
    };
    match ty {
        DorisType::Boolean => {
            bool_value(&expected).is_some() && bool_value(&expected) == bool_value(actual)
        }
        DorisType::Int(_) => {
            matches!((decimal(&expected, 0), decimal(actual, 0)), (Some(a), Some(b)) if a == b)
        }
        DorisType::Decimal { scale, .. } => {
            matches!((decimal(&expected, *scale), decimal(actual, *scale)), (Some(a), Some(b)) if a == b)
        }
        DorisType::Float => match (expected.parse::<f32>(), actual.parse::<f32>()) {
            (Ok(a), Ok(b)) => {
                a.total_cmp(&b).is_eq() || (a - b).abs() <= f32::EPSILON * a.abs().max(b.abs())
            }
            _ => expected == actual,
        },
        DorisType::Double => match (expected.parse::<f64>(), actual.parse::<f64>()) {
            (Ok(a), Ok(b)) => {
                a.total_cmp(&b).is_eq()
                    || (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs())
            }
            _ => expected == actual,
        },
        DorisType::Date => expected.get(..10).is_some_and(|d| d == actual.trim()),
        DorisType::DateTime { precision } => {
            matches!((datetime(&expected, *precision), datetime(actual, *precision)), (Some(a), Some(b)) if a == b)
        }
        DorisType::Json => {
            // The merge query may give a JSON column as a document or as text holding one.
            let doc = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
            let pg_doc = if pg.get().trim_start().starts_with('"') {
                doc(&expected)
            } else {
                doc(pg.get())
            };
            match (pg_doc, doc(actual)) {
                (Some(a), Some(b)) => a == b,
                _ => expected == actual,
            }
        }
        // CHAR, VARCHAR, STRING and anything else: compared as text.
        DorisType::Varchar(_) | DorisType::String | DorisType::Other(_) => expected == actual,
    }
}

fn bool_value(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// A decimal literal (`-12.345`, `1e3` not accepted) as an integer scaled to `scale` digits, rounded half away from
/// zero; `None` when it is not a decimal or does not fit.
pub fn decimal(s: &str, scale: u32) -> Option<i128> {
    let s = s.trim();
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut value: i128 = 0;
    for b in int.bytes() {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let frac = frac.as_bytes();
    for i in 0..scale as usize {
        let d = frac.get(i).map_or(0, |b| b - b'0');
        value = value.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    if frac.get(scale as usize).is_some_and(|b| *b >= b'5') {
        value = value.checked_add(1)?;
    }
    Some(if negative { -value } else { value })
}

/// `YYYY-MM-DD[ T]HH:MM:SS[.ffffff]` as (date and time text, microseconds rounded to `precision` digits); a carry
/// into the next second is applied to the seconds count.
fn datetime(s: &str, precision: u32) -> Option<(String, i64, u32)> {
    let s = s.trim().replacen('T', " ", 1);
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if whole.len() != 19 {
        return None;
    }
    let secs: i64 = whole.get(17..19)?.parse().ok()?;
    let mut micros: u32 = 0;
    for i in 0..6 {
        let d = frac
            .as_bytes()
            .get(i)
            .map_or(Some(0), |b| b.is_ascii_digit().then(|| b - b'0'))?;
        micros = micros * 10 + u32::from(d);
    }
    let unit = 10u32.pow(6 - precision);
    let mut rounded = (micros + unit / 2) / unit * unit;
    let mut secs = secs;
    if rounded >= 1_000_000 {
        rounded -= 1_000_000;
        secs += 1;
    }
    Some((whole[..17].to_owned(), secs, rounded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn decimals_by_value_at_the_column_scale() {
        let d = DorisType::Decimal {
            precision: 12,
            scale: 2,
        };
        assert!(same(&d, &raw("1.5"), Some("1.50")));
        assert!(same(&d, &raw("100"), Some("100.00")));
        assert!(same(&d, &raw("7.125"), Some("7.13")));
        assert!(same(&d, &raw("-7.125"), Some("-7.13")));
        assert!(!same(&d, &raw("1.5"), Some("1.51")));
        assert!(!same(&d, &raw("1.5"), None));
        assert!(same(&d, &raw("null"), None));
        assert!(same(&DorisType::Int(64), &raw("42"), Some("42")));
        assert!(!same(&DorisType::Int(64), &raw("42"), Some("43")));
    }

    #[test]
    fn datetimes_at_the_column_precision() {
        let p3 = DorisType::DateTime { precision: 3 };
        assert!(same(
            &p3,
            &raw("\"2024-01-02 03:04:05.123456\""),
            Some("2024-01-02 03:04:05.123")
        ));
        assert!(same(
            &p3,
            &raw("\"2024-01-02 03:04:05.9996\""),
            Some("2024-01-02 03:04:06.000")
        ));
        assert!(!same(
            &p3,
            &raw("\"2024-01-02 03:04:05.123\""),
            Some("2024-01-02 03:04:05.124")
        ));
        let p6 = DorisType::DateTime { precision: 6 };
        assert!(same(
            &p6,
            &raw("\"2024-01-02T03:04:05\""),
            Some("2024-01-02 03:04:05.000000")
        ));
        assert!(same(
            &DorisType::Date,
            &raw("\"2024-05-06\""),
            Some("2024-05-06")
        ));
    }

    #[test]
    fn booleans_json_text_and_nulls() {
        assert!(same(&DorisType::Boolean, &raw("true"), Some("1")));
        assert!(same(&DorisType::Boolean, &raw("false"), Some("0")));
        assert!(!same(&DorisType::Boolean, &raw("true"), Some("0")));
        assert!(same(
            &DorisType::Json,
            &raw(r#"{"b": 2, "a": [1]}"#),
            Some(r#"{"a":[1],"b":2}"#)
        ));
        assert!(same(
            &DorisType::Json,
            &raw(r#""{\"a\":1}""#),
            Some(r#"{"a":1}"#)
        ));
        assert!(!same(
            &DorisType::Json,
            &raw(r#"{"a": 1}"#),
            Some(r#"{"a":2}"#)
        ));
        assert!(same(&DorisType::String, &raw("\"héllo\""), Some("héllo")));
        assert!(!same(&DorisType::String, &raw("\"a\""), Some("a ")));
        assert!(
            !same(&DorisType::String, &raw("\"\""), None),
            "empty string is not NULL"
        );
        assert!(same(&DorisType::Double, &raw("0.1"), Some("0.1")));
    }
}
