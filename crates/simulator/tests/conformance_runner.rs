//! The conformance runner must catch broken production interfaces: a small reference implementation
//! passes, and each deliberately broken variant fails with the right findings.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use koogate_protocol::messages::{InstanceInfo, Request};
use koogate_protocol::signature::{verify, SignatureParams, TimeWindow};
use koogate_protocol::{body_sign, AccessKey, CallbackResponse, ResultCode};
use koogate_simulator::conformance::{builtin_scenarios, run, ConformanceReport};

const KEY: &str = "ConformanceKey";

#[derive(Clone, Copy, Default)]
struct Breakage {
    no_body_sign: bool,
    accept_bad_signatures: bool,
    non_idempotent_create: bool,
    wrong_codes: bool,
}

#[derive(Default)]
struct Ledger {
    nonces: HashSet<String>,
    orders: HashMap<(String, String), String>,
    instances: HashSet<String>,
}

struct Reference {
    breakage: Breakage,
    ledger: Mutex<Ledger>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn produce(
    State(server): State<Arc<Reference>>,
    RawQuery(query): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let answer = handle(&server, &query.unwrap_or_default(), &body);
    let bytes = answer.to_bytes();
    let mut response = (StatusCode::OK, bytes.clone()).into_response();
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    if !server.breakage.no_body_sign {
        let sign = body_sign::header_value(&AccessKey::from_text(KEY), &bytes);
        response.headers_mut().insert(body_sign::HEADER_NAME, sign.parse().unwrap());
    }
    response
}

fn handle(server: &Reference, query: &str, body: &[u8]) -> CallbackResponse {
    let refused = |code: ResultCode| {
        CallbackResponse::code(if server.breakage.wrong_codes { ResultCode::InternalError } else { code })
    };
    let key = AccessKey::from_text(KEY);
    let value = if server.breakage.accept_bad_signatures {
        match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(_) => return refused(ResultCode::InvalidParam),
        }
    } else {
        let params = match SignatureParams::from_query(query) {
            Ok(p) => p,
            Err(e) => return refused(e.result_code()),
        };
        match verify(&key, &params, body, now_ms(), TimeWindow::default()) {
            Ok(verified) => {
                if !server.ledger.lock().unwrap().nonces.insert(verified.nonce().as_str().to_owned()) {
                    return refused(ResultCode::InvalidParam);
                }
                verified.into_inner()
            }
            Err(e) => return refused(e.result_code()),
        }
    };
    let request = match Request::from_value(&value) {
        Ok(r) => r,
        Err(_) => return refused(ResultCode::InvalidParam),
    };
    let mut ledger = server.ledger.lock().unwrap();
    let known = |ledger: &Ledger, id: &str, test: bool| test || ledger.instances.contains(id);
    match request {
        Request::NewInstance(r) => {
            let business = r.business_id.to_string();
            let id = if server.breakage.non_idempotent_create {
                business
            } else {
                ledger
                    .orders
                    .entry((r.order_id.to_string(), r.order_line_id.to_string()))
                    .or_insert(business)
                    .clone()
            };
            ledger.instances.insert(id.clone());
            let mut response = CallbackResponse::code(ResultCode::Success);
            response.instance_id = Some(id);
            response
        }
        Request::QueryInstance(q) => {
            let info: Vec<InstanceInfo> = q
                .instance_ids
                .iter()
                .filter(|id| known(&ledger, id.as_str(), q.test))
                .map(|id| InstanceInfo {
                    instance_id: id.to_string(),
                    app_info: Some(koogate_protocol::messages::AppInfo {
                        front_end_url: format!("https://ref.example.com/{id}"),
                        admin_url: None,
                        user_name: None,
                        password: None,
                        memo: None,
                    }),
                    usage_info: None,
                })
                .collect();
            if info.is_empty() {
                return refused(ResultCode::InstanceNotFound);
            }
            let mut response = CallbackResponse::code(ResultCode::Success);
            response.info = Some(info);
            response
        }
        Request::RefreshInstance(r) if !known(&ledger, r.instance_id.as_str(), r.test) => {
            refused(ResultCode::InstanceNotFound)
        }
        Request::UpdateInstanceStatus(r) if !known(&ledger, r.instance_id.as_str(), r.test) => {
            refused(ResultCode::InstanceNotFound)
        }
        _ => CallbackResponse::code(ResultCode::Success),
    }
}

