//! Every way a call can be refused, with the code KooGallery must get, and the audit log of each.

use koogate_simulator::Tamper;
use koogate_store::CallbackQuery;
use serde_json::json;

use crate::harness::{assert_well_formed, spawn_app, spawn_with};

fn query_body() -> serde_json::Value {
    json!({"activity": "queryInstance", "instanceId": "nobody"})
}

async fn code_for(app: &crate::harness::TestApp, tamper: Tamper) -> String {
    let reply = app.sender.send_value(&query_body(), &tamper).await.unwrap();
    assert_well_formed(&reply, &app.key());
    reply.result_code().unwrap()
}

#[tokio::test]
async fn a_wrong_or_missing_signature_is_000001() {
    let app = spawn_app().await;
    let wrong = Tamper { signature: Some("AB".repeat(32)), ..Tamper::default() };
    assert_eq!(code_for(&app, wrong).await, "000001");
    let missing = Tamper { signature: Some(String::new()), ..Tamper::default() };
    assert_eq!(code_for(&app, missing).await, "000001");
}

#[tokio::test]
async fn a_signature_made_with_another_key_is_000001() {
    let app = spawn_app().await;
    let other = koogate_simulator::CallbackSender::new(
        app.produce_url.clone(),
        koogate_protocol::AccessKey::from_text("other"),
    );
    let reply = other.send_value(&query_body(), &Tamper::default()).await.unwrap();
    assert_eq!(reply.result_code().as_deref(), Some("000001"));
}

#[tokio::test]
async fn missing_stale_future_or_garbled_timestamps_are_000002() {
    let app = spawn_app().await;
    let now = koogate_server::clock::Clock::now_ms(&*app.clock);
    let cases = [
        Tamper { omit_timestamp: true, ..Tamper::default() },
        Tamper { timestamp: Some((now - 61_000).to_string()), ..Tamper::default() },
        Tamper { timestamp: Some((now + 61_000).to_string()), ..Tamper::default() },
        Tamper { timestamp: Some("yesterday".into()), ..Tamper::default() },
    ];
    for tamper in cases {
        assert_eq!(code_for(&app, tamper.clone()).await, "000002", "{tamper:?}");
    }
}

#[tokio::test]
async fn a_timestamp_in_seconds_is_accepted() {
    let app = spawn_app().await;
    let seconds = (koogate_server::clock::Clock::now_ms(&*app.clock) / 1000).to_string();
    let reply = app
        .sender
        .send_value(&query_body(), &Tamper { timestamp: Some(seconds), ..Tamper::default() })
        .await
        .unwrap();
    assert_eq!(reply.result_code().as_deref(), Some("000003"), "verified, then the instance is unknown");
}

#[tokio::test]
async fn a_missing_nonce_is_000002() {
    let app = spawn_app().await;
    assert_eq!(code_for(&app, Tamper { omit_nonce: true, ..Tamper::default() }).await, "000002");
}

#[tokio::test]
async fn a_replayed_nonce_is_refused_and_logged() {
    let app = spawn_app().await;
    let first = app.new_instance("RP1", "rp-1").await;
    assert_eq!(first.result_code().as_deref(), Some("000000"));
    let body = koogate_protocol::canonical::canonical_bytes(
        &crate::harness::new_instance("RP1", "rp-2", false).to_value(),
    );
    let replay = app
        .sender
        .send_body(&body, &Tamper { nonce: Some(first.nonce.clone()), ..Tamper::default() })
        .await
        .unwrap();
    assert_eq!(replay.result_code().as_deref(), Some("000002"));
    assert!(replay.result_msg().unwrap().contains("nonce"), "{:?}", replay.result_msg());
    let log = app.store.callbacks(&CallbackQuery::default()).await.unwrap();
    assert_eq!(log[0].result_code, "000002");
    assert_eq!(log[0].nonce.as_deref(), Some(first.nonce.as_str()));
    assert_eq!(log[0].response_body, replay.body);
}

#[tokio::test]
async fn malformed_json_and_unknown_activities_are_000002() {
    let app = spawn_app().await;
    for body in [
        &b"{not json"[..],
        b"[]",
        br#"{"activity":"expireInstance","instanceId":"x"}"#,
        br#"{"instanceId":"x"}"#,
    ] {
        let reply = app.sender.send_body(body, &Tamper::default()).await.unwrap();
        assert_well_formed(&reply, &app.key());
        assert_eq!(reply.result_code().as_deref(), Some("000002"), "{}", String::from_utf8_lossy(body));
    }
}

