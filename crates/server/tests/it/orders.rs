//! Order fetching from the (mock) KooGallery Open API: what was bought is stored with the instance,
//! without holding up the callback; failures are retried only when the spec says they may pass.

use std::time::Duration;

use koogate_protocol::ids::{OrderId, OrderLineId};
use koogate_protocol::messages::{Request, UpgradeInstance};
use koogate_protocol::open_api::{OrderInfo, OrderLine, ProductInfo};
use koogate_server::jobs::JobOutcome;
use koogate_server::order_fetch::FETCH_ORDER;
use koogate_simulator::marketplace::Fault;

use crate::harness::{id, new_instance, spawn_app, spawn_with_marketplace, TestApp, AK};

async fn step(app: &TestApp) -> JobOutcome {
    app.jobs.execute_one().await.unwrap()
}

#[tokio::test]
async fn a_purchase_fetches_its_order_and_stores_it_with_the_instance() {
    let (app, mock) = spawn_with_marketplace(None, |_| {}).await;
    let created = app.new_instance("MOCKPERIODYEARNEW", "ord-1").await;
    assert_eq!(created.result_code().as_deref(), Some("000000"), "the callback does not wait for the fetch");
    assert!(mock.requests().is_empty());

    assert!(matches!(step(&app).await, JobOutcome::Completed { kind: FETCH_ORDER, .. }));
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].signature, Ok(()), "signed so the gateway's verifier accepts it");
    assert!(requests[0]
        .authorization
        .as_deref()
        .unwrap()
        .starts_with(&format!("SDK-HMAC-SHA256 Access={AK}, ")));
    assert_eq!(
        requests[0].query,
        [
            ("orderId".into(), "MOCKPERIODYEARNEW".into()),
            ("orderLineId".into(), "MOCKPERIODYEARNEW-000001".into())
        ]
    );

    let orders = app.store.orders_for_instance("ord-1").await.unwrap();
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!((order.reason.as_str(), order.order_type.as_deref()), ("new", Some("NEW")));
    assert_eq!(
        (order.charging_mode.as_deref(), order.period_type.as_deref(), order.period_number),
        (Some("PERIOD"), Some("year"), Some(1))
    );
    assert_eq!(order.product_id.as_deref(), Some("OFFI846204237451911168"));
    assert_eq!(order.sku_code.as_deref(), Some("0a4d1578-7f3c-4c1e-9a55-3b5e2f6c8d01"));
    assert_eq!((order.linear_value, order.amount.as_deref()), (Some(50), Some("100")));
    assert_eq!(order.expire_time_ms, Some(1_763_769_599_000));
    assert_eq!(order.customer_id.as_deref(), Some("0a1b2c3d4e5f"));
    assert!(order.buyer_json.as_deref().unwrap().contains("buyer@example.com"));
    assert!(order.extend_params_json.contains("emailDomainName"));

    let instance = app.store.instance(&id("ord-1")).await.unwrap().unwrap();
    assert_eq!(instance.sku_code.as_deref(), Some("0a4d1578-7f3c-4c1e-9a55-3b5e2f6c8d01"));
    assert_eq!((instance.charging_mode.as_deref(), instance.linear_value), (Some("PERIOD"), Some(50)));
    assert_eq!(
        instance.expire_time_ms,
        Some(1_763_769_599_000),
        "the order's expiry until a refresh sets one"
    );
    assert_eq!(step(&app).await, JobOutcome::Idle);
}

#[tokio::test]
async fn an_upgrade_fetches_the_upgrade_order_and_changes_the_specification() {
    let (app, mock) = spawn_with_marketplace(None, |_| {}).await;
    mock.register_order(OrderInfo {
        order_id: "UPG1".into(),
        order_type: Some("CHANGE".into()),
        create_time: Some("20250101000000".into()),
        order_line: vec![OrderLine {
            order_line_id: "UPG1-000001".into(),
            charging_mode: Some("PERIOD".into()),
            expire_time: None,
            period_type: None,
            period_number: None,
            product_info: vec![ProductInfo {
                product_id: Some("OFFI-PRO".into()),
                sku_code: Some("sku-pro".into()),
                linear_value: Some(200),
                product_name: Some("Pro".into()),
            }],
            extend_params: vec![],
            currency: None,
            currency_after_discount: None,
        }],
        buyer_info: None,
        extend_params: vec![],
    });
    app.new_instance("MOCKPERIODYEARNEW", "ord-up").await;
    step(&app).await;
    let upgrade = Request::UpgradeInstance(UpgradeInstance {
        instance_id: id("ord-up"),
        order_id: OrderId::parse("UPG1").unwrap(),
        order_line_id: OrderLineId::parse("UPG1-000001").unwrap(),
        test: false,
    });
    assert_eq!(app.send(upgrade.clone()).await.result_code().as_deref(), Some("000000"));
    app.send(upgrade).await;
    assert!(matches!(step(&app).await, JobOutcome::Completed { .. }));
    assert_eq!(step(&app).await, JobOutcome::Idle, "a redelivered upgrade fetches once");
    let instance = app.store.instance(&id("ord-up")).await.unwrap().unwrap();
    assert_eq!((instance.sku_code.as_deref(), instance.linear_value), (Some("sku-pro"), Some(200)));
    let reasons: Vec<String> =
        app.store.orders_for_instance("ord-up").await.unwrap().into_iter().map(|o| o.reason).collect();
    assert_eq!(reasons, ["new", "upgrade"]);
}

