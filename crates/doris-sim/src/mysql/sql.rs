//! The SQL the FE query port answers, parsed with `sqlparser` (MySQL dialect) and run against the stored rows:
//! reads of one table (columns or `*`, `WHERE` over any columns, `ORDER BY`, `LIMIT`, `COUNT`/`MIN`/`MAX`), the
//! catalog (`SHOW DATABASES/TABLES`, `SHOW CREATE TABLE`, `DESC`), session statements clients send on connect
//! (`SET …`, `SELECT @@var`, `USE`), and single-table `INSERT … VALUES` / `UPDATE` / `DELETE` (each one transaction,
//! as a Doris `INSERT` is). Anything else is answered with an error naming the statement, never a guess.
//!
//! Reads see what `/api/_sim/{db}/{table}/rows` sees: visible rows only (delete-sign rows hidden), values rendered
//! as Doris's MySQL protocol shows them (DECIMAL with its scale, DATETIME with the column's precision, booleans as
//! 0/1, NULL as NULL).

use std::cmp::Ordering;
use std::ops::Bound;

use opensrv_mysql::{ColumnFlags, ColumnType, ErrorKind};
use sqlparser::ast::{
    self, AssignmentTarget, BinaryOperator, Expr, FromTable, FunctionArg, FunctionArgExpr,
    FunctionArguments, GroupByExpr, LimitClause, ObjectName, ObjectNamePart, OrderByKind,
    SelectItem, SetExpr, Statement, TableFactor, UnaryOperator,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::ddl::{ColumnDef, KeyModel, Sequence, TableDef};
use crate::state::{BeginError, NewKeys, State};
use crate::table::{KeyFilter, RowOp};
use crate::value::{parse_text, ColType, ConvError, LoadTz, Value};

/// What `SELECT VERSION()` and the handshake report: Doris FEs present themselves as MySQL 5.7.99.
pub const SERVER_VERSION: &str = "5.7.99";

/// The hidden columns Doris shows after `SET show_hidden_columns = true`.
const SEQUENCE_COL: &str = "__DORIS_SEQUENCE_COL__";
const DELETE_SIGN: &str = "__DORIS_DELETE_SIGN__";

/// One connection's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Current database (`USE`, or the one named at connect).
    pub db: Option<String>,
    pub user: String,
    pub connection_id: u32,
    /// `SET show_hidden_columns = true`: `__DORIS_SEQUENCE_COL__` and `__DORIS_DELETE_SIGN__` become selectable.
    pub show_hidden_columns: bool,
}

/// A result column.
#[derive(Debug, Clone)]
pub struct OutColumn {
    pub name: String,
    pub table: String,
    pub ty: ColumnType,
    pub flags: ColumnFlags,
}

/// The answer to one statement.
#[derive(Debug)]
pub enum Reply {
    Rows {
        columns: Vec<OutColumn>,
        rows: Vec<Vec<Option<String>>>,
    },
    Ok {
        affected: u64,
        info: String,
    },
    Err(SqlError),
}

/// A statement refused, with the MySQL error code clients see.
#[derive(Debug, Clone)]
pub struct SqlError {
    pub kind: ErrorKind,
    pub msg: String,
}

fn err<T>(kind: ErrorKind, msg: impl Into<String>) -> Result<T, SqlError> {
    Err(SqlError {
        kind,
        msg: msg.into(),
    })
}

fn unsupported<T>(what: impl std::fmt::Display) -> Result<T, SqlError> {
    err(
        ErrorKind::ER_NOT_SUPPORTED_YET,
        format!("doris-sim does not support this statement: {what}"),
    )
}

/// Runs one query-port statement.
pub fn execute(state: &State, session: &mut Session, sql: &str) -> Reply {
    match execute_inner(state, session, sql) {
        Ok(r) => r,
        Err(e) => Reply::Err(e),
    }
}

fn execute_inner(state: &State, session: &mut Session, sql: &str) -> Result<Reply, SqlError> {
    let statements = match Parser::parse_sql(&MySqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => {
            return err(
                ErrorKind::ER_PARSE_ERROR,
                format!("syntax error in {:?}: {e}", sql.trim()),
            )
        }
    };
    let statement = match statements.as_slice() {
        [] => return err(ErrorKind::ER_EMPTY_QUERY, "Query was empty"),
        [one] => one,
        _ => return unsupported("several statements in one query"),
    };
    match statement {
        Statement::Query(q) => query(state, session, q),
        Statement::Set(_) => {
            set(session, statement);
            Ok(ok(0))
        }
        Statement::Use(u) => {
            let name = match u {
                ast::Use::Catalog(n)
                | ast::Use::Schema(n)
                | ast::Use::Database(n)
                | ast::Use::Object(n) => last_ident(n)?,
                _ => return unsupported(statement),
            };
            use_db(state, session, &name)?;
            Ok(ok(0))
        }
        Statement::ShowDatabases { .. } | Statement::ShowSchemas { .. } => {
            let mut names: Vec<String> = state.catalog.databases.clone();
            names.push("information_schema".into());
            names.sort();
            Ok(text_rows(
                &["Database"],
                names.into_iter().map(|n| vec![Some(n)]),
            ))
        }
        Statement::ShowTables { show_options, .. } => {
            let db = match &show_options.show_in {
                Some(si) => match &si.parent_name {
                    Some(n) => last_ident(n)?,
                    None => current_db(session)?,
                },
                None => current_db(session)?,
            };
            if !state.catalog.has_db(&db) {
                return err(
                    ErrorKind::ER_BAD_DB_ERROR,
                    format!("Unknown database '{db}'"),
                );
            }
            let header = format!("Tables_in_{db}");
            let mut names: Vec<String> = state
                .catalog
                .tables
                .iter()
                .filter(|t| t.db == db)
                .map(|t| t.name.clone())
                .collect();
            names.sort();
            Ok(text_rows(
                &[&header],
                names.into_iter().map(|n| vec![Some(n)]),
            ))
        }
        Statement::ShowCreate { obj_type, obj_name } => {
            if !matches!(obj_type, ast::ShowCreateObject::Table) {
                return unsupported(statement);
            }
            let idx = resolve_table(state, session, obj_name)?;
            let def = state.table_def(idx);
            Ok(text_rows(
                &["Table", "Create Table"],
                [vec![Some(def.name.clone()), Some(show_create(def))]],
            ))
        }
        Statement::ExplainTable { table_name, .. } => {
            let idx = resolve_table(state, session, table_name)?;
            Ok(describe(state.table_def(idx)))
        }
        Statement::ShowVariables { filter, .. } => {
            let pattern = match filter {
                Some(ast::ShowStatementFilter::Like(p)) => Some(p.clone()),
                None => None,
                Some(_) => return unsupported(statement),
            };
            let rows = VARIABLES
                .iter()
                .filter(|(name, _)| pattern.as_deref().is_none_or(|p| like(p, name)))
                .map(|(name, value)| vec![Some((*name).to_owned()), Some(variable_text(value))]);
            Ok(text_rows(&["Variable_name", "Value"], rows))
        }
        Statement::ShowStatus { .. } => {
            Ok(text_rows(&["Variable_name", "Value"], std::iter::empty()))
        }
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => {
            // Each statement is its own transaction here, as with autocommit.
            Ok(ok(0))
        }
        Statement::Insert(ins) => insert(state, session, ins),
        Statement::Update(upd) => update(state, session, upd),
        Statement::Delete(del) => delete(state, session, del),
        other => unsupported(other),
    }
}

