-- Merge query of the job-analytics reference workload: one row per job id in $1 (bigint[]).
--
-- The output columns are exactly the columns of job_analytics.merged_job_data in Doris, minus source_version and
-- the delete sign, which cdc2doris adds. A requested job id that yields no row (the job was deleted) becomes a
-- Doris delete.
--
-- Every aggregate is computed in its own subquery filtered by = ANY($1), so each table is read through its job_id
-- index only for the requested jobs, and no row multiplication happens between activity and revenue.
-- Timestamps are rendered in UTC as Doris DATETIME(6) literals; numerics are passed through exactly.
SELECT
    j.id                                                                       AS job_id,
    j.client_id                                                                AS client_id,
    j.title                                                                    AS title,
    j.category                                                                 AS category,
    j.status                                                                   AS status,
    j.location                                                                 AS location,
    j.salary_min                                                               AS salary_min,
    j.salary_max                                                               AS salary_max,
    to_char(j.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')        AS created_at,
    to_char(j.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')        AS updated_at,
    COALESCE(a.view_count, 0)                                                  AS view_count,
    COALESCE(a.apply_count, 0)                                                 AS apply_count,
    COALESCE(a.click_count, 0)                                                 AS click_count,
    to_char(a.last_activity_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')  AS last_activity_at,
    (x.client_id IS NOT NULL)                                                  AS client_excluded,
    x.reason                                                                   AS exclusion_reason,
    COALESCE(r.revenue_total, 0)                                               AS revenue_total,
    COALESCE(r.revenue_entries, 0)                                             AS revenue_entries,
    r.last_booked_on                                                           AS last_booked_on
FROM jobs AS j
LEFT JOIN (
    SELECT
        ja.job_id,
        count(*) FILTER (WHERE ja.activity_type = 'view')  AS view_count,
        count(*) FILTER (WHERE ja.activity_type = 'apply') AS apply_count,
        count(*) FILTER (WHERE ja.activity_type = 'click') AS click_count,
        max(ja.occurred_at)                                AS last_activity_at
    FROM job_activity AS ja
    WHERE ja.job_id = ANY($1::bigint[])
    GROUP BY ja.job_id
) AS a ON a.job_id = j.id
LEFT JOIN (
    SELECT
        sr.job_id,
        sum(sr.amount_usd) AS revenue_total,
        count(*)           AS revenue_entries,
        max(sr.booked_on)  AS last_booked_on
    FROM standard_revenue AS sr
    WHERE sr.job_id = ANY($1::bigint[])
    GROUP BY sr.job_id
) AS r ON r.job_id = j.id
LEFT JOIN clients_to_exclude AS x ON x.client_id = j.client_id
WHERE j.id = ANY($1::bigint[])
