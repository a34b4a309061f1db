//! `queryInstance`: many ids at once, unknown ids, and the 100-id limit.

use serde_json::json;

use crate::harness::spawn_app;

#[tokio::test]
async fn known_ids_are_answered_in_the_order_asked_and_unknown_ones_left_out() {
    let app = spawn_app().await;
    app.new_instance("Q1", "q-1").await;
    app.new_instance("Q2", "q-2").await;
    let reply = app.query(&["q-2", "ghost", "q-1"], false).await;
    assert_eq!(reply.result_code().as_deref(), Some("000000"));
    let ids: Vec<_> =
        reply.json().unwrap()["info"].as_array().unwrap().iter().map(|i| i["instanceId"].clone()).collect();
    assert_eq!(ids, [json!("q-2"), json!("q-1")]);
}

#[tokio::test]
async fn a_hundred_ids_are_answered_and_a_hundred_and_one_refused() {
    let app = spawn_app().await;
    app.new_instance("Q3", "q-3").await;
    let mut ids: Vec<String> = (0..99).map(|i| format!("missing-{i}")).collect();
    ids.push("q-3".into());
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let reply = app.query(&refs, false).await;
    assert_eq!(reply.json().unwrap()["info"].as_array().unwrap().len(), 1);
    let too_many = json!({"activity": "queryInstance", "instanceId": format!("{},x", ids.join(","))});
    let reply = app.sender.send_value(&too_many, &Default::default()).await.unwrap();
    assert_eq!(reply.result_code().as_deref(), Some("000002"));
}

#[tokio::test]
async fn real_queries_do_not_see_debug_instances() {
    let app = spawn_app().await;
    app.send(crate::harness::new_instance("Q4", "q-debug", true)).await;
    assert_eq!(app.query(&["q-debug"], false).await.result_code().as_deref(), Some("000003"));
}
