//! Settings: one clap struct, each flag also an `ORDERTRACK_*` variable.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use ordertrack_app::printing::{PrintSettings, PrinterHosts};
use ordertrack_app::push::VapidKey;
use ordertrack_app::{EmailConfig, PushConfig, SignInLimits, StoreSignup, WebhookConfig};
use ordertrack_web::{Limits, NatsSettings, Settings, TlsFiles};

/// How long a session lasts.
const TOKEN_TTL: time::Duration = time::Duration::days(7);

/// Where and how to serve, and where the data lives.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "ORDERTRACK_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Folder for the embedded database and the generated secret.
    #[arg(long, env = "ORDERTRACK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite:///path/to/file.db` (default: a file in the data
    /// dir) or `postgres://user:password@host:5432/database`.
    #[arg(long, env = "ORDERTRACK_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL: connections in the read pool (the writer has one more).
    #[arg(long, env = "ORDERTRACK_DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,
    /// PostgreSQL: seconds to wait for a connection, or for one statement.
    #[arg(long, env = "ORDERTRACK_DB_TIMEOUT_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub db_timeout_secs: u64,
    /// NATS server for fanning events out across instances
    /// (`nats://host:4222`). Needs a PostgreSQL database.
    #[arg(long, env = "ORDERTRACK_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    /// NATS subject the instances of one deployment share.
    #[arg(
        long,
        env = "ORDERTRACK_NATS_SUBJECT",
        default_value = "ordertrack.events"
    )]
    pub nats_subject: String,
    /// Secret for signing session tokens (at least 32 characters).
    /// Default: generated on first run and kept in the data dir.
    #[arg(long, env = "ORDERTRACK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Failed sign-ins per account from one client address per minute.
    #[arg(long, env = "ORDERTRACK_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub login_failures_per_account: u32,
    /// Failed sign-ins from one client address, over all accounts, per minute.
    #[arg(long, env = "ORDERTRACK_LOGIN_FAILURES_PER_IP", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub login_failures_per_ip: u32,
    /// Failed sign-ins from all clients together per minute.
    #[arg(long, env = "ORDERTRACK_LOGIN_FAILURES_GLOBAL", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub login_failures_global: u32,
    /// Passwords hashed at once (each takes ~19 MiB while it runs).
    /// Default: the number of CPUs.
    #[arg(long, env = "ORDERTRACK_PASSWORD_HASHES")]
    pub password_hashes: Option<usize>,
    /// New accounts from one client address per minute.
    #[arg(long, env = "ORDERTRACK_REGISTRATIONS_PER_IP", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub registrations_per_ip: u32,
    /// Seconds a client has to send a request's headers (from connecting,
    /// or from starting its next request).
    #[arg(long, env = "ORDERTRACK_HEADER_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body once its headers
    /// are in.
    #[arg(long, env = "ORDERTRACK_BODY_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,
    /// Seconds a connection with no request in progress stays open
    /// (keep-alive). Live streams are never cut by it.
    #[arg(long, env = "ORDERTRACK_IDLE_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_secs: u64,
    /// Connections open at once from one client address; more are refused
    /// with 429 (0: no limit). Trusted proxies are exempt.
    #[arg(long, env = "ORDERTRACK_CONNECTIONS_PER_IP", default_value_t = 1024)]
    pub connections_per_ip: usize,
    /// Live streams (SSE and WebSocket together) open at once per user;
    /// more are refused with 429 (0: no limit).
    #[arg(long, env = "ORDERTRACK_STREAMS_PER_USER", default_value_t = 400)]
    pub streams_per_user: usize,
    /// Live streams open at once per client address, signed in or not
    /// (0: no limit).
    #[arg(long, env = "ORDERTRACK_STREAMS_PER_IP", default_value_t = 1000)]
    pub streams_per_ip: usize,
    /// Changes (POST, PUT, PATCH, DELETE) per session per minute; more are
    /// refused with 429 (0: no limit).
    #[arg(long, env = "ORDERTRACK_WRITES_PER_TOKEN", default_value_t = 3000)]
    pub writes_per_token: u32,
    /// Who may open a store through the API and the "Open a store" page:
    /// `closed` (platform admins only), `approval` (any signed-in user; the
    /// store stays hidden until an admin approves it) or `open` (any
    /// signed-in user, live at once).
    #[arg(long, env = "ORDERTRACK_STORE_SIGNUP", default_value = "closed")]
    pub store_signup: StoreSignup,
    /// Address of a reverse proxy whose `X-Forwarded-For` names the client
    /// (repeat, or comma-separate, for several). Default: none — the TCP
    /// peer is the client.
    #[arg(long, env = "ORDERTRACK_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<std::net::IpAddr>,
    /// Bearer token a Prometheus scraper sends to read `/metrics` from
    /// another machine. Default: none — only clients on this machine
    /// (loopback) may read it.
    #[arg(long, env = "ORDERTRACK_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with this PEM certificate
    /// chain; needs `--tls-key`. Default: plain HTTP (behind a proxy that
    /// ends TLS).
    #[arg(long, env = "ORDERTRACK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "ORDERTRACK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The address clients reach the order desk at, e.g.
    /// `https://orders.example.com`. An `https://` address makes cookies
    /// `Secure` even where TLS ends at a proxy in front.
    #[arg(long, env = "ORDERTRACK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Where stores' network printers may be: comma-separated networks,
    /// addresses and host names, e.g. `10.0.0.0/8,192.168.1.50,printer.local`.
    /// Default: none — adding a printer is refused until the operator
    /// allows its host.
    #[arg(long, env = "ORDERTRACK_PRINTER_HOSTS", default_value = "")]
    pub printer_hosts: PrinterHosts,
    /// Seconds to wait before retrying a failed print job: the first
    /// failure waits the first, and so on; the last repeats.
    #[arg(
        long,
        env = "ORDERTRACK_PRINT_RETRY_SECS",
        value_delimiter = ',',
        default_value = "2,10,30,120,300"
    )]
    pub print_retry_secs: Vec<u64>,
    /// Attempts at a print job before it is given up (a reprint starts afresh).
    #[arg(long, env = "ORDERTRACK_PRINT_ATTEMPTS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub print_attempts: u32,
    /// Let webhooks go to loopback, private and link-local addresses too
    /// (a shop whose systems are on its own network). Default: only public
    /// addresses, checked after DNS resolution.
    #[arg(long, env = "ORDERTRACK_WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: bool,
    /// Delays before each webhook retry, comma-separated, each a number
    /// with `ms`, `s`, `m` or `h` (jittered by up to a tenth either way;
    /// after the last the delivery is given up).
    #[arg(
        long,
        env = "ORDERTRACK_WEBHOOKS_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,24h",
        value_delimiter = ',',
        value_parser = parse_delay
    )]
    pub webhooks_retry_schedule: Vec<std::time::Duration>,
    /// Days that sent or given-up e-mail jobs, push jobs and webhook
    /// deliveries are kept (the delivery log owners see goes back as far);
    /// each worker deletes older ones every hour, a bounded batch at a
    /// time. Pending ones are kept whatever their age.
    #[arg(
        long,
        env = "ORDERTRACK_OUTBOX_RETENTION_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..=3650)
    )]
    pub outbox_retention_days: u32,
    /// SMTP server for customer e-mail: `smtp://user:pass@host:587` (no
    /// TLS), `smtp://…?tls=required` (STARTTLS), `smtps://…:465` (TLS from
    /// the start). Needs `--public-url` (links in mails point there).
    /// Default: none — no mail is sent.
    #[arg(
        long,
        env = "ORDERTRACK_SMTP_URL",
        hide_env_values = true,
        requires = "public_url"
    )]
    pub smtp_url: Option<String>,
    /// The sender of customer e-mail, e.g. `Orders <orders@example.com>`.
    #[arg(
        long,
        env = "ORDERTRACK_SMTP_FROM",
        default_value = "ordertrack <ordertrack@localhost>"
    )]
    pub smtp_from: String,
    /// Delays before each retry of a mail the SMTP server did not take,
    /// comma-separated, each with `ms`, `s`, `m` or `h` (jittered by up to
    /// a tenth; after the last the mail is given up).
    #[arg(
        long,
        env = "ORDERTRACK_SMTP_RETRY_SCHEDULE",
        default_value = "30s,2m,10m,30m,1h,3h,6h,12h",
        value_delimiter = ',',
        value_parser = parse_delay
    )]
    pub smtp_retry_schedule: Vec<std::time::Duration>,
    /// The VAPID private key that signs Web Push requests: a PEM file
    /// (PKCS#8 or SEC1) or one holding the base64url of the 32-byte key.
    /// Default: generated on first run and kept in the data dir
    /// (`vapid-private-key.pem`).
    #[arg(long, env = "ORDERTRACK_VAPID_PRIVATE_KEY")]
    pub vapid_private_key: Option<PathBuf>,
    /// The contact push services see in the VAPID token: `mailto:…` or
    /// `https://…`.
    #[arg(
        long,
        env = "ORDERTRACK_VAPID_SUBJECT",
        default_value = "mailto:admin@localhost",
        value_parser = parse_vapid_subject
    )]
    pub vapid_subject: String,
    /// Let Web Push go to loopback, private and link-local addresses too
    /// (a push service on the operator's own network, tests). Default:
    /// only public addresses, checked after DNS resolution.
    #[arg(long, env = "ORDERTRACK_PUSH_ALLOW_PRIVATE")]
    pub push_allow_private: bool,
}

