//! The `koogate` binary as a merchant runs it: refusing to start without a key, signing bodies for hand
//! tests, and serving until SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;
use std::time::Duration;

use koogate_protocol::apig::Credentials;
use koogate_protocol::signature::{verify, SignatureParams, TimeWindow};
use koogate_protocol::AccessKey;
use koogate_simulator::marketplace::MockMarketplace;

const KEY: &str = "TestAccessKey1234567890";

fn koogate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_koogate"));
    // Start from a clean slate: the developer's own KOOGATE_* settings must not leak into the tests.
    for (name, _) in std::env::vars() {
        if name.starts_with("KOOGATE_") {
            command.env_remove(name);
        }
    }
    command
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn serve_without_an_access_key_refuses_and_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = koogate().arg("serve").current_dir(dir.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("KOOGATE_ACCESS_KEY is not set"), "{stderr}");
    assert!(!dir.path().join("koogate.db").exists(), "nothing is created before the configuration is valid");
}

#[test]
fn sign_prints_a_query_string_that_verifies_and_a_curl_line() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"activity":"queryInstance","instanceId":"abc","testFlag":"1"}"#;
    std::fs::write(dir.path().join("body.json"), body).unwrap();
    let output = koogate()
        .args(["sign", "--body", "body.json", "--target", "https://isv.example.com/saasproduce"])
        .env("KOOGATE_ACCESS_KEY", KEY)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut lines = stdout.lines();
    let query = lines.next().unwrap();
    let params = SignatureParams::from_query(query).unwrap();
    let verified = verify(&AccessKey::from_text(KEY), &params, body, now_ms(), TimeWindow::default());
    assert!(verified.is_ok(), "{verified:?}");
    let curl = lines.next().unwrap();
    assert!(curl.starts_with("curl ") && curl.contains("https://isv.example.com/saasproduce?signature="));
    assert!(curl.contains("--data-binary @body.json"));
}

#[test]
fn keys_generate_prints_a_32_byte_base64_key() {
    let output = koogate().args(["keys", "generate"]).output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap().trim().len(), 44);
}

#[test]
fn serve_answers_signed_calls_runs_its_jobs_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = MockMarketplace::new(Credentials::new("CLIAK", "CLISK"), Arc::new(now_ms));
    let (mock_addr, _mock_task) = runtime.block_on(mock.spawn()).unwrap();
    let mut serve = serve_command(dir.path());
    serve
        .env("KOOGATE_AK", "CLIAK")
        .env("KOOGATE_SK", "CLISK")
        .env("KOOGATE_MARKETPLACE_URL", format!("http://{mock_addr}"))
        .env("KOOGATE_MARKETPLACE_FALLBACK_URL", "");
    let (mut child, addr) = spawn_listening(serve);

    let reply = runtime.block_on(async {
        let sender = koogate_simulator::CallbackSender::new(
            format!("http://{addr}/saasproduce"),
            AccessKey::from_text(KEY),
        );
        let body = serde_json::json!({"activity": "newInstance", "orderId": "MOCKONETIMENEW",
                                      "orderLineId": "MOCKONETIMENEW-000001", "businessId": "cli-1"});
        sender.send_value(&body, &Default::default()).await.unwrap()
    });
    assert_eq!(reply.result_code().as_deref(), Some("000000"));
    assert!(reply.body_sign_valid(&AccessKey::from_text(KEY)));
    // The job runner of the real process fetches the order in the background.
    assert!(
        runtime.block_on(mock.wait_for_requests(1, Duration::from_secs(20))),
        "the order was never fetched"
    );
    assert_eq!(mock.requests()[0].signature, Ok(()));

    // The conformance suite, as a merchant would run it against their production URL.
    let junit = dir.path().join("conformance.xml");
    let output = koogate()
        .args([
            "conformance",
            "--target",
            &format!("http://{addr}/saasproduce"),
            "--access-key",
            KEY,
            "--junit",
        ])
        .arg(&junit)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    assert!(table.contains("PASS  idempotency › resend with a new businessId"), "{table}");
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testsuite name=\"refusals\""));
    let output = koogate()
        .args([
            "sim",
            "send",
            "queryInstance",
            "--target",
            &format!("http://{addr}/saasproduce"),
            "--access-key",
            KEY,
        ])
        .args(["--field", "instanceId=cli-1"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.starts_with("HTTP 200") && printed.contains("\"resultCode\":\"000000\""), "{printed}");

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status:?}");
    assert!(
        dir.path().join("koogate.db").exists(),
        "the default database is koogate.db in the working directory"
    );
}

