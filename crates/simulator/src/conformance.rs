//! The conformance runner: scenarios kept as data files (`crates/simulator/scenarios/*.json`) played
//! against any production URL exactly as KooGallery would, with every answer checked for its code and
//! its format (HTTP 200, JSON with `resultCode` and `resultMsg`, a valid `Body-Sign`, time under 5 s).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use koogate_protocol::AccessKey;
use serde::Deserialize;
use serde_json::Value;

use crate::sender::{random_nonce, CallbackReply, CallbackSender, Tamper};

/// KooGallery's limit on an answer (the older requirement page; the V2 debug tool waits 20 s).
pub const MAX_RESPONSE_TIME: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Replay the scenario twice more, as the platform's dial tests replay saved debug cases, and
    /// require the same answers.
    #[serde(default)]
    pub dial_test_replay: bool,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// The specification section the step checks, shown with failures.
    pub spec: String,
    /// The JSON body; `{run}` and captured variables are substituted in its strings.
    #[serde(default)]
    pub body: Option<Value>,
    /// A body sent as is instead (for malformed JSON).
    #[serde(default)]
    pub raw_body: Option<String>,
    /// `bad_signature`, `no_signature`, `stale_timestamp`, `future_timestamp`, `no_nonce` or `replay`.
    #[serde(default)]
    pub tamper: Option<String>,
    /// Acceptable result codes.
    #[serde(default)]
    pub expect: Vec<String>,
    /// Any code but `000000` is right (for replays, whose code the spec does not fix).
    #[serde(default)]
    pub expect_refused: bool,
    /// Variables to take from the answer: variable → answer field.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Answer fields that must equal a variable: field → variable.
    #[serde(default)]
    pub same_as: BTreeMap<String, String>,
    /// Answer fields that must differ from a variable: field → variable.
    #[serde(default)]
    pub differs_from: BTreeMap<String, String>,
    /// On `000000`, `info` must hold an entry for this variable's instance id.
    #[serde(default)]
    pub check_info_for: Option<String>,
}

/// The scenarios shipped with koogate.
pub fn builtin_scenarios() -> Vec<Scenario> {
    [
        include_str!("../scenarios/01-lifecycle.json"),
        include_str!("../scenarios/02-idempotency.json"),
        include_str!("../scenarios/03-debug-calls.json"),
        include_str!("../scenarios/04-refusals.json"),
    ]
    .iter()
    .map(|text| serde_json::from_str(text).expect("the shipped scenarios parse (a test checks)"))
    .collect()
}

/// Loads every `*.json` scenario in a directory, in name order.
pub fn load_scenarios(dir: &std::path::Path) -> Result<Vec<Scenario>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub scenario: String,
    pub step: String,
    pub spec: String,
    pub result_code: Option<String>,
    pub elapsed: Duration,
    /// Empty when the step passed.
    pub failures: Vec<String>,
}

impl StepResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct ConformanceReport {
    pub results: Vec<StepResult>,
}

impl ConformanceReport {
    pub fn passed(&self) -> bool {
        self.results.iter().all(StepResult::passed)
    }

    /// The failures as `scenario › step: failure`.
    pub fn failures(&self) -> Vec<String> {
        self.results
            .iter()
            .flat_map(|r| r.failures.iter().map(move |f| format!("{} › {}: {f}", r.scenario, r.step)))
            .collect()
    }

