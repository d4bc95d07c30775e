//! A real order desk for the tests: built by [`Application::build`], as the
//! binary builds it, over a fresh database — SQLite in a temporary
//! directory, or with `ORDERTRACK_TEST_BACKEND=postgres` PostgreSQL in a
//! throw-away schema — with the demo seeded, served on an ephemeral port.
//! It can be stopped and started again on the same port over the same
//! database, as a restarted deployment would be.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ordertrack_app::printing::PrintSettings;
use ordertrack_app::push::VapidKey;
use ordertrack_app::{App, EmailConfig, PushConfig, SignInLimits, StoreSignup, WebhookConfig};
use ordertrack_realtime::Hub;
use ordertrack_store::Repository;
use ordertrack_store::conformance::TestSchema;
pub use ordertrack_web::Limits;
use ordertrack_web::{Application, Database, Settings, TlsFiles};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, oneshot};
use tokio::task::JoinHandle;

const SECRET: &[u8] = b"integration-tests-secret-0123456789-abcdefghij";

/// The VAPID key every test server signs its pushes with.
pub static VAPID: std::sync::LazyLock<Arc<VapidKey>> =
    std::sync::LazyLock::new(|| Arc::new(VapidKey::generate()));

/// The contact test servers name in their VAPID tokens.
pub const PUSH_SUBJECT: &str = "mailto:ops@ordertrack.test";

/// A test that measures this process (every server runs in it), or holds a
/// browser to a deadline, runs alone: its server holds this exclusively,
/// every other server holds it shared.
static TURN: RwLock<()> = RwLock::const_new(());

/// Where a test server's data lives; dropping it deletes the database.
enum TestDb {
    /// The directory holding the database file.
    Sqlite(TempDir),
    Postgres(Box<TestSchema>),
}

impl TestDb {
    /// A fresh database on the backend `ORDERTRACK_TEST_BACKEND` names
    /// (`sqlite`, the default, or `postgres`).
    async fn create() -> TestDb {
        match std::env::var("ORDERTRACK_TEST_BACKEND").as_deref() {
            Ok("postgres") => {
                TestDb::Postgres(Box::new(TestSchema::create().await.unwrap_or_else(|why| {
                    panic!("ORDERTRACK_TEST_BACKEND=postgres but {why}")
                })))
            }
            Ok("sqlite") | Ok("") | Err(_) => {
                TestDb::Sqlite(tempfile::tempdir().expect("create a temporary directory"))
            }
            Ok(other) => panic!("ORDERTRACK_TEST_BACKEND={other}: expected sqlite or postgres"),
        }
    }

    fn database(&self) -> Database {
        match self {
            TestDb::Sqlite(dir) => Database::Sqlite(dir.path().join("ordertrack.db")),
            TestDb::Postgres(schema) => Database::Postgres {
                url: schema.url(),
                pool_size: 8,
                timeout: Duration::from_secs(10),
            },
        }
    }

    /// The order desk over this database; a serving one has the demo seeded.
    async fn build(
        &self, token_ttl: time::Duration, guards: &Guards, serving: bool,
    ) -> Application {
        Application::build(Settings {
            database: self.database(),
            secret: SECRET.to_vec(),
            token_ttl,
            sign_in: guards.sign_in.clone(),
            trusted_proxies: guards.trusted_proxies.clone(),
            limits: guards.limits.clone(),
            nats: None,
            seed_demo: serving && !guards.no_demo,
            store_signup: guards.store_signup,
            metrics_token: guards.metrics_token.clone(),
            tls: guards.tls.clone(),
            public_https: false,
            printing: guards.printing.clone(),
            serving,
            webhooks: WebhookConfig {
                // Tests' receivers listen on loopback.
                allow_private: !guards.refuse_private_webhooks,
                schedule: guards
                    .webhook_retries
                    .clone()
                    .unwrap_or_else(|| vec![Duration::from_millis(200); 3]),
                timeout: guards.webhook_timeout.unwrap_or(Duration::from_secs(10)),
                poll: Duration::from_secs(1),
                retention: ordertrack_app::outbox::DEFAULT_RETENTION,
            },
            asset_salt: guards.asset_salt.clone(),
            email: EmailConfig {
                smtp_url: guards.smtp_url.clone(),
                from: "Test Orders <orders@ordertrack.test>".into(),
                public_url: guards
                    .public_url
                    .clone()
                    .unwrap_or_else(|| EmailConfig::default().public_url),
                schedule: guards
                    .email_retries
                    .clone()
                    .unwrap_or_else(|| vec![Duration::from_millis(200); 20]),
                timeout: Duration::from_secs(10),
                poll: Duration::from_secs(1),
                retention: ordertrack_app::outbox::DEFAULT_RETENTION,
            },
            push: PushConfig {
                vapid: Some(VAPID.clone()),
                subject: PUSH_SUBJECT.into(),
                // Tests' push services listen on loopback.
                allow_private: true,
                schedule: vec![Duration::from_millis(200); 3],
                timeout: Duration::from_secs(10),
                poll: Duration::from_secs(1),
                retention: ordertrack_app::outbox::DEFAULT_RETENTION,
            },
        })
        .await
        .expect("build the order desk")
    }
}

