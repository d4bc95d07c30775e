//! Invitations to a store's staff on PostgreSQL: making one, reading one by
//! its token's hash, and accepting one — marking it used and giving the
//! membership in the request's savepoint, so a token serves once (a
//! concurrent acceptance on another instance waits for the row lock, then
//! finds it used).

use ordertrack_domain::UserId;
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::rows::{Log, Result, violation};
use super::stores;
use crate::codec::{self, invitation_select, micros};
use crate::{Acceptance, Invitation, NewInvitation, StoreError};

pub async fn create_invitation(conn: &mut PgConnection, new: &NewInvitation) -> Result<Invitation> {
    sqlx::query(
        "INSERT INTO invitations
            (store_id, email, role, token_hash, invited_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new.store_id.get())
    .bind(&new.email)
    .bind(new.role.as_str())
    .bind(&new.token_hash)
    .bind(new.invited_by.get())
    .bind(micros(new.created_at))
    .bind(micros(new.expires_at))
    .execute(&mut *conn)
    .await
    // 23503: foreign_key_violation.
    .map_err(violation("23503", StoreError::NotFound("store or user")))?;
    invitation(conn, &new.token_hash)
        .await?
        .ok_or_else(|| StoreError::NotFound("invitation").into())
}

pub async fn invitation(conn: &mut PgConnection, token_hash: &str) -> Result<Option<Invitation>> {
    let found = sqlx::query(concat!(invitation_select!(), " WHERE i.token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.as_ref().map(codec::invitation).transpose()?)
}

/// Marks the invitation used if it is unused and unexpired at `now`, and
/// gives its role through the one membership write path; otherwise says
/// why not and writes nothing.
pub async fn accept_invitation(
    conn: &mut PgConnection,
    token_hash: &str,
    user: UserId,
    now: OffsetDateTime,
    log: &mut Log,
) -> Result<Acceptance> {
    let marked = sqlx::query(
        "UPDATE invitations SET used_at = $2, used_by = $3
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(micros(now))
    .bind(user.get())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let found = invitation(conn, token_hash).await?;
    match found {
        Some(accepted) if marked > 0 => {
            stores::set_membership(conn, user, accepted.store.id, accepted.role, log).await?;
            Ok(Acceptance::Accepted(accepted))
        }
        other => Ok(Acceptance::refused(other.as_ref())),
    }
}