    /// A readable table, one line per step, failures with their spec reference.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            let status = if r.passed() { "PASS" } else { "FAIL" };
            let code = r.result_code.as_deref().unwrap_or("------");
            let name = format!("{} › {}", r.scenario, r.step);
            let _ = writeln!(out, "{status}  {name:<52} {code}  {:>5} ms", r.elapsed.as_millis());
            for failure in &r.failures {
                let _ = writeln!(out, "      ↳ {failure} ({})", r.spec);
            }
        }
        let passed = self.results.iter().filter(|r| r.passed()).count();
        let _ = writeln!(out, "\nconformance: {passed} of {} steps conform", self.results.len());
        out
    }

    /// JUnit XML: one test suite per scenario, one test case per step.
    pub fn junit_xml(&self) -> String {
        let mut suites: BTreeMap<&str, Vec<&StepResult>> = BTreeMap::new();
        for r in &self.results {
            suites.entry(&r.scenario).or_default().push(r);
        }
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"koogate conformance\">\n",
        );
        for (name, results) in suites {
            let failures = results.iter().filter(|r| !r.passed()).count();
            let _ = writeln!(
                xml,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
                escape(name),
                results.len()
            );
            for r in results {
                let _ = write!(
                    xml,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    escape(name),
                    escape(&r.step),
                    r.elapsed.as_secs_f64()
                );
                if r.passed() {
                    xml.push_str("/>\n");
                } else {
                    let message = escape(&r.failures.join("; "));
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{message}\">{}</failure>\n    </testcase>",
                        escape(&r.spec)
                    );
                }
            }
            xml.push_str("  </testsuite>\n");
        }
        xml.push_str("</testsuites>\n");
        xml
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Plays `scenarios` against `target`, signing with `key`.
pub async fn run(target: &str, key: AccessKey, scenarios: &[Scenario]) -> ConformanceReport {
    let sender = CallbackSender::new(target, key);
    let mut report = ConformanceReport::default();
    for scenario in scenarios {
        let run_id = random_nonce()[..10].to_ascii_lowercase();
        let first = play(&sender, scenario, &run_id, &mut report, "").await;
        if scenario.dial_test_replay {
            for round in 1..=2 {
                let label = format!(" (dial-test replay {round})");
                let again = play(&sender, scenario, &run_id, &mut report, &label).await;
                for ((step, a), b) in scenario.steps.iter().zip(&first).zip(&again) {
                    if a != b {
                        report.results.push(StepResult {
                            scenario: scenario.name.clone(),
                            step: format!("{}{label}: same answer as the saved case", step.name),
                            spec: "saas-v2 §11.1 (dial tests replay saved debug cases)".into(),
                            result_code: b.0.clone(),
                            elapsed: Duration::ZERO,
                            failures: vec![format!("answered {b:?}, the saved case answered {a:?}")],
                        });
                    }
                }
            }
        }
    }
    report
}

/// Plays one scenario; returns (code, instanceId) per step, for replay comparison.
async fn play(
    sender: &CallbackSender,
    scenario: &Scenario,
    run_id: &str,
    report: &mut ConformanceReport,
    label: &str,
) -> Vec<(Option<String>, Option<String>)> {
    let mut vars: BTreeMap<String, String> = BTreeMap::from([("run".to_owned(), run_id.to_owned())]);
    let mut answers = Vec::new();
    for step in &scenario.steps {
        let started = Instant::now();
        let outcome = send_step(sender, step, &vars).await;
        let elapsed = started.elapsed();
        let mut result = StepResult {
            scenario: scenario.name.clone(),
            step: format!("{}{label}", step.name),
            spec: step.spec.clone(),
            result_code: None,
            elapsed,
            failures: Vec::new(),
        };
        match outcome {
            Err(error) => result.failures.push(format!("the call failed: {error}")),
            Ok(reply) => {
                result.result_code = reply.result_code();
                check_reply(step, &reply, elapsed, sender.key(), &mut vars, &mut result.failures);
                answers.push((reply.result_code(), reply.instance_id()));
            }
        }
        report.results.push(result);
    }
    answers
}

async fn send_step(
    sender: &CallbackSender,
    step: &Step,
    vars: &BTreeMap<String, String>,
) -> Result<CallbackReply, String> {
    let body = match (&step.raw_body, &step.body) {
        (Some(raw), _) => raw.clone().into_bytes(),
        (None, Some(body)) => koogate_protocol::canonical::canonical_bytes(&substitute(body, vars)),
        (None, None) => return Err("the step has no body".into()),
    };
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
            as i64;
    let tamper = match step.tamper.as_deref() {
        None | Some("replay") => Tamper::default(),
        Some("bad_signature") => Tamper { signature: Some("0".repeat(64)), ..Tamper::default() },
        Some("no_signature") => Tamper { signature: Some(String::new()), ..Tamper::default() },
        Some("stale_timestamp") => {
            Tamper { timestamp: Some((now - 120_000).to_string()), ..Tamper::default() }
        }
        Some("future_timestamp") => {
            Tamper { timestamp: Some((now + 120_000).to_string()), ..Tamper::default() }
        }
        Some("no_nonce") => Tamper { omit_nonce: true, ..Tamper::default() },
        Some(other) => return Err(format!("unknown tamper {other:?}")),
    };
    let first = sender.send_body(&body, &tamper).await.map_err(|e| e.to_string())?;
    if step.tamper.as_deref() != Some("replay") {
        return Ok(first);
    }
    // The same call again, byte for byte, with the same nonce: a replay.
    let replay = Tamper { nonce: Some(first.nonce.clone()), ..Tamper::default() };
    sender.send_body(&body, &replay).await.map_err(|e| e.to_string())
}