fn ok(affected: u64) -> Reply {
    Reply::Ok {
        affected,
        info: String::new(),
    }
}

fn text_rows(names: &[&str], rows: impl IntoIterator<Item = Vec<Option<String>>>) -> Reply {
    Reply::Rows {
        columns: names
            .iter()
            .map(|n| OutColumn {
                name: (*n).to_owned(),
                table: String::new(),
                ty: ColumnType::MYSQL_TYPE_VAR_STRING,
                flags: ColumnFlags::empty(),
            })
            .collect(),
        rows: rows.into_iter().collect(),
    }
}

fn current_db(session: &Session) -> Result<String, SqlError> {
    session.db.clone().map_or_else(
        || err(ErrorKind::ER_NO_DB_ERROR, "No database selected"),
        Ok,
    )
}

/// `USE db` and `COM_INIT_DB`.
pub fn use_db(state: &State, session: &mut Session, name: &str) -> Result<(), SqlError> {
    let name = name.trim().trim_matches('`');
    if !state.catalog.has_db(name) {
        return err(
            ErrorKind::ER_BAD_DB_ERROR,
            format!("Unknown database '{name}'"),
        );
    }
    session.db = Some(name.to_owned());
    Ok(())
}

fn ident_parts(name: &ObjectName) -> Result<Vec<String>, SqlError> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(i.value.clone()),
            ObjectNamePart::Function(_) => unsupported(name),
        })
        .collect()
}

fn last_ident(name: &ObjectName) -> Result<String, SqlError> {
    ident_parts(name)?
        .pop()
        .map_or_else(|| unsupported(name), Ok)
}

/// `[db.]table` → the catalog index.
fn resolve_table(state: &State, session: &Session, name: &ObjectName) -> Result<usize, SqlError> {
    let parts = ident_parts(name)?;
    let (db, table) = match parts.as_slice() {
        [t] => (current_db(session)?, t.clone()),
        [d, t] => (d.clone(), t.clone()),
        // internal.db.table (Doris's catalog prefix)
        [c, d, t] if c.eq_ignore_ascii_case("internal") => (d.clone(), t.clone()),
        _ => return unsupported(format!("table name {name}")),
    };
    if !state.catalog.has_db(&db) {
        return err(
            ErrorKind::ER_BAD_DB_ERROR,
            format!("Unknown database '{db}'"),
        );
    }
    match state.catalog.table(&db, &table) {
        Some(idx) => Ok(idx),
        None => err(
            ErrorKind::ER_NO_SUCH_TABLE,
            format!("Table [{table}] does not exist in database [{db}]"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Session variables

enum Var {
    Int(i64),
    Str(&'static str),
    Null,
}

/// Variables clients read on connect (`SELECT @@…`, `SHOW VARIABLES`), with the values a default Doris FE shows.
const VARIABLES: &[(&str, Var)] = &[
    ("auto_increment_increment", Var::Int(1)),
    ("autocommit", Var::Int(1)),
    ("character_set_client", Var::Str("utf8mb4")),
    ("character_set_connection", Var::Str("utf8mb4")),
    ("character_set_database", Var::Str("utf8mb4")),
    ("character_set_results", Var::Str("utf8mb4")),
    ("character_set_server", Var::Str("utf8mb4")),
    ("collation_connection", Var::Str("utf8mb4_0900_bin")),
    ("collation_database", Var::Str("utf8mb4_0900_bin")),
    ("collation_server", Var::Str("utf8mb4_0900_bin")),
    ("init_connect", Var::Str("")),
    ("interactive_timeout", Var::Int(3600)),
    ("language", Var::Str("/palo/share/english/")),
    ("license", Var::Str("Apache License, Version 2.0")),
    ("lower_case_table_names", Var::Int(0)),
    ("max_allowed_packet", Var::Int(16_777_216)),
    ("net_buffer_length", Var::Int(16_384)),
    ("net_write_timeout", Var::Int(600)),
    ("performance_schema", Var::Int(0)),
    ("query_cache_size", Var::Int(1_048_576)),
    ("query_cache_type", Var::Int(0)),
    ("show_hidden_columns", Var::Int(0)),
    ("socket", Var::Null),
    ("sql_mode", Var::Str("ONLY_FULL_GROUP_BY")),
    ("sql_select_limit", Var::Int(9_223_372_036_854_775_807)),
    ("system_time_zone", Var::Str("UTC")),
    ("time_zone", Var::Str("Asia/Shanghai")),
    ("transaction_isolation", Var::Str("REPEATABLE-READ")),
    ("transaction_read_only", Var::Int(0)),
    ("tx_isolation", Var::Str("REPEATABLE-READ")),
    ("tx_read_only", Var::Int(0)),
    ("version", Var::Str(SERVER_VERSION)),
    (
        "version_comment",
        Var::Str(concat!(
            "Doris version doris-sim-",
            env!("CARGO_PKG_VERSION"),
            " (an emulator, not Apache Doris)"
        )),
    ),
    ("wait_timeout", Var::Int(28_800)),
];

fn variable_text(v: &Var) -> String {
    match v {
        Var::Int(i) => i.to_string(),
        Var::Str(s) => (*s).to_owned(),
        Var::Null => String::new(),
    }
}

fn variable(session: &Session, name: &str) -> Result<(Option<String>, ColumnType), SqlError> {
    let bare = name.trim_start_matches("@@");
    let lower = bare.to_ascii_lowercase();
    let key = lower
        .strip_prefix("session.")
        .or_else(|| lower.strip_prefix("global."))
        .or_else(|| lower.strip_prefix("local."))
        .unwrap_or(&lower);
    if key == "show_hidden_columns" {
        return Ok((
            Some(
                if session.show_hidden_columns {
                    "1"
                } else {
                    "0"
                }
                .into(),
            ),
            ColumnType::MYSQL_TYPE_LONGLONG,
        ));
    }
    match VARIABLES.iter().find(|(n, _)| *n == key) {
        Some((_, Var::Int(i))) => Ok((Some(i.to_string()), ColumnType::MYSQL_TYPE_LONGLONG)),
        Some((_, Var::Str(s))) => Ok((Some((*s).to_owned()), ColumnType::MYSQL_TYPE_VAR_STRING)),
        Some((_, Var::Null)) => Ok((None, ColumnType::MYSQL_TYPE_VAR_STRING)),
        None => err(
            ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE,
            format!("Unknown system variable '{bare}'"),
        ),
    }
}

/// `SET …`: accepted (clients set names, autocommit, sql_mode on connect); `show_hidden_columns` is remembered.
fn set(session: &mut Session, statement: &Statement) {
    if let Statement::Set(ast::Set::SingleAssignment {
        variable, values, ..
    }) = statement
    {
        let name = variable.to_string().to_ascii_lowercase();
        if name
            .trim_start_matches("@@")
            .ends_with("show_hidden_columns")
        {
            session.show_hidden_columns = values.first().is_some_and(|v| {
                let t = v.to_string().to_ascii_lowercase();
                t == "true" || t == "1"
            });
        }
    }
}

/// SQL `LIKE` with `%` and `_` (case-insensitive, as `SHOW VARIABLES LIKE` is).
fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((b'_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t
                .split_first()
                .is_some_and(|(d, tr)| c.eq_ignore_ascii_case(d) && go(rest, tr)),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

// ---------------------------------------------------------------------------------------------------------------
// SELECT

fn query(state: &State, session: &Session, q: &ast::Query) -> Result<Reply, SqlError> {
    if q.with.is_some() || q.fetch.is_some() || !q.locks.is_empty() {
        return unsupported(q);
    }
    let SetExpr::Select(select) = q.body.as_ref() else {
        return unsupported(q);
    };
    if select.distinct.is_some()
        || select.having.is_some()
        || !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
    {
        return unsupported(q);
    }
    let (limit, offset) = limit_offset(q.limit_clause.as_ref())?;
    match select.from.as_slice() {
        [] => {
            if select.selection.is_some() || q.order_by.is_some() {
                return unsupported(q);
            }
            constant_select(session, &select.projection, limit)
        }
        [from] if from.joins.is_empty() => {
            let TableFactor::Table { name, .. } = &from.relation else {
                return unsupported(q);
            };
            let idx = resolve_table(state, session, name)?;
            let order = match &q.order_by {
                None => Vec::new(),
                Some(ob) => match &ob.kind {
                    OrderByKind::Expressions(list) => list
                        .iter()
                        .map(|o| {
                            let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                            Ok((column_of(state.table_def(idx), session, &o.expr)?, desc))
                        })
                        .collect::<Result<Vec<_>, SqlError>>()?,
                    OrderByKind::All(_) => return unsupported(q),
                },
            };
            table_select(
                state,
                session,
                idx,
                &select.projection,
                select.selection.as_ref(),
                &order,
                limit,
                offset,
            )
        }
        _ => unsupported(q),
    }
}

fn limit_offset(clause: Option<&LimitClause>) -> Result<(Option<u64>, u64), SqlError> {
    let number = |e: &Expr| -> Result<u64, SqlError> {
        match e {
            Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => n.parse().map_or_else(
                    |_| err(ErrorKind::ER_PARSE_ERROR, format!("bad LIMIT/OFFSET {n}")),
                    Ok,
                ),
                other => unsupported(format!("LIMIT/OFFSET {other}")),
            },
            other => unsupported(format!("LIMIT/OFFSET {other}")),
        }
    };
    match clause {
        None => Ok((None, 0)),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return unsupported("LIMIT BY");
            }
            let l = limit.as_ref().map(number).transpose()?;
            let o = offset.as_ref().map(|o| number(&o.value)).transpose()?;
            Ok((l, o.unwrap_or(0)))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            Ok((Some(number(limit)?), number(offset)?))
        }
    }
}

/// `SELECT` without `FROM`: variables, `VERSION()`, `DATABASE()`, `USER()`, `CONNECTION_ID()`, literals.
fn constant_select(
    session: &Session,
    projection: &[SelectItem],
    limit: Option<u64>,
) -> Result<Reply, SqlError> {
    let mut columns = Vec::new();
    let mut row = Vec::new();
    for item in projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            other => return unsupported(format!("SELECT {other}")),
        };
        let (value, ty) = constant(session, expr)?;
        columns.push(OutColumn {
            name: alias.unwrap_or_else(|| expr.to_string()),
            table: String::new(),
            ty,
            flags: ColumnFlags::empty(),
        });
        row.push(value);
    }
    let rows = if limit == Some(0) {
        Vec::new()
    } else {
        vec![row]
    };
    Ok(Reply::Rows { columns, rows })
}

fn constant(session: &Session, expr: &Expr) -> Result<(Option<String>, ColumnType), SqlError> {
    match expr {
        Expr::Identifier(id) if id.value.starts_with("@@") => variable(session, &id.value),
        Expr::CompoundIdentifier(parts)
            if parts.first().is_some_and(|p| p.value.starts_with("@@")) =>
        {
            let name: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
            variable(session, &name.join("."))
        }
        Expr::Value(v) => Ok(match &v.value {
            ast::Value::Number(n, _) => (Some(n.clone()), ColumnType::MYSQL_TYPE_LONGLONG),
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                (Some(s.clone()), ColumnType::MYSQL_TYPE_VAR_STRING)
            }
            ast::Value::Boolean(b) => (
                Some(if *b { "1" } else { "0" }.into()),
                ColumnType::MYSQL_TYPE_TINY,
            ),
            ast::Value::Null => (None, ColumnType::MYSQL_TYPE_NULL),
            other => return unsupported(format!("SELECT {other}")),
        }),
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            let no_args = match &f.args {
                FunctionArguments::None => true,
                FunctionArguments::List(l) => l.args.is_empty(),
                FunctionArguments::Subquery(_) => false,
            };
            if !no_args {
                return unsupported(format!("SELECT {expr}"));
            }
            let text = |s: String| Ok((Some(s), ColumnType::MYSQL_TYPE_VAR_STRING));
            match name.as_str() {
                "version" => text(SERVER_VERSION.into()),
                "database" | "schema" => {
                    Ok((session.db.clone(), ColumnType::MYSQL_TYPE_VAR_STRING))
                }
                "user" | "current_user" | "session_user" | "system_user" => {
                    text(format!("'{}'@'%'", session.user))
                }
                "connection_id" => Ok((
                    Some(session.connection_id.to_string()),
                    ColumnType::MYSQL_TYPE_LONGLONG,
                )),
                _ => unsupported(format!("SELECT {expr}")),
            }
        }
        _ => unsupported(format!("SELECT {expr}")),
    }
}

