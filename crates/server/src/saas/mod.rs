//! The SaaS V2.0 production interface as a service: verify, refuse replays, apply the activity and
//! write the audit-log entry in one transaction, then hand back the exact bytes to answer with.

mod error;
mod lifecycle;
mod query;

use std::sync::Arc;
use std::time::Duration;

use koogate_protocol::messages::parse_request;
use koogate_protocol::signature::{verify, TimeWindow};
use koogate_protocol::{AccessKey, CallbackResponse, Request, SignatureParams, Verified};
use koogate_store::{CallbackRecord, Store, StoreError, Tx};

pub use error::ServiceError;

use crate::clock::{Clock, Stopwatch};
use crate::config::{ChangeCheckPolicy, Config};
use crate::crypto::CredentialCipher;
use crate::provision::{Provisioner, TemplateProvisioner};

/// The nonce namespace of the basic interfaces (kit interfaces will get their own).
const NONCE_SCOPE: &str = "saas_v2";

/// How long answering a refusal may wait for its audit-log entry.
const REFUSAL_LOG_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings the basic interfaces use, taken from [`Config`] once.
#[derive(Debug, Clone)]
pub struct SaasSettings {
    pub window: TimeWindow,
    pub nonce_ttl_ms: i64,
    pub callback_timeout: Duration,
    pub release_retention_ms: i64,
    pub create_response_app_info: bool,
    pub change_check_policy: ChangeCheckPolicy,
    pub change_check_reject_code: koogate_protocol::ResultCode,
    /// Real purchases, upgrades and renewal changes enqueue a Query Order fetch (needs `KOOGATE_AK`/`SK`).
    pub fetch_orders: bool,
    /// Lifecycle events are written for the merchant's app (a webhook URL or command is configured).
    pub events: bool,
}

impl SaasSettings {
    pub fn from_config(config: &Config) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let window = ms(config.timestamp_window);
        Self {
            window: TimeWindow { past_ms: window, future_ms: window },
            nonce_ttl_ms: ms(config.nonce_ttl),
            callback_timeout: config.callback_timeout,
            release_retention_ms: ms(config.release_retention),
            create_response_app_info: config.create_response_app_info,
            change_check_policy: config.change_check_policy,
            change_check_reject_code: koogate_protocol::ResultCode::parse(&config.change_check_reject_code)
                .expect("checked when the configuration was loaded"),
            fetch_orders: config.open_api_credentials().is_some(),
            events: config.app_webhook_url.is_some()
                || config.provisioner == crate::config::ProvisionerKind::Command,
        }
    }
}

/// Everything the basic interfaces need. Cheap to clone.
#[derive(Clone)]
pub struct Saas {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) key: AccessKey,
    pub(crate) provisioner: Arc<dyn Provisioner>,
    /// Debug (testFlag=1) calls are always provisioned from the templates: synchronous, no side effects.
    pub(crate) template: TemplateProvisioner,
    pub(crate) cipher: Option<CredentialCipher>,
    pub(crate) settings: SaasSettings,
}

/// The bytes to answer a call with.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Vec<u8>,
    pub response: CallbackResponse,
}