fn substitute(value: &Value, vars: &BTreeMap<String, String>) -> Value {
    match value {
        Value::String(s) => {
            let mut text = s.clone();
            for (name, val) in vars {
                text = text.replace(&format!("{{{name}}}"), val);
            }
            Value::String(text)
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), substitute(v, vars))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, vars)).collect()),
        other => other.clone(),
    }
}

fn check_reply(
    step: &Step,
    reply: &CallbackReply,
    elapsed: Duration,
    key: &AccessKey,
    vars: &mut BTreeMap<String, String>,
    failures: &mut Vec<String>,
) {
    if reply.status != 200 {
        failures.push(format!("HTTP {} instead of 200 (saas-v2 §1)", reply.status));
    }
    if !reply.content_type.as_deref().is_some_and(|c| c.starts_with("application/json")) {
        failures.push(format!(
            "Content-Type {:?} instead of application/json (saas-v2 §11.2)",
            reply.content_type
        ));
    }
    let json = reply.json();
    let code = reply.result_code();
    if json.is_none() || code.is_none() || reply.result_msg().is_none() {
        failures.push("the body is not JSON with resultCode and resultMsg (saas-v2 §5.3)".into());
    }
    if !reply.body_sign_valid(key) {
        failures.push("the Body-Sign header is missing or does not match the body (saas-v2 §3)".into());
    }
    if elapsed > MAX_RESPONSE_TIME {
        failures
            .push(format!("answered after {} ms, over KooGallery's 5 s (saas-v2 §1)", elapsed.as_millis()));
    }
    let code = code.unwrap_or_default();
    if step.expect_refused && code == "000000" {
        failures.push("the call was accepted but must be refused".into());
    }
    if !step.expect.is_empty() && !step.expect.contains(&code) {
        failures.push(format!("resultCode {code:?}, expected {}", step.expect.join(" or ")));
    }
    let field =
        |name: &str| json.as_ref().and_then(|j| j.get(name)).and_then(Value::as_str).map(str::to_owned);
    for (var, name) in &step.capture {
        match field(name) {
            Some(value) => {
                vars.insert(var.clone(), value);
            }
            None => failures.push(format!("the answer has no {name} (saas-v2 §11.2)")),
        }
    }
    for (name, var) in &step.same_as {
        if field(name) != vars.get(var).cloned() {
            failures.push(format!(
                "{name} is {:?}, expected the earlier {:?} (saas-v2 §6.1 idempotency)",
                field(name),
                vars.get(var)
            ));
        }
    }
    for (name, var) in &step.differs_from {
        if field(name).is_some() && field(name) == vars.get(var).cloned() {
            failures.push(format!("{name} must differ from {:?}", vars.get(var)));
        }
    }
    if let (Some(var), "000000") = (&step.check_info_for, code.as_str()) {
        let wanted = vars.get(var).cloned().unwrap_or_default();
        let found = json.as_ref().and_then(|j| j["info"].as_array().cloned()).is_some_and(|info| {
            info.iter().any(|i| i["instanceId"] == wanted.as_str() && i["appInfo"]["frontEndUrl"].is_string())
        });
        if !found {
            failures.push(format!(
                "info has no entry with instanceId {wanted:?} and appInfo.frontEndUrl (saas-v2 §6.2)"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_scenarios_parse() {
        let scenarios = builtin_scenarios();
        assert_eq!(scenarios.len(), 4);
        assert!(scenarios.iter().all(|s| !s.steps.is_empty()));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        assert_eq!(load_scenarios(&dir).unwrap().len(), 4);
    }

    #[test]
    fn junit_escapes_and_counts_failures() {
        let report = ConformanceReport {
            results: vec![StepResult {
                scenario: "s".into(),
                step: "a <b>".into(),
                spec: "§1".into(),
                result_code: None,
                elapsed: Duration::from_millis(5),
                failures: vec!["x & y".into()],
            }],
        };
        let xml = report.junit_xml();
        assert!(xml.contains("failures=\"1\"") && xml.contains("a &lt;b&gt;") && xml.contains("x &amp; y"));
        assert!(!report.passed());
    }
}
