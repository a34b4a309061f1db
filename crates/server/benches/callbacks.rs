//! Callback throughput against this machine's ceilings, in one run (issue #8 targets): B0, a bare axum
//! hello-world; the single-sync commit rate of the disk; signed `queryInstance` over an in-memory store
//! (verify + parse + route); durable `newInstance` and `queryInstance` on SQLite and PostgreSQL; and
//! latency at a fixed offered rate of 1,000 callbacks/s. The load generator runs in-process on loopback.
//!
//! Run: `cargo bench -p koogate-server --bench callbacks` (PostgreSQL on 127.0.0.1:5432 for its rows).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use koogate_protocol::AccessKey;
use koogate_server::clock::SystemClock;
use koogate_server::{App, Config};
use koogate_simulator::CallbackSender;
use koogate_store::testing::TestDatabase;
use koogate_store::{Backend, DatabaseUrl, PoolSettings, Store};
use secrecy::SecretString;
use serde_json::json;
use sqlx::Connection;

const KEY: &str = "BenchKey";
const CONCURRENCY: usize = 32;
const REQUESTS: usize = 20_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        println!("cores: {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        let b0 = hello_world().await;
        println!("B0 hello world:                         {b0:>9.0} req/s");
        let sync = single_sync_rate().await;
        println!(
            "single-sync commits (SQLite FULL):      {sync:>9.0} commits/s  ({:.1}% of B0)",
            100.0 * sync / b0
        );
        let memory = koogate_rate("sqlite::memory:", "query").await;
        println!(
            "verify+parse+route, in-memory store:    {memory:>9.0} callbacks/s ({:.1}% of B0)",
            100.0 * memory / b0
        );
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        for activity in ["new", "query"] {
            let rate = koogate_rate(&sqlite, activity).await;
            println!(
                "durable {activity:<5} on SQLite (WAL, FULL):  {rate:>9.0} callbacks/s ({:.1}% of B0)",
                100.0 * rate / b0
            );
        }
        if tokio::net::TcpStream::connect("127.0.0.1:5432").await.is_ok() {
            let db = TestDatabase::create_on(Backend::Postgres).await;
            for activity in ["new", "query"] {
                let rate = koogate_rate(db.url().as_str(), activity).await;
                println!(
                    "durable {activity:<5} on PostgreSQL:        {rate:>9.0} callbacks/s ({:.1}% of B0)",
                    100.0 * rate / b0
                );
            }
        }
        let (p50, p99, p999) = fixed_rate_latency(&sqlite).await;
        println!(
            "newInstance at 1,000/s on SQLite:       p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms"
        );
    });
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// Runs `call(i)` for `REQUESTS` indices, `CONCURRENCY` at a time; returns calls per second.
async fn closed_loop<F, Fut>(call: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (call, next) = (call.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= REQUESTS {
                        return;
                    }
                    call(i).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    REQUESTS as f64 / started.elapsed().as_secs_f64()
}

async fn hello_world() -> f64 {
    let base = serve(axum::Router::new().route("/", get(|| async { "hello" }))).await;
    let client = reqwest::Client::new();
    closed_loop(move |_| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client.get(&base).send().await.unwrap().bytes().await.unwrap();
        }
    })
    .await
}

/// One row per transaction, fully synced, for two seconds.
async fn single_sync_rate() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("sync.db").display())).unwrap();
    let store = Store::connect(&url, &PoolSettings::default()).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let options: sqlx::sqlite::SqliteConnectOptions = url.as_str().parse().unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(
        &options
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut commits = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("INSERT INTO nonces (scope, nonce, expires_at_ms) VALUES ('bench', $1, 0)")
            .bind(commits.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        commits += 1;
    }
    commits as f64 / started.elapsed().as_secs_f64()
}

async fn start_koogate(database_url: &str) -> (String, Store) {
    let config = Config {
        access_key: Some(SecretString::from(KEY)),
        front_end_url: Some("https://app.example.com/{instance_id}".into()),
        database_url: SecretString::from(database_url.to_owned()),
        db_max_connections: 16,
        log: "warn".into(),
        ..Config::default()
    };
    let store = Store::connect(&config.database_url(), &config.pool_settings()).await.unwrap();
    store.migrate().await.unwrap();
    let app = App::build(&config, store.clone(), Arc::new(SystemClock), None).unwrap();
    (serve(app.router).await, store)
}

/// Durable `newInstance` (a new order each call) or `queryInstance` (one instance) throughput.
async fn koogate_rate(database_url: &str, activity: &str) -> f64 {
    let (base, store) = start_koogate(database_url).await;
    let sender = CallbackSender::new(format!("{base}/saasproduce"), AccessKey::from_text(KEY));
    let run = koogate_simulator::random_nonce()[..8].to_owned();
    let seed = json!({"activity": "newInstance", "orderId": format!("Q{run}"), "orderLineId": "L", "businessId": format!("q-{run}")});
    sender.send_value(&seed, &Default::default()).await.unwrap();
    let query = activity == "query";
    let rate = closed_loop(move |i| {
        let (sender, run) = (sender.clone(), run.clone());
        async move {
            let body = if query {
                json!({"activity": "queryInstance", "instanceId": format!("q-{run}")})
            } else {
                json!({"activity": "newInstance", "orderId": format!("N{run}{i}"), "orderLineId": "L", "businessId": format!("n-{run}-{i}")})
            };
            let reply = sender.send_value(&body, &Default::default()).await.unwrap();
            assert_eq!(reply.result_code().as_deref(), Some("000000"));
        }
    })
    .await;
    store.close().await;
    rate
}

/// Open loop: one `newInstance` started every millisecond for five seconds, whatever the answers do.
async fn fixed_rate_latency(database_url: &str) -> (f64, f64, f64) {
    let (base, store) = start_koogate(database_url).await;
    let sender = CallbackSender::new(format!("{base}/saasproduce"), AccessKey::from_text(KEY));
    let run = koogate_simulator::random_nonce()[..8].to_owned();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut calls = Vec::with_capacity(5_000);
    for i in 0..5_000 {
        ticker.tick().await;
        let (sender, run) = (sender.clone(), run.clone());
        calls.push(tokio::spawn(async move {
            let started = Instant::now();
            let body = json!({"activity": "newInstance", "orderId": format!("R{run}{i}"), "orderLineId": "L", "businessId": format!("r-{run}-{i}")});
            sender.send_value(&body, &Default::default()).await.unwrap();
            started.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(calls.len());
    for call in calls {
        latencies.push(call.await.unwrap().as_secs_f64() * 1e3);
    }
    store.close().await;
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (pick(0.5), pick(0.99), pick(0.999))
}
