//! The `switchboard` binary: parses the command line and hands over to the library.

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    switchboard::cli::run(switchboard::cli::Cli::parse())
}
