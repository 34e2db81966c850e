//! The `cdc2doris` binary: parses the command line and calls into the library.

use clap::{Parser, Subcommand};

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
    /// Decode one CDC message and print the keys it refreshes.
    Inspect(cdc2doris::inspect::InspectArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Inspect(args) => cdc2doris::inspect::run(&args),
    };
    std::process::exit(code);
}
