//! Idempotency keys of changes (migration 0019).

use rusqlite::{Connection, OptionalExtension, params};

use crate::codec::micros;
use crate::{IdempotencyClaim, IdempotencyOutcome, StoreError, StoredResponse};

pub fn claim(conn: &Connection, claim: &IdempotencyClaim) -> Result<IdempotencyOutcome, StoreError> {
    conn.prepare_cached("DELETE FROM change_keys WHERE created_at < ?1")?
        .execute([micros(claim.forget_before)])?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO change_keys (scope, key, fingerprint, created_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scope, key) DO NOTHING",
        )?
        .execute(params![
            claim.scope,
            claim.key,
            claim.fingerprint,
            micros(claim.at)
        ])?;
    if inserted > 0 {
        return Ok(IdempotencyOutcome::Claimed);
    }
    let held = conn
        .prepare_cached(
            "SELECT fingerprint, status, content_type, location, body FROM change_keys
             WHERE scope = ?1 AND key = ?2",
        )?
        .query_row(params![claim.scope, claim.key], |row| {
            Ok((
                row.get::<_, String>("fingerprint")?,
                row.get::<_, Option<i64>>("status")?,
                row.get::<_, Option<String>>("content_type")?,
                row.get::<_, Option<String>>("location")?,
                row.get::<_, Option<Vec<u8>>>("body")?,
            ))
        })
        .optional()?;
    let Some((fingerprint, status, content_type, location, body)) = held else {
        // Inserted nothing yet found nothing: only a concurrent delete
        // could do that, and the writer is one thread.
        return Err(StoreError::Database("idempotency key vanished".into()));
    };
    Ok(crate::idempotency_outcome(
        &claim.fingerprint,
        fingerprint,
        status,
        content_type,
        location,
        body,
    ))
}

pub fn complete(
    conn: &Connection, scope: &str, key: &str, response: &StoredResponse,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE change_keys SET status = ?3, content_type = ?4, location = ?5, body = ?6
         WHERE scope = ?1 AND key = ?2",
    )?
    .execute(params![
        scope,
        key,
        i64::from(response.status),
        response.content_type,
        response.location,
        response.body
    ])?;
    Ok(())
}

pub fn release(conn: &Connection, scope: &str, key: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM change_keys WHERE scope = ?1 AND key = ?2 AND status IS NULL",
    )?
    .execute(params![scope, key])?;
    Ok(())
}
