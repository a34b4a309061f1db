//! The `koogate` binary: parses the command line and calls the library crates. Nothing here that a test
//! could not reach through a library call.

mod commands;
mod demo;

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
    /// Print the OpenAPI document of the merchant-app API (/api/v1).
    Openapi,
    /// API tokens for the merchant-app API.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Event deliveries to the merchant's app.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// Play the conformance scenarios against a production URL, as KooGallery would.
    Conformance(commands::ConformanceArgs),
    /// Run koogate and a simulated KooGallery in one process through a customer's whole lifecycle.
    Demo(crate::demo::DemoArgs),
    /// Pay-per-use metering.
    #[command(subcommand)]
    Usage(UsageCommand),
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
    /// Serve the whole simulated KooGallery: the mock Open APIs plus an HTTP API to fire callbacks,
    /// inject faults and read the recorded traffic.
    Serve(commands::SimServeArgs),
    /// Fire one signed callback at a production URL and print the answer.
    Send(commands::SimSendArgs),
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Create a token; the token itself is printed alone on the last line (it is shown only once).
    Create {
        #[arg(long)]
        name: String,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by its id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum DeliveriesCommand {
    /// List deliveries, newest first.
    List {
        /// pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        instance: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Send events again with their ids and bodies: the given ones, or every dead one with --all-dead.
    Replay {
        event_ids: Vec<String>,
        #[arg(long)]
        all_dead: bool,
    },
}

#[derive(Subcommand)]
enum UsageCommand {
    /// Seal every ended window and push all sealed records to KooGallery now.
    Push,
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
        Command::Sim(SimCommand::Serve(args)) => commands::sim_serve(cli.config.as_deref(), &args),
        Command::Sim(SimCommand::Send(args)) => commands::sim_send(cli.config.as_deref(), &args),
        Command::Conformance(args) => commands::conformance(cli.config.as_deref(), &args),
        Command::Demo(args) => demo::run(&args),
        Command::Openapi => {
            print!("{}", koogate_server::api::openapi::document_text());
            Ok(())
        }
        Command::Tokens(TokensCommand::Create { name }) => {
            commands::tokens_create(cli.config.as_deref(), &name)
        }
        Command::Tokens(TokensCommand::List) => commands::tokens_list(cli.config.as_deref()),
        Command::Tokens(TokensCommand::Revoke { id }) => commands::tokens_revoke(cli.config.as_deref(), &id),
        Command::Deliveries(DeliveriesCommand::List { state, instance, limit }) => {
            commands::deliveries_list(cli.config.as_deref(), state, instance, limit)
        }
        Command::Deliveries(DeliveriesCommand::Replay { event_ids, all_dead }) => {
            commands::deliveries_replay(cli.config.as_deref(), event_ids, all_dead)
        }
        Command::Usage(UsageCommand::Push) => commands::usage_push(cli.config.as_deref()),
        Command::Keys(KeysCommand::Generate) => {
            println!("{}", koogate_server::crypto::generate_master_key());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<commands::Failed>() => {
            eprintln!("koogate: {error}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("koogate: {error:#}");
            ExitCode::FAILURE
        }
    }
}
