//! Debug calls (`testFlag=1`): verified and answered in full and deterministically, never touching a
//! real instance, and marked as tests in the audit log.

use koogate_protocol::messages::{Request, StatusChange, UpdateInstanceStatus};
use koogate_store::{CallbackQuery, InstanceStatus};

use crate::harness::{assert_well_formed, id, new_instance, spawn_app};

#[tokio::test]
async fn a_debug_purchase_is_answered_and_queryable_but_kept_apart() {
    let app = spawn_app().await;
    let created = app.send(new_instance("MOCKPERIODYEARNEW", "dbg-1", true)).await;
    assert_well_formed(&created, &app.key());
    assert_eq!(
        (created.result_code().as_deref(), created.instance_id().as_deref()),
        (Some("000000"), Some("dbg-1"))
    );
    let again = app.send(new_instance("MOCKPERIODYEARNEW", "dbg-2", true)).await;
    assert_eq!(again.instance_id().as_deref(), Some("dbg-1"), "debug calls are idempotent too");

    let queried = app.query(&["dbg-1"], true).await;
    assert_eq!(
        queried.json().unwrap()["info"][0]["appInfo"]["frontEndUrl"],
        "https://app.example.com/t/dbg-1"
    );

    let real = app.new_instance("MOCKPERIODYEARNEW", "real-1").await;
    assert_eq!(
        real.instance_id().as_deref(),
        Some("real-1"),
        "a real order is not answered with a debug instance"
    );
    let log = app.store.callbacks(&CallbackQuery::default()).await.unwrap();
    assert_eq!(log.iter().filter(|e| e.test).count(), 3);
}

#[tokio::test]
async fn a_debug_query_for_an_unknown_id_gets_a_deterministic_answer() {
    let app = spawn_app().await;
    let first = app.query(&["10e758d0-31ad-4c4b-8f1b-81d03469a10e"], true).await;
    let second = app.query(&["10e758d0-31ad-4c4b-8f1b-81d03469a10e"], true).await;
    assert_eq!(first.result_code().as_deref(), Some("000000"));
    assert_eq!(first.body, second.body);
    assert_eq!(
        first.json().unwrap()["info"][0]["appInfo"]["frontEndUrl"],
        "https://app.example.com/t/10e758d0-31ad-4c4b-8f1b-81d03469a10e"
    );
}

#[tokio::test]
async fn a_debug_freeze_naming_a_real_instance_changes_nothing() {
    let app = spawn_app().await;
    app.new_instance("T1", "real-t1").await;
    let freeze = Request::UpdateInstanceStatus(UpdateInstanceStatus {
        instance_id: id("real-t1"),
        status: StatusChange::Freeze,
        test: true,
    });
    assert_eq!(app.send(freeze).await.result_code().as_deref(), Some("000000"));
    assert_eq!(app.store.instance(&id("real-t1")).await.unwrap().unwrap().status, InstanceStatus::Active);
}

#[tokio::test]
async fn debug_changes_for_unknown_instances_succeed() {
    let app = spawn_app().await;
    for body in [
        serde_json::json!({"activity": "releaseInstance", "instanceId": "nobody", "testFlag": "1"}),
        serde_json::json!({"activity": "refreshInstance", "instanceId": "nobody", "orderId": "O", "orderLineId": "L",
                           "scene": "RENEWAL", "expireTime": "20221124023618256", "testFlag": "1"}),
    ] {
        let reply = app.sender.send_value(&body, &Default::default()).await.unwrap();
        assert_eq!(reply.result_code().as_deref(), Some("000000"), "{body}");
    }
}
