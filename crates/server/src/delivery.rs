//! Delivering outbox events to the merchant's app — as Standard Webhooks POSTs or to a local command —
//! in order per instance, retried on a schedule spanning days, honouring `Retry-After`, and ending `dead`
//! (listable, replayable) when the schedule is used up.
//!
//! Tests call [`Deliverer::deliver_one`] with a manual clock instead of waiting for the timer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use koogate_protocol::ids::InstanceId;
use koogate_protocol::webhook::{self, WebhookSecret};
use koogate_store::{Delivery, Store, StoreError};
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::events;
use crate::order_fetch::FETCH_ORDER;
use crate::provisioning::{ProvisioningResults, ReportedAppInfo};

/// `Retry-After` is honoured up to this long; a longer value is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How often an `instance.created` waiting for its order looks again.
const ORDER_WAIT_STEP_MS: i64 = 2_000;
/// The most of an app's answer that is read.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Where events go.
#[derive(Clone)]
pub enum Destination {
    Webhook { url: String, secrets: Arc<Vec<WebhookSecret>>, client: reqwest::Client },
    Command { program: PathBuf, timeout: Duration },
}

impl Destination {
    pub fn webhook(
        url: String,
        secrets: Vec<WebhookSecret>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("koogate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Destination::Webhook { url, secrets: Arc::new(secrets), client })
    }
}

/// The wait before attempt `failed + 1`, after `failed` failed attempts: the schedule's entry with ±10 %
/// jitter (`jitter` in `[0, 1)`), but never sooner than the app's `Retry-After`. `None` once the
/// schedule is used up: the delivery is dead.
pub fn next_delay(
    schedule: &[Duration],
    failed: u32,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let index = usize::try_from(failed).ok()?.checked_sub(1)?;
    let planned = schedule.get(index)?.mul_f64(0.9 + 0.2 * jitter.clamp(0.0, 1.0));
    Some(match retry_after {
        Some(wait) => planned.max(wait.min(MAX_RETRY_AFTER)),
        None => planned,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Idle,
    Delivered {
        event_id: String,
    },
    Retried {
        event_id: String,
        next_attempt_at_ms: i64,
    },
    Dead {
        event_id: String,
    },
    /// `instance.created` is held until the order details are known.
    Postponed {
        event_id: String,
        until_ms: i64,
    },
    /// The lease ran out during the attempt; another replica owns the event now.
    LeaseLost {
        event_id: String,
    },
}

#[derive(Clone)]
pub struct DeliverySettings {
    pub schedule: Vec<Duration>,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// The app provisions instances: a JSON app info in its answer to `instance.created` completes it.
    pub app_provisions: bool,
    /// Hold `instance.created` for at most this long while its order is being fetched.
    pub order_wait: Option<Duration>,
}

#[derive(Clone)]
pub struct Deliverer {
    store: Store,
    clock: Arc<dyn Clock>,
    destination: Destination,
    settings: DeliverySettings,
    results: ProvisioningResults,
    owner: String,
}

/// What one attempt produced.
struct Attempt {
    ok: bool,
    status: Option<i32>,
    error: Option<String>,
    retry_after: Option<Duration>,
    reply: Vec<u8>,
}

impl Deliverer {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        destination: Destination,
        settings: DeliverySettings,
        results: ProvisioningResults,
    ) -> Self {
        let suffix: u32 = rand::thread_rng().gen();
        let owner = format!("koogate-{}-{suffix:08x}", std::process::id());
        Self { store, clock, destination, settings, results, owner }
    }

    /// Claims and attempts at most one due event.
    pub async fn deliver_one(&self) -> Result<DeliveryOutcome, StoreError> {
        let lease_ms = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX);
        let now = self.clock.now_ms();
        let Some(delivery) = self.store.claim_delivery(&self.owner, now, lease_ms).await? else {
            return Ok(DeliveryOutcome::Idle);
        };
        let event_id = delivery.event_id.clone();
        let span = tracing::info_span!("delivery", event_id = %event_id, event_type = %delivery.event_type,
            instance_id = %delivery.instance_id, attempt = delivery.attempts + 1);
        let _entered = span.enter();
        if delivery.body.is_none() && self.waits_for_order(&delivery, now).await? {
            let until_ms = now + ORDER_WAIT_STEP_MS;
            self.store.postpone_delivery(delivery.id, &self.owner, until_ms, now).await?;
            return Ok(DeliveryOutcome::Postponed { event_id, until_ms });
        }
        let body = self.body(&delivery).await?;
        let attempt = match &self.destination {
            Destination::Webhook { url, secrets, client } => {
                post(client, url, secrets, &delivery, &body, now).await
            }
            Destination::Command { program, timeout } => {
                run_command(program, *timeout, &delivery, &body).await
            }
        };
        self.settle(&delivery, attempt).await
    }

    async fn settle(&self, delivery: &Delivery, attempt: Attempt) -> Result<DeliveryOutcome, StoreError> {
        let now = self.clock.now_ms();
        let event_id = delivery.event_id.clone();
        let (id, owner) = (delivery.id, self.owner.as_str());
        if attempt.ok {
            if delivery.event_type == events::EventType::Created.as_str()
                && self.settings.app_provisions
                && !delivery.test
            {
                self.apply_reply(&delivery.instance_id, &attempt.reply).await;
            }
            let settled =
                self.store.settle_delivery(id, owner, "delivered", None, attempt.status, None, now).await?;
            tracing::info!(status = ?attempt.status, "delivered");
            return Ok(if settled {
                DeliveryOutcome::Delivered { event_id }
            } else {
                DeliveryOutcome::LeaseLost { event_id }
            });
        }
        let failed = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
        let jitter: f64 = rand::thread_rng().gen();
        let error = attempt.error.as_deref();
        let outcome = match next_delay(&self.settings.schedule, failed, jitter, attempt.retry_after) {
            Some(delay) => {
                let next = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                tracing::warn!(status = ?attempt.status, error, retry_in_s = delay.as_secs(), "delivery failed; will retry");
                let settled = self
                    .store
                    .settle_delivery(id, owner, "pending", Some(next), attempt.status, error, now)
                    .await?;
                settled.then_some(DeliveryOutcome::Retried {
                    event_id: event_id.clone(),
                    next_attempt_at_ms: next,
                })
            }
            None => {
                tracing::error!(status = ?attempt.status, error, "delivery failed for good; dead until replayed");
                let settled =
                    self.store.settle_delivery(id, owner, "dead", None, attempt.status, error, now).await?;
                settled.then_some(DeliveryOutcome::Dead { event_id: event_id.clone() })
            }
        };
        Ok(outcome.unwrap_or(DeliveryOutcome::LeaseLost { event_id }))
    }

    /// Whether `instance.created` should wait: order fetching is on, the instance's order is not stored
    /// yet, its fetch job is still pending, and the wait has not run out.
    async fn waits_for_order(&self, delivery: &Delivery, now: i64) -> Result<bool, StoreError> {
        let Some(max_wait) = self.settings.order_wait else { return Ok(false) };
        let max_wait_ms = i64::try_from(max_wait.as_millis()).unwrap_or(i64::MAX);
        if delivery.event_type != events::EventType::Created.as_str()
            || delivery.test
            || now - delivery.created_at_ms >= max_wait_ms
        {
            return Ok(false);
        }
        if !self.store.orders_for_instance(&delivery.instance_id).await?.is_empty() {
            return Ok(false);
        }
        let data: serde_json::Value = serde_json::from_str(&delivery.data).unwrap_or_default();
        let key = format!(
            "{}/{}",
            data["order_id"].as_str().unwrap_or(""),
            data["order_line_id"].as_str().unwrap_or("")
        );
        let job = self.store.job_by_key(FETCH_ORDER, &key).await?;
        Ok(job.is_some_and(|job| job.state == "pending"))
    }

    /// The event's body, built and fixed at the first attempt.
    async fn body(&self, delivery: &Delivery) -> Result<String, StoreError> {
        if let Some(body) = &delivery.body {
            return Ok(body.clone());
        }
        let orders = self.store.orders_for_instance(&delivery.instance_id).await?;
        let body = events::body(&delivery.event_type, delivery.created_at_ms, &delivery.data, orders.last());
        self.store.freeze_delivery_body(delivery.id, &self.owner, &body).await?;
        Ok(body)
    }

    /// Completes provisioning from the app's answer to `instance.created`, when it holds app details. An
    /// empty or different answer is fine: the app may report through the API later.
    async fn apply_reply(&self, instance_id: &str, reply: &[u8]) {
        if reply.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(app) = serde_json::from_slice::<ReportedAppInfo>(reply) else {
            tracing::info!("the app's answer holds no app details; waiting for it to report through the API");
            return;
        };
        let Ok(id) = InstanceId::parse(instance_id) else { return };
        if let Err(error) = self.results.provisioned(&id, app.into()).await {
            tracing::warn!(%error, "the app details in the app's answer were not applied");
        }
    }

    /// Delivers until `shutdown`: back to back while events are due, every poll interval otherwise.
    pub async fn run(self, shutdown: CancellationToken) {
        let idle = self.settings.poll_interval;
        crate::workers::poll_until_shutdown(shutdown, idle, || async {
            match self.deliver_one().await {
                Ok(DeliveryOutcome::Idle) | Ok(DeliveryOutcome::Postponed { .. }) => false,
                Ok(_) => true,
                Err(error) => {
                    tracing::warn!(error = ?error, "claiming a delivery failed; retrying after the poll interval");
                    false
                }
            }
        })
        .await;
    }
}

/// One Standard Webhooks POST, signed now (a fresh timestamp and signature per attempt, the same id).
async fn post(
    client: &reqwest::Client,
    url: &str,
    secrets: &[WebhookSecret],
    delivery: &Delivery,
    body: &str,
    now_ms: i64,
) -> Attempt {
    let timestamp = now_ms.div_euclid(1000);
    let signature = webhook::signature_header(secrets, &delivery.event_id, timestamp, body.as_bytes());
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header(webhook::ID_HEADER, &delivery.event_id)
        .header(webhook::TIMESTAMP_HEADER, timestamp.to_string())
        .header(webhook::SIGNATURE_HEADER, signature)
        .body(body.to_owned())
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            let kind = if error.is_timeout() { "timed out" } else { "could not be sent" };
            return Attempt {
                ok: false,
                status: None,
                error: Some(format!("the request {kind}: {error}")),
                retry_after: None,
                reply: Vec::new(),
            };
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now_ms));
    let mut reply = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    reply.truncate(MAX_REPLY_BYTES);
    Attempt {
        ok: status.is_success(),
        status: Some(i32::from(status.as_u16())),
        error: (!status.is_success()).then(|| format!("HTTP {status}")),
        retry_after,
        reply,
    }
}

