//! The merchant-app integration: signed lifecycle webhooks from the transactional outbox, retries on a
//! manual clock, dead deliveries and replay, asynchronous provisioning, and the REST API.

use std::collections::HashSet;
use std::time::Duration;

use koogate_protocol::ids::{OrderId, OrderLineId, ProductId};
use koogate_protocol::messages::{
    RefreshInstance, RefreshScene, ReleaseInstance, Request, StatusChange, UpdateInstanceStatus,
    UpgradeInstance,
};
use koogate_server::config::ProvisionerKind;
use koogate_server::delivery::DeliveryOutcome;
use koogate_simulator::app_receiver::AppReply;
use serde_json::{json, Value};

use crate::harness::{id, new_instance, spawn_with_app, TestApp};

fn lifecycle_calls(instance: &str) -> Vec<Request> {
    let order = |o: &str| OrderId::parse(o).unwrap();
    let line = |o: &str| OrderLineId::parse(&format!("{o}-000001")).unwrap();
    vec![
        Request::RefreshInstance(RefreshInstance {
            instance_id: id(instance),
            order_id: order("REN1"),
            order_line_id: line("REN1"),
            scene: RefreshScene::Renewal,
            product_id: Some(ProductId::parse("P-YEAR").unwrap()),
            expire_time_ms: 0,
            expire_time: "20301124023618".into(),
            test: false,
        }),
        Request::UpdateInstanceStatus(UpdateInstanceStatus {
            instance_id: id(instance),
            status: StatusChange::Freeze,
            test: false,
        }),
        Request::UpdateInstanceStatus(UpdateInstanceStatus {
            instance_id: id(instance),
            status: StatusChange::Unfreeze,
            test: false,
        }),
        Request::UpgradeInstance(UpgradeInstance {
            instance_id: id(instance),
            order_id: order("UPG9"),
            order_line_id: line("UPG9"),
            test: false,
        }),
        Request::ReleaseInstance(ReleaseInstance {
            instance_id: id(instance),
            order_id: Some(order("REFUND9")),
            order_line_id: None,
            test: false,
        }),
    ]
}

#[tokio::test]
async fn each_lifecycle_call_produces_exactly_one_signed_event_in_order() {
    let (app, receiver) = spawn_with_app(|_| {}).await;
    app.new_instance("WH1", "wh-1").await;
    app.new_instance("WH1", "wh-1-again").await;
    for call in lifecycle_calls("wh-1") {
        // Every call is delivered twice, as KooGallery's retries would.
        assert_eq!(app.send(call.clone()).await.result_code().as_deref(), Some("000000"));
        app.send(call).await;
    }
    assert_eq!(app.drain_deliveries().await, 6);
    app.clock.advance_ms(app.config.release_retention.as_millis() as i64);
    assert_eq!(app.drain_jobs().await, 1);
    assert_eq!(app.drain_deliveries().await, 1);

    let received = receiver.received();
    let types: Vec<&str> = received.iter().map(|r| r.event_type()).collect();
    assert_eq!(
        types,
        [
            "instance.created",
            "instance.renewed",
            "instance.frozen",
            "instance.unfrozen",
            "instance.upgraded",
            "instance.released",
            "instance.purged"
        ]
    );
    assert!(received.iter().all(|r| r.verified), "every signature verifies");
    assert_eq!(received.iter().map(|r| r.id.clone()).collect::<HashSet<_>>().len(), 7, "one event per id");
    let renewed = &received[1].body["data"];
    assert_eq!(
        (renewed["scene"].as_str(), renewed["expire_time"].as_str()),
        (Some("RENEWAL"), Some("2030-11-24T02:36:18.000Z"))
    );
    assert_eq!(received[0].body["data"]["status"], "active");
    assert_eq!(received[5].body["data"]["refund"], true);
    assert!(received
        .iter()
        .all(|r| r.body["data"]["instance_id"] == "wh-1" && r.body["data"]["test"] == false));
}

#[tokio::test]
async fn debug_calls_produce_events_marked_as_tests() {
    let (app, receiver) = spawn_with_app(|_| {}).await;
    app.send(new_instance("MOCKPERIODYEARNEW", "wh-dbg", true)).await;
    app.drain_deliveries().await;
    assert_eq!(receiver.received()[0].body["data"]["test"], true);
}