/// How a test server guards sign-ins, connections, streams and writes
/// (by default as the binary does).
#[derive(Clone, Default)]
pub struct Guards {
    pub sign_in: SignInLimits,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Timeouts, and connections, streams and writes per client.
    pub limits: Limits,
    /// Who may open a store (`--store-signup`).
    pub store_signup: StoreSignup,
    /// The Bearer token for `/metrics` (`--metrics-token`).
    pub metrics_token: Option<String>,
    /// Serve HTTPS with this certificate (`--tls-cert`, `--tls-key`); the
    /// test client trusts it and calls `https://localhost:PORT`.
    pub tls: Option<TlsFiles>,
    /// Start from an empty database, as `serve` does: no demo stores or
    /// accounts.
    pub no_demo: bool,
    /// Serve another build of the assets (see `Settings::asset_salt`).
    pub asset_salt: Option<String>,
    /// Where printers may be and how print jobs are retried.
    pub printing: PrintSettings,
    /// Refuse webhooks to loopback and private addresses, as the binary
    /// does without `--webhooks-allow-private` (test servers allow them:
    /// their receivers are on loopback).
    pub refuse_private_webhooks: bool,
    /// The webhook retry schedule (default: three retries 200 ms apart).
    pub webhook_retries: Option<Vec<Duration>>,
    /// How long a webhook attempt may take (default: 10 s, as the binary).
    pub webhook_timeout: Option<Duration>,
    /// The SMTP server customers are mailed through (`--smtp-url`;
    /// default: none, no mail).
    pub smtp_url: Option<String>,
    /// The e-mail retry schedule (default: retries 200 ms apart).
    pub email_retries: Option<Vec<Duration>>,
    /// Where links in mails point (`--public-url`): set to the server's
    /// own address when it starts.
    pub public_url: Option<String>,
}

/// A running server, its database and a client. Dropping it stops the
/// server and deletes the database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The application behind the server (for setting up stores and staff).
    pub app: App,
    /// Its store, for setting up and checking what no API call does.
    pub store: Arc<dyn Repository>,
    token_ttl: time::Duration,
    guards: Guards,
    running: Option<Running>,
    _shared: Option<RwLockReadGuard<'static, ()>>,
    _alone: Option<RwLockWriteGuard<'static, ()>>,
    // Last: the database outlives the server.
    db: TestDb,
}

/// A server task and what stops it (dropping `stop` stops it too).
struct Running {
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn start(application: Application, listener: TcpListener) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let served = application.spawn(listener, async move {
            let _ = stopped.await;
        });
        Running { stop, served }
    }
}

/// A server with the demo seeded.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_ttl(time::Duration::hours(1)).await
}

/// A server with the demo seeded, whose sessions live for `token_ttl`.
pub async fn spawn_app_with_ttl(token_ttl: time::Duration) -> TestApp {
    let shared = TURN.read().await;
    let mut app = start(token_ttl, Guards::default()).await;
    app._shared = Some(shared);
    app
}

/// A server with the demo seeded that guards sign-ins so.
pub async fn spawn_app_guarded(guards: Guards) -> TestApp {
    let shared = TURN.read().await;
    let mut app = start(time::Duration::hours(1), guards).await;
    app._shared = Some(shared);
    app
}

