//! Apply a [`Change`] to PostgreSQL and report the row events it made.

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Transaction};

use crate::model::Change;

/// The kind of row event (Debezium `c`, `u`, `d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOp {
    /// Row inserted.
    Insert,
    /// Row updated.
    Update,
    /// Row deleted.
    Delete,
}

/// One row change, with its images as `to_jsonb(row)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RowEvent {
    /// Table name (schema `public`).
    pub table: &'static str,
    /// What happened.
    pub op: RowOp,
    /// The row's primary key as a JSON object (`{"id": 7}`), as Debezium puts it in the message key.
    pub key: Value,
    /// The row before (updates and deletes).
    pub before: Option<Value>,
    /// The row after (inserts and updates).
    pub after: Option<Value>,
    /// The PostgreSQL transaction id.
    pub txid: i64,
}

/// Creates the reference schema in the connected (empty) database.
pub async fn seed_schema(client: &Client, postgres_sql: &str) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(postgres_sql).await
}

fn pk_of(table: &str, row: &Value) -> Value {
    let field = if table == "clients_to_exclude" {
        "client_id"
    } else {
        "id"
    };
    serde_json::json!({ field: row.get(field).cloned().unwrap_or(Value::Null) })
}

async fn rows(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Value>, tokio_postgres::Error> {
    let rows = tx.query(sql, params).await?;
    rows.iter().map(|r| r.try_get::<_, Value>(0)).collect()
}

struct Events<'a> {
    out: Vec<RowEvent>,
    txid: i64,
    tx: &'a Transaction<'a>,
}

impl Events<'_> {
    fn inserted(&mut self, table: &'static str, after: Vec<Value>) {
        for a in after {
            self.out.push(RowEvent {
                table,
                op: RowOp::Insert,
                key: pk_of(table, &a),
                before: None,
                after: Some(a),
                txid: self.txid,
            });
        }
    }

    fn deleted(&mut self, table: &'static str, before: Vec<Value>) {
        for b in before {
            self.out.push(RowEvent {
                table,
                op: RowOp::Delete,
                key: pk_of(table, &b),
                before: Some(b),
                after: None,
                txid: self.txid,
            });
        }
    }

    /// `before_sql` locks and reads the old row; `update_sql` changes it and returns the new one.
    async fn updated(
        &mut self,
        table: &'static str,
        before_sql: &str,
        update_sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(), tokio_postgres::Error> {
        let before = rows(self.tx, before_sql, &params[..1]).await?;
        let Some(before) = before.into_iter().next() else {
            return Ok(()); // the row is gone: nothing to update
        };
        let after = rows(self.tx, update_sql, params).await?;
        for a in after {
            self.out.push(RowEvent {
                table,
                op: RowOp::Update,
                key: pk_of(table, &a),
                before: Some(before.clone()),
                after: Some(a),
                txid: self.txid,
            });
        }
        Ok(())
    }
}

