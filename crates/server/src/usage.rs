//! Pay-per-use metering: usage events from the merchant's app counted exactly once into hourly (by
//! default) records, records sealed when their window ends, pushed to KooGallery in batches of at most
//! 1,000, and use-until-stop package quotas enforced.
//!
//! An event whose window was already sealed (pushed or being pushed), or whose window already holds usage
//! under another package (or none), is counted in the next such free window of the same instance: a
//! pushed record must never change, and KooGallery ignores a second record with the same instance and
//! period.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use koogate_protocol::datetime::parse_compact_utc;
use koogate_protocol::ids::InstanceId;
use koogate_protocol::usage::{
    old_usage_push_body, parse_quantity, usage_push_body, UsageRecord, MAX_RECORDS_PER_PUSH,
    MAX_RECORD_AGE_MS, UNITS_PER_ONE,
};
use koogate_store::{Instance, InstanceStatus, Job, NewJob, Store, StoreError, Tx, UsageEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::events::{self, EventType};
use std::time::Duration;

use crate::jobs::{JobFailure, JobHandler, RetryPolicy};
use crate::marketplace::MarketplaceClient;

pub const PUSH_USAGE: &str = "push_usage";
/// Events may be this far ahead of the server's clock.
const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

/// One event as the app sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageEventInput {
    /// Unique per event; a repeated id is counted once (1 to 128 printable characters).
    pub event_id: String,
    /// The pay-per-use instance the usage belongs to.
    pub instance_id: String,
    /// Positive, at most four decimal places; a JSON number or a decimal string.
    #[schema(value_type = String, example = "12.5")]
    pub quantity: Value,
    /// When the usage happened: RFC 3339 (`2026-12-04T10:15:00Z`) or UNIX milliseconds.
    #[schema(value_type = String, example = "2026-12-04T10:15:00Z")]
    pub occurred_at: Value,
    /// The use-until-stop package this usage consumes.
    pub package_instance_id: Option<String>,
}

/// An event that was not counted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RejectedEvent {
    /// Position in the request.
    pub index: usize,
    pub event_id: String,
    /// `invalid_event`, `unknown_instance`, `test_instance`, `instance_not_active`, `invalid_quantity`, `time_out_of_range`,
    /// `unknown_package` or `package_exhausted`.
    pub code: &'static str,
    pub message: String,
}

/// The outcome of one ingest request.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct IngestReport {
    /// Newly counted events.
    pub accepted: usize,
    /// Events whose id was counted before (now or earlier); counted once.
    pub duplicates: usize,
    pub rejected: Vec<RejectedEvent>,
}

/// A validated event, before it is known to be new.
struct Candidate {
    index: usize,
    event: UsageEvent,
    package_quota: Option<i64>,
}

#[derive(Clone)]
pub struct Metering {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub window_ms: i64,
    /// Emit `package.exhausted` to the merchant's app.
    pub events: bool,
    /// Push with the old AK/SK usage API.
    pub old_api: bool,
}

fn reject(index: usize, event_id: &str, code: &'static str, message: impl Into<String>) -> RejectedEvent {
    RejectedEvent { index, event_id: event_id.to_owned(), code, message: message.into() }
}

/// A metering serial number that is the same every time for the same record.
pub fn metering_sn(instance_id: &str, package: &str, window_start_ms: i64) -> String {
    let digest = Sha256::digest(format!("{instance_id}|{package}|{window_start_ms}").as_bytes());
    format!("kg-{}", hex::encode(&digest[..16]))
}

fn parse_time(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .or_else(|| parse_compact_utc(s).ok()),
        _ => None,
    }
}

impl Metering {
    fn window_start(&self, at_ms: i64) -> i64 {
        at_ms.div_euclid(self.window_ms) * self.window_ms
    }

