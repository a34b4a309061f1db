//! Encryption at rest for initial admin credentials (ChaCha20-Poly1305 under the configured master key)
//! and generation of those credentials.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng};
use chacha20poly1305::{AeadCore, ChaCha20Poly1305, Key, Nonce};
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};

/// First byte of every ciphertext, so a later scheme or key rotation can tell formats apart.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the master key must be 32 bytes encoded as base64 (generate one with `koogate keys generate`)")]
    BadMasterKey,
    #[error("a stored credential could not be decrypted: wrong master key or damaged data")]
    Decrypt,
}

/// Encrypts and decrypts stored credentials. `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct CredentialCipher {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for CredentialCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialCipher([REDACTED])")
    }
}

impl CredentialCipher {
    pub fn from_base64_key(key: &SecretString) -> Result<Self, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| CryptoError::BadMasterKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadMasterKey);
        }
        Ok(Self { cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)) })
    }

    /// `version ‖ nonce ‖ ciphertext+tag`, with a fresh random nonce each time.
    pub fn encrypt(&self, plaintext: &str) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("ChaCha20-Poly1305 encryption of a short text cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn decrypt(&self, stored: &[u8]) -> Result<SecretString, CryptoError> {
        if stored.len() < 1 + NONCE_LEN || stored[0] != FORMAT_V1 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, sealed) = stored[1..].split_at(NONCE_LEN);
        let plain =
            self.cipher.decrypt(Nonce::from_slice(nonce), sealed).map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| CryptoError::Decrypt)
    }
}

/// A new random master key, base64-encoded, for `koogate keys generate`.
pub fn generate_master_key() -> String {
    let key: [u8; 32] = rand::thread_rng().gen();
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// An initial admin password: 16 characters with upper case, lower case, digits and a symbol, which
/// satisfies the usual SaaS password rules.
pub fn generate_password() -> SecretString {
    let mut rng = rand::thread_rng();
    let mut password = Alphanumeric.sample_string(&mut rng, 12);
    password.push(char::from(b'A' + rng.gen_range(0..26)));
    password.push(char::from(b'a' + rng.gen_range(0..26)));
    password.push(char::from(b'0' + rng.gen_range(0..10)));
    password.push(['@', '#', '%', '+'][rng.gen_range(0..4)]);
    SecretString::from(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> CredentialCipher {
        CredentialCipher::from_base64_key(&SecretString::from(generate_master_key())).unwrap()
    }

    #[test]
    fn encryption_round_trips_and_never_repeats() {
        let cipher = cipher();
        let a = cipher.encrypt("Huawei@12345");
        assert_ne!(a, cipher.encrypt("Huawei@12345"));
        assert_eq!(cipher.decrypt(&a).unwrap().expose_secret(), "Huawei@12345");
        assert!(!a.windows(6).any(|w| w == b"Huawei"));
    }

    #[test]
    fn a_different_key_or_tampered_data_fails() {
        let stored = cipher().encrypt("secret");
        assert!(cipher().decrypt(&stored).is_err());
        let c = cipher();
        let mut stored = c.encrypt("secret");
        *stored.last_mut().unwrap() ^= 1;
        assert!(c.decrypt(&stored).is_err());
    }

    #[test]
    fn master_keys_must_be_32_bytes_of_base64() {
        assert!(CredentialCipher::from_base64_key(&SecretString::from("c2hvcnQ=")).is_err());
        assert!(CredentialCipher::from_base64_key(&SecretString::from("not base64")).is_err());
    }

    #[test]
    fn generated_passwords_mix_character_classes() {
        let p = generate_password();
        let p = p.expose_secret();
        assert_eq!(p.len(), 16);
        assert!(p.chars().any(|c| c.is_ascii_digit()) && p.chars().any(|c| !c.is_alphanumeric()));
    }
}
