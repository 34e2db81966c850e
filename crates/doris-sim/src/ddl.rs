//! Doris DDL subset → table definitions. Hand-written because general SQL parsers do not know `UNIQUE KEY(...)`,
//! `DISTRIBUTED BY` or `PROPERTIES`. Whatever the emulator cannot reproduce faithfully (partitions, rollups,
//! auto-increment, complex types) is refused with the source name, line and reason, never silently ignored.

use crate::value::ColType;

/// How rows with equal keys combine (spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyModel {
    Duplicate,
    Unique,
    Aggregate,
}

/// Aggregate-model column function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    Sum,
    Max,
    Min,
    Replace,
    ReplaceIfNotNull,
}

#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub ty: ColType,
    pub nullable: bool,
    /// `DEFAULT` literal text: used for columns a load does not mention, JSON keys missing from an object, and new
    /// keys of partial updates.
    pub default: Option<String>,
    /// Aggregate-model function of a value column.
    pub agg: Option<AggFn>,
}

/// Where a table's sequence value comes from (spec §6 Sequence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sequence {
    None,
    /// `function_column.sequence_col`: bound to this column index.
    Column(usize),
    /// `function_column.sequence_type`: a hidden column of this type, fed by the load header.
    Typed(ColType),
}

#[derive(Debug, Clone)]
pub struct TableDef {
    pub db: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub model: KeyModel,
    /// Key columns are the first `key_len` columns (Doris requires an ordered prefix).
    pub key_len: usize,
    pub sequence: Sequence,
    pub merge_on_write: bool,
    /// Bucket count from `DISTRIBUTED BY ... BUCKETS n` (only echoed in messages).
    pub buckets: u32,
}

impl TableDef {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }
    pub fn sequence_type(&self) -> Option<&ColType> {
        match &self.sequence {
            Sequence::None => None,
            Sequence::Column(i) => Some(&self.columns[*i].ty),
            Sequence::Typed(t) => Some(t),
        }
    }
}

/// The parsed schema: databases and their tables.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub databases: Vec<String>,
    pub tables: Vec<TableDef>,
}

impl Catalog {
    pub fn has_db(&self, db: &str) -> bool {
        self.databases.iter().any(|d| d == db)
    }
    pub fn table(&self, db: &str, table: &str) -> Option<usize> {
        self.tables
            .iter()
            .position(|t| t.db == db && t.name == table)
    }
}

/// A DDL statement the emulator refuses or cannot parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{source_name}:{line}: {reason}")]
pub struct DdlError {
    pub source_name: String,
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Punct(char),
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
}

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, (usize, String)> {
    let mut lx = Lexer {
        src: src.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    while lx.pos < lx.src.len() {
        let c = lx.src[lx.pos];
        let line = lx.line;
        match c {
            b'\n' => {
                lx.line += 1;
                lx.pos += 1;
            }
            c if c.is_ascii_whitespace() => lx.pos += 1,
            b'-' if lx.src.get(lx.pos + 1) == Some(&b'-') => skip_line(&mut lx),
            b'#' => skip_line(&mut lx),
            b'/' if lx.src.get(lx.pos + 1) == Some(&b'*') => {
                lx.pos += 2;
                loop {
                    match lx.src.get(lx.pos) {
                        None => return Err((line, "unterminated comment".into())),
                        Some(b'*') if lx.src.get(lx.pos + 1) == Some(&b'/') => {
                            lx.pos += 2;
                            break;
                        }
                        Some(b'\n') => {
                            lx.line += 1;
                            lx.pos += 1
                        }
                        Some(_) => lx.pos += 1,
                    }
                }
            }
            b'\'' | b'"' | b'`' => {
                let q = c;
                lx.pos += 1;
                let mut s = Vec::new();
                loop {
                    match lx.src.get(lx.pos) {
                        None => return Err((line, "unterminated quoted text".into())),
                        Some(&b) if b == q => {
                            if lx.src.get(lx.pos + 1) == Some(&q) {
                                s.push(q);
                                lx.pos += 2;
                            } else {
                                lx.pos += 1;
                                break;
                            }
                        }
                        Some(b'\\') if q != b'`' => {
                            if let Some(&n) = lx.src.get(lx.pos + 1) {
                                s.push(match n {
                                    b'n' => b'\n',
                                    b't' => b'\t',
                                    other => other,
                                });
                            }
                            lx.pos += 2;
                        }
                        Some(&b) => {
                            if b == b'\n' {
                                lx.line += 1;
                            }
                            s.push(b);
                            lx.pos += 1;
                        }
                    }
                }
                let s = String::from_utf8_lossy(&s).into_owned();
                out.push((
                    if q == b'`' {
                        Tok::Quoted(s)
                    } else {
                        Tok::Str(s)
                    },
                    line,
                ));
            }
            c if c.is_ascii_digit() => {
                let start = lx.pos;
                while lx.pos < lx.src.len()
                    && (lx.src[lx.pos].is_ascii_alphanumeric() || lx.src[lx.pos] == b'.')
                {
                    lx.pos += 1;
                }
                out.push((
                    Tok::Num(String::from_utf8_lossy(&lx.src[start..lx.pos]).into_owned()),
                    line,
                ));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = lx.pos;
                while lx.pos < lx.src.len()
                    && (lx.src[lx.pos].is_ascii_alphanumeric() || lx.src[lx.pos] == b'_')
                {
                    lx.pos += 1;
                }
                out.push((
                    Tok::Word(String::from_utf8_lossy(&lx.src[start..lx.pos]).into_owned()),
                    line,
                ));
            }
            c => {
                out.push((Tok::Punct(c as char), line));
                lx.pos += 1;
            }
        }
    }
    Ok(out)
}

fn skip_line(lx: &mut Lexer<'_>) {
    while lx.pos < lx.src.len() && lx.src[lx.pos] != b'\n' {
        lx.pos += 1;
    }
}

struct Parser<'a> {
    toks: &'a [(Tok, usize)],
    pos: usize,
    source_name: &'a str,
}