#[tokio::test]
async fn an_unreachable_primary_host_falls_back_to_the_second_host_signed_for_it() {
    let (app, mock) = spawn_with_marketplace(Some("http://127.0.0.1:9"), |_| {}).await;
    app.new_instance("MOCKONETIMENEW", "ord-fb").await;
    assert!(matches!(step(&app).await, JobOutcome::Completed { .. }));
    let requests = mock.requests();
    assert_eq!((requests.len(), requests[0].signature.clone()), (1, Ok(())));
    assert_eq!(
        app.store.orders_for_instance("ord-fb").await.unwrap()[0].charging_mode.as_deref(),
        Some("ONE_TIME")
    );
}

#[tokio::test]
async fn retryable_failures_are_retried_later_and_then_succeed() {
    let (app, mock) =
        spawn_with_marketplace(None, |c| c.marketplace_timeout = Duration::from_millis(300)).await;
    mock.inject(Fault::Api(500, "MKT.0999".into()));
    mock.inject(Fault::Gateway(429, "APIGW.0308".into()));
    mock.inject(Fault::Status(502));
    mock.inject(Fault::Delay(Duration::from_secs(2)));
    app.new_instance("MOCKONDEMAND", "ord-rt").await;
    for _ in 0..4 {
        let JobOutcome::Retried { run_at_ms, .. } = step(&app).await else { panic!("expected a retry") };
        assert_eq!(step(&app).await, JobOutcome::Idle, "not before its backoff");
        app.clock.set(run_at_ms);
    }
    assert!(matches!(step(&app).await, JobOutcome::Completed { .. }));
    assert_eq!(mock.requests().len(), 5, "one request per attempt");
    let jobs = app.store.jobs(FETCH_ORDER).await.unwrap();
    assert_eq!((jobs[0].state.as_str(), jobs[0].attempts), ("done", 5));
}

#[tokio::test]
async fn validation_errors_are_not_retried() {
    let (app, mock) = spawn_with_marketplace(None, |_| {}).await;
    mock.inject(Fault::Api(400, "MKT.0100".into()));
    app.new_instance("MOCKONDEMANDPKG", "ord-val").await;
    assert!(matches!(step(&app).await, JobOutcome::Buried { .. }));
    let job = &app.store.jobs(FETCH_ORDER).await.unwrap()[0];
    assert_eq!(job.state, "dead");
    assert!(job.last_error.as_deref().unwrap().contains("MKT.0100"), "{:?}", job.last_error);
    app.clock.advance_ms(86_400_000);
    assert_eq!(step(&app).await, JobOutcome::Idle);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn an_unknown_order_is_not_retried() {
    let (app, _mock) = spawn_with_marketplace(None, |_| {}).await;
    app.new_instance("NOSUCHORDER", "ord-404").await;
    assert!(matches!(step(&app).await, JobOutcome::Buried { .. }));
    let job = &app.store.jobs(FETCH_ORDER).await.unwrap()[0];
    assert!(job.last_error.as_deref().unwrap().contains("MKT.9001"));
}

#[tokio::test]
async fn an_authentication_failure_is_retried_at_most_once() {
    let (app, mock) = spawn_with_marketplace(None, |_| {}).await;
    mock.inject(Fault::RejectSignature);
    mock.inject(Fault::RejectSignature);
    app.new_instance("MOCKPERIODDAYTRIAL", "ord-auth").await;
    let JobOutcome::Retried { run_at_ms, .. } = step(&app).await else { panic!("one retry") };
    app.clock.set(run_at_ms);
    assert!(matches!(step(&app).await, JobOutcome::Buried { .. }));
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_by_the_gateway_and_not_looped() {
    let (app, mock) = spawn_with_marketplace(None, |c| c.sk = Some("wrong-secret".to_owned().into())).await;
    app.new_instance("MOCKMONTYRENEW", "ord-sk").await;
    let JobOutcome::Retried { run_at_ms, .. } = step(&app).await else { panic!("one retry") };
    app.clock.set(run_at_ms);
    assert!(matches!(step(&app).await, JobOutcome::Buried { .. }));
    assert!(mock.requests().iter().all(|r| r.signature.is_err()));
}

#[tokio::test]
async fn debug_calls_and_unconfigured_keys_fetch_nothing() {
    let (app, mock) = spawn_with_marketplace(None, |_| {}).await;
    app.send(new_instance("MOCKPERIODYEARNEW", "ord-dbg", true)).await;
    assert_eq!(step(&app).await, JobOutcome::Idle);
    assert!(mock.requests().is_empty());

    let plain = spawn_app().await;
    plain.new_instance("MOCKPERIODYEARNEW", "ord-nokey").await;
    assert!(plain.store.jobs(FETCH_ORDER).await.unwrap().is_empty());
}
