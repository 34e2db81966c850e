//! FE listener handlers: authenticate, check `Expect`, redirect to the BE with a 307 (spec §1, §2, §5).

use super::*;

/// The FE's text for a bad `group_commit` header (also used by the BE for direct loads).
pub(super) const GROUP_COMMIT_VALUES: &str =
    "Header `group_commit` can only be `sync_mode`, `async_mode` or `off_mode`.";

/// The FE's reply when Basic auth is missing or wrong: HTTP 200 with the REST envelope (spec §2).
fn fe_auth(ctx: &Ctx, headers: &HeaderMap, peer: SocketAddr) -> Result<(), Box<Resp>> {
    match check_auth(ctx, headers) {
        Auth::Ok(_) => Ok(()),
        Auth::Missing => Err(Box::new(json(fe_envelope(
            "Unauthorized",
            401,
            "Need auth information.",
        )))),
        Auth::Denied { user, .. } => Err(Box::new(json(fe_envelope(
            "Unauthorized",
            401,
            &format!("Access denied for {user}@{}", peer.ip()),
        )))),
    }
}

fn redirect(
    ctx: &Ctx,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
    unreachable: bool,
) -> Resp {
    let (user, password) = match check_auth(ctx, headers) {
        Auth::Ok(u) => (u, ctx.password.clone()),
        _ => (ctx.user.clone(), ctx.password.clone()),
    };
    // An unreachable BE: port 1 on the loopback refuses connections.
    let (host, port) = if unreachable {
        ("127.0.0.1".to_string(), 1)
    } else {
        (ctx.be_host.clone(), ctx.be_port)
    };
    // Credentials as userinfo, path kept, `?` always present (spec §1 step 6); `https` when the BE serves TLS.
    let location = format!(
        "{}://{}:{}@{host}:{port}{path}?{}",
        ctx.be_scheme,
        encode_userinfo(&user),
        encode_userinfo(&password),
        query.unwrap_or("")
    );
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            r.headers_mut().insert(LOCATION, v);
        }
        Err(_) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "doris-sim: unencodable Location\n",
            )
        }
    }
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// FE `_stream_load`: auth, `Expect` check, 307 to the BE. The body is never read (spec §1, C2).
pub(super) fn fe_stream_load(
    ctx: &Ctx,
    req: &Request<Incoming>,
    db: &str,
    table: &str,
    peer: SocketAddr,
) -> Resp {
    // The FE validates `group_commit` first, even before auth (LoadAction.streamLoad).
    let group_commit = req
        .headers()
        .get("group_commit")
        .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase());
    if let Some(mode) = &group_commit {
        if !["sync_mode", "async_mode", "off_mode"].contains(&mode.as_str()) {
            return json(status_msg("FAILED", GROUP_COMMIT_VALUES));
        }
    }
    if let Err(r) = fe_auth(ctx, req.headers(), peer) {
        return *r;
    }
    if !req.headers().contains_key(hyper::header::EXPECT) {
        return json(status_msg("FAILED", "There is no 100-continue header"));
    }
    // Only group commit makes the FE look the table up (to pick the BE by table id).
    if group_commit.as_deref().is_some_and(|m| m != "off_mode") {
        if !ctx.state.catalog.has_db(db) {
            return json(status_msg("FAILED", "Database not found."));
        }
        if ctx.state.catalog.table(db, table).is_none() {
            return json(status_msg("FAILED", "OlapTable not found."));
        }
    }
    let unreachable = ctx
        .state
        .take_fault(true, db, table)
        .is_some_and(|f| f.kind == FaultKind::RedirectUnreachable);
    redirect(
        ctx,
        req.headers(),
        req.uri().path(),
        req.uri().query(),
        unreachable,
    )
}

pub(super) fn fe_2pc(ctx: &Ctx, req: &Request<Incoming>, _db: &str, peer: SocketAddr) -> Resp {
    if let Err(r) = fe_auth(ctx, req.headers(), peer) {
        return *r;
    }
    let h = req.headers();
    if !h.contains_key("txn_id") && !h.contains_key("label") {
        return json(status_msg("FAILED", "No transaction id or label selected."));
    }
    if !h.contains_key("txn_operation") {
        return json(status_msg(
            "FAILED",
            "No transaction operation('commit' or 'abort') selected.",
        ));
    }
    redirect(ctx, h, req.uri().path(), req.uri().query(), false)
}

pub(super) fn fe_get_load_state(
    ctx: &Ctx,
    req: &Request<Incoming>,
    db: &str,
    peer: SocketAddr,
) -> Resp {
    if let Err(r) = fe_auth(ctx, req.headers(), peer) {
        return *r;
    }
    let Some(label) = query_param(req.uri().query(), "label").filter(|l| !l.is_empty()) else {
        return json(fe_envelope("Bad Request", 403, "No label selected"));
    };
    if !ctx.state.catalog.has_db(db) {
        return json(fe_envelope(
            "Error",
            1,
            &format!("unknown databases, dbName={db}"),
        ));
    }
    json(fe_envelope("success", 0, ctx.state.load_state(db, &label)))
}