#[tokio::test]
async fn missing_or_over_long_fields_are_000002() {
    let app = spawn_app().await;
    let bodies = [
        json!({"activity": "newInstance", "orderId": "O", "orderLineId": "O-1"}),
        json!({"activity": "newInstance", "orderId": "O".repeat(65), "orderLineId": "O-1", "businessId": "b"}),
        json!({"activity": "refreshInstance", "instanceId": "i", "orderId": "O", "orderLineId": "L",
               "scene": "RENEWAL", "expireTime": "2030"}),
        json!({"activity": "updateInstanceStatus", "instanceId": "i", "status": "PAUSE"}),
    ];
    for body in bodies {
        let reply = app.sender.send_value(&body, &Tamper::default()).await.unwrap();
        assert_eq!(reply.result_code().as_deref(), Some("000002"), "{body}");
    }
}

#[tokio::test]
async fn unknown_instances_are_000003_for_every_change() {
    let app = spawn_app().await;
    let bodies = [
        json!({"activity": "refreshInstance", "instanceId": "ghost", "orderId": "O", "orderLineId": "L",
               "scene": "RENEWAL", "expireTime": "20301124023618"}),
        json!({"activity": "updateInstanceStatus", "instanceId": "ghost", "status": "FREEZE"}),
        json!({"activity": "releaseInstance", "instanceId": "ghost"}),
        json!({"activity": "upgradeInstance", "instanceId": "ghost", "orderId": "O", "orderLineId": "L"}),
        json!({"activity": "changeInstanceCheck", "instanceId": "ghost",
               "productInfo": {"productId": "p", "skuCode": "s", "productName": "n"}}),
        json!({"activity": "queryInstance", "instanceId": "ghost,phantom"}),
    ];
    for body in bodies {
        let reply = app.sender.send_value(&body, &Tamper::default()).await.unwrap();
        assert_eq!(reply.result_code().as_deref(), Some("000003"), "{body}");
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_and_logged_without_its_content() {
    let app = spawn_with(|c| c.max_body_bytes = 1024).await;
    let body = json!({"activity": "queryInstance", "instanceId": "x", "padding": "p".repeat(2000)});
    let reply = app.sender.send_value(&body, &Tamper::default()).await.unwrap();
    assert_well_formed(&reply, &app.key());
    assert_eq!(reply.result_code().as_deref(), Some("000002"));
    let log = app.store.callbacks(&CallbackQuery::default()).await.unwrap();
    assert!(log[0].raw_body.is_empty() && log[0].verification.contains("larger than 1024"));
}

#[tokio::test]
async fn doc_example_bodies_with_unsorted_keys_and_spaces_verify_canonically() {
    let app = spawn_app().await;
    app.new_instance("DOC1", "10e758d0-31ad-4c4b-8f1b-81d03469a10e").await;
    // The platform signs the canonical form; the bytes on the wire are unsorted and spaced.
    let wire = br#"{"testFlag":"0", "instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e", "activity":"queryInstance"}"#;
    let canonical =
        br#"{"activity":"queryInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","testFlag":"0"}"#;
    let url = app.sender.signed_url(canonical, &Tamper::default());
    let reply = reqwest::Client::new()
        .post(&url.url)
        .header("Content-Type", "application/json;charset=utf8")
        .body(wire.to_vec())
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(json["resultCode"], "000000");
    let log = app.store.callbacks(&CallbackQuery::default()).await.unwrap();
    assert_eq!((log[0].verification.as_str(), log[0].raw_body.as_slice()), ("canonical", &wire[..]));
}

#[tokio::test]
async fn every_call_is_logged_with_its_exact_request_and_answer() {
    let app = spawn_app().await;
    let reply = app.new_instance("LOG1", "log-1").await;
    let log =
        app.store.callbacks(&CallbackQuery { instance_id: Some("log-1".into()), limit: 5 }).await.unwrap();
    assert_eq!(log.len(), 1);
    let entry = &log[0];
    assert_eq!(entry.activity.as_deref(), Some("newInstance"));
    assert_eq!(entry.order_id.as_deref(), Some("LOG1"));
    assert_eq!((entry.verification.as_str(), entry.result_code.as_str()), ("raw", "000000"));
    assert_eq!(entry.response_body, reply.body);
    assert!(entry.raw_query.contains("signature=") && entry.raw_query.contains(&reply.nonce));
    assert!(String::from_utf8_lossy(&entry.raw_body).contains("\"businessId\":\"log-1\""));
}

#[tokio::test]
async fn used_nonces_are_forgotten_only_after_their_lifetime() {
    let app = spawn_app().await;
    app.query(&["anything"], false).await;
    let ttl = app.config.nonce_ttl.as_millis() as i64;
    app.clock.advance_ms(ttl - 1);
    assert_eq!(app.maintenance.run_once().await.unwrap().expired_nonces, 0);
    app.clock.advance_ms(2);
    assert_eq!(app.maintenance.run_once().await.unwrap().expired_nonces, 1);
}