/// What a `SELECT … FROM t` returns per row.
enum Projection {
    Column(usize),
    Sequence,
    DeleteSign,
}

enum Aggregate {
    CountAll,
    Count(usize),
    Min(usize),
    Max(usize),
}

/// A column named in an expression (`c`, `t.c`, `db.t.c`), or one of the hidden columns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ColRef {
    Column(usize),
    Sequence,
}

fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Identifier(id) => Some(&id.value),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.as_str()),
        Expr::Nested(e) => column_name(e),
        _ => None,
    }
}

fn column_of(def: &TableDef, session: &Session, expr: &Expr) -> Result<ColRef, SqlError> {
    let Some(name) = column_name(expr) else {
        return unsupported(format!("expression {expr}"));
    };
    if let Some(i) = def.column_index(name) {
        return Ok(ColRef::Column(i));
    }
    if session.show_hidden_columns
        && name.eq_ignore_ascii_case(SEQUENCE_COL)
        && def.sequence != Sequence::None
    {
        return Ok(ColRef::Sequence);
    }
    err(
        ErrorKind::ER_BAD_FIELD_ERROR,
        format!("Unknown column '{name}' in 'table list'"),
    )
}

/// The type a column reference compares and renders as.
fn ref_type(def: &TableDef, c: ColRef) -> &ColType {
    match c {
        ColRef::Column(i) => &def.columns[i].ty,
        ColRef::Sequence => def.sequence_type().unwrap_or(&ColType::BigInt),
    }
}

