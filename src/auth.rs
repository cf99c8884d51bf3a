//! Secrets: password hashing (argon2id) and random tokens that are stored
//! only as SHA-256 hashes, so a database leak does not hand out sessions.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Minimum password length accepted when creating users.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (argon2 cost is per byte; bound the work).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Hashes a password with argon2id and a random salt. CPU-heavy: call it
/// from `spawn_blocking` on request paths.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// Checks a password against a stored hash. CPU-heavy, like hashing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A stored hash to verify against when the user does not exist, so that
/// unknown and known usernames take the same time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// A random 256-bit token, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A generated password: 128 random bits, readable.
pub fn random_password() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The form a token is stored in.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_256_bit_and_hashed() {
        let t = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert_ne!(t, random_token());
        assert_eq!(token_hash(&t).len(), 64);
        assert_eq!(token_hash(&t), token_hash(&t));
    }
}
