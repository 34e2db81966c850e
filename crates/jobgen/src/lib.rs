//! jobgen: a seeded stream of realistic changes to the job-analytics reference database
//! (`examples/job-analytics/postgres.sql`), for the demo, the integration tests and the benchmarks.
//!
//! - [`Model`] draws the next [`Change`] from a seeded RNG: new jobs, status and salary edits, a
//!   job moving to another client, activity bursts on hot jobs (Zipf-skewed), revenue bookings,
//!   clients excluded and re-included, jobs deleted with their activity and revenue, and an
//!   activity row moved to another job. The same seed gives the same stream.
//! - [`apply`] runs a change in PostgreSQL in one transaction and returns the row events it made,
//!   with before and after images read in that transaction (as Debezium would see them).
//! - [`debezium`] renders row events as Debezium JSON-converter messages (schemas off), so a test or
//!   a benchmark can write them straight to Kafka without running Kafka Connect.
//! - [`backlog`] generates N synthetic row events about a database seeded in bulk, for the end-to-end benchmark.
//! - [`watch`] follows a running pipeline from outside
//!   (captured events, group lag, cdc2doris's admin endpoints); [`kafka_reset`] gives the demo a clean Kafka;
//!   [`chaos`] writes `dev/chaos`'s poison messages and times its recoveries.

pub mod backlog;
pub mod chaos;
pub mod debezium;
pub mod kafka_reset;
pub mod model;
pub mod pg;
pub mod watch;

pub use model::{Change, Model, ModelConfig};
pub use pg::{apply, seed_schema, RowEvent, RowOp};