/// `Retry-After` as seconds or as an HTTP date.
fn parse_retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at =
        time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc2822).ok()?;
    let wait_ms = (at.unix_timestamp() * 1000).saturating_sub(now_ms);
    Some(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)))
}

/// Runs the app's command with the event on standard input; exit status 0 is success, and standard
/// output is the reply. The command is killed if it outlives `timeout`.
async fn run_command(program: &PathBuf, timeout: Duration, delivery: &Delivery, body: &str) -> Attempt {
    let failed = |error: String| Attempt {
        ok: false,
        status: None,
        error: Some(error),
        retry_after: None,
        reply: Vec::new(),
    };
    let spawned = tokio::process::Command::new(program)
        .env("KOOGATE_EVENT_ID", &delivery.event_id)
        .env("KOOGATE_EVENT_TYPE", &delivery.event_type)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => return failed(format!("cannot run {}: {error}", program.display())),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is not a failure in itself; its exit status decides.
        let _ = stdin.write_all(body.as_bytes()).await;
    }
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => failed(format!("the command did not finish within {} s", timeout.as_secs())),
        Ok(Err(error)) => failed(format!("waiting for the command failed: {error}")),
        Ok(Ok(output)) if output.status.success() => {
            Attempt { ok: true, status: Some(0), error: None, retry_after: None, reply: output.stdout }
        }
        Ok(Ok(output)) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let code = output.status.code().unwrap_or(-1);
            Attempt {
                ok: false,
                status: Some(code),
                error: Some(format!(
                    "exit status {code}: {}",
                    stderr.trim().chars().take(500).collect::<String>()
                )),
                retry_after: None,
                reply: Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_followed_with_jitter_and_ends() {
        let schedule = [Duration::from_secs(10), Duration::from_secs(100)];
        assert_eq!(next_delay(&schedule, 1, 0.5, None), Some(Duration::from_secs(10)));
        assert_eq!(next_delay(&schedule, 2, 0.0, None), Some(Duration::from_secs(90)));
        assert_eq!(next_delay(&schedule, 2, 0.999_999_9, None).map(|d| d.as_secs()), Some(109));
        assert_eq!(next_delay(&schedule, 3, 0.5, None), None);
    }

    #[test]
    fn retry_after_postpones_but_is_capped() {
        let schedule = [Duration::from_secs(10)];
        assert_eq!(
            next_delay(&schedule, 1, 0.5, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            next_delay(&schedule, 1, 0.5, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            next_delay(&schedule, 1, 0.5, Some(Duration::from_secs(10 * 86_400))),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn the_default_schedule_spans_at_least_72_hours() {
        let config = crate::config::Config::default();
        let total: Duration = config.delivery_schedule().unwrap().iter().sum();
        assert!(total >= Duration::from_secs(72 * 3600), "{total:?}");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        let now = 1_445_412_420_000; // 2015-10-21T07:27:00Z
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("soon", 0), None);
    }
}
