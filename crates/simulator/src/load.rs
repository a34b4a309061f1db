//! A simple load generator: many signed callbacks at once against a production URL, with a report of
//! throughput, latency percentiles and result codes. Used for the figures in the README and notes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use koogate_protocol::AccessKey;
use serde_json::json;
use tokio::sync::Mutex;

use crate::sender::{random_nonce, CallbackSender};

/// Which call the load consists of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadActivity {
    /// A `newInstance` for a new order each time: one durable instance per call.
    New,
    /// `queryInstance` of one instance created first: the buyer-console hot path.
    Query,
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub target: String,
    pub key: AccessKey,
    pub requests: usize,
    pub concurrency: usize,
    pub activity: LoadActivity,
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub requests: usize,
    pub elapsed: Duration,
    /// Count per `resultCode` (`http-error` for transport failures).
    pub codes: BTreeMap<String, usize>,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "requests     {}", self.requests)?;
        writeln!(f, "elapsed      {:.2} s", self.elapsed.as_secs_f64())?;
        writeln!(f, "throughput   {:.0} callbacks/s", self.per_second())?;
        writeln!(f, "latency p50  {:.2} ms", self.p50.as_secs_f64() * 1e3)?;
        writeln!(f, "latency p99  {:.2} ms", self.p99.as_secs_f64() * 1e3)?;
        writeln!(f, "latency max  {:.2} ms", self.max.as_secs_f64() * 1e3)?;
        for (code, count) in &self.codes {
            writeln!(f, "resultCode {code}: {count}")?;
        }
        Ok(())
    }
}

/// Sends `plan.requests` calls with `plan.concurrency` in flight at a time.
pub async fn run(plan: LoadPlan) -> LoadReport {
    let sender = CallbackSender::new(plan.target.clone(), plan.key.clone());
    let run_id = &random_nonce()[..12];
    let query_id = format!("load-{run_id}");
    if plan.activity == LoadActivity::Query {
        let body = json!({"activity": "newInstance", "orderId": format!("LOAD{run_id}"),
                          "orderLineId": format!("LOAD{run_id}-000001"), "businessId": query_id});
        let _ = sender.send_value(&body, &Default::default()).await;
    }
    let next = Arc::new(Mutex::new(0usize));
    let results = Arc::new(Mutex::new((Vec::with_capacity(plan.requests), BTreeMap::new())));
    let started = Instant::now();
    let workers: Vec<_> = (0..plan.concurrency.max(1))
        .map(|_| {
            let (sender, next, results) = (sender.clone(), next.clone(), results.clone());
            let (plan, run_id, query_id) = (plan.clone(), run_id.to_owned(), query_id.clone());
            tokio::spawn(async move {
                loop {
                    let index = {
                        let mut next = next.lock().await;
                        if *next >= plan.requests {
                            return;
                        }
                        *next += 1;
                        *next
                    };
                    let body = match plan.activity {
                        LoadActivity::New => json!({"activity": "newInstance",
                            "orderId": format!("LOAD{run_id}{index}"), "orderLineId": format!("LOAD{run_id}{index}-000001"),
                            "businessId": format!("load-{run_id}-{index}")}),
                        LoadActivity::Query => json!({"activity": "queryInstance", "instanceId": query_id}),
                    };
                    let sent = Instant::now();
                    let code = match sender.send_value(&body, &Default::default()).await {
                        Ok(reply) => reply.result_code().unwrap_or_else(|| "unparseable".into()),
                        Err(_) => "http-error".into(),
                    };
                    let latency = sent.elapsed();
                    let mut results = results.lock().await;
                    results.0.push(latency);
                    *results.1.entry(code).or_insert(0) += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    let (mut latencies, codes) = std::mem::take(&mut *results.lock().await);
    latencies.sort();
    let pick = |q: f64| {
        latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1))).copied()
    };
    LoadReport {
        requests: latencies.len(),
        elapsed,
        codes,
        p50: pick(0.50).unwrap_or_default(),
        p99: pick(0.99).unwrap_or_default(),
        max: latencies.last().copied().unwrap_or_default(),
    }
}