async fn next_retry(app: &TestApp) -> i64 {
    match app.deliver().await {
        DeliveryOutcome::Retried { next_attempt_at_ms, .. } => next_attempt_at_ms,
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried_with_the_same_id_until_delivered() {
    let (app, receiver) = spawn_with_app(|c| c.app_webhook_timeout = Duration::from_millis(300)).await;
    receiver.reply_with(AppReply::Status(500));
    receiver.reply_with(AppReply::Delay(Duration::from_secs(2)));
    receiver.reply_with(AppReply::Status(200));
    app.new_instance("WH2", "wh-2").await;

    let first = app.clock.now();
    let retry_at = next_retry(&app).await;
    assert!(retry_at - first >= 4_500, "the first wait is about 5 s");
    assert_eq!(app.deliver().await, DeliveryOutcome::Idle, "nothing before the retry time");
    app.clock.set(retry_at);
    let retry_at = next_retry(&app).await;
    app.clock.set(retry_at);
    assert!(matches!(app.deliver().await, DeliveryOutcome::Delivered { .. }));

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.verified && r.id == received[0].id), "same id, fresh valid signature");
    assert_ne!(received[0].timestamp, received[2].timestamp);
    assert_eq!(received[0].body, received[2].body, "the same body every time");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (app, receiver) = spawn_with_app(|_| {}).await;
    receiver.reply_with(AppReply::RetryAfter(503, 3_600));
    app.new_instance("WH3", "wh-3").await;
    let now = app.clock.now();
    assert!(next_retry(&app).await >= now + 3_600_000);
}

#[tokio::test]
async fn after_the_last_attempt_the_delivery_is_dead_and_a_replay_delivers_it() {
    let (app, receiver) = spawn_with_app(|c| c.delivery_schedule = "1s,1s".into()).await;
    for _ in 0..3 {
        receiver.reply_with(AppReply::Status(500));
    }
    app.new_instance("WH4", "wh-4").await;
    for _ in 0..2 {
        let at = next_retry(&app).await;
        app.clock.set(at);
    }
    let DeliveryOutcome::Dead { event_id } = app.deliver().await else {
        panic!("dead after the last attempt")
    };
    app.clock.advance_ms(86_400_000);
    assert_eq!(app.deliver().await, DeliveryOutcome::Idle, "a dead delivery is not retried by itself");

    let token = app.token().await;
    let dead: Value = app.api_get("/api/v1/deliveries?state=dead", &token).await.json().await.unwrap();
    assert_eq!(dead["items"][0]["event_id"], event_id.as_str());
    assert_eq!(
        (dead["items"][0]["attempts"].as_i64(), dead["items"][0]["last_status"].as_i64()),
        (Some(3), Some(500))
    );

    let replay = app.api_post(&format!("/api/v1/deliveries/{event_id}/replay"), &token, json!({})).await;
    assert_eq!(replay.status(), 202);
    assert_eq!(app.drain_deliveries().await, 1);
    let received = receiver.received();
    assert_eq!((received.len(), received[3].id.as_str()), (4, event_id.as_str()));
    let again = app.api_post(&format!("/api/v1/deliveries/{event_id}/replay"), &token, json!({})).await;
    assert_eq!(again.status(), 202, "a delivered event can be sent again too");
    assert_eq!(app.api_post("/api/v1/deliveries/msg_nope/replay", &token, json!({})).await.status(), 404);
}

#[tokio::test]
async fn asynchronous_provisioning_end_to_end_through_the_api() {
    let (app, receiver) = spawn_with_app(|c| c.provisioner = ProvisionerKind::Webhook).await;
    let created = app.new_instance("AP1", "ap-1").await;
    assert_eq!(created.result_code().as_deref(), Some("000004"));
    assert_eq!(app.query(&["ap-1"], false).await.result_code().as_deref(), Some("000004"));
    assert_eq!(app.drain_deliveries().await, 1);
    assert_eq!(receiver.received()[0].body["data"]["status"], "provisioning");
    assert_eq!(
        app.query(&["ap-1"], false).await.result_code().as_deref(),
        Some("000004"),
        "the app answered without details"
    );

    let token = app.token().await;
    let report = json!({"frontEndUrl": "https://tenant-ap1.example.com", "userName": "owner", "password": "S3cret!pass"});
    assert_eq!(
        app.api_post("/api/v1/instances/ap-1/provisioned", &token, report.clone()).await.status(),
        204
    );
    let ready = app.query(&["ap-1"], false).await;
    assert_eq!(ready.result_code().as_deref(), Some("000000"));
    let info = &ready.json().unwrap()["info"][0]["appInfo"];
    assert_eq!(
        (info["frontEndUrl"].as_str(), info["password"].as_str()),
        (Some("https://tenant-ap1.example.com"), Some("S3cret!pass"))
    );
    let stored = app.store.instance(&id("ap-1")).await.unwrap().unwrap().app_info.unwrap();
    assert!(!stored.password_enc.unwrap().windows(6).any(|w| w == b"S3cret"), "encrypted at rest");
    assert_eq!(app.api_post("/api/v1/instances/ap-1/provisioned", &token, report).await.status(), 409);
}

