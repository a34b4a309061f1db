//! The activities that create and change instances: new, refresh, status, release, upgrade, and the
//! renewal-change check (spec §6 and the state machine of §9.2).
//!
//! Debug calls (`testFlag=1`) work on debug instances only, kept apart from real ones by the store's
//! keys. A debug call naming an instance that has no debug record is answered as if it had succeeded
//! and changes nothing, so saved debug cases replay deterministically.

use koogate_protocol::ids::{InstanceId, OrderId, OrderLineId};
use koogate_protocol::messages::{
    AppInfo, ChangeInstanceCheck, NewInstance, RefreshInstance, RefreshScene, ReleaseInstance, StatusChange,
    UpdateInstanceStatus, UpgradeInstance,
};
use koogate_protocol::{CallbackResponse, ResultCode};
use koogate_store::{Change, Instance, InstanceStatus, NewInstanceRecord, StoredAppInfo, Tx};
use serde_json::json;

use super::{Saas, ServiceError};
use crate::config::ChangeCheckPolicy;
use crate::events::{self, EventType};
use crate::order_fetch::{fetch_order_job, FetchReason};
use crate::provision::{ProvisionOutcome, ProvisionRequest};

impl Saas {
    pub(super) async fn new_instance(
        &self,
        tx: &mut Tx,
        r: &NewInstance,
    ) -> Result<CallbackResponse, ServiceError> {
        let now = self.clock.now_ms();
        // The first businessId of an order line becomes its instance id (spec §6.1).
        let candidate =
            InstanceId::parse(r.business_id.as_str()).expect("a business id is a valid instance id");
        let (instance, created) = match tx.insert_instance(&self.new_record(candidate, r, now)).await? {
            Some(instance) => (instance, true),
            None => match tx.instance_by_order(&r.order_id, &r.order_line_id, r.test).await? {
                Some(existing) => (existing, false),
                None => {
                    // The businessId is already another order line's instance id; ids must be globally
                    // unique, so this order line gets a fresh one.
                    let fresh = InstanceId::parse(&uuid_like_id()).expect("a generated id is valid");
                    match tx.insert_instance(&self.new_record(fresh, r, now)).await? {
                        Some(instance) => (instance, true),
                        None => {
                            let existing =
                                tx.instance_by_order(&r.order_id, &r.order_line_id, r.test).await?;
                            let existing = existing.ok_or_else(|| {
                                ServiceError::Store(koogate_store::StoreError::Corrupt(
                                    "the new instance is not readable".into(),
                                ))
                            })?;
                            (existing, false)
                        }
                    }
                }
            },
        };
        if created {
            tracing::info!(instance_id = %instance.instance_id, order_id = %r.order_id, test = r.test, "instance created");
            self.fetch_order(
                tx,
                &instance.instance_id,
                &r.order_id,
                &r.order_line_id,
                r.test,
                FetchReason::New,
                now,
            )
            .await?;
        }
        match instance.status {
            InstanceStatus::Provisioning if created => self.provision(tx, &instance, now).await,
            // The row is locked (PostgreSQL) or the writer is single (SQLite), so only one resend
            // provisions a failed instance again.
            InstanceStatus::Failed => {
                tx.retry_provisioning(&instance.instance_id, now).await?;
                self.provision(tx, &instance, now).await
            }
            // Accepted earlier and still being set up by the merchant's app.
            InstanceStatus::Provisioning => Ok(created_response(ResultCode::Processing, &instance, None)),
            _ => {
                let app = self.front_end_only(&instance);
                Ok(created_response(ResultCode::Success, &instance, app))
            }
        }
    }

    fn new_record(&self, instance_id: InstanceId, r: &NewInstance, now_ms: i64) -> NewInstanceRecord {
        NewInstanceRecord {
            instance_id,
            order_id: r.order_id.clone(),
            order_line_id: r.order_line_id.clone(),
            test: r.test,
            now_ms,
        }
    }

    async fn provision(
        &self,
        tx: &mut Tx,
        instance: &Instance,
        now: i64,
    ) -> Result<CallbackResponse, ServiceError> {
        let request = ProvisionRequest {
            instance_id: instance.instance_id.clone(),
            order_id: instance.order_id.clone(),
            order_line_id: instance.order_line_id.clone(),
            test: instance.test,
        };
        let outcome = if instance.test {
            crate::provision::Provisioner::provision(&self.template, &request).await
        } else {
            self.provisioner.provision(&request).await
        };
        let facts = |status: &str| json!({"order_id": instance.order_id, "order_line_id": instance.order_line_id, "status": status});
        match outcome {
            Ok(ProvisionOutcome::Ready(app)) => {
                let stored = self.seal(&app)?;
                tx.complete_provisioning(&instance.instance_id, &stored, now).await?;
                self.event(tx, EventType::Created, instance, facts("active"), now).await?;
                let shown = self.create_response_app_info(&app);
                Ok(created_response(ResultCode::Success, instance, shown))
            }
            Ok(ProvisionOutcome::Pending) => {
                self.event(tx, EventType::Created, instance, facts("provisioning"), now).await?;
                Ok(created_response(ResultCode::Processing, instance, None))
            }
            Err(error) => {
                tracing::warn!(instance_id = %instance.instance_id, %error, "provisioning failed");
                tx.fail_provisioning(&instance.instance_id, &error.message, now).await?;
                Err(error.into())
            }
        }
    }

