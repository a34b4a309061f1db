//! `koogate demo`: koogate on a temporary SQLite database and a simulated KooGallery, in one process,
//! taken through a customer's whole lifecycle with a readable timeline. Exits 0 only if every step
//! behaved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use koogate_protocol::apig::Credentials;
use koogate_protocol::AccessKey;
use koogate_server::clock::{Clock, SystemClock};
use koogate_server::jobs::JobOutcome;
use koogate_server::{App, Config};
use koogate_simulator::koogallery::SimulatedKooGallery;
use koogate_simulator::{CallbackReply, CallbackSender};
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::commands::Failed;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Leave koogate and the simulator running afterwards, with their URLs printed, until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
}

const KEY: &str = "DemoAccessKey-0123456789";
const WINDOW: Duration = Duration::from_secs(2);

struct Timeline {
    started: Instant,
    ok: bool,
}

impl Timeline {
    fn step(&mut self, ok: bool, what: &str, detail: impl AsRef<str>) {
        self.ok &= ok;
        let mark = if ok { "ok" } else { "!!" };
        println!("[{mark}] {:>6} ms  {what:<34} {}", self.started.elapsed().as_millis(), detail.as_ref());
    }

    fn callback(&mut self, what: &str, reply: &CallbackReply, expected: &[&str], key: &AccessKey) -> bool {
        let code = reply.result_code().unwrap_or_default();
        let ok = expected.contains(&code.as_str()) && reply.body_sign_valid(key);
        let mut detail = format!("→ {code} {}", reply.result_msg().unwrap_or_default());
        if let Some(id) = reply.instance_id() {
            detail.push_str(&format!("  instanceId={id}"));
        }
        self.step(ok, what, detail);
        ok
    }
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(demo(args.keep_running))
}

