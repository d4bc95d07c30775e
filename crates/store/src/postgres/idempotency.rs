//! Idempotency keys of changes (migration 0019).

use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::jobs::{Request, Run};
use super::rows::{Log, Result};
use crate::codec::micros;
use crate::{IdempotencyClaim, IdempotencyOutcome, StoreError, StoredResponse};

pub async fn claim(conn: &mut PgConnection, claim: &IdempotencyClaim) -> Result<IdempotencyOutcome> {
    sqlx::query("DELETE FROM change_keys WHERE created_at < $1")
        .bind(micros(claim.forget_before))
        .execute(&mut *conn)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO change_keys (scope, key, fingerprint, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(&claim.scope)
    .bind(&claim.key)
    .bind(&claim.fingerprint)
    .bind(micros(claim.at))
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() > 0 {
        return Ok(IdempotencyOutcome::Claimed);
    }
    // The insert waited for a concurrent claim of the key to commit; this
    // statement's snapshot sees the row that claim wrote.
    let row = sqlx::query(
        "SELECT fingerprint, status, content_type, location, body FROM change_keys
         WHERE scope = $1 AND key = $2",
    )
    .bind(&claim.scope)
    .bind(&claim.key)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::Database("idempotency key vanished".into()))?;
    Ok(crate::idempotency_outcome(
        &claim.fingerprint,
        row.try_get("fingerprint")?,
        row.try_get::<Option<i32>, _>("status")?.map(i64::from),
        row.try_get("content_type")?,
        row.try_get("location")?,
        row.try_get("body")?,
    ))
}

pub async fn complete(
    conn: &mut PgConnection, scope: &str, key: &str, response: &StoredResponse,
) -> Result<()> {
    sqlx::query(
        "UPDATE change_keys SET status = $3, content_type = $4, location = $5, body = $6
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(i32::from(response.status))
    .bind(&response.content_type)
    .bind(&response.location)
    .bind(&response.body)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn release(conn: &mut PgConnection, scope: &str, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM change_keys WHERE scope = $1 AND key = $2 AND status IS NULL")
        .bind(scope)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Request for IdempotencyClaim {
    type Output = IdempotencyOutcome;
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, IdempotencyOutcome> {
        Box::pin(claim(conn, self))
    }
}

/// Records the response of a claimed key.
pub struct CompleteKey(pub String, pub String, pub StoredResponse);

impl Request for CompleteKey {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, ()> {
        Box::pin(complete(conn, &self.0, &self.1, &self.2))
    }
}

/// Lets go of a claimed key without a response.
pub struct ReleaseKey(pub String, pub String);

impl Request for ReleaseKey {
    type Output = ();
    fn run<'a>(&'a self, conn: &'a mut PgConnection, _: &'a mut Log) -> Run<'a, ()> {
        Box::pin(release(conn, &self.0, &self.1))
    }
}
