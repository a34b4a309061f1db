//! The basic interfaces in the order the platform uses them, and their idempotency.

use koogate_protocol::ids::{OrderId, OrderLineId, ProductId};
use koogate_protocol::messages::{
    ChangeInstanceCheck, ProductInfo, RefreshInstance, RefreshScene, ReleaseInstance, Request, StatusChange,
    UpdateInstanceStatus, UpgradeInstance,
};
use koogate_store::InstanceStatus;
use serde_json::json;

use crate::harness::{assert_well_formed, id, spawn_app, spawn_with};

fn refresh(instance: &str, order: &str, scene: RefreshScene, expire: &str) -> Request {
    Request::RefreshInstance(RefreshInstance {
        instance_id: id(instance),
        order_id: OrderId::parse(order).unwrap(),
        order_line_id: OrderLineId::parse(&format!("{order}-000001")).unwrap(),
        scene,
        product_id: Some(ProductId::parse("OFFI461867333479178240").unwrap()),
        expire_time_ms: 0,
        expire_time: expire.into(),
        test: false,
    })
}

fn status(instance: &str, status: StatusChange) -> Request {
    Request::UpdateInstanceStatus(UpdateInstanceStatus { instance_id: id(instance), status, test: false })
}

fn release(instance: &str, order: Option<&str>) -> Request {
    Request::ReleaseInstance(ReleaseInstance {
        instance_id: id(instance),
        order_id: order.map(|o| OrderId::parse(o).unwrap()),
        order_line_id: None,
        test: false,
    })
}

#[tokio::test]
async fn a_customer_lifecycle_is_answered_and_recorded_at_every_step() {
    let app = spawn_app().await;
    let key = app.key();

    let created = app.new_instance("CS1", "biz-1").await;
    assert_well_formed(&created, &key);
    assert_eq!(created.result_code().as_deref(), Some("000000"));
    assert_eq!(created.instance_id().as_deref(), Some("biz-1"));
    assert_eq!(created.json().unwrap()["appInfo"], json!({"frontEndUrl": "https://app.example.com/t/biz-1"}));

    let queried = app.query(&["biz-1"], false).await;
    assert_well_formed(&queried, &key);
    let info = &queried.json().unwrap()["info"][0];
    assert_eq!(info["instanceId"], "biz-1");
    assert_eq!(info["appInfo"]["frontEndUrl"], "https://app.example.com/t/biz-1");
    assert_eq!(info["appInfo"]["adminUrl"], "https://admin.example.com/biz-1");
    assert_eq!(info["appInfo"]["userName"], "admin");
    assert_eq!(info["appInfo"]["password"].as_str().map(str::len), Some(16));
    assert_eq!(info["appInfo"]["memo"], "登录后请修改密码");
    assert!(String::from_utf8_lossy(&queried.body).contains(r"\u767b\u5f55"), "memo must be \\u-escaped");

    let renewed = app.send(refresh("biz-1", "CS2", RefreshScene::Renewal, "20301124023618256")).await;
    assert_well_formed(&renewed, &key);
    assert_eq!(renewed.result_code().as_deref(), Some("000000"));
    let stored = app.store.instance(&id("biz-1")).await.unwrap().unwrap();
    assert_eq!(stored.expire_time_ms, Some(1_921_718_178_256));
    assert_eq!(stored.last_scene.as_deref(), Some("RENEWAL"));
    assert_eq!(stored.product_id.as_deref(), Some("OFFI461867333479178240"));

    for (change, expected) in [
        (StatusChange::Freeze, InstanceStatus::Frozen),
        (StatusChange::Freeze, InstanceStatus::Frozen),
        (StatusChange::Unfreeze, InstanceStatus::Active),
    ] {
        let reply = app.send(status("biz-1", change)).await;
        assert_eq!(reply.result_code().as_deref(), Some("000000"));
        assert_eq!(app.store.instance(&id("biz-1")).await.unwrap().unwrap().status, expected);
    }

    let upgrade = Request::UpgradeInstance(UpgradeInstance {
        instance_id: id("biz-1"),
        order_id: OrderId::parse("UP1").unwrap(),
        order_line_id: OrderLineId::parse("UP1-000001").unwrap(),
        test: false,
    });
    assert_eq!(app.send(upgrade.clone()).await.result_code().as_deref(), Some("000000"));
    assert_eq!(app.send(upgrade).await.result_code().as_deref(), Some("000000"));

    let check = Request::ChangeInstanceCheck(ChangeInstanceCheck {
        instance_id: id("biz-1"),
        product_info: ProductInfo {
            product_id: ProductId::parse("P2").unwrap(),
            sku_code: "sku".into(),
            linear_value: Some(10),
            product_name: Some("基础版".into()),
        },
        test: false,
    });
    assert_eq!(app.send(check).await.result_code().as_deref(), Some("000000"));

    let released = app.send(release("biz-1", Some("REFUND1"))).await;
    assert_well_formed(&released, &key);
    assert_eq!(released.result_code().as_deref(), Some("000000"));
    let again = app.send(release("biz-1", None)).await;
    assert_eq!(again.result_code().as_deref(), Some("000000"), "a repeated release succeeds");
    let stored = app.store.instance(&id("biz-1")).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.release_order_id.as_deref()),
        (InstanceStatus::Released, Some("REFUND1"))
    );

    let after = app.send(status("biz-1", StatusChange::Freeze)).await;
    assert_eq!(after.result_code().as_deref(), Some("000003"), "a released instance takes no changes");
}

