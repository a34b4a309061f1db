//! The store test suite. It runs on SQLite by default and on PostgreSQL with
//! `KOOGATE_TEST_BACKEND=postgres`; CI runs it both ways.

use koogate_protocol::ids::{InstanceId, OrderId, OrderLineId};
use koogate_store::testing::TestDatabase;
use koogate_store::{
    Backend, CallbackQuery, CallbackRecord, Change, DeliveryQuery, InstanceStatus, NewEvent,
    NewInstanceRecord, NewJob, OrderRecord, PoolSettings, Store, StoredAppInfo,
};

async fn fresh() -> (Store, TestDatabase) {
    let db = TestDatabase::create().await;
    let store = Store::connect(db.url(), &PoolSettings::default()).await.unwrap();
    store.migrate().await.unwrap();
    (store, db)
}

fn new_record(instance: &str, order: &str, test: bool) -> NewInstanceRecord {
    NewInstanceRecord {
        instance_id: InstanceId::parse(instance).unwrap(),
        order_id: OrderId::parse(order).unwrap(),
        order_line_id: OrderLineId::parse(&format!("{order}-000001")).unwrap(),
        test,
        now_ms: 1_000,
    }
}

#[test]
fn both_backends_embed_the_same_migration_versions() {
    let sqlite = Store::migration_versions(Backend::Sqlite);
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, Store::migration_versions(Backend::Postgres));
}

#[tokio::test]
async fn migrating_twice_is_harmless() {
    let (store, _db) = fresh().await;
    store.migrate().await.unwrap();
}

#[tokio::test]
async fn an_order_line_gets_one_instance_and_keeps_its_first_id() {
    let (store, _db) = fresh().await;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_instance(&new_record("first", "O1", false)).await.unwrap().is_some());
    assert!(tx.insert_instance(&new_record("second", "O1", false)).await.unwrap().is_none());
    let found = tx
        .instance_by_order(&OrderId::parse("O1").unwrap(), &OrderLineId::parse("O1-000001").unwrap(), false)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(found.instance_id.as_str(), "first");
    assert_eq!(found.status, InstanceStatus::Provisioning);
    assert_eq!(store.count_instances_for_order("O1", "O1-000001").await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_inserts_for_one_order_line_create_exactly_one_instance() {
    let (store, _db) = fresh().await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                let created =
                    tx.insert_instance(&new_record(&format!("b{i}"), "O2", false)).await.unwrap().is_some();
                tx.commit().await.unwrap();
                created
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.unwrap());
    }
    assert_eq!(created, 1);
    assert_eq!(store.count_instances_for_order("O2", "O2-000001").await.unwrap(), 1);
}

#[tokio::test]
async fn debug_instances_do_not_share_order_keys_with_real_ones() {
    let (store, _db) = fresh().await;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_instance(&new_record("real", "O3", false)).await.unwrap().is_some());
    assert!(tx.insert_instance(&new_record("debug", "O3", true)).await.unwrap().is_some());
    tx.commit().await.unwrap();
    assert_eq!(store.count_instances_for_order("O3", "O3-000001").await.unwrap(), 2);
}

#[tokio::test]
async fn a_nonce_is_claimed_once_until_it_expires_and_is_deleted() {
    let (store, _db) = fresh().await;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.claim_nonce("saas_v2", "N1", 5_000).await.unwrap());
    assert!(!tx.claim_nonce("saas_v2", "N1", 5_000).await.unwrap());
    assert!(tx.claim_nonce("kit", "N1", 5_000).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.delete_expired_nonces(4_999).await.unwrap(), 0);
    assert_eq!(store.delete_expired_nonces(5_001).await.unwrap(), 2);
    let mut tx = store.begin().await.unwrap();
    assert!(tx.claim_nonce("saas_v2", "N1", 9_000).await.unwrap());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_nothing() {
    let (store, _db) = fresh().await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_instance(&new_record("gone", "O4", false)).await.unwrap();
    tx.claim_nonce("saas_v2", "N2", 5_000).await.unwrap();
    drop(tx);
    assert_eq!(store.count_instances_for_order("O4", "O4-000001").await.unwrap(), 0);
    let mut tx = store.begin().await.unwrap();
    assert!(tx.claim_nonce("saas_v2", "N2", 5_000).await.unwrap());
}

