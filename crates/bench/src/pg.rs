//! PostgreSQL backend of the bench: scratch databases made and dropped on the
//! admin URL (`--database-url`), one per fresh server and one per pgbench
//! run, and the loopback check for the NATS URL.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use reqwest::Url;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::server::{check_loopback_pg, host_is_loopback};

/// Name of the n-th scratch database of the bench process `pid`.
pub fn scratch_name(pid: u32, n: usize) -> String {
    format!("ordertrack_bench_{pid}_{n}")
}

/// Whether `name` is a scratch database name (what the bench may drop).
pub fn is_scratch_name(name: &str) -> bool {
    name.strip_prefix("ordertrack_bench_").is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '_')
    })
}

/// `admin` with its database (the URL path) replaced by `database`; user,
/// password, host, port and query parameters are kept.
pub fn database_url(admin: &str, database: &str) -> anyhow::Result<String> {
    let mut url = Url::parse(admin).with_context(|| format!("invalid URL {admin}"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        bail!("not a PostgreSQL URL: {admin} (use postgres://user@127.0.0.1:5432/postgres)");
    }
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

/// Parses a `nats://` URL and refuses anything that is not loopback.
pub fn check_loopback_nats(url: &str) -> anyhow::Result<Url> {
    let parsed = Url::parse(url).with_context(|| format!("invalid URL {url}"))?;
    if parsed.scheme() != "nats" {
        bail!("not a NATS URL: {url} (use nats://127.0.0.1:4222)");
    }
    if !parsed.host_str().is_some_and(host_is_loopback) {
        bail!("refusing to use NATS at {url}: only loopback is allowed");
    }
    Ok(parsed)
}

/// A NATS subject prefix no other run shares: `ordertrack.bench.<pid>.<ms>.<n>`.
pub fn unique_subject(pid: u32, unix_ms: u128, n: usize) -> String {
    format!("ordertrack.bench.{pid}.{unix_ms}.{n}")
}

/// The local PostgreSQL for a test (`ORDERTRACK_BENCH_PG_URL`, else the
/// standard loopback port): `None`, said loudly, when it does not answer —
/// except under `CI=true`, where it must.
#[cfg(test)]
pub async fn test_admin(test: &str) -> Option<PgAdmin> {
    let url = std::env::var("ORDERTRACK_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    match PgAdmin::new(&url).await {
        Ok((admin, _)) => Some(admin),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: PostgreSQL is required under CI=true: {e:#}")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: no PostgreSQL ({e:#})");
            None
        }
    }
}

/// The admin connection URL and a counter for scratch database names.
pub struct PgAdmin {
    pub url: String,
    next: AtomicUsize,
}

/// One scratch database; [`PgAdmin::drop_db`] removes it.
#[derive(Debug, Clone)]
pub struct ScratchDb {
    pub name: String,
    pub url: String,
}

impl PgAdmin {
    /// Checks the URL (loopback, PostgreSQL) and that it answers.
    pub async fn new(url: &str) -> anyhow::Result<(PgAdmin, String)> {
        check_loopback_pg(url)?;
        database_url(url, "postgres")?;
        let mut conn = PgConnection::connect(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let version: String = sqlx::query("SELECT version()")
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        conn.close().await?;
        Ok((
            PgAdmin {
                url: url.to_owned(),
                next: AtomicUsize::new(0),
            },
            version,
        ))
    }

    /// Creates a fresh, empty database.
    pub async fn create_db(&self) -> anyhow::Result<ScratchDb> {
        let name = scratch_name(
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed),
        );
        let mut conn = PgConnection::connect(&self.url).await?;
        // Identifiers cannot be bound; the name is ours (digits and `_`).
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
            .execute(&mut conn)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        conn.close().await?;
        eprintln!("[bench] created scratch database {name}");
        Ok(ScratchDb {
            url: database_url(&self.url, &name)?,
            name,
        })
    }

    /// Drops a scratch database (closing whatever is still connected to it).
    pub async fn drop_db(&self, db: &ScratchDb) -> anyhow::Result<()> {
        if !is_scratch_name(&db.name) {
            bail!("refusing to drop {}: not a scratch database", db.name);
        }
        let mut conn = PgConnection::connect(&self.url).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            db.name
        )))
        .execute(&mut conn)
        .await
        .with_context(|| format!("DROP DATABASE {}", db.name))?;
        conn.close().await?;
        eprintln!("[bench] dropped scratch database {}", db.name);
        Ok(())
    }

    /// Drops, printing instead of failing (clean-up paths).
    pub async fn drop_quietly(&self, db: &ScratchDb) {
        if let Err(e) = self.drop_db(db).await {
            eprintln!("[bench] could not drop {}: {e:#}", db.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names() {
        assert_eq!(scratch_name(4242, 0), "ordertrack_bench_4242_0");
        assert_eq!(scratch_name(7, 12), "ordertrack_bench_7_12");
        assert!(is_scratch_name(&scratch_name(1, 2)));
        for other in [
            "postgres",
            "test",
            "ordertrack_bench_",
            "ordertrack_bench_1; DROP",
            "x",
        ] {
            assert!(!is_scratch_name(other), "{other}");
        }
    }

    #[test]
    fn database_urls() {
        assert_eq!(
            database_url(
                "postgres://postgres@127.0.0.1:5432/postgres",
                "ordertrack_bench_1_0"
            )
            .unwrap(),
            "postgres://postgres@127.0.0.1:5432/ordertrack_bench_1_0"
        );
        assert_eq!(
            database_url("postgresql://u:p@localhost/test?sslmode=disable", "d").unwrap(),
            "postgresql://u:p@localhost/d?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://u@127.0.0.1:5432", "d").unwrap(),
            "postgres://u@127.0.0.1:5432/d"
        );
        assert!(database_url("http://127.0.0.1/x", "d").is_err());
        assert!(database_url("nonsense", "d").is_err());
    }

    #[test]
    fn nats_urls() {
        for ok in [
            "nats://127.0.0.1:4222",
            "nats://localhost:4222",
            "nats://[::1]:4222",
        ] {
            assert!(check_loopback_nats(ok).is_ok(), "{ok}");
        }
        for bad in [
            "nats://10.0.0.5:4222",
            "nats://nats.example.com:4222",
            "http://127.0.0.1:4222",
            "127.0.0.1:4222",
        ] {
            assert!(check_loopback_nats(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_are_unique_per_run() {
        let a = unique_subject(1, 1000, 0);
        assert_eq!(a, "ordertrack.bench.1.1000.0");
        assert_ne!(a, unique_subject(1, 1000, 1));
        assert_ne!(a, unique_subject(2, 1000, 0));
        // Tokens of a NATS subject: no spaces or wildcards.
        assert!(!a.contains([' ', '*', '>']));
    }
}
