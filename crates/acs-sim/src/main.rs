//! `acs-sim`: simulates Azure Communication Services media streaming against a media WebSocket
//! (`acs-sim stream`) and load-tests the gateway (`acs-sim load`). All logic lives in
//! [`acs_sim`]; this binary parses arguments, runs them and sets the exit code:
//! 0 everything as planned, 1 ran but something failed, 2 could not run.

use std::process::ExitCode;

use acs_sim::cli::{run, Cli};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("acs-sim: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("acs-sim: {e}");
            ExitCode::from(2)
        }
    }
}
