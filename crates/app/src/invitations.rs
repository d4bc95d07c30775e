//! Staff invitations: an owner (or a platform admin) invites an e-mail
//! address to a staff role; whoever signs in with that address accepts it
//! once, within [`INVITATION_VALIDITY`]. The token is random and shown once;
//! the store keeps only its SHA-256, so a copy of the database accepts
//! nothing. Accepting marks the invitation used and gives the membership in
//! one write: of two concurrent acceptances one wins, the other is told the
//! invitation was used.

use ordertrack_domain::Role;
use ordertrack_domain::text::normalise_email;
use ordertrack_store::{Acceptance, Invitation, NewInvitation};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::auth::check_email;
use crate::{App, AppError, Caller, ErrorCode};

/// How long an invitation can be accepted.
pub const INVITATION_VALIDITY: time::Duration = time::Duration::days(7);

/// A new invitation: the token (shown once, never stored) and what it
/// invites to.
#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    pub token: String,
    pub invitation: Invitation,
}

/// The page an invitee opens to accept, for a token.
pub fn invitation_path(token: &str) -> String {
    format!("/invitations/{token}")
}

/// What the store keeps of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl App {
    /// Invites `email` to `role` in the store (owners and platform admins;
    /// other staff 403, anyone else as for adding staff). Every staff role
    /// may be given, owner included: only owners invite.
    pub async fn create_invitation(
        &self, caller: &Caller, slug: &str, email: &str, role: Role,
    ) -> Result<IssuedInvitation, AppError> {
        let store = self.store_to_staff(caller, slug, role).await?;
        let email = check_email(email)?;
        let token = crate::random_token();
        let now = crate::now();
        let invitation = self
            .repo
            .create_invitation(NewInvitation {
                store_id: store.id,
                email,
                role,
                token_hash: token_hash(&token),
                invited_by: caller.user.id,
                created_at: now,
                expires_at: now + INVITATION_VALIDITY,
            })
            .await?;
        Ok(IssuedInvitation { token, invitation })
    }

    /// The invitation behind a token, for the signed-in invitee: unknown
    /// 404, addressed to another e-mail 403, used or expired 410.
    pub async fn invitation(&self, caller: &Caller, token: &str) -> Result<Invitation, AppError> {
        let invitation = self
            .repo
            .invitation(&token_hash(token))
            .await?
            .ok_or(AppError::NotFound("invitation"))?;
        check_invitee(caller, &invitation)?;
        if invitation.used_at.is_some() {
            return Err(gone(&Acceptance::Used));
        }
        if invitation.expires_at <= crate::now() {
            return Err(gone(&Acceptance::Expired));
        }
        Ok(invitation)
    }

    /// Accepts an invitation: the caller, signed in with the e-mail it is
    /// addressed to, joins the store's staff in its role. Marking it used
    /// and the membership are one write.
    pub async fn accept_invitation(
        &self, caller: &Caller, token: &str,
    ) -> Result<Invitation, AppError> {
        let invitation = self.invitation(caller, token).await?;
        if invitation.role != Role::Owner {
            self.keep_an_owner(&invitation.store, caller.user.id)
                .await?;
        }
        let now: OffsetDateTime = crate::now();
        match self
            .repo
            .accept_invitation(&token_hash(token), caller.user.id, now)
            .await?
        {
            Acceptance::Accepted(accepted) => Ok(accepted),
            Acceptance::Unknown => Err(AppError::NotFound("invitation")),
            refused => Err(gone(&refused)),
        }
    }
}

/// Only the addressee may see or accept an invitation.
fn check_invitee(caller: &Caller, invitation: &Invitation) -> Result<(), AppError> {
    if normalise_email(&caller.user.email) == invitation.email {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "this invitation is for another e-mail address; sign in with that one".into(),
        ))
    }
}

fn gone(why: &Acceptance) -> AppError {
    match why {
        Acceptance::Expired => AppError::Gone {
            code: ErrorCode::InvitationExpired,
            message: "this invitation has expired; ask for a new one".into(),
        },
        _ => AppError::Gone {
            code: ErrorCode::InvitationUsed,
            message: "this invitation has been used already".into(),
        },
    }
}
