//! The subcommands, each a thin layer over library calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use koogate_protocol::open_api::QUERY_ORDER_PATH;
use koogate_server::api;
use koogate_server::config::LogFormat;
use koogate_server::events::rfc3339;
use koogate_server::jobs::JobOutcome;
use koogate_server::{App, Config, SystemClock};
use koogate_simulator::load::{LoadActivity, LoadPlan};
use koogate_simulator::marketplace::MockMarketplace;
use koogate_simulator::{CallbackSender, Tamper};
use koogate_store::{DeliveryQuery, Store};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct SignArgs {
    /// File holding the JSON body to sign, exactly as it will be sent ("-" reads standard input).
    #[arg(long)]
    body: PathBuf,
    /// Production URL to put in the curl line (default: this configuration's listen address and path).
    #[arg(long)]
    target: Option<String>,
    /// Access key (default: KOOGATE_ACCESS_KEY from the configuration).
    #[arg(long)]
    key: Option<String>,
    /// Timestamp in ms (default: now; KooGallery's window is 60 s, so paste the curl line promptly).
    #[arg(long)]
    timestamp: Option<String>,
    /// Nonce (default: 64 random hex digits).
    #[arg(long)]
    nonce: Option<String>,
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Production URL to load (default: this configuration's listen address and path).
    #[arg(long)]
    target: Option<String>,
    /// Access key (default: KOOGATE_ACCESS_KEY from the configuration).
    #[arg(long)]
    key: Option<String>,
    /// How many callbacks to send.
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    /// How many callbacks in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// `new` (a newInstance per new order: durable writes) or `query` (queryInstance of one instance).
    #[arg(long, default_value = "new", value_parser = ["new", "query"])]
    activity: String,
}

#[derive(clap::Args)]
pub struct MarketplaceArgs {
    /// Address to serve the mock Open API on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: std::net::SocketAddr,
    /// Access key id the mock accepts (default: KOOGATE_AK from the configuration).
    #[arg(long)]
    ak: Option<String>,
    /// Its secret (default: KOOGATE_SK from the configuration).
    #[arg(long)]
    sk: Option<String>,
}

/// A check that ran and found problems (already reported): exit status 1 without an error dump.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

#[derive(clap::Args)]
pub struct ConformanceArgs {
    /// The production URL to test, e.g. https://isv.example.com/saasproduce.
    #[arg(long)]
    target: String,
    /// The access key bound to the basic interfaces (default: KOOGATE_ACCESS_KEY).
    #[arg(long)]
    access_key: Option<String>,
    /// Also write the results as JUnit XML to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Play the scenarios in this directory (*.json) instead of the built-in ones.
    #[arg(long)]
    scenarios: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct SimServeArgs {
    /// Address of the simulated KooGallery.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: std::net::SocketAddr,
    /// The access key callbacks are signed with and usage pushes are checked against (default:
    /// KOOGATE_ACCESS_KEY).
    #[arg(long)]
    access_key: Option<String>,
    /// The AK/SK pair the mock Open APIs accept (default: KOOGATE_AK / KOOGATE_SK, else SIMAK / SIMSK).
    #[arg(long)]
    ak: Option<String>,
    #[arg(long)]
    sk: Option<String>,
}

#[derive(clap::Args)]
pub struct SimSendArgs {
    /// newInstance, queryInstance, refreshInstance, updateInstanceStatus, releaseInstance,
    /// upgradeInstance or changeInstanceCheck.
    activity: String,
    /// The production URL.
    #[arg(long)]
    target: String,
    /// The access key (default: KOOGATE_ACCESS_KEY).
    #[arg(long)]
    access_key: Option<String>,
    /// Body fields as name=value (repeatable), e.g. --field orderId=MOCKPERIODYEARNEW.
    #[arg(long = "field", value_parser = parse_field)]
    fields: Vec<(String, String)>,
    /// Mark the call as a debug call (testFlag=1).
    #[arg(long)]
    test: bool,
}

fn parse_field(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not name=value"))
}

fn access_key_from(
    config_file: Option<&Path>,
    flag: Option<&String>,
) -> anyhow::Result<koogate_protocol::AccessKey> {
    let mut config = Config::load(config_file)?;
    if let Some(key) = flag {
        config.access_key = Some(key.clone().into());
    }
    Ok(config.access_key()?)
}

pub fn conformance(config_file: Option<&Path>, args: &ConformanceArgs) -> anyhow::Result<()> {
    let key = access_key_from(config_file, args.access_key.as_ref())?;
    let scenarios = match &args.scenarios {
        Some(dir) => koogate_simulator::conformance::load_scenarios(dir).map_err(anyhow::Error::msg)?,
        None => koogate_simulator::conformance::builtin_scenarios(),
    };
    let report = runtime()?.block_on(koogate_simulator::conformance::run(&args.target, key, &scenarios));
    print!("{}", report.table());
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit_xml()).with_context(|| format!("writing {}", path.display()))?;
    }
    if report.passed() {
        Ok(())
    } else {
        Err(Failed(format!("{} steps do not conform", report.failures().len())).into())
    }
}

