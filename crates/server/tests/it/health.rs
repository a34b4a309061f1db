//! Liveness and readiness probes.

use crate::harness::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_answer_while_the_database_is_up() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn readyz_fails_when_the_database_is_gone_but_healthz_does_not() {
    let app = spawn_app().await;
    app.store.close().await;
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200);
}
