//! One Stream Load: request headers → validated parameters (spec §3), then body → prepared row operations with the
//! row counters and the rejected-row log (spec §6). Nothing here touches shared state; `state.rs` commits the result.

use std::borrow::Cow;
use std::collections::HashMap;

use hyper::HeaderMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::ddl::{KeyModel, Sequence, TableDef};
use crate::expr::{self, EVal, Expr, Scope};
use crate::table::RowOp;
use crate::value::{
    parse_json_cell, parse_text, parse_tz, ColType, ConvError, JsonCell, LoadTz, Value,
};
use crate::version::DorisVersion;

pub const DELETE_SIGN: &str = "__DORIS_DELETE_SIGN__";
pub const SEQUENCE_COL: &str = "__DORIS_SEQUENCE_COL__";

/// `^[-_A-Za-z0-9:]{1,128}$` (FE `label_regex_length`).
pub fn label_is_valid(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 128
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV; `header_lines` are skipped (`csv_with_names` 1, `csv_with_names_and_types` 2).
    Csv {
        header_lines: usize,
    },
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeType {
    Append,
    Delete,
    Merge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCommit {
    Sync,
    Async,
}

/// One entry of the `columns` header.
#[derive(Debug, Clone)]
pub enum ColumnSpec {
    /// A source field (CSV position / JSON key) mapped to the column of the same name, or a temporary field.
    Field(String),
    /// `name=expr`: a derived column.
    Derived(String, Expr),
}

/// Validated request parameters of one load.
#[derive(Debug, Clone)]
pub struct LoadParams {
    pub label: Option<String>,
    pub comment: String,
    pub format: Format,
    pub column_separator: Vec<u8>,
    pub line_delimiter: Vec<u8>,
    /// CSV `enclose` byte (fields may contain separators), with optional `escape` byte.
    pub enclose: Option<u8>,
    pub escape: Option<u8>,
    pub trim_double_quotes: bool,
    /// CSV `skip_lines`: leading lines ignored.
    pub skip_lines: usize,
    pub columns: Option<Vec<ColumnSpec>>,
    pub where_: Option<Expr>,
    pub max_filter_ratio: f64,
    pub strict_mode: bool,
    pub timeout_secs: u64,
    pub tz: LoadTz,
    pub read_json_by_line: bool,
    pub strip_outer_array: bool,
    /// `num_as_string`: JSON numbers reach DECIMAL columns as their text; otherwise through a double.
    pub num_as_string: bool,
    pub jsonpaths: Option<Vec<Vec<PathSeg>>>,
    pub json_root: Option<Vec<PathSeg>>,
    pub merge_type: MergeType,
    pub delete: Option<Expr>,
    pub sequence_col: Option<String>,
    pub hidden_columns: Option<Vec<String>>,
    pub two_phase_commit: bool,
    pub group_commit: Option<GroupCommit>,
    pub partial_columns: bool,
    /// `partial_update_new_key_behavior: ERROR`.
    pub partial_new_key_error: bool,
    /// The release whose behaviour differences apply (`--doris-version`).
    pub version: DorisVersion,
}

/// A request header's value; an empty value counts as absent, as the BE tests `header(...).empty()` throughout.
fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn bool_header(h: &HeaderMap, name: &str) -> bool {
    header(h, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `\xNN...` → bytes (FE `Separator.convertSeparator`); anything else is taken literally.
fn separator(s: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        if hex.is_empty() || hex.len() % 2 != 0 {
            return Err(format!("[INVALID_ARGUMENT]Invalid separator: {s}"));
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&hex[i..i + 2], 16)
                    .map_err(|_| format!("[INVALID_ARGUMENT]Invalid separator: {s}"))
            })
            .collect()
    } else if s.is_empty() {
        Err("[INVALID_ARGUMENT]Invalid separator: empty".into())
    } else {
        Ok(unescape_separator(s).into_bytes())
    }
}

/// FE `Separator.unescape`: `\\`, `\'`, `\"`, `\r`, `\t` and `\n` become the character; any other backslash pair
/// and a trailing backslash stay as written (so `|@|\n` is `|@|` and a newline: apache/doris
/// test_csv_special_seperator.groovy).
fn unescape_separator(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('\\'),
            Some('\\') => out.push('\\'),
            Some('\'') => out.push('\''),
            Some('"') => out.push('"'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

fn analysis(msg: impl AsRef<str>) -> String {
    format!(
        "[ANALYSIS_ERROR]errCode = 2, detailMessage = {}",
        msg.as_ref()
    )
}

/// Splits a header list on commas outside quotes and parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out
}

fn unquote_ident(s: &str) -> String {
    s.trim().trim_matches('`').to_string()
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// Parses a Doris JSON path: `$`, then `.name`, `."quoted.name"` (a key holding a dot), `['name']` and `[N]`
/// steps, e.g. `$.city[2]`, `$."a.b".c` (BE `JsonFunctions::parse_json_paths`).
fn json_path(p: &str) -> Result<Vec<PathSeg>, String> {
    let p = p.trim();
    let bad = || format!("[INVALID_ARGUMENT]Invalid json path: {p}");
    let rest = p.strip_prefix('$').ok_or_else(bad)?;
    let b = rest.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                i += 1;
                if b.get(i) == Some(&b'"') {
                    let end = rest[i + 1..].find('"').ok_or_else(bad)?;
                    out.push(PathSeg::Key(rest[i + 1..i + 1 + end].to_string()));
                    i += end + 2;
                } else {
                    let len = rest[i..].find(['.', '[']).unwrap_or(rest.len() - i);
                    if len == 0 {
                        return Err(bad());
                    }
                    out.push(PathSeg::Key(rest[i..i + len].to_string()));
                    i += len;
                }
            }
            b'[' => {
                let end = rest[i..].find(']').ok_or_else(bad)?;
                let inner = rest[i + 1..i + end].trim();
                let quoted = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
                out.push(match quoted {
                    Some(k) => PathSeg::Key(k.to_string()),
                    None => PathSeg::Index(inner.parse().map_err(|_| bad())?),
                });
                i += end + 1;
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// Validates the request headers. `Err` is the `Message` of a `Fail` reply sent before any transaction begins.
pub fn parse_headers(
    h: &HeaderMap,
    default_tz: LoadTz,
    version: DorisVersion,
) -> Result<LoadParams, String> {
    let label = header(h, "label")
        .filter(|l| !l.is_empty())
        .map(str::to_string);
    let format = match header(h, "format").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("csv") => Format::Csv { header_lines: 0 },
        Some("csv_with_names") => Format::Csv { header_lines: 1 },
        Some("csv_with_names_and_types") => Format::Csv { header_lines: 2 },
        Some("json") => Format::Json,
        Some(other @ ("parquet" | "orc" | "arrow" | "hive_text")) => {
            return Err(format!(
            "[NOT_IMPLEMENTED_ERROR]doris-sim does not emulate format={other} (csv and json only)"
        ))
        }
        Some(_) => {
            return Err(format!(
                "[DATA_FILE_TYPE_ERROR]unknown data format, format={}",
                header(h, "format").unwrap_or_default()
            ))
        }
    };
    if let Some(ct) = header(h, "compress_type").filter(|c| !c.is_empty()) {
        if format == Format::Json {
            return Err("[INVALID_ARGUMENT]compress data of JSON format is not supported.".into());
        }
        return Err(format!(
            "[NOT_IMPLEMENTED_ERROR]doris-sim does not emulate compress_type={ct}"
        ));
    }
    let column_separator = match header(h, "column_separator") {
        Some(s) => separator(s)?,
        None => b"\t".to_vec(),
    };
    let line_delimiter = match header(h, "line_delimiter") {
        Some(s) => separator(s)?,
        None => b"\n".to_vec(),
    };
    let single_byte = |name: &str| -> Result<Option<u8>, String> {
        match header(h, name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) if v.len() == 1 => Ok(Some(v.as_bytes()[0])),
            Some(v) => Err(format!(
                "[INVALID_ARGUMENT]{name} only support single char, got {v}"
            )),
        }
    };
    // BE `std::stoi` of the header: the messages of test_stream_load.groovy; any int is accepted (FE caps it).
    if let Some(v) = header(h, "send_batch_parallelism") {
        let t = v.trim_start();
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        let n = digits.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err("[INVALID_ARGUMENT]send_batch_parallelism must be an integer, stoi".into());
        }
        let lead = &t[..t.len() - digits.len() + n];
        if lead.parse::<i32>().is_err() {
            return Err("[INVALID_ARGUMENT]send_batch_parallelism out of range, stoi".into());
        }
    }
    let enclose = single_byte("enclose")?;
    let escape = single_byte("escape")?;
    let skip_lines = match header(h, "skip_lines") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("[INVALID_ARGUMENT]Invalid skip_lines format, {v}"))?,
    };
    let columns = match header(h, "columns").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let mut v = Vec::new();
            for item in split_top_level(c) {
                match item.split_once('=') {
                    Some((name, e)) if !e.starts_with('=') => {
                        let e = expr::parse(e)
                            .map_err(|m| analysis(format!("doris-sim columns: {m}")))?;
                        v.push(ColumnSpec::Derived(unquote_ident(name), e));
                    }
                    _ => {
                        if item.is_empty() {
                            return Err(analysis(format!("Invalid columns: {c}")));
                        }
                        v.push(ColumnSpec::Field(unquote_ident(item)));
                    }
                }
            }
            Some(v)
        }
    };
    let where_ = match header(h, "where").filter(|w| !w.is_empty()) {
        Some(w) => Some(expr::parse(w).map_err(|m| analysis(format!("doris-sim where: {m}")))?),
        None => None,
    };
    let max_filter_ratio = match header(h, "max_filter_ratio") {
        Some(r) => match r.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => v,
            _ => {
                return Err(analysis(format!(
                    "max_filter_ratio must be between 0 and 1, got {r}"
                )))
            }
        },
        None => 0.0,
    };
    let strict_mode = match header(h, "strict_mode") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err("[INVALID_ARGUMENT]Invalid strict mode format. Must be bool type".into())
        }
    };
    let timeout_secs = match header(h, "timeout") {
        None => 600,
        Some(t) => match t.parse::<i64>() {
            Ok(v) if (1..=259_200).contains(&v) => v as u64,
            Ok(v) => {
                return Err(analysis(format!(
                    "timeout must be between 1 and 259200, got {v}"
                )))
            }
            Err(_) => return Err("[INVALID_ARGUMENT]Invalid timeout format, stoi".into()),
        },
    };
    let tz = match header(h, "timezone").or_else(|| header(h, "time_zone")) {
        None => default_tz,
        Some(z) => LoadTz {
            offset_secs: parse_tz(z)
                .ok_or_else(|| analysis(format!("Unknown or incorrect time zone: '{z}'")))?,
        },
    };
    let merge_type = match header(h, "merge_type") {
        None => MergeType::Append,
        Some(m) if m.eq_ignore_ascii_case("APPEND") => MergeType::Append,
        Some(m) if m.eq_ignore_ascii_case("DELETE") => MergeType::Delete,
        Some(m) if m.eq_ignore_ascii_case("MERGE") => MergeType::Merge,
        Some(m) => return Err(format!("[INVALID_ARGUMENT]Invalid merge type {m}")),
    };
    let delete = match header(h, "delete").filter(|d| !d.is_empty()) {
        Some(d) => Some(expr::parse(d).map_err(|m| analysis(format!("doris-sim delete: {m}")))?),
        None => None,
    };
    match (merge_type, &delete) {
        (MergeType::Merge, None) => {
            return Err(analysis(
                "Excepted DELETE ON clause when merge type is MERGE.",
            ))
        }
        (MergeType::Append | MergeType::Delete, Some(_)) => {
            return Err(analysis(
                "Not support DELETE ON clause when merge type is not MERGE.",
            ))
        }
        _ => {}
    }
    if header(h, "partitions").is_some() && header(h, "temporary_partitions").is_some() {
        return Err(analysis(
            "Can not specify both partitions and temporary partitions",
        ));
    }
    let jsonpaths = match header(h, "jsonpaths").filter(|j| !j.is_empty()) {
        Some(j) => {
            let list: Vec<String> = serde_json::from_str(j)
                .map_err(|_| format!("[INVALID_ARGUMENT]Invalid json path: {j}"))?;
            Some(
                list.iter()
                    .map(|p| json_path(p))
                    .collect::<Result<_, _>>()?,
            )
        }
        None => None,
    };
    let json_root = match header(h, "json_root").filter(|j| !j.is_empty()) {
        Some(r) => Some(json_path(r)?),
        None => None,
    };
    let group_commit = match header(h, "group_commit")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("off_mode") => None,
        Some("sync_mode") => Some(GroupCommit::Sync),
        Some("async_mode") => Some(GroupCommit::Async),
        Some(_) => {
            return Err(
                "[INVALID_ARGUMENT]Header `group_commit` can only be `sync_mode`, `async_mode` or `off_mode`."
                    .into(),
            )
        }
    };
    // Exactly `true`, unlike the other booleans (spec §3).
    let two_phase_commit = header(h, "two_phase_commit") == Some("true");
    let partial_columns = bool_header(h, "partial_columns")
        || header(h, "unique_key_update_mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("UPDATE_FIXED_COLUMNS"));
    if header(h, "unique_key_update_mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("UPDATE_FLEXIBLE_COLUMNS"))
    {
        return Err(
            "[NOT_IMPLEMENTED_ERROR]doris-sim does not emulate UPDATE_FLEXIBLE_COLUMNS".into(),
        );
    }
    if group_commit.is_some() {
        if label.is_some() {
            return Err(analysis(
                "label and group_commit can't be set at the same time",
            ));
        }
        if two_phase_commit {
            return Err(analysis(
                "group commit can not be used with two phase commit",
            ));
        }
        if partial_columns {
            return Err(analysis(
                "group commit can not be used with partial column update",
            ));
        }
    }
    Ok(LoadParams {
        label,
        comment: header(h, "comment").unwrap_or_default().to_string(),
        format,
        column_separator,
        line_delimiter,
        enclose,
        escape,
        trim_double_quotes: bool_header(h, "trim_double_quotes"),
        skip_lines,
        columns,
        where_,
        max_filter_ratio,
        strict_mode,
        timeout_secs,
        tz,
        // From 3.1 the BE reads JSON line by line when neither header is given (version.rs).
        read_json_by_line: bool_header(h, "read_json_by_line")
            || (version.json_by_line_by_default()
                && header(h, "read_json_by_line").is_none()
                && header(h, "strip_outer_array").is_none()),
        strip_outer_array: bool_header(h, "strip_outer_array"),
        num_as_string: bool_header(h, "num_as_string"),
        jsonpaths,
        json_root,
        merge_type,
        delete,
        sequence_col: header(h, "function_column.sequence_col")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        hidden_columns: header(h, "hidden_columns")
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(unquote_ident).collect()),
        two_phase_commit,
        group_commit,
        partial_columns,
        partial_new_key_error: header(h, "partial_update_new_key_behavior")
            .is_some_and(|b| b.eq_ignore_ascii_case("ERROR")),
        version,
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary (a multi-byte character is
/// not split; whether Doris cuts the same way is not confirmed).
fn cut_to_bytes(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// How a table column gets its value.
#[derive(Debug, Clone)]
enum Target {
    Source(usize),
    Derived(Expr),
    /// Not mentioned: DEFAULT or NULL (or the stored value in a partial update).
    Absent,
}

#[derive(Debug, Clone)]
enum Special {
    None,
    Source(usize),
    Derived(Expr),
}

/// The column mapping of one load against one table.
#[derive(Debug)]
pub struct Plan<'a> {
    def: &'a TableDef,
    params: &'a LoadParams,
    /// Source fields in input order: CSV positions or JSON keys.
    sources: Vec<String>,
    index: HashMap<String, usize>,
    targets: Vec<Target>,
    delete_sign: Special,
    sequence: Special,
    present: Option<Box<[bool]>>,
}

impl<'a> Plan<'a> {
    /// Builds the mapping; `Err` is a load-level `Fail` message.
    pub fn new(def: &'a TableDef, params: &'a LoadParams) -> Result<Self, String> {
        let unique = def.model == KeyModel::Unique;
        if params.merge_type != MergeType::Append && !unique {
            return Err(analysis(
                "load by MERGE or DELETE is only supported in unique tables.",
            ));
        }
        // Without a plain field name in `columns` (none at all, or only `c=expr` entries) the source fields are the
        // table's columns, in order (FE `Load.initColumns`: no file field names specified).
        let names_fields = params
            .columns
            .as_ref()
            .is_some_and(|c| c.iter().any(|s| matches!(s, ColumnSpec::Field(_))));
        let specs: Vec<ColumnSpec> = match &params.columns {
            Some(c) if names_fields => c.clone(),
            Some(c) => def
                .columns
                .iter()
                .map(|col| ColumnSpec::Field(col.name.clone()))
                .chain(c.iter().cloned())
                .collect(),
            None => {
                let mut v: Vec<ColumnSpec> = def
                    .columns
                    .iter()
                    .map(|c| ColumnSpec::Field(c.name.clone()))
                    .collect();
                if let Some(hidden) = &params.hidden_columns {
                    v.extend(hidden.iter().map(|h| ColumnSpec::Field(h.clone())));
                }
                v
            }
        };
        let mut sources = Vec::new();
        let mut derived: Vec<(String, Expr)> = Vec::new();
        for s in specs {
            match s {
                ColumnSpec::Field(n) => sources.push(n),
                ColumnSpec::Derived(n, e) => derived.push((n, e)),
            }
        }
        if let Some(paths) = &params.jsonpaths {
            if !names_fields {
                sources.truncate(paths.len());
            }
        }
        let index: HashMap<String, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_ascii_lowercase(), i))
            .collect();
        let find = |name: &str| -> Option<Target> {
            if let Some((_, e)) = derived.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Some(Target::Derived(e.clone()));
            }
            index
                .get(&name.to_ascii_lowercase())
                .map(|i| Target::Source(*i))
        };
        let mut targets = Vec::with_capacity(def.columns.len());
        for c in &def.columns {
            let t = find(&c.name).unwrap_or(Target::Absent);
            if matches!(t, Target::Absent)
                && !params.partial_columns
                && !c.nullable
                && c.default.is_none()
            {
                return Err(analysis(format!(
                    "Column has no default value. column: {}",
                    c.name
                )));
            }
            targets.push(t);
        }
        let to_special = |t: Option<Target>| match t {
            Some(Target::Source(i)) => Special::Source(i),
            Some(Target::Derived(e)) => Special::Derived(e),
            _ => Special::None,
        };
        let delete_sign = if unique {
            to_special(find(DELETE_SIGN))
        } else {
            Special::None
        };
        let sequence = match &def.sequence {
            Sequence::None => Special::None,
            Sequence::Column(i) => {
                if let Some(h) = &params.sequence_col {
                    if !h.eq_ignore_ascii_case(&def.columns[*i].name) {
                        return Err(analysis(format!(
                            "There is no sequence column {h} in the Table {}.",
                            def.name
                        )));
                    }
                }
                // A load that does not give the mapped sequence column is refused, as for a hidden one.
                if matches!(targets[*i], Target::Absent)
                    && !params.partial_columns
                    && params.merge_type != MergeType::Delete
                {
                    return Err(analysis(format!(
                        "Table {} has sequence column, need to specify the sequence column",
                        def.name
                    )));
                }
                Special::None
            }
            Sequence::Typed(_) => {
                let src =
                    find(SEQUENCE_COL).or_else(|| params.sequence_col.as_deref().and_then(find));
                match src {
                    Some(t) => to_special(Some(t)),
                    None if params.merge_type == MergeType::Delete => Special::None,
                    None => {
                        return Err(analysis(format!(
                            "Table {} has sequence column, need to specify the sequence column",
                            def.name
                        )))
                    }
                }
            }
        };
        // `where` may name table columns and source fields, `delete` only what the load provides (source fields and
        // derived columns); anything else is refused before a row is read, with the FE's messages as asserted by
        // apache/doris regression-test/suites/unique_with_mow_p0/partial_update/test_partial_update.groovy.
        let provided = |n: &str| {
            index.contains_key(&n.to_ascii_lowercase())
                || derived.iter().any(|(d, _)| d.eq_ignore_ascii_case(n))
                || n.eq_ignore_ascii_case(DELETE_SIGN)
                || n.eq_ignore_ascii_case(SEQUENCE_COL)
        };
        if let Some(w) = &params.where_ {
            let mut names = Vec::new();
            w.columns(&mut names);
            if let Some(n) = names
                .iter()
                .find(|n| def.column_index(n).is_none() && !provided(n))
            {
                return Err(analysis(format!("Unknown column '{n}' in 'table list'")));
            }
        }
        if let Some(d) = &params.delete {
            let mut names = Vec::new();
            d.columns(&mut names);
            if let Some(n) = names.iter().find(|n| !provided(n)) {
                return Err(analysis(format!(
                    "unknown reference column in DELETE ON clause:{n}"
                )));
            }
        }
        let present = if params.partial_columns {
            if !unique || !def.merge_on_write {
                return Err(analysis(format!(
                    "Partial update is only allowed on unique table with merge-on-write enabled. table: {}",
                    def.name
                )));
            }
            for (i, c) in def.columns.iter().enumerate().take(def.key_len) {
                if matches!(targets[i], Target::Absent) {
                    return Err(analysis(format!(
                        "Insert has not enough columns for partial update: key column {} is missing",
                        c.name
                    )));
                }
            }
            Some(
                targets
                    .iter()
                    .map(|t| !matches!(t, Target::Absent))
                    .collect(),
            )
        } else {
            None
        };
        Ok(Plan {
            def,
            params,
            sources,
            index,
            targets,
            delete_sign,
            sequence,
            present,
        })
    }
}

/// One input field of a row.
#[derive(Debug, Clone)]
enum Slot<'a> {
    /// JSON key absent.
    Missing,
    Text(Option<Cow<'a, str>>),
    Json(JsonCell<'a>),
}

/// Outcome of preparing a load body.
#[derive(Debug, Default)]
pub struct Prepared {
    pub ops: Vec<RowOp>,
    pub total: u64,
    pub filtered: u64,
    pub unselected: u64,
    /// Error-log lines of filtered rows (`Reason: … src line […];`).
    pub error_log: Vec<String>,
    /// A load-level failure found while reading the body (the whole load fails with this message).
    pub fatal: Option<String>,
}

const MULTIPLE_OBJECTS: &str = "[DATA_QUALITY_ERROR]Multiple JSON objects in a single line";

/// Cap on logged rejected rows per load (Doris caps its error log too).
const MAX_ERROR_LINES: usize = 10_000;

impl Prepared {
    fn reject(&mut self, reason: &str, src: &str) {
        self.filtered += 1;
        if self.error_log.len() < MAX_ERROR_LINES {
            let src: String = src.chars().take(1024).collect();
            self.error_log
                .push(format!("Reason: {reason}. src line [{src}]; "));
        }
    }
}

struct RowScope<'r> {
    plan: &'r Plan<'r>,
    values: &'r [Value],
    slots: &'r [Slot<'r>],
}

