//! `lab`: the notebook's steps from the command line, for long runs outside Jupyter.
use anyhow::Result;
use clap::{Parser, Subcommand};
use helpers::report::versions;

/// Deep-learning project workflow on libtorch: train, evaluate, benchmark.
#[derive(Parser)]
#[command(name = "lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print toolchain, library and hardware versions and the available devices.
    Versions,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Versions => {
            for (k, v) in versions().rows() {
                println!("{k:>16}  {v}");
            }
        }
    }
    Ok(())
}
