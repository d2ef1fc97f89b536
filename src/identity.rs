//! Secrets: API tokens (`<id>-<secret>`, only SHA-256 of the secret kept) and password hashes
//! (PBKDF2-SHA256, salted, in Coder's `$pbkdf2-sha256$<iter>$<salt>$<hash>` format).

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use sha2::{Digest, Sha256};

const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const PBKDF2_ITERATIONS: u32 = 65_535;

fn random_alphanumeric(n: usize) -> String {
    (0..n)
        .map(|_| ALPHANUMERIC[rand::random_range(0..ALPHANUMERIC.len())] as char)
        .collect()
}

/// A newly made token: give `token` to the user once, store `id` and `hashed_secret`.
pub struct NewToken {
    pub id: String,
    pub hashed_secret: Vec<u8>,
    pub token: String,
}

pub fn new_token() -> NewToken {
    let id = random_alphanumeric(10);
    let secret = random_alphanumeric(22);
    NewToken {
        hashed_secret: hash_secret(&secret),
        token: format!("{id}-{secret}"),
        id,
    }
}

/// A provisioner key's secret (Coder's length, 43 characters): given once, kept as its
/// `hash_secret`.
pub fn new_provisioner_key() -> String {
    random_alphanumeric(43)
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Splits `<id>-<secret>`; the error text is Coder's.
pub fn split_token(token: &str) -> Result<(&str, &str), String> {
    let parts: Vec<&str> = token.split('-').collect();
    if parts.len() != 2 {
        return Err(format!(
            "incorrect amount of API key parts, expected 2 got {}",
            parts.len()
        ));
    }
    let (id, secret) = (parts[0], parts[1]);
    if id.len() != 10 {
        return Err(format!(
            "invalid API key ID length, expected 10 got {}",
            id.len()
        ));
    }
    if secret.len() != 22 {
        return Err(format!(
            "invalid API key secret length, expected 22 got {}",
            secret.len()
        ));
    }
    Ok((id, secret))
}

/// Compares two byte strings in time that depends only on their length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let hash = pbkdf2_sha256(password, &salt, PBKDF2_ITERATIONS);
    format!(
        "$pbkdf2-sha256${PBKDF2_ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(hash)
    )
}

pub fn verify_password(stored: &str, password: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, "pbkdf2-sha256", iter, salt, hash] = parts[..] else {
        return false;
    };
    let (Ok(iter), Ok(salt), Ok(hash)) = (iter.parse(), B64.decode(salt), B64.decode(hash)) else {
        return false;
    };
    constant_time_eq(&pbkdf2_sha256(password, &salt, iter), &hash)
}

fn pbkdf2_sha256(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("hunter22");
        assert!(h.starts_with("$pbkdf2-sha256$65535$"));
        assert!(verify_password(&h, "hunter22"));
        assert!(!verify_password(&h, "hunter23"));
        assert!(!verify_password("garbage", "hunter22"));
    }

    #[test]
    fn tokens_split_with_coders_errors() {
        let t = new_token();
        let (id, secret) = split_token(&t.token).unwrap();
        assert_eq!(id, t.id);
        assert_eq!(hash_secret(secret), t.hashed_secret);
        assert_eq!(
            split_token("abc").unwrap_err(),
            "incorrect amount of API key parts, expected 2 got 1"
        );
        assert_eq!(
            split_token("abc-def").unwrap_err(),
            "invalid API key ID length, expected 10 got 3"
        );
    }
}
