//! `outbox`: inspect and repair an Outbox device database (e.g. one pulled from a phone).
//!
//! ```text
//! outbox status DB
//! outbox list DB [--state S]... [--key K] [--mutator M] [--limit N]
//! outbox show DB ID
//! outbox retry DB ID [--force]
//! outbox discard DB ID [--force]
//! outbox export DB --json
//! outbox closeout DB [--json]
//! ```
//! Modifying commands refuse while another process holds the drainer lease, unless
//! `--force`. A database of a newer schema, or a corrupt one, is refused untouched.

mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use outbox::{CommandId, CommandState, Outbox, PeekFilter};

/// Command-line interface.
#[derive(Parser, Debug)]
#[command(name = "outbox", version, about = "Inspect and repair an Outbox device database")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Counts per state, oldest unsent command, next retry, lease holder.
    Status {
        /// The database file.
        db: PathBuf,
    },
    /// Commands in enqueue order.
    List {
        /// The database file.
        db: PathBuf,
        /// Only these states (pending, in_flight, succeeded, failed, conflict, wedged, discarded).
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only commands holding this key.
        #[arg(long)]
        key: Option<String>,
        /// Only this mutator.
        #[arg(long)]
        mutator: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One command: args, keys, dependencies, attempt history, last error.
    Show {
        /// The database file.
        db: PathBuf,
        /// The command id.
        id: String,
    },
    /// Sends a wedged or failed command again with a fresh attempt budget (a failed one
    /// under a fresh idempotency key, with the commands that failed because of it).
    Retry {
        /// The database file.
        db: PathBuf,
        /// The command id.
        id: String,
        /// Act even while another process drains this database.
        #[arg(long)]
        force: bool,
    },
    /// Removes a command by explicit decision (its optimistic changes are rolled back).
    Discard {
        /// The database file.
        db: PathBuf,
        /// The command id.
        id: String,
        /// Act even while another process drains this database.
        #[arg(long)]
        force: bool,
    },
    /// The end-of-day report: clean or not, counts and amounts per state, the oldest
    /// unsynced command and every unsettled one with its reason. Exit code 6 when not clean.
    Closeout {
        /// The database file.
        db: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Everything as one JSON document: scope, status, lease, commands with history.
    Export {
        /// The database file.
        db: PathBuf,
        /// JSON output (the only format).
        #[arg(long)]
        json: bool,
    },
}

/// A failure with the exit code to use.
struct Failure {
    message: String,
    code: u8,
}

impl From<outbox::Error> for Failure {
    fn from(e: outbox::Error) -> Self {
        let code = match &e {
            outbox::Error::Open(_) => 3,
            outbox::Error::UnknownCommand { .. } | outbox::Error::InvalidState { .. } => 4,
            _ => 1,
        };
        Failure { message: e.to_string(), code }
    }
}

fn fail(message: impl Into<String>, code: u8) -> Failure {
    Failure { message: message.into(), code }
}

fn open(db: &std::path::Path) -> Result<Outbox, Failure> {
    if !db.is_file() {
        return Err(fail(format!("{} is not a file", db.display()), 3));
    }
    Ok(Outbox::inspect(db)?)
}

fn parse_id(id: &str) -> Result<CommandId, Failure> {
    id.parse::<CommandId>().map_err(|_| fail(format!("`{id}` is not a command id (a UUID)"), 4))
}

/// Refuses to modify a database another process is draining, unless forced.
fn guard(ob: &Outbox, force: bool) -> Result<(), Failure> {
    if let Some(lease) = ob.drainer_lease()? {
        if lease.live && !lease.held_here && !force {
            return Err(fail(
                format!("another process ({}) is draining this database; stop the app or pass --force", lease.owner),
                5,
            ));
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Cmd::Status { db } => {
            let ob = open(&db)?;
            print!("{}", render::status(&ob)?);
        }
        Cmd::List { db, states, key, mutator, limit } => {
            let ob = open(&db)?;
            let states = states
                .iter()
                .map(|s| CommandState::parse(s).ok_or_else(|| fail(format!("unknown state `{s}`"), 2)))
                .collect::<Result<Vec<_>, _>>()?;
            let cmds = ob.peek(&PeekFilter { states, key, mutator, limit, after_seq: None })?;
            print!("{}", render::list(&cmds));
        }
        Cmd::Show { db, id } => {
            let ob = open(&db)?;
            let cmd = ob.command(&parse_id(&id)?)?;
            print!("{}", render::show(&cmd));
        }
        Cmd::Retry { db, id, force } => {
            let ob = open(&db)?;
            guard(&ob, force)?;
            let id = parse_id(&id)?;
            let before = ob.command(&id)?.state;
            ob.retry(&id)?;
            println!("{id}: {before} -> pending (the app sends it at its next drain)");
        }
        Cmd::Discard { db, id, force } => {
            let ob = open(&db)?;
            guard(&ob, force)?;
            let id = parse_id(&id)?;
            ob.discard(&id)?;
            println!("{id}: discarded");
        }
        Cmd::Closeout { db, json } => {
            let ob = open(&db)?;
            let report = ob.closeout_report()?;
            if json {
                println!("{}", render::closeout_json(&report)?);
            } else {
                print!("{}", render::closeout(&report));
            }
            if !report.clean {
                return Err(fail(format!("not clean: {} unsettled commands", report.unsettled.len()), 6));
            }
        }
        Cmd::Export { db, json } => {
            if !json {
                return Err(fail("export writes JSON only: pass --json", 2));
            }
            let ob = open(&db)?;
            println!("{}", render::export(&ob)?);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("outbox: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
