//! `queryInstance` (spec §6.2): the buyer-console hot path, answering up to 100 ids at once.

use koogate_protocol::messages::{AppInfo, InstanceInfo, QueryInstance};
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
                    _ => info
                        .push(InstanceInfo { instance_id: id.to_string(), app_info: self.open(instance)? }),
                },
                // A debug query always gets an answer, built from the templates.
                None if r.test => info.push(InstanceInfo {
                    instance_id: id.to_string(),
                    app_info: Some(self.template.public_app_info(id.as_str())),
                }),
                None => {}
            }
        }
        if !info.is_empty() {
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
