//! The VAPID key (RFC 8292): a P-256 key pair whose private half signs the
//! token every push request carries and whose public half browsers
//! subscribe with, so a push service accepts requests for a subscription
//! only from the server it was made for. Kept as PEM (PKCS#8) in the data
//! dir, or read from the operator's file (PEM, or the base64url of the
//! 32-byte private scalar as `web-push generate-vapid-keys` prints it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::SecretKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use web_push_native::jwt_simple;
use web_push_native::jwt_simple::algorithms::{ECDSAP256KeyPairLike, ES256KeyPair};
use web_push_native::jwt_simple::claims::Claims;

/// Why a VAPID key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    #[error("not a P-256 private key: expected PEM (PKCS#8 or SEC1) or the base64url of 32 bytes")]
    Unreadable,
}

/// The server's VAPID key pair.
pub struct VapidKey {
    secret: SecretKey,
    /// The same key as the signer wants it.
    pair: ES256KeyPair,
}

impl VapidKey {
    fn from_secret(secret: SecretKey) -> Self {
        let pair =
            ES256KeyPair::from_bytes(&secret.to_bytes()).expect("a P-256 scalar is an ES256 key");
        VapidKey { secret, pair }
    }

    /// A new random key.
    pub fn generate() -> Self {
        loop {
            // Almost every 32 random bytes are a valid scalar.
            if let Ok(secret) = SecretKey::from_slice(&crate::token::random_bytes::<32>()) {
                return Self::from_secret(secret);
            }
        }
    }

    /// Reads a key: PEM (PKCS#8 or SEC1 `EC PRIVATE KEY`), or the
    /// base64url of the 32-byte private scalar.
    pub fn parse(text: &str) -> Result<Self, VapidError> {
        let text = text.trim();
        let secret = if text.starts_with("-----BEGIN EC PRIVATE KEY") {
            SecretKey::from_sec1_pem(text).map_err(|_| VapidError::Unreadable)?
        } else if text.starts_with("-----BEGIN") {
            SecretKey::from_pkcs8_pem(text).map_err(|_| VapidError::Unreadable)?
        } else {
            let bytes = super::decode_base64url(text).ok_or(VapidError::Unreadable)?;
            SecretKey::from_slice(&bytes).map_err(|_| VapidError::Unreadable)?
        };
        Ok(Self::from_secret(secret))
    }

    /// The key as PKCS#8 PEM, to keep in a file.
    pub fn to_pem(&self) -> String {
        self.secret
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .expect("a P-256 key encodes as PKCS#8")
    }

    /// The public key as browsers take it (`applicationServerKey`) and
    /// push services see it (`k=`): base64url of the uncompressed point.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.public_key().to_sec1_bytes())
    }

    /// The `Authorization` header of a push request to `endpoint`:
    /// `vapid t=<token>, k=<public key>`, the token an ES256 JWT whose
    /// `aud` is the endpoint's origin — its port included, which the push
    /// service compares — `sub` the operator's contact and `exp`
    /// [`TOKEN_VALIDITY`] away (RFC 8292 allows at most 24 h).
    pub(crate) fn authorization(
        &self, endpoint: &reqwest::Url, subject: &str,
    ) -> Result<String, jwt_simple::Error> {
        let claims = Claims::create(jwt_simple::prelude::Duration::from_secs(
            TOKEN_VALIDITY.as_secs(),
        ))
        .with_audience(endpoint.origin().ascii_serialization())
        .with_subject(subject);
        let token = self.pair.sign(claims)?;
        Ok(format!("vapid t={token}, k={}", self.public_key()))
    }
}

/// How long a VAPID token is good for.
pub const TOKEN_VALIDITY: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_from_pem_and_from_base64url() {
        let key = VapidKey::generate();
        let again = VapidKey::parse(&key.to_pem()).expect("its own PEM");
        assert_eq!(again.public_key(), key.public_key());
        let raw = URL_SAFE_NO_PAD.encode(key.secret.to_bytes());
        assert_eq!(
            VapidKey::parse(&raw).expect("base64url").public_key(),
            key.public_key()
        );
        assert_eq!(
            super::super::decode_base64url(&key.public_key()).map(|p| p.len()),
            Some(65)
        );
        assert!(VapidKey::parse("nonsense").is_err());
    }
}
