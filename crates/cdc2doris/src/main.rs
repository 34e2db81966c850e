//! The `cdc2doris` binary: parses the command line and calls into the library.

use clap::{Parser, Subcommand};

/// jemalloc, for this binary and (unprefixed `malloc`) for librdkafka inside it: on the 1M-event drain glibc's
/// allocator kept freed Stream Load bodies and decompressed Kafka fetches in its arenas, ~13 MiB more at the peak, and
/// spent more CPU (`docs/operations.md`, Memory).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "cdc2doris",
    version,
    about = "Keeps an Apache Doris table in sync with PostgreSQL from Kafka CDC events"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: consume the topics, refresh the merged rows, load them into Doris.
    Run(cdc2doris::pipeline::cli::RunArgs),
    /// Refresh every key a query (or a file, e.g. of dead letters) names, without Kafka: a first load, a re-sync;
    /// safe beside `run`.
    Backfill(cdc2doris::backfill::cli::BackfillArgs),
    /// Decode one CDC message and print the keys it refreshes.
    Inspect(cdc2doris::inspect::InspectArgs),
    /// Print a complete, commented configuration file with every default.
    PrintDefaultConfig,
    /// Check a configuration file and the services it names (Kafka topics, PostgreSQL queries and replica
    /// identity, Doris credentials); exit non-zero if any check fails.
    Check(cdc2doris::check::CheckArgs),
    /// Compare the Doris table with the merge query over the keys of a query (or a sample of them); exit 1 on
    /// drift. `--repair` reloads the drifted keys.
    Verify(cdc2doris::verify::VerifyArgs),
    /// Print a CREATE TABLE for Doris derived from the merge query's result columns, to review and run.
    Ddl(cdc2doris::schema::ddl::DdlArgs),
}

fn main() {
    cdc2doris::panic_report::install();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => cdc2doris::pipeline::cli::run(&args),
        Command::Backfill(args) => cdc2doris::backfill::cli::run(&args),
        Command::Inspect(args) => cdc2doris::inspect::run(&args),
        Command::PrintDefaultConfig => {
            print!("{}", cdc2doris::config::DEFAULT_CONFIG);
            0
        }
        Command::Check(args) => cdc2doris::check::run(&args),
        Command::Verify(args) => cdc2doris::verify::run(&args),
        Command::Ddl(args) => cdc2doris::schema::ddl::run(&args),
    };
    std::process::exit(code);
}