fn ref_value<'a>(row: &'a [Value], seq: &'a Value, def: &TableDef, c: ColRef) -> &'a Value {
    match c {
        ColRef::Column(i) => &row[i],
        ColRef::Sequence => match def.sequence {
            Sequence::Column(i) => &row[i],
            _ => seq,
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn table_select(
    state: &State,
    session: &Session,
    idx: usize,
    projection: &[SelectItem],
    selection: Option<&Expr>,
    order: &[(ColRef, bool)],
    limit: Option<u64>,
    offset: u64,
) -> Result<Reply, SqlError> {
    let def = state.table_def(idx);
    let mut columns = Vec::new();
    let mut projs = Vec::new();
    let mut aggs = Vec::new();
    for item in projection {
        let (expr, alias) = match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                for (i, c) in def.columns.iter().enumerate() {
                    columns.push(out_column(def, &c.name, &c.ty, !c.nullable));
                    projs.push(Projection::Column(i));
                }
                if session.show_hidden_columns && def.model == KeyModel::Unique {
                    columns.push(out_column(def, DELETE_SIGN, &ColType::TinyInt, true));
                    projs.push(Projection::DeleteSign);
                    if let Some(ty) = def.sequence_type() {
                        columns.push(out_column(def, SEQUENCE_COL, ty, false));
                        projs.push(Projection::Sequence);
                    }
                }
                continue;
            }
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            other => return unsupported(format!("SELECT {other}")),
        };
        if let Expr::Function(f) = expr {
            let name = f.name.to_string().to_ascii_lowercase();
            let FunctionArguments::List(list) = &f.args else {
                return unsupported(format!("SELECT {expr}"));
            };
            // Doris names an unaliased aggregate in lower case: `count(*)`.
            let label = alias.unwrap_or_else(|| expr.to_string().to_ascii_lowercase());
            match (name.as_str(), list.args.as_slice()) {
                ("count", [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]) => {
                    columns.push(out_column(def, &label, &ColType::BigInt, true));
                    aggs.push(Aggregate::CountAll);
                }
                ("count", [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(_)))]) => {
                    columns.push(out_column(def, &label, &ColType::BigInt, true));
                    aggs.push(Aggregate::CountAll);
                }
                ("count" | "min" | "max", [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))]) => {
                    let ColRef::Column(i) = column_of(def, session, arg)? else {
                        return unsupported(format!("SELECT {expr}"));
                    };
                    if name == "count" {
                        columns.push(out_column(def, &label, &ColType::BigInt, true));
                        aggs.push(Aggregate::Count(i));
                    } else {
                        columns.push(out_column(def, &label, &def.columns[i].ty, false));
                        aggs.push(if name == "min" {
                            Aggregate::Min(i)
                        } else {
                            Aggregate::Max(i)
                        });
                    }
                }
                _ => return unsupported(format!("SELECT {expr}")),
            }
            continue;
        }
        let c = column_of(def, session, expr)?;
        let name = alias.unwrap_or_else(|| column_name(expr).unwrap_or_default().to_owned());
        match c {
            ColRef::Column(i) => {
                columns.push(out_column(
                    def,
                    &name,
                    &def.columns[i].ty,
                    !def.columns[i].nullable,
                ));
                projs.push(Projection::Column(i));
            }
            ColRef::Sequence => {
                columns.push(out_column(def, &name, ref_type(def, c), false));
                projs.push(Projection::Sequence);
            }
        }
    }
    if !aggs.is_empty() && !projs.is_empty() {
        return err(
            ErrorKind::ER_UNKNOWN_ERROR,
            "errCode = 2, detailMessage = a SELECT mixing aggregates and columns needs GROUP BY, which doris-sim does not support",
        );
    }
    let filter = match selection {
        Some(e) => Some(compile(def, session, e, state.knobs.default_tz)?),
        None => None,
    };
    let keys = filter.as_ref().map_or(KeyFilter::All, key_filter);
    // Rows come in key order: with no other ORDER BY the LIMIT can stop the scan early.
    let key_ordered = order.is_empty()
        || (order.len() == 1
            && order[0] == (ColRef::Column(0), false)
            && def.model != KeyModel::Duplicate);
    let stop_after = match (aggs.is_empty(), key_ordered, limit) {
        (true, true, Some(l)) => Some(offset.saturating_add(l)),
        _ => None,
    };
    state.flush_due();
    let mut matched: Vec<(Vec<Value>, Value)> = Vec::new();
    let mut agg_state: Vec<Option<Value>> = aggs.iter().map(|_| None).collect();
    let mut counts: Vec<u64> = vec![0; aggs.len()];
    {
        let g = state.lock();
        g.tables[idx].data.scan(def, &keys, |row, seq| {
            if let Some(f) = &filter {
                if eval(f, row, seq, def) != Some(true) {
                    return true;
                }
            }
            if aggs.is_empty() {
                matched.push((row.to_vec(), seq.clone()));
                return stop_after.is_none_or(|n| (matched.len() as u64) < n);
            }
            for (k, a) in aggs.iter().enumerate() {
                match a {
                    Aggregate::CountAll => counts[k] += 1,
                    Aggregate::Count(i) => counts[k] += u64::from(!row[*i].is_null()),
                    Aggregate::Min(i) | Aggregate::Max(i) => {
                        let v = &row[*i];
                        if v.is_null() {
                            continue;
                        }
                        let better = match &agg_state[k] {
                            None => true,
                            Some(cur) => {
                                let ord = v.cmp(cur);
                                if matches!(a, Aggregate::Min(_)) {
                                    ord == Ordering::Less
                                } else {
                                    ord == Ordering::Greater
                                }
                            }
                        };
                        if better {
                            agg_state[k] = Some(v.clone());
                        }
                    }
                }
            }
            true
        });
    }
    if !aggs.is_empty() {
        let row: Vec<Option<String>> = aggs
            .iter()
            .enumerate()
            .map(|(k, a)| match a {
                Aggregate::CountAll | Aggregate::Count(_) => Some(counts[k].to_string()),
                Aggregate::Min(i) | Aggregate::Max(i) => agg_state[k]
                    .as_ref()
                    .and_then(|v| v.to_text(&def.columns[*i].ty)),
            })
            .collect();
        let rows = if limit == Some(0) || offset > 0 {
            Vec::new()
        } else {
            vec![row]
        };
        return Ok(Reply::Rows { columns, rows });
    }
    if !key_ordered {
        matched.sort_by(|(a, sa), (b, sb)| {
            for (c, desc) in order {
                let ord = ref_value(a, sa, def, *c).cmp(ref_value(b, sb, def, *c));
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
    }
    let skip = usize::try_from(offset).unwrap_or(usize::MAX);
    let take = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let rows = matched
        .iter()
        .skip(skip)
        .take(take)
        .map(|(row, seq)| {
            projs
                .iter()
                .map(|p| match p {
                    Projection::Column(i) => row[*i].to_text(&def.columns[*i].ty),
                    Projection::DeleteSign => Some("0".into()),
                    Projection::Sequence => ref_value(row, seq, def, ColRef::Sequence)
                        .to_text(ref_type(def, ColRef::Sequence)),
                })
                .collect()
        })
        .collect();
    Ok(Reply::Rows { columns, rows })
}

fn out_column(def: &TableDef, name: &str, ty: &ColType, not_null: bool) -> OutColumn {
    OutColumn {
        name: name.to_owned(),
        table: def.name.clone(),
        ty: mysql_type(ty),
        flags: if not_null {
            ColumnFlags::NOT_NULL_FLAG
        } else {
            ColumnFlags::empty()
        },
    }
}

/// The MySQL column type Doris's FE reports for a column type.
fn mysql_type(ty: &ColType) -> ColumnType {
    match ty {
        ColType::Boolean | ColType::TinyInt => ColumnType::MYSQL_TYPE_TINY,
        ColType::SmallInt => ColumnType::MYSQL_TYPE_SHORT,
        ColType::Int => ColumnType::MYSQL_TYPE_LONG,
        ColType::BigInt => ColumnType::MYSQL_TYPE_LONGLONG,
        // Doris sends LARGEINT as a string column (it does not fit MySQL's integer types).
        ColType::LargeInt => ColumnType::MYSQL_TYPE_STRING,
        ColType::Float => ColumnType::MYSQL_TYPE_FLOAT,
        ColType::Double => ColumnType::MYSQL_TYPE_DOUBLE,
        ColType::Decimal { .. } => ColumnType::MYSQL_TYPE_NEWDECIMAL,
        ColType::Date => ColumnType::MYSQL_TYPE_DATE,
        ColType::DateTime { .. } => ColumnType::MYSQL_TYPE_DATETIME,
        ColType::Char(_) => ColumnType::MYSQL_TYPE_STRING,
        ColType::Varchar(_) | ColType::String => ColumnType::MYSQL_TYPE_VAR_STRING,
        ColType::Json => ColumnType::MYSQL_TYPE_JSON,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// WHERE

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            other => other,
        }
    }
}

/// A compiled `WHERE`: comparisons of a column with literals converted to the column's type.
#[derive(Debug)]
enum Pred {
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Not(Box<Pred>),
    Cmp(ColRef, CmpOp, Value),
    In(ColRef, Vec<Value>, bool),
    IsNull(ColRef, bool),
    Const(Option<bool>),
}

fn literal_text(expr: &Expr) -> Result<Option<String>, SqlError> {
    match expr {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => Ok(Some(n.clone())),
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                Ok(Some(s.clone()))
            }
            ast::Value::Boolean(b) => Ok(Some(if *b { "1" } else { "0" }.into())),
            ast::Value::Null => Ok(None),
            other => unsupported(format!("literal {other}")),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal_text(expr)? {
            Some(t) => Ok(Some(format!("-{t}"))),
            None => Ok(None),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } => literal_text(expr),
        Expr::Nested(e) => literal_text(e),
        other => unsupported(format!(
            "expression {other} (only literals compare with columns)"
        )),
    }
}