/// [`spawn_app_guarded`], running while no other server does (for
/// measuring this process).
pub async fn spawn_app_alone_guarded(guards: Guards) -> TestApp {
    let alone = TURN.write().await;
    let mut app = start(time::Duration::hours(1), guards).await;
    app._alone = Some(alone);
    app
}

/// A server with the demo seeded that runs while no other does: for
/// measuring this process, or for deadlines that load elsewhere would blur.
pub async fn spawn_app_alone() -> TestApp {
    let alone = TURN.write().await;
    let mut app = start(time::Duration::hours(1), Guards::default()).await;
    app._alone = Some(alone);
    app
}

/// The test's HTTP client: connections kept for reuse; trusting the test
/// certificate when the server speaks TLS.
fn client(guards: &Guards) -> reqwest::Client {
    let mut client = reqwest::Client::builder().pool_max_idle_per_host(8);
    if let Some(files) = &guards.tls {
        let pem = std::fs::read(&files.cert).expect("read the test certificate");
        let root = reqwest::Certificate::from_pem(&pem).expect("a PEM certificate");
        client = client.add_root_certificate(root);
    }
    client.build().expect("build an HTTP client")
}

async fn start(token_ttl: time::Duration, mut guards: Guards) -> TestApp {
    let db = TestDb::create().await;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port");
    let addr = listener.local_addr().expect("local address");
    let base = match &guards.tls {
        None => format!("http://{addr}"),
        Some(_) => format!("https://localhost:{}", addr.port()),
    };
    guards.public_url.get_or_insert_with(|| base.clone());
    let application = db.build(token_ttl, &guards, true).await;
    TestApp {
        base,
        addr,
        client: client(&guards),
        app: application.app().clone(),
        store: application.repository().clone(),
        token_ttl,
        guards,
        running: Some(Running::start(application, listener)),
        _shared: None,
        _alone: None,
        db,
    }
}

impl TestApp {
    /// The URL of a page (`/login` → `http://…/login`).
    pub fn page_url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The SQLite database file, when this server runs on SQLite.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match &self.db {
            TestDb::Sqlite(dir) => Some(dir.path().join("ordertrack.db")),
            TestDb::Postgres(_) => None,
        }
    }

    /// The live fan-out of the running server.
    pub fn hub(&self) -> &Hub {
        self.app.hub()
    }

    /// Another application over this server's database (the same SQLite
    /// file, or the same PostgreSQL schema), as another process or a
    /// restart would open it.
    pub async fn reopen(&self) -> Application {
        self.db.build(self.token_ttl, &self.guards, false).await
    }

    /// Starts the graceful shutdown; returns the serve task to await.
    pub fn shut_down(&mut self) -> JoinHandle<std::io::Result<()>> {
        let running = self.running.take().expect("the server is running");
        let _ = running.stop.send(());
        running.served
    }

    /// Stops the server and waits until it has finished (its streams told
    /// to reconnect, in-flight requests done).
    pub async fn stop(&mut self) {
        tokio::time::timeout(Duration::from_secs(20), self.shut_down())
            .await
            .expect("the server stops within 20 s")
            .expect("the server task ends cleanly")
            .expect("serve returns Ok");
    }

    /// Serves another build of the assets (`None`: the binary's own) from
    /// the next [`restart`](Self::restart) on.
    pub fn set_asset_salt(&mut self, salt: Option<&str>) {
        self.guards.asset_salt = salt.map(str::to_owned);
    }

    /// Starts a new server over the same database on the same port.
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "stop the server first");
        let application = self.db.build(self.token_ttl, &self.guards, true).await;
        let mut attempt = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) if attempt < 50 => {
                    attempt += 1;
                    eprintln!("rebinding {} failed ({error}); retrying", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("could not bind {} again: {error}", self.addr),
            }
        };
        self.app = application.app().clone();
        self.store = application.repository().clone();
        self.running = Some(Running::start(application, listener));
        // A fresh client, as a browser would open fresh connections: a
        // kept connection to the stopped server may not have seen its
        // close yet, and the next request on it would fail half-sent.
        self.client = client(&self.guards);
    }
}
