//! `queryInstance` (spec §6.2): the buyer-console hot path, answering up to 100 ids at once.

use koogate_protocol::datetime::format_compact_utc_millis;
use koogate_protocol::messages::{AppInfo, InstanceInfo, QueryInstance, UsageInfo};
use koogate_protocol::usage::quantity_json;
use koogate_protocol::{CallbackResponse, ResultCode};
use koogate_store::{Instance, InstanceStatus, Tx};
use secrecy::ExposeSecret;

use super::{Saas, ServiceError};

impl Saas {
    /// Known ids that are ready are answered with their app details, in the order asked. Unknown ids
    /// are left out; if none is known the answer is `000003`. While provisioning is still running and
    /// nothing is ready the answer is `000004`, so KooGallery keeps polling (spec §6.2 UNCONFIRMED
    /// points, following its recommendation).
    pub(super) async fn query_instance(
        &self,
        tx: &mut Tx,
        r: &QueryInstance,
    ) -> Result<CallbackResponse, ServiceError> {
        let found = tx.instances(&r.instance_ids).await?;
        let mut info = Vec::with_capacity(r.instance_ids.len());
        let (mut pending, mut failed) = (0, None);
        for id in &r.instance_ids {
            let instance = found.iter().find(|i| &i.instance_id == id && i.test == r.test);
            match instance {
                Some(instance) => match instance.status {
                    InstanceStatus::Provisioning => pending += 1,
                    InstanceStatus::Failed => {
                        failed = instance.provision_error.clone().or(Some(String::new()))
                    }
                    InstanceStatus::Purged => {}
                    _ => info.push(InstanceInfo {
                        instance_id: id.to_string(),
                        app_info: self.open(instance)?,
                        usage_info: None,
                    }),
                },
                // A debug query always gets an answer, built from the templates.
                None if r.test => info.push(InstanceInfo {
                    instance_id: id.to_string(),
                    app_info: Some(self.template.public_app_info(id.as_str())),
                    usage_info: None,
                }),
                None => {}
            }
        }
        if !info.is_empty() {
            self.attach_usage(tx, &mut info, &found).await?;
            let mut response = CallbackResponse::code(ResultCode::Success);
            response.info = Some(info);
            return Ok(response);
        }
        if pending > 0 {
            return Ok(CallbackResponse::code(ResultCode::Processing));
        }
        if let Some(reason) = failed {
            return Ok(CallbackResponse::with_message(
                ResultCode::InternalError,
                format!("provisioning failed: {reason}"),
            ));
        }
        Err(ServiceError::InstanceNotFound)
    }

    /// Adds `usageInfo`: the cumulative usage of pay-per-use instances (any instance with metered usage
    /// or charged `ON_DEMAND`), and for packages the amount used per pay-per-use instance (§6.2, §7).
    async fn attach_usage(
        &self,
        tx: &mut Tx,
        info: &mut [InstanceInfo],
        found: &[Instance],
    ) -> Result<(), ServiceError> {
        let now = format_compact_utc_millis(self.clock.now_ms());
        let ids: Vec<&str> = info.iter().map(|i| i.instance_id.as_str()).collect();
        let koogate_store::UsageOverview { totals, packages } = tx.usage_overview(&ids).await?;
        for entry in info.iter_mut() {
            let mode = found
                .iter()
                .find(|i| i.instance_id.as_str() == entry.instance_id)
                .and_then(|i| i.charging_mode.as_deref());
            let usage = |related: Option<String>, units: i64| UsageInfo {
                related_instance_id: related,
                usage_value: quantity_json(units),
                statistical_time: now.clone(),
            };
            if packages.contains(&entry.instance_id) {
                let consumers = tx.package_consumers(&entry.instance_id).await?;
                if !consumers.is_empty() {
                    entry.usage_info = Some(
                        consumers.into_iter().map(|(related, units)| usage(Some(related), units)).collect(),
                    );
                }
            } else if let Some(units) =
                totals.get(&entry.instance_id).copied().or((mode == Some("ON_DEMAND")).then_some(0))
            {
                entry.usage_info = Some(vec![usage(None, units)]);
            }
        }
        Ok(())
    }

    /// The stored app details with the password decrypted, ready to send.
    fn open(&self, instance: &Instance) -> Result<Option<AppInfo>, ServiceError> {
        let Some(stored) = &instance.app_info else {
            return Ok(None);
        };
        let password = match (&stored.password_enc, &self.cipher) {
            (None, _) => None,
            (Some(sealed), Some(cipher)) => Some(cipher.decrypt(sealed)?.expose_secret().to_owned()),
            (Some(_), None) => return Err(crate::crypto::CryptoError::Decrypt.into()),
        };
        Ok(Some(AppInfo {
            front_end_url: stored.front_end_url.clone(),
            admin_url: stored.admin_url.clone(),
            user_name: stored.user_name.clone(),
            password,
            memo: stored.memo.clone(),
        }))
    }
}