    /// Counts a batch of events. Every good event is durable when this returns; bad ones are reported
    /// one by one without affecting the others.
    pub async fn ingest(&self, inputs: Vec<UsageEventInput>) -> Result<IngestReport, StoreError> {
        let now = self.clock.now_ms();
        let mut report = IngestReport::default();
        let mut tx = self.store.begin().await?;
        let instances = self.load_instances(&mut tx, &inputs).await?;
        let mut candidates = Vec::with_capacity(inputs.len());
        let mut seen = HashSet::with_capacity(inputs.len());
        for (index, input) in inputs.into_iter().enumerate() {
            match self.validate(index, input, &instances, now) {
                Ok(candidate) if seen.insert(candidate.event.event_id.clone()) => candidates.push(candidate),
                Ok(_) => report.duplicates += 1,
                Err(rejected) => report.rejected.push(rejected),
            }
        }
        let events: Vec<UsageEvent> = candidates.iter().map(|c| c.event.clone()).collect();
        let new_ids: HashSet<String> = tx.insert_usage_events(&events).await?.into_iter().collect();
        report.duplicates += candidates.len() - new_ids.len();
        let mut counted = Vec::with_capacity(new_ids.len());
        for candidate in candidates.into_iter().filter(|c| new_ids.contains(&c.event.event_id)) {
            match self.consume_package(&mut tx, &candidate, now).await? {
                Ok(()) => counted.push(candidate.event),
                Err(rejected) => {
                    tx.delete_usage_event(&candidate.event.event_id).await?;
                    report.rejected.push(rejected);
                }
            }
        }
        report.accepted = counted.len();
        self.add_to_records(&mut tx, counted, now).await?;
        tx.commit().await?;
        report.rejected.sort_by_key(|r| r.index);
        Ok(report)
    }

    async fn load_instances(
        &self,
        tx: &mut Tx,
        inputs: &[UsageEventInput],
    ) -> Result<HashMap<String, Instance>, StoreError> {
        let mut ids: Vec<InstanceId> = Vec::new();
        let mut wanted = HashSet::new();
        for input in inputs {
            for id in std::iter::once(&input.instance_id).chain(input.package_instance_id.as_ref()) {
                if wanted.insert(id.clone()) {
                    if let Ok(id) = InstanceId::parse(id) {
                        ids.push(id);
                    }
                }
            }
        }
        let mut found = HashMap::new();
        for chunk in ids.chunks(500) {
            for instance in tx.instances(chunk).await? {
                found.insert(instance.instance_id.to_string(), instance);
            }
        }
        Ok(found)
    }

