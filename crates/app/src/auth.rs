//! Accounts, passwords and sessions.
//!
//! Passwords are hashed with argon2id. A session is a row in the store plus
//! a signed, expiring token (HS256) that names it; the same token works as a
//! Bearer token for the API and as an HttpOnly cookie for pages. Every
//! request checks the session and the user's memberships as of now: it
//! reads the store's access mark, and reads the session again unless this
//! instance resolved it at that very mark (`sessions.rs`), so logging out
//! or losing a staff role takes effect at once, on every instance.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ordertrack_domain::UserId;
use ordertrack_domain::text::{check_line, normalise_email};
use ordertrack_store::{CacheMarks, NewSession, NewUser, User};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ErrorCode;
use crate::throttle::{SignInLimits, Throttle};
use crate::{App, AppError};

pub use ordertrack_store::Identity as Caller;

/// Shortest and longest accepted passwords.
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

/// How tokens are signed and how long they live.
#[derive(Clone)]
pub struct AuthConfig {
    /// HMAC key for tokens (at least 32 bytes).
    pub secret: Vec<u8>,
    /// Lifetime of a session and its token.
    pub token_ttl: time::Duration,
    /// Failed sign-ins allowed, and password hashing at once.
    pub limits: SignInLimits,
}

pub(crate) struct Auth {
    pub(crate) config: AuthConfig,
    encoding: EncodingKey,
    decoding: DecodingKey,
    throttle: Throttle,
}

impl Auth {
    pub(crate) fn new(config: AuthConfig) -> Self {
        Auth {
            encoding: EncodingKey::from_secret(&config.secret),
            decoding: DecodingKey::from_secret(&config.secret),
            throttle: Throttle::new(config.limits.clone()),
            config,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// User id.
    sub: UserId,
    /// Session id.
    sid: String,
    exp: i64,
    iat: i64,
}

/// A session as a valid token names it (signature and expiry checked), not
/// yet looked up: whether it is still open, and the user's memberships, are
/// read from the store by [`App::session_caller`], each time it matters. A
/// WebSocket keeps this, not the identity it resolved to, so every
/// subscription on it is authorised as of its own time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionRef {
    session_id: String,
    user_id: UserId,
}

impl SessionRef {
    /// The user the session belongs to (open streams are counted per user).
    pub fn user_id(&self) -> i64 {
        self.user_id.get()
    }

    /// The session a resolved caller came with.
    pub(crate) fn of(caller: &Caller) -> SessionRef {
        SessionRef {
            session_id: caller.session_id.clone(),
            user_id: caller.user.id,
        }
    }
}

/// Who asks for a change of an order: a caller resolved already, or a
/// session, resolved by the change itself against the cache marks its
/// one read of the order returns (so a kept session costs no read).
#[derive(Debug, Clone, Copy)]
pub enum Asker<'a> {
    /// Resolved (and checked) before.
    Caller(&'a Caller),
    /// Named by a valid token; not yet checked against the store.
    Session(&'a SessionRef),
}

impl<'a> From<&'a Caller> for Asker<'a> {
    fn from(caller: &'a Caller) -> Self {
        Asker::Caller(caller)
    }
}

impl<'a> From<&'a SessionRef> for Asker<'a> {
    fn from(session: &'a SessionRef) -> Self {
        Asker::Session(session)
    }
}

/// A new session: the token to present and the user it belongs to.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub user: User,
    pub expires_at: OffsetDateTime,
}

/// Hashes a password with argon2id (slow on purpose: run it off the async threads).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let salt = SaltString::encode_b64(&crate::token::random_bytes::<16>())
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AppError::Internal(e.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the email is unknown, so that a wrong
/// email takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password for unknown emails").unwrap_or_default())
}

/// Normalises an e-mail address ([`normalise_email`]) and checks it: one
/// line, an `@` between a local part and a dotted domain, no whitespace.
/// (That no account has a confusable of it is the store's to keep.)
pub(crate) fn check_email(email: &str) -> Result<String, AppError> {
    let email = normalise_email(email);
    check_line("email", &email)?;
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(AppError::invalid(
            ErrorCode::InvalidEmail,
            "enter a valid email address",
        ))
    }
}

