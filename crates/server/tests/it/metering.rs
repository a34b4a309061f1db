//! Pay-per-use metering end to end: usage ingest through the API, the hourly (here: one-minute) ledger,
//! pushes to the mock KooGallery with injected failures, packages, and `usageInfo` in `queryInstance`.

use std::collections::BTreeMap;
use std::time::Duration;

use koogate_protocol::messages::{ReleaseInstance, Request, StatusChange, UpdateInstanceStatus};
use koogate_protocol::usage::{format_record_time, parse_quantity};
use koogate_server::jobs::JobOutcome;
use koogate_server::usage::PUSH_USAGE;
use koogate_simulator::marketplace::{Fault, MockMarketplace};
use serde_json::{json, Value};

use crate::harness::{id, spawn_with_marketplace, TestApp};

const WINDOW_MS: i64 = 60_000;

/// koogate with a one-minute window and the mock KooGallery; with `fetch_orders` the AK/SK is set, so
/// purchases fetch their orders (and order-fetch jobs share the mock's injected faults).
async fn metered_app(fetch_orders: bool) -> (TestApp, MockMarketplace) {
    spawn_with_marketplace(None, |c| {
        c.usage_window = Duration::from_millis(WINDOW_MS as u64);
        c.marketplace_timeout = Duration::from_millis(300);
        if !fetch_orders {
            c.ak = None;
            c.sk = None;
        }
    })
    .await
}

async fn ingest(app: &TestApp, token: &str, events: Value) -> Value {
    let response = app.api_post("/api/v1/usage", token, json!({ "events": events })).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Runs every due job, following retries on the clock; returns the push attempts made.
async fn run_jobs_to_completion(app: &TestApp) -> usize {
    let mut attempts = 0;
    for _ in 0..10_000 {
        match app.jobs.execute_one().await.unwrap() {
            JobOutcome::Idle => {
                let pending = app
                    .store
                    .jobs(PUSH_USAGE)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|j| j.state == "pending")
                    .min_by_key(|j| j.run_at_ms);
                match pending {
                    Some(job) => app.clock.set(job.run_at_ms.max(app.clock.now())),
                    None => return attempts,
                }
            }
            JobOutcome::Completed { kind: PUSH_USAGE, .. } | JobOutcome::Retried { kind: PUSH_USAGE, .. } => {
                attempts += 1
            }
            _ => {}
        }
    }
    panic!("jobs did not settle");
}