async fn check(breakage: Breakage) -> ConformanceReport {
    let server = Arc::new(Reference { breakage, ledger: Mutex::default() });
    let router = Router::new().route("/saasproduce", post(produce)).with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    run(&format!("http://{addr}/saasproduce"), AccessKey::from_text(KEY), &builtin_scenarios()).await
}

fn failing_steps(report: &ConformanceReport) -> Vec<String> {
    report.results.iter().filter(|r| !r.passed()).map(|r| format!("{} › {}", r.scenario, r.step)).collect()
}

#[tokio::test]
async fn a_correct_implementation_passes() {
    let report = check(Breakage::default()).await;
    assert!(report.passed(), "{}", report.table());
}

#[tokio::test]
async fn a_missing_body_sign_header_fails_every_step() {
    let report = check(Breakage { no_body_sign: true, ..Breakage::default() }).await;
    assert!(
        report.results.iter().all(|r| r.failures.iter().any(|f| f.contains("Body-Sign"))),
        "{}",
        report.table()
    );
}

#[tokio::test]
async fn accepting_unsigned_and_replayed_calls_is_caught() {
    let report = check(Breakage { accept_bad_signatures: true, ..Breakage::default() }).await;
    let failing = failing_steps(&report);
    for step in [
        "wrong signature",
        "missing signature",
        "stale timestamp",
        "future timestamp",
        "missing nonce",
        "replayed nonce",
    ] {
        assert!(failing.contains(&format!("refusals › {step}")), "{step} not caught: {failing:?}");
    }
}

#[tokio::test]
async fn wrong_result_codes_are_caught_with_the_spec_reference() {
    let report = check(Breakage { wrong_codes: true, ..Breakage::default() }).await;
    let bad_signature = report.results.iter().find(|r| r.step == "wrong signature").unwrap();
    assert!(
        bad_signature.failures.iter().any(|f| f.contains("expected 000001")),
        "{:?}",
        bad_signature.failures
    );
    assert_eq!(bad_signature.spec, "saas-v2 §2.6");
    assert!(report.table().contains("FAIL  refusals › unknown instance"));
}

#[tokio::test]
async fn a_non_idempotent_create_is_caught() {
    let report = check(Breakage { non_idempotent_create: true, ..Breakage::default() }).await;
    let failing = failing_steps(&report);
    assert!(failing.contains(&"idempotency › resend with a new businessId".to_owned()), "{failing:?}");
    assert!(report.junit_xml().contains("<failure message=\"instanceId is"), "JUnit XML lists the finding");
}

#[tokio::test]
async fn the_simulator_api_fires_callbacks_injects_faults_and_records_traffic() {
    use koogate_protocol::apig::Credentials;
    use koogate_simulator::koogallery::SimulatedKooGallery;
    let server = Arc::new(Reference { breakage: Breakage::default(), ledger: Mutex::default() });
    let router = Router::new().route("/saasproduce", post(produce)).with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/saasproduce", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let sim =
        SimulatedKooGallery::new(Credentials::new("AK", "SK"), AccessKey::from_text(KEY), Arc::new(now_ms));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", listener.local_addr().unwrap());
    let sim_router = sim.router();
    tokio::spawn(async move { axum::serve(listener, sim_router).await });

    let client = reqwest::Client::new();
    let body = serde_json::json!({"target": target, "body": {"activity": "newInstance", "orderId": "S1", "orderLineId": "S1-1", "businessId": "sim-1"}});
    let sent: serde_json::Value =
        client.post(format!("{sim_url}/sim/send")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (sent["answer"]["instanceId"].as_str(), sent["body_sign_valid"].as_bool()),
        (Some("sim-1"), Some(true))
    );
    let fault = client
        .post(format!("{sim_url}/sim/faults"))
        .json(&serde_json::json!({"status": 503}))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status(), 204);
    let traffic: serde_json::Value =
        client.get(format!("{sim_url}/sim/traffic")).send().await.unwrap().json().await.unwrap();
    assert_eq!(traffic["callbacks"][0]["answer"]["resultCode"], "000000");
}
