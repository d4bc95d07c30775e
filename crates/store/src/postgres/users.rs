//! Users and sessions.

use ordertrack_domain::UserId;
use sqlx::Row;
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

use super::rows::{Log, Result, listed, unique};
use crate::codec::{self, micros};
use crate::{AccessChange, CacheMarks, Credentials, Identity, NewSession, NewUser, User};

pub async fn create_user(conn: &mut PgConnection, new: &NewUser) -> Result<User> {
    let email = new.email.to_lowercase();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, is_admin, created_at, email_skeleton)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&email)
    .bind(&new.name)
    .bind(&new.password_hash)
    .bind(new.is_admin)
    .bind(micros(OffsetDateTime::now_utc()))
    .bind(ordertrack_domain::text::email_skeleton(&email))
    .fetch_one(&mut *conn)
    .await
    .map_err(unique("a user with this email"))?;
    Ok(User {
        id: UserId::new(id),
        email,
        name: new.name.clone(),
        is_admin: new.is_admin,
    })
}

pub async fn user_credentials(conn: &mut PgConnection, email: &str) -> Result<Option<Credentials>> {
    let row =
        sqlx::query("SELECT id, email, name, is_admin, password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.as_ref().map(codec::credentials).transpose()?)
}

pub async fn user(conn: &mut PgConnection, id: UserId) -> Result<Option<User>> {
    let row = sqlx::query("SELECT id, email, name, is_admin FROM users WHERE id = $1")
        .bind(id.get())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(codec::user).transpose()?)
}

pub async fn create_session(conn: &mut PgConnection, session: &NewSession) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&session.id)
    .bind(session.user_id.get())
    .bind(micros(session.expires_at))
    .bind(micros(OffsetDateTime::now_utc()))
    .execute(&mut *conn)
    .await
    .map_err(unique("a session with this id"))?;
    Ok(())
}

/// Ends a session; a session that existed logs its end.
pub async fn delete_session(conn: &mut PgConnection, id: &str, log: &mut Log) -> Result<()> {
    let deleted = sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if deleted.rows_affected() > 0 {
        bump_mark(conn, codec::BUMP_ACCESS_MARK_SQL).await?;
        log.access.push(AccessChange::SessionEnded {
            session_id: id.to_owned(),
        });
    }
    Ok(())
}

/// Moves a cache mark (`codec::BUMP_*_MARK_SQL`) in the transaction of the
/// change it stands for; the row stays locked until that commits.
pub async fn bump_mark(conn: &mut PgConnection, sql: &'static str) -> Result<()> {
    sqlx::query(sql).execute(&mut *conn).await?;
    Ok(())
}

/// Where the cache marks stand.
pub async fn cache_marks(conn: &mut PgConnection) -> Result<CacheMarks> {
    let row = sqlx::query(codec::CACHE_MARKS_SQL)
        .fetch_one(&mut *conn)
        .await?;
    Ok(CacheMarks {
        access: row.try_get("access")?,
        config: row.try_get("config")?,
    })
}

/// The session's user and memberships in one statement (one snapshot).
pub async fn session_identity(
    conn: &mut PgConnection,
    session_id: &str,
    now: OffsetDateTime,
) -> Result<Option<Identity>> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.name, u.is_admin, s.expires_at,
            (SELECT COALESCE(json_agg(json_build_object('store_id', m.store_id,
                                                        'store_slug', st.slug, 'role', m.role)
                                      ORDER BY st.slug), '[]')::text
             FROM memberships m JOIN stores st ON st.id = m.store_id
             WHERE m.user_id = u.id) AS memberships
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = $1 AND s.expires_at > $2",
    )
    .bind(session_id)
    .bind(micros(now))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Identity {
        user: codec::user(&row)?,
        session_id: session_id.to_owned(),
        session_expires_at: codec::from_micros(row.try_get("expires_at")?)?,
        memberships: listed(&row, "memberships", "memberships", codec::membership)?,
    }))
}
