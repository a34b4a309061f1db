//! Crash safety: a real `koogate serve` under `newInstance` and usage load is killed with SIGKILL at
//! random moments and restarted, over and over. Afterwards every call that was answered with success
//! must be present exactly once, and every usage event counted exactly once.
//!
//! `KOOGATE_CRASH_KILLS` sets the number of kills (default 20, the CI run; the long run uses 500):
//! `KOOGATE_CRASH_KILLS=500 cargo test -p koogate --test binary crash -- --nocapture`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use koogate_protocol::AccessKey;
use koogate_simulator::CallbackSender;
use serde_json::{json, Value};

const KEY: &str = "CrashTestKey";

fn koogate(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_koogate"));
    for (name, _) in std::env::vars() {
        if name.starts_with("KOOGATE_") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(dir)
        .env("KOOGATE_ACCESS_KEY", KEY)
        .env("KOOGATE_FRONT_END_URL", "https://app.example.com/{instance_id}")
        .env("KOOGATE_LISTEN", "127.0.0.1:0")
        .env("KOOGATE_METRICS", "false")
        .env("KOOGATE_LOG", "warn,koogate=info");
    command
}

// The child is handed to the caller, which kills and waits for it; the lint cannot see across that.
#[allow(clippy::zombie_processes)]
fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = koogate(dir).arg("serve").stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("koogate exited before listening: {status}");
        }
        if let Some(rest) = line.split("addr=").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().to_owned();
            // Keep draining stderr so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in stderr.lines() {});
            return (child, format!("http://{addr}"));
        }
    }
}

/// A tiny deterministic generator, so a failing run can be repeated.
struct Rng(u64);
impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

#[derive(Default)]
struct Ledger {
    /// order → instanceId of every newInstance answered 000000.
    acknowledged_orders: BTreeMap<String, String>,
    /// Every order sent, answered or not.
    sent_orders: Vec<String>,
    /// event id → units of every usage event sent, answered or not.
    sent_events: BTreeMap<String, i64>,
    acknowledged_events: usize,
}