impl Scope for RowScope<'_> {
    fn lookup(&self, name: &str) -> Option<EVal<'_>> {
        if let Some(i) = self.plan.def.column_index(name) {
            return Some(EVal::Typed(&self.values[i], &self.plan.def.columns[i].ty));
        }
        let i = *self.plan.index.get(&name.to_ascii_lowercase())?;
        Some(match &self.slots[i] {
            Slot::Missing | Slot::Text(None) | Slot::Json(JsonCell::Null) => EVal::Null,
            Slot::Text(Some(t)) => EVal::Text(Cow::Borrowed(t.as_ref())),
            Slot::Json(c) => match c.as_text() {
                Some(t) => EVal::Text(Cow::Owned(t.into_owned())),
                None => EVal::Null,
            },
        })
    }
}

/// Source-only scope for derived columns (they read source fields, not other columns).
struct SlotScope<'r> {
    plan: &'r Plan<'r>,
    slots: &'r [Slot<'r>],
}

impl Scope for SlotScope<'_> {
    fn lookup(&self, name: &str) -> Option<EVal<'_>> {
        let i = *self.plan.index.get(&name.to_ascii_lowercase())?;
        Some(match &self.slots[i] {
            Slot::Missing | Slot::Text(None) | Slot::Json(JsonCell::Null) => EVal::Null,
            Slot::Text(Some(t)) => EVal::Text(Cow::Borrowed(t.as_ref())),
            Slot::Json(c) => match c.as_text() {
                Some(t) => EVal::Text(Cow::Owned(t.into_owned())),
                None => EVal::Null,
            },
        })
    }
}