pub fn sim_send(config_file: Option<&Path>, args: &SimSendArgs) -> anyhow::Result<()> {
    let key = access_key_from(config_file, args.access_key.as_ref())?;
    let mut body = serde_json::Map::new();
    body.insert("activity".into(), args.activity.clone().into());
    for (name, value) in &args.fields {
        body.insert(name.clone(), value.clone().into());
    }
    if args.test {
        body.insert("testFlag".into(), "1".into());
    }
    let sender = CallbackSender::new(args.target.clone(), key);
    let reply =
        runtime()?.block_on(sender.send_value(&serde_json::Value::Object(body), &Tamper::default()))?;
    println!("HTTP {}  Body-Sign: {}", reply.status, reply.body_sign.as_deref().unwrap_or("(none)"));
    println!("{}", String::from_utf8_lossy(&reply.body));
    Ok(())
}

pub fn sim_serve(config_file: Option<&Path>, args: &SimServeArgs) -> anyhow::Result<()> {
    let config = Config::load(config_file)?;
    let key = access_key_from(config_file, args.access_key.as_ref())?;
    let secret = |flag: &Option<String>, configured: &Option<secrecy::SecretString>, default: &str| {
        flag.clone()
            .or_else(|| configured.as_ref().map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned()))
            .unwrap_or_else(|| default.to_owned())
    };
    let ak = secret(&args.ak, &config.ak, "SIMAK");
    let sk = secret(&args.sk, &config.sk, "SIMSK");
    init_tracing(&config);
    let clock: koogate_simulator::TimeSource =
        Arc::new(|| koogate_server::clock::Clock::now_ms(&SystemClock));
    let simulator = koogate_simulator::koogallery::SimulatedKooGallery::new(
        koogate_protocol::apig::Credentials::new(ak.clone(), &sk),
        key,
        clock,
    );
    runtime()?.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(args.listen).await.context("binding the simulator's address")?;
        let addr = listener.local_addr()?;
        println!("simulated KooGallery on http://{addr}");
        println!("  Open APIs (AK {ak}): point KOOGATE_MARKETPLACE_URL at http://{addr}");
        println!("  fire a callback:  POST http://{addr}/sim/send  {{\"target\": URL, \"body\": {{...}}}}");
        println!("  inject a fault:   POST http://{addr}/sim/faults  {{\"status\": 503}}");
        println!("  recorded traffic: GET  http://{addr}/sim/traffic");
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        axum_serve(listener, simulator.router(), shutdown).await
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

pub fn serve(config_file: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_file)?;
    config.check_serve()?;
    init_tracing(&config);
    let metrics = if config.metrics {
        Some(
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .context("installing the Prometheus recorder")?,
        )
    } else {
        None
    };
    runtime()?.block_on(async move {
        let store = koogate_server::open_store(&config).await?;
        let app = App::build(&config, store.clone(), Arc::new(SystemClock), metrics)?;
        let listener = koogate_server::bind(config.listen).await?;
        let addr = listener.local_addr().context("reading the bound address")?;
        tracing::info!(%addr, path = %config.produce_path, backend = ?store.backend(), "koogate listening");
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        koogate_server::serve(app, listener, shutdown).await.context("serving HTTP")?;
        store.close().await;
        tracing::info!("koogate stopped");
        Ok(())
    })
}

