//! The one way to put the order desk together: the store (SQLite or
//! PostgreSQL), the hub that fans commits out to live streams, the NATS
//! relay when instances share a bus, and the [`App`] over them — then serve
//! it on a bound listener.
//!
//! The binary builds from its command line and every integration test
//! builds from its own [`Settings`], so the pieces are wired in exactly one
//! place and a test server is the server that runs in production.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ordertrack_app::email::{EmailHandle, EmailSetupError};
use ordertrack_app::printing::spool::Spool;
use ordertrack_app::printing::{PrintSettings, Printing};
use ordertrack_app::push::PushWorker;
use ordertrack_app::webhooks::WebhookWorker;
use ordertrack_app::{
    App, AppError, AuthConfig, DurationsCache, EmailConfig, EmailRuntime, PushConfig, PushRuntime,
    SignInLimits, StoreSignup, WebhookConfig, WebhookRuntime,
};
use ordertrack_realtime::{Hub, NatsBus, NatsOptions, relay_channel};
use ordertrack_store::postgres::PostgresOptions;
use ordertrack_store::sqlite::SqliteOptions;
use ordertrack_store::{
    CommitListener, PostgresRepository, Repository, SqliteRepository, StoreError,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::limits::{Limiter, Limits};
use crate::metrics::Metrics;
use crate::tls::TlsFiles;
use crate::{AppState, SharedState};
use tokio_rustls::TlsAcceptor;

/// The binary's log target: these lines read the same whichever crate
/// writes them, and operators filter on it.
const LOG_TARGET: &str = "ordertrack";

/// Everything the order desk needs to start.
pub struct Settings {
    /// Where the data lives.
    pub database: Database,
    /// Key for signing session tokens.
    pub secret: Vec<u8>,
    /// How long a session lasts.
    pub token_ttl: time::Duration,
    /// Failed sign-ins allowed and password hashing at once.
    pub sign_in: SignInLimits,
    /// Reverse proxies trusted to name the client in `X-Forwarded-For`
    /// (sign-in limits are kept per client address).
    pub trusted_proxies: Vec<IpAddr>,
    /// Timeouts, and connections, live streams and writes per client.
    pub limits: Limits,
    /// The bus shared by the instances of one deployment (PostgreSQL only);
    /// `None`: commits feed this instance's hub directly.
    pub nats: Option<NatsSettings>,
    /// Seed the demo stores, menus and accounts (once per database).
    pub seed_demo: bool,
    /// Who may open a store through the API and the pages.
    pub store_signup: StoreSignup,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate; `None`:
    /// plain HTTP/1.1 (behind a proxy that ends TLS).
    pub tls: Option<TlsFiles>,
    /// Clients reach the server over HTTPS even where TLS ends before it
    /// (`--public-url https://…`): cookies are `Secure` then.
    pub public_https: bool,
    /// The Bearer token that lets a scraper elsewhere than on this machine
    /// read `/metrics` (`None`: only clients on this machine may).
    pub metrics_token: Option<String>,
    /// Where printers may be, and how print jobs are sent and retried.
    pub printing: PrintSettings,
    /// This instance will serve clients. A PostgreSQL instance that serves
    /// without a bus is warned about: its live updates reach only its own
    /// clients.
    pub serving: bool,
    /// Where webhooks may go, their retry schedule and timeout.
    pub webhooks: WebhookConfig,
    /// Tests only: mixed into the embedded assets, standing in for another
    /// build of the binary (see [`crate::pages::Assets::embedded`]).
    pub asset_salt: Option<String>,
    /// Customer e-mail: the SMTP server (none: no mail), the sender, the
    /// address links point at, the retry schedule.
    pub email: EmailConfig,
    /// Web Push to customers: the VAPID key (none: off), where pushes may
    /// go, retries.
    pub push: PushConfig,
}

/// The database to open (migrations run on opening).
pub enum Database {
    /// The embedded database in this file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…`; the URL may carry connection
    /// options such as `options[search_path]=…`).
    Postgres {
        /// Where the database is.
        url: String,
        /// Connections in the read pool (the writer has one more).
        pool_size: u32,
        /// How long to wait for a connection, or for one statement.
        timeout: Duration,
    },
}

/// Where the instances of one deployment exchange committed events.
pub struct NatsSettings {
    /// `nats://host:4222`.
    pub url: String,
    /// The subject they share.
    pub subject: String,
}

/// Why the order desk could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Instances only share events through a database they share.
    #[error("an event bus needs a PostgreSQL database")]
    BusNeedsPostgres,
    /// The SQLite file could not be opened or migrated.
    #[error("opening {}", path.display())]
    OpenSqlite {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    /// The PostgreSQL database could not be reached or migrated.
    #[error("opening the PostgreSQL database")]
    OpenPostgres(#[source] StoreError),
    /// The NATS connection could not be set up.
    #[error("starting the NATS event bus")]
    StartBus(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The certificate or key for HTTPS could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Seeding the demo failed.
    #[error(transparent)]
    Seed(#[from] AppError),
    /// The SMTP server or sender address cannot be used.
    #[error(transparent)]
    Email(#[from] EmailSetupError),
}

/// The running pieces of one instance, ready to serve.
pub struct Application {
    app: App,
    repo: Arc<dyn Repository>,
    trusted_proxies: Arc<[IpAddr]>,
    limits: Limits,
    metrics: Arc<Metrics>,
    tls: Option<TlsAcceptor>,
    public_https: bool,
    assets: Arc<crate::pages::Assets>,
    /// The print follower and worker of a serving instance; they stop when
    /// it is dropped (when serving ends).
    printing: Option<Spool>,
    webhooks: WebhookRuntime,
    /// The e-mail sender of a serving instance with an SMTP server.
    email: Option<EmailHandle>,
    push: PushRuntime,
}

impl Application {
    /// Opens the store and the live fan-out (through NATS when the settings
    /// name a bus), builds the [`App`] over them and seeds the demo if asked.
    pub async fn build(settings: Settings) -> Result<Application, BuildError> {
        let tls = settings
            .tls
            .as_ref()
            .map(crate::tls::acceptor)
            .transpose()?;
        let hub = Hub::new();
        let relay = settings.nats.as_ref().map(|nats| {
            let options = NatsOptions::new(nats.url.clone(), nats.subject.clone());
            let (listener, queue) = relay_channel(options.relay_capacity);
            (options, Arc::new(listener), queue)
        });
        let listener: Arc<dyn CommitListener> = match &relay {
            Some((_, listener, _)) => listener.clone(),
            None => Arc::new(hub.clone()),
        };
        let metrics = Metrics::new(settings.metrics_token);
        let listener = metrics.count_commits(listener);
        // A finished order makes its store's ETA durations be read afresh.
        let durations = Arc::new(DurationsCache::default());
        let listener = durations.listener(listener);
        // Each commit also wakes the print follower, so paper follows at once.
        let printing = Arc::new(Printing::new(settings.printing));
        let listener = printing.wake_on_commit(listener);
        // Commits wake the webhook worker too.
        let webhooks = WebhookRuntime::new(settings.webhooks);
        let listener = webhooks.listener(listener);
        // And the e-mail follower.
        let email = EmailRuntime::new(settings.email);
        let listener = email.listener(listener);
        // And the push worker.
        let push = PushRuntime::new(settings.push);
        let listener = push.listener(listener);
        let store: Arc<dyn Repository> = match settings.database {
            Database::Sqlite(path) => {
                if relay.is_some() {
                    return Err(BuildError::BusNeedsPostgres);
                }
                let options = SqliteOptions {
                    listener: Some(listener),
                    ..SqliteOptions::default()
                };
                match SqliteRepository::open(&path, options) {
                    Ok(store) => Arc::new(store),
                    Err(source) => return Err(BuildError::OpenSqlite { path, source }),
                }
            }
            Database::Postgres {
                url,
                pool_size,
                timeout,
            } => {
                let options = PostgresOptions {
                    pool_size,
                    timeout,
                    listener: Some(listener),
                };
                let store = PostgresRepository::connect(&url, options)
                    .await
                    .map_err(BuildError::OpenPostgres)?;
                tracing::info!(
                    target: LOG_TARGET,
                    pool_size,
                    timeout_secs = timeout.as_secs(),
                    "using PostgreSQL"
                );
                if settings.serving && relay.is_none() {
                    tracing::warn!(
                        target: LOG_TARGET,
                        "no event bus (--nats-url): this PostgreSQL deployment runs as one \
                         instance; live updates reach only this instance's clients, so do \
                         not run more than one instance on this database"
                    );
                }
                Arc::new(store)
            }
        };
        let mut app = App::new(
            store.clone(),
            hub.clone(),
            AuthConfig {
                secret: settings.secret,
                token_ttl: settings.token_ttl,
                limits: settings.sign_in,
            },
        )
        .with_store_signup(settings.store_signup)
        .with_durations(durations)
        .with_printing(printing)
        .with_webhooks(webhooks.clone())
        .with_email(email)
        .with_push(push.clone());
        if let Some((options, _, queue)) = relay {
            let subject = options.subject.clone();
            let bus = NatsBus::start(options, queue, store.clone(), hub)
                .await
                .map_err(|error| BuildError::StartBus(error.into()))?;
            tracing::info!(
                target: LOG_TARGET,
                %subject,
                "event bus: NATS; events fan out to every instance"
            );
            app = app.with_bus_check(move || bus.is_connected());
        }
        if settings.seed_demo && ordertrack_app::demo::seed(&app).await? {
            tracing::info!(target: LOG_TARGET, "demo stores and accounts created");
        }
        // A database from before the per-day report rollups (or a zone
        // change whose rebuild did not finish) gets them once, before
        // anything is served.
        let started = std::time::Instant::now();
        let rebuilt = app.ensure_report_rollups().await?;
        if rebuilt > 0 {
            tracing::info!(
                target: LOG_TARGET,
                stores = rebuilt,
                millis = started.elapsed().as_millis() as u64,
                "report rollups built from the stores' orders"
            );
        }
        // Only a serving instance prints (tools that open the database do
        // not), and only when the operator allows some printer host: with
        // none, no printer could be reached, so nothing runs.
        let printing =
            (settings.serving && !app.printing().settings().hosts.is_empty()).then(|| {
                tracing::info!(
                    target: LOG_TARGET,
                    hosts = %app.printing().settings().hosts,
                    "printing to network printers"
                );
                app.start_printing()
            });
        // Only a serving instance mails; without an SMTP server nothing
        // is sent (and the log says so once).
        let email = match settings.serving {
            true => app.start_email()?,
            false => None,
        };
        Ok(Application {
            app,
            repo: store,
            trusted_proxies: settings.trusted_proxies.into(),
            limits: settings.limits,
            metrics,
            tls,
            public_https: settings.public_https,
            assets: Arc::new(crate::pages::Assets::embedded(
                settings.asset_salt.as_deref(),
            )),
            printing,
            webhooks,
            email,
            push,
        })
    }

    /// The use cases, over this instance's store and hub.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The repository under the use cases: for operators' tools and tests
    /// that set up or check what no use case does. Requests go through
    /// [`app`](Self::app), which authorises every read and write.
    pub fn repository(&self) -> &Arc<dyn Repository> {
        &self.repo
    }

    /// Whether it serves HTTPS itself (`Settings::tls`).
    pub fn serves_https(&self) -> bool {
        self.tls.is_some()
    }

    /// The live fan-out streams subscribe to.
    pub fn hub(&self) -> &Hub {
        self.app.hub()
    }

    /// The whole HTTP surface of this instance, to call in-process (a
    /// fuzzer's requests): what [`serve`](Self::serve) serves, without the
    /// accept loop — requests carry no peer address unless the caller adds
    /// a `ConnectInfo` — and without the streams' heartbeat.
    pub fn router(&self) -> axum::Router {
        crate::router(self.state())
    }

    fn state(&self) -> AppState {
        AppState::new(SharedState {
            app: self.app.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            limits: Arc::new(Limiter::new(self.limits.clone())),
            metrics: self.metrics.clone(),
            public_https: self.public_https,
            assets: self.assets.clone(),
        })
    }

    /// Serves on `listener` until `shutdown` resolves (see [`crate::serve`]),
    /// delivering webhooks and Web Push and keeping finished orders' ETA
    /// durations meanwhile.
    pub async fn serve(
        self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let tls = self.tls.clone();
        let worker = WebhookWorker::spawn(self.repo.clone(), &self.webhooks);
        let pusher = PushWorker::spawn(self.repo.clone(), &self.push);
        let eta_follower = self.app.start_eta_follower();
        let served = crate::serve(listener, self.state(), tls, shutdown).await;
        eta_follower.stop().await;
        worker.stop().await;
        if let Some(email) = self.email {
            email.stop().await;
        }
        if let Some(pusher) = pusher {
            pusher.stop().await;
        }
        // Printing stops with serving.
        drop(self.printing);
        served
    }

    /// [`serve`](Self::serve) on a task of its own.
    pub fn spawn(
        self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<std::io::Result<()>> {
        tokio::spawn(self.serve(listener, shutdown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_event_bus_needs_a_postgresql_database() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("ordertrack.db");
        let built = Application::build(Settings {
            database: Database::Sqlite(path.clone()),
            secret: vec![7; 32],
            token_ttl: time::Duration::hours(1),
            sign_in: SignInLimits::default(),
            trusted_proxies: Vec::new(),
            limits: Limits::default(),
            nats: Some(NatsSettings {
                url: "nats://127.0.0.1:4222".into(),
                subject: "ordertrack.events".into(),
            }),
            seed_demo: true,
            store_signup: StoreSignup::default(),
            metrics_token: None,
            tls: None,
            public_https: false,
            printing: PrintSettings::default(),
            serving: true,
            webhooks: WebhookConfig::default(),
            asset_salt: None,
            email: EmailConfig::default(),
            push: PushConfig::default(),
        })
        .await;
        assert!(matches!(built, Err(BuildError::BusNeedsPostgres)));
        assert!(!path.exists(), "nothing was opened");
    }
}