/// A small deterministic pseudo-random sequence (no test should depend on luck).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test]
async fn pushed_totals_equal_the_unique_events_despite_duplicates_and_push_failures() {
    let (app, mock) = metered_app(false).await;
    let instances = ["m-1", "m-2", "m-3"];
    for (i, instance) in instances.iter().enumerate() {
        app.new_instance(&format!("METER{i}"), instance).await;
    }
    // Events below lie up to 30 s in the past; none may predate the instances.
    app.clock.advance_ms(WINDOW_MS / 2);
    let token = app.token().await;
    let mut rng = Lcg(7);
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut sent_events: Vec<Value> = Vec::new();
    let (mut duplicates_sent, mut faults) = (0, 0);
    for window in 0..6 {
        let mut batch = Vec::new();
        for n in 0..40 {
            let instance = instances[rng.next(3) as usize];
            let quantity = format!("{}.{:04}", rng.next(50), rng.next(10_000));
            let event = json!({"event_id": format!("w{window}-e{n}"), "instance_id": instance, "quantity": quantity,
                               "occurred_at": app.clock.now() - rng.next(WINDOW_MS as u64 / 2) as i64});
            *expected.entry(instance.to_owned()).or_default() += parse_quantity(&quantity).unwrap();
            sent_events.push(event.clone());
            batch.push(event);
            if rng.next(10) == 0 {
                duplicates_sent += 1;
                batch.push(sent_events[rng.next(sent_events.len() as u64) as usize].clone());
            }
        }
        let report = ingest(&app, &token, Value::Array(batch)).await;
        assert!(report["rejected"].as_array().unwrap().is_empty(), "{report}");
        app.clock.advance_ms(WINDOW_MS);
        app.maintenance.run_once().await.unwrap();
        // About 30 % of push attempts fail: server errors, throttling, or an answer that never arrives
        // although KooGallery accepted the records.
        for _ in 0..3 {
            if rng.next(10) < 3 {
                faults += 1;
                mock.inject(match rng.next(3) {
                    0 => Fault::Api(500, "MKT.0999".into()),
                    1 => Fault::Gateway(429, "APIGW.0308".into()),
                    _ => Fault::Delay(Duration::from_secs(1)),
                });
            }
        }
        run_jobs_to_completion(&app).await;
    }
    assert!(
        duplicates_sent > 10 && faults > 3,
        "the run exercised duplicates ({duplicates_sent}) and faults ({faults})"
    );

    let mut pushed: BTreeMap<String, i64> = BTreeMap::new();
    for record in mock.accepted_usage() {
        *pushed.entry(record.instance_id).or_default() += record.units;
    }
    assert_eq!(pushed, expected, "KooGallery received exactly the unique events");
    assert_eq!(mock.usage_duplicates().1, 0, "no period was pushed twice with different content");
    let ledger = app.store.usage_records(None, None).await.unwrap();
    assert!(
        ledger.iter().all(|r| r.state == "pushed"),
        "{:?}",
        ledger.iter().map(|r| &r.state).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn bad_events_are_reported_one_by_one_and_good_ones_kept() {
    let (app, _mock) = metered_app(false).await;
    app.new_instance("BAD1", "b-1").await;
    app.new_instance("BAD2", "b-frozen").await;
    app.new_instance("BAD3", "b-released").await;
    app.send(Request::UpdateInstanceStatus(UpdateInstanceStatus {
        instance_id: id("b-frozen"),
        status: StatusChange::Freeze,
        test: false,
    }))
    .await;
    app.send(Request::ReleaseInstance(ReleaseInstance {
        instance_id: id("b-released"),
        order_id: None,
        order_line_id: None,
        test: false,
    }))
    .await;
    let token = app.token().await;
    let now = app.clock.now();
    let report = ingest(&app, &token, json!([
        {"event_id": "ok-1", "instance_id": "b-1", "quantity": 2, "occurred_at": now},
        {"event_id": "e-unknown", "instance_id": "nobody", "quantity": 1, "occurred_at": now},
        {"event_id": "e-frozen", "instance_id": "b-frozen", "quantity": 1, "occurred_at": now},
        {"event_id": "e-released", "instance_id": "b-released", "quantity": 1, "occurred_at": now},
        {"event_id": "e-negative", "instance_id": "b-1", "quantity": "-3", "occurred_at": now},
        {"event_id": "e-precise", "instance_id": "b-1", "quantity": "0.00001", "occurred_at": now},
        {"event_id": "e-future", "instance_id": "b-1", "quantity": 1, "occurred_at": now + 3_600_000},
        {"event_id": "e-ancient", "instance_id": "b-1", "quantity": 1, "occurred_at": "2020-01-01T00:00:00Z"},
        {"event_id": "e-early", "instance_id": "b-1", "quantity": 1, "occurred_at": now - 1_000},
        {"event_id": "ok-2", "instance_id": "b-1", "quantity": "0.5", "occurred_at": format_rfc3339(now)},
        {"event_id": "ok-1", "instance_id": "b-1", "quantity": 2, "occurred_at": now}
    ])).await;
    assert_eq!((report["accepted"].as_i64(), report["duplicates"].as_i64()), (Some(2), Some(1)));
    let codes: Vec<(String, String)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["event_id"].as_str().unwrap().to_owned(), r["code"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ("e-unknown", "unknown_instance"),
        ("e-frozen", "instance_not_active"),
        ("e-released", "instance_not_active"),
        ("e-negative", "invalid_quantity"),
        ("e-precise", "invalid_quantity"),
        ("e-future", "time_out_of_range"),
        ("e-ancient", "time_out_of_range"),
        ("e-early", "time_out_of_range"),
    ];
    assert_eq!(codes, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let records = app.store.usage_records(Some("b-1"), None).await.unwrap();
    assert_eq!((records.len(), records[0].units), (1, 25_000), "2 + 0.5, exactly");
}

fn format_rfc3339(ms: i64) -> String {
    koogate_server::events::rfc3339(ms)
}

#[tokio::test]
async fn an_event_for_a_pushed_window_goes_into_the_next_open_window() {
    let (app, mock) = metered_app(false).await;
    app.new_instance("LATE1", "late-1").await;
    let token = app.token().await;
    let first_window_time = app.clock.now();
    ingest(
        &app,
        &token,
        json!([{"event_id": "l1", "instance_id": "late-1", "quantity": 1, "occurred_at": first_window_time}]),
    )
    .await;
    app.clock.advance_ms(WINDOW_MS);
    app.maintenance.run_once().await.unwrap();
    run_jobs_to_completion(&app).await;
    ingest(
        &app,
        &token,
        json!([{"event_id": "l2", "instance_id": "late-1", "quantity": 2, "occurred_at": first_window_time}]),
    )
    .await;
    app.clock.advance_ms(WINDOW_MS);
    app.maintenance.run_once().await.unwrap();
    run_jobs_to_completion(&app).await;
    let accepted = mock.accepted_usage();
    assert_eq!(accepted.iter().map(|a| a.units).collect::<Vec<_>>(), [10_000, 20_000]);
    assert_ne!(accepted[0].begin_time, accepted[1].begin_time, "two periods, the first never changed");
    let window = first_window_time.div_euclid(WINDOW_MS) * WINDOW_MS;
    let created = app.store.instance(&id("late-1")).await.unwrap().unwrap().created_at_ms;
    assert_eq!(
        accepted[0].begin_time,
        format_record_time(window.max(created)),
        "never before the instance existed"
    );
    assert_eq!(accepted[1].begin_time, format_record_time(window + WINDOW_MS));
}

#[tokio::test]
async fn a_crash_between_batching_and_pushing_loses_and_doubles_nothing() {
    let (app, mock) = metered_app(false).await;
    app.new_instance("CRASH1", "crash-1").await;
    let token = app.token().await;
    ingest(&app, &token, json!([{"event_id": "c1", "instance_id": "crash-1", "quantity": "7.25", "occurred_at": app.clock.now()}])).await;
    app.clock.advance_ms(WINDOW_MS);
    assert_eq!(app.maintenance.run_once().await.unwrap().usage.pushes, 1);
    // The worker that took the push dies before sending it.
    let lease = app.config.job_lease.as_millis() as i64;
    let claimed = app.store.claim_job(PUSH_USAGE, "crashed-worker", app.clock.now(), lease).await.unwrap();
    assert!(claimed.is_some());
    let app = app.restart().await;
    assert_eq!(app.maintenance.run_once().await.unwrap().usage.pushes, 0, "the records stay in their push");
    app.clock.advance_ms(lease);
    // This attempt reaches KooGallery, but its answer is lost: the retry resends the identical body.
    mock.inject(Fault::Delay(Duration::from_secs(1)));
    assert_eq!(run_jobs_to_completion(&app).await, 2);
    let accepted = mock.accepted_usage();
    assert_eq!((accepted.len(), accepted[0].units), (1, 72_500));
    assert_eq!(mock.usage_duplicates(), (1, 0), "the resend was the identical record");
    assert_eq!(app.store.usage_records(Some("crash-1"), None).await.unwrap()[0].state, "pushed");
}

#[tokio::test]
async fn rejected_records_are_visible_with_their_code() {
    let (app, mock) = metered_app(false).await;
    app.new_instance("REJ1", "rej-1").await;
    let token = app.token().await;
    ingest(
        &app,
        &token,
        json!([{"event_id": "r1", "instance_id": "rej-1", "quantity": 3, "occurred_at": app.clock.now()}]),
    )
    .await;
    app.clock.advance_ms(WINDOW_MS);
    app.maintenance.run_once().await.unwrap();
    mock.inject(Fault::Api(500, "MKT.9001".into()));
    assert_eq!(run_jobs_to_completion(&app).await, 1, "not retried");
    let rejected: Value =
        app.api_get("/api/v1/usage/records?state=rejected", &token).await.json().await.unwrap();
    assert_eq!(rejected[0]["instance_id"], "rej-1");
    assert_eq!(
        (rejected[0]["reject_code"].as_str(), rejected[0]["usage_value"].as_str()),
        (Some("MKT.9001"), Some("3"))
    );
    assert!(mock.accepted_usage().is_empty());
}

#[tokio::test]
async fn query_instance_reports_cumulative_usage() {
    let (app, _mock) = metered_app(true).await;
    app.new_instance("MOCKONDEMAND", "od-1").await;
    app.drain_jobs().await;
    let quiet = app.query(&["od-1"], false).await.json().unwrap();
    assert_eq!(
        quiet["info"][0]["usageInfo"][0]["usageValue"],
        json!(0),
        "pay-per-use instances always report usage"
    );
    let token = app.token().await;
    app.clock.advance_ms(WINDOW_MS);
    let now = app.clock.now();
    ingest(
        &app,
        &token,
        json!([
            {"event_id": "q1", "instance_id": "od-1", "quantity": "1.5", "occurred_at": now},
            {"event_id": "q2", "instance_id": "od-1", "quantity": "2.25", "occurred_at": now - WINDOW_MS}
        ]),
    )
    .await;
    let reply = app.query(&["od-1"], false).await;
    let usage = &reply.json().unwrap()["info"][0]["usageInfo"][0];
    assert_eq!(usage["usageValue"], json!(3.75));
    assert_eq!(usage["statisticalTime"].as_str().map(str::len), Some(17));
}

#[tokio::test]
async fn a_use_until_stop_package_is_enforced_and_reported() {
    let (app, mock) = spawn_with_marketplace(None, |c| {
        c.usage_window = Duration::from_millis(WINDOW_MS as u64);
        // Events on, so that package.exhausted is written (nothing is delivered in this test).
        c.app_webhook_url = Some("http://127.0.0.1:9/webhooks".into());
        c.app_webhook_secret = Some(crate::harness::WEBHOOK_SECRET.to_owned().into());
    })
    .await;
    app.new_instance("MOCKONDEMAND", "pay-1").await;
    app.new_instance("MOCKONDEMANDPKG", "pkg-1").await;
    app.drain_jobs().await; // both orders fetched: the package's quota is its linear value, 50
    let token = app.token().await;
    let now = app.clock.now();
    let report = ingest(&app, &token, json!([
        {"event_id": "p1", "instance_id": "pay-1", "quantity": 30, "occurred_at": now, "package_instance_id": "pkg-1"},
        {"event_id": "p2", "instance_id": "pay-1", "quantity": 25, "occurred_at": now, "package_instance_id": "pkg-1"},
        {"event_id": "p3", "instance_id": "pay-1", "quantity": 20, "occurred_at": now, "package_instance_id": "pkg-1"},
        {"event_id": "p4", "instance_id": "pay-1", "quantity": 1, "occurred_at": now, "package_instance_id": "nopkg"}
    ])).await;
    let codes: Vec<&str> =
        report["rejected"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!((report["accepted"].as_i64(), codes), (Some(2), vec!["package_exhausted", "unknown_package"]));
    let entitlement: Value =
        app.api_get("/api/v1/instances/pkg-1/entitlement", &token).await.json().await.unwrap();
    assert_eq!(
        entitlement["package"],
        json!({"quota": "50", "used": "50", "remaining": "0", "exhausted": true})
    );
    assert_eq!(entitlement["entitled"], false);
    let exhausted = app.store.deliveries(&Default::default()).await.unwrap();
    let exhausted: Vec<_> = exhausted.iter().filter(|d| d.event_type == "package.exhausted").collect();
    assert_eq!(exhausted.len(), 1, "announced once");
    assert_eq!(exhausted[0].instance_id, "pkg-1");
    let reply = app.query(&["pkg-1"], false).await.json().unwrap();
    assert_eq!(reply["info"][0]["usageInfo"][0]["relatedInstanceId"], "pay-1");
    assert_eq!(reply["info"][0]["usageInfo"][0]["usageValue"], json!(50));

    app.clock.advance_ms(WINDOW_MS);
    app.maintenance.run_once().await.unwrap();
    run_jobs_to_completion(&app).await;
    let accepted = mock.accepted_usage();
    assert_eq!((accepted[0].units, accepted[0].relate_pkg_instance.as_deref()), (500_000, Some("pkg-1")));
}

#[tokio::test]
async fn a_push_that_never_gets_through_ends_with_its_records_rejected() {
    // Without AK/SK no order is fetched, so every injected fault reaches the usage push.
    let (app, mock) = metered_app(false).await;
    app.new_instance("GIVEUP", "gu-1").await;
    let token = app.token().await;
    ingest(
        &app,
        &token,
        json!([{"event_id": "g1", "instance_id": "gu-1", "quantity": 1, "occurred_at": app.clock.now()}]),
    )
    .await;
    app.clock.advance_ms(WINDOW_MS);
    app.maintenance.run_once().await.unwrap();
    for _ in 0..480 {
        mock.inject(Fault::Status(503));
    }
    assert_eq!(run_jobs_to_completion(&app).await, 479, "every attempt but the last is a retry");
    let started = app.store.jobs(PUSH_USAGE).await.unwrap()[0].clone();
    assert_eq!((started.state.as_str(), started.attempts), ("dead", 480));
    let record = &app.store.usage_records(Some("gu-1"), None).await.unwrap()[0];
    assert_eq!(
        (record.state.as_str(), record.reject_code.as_deref()),
        ("rejected", Some("retries_exhausted"))
    );
}

#[tokio::test]
async fn one_period_never_gets_two_records_and_debug_instances_take_no_usage() {
    let (app, mock) = metered_app(false).await;
    app.new_instance("MIX1", "mix-1").await;
    app.new_instance("MIXPKG", "mix-pkg").await;
    app.send(crate::harness::new_instance("MIXDBG", "mix-debug", true)).await;
    // The package's quota as Query Order would have set it.
    let order = koogate_store::OrderRecord {
        order_id: "MIXPKG".into(),
        order_line_id: "MIXPKG-000001".into(),
        instance_id: "mix-pkg".into(),
        reason: "new".into(),
        order_type: None,
        charging_mode: Some("ON_DEMAND_PKG".into()),
        product_id: None,
        sku_code: None,
        product_name: None,
        linear_value: Some(100),
        period_type: None,
        period_number: None,
        expire_time_ms: None,
        amount: None,
        amount_after_discount: None,
        customer_id: None,
        buyer_json: None,
        extend_params_json: "[]".into(),
        raw_json: "{}".into(),
        fetched_at_ms: 0,
        create_time_ms: None,
    };
    app.store.save_order(&order).await.unwrap();
    let token = app.token().await;
    let now = app.clock.now();
    let report = ingest(&app, &token, json!([
        {"event_id": "x1", "instance_id": "mix-1", "quantity": 1, "occurred_at": now},
        {"event_id": "x2", "instance_id": "mix-1", "quantity": 2, "occurred_at": now, "package_instance_id": "mix-pkg"},
        {"event_id": "x3", "instance_id": "mix-debug", "quantity": 1, "occurred_at": now}
    ])).await;
    assert_eq!(report["rejected"][0]["code"], "test_instance");
    app.clock.advance_ms(2 * WINDOW_MS);
    app.maintenance.run_once().await.unwrap();
    run_jobs_to_completion(&app).await;
    let accepted = mock.accepted_usage();
    assert_eq!(accepted.len(), 2);
    assert_ne!(accepted[0].begin_time, accepted[1].begin_time, "the package usage moved to the next window");
    assert_eq!(mock.usage_duplicates(), (0, 0));
}