pub fn migrate(config_file: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_file)?;
    init_tracing(&config);
    runtime()?.block_on(async move {
        let store = koogate_store::Store::connect(&config.database_url(), &config.pool_settings()).await?;
        store.migrate().await?;
        println!("migrations applied ({:?})", store.backend());
        store.close().await;
        Ok(())
    })
}

/// The access key and target URL a simulator command uses, from flags or the configuration.
fn sim_target(
    config_file: Option<&Path>,
    key: Option<&String>,
    target: Option<&String>,
) -> anyhow::Result<(koogate_protocol::AccessKey, String)> {
    let mut config = Config::load(config_file)?;
    if let Some(key) = key {
        config.access_key = Some(key.clone().into());
    }
    let target =
        target.cloned().unwrap_or_else(|| format!("http://{}{}", config.listen, config.produce_path));
    Ok((config.access_key()?, target))
}

pub fn load(config_file: Option<&Path>, args: &LoadArgs) -> anyhow::Result<()> {
    let (key, target) = sim_target(config_file, args.key.as_ref(), args.target.as_ref())?;
    let activity = if args.activity == "query" { LoadActivity::Query } else { LoadActivity::New };
    let plan = LoadPlan { target, key, requests: args.requests, concurrency: args.concurrency, activity };
    let report = runtime()?.block_on(koogate_simulator::load::run(plan));
    print!("{report}");
    Ok(())
}

pub fn marketplace(config_file: Option<&Path>, args: &MarketplaceArgs) -> anyhow::Result<()> {
    let mut config = Config::load(config_file)?;
    if let (Some(ak), Some(sk)) = (&args.ak, &args.sk) {
        config.ak = Some(ak.clone().into());
        config.sk = Some(sk.clone().into());
    }
    let credentials = config.open_api_credentials().context(
        "the mock needs the key pair it accepts: pass --ak and --sk, or set KOOGATE_AK and KOOGATE_SK",
    )?;
    init_tracing(&config);
    let mock =
        MockMarketplace::new(credentials, Arc::new(|| koogate_server::clock::Clock::now_ms(&SystemClock)));
    runtime()?.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(args.listen).await.context("binding the mock's address")?;
        println!(
            "mock KooGallery Open API on http://{} (Query Order: {QUERY_ORDER_PATH})",
            listener.local_addr()?
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        axum_serve(listener, mock.router(), shutdown).await
    })
}

pub fn sign(config_file: Option<&Path>, args: &SignArgs) -> anyhow::Result<()> {
    let (key, target) = sim_target(config_file, args.key.as_ref(), args.target.as_ref())?;
    let body = if args.body == Path::new("-") {
        let mut buffer = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer).context("reading standard input")?;
        buffer
    } else {
        std::fs::read(&args.body).with_context(|| format!("reading {}", args.body.display()))?
    };
    let tamper = Tamper { timestamp: args.timestamp.clone(), nonce: args.nonce.clone(), ..Tamper::default() };
    let signed = CallbackSender::new(target, key).signed_url(&body, &tamper);
    let query = signed.url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    println!("{query}");
    let data = if args.body == Path::new("-") {
        format!("'{}'", String::from_utf8_lossy(&body).replace('\'', r"'\''"))
    } else {
        format!("@{}", args.body.display())
    };
    println!(
        "curl -sS -i -X POST '{}' -H 'Content-Type: application/json;charset=utf-8' --data-binary {data}",
        signed.url
    );
    Ok(())
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A closed log pipe must not take koogate down: tracing would report the failed write with
        // eprintln!, which panics when standard error is gone.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Cancels `shutdown` on SIGINT or SIGTERM, so in-flight callbacks finish before the process exits.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; finishing in-flight requests");
    shutdown.cancel();
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving HTTP")
}

