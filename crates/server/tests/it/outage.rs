//! PostgreSQL going away under load: koogate refuses (never falsely succeeds), reports itself not ready,
//! and recovers by itself when the database is back. Nothing it acknowledged is lost.
//!
//! These tests need PostgreSQL; in the SQLite pass of the suite they return at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use koogate_store::testing::{test_backend, TestDatabase};
use koogate_store::{Backend, CallbackQuery};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::harness::{spawn_on, spawn_with, TestApp};

fn postgres_run() -> bool {
    let run = test_backend() == Backend::Postgres;
    if !run {
        eprintln!("skipped in the SQLite pass: this test needs PostgreSQL");
    }
    run
}

/// A TCP forwarder to PostgreSQL that the test can cut: `down` closes every connection and refuses new
/// ones, as an unreachable database would look; `up` restores service.
struct Cable {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Cable {
    async fn to(target: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (flag, registry) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().unwrap().push(link.abort_handle());
            }
        });
        Self { port, up, links }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn while_postgres_is_unreachable_callbacks_fail_and_readyz_fails_then_both_recover() {
    if !postgres_run() {
        return;
    }
    let db = Arc::new(TestDatabase::create().await);
    let cable = Cable::to("127.0.0.1:5432").await;
    let via_cable = db.url().as_str().replace("127.0.0.1:5432", &format!("127.0.0.1:{}", cable.port));
    let app = spawn_on(db.clone(), &via_cable, |c| c.db_acquire_timeout = Duration::from_millis(500)).await;

    assert_eq!(app.new_instance("OUT1", "out-1").await.result_code().as_deref(), Some("000000"));
    cable.down();
    let refused = app.new_instance("OUT2", "out-2").await;
    assert_eq!(refused.result_code().as_deref(), Some("000005"));
    assert_eq!(app.query(&["out-1"], false).await.result_code().as_deref(), Some("000005"));
    assert_eq!(app.get("/readyz").await.status(), 503);

    cable.restore();
    assert_eq!(app.get("/readyz").await.status(), 200, "recovered without a restart");
    let retried = app.new_instance("OUT2", "out-2-retry").await;
    assert_eq!(retried.result_code().as_deref(), Some("000000"));
    assert_eq!(app.query(&["out-1"], false).await.result_code().as_deref(), Some("000000"));
}

#[tokio::test]
async fn terminating_backends_mid_run_loses_nothing_that_was_acknowledged() {
    if !postgres_run() {
        return;
    }
    let app = spawn_with(|_| {}).await;
    let database = database_name(&app);
    let stop = Arc::new(AtomicBool::new(false));
    let killer = tokio::spawn(terminate_backends_until(database, stop.clone()));

    let mut acknowledged: HashMap<String, (String, String)> = HashMap::new();
    let mut failures = 0;
    for order in 0..60 {
        let order_id = format!("KILL{order}");
        // KooGallery keeps retrying a failed create; so does this loop (bounded).
        for attempt in 0..30 {
            let reply = app.new_instance(&order_id, &format!("kill-{order}-{attempt}")).await;
            match reply.result_code().as_deref() {
                Some("000000") => {
                    acknowledged
                        .insert(order_id.clone(), (reply.instance_id().unwrap(), reply.nonce.clone()));
                    break;
                }
                Some("000005") => failures += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let kills = killer.await.unwrap();
    assert!(kills > 0, "the test must actually have cut connections");
    eprintln!("{kills} backends terminated, {failures} calls refused with 000005");

    assert_eq!(acknowledged.len(), 60, "every order eventually succeeded");
    let log = app.store.callbacks(&CallbackQuery { instance_id: None, limit: 100_000 }).await.unwrap();
    for (order, (instance_id, nonce)) in &acknowledged {
        assert_eq!(app.store.count_instances_for_order(order, &format!("{order}-000001")).await.unwrap(), 1);
        let stored = app.store.instance(&crate::harness::id(instance_id)).await.unwrap();
        assert_eq!(stored.map(|i| i.order_id.to_string()).as_deref(), Some(order.as_str()));
        assert!(
            log.iter().any(|e| e.nonce.as_deref() == Some(nonce.as_str()) && e.result_code == "000000"),
            "the acknowledged call for {order} is in the audit log"
        );
    }
}

fn database_name(app: &TestApp) -> String {
    app.config.database_url().as_str().rsplit('/').next().unwrap().to_owned()
}

/// Kills every connection to `database` every few milliseconds until told to stop; returns the count.
async fn terminate_backends_until(database: String, stop: Arc<AtomicBool>) -> u64 {
    let server =
        std::env::var("KOOGATE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await.unwrap();
    let mut kills = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&database)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        kills += killed.into_iter().filter(|k| *k).count() as u64;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    kills
}