impl Saas {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        key: AccessKey,
        provisioner: Arc<dyn Provisioner>,
        template: TemplateProvisioner,
        cipher: Option<CredentialCipher>,
        settings: SaasSettings,
    ) -> Self {
        Self { store, clock, key, provisioner, template, cipher, settings }
    }

    pub fn key(&self) -> &AccessKey {
        &self.key
    }

    /// Handles one call from its raw query string and body. Always produces an answer; the answer is
    /// `000000` only when the change and its audit-log entry were committed.
    pub async fn handle(&self, raw_query: &str, raw_body: &[u8]) -> Answer {
        let stopwatch = Stopwatch::start();
        let mut entry = self.new_entry(raw_query, raw_body);
        let request = match self.verify(raw_query, raw_body) {
            Ok(request) => request,
            Err(error) => return self.refuse(entry, error, stopwatch).await,
        };
        describe(&mut entry, &request);
        let work = self.apply(request, entry.clone(), stopwatch);
        match tokio::time::timeout(self.settings.callback_timeout, work).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => self.refuse(entry, error.into(), stopwatch).await,
            Err(_) => self.refuse(entry, ServiceError::Timeout, stopwatch).await,
        }
    }

    /// Answers a body that was refused before it was read in full.
    pub async fn refuse_oversized(&self, raw_query: &str, limit: usize) -> Answer {
        let entry = self.new_entry(raw_query, b"");
        self.refuse(entry, ServiceError::TooLarge { limit }, Stopwatch::start()).await
    }

    fn new_entry(&self, raw_query: &str, raw_body: &[u8]) -> CallbackRecord {
        CallbackRecord {
            id: 0,
            received_at_ms: self.clock.now_ms(),
            interface: NONCE_SCOPE.into(),
            activity: None,
            instance_id: None,
            order_id: None,
            test: false,
            raw_query: raw_query.into(),
            raw_body: raw_body.to_vec(),
            verification: String::new(),
            nonce: None,
            result_code: String::new(),
            result_msg: String::new(),
            response_body: Vec::new(),
            latency_us: 0,
        }
    }

    fn verify(&self, raw_query: &str, raw_body: &[u8]) -> Result<Verified<Request>, ServiceError> {
        let params = SignatureParams::from_query(raw_query)?;
        let body = verify(&self.key, &params, raw_body, self.clock.now_ms(), self.settings.window)?;
        Ok(parse_request(body)?)
    }

    /// Claims the nonce, applies the request and logs the call, all in one transaction, shared with
    /// concurrent callbacks on SQLite (group commit: see `Store::write`).
    async fn apply(
        &self,
        request: Verified<Request>,
        entry: CallbackRecord,
        stopwatch: Stopwatch,
    ) -> Result<Answer, StoreError> {
        let call = Arc::new((self.clone(), request, entry));
        let (answer, entry) = self
            .store
            .write(move |tx| {
                let call = call.clone();
                Box::pin(async move {
                    let (saas, request, entry) = &*call;
                    saas.apply_in(tx, request, entry.clone(), stopwatch).await
                })
            })
            .await?;
        record_metrics(&entry);
        Ok(answer)
    }

    /// One callback's share of a write transaction. It may run twice (see `Store::write`): everything
    /// it changes is in `tx`, and what it decides depends only on the request and the stored state.
    async fn apply_in(
        &self,
        tx: &mut Tx,
        request: &Verified<Request>,
        mut entry: CallbackRecord,
        stopwatch: Stopwatch,
    ) -> Result<(Answer, CallbackRecord), StoreError> {
        let expires = self.clock.now_ms().saturating_add(self.settings.nonce_ttl_ms);
        let outcome = if tx.claim_nonce(NONCE_SCOPE, request.nonce().as_str(), expires).await? {
            self.dispatch(tx, request.get()).await
        } else {
            tracing::warn!(nonce = request.nonce().as_str(), "replayed nonce refused");
            Err(ServiceError::Replay)
        };
        let response = match outcome {
            Ok(response) => response,
            // A storage failure aborts the transaction: nothing of this call is kept or acknowledged.
            Err(ServiceError::Store(error)) => return Err(error),
            Err(error) => error.response(),
        };
        let answer = finish(&mut entry, response, stopwatch);
        tx.log_callback(entry.clone());
        Ok((answer, entry))
    }

    async fn dispatch(&self, tx: &mut Tx, request: &Request) -> Result<CallbackResponse, ServiceError> {
        match request {
            Request::NewInstance(r) => self.new_instance(tx, r).await,
            Request::QueryInstance(r) => self.query_instance(tx, r).await,
            Request::RefreshInstance(r) => self.refresh_instance(tx, r).await,
            Request::UpdateInstanceStatus(r) => self.update_status(tx, r).await,
            Request::ReleaseInstance(r) => self.release_instance(tx, r).await,
            Request::UpgradeInstance(r) => self.upgrade_instance(tx, r).await,
            Request::ChangeInstanceCheck(r) => self.change_check(tx, r).await,
        }
    }

    /// Answers a refusal and logs it. If even the log cannot be written the refusal still goes out:
    /// it is not a success, so KooGallery will try again.
    async fn refuse(&self, mut entry: CallbackRecord, error: ServiceError, stopwatch: Stopwatch) -> Answer {
        match &error {
            ServiceError::Store(e) => tracing::error!(error = ?e, "callback failed on storage"),
            ServiceError::Credentials(e) => {
                tracing::error!(error = %e, "stored credentials unusable")
            }
            ServiceError::Timeout => tracing::error!("callback timed out"),
            other => tracing::info!(reason = %other, "callback refused"),
        }
        if entry.verification.is_empty() {
            entry.verification = format!("refused: {error}");
        }
        let answer = finish(&mut entry, error.response(), stopwatch);
        // Bounded, so that a slow or absent database cannot hold the refusal past KooGallery's timeout.
        match tokio::time::timeout(REFUSAL_LOG_TIMEOUT, self.store.record_callback(&entry)).await {
            Ok(Ok(_)) => {}
            Ok(Err(log_error)) => {
                tracing::error!(error = ?log_error, "the refused callback could not be logged")
            }
            Err(_) => tracing::error!("logging the refused callback timed out"),
        }
        record_metrics(&entry);
        answer
    }
}

