//! The API contract, fuzzed: schemathesis (pinned in tests/contract/requirements.txt, in its own virtual
//! environment) generates requests from `/openapi.json` for every operation, valid and invalid, and
//! checks each answer against the document: no 5xx, and the status, content type, headers and body it
//! gives. A bounded, seeded run: the same cases on every machine.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, TestApp, python_venv};

/// Cases per operation and phase; with the coverage phase's own cases this is well over 1,000 requests.
const CASES_PER_OPERATION: &str = "12";
const SEED: &str = "20261205";

fn contract_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contract")
}

#[tokio::test]
async fn schemathesis_finds_no_answer_that_breaks_the_contract() {
    let python = python_venv("schemathesis-venv", &[contract_dir().join("requirements.txt")]).await;
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("fuzzed").await;
    let (_, key) = app.create_key(&tenant, &["admin", "chat", "runs"]).await;
    let added = app
        .post(
            "/api/v1/documents",
            &tenant.admin_key,
            &json!({ "source_path": "hives.md", "content": "# Hives\n\nA hive holds one queen and many workers." }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);

    // Read before the run: after minutes of it, the client's pooled connection may be one the service
    // has just closed as idle.
    let document: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();

    let events = std::env::temp_dir().join(format!("schemathesis-{}.ndjson", uuid::Uuid::new_v4()));
    let schemathesis = python.with_file_name("schemathesis");
    let output = tokio::process::Command::new(&schemathesis)
        .arg("--config-file")
        .arg(contract_dir().join("schemathesis.toml"))
        .arg("run")
        .arg(app.url("/openapi.json"))
        .env("SWITCHBOARD_TENANT_KEY", &key)
        .env("SWITCHBOARD_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", CASES_PER_OPERATION, "--seed", SEED, "--workers", "1"])
        .args(["--request-timeout", "60", "--no-shrink", "--output-truncate", "true"])
        .args(["--report", "ndjson", "--report-ndjson-path"])
        .arg(&events)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let printed = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found answers that break the contract:\n{printed}");

    let (requests, operations) = requests_and_operations(&std::fs::read_to_string(&events).unwrap());
    std::fs::remove_file(&events).unwrap();
    let documented = documented_operations(&document);
    let untested: Vec<&String> = documented.difference(&operations).collect();
    assert!(untested.is_empty(), "operations schemathesis never called: {untested:?}\n{printed}");
    assert!(requests >= 1_000, "only {requests} requests\n{printed}");
    println!("schemathesis: {requests} requests over {} operations", operations.len());
}

fn documented_operations(document: &Value) -> BTreeSet<String> {
    crate::openapi::operations(document)
        .into_iter()
        .map(|(method, path, _)| format!("{} {path}", method.to_uppercase()))
        .collect()
}

/// From schemathesis's event log: how many requests it sent, and to which operations (`METHOD /path`).
fn requests_and_operations(events: &str) -> (usize, BTreeSet<String>) {
    let mut requests = 0;
    let mut operations = BTreeSet::new();
    for line in events.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let Some(finished) = event.get("ScenarioFinished") else { continue };
        let recorder = &finished["recorder"];
        if let Some(label) = recorder["label"].as_str() {
            operations.insert(label.to_owned());
        }
        if let Some(interactions) = recorder["interactions"].as_object() {
            requests += interactions.len();
        }
    }
    (requests, operations)
}
