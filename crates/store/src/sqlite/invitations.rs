//! Invitations to a store's staff on SQLite: making one, reading one by its
//! token's hash, and accepting one — marking it used and giving the
//! membership in the request's savepoint, so a token serves once.

use ordertrack_domain::UserId;
use rusqlite::{Connection, ErrorCode, params};
use time::OffsetDateTime;

use super::rows::first;
use super::stores;
use super::writer::WriteTx;
use crate::codec::{self, invitation_select, micros};
use crate::{Acceptance, Invitation, NewInvitation, StoreError};

pub fn create_invitation(conn: &Connection, new: &NewInvitation) -> Result<Invitation, StoreError> {
    conn.prepare_cached(
        "INSERT INTO invitations
            (store_id, email, role, token_hash, invited_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.store_id.get(),
        new.email,
        new.role.as_str(),
        new.token_hash,
        new.invited_by.get(),
        micros(new.created_at),
        micros(new.expires_at),
    ])
    .map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::NotFound("store or user"),
        _ => e.into(),
    })?;
    invitation(conn, &new.token_hash)?.ok_or(StoreError::NotFound("invitation"))
}

pub fn invitation(conn: &Connection, token_hash: &str) -> Result<Option<Invitation>, StoreError> {
    first(
        conn,
        concat!(invitation_select!(), " WHERE i.token_hash = ?1"),
        [token_hash],
        |row| codec::invitation(row),
    )
}

/// Marks the invitation used if it is unused and unexpired at `now`, and
/// gives its role through the one membership write path; otherwise says
/// why not and writes nothing.
pub fn accept_invitation(
    tx: &mut WriteTx<'_>,
    token_hash: &str,
    user: UserId,
    now: OffsetDateTime,
) -> Result<Acceptance, StoreError> {
    let marked = tx
        .conn()
        .prepare_cached(
            "UPDATE invitations SET used_at = ?2, used_by = ?3
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
        )?
        .execute(params![token_hash, micros(now), user.get()])?;
    let found = invitation(tx.conn(), token_hash)?;
    match found {
        Some(accepted) if marked > 0 => {
            stores::set_membership(tx, user, accepted.store.id, accepted.role)?;
            Ok(Acceptance::Accepted(accepted))
        }
        other => Ok(Acceptance::refused(other.as_ref())),
    }
}
