//! The `pglab` binary: parse the command line, run the chosen command, and turn
//! any failure into one clear line on stderr with exit code 2.

use std::process::ExitCode;

fn main() -> ExitCode {
    pglab::cli::main()
}