/// A VAPID subject: a `mailto:` or `https:` URI (RFC 8292 §2.1).
fn parse_vapid_subject(text: &str) -> Result<String, String> {
    let text = text.trim();
    if (text.starts_with("mailto:") && text.len() > 7) || text.starts_with("https://") {
        Ok(text.to_owned())
    } else {
        Err(format!("`{text}` is neither a mailto: nor an https:// URI"))
    }
}

/// A delay such as `500ms`, `5s`, `30m` or `2h`.
fn parse_delay(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` needs a unit: ms, s, m or h"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("`{text}`: the unit is ms, s, m or h")),
    };
    number
        .checked_mul(millis)
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// The database to use.
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl ServerArgs {
    /// The demo keeps its data apart from a real store's.
    pub fn demo_defaults(mut self) -> Self {
        if self.data_dir.is_none() {
            self.data_dir = Some(PathBuf::from("data/demo"));
        }
        self
    }

    fn data_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data"));
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// The database selected by `--database-url`, else the data dir's SQLite file.
    pub fn database(&self) -> anyhow::Result<Database> {
        match self.database_url.as_deref() {
            None => Ok(Database::Sqlite(self.data_dir()?.join("ordertrack.db"))),
            Some(url) => {
                if let Some(path) = url.strip_prefix("sqlite://") {
                    let path = PathBuf::from(path);
                    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                        create_private_dir(parent)?;
                    }
                    Ok(Database::Sqlite(path))
                } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    Ok(Database::Postgres(url.to_owned()))
                } else {
                    bail!(
                        "unsupported database URL: use sqlite:///path/to/file.db or postgres://user@host/database"
                    )
                }
            }
        }
    }

    /// The settings the order desk is built from. Only a serving instance
    /// (`serving`) joins the event bus; `seed_demo` seeds the demo.
    pub fn settings(&self, serving: bool, seed_demo: bool) -> anyhow::Result<Settings> {
        let secret = self.secret()?;
        let nats = self
            .nats_url
            .clone()
            .filter(|_| serving)
            .map(|url| NatsSettings {
                url,
                subject: self.nats_subject.clone(),
            });
        let database = match self.database()? {
            Database::Sqlite(path) => {
                if nats.is_some() {
                    bail!("--nats-url needs a PostgreSQL database (--database-url postgres://…)");
                }
                ordertrack_web::Database::Sqlite(path)
            }
            Database::Postgres(url) => ordertrack_web::Database::Postgres {
                url,
                pool_size: self.db_pool_size,
                timeout: self.db_timeout(),
            },
        };
        Ok(Settings {
            database,
            secret,
            token_ttl: TOKEN_TTL,
            sign_in: self.sign_in_limits(),
            trusted_proxies: self.trusted_proxy.clone(),
            limits: self.limits(),
            nats,
            seed_demo,
            store_signup: self.store_signup,
            metrics_token: self.metrics_token.clone(),
            tls: self.tls_files()?,
            public_https: self.public_https()?,
            printing: self.print_settings(),
            serving,
            webhooks: WebhookConfig {
                allow_private: self.webhooks_allow_private,
                schedule: self.webhooks_retry_schedule.clone(),
                retention: self.outbox_retention(),
                ..WebhookConfig::default()
            },
            asset_salt: None,
            email: self.email_config(),
            push: PushConfig {
                vapid: Some(Arc::new(self.vapid_key()?)),
                subject: self.vapid_subject.clone(),
                allow_private: self.push_allow_private,
                retention: self.outbox_retention(),
                ..PushConfig::default()
            },
        })
    }

    /// How customer e-mail is sent, as these flags say.
    fn email_config(&self) -> EmailConfig {
        let defaults = EmailConfig::default();
        EmailConfig {
            smtp_url: self.smtp_url.clone(),
            from: self.smtp_from.clone(),
            public_url: self
                .public_url
                .as_deref()
                .map_or(defaults.public_url.clone(), |url| {
                    url.trim_end_matches('/').to_owned()
                }),
            schedule: self.smtp_retry_schedule.clone(),
            retention: self.outbox_retention(),
            ..defaults
        }
    }

    /// How long finished outbox jobs are kept (`--outbox-retention-days`).
    fn outbox_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.outbox_retention_days) * 24 * 60 * 60)
    }

    /// The VAPID key: the operator's file, or the one kept in the data dir
    /// (made on first run).
    pub fn vapid_key(&self) -> anyhow::Result<VapidKey> {
        let read = |path: &std::path::Path| -> anyhow::Result<VapidKey> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            VapidKey::parse(&text).with_context(|| format!("{}", path.display()))
        };
        if let Some(path) = &self.vapid_private_key {
            return read(path);
        }
        let path = self.data_dir()?.join("vapid-private-key.pem");
        if path.exists() {
            return read(&path);
        }
        let key = VapidKey::generate();
        write_private(&path, &key.to_pem())?;
        Ok(key)
    }

    /// The certificate and key to serve HTTPS with, if given.
    fn tls_files(&self) -> anyhow::Result<Option<TlsFiles>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            _ => bail!("--tls-cert and --tls-key go together"),
        }
    }

    /// Whether `--public-url` says clients use HTTPS.
    fn public_https(&self) -> anyhow::Result<bool> {
        match self.public_url.as_deref() {
            None => Ok(false),
            Some(url) if url.starts_with("https://") => Ok(true),
            Some(url) if url.starts_with("http://") => Ok(false),
            Some(url) => bail!("--public-url must start with https:// or http://, not {url:?}"),
        }
    }

    /// How printing behaves, as these flags say.
    fn print_settings(&self) -> PrintSettings {
        let defaults = PrintSettings::default();
        let retry_delays: Vec<std::time::Duration> = self
            .print_retry_secs
            .iter()
            .map(|secs| std::time::Duration::from_secs(*secs))
            .collect();
        PrintSettings {
            hosts: self.printer_hosts.clone(),
            retry_delays: if retry_delays.is_empty() {
                defaults.retry_delays.clone()
            } else {
                retry_delays
            },
            max_attempts: self.print_attempts,
            ..defaults
        }
    }

    /// The sign-in limits these flags set.
    fn sign_in_limits(&self) -> SignInLimits {
        let defaults = SignInLimits::default();
        SignInLimits {
            per_account_and_ip: self.login_failures_per_account,
            per_ip: self.login_failures_per_ip,
            global: self.login_failures_global,
            concurrent_hashes: self
                .password_hashes
                .filter(|n| *n > 0)
                .unwrap_or(defaults.concurrent_hashes),
            registrations_per_ip: self.registrations_per_ip,
            ..defaults
        }
    }

    /// The HTTP edge's limits these flags set.
    fn limits(&self) -> Limits {
        let secs = std::time::Duration::from_secs;
        Limits {
            header_read_timeout: secs(self.header_timeout_secs),
            body_read_timeout: secs(self.body_timeout_secs),
            idle_timeout: secs(self.idle_timeout_secs),
            connections_per_ip: self.connections_per_ip,
            streams_per_user: self.streams_per_user,
            streams_per_ip: self.streams_per_ip,
            writes_per_token: self.writes_per_token,
        }
    }

    /// How long to wait for a database connection or statement.
    pub fn db_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.db_timeout_secs)
    }

    /// The token-signing secret: given, or kept in the data dir (created on first run).
    pub fn secret(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(secret) = &self.secret {
            if secret.len() < 32 {
                bail!("the secret needs at least 32 characters");
            }
            return Ok(secret.as_bytes().to_vec());
        }
        let path = self.data_dir()?.join("secret");
        match std::fs::read_to_string(&path) {
            Ok(text) => hex::decode(text.trim())
                .with_context(|| format!("{} does not hold a hex secret", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let secret = ordertrack_app::token::random_bytes::<32>().to_vec();
                write_private(&path, &hex::encode(&secret))?;
                Ok(secret)
            }
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Creates a folder for the order desk's data (and any missing parents)
/// that only its owner may enter (0700): the database and the secret live
/// there. A folder that exists is left as it is.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn printing_allows_no_host_until_the_operator_names_some() {
        let args = Cli::try_parse_from(["ordertrack"]).expect("no flags needed");
        let printing = args.server.print_settings();
        assert!(printing.hosts.is_empty());
        let defaults = PrintSettings::default();
        assert_eq!(printing.retry_delays, defaults.retry_delays);
        assert_eq!(printing.max_attempts, defaults.max_attempts);
        let args = Cli::try_parse_from([
            "ordertrack",
            "--printer-hosts",
            "10.0.0.0/8,192.168.1.50,printer.local",
            "--print-retry-secs",
            "1,5",
        ])
        .expect("valid flags");
        let printing = args.server.print_settings();
        assert!(printing.hosts.allows_host("10.1.2.3"));
        assert!(printing.hosts.allows_host("printer.local"));
        assert!(!printing.hosts.allows_host("192.168.1.51"));
        assert_eq!(
            printing.retry_after(1),
            Some(std::time::Duration::from_secs(1))
        );
        assert!(Cli::try_parse_from(["ordertrack", "--printer-hosts", "10.0.0.0/40"]).is_err());
    }

    #[test]
    fn the_flags_default_to_the_limits_the_library_documents() {
        let args = Cli::try_parse_from(["ordertrack"]).expect("no flags needed");
        assert_eq!(args.server.limits(), Limits::default());
        let sign_in = args.server.sign_in_limits();
        let defaults = SignInLimits::default();
        assert_eq!(
            (
                sign_in.per_account_and_ip,
                sign_in.per_ip,
                sign_in.global,
                sign_in.registrations_per_ip,
            ),
            (
                defaults.per_account_and_ip,
                defaults.per_ip,
                defaults.global,
                defaults.registrations_per_ip,
            )
        );
        assert!(!args.server.webhooks_allow_private);
        assert_eq!(
            args.server.webhooks_retry_schedule,
            ordertrack_app::webhooks::DEFAULT_SCHEDULE
        );
        let email = args.server.email_config();
        assert_eq!(
            email.smtp_url, None,
            "no mail unless an SMTP server is given"
        );
        assert_eq!(email.schedule, ordertrack_app::email::DEFAULT_SCHEDULE);
        assert_eq!(email.retention, ordertrack_app::outbox::DEFAULT_RETENTION);
    }

    #[test]
    fn finished_outbox_jobs_are_kept_for_the_days_given() {
        let args =
            Cli::try_parse_from(["ordertrack", "--outbox-retention-days", "7"]).expect("parse");
        let week = std::time::Duration::from_secs(7 * 24 * 60 * 60);
        assert_eq!(args.server.email_config().retention, week);
        assert_eq!(args.server.outbox_retention(), week);
        for days in ["0", "-1", "many"] {
            assert!(
                Cli::try_parse_from(["ordertrack", "--outbox-retention-days", days]).is_err(),
                "{days}"
            );
        }
    }

    #[test]
    fn an_smtp_server_needs_the_public_url_links_point_at() {
        assert!(Cli::try_parse_from(["ordertrack", "--smtp-url", "smtp://localhost:25"]).is_err());
        let args = Cli::try_parse_from([
            "ordertrack",
            "--smtp-url",
            "smtps://user:pass@mail.example.com",
            "--public-url",
            "https://orders.example.com/",
            "--smtp-retry-schedule",
            "1s,1m",
        ])
        .expect("valid flags");
        let email = args.server.email_config();
        assert_eq!(email.public_url, "https://orders.example.com");
        assert_eq!(
            email.schedule,
            [1_000, 60_000].map(std::time::Duration::from_millis)
        );
    }

    #[test]
    fn the_retry_schedule_reads_units() {
        let args = Cli::try_parse_from([
            "ordertrack",
            "--webhooks-retry-schedule",
            "500ms,2s,1m,1h",
            "--webhooks-allow-private",
        ])
        .expect("a schedule");
        assert_eq!(
            args.server.webhooks_retry_schedule,
            [500, 2_000, 60_000, 3_600_000].map(std::time::Duration::from_millis)
        );
        assert!(args.server.webhooks_allow_private);
        assert!(Cli::try_parse_from(["ordertrack", "--webhooks-retry-schedule", "5"]).is_err());
        assert!(Cli::try_parse_from(["ordertrack", "--webhooks-retry-schedule", "5d"]).is_err());
    }
}