#[tokio::test]
async fn the_app_can_answer_instance_created_with_its_details() {
    let (app, receiver) = spawn_with_app(|c| c.provisioner = ProvisionerKind::Webhook).await;
    receiver.reply_with(AppReply::Json(json!({"frontEndUrl": "https://t.example.com/ap-2", "memo": "欢迎"})));
    app.new_instance("AP2", "ap-2").await;
    app.drain_deliveries().await;
    let ready = app.query(&["ap-2"], false).await;
    assert_eq!(ready.json().unwrap()["info"][0]["appInfo"]["memo"], "欢迎");
}

#[tokio::test]
async fn a_reported_failure_is_visible_and_the_order_can_be_retried() {
    let (app, receiver) = spawn_with_app(|c| c.provisioner = ProvisionerKind::Webhook).await;
    app.new_instance("AP3", "ap-3").await;
    let token = app.token().await;
    let failed = app
        .api_post("/api/v1/instances/ap-3/failed", &token, json!({"reason": "tenant quota exceeded"}))
        .await;
    assert_eq!(failed.status(), 204);
    let polled = app.query(&["ap-3"], false).await;
    assert_eq!(polled.result_code().as_deref(), Some("000005"));
    assert!(polled.result_msg().unwrap().contains("tenant quota exceeded"));
    let view: Value = app.api_get("/api/v1/instances/ap-3", &token).await.json().await.unwrap();
    assert_eq!(
        (view["status"].as_str(), view["provision_error"].as_str()),
        (Some("failed"), Some("tenant quota exceeded"))
    );

    let retried = app.new_instance("AP3", "ap-3-retry").await;
    assert_eq!(
        (retried.result_code().as_deref(), retried.instance_id().as_deref()),
        (Some("000004"), Some("ap-3"))
    );
    app.drain_deliveries().await;
    let created: Vec<_> =
        receiver.received().into_iter().filter(|r| r.event_type() == "instance.created").collect();
    assert_eq!(created.len(), 2, "the retry announces the instance again");
    assert_ne!(created[0].id, created[1].id);
}

#[tokio::test]
async fn a_crash_between_the_change_and_its_delivery_loses_no_event() {
    let (app, receiver) = spawn_with_app(|_| {}).await;
    app.new_instance("CR1", "cr-1").await;
    // A replica claims the event and dies before sending it.
    let lease = app.config.job_lease.as_millis() as i64;
    let claimed = app.store.claim_delivery("crashed-replica", app.clock.now(), lease).await.unwrap().unwrap();
    assert_eq!(claimed.event_type, "instance.created");
    let app = app.restart().await;
    assert_eq!(app.deliver().await, DeliveryOutcome::Idle, "leased by the dead replica");
    app.clock.advance_ms(lease);
    assert_eq!(app.drain_deliveries().await, 1);
    assert_eq!(app.drain_deliveries().await, 0);
    assert_eq!(receiver.received().len(), 1, "delivered once");
}