    fn validate(
        &self,
        index: usize,
        input: UsageEventInput,
        instances: &HashMap<String, Instance>,
        now: i64,
    ) -> Result<Candidate, RejectedEvent> {
        let id = input.event_id.clone();
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(reject(
                index,
                &id,
                "invalid_event",
                "event_id must be 1 to 128 printable ASCII characters",
            ));
        }
        let instance = instances.get(&input.instance_id).ok_or_else(|| {
            reject(index, &id, "unknown_instance", format!("no instance {}", input.instance_id))
        })?;
        if instance.test {
            // KooGallery does not know debug instances: a record for one would fail its whole push.
            return Err(reject(index, &id, "test_instance", "debug (testFlag=1) instances take no usage"));
        }
        if instance.status != InstanceStatus::Active {
            let message =
                format!("the instance is {}; only active instances take usage", instance.status.as_str());
            return Err(reject(index, &id, "instance_not_active", message));
        }
        let quantity = match &input.quantity {
            Value::String(s) => parse_quantity(s),
            Value::Number(n) => parse_quantity(&n.to_string()),
            _ => parse_quantity(""),
        }
        .map_err(|e| reject(index, &id, "invalid_quantity", e.to_string()))?;
        let occurred = parse_time(&input.occurred_at).ok_or_else(|| {
            reject(index, &id, "time_out_of_range", "occurred_at must be RFC 3339 or UNIX milliseconds")
        })?;
        if occurred < instance.created_at_ms {
            // KooGallery refuses a period that begins before the resource existed (open-apis §5.2).
            return Err(reject(
                index,
                &id,
                "time_out_of_range",
                "occurred_at is before the instance was created",
            ));
        }
        if occurred > now + MAX_FUTURE_MS || occurred < now - MAX_RECORD_AGE_MS + self.window_ms {
            let message = "occurred_at must lie between 21 days ago (less one window) and 5 minutes from now";
            return Err(reject(index, &id, "time_out_of_range", message));
        }
        let package_quota = match &input.package_instance_id {
            None => None,
            Some(package) => {
                let quota = instances.get(package).and_then(|p| p.linear_value).filter(|q| *q > 0);
                let quota = quota.ok_or_else(|| {
                    reject(
                        index,
                        &id,
                        "unknown_package",
                        format!("package {package} is unknown or its quota is not known yet"),
                    )
                })?;
                Some(quota.saturating_mul(UNITS_PER_ONE))
            }
        };
        Ok(Candidate {
            index,
            package_quota,
            event: UsageEvent {
                event_id: id,
                instance_id: input.instance_id,
                package_instance_id: input.package_instance_id,
                units: quantity,
                occurred_at_ms: occurred,
                window_start_ms: self.window_start(occurred),
                received_at_ms: now,
            },
        })
    }

    /// Takes a package event's units from its quota; refuses it when the quota would be exceeded, and
    /// announces the exhaustion the first time.
    async fn consume_package(
        &self,
        tx: &mut Tx,
        candidate: &Candidate,
        now: i64,
    ) -> Result<Result<(), RejectedEvent>, StoreError> {
        let (Some(package), Some(quota)) = (&candidate.event.package_instance_id, candidate.package_quota)
        else {
            return Ok(Ok(()));
        };
        let used = tx.consume_package(package, candidate.event.units, quota).await?;
        if used.is_some_and(|used| used < quota) {
            return Ok(Ok(()));
        }
        if tx.mark_package_exhausted(package, now).await? && self.events {
            let test = false;
            events::emit(
                tx,
                EventType::PackageExhausted,
                package,
                test,
                json!({"quota": quota / UNITS_PER_ONE}),
                now,
            )
            .await?;
            tracing::info!(package_instance_id = %package, "package quota exhausted");
        }
        Ok(match used {
            Some(_) => Ok(()),
            None => Err(reject(
                candidate.index,
                &candidate.event.event_id,
                "package_exhausted",
                "the package's quota is used up",
            )),
        })
    }

    /// Adds counted events to their records, moving past sealed windows.
    async fn add_to_records(&self, tx: &mut Tx, events: Vec<UsageEvent>, now: i64) -> Result<(), StoreError> {
        let mut groups: BTreeMap<(String, String, i64), (i64, Vec<String>)> = BTreeMap::new();
        for event in events {
            let key =
                (event.instance_id, event.package_instance_id.unwrap_or_default(), event.window_start_ms);
            let group = groups.entry(key).or_default();
            group.0 += event.units;
            group.1.push(event.event_id);
        }
        for ((instance, package, natural), (units, ids)) in groups {
            let mut window = natural;
            loop {
                let sn = metering_sn(&instance, &package, window);
                if tx
                    .add_to_usage_record(
                        &instance,
                        &package,
                        window,
                        window + self.window_ms,
                        units,
                        &sn,
                        now,
                    )
                    .await?
                {
                    break;
                }
                window += self.window_ms;
            }
            if window != natural {
                tx.move_usage_events(&ids, window).await?;
            }
        }
        Ok(())
    }

    /// Seals ended windows, expires records too old for KooGallery, and batches sealed records into
    /// pushes (each stored with its exact body, with a push job) — all in the database, so a crash at
    /// any point neither loses nor doubles a record.
    pub async fn prepare_pushes(&self) -> Result<PushPreparation, StoreError> {
        let now = self.clock.now_ms();
        let sealed = self.store.seal_usage_windows(now).await?;
        let expired = self.store.expire_usage_records(now - MAX_RECORD_AGE_MS, now).await?;
        let mut pushes = 0;
        loop {
            let mut tx = self.store.begin().await?;
            let records = tx.sealed_usage_records(MAX_RECORDS_PER_PUSH as i64).await?;
            if records.is_empty() {
                break;
            }
            let facts = self.instance_facts(&mut tx, &records).await?;
            let usage: Vec<UsageRecord> = records
                .iter()
                .map(|r| UsageRecord {
                    instance_id: r.instance_id.clone(),
                    // A period may not begin before the instance existed (open-apis §5.2).
                    begin_time_ms: facts
                        .get(&r.instance_id)
                        .map_or(r.window_start_ms, |f| r.window_start_ms.max(f.0)),
                    end_time_ms: r.window_end_ms,
                    record_time_ms: now.max(r.window_end_ms),
                    units: r.units,
                    metering_sn: r.metering_sn.clone(),
                    relate_pkg_instance: (!r.package_instance_id.is_empty())
                        .then(|| r.package_instance_id.clone()),
                    product_id: facts.get(&r.instance_id).and_then(|f| f.1.clone()),
                })
                .collect();
            let (api, body) = if self.old_api {
                ("old", old_usage_push_body(&usage))
            } else {
                ("new", usage_push_body(&usage))
            };
            let body = String::from_utf8(body).expect("JSON is UTF-8");
            let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
            let push_id = tx.create_usage_push(api, &body, &ids, now).await?;
            tx.enqueue_job(&NewJob {
                kind: PUSH_USAGE.into(),
                dedupe_key: Some(push_id.to_string()),
                payload: json!({ "push_id": push_id }).to_string(),
                run_at_ms: now,
                now_ms: now,
            })
            .await?;
            tx.commit().await?;
            pushes += 1;
        }
        Ok(PushPreparation { sealed, expired, pushes })
    }

    /// Creation time and product id of each instance in `records`.
    async fn instance_facts(
        &self,
        tx: &mut Tx,
        records: &[koogate_store::UsageLedgerRecord],
    ) -> Result<HashMap<String, (i64, Option<String>)>, StoreError> {
        let unique: HashSet<&str> = records.iter().map(|r| r.instance_id.as_str()).collect();
        let ids: Vec<InstanceId> = unique.into_iter().filter_map(|id| InstanceId::parse(id).ok()).collect();
        let mut map = HashMap::new();
        for chunk in ids.chunks(500) {
            for instance in tx.instances(chunk).await? {
                map.insert(instance.instance_id.to_string(), (instance.created_at_ms, instance.product_id));
            }
        }
        Ok(map)
    }
}

