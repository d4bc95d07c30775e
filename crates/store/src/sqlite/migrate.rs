//! Embedded migrations, applied in order at start; each runs in its own transaction.

use rusqlite::Connection;

use crate::StoreError;

/// `(version, sql)`, in order. Never edit a shipped migration: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_access_events.sql"),
    ),
    (
        EMAIL_SKELETONS,
        include_str!("../../migrations/sqlite/0003_email_skeletons.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_store_settings.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_history_corrections.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_invitations.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_store_workflows.sql"),
    ),
    (
        8,
        include_str!("../../migrations/sqlite/0008_orders_placed_index.sql"),
    ),
    (9, include_str!("../../migrations/sqlite/0009_payments.sql")),
    (10, include_str!("../../migrations/sqlite/0010_reviews.sql")),
    (
        11,
        include_str!("../../migrations/sqlite/0011_event_public_json.sql"),
    ),
    (
        12,
        include_str!("../../migrations/sqlite/0012_eta_durations.sql"),
    ),
    (
        13,
        include_str!("../../migrations/sqlite/0013_driver_assignment.sql"),
    ),
    (14, include_str!("../../migrations/sqlite/0014_printing.sql")),
    (
        15,
        include_str!("../../migrations/sqlite/0015_webhooks.sql"),
    ),
    (
        16,
        include_str!("../../migrations/sqlite/0016_email_notifications.sql"),
    ),
    (
        17,
        include_str!("../../migrations/sqlite/0017_push_subscriptions.sql"),
    ),
    (
        18,
        include_str!("../../migrations/sqlite/0018_report_rollups.sql"),
    ),
    (
        19,
        include_str!("../../migrations/sqlite/0019_change_keys.sql"),
    ),
    (
        ETA_BANDS,
        include_str!("../../migrations/sqlite/0020_eta_bands.sql"),
    ),
    (
        21,
        include_str!("../../migrations/sqlite/0021_cache_marks.sql"),
    ),
    (
        22,
        include_str!("../../migrations/sqlite/0022_eta_follower.sql"),
    ),
];

/// The migration that adds `users.email_skeleton`; SQL cannot compute
/// skeletons, so the existing rows get theirs from [`backfill_email_skeletons`].
const EMAIL_SKELETONS: i64 = 3;

/// The migration that adds `eta_samples.band`; SQL cannot read time-zone
/// rules, so the kept rows get theirs from [`backfill_eta_bands`].
const ETA_BANDS: i64 = 20;

/// Applies the migrations the database has not seen; returns how many ran.
pub fn run(conn: &mut Connection) -> Result<usize, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL
        )",
    )?;
    let mut applied = 0;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |row| row.get(0),
        )?;
        if !done {
            tx.execute_batch(sql)?;
            if *version == EMAIL_SKELETONS {
                backfill_email_skeletons(&tx)?;
            }
            if *version == ETA_BANDS {
                backfill_eta_bands(&tx)?;
            }
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                [
                    *version,
                    crate::codec::micros(time::OffsetDateTime::now_utc()),
                ],
            )?;
            applied += 1;
        }
        tx.commit()?;
    }
    Ok(applied)
}

/// Gives every account its e-mail's skeleton, first come first served: an
/// account confusable with an earlier one keeps none (it can still sign in;
/// no new account can take a confusable address of either).
fn backfill_email_skeletons(conn: &Connection) -> Result<(), StoreError> {
    let users: Vec<(i64, String)> = conn
        .prepare("SELECT id, email FROM users ORDER BY id")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare(
        "UPDATE users SET email_skeleton = ?1 WHERE id = ?2
           AND NOT EXISTS (SELECT 1 FROM users WHERE email_skeleton = ?1)",
    )?;
    for (id, email) in users {
        update.execute(rusqlite::params![
            ordertrack_domain::text::email_skeleton(&email),
            id
        ])?;
    }
    Ok(())
}

/// Gives every kept ETA duration the band of the day its order entered its
/// state in, in its store's zone (at most [`WINDOW_SAMPLES`] rows per
/// store, fulfilment and state).
///
/// [`WINDOW_SAMPLES`]: ordertrack_domain::eta::WINDOW_SAMPLES
fn backfill_eta_bands(conn: &Connection) -> Result<(), StoreError> {
    let samples: Vec<(i64, String, i64)> = conn
        .prepare(crate::codec::SAMPLES_TO_BAND_SQL)?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE eta_samples SET band = ?1 WHERE id = ?2")?;
    for (id, timezone, entered) in samples {
        if let Some(band) = crate::codec::sample_band(&timezone, entered) {
            update.execute(rusqlite::params![band.as_str(), id])?;
        }
    }
    Ok(())
}