enum RowResult {
    Op(RowOp),
    Unselected,
    Filtered(String),
}

impl Plan<'_> {
    fn convert(&self, ty: &ColType, slot: &Slot<'_>) -> Result<Value, ConvError> {
        match slot {
            Slot::Missing | Slot::Text(None) => Ok(Value::Null),
            Slot::Text(Some(t)) => parse_text(ty, t, self.params.tz),
            // Without `num_as_string` the BE's JSON reader hands a non-integer number to a DECIMAL column as a
            // double printed back to text, so digits beyond a double's precision are lost.
            Slot::Json(JsonCell::Number(n))
                if matches!(ty, ColType::Decimal { .. }) && !self.params.num_as_string =>
            {
                match number_through_double(n) {
                    Some(t) => parse_text(ty, &t, self.params.tz),
                    None => parse_text(ty, n, self.params.tz),
                }
            }
            Slot::Json(c) => parse_json_cell(ty, c, self.params.tz),
        }
    }

    fn special_text(&self, sp: &Special, slots: &[Slot<'_>]) -> Option<String> {
        match sp {
            Special::None => None,
            Special::Source(i) => match &slots[*i] {
                Slot::Missing | Slot::Text(None) => None,
                Slot::Text(Some(t)) => Some(t.to_string()),
                Slot::Json(c) => c.as_text().map(|t| t.into_owned()),
            },
            Special::Derived(e) => e.eval(&SlotScope { plan: self, slots }).to_text(),
        }
    }

    fn build_row(&self, slots: &[Slot<'_>]) -> RowResult {
        let def = self.def;
        let mut values = Vec::with_capacity(def.columns.len());
        for (i, c) in def.columns.iter().enumerate() {
            let converted = match &self.targets[i] {
                // A JSON key absent from the object takes the column's DEFAULT (Doris's JSON reader fills missing
                // columns from the default value); without one it is NULL, or the row is filtered if NOT NULL.
                Target::Source(s)
                    if matches!(slots[*s], Slot::Missing)
                        && c.default.is_some()
                        && !self.params.partial_columns =>
                {
                    let d = c.default.as_deref().unwrap_or_default();
                    (parse_text(&c.ty, d, self.params.tz), true)
                }
                Target::Source(s) => {
                    let slot = &slots[*s];
                    if matches!(slot, Slot::Missing) && !c.nullable && !self.params.partial_columns
                    {
                        return RowResult::Filtered(format!(
                            "The column `{}` is not nullable, but it's not found in jsondata.",
                            c.name
                        ));
                    }
                    let had_value = !matches!(
                        slot,
                        Slot::Missing | Slot::Text(None) | Slot::Json(JsonCell::Null)
                    );
                    (self.convert(&c.ty, slot), had_value)
                }
                Target::Derived(e) => {
                    let v = e.eval(&SlotScope { plan: self, slots }).to_text();
                    let had = v.is_some();
                    (
                        match v {
                            Some(t) => parse_text(&c.ty, &t, self.params.tz),
                            None => Ok(Value::Null),
                        },
                        had,
                    )
                }
                // Not mentioned: DEFAULT or NULL; in a partial update this only matters for new keys, existing
                // rows keep their stored value (the `present` mask).
                Target::Absent => match &c.default {
                    Some(d) => (parse_text(&c.ty, d, self.params.tz), true),
                    None => (Ok(Value::Null), false),
                },
            };
            let v = match converted {
                (Ok(v), _) => v,
                (Err(ConvError::Invalid), had) => {
                    if self.params.strict_mode && had {
                        return RowResult::Filtered(format!(
                            "column({}) value is incorrect while strict mode is true, src value is {}",
                            c.name,
                            self.src_text(i, slots)
                        ));
                    }
                    Value::Null
                }
                // 4.x outside strict mode: an out-of-range number is NULL, an over-long string is cut (version.rs).
                (Err(ConvError::OutOfRange), _)
                    if self.lenient_casts() =>
                {
                    Value::Null
                }
                (Err(ConvError::TooLong { max, .. }), _) if self.lenient_casts() => {
                    match self.cell_text(i, slots) {
                        Some(t) => Value::Str(cut_to_bytes(&t, max as usize).into()),
                        None => Value::Null,
                    }
                }
                (Err(ConvError::OutOfRange), _) => {
                    return RowResult::Filtered(format!(
                        "column({}) value is out of range for {}, src value is {}",
                        c.name,
                        c.ty.sql_name(),
                        self.src_text(i, slots)
                    ))
                }
                (Err(ConvError::TooLong { max, actual }), _) => {
                    return RowResult::Filtered(format!(
                        "column({}) the length of input is too long than schema. schema length: {max}; actual length: {actual}",
                        c.name
                    ))
                }
            };
            if v.is_null()
                && !c.nullable
                && !(self.params.partial_columns && matches!(self.targets[i], Target::Absent))
            {
                return RowResult::Filtered(format!(
                    "column({}) values is null while columns is not nullable",
                    c.name
                ));
            }
            values.push(v);
        }
        let values: Box<[Value]> = values.into();
        if let Some(w) = &self.params.where_ {
            let scope = RowScope {
                plan: self,
                values: &values,
                slots,
            };
            if w.test(&scope) != Some(true) {
                return RowResult::Unselected;
            }
        }
        let delete = match self.params.merge_type {
            MergeType::Delete => true,
            MergeType::Merge => {
                let scope = RowScope {
                    plan: self,
                    values: &values,
                    slots,
                };
                self.params.delete.as_ref().and_then(|d| d.test(&scope)) == Some(true)
            }
            MergeType::Append => match self.special_text(&self.delete_sign, slots) {
                None => false,
                Some(t) => match t.trim() {
                    "0" | "false" => false,
                    "1" | "true" => true,
                    other => {
                        return RowResult::Filtered(format!(
                            "column({DELETE_SIGN}) value is incorrect, src value is {other}"
                        ))
                    }
                },
            },
        };
        let seq = match &def.sequence {
            Sequence::None => Value::Null,
            Sequence::Column(i) => values[*i].clone(),
            Sequence::Typed(ty) => match self.special_text(&self.sequence, slots) {
                None => Value::Null,
                Some(t) => match parse_text(ty, &t, self.params.tz) {
                    Ok(v) => v,
                    Err(_) if !self.params.strict_mode => Value::Null,
                    Err(_) => {
                        return RowResult::Filtered(format!(
                            "column({SEQUENCE_COL}) value is incorrect while strict mode is true, src value is {t}"
                        ))
                    }
                },
            },
        };
        RowResult::Op(RowOp {
            values,
            delete,
            seq,
            present: self.present.clone(),
        })
    }

    fn lenient_casts(&self) -> bool {
        !self.params.strict_mode && self.params.version.lenient_non_strict_casts()
    }

    /// The text a column's value was converted from (source field or `c=expr` result).
    fn cell_text(&self, col: usize, slots: &[Slot<'_>]) -> Option<String> {
        match &self.targets[col] {
            Target::Source(s) => match &slots[*s] {
                Slot::Missing | Slot::Text(None) => None,
                Slot::Text(Some(t)) => Some(t.to_string()),
                Slot::Json(c) => c.as_text().map(|t| t.into_owned()),
            },
            Target::Derived(e) => e.eval(&SlotScope { plan: self, slots }).to_text(),
            Target::Absent => None,
        }
    }

    fn src_text(&self, col: usize, slots: &[Slot<'_>]) -> String {
        match &self.targets[col] {
            Target::Source(s) => match &slots[*s] {
                Slot::Missing | Slot::Text(None) => "NULL".into(),
                Slot::Text(Some(t)) => t.to_string(),
                Slot::Json(c) => c
                    .as_text()
                    .map(|t| t.into_owned())
                    .unwrap_or_else(|| "NULL".into()),
            },
            _ => String::new(),
        }
    }

    fn push(&self, out: &mut Prepared, slots: &[Slot<'_>], src: &dyn Fn() -> String) {
        out.total += 1;
        match self.build_row(slots) {
            RowResult::Op(op) => out.ops.push(op),
            RowResult::Unselected => out.unselected += 1,
            RowResult::Filtered(reason) => out.reject(&reason, &src()),
        }
    }

    /// Leading CSV lines to skip: `csv_with_names[_and_types]` skip their header lines and ignore `skip_lines`
    /// (apache/doris test_csv_with_skip_lines.groovy).
    fn skip_lines(&self, header_lines: usize) -> usize {
        if header_lines > 0 {
            header_lines
        } else {
            self.params.skip_lines
        }
    }

    /// Reads the whole body into prepared row operations.
    pub fn prepare(&self, body: &[u8]) -> Prepared {
        let mut out = Prepared::default();
        match self.params.format {
            Format::Csv { header_lines } => self.prepare_csv(body, header_lines, &mut out),
            Format::Json => self.prepare_json(body, &mut out),
        }
        out
    }

    fn prepare_csv(&self, body: &[u8], header_lines: usize, out: &mut Prepared) {
        if self.params.enclose.is_some() {
            return self.prepare_csv_enclosed(body, header_lines, out);
        }
        let sep = &self.params.column_separator;
        let mut slots: Vec<Slot<'_>> = Vec::with_capacity(self.sources.len());
        let skip = self.skip_lines(header_lines);
        for line in split_bytes(body, &self.params.line_delimiter).skip(skip) {
            let line = if self.params.line_delimiter == b"\n" {
                line.strip_suffix(b"\r").unwrap_or(line)
            } else {
                line
            };
            if line.is_empty() {
                continue;
            }
            let Ok(text) = std::str::from_utf8(line) else {
                out.total += 1;
                out.reject("invalid UTF-8 in the line", &String::from_utf8_lossy(line));
                continue;
            };
            slots.clear();
            for f in split_bytes(line, sep) {
                // Fields split on ASCII/UTF-8 separators stay valid UTF-8 when the line is.
                let f = std::str::from_utf8(f).unwrap_or_default();
                slots.push(self.csv_field(Cow::Borrowed(f), false));
            }
            self.csv_record(&slots, text, out);
        }
    }

    fn csv_field<'b>(&self, f: Cow<'b, str>, enclosed: bool) -> Slot<'b> {
        if !enclosed && f == "\\N" {
            return Slot::Text(None);
        }
        if self.params.trim_double_quotes && f.len() >= 2 && f.starts_with('"') && f.ends_with('"')
        {
            return Slot::Text(Some(match f {
                Cow::Borrowed(b) => Cow::Borrowed(&b[1..b.len() - 1]),
                Cow::Owned(o) => Cow::Owned(o[1..o.len() - 1].to_string()),
            }));
        }
        Slot::Text(Some(f))
    }

    fn csv_record(&self, slots: &[Slot<'_>], text: &str, out: &mut Prepared) {
        let n = self.sources.len();
        if slots.len() != n {
            out.total += 1;
            let reason = format!(
                "actual column number in csv file is {} than schema column number.actual number: {}, schema column number: {}",
                if slots.len() > n { "more" } else { "less" },
                slots.len(),
                n
            );
            out.reject(&reason, text);
            return;
        }
        self.push(out, slots, &|| text.to_string());
    }

    /// CSV with `enclose` (and `escape`): an enclosed field may contain the separator and the line delimiter; the
    /// escape byte (or a doubled enclose byte) makes the next byte literal.
    fn prepare_csv_enclosed(&self, body: &[u8], header_lines: usize, out: &mut Prepared) {
        let text = String::from_utf8_lossy(body);
        let text: &str = &text;
        let b = text.as_bytes();
        let enc = self.params.enclose.unwrap_or(b'"');
        let esc = self.params.escape;
        let sep = self.params.column_separator.as_slice();
        let ld = self.params.line_delimiter.as_slice();
        let mut i = 0;
        let mut record_no = 0;
        let skip = self.skip_lines(header_lines);
        let mut slots: Vec<Slot<'_>> = Vec::new();
        while i < b.len() {
            let rec_start = i;
            slots.clear();
            loop {
                // As the BE's enclose line reader: a field starting with the enclose byte runs to the next
                // unescaped enclose byte (separators and line delimiters in between belong to the field), then on
                // to the next separator; the field keeps its quotes (`trim_double_quotes` removes an outer pair)
                // and escape bytes are dropped afterwards (apache/doris test_csv_with_enclose_and_escape).
                let start = i;
                let enclosed = b.get(i) == Some(&enc);
                if enclosed {
                    i += 1;
                    while let Some(&c) = b.get(i) {
                        if Some(c) == esc {
                            i += 2;
                        } else if c == enc {
                            i += 1;
                            break;
                        } else {
                            i += 1;
                        }
                    }
                    i = i.min(b.len());
                }
                while i < b.len() && !b[i..].starts_with(sep) && !b[i..].starts_with(ld) {
                    i += 1;
                }
                let mut f = sub(text, start, i);
                if ld == b"\n" && b[i..].starts_with(ld) {
                    f = f.strip_suffix('\r').unwrap_or(f);
                }
                let field = match (enclosed, esc) {
                    (true, Some(e)) if f.as_bytes().contains(&e) => {
                        let slot = self.csv_field(Cow::Borrowed(f), true);
                        let trimmed = match &slot {
                            Slot::Text(Some(t)) => t.to_string(),
                            _ => f.to_string(),
                        };
                        // Only an escape byte before the enclose byte is dropped; `\\` and `\u` stay
                        // (apache/doris test_csv_special_seperator.groovy).
                        let mut un = String::with_capacity(trimmed.len());
                        let mut chars = trimmed.chars().peekable();
                        while let Some(ch) = chars.next() {
                            let escapes_enclose = ch as u32 == e as u32
                                && chars.peek().is_some_and(|n| *n as u32 == enc as u32);
                            if !escapes_enclose {
                                un.push(ch);
                            }
                        }
                        slots.push(Slot::Text(Some(Cow::Owned(un))));
                        None
                    }
                    _ => Some(Cow::Borrowed(f)),
                };
                if let Some(field) = field {
                    slots.push(self.csv_field(field, enclosed));
                }
                // The line delimiter wins over a separator it starts with (`|@|` and `|@|\n`): the BE finds
                // the line end first, then the separators inside the line.
                if b[i..].starts_with(ld) {
                    i += ld.len();
                    break;
                }
                if b[i..].starts_with(sep) {
                    i += sep.len();
                    continue;
                }
                break;
            }
            record_no += 1;
            let raw = sub(text, rec_start, i).trim_end_matches(['\r', '\n']);
            if record_no <= skip || raw.is_empty() {
                continue;
            }
            self.csv_record(&slots, raw, out);
        }
    }

    fn prepare_json(&self, body: &[u8], out: &mut Prepared) {
        let mut slots = Vec::with_capacity(self.sources.len());
        if self.params.read_json_by_line {
            for line in split_bytes(body, &self.params.line_delimiter) {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                self.json_document(line, out, &mut slots);
                if out.fatal.is_some() {
                    return;
                }
            }
            return;
        }
        // Without read_json_by_line the body is a sequence of JSON documents separated by whitespace (one pretty-
        // printed array, or objects one after the other: apache/doris test_json_load_behavior_and_error_msg.groovy
        // case1).
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        if body.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return self.json_document(body, out, &mut slots);
        };
        let mut docs = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
        loop {
            let start = docs.byte_offset();
            match docs.next() {
                None => break,
                Some(Ok(doc)) => self.json_document(doc.get().as_bytes(), out, &mut slots),
                Some(Err(_)) => {
                    // The broken rest is one rejected row, with the parser's message.
                    self.json_document(sub(text, start, text.len()).as_bytes(), out, &mut slots);
                    break;
                }
            }
        }
    }

    /// With read_json_by_line, a line holding a complete JSON value followed by more (`{..}, {..}`) fails the load
    /// (apache/doris test_json_load_behavior_and_error_msg.groovy case2).
    fn multiple_documents(&self, text: &str) -> bool {
        if !self.params.read_json_by_line {
            return false;
        }
        let mut first = serde_json::Deserializer::from_str(text).into_iter::<de::IgnoredAny>();
        if !matches!(first.next(), Some(Ok(_))) {
            return false;
        }
        // Only a second complete value counts (`{..}, {..}`); other trailing bytes are a broken row.
        let rest = text[first.byte_offset()..].trim_start();
        let rest = rest.strip_prefix(',').unwrap_or(rest);
        let mut second = serde_json::Deserializer::from_str(rest).into_iter::<de::IgnoredAny>();
        matches!(second.next(), Some(Ok(_)))
    }

    fn json_document<'b>(&self, doc: &'b [u8], out: &mut Prepared, slots: &mut Vec<Slot<'b>>) {
        // A UTF-8 byte order mark before the JSON is skipped (apache/doris test_json_load.groovy case20).
        let doc = doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc);
        let text = match std::str::from_utf8(doc) {
            Ok(t) => t,
            Err(_) => {
                out.total += 1;
                out.reject(
                    "Parse json data for JsonDoc failed. invalid UTF-8",
                    &String::from_utf8_lossy(doc),
                );
                return;
            }
        };
        let trimmed = text.trim_start();
        // Fast path (one parse per row): a plain object line without json_root.
        if self.params.json_root.is_none()
            && trimmed.starts_with('{')
            && !self.params.strip_outer_array
        {
            self.json_object(text, out, slots);
            return;
        }
        let raw: &RawValue = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                if self.multiple_documents(text) {
                    out.fatal = Some(MULTIPLE_OBJECTS.into());
                    return;
                }
                out.total += 1;
                out.reject(
                    &format!("Parse json data for JsonDoc failed. error: {e}"),
                    text,
                );
                return;
            }
        };
        // `json_root` is looked up in the document when it is an object; with `strip_outer_array` and an array
        // document it is looked up in each element instead (apache/doris test_json_load.groovy case16).
        let per_element_root = self.params.strip_outer_array && raw.get().starts_with('[');
        let root = match &self.params.json_root {
            Some(_) if per_element_root => raw,
            Some(path) => match navigate(raw, path) {
                Some(r) => r,
                None => {
                    out.total += 1;
                    out.reject("JSON Root not found.", text);
                    return;
                }
            },
            None => raw,
        };
        let is_array = root.get().starts_with('[');
        if self.params.strip_outer_array {
            if !is_array {
                out.total += 1;
                out.reject(
                    "JSON data is not an array-object, `strip_outer_array` must be FALSE.",
                    text,
                );
                return;
            }
            let items: Vec<&RawValue> = match serde_json::from_str(root.get()) {
                Ok(v) => v,
                Err(e) => {
                    out.total += 1;
                    out.reject(
                        &format!("Parse json data for JsonDoc failed. error: {e}"),
                        text,
                    );
                    return;
                }
            };
            for item in items {
                match &self.params.json_root {
                    Some(path) if per_element_root => match navigate(item, path) {
                        Some(r) => self.json_object(r.get(), out, slots),
                        None => {
                            out.total += 1;
                            out.reject("JSON Root not found.", item.get());
                        }
                    },
                    _ => self.json_object(item.get(), out, slots),
                }
            }
        } else if is_array {
            out.total += 1;
            out.reject(
                "JSON data is array-object, `strip_outer_array` must be TRUE.",
                text,
            );
        } else {
            self.json_object(root.get(), out, slots);
        }
    }

    fn json_object<'b>(&self, text: &'b str, out: &mut Prepared, slots: &mut Vec<Slot<'b>>) {
        if !text.trim_start().starts_with('{') {
            out.total += 1;
            out.reject("Expected value is an object, but got another type.", text);
            return;
        }
        slots.clear();
        slots.resize(self.sources.len(), Slot::Missing);
        let matched = if let Some(paths) = &self.params.jsonpaths {
            let raw: &RawValue = match serde_json::from_str(text) {
                Ok(r) => r,
                Err(e) => {
                    out.total += 1;
                    out.reject(
                        &format!("Parse json data for JsonDoc failed. error: {e}"),
                        text,
                    );
                    return;
                }
            };
            let mut matched = false;
            for (i, path) in paths.iter().enumerate().take(slots.len()) {
                if let Some(v) = navigate(raw, path) {
                    slots[i] = Slot::Json(cell(v.get()));
                    matched = true;
                } else {
                    slots[i] = Slot::Json(JsonCell::Null);
                }
            }
            matched
        } else {
            let mut de = serde_json::Deserializer::from_str(text);
            let filled = de
                .deserialize_map(SlotFiller { plan: self, slots })
                .and_then(|m| de.end().map(|_| m));
            match filled {
                Ok(m) => m,
                Err(e) => {
                    if self.multiple_documents(text) {
                        out.fatal = Some(MULTIPLE_OBJECTS.into());
                        return;
                    }
                    out.total += 1;
                    out.reject(
                        &format!("Parse json data for JsonDoc failed. error: {e}"),
                        text,
                    );
                    return;
                }
            }
        };
        if !matched {
            out.total += 1;
            out.reject("All fields is null, this is a invalid row.", text);
            return;
        }
        self.push(out, slots, &|| text.to_string());
    }

    /// The source slot of a JSON key. Keys match source names exactly (spec §6); keys usually arrive in the same
    /// order as the sources, so the slot after the previous one is tried before hashing.
    fn slot_of(&self, key: &str, hint: usize) -> Option<usize> {
        if self.sources.get(hint).is_some_and(|s| s == key) {
            return Some(hint);
        }
        let i = *self
            .index
            .get(key)
            .or_else(|| self.index.get(&key.to_ascii_lowercase()))?;
        (self.sources[i] == key).then_some(i)
    }
}