/// Runs `work` against the configured database (migrated first, as `serve` would).
fn with_store<T>(
    config_file: Option<&Path>,
    work: impl AsyncFnOnce(Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let config = Config::load(config_file)?;
    runtime()?.block_on(async move {
        let store = koogate_server::open_store(&config).await?;
        let result = work(store.clone()).await;
        store.close().await;
        result
    })
}

fn now_ms() -> i64 {
    koogate_server::clock::Clock::now_ms(&SystemClock)
}

pub fn tokens_create(config_file: Option<&Path>, name: &str) -> anyhow::Result<()> {
    if name.trim().is_empty() {
        anyhow::bail!("--name must not be empty");
    }
    let (record, token) =
        with_store(config_file, async |store| Ok(api::tokens::create(&store, name, now_ms()).await?))?;
    println!("created token {} ({}); it is shown only now:", record.id, record.name);
    println!("{token}");
    Ok(())
}

pub fn tokens_list(config_file: Option<&Path>) -> anyhow::Result<()> {
    let tokens = with_store(config_file, async |store| Ok(store.tokens().await?))?;
    for token in tokens {
        let state = if token.revoked_at_ms.is_some() { "revoked" } else { "active" };
        let used = token.last_used_at_ms.map(rfc3339).unwrap_or_else(|| "never".into());
        println!(
            "{}\t{}\t{}\tcreated {}\tlast used {}",
            token.id,
            state,
            token.name,
            rfc3339(token.created_at_ms),
            used
        );
    }
    Ok(())
}

pub fn tokens_revoke(config_file: Option<&Path>, id: &str) -> anyhow::Result<()> {
    if with_store(config_file, async |store| Ok(store.revoke_token(id, now_ms()).await?))? {
        println!("revoked {id}");
        Ok(())
    } else {
        anyhow::bail!("no active token with id {id}")
    }
}

pub fn deliveries_list(
    config_file: Option<&Path>,
    state: Option<String>,
    instance_id: Option<String>,
    limit: i64,
) -> anyhow::Result<()> {
    let query = DeliveryQuery { state, instance_id, before_id: None, limit };
    let deliveries = with_store(config_file, async |store| Ok(store.deliveries(&query).await?))?;
    for d in deliveries {
        let error = d.last_error.as_deref().unwrap_or("");
        println!(
            "{}\t{}\t{}\t{}\tattempts {}\t{}",
            d.event_id, d.state, d.event_type, d.instance_id, d.attempts, error
        );
    }
    Ok(())
}

pub fn deliveries_replay(
    config_file: Option<&Path>,
    event_ids: Vec<String>,
    all_dead: bool,
) -> anyhow::Result<()> {
    if event_ids.is_empty() != all_dead {
        anyhow::bail!("name the event ids to replay, or pass --all-dead (not both)");
    }
    with_store(config_file, async |store| {
        let ids = if all_dead {
            let dead = DeliveryQuery {
                state: Some("dead".into()),
                instance_id: None,
                before_id: None,
                limit: 100_000,
            };
            store.deliveries(&dead).await?.into_iter().map(|d| d.event_id).collect()
        } else {
            event_ids
        };
        for id in ids {
            if store.replay_delivery(&id, now_ms()).await? {
                println!("queued {id} for delivery");
            } else {
                eprintln!("{id}: no such event, or it is still pending");
            }
        }
        Ok(())
    })
}

pub fn usage_push(config_file: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_file)?;
    config.check_serve()?;
    init_tracing(&config);
    runtime()?.block_on(async move {
        let store = koogate_server::open_store(&config).await?;
        let app = App::build(&config, store.clone(), Arc::new(SystemClock), None)?;
        let report = app.maintenance.run_once().await?;
        println!(
            "sealed {} records, expired {}, prepared {} pushes",
            report.usage.sealed, report.usage.expired, report.usage.pushes
        );
        let (mut pushed, mut retrying, mut failed) = (0, 0, 0);
        loop {
            match app.jobs.execute_one().await? {
                JobOutcome::Idle => break,
                JobOutcome::Completed { kind, .. } if kind == koogate_server::usage::PUSH_USAGE => {
                    pushed += 1
                }
                JobOutcome::Retried { kind, .. } if kind == koogate_server::usage::PUSH_USAGE => {
                    retrying += 1
                }
                JobOutcome::Buried { kind, .. } if kind == koogate_server::usage::PUSH_USAGE => failed += 1,
                _ => {}
            }
        }
        println!("pushes sent: {pushed}; to retry later: {retrying}; failed: {failed}");
        let rejected = store.usage_records(None, Some("rejected")).await?;
        if !rejected.is_empty() {
            println!(
                "{} records are rejected (see GET /api/v1/usage/records?state=rejected)",
                rejected.len()
            );
        }
        store.close().await;
        Ok(())
    })
}