fn check_password(password: &str) -> Result<(), AppError> {
    if PASSWORD_CHARS.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(AppError::invalid(
            ErrorCode::InvalidPassword,
            "a password needs 8 to 128 characters",
        ))
    }
}

/// Trims a display name and checks it: 1–100 characters, one line, no
/// control or bidi formatting character.
pub fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    check_line("name", name)?;
    if (1..=100).contains(&name.chars().count()) {
        Ok(name.to_owned())
    } else {
        Err(AppError::invalid(
            ErrorCode::InvalidName,
            "a name needs 1 to 100 characters",
        ))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))
}

impl App {
    /// Creates an account (customers register themselves; staff accounts are
    /// made by an owner or the CLI and then given a role).
    pub async fn create_user(
        &self, email: &str, password: &str, name: &str, is_admin: bool,
    ) -> Result<User, AppError> {
        let email = check_email(email)?;
        check_password(password)?;
        let name = check_name(name)?;
        let password = password.to_owned();
        let password_hash = self.hashing(move || hash_password(&password)).await??;
        Ok(self
            .repo
            .create_user(NewUser {
                email,
                name,
                password_hash,
                is_admin,
            })
            .await?)
    }

    /// Creates a customer account for the client at `client` and signs it
    /// in. Each client address may create only so many accounts per window
    /// (see [`crate::throttle`]); input refused before the password is
    /// hashed does not count.
    pub async fn register(
        &self, email: &str, password: &str, name: &str, client: IpAddr,
    ) -> Result<SignedIn, AppError> {
        check_email(email)?;
        check_password(password)?;
        check_name(name)?;
        let reservation = self.auth.throttle.reserve_registration(client)?;
        let user = match self.create_user(email, password, name, false).await {
            Ok(user) => user,
            // Turned away before hashing: nothing was spent on it.
            Err(error @ AppError::Busy { .. }) => {
                reservation.refund();
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        self.start_session(user).await
    }

    /// Runs a password hash on the blocking pool, holding one of the
    /// bounded hashing permits (each hash takes ~19 MiB while it runs).
    async fn hashing<T: Send + 'static>(
        &self, f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = self.auth.throttle.hashing_permit().await?;
        blocking(move || {
            let _permit = permit;
            f()
        })
        .await
    }

    /// Signs in with email and password, from the client at `client`.
    ///
    /// The attempt is counted before the password is checked (and given
    /// back if it succeeds), so concurrent wrong passwords cannot outrun
    /// the limits; see [`crate::throttle`].
    pub async fn login(
        &self, email: &str, password: &str, client: IpAddr,
    ) -> Result<SignedIn, AppError> {
        let email = normalise_email(email);
        let reservation = self.auth.throttle.reserve(&email, client)?;
        let checked = self.check_credentials(&email, password).await;
        match checked {
            Ok(Some(user)) => {
                reservation.refund();
                self.start_session(user).await
            }
            Ok(None) => Err(AppError::BadCredentials),
            // Turned away before the password was checked: not a failure.
            Err(error) => {
                reservation.refund();
                Err(error)
            }
        }
    }

    /// The user these credentials belong to, `None` if they do not match.
    async fn check_credentials(
        &self, email: &str, password: &str,
    ) -> Result<Option<User>, AppError> {
        let credentials = self.repo.user_credentials(email).await?;
        let password = password.to_owned();
        let (user, hash) = match credentials {
            Some(c) => (Some(c.user), c.password_hash),
            None => (None, decoy_hash().to_owned()),
        };
        let matches = self
            .hashing(move || verify_password(&password, &hash))
            .await?;
        Ok(user.filter(|_| matches))
    }

    async fn start_session(&self, user: User) -> Result<SignedIn, AppError> {
        let now = crate::now();
        let expires_at = now + self.auth.config.token_ttl;
        let session_id = crate::random_token();
        self.repo
            .create_session(NewSession {
                id: session_id.clone(),
                user_id: user.id,
                expires_at,
            })
            .await?;
        let claims = Claims {
            sub: user.id,
            sid: session_id,
            exp: expires_at.unix_timestamp(),
            iat: now.unix_timestamp(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.auth.encoding)
                .map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(SignedIn {
            token,
            user,
            expires_at,
        })
    }

    /// Ends the caller's session: its token stops working at once, and the
    /// store logs the end with it, so every instance ends the streams opened
    /// with it (see [`ordertrack_store::AccessChange`]).
    pub async fn logout(&self, caller: &Caller) -> Result<(), AppError> {
        self.repo.delete_session(&caller.session_id).await?;
        self.sessions.forget(&caller.session_id);
        Ok(())
    }

    /// Who presents this token, as of now (signature, expiry, session and
    /// memberships all checked).
    pub async fn authenticate(&self, token: &str) -> Result<Caller, AppError> {
        let session = self.session_of(token)?;
        self.session_caller(&session).await
    }

    /// The session a token names, checking only its signature and expiry.
    pub fn session_of(&self, token: &str) -> Result<SessionRef, AppError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.auth.decoding, &validation)
            .map_err(|_| AppError::Unauthenticated)?
            .claims;
        Ok(SessionRef {
            session_id: claims.sid,
            user_id: claims.sub,
        })
    }