#[tokio::test]
async fn the_api_refuses_missing_wrong_and_revoked_tokens() {
    let (app, _receiver) = spawn_with_app(|_| {}).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/instances", app.base_url);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(app.api_get("/api/v1/instances", "kgt_wrong").await.status(), 401);
    let (record, token) =
        koogate_server::api::tokens::create(&app.store, "ops", app.clock.now()).await.unwrap();
    assert_eq!(app.api_get("/api/v1/instances", &token).await.status(), 200);
    assert!(app.store.revoke_token(&record.id, app.clock.now()).await.unwrap());
    let refused = app.api_get("/api/v1/instances", &token).await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn instances_are_listed_with_filters_and_cursor_pagination() {
    let (app, _receiver) = spawn_with_app(|_| {}).await;
    for i in 0..5 {
        app.new_instance(&format!("LS{i}"), &format!("ls-{i}")).await;
    }
    app.send(new_instance("LSD", "ls-debug", true)).await;
    app.send(Request::UpdateInstanceStatus(UpdateInstanceStatus {
        instance_id: id("ls-3"),
        status: StatusChange::Freeze,
        test: false,
    }))
    .await;
    let token = app.token().await;
    let page: Value = app.api_get("/api/v1/instances?test=false&limit=2", &token).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let next: Value = app
        .api_get(&format!("/api/v1/instances?test=false&limit=2&cursor={cursor}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["items"][0]["instance_id"], "ls-2");
    let frozen: Value = app.api_get("/api/v1/instances?status=frozen", &token).await.json().await.unwrap();
    assert_eq!(frozen["items"].as_array().unwrap().len(), 1);
    assert_eq!(frozen["items"][0]["entitlement"]["state"], "frozen");
    let debug: Value = app.api_get("/api/v1/instances?test=true", &token).await.json().await.unwrap();
    assert_eq!(debug["items"][0]["instance_id"], "ls-debug");
    assert_eq!(app.api_get("/api/v1/instances?status=sleeping", &token).await.status(), 400);
    assert_eq!(app.api_get("/api/v1/instances/nobody", &token).await.status(), 404);
}

#[tokio::test]
async fn the_entitlement_follows_expiry_grace_freeze_and_release() {
    let (app, _receiver) = spawn_with_app(|c| c.expiry_grace = Duration::from_secs(3_600)).await;
    app.new_instance("EN1", "en-1").await;
    let token = app.token().await;
    async fn entitlement(app: &TestApp, token: String) -> Value {
        app.api_get("/api/v1/instances/en-1/entitlement", &token).await.json::<Value>().await.unwrap()
    }
    let e = entitlement(&app, token.clone()).await;
    assert_eq!(
        (e["state"].as_str(), e["entitled"].as_bool(), e["expire_time"].as_str()),
        (Some("active"), Some(true), None)
    );

    let expiry = koogate_protocol::datetime::format_compact_utc_millis(app.clock.now() + 1_000);
    let renew = Request::RefreshInstance(RefreshInstance {
        instance_id: id("en-1"),
        order_id: OrderId::parse("R").unwrap(),
        order_line_id: OrderLineId::parse("R-1").unwrap(),
        scene: RefreshScene::Renewal,
        product_id: None,
        expire_time_ms: 0,
        expire_time: expiry,
        test: false,
    });
    app.send(renew).await;
    app.clock.advance_ms(1_000 + 3_600_000);
    assert_eq!(entitlement(&app, token.clone()).await["entitled"], true, "within the grace");
    app.clock.advance_ms(1);
    let e = entitlement(&app, token.clone()).await;
    assert_eq!((e["state"].as_str(), e["entitled"].as_bool()), (Some("active"), Some(false)));
    app.send(Request::ReleaseInstance(ReleaseInstance {
        instance_id: id("en-1"),
        order_id: None,
        order_line_id: None,
        test: false,
    }))
    .await;
    assert_eq!(entitlement(&app, token).await["state"], "released");
}

#[tokio::test]
async fn the_served_openapi_document_matches_the_committed_one() {
    let (app, _receiver) = spawn_with_app(|_| {}).await;
    let served: Value =
        reqwest::get(format!("{}/api/v1/openapi.json", app.base_url)).await.unwrap().json().await.unwrap();
    let committed_text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).expect(
            "docs/openapi.json is committed; regenerate it with `koogate openapi > docs/openapi.json`",
        );
    let committed: Value = serde_json::from_str(&committed_text).unwrap();
    assert_eq!(
        served, committed,
        "the API changed: regenerate docs/openapi.json with `koogate openapi > docs/openapi.json`"
    );
    assert_eq!(
        committed_text,
        koogate_server::api::openapi::document_text(),
        "docs/openapi.json is not in the generated form"
    );
    assert!(served["components"]["schemas"]["WebhookEvent"].is_object(), "event payloads are documented");
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn the_command_provisioner_runs_the_app_command_with_the_event_and_uses_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let command = script(
        dir.path(),
        "provision.sh",
        &format!(
            "cat >> {log}\necho >> {log}\nif [ \"$KOOGATE_EVENT_TYPE\" = instance.created ]; then\n  echo '{{\"frontEndUrl\":\"https://cmd.example.com/tenant\"}}'\nfi",
            log = log.display()
        ),
    );
    let (app, _receiver) = spawn_with_app(|c| {
        c.provisioner = ProvisionerKind::Command;
        c.app_webhook_url = None;
        c.app_command = Some(command);
    })
    .await;
    assert_eq!(app.new_instance("CMD1", "cmd-1").await.result_code().as_deref(), Some("000004"));
    assert_eq!(app.drain_deliveries().await, 1);
    let ready = app.query(&["cmd-1"], false).await;
    assert_eq!(ready.json().unwrap()["info"][0]["appInfo"]["frontEndUrl"], "https://cmd.example.com/tenant");
    let seen = std::fs::read_to_string(&log).unwrap();
    let event: Value = serde_json::from_str(seen.lines().next().unwrap()).unwrap();
    assert_eq!(
        (event["type"].as_str(), event["data"]["instance_id"].as_str()),
        (Some("instance.created"), Some("cmd-1"))
    );
}

#[tokio::test]
async fn a_failing_or_hanging_command_is_retried_like_a_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("attempts");
    // Fails, then hangs, then succeeds.
    let command = script(
        dir.path(),
        "flaky.sh",
        &format!(
            "n=$(cat {m} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {m}\ncase $n in 1) echo broken >&2; exit 3;; 2) sleep 5;; esac\necho '{{\"frontEndUrl\":\"https://cmd.example.com/x\"}}'",
            m = marker.display()
        ),
    );
    let (app, _receiver) = spawn_with_app(|c| {
        c.provisioner = ProvisionerKind::Command;
        c.app_webhook_url = None;
        c.app_command = Some(command);
        c.app_command_timeout = Duration::from_millis(500);
    })
    .await;
    app.new_instance("CMD2", "cmd-2").await;
    let at = next_retry(&app).await;
    let failed = app.store.deliveries(&Default::default()).await.unwrap().remove(0);
    assert!(
        failed.last_error.as_deref().unwrap().contains("exit status 3: broken"),
        "{:?}",
        failed.last_error
    );
    app.clock.set(at);
    let at = next_retry(&app).await;
    app.clock.set(at);
    assert!(matches!(app.deliver().await, DeliveryOutcome::Delivered { .. }));
    assert_eq!(app.query(&["cmd-2"], false).await.result_code().as_deref(), Some("000000"));
}

#[tokio::test]
async fn instance_created_waits_for_the_order_details_and_carries_them() {
    let receiver = koogate_simulator::app_receiver::MockApp::new(
        koogate_protocol::webhook::WebhookSecret::parse_list(crate::harness::WEBHOOK_SECRET).unwrap(),
        std::sync::Arc::new(|| koogate_server::clock::Clock::now_ms(&koogate_server::SystemClock)),
    );
    let (addr, _task) = receiver.spawn().await.unwrap();
    let (app, _mock) = crate::harness::spawn_with_marketplace(None, |c| {
        c.app_webhook_url = Some(format!("http://{addr}/webhooks"));
        c.app_webhook_secret = Some(crate::harness::WEBHOOK_SECRET.to_owned().into());
    })
    .await;
    app.new_instance("MOCKPERIODYEARNEW", "wait-1").await;
    assert!(
        matches!(app.deliver().await, DeliveryOutcome::Postponed { .. }),
        "held until the order is known"
    );
    assert!(receiver.received().is_empty());
    assert_eq!(app.drain_jobs().await, 1, "the order fetch");
    app.clock.advance_ms(2_000);
    assert_eq!(app.drain_deliveries().await, 1);
    let event = &receiver.received()[0];
    assert!(event.verified);
    assert_eq!(event.body["data"]["order"]["sku_code"], "0a4d1578-7f3c-4c1e-9a55-3b5e2f6c8d01");
    assert_eq!(event.body["data"]["order"]["charging_mode"], "PERIOD");
}
