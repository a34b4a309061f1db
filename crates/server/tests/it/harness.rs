//! `spawn_app()`: koogate on an ephemeral port over a fresh database, with a manual clock and a sender
//! whose timestamps follow that clock.

use std::sync::Arc;

use koogate_protocol::apig::Credentials;
use koogate_protocol::ids::{BusinessId, InstanceId, OrderId, OrderLineId};
use koogate_protocol::messages::{NewInstance, QueryInstance, Request};
use koogate_protocol::webhook::WebhookSecret;
use koogate_protocol::AccessKey;
use koogate_server::clock::{Clock, ManualClock, SystemClock};
use koogate_server::delivery::{Deliverer, DeliveryOutcome};
use koogate_server::jobs::JobRunner;
use koogate_server::provision::Provisioner;
use koogate_server::workers::Maintenance;
use koogate_server::{App, Config};
use koogate_simulator::app_receiver::MockApp;
use koogate_simulator::marketplace::MockMarketplace;
use koogate_simulator::{CallbackReply, CallbackSender};
use koogate_store::testing::TestDatabase;
use koogate_store::Store;
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const KEY: &str = "TestAccessKey1234567890";

pub struct TestApp {
    pub base_url: String,
    pub produce_url: String,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub sender: CallbackSender,
    pub maintenance: Maintenance,
    pub jobs: JobRunner,
    pub deliverer: Option<Deliverer>,
    provisioner: Option<Arc<dyn Provisioner>>,
    pub config: Config,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    db: Arc<TestDatabase>,
}

pub fn test_config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        access_key: Some(SecretString::from(KEY)),
        front_end_url: Some("https://app.example.com/t/{instance_id}".into()),
        admin_url: Some("https://admin.example.com/{instance_id}".into()),
        admin_user_name: Some("admin".into()),
        master_key: Some(SecretString::from(koogate_server::crypto::generate_master_key())),
        memo: Some("登录后请修改密码".into()),
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config();
    tweak(&mut config);
    let db = Arc::new(TestDatabase::create().await);
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    start(config, db, clock).await
}

pub const AK: &str = "TESTAK0000000000001";
pub const SK: &str = "TestSecretKey0000000000000000000000000001";

/// koogate with a mock KooGallery Open API host (sharing the test clock), reached at `primary` — or,
/// when `primary` is `None`, directly. The mock is returned for fault injection and inspection.
pub async fn spawn_with_marketplace(
    primary: Option<&str>,
    tweak: impl FnOnce(&mut Config),
) -> (TestApp, MockMarketplace) {
    let db = Arc::new(TestDatabase::create().await);
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let time = clock.clone();
    let mock = MockMarketplace::new(Credentials::new(AK, SK), Arc::new(move || time.now_ms()))
        .with_usage_key(AccessKey::from_text(KEY));
    let (addr, _task) = mock.spawn().await.unwrap();
    let mock_url = format!("http://{addr}");
    let mut config = test_config();
    config.ak = Some(SecretString::from(AK));
    config.sk = Some(SecretString::from(SK));
    match primary {
        Some(primary) => {
            config.marketplace_url = primary.to_owned();
            config.marketplace_fallback_url = mock_url;
        }
        None => {
            config.marketplace_url = mock_url;
            config.marketplace_fallback_url = String::new();
        }
    }
    tweak(&mut config);
    let url = db.url().as_str().to_owned();
    (start_at(config, db, url, clock, None).await, mock)
}

pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// koogate delivering its events to a mock merchant app (sharing the test clock).
pub async fn spawn_with_app(tweak: impl FnOnce(&mut Config)) -> (TestApp, MockApp) {
    let db = Arc::new(TestDatabase::create().await);
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let time = clock.clone();
    let app =
        MockApp::new(WebhookSecret::parse_list(WEBHOOK_SECRET).unwrap(), Arc::new(move || time.now_ms()));
    let (addr, _task) = app.spawn().await.unwrap();
    let mut config = test_config();
    config.app_webhook_url = Some(format!("http://{addr}/webhooks"));
    config.app_webhook_secret = Some(SecretString::from(WEBHOOK_SECRET));
    tweak(&mut config);
    let url = db.url().as_str().to_owned();
    (start_at(config, db, url, clock, None).await, app)
}

/// koogate with real instances provisioned by `provisioner`.
pub async fn spawn_with_provisioner(provisioner: Arc<dyn Provisioner>) -> TestApp {
    let db = Arc::new(TestDatabase::create().await);
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let url = db.url().as_str().to_owned();
    start_at(test_config(), db, url, clock, Some(provisioner)).await
}

/// `n` servers sharing one database and one clock, as replicas behind a load balancer.
pub async fn spawn_replicas(n: usize) -> Vec<TestApp> {
    let db = Arc::new(TestDatabase::create().await);
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(start(test_config(), db.clone(), clock.clone()).await);
    }
    replicas
}

