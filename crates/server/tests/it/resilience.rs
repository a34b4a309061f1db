//! Storage failures: never a false success, nothing half-written.

use koogate_store::CallbackQuery;

use crate::harness::{assert_well_formed, spawn_app};

#[tokio::test]
async fn with_storage_unavailable_callbacks_get_a_non_success_code() {
    let app = spawn_app().await;
    app.new_instance("S1", "s-1").await;
    app.store.close().await;
    for reply in [app.new_instance("S2", "s-2").await, app.query(&["s-1"], false).await] {
        assert_well_formed(&reply, &app.key());
        assert_eq!(reply.result_code().as_deref(), Some("000005"));
    }
}

#[tokio::test]
async fn a_failed_call_leaves_no_trace_in_state_but_the_retry_succeeds() {
    let app = spawn_app().await;
    app.store.close().await;
    assert_eq!(app.new_instance("S3", "s-3").await.result_code().as_deref(), Some("000005"));
    let app = app.restart().await;
    assert_eq!(app.store.count_instances_for_order("S3", "S3-000001").await.unwrap(), 0);
    let retry = app.new_instance("S3", "s-3-retry").await;
    assert_eq!(
        (retry.result_code().as_deref(), retry.instance_id().as_deref()),
        (Some("000000"), Some("s-3-retry"))
    );
    let log = app.store.callbacks(&CallbackQuery::default()).await.unwrap();
    assert_eq!(log.len(), 1, "only the answered call is in the log");
}
