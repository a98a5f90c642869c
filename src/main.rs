//! The thin binary: parse the command line, set up logging, call the library.

use std::process::ExitCode;

use clap::Parser;
use signet::cli::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    signet::logging::init(signet::logging::configured_format(cli.config.as_deref()));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("signet: {err:#}");
            ExitCode::FAILURE
        }
    }
}
