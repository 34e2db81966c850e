//! The merge stage against the real PostgreSQL of `dev/stack up`: versions, rows and deletes.

use cdc2doris::keys::KeyType;
use cdc2doris::merge::{MergeKeys, MergeQuery};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

fn pg_config(dbname: &str) -> tokio_postgres::Config {
    let url = std::env::var("CDC2DORIS_PG_URL")
        .unwrap_or_else(|_| "postgres://cdc2doris@127.0.0.1:5432/postgres".to_string());
    let mut cfg: tokio_postgres::Config = url
        .parse()
        .unwrap_or_else(|e| panic!("CDC2DORIS_PG_URL {url:?}: {e}"));
    cfg.password(
        std::env::var("CDC2DORIS_PG_PASSWORD").unwrap_or_else(|_| "cdc2doris".to_string()),
    );
    cfg.dbname(dbname);
    cfg
}

async fn connect(dbname: &str) -> tokio_postgres::Client {
    let (client, conn) = pg_config(dbname)
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL ({e}); run `dev/stack up` first"));
    tokio::spawn(conn);
    client
}

/// A throwaway database, dropped at the end of the test.
struct TestDb {
    name: String,
}

impl TestDb {
    async fn create(prefix: &str) -> TestDb {
        let name = format!("t_{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = connect("postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        TestDb { name }
    }

    async fn drop_db(self) {
        let admin = connect("postgres").await;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .expect("drop database");
    }

    fn pool(&self) -> Pool {
        let mgr = Manager::from_config(
            pg_config(&self.name),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(mgr).max_size(2).build().expect("pool")
    }
}

const MERGE: &str = "SELECT i.id AS item_id, i.name, i.price, coalesce(t.tags, 0) AS tag_count
FROM items i
LEFT JOIN (SELECT item_id, count(*) AS tags FROM tags WHERE item_id = ANY($1) GROUP BY item_id) t ON t.item_id = i.id
WHERE i.id = ANY($1);
";

async fn setup(db: &TestDb) -> tokio_postgres::Client {
    let c = connect(&db.name).await;
    c.batch_execute(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(12,2));
         CREATE TABLE tags (item_id bigint, tag text);
         INSERT INTO items VALUES (1, 'one', 1.10), (2, 'two \"quoted\"', 99999999.99), (3, 'three', NULL);
         INSERT INTO tags VALUES (1, 'a'), (1, 'b'), (3, 'c');",
    )
    .await
    .expect("schema");
    c
}

fn lines(body: &[u8]) -> Vec<serde_json::Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

#[tokio::test]
async fn rows_carry_the_version_and_missing_keys_become_deletes() {
    let db = TestDb::create("merge_rows").await;
    let _c = setup(&db).await;
    let pool = db.pool();
    let mut obj = pool.get().await.expect("pool get");
    let q = MergeQuery::new(MERGE, "item_id", KeyType::Integer, "source_version").expect("query");
    let chunk = q
        .read_chunk(&mut obj, &MergeKeys::Int(vec![1, 2, 3, 4, 4]))
        .await
        .expect("read");
    assert_eq!((chunk.rows, chunk.deletes, chunk.duplicate_keys), (3, 1, 0));
    let rows = lines(&chunk.body);
    assert_eq!(rows.len(), 4);
    let v = chunk.version;
    assert!(v > 0);
    for r in &rows[..3] {
        assert_eq!(r["source_version"], serde_json::json!(v));
        assert_eq!(r["__DORIS_DELETE_SIGN__"], serde_json::json!(0));
    }
    let one = rows.iter().find(|r| r["item_id"] == 1).expect("row 1");
    assert_eq!(one["tag_count"], 2);
    let text = String::from_utf8_lossy(&chunk.body);
    assert!(
        text.contains("\"price\": 1.10"),
        "numerics keep their scale: {text}"
    );
    let two = rows.iter().find(|r| r["item_id"] == 2).expect("row 2");
    assert_eq!(two["name"], "two \"quoted\"");
    assert!(text.contains("\"price\": 99999999.99"), "{text}");
    assert_eq!(
        rows[3],
        serde_json::json!({"item_id": 4, "source_version": v, "__DORIS_DELETE_SIGN__": 1})
    );
    drop(obj);
    db.drop_db().await;
}

#[tokio::test]
async fn a_snapshot_that_sees_more_gets_a_greater_version() {
    let db = TestDb::create("merge_version").await;
    let writer = setup(&db).await;
    let pool = db.pool();
    let mut obj = pool.get().await.expect("pool get");
    let q = MergeQuery::new(MERGE, "item_id", KeyType::Integer, "source_version").expect("query");

    // A transaction is in progress (it has an xid) while the first snapshot is taken.
    writer
        .batch_execute("BEGIN; UPDATE items SET name = 'uno' WHERE id = 1")
        .await
        .expect("update");
    let before = q
        .read_chunk(&mut obj, &MergeKeys::Int(vec![1]))
        .await
        .expect("read 1");
    let xmax_1 = xmax(&writer_free_conn(&db).await).await;
    writer.batch_execute("COMMIT").await.expect("commit");
    let after = q
        .read_chunk(&mut obj, &MergeKeys::Int(vec![1]))
        .await
        .expect("read 2");
    let xmax_2 = xmax(&writer_free_conn(&db).await).await;

    assert_eq!(lines(&before.body)[0]["name"], "one");
    assert_eq!(lines(&after.body)[0]["name"], "uno");
    assert!(
        after.version > before.version,
        "the snapshot that sees the commit must get a greater version: {} then {} (xmax {xmax_1} then {xmax_2})",
        before.version,
        after.version
    );
    // Versions never go back. (Not "equal": tests running in parallel commit transactions of their own.)
    let again = q
        .read_chunk(&mut obj, &MergeKeys::Int(vec![1]))
        .await
        .expect("read 3");
    assert!(again.version >= after.version);
    drop(obj);
    db.drop_db().await;
}

async fn writer_free_conn(db: &TestDb) -> tokio_postgres::Client {
    connect(&db.name).await
}

async fn xmax(c: &tokio_postgres::Client) -> String {
    let row = c
        .query_one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", &[])
        .await
        .expect("xmax");
    row.get(0)
}

#[tokio::test]
async fn string_keys_and_a_failing_query() {
    let db = TestDb::create("merge_str").await;
    let c = connect(&db.name).await;
    c.batch_execute("CREATE TABLE u (id uuid PRIMARY KEY, n int); INSERT INTO u VALUES ('6f1c0e1e-0000-4000-8000-000000000001', 7);")
        .await
        .expect("schema");
    let pool = db.pool();
    let mut obj = pool.get().await.expect("pool get");
    let q = MergeQuery::new(
        "SELECT id::text AS k, n FROM u WHERE id::text = ANY($1)",
        "k",
        KeyType::String,
        "seq",
    )
    .expect("query");
    let keys = MergeKeys::Str(vec![
        "6f1c0e1e-0000-4000-8000-000000000001".into(),
        "gone".into(),
    ]);
    let chunk = q.read_chunk(&mut obj, &keys).await.expect("read");
    let rows = lines(&chunk.body);
    assert_eq!(rows[0]["n"], 7);
    assert_eq!(
        rows[1],
        serde_json::json!({"k": "gone", "seq": chunk.version, "__DORIS_DELETE_SIGN__": 1})
    );

    let bad = MergeQuery::new(
        "SELECT no_such_column AS k FROM u WHERE id::text = ANY($1)",
        "k",
        KeyType::String,
        "seq",
    )
    .expect("query");
    let err = bad
        .read_chunk(&mut obj, &keys)
        .await
        .expect_err("must fail");
    assert_eq!(err.class(), cdc2doris::error::ErrorClass::Permanent);
    assert!(err.to_string().contains("no_such_column"), "{err}");
    assert!(err.to_string().contains("42703"), "{err}");
    drop(obj);
    db.drop_db().await;
}

/// A merge query that fails on every key, with a message quoting a row's value (a PL/pgSQL `RAISE`, a failed cast):
/// the error's whole text (for the log) quotes it, its summary (what `/debug/state` and `/readyz` show of a fatal
/// error) gives the SQLSTATE and not the value; a failure naming only the schema keeps its message.
#[tokio::test]
async fn a_merge_failure_quoting_row_data_is_summarised_without_it() {
    let db = TestDb::create("merge_summary").await;
    let c = connect(&db.name).await;
    c.batch_execute(
        "CREATE TABLE people (id bigint PRIMARY KEY, email text);
         INSERT INTO people VALUES (1, 'ann.private@example.com');
         CREATE FUNCTION refuse(v text) RETURNS text LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'refusing %', v; END $$;",
    )
    .await
    .expect("schema");
    let pool = db.pool();
    let mut obj = pool.get().await.expect("pool get");
    let keys = MergeKeys::Int(vec![1]);
    for (query, sqlstate) in [
        (
            "SELECT id, refuse(email) AS e FROM people WHERE id = ANY($1)",
            "P0001",
        ),
        (
            "SELECT id, email::int AS e FROM people WHERE id = ANY($1)",
            "22P02",
        ),
    ] {
        let q = MergeQuery::new(query, "id", KeyType::Integer, "seq").expect("query");
        let err = q.read_chunk(&mut obj, &keys).await.expect_err("must fail");
        assert!(
            err.to_string().contains("ann.private"),
            "the log's text: {err}"
        );
        let summary = err.summary();
        assert!(!summary.contains("ann.private"), "{summary}");
        assert!(summary.contains(sqlstate), "{summary}");
    }
    let q = MergeQuery::new(
        "SELECT id, no_such_column FROM people WHERE id = ANY($1)",
        "id",
        KeyType::Integer,
        "seq",
    )
    .expect("query");
    let err = q.read_chunk(&mut obj, &keys).await.expect_err("must fail");
    assert!(
        err.summary().contains("no_such_column"),
        "{}",
        err.summary()
    );
    drop(obj);
    db.drop_db().await;
}
