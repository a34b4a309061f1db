//! The conformance suite (the same one `koogate conformance` runs) against koogate itself.

use koogate_simulator::conformance::{builtin_scenarios, run};

use crate::harness::spawn_app;

#[tokio::test]
async fn koogate_passes_the_conformance_suite() {
    let app = spawn_app().await;
    let report = run(&app.produce_url, app.key(), &builtin_scenarios()).await;
    assert!(report.passed(), "{}", report.table());
    assert!(report.results.len() > 25, "every scenario ran, with the dial-test replays");
}