pub(super) fn fe_backends(ctx: &Ctx, req: &Request<Incoming>, peer: SocketAddr) -> Resp {
    if let Err(r) = fe_auth(ctx, req.headers(), peer) {
        return *r;
    }
    let mut s = String::from("{\"msg\":\"success\",\"code\":0,\"data\":{\"backends\":[{\"ip\":");
    write_json_string(&ctx.be_host, &mut s);
    s.push_str(&format!(
        ",\"http_port\":{},\"is_alive\":true}}]}},\"count\":0}}",
        ctx.be_port
    ));
    json(s)
}

/// `GET /api/{db}/{table}/_schema` as the FE's `TableSchemaAction` answers it for an OLAP table (apache/doris
/// fe/fe-core/src/main/java/org/apache/doris/httpv2/rest/TableSchemaAction.java @ 065504e9): the REST envelope with
/// `status`, `tableType`, `keysType` and one `properties` entry per visible column (`name`, `type` — the primitive
/// type's name as the FE prints it, `comment`, `aggregation_type`, and `precision`/`scale` for decimals). Doris
/// gives no nullability or default here, so neither does doris-sim. Hidden columns are not listed.
pub(super) fn fe_schema(
    ctx: &Ctx,
    req: &Request<Incoming>,
    db: &str,
    table: &str,
    peer: SocketAddr,
) -> Resp {
    use crate::ddl::{AggFn, KeyModel};
    use crate::value::ColType;
    if let Err(r) = fe_auth(ctx, req.headers(), peer) {
        return *r;
    }
    let common_error = |msg: String| {
        json(serde_json::json!({"msg": "Error", "code": 1, "data": msg, "count": 0}).to_string())
    };
    if !ctx.state.catalog.has_db(db) {
        return common_error(format!(
            "errCode = 2, detailMessage = Unknown database '{db}'"
        ));
    }
    let Some(idx) = ctx.state.catalog.table(db, table) else {
        return common_error(format!(
            "errCode = 2, detailMessage = Unknown table '{table}' in {db}"
        ));
    };
    let def = ctx.state.table_def(idx);
    let props: Vec<serde_json::Value> = def
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = match &c.ty {
                ColType::Boolean => "BOOLEAN",
                ColType::TinyInt => "TINYINT",
                ColType::SmallInt => "SMALLINT",
                ColType::Int => "INT",
                ColType::BigInt => "BIGINT",
                ColType::LargeInt => "LARGEINT",
                ColType::Float => "FLOAT",
                ColType::Double => "DOUBLE",
                ColType::Decimal { precision, .. } if *precision <= 9 => "DECIMAL32",
                ColType::Decimal { precision, .. } if *precision <= 18 => "DECIMAL64",
                ColType::Decimal { .. } => "DECIMAL128",
                ColType::Date => "DATEV2",
                ColType::DateTime { .. } => "DATETIMEV2",
                ColType::Char(_) => "CHAR",
                ColType::Varchar(_) => "VARCHAR",
                ColType::String => "STRING",
                ColType::Json => "JSON",
            };
            let agg = if i < def.key_len {
                ""
            } else {
                match (def.model, c.agg) {
                    (_, Some(AggFn::Sum)) => "SUM",
                    (_, Some(AggFn::Max)) => "MAX",
                    (_, Some(AggFn::Min)) => "MIN",
                    (_, Some(AggFn::Replace)) => "REPLACE",
                    (_, Some(AggFn::ReplaceIfNotNull)) => "REPLACE_IF_NOT_NULL",
                    (KeyModel::Unique, None) => "REPLACE",
                    (_, None) => "NONE",
                }
            };
            let mut m = serde_json::json!({
                "name": c.name,
                "type": ty,
                "comment": "",
                "aggregation_type": agg,
            });
            if let ColType::Decimal { precision, scale } = c.ty {
                m["precision"] = precision.to_string().into();
                m["scale"] = scale.to_string().into();
            }
            m
        })
        .collect();
    let keys_type = match def.model {
        KeyModel::Duplicate => "DUP_KEYS",
        KeyModel::Unique => "UNIQUE_KEYS",
        KeyModel::Aggregate => "AGG_KEYS",
    };
    json(
        serde_json::json!({
            "msg": "success",
            "code": 0,
            "data": {
                "status": 200,
                "tableType": "OLAP",
                "keysType": keys_type,
                "properties": props,
            },
            "count": 0,
        })
        .to_string(),
    )
}