/// Deserializes one JSON object straight into the row's source slots; returns whether any key matched.
struct SlotFiller<'p, 'b> {
    plan: &'p Plan<'p>,
    slots: &'p mut Vec<Slot<'b>>,
}

impl<'de, 'p> Visitor<'de> for SlotFiller<'p, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut matched = false;
        let mut hint = 0;
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let raw: &'de RawValue = map.next_value()?;
            if let Some(i) = self.plan.slot_of(&k.0, hint) {
                self.slots[i] = Slot::Json(cell(raw.get()));
                matched = true;
                hint = i + 1;
            }
        }
        Ok(matched)
    }
}

/// A JSON number as the BE's JSON reader passes it on without `num_as_string`: an integer that fits 64 bits stays
/// exact, anything else becomes a double (printed shortest, as `fmt::format("{}", double)` does). `None` keeps the
/// text (not a number).
fn number_through_double(n: &str) -> Option<String> {
    if n.parse::<i64>().is_ok() || n.parse::<u64>().is_ok() {
        return None;
    }
    let d: f64 = n.parse().ok()?;
    d.is_finite().then(|| d.to_string())
}

/// `&text[a..b]`, or "" when a hostile separator byte made the bounds fall inside a UTF-8 character.
fn sub(text: &str, a: usize, b: usize) -> &str {
    text.get(a..b).unwrap_or_default()
}