/// A literal as a value of `ty` (`None` for NULL).
fn literal(ty: &ColType, expr: &Expr, tz: LoadTz) -> Result<Option<Value>, SqlError> {
    let Some(text) = literal_text(expr)? else {
        return Ok(None);
    };
    match parse_text(ty, &text, tz) {
        Ok(v) => Ok(Some(v)),
        // A string longer than the column can hold equals no stored value; compare it as-is.
        Err(ConvError::TooLong { .. }) => Ok(Some(Value::Str(text.into()))),
        Err(_) => err(
            ErrorKind::ER_WRONG_VALUE,
            format!("{text:?} is not a value of type {}", ty.sql_name()),
        ),
    }
}

fn compile(def: &TableDef, session: &Session, e: &Expr, tz: LoadTz) -> Result<Pred, SqlError> {
    let col = |x: &Expr| column_of(def, session, x);
    Ok(match e {
        Expr::Nested(inner) => compile(def, session, inner, tz)?,
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => Pred::And(
                Box::new(compile(def, session, left, tz)?),
                Box::new(compile(def, session, right, tz)?),
            ),
            BinaryOperator::Or => Pred::Or(
                Box::new(compile(def, session, left, tz)?),
                Box::new(compile(def, session, right, tz)?),
            ),
            _ => {
                let op = match op {
                    BinaryOperator::Eq => CmpOp::Eq,
                    BinaryOperator::NotEq => CmpOp::NotEq,
                    BinaryOperator::Lt => CmpOp::Lt,
                    BinaryOperator::LtEq => CmpOp::LtEq,
                    BinaryOperator::Gt => CmpOp::Gt,
                    BinaryOperator::GtEq => CmpOp::GtEq,
                    other => return unsupported(format!("operator {other} in WHERE")),
                };
                let (c, op, lit) = if column_name(left).is_some() {
                    (col(left)?, op, right.as_ref())
                } else {
                    (col(right)?, op.flip(), left.as_ref())
                };
                match literal(ref_type(def, c), lit, tz)? {
                    Some(v) => Pred::Cmp(c, op, v),
                    None => Pred::Const(None),
                }
            }
        },
        Expr::In {
            expr,
            target,
            negated,
            ..
        } => {
            let ast::InTarget::List(list) = target else {
                return unsupported(format!("WHERE {e}"));
            };
            let c = col(expr)?;
            let mut values = Vec::with_capacity(list.len());
            for item in list {
                if let Some(v) = literal(ref_type(def, c), item, tz)? {
                    values.push(v);
                }
            }
            values.sort();
            values.dedup();
            Pred::In(c, values, *negated)
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let c = col(expr)?;
            let ty = ref_type(def, c);
            let (Some(lo), Some(hi)) = (literal(ty, low, tz)?, literal(ty, high, tz)?) else {
                return Ok(Pred::Const(None));
            };
            let both = Pred::And(
                Box::new(Pred::Cmp(c, CmpOp::GtEq, lo)),
                Box::new(Pred::Cmp(c, CmpOp::LtEq, hi)),
            );
            if *negated {
                Pred::Not(Box::new(both))
            } else {
                both
            }
        }
        Expr::IsNull(x) => Pred::IsNull(col(x)?, false),
        Expr::IsNotNull(x) => Pred::IsNull(col(x)?, true),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Pred::Not(Box::new(compile(def, session, expr, tz)?)),
        Expr::Value(v) => match &v.value {
            ast::Value::Boolean(b) => Pred::Const(Some(*b)),
            ast::Value::Number(n, _) => Pred::Const(Some(n.parse::<f64>().is_ok_and(|x| x != 0.0))),
            _ => return unsupported(format!("WHERE {e}")),
        },
        other => return unsupported(format!("WHERE {other}")),
    })
}

/// SQL three-valued logic: `None` is UNKNOWN.
fn eval(p: &Pred, row: &[Value], seq: &Value, def: &TableDef) -> Option<bool> {
    match p {
        Pred::And(a, b) => match (eval(a, row, seq, def), eval(b, row, seq, def)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Pred::Or(a, b) => match (eval(a, row, seq, def), eval(b, row, seq, def)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Pred::Not(a) => eval(a, row, seq, def).map(|b| !b),
        Pred::Cmp(c, op, v) => {
            let x = ref_value(row, seq, def, *c);
            if x.is_null() {
                return None;
            }
            let ord = x.cmp(v);
            Some(match op {
                CmpOp::Eq => ord == Ordering::Equal,
                CmpOp::NotEq => ord != Ordering::Equal,
                CmpOp::Lt => ord == Ordering::Less,
                CmpOp::LtEq => ord != Ordering::Greater,
                CmpOp::Gt => ord == Ordering::Greater,
                CmpOp::GtEq => ord != Ordering::Less,
            })
        }
        Pred::In(c, values, negated) => {
            let x = ref_value(row, seq, def, *c);
            if x.is_null() {
                return None;
            }
            Some(values.binary_search(x).is_ok() != *negated)
        }
        Pred::IsNull(c, negated) => Some(ref_value(row, seq, def, *c).is_null() != *negated),
        Pred::Const(b) => *b,
    }
}

/// The keys a filter can possibly match, from the conjuncts on the first key column.
fn key_filter(p: &Pred) -> KeyFilter {
    let key = ColRef::Column(0);
    let mut lo: Bound<Value> = Bound::Unbounded;
    let mut hi: Bound<Value> = Bound::Unbounded;
    let mut points: Option<Vec<Value>> = None;
    let mut conjuncts = vec![p];
    while let Some(c) = conjuncts.pop() {
        match c {
            Pred::And(a, b) => {
                conjuncts.push(a);
                conjuncts.push(b);
            }
            Pred::Cmp(col, op, v) if *col == key => match op {
                CmpOp::Eq => points = Some(vec![v.clone()]),
                CmpOp::Gt => lo = tighter_lo(lo, Bound::Excluded(v.clone())),
                CmpOp::GtEq => lo = tighter_lo(lo, Bound::Included(v.clone())),
                CmpOp::Lt => hi = tighter_hi(hi, Bound::Excluded(v.clone())),
                CmpOp::LtEq => hi = tighter_hi(hi, Bound::Included(v.clone())),
                CmpOp::NotEq => {}
            },
            Pred::In(col, values, false) if *col == key => points = Some(values.clone()),
            _ => {}
        }
    }
    match points {
        Some(p) => KeyFilter::Points(p),
        None => KeyFilter::Range(lo, hi),
    }
}

fn tighter_lo(a: Bound<Value>, b: Bound<Value>) -> Bound<Value> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            match x.cmp(y) {
                Ordering::Less => b,
                Ordering::Greater => a,
                Ordering::Equal => {
                    if matches!(a, Bound::Excluded(_)) {
                        a
                    } else {
                        b
                    }
                }
            }
        }
    }
}

