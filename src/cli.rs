//! The `barong` command line: `serve`, `migrate`, `seed`, `keys generate`, `config`.
//!
//! Operator commands (`users create`, `permissions load`) live in `cli/admin.rs`.
//!
//! Exit codes: 0 success, 1 runtime failure (database unreachable, port taken), 2 invalid
//! settings or arguments. Failures print one line, never a backtrace.

mod admin;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, LogFormat};
use crate::crypto::keys::{self, KeyAlgorithm};
use crate::server;

/// A Barong-compatible auth gateway: authz sidecar for Envoy/nginx and the Barong REST API.
#[derive(Debug, Parser)]
#[command(name = "barong", version, about)]
pub struct Cli {
    /// TOML file with settings (keys as the env names, lower-case, without `BARONG_`);
    /// environment variables win over it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authz and REST listeners (migrates and seeds an empty database first).
    Serve {
        /// Do not apply pending migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load levels, permissions, restrictions and users from a seeds.yml (idempotent).
    Seed {
        /// Seeds file in Barong's format; default BARONG_SEEDS_FILE or the built-in seeds.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the effective configuration (secrets redacted); non-zero exit when invalid.
    Config,
    /// User management for operators.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Permission management for operators.
    Permissions {
        #[command(subcommand)]
        command: PermissionsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Import users from Barong's export (CSV with a header row, or a JSON array) in the
    /// columns of the management `users/import` call; bcrypt digests are kept; idempotent.
    Import {
        /// The export file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Create an active user with a verified e-mail and the given role; prints its uid.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// A role named by at least one permission (superadmin, admin, member, ...).
        #[arg(long, default_value = crate::domain::role::MEMBER)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PermissionsCommand {
    /// Replace every permission with those of FILE (a seeds.yml or a list in its format);
    /// running instances reload them.
    Load {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new JWT signing private key (PKCS#8 PEM).
    Generate {
        /// Signature algorithm of the key.
        #[arg(long, value_enum, default_value = "RS256")]
        algorithm: AlgorithmArg,
        /// Where to write the key (must not exist).
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Make a new signing key current on every instance sharing the database; tokens of the
    /// previous key keep verifying until they expire.
    Rotate {
        /// Signature algorithm of the new key (default: BARONG_JWT_ALGORITHM).
        #[arg(long, value_enum)]
        algorithm: Option<AlgorithmArg>,
    },
}

/// `--algorithm` values, spelled as JOSE spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgorithmArg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl From<AlgorithmArg> for KeyAlgorithm {
    fn from(arg: AlgorithmArg) -> Self {
        match arg {
            AlgorithmArg::Rs256 => KeyAlgorithm::Rs256,
            AlgorithmArg::Es256 => KeyAlgorithm::Es256,
            AlgorithmArg::EdDsa => KeyAlgorithm::EdDsa,
        }
    }
}

/// Parses the command line, runs the command, and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Keys {
        command: KeysCommand::Generate { algorithm, out },
    } = &cli.command
    {
        return generate_key((*algorithm).into(), out);
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("barong: {error}");
            return ExitCode::from(2);
        }
    };
    if let Command::Config = cli.command {
        for (name, value) in config.describe() {
            println!("{name}={value}");
        }
        return ExitCode::SUCCESS;
    }
    init_logging(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("barong: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "barong failed");
            eprintln!("barong: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), server::ServeError> {
    match command {
        Command::Serve { no_migrate } => server::serve(config, !no_migrate).await,
        Command::Migrate => {
            let started = std::time::Instant::now();
            let store = server::open_store(&config).await?;
            let applied = store.migrate().await?;
            println!(
                "applied {} migration(s) {:?} in {} ms",
                applied.len(),
                applied,
                started.elapsed().as_millis()
            );
            Ok(())
        }
        Command::Seed { file } => {
            let started = std::time::Instant::now();
            let store = server::open_store(&config).await?;
            store.migrate().await?;
            let report = server::seed(&config, store.as_ref(), file.as_deref()).await?;
            println!(
                "seeded levels={} permissions={} restrictions={} users={} in {} ms",
                report.levels,
                report.permissions,
                report.restrictions,
                report.users,
                started.elapsed().as_millis()
            );
            Ok(())
        }
        Command::Users {
            command:
                UsersCommand::Create {
                    email,
                    password,
                    role,
                },
        } => {
            let uid = admin::create_user(&config, &email, &password, &role).await?;
            println!("created {uid} ({email}, {role}, active)");
            Ok(())
        }
        Command::Users {
            command: UsersCommand::Import { file },
        } => import_users(&config, &file).await,
        Command::Permissions {
            command: PermissionsCommand::Load { file },
        } => {
            let count = admin::load_permissions(&config, &file).await?;
            println!("loaded {count} permission(s) from {}", file.display());
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { algorithm },
        } => {
            let keys = server::load_keys(&config)?;
            let store = server::open_store(&config).await?;
            store.migrate().await?;
            let algorithm = algorithm.map_or_else(|| server::key_algorithm(&config), Into::into);
            let encryptor = crate::crypto::encryption::Encryptor::new(&keys.encryption);
            let rotation = crate::keys::rotate(
                store.as_ref(),
                &encryptor,
                &keys.signing,
                algorithm,
                crate::keys::retention(&config),
            )
            .await?;
            println!(
                "rotated: {} key {} is current; {} verifies until {}",
                algorithm.name(),
                rotation.new_kid,
                rotation.previous_kid,
                chrono::DateTime::from_timestamp(rotation.previous_verifies_until, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            );
            Ok(())
        }
        Command::Keys { .. } | Command::Config => Ok(()),
    }
}

async fn import_users(config: &Config, file: &std::path::Path) -> Result<(), server::ServeError> {
    let started = std::time::Instant::now();
    let rows =
        crate::import::read_rows(file).map_err(|e| server::ServeError::Invalid(e.to_string()))?;
    // The server's key: imported profiles and phones must decrypt there.
    let encryptor =
        crate::crypto::encryption::Encryptor::new(&server::load_encryption_key(config)?);
    let store = server::open_store(config).await?;
    store.migrate().await?;
    let rules = crate::domain::StateRules {
        activation_requirements: config.barong_yml.activation_requirements.clone(),
        state_triggers: config.barong_yml.state_triggers.clone(),
    };
    let ctx = crate::import::ImportContext {
        store: store.as_ref(),
        encryptor: &encryptor,
        rules: &rules,
        uid_prefix: &config.users.uid_prefix,
    };
    let report = crate::import::import_users(&ctx, &rows, crate::api::management::full_messages)
        .await
        .map_err(|e| server::ServeError::Invalid(e.to_string()))?;
    for (row, reason) in &report.refused {
        eprintln!("row {row}: refused: {reason}");
    }
    for (row, reason) in &report.incomplete {
        eprintln!("row {row}: {reason}");
    }
    println!(
        "imported users created={} skipped={} refused={} incomplete={} in {} ms",
        report.created,
        report.skipped,
        report.refused.len(),
        report.incomplete.len(),
        started.elapsed().as_millis()
    );
    Ok(())
}

fn generate_key(algorithm: KeyAlgorithm, out: &std::path::Path) -> ExitCode {
    let result = keys::generate_private_key_pem(algorithm)
        .and_then(|pem| keys::write_secret_file(out, &pem));
    match result {
        Ok(()) => {
            println!(
                "wrote {} private key to {}",
                algorithm.name(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("barong: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Log targets capped at `info` (see [`init_logging`]).
const SECRET_BEARING_TARGETS: [&str; 5] = [
    "tokio_postgres",
    "postgres",
    "rusqlite",
    "lettre",
    "reqwest",
];

/// Text logs by default, JSON with `BARONG_LOG_FORMAT=json`; `RUST_LOG` filters (default info).
fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // These dependencies log statement parameters or message contents at debug/trace level
    // (tokio-postgres prints every bound value: CSRF tokens, reset tokens, encrypted secrets):
    // they never log below info, whatever RUST_LOG says, so secrets stay out of the logs.
    for quiet in SECRET_BEARING_TARGETS {
        if let Ok(directive) = format!("{quiet}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.server.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
