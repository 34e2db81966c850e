//! Compare what Doris holds with what the merge query says it should hold.

use std::collections::BTreeMap;

use serde_json::Value;
use tokio_postgres::GenericClient;

/// The outcome of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Keys whose Doris row equals the merge query's row.
    pub matched: usize,
    /// Keys the merge query returns that Doris lacks.
    pub missing: Vec<String>,
    /// Keys present in both whose rows differ (first differing column).
    pub stale: Vec<String>,
    /// Keys Doris has that the merge query does not return (should have been deleted).
    pub extra: Vec<String>,
}

impl VerifyReport {
    /// True when Doris holds exactly the merge query's rows.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.stale.is_empty() && self.extra.is_empty()
    }

    /// `verified: N rows match, M missing, S stale, E extra`.
    pub fn line(&self) -> String {
        format!(
            "verified: {} rows match, {} missing, {} stale, {} extra",
            self.matched,
            self.missing.len(),
            self.stale.len(),
            self.extra.len()
        )
    }
}

/// Expected rows: the merge query over `ids`, every column as text (PostgreSQL's own rendering),
/// keyed by the key column's text.
pub async fn expected_rows(
    client: &impl GenericClient,
    merge_sql: &str,
    key_column: &str,
    ids: &[i64],
) -> Result<BTreeMap<String, BTreeMap<String, Option<String>>>, tokio_postgres::Error> {
    let body = merge_sql.trim_end().trim_end_matches(';');
    // Row by row: the key, then each column as text.
    let sql = format!("SELECT to_jsonb(m) ->> $2, to_jsonb(m)::text FROM (\n{body}\n) AS m");
    let rows = client.query(&sql, &[&ids, &key_column]).await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let key: Option<String> = row.try_get(0)?;
        let json: String = row.try_get(1)?;
        let Some(key) = key else { continue };
        let cols = columns_as_text(&json);
        out.insert(key, cols);
    }
    Ok(out)
}

/// Splits a JSON object into its members, each value as text (strings unquoted, numbers as
/// written, null as None). Numbers keep their exact text because `to_jsonb` output is parsed with
/// `RawValue`.
fn columns_as_text(json: &str) -> BTreeMap<String, Option<String>> {
    let parsed: BTreeMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(json).unwrap_or_default();
    parsed
        .into_iter()
        .map(|(k, v)| {
            let raw = v.get();
            let text = match serde_json::from_str::<Value>(raw) {
                Ok(Value::Null) => None,
                Ok(Value::String(s)) => Some(s),
                Ok(Value::Bool(b)) => Some(b.to_string()),
                _ => Some(raw.to_string()),
            };
            (k, text)
        })
        .collect()
}

/// True when two renderings of one value are the same value: equal text, or equal numbers
/// (`0` and `0.00`; `12.5` and `12.50`).
fn same(expected: &Option<String>, actual: &Option<String>) -> bool {
    match (expected, actual) {
        (None, None) => true,
        (Some(e), Some(a)) if e == a => true,
        (Some(e), Some(a)) => match (e.parse::<f64>(), a.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            _ => false,
        },
        _ => false,
    }
}

/// Compares Doris rows (as doris-sim's rows endpoint returns them: an array of objects) with the
/// expected rows. Columns absent from the expected rows (the sequence column) are not compared.
pub fn compare(
    expected: &BTreeMap<String, BTreeMap<String, Option<String>>>,
    doris_rows: &[Value],
    key_column: &str,
) -> VerifyReport {
    let mut report = VerifyReport::default();
    let mut actual: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
    for row in doris_rows {
        let text = row.to_string();
        let cols = columns_as_text(&text);
        let Some(Some(key)) = cols.get(key_column).cloned() else {
            continue;
        };
        actual.insert(key, cols);
    }
    for (key, exp) in expected {
        match actual.get(key) {
            None => report.missing.push(key.clone()),
            Some(act) => {
                let diff = exp
                    .iter()
                    .find(|(col, v)| !same(v, act.get(*col).unwrap_or(&None)));
                match diff {
                    None => report.matched += 1,
                    Some((col, v)) => report.stale.push(format!(
                        "{key}: {col} expected {v:?}, Doris has {:?}",
                        act.get(col).cloned().flatten()
                    )),
                }
            }
        }
    }
    for key in actual.keys() {
        if !expected.contains_key(key) {
            report.extra.push(key.clone());
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_nulls_and_extra_rows() {
        let mut expected = BTreeMap::new();
        expected.insert(
            "1".to_string(),
            columns_as_text(r#"{"job_id": 1, "total": 0, "title": "a", "d": null}"#),
        );
        expected.insert(
            "2".to_string(),
            columns_as_text(r#"{"job_id": 2, "total": 12.50, "title": "b", "d": null}"#),
        );
        let rows = vec![
            serde_json::json!({"job_id": 1, "total": "0.00", "title": "a", "d": null, "source_version": 9}),
            serde_json::json!({"job_id": 2, "total": "12.50", "title": "B", "d": null}),
            serde_json::json!({"job_id": 3, "total": "1.00", "title": "c", "d": null}),
        ];
        let r = compare(&expected, &rows, "job_id");
        assert_eq!(r.matched, 1);
        assert_eq!(r.stale.len(), 1, "{r:?}");
        assert!(r.stale[0].starts_with("2: title"));
        assert_eq!(r.extra, vec!["3".to_string()]);
        assert!(!r.is_ok());
        assert_eq!(
            r.line(),
            "verified: 1 rows match, 0 missing, 1 stale, 1 extra"
        );
    }
}