/// `koogate serve` on an ephemeral port with a fresh database in `dir`.
fn serve_command(dir: &std::path::Path) -> Command {
    let mut command = koogate();
    command
        .arg("serve")
        .env("KOOGATE_ACCESS_KEY", KEY)
        .env("KOOGATE_FRONT_END_URL", "https://app.example.com/{instance_id}")
        .env("KOOGATE_LISTEN", "127.0.0.1:0")
        .env("KOOGATE_METRICS", "false")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Spawns the server and waits until it logs the address it listens on.
// The child is handed to the caller, which stops and waits for it; the lint cannot see across that.
#[allow(clippy::zombie_processes)]
fn spawn_listening(mut command: Command) -> (std::process::Child, String) {
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr = read_listen_addr(&mut stderr);
    // Keep reading the logs: a closed or full pipe must not disturb the server under test.
    std::thread::spawn(move || for _ in stderr.lines() {});
    (child, addr)
}

fn read_listen_addr(stderr: &mut impl BufRead) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "koogate exited before listening");
        if let Some(rest) = line.split("addr=").nth(1) {
            if line.contains("koogate listening") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
    }
}

#[test]
fn tokens_are_created_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = koogate().args(args).current_dir(dir.path()).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let created = run(&["tokens", "create", "--name", "billing app"]);
    let token = created.lines().last().unwrap();
    assert!(token.starts_with("kgt_") && token.len() > 40, "the token alone on the last line: {created}");
    let id = created.split_whitespace().nth(2).unwrap().to_owned();
    let listed = run(&["tokens", "list"]);
    assert!(listed.contains(&id) && listed.contains("active") && !listed.contains(token), "{listed}");
    run(&["tokens", "revoke", &id]);
    assert!(run(&["tokens", "list"]).contains("revoked"));
    assert!(!koogate()
        .args(["tokens", "revoke", &id])
        .current_dir(dir.path())
        .output()
        .unwrap()
        .status
        .success());
    assert_eq!(run(&["deliveries", "list", "--state", "dead"]), "");
}

#[test]
fn openapi_prints_the_committed_document() {
    let output = koogate().arg("openapi").output().unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), committed);
}

#[test]
fn the_demo_runs_a_whole_lifecycle_and_exits_zero() {
    let output = koogate().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for step in [
        "newInstance (purchase)",
        "Query Order",
        "refreshInstance",
        "FREEZE",
        "usage push",
        "releaseInstance",
    ] {
        assert!(stdout.lines().any(|l| l.starts_with("[ok]") && l.contains(step)), "{step}: {stdout}");
    }
    assert!(!stdout.contains("[!!]"));
}

#[test]
fn conformance_exits_non_zero_against_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_listening(serve_command(dir.path()));
    let output = koogate()
        .args([
            "conformance",
            "--target",
            &format!("http://{addr}/saasproduce"),
            "--access-key",
            "not-the-key",
        ])
        .output()
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("FAIL  lifecycle › buy"));
}

#[test]
fn serve_keeps_answering_when_its_log_pipe_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_command(dir.path()).spawn().unwrap();
    let addr = read_listen_addr(&mut BufReader::new(child.stderr.take().unwrap()));
    // The reader is gone: every later log line fails to write.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reply = runtime.block_on(async {
        let sender = koogate_simulator::CallbackSender::new(format!("http://{addr}/saasproduce"), AccessKey::from_text(KEY));
        let body = serde_json::json!({"activity": "newInstance", "orderId": "PIPE1", "orderLineId": "PIPE1-1", "businessId": "pipe-1"});
        sender.send_value(&body, &Default::default()).await
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(reply.unwrap().result_code().as_deref(), Some("000000"));
}
