-- Target table of the job-analytics reference workload in Apache Doris.
--
-- UNIQUE KEY with merge-on-write keeps one row per job; the sequence column source_version (the PostgreSQL
-- snapshot version cdc2doris reads each row in) makes Doris keep the row from the newest read, whatever order
-- loads arrive in. Deletes are loaded with __DORIS_DELETE_SIGN__ = 1 and the same sequence column.
CREATE DATABASE IF NOT EXISTS job_analytics;

CREATE TABLE IF NOT EXISTS job_analytics.merged_job_data (
    job_id           BIGINT         NOT NULL,
    client_id        BIGINT,
    title            STRING,
    category         VARCHAR(128),
    status           VARCHAR(32),
    location         VARCHAR(256),
    salary_min       DECIMAL(12,2),
    salary_max       DECIMAL(12,2),
    created_at       DATETIME(6),
    updated_at       DATETIME(6),
    view_count       BIGINT,
    apply_count      BIGINT,
    click_count      BIGINT,
    last_activity_at DATETIME(6),
    client_excluded  BOOLEAN,
    exclusion_reason VARCHAR(512),
    revenue_total    DECIMAL(18,2),
    revenue_entries  BIGINT,
    last_booked_on   DATE,
    source_version   BIGINT         NOT NULL
)
UNIQUE KEY(job_id)
DISTRIBUTED BY HASH(job_id) BUCKETS 8
PROPERTIES (
    "replication_num" = "1",
    "enable_unique_key_merge_on_write" = "true",
    "function_column.sequence_col" = "source_version"
);
