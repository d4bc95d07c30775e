//! Unguessable values: session ids, tracking tokens, CSRF tokens, form
//! idempotency keys, salts and signing secrets all come from here.

use rand::RngCore;

/// `N` bytes from a cryptographically secure generator seeded by the
/// operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// 128 random bits as 32 lowercase hex digits.
pub fn random_token() -> String {
    hex::encode(random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