fn navigate<'a>(raw: &'a RawValue, path: &[PathSeg]) -> Option<&'a RawValue> {
    let mut cur = raw;
    for seg in path {
        let text = cur.get();
        match seg {
            PathSeg::Key(key) if text.starts_with('{') => {
                let entries = Entries::parse(text).ok()?;
                cur = entries.0.into_iter().find(|(k, _)| k == key)?.1;
            }
            PathSeg::Index(idx) if text.starts_with('[') => {
                let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
                cur = *items.get(*idx)?;
            }
            _ => return None,
        }
    }
    Some(cur)
}

fn cell(raw: &str) -> JsonCell<'_> {
    match raw.as_bytes().first() {
        Some(b'n') => JsonCell::Null,
        Some(b't') => JsonCell::Bool(true),
        Some(b'f') => JsonCell::Bool(false),
        Some(b'"') => {
            if raw.contains('\\') {
                match serde_json::from_str::<String>(raw) {
                    Ok(s) => JsonCell::Str(Cow::Owned(s)),
                    Err(_) => JsonCell::Null,
                }
            } else {
                JsonCell::Str(Cow::Borrowed(&raw[1..raw.len() - 1]))
            }
        }
        Some(b'{') | Some(b'[') => JsonCell::Nested(raw),
        _ => JsonCell::Number(raw),
    }
}

