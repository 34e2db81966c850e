//! `cdc2doris inspect`: decode one message and print what the service makes of it.

/// Arguments of `cdc2doris inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The message value: a file, or `-` for standard input. An empty input is a tombstone.
    #[arg(default_value = "-")]
    pub input: String,
}

/// Runs `inspect`; returns the process exit code.
pub fn run(_args: &InspectArgs) -> i32 {
    eprintln!("cdc2doris inspect: not implemented yet");
    2
}
