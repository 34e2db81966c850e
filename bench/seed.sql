-- bench/seed.sql: fills the job-analytics schema (examples/job-analytics/postgres.sql, already run in this empty
-- database) in bulk, for bench/pipeline. Deterministic: the same variables give the same rows.
--
--   psql -v jobs=100000 -v activity_per_job=10 -v clients=300 -v exclude_every=10 -v revenue_per_job=2 -f seed.sql
--
--   jobs              jobs, ids 1..jobs, spread over the clients
--   activity_per_job  job_activity rows per job on average (each row's job is drawn by a hash of its id)
--   clients           client ids 1..clients
--   exclude_every     every Nth client is in clients_to_exclude
--   revenue_per_job   standard_revenue rows per job on average
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';

BEGIN;
-- The indexes are built once the rows are in, which is much faster than maintaining them row by row.
DROP INDEX job_activity_job_id_idx, standard_revenue_job_id_idx, jobs_client_id_idx;

INSERT INTO jobs (id, client_id, title, category, status, location, salary_min, salary_max, created_at, updated_at)
SELECT g,
       1 + (g::int8 * 7919) % :clients,
       (ARRAY['engineering', 'sales', 'support', 'design', 'marketing', 'operations'])[1 + g % 6] || ' position #' || g,
       (ARRAY['engineering', 'sales', 'support', 'design', 'marketing', 'operations'])[1 + g % 6],
       (ARRAY['open', 'open', 'open', 'paused', 'closed'])[1 + g % 5],
       (ARRAY['Berlin', 'Paris', 'Remote', 'London', 'Lisbon', 'Warsaw'])[1 + g % 6],
       30000 + (g % 50) * 1000,
       60000 + (g % 50) * 1500,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '17 seconds',
       timestamptz '2024-06-01 00:00:00+00' + g * interval '11 seconds'
FROM generate_series(1, :jobs) AS g;

INSERT INTO job_activity (id, job_id, activity_type, occurred_at)
SELECT a,
       1 + abs(hashint8(a)::bigint) % :jobs,
       (ARRAY['view', 'view', 'view', 'click', 'apply'])[1 + a % 5],
       timestamptz '2024-01-01 00:00:00+00' + (a % 15552000) * interval '1 second'
FROM generate_series(1, :jobs * :activity_per_job) AS a;

INSERT INTO standard_revenue (id, job_id, amount_usd, booked_on)
SELECT r,
       1 + abs(hashint8(-r)::bigint) % :jobs,
       (abs(hashint8(r + 7)::bigint) % 500000) / 100.0,
       date '2024-01-01' + (r % 365)::int
FROM generate_series(1, :jobs * :revenue_per_job) AS r;

INSERT INTO clients_to_exclude (client_id, reason, excluded_at)
SELECT c, 'bench: excluded client', timestamptz '2024-03-01 00:00:00+00'
FROM generate_series(:exclude_every, :clients, :exclude_every) AS c;

CREATE INDEX job_activity_job_id_idx ON job_activity (job_id);
CREATE INDEX standard_revenue_job_id_idx ON standard_revenue (job_id);
CREATE INDEX jobs_client_id_idx ON jobs (client_id);
COMMIT;

-- Statistics for the planner (the merge query's plans) and a visibility map, as on a settled database.
VACUUM ANALYZE jobs, job_activity, standard_revenue, clients_to_exclude;