/// What [`Metering::prepare_pushes`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushPreparation {
    pub sealed: u64,
    pub expired: u64,
    pub pushes: usize,
}

/// Sends a stored push, byte for byte, freshly signed on every attempt.
pub struct UsagePushHandler {
    pub store: Store,
    pub client: MarketplaceClient,
}

#[async_trait::async_trait]
impl JobHandler for UsagePushHandler {
    fn kind(&self) -> &'static str {
        PUSH_USAGE
    }

    /// A minute doubling to an hour, for about 20 days: records are accepted for 21 days after their
    /// period began, so retrying longer is pointless and stopping sooner loses revenue.
    fn retry_policy(&self) -> Option<RetryPolicy> {
        Some(RetryPolicy { base: Duration::from_secs(60), max: Duration::from_secs(3600), max_attempts: 480 })
    }

    /// A push given up leaves its records `rejected`, so they show up with the reason.
    async fn gave_up(&self, job: &Job, failure: &JobFailure, now_ms: i64) -> Result<(), StoreError> {
        if let Some(push_id) =
            serde_json::from_str::<Value>(&job.payload).ok().and_then(|p| p["push_id"].as_i64())
        {
            self.store
                .settle_usage_push(push_id, false, Some("retries_exhausted"), Some(&failure.message), now_ms)
                .await?;
        }
        Ok(())
    }

    async fn run(&self, job: &Job, now_ms: i64) -> Result<(), JobFailure> {
        let payload: Value = serde_json::from_str(&job.payload)
            .map_err(|e| JobFailure::permanent(format!("bad payload: {e}")))?;
        let push_id = payload["push_id"].as_i64().ok_or_else(|| JobFailure::permanent("no push_id"))?;
        let push =
            self.store.usage_push(push_id).await?.ok_or_else(|| JobFailure::permanent("no such push"))?;
        if push.state != "pending" {
            return Ok(());
        }
        match self.client.push_usage(push.api == "old", push.body.as_bytes()).await {
            Ok(()) => {
                self.store.settle_usage_push(push_id, true, None, None, now_ms).await?;
                tracing::info!(push_id, records = push.record_count, "usage pushed");
                Ok(())
            }
            Err(error) => {
                use koogate_protocol::open_api::Outcome;
                let retry = match error.outcome() {
                    Outcome::Retry | Outcome::Success => true,
                    Outcome::AuthFailure => job.attempts < 2,
                    Outcome::Fail => false,
                };
                if retry {
                    return Err(JobFailure::transient(error.to_string()));
                }
                let code = error.code().unwrap_or("unreachable").to_owned();
                tracing::error!(push_id, %code, %error, "usage push rejected; its records are marked rejected");
                self.store
                    .settle_usage_push(push_id, false, Some(&code), Some(&error.to_string()), now_ms)
                    .await?;
                Ok(())
            }
        }
    }
}