#[test]
fn killed_at_random_moments_koogate_loses_and_doubles_nothing() {
    let kills: usize = std::env::var("KOOGATE_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let token_output = koogate(dir.path()).args(["tokens", "create", "--name", "crash"]).output().unwrap();
    assert!(token_output.status.success());
    let token = String::from_utf8(token_output.stdout).unwrap().lines().last().unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(0x5EED_C0FF_EE00_1234);
    let started = Instant::now();

    // The metered instance the usage load reports against.
    let (mut child, base) = start(dir.path());
    let sender = CallbackSender::new(format!("{base}/saasproduce"), AccessKey::from_text(KEY));
    let body = json!({"activity": "newInstance", "orderId": "CRASHMETER", "orderLineId": "CRASHMETER-1", "businessId": "crash-meter"});
    let reply = runtime.block_on(sender.send_value(&body, &Default::default())).unwrap();
    assert_eq!(reply.result_code().as_deref(), Some("000000"));

    for round in 0..kills {
        let base = if round == 0 {
            base.clone()
        } else {
            let (next, base) = start(dir.path());
            child = next;
            base
        };
        // Load runs while the process is killed, mid-call, after a random 20–200 ms.
        let load = runtime.spawn(load(base, token.clone(), ledger.clone(), round, rng.next(u64::MAX)));
        std::thread::sleep(Duration::from_millis(20 + rng.next(180)));
        child.kill().unwrap();
        child.wait().unwrap();
        runtime.block_on(load).unwrap();
    }

    // Recovery: every call again, answered or not. Orders must keep their one instance; events must all
    // be known already or be new — and the totals must equal each event counted once.
    let (mut child, base) = start(dir.path());
    let ledger = ledger.lock().unwrap();
    runtime.block_on(async {
        let sender = CallbackSender::new(format!("{base}/saasproduce"), AccessKey::from_text(KEY));
        for order in &ledger.sent_orders {
            let body = json!({"activity": "newInstance", "orderId": order, "orderLineId": format!("{order}-1"),
                              "businessId": format!("{order}-recheck")});
            let reply = sender.send_value(&body, &Default::default()).await.unwrap();
            assert_eq!(reply.result_code().as_deref(), Some("000000"), "{order}");
            if let Some(first) = ledger.acknowledged_orders.get(order) {
                assert_eq!(reply.instance_id().as_deref(), Some(first.as_str()), "{order} kept its acknowledged instance");
            }
        }
        let client = reqwest::Client::new();
        let events: Vec<Value> = ledger
            .sent_events
            .iter()
            .map(|(id, units)| json!({"event_id": id, "instance_id": "crash-meter", "quantity": units, "occurred_at": now_ms()}))
            .collect();
        for batch in events.chunks(5_000) {
            let report: Value = client
                .post(format!("{base}/api/v1/usage"))
                .bearer_auth(&token)
                .json(&json!({"events": batch}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(report["rejected"].as_array().unwrap().is_empty(), "{report}");
        }
        let records: Value = client
            .get(format!("{base}/api/v1/usage/records?instance_id=crash-meter"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let counted: i64 = records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| koogate_protocol::usage::parse_quantity(r["usage_value"].as_str().unwrap()).unwrap())
            .sum();
        let expected: i64 = ledger.sent_events.values().map(|units| units * 10_000).sum();
        assert_eq!(counted, expected, "every event counted exactly once");
    });
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "crash test: {kills} kills in {:.1} s; {} orders acknowledged of {} sent; {} usage events acknowledged of {} sent",
        started.elapsed().as_secs_f64(),
        ledger.acknowledged_orders.len(),
        ledger.sent_orders.len(),
        ledger.acknowledged_events,
        ledger.sent_events.len()
    );
    assert!(
        !ledger.acknowledged_orders.is_empty() && ledger.acknowledged_events > 0,
        "the load got through at times"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Sends newInstance calls and usage batches concurrently until the server goes away, recording what was
/// answered. Bounded: at most 10,000 calls of each kind.
async fn load(base: String, token: String, ledger: Arc<Mutex<Ledger>>, round: usize, seed: u64) {
    let sender = CallbackSender::new(format!("{base}/saasproduce"), AccessKey::from_text(KEY));
    let client = reqwest::Client::new();
    let orders = {
        let (sender, ledger) = (sender.clone(), ledger.clone());
        async move {
            for n in 0..10_000 {
                let order = format!("CR{round}X{n}");
                ledger.lock().unwrap().sent_orders.push(order.clone());
                let body = json!({"activity": "newInstance", "orderId": order, "orderLineId": format!("{order}-1"),
                                  "businessId": format!("{order}-b")});
                match sender.send_value(&body, &Default::default()).await {
                    Ok(reply) if reply.result_code().as_deref() == Some("000000") => {
                        ledger
                            .lock()
                            .unwrap()
                            .acknowledged_orders
                            .insert(order, reply.instance_id().unwrap());
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }
    };
    let usage = {
        let (client, ledger, base, token) = (client.clone(), ledger.clone(), base.clone(), token.clone());
        async move {
            let mut rng = Rng(seed | 1);
            for batch in 0..10_000 {
                let events: Vec<(String, i64)> =
                    (0..50).map(|i| (format!("r{round}-b{batch}-e{i}"), 1 + rng.next(9) as i64)).collect();
                ledger.lock().unwrap().sent_events.extend(events.iter().cloned());
                let body: Vec<Value> = events
                    .iter()
                    .map(|(id, units)| json!({"event_id": id, "instance_id": "crash-meter", "quantity": units, "occurred_at": now_ms()}))
                    .collect();
                let sent = client
                    .post(format!("{base}/api/v1/usage"))
                    .bearer_auth(&token)
                    .json(&json!({"events": body}))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        if response.json::<Value>().await.is_ok() {
                            ledger.lock().unwrap().acknowledged_events += events.len();
                        }
                    }
                    _ => return,
                }
            }
        }
    };
    tokio::join!(orders, usage);
}