#[tokio::test]
async fn a_change_is_recorded_once_per_key() {
    let (store, _db) = fresh().await;
    let change = Change {
        instance_id: InstanceId::parse("i").unwrap(),
        kind: "refresh",
        order_id: "O".into(),
        order_line_id: "O-1".into(),
        scene: "RENEWAL".into(),
        expire_time_ms: Some(1),
        product_id: None,
        now_ms: 1,
    };
    let mut tx = store.begin().await.unwrap();
    assert!(tx.record_change(&change).await.unwrap());
    assert!(!tx.record_change(&Change { expire_time_ms: Some(2), ..change.clone() }).await.unwrap());
    assert!(tx
        .record_change(&Change { scene: "UNSUBSCRIBE_RENEWAL_PERIOD".into(), ..change })
        .await
        .unwrap());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn lifecycle_updates_are_stored_and_purge_keeps_the_order_mapping() {
    let (store, _db) = fresh().await;
    let id = InstanceId::parse("life").unwrap();
    let app = StoredAppInfo {
        front_end_url: "https://app/life".into(),
        admin_url: Some("https://admin".into()),
        user_name: Some("admin".into()),
        password_enc: Some(vec![1, 2, 3]),
        memo: Some("中文".into()),
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_instance(&new_record("life", "O5", false)).await.unwrap();
    tx.complete_provisioning(&id, &app, 2_000).await.unwrap();
    tx.set_expiry(&id, 9_999, "RENEWAL", Some("P1"), 3_000).await.unwrap();
    tx.set_status(&id, InstanceStatus::Frozen, 3_500).await.unwrap();
    tx.commit().await.unwrap();

    let stored = store.instance(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, InstanceStatus::Frozen);
    assert_eq!(stored.app_info, Some(app));
    assert_eq!((stored.expire_time_ms, stored.product_id.as_deref()), (Some(9_999), Some("P1")));

    let mut tx = store.begin().await.unwrap();
    tx.release(&id, Some("REFUND-1"), 10_000, 4_000).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(tx.purge_instance(&id, 10_000).await.unwrap());
    assert!(!tx.purge_instance(&id, 10_001).await.unwrap(), "purging twice does nothing");
    tx.commit().await.unwrap();
    let purged = store.instance(&id).await.unwrap().unwrap();
    assert_eq!((purged.status, purged.app_info), (InstanceStatus::Purged, None));
    assert_eq!(purged.release_order_id.as_deref(), Some("REFUND-1"));
    assert_eq!(store.count_instances_for_order("O5", "O5-000001").await.unwrap(), 1);
}

#[tokio::test]
async fn failed_provisioning_can_be_retried() {
    let (store, _db) = fresh().await;
    let id = InstanceId::parse("retry").unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.insert_instance(&new_record("retry", "O6", false)).await.unwrap();
    tx.fail_provisioning(&id, "no capacity", 2).await.unwrap();
    tx.commit().await.unwrap();
    let failed = store.instance(&id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.provision_error.as_deref()),
        (InstanceStatus::Failed, Some("no capacity"))
    );
    let mut tx = store.begin().await.unwrap();
    tx.retry_provisioning(&id, 3).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.instance(&id).await.unwrap().unwrap().status, InstanceStatus::Provisioning);
}