async fn demo(keep_running: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = {
        let clock = clock.clone();
        move || clock.now_ms()
    };
    let key = AccessKey::from_text(KEY);
    let simulator =
        SimulatedKooGallery::new(Credentials::new("DEMOAK", "DEMOSK"), key.clone(), Arc::new(now));
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_url = format!("http://{}", sim_listener.local_addr()?);
    let sim_router = simulator.router();
    tokio::spawn(async move { axum::serve(sim_listener, sim_router).await });

    let config = Config {
        database_url: SecretString::from(format!("sqlite://{}", dir.path().join("koogate.db").display())),
        access_key: Some(SecretString::from(KEY)),
        front_end_url: Some("https://app.example.com/tenant/{instance_id}".into()),
        admin_user_name: Some("admin".into()),
        master_key: Some(SecretString::from(koogate_server::crypto::generate_master_key())),
        ak: Some(SecretString::from("DEMOAK")),
        sk: Some(SecretString::from("DEMOSK")),
        marketplace_url: sim_url.clone(),
        marketplace_fallback_url: String::new(),
        usage_window: WINDOW,
        log: "warn".into(),
        ..Config::default()
    };
    let store = koogate_server::open_store(&config).await?;
    let app = App::build(&config, store.clone(), clock.clone(), None)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });

    println!(
        "koogate demo: koogate at {base}, simulated KooGallery at {sim_url}, database in {}\n",
        dir.path().display()
    );
    let mut timeline = Timeline { started: Instant::now(), ok: true };
    let sender = CallbackSender::new(format!("{base}/saasproduce"), key.clone());
    let send = |body: Value| {
        let sender = sender.clone();
        async move { sender.send_value(&body, &Default::default()).await }
    };

    // 1. A customer buys a pay-per-use product.
    let reply = send(
        json!({"activity": "newInstance", "orderId": "MOCKONDEMAND", "orderLineId": "MOCKONDEMAND-000001",
                            "businessId": "demo-instance-0001"}),
    )
    .await?;
    timeline.callback("newInstance (purchase)", &reply, &["000000"], &key);
    let instance = reply.instance_id().unwrap_or_default();

    // 2. koogate fetches what was bought.
    let fetched = app.jobs.execute_one().await?;
    let stored = store.instance(&koogate_protocol::ids::InstanceId::parse(&instance)?).await?;
    let sku = stored.as_ref().and_then(|i| i.sku_code.clone()).unwrap_or_default();
    let mode = stored.as_ref().and_then(|i| i.charging_mode.clone()).unwrap_or_default();
    timeline.step(
        matches!(fetched, JobOutcome::Completed { .. }) && !sku.is_empty(),
        "Query Order (order details)",
        format!("chargingMode={mode} skuCode={sku}"),
    );

    // 3. KooGallery asks for the buyer's details.
    let reply = send(json!({"activity": "queryInstance", "instanceId": instance})).await?;
    timeline.callback("queryInstance", &reply, &["000000"], &key);
    let info = reply.json().map(|j| j["info"][0]["appInfo"].clone()).unwrap_or_default();
    timeline.step(
        info["frontEndUrl"].is_string() && info["password"].is_string(),
        "  provisioned app details",
        format!(
            "frontEndUrl={} userName={}",
            info["frontEndUrl"].as_str().unwrap_or("-"),
            info["userName"].as_str().unwrap_or("-")
        ),
    );

    // 4-6. Renewal, expiry freeze, unfreeze after payment.
    let reply = send(json!({"activity": "refreshInstance", "instanceId": instance, "orderId": "MOCKMONTYRENEW",
                            "orderLineId": "MOCKMONTYRENEW-000001", "scene": "RENEWAL", "expireTime": "20351231235959"}))
    .await?;
    timeline.callback("refreshInstance (renewal)", &reply, &["000000"], &key);
    for status in ["FREEZE", "UNFREEZE"] {
        let reply =
            send(json!({"activity": "updateInstanceStatus", "instanceId": instance, "status": status}))
                .await?;
        timeline.callback(&format!("updateInstanceStatus {status}"), &reply, &["000000"], &key);
    }

    // 7. The app reports usage; the window closes and koogate pushes it.
    let (_, token) = koogate_server::api::tokens::create(&store, "demo", clock.now_ms()).await?;
    let events = json!({"events": [
        {"event_id": "demo-1", "instance_id": instance, "quantity": "1.5", "occurred_at": clock.now_ms()},
        {"event_id": "demo-2", "instance_id": instance, "quantity": "2.25", "occurred_at": clock.now_ms()},
        {"event_id": "demo-2", "instance_id": instance, "quantity": "2.25", "occurred_at": clock.now_ms()}
    ]});
    let report: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/usage"))
        .bearer_auth(&token)
        .json(&events)
        .send()
        .await?
        .json()
        .await?;
    timeline.step(
        report["accepted"] == 2 && report["duplicates"] == 1,
        "POST /api/v1/usage",
        format!("{report}"),
    );
    let window_ms = WINDOW.as_millis() as i64;
    let wait = window_ms - clock.now_ms().rem_euclid(window_ms) + 50;
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    let prepared = app.maintenance.run_once().await?;
    let pushed = app.jobs.execute_one().await?;
    let accepted = simulator.marketplace().accepted_usage();
    let total: i64 = accepted.iter().map(|u| u.units).sum();
    timeline.step(
        prepared.usage.pushes == 1 && matches!(pushed, JobOutcome::Completed { .. }) && total == 37_500,
        "usage push (window closed)",
        format!(
            "KooGallery accepted {} record(s), usage_value {}",
            accepted.len(),
            koogate_protocol::usage::format_quantity(total)
        ),
    );
    let reply = send(json!({"activity": "queryInstance", "instanceId": instance})).await?;
    let usage = reply.json().map(|j| j["info"][0]["usageInfo"][0]["usageValue"].clone()).unwrap_or_default();
    timeline.callback("queryInstance (usageInfo)", &reply, &["000000"], &key);
    timeline.step(usage == json!(3.75), "  cumulative usage", format!("usageValue={usage}"));

    // 8. The customer unsubscribes.
    let reply = send(
        json!({"activity": "releaseInstance", "instanceId": instance, "orderId": "MOCKMONTYUNSUBSCRIBE"}),
    )
    .await?;
    timeline.callback("releaseInstance (refund)", &reply, &["000000"], &key);

    // And KooGallery's refusals: a forged call.
    let forged = sender
        .send_value(
            &json!({"activity": "queryInstance", "instanceId": instance}),
            &koogate_simulator::Tamper { signature: Some("0".repeat(64)), ..Default::default() },
        )
        .await?;
    timeline.callback("forged call (bad signature)", &forged, &["000001"], &key);

    println!();
    if keep_running {
        println!("still running — koogate: {base}/saasproduce   API token: {token}");
        println!("simulated KooGallery: {sim_url}  (POST /sim/send, POST /sim/faults, GET /sim/traffic)");
        println!("press Ctrl-C to stop");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let maintenance = tokio::spawn(app.maintenance.clone().run(shutdown.clone()));
        let jobs = tokio::spawn(app.jobs.clone().run(shutdown.clone()));
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
        let _ = tokio::join!(maintenance, jobs);
    }
    store.close().await;
    if timeline.ok {
        println!("demo: every step behaved");
        Ok(())
    } else {
        Err(Failed("demo: some steps did not behave (marked !!)".into()).into())
    }
}
