//! Sim-only endpoints under `/api/_sim/` (not part of Doris): inspection, fault injection and reset.

use super::be::read_body;
use super::*;

/// Sim-only endpoints (not part of Doris): inspection and fault injection.
pub(super) async fn sim_api(
    ctx: &Ctx,
    method: &Method,
    seg: &[&str],
    req: Request<Incoming>,
) -> Resp {
    match (method, seg) {
        (&Method::GET, ["stats"]) => {
            ctx.state.flush_due();
            let mut s = String::from("{\"tables\":[");
            for (i, (db, table, st)) in ctx.state.stats().into_iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str("{\"db\":");
                write_json_string(&db, &mut s);
                s.push_str(",\"table\":");
                write_json_string(&table, &mut s);
                s.push_str(&format!(
                    ",\"loads\":{},\"load_bytes\":{},\"largest_load_bytes\":{},\"failed_loads\":{},\"rows\":{},\"versions\":{},\"labels\":{}}}",
                    st.loads, st.load_bytes, st.largest_load_bytes, st.failed_loads, st.rows, st.versions, st.labels
                ));
            }
            s.push_str("]}");
            json(s)
        }
        (&Method::GET, [db, table, "rows"]) => {
            ctx.state.flush_due();
            let Some(idx) = ctx.state.catalog.table(db, table) else {
                return sim_error(
                    StatusCode::NOT_FOUND,
                    &format!("unknown table {db}.{table}"),
                );
            };
            json(ctx.state.rows_json(idx))
        }
        (&Method::POST, ["faults"]) => {
            let body = match read_body(req.into_body(), 1 << 20, None).await {
                Ok(b) => b,
                Err(_) => {
                    return sim_error(
                        StatusCode::BAD_REQUEST,
                        "fault body too large or incomplete",
                    )
                }
            };
            let faults: Result<Vec<FaultSpec>, _> = if body.trim_ascii_start().starts_with(b"[") {
                serde_json::from_slice::<Vec<FaultSpec>>(&body)
            } else {
                serde_json::from_slice::<FaultSpec>(&body).map(|f| vec![f])
            };
            match faults {
                Ok(f) => {
                    let n = f.len();
                    ctx.state.push_faults(f);
                    json(format!("{{\"queued\":{n}}}"))
                }
                Err(e) => sim_error(StatusCode::BAD_REQUEST, &format!("bad fault JSON: {e}")),
            }
        }
        (&Method::DELETE, ["faults"]) => {
            ctx.state.clear_faults();
            json("{\"queued\":0}".into())
        }
        (&Method::POST, ["compact"]) => {
            ctx.state.compact(f64::MAX);
            json("{\"compacted\":true}".into())
        }
        (&Method::POST, ["reset"]) => match ctx.state.reset() {
            Ok(()) => json("{\"reset\":true}".into()),
            Err(e) => sim_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        (&Method::POST, ["clean_labels"]) => {
            ctx.state.clean_labels();
            json("{\"cleaned\":true}".into())
        }
        _ => sim_error(StatusCode::NOT_FOUND, "unknown /api/_sim/ endpoint"),
    }
}
