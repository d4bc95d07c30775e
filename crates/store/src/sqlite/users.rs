//! Users and sessions.

use ordertrack_domain::UserId;
use rusqlite::{Connection, ErrorCode, params};
use time::OffsetDateTime;

use super::events::append_access;
use super::rows::{all, first};
use super::writer::WriteTx;
use crate::codec::{self, micros};
use crate::{
    AccessChange, CacheMarks, Credentials, Identity, NewSession, NewUser, StoreError, User,
};

/// Maps a uniqueness violation to [`StoreError::Conflict`].
pub(super) fn unique(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |error| match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(what),
        _ => error.into(),
    }
}

pub fn create_user(conn: &Connection, new: &NewUser) -> Result<User, StoreError> {
    let email = new.email.to_lowercase();
    conn.prepare_cached(
        "INSERT INTO users (email, name, password_hash, is_admin, created_at, email_skeleton)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        email,
        new.name,
        new.password_hash,
        new.is_admin,
        micros(OffsetDateTime::now_utc()),
        ordertrack_domain::text::email_skeleton(&email),
    ])
    .map_err(unique("a user with this email"))?;
    Ok(User {
        id: UserId::new(conn.last_insert_rowid()),
        email,
        name: new.name.clone(),
        is_admin: new.is_admin,
    })
}

pub fn user_credentials(conn: &Connection, email: &str) -> Result<Option<Credentials>, StoreError> {
    first(
        conn,
        "SELECT id, email, name, is_admin, password_hash FROM users WHERE email = ?1",
        [email],
        |row| codec::credentials(row),
    )
}

pub fn user(conn: &Connection, id: UserId) -> Result<Option<User>, StoreError> {
    first(
        conn,
        "SELECT id, email, name, is_admin FROM users WHERE id = ?1",
        [id.get()],
        |row| codec::user(row),
    )
}

pub fn create_session(conn: &Connection, session: &NewSession) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, user_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        session.id,
        session.user_id.get(),
        micros(session.expires_at),
        micros(OffsetDateTime::now_utc())
    ])?;
    Ok(())
}

/// Ends a session; a session that existed logs its end.
pub fn delete_session(tx: &mut WriteTx<'_>, id: &str) -> Result<(), StoreError> {
    let deleted = tx
        .conn()
        .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute([id])?;
    if deleted > 0 {
        bump_mark(tx.conn(), codec::BUMP_ACCESS_MARK_SQL)?;
        append_access(
            tx,
            AccessChange::SessionEnded {
                session_id: id.to_owned(),
            },
        )?;
    }
    Ok(())
}

/// Moves a cache mark (`codec::BUMP_*_MARK_SQL`) in the transaction of the
/// change it stands for.
pub fn bump_mark(conn: &Connection, sql: &'static str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Where the cache marks stand.
pub fn cache_marks(conn: &Connection) -> Result<CacheMarks, StoreError> {
    Ok(conn
        .prepare_cached(codec::CACHE_MARKS_SQL)?
        .query_row([], |row| {
            Ok(CacheMarks {
                access: row.get("access")?,
                config: row.get("config")?,
            })
        })?)
}

/// The session's user and memberships: one row per membership (one row
/// without any), all from one statement, so the user and their roles come
/// from the same snapshot.
pub fn session_identity(
    conn: &Connection,
    session_id: &str,
    now: OffsetDateTime,
) -> Result<Option<Identity>, StoreError> {
    let mut identity: Option<Identity> = None;
    all(
        conn,
        "SELECT u.id, u.email, u.name, u.is_admin, s.expires_at, m.store_id,
            st.slug AS store_slug, m.role
         FROM sessions s JOIN users u ON u.id = s.user_id
         LEFT JOIN memberships m ON m.user_id = u.id LEFT JOIN stores st ON st.id = m.store_id
         WHERE s.id = ?1 AND s.expires_at > ?2 ORDER BY st.slug",
        params![session_id, micros(now)],
        |row| {
            let identity = match &mut identity {
                Some(identity) => identity,
                None => identity.insert(Identity {
                    user: codec::user(row)?,
                    session_id: session_id.to_owned(),
                    session_expires_at: codec::from_micros(row.get("expires_at")?)?,
                    memberships: Vec::new(),
                }),
            };
            if row.get::<_, Option<i64>>("store_id")?.is_some() {
                identity.memberships.push(codec::membership(row)?);
            }
            Ok(())
        },
    )?;
    Ok(identity)
}
