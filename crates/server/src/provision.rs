//! The provisioning seam: how a new instance gets the app details the buyer needs.
//!
//! A [`Provisioner`] either completes at once ([`ProvisionOutcome::Ready`], answered `000000`) or
//! accepts the work for later ([`ProvisionOutcome::Pending`], answered `000004`; the result then arrives
//! through the store and `queryInstance` reports it). The template provisioner below is the default.

use async_trait::async_trait;
use koogate_protocol::ids::{InstanceId, OrderId, OrderLineId};
use koogate_protocol::messages::AppInfo;
use koogate_protocol::ResultCode;
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::crypto::generate_password;

/// What a provisioner is asked to set up.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    pub instance_id: InstanceId,
    pub order_id: OrderId,
    pub order_line_id: OrderLineId,
    /// A debug call from the Seller Console or a dial test.
    pub test: bool,
}

#[derive(Debug, Clone)]
pub enum ProvisionOutcome {
    /// Provisioned; these are the buyer's details (password in plain text, encrypted before storing).
    Ready(AppInfo),
    /// Accepted; the result will be reported later.
    Pending,
}

/// Provisioning failed. `code` is what KooGallery is told (for example `000100` when no resource is
/// left); the message is recorded with the instance and returned as `resultMsg`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProvisionError {
    pub code: ResultCode,
    pub message: String,
}

/// Sets up the merchant's app for a new instance, inside the callback's transaction.
///
/// `provision` may be called more than once for the same order line: when KooGallery resends a call
/// whose answer it did not get, and on SQLite when another callback committed in the same batch fails
/// and the batch is run again one callback at a time (see `Store::write`). An implementation with
/// effects outside koogate must make them idempotent (keyed by the order line), or answer `Pending` and
/// do the work from the event it then receives.
#[async_trait]
pub trait Provisioner: Send + Sync + 'static {
    async fn provision(&self, request: &ProvisionRequest) -> Result<ProvisionOutcome, ProvisionError>;
}

/// Fills URL and account templates, substituting `{instance_id}`, and completes at once. With an admin
/// user name configured it generates a fresh password per instance.
#[derive(Debug, Clone)]
pub struct TemplateProvisioner {
    front_end_url: String,
    admin_url: Option<String>,
    admin_user_name: Option<String>,
    memo: Option<String>,
}

impl TemplateProvisioner {
    pub fn from_config(config: &Config) -> Option<Self> {
        Some(Self {
            front_end_url: config.front_end_url.clone()?,
            admin_url: config.admin_url.clone(),
            admin_user_name: config.admin_user_name.clone(),
            memo: config.memo.clone(),
        })
    }

    /// The details for an instance, without a password. Debug calls for instances that do not exist
    /// are answered with this, so their answer is the same every time.
    pub fn public_app_info(&self, instance_id: &str) -> AppInfo {
        let fill = |template: &String| template.replace("{instance_id}", instance_id);
        AppInfo {
            front_end_url: fill(&self.front_end_url),
            admin_url: self.admin_url.as_ref().map(fill),
            user_name: None,
            password: None,
            memo: self.memo.clone(),
        }
    }
}

#[async_trait]
impl Provisioner for TemplateProvisioner {
    async fn provision(&self, request: &ProvisionRequest) -> Result<ProvisionOutcome, ProvisionError> {
        let instance_id = request.instance_id.as_str();
        let mut app = self.public_app_info(instance_id);
        if let Some(user) = &self.admin_user_name {
            app.user_name = Some(user.replace("{instance_id}", instance_id));
            app.password = Some(generate_password().expose_secret().to_owned());
        }
        app.validate().map_err(|e| ProvisionError {
            code: ResultCode::InternalError,
            message: format!("the configured app details are invalid: {e}"),
        })?;
        Ok(ProvisionOutcome::Ready(app))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str) -> ProvisionRequest {
        ProvisionRequest {
            instance_id: InstanceId::parse(id).unwrap(),
            order_id: OrderId::parse("o").unwrap(),
            order_line_id: OrderLineId::parse("l").unwrap(),
            test: false,
        }
    }

    #[tokio::test]
    async fn templates_substitute_the_instance_id_and_generate_passwords() {
        let provisioner = TemplateProvisioner {
            front_end_url: "https://app/{instance_id}".into(),
            admin_url: Some("https://admin/{instance_id}".into()),
            admin_user_name: Some("admin-{instance_id}".into()),
            memo: None,
        };
        let ProvisionOutcome::Ready(app) = provisioner.provision(&request("i1")).await.unwrap() else {
            panic!("the template provisioner completes at once")
        };
        assert_eq!(app.front_end_url, "https://app/i1");
        assert_eq!(app.admin_url.as_deref(), Some("https://admin/i1"));
        assert_eq!(app.user_name.as_deref(), Some("admin-i1"));
        assert_eq!(app.password.as_ref().map(String::len), Some(16));
    }

    #[tokio::test]
    async fn an_over_long_url_is_a_provisioning_error() {
        let provisioner = TemplateProvisioner {
            front_end_url: format!("https://{}", "a".repeat(600)),
            admin_url: None,
            admin_user_name: None,
            memo: None,
        };
        assert!(provisioner.provision(&request("i")).await.is_err());
    }
}