#[tokio::test]
async fn callbacks_keep_their_exact_bytes() {
    let (store, _db) = fresh().await;
    let record = CallbackRecord {
        id: 0,
        received_at_ms: 7,
        interface: "saas_v2".into(),
        activity: Some("newInstance".into()),
        instance_id: Some("i".into()),
        order_id: Some("O".into()),
        test: true,
        raw_query: "signature=AB&timestamp=1&nonce=n".into(),
        raw_body: b"{ \"a\" : \"\xe4\xb8\xad\" }\n".to_vec(),
        verification: "canonical".into(),
        nonce: Some("n".into()),
        result_code: "000000".into(),
        result_msg: "success.".into(),
        response_body: br#"{"resultCode":"000000"}"#.to_vec(),
        latency_us: 42,
    };
    store.record_callback(&record).await.unwrap();
    store
        .record_callback(&CallbackRecord { instance_id: Some("other".into()), ..record.clone() })
        .await
        .unwrap();
    let listed = store.callbacks(&CallbackQuery { instance_id: Some("i".into()), limit: 10 }).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].id > 0);
    assert_eq!(listed[0], CallbackRecord { id: listed[0].id, ..record });
    assert_eq!(store.callbacks(&CallbackQuery::default()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn logged_callbacks_are_written_at_commit_exactly_and_only_then() {
    let (store, _db) = fresh().await;
    let record = |i: i64| CallbackRecord {
        id: 0,
        received_at_ms: i,
        interface: "saas_v2".into(),
        activity: Some("queryInstance".into()),
        instance_id: Some(format!("i{i}")),
        order_id: None,
        test: false,
        raw_query: format!("nonce=n{i}"),
        raw_body: format!("{{\"n\": {i}}}\n").into_bytes(),
        verification: "raw".into(),
        nonce: Some(format!("n{i}")),
        result_code: "000000".into(),
        result_msg: "success.".into(),
        response_body: vec![b'x'; i as usize],
        latency_us: i,
    };
    // Rolled back: nothing is written.
    let mut tx = store.begin().await.unwrap();
    tx.log_callback(record(1));
    drop(tx);
    assert!(store.callbacks(&CallbackQuery { instance_id: None, limit: 10 }).await.unwrap().is_empty());
    // More than one insert statement's worth, in order, byte for byte.
    let mut tx = store.begin().await.unwrap();
    for i in 0..600 {
        tx.log_callback(record(i));
    }
    tx.commit().await.unwrap();
    let listed = store.callbacks(&CallbackQuery { instance_id: None, limit: 1_000 }).await.unwrap();
    assert_eq!(listed.len(), 600);
    let mut listed: Vec<_> = listed.into_iter().map(|r| (r.id, CallbackRecord { id: 0, ..r })).collect();
    listed.sort_by_key(|(id, _)| *id);
    for (i, (_, got)) in listed.into_iter().enumerate() {
        assert_eq!(got, record(i as i64));
    }
}

#[tokio::test]
async fn instances_are_looked_up_in_bulk() {
    let (store, _db) = fresh().await;
    let mut tx = store.begin().await.unwrap();
    for i in 0..5 {
        tx.insert_instance(&new_record(&format!("bulk{i}"), &format!("B{i}"), false)).await.unwrap();
    }
    let ids: Vec<InstanceId> =
        ["bulk0", "bulk3", "missing"].iter().map(|i| InstanceId::parse(i).unwrap()).collect();
    let mut found: Vec<String> =
        tx.instances(&ids).await.unwrap().into_iter().map(|i| i.instance_id.to_string()).collect();
    found.sort();
    assert_eq!(found, ["bulk0", "bulk3"]);
}

#[tokio::test]
async fn a_closed_store_reports_itself_unavailable() {
    let (store, _db) = fresh().await;
    store.close().await;
    let error = store.ping().await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
}

fn purge_job(key: &str, run_at_ms: i64) -> NewJob {
    NewJob {
        kind: "purge_instance".into(),
        dedupe_key: Some(key.into()),
        payload: format!(r#"{{"instance_id":"{key}"}}"#),
        run_at_ms,
        now_ms: 0,
    }
}

#[tokio::test]
async fn a_job_is_enqueued_once_per_dedupe_key_and_claimed_only_when_due() {
    let (store, _db) = fresh().await;
    assert!(store.enqueue_job(&purge_job("a", 100)).await.unwrap());
    assert!(!store.enqueue_job(&purge_job("a", 200)).await.unwrap());
    assert_eq!(store.claim_job("purge_instance", "r1", 99, 1_000).await.unwrap(), None);
    assert_eq!(store.claim_job("other_kind", "r1", 100, 1_000).await.unwrap(), None);
    let job = store.claim_job("purge_instance", "r1", 100, 1_000).await.unwrap().unwrap();
    assert_eq!((job.attempts, job.lease_owner.as_deref(), job.lease_until_ms), (1, Some("r1"), Some(1_100)));
    assert_eq!(store.claim_job("purge_instance", "r2", 500, 1_000).await.unwrap(), None, "leased");
    assert!(store.complete_job(job.id, "r1", 600).await.unwrap());
    assert_eq!(store.job(job.id).await.unwrap().unwrap().state, "done");
    assert_eq!(store.claim_job("purge_instance", "r2", 5_000, 1_000).await.unwrap(), None);
}

#[tokio::test]
async fn an_expired_lease_lets_another_replica_take_the_job_and_fences_the_first() {
    let (store, _db) = fresh().await;
    store.enqueue_job(&purge_job("b", 0)).await.unwrap();
    let first = store.claim_job("purge_instance", "crashed", 0, 1_000).await.unwrap().unwrap();
    let second = store.claim_job("purge_instance", "alive", 1_000, 1_000).await.unwrap().unwrap();
    assert_eq!((first.id, second.attempts), (second.id, 2));
    assert!(!store.complete_job(first.id, "crashed", 1_100).await.unwrap(), "the old claimer lost its lease");
    assert!(store.complete_job(second.id, "alive", 1_100).await.unwrap());
}

#[tokio::test]
async fn retried_jobs_come_back_later_and_buried_jobs_never() {
    let (store, _db) = fresh().await;
    store.enqueue_job(&purge_job("c", 0)).await.unwrap();
    let job = store.claim_job("purge_instance", "r", 0, 1_000).await.unwrap().unwrap();
    assert!(store.retry_job(job.id, "r", 5_000, "database busy", 10).await.unwrap());
    assert_eq!(store.claim_job("purge_instance", "r", 4_999, 1_000).await.unwrap(), None);
    let again = store.claim_job("purge_instance", "r", 5_000, 1_000).await.unwrap().unwrap();
    assert_eq!((again.attempts, again.last_error.as_deref()), (2, Some("database busy")));
    assert!(store.bury_job(again.id, "r", "gave up", 5_001).await.unwrap());
    assert_eq!(store.claim_job("purge_instance", "r", i64::MAX / 2, 1_000).await.unwrap(), None);
    assert_eq!(store.jobs("purge_instance").await.unwrap()[0].state, "dead");
}

#[tokio::test]
async fn concurrent_claimers_never_take_the_same_job() {
    let (store, _db) = fresh().await;
    for i in 0..30 {
        store.enqueue_job(&purge_job(&format!("j{i}"), 0)).await.unwrap();
    }
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let owner = format!("w{w}");
                let mut taken = Vec::new();
                while let Some(job) = store.claim_job("purge_instance", &owner, 10, 60_000).await.unwrap() {
                    assert!(store.complete_job(job.id, &owner, 11).await.unwrap());
                    taken.push(job.id);
                }
                taken
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (30, 30), "each job taken exactly once");
}

fn order_record(instance: &str, order: &str, sku: &str, expire: Option<i64>) -> OrderRecord {
    OrderRecord {
        order_id: order.into(),
        order_line_id: format!("{order}-000001"),
        instance_id: instance.into(),
        reason: "new".into(),
        order_type: Some("NEW".into()),
        create_time_ms: Some(1),
        charging_mode: Some("PERIOD".into()),
        product_id: Some("P".into()),
        sku_code: Some(sku.into()),
        product_name: Some("名前".into()),
        linear_value: Some(10),
        period_type: Some("month".into()),
        period_number: Some(1),
        expire_time_ms: expire,
        amount: Some("100".into()),
        amount_after_discount: Some("90".into()),
        customer_id: Some("c".into()),
        buyer_json: Some("{}".into()),
        extend_params_json: "[]".into(),
        raw_json: "{}".into(),
        fetched_at_ms: 5,
    }
}

#[tokio::test]
async fn saved_orders_update_the_instance_and_replace_earlier_fetches_of_the_same_line() {
    let (store, _db) = fresh().await;
    let id = InstanceId::parse("ord").unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.insert_instance(&new_record("ord", "O7", false)).await.unwrap();
    tx.commit().await.unwrap();

    store.save_order(&order_record("ord", "O7", "basic", Some(1_000))).await.unwrap();
    store.save_order(&order_record("ord", "O7", "basic-v2", Some(2_000))).await.unwrap();
    let orders = store.orders_for_instance("ord").await.unwrap();
    assert_eq!(orders, vec![order_record("ord", "O7", "basic-v2", Some(2_000))]);
    let instance = store.instance(&id).await.unwrap().unwrap();
    assert_eq!((instance.sku_code.as_deref(), instance.linear_value), (Some("basic-v2"), Some(10)));
    assert_eq!(instance.expire_time_ms, Some(1_000), "an expiry already set is not overwritten by a fetch");
}

fn event(id: &str, instance: &str, now_ms: i64) -> NewEvent {
    NewEvent {
        event_id: id.into(),
        event_type: "instance.created".into(),
        instance_id: instance.into(),
        test: false,
        data: "{}".into(),
        now_ms,
    }
}

#[tokio::test]
async fn events_of_one_instance_are_delivered_in_order_and_others_in_parallel() {
    let (store, _db) = fresh().await;
    for (id, instance) in [("e1", "a"), ("e2", "a"), ("e3", "b")] {
        store.enqueue_event(&event(id, instance, 0)).await.unwrap();
    }
    let first = store.claim_delivery("w1", 10, 1_000).await.unwrap().unwrap();
    let second = store.claim_delivery("w2", 10, 1_000).await.unwrap().unwrap();
    assert_eq!((first.event_id.as_str(), second.event_id.as_str()), ("e1", "e3"));
    assert_eq!(store.claim_delivery("w3", 10, 1_000).await.unwrap(), None, "e2 waits for e1");

    assert!(store.freeze_delivery_body(first.id, "w1", "{\"frozen\":1}").await.unwrap());
    assert!(
        !store.freeze_delivery_body(first.id, "w1", "{\"other\":1}").await.unwrap(),
        "the body is fixed once"
    );
    assert!(store
        .settle_delivery(first.id, "w1", "pending", Some(500), Some(500), Some("HTTP 500"), 20)
        .await
        .unwrap());
    assert_eq!(
        store.claim_delivery("w3", 499, 1_000).await.unwrap(),
        None,
        "e1 retries at 500; e2 still waits"
    );
    let again = store.claim_delivery("w3", 500, 1_000).await.unwrap().unwrap();
    assert_eq!(
        (again.event_id.as_str(), again.attempts, again.body.as_deref()),
        ("e1", 1, Some("{\"frozen\":1}"))
    );
    assert!(store.settle_delivery(again.id, "w3", "delivered", None, Some(200), None, 501).await.unwrap());
    let next = store.claim_delivery("w3", 501, 1_000).await.unwrap().unwrap();
    assert_eq!(next.event_id, "e2");
}

#[tokio::test]
async fn dead_events_stop_blocking_and_can_be_replayed_with_their_id() {
    let (store, _db) = fresh().await;
    store.enqueue_event(&event("d1", "x", 0)).await.unwrap();
    store.enqueue_event(&event("d2", "x", 0)).await.unwrap();
    let head = store.claim_delivery("w", 0, 1_000).await.unwrap().unwrap();
    assert!(store.settle_delivery(head.id, "w", "dead", None, Some(500), Some("gave up"), 1).await.unwrap());
    assert_eq!(store.claim_delivery("w", 1, 1_000).await.unwrap().unwrap().event_id, "d2");

    let dead =
        store.deliveries(&DeliveryQuery { state: Some("dead".into()), ..Default::default() }).await.unwrap();
    assert_eq!(dead.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(), ["d1"]);
    assert!(store.replay_delivery("d1", 5).await.unwrap());
    assert!(!store.replay_delivery("d1", 5).await.unwrap(), "already pending");
    assert!(!store.replay_delivery("nope", 5).await.unwrap());
    let replayed = store.delivery("d1").await.unwrap().unwrap();
    assert_eq!((replayed.state.as_str(), replayed.attempts), ("pending", 0));
}

#[tokio::test]
async fn only_the_lease_holder_settles_and_a_postponed_event_keeps_its_attempt_count() {
    let (store, _db) = fresh().await;
    store.enqueue_event(&event("p1", "y", 0)).await.unwrap();
    let claimed = store.claim_delivery("holder", 0, 100).await.unwrap().unwrap();
    assert!(!store.settle_delivery(claimed.id, "intruder", "delivered", None, None, None, 1).await.unwrap());
    assert!(store.postpone_delivery(claimed.id, "holder", 50, 1).await.unwrap());
    let later = store.claim_delivery("holder", 50, 100).await.unwrap().unwrap();
    assert_eq!(later.attempts, 0);
    let taken_over = store.claim_delivery("other", 151, 100).await.unwrap().unwrap();
    assert_eq!(taken_over.id, later.id, "an expired lease is taken over");
}

#[tokio::test]
async fn tokens_are_found_by_hash_until_revoked() {
    let (store, _db) = fresh().await;
    store.create_token("tok_1", "billing app", "hash-1", 1).await.unwrap();
    assert_eq!(store.use_token("hash-1", 2).await.unwrap().unwrap().last_used_at_ms, Some(2));
    assert_eq!(store.use_token("hash-2", 2).await.unwrap(), None);
    assert!(store.revoke_token("tok_1", 3).await.unwrap());
    assert!(!store.revoke_token("tok_1", 4).await.unwrap());
    assert_eq!(store.use_token("hash-1", 5).await.unwrap(), None);
    assert_eq!(store.tokens().await.unwrap()[0].revoked_at_ms, Some(3));
}

#[tokio::test]
async fn a_late_fetch_of_an_older_order_does_not_undo_a_newer_one() {
    let (store, _db) = fresh().await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_instance(&new_record("up", "O8", false)).await.unwrap();
    tx.commit().await.unwrap();
    let upgrade = OrderRecord {
        order_id: "UP8".into(),
        order_line_id: "UP8-1".into(),
        create_time_ms: Some(2_000),
        ..order_record("up", "O8", "pro", None)
    };
    store.save_order(&upgrade).await.unwrap();
    let original = OrderRecord { create_time_ms: Some(1_000), ..order_record("up", "O8", "basic", None) };
    store.save_order(&original).await.unwrap();
    let instance = store.instance(&InstanceId::parse("up").unwrap()).await.unwrap().unwrap();
    assert_eq!(instance.sku_code.as_deref(), Some("pro"));
    assert_eq!(store.orders_for_instance("up").await.unwrap().len(), 2, "both orders are kept");
}

/// An audit-log entry that names `nonce`, so a unit's writes can be looked up through the reader side.
fn entry_for(nonce: &str) -> CallbackRecord {
    CallbackRecord {
        id: 0,
        received_at_ms: 1,
        interface: "write-test".into(),
        activity: None,
        instance_id: Some(nonce.into()),
        order_id: None,
        test: false,
        raw_query: String::new(),
        raw_body: Vec::new(),
        verification: String::new(),
        nonce: Some(nonce.into()),
        result_code: "000000".into(),
        result_msg: String::new(),
        response_body: Vec::new(),
        latency_us: 0,
    }
}

/// Claims `nonce` and logs an entry for it through [`Store::write`], waiting `delay_ms` in between,
/// then fails when `fail` says so (after writing, so a kept write would show that a failed unit's
/// changes survived).
async fn claim_through_write(
    store: &Store,
    nonce: String,
    delay_ms: u64,
    fail: bool,
) -> Result<bool, koogate_store::StoreError> {
    store
        .write(move |tx| {
            let nonce = nonce.clone();
            Box::pin(async move {
                let claimed = tx.claim_nonce("write-test", &nonce, i64::MAX).await?;
                tx.log_callback(entry_for(&nonce));
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                if fail {
                    return Err(koogate_store::StoreError::Corrupt("refused by the test".into()));
                }
                Ok(claimed)
            })
        })
        .await
}

/// Whether `nonce`'s entry is committed: read through the reader side, which sees committed data only.
async fn committed(store: &Store, nonce: &str) -> bool {
    let query = CallbackQuery { instance_id: Some(nonce.into()), limit: 10 };
    !store.callbacks(&query).await.unwrap().is_empty()
}

/// Keeps the writer busy for a moment, so that the units submitted meanwhile form one batch.
fn hold_the_writer(store: &Store) -> tokio::task::JoinHandle<()> {
    let store = store.clone();
    let handle = tokio::spawn(async move {
        claim_through_write(&store, "holder".into(), 300, false).await.unwrap();
    });
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_write_units_are_committed_before_they_are_answered() {
    let (store, _db) = fresh().await;
    let holder = hold_the_writer(&store);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            // Every tenth unit claims the same nonce: only one of them may get it, batched or not.
            let nonce = if i % 10 == 0 { "shared".to_owned() } else { format!("n{i}") };
            tokio::spawn(async move {
                let claimed = claim_through_write(&store, nonce.clone(), 0, false).await.unwrap();
                // Answered, so it must already be visible outside the writer.
                (i, claimed, committed(&store, &nonce).await)
            })
        })
        .collect();
    let mut shared_claims = 0;
    for task in tasks {
        let (i, claimed, visible) = task.await.unwrap();
        assert!(visible, "unit {i} was answered before its write was committed");
        if i % 10 == 0 {
            shared_claims += usize::from(claimed);
        } else {
            assert!(claimed, "unit {i} lost its own nonce");
        }
    }
    assert_eq!(shared_claims, 1);
    holder.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_unit_keeps_nothing_and_costs_its_batch_nothing() {
    let (store, _db) = fresh().await;
    let holder = hold_the_writer(&store);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { (i, claim_through_write(&store, format!("f{i}"), 0, i % 7 == 3).await) },
            )
        })
        .collect();
    for task in tasks {
        let (i, outcome) = task.await.unwrap();
        let kept = committed(&store, &format!("f{i}")).await;
        if i % 7 == 3 {
            assert!(matches!(outcome, Err(koogate_store::StoreError::Corrupt(_))), "unit {i}: {outcome:?}");
            assert!(!kept, "the failed unit {i} left its write behind");
        } else {
            assert!(outcome.unwrap(), "unit {i}");
            assert!(kept, "unit {i} was acknowledged but not kept");
        }
    }
    holder.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_unit_panics_in_its_caller_and_the_others_commit() {
    let (store, _db) = fresh().await;
    let holder = hold_the_writer(&store);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |tx| {
                        // Unit 10 panics before returning its future, unit 25 while it runs.
                        assert!(i != 10, "unit 10 panics on purpose");
                        Box::pin(async move {
                            tx.log_callback(entry_for(&format!("p{i}")));
                            assert!(i != 25, "unit 25 panics on purpose");
                            Ok(i)
                        })
                    })
                    .await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(value) => assert_eq!(value.unwrap(), i),
            Err(join) => assert!((i == 10 || i == 25) && join.is_panic(), "unit {i}: {join}"),
        }
        assert_eq!(committed(&store, &format!("p{i}")).await, i != 10 && i != 25, "unit {i}");
    }
    holder.await.unwrap();
    // The writer survived both panics.
    assert!(claim_through_write(&store, "after".into(), 0, false).await.unwrap());
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_whose_caller_stopped_waiting_is_not_committed() {
    let (store, _db) = fresh().await;
    let timeout = std::time::Duration::from_millis(100);
    // Alone: the caller gives up while the unit runs.
    let alone = tokio::time::timeout(timeout, claim_through_write(&store, "alone".into(), 400, false)).await;
    assert!(alone.is_err());
    assert!(!committed(&store, "alone").await, "committed after its caller was told it failed");
    if store.backend() == Backend::Postgres {
        return; // no batches: each unit has its own transaction
    }
    // In a batch (SQLite): the caller gives up while an earlier unit of its batch still runs.
    let holder = hold_the_writer(&store);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (slow_store, quick_store) = (store.clone(), store.clone());
    let slow = tokio::spawn(async move { claim_through_write(&slow_store, "slow".into(), 800, false).await });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // Queued behind the slow unit, in its batch or the next, whatever the timing: it cannot finish first.
    let quick =
        tokio::time::timeout(timeout * 3, claim_through_write(&quick_store, "quick".into(), 0, false)).await;
    assert!(quick.is_err(), "the quick unit waited behind the slow one");
    assert!(slow.await.unwrap().unwrap());
    holder.await.unwrap();
    assert!(committed(&store, "slow").await);
    assert!(!committed(&store, "quick").await, "committed after its caller was told it failed");
}

#[tokio::test]
async fn a_write_unit_cannot_call_write() {
    let (store, _db) = fresh().await;
    let inner = store.clone();
    let outcome = store
        .write(move |_tx| {
            let inner = inner.clone();
            Box::pin(async move { Ok(inner.write(|_tx| Box::pin(async { Ok(()) })).await) })
        })
        .await
        .unwrap();
    match store.backend() {
        // SQLite's single writer would wait for itself.
        Backend::Sqlite => assert!(matches!(outcome, Err(koogate_store::StoreError::NestedWrite))),
        Backend::Postgres => outcome.unwrap(),
    }
}