#[tokio::test]
async fn a_resent_new_instance_returns_the_first_instance_id() {
    let app = spawn_app().await;
    let first = app.new_instance("CS3", "biz-first").await;
    let second = app.new_instance("CS3", "biz-second").await;
    assert_eq!(first.instance_id().as_deref(), Some("biz-first"));
    assert_eq!(second.instance_id().as_deref(), Some("biz-first"));
    assert_eq!(second.result_code().as_deref(), Some("000000"));
    assert_eq!(app.store.count_instances_for_order("CS3", "CS3-000001").await.unwrap(), 1);
    // The password of the first provisioning stays; nothing is provisioned twice.
    let before = app.query(&["biz-first"], false).await.json().unwrap();
    app.new_instance("CS3", "biz-third").await;
    assert_eq!(app.query(&["biz-first"], false).await.json().unwrap(), before);
}

#[tokio::test]
async fn fifty_concurrent_duplicates_create_one_instance() {
    let app = spawn_app().await;
    let replies =
        futures_join_all((0..50).map(|i| {
            let sender = app.sender.clone();
            async move {
                sender.send(&crate::harness::new_instance("CS4", &format!("dup-{i}"), false)).await.unwrap()
            }
        }))
        .await;
    let ids: std::collections::HashSet<_> = replies.iter().map(|r| r.instance_id().unwrap()).collect();
    assert_eq!(ids.len(), 1, "every answer carries the same instanceId: {ids:?}");
    assert!(replies.iter().all(|r| r.result_code().as_deref() == Some("000000")));
    assert_eq!(app.store.count_instances_for_order("CS4", "CS4-000001").await.unwrap(), 1);
}

/// Runs futures concurrently on the runtime and collects their outputs in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_redelivered_renewal_does_not_undo_a_later_cancellation() {
    let app = spawn_app().await;
    app.new_instance("CS5", "biz-5").await;
    app.send(refresh("biz-5", "R1", RefreshScene::Renewal, "20310101000000")).await;
    app.send(refresh("biz-5", "U1", RefreshScene::UnsubscribeRenewalPeriod, "20300101000000")).await;
    let late = app.send(refresh("biz-5", "R1", RefreshScene::Renewal, "20310101000000")).await;
    assert_eq!(late.result_code().as_deref(), Some("000000"));
    let stored = app.store.instance(&id("biz-5")).await.unwrap().unwrap();
    assert_eq!(stored.expire_time_ms, Some(1_893_456_000_000), "expiry stays at the cancellation's value");
    assert_eq!(stored.last_scene.as_deref(), Some("UNSUBSCRIBE_RENEWAL_PERIOD"));
}