type PResult<T> = Result<T, DdlError>;

impl Parser<'_> {
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map(|t| t.1)
            .unwrap_or(1)
    }
    fn err<T>(&self, reason: impl Into<String>) -> PResult<T> {
        Err(DdlError {
            source_name: self.source_name.to_string(),
            line: self.line(),
            reason: reason.into(),
        })
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            self.err(format!("expected `{kw}`, found {}", self.describe()))
        }
    }
    fn eat_punct(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_punct(&mut self, c: char) -> PResult<()> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            self.err(format!("expected `{c}`, found {}", self.describe()))
        }
    }
    fn describe(&self) -> String {
        match self.peek() {
            None => "end of input".into(),
            Some(Tok::Word(w)) => format!("`{w}`"),
            Some(Tok::Quoted(w)) => format!("`{w}`"),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Num(n)) => n.clone(),
            Some(Tok::Punct(c)) => format!("`{c}`"),
        }
    }
    fn ident(&mut self) -> PResult<String> {
        match self.peek() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => self.err(format!("expected a name, found {}", self.describe())),
        }
    }
    fn string(&mut self) -> PResult<String> {
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.err(format!(
                "expected a quoted string, found {}",
                self.describe()
            )),
        }
    }
    fn number(&mut self) -> PResult<u32> {
        match self.peek() {
            Some(Tok::Num(n)) => match n.parse() {
                Ok(v) => {
                    self.pos += 1;
                    Ok(v)
                }
                Err(_) => self.err(format!("expected an integer, found {n}")),
            },
            _ => self.err(format!("expected an integer, found {}", self.describe())),
        }
    }
    fn ident_list(&mut self) -> PResult<Vec<String>> {
        self.expect_punct('(')?;
        let mut v = vec![self.ident()?];
        while self.eat_punct(',') {
            v.push(self.ident()?);
        }
        self.expect_punct(')')?;
        Ok(v)
    }
    /// Skips to the end of the current statement (after `;`).
    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }
}

