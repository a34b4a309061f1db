//! The provisioning seam: asynchronous provisioning (`000004`, reported later through `queryInstance`),
//! failures that KooGallery's retry provisions again, and a panicking provisioner.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use koogate_protocol::messages::AppInfo;
use koogate_protocol::ResultCode;
use koogate_server::provision::{ProvisionError, ProvisionOutcome, ProvisionRequest, Provisioner};
use koogate_store::{InstanceStatus, StoredAppInfo};

use crate::harness::{assert_well_formed, id, new_instance, spawn_with_provisioner};

/// Accepts every instance for later and counts how often it was asked.
#[derive(Default)]
struct Later {
    calls: AtomicUsize,
}

#[async_trait]
impl Provisioner for Later {
    async fn provision(&self, _: &ProvisionRequest) -> Result<ProvisionOutcome, ProvisionError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(ProvisionOutcome::Pending)
    }
}

#[tokio::test]
async fn asynchronous_provisioning_answers_000004_until_the_result_is_stored() {
    let provisioner = Arc::new(Later::default());
    let app = spawn_with_provisioner(provisioner.clone()).await;

    let created = app.new_instance("AS1", "as-1").await;
    assert_eq!(
        (created.result_code().as_deref(), created.instance_id().as_deref()),
        (Some("000004"), Some("as-1"))
    );
    let resent = app.new_instance("AS1", "as-1b").await;
    assert_eq!(
        (resent.result_code().as_deref(), resent.instance_id().as_deref()),
        (Some("000004"), Some("as-1"))
    );
    assert_eq!(provisioner.calls.load(Ordering::SeqCst), 1, "a resend does not provision again");
    let polled = app.query(&["as-1"], false).await;
    assert_well_formed(&polled, &app.key());
    assert_eq!(polled.result_code().as_deref(), Some("000004"));
    assert!(polled.json().unwrap().get("info").is_none());

    // The merchant's app finishes; its result lands in the store.
    let mut tx = app.store.begin().await.unwrap();
    let app_info = StoredAppInfo {
        front_end_url: "https://tenant.example.com".into(),
        admin_url: None,
        user_name: None,
        password_enc: None,
        memo: None,
    };
    tx.complete_provisioning(&id("as-1"), &app_info, 1).await.unwrap();
    tx.commit().await.unwrap();

    let ready = app.query(&["as-1"], false).await;
    assert_eq!(ready.result_code().as_deref(), Some("000000"));
    assert_eq!(ready.json().unwrap()["info"][0]["appInfo"]["frontEndUrl"], "https://tenant.example.com");
    let resent = app.new_instance("AS1", "as-1c").await;
    assert_eq!(resent.result_code().as_deref(), Some("000000"));
}

#[tokio::test]
async fn debug_calls_are_provisioned_synchronously_even_with_an_asynchronous_provisioner() {
    let provisioner = Arc::new(Later::default());
    let app = spawn_with_provisioner(provisioner.clone()).await;
    let reply = app.send(new_instance("MOCKONETIMENEW", "dbg", true)).await;
    assert_eq!(reply.result_code().as_deref(), Some("000000"));
    assert_eq!(provisioner.calls.load(Ordering::SeqCst), 0);
}

/// Out of capacity on the first call, fine afterwards.
#[derive(Default)]
struct FailsOnce {
    calls: AtomicUsize,
}

#[async_trait]
impl Provisioner for FailsOnce {
    async fn provision(&self, request: &ProvisionRequest) -> Result<ProvisionOutcome, ProvisionError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(ProvisionError {
                code: ResultCode::NoResource,
                message: "no tenant slot left".into(),
            });
        }
        Ok(ProvisionOutcome::Ready(AppInfo {
            front_end_url: format!("https://t.example.com/{}", request.instance_id),
            admin_url: None,
            user_name: None,
            password: None,
            memo: None,
        }))
    }
}

#[tokio::test]
async fn a_failed_provisioning_is_reported_and_provisioned_again_on_the_retry() {
    let app = spawn_with_provisioner(Arc::new(FailsOnce::default())).await;
    let failed = app.new_instance("PF1", "pf-1").await;
    assert_eq!(failed.result_code().as_deref(), Some("000100"));
    assert_eq!(failed.result_msg().as_deref(), Some("no tenant slot left"));
    let stored = app.store.instance(&id("pf-1")).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.provision_error.as_deref()),
        (InstanceStatus::Failed, Some("no tenant slot left"))
    );
    assert_eq!(app.query(&["pf-1"], false).await.result_code().as_deref(), Some("000005"));

    let retried = app.new_instance("PF1", "pf-1-retry").await;
    assert_eq!(
        (retried.result_code().as_deref(), retried.instance_id().as_deref()),
        (Some("000000"), Some("pf-1"))
    );
    assert_eq!(app.store.instance(&id("pf-1")).await.unwrap().unwrap().status, InstanceStatus::Active);
}

struct Panics;

#[async_trait]
impl Provisioner for Panics {
    async fn provision(&self, _: &ProvisionRequest) -> Result<ProvisionOutcome, ProvisionError> {
        panic!("provisioner bug")
    }
}

#[tokio::test]
async fn a_panicking_handler_still_gets_a_signed_000005_and_changes_nothing() {
    let app = spawn_with_provisioner(Arc::new(Panics)).await;
    let reply = app.new_instance("PN1", "pn-1").await;
    assert_well_formed(&reply, &app.key());
    assert_eq!(reply.result_code().as_deref(), Some("000005"));
    assert_eq!(app.store.count_instances_for_order("PN1", "PN1-000001").await.unwrap(), 0);
}
