//! API tokens: `kgt_` followed by 32 random bytes in base64url, stored only as their SHA-256.

use base64::Engine as _;
use koogate_store::{ApiToken, Store, StoreError};
use rand::Rng;
use sha2::{Digest, Sha256};

/// The hash under which a token is stored and looked up. Tokens carry 256 random bits, so a plain
/// (unsalted, fast) hash is enough: there is nothing to guess.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token; returns its record and the token itself, which is shown this once.
pub async fn create(store: &Store, name: &str, now_ms: i64) -> Result<(ApiToken, String), StoreError> {
    let mut rng = rand::thread_rng();
    let secret: [u8; 32] = rng.gen();
    let token = format!("kgt_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    let id_bytes: [u8; 6] = rng.gen();
    let id = format!("tok_{}", hex::encode(id_bytes));
    store.create_token(&id, name, &hash(&token), now_ms).await?;
    let record =
        ApiToken { id, name: name.into(), created_at_ms: now_ms, revoked_at_ms: None, last_used_at_ms: None };
    Ok((record, token))
}