/// Parses DDL text and adds its databases and tables to `catalog`. `source_name` is used in errors (file path or
/// `<ddl #n>` for inline text).
pub fn parse_into(catalog: &mut Catalog, source_name: &str, text: &str) -> Result<(), DdlError> {
    let toks = tokenize(text).map_err(|(line, reason)| DdlError {
        source_name: source_name.into(),
        line,
        reason,
    })?;
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        source_name,
    };
    let mut current_db: Option<String> = None;
    while !p.at_end() {
        if p.eat_punct(';') {
            continue;
        }
        if p.eat_kw("CREATE") {
            if p.eat_kw("DATABASE") || p.eat_kw("SCHEMA") {
                if p.eat_kw("IF") {
                    p.expect_kw("NOT")?;
                    p.expect_kw("EXISTS")?;
                }
                let name = p.ident()?;
                // Database PROPERTIES do not change load semantics.
                if p.eat_kw("PROPERTIES") {
                    skip_parens(&mut p)?;
                }
                if !catalog.has_db(&name) {
                    catalog.databases.push(name);
                }
            } else if p.peek_kw("TABLE") || p.peek_kw("EXTERNAL") || p.peek_kw("TEMPORARY") {
                if !p.eat_kw("TABLE") {
                    return p.err(
                        "only OLAP tables can be emulated (EXTERNAL/TEMPORARY tables are refused)",
                    );
                }
                let def = parse_create_table(&mut p, current_db.as_deref())?;
                if !catalog.has_db(&def.db) {
                    return p.err(format!(
                        "unknown database `{}`: add `CREATE DATABASE` before the table",
                        def.db
                    ));
                }
                if catalog.table(&def.db, &def.name).is_none() {
                    catalog.tables.push(def);
                }
            } else {
                return p.err(format!(
                    "doris-sim emulates only CREATE DATABASE and CREATE TABLE, not CREATE {}",
                    p.describe()
                ));
            }
        } else if p.eat_kw("USE") {
            let db = p.ident()?;
            if !catalog.has_db(&db) {
                return p.err(format!("unknown database `{db}`"));
            }
            current_db = Some(db);
        } else if p.eat_kw("DROP") {
            if p.eat_kw("TABLE") {
                let _ = p.eat_kw("IF") && p.eat_kw("EXISTS");
                let (db, name) = qualified_name(&mut p, current_db.as_deref())?;
                catalog.tables.retain(|t| !(t.db == db && t.name == name));
                let _ = p.eat_kw("FORCE");
            } else if p.eat_kw("DATABASE") || p.eat_kw("SCHEMA") {
                let _ = p.eat_kw("IF") && p.eat_kw("EXISTS");
                let db = p.ident()?;
                catalog.tables.retain(|t| t.db != db);
                catalog.databases.retain(|d| *d != db);
                let _ = p.eat_kw("FORCE");
            } else {
                return p.err(format!("doris-sim cannot emulate DROP {}", p.describe()));
            }
        } else if p.eat_kw("SET") {
            // Session variables do not change Stream Load semantics.
            while !p.at_end() && !p.eat_punct(';') {
                p.pos += 1;
            }
            continue;
        } else {
            return p.err(format!(
                "doris-sim understands CREATE DATABASE / CREATE TABLE / USE / DROP / SET only; found {}",
                p.describe()
            ));
        }
        if !p.at_end() && !p.eat_punct(';') {
            return p.err(format!(
                "expected `;` after the statement, found {}",
                p.describe()
            ));
        }
    }
    Ok(())
}

fn skip_parens(p: &mut Parser<'_>) -> PResult<()> {
    p.expect_punct('(')?;
    let mut depth = 1;
    while depth > 0 {
        match p.peek() {
            None => return p.err("unbalanced parentheses"),
            Some(Tok::Punct('(')) => depth += 1,
            Some(Tok::Punct(')')) => depth -= 1,
            _ => {}
        }
        p.pos += 1;
    }
    Ok(())
}

fn qualified_name(p: &mut Parser<'_>, current_db: Option<&str>) -> PResult<(String, String)> {
    let first = p.ident()?;
    if p.eat_punct('.') {
        let second = p.ident()?;
        Ok((first, second))
    } else {
        match current_db {
            Some(db) => Ok((db.to_string(), first)),
            None => p.err(format!(
                "table `{first}` has no database: write `db.{first}` or `USE db` first"
            )),
        }
    }
}