#[tokio::test]
async fn a_frozen_instance_can_be_renewed_and_then_unfrozen() {
    let app = spawn_app().await;
    app.new_instance("CS6", "biz-6").await;
    app.send(status("biz-6", StatusChange::Freeze)).await;
    let renewed = app.send(refresh("biz-6", "R6", RefreshScene::Renewal, "20320101000000")).await;
    assert_eq!(renewed.result_code().as_deref(), Some("000000"));
    assert_eq!(app.store.instance(&id("biz-6")).await.unwrap().unwrap().status, InstanceStatus::Frozen);
    app.send(status("biz-6", StatusChange::Unfreeze)).await;
    assert_eq!(app.store.instance(&id("biz-6")).await.unwrap().unwrap().status, InstanceStatus::Active);
}

#[tokio::test]
async fn released_instances_are_purged_after_retention_and_never_recreated() {
    let app = spawn_app().await;
    app.new_instance("CS7", "biz-7").await;
    app.send(release("biz-7", None)).await;
    let retention = app.config.release_retention.as_millis() as i64;

    app.clock.advance_ms(retention - 1);
    assert_eq!(app.drain_jobs().await, 0, "not due yet");
    app.clock.advance_ms(1);
    assert_eq!(app.drain_jobs().await, 1);

    let purged = app.store.instance(&id("biz-7")).await.unwrap().unwrap();
    assert_eq!((purged.status, purged.app_info), (InstanceStatus::Purged, None));
    assert_eq!(app.query(&["biz-7"], false).await.result_code().as_deref(), Some("000003"));
    let resent = app.new_instance("CS7", "biz-7-late").await;
    assert_eq!(resent.instance_id().as_deref(), Some("biz-7"), "the order line keeps its one instance");
    assert_eq!(app.store.count_instances_for_order("CS7", "CS7-000001").await.unwrap(), 1);
}

#[tokio::test]
async fn a_rejecting_change_policy_answers_the_configured_code() {
    let app = spawn_with(|c| {
        c.change_check_policy = koogate_server::config::ChangeCheckPolicy::Reject;
        c.change_check_reject_code = "000100".into();
    })
    .await;
    app.new_instance("CS8", "biz-8").await;
    let check = Request::ChangeInstanceCheck(ChangeInstanceCheck {
        instance_id: id("biz-8"),
        product_info: ProductInfo {
            product_id: ProductId::parse("P").unwrap(),
            sku_code: "s".into(),
            linear_value: None,
            product_name: None,
        },
        test: false,
    });
    assert_eq!(app.send(check).await.result_code().as_deref(), Some("000100"));
}

#[tokio::test]
async fn passwords_are_stored_encrypted() {
    let app = spawn_app().await;
    app.new_instance("CS9", "biz-9").await;
    let password = app.query(&["biz-9"], false).await.json().unwrap()["info"][0]["appInfo"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = app.store.instance(&id("biz-9")).await.unwrap().unwrap();
    let sealed = stored.app_info.unwrap().password_enc.unwrap();
    assert!(!sealed.windows(password.len()).any(|w| w == password.as_bytes()));
    let log = app.store.callbacks(&koogate_store::CallbackQuery::default()).await.unwrap();
    assert!(
        log.iter().all(|e| !e.response_body.windows(password.len()).any(|w| w == password.as_bytes())),
        "the audit log never holds the plain password"
    );
    assert!(String::from_utf8_lossy(&log[0].response_body).contains("[REDACTED]"));
}

#[tokio::test]
async fn state_survives_a_restart() {
    let app = spawn_app().await;
    app.new_instance("CS10", "biz-10").await;
    let before = app.query(&["biz-10"], false).await.json().unwrap();
    let app = app.restart().await;
    assert_eq!(app.query(&["biz-10"], false).await.json().unwrap(), before);
    let resent = app.new_instance("CS10", "biz-10-again").await;
    assert_eq!(resent.instance_id().as_deref(), Some("biz-10"));
}
