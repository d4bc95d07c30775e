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
];

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
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                [
                    *version,
                    super::queries::micros(time::OffsetDateTime::now_utc()),
                ],
            )?;
            applied += 1;
        }
        tx.commit()?;
    }
    Ok(applied)
}