    /// Who holds `session`, as of now: the session must still be open, and
    /// the memberships current. One read of the store's access mark; the
    /// session and memberships are read too unless this instance resolved
    /// them at that same mark (any logout or staff change since, on any
    /// instance, has moved it) and the session has not expired.
    pub async fn session_caller(&self, session: &SessionRef) -> Result<Caller, AppError> {
        let marks = self.repo.cache_marks().await?;
        self.session_at(session, marks).await
    }

    /// The caller `asker` stands for, as of now (a session is checked as
    /// by [`App::session_caller`]).
    pub async fn caller_of<'a>(&self, asker: Asker<'a>) -> Result<Cow<'a, Caller>, AppError> {
        match asker {
            Asker::Caller(caller) => Ok(Cow::Borrowed(caller)),
            Asker::Session(session) => Ok(Cow::Owned(self.session_caller(session).await?)),
        }
    }

    /// The caller `asker` stands for, checked against `marks` — read by
    /// this request, after it began, in the same statement as what it
    /// decides on.
    pub(crate) async fn caller_at<'a>(
        &self, asker: Asker<'a>, marks: CacheMarks,
    ) -> Result<Cow<'a, Caller>, AppError> {
        match asker {
            Asker::Caller(caller) => Ok(Cow::Borrowed(caller)),
            Asker::Session(session) => Ok(Cow::Owned(self.session_at(session, marks).await?)),
        }
    }

    /// Who holds `session`, given `marks` read by this request: the kept
    /// identity if it was read at the same access mark, else a fresh read.
    async fn session_at(
        &self, session: &SessionRef, marks: CacheMarks,
    ) -> Result<Caller, AppError> {
        let now = crate::now();
        let identity = match self.sessions.current(&session.session_id, marks, now) {
            Some(identity) => identity,
            None => {
                // Read after the mark: a change the mark does not show yet
                // is in this read or moves the mark past the kept one.
                let Some(identity) = self.repo.session_identity(&session.session_id, now).await?
                else {
                    self.sessions.forget(&session.session_id);
                    return Err(AppError::Unauthenticated);
                };
                self.sessions.keep(marks, identity.clone(), now);
                identity
            }
        };
        if identity.user.id != session.user_id {
            return Err(AppError::Unauthenticated);
        }
        Ok(identity)
    }

    /// The CSRF token of the caller's session: an HMAC of the session id
    /// under the signing key. It is bound to the session — a token seen
    /// before sign-in, or in another session, does not work — so every
    /// sign-in starts with a new one, and it ends with the session. 32 hex
    /// characters.
    pub fn csrf_token(&self, caller: &Caller) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.auth.config.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(b"ordertrack csrf\0");
        mac.update(caller.session_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// How long new sessions live.
    pub fn session_ttl(&self) -> time::Duration {
        self.auth.config.token_ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            check_email(" Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad} accepted");
        }
    }
}