fn tighter_hi(a: Bound<Value>, b: Bound<Value>) -> Bound<Value> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            match x.cmp(y) {
                Ordering::Less => a,
                Ordering::Greater => b,
                Ordering::Equal => {
                    if matches!(a, Bound::Excluded(_)) {
                        a
                    } else {
                        b
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Catalog

fn describe(def: &TableDef) -> Reply {
    let rows = def.columns.iter().enumerate().map(|(i, c)| {
        vec![
            Some(c.name.clone()),
            Some(c.ty.sql_name()),
            Some(if c.nullable { "Yes" } else { "No" }.into()),
            Some(if i < def.key_len { "true" } else { "false" }.into()),
            c.default.clone(),
            Some(extra(def, i, c)),
        ]
    });
    text_rows(&["Field", "Type", "Null", "Key", "Default", "Extra"], rows)
}

fn extra(def: &TableDef, i: usize, c: &ColumnDef) -> String {
    use crate::ddl::AggFn;
    if i < def.key_len {
        return String::new();
    }
    match (def.model, c.agg) {
        (_, Some(AggFn::Sum)) => "SUM".into(),
        (_, Some(AggFn::Max)) => "MAX".into(),
        (_, Some(AggFn::Min)) => "MIN".into(),
        (_, Some(AggFn::Replace)) => "REPLACE".into(),
        (_, Some(AggFn::ReplaceIfNotNull)) => "REPLACE_IF_NOT_NULL".into(),
        (KeyModel::Unique, None) => "REPLACE".into(),
        (_, None) => "NONE".into(),
    }
}

/// `SHOW CREATE TABLE`, rebuilt from the definition in Doris's layout.
fn show_create(def: &TableDef) -> String {
    let mut s = format!("CREATE TABLE `{}` (\n", def.name);
    for (i, c) in def.columns.iter().enumerate() {
        s.push_str(&format!("  `{}` {}", c.name, c.ty.sql_name()));
        if !c.nullable {
            s.push_str(" NOT NULL");
        }
        if let Some(d) = &c.default {
            s.push_str(&format!(" DEFAULT \"{d}\""));
        }
        if i + 1 < def.columns.len() {
            s.push(',');
        }
        s.push('\n');
    }
    let keys: Vec<String> = def.columns[..def.key_len]
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    let model = match def.model {
        KeyModel::Duplicate => "DUPLICATE",
        KeyModel::Unique => "UNIQUE",
        KeyModel::Aggregate => "AGGREGATE",
    };
    s.push_str(&format!(
        ") ENGINE=OLAP\n{model} KEY({keys})\nDISTRIBUTED BY HASH({keys}) BUCKETS {buckets}\nPROPERTIES (\n\
         \"replication_allocation\" = \"tag.location.default: 1\"",
        keys = keys.join(", "),
        buckets = def.buckets
    ));
    if def.model == KeyModel::Unique {
        s.push_str(&format!(
            ",\n\"enable_unique_key_merge_on_write\" = \"{}\"",
            def.merge_on_write
        ));
    }
    match &def.sequence {
        Sequence::None => {}
        Sequence::Column(i) => s.push_str(&format!(
            ",\n\"function_column.sequence_col\" = \"{}\"",
            def.columns[*i].name
        )),
        Sequence::Typed(t) => s.push_str(&format!(
            ",\n\"function_column.sequence_type\" = \"{}\"",
            t.sql_name()
        )),
    }
    s.push_str("\n);");
    s
}

// ---------------------------------------------------------------------------------------------------------------
// INSERT / UPDATE / DELETE: one transaction each, through the same commit as a Stream Load.

fn table_of(state: &State, session: &Session, t: &ast::TableWithJoins) -> Result<usize, SqlError> {
    if !t.joins.is_empty() {
        return unsupported("a join in UPDATE or DELETE");
    }
    let TableFactor::Table { name, .. } = &t.relation else {
        return unsupported(format!("table {}", t.relation));
    };
    resolve_table(state, session, name)
}

/// Rows matching `selection` (all rows when `None`), with their sequence values.
fn matching_rows(
    state: &State,
    session: &Session,
    idx: usize,
    selection: Option<&Expr>,
) -> Result<Vec<(Vec<Value>, Value)>, SqlError> {
    let def = state.table_def(idx);
    let filter = match selection {
        Some(e) => Some(compile(def, session, e, state.knobs.default_tz)?),
        None => None,
    };
    let keys = filter.as_ref().map_or(KeyFilter::All, key_filter);
    state.flush_due();
    let mut out = Vec::new();
    state.lock().tables[idx].data.scan(def, &keys, |row, seq| {
        if filter
            .as_ref()
            .is_none_or(|f| eval(f, row, seq, def) == Some(true))
        {
            out.push((row.to_vec(), seq.clone()));
        }
        true
    });
    Ok(out)
}

fn commit(state: &State, idx: usize, ops: Vec<RowOp>, verb: &str) -> Result<Reply, SqlError> {
    let def = state.table_def(idx);
    let n = ops.len() as u64;
    let label = format!("{verb}_{}", uuid::Uuid::new_v4().simple());
    let txn = match state.begin(&def.db, idx, &label) {
        Ok(t) => t,
        Err(BeginError::LabelExists { .. }) => {
            return err(
                ErrorKind::ER_UNKNOWN_ERROR,
                format!("label {label} already exists"),
            )
        }
    };
    if let Err(msg) = state.commit_with_visibility(txn, ops, false, None, None, NewKeys::Append) {
        return err(
            ErrorKind::ER_UNKNOWN_ERROR,
            format!("errCode = 2, detailMessage = {msg}"),
        );
    }
    Ok(Reply::Ok {
        affected: n,
        info: format!("{{'label':'{label}', 'status':'VISIBLE', 'txnId':'{txn}'}}"),
    })
}

fn require_unique(def: &TableDef, verb: &str) -> Result<(), SqlError> {
    if def.model != KeyModel::Unique {
        return err(
            ErrorKind::ER_UNKNOWN_ERROR,
            format!(
                "errCode = 2, detailMessage = {verb} is only supported on a UNIQUE KEY table here; {}.{} is not",
                def.db, def.name
            ),
        );
    }
    Ok(())
}

fn delete(state: &State, session: &Session, del: &ast::Delete) -> Result<Reply, SqlError> {
    let tables = match &del.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let [table] = tables.as_slice() else {
        return unsupported("DELETE of several tables");
    };
    if del.using.is_some() || del.limit.is_some() || !del.order_by.is_empty() {
        return unsupported("DELETE with USING, ORDER BY or LIMIT");
    }
    let idx = table_of(state, session, table)?;
    let def = state.table_def(idx);
    require_unique(def, "DELETE")?;
    if del.selection.is_none() {
        return err(
            ErrorKind::ER_UNKNOWN_ERROR,
            "errCode = 2, detailMessage = DELETE needs a WHERE clause (use TRUNCATE TABLE to empty a table)",
        );
    }
    let ops = matching_rows(state, session, idx, del.selection.as_ref())?
        .into_iter()
        .map(|(values, seq)| RowOp {
            values: values.into(),
            delete: true,
            seq,
            present: None,
        })
        .collect();
    commit(state, idx, ops, "delete")
}

fn update(state: &State, session: &Session, upd: &ast::Update) -> Result<Reply, SqlError> {
    if upd.from.is_some() || upd.limit.is_some() || !upd.order_by.is_empty() {
        return unsupported("UPDATE with FROM, ORDER BY or LIMIT");
    }
    let idx = table_of(state, session, &upd.table)?;
    let def = state.table_def(idx);
    require_unique(def, "UPDATE")?;
    let tz = state.knobs.default_tz;
    let mut sets = Vec::new();
    for a in &upd.assignments {
        let AssignmentTarget::ColumnName(name) = &a.target else {
            return unsupported("UPDATE of a column tuple");
        };
        let col = last_ident(name)?;
        let Some(i) = def.column_index(&col) else {
            return err(
                ErrorKind::ER_BAD_FIELD_ERROR,
                format!("Unknown column '{col}' in 'field list'"),
            );
        };
        if i < def.key_len {
            return err(
                ErrorKind::ER_UNKNOWN_ERROR,
                format!("errCode = 2, detailMessage = Only value columns of unique table could be updated; {col} is a key column"),
            );
        }
        let v = literal(&def.columns[i].ty, &a.value, tz)?.unwrap_or(Value::Null);
        if v.is_null() && !def.columns[i].nullable {
            return err(
                ErrorKind::ER_UNKNOWN_ERROR,
                format!("errCode = 2, detailMessage = column {col} is NOT NULL"),
            );
        }
        sets.push((i, v));
    }
    let ops = matching_rows(state, session, idx, upd.selection.as_ref())?
        .into_iter()
        .map(|(mut values, mut seq)| {
            for (i, v) in &sets {
                values[*i] = v.clone();
            }
            if let Sequence::Column(i) = def.sequence {
                seq = values[i].clone();
            }
            RowOp {
                values: values.into(),
                delete: false,
                seq,
                present: None,
            }
        })
        .collect();
    commit(state, idx, ops, "update")
}

fn insert(state: &State, session: &Session, ins: &ast::Insert) -> Result<Reply, SqlError> {
    let ast::TableObject::TableName(name) = &ins.table else {
        return unsupported("INSERT into a table function");
    };
    let idx = resolve_table(state, session, name)?;
    let def = state.table_def(idx);
    let tz = state.knobs.default_tz;
    let targets: Vec<usize> = if ins.columns.is_empty() {
        (0..def.columns.len()).collect()
    } else {
        ins.columns
            .iter()
            .map(|c| {
                let col = last_ident(c)?;
                def.column_index(&col).map_or_else(
                    || {
                        err(
                            ErrorKind::ER_BAD_FIELD_ERROR,
                            format!("Unknown column '{col}' in 'field list'"),
                        )
                    },
                    Ok,
                )
            })
            .collect::<Result<_, _>>()?
    };
    let Some(SetExpr::Values(values)) = ins.source.as_ref().map(|q| q.body.as_ref()) else {
        return unsupported("INSERT other than INSERT … VALUES");
    };
    let mut ops = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        if row.len() != targets.len() {
            return err(
                ErrorKind::ER_UNKNOWN_ERROR,
                format!(
                    "errCode = 2, detailMessage = Column count doesn't match value count: {} columns, {} values",
                    targets.len(),
                    row.len()
                ),
            );
        }
        let mut cells: Vec<Value> = def
            .columns
            .iter()
            .map(|c| {
                c.default
                    .as_deref()
                    .and_then(|d| parse_text(&c.ty, d, tz).ok())
                    .unwrap_or(Value::Null)
            })
            .collect();
        for (&i, e) in targets.iter().zip(row.iter()) {
            cells[i] = literal(&def.columns[i].ty, e, tz)?.unwrap_or(Value::Null);
        }
        if let Some(c) = def
            .columns
            .iter()
            .zip(&cells)
            .find(|(c, v)| !c.nullable && v.is_null())
            .map(|(c, _)| c)
        {
            return err(
                ErrorKind::ER_UNKNOWN_ERROR,
                format!(
                    "errCode = 2, detailMessage = column {} is NOT NULL and has no value",
                    c.name
                ),
            );
        }
        let seq = match def.sequence {
            Sequence::Column(i) => cells[i].clone(),
            _ => Value::Null,
        };
        ops.push(RowOp {
            values: cells.into(),
            delete: false,
            seq,
            present: None,
        });
    }
    commit(state, idx, ops, "insert")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_state() -> State {
        let ddl = "CREATE DATABASE d; CREATE TABLE d.t (k BIGINT NOT NULL, v VARCHAR(8), amount DECIMAL(10,2), \
                   at DATETIME(3), flag BOOLEAN, ver BIGINT NOT NULL) UNIQUE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1 \
                   PROPERTIES (\"function_column.sequence_col\" = \"ver\");";
        let catalog = crate::load_ddl(&[ddl.to_owned()]).unwrap();
        State::new(
            catalog,
            crate::state::Knobs {
                max_versions: None,
                label_keep_max_ms: 1000,
                default_tz: LoadTz::default(),
                doris_version: crate::version::DorisVersion::default(),
            },
            None,
        )
        .unwrap()
    }

    fn session() -> Session {
        Session {
            db: None,
            user: "root".into(),
            connection_id: 1,
            show_hidden_columns: false,
        }
    }

    fn rows(r: Reply) -> Vec<Vec<Option<String>>> {
        match r {
            Reply::Rows { rows, .. } => rows,
            other => panic!("expected rows, got {other:?}"),
        }
    }

    fn error(r: Reply) -> SqlError {
        match r {
            Reply::Err(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[allow(clippy::unnecessary_wraps)] // a cell: NULL is None
    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn writes_then_reads_with_doris_rendering() {
        let st = sim_state();
        let mut se = session();
        let r = execute(
            &st,
            &mut se,
            "INSERT INTO d.t (k, v, amount, at, flag, ver) VALUES (1, 'a', 1.5, '2024-01-02 03:04:05.6', true, 10), \
             (2, NULL, -3, '2024-01-02', false, 10), (3, 'c', 0, NULL, NULL, 10)",
        );
        assert!(matches!(r, Reply::Ok { affected: 3, .. }), "{r:?}");
        let got = rows(execute(
            &st,
            &mut se,
            "SELECT * FROM d.t WHERE k IN (2, 1, 9)",
        ));
        assert_eq!(
            got,
            vec![
                vec![
                    s("1"),
                    s("a"),
                    s("1.50"),
                    s("2024-01-02 03:04:05.600"),
                    s("1"),
                    s("10")
                ],
                vec![
                    s("2"),
                    None,
                    s("-3.00"),
                    s("2024-01-02 00:00:00.000"),
                    s("0"),
                    s("10")
                ],
            ]
        );
        // USE, then a range with ORDER BY / LIMIT.
        assert!(matches!(execute(&st, &mut se, "USE d"), Reply::Ok { .. }));
        let got = rows(execute(
            &st,
            &mut se,
            "SELECT k FROM t WHERE k > 1 ORDER BY k LIMIT 1",
        ));
        assert_eq!(got, vec![vec![s("2")]]);
        let got = rows(execute(
            &st,
            &mut se,
            "SELECT k FROM t WHERE k >= 1 AND k < 3 ORDER BY k DESC",
        ));
        assert_eq!(got, vec![vec![s("2")], vec![s("1")]]);
        let got = rows(execute(
            &st,
            &mut se,
            "SELECT COUNT(*), MIN(k), MAX(k) FROM t",
        ));
        assert_eq!(got, vec![vec![s("3"), s("1"), s("3")]]);
        // UPDATE keeps the sequence value; DELETE hides the row.
        let r = execute(
            &st,
            &mut se,
            "UPDATE t SET v = 'zz', amount = 7.125 WHERE k = 3",
        );
        assert!(matches!(r, Reply::Ok { affected: 1, .. }), "{r:?}");
        let r = execute(&st, &mut se, "DELETE FROM t WHERE k IN (1)");
        assert!(matches!(r, Reply::Ok { affected: 1, .. }), "{r:?}");
        let got = rows(execute(&st, &mut se, "SELECT k, v, amount, ver FROM t"));
        assert_eq!(
            got,
            vec![
                vec![s("2"), None, s("-3.00"), s("10")],
                vec![s("3"), s("zz"), s("7.13"), s("10")]
            ]
        );
        let got = rows(execute(
            &st,
            &mut se,
            "SELECT k FROM t WHERE v IS NULL OR v = 'zz' ORDER BY v",
        ));
        assert_eq!(got, vec![vec![s("2")], vec![s("3")]]);
    }

    #[test]
    fn catalog_and_session_statements() {
        let st = sim_state();
        let mut se = session();
        assert_eq!(
            rows(execute(&st, &mut se, "SHOW DATABASES")),
            vec![vec![s("d")], vec![s("information_schema")]]
        );
        assert_eq!(
            error(execute(&st, &mut se, "SHOW TABLES")).kind,
            ErrorKind::ER_NO_DB_ERROR
        );
        assert!(matches!(execute(&st, &mut se, "use `d`"), Reply::Ok { .. }));
        assert_eq!(
            rows(execute(&st, &mut se, "SHOW TABLES")),
            vec![vec![s("t")]]
        );
        let desc = rows(execute(&st, &mut se, "DESC t"));
        assert_eq!(
            desc[0],
            vec![s("k"), s("BIGINT"), s("No"), s("true"), None, s("")]
        );
        assert_eq!(desc[2][1], s("DECIMAL(10,2)"));
        let create = rows(execute(&st, &mut se, "SHOW CREATE TABLE d.t"));
        let text = create[0][1].clone().unwrap();
        assert!(text.contains("UNIQUE KEY(`k`)"), "{text}");
        assert!(
            text.contains("\"function_column.sequence_col\" = \"ver\""),
            "{text}"
        );
        for q in [
            "SET NAMES utf8mb4",
            "SET autocommit = 1",
            "SET sql_mode = 'STRICT_TRANS_TABLES'",
        ] {
            assert!(matches!(execute(&st, &mut se, q), Reply::Ok { .. }), "{q}");
        }
        assert_eq!(
            rows(execute(&st, &mut se, "SELECT VERSION()")),
            vec![vec![s(SERVER_VERSION)]]
        );
        let vc = rows(execute(&st, &mut se, "select @@version_comment limit 1"));
        assert!(
            vc[0][0].as_deref().unwrap().starts_with("Doris version"),
            "{vc:?}"
        );
        let v = rows(execute(
            &st,
            &mut se,
            "SELECT @@socket, @@max_allowed_packet, @@session.wait_timeout",
        ));
        assert_eq!(v, vec![vec![None, s("16777216"), s("28800")]]);
        assert_eq!(
            error(execute(&st, &mut se, "SELECT @@no_such_var")).kind,
            ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE
        );
        assert_eq!(
            rows(execute(&st, &mut se, "SELECT DATABASE()")),
            vec![vec![s("d")]]
        );
    }

    #[test]
    fn refusals_name_the_statement() {
        let st = sim_state();
        let mut se = session();
        let e = error(execute(
            &st,
            &mut se,
            "SELECT k FROM d.t JOIN d.t AS u ON t.k = u.k",
        ));
        assert_eq!(e.kind, ErrorKind::ER_NOT_SUPPORTED_YET);
        assert!(e.msg.contains("JOIN"), "{}", e.msg);
        let e = error(execute(&st, &mut se, "SELECT k FROM d.nope"));
        assert_eq!(e.kind, ErrorKind::ER_NO_SUCH_TABLE);
        let e = error(execute(&st, &mut se, "SELECT nope FROM d.t"));
        assert_eq!(e.kind, ErrorKind::ER_BAD_FIELD_ERROR);
        let e = error(execute(&st, &mut se, "SELEC 1"));
        assert_eq!(e.kind, ErrorKind::ER_PARSE_ERROR);
        let e = error(execute(&st, &mut se, "SELECT k FROM d.t WHERE k = 'x'"));
        assert_eq!(e.kind, ErrorKind::ER_WRONG_VALUE);
        let e = error(execute(&st, &mut se, "DROP TABLE d.t"));
        assert_eq!(e.kind, ErrorKind::ER_NOT_SUPPORTED_YET);
        assert!(e.msg.contains("DROP TABLE"), "{}", e.msg);
        // An empty or inverted range reads nothing instead of panicking.
        assert!(rows(execute(
            &st,
            &mut se,
            "SELECT k FROM d.t WHERE k > 5 AND k < 5"
        ))
        .is_empty());
        assert!(rows(execute(
            &st,
            &mut se,
            "SELECT k FROM d.t WHERE k > 9 AND k <= 1"
        ))
        .is_empty());
    }

    #[test]
    fn hidden_sequence_column_after_set() {
        let st = sim_state();
        let mut se = session();
        let _ = execute(&st, &mut se, "INSERT INTO d.t (k, ver) VALUES (5, 42)");
        let e = error(execute(
            &st,
            &mut se,
            "SELECT __DORIS_SEQUENCE_COL__ FROM d.t",
        ));
        assert_eq!(e.kind, ErrorKind::ER_BAD_FIELD_ERROR);
        let _ = execute(&st, &mut se, "SET show_hidden_columns = true");
        assert_eq!(
            rows(execute(
                &st,
                &mut se,
                "SELECT k, __DORIS_SEQUENCE_COL__ FROM d.t"
            )),
            vec![vec![s("5"), s("42")]]
        );
    }
}
