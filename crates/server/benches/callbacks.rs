//! Callback throughput against this machine's ceilings, in one run (issue #8 targets): B0, a bare axum
//! hello-world; the single-sync commit rate of the disk; signed `queryInstance` over an in-memory store
//! (verify + parse + route); durable `newInstance` and `queryInstance` on SQLite and PostgreSQL; and
//! latency at a fixed offered rate of 1,000 callbacks/s. The load generator runs in-process on loopback.
//!
//! Run: `cargo bench -p koogate-server --bench callbacks` (PostgreSQL on 127.0.0.1:5432 for its rows).
//! The results replace the generated section of `docs/benchmarks.md`, stamped with the commit and the
//! machine; `KOOGATE_BENCH_WRITE=0` only prints them.

use std::fmt::Write as _;
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
const START_MARK: &str = "<!-- bench:callbacks:start -->";
const END_MARK: &str = "<!-- bench:callbacks:end -->";

/// One line of the results table.
struct Row {
    what: &'static str,
    figure: String,
    /// Rate as a share of B0, where the row is a rate.
    ratio: Option<f64>,
    target: &'static str,
    verdict: String,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let rows = runtime.block_on(measure());
    let section = render(&rows);
    println!("{section}");
    if std::env::var("KOOGATE_BENCH_WRITE").as_deref() != Ok("0") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
        let doc = std::fs::read_to_string(&path).expect("docs/benchmarks.md is readable");
        let (Some(start), Some(end)) = (doc.find(START_MARK), doc.find(END_MARK)) else {
            panic!("docs/benchmarks.md lacks the {START_MARK} … {END_MARK} markers");
        };
        let updated = format!("{}{START_MARK}\n{section}{}", &doc[..start], &doc[end..]);
        std::fs::write(&path, updated).expect("docs/benchmarks.md is writable");
        println!("written to {}", path.display());
    }
}

async fn measure() -> Vec<Row> {
    let mut rows = Vec::new();
    let b0 = median(hello_world).await;
    eprintln!("B0: {b0:.0} req/s");
    let rate = |what, value: f64, unit: &str, target: &'static str, goal: Option<f64>| {
        let ratio = value / b0;
        let verdict = match goal {
            None => String::new(),
            Some(goal) if ratio >= goal => "met".into(),
            Some(goal) => format!(
                "missed: {:.1} % of the {:.0} % asked (×{:.1} short)",
                100.0 * ratio,
                100.0 * goal,
                goal / ratio
            ),
        };
        Row { what, figure: format!("{} {unit}", thousands(value)), ratio: Some(ratio), target, verdict }
    };
    rows.push(rate("B0: bare axum hello-world", b0, "req/s", "—", None));
    let sync = median(single_sync_rate).await;
    eprintln!("single sync: {sync:.0}/s");
    rows.push(rate("single-sync commit rate (SQLite WAL, FULL)", sync, "commits/s", "—", None));
    let memory = median(|| koogate_rate("sqlite::memory:", "query")).await;
    eprintln!("in memory: {memory:.0}/s");
    rows.push(rate(
        "verify + parse + route, in-memory SQLite store",
        memory,
        "callbacks/s",
        "≥ 60 %",
        Some(0.60),
    ));
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let new = median(|| koogate_rate(&sqlite, "new")).await;
    eprintln!("durable new: {new:.0}/s");
    let mut row = rate(
        "durable `newInstance`, SQLite (WAL, FULL)",
        new,
        "callbacks/s",
        "≥ 25 % and above single-sync",
        Some(0.25),
    );
    row.verdict = format!(
        "{}; {} the single-sync rate (×{:.2})",
        row.verdict,
        if new > sync { "above" } else { "below" },
        new / sync
    );
    rows.push(row);
    let query = median(|| koogate_rate(&sqlite, "query")).await;
    eprintln!("durable query: {query:.0}/s");
    rows.push(rate(
        "durable `queryInstance`, SQLite (WAL, FULL)",
        query,
        "callbacks/s",
        "≥ 50 %",
        Some(0.50),
    ));
    if tokio::net::TcpStream::connect("127.0.0.1:5432").await.is_ok() {
        let db = TestDatabase::create_on(Backend::Postgres).await;
        let new = median(|| koogate_rate(db.url().as_str(), "new")).await;
        rows.push(rate("durable `newInstance`, PostgreSQL", new, "callbacks/s", "—", None));
        let query = median(|| koogate_rate(db.url().as_str(), "query")).await;
        rows.push(rate("durable `queryInstance`, PostgreSQL", query, "callbacks/s", "—", None));
        eprintln!("PostgreSQL: new {new:.0}/s, query {query:.0}/s");
    }
    let (p50, p99, p999) = fixed_rate_latency(&sqlite).await;
    rows.push(Row {
        what: "`newInstance` at a fixed 1,000/s, SQLite",
        figure: format!("p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms"),
        ratio: None,
        target: "p99 ≤ 50 ms",
        verdict: if p99 <= 50.0 { "met".into() } else { format!("missed by {:.1} ms", p99 - 50.0) },
    });
    rows
}

/// The median of three runs: this machine's speed drifts (it shares its host), and one slow run would
/// otherwise skew a ratio.
async fn median<F, Fut>(run: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let mut rates = [run().await, run().await, run().await];
    rates.sort_by(f64::total_cmp);
    rates[1]
}

fn render(rows: &[Row]) -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Generated by `cargo bench -p koogate-server --bench callbacks` at commit {commit}{}, {} UTC, on {cores} \
         cores ({cpu}). Load generator in-process, {CONCURRENCY} concurrent callers, {REQUESTS} calls per run; \
         every rate is the median of three runs. The generator signs every call and shares the cores with \
         koogate.\n",
        if dirty { " with uncommitted changes" } else { "" },
        time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]"))
            .unwrap_or_default(),
    );
    out.push_str("| measurement | result | ratio to B0 | target | verdict |\n|---|---|---|---|---|\n");
    for row in rows {
        let ratio = row.ratio.map(|r| format!("{:.1} %", 100.0 * r)).unwrap_or_else(|| "—".into());
        let _ =
            writeln!(out, "| {} | {} | {ratio} | {} | {} |", row.what, row.figure, row.target, row.verdict);
    }
    out
}

/// `12345.6` as `12,346`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
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
