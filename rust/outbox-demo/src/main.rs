//! `outbox-demo`: a point-of-sale simulation that proves Outbox's promises in one command.
//!
//! With no arguments it starts an embedded reference server on loopback (temporary SQLite,
//! fault injection on), runs three registers — each its own Outbox database in its own
//! child process — selling from a shared catalog while each register's network link goes
//! down and up, drains, pulls, and prints a verification table: every sale a register
//! recorded is applied on the server exactly once, and stock on the server and on every
//! register agree. It exits 0 only if all of that holds.
//!
//! The same binary is the register (`outbox-demo register …`, started by the coordinator).

mod coordinator;
mod error;
mod network;
mod progress;
mod register;
mod server_view;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of the demo.
#[derive(Debug, Parser)]
#[command(name = "outbox-demo", version, about = "Point-of-sale simulation against the Outbox reference server")]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: coordinator::RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One register (started by the coordinator; speaks JSON lines on stdin/stdout).
    #[command(hide = true)]
    Register(register::RegisterArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // reqwest is built without a TLS provider of its own (see Cargo.toml); an error here
    // only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("outbox-demo: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Register(args)) => runtime.block_on(register::run(args)),
        None => runtime.block_on(coordinator::run(cli.run)),
    }
}
