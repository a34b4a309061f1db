//! The `koogate` binary: parses the command line and calls the library crates. Nothing here that a test
//! could not reach through a library call.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "koogate", version, about = "The KooGallery production-interface gateway")]
struct Cli {
    /// TOML configuration file (settings in KOOGATE_* environment variables override it).
    #[arg(long, global = true, env = "KOOGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server and its background workers until SIGTERM or SIGINT.
    Serve,
    /// Apply database migrations, then exit (run once before rolling out new replicas).
    Migrate,
    /// Sign a callback body as KooGallery would and print the query string and a ready curl line.
    Sign(commands::SignArgs),
    /// Key utilities.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Act as KooGallery against a production URL.
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Subcommand)]
enum SimCommand {
    /// Fire many signed callbacks at once and report throughput, latency and result codes.
    Load(commands::LoadArgs),
    /// Serve a mock of KooGallery's Open API host (Query Order with the documented mock orders),
    /// checking AK/SK signatures, for pointing KOOGATE_MARKETPLACE_URL at during local tests.
    Marketplace(commands::MarketplaceArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random master key (32 bytes, base64) for KOOGATE_MASTER_KEY.
    Generate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => commands::serve(cli.config.as_deref()),
        Command::Migrate => commands::migrate(cli.config.as_deref()),
        Command::Sign(args) => commands::sign(cli.config.as_deref(), &args),
        Command::Sim(SimCommand::Load(args)) => commands::load(cli.config.as_deref(), &args),
        Command::Sim(SimCommand::Marketplace(args)) => commands::marketplace(cli.config.as_deref(), &args),
        Command::Keys(KeysCommand::Generate) => {
            println!("{}", koogate_server::crypto::generate_master_key());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("koogate: {error:#}");
            ExitCode::FAILURE
        }
    }
}
