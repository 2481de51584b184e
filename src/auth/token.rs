//! Random secrets and how they are kept: 32 bytes from the operating system's
//! generator, shown once as hex, stored as SHA-256 (a fast hash is right for
//! high-entropy tokens; argon2 is for low-entropy passwords).

use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh 256-bit token as 64 lowercase hex characters.
pub fn generate() -> String {
    hex(&random_bytes::<32>())
}

/// `N` bytes from the OS generator. Its failure leaves nothing safe to do.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    OsRng
        .try_fill_bytes(&mut buf)
        .expect("the operating system's random generator failed");
    buf
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, so
/// no character is likelier than another).
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    debug_assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes::<64>() {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// What the store keeps of a token.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_hex() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn random_string_uses_only_the_alphabet() {
        let s = random_string(b"ABC", 200);
        assert_eq!(s.len(), 200);
        assert!(s.bytes().all(|c| b"ABC".contains(&c)));
        assert!(s.contains('A') && s.contains('B') && s.contains('C'));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
