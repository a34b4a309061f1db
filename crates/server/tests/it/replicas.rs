//! Several replicas on one database: every guarantee holds across them.

use std::collections::HashSet;

use koogate_protocol::canonical::canonical_bytes;
use koogate_protocol::messages::{ReleaseInstance, Request};
use koogate_server::jobs::JobOutcome;
use koogate_simulator::Tamper;

use crate::harness::{id, new_instance, spawn_replicas};

#[tokio::test]
async fn a_hundred_concurrent_duplicates_over_three_replicas_create_one_instance() {
    let replicas = spawn_replicas(3).await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let sender = replicas[i % 3].sender.clone();
            tokio::spawn(async move {
                sender.send(&new_instance("REP1", &format!("rep-{i}"), false)).await.unwrap()
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.result_code().as_deref(), Some("000000"), "{:?}", reply.result_msg());
        ids.insert(reply.instance_id().unwrap());
    }
    assert_eq!(ids.len(), 1, "every answer carries the same instanceId: {ids:?}");
    assert_eq!(replicas[0].store.count_instances_for_order("REP1", "REP1-000001").await.unwrap(), 1);
}

#[tokio::test]
async fn a_nonce_accepted_by_one_replica_is_refused_by_the_others() {
    let replicas = spawn_replicas(3).await;
    let body = canonical_bytes(&new_instance("REP2", "rep-n", false).to_value());
    let first = replicas[0].sender.send_body(&body, &Tamper::default()).await.unwrap();
    assert_eq!(first.result_code().as_deref(), Some("000000"));
    for replica in &replicas[1..] {
        let replay = Tamper { nonce: Some(first.nonce.clone()), ..Tamper::default() };
        let reply = replica.sender.send_body(&body, &replay).await.unwrap();
        assert_eq!(reply.result_code().as_deref(), Some("000002"));
    }
}

#[tokio::test]
async fn a_job_enqueued_once_is_executed_once_across_replicas() {
    let replicas = spawn_replicas(3).await;
    replicas[0].new_instance("REP3", "rep-job").await;
    let release = Request::ReleaseInstance(ReleaseInstance {
        instance_id: id("rep-job"),
        order_id: None,
        order_line_id: None,
        test: false,
    });
    // Delivered twice, through two replicas, as a retrying platform would.
    replicas[1].send(release.clone()).await;
    replicas[2].send(release).await;
    replicas[0].clock.advance_ms(replicas[0].config.release_retention.as_millis() as i64);

    let workers: Vec<_> = replicas
        .iter()
        .map(|replica| {
            let jobs = replica.jobs.clone();
            tokio::spawn(async move {
                let mut completed = 0;
                for _ in 0..20 {
                    match jobs.execute_one().await.unwrap() {
                        JobOutcome::Completed { .. } => completed += 1,
                        JobOutcome::Idle => {}
                        other => panic!("unexpected {other:?}"),
                    }
                }
                completed
            })
        })
        .collect();
    let mut completed = 0;
    for worker in workers {
        completed += worker.await.unwrap();
    }
    assert_eq!(completed, 1);
    let jobs = replicas[0].store.jobs(koogate_server::jobs::PURGE_INSTANCE).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].state.as_str(), jobs[0].attempts), ("done", 1));
}
