//! Embedded migrations, applied in order; each runs in its own transaction,
//! all of them under one advisory lock so that instances starting together
//! do not race (the second waits, then finds nothing left to do).

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};

use crate::StoreError;
use crate::codec::micros;

/// `(version, sql)`, in order. Never edit a shipped migration: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_access_events.sql"),
    ),
    (
        EMAIL_SKELETONS,
        include_str!("../../migrations/postgres/0003_email_skeletons.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_store_settings.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_history_corrections.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_invitations.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_store_workflows.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_orders_placed_index.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_payments.sql"),
    ),
    (
        10,
        include_str!("../../migrations/postgres/0010_reviews.sql"),
    ),
    (
        11,
        include_str!("../../migrations/postgres/0011_event_public_json.sql"),
    ),
    (
        12,
        include_str!("../../migrations/postgres/0012_eta_durations.sql"),
    ),
    (
        13,
        include_str!("../../migrations/postgres/0013_driver_assignment.sql"),
    ),
    (14, include_str!("../../migrations/postgres/0014_printing.sql")),
    (
        15,
        include_str!("../../migrations/postgres/0015_webhooks.sql"),
    ),
    (
        16,
        include_str!("../../migrations/postgres/0016_email_notifications.sql"),
    ),
    (
        17,
        include_str!("../../migrations/postgres/0017_push_subscriptions.sql"),
    ),
    (
        18,
        include_str!("../../migrations/postgres/0018_report_rollups.sql"),
    ),
    (
        19,
        include_str!("../../migrations/postgres/0019_change_keys.sql"),
    ),
    (
        ETA_BANDS,
        include_str!("../../migrations/postgres/0020_eta_bands.sql"),
    ),
    (
        21,
        include_str!("../../migrations/postgres/0021_cache_marks.sql"),
    ),
    (
        22,
        include_str!("../../migrations/postgres/0022_eta_follower.sql"),
    ),
];

/// The migration that adds `users.email_skeleton`; SQL cannot compute
/// skeletons, so the existing rows get theirs from [`backfill_email_skeletons`].
const EMAIL_SKELETONS: i64 = 3;

/// The migration that adds `eta_samples.band`; SQL cannot read time-zone
/// rules, so the kept rows get theirs from [`backfill_eta_bands`].
const ETA_BANDS: i64 = 20;

/// The advisory lock held while migrating ("ordertrk" in ASCII). Advisory
/// locks are per database, so stores in other schemas of the same database
/// wait for each other too, which is harmless.
const LOCK_KEY: i64 = 0x6f72_6465_7274_726b;

/// Applies the migrations the database has not seen; returns how many ran.
/// Uses its own connection (closed at the end, which also frees the lock).
pub async fn run(connect: &PgConnectOptions, timeout: Duration) -> Result<usize, StoreError> {
    let mut conn = tokio::time::timeout(
        timeout.max(Duration::from_secs(1)),
        PgConnection::connect_with(connect),
    )
    .await
    .map_err(|_| {
        StoreError::Database(format!(
            "could not connect to PostgreSQL at {}:{} within {timeout:?}",
            connect.get_host(),
            connect.get_port()
        ))
    })??;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut conn)
        .await?;
    let result = apply(&mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut conn)
        .await;
    let closed = conn.close().await;
    let applied = result?;
    unlocked?;
    closed?;
    Ok(applied)
}

async fn apply(conn: &mut PgConnection) -> Result<usize, StoreError> {
    sqlx::raw_sql(
        "SET client_min_messages = warning;
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .execute(&mut *conn)
    .await?;
    let mut applied = 0;
    for &(version, sql) in MIGRATIONS {
        let mut tx = conn.begin().await?;
        let done: bool =
            sqlx::query("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)")
                .bind(version)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        if !done {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            if version == EMAIL_SKELETONS {
                backfill_email_skeletons(&mut tx).await?;
            }
            if version == ETA_BANDS {
                backfill_eta_bands(&mut tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(micros(time::OffsetDateTime::now_utc()))
                .execute(&mut *tx)
                .await?;
            applied += 1;
        }
        tx.commit().await?;
    }
    Ok(applied)
}

/// Gives every account its e-mail's skeleton, first come first served: an
/// account confusable with an earlier one keeps none (it can still sign in;
/// no new account can take a confusable address of either).
async fn backfill_email_skeletons(conn: &mut PgConnection) -> Result<(), StoreError> {
    let users = sqlx::query("SELECT id, email FROM users ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    for row in users {
        let id: i64 = row.try_get(0)?;
        let email: String = row.try_get(1)?;
        sqlx::query(
            "UPDATE users SET email_skeleton = $1 WHERE id = $2
               AND NOT EXISTS (SELECT 1 FROM users WHERE email_skeleton = $1)",
        )
        .bind(ordertrack_domain::text::email_skeleton(&email))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Gives every kept ETA duration the band of the day its order entered its
/// state in, in its store's zone (at most [`WINDOW_SAMPLES`] rows per
/// store, fulfilment and state), in one update.
///
/// [`WINDOW_SAMPLES`]: ordertrack_domain::eta::WINDOW_SAMPLES
async fn backfill_eta_bands(conn: &mut PgConnection) -> Result<(), StoreError> {
    let samples = sqlx::query(crate::codec::SAMPLES_TO_BAND_SQL)
        .fetch_all(&mut *conn)
        .await?;
    let mut ids = Vec::with_capacity(samples.len());
    let mut bands = Vec::with_capacity(samples.len());
    for row in samples {
        let timezone: String = row.try_get("timezone")?;
        if let Some(band) = crate::codec::sample_band(&timezone, row.try_get("entered")?) {
            ids.push(row.try_get::<i64, _>("id")?);
            bands.push(band.as_str());
        }
    }
    sqlx::query(
        "UPDATE eta_samples e SET band = b.band
         FROM UNNEST($1::int8[], $2::text[]) AS b(id, band) WHERE e.id = b.id",
    )
    .bind(&ids)
    .bind(&bands)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