/// Copies what the audit log shows about a verified request.
fn describe(entry: &mut CallbackRecord, request: &Verified<Request>) {
    entry.verification = request.matched().as_str().into();
    entry.nonce = Some(request.nonce().as_str().into());
    let r = request.get();
    entry.activity = Some(r.activity().into());
    entry.test = r.is_test();
    let (instance, order) = match r {
        Request::NewInstance(n) => (None, Some(n.order_id.as_str())),
        Request::QueryInstance(q) => (q.instance_ids.first().map(|i| i.as_str()), None),
        Request::RefreshInstance(x) => (Some(x.instance_id.as_str()), Some(x.order_id.as_str())),
        Request::UpdateInstanceStatus(x) => (Some(x.instance_id.as_str()), None),
        Request::ReleaseInstance(x) => {
            (Some(x.instance_id.as_str()), x.order_id.as_ref().map(|o| o.as_str()))
        }
        Request::UpgradeInstance(x) => (Some(x.instance_id.as_str()), Some(x.order_id.as_str())),
        Request::ChangeInstanceCheck(x) => (Some(x.instance_id.as_str()), None),
    };
    entry.instance_id = instance.map(Into::into);
    entry.order_id = order.map(Into::into);
}

fn finish(entry: &mut CallbackRecord, response: CallbackResponse, stopwatch: Stopwatch) -> Answer {
    let body = response.to_bytes();
    entry.result_code = response.result_code.as_str().into();
    entry.result_msg = response.result_msg.clone();
    entry.response_body = loggable(&response, &body);
    if entry.instance_id.is_none() {
        entry.instance_id = response.instance_id.clone();
    }
    entry.latency_us = stopwatch.elapsed_us();
    Answer { body, response }
}

/// The answer as the audit log keeps it: the exact bytes sent, except that initial admin passwords are
/// masked — the log must not become a plaintext copy of credentials that are encrypted at rest.
fn loggable(response: &CallbackResponse, sent: &[u8]) -> Vec<u8> {
    let carries_password =
        response.info.iter().flatten().any(|i| i.app_info.as_ref().is_some_and(|a| a.password.is_some()));
    if !carries_password {
        return sent.to_vec();
    }
    let mut masked = response.clone();
    for app in masked.info.iter_mut().flatten().filter_map(|i| i.app_info.as_mut()) {
        if app.password.is_some() {
            app.password = Some("[REDACTED]".into());
        }
    }
    masked.to_bytes()
}

fn record_metrics(entry: &CallbackRecord) {
    let activity = entry.activity.clone().unwrap_or_else(|| "unknown".into());
    metrics::counter!("koogate_callbacks_total", "activity" => activity.clone(), "result_code" => entry.result_code.clone())
        .increment(1);
    metrics::histogram!("koogate_callback_seconds", "activity" => activity)
        .record(entry.latency_us as f64 / 1e6);
}