    /// Writes a lifecycle event for the merchant's app in the callback's transaction, when the app hears
    /// events at all.
    async fn event(
        &self,
        tx: &mut Tx,
        event_type: EventType,
        instance: &Instance,
        facts: serde_json::Value,
        now_ms: i64,
    ) -> Result<(), ServiceError> {
        if self.settings.events {
            events::emit(tx, event_type, instance.instance_id.as_str(), instance.test, facts, now_ms).await?;
        }
        Ok(())
    }

    /// Enqueues the Query Order fetch for a real order line, in the callback's transaction, when Open API
    /// credentials are configured. Debug calls never fetch.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_order(
        &self,
        tx: &mut Tx,
        instance_id: &InstanceId,
        order_id: &OrderId,
        order_line_id: &OrderLineId,
        test: bool,
        reason: FetchReason,
        now_ms: i64,
    ) -> Result<(), ServiceError> {
        if self.settings.fetch_orders && !test {
            tx.enqueue_job(&fetch_order_job(instance_id, order_id, order_line_id, reason, now_ms)).await?;
        }
        Ok(())
    }

    /// Encrypts the password for storage. A password without a master key is refused rather than
    /// stored in clear.
    pub(crate) fn seal(&self, app: &AppInfo) -> Result<StoredAppInfo, ServiceError> {
        let password_enc = match (&app.password, &self.cipher) {
            (None, _) => None,
            (Some(password), Some(cipher)) => Some(cipher.encrypt(password)),
            (Some(_), None) => return Err(crate::crypto::CryptoError::BadMasterKey.into()),
        };
        Ok(StoredAppInfo {
            front_end_url: app.front_end_url.clone(),
            admin_url: app.admin_url.clone(),
            user_name: app.user_name.clone(),
            password_enc,
            memo: app.memo.clone(),
        })
    }

    /// The `appInfo` hedge in the create answer: the front-end URL only, never credentials.
    fn create_response_app_info(&self, app: &AppInfo) -> Option<AppInfo> {
        self.settings.create_response_app_info.then(|| AppInfo {
            front_end_url: app.front_end_url.clone(),
            admin_url: None,
            user_name: None,
            password: None,
            memo: None,
        })
    }

    fn front_end_only(&self, instance: &Instance) -> Option<AppInfo> {
        let stored = instance.app_info.as_ref()?;
        self.create_response_app_info(&AppInfo {
            front_end_url: stored.front_end_url.clone(),
            admin_url: None,
            user_name: None,
            password: None,
            memo: None,
        })
    }

    /// Looks up the instance a change names. Real calls on unknown or released instances get `000003`;
    /// `None` is a debug call about an instance with no (live) debug record: answer success, touch nothing.
    async fn target(
        &self,
        tx: &mut Tx,
        id: &InstanceId,
        test: bool,
    ) -> Result<Option<Instance>, ServiceError> {
        match tx.instance(id).await? {
            Some(instance) if instance.test == test => match (instance.status.is_gone(), test) {
                (false, _) => Ok(Some(instance)),
                // A debug instance that is gone: nothing to do, and debug calls always succeed.
                (true, true) => Ok(None),
                (true, false) => Err(ServiceError::InstanceReleased),
            },
            _ if test => Ok(None),
            _ => Err(ServiceError::InstanceNotFound),
        }
    }

    pub(super) async fn refresh_instance(
        &self,
        tx: &mut Tx,
        r: &RefreshInstance,
    ) -> Result<CallbackResponse, ServiceError> {
        let Some(instance) = self.target(tx, &r.instance_id, r.test).await? else {
            return Ok(success());
        };
        let now = self.clock.now_ms();
        let change = Change {
            instance_id: instance.instance_id.clone(),
            kind: "refresh",
            order_id: r.order_id.to_string(),
            order_line_id: r.order_line_id.to_string(),
            scene: r.scene.as_str().into(),
            expire_time_ms: Some(r.expire_time_ms),
            product_id: r.product_id.as_ref().map(|p| p.to_string()),
            now_ms: now,
        };
        // A redelivered refresh is not applied again: a late copy of an older renewal must not undo a
        // newer cancellation of that renewal.
        if tx.record_change(&change).await? {
            if r.scene == RefreshScene::RenewalChange {
                let reason = FetchReason::RenewalChange;
                self.fetch_order(
                    tx,
                    &instance.instance_id,
                    &r.order_id,
                    &r.order_line_id,
                    r.test,
                    reason,
                    now,
                )
                .await?;
            }
            let product = r.product_id.as_ref().map(|p| p.as_str());
            tx.set_expiry(&instance.instance_id, r.expire_time_ms, r.scene.as_str(), product, now).await?;
            let facts = json!({"scene": r.scene.as_str(), "expire_time": events::rfc3339(r.expire_time_ms),
                "order_id": r.order_id, "order_line_id": r.order_line_id, "product_id": r.product_id});
            self.event(tx, EventType::Renewed, &instance, facts, now).await?;
            tracing::info!(instance_id = %instance.instance_id, scene = r.scene.as_str(), expire_time = %r.expire_time, "expiry set");
        }
        Ok(success())
    }

    pub(super) async fn update_status(
        &self,
        tx: &mut Tx,
        r: &UpdateInstanceStatus,
    ) -> Result<CallbackResponse, ServiceError> {
        let Some(instance) = self.target(tx, &r.instance_id, r.test).await? else {
            return Ok(success());
        };
        let target = match (r.status, instance.status) {
            (StatusChange::Freeze, InstanceStatus::Frozen) => None,
            (StatusChange::Freeze, _) => Some(InstanceStatus::Frozen),
            (StatusChange::Unfreeze, InstanceStatus::Frozen) => {
                Some(if instance.app_info.is_some() {
                    InstanceStatus::Active
                } else {
                    // Frozen before provisioning finished: it goes back to waiting for the app.
                    InstanceStatus::Provisioning
                })
            }
            (StatusChange::Unfreeze, _) => None,
        };
        if let Some(status) = target {
            let now = self.clock.now_ms();
            tx.set_status(&instance.instance_id, status, now).await?;
            let event_type =
                if r.status == StatusChange::Freeze { EventType::Frozen } else { EventType::Unfrozen };
            self.event(tx, event_type, &instance, json!({}), now).await?;
            tracing::info!(instance_id = %instance.instance_id, status = status.as_str(), "status changed");
        }
        Ok(success())
    }

    pub(super) async fn release_instance(
        &self,
        tx: &mut Tx,
        r: &ReleaseInstance,
    ) -> Result<CallbackResponse, ServiceError> {
        // A repeated release of a released instance succeeds without doing anything (spec §6.5), so
        // this looks the instance up without the "released means 000003" rule of the other changes.
        let instance = match tx.instance(&r.instance_id).await? {
            Some(instance) if instance.test == r.test => instance,
            _ if r.test => return Ok(success()),
            _ => return Err(ServiceError::InstanceNotFound),
        };
        if instance.status.is_gone() {
            return Ok(success());
        }
        let now = self.clock.now_ms();
        let purge_after = now.saturating_add(self.settings.release_retention_ms);
        let order = r.order_id.as_ref().map(|o| o.as_str());
        tx.release(&instance.instance_id, order, purge_after, now).await?;
        let facts = json!({"refund": order.is_some(), "order_id": order, "purge_after": events::rfc3339(purge_after)});
        self.event(tx, EventType::Released, &instance, facts, now).await?;
        tx.enqueue_job(&crate::jobs::purge_job(&instance.instance_id, purge_after, now)).await?;
        tracing::info!(instance_id = %instance.instance_id, refund = order.is_some(), "instance released");
        Ok(success())
    }

    pub(super) async fn upgrade_instance(
        &self,
        tx: &mut Tx,
        r: &UpgradeInstance,
    ) -> Result<CallbackResponse, ServiceError> {
        let Some(instance) = self.target(tx, &r.instance_id, r.test).await? else {
            return Ok(success());
        };
        let change = Change {
            instance_id: instance.instance_id.clone(),
            kind: "upgrade",
            order_id: r.order_id.to_string(),
            order_line_id: r.order_line_id.to_string(),
            scene: String::new(),
            expire_time_ms: None,
            product_id: None,
            now_ms: self.clock.now_ms(),
        };
        if tx.record_change(&change).await? {
            tracing::info!(instance_id = %instance.instance_id, order_id = %r.order_id, "upgrade recorded");
            let now = change.now_ms;
            let facts = json!({"order_id": r.order_id, "order_line_id": r.order_line_id});
            self.event(tx, EventType::Upgraded, &instance, facts, now).await?;
            self.fetch_order(
                tx,
                &instance.instance_id,
                &r.order_id,
                &r.order_line_id,
                r.test,
                FetchReason::Upgrade,
                now,
            )
            .await?;
        }
        Ok(success())
    }

    pub(super) async fn change_check(
        &self,
        tx: &mut Tx,
        r: &ChangeInstanceCheck,
    ) -> Result<CallbackResponse, ServiceError> {
        self.target(tx, &r.instance_id, r.test).await?;
        match self.settings.change_check_policy {
            ChangeCheckPolicy::Accept => Ok(success()),
            ChangeCheckPolicy::Reject => {
                Err(ServiceError::ChangeRejected(self.settings.change_check_reject_code))
            }
        }
    }
}

fn success() -> CallbackResponse {
    CallbackResponse::code(ResultCode::Success)
}

fn created_response(code: ResultCode, instance: &Instance, app: Option<AppInfo>) -> CallbackResponse {
    let mut response = CallbackResponse::code(code);
    response.instance_id = Some(instance.instance_id.to_string());
    response.app_info = app;
    response
}

/// 32 random hex digits: a globally unique instance id for the rare case the businessId is taken.
fn uuid_like_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
