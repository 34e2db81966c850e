-- Source schema of the job-analytics reference workload (database enhanced_job_server_v2).
--
-- Run it against an existing, empty database:
--   createdb enhanced_job_server_v2 && psql -v ON_ERROR_STOP=1 -d enhanced_job_server_v2 -f postgres.sql
--
-- REPLICA IDENTITY FULL makes Debezium publish the whole old row on UPDATE and DELETE, so a delete of a
-- job_activity or standard_revenue row still carries its job_id (the driving key), and a row that moves
-- between jobs refreshes both the old and the new job.

BEGIN;

CREATE TABLE jobs (
    id          bigint PRIMARY KEY,
    client_id   bigint,
    title       text,
    category    text,
    status      text,
    location    text,
    salary_min  numeric(12,2),
    salary_max  numeric(12,2),
    created_at  timestamptz DEFAULT now(),
    updated_at  timestamptz DEFAULT now()
);

CREATE TABLE job_activity (
    id            bigint PRIMARY KEY,
    job_id        bigint,
    activity_type text CHECK (activity_type IN ('view', 'apply', 'click')),
    occurred_at   timestamptz DEFAULT now()
);

CREATE TABLE clients_to_exclude (
    client_id   bigint PRIMARY KEY,
    reason      text,
    excluded_at timestamptz DEFAULT now()
);

CREATE TABLE standard_revenue (
    id         bigint PRIMARY KEY,
    job_id     bigint,
    amount_usd numeric(12,2),
    booked_on  date
);

-- The merge query filters every table by job id (= ANY($1)); the resolve query maps client ids to job ids.
CREATE INDEX job_activity_job_id_idx ON job_activity (job_id);
CREATE INDEX standard_revenue_job_id_idx ON standard_revenue (job_id);
CREATE INDEX jobs_client_id_idx ON jobs (client_id);

ALTER TABLE jobs REPLICA IDENTITY FULL;
ALTER TABLE job_activity REPLICA IDENTITY FULL;
ALTER TABLE clients_to_exclude REPLICA IDENTITY FULL;
ALTER TABLE standard_revenue REPLICA IDENTITY FULL;

-- Debezium's pgoutput plugin reads this publication (publication.name in the connector config).
CREATE PUBLICATION cdc2doris_job_analytics
    FOR TABLE jobs, job_activity, clients_to_exclude, standard_revenue;

COMMIT;
