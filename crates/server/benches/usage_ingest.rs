//! Durable usage-ingest throughput: batches of 1,000 events POSTed to `/api/v1/usage` of a real koogate
//! (in-process, on loopback) over SQLite and then PostgreSQL. Each batch is committed before its 200.
//!
//! Run: `cargo bench -p koogate-server --bench usage_ingest` (PostgreSQL on 127.0.0.1:5432 for its half;
//! `KOOGATE_BENCH_EVENTS` sets the events per backend, default 200,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use koogate_server::clock::{Clock, SystemClock};
use koogate_server::{App, Config};
use koogate_store::testing::TestDatabase;
use koogate_store::{Backend, Store};
use secrecy::SecretString;
use serde_json::json;

const BATCH: usize = 1_000;
const CONCURRENCY: usize = 4;
const INSTANCES: usize = 20;

fn main() {
    let events: usize =
        std::env::var("KOOGATE_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("durable usage ingest, batches of {BATCH}, {CONCURRENCY} concurrent clients, {events} events per backend");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        match runtime.block_on(run(backend, events)) {
            Ok((rate, elapsed)) => {
                println!(
                    "{backend:?}: {rate:.0} events/s ({events} events in {:.2} s)",
                    elapsed.as_secs_f64()
                )
            }
            Err(error) => println!("{backend:?}: skipped ({error})"),
        }
    }
}

async fn run(backend: Backend, events: usize) -> Result<(f64, Duration), String> {
    if backend == Backend::Postgres && tokio::net::TcpStream::connect("127.0.0.1:5432").await.is_err() {
        return Err("PostgreSQL is not reachable on 127.0.0.1:5432".into());
    }
    let db = TestDatabase::create_on(backend).await;
    let config = Config {
        access_key: Some(SecretString::from("BenchKey")),
        front_end_url: Some("https://app.example.com/{instance_id}".into()),
        database_url: SecretString::from(db.url().as_str().to_owned()),
        db_max_connections: 16,
        log: "warn".into(),
        ..Config::default()
    };
    let store =
        Store::connect(&config.database_url(), &config.pool_settings()).await.map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let app = App::build(&config, store.clone(), Arc::new(SystemClock), None).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app.router).await });

    let sender = koogate_simulator::CallbackSender::new(
        format!("{base}/saasproduce"),
        koogate_protocol::AccessKey::from_text("BenchKey"),
    );
    for i in 0..INSTANCES {
        let body = json!({"activity": "newInstance", "orderId": format!("B{i}"), "orderLineId": format!("B{i}-1"), "businessId": format!("bench-{i}")});
        sender.send_value(&body, &Default::default()).await.map_err(|e| e.to_string())?;
    }
    let token = koogate_server::api::tokens::create(&store, "bench", SystemClock.now_ms())
        .await
        .map_err(|e| e.to_string())?
        .1;

    // Bodies are built before the clock starts: the client's JSON work is not koogate's.
    let now = SystemClock.now_ms();
    let bodies: Vec<Vec<u8>> = (0..events.div_ceil(BATCH))
        .map(|b| {
            let batch: Vec<_> = (0..BATCH)
                .map(|i| json!({"event_id": format!("ev-{b}-{i}"), "instance_id": format!("bench-{}", i % INSTANCES),
                                "quantity": "1.25", "occurred_at": now}))
                .collect();
            serde_json::to_vec(&json!({ "events": batch })).unwrap()
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (bodies, next, client, url, token) =
                (bodies.clone(), next.clone(), client.clone(), format!("{base}/api/v1/usage"), token.clone());
            tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(index) else { return Ok::<(), String>(()) };
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let report: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
                    if report["accepted"].as_u64() != Some(BATCH as u64) {
                        return Err(format!("unexpected answer {report}"));
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed();
    let total = bodies.len() * BATCH;
    store.close().await;
    Ok((total as f64 / elapsed.as_secs_f64(), elapsed))
}
