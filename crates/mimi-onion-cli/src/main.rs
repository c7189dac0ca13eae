//! `mimi-onion`: the demo, and tools that look at an envelope as a
//! provider, a load balancer or the demo hub sees it.
//!
//! Exit codes: 0 success; 1 the input was rejected or a file could not be
//! read or written; 2 usage error (bad arguments). With `--json`, stdout
//! holds exactly one JSON object (field names in `README.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod files;
mod render;

/// Exit code for an input that was rejected or a file that could not be
/// read or written.
const EXIT_REJECTED: u8 = 1;
/// Exit code for a usage error (clap uses the same).
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "mimi-onion",
    version,
    about = "Layered metadata encryption for MLS messages in MIMI: demo and envelope tools",
    after_help = "Exit codes: 0 success, 1 input rejected (or a file error), 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send the demo's messages through every party and show what each saw.
    ///
    /// The demo hub's keys come from fixed, public keying material and its
    /// MLS messages from the official RFC 9420 test vectors.
    Demo {
        /// Also write each message's bytes (envelope, response, key layer,
        /// fan-out messages) and a manifest.json under DIR/<message>/.
        /// DIR must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        dump: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show what a sender's provider or a load balancer can read of an
    /// envelope (no keys needed but the demo's token keys for the route).
    Inspect {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// The envelope file.
        file: PathBuf,
    },
    /// Open an envelope as the demo hub: front-end and policy engine.
    Open {
        /// Use the demo hub's keys (the only keys this tool holds; required).
        #[arg(long, required = true)]
        demo_keys: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// The envelope file.
        file: PathBuf,
    },
    /// Write or check the test vectors (needs the `vectors` feature).
    Vectors {
        #[command(subcommand)]
        action: VectorsAction,
    },
}

#[derive(Subcommand)]
enum VectorsAction {
    /// Write the test vectors into DIR (byte-identical on every run).
    Generate {
        /// Output folder (created if missing).
        dir: PathBuf,
    },
    /// Check the vector files in DIR: equal to the regenerated ones, and
    /// every entry verifies.
    Verify {
        /// The folder holding the vector files.
        dir: PathBuf,
    },
}

/// A failed command: its message and exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The input was rejected (or a file could not be read or written).
    pub fn rejected(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_REJECTED,
            message: message.into(),
        }
    }

    /// The arguments do not make sense together.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
}

impl From<mimi_onion::Error> for Failure {
    fn from(e: mimi_onion::Error) -> Self {
        Failure::rejected(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { dump, json } => render::demo(dump.as_deref(), json),
        Command::Inspect { json, file } => render::inspect(&file, json),
        Command::Open { json, file, .. } => render::open(&file, json),
        Command::Vectors { action } => vectors(action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("mimi-onion: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

#[cfg(feature = "vectors")]
fn vectors(action: VectorsAction) -> Result<(), Failure> {
    match action {
        VectorsAction::Generate { dir } => {
            mimi_onion::vectors::generate(&dir)
                .map_err(|e| Failure::rejected(format!("{}: {e}", dir.display())))?;
            println!(
                "wrote {} files to {}",
                mimi_onion::vectors::FILES.len(),
                dir.display()
            );
        }
        VectorsAction::Verify { dir } => {
            let n = mimi_onion::vectors::verify(&dir)
                .map_err(|e| Failure::rejected(format!("{}: {e}", dir.display())))?;
            println!(
                "{n} checks passed: the files equal the regenerated vectors and every entry verifies"
            );
        }
    }
    Ok(())
}

#[cfg(not(feature = "vectors"))]
fn vectors(_: VectorsAction) -> Result<(), Failure> {
    Err(Failure::usage(
        "built without the `vectors` feature: cargo run -p mimi-onion-cli --features vectors -- vectors ...",
    ))
}