fn parse_create_table(p: &mut Parser<'_>, current_db: Option<&str>) -> PResult<TableDef> {
    if p.eat_kw("IF") {
        p.expect_kw("NOT")?;
        p.expect_kw("EXISTS")?;
    }
    let (db, name) = qualified_name(p, current_db)?;
    if p.peek_kw("LIKE") || p.peek_kw("AS") {
        return p
            .err("CREATE TABLE ... LIKE / AS SELECT cannot be emulated: write the columns out");
    }
    p.expect_punct('(')?;
    let mut columns = Vec::new();
    loop {
        if p.peek_kw("INDEX") {
            // Inverted/bitmap/ngram indexes do not change what a load stores.
            p.pos += 1;
            p.ident()?;
            skip_parens(p)?;
            while !matches!(
                p.peek(),
                Some(Tok::Punct(',')) | Some(Tok::Punct(')')) | None
            ) {
                if matches!(p.peek(), Some(Tok::Punct('('))) {
                    skip_parens(p)?;
                } else {
                    p.pos += 1;
                }
            }
        } else {
            columns.push(parse_column(p)?);
        }
        if p.eat_punct(',') {
            continue;
        }
        p.expect_punct(')')?;
        break;
    }
    let mut model = KeyModel::Duplicate;
    let mut keys: Option<Vec<String>> = None;
    let mut buckets = 1;
    let mut props: Vec<(String, String, usize)> = Vec::new();
    loop {
        if p.eat_kw("ENGINE") {
            p.expect_punct('=')?;
            let e = p.ident()?;
            if !e.eq_ignore_ascii_case("OLAP") {
                return p.err(format!("ENGINE={e} cannot be emulated (only OLAP)"));
            }
        } else if p.peek_kw("UNIQUE") || p.peek_kw("DUPLICATE") || p.peek_kw("AGGREGATE") {
            let kind = p.ident()?;
            model = match kind.to_ascii_uppercase().as_str() {
                "UNIQUE" => KeyModel::Unique,
                "AGGREGATE" => KeyModel::Aggregate,
                _ => KeyModel::Duplicate,
            };
            p.expect_kw("KEY")?;
            keys = Some(p.ident_list()?);
        } else if p.eat_kw("COMMENT") {
            p.string()?;
        } else if p.peek_kw("PARTITION") || p.peek_kw("AUTO") {
            return p.err(
                "PARTITION BY cannot be emulated yet (rows outside partitions would need filtering); remove it for doris-sim",
            );
        } else if p.eat_kw("DISTRIBUTED") {
            p.expect_kw("BY")?;
            if p.eat_kw("HASH") {
                p.ident_list()?;
            } else if !p.eat_kw("RANDOM") {
                return p.err(format!("expected HASH or RANDOM, found {}", p.describe()));
            }
            if p.eat_kw("BUCKETS") && !p.eat_kw("AUTO") {
                buckets = p.number()?.max(1);
            }
        } else if p.peek_kw("ROLLUP") {
            return p.err("ROLLUP cannot be emulated; remove it for doris-sim");
        } else if p.eat_kw("PROPERTIES") {
            p.expect_punct('(')?;
            loop {
                let line = p.line();
                let k = p.string()?;
                p.expect_punct('=')?;
                let v = p.string()?;
                props.push((k, v, line));
                if !p.eat_punct(',') {
                    break;
                }
            }
            p.expect_punct(')')?;
        } else {
            break;
        }
    }
    let key_names = match keys {
        Some(k) => k,
        // No key clause: with aggregate functions Doris makes an AGGREGATE KEY table keyed by the columns without
        // one; otherwise a DUPLICATE KEY table on the first column (the sort key does not change what is stored).
        None if columns.iter().any(|c| c.agg.is_some()) => {
            model = KeyModel::Aggregate;
            columns
                .iter()
                .take_while(|c| c.agg.is_none())
                .map(|c| c.name.clone())
                .collect()
        }
        None => vec![columns
            .first()
            .map(|c: &ColumnDef| c.name.clone())
            .unwrap_or_default()],
    };
    for (i, k) in key_names.iter().enumerate() {
        match columns.get(i) {
            Some(c) if c.name.eq_ignore_ascii_case(k) => {}
            _ => {
                return p.err(format!(
                    "Key columns should be a ordered prefix of the schema. (key `{k}`)"
                ))
            }
        }
    }
    let key_len = key_names.len();
    for (i, c) in columns.iter().enumerate() {
        if model == KeyModel::Aggregate && i >= key_len && c.agg.is_none() {
            return p.err(format!(
                "aggregate table: value column `{}` needs an aggregate function",
                c.name
            ));
        }
        if model != KeyModel::Aggregate && c.agg.is_some() {
            return p.err(format!(
                "column `{}`: aggregate functions need AGGREGATE KEY",
                c.name
            ));
        }
        if i < key_len
            && matches!(
                c.ty,
                ColType::Json | ColType::Float | ColType::Double | ColType::String
            )
        {
            return p.err(format!(
                "key column `{}` cannot be {}",
                c.name,
                c.ty.sql_name()
            ));
        }
    }
    let mut sequence = Sequence::None;
    let mut merge_on_write = model == KeyModel::Unique;
    for (k, v, line) in props {
        let refuse = |reason: String| {
            Err(DdlError {
                source_name: p.source_name.to_string(),
                line,
                reason,
            })
        };
        match k.as_str() {
            "function_column.sequence_col" => {
                if model != KeyModel::Unique {
                    return refuse(
                        "function_column.sequence_col is only supported by UNIQUE KEY tables"
                            .into(),
                    );
                }
                match columns.iter().position(|c| c.name.eq_ignore_ascii_case(&v)) {
                    Some(i) if i >= key_len => sequence = Sequence::Column(i),
                    Some(_) => {
                        return refuse(format!("sequence column `{v}` cannot be a key column"))
                    }
                    None => return refuse(format!("sequence column `{v}` does not exist")),
                }
            }
            "function_column.sequence_type" => {
                if model != KeyModel::Unique {
                    return refuse(
                        "function_column.sequence_type is only supported by UNIQUE KEY tables"
                            .into(),
                    );
                }
                let toks = tokenize(&v).map_err(|(_, r)| DdlError {
                    source_name: p.source_name.into(),
                    line,
                    reason: r,
                })?;
                let mut sp = Parser {
                    toks: &toks,
                    pos: 0,
                    source_name: p.source_name,
                };
                let ty = parse_type(&mut sp).map_err(|mut e| {
                    e.line = line;
                    e
                })?;
                if !matches!(
                    ty,
                    ColType::TinyInt
                        | ColType::SmallInt
                        | ColType::Int
                        | ColType::BigInt
                        | ColType::LargeInt
                        | ColType::Date
                        | ColType::DateTime { .. }
                ) {
                    return refuse(format!(
                        "sequence type {} must be an integer or date/time type",
                        ty.sql_name()
                    ));
                }
                sequence = Sequence::Typed(ty);
            }
            "enable_unique_key_merge_on_write" => merge_on_write = v.eq_ignore_ascii_case("true"),
            k if k.starts_with("function_column.") => {
                return refuse(format!("table property `{k}` cannot be emulated"))
            }
            _ => {} // replication, storage, compaction properties do not change load semantics.
        }
    }
    Ok(TableDef {
        db,
        name,
        columns,
        model,
        key_len,
        sequence,
        merge_on_write,
        buckets,
    })
}