/// The entries of one JSON object, values kept raw and borrowed.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Entries<'a> {
    fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let v = de.deserialize_map(EntriesVisitor)?;
        de.end()?;
        Ok(v)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::with_capacity(map.size_hint().unwrap_or(24));
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let raw: &'de RawValue = map.next_value()?;
            v.push((k.0, raw));
        }
        Ok(Entries(v))
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Splits on a (possibly multi-byte) delimiter; a trailing delimiter yields no empty last piece for lines.
fn split_bytes<'a>(data: &'a [u8], delim: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        if delim.len() == 1 {
            match memchr(delim[0], r) {
                Some(i) => {
                    rest = Some(&r[i + 1..]);
                    Some(&r[..i])
                }
                None => {
                    rest = None;
                    Some(r)
                }
            }
        } else {
            match r.windows(delim.len()).position(|w| w == delim) {
                Some(i) => {
                    rest = Some(&r[i + delim.len()..]);
                    Some(&r[..i])
                }
                None => {
                    rest = None;
                    Some(r)
                }
            }
        }
    })
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    memchr::memchr(b, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddl::{parse_into, Catalog};

    fn table() -> TableDef {
        let mut c = Catalog::default();
        parse_into(
            &mut c,
            "t",
            include_str!("../tests/fixtures/merged_job_data.sql"),
        )
        .unwrap();
        c.tables.remove(0)
    }

    fn params(pairs: &[(&str, &str)]) -> LoadParams {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        parse_headers(&h, LoadTz::default(), DorisVersion::default()).unwrap()
    }

    #[test]
    fn json_lines_map_keys_and_filter_bad_rows() {
        let def = table();
        let p = params(&[("format", "json"), ("read_json_by_line", "true")]);
        let plan = Plan::new(&def, &p).unwrap();
        let body =
            br#"{"job_id": 1, "source_version": 3, "title": "a", "salary_min": "12.5", "extra": 1}
{"job_id": 2, "title": "b"}
not json
{"job_id": 3, "source_version": 1, "created_at": "2024-01-01 00:00:00.1234567"}
"#;
        let r = plan.prepare(body);
        assert_eq!((r.total, r.filtered, r.ops.len()), (4, 2, 2));
        assert!(
            r.error_log[0].contains("The column `source_version` is not nullable"),
            "{:?}",
            r.error_log
        );
        assert_eq!(r.ops[0].values[6], Value::Decimal(1250));
        assert_eq!(r.ops[0].seq, Value::Int(3));
    }

    #[test]
    fn header_validation_messages() {
        let mut h = HeaderMap::new();
        h.insert("merge_type", "UPSERT".parse().unwrap());
        assert_eq!(
            parse_headers(&h, LoadTz::default(), DorisVersion::default()).unwrap_err(),
            "[INVALID_ARGUMENT]Invalid merge type UPSERT"
        );
        assert!(separator("\\x0102").unwrap() == vec![1, 2]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Any body under any common header set is parsed without panicking, and the counters add up.
        #[test]
        fn arbitrary_bodies_never_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            json in proptest::prelude::any::<bool>(),
            by_line in proptest::prelude::any::<bool>(),
            strip in proptest::prelude::any::<bool>(),
            enclose in proptest::prelude::any::<bool>(),
            sep in proptest::sample::select(vec!["\\t", ",", "||", "\\x01", "\\xa9", "é"]),
        ) {
            let def = table();
            let mut pairs = vec![("column_separator", sep)];
            if json { pairs.push(("format", "json")); }
            if by_line { pairs.push(("read_json_by_line", "true")); }
            if strip { pairs.push(("strip_outer_array", "true")); }
            if enclose { pairs.push(("enclose", "\"")); pairs.push(("escape", "\\")); }
            let p = params(&pairs);
            let plan = Plan::new(&def, &p).unwrap();
            let r = plan.prepare(&body);
            proptest::prop_assert_eq!(r.total, r.ops.len() as u64 + r.filtered + r.unselected);
        }

        /// Arbitrary header values are validated without panicking.
        #[test]
        fn arbitrary_header_values_never_panic(
            name in proptest::sample::select(vec!["format", "columns", "where", "delete", "merge_type", "timeout",
                "timezone", "jsonpaths", "json_root", "column_separator", "max_filter_ratio", "enclose", "skip_lines"]),
            value in "[ -~é€]{0,40}",
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = value.parse() {
                h.insert(name, v);
            }
            let _ = parse_headers(&h, LoadTz::default(), DorisVersion::default());
        }
    }
}