/// A server on an existing database, reached through `database_url` (for example via a proxy).
pub async fn spawn_on(db: Arc<TestDatabase>, database_url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config();
    tweak(&mut config);
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    start_at(config, db, database_url.to_owned(), clock, None).await
}

async fn start(config: Config, db: Arc<TestDatabase>, clock: Arc<ManualClock>) -> TestApp {
    let url = db.url().as_str().to_owned();
    start_at(config, db, url, clock, None).await
}

async fn start_at(
    mut config: Config,
    db: Arc<TestDatabase>,
    url: String,
    clock: Arc<ManualClock>,
    provisioner: Option<Arc<dyn Provisioner>>,
) -> TestApp {
    config.database_url = SecretString::from(url.clone());
    let store = Store::connect(&config.database_url(), &config.pool_settings()).await.unwrap();
    store.migrate().await.unwrap();
    let app = App::build_with_provisioner(&config, store.clone(), clock.clone(), None, provisioner.clone())
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let produce_url = format!("{base_url}{}", config.produce_path);
    let (maintenance, jobs, deliverer) = (app.maintenance.clone(), app.jobs.clone(), app.deliverer.clone());
    let shutdown = CancellationToken::new();
    // The workers are not started: tests step them with run_once and execute_one.
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app.router).with_graceful_shutdown(stop.cancelled_owned()).await
    });
    let time = clock.clone();
    let sender = CallbackSender::new(produce_url.clone(), AccessKey::from_text(KEY))
        .with_time_source(Arc::new(move || time.now_ms()));
    TestApp {
        base_url,
        produce_url,
        store,
        clock,
        sender,
        maintenance,
        jobs,
        deliverer,
        provisioner,
        config,
        shutdown,
        server,
        db,
    }
}

impl TestApp {
    /// Stops the server and starts a new one on the same database, as after a process restart.
    pub async fn restart(self) -> TestApp {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
        self.store.close().await;
        let url = self.config.database_url();
        start_at(self.config, self.db, url.as_str().to_owned(), self.clock, self.provisioner).await
    }

    pub async fn send(&self, request: Request) -> CallbackReply {
        self.sender.send(&request).await.unwrap()
    }

    pub async fn new_instance(&self, order: &str, business: &str) -> CallbackReply {
        self.send(new_instance(order, business, false)).await
    }

    pub async fn query(&self, ids: &[&str], test: bool) -> CallbackReply {
        self.send(Request::QueryInstance(QueryInstance {
            instance_ids: ids.iter().map(|i| InstanceId::parse(i).unwrap()).collect(),
            test,
        }))
        .await
    }

    /// Runs due jobs until none is left; returns how many completed.
    pub async fn drain_jobs(&self) -> usize {
        let mut completed = 0;
        loop {
            match self.jobs.execute_one().await.unwrap() {
                koogate_server::jobs::JobOutcome::Idle => return completed,
                koogate_server::jobs::JobOutcome::Completed { .. } => completed += 1,
                other => panic!("unexpected job outcome {other:?}"),
            }
        }
    }

    /// One delivery step.
    pub async fn deliver(&self) -> DeliveryOutcome {
        self.deliverer.as_ref().expect("this app delivers events").deliver_one().await.unwrap()
    }

    /// Delivers until nothing is due; returns how many were delivered.
    pub async fn drain_deliveries(&self) -> usize {
        let mut delivered = 0;
        loop {
            match self.deliver().await {
                DeliveryOutcome::Idle => return delivered,
                DeliveryOutcome::Delivered { .. } => delivered += 1,
                other => panic!("unexpected delivery outcome {other:?}"),
            }
        }
    }

    /// A new API token.
    pub async fn token(&self) -> String {
        koogate_server::api::tokens::create(&self.store, "test", self.clock.now_ms()).await.unwrap().1
    }

    pub async fn api_get(&self, path: &str, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn api_post(&self, path: &str, token: &str, body: serde_json::Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub fn key(&self) -> AccessKey {
        AccessKey::from_text(KEY)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("{}{path}", self.base_url)).await.unwrap()
    }
}

pub fn new_instance(order: &str, business: &str, test: bool) -> Request {
    Request::NewInstance(NewInstance {
        order_id: OrderId::parse(order).unwrap(),
        order_line_id: OrderLineId::parse(&format!("{order}-000001")).unwrap(),
        business_id: BusinessId::parse(business).unwrap(),
        test,
    })
}

pub fn id(text: &str) -> InstanceId {
    InstanceId::parse(text).unwrap()
}

/// Every answer must be HTTP 200 JSON with both result fields and a valid `Body-Sign`.
pub fn assert_well_formed(reply: &CallbackReply, key: &AccessKey) {
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert!(reply.result_code().is_some() && reply.result_msg().is_some(), "{:?}", reply.json());
    assert!(reply.body_sign_valid(key), "Body-Sign missing or wrong: {:?}", reply.body_sign);
    assert!(reply.body.is_ascii(), "the answer must be ASCII with \\u escapes");
}
