//! The KooGallery access key (访问密钥): the HMAC secret bound to an interface type in the Seller Console.

use base64::Engine as _;
use zeroize::Zeroizing;

/// The secret shared with KooGallery. Its bytes are the HMAC key *and* the prefix of the V2 canonical
/// string, so it is kept as bytes. `Debug` never prints it and the memory is wiped on drop.
#[derive(Clone)]
pub struct AccessKey(Zeroizing<Vec<u8>>);

/// The key text given as base64 could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("the access key is not valid base64 (unset the base64 option if the key is given as shown in the console)")]
pub struct InvalidBase64Key;

impl AccessKey {
    /// The key as the console shows it (mainland and international editions).
    pub fn from_text(text: &str) -> Self {
        Self(Zeroizing::new(text.as_bytes().to_vec()))
    }

    /// The key as the EU console shows it: base64 of the real key (spec §2.1). Surrounding white space,
    /// common when the value comes from a file, is ignored.
    pub fn from_base64(text: &str) -> Result<Self, InvalidBase64Key> {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(|bytes| Self(Zeroizing::new(bytes)))
            .map_err(|_| InvalidBase64Key)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_key() {
        let key = AccessKey::from_text("SuperSecret");
        assert!(!format!("{key:?}").contains("SuperSecret"));
    }

    #[test]
    fn base64_key_is_decoded_to_its_raw_bytes() {
        let key = AccessKey::from_base64(" VGVzdEFjY2Vzc0tleQ==\n").unwrap();
        assert_eq!(key.as_bytes(), b"TestAccessKey");
        assert!(AccessKey::from_base64("not base64!").is_err());
    }
}