/// Runs `change` in one transaction; returns its row events in the order they happened.
pub async fn apply(
    client: &mut Client,
    change: &Change,
) -> Result<Vec<RowEvent>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let txid: i64 = tx
        .query_one("SELECT txid_current()", &[])
        .await?
        .try_get(0)?;
    let mut ev = Events {
        out: Vec::new(),
        txid,
        tx: &tx,
    };
    match change {
        Change::NewJob {
            id,
            client_id,
            title,
            category,
            location,
            salary_min,
            salary_max,
        } => {
            let (smin, smax) = (*salary_min as f64, *salary_max as f64);
            let r = rows(
                &tx,
                "INSERT INTO jobs (id, client_id, title, category, status, location, salary_min, salary_max)
                 VALUES ($1, $2, $3, $4, 'open', $5, $6::float8::numeric(12,2), $7::float8::numeric(12,2))
                 RETURNING to_jsonb(jobs.*)",
                &[id, client_id, title, category, location, &smin, &smax],
            )
            .await?;
            ev.inserted("jobs", r);
        }
        Change::SetStatus { id, status } => {
            ev.updated(
                "jobs",
                "SELECT to_jsonb(j.*) FROM jobs j WHERE id = $1 FOR UPDATE",
                "UPDATE jobs SET status = $2, updated_at = now() WHERE id = $1 RETURNING to_jsonb(jobs.*)",
                &[id, status],
            )
            .await?;
        }
        Change::SetSalary {
            id,
            salary_min,
            salary_max,
        } => {
            let (smin, smax) = (*salary_min as f64, *salary_max as f64);
            ev.updated(
                "jobs",
                "SELECT to_jsonb(j.*) FROM jobs j WHERE id = $1 FOR UPDATE",
                "UPDATE jobs SET salary_min = $2::float8::numeric(12,2), salary_max = $3::float8::numeric(12,2), updated_at = now()
                 WHERE id = $1 RETURNING to_jsonb(jobs.*)",
                &[id, &smin, &smax],
            )
            .await?;
        }
        Change::MoveJob { id, client_id } => {
            ev.updated(
                "jobs",
                "SELECT to_jsonb(j.*) FROM jobs j WHERE id = $1 FOR UPDATE",
                "UPDATE jobs SET client_id = $2, updated_at = now() WHERE id = $1 RETURNING to_jsonb(jobs.*)",
                &[id, client_id],
            )
            .await?;
        }
        Change::Activity {
            first_id,
            job_id,
            types,
        } => {
            let r = rows(
                &tx,
                "INSERT INTO job_activity (id, job_id, activity_type)
                 SELECT $1 + o - 1, $2, t FROM unnest($3::text[]) WITH ORDINALITY AS u(t, o)
                 RETURNING to_jsonb(job_activity.*)",
                &[first_id, job_id, types],
            )
            .await?;
            ev.inserted("job_activity", r);
        }
        Change::Revenue {
            id,
            job_id,
            amount_cents,
            days_ago,
        } => {
            let r = rows(
                &tx,
                "INSERT INTO standard_revenue (id, job_id, amount_usd, booked_on)
                 VALUES ($1, $2, ($3::int8 / 100.0)::numeric(12,2), current_date - $4::int4)
                 RETURNING to_jsonb(standard_revenue.*)",
                &[id, job_id, amount_cents, days_ago],
            )
            .await?;
            ev.inserted("standard_revenue", r);
        }
        Change::ExcludeClient { client_id, reason } => {
            let r = rows(
                &tx,
                "INSERT INTO clients_to_exclude (client_id, reason) VALUES ($1, $2)
                 ON CONFLICT (client_id) DO NOTHING RETURNING to_jsonb(clients_to_exclude.*)",
                &[client_id, reason],
            )
            .await?;
            ev.inserted("clients_to_exclude", r);
        }
        Change::IncludeClient { client_id } => {
            let r = rows(
                &tx,
                "DELETE FROM clients_to_exclude WHERE client_id = $1 RETURNING to_jsonb(clients_to_exclude.*)",
                &[client_id],
            )
            .await?;
            ev.deleted("clients_to_exclude", r);
        }
        Change::DeleteJob { id } => {
            let a = rows(
                &tx,
                "DELETE FROM job_activity WHERE job_id = $1 RETURNING to_jsonb(job_activity.*)",
                &[id],
            )
            .await?;
            ev.deleted("job_activity", a);
            let r = rows(&tx, "DELETE FROM standard_revenue WHERE job_id = $1 RETURNING to_jsonb(standard_revenue.*)", &[id])
                .await?;
            ev.deleted("standard_revenue", r);
            let j = rows(
                &tx,
                "DELETE FROM jobs WHERE id = $1 RETURNING to_jsonb(jobs.*)",
                &[id],
            )
            .await?;
            ev.deleted("jobs", j);
        }
        Change::MoveActivity { id, to_job_id } => {
            ev.updated(
                "job_activity",
                "SELECT to_jsonb(a.*) FROM job_activity a WHERE id = $1 FOR UPDATE",
                "UPDATE job_activity SET job_id = $2 WHERE id = $1 RETURNING to_jsonb(job_activity.*)",
                &[id, to_job_id],
            )
            .await?;
        }
    }
    let out = ev.out;
    tx.commit().await?;
    Ok(out)
}
