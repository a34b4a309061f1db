//! Provisioning results reported by the merchant's app — in its answer to `instance.created` or later
//! through the API — and the provisioner that leaves the work to the app.

use std::sync::Arc;

use async_trait::async_trait;
use koogate_protocol::ids::InstanceId;
use koogate_protocol::messages::AppInfo;
use koogate_store::{InstanceStatus, Store, StoreError, StoredAppInfo};
use serde::Deserialize;

use crate::clock::Clock;
use crate::crypto::CredentialCipher;
use crate::provision::{ProvisionError, ProvisionOutcome, ProvisionRequest, Provisioner};

/// Accepts every real instance for later: the app learns of it from `instance.created` and reports the
/// result (the `webhook` and `command` provisioners). `newInstance` is answered `000004`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppProvisioner;

#[async_trait]
impl Provisioner for AppProvisioner {
    async fn provision(&self, _request: &ProvisionRequest) -> Result<ProvisionOutcome, ProvisionError> {
        Ok(ProvisionOutcome::Pending)
    }
}

/// The app details as the app reports them (the same names as KooGallery's AppInfo).
#[derive(Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportedAppInfo {
    /// The buyer's URL (at most 512 characters).
    pub front_end_url: String,
    pub admin_url: Option<String>,
    pub user_name: Option<String>,
    /// Stored encrypted; returned to KooGallery in `queryInstance` only.
    pub password: Option<String>,
    /// Remarks for the buyer (at most 1024 characters).
    pub memo: Option<String>,
}

impl std::fmt::Debug for ReportedAppInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportedAppInfo").field("front_end_url", &self.front_end_url).finish_non_exhaustive()
    }
}

impl From<ReportedAppInfo> for AppInfo {
    fn from(r: ReportedAppInfo) -> Self {
        AppInfo {
            front_end_url: r.front_end_url,
            admin_url: r.admin_url,
            user_name: r.user_name,
            password: r.password,
            memo: r.memo,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no such instance")]
    NotFound,
    #[error("the instance is {0}, not waiting for provisioning")]
    NotProvisioning(&'static str),
    #[error("invalid app details: {0}")]
    Invalid(String),
    #[error("a password was reported but KOOGATE_MASTER_KEY is not set, so it cannot be stored encrypted")]
    NoMasterKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records what the app reports about provisioning.
#[derive(Clone)]
pub struct ProvisioningResults {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub cipher: Option<CredentialCipher>,
}

impl ProvisioningResults {
    /// The instance is ready: its app details are stored and `queryInstance` answers with them. Only an
    /// instance still provisioning (or failed) takes a result; debug instances are provisioned by
    /// koogate itself.
    pub async fn provisioned(&self, id: &InstanceId, app: AppInfo) -> Result<(), ReportError> {
        app.validate().map_err(|e| ReportError::Invalid(e.to_string()))?;
        let password_enc = match (&app.password, &self.cipher) {
            (None, _) => None,
            (Some(password), Some(cipher)) => Some(cipher.encrypt(password)),
            (Some(_), None) => return Err(ReportError::NoMasterKey),
        };
        let stored = StoredAppInfo {
            front_end_url: app.front_end_url,
            admin_url: app.admin_url,
            user_name: app.user_name,
            password_enc,
            memo: app.memo,
        };
        let mut tx = self.store.begin().await?;
        let instance = tx.instance(id).await?.ok_or(ReportError::NotFound)?;
        match instance.status {
            InstanceStatus::Provisioning | InstanceStatus::Failed => {}
            other => return Err(ReportError::NotProvisioning(other.as_str())),
        }
        tx.complete_provisioning(id, &stored, self.clock.now_ms()).await?;
        tx.commit().await?;
        tracing::info!(instance_id = %id, "provisioning reported complete");
        Ok(())
    }

    /// Provisioning failed: `queryInstance` reports it, and KooGallery's next `newInstance` for the order
    /// tries again.
    pub async fn failed(&self, id: &InstanceId, reason: &str) -> Result<(), ReportError> {
        if reason.trim().is_empty() || reason.chars().count() > 255 {
            return Err(ReportError::Invalid("the reason must be 1 to 255 characters".into()));
        }
        let mut tx = self.store.begin().await?;
        let instance = tx.instance(id).await?.ok_or(ReportError::NotFound)?;
        if instance.status != InstanceStatus::Provisioning {
            return Err(ReportError::NotProvisioning(instance.status.as_str()));
        }
        tx.fail_provisioning(id, reason, self.clock.now_ms()).await?;
        tx.commit().await?;
        tracing::warn!(instance_id = %id, reason, "provisioning reported failed");
        Ok(())
    }
}
