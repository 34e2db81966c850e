//! Smoke test: the local PostgreSQL (`dev/stack up`) is ready for CDC: logical decoding is on, the test role can
//! replicate, and a test can have a database of its own.

mod common;

#[tokio::test]
async fn wal_level_is_logical_and_role_can_replicate() {
    let client = common::pg_connect(None).await;
    let wal_level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .expect("SHOW wal_level")
        .get(0);
    assert_eq!(
        wal_level, "logical",
        "Debezium needs wal_level=logical; `dev/stack up` sets it"
    );
    let can_replicate: bool = client
        .query_one(
            "SELECT rolreplication FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .expect("reading the role's attributes")
        .get(0);
    assert!(
        can_replicate,
        "the test role needs REPLICATION for Debezium"
    );
}

#[tokio::test]
async fn throwaway_database_is_created_used_and_dropped() {
    let db = common::TestDatabase::create("smoke").await;
    let client = db.connect().await;
    client
        .batch_execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, note text);
             INSERT INTO orders VALUES (1, 'one'), (2, 'two');",
        )
        .await
        .expect("creating and filling a table");
    let count: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect("counting rows")
        .get(0);
    assert_eq!(count, 2);
    drop(client);

    let name = db.name.clone();
    db.drop_now().await;
    let admin = common::pg_connect(None).await;
    let left = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("looking the database up");
    assert!(
        left.is_none(),
        "database {name} still exists after drop_now"
    );
}
