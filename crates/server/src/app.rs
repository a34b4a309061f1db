//! Assembling koogate from its configuration and running it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::ApiState;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, ProvisionerKind, UsageApi};
use crate::crypto::{CredentialCipher, CryptoError};
use crate::delivery::{Deliverer, DeliverySettings, Destination};
use crate::http::{router, AppState};
use crate::jobs::{JobRunner, PurgeHandler};
use crate::marketplace::{MarketplaceClient, MarketplaceSettings};
use crate::order_fetch::OrderFetchHandler;
use crate::provision::{Provisioner, TemplateProvisioner};
use crate::provisioning::{AppProvisioner, ProvisioningResults};
use crate::saas::{Saas, SaasSettings};
use crate::usage::{Metering, UsagePushHandler};
use crate::workers::Maintenance;
use koogate_store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("opening the database failed")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("building the HTTP client for KooGallery's Open APIs failed")]
    Http(#[source] reqwest::Error),
    #[error("cannot listen on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// A built application: its router and the workers to run beside it.
pub struct App {
    pub router: Router,
    pub saas: Saas,
    pub maintenance: Maintenance,
    pub jobs: JobRunner,
    /// Delivers events to the merchant's app, when a webhook URL or command is configured.
    pub deliverer: Option<Deliverer>,
}

impl App {
    /// Builds the application over an open store. `metrics` is the Prometheus handle, if the process
    /// installed a recorder.
    pub fn build(
        config: &Config,
        store: Store,
        clock: Arc<dyn Clock>,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Self, StartError> {
        Self::build_with_provisioner(config, store, clock, metrics, None)
    }

    /// As [`App::build`], with real (non-debug) instances provisioned by `provisioner` instead of the
    /// configured one.
    pub fn build_with_provisioner(
        config: &Config,
        store: Store,
        clock: Arc<dyn Clock>,
        metrics: Option<PrometheusHandle>,
        provisioner: Option<Arc<dyn Provisioner>>,
    ) -> Result<Self, StartError> {
        config.check_serve()?;
        let template =
            TemplateProvisioner::from_config(config).expect("check_serve requires a front-end URL");
        let cipher = config.master_key.as_ref().map(CredentialCipher::from_base64_key).transpose()?;
        let provisioner = provisioner.unwrap_or_else(|| match config.provisioner {
            ProvisionerKind::Template => Arc::new(template.clone()),
            ProvisionerKind::Webhook | ProvisionerKind::Command => Arc::new(AppProvisioner),
        });
        let settings = SaasSettings::from_config(config);
        let events = settings.events;
        let saas = Saas::new(
            store.clone(),
            clock.clone(),
            config.access_key()?,
            provisioner,
            template,
            cipher.clone(),
            settings,
        );
        let results = ProvisioningResults { store: store.clone(), clock: clock.clone(), cipher };
        let api = ApiState {
            metering: metering(config, &store, &clock, events),
            store: store.clone(),
            clock: clock.clone(),
            results: results.clone(),
            expiry_grace_ms: i64::try_from(config.expiry_grace.as_millis()).unwrap_or(i64::MAX),
        };
        let state = AppState {
            saas: saas.clone(),
            store: store.clone(),
            max_body_bytes: config.max_body_bytes,
            metrics,
            api,
        };
        let router = router(state, &config.produce_path);
        let metering = metering(config, &store, &clock, events);
        let maintenance = Maintenance::new(
            store.clone(),
            clock.clone(),
            config.maintenance_interval,
            Some(metering.clone()),
        );
        let jobs = build_jobs(config, &store, &clock, events)?;
        let deliverer = build_deliverer(config, &store, &clock, results)?;
        Ok(Self { router, saas, maintenance, jobs, deliverer })
    }
}

/// The job runner with a handler for every job kind this configuration produces.
fn build_jobs(
    config: &Config,
    store: &Store,
    clock: &Arc<dyn Clock>,
    events: bool,
) -> Result<JobRunner, StartError> {
    let settings = MarketplaceSettings {
        hosts: config.marketplace_hosts(),
        credentials: config.open_api_credentials(),
        usage_key: config.access_key()?,
        timeout: config.marketplace_timeout,
        connect_timeout: config.marketplace_connect_timeout,
    };
    let client = MarketplaceClient::new(settings, clock.clone()).map_err(StartError::Http)?;
    let mut jobs = JobRunner::new(store.clone(), clock.clone(), config.job_lease, config.job_poll_interval)
        .with_handler(Arc::new(PurgeHandler { store: store.clone(), events }))
        .with_handler(Arc::new(UsagePushHandler { store: store.clone(), client: client.clone() }));
    if config.open_api_credentials().is_some() {
        jobs = jobs.with_handler(Arc::new(OrderFetchHandler { store: store.clone(), client }));
    } else {
        tracing::warn!("KOOGATE_AK/KOOGATE_SK are not set: order details will not be fetched");
    }
    Ok(jobs)
}

/// Metering as this configuration sets it up.
pub fn metering(config: &Config, store: &Store, clock: &Arc<dyn Clock>, events: bool) -> Metering {
    Metering {
        store: store.clone(),
        clock: clock.clone(),
        window_ms: i64::try_from(config.usage_window.as_millis()).unwrap_or(3_600_000),
        events,
        old_api: config.usage_api == UsageApi::Old,
    }
}

/// The event deliverer, when the merchant's app is reachable by webhook or command.
fn build_deliverer(
    config: &Config,
    store: &Store,
    clock: &Arc<dyn Clock>,
    results: ProvisioningResults,
) -> Result<Option<Deliverer>, StartError> {
    let destination = match (&config.app_webhook_url, config.provisioner, &config.app_command) {
        (Some(url), _, _) => {
            let secrets = config.webhook_secrets().expect("validated when the configuration was loaded");
            Destination::webhook(url.clone(), secrets, config.app_webhook_timeout)
                .map_err(StartError::Http)?
        }
        (None, ProvisionerKind::Command, Some(program)) => {
            Destination::Command { program: program.into(), timeout: config.app_command_timeout }
        }
        _ => return Ok(None),
    };
    let settings = DeliverySettings {
        schedule: config.delivery_schedule()?,
        lease: config.job_lease,
        poll_interval: config.job_poll_interval,
        app_provisions: config.provisioner != ProvisionerKind::Template,
        order_wait: (config.created_event_waits_for_order && config.open_api_credentials().is_some())
            .then_some(config.order_wait_max),
    };
    Ok(Some(Deliverer::new(store.clone(), clock.clone(), destination, settings, results)))
}

/// Opens the database named in the configuration, migrating it if configured to.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    let store = Store::connect(&config.database_url(), &config.pool_settings()).await?;
    if config.auto_migrate {
        store.migrate().await?;
    }
    Ok(store)
}

/// Serves `app` on `listener` with its background workers (housekeeping, jobs, deliveries) until
/// `shutdown` is cancelled, then finishes in-flight requests and stops the workers.
pub async fn serve(app: App, listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    let shutdown_for_deliveries = shutdown.clone();
    let maintenance = tokio::spawn(app.maintenance.run(shutdown.clone()));
    let jobs = tokio::spawn(app.jobs.run(shutdown.clone()));
    let deliveries = tokio::spawn(async move {
        if let Some(deliverer) = app.deliverer {
            deliverer.run(shutdown_for_deliveries).await;
        }
    });
    let result =
        axum::serve(listener, app.router).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    let _ = tokio::join!(maintenance, jobs, deliveries);
    result
}

/// Binds the configured address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })
}
