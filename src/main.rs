//! The thin binary: parse the command line, set up logging, call the library.

use std::process::ExitCode;

use clap::Parser;
use signet::cli::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("signet: {err:#}");
            ExitCode::FAILURE
        }
    }
}
