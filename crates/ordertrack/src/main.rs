//! `ordertrack`: the order desk in one binary.

mod config;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ordertrack_app::demo::{DEMO_ACCOUNTS, DEMO_PASSWORD};
use ordertrack_app::stores::StoreSetup;
use ordertrack_domain::Role;
use ordertrack_store::{PostgresRepository, SqliteRepository};
use ordertrack_web::Application;
use tracing_subscriber::EnvFilter;

use config::{Database, ServerArgs};

/// jemalloc keeps allocations of one size class together, so the untouched
/// part of each connection's read and write buffers never becomes resident:
/// an idle live stream costs 11.8 KiB instead of 14.2 KiB with the system
/// allocator (BENCHMARKS.md, `idle`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The order desk: customers order, staff move orders through their steps,
/// everyone sees every change live.
#[derive(Parser)]
#[command(name = "ordertrack", version, about)]
struct Cli {
    /// How log lines are written: `text` for people, `json` (one object
    /// a line, with the request id of the request it belongs to) for log
    /// collectors.
    #[arg(
        long,
        global = true,
        env = "ORDERTRACK_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the order desk (never creates demo accounts).
    Serve(ServerArgs),
    /// Serve with a seeded demo store, menu and one account per role.
    Demo(ServerArgs),
    /// Apply pending database migrations and exit.
    Migrate(ServerArgs),
    /// Copy the embedded database to FILE while the order desk keeps
    /// serving (a consistent snapshot; PostgreSQL: use pg_dump).
    Backup {
        #[command(flatten)]
        server: ServerArgs,
        /// Where the copy goes (replaced if it exists).
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Replace the embedded database with a copy made by `backup`, once
    /// the copy passes SQLite's integrity check. Stop the server first.
    Restore {
        #[command(flatten)]
        server: ServerArgs,
        /// The copy to restore.
        #[arg(long)]
        from: std::path::PathBuf,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage stores.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Open a live store owned by an existing account (then add staff with
    /// `user create --store SLUG --role ROLE`).
    Create {
        #[command(flatten)]
        server: ServerArgs,
        /// The store's address: /stores/SLUG (3–40 lower-case letters,
        /// digits and dashes).
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// ISO 4217 currency code, e.g. EUR.
        #[arg(long)]
        currency: String,
        /// Built-in workflow: restaurant, kitchen or retail.
        #[arg(long)]
        workflow: String,
        /// IANA time zone its opening hours are read in (default UTC).
        #[arg(long)]
        timezone: Option<String>,
        /// E-mail of the account that owns the store.
        #[arg(long)]
        owner: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account, optionally as staff of a store or as platform admin.
    Create {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// The password (or set ORDERTRACK_NEW_PASSWORD).
        #[arg(long, env = "ORDERTRACK_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        /// Make the account a platform administrator.
        #[arg(long)]
        admin: bool,
        /// Store (slug) to add the account to as staff.
        #[arg(long, requires = "role")]
        store: Option<String>,
        /// Staff role in that store: owner, manager, cashier, kitchen or driver.
        #[arg(long, requires = "store")]
        role: Option<Role>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("ORDERTRACK_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        // The request's span (its id, method and route) on every line.
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .init(),
    }
    match cli.command {
        Command::Serve(args) => run_server(args, false).await,
        Command::Demo(args) => run_server(args.demo_defaults(), true).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Backup { server, to } => {
            let path = sqlite_path(&server, "backup")?;
            ordertrack_store::sqlite::backup::backup(&path, &to)
                .with_context(|| format!("backing up {}", path.display()))?;
            println!("{} backed up to {}", path.display(), to.display());
            Ok(())
        }
        Command::Restore { server, from } => {
            let path = sqlite_path(&server, "restore")?;
            ordertrack_store::sqlite::backup::restore(&from, &path)
                .with_context(|| format!("restoring {} from {}", path.display(), from.display()))?;
            println!("{} restored from {}", path.display(), from.display());
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    server,
                    email,
                    name,
                    password,
                    admin,
                    store,
                    role,
                },
        } => {
            let application = Application::build(server.settings(false, false)?).await?;
            let app = application.app();
            let user = app.create_user(&email, &password, &name, admin).await?;
            if let (Some(slug), Some(role)) = (store, role) {
                let store = app.store_by_slug(&slug).await?;
                app.admin_set_membership(user.id, store.id, role).await?;
                println!("created {} ({}) as {role} of {slug}", user.email, user.id);
            } else {
                println!("created {} ({})", user.email, user.id);
            }
            Ok(())
        }
        Command::Store {
            command:
                StoreCommand::Create {
                    server,
                    slug,
                    name,
                    currency,
                    workflow,
                    timezone,
                    owner,
                },
        } => {
            let application = Application::build(server.settings(false, false)?).await?;
            let opened = application
                .app()
                .admin_open_store(
                    StoreSetup {
                        slug,
                        name,
                        currency,
                        workflow: workflow.into(),
                        timezone,
                    },
                    &owner,
                )
                .await?;
            println!(
                "created store {} ({}, {}, {}, {}) owned by {owner}",
                opened.store.slug,
                opened.store.name,
                opened.store.currency,
                opened.store.workflow,
                opened.settings.timezone
            );
            Ok(())
        }
    }
}

/// The embedded database's file; `backup` and `restore` are for it only.
fn sqlite_path(args: &ServerArgs, what: &str) -> anyhow::Result<std::path::PathBuf> {
    match args.database()? {
        Database::Sqlite(path) => Ok(path),
        Database::Postgres(_) => {
            bail!(
                "`{what}` is for the embedded database; for PostgreSQL use pg_dump and pg_restore"
            )
        }
    }
}

async fn migrate(args: ServerArgs) -> anyhow::Result<()> {
    match args.database()? {
        Database::Sqlite(path) => {
            let applied = SqliteRepository::migrate(&path)
                .with_context(|| format!("migrating {}", path.display()))?;
            println!("{}: {applied} migration(s) applied", path.display());
            Ok(())
        }
        Database::Postgres(url) => {
            let applied = PostgresRepository::migrate(&url, args.db_timeout())
                .await
                .context("migrating the PostgreSQL database")?;
            println!("PostgreSQL: {applied} migration(s) applied");
            Ok(())
        }
    }
}

async fn run_server(args: ServerArgs, demo: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let application = Application::build(args.settings(true, demo)?).await?;
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let address = listener.local_addr()?;
    if address.port() == 0 {
        bail!("could not bind a port");
    }
    let scheme = if application.serves_https() {
        "https"
    } else {
        "http"
    };
    println!("ordertrack listening on {scheme}://{address}");
    if demo {
        println!("demo logins (password `{DEMO_PASSWORD}` for every account):");
        for (email, _, what) in DEMO_ACCOUNTS {
            println!("  {email:<20} {what}");
        }
    }
    tracing::info!(
        ready_in_ms = started.elapsed().as_millis() as u64,
        "serving"
    );
    application.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