fn parse_column(p: &mut Parser<'_>) -> PResult<ColumnDef> {
    let name = p.ident()?;
    if name.starts_with("__DORIS_") {
        return p.err(format!(
            "column name `{name}` is reserved for hidden columns"
        ));
    }
    let ty = parse_type(p)?;
    let mut nullable = true;
    let mut default = None;
    let mut agg = None;
    loop {
        if p.eat_kw("NOT") {
            p.expect_kw("NULL")?;
            nullable = false;
        } else if p.eat_kw("NULL") {
            nullable = true;
        } else if p.eat_kw("DEFAULT") {
            default = match p.peek() {
                Some(Tok::Str(s)) | Some(Tok::Num(s)) => {
                    let s = s.clone();
                    p.pos += 1;
                    Some(s)
                }
                Some(Tok::Punct('-')) => {
                    p.pos += 1;
                    let n = match p.peek() {
                        Some(Tok::Num(n)) => n.clone(),
                        _ => return p.err("expected a number after `-`"),
                    };
                    p.pos += 1;
                    Some(format!("-{n}"))
                }
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NULL") => {
                    p.pos += 1;
                    None
                }
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("CURRENT_TIMESTAMP") => {
                    return p.err(
                        "DEFAULT CURRENT_TIMESTAMP cannot be emulated deterministically; remove it",
                    );
                }
                _ => return p.err(format!("unsupported DEFAULT value {}", p.describe())),
            };
        } else if p.eat_kw("COMMENT") {
            p.string()?;
        } else if p.peek_kw("AUTO_INCREMENT") {
            return p.err("AUTO_INCREMENT columns cannot be emulated");
        } else if p.peek_kw("ON") {
            return p.err("ON UPDATE CURRENT_TIMESTAMP cannot be emulated");
        } else if let Some(f) = ["SUM", "MAX", "MIN", "REPLACE", "REPLACE_IF_NOT_NULL"]
            .iter()
            .position(|k| p.peek_kw(k))
        {
            p.pos += 1;
            agg = Some(
                [
                    AggFn::Sum,
                    AggFn::Max,
                    AggFn::Min,
                    AggFn::Replace,
                    AggFn::ReplaceIfNotNull,
                ][f],
            );
        } else if ["HLL_UNION", "BITMAP_UNION", "QUANTILE_UNION", "GENERIC"]
            .iter()
            .any(|k| p.peek_kw(k))
        {
            return p.err(format!(
                "aggregate function {} cannot be emulated",
                p.describe()
            ));
        } else {
            break;
        }
    }
    Ok(ColumnDef {
        name,
        ty,
        nullable,
        default,
        agg,
    })
}

