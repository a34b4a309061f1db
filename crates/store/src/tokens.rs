//! Bearer tokens of the merchant-app API. Only a SHA-256 hash of each token is stored; the token itself
//! is shown once, when it is created.

use crate::backend::Store;
use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

const TOKEN_COLUMNS: &str = "id, name, created_at_ms, revoked_at_ms, last_used_at_ms";

impl Store {
    pub async fn create_token(
        &self,
        id: &str,
        name: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "INSERT INTO api_tokens (id, name, token_hash, created_at_ms) VALUES ($1, $2, $3, $4)";
        on_pool!(self, write, p => sqlx::query(SQL).bind(id).bind(name).bind(token_hash).bind(now_ms).execute(p).await.map(|_| ())?);
        Ok(())
    }

    /// The unrevoked token with this hash, marking it used.
    pub async fn use_token(&self, token_hash: &str, now_ms: i64) -> Result<Option<ApiToken>, StoreError> {
        let sql = format!(
            "UPDATE api_tokens SET last_used_at_ms = $2 WHERE token_hash = $1 AND revoked_at_ms IS NULL RETURNING {TOKEN_COLUMNS}"
        );
        let token = on_pool!(self, write, p => sqlx::query_as(&sql).bind(token_hash).bind(now_ms).fetch_optional(p).await?);
        Ok(token)
    }

    pub async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at_ms, id");
        let tokens = on_pool!(self, read, p => sqlx::query_as(&sql).fetch_all(p).await?);
        Ok(tokens)
    }

    /// Revokes a token; `false` if there is no such (unrevoked) token.
    pub async fn revoke_token(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE api_tokens SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL";
        let rows = on_pool!(self, write, p => sqlx::query(SQL).bind(id).bind(now_ms).execute(p).await?.rows_affected());
        Ok(rows == 1)
    }
}
