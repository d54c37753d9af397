//! Command line: `serve`, `migrate`, `reindex`, `import`, `bench`, the auth admin
//! commands (`client`, `user`, `launch`, `keys`, in `auth`), `token create` (`token`), the
//! app review commands (`app`, in `apps`) and the audit log's (`audit`). The top layer: it may import every other module.

mod apps;
mod audit;
mod auth;
mod serve;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{DatabaseArgs, LogFormat, ServeConfig};
use crate::store::Store;

pub type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Parser)]
#[command(name = "kiln", version, about = "Kiln: a SMART-on-FHIR R4 server")]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "KILN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the FHIR server (migrations run first).
    Serve {
        #[command(flatten)]
        database: DatabaseArgs,
        // Boxed: the server's settings dwarf every other command's.
        #[command(flatten)]
        config: Box<ServeConfig>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Rebuild the search index rows of every resource.
    Reindex {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Import FHIR data: .ndjson, .ndjson.gz, .json (Bundle or resource) files and directories.
    Import {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Files or directories (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Resources per database transaction.
        #[arg(long, env = "KILN_IMPORT_BATCH", default_value_t = crate::import::DEFAULT_BATCH_SIZE)]
        batch_size: usize,
    },
    /// Measure import and read throughput on SQLite and PostgreSQL.
    Bench(crate::bench::BenchArgs),
    /// Register, list and remove SMART apps.
    Client {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: auth::ClientCommand,
    },
    /// Review registered apps: list, show, create, approve, request changes, reject,
    /// suspend, reactivate, retire, rotate the secret.
    App {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: apps::AppCommand,
    },
    /// Manage the people who sign in to Kiln.
    User {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: auth::UserCommand,
    },
    /// Create EHR launch contexts (for scripts and tests).
    Launch {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: auth::LaunchCommand,
    },
    /// Manage Kiln's token signing keys.
    Keys {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: auth::KeysCommand,
    },
    /// The audit log: verify its hash chain, export a period as NDJSON, report it sorted.
    Audit {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Mint access tokens for registered apps (for scripts, CI and support).
    Token {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: token::TokenCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kiln: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("kiln: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    match command {
        Command::Serve { database, config } => serve::serve(database, *config).await?,
        Command::Migrate { database } => {
            let store = Store::connect(&database.database_url, 2).await?;
            store.migrate().await?;
            crate::engine::reindex::ensure_current(&store).await?;
            store.close().await;
            println!("migrations applied");
        }
        Command::Reindex { database } => {
            let store = Store::connect(&database.database_url, 2).await?;
            store.migrate().await?;
            let count = crate::engine::reindex::reindex_all(&store).await?;
            crate::engine::reindex::mark_current(&store).await?;
            store.close().await;
            println!("re-indexed {count} resources");
        }
        Command::Import {
            database,
            paths,
            batch_size,
        } => {
            let store = Store::connect(&database.database_url, 4).await?;
            store.migrate().await?;
            crate::engine::reindex::ensure_current(&store).await?;
            let audit = crate::audit::switch::cli_recorder(&store).await?;
            let result = crate::import::run(&store, &paths, batch_size.max(1)).await;
            // Recorded right after the load (its batches commit on their own), whatever
            // its outcome; the command fails when the event cannot be written.
            let source: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let event = crate::import::audit_event(&source.join(" "), &result);
            audit.record(event).await?;
            let report = result?;
            store.analyze().await?;
            store.close().await;
            return Ok(if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Command::Bench(args) => crate::bench::run(args).await?,
        Command::Client { database, command } => auth::client(database, command).await?,
        Command::App { database, command } => apps::app(database, command).await?,
        Command::User { database, command } => auth::user(database, command).await?,
        Command::Launch { database, command } => auth::launch(database, command).await?,
        Command::Keys { database, command } => auth::keys(database, command).await?,
        Command::Token { database, command } => token::token(database, command).await?,
        Command::Audit { database, command } => return audit::audit(database, command).await,
    }
    Ok(ExitCode::SUCCESS)
}