fn parse_type(p: &mut Parser<'_>) -> PResult<ColType> {
    let name = p.ident()?.to_ascii_uppercase();
    let args = |p: &mut Parser<'_>| -> PResult<Vec<u32>> {
        let mut v = Vec::new();
        if p.eat_punct('(') {
            v.push(p.number()?);
            while p.eat_punct(',') {
                v.push(p.number()?);
            }
            p.expect_punct(')')?;
        }
        Ok(v)
    };
    let ty = match name.as_str() {
        "BOOLEAN" | "BOOL" => ColType::Boolean,
        // Integer types accept a display width (`bigint(20)`, as `SHOW CREATE TABLE` of older releases prints
        // them); it does not change the type.
        "TINYINT" | "SMALLINT" | "INT" | "INTEGER" | "BIGINT" | "LARGEINT" => {
            args(p)?;
            match name.as_str() {
                "TINYINT" => ColType::TinyInt,
                "SMALLINT" => ColType::SmallInt,
                "INT" | "INTEGER" => ColType::Int,
                "BIGINT" => ColType::BigInt,
                _ => ColType::LargeInt,
            }
        }
        "FLOAT" => ColType::Float,
        "DOUBLE" => ColType::Double,
        "DECIMAL" | "DECIMALV2" | "DECIMALV3" | "NUMERIC" => {
            let a = args(p)?;
            let precision = a.first().copied().unwrap_or(9);
            let scale = a.get(1).copied().unwrap_or(0);
            if !(1..=38).contains(&precision) || scale > precision {
                return p.err(format!(
                    "invalid DECIMAL({precision},{scale}): need 1 ≤ p ≤ 38 and s ≤ p"
                ));
            }
            return Ok(ColType::Decimal {
                precision: precision as u8,
                scale: scale as u8,
            });
        }
        "DATE" | "DATEV2" => ColType::Date,
        "DATETIME" | "DATETIMEV2" => {
            let a = args(p)?;
            let precision = a.first().copied().unwrap_or(0);
            if precision > 6 {
                return p.err(format!("invalid DATETIME({precision}): precision is 0..6"));
            }
            return Ok(ColType::DateTime {
                precision: precision as u8,
            });
        }
        "CHAR" => {
            let n = args(p)?.first().copied().unwrap_or(1);
            return Ok(ColType::Char(n));
        }
        "VARCHAR" => {
            let n = args(p)?.first().copied().unwrap_or(65533);
            return Ok(ColType::Varchar(n));
        }
        "STRING" | "TEXT" => ColType::String,
        "JSON" | "JSONB" => ColType::Json,
        other => return p.err(format!("column type {other} cannot be emulated")),
    };
    Ok(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const MERGED_JOB_DATA: &str = include_str!("../tests/fixtures/merged_job_data.sql");

    #[test]
    fn parses_the_reference_table() {
        let mut c = Catalog::default();
        parse_into(&mut c, "merged_job_data.sql", MERGED_JOB_DATA).unwrap();
        let t = &c.tables[c.table("job_analytics", "merged_job_data").unwrap()];
        assert_eq!(t.model, KeyModel::Unique);
        assert_eq!(t.key_len, 1);
        assert_eq!(t.columns.len(), 20);
        assert_eq!(t.sequence, Sequence::Column(19));
        assert!(!t.columns[0].nullable);
        assert_eq!(t.columns[8].ty, ColType::DateTime { precision: 6 });
        assert_eq!(t.buckets, 8);
    }

    #[test]
    fn refuses_with_line_and_reason() {
        let mut c = Catalog::default();
        let e = parse_into(
            &mut c,
            "x.sql",
            "CREATE DATABASE d;\nCREATE TABLE d.t (\n  a INT,\n  b ARRAY<INT>\n) DUPLICATE KEY(a);",
        )
        .unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.reason.contains("ARRAY"), "{e}");
        let e = parse_into(&mut c, "y.sql", "CREATE VIEW v AS SELECT 1;").unwrap_err();
        assert_eq!((e.source_name.as_str(), e.line), ("y.sql", 1));
    }
}
