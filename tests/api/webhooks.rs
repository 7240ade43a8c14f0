//! Webhooks: destinations (the secret shown once, URLs under the outbound policy, events checked), deliveries
//! queued with the facts they announce and received by a local server, their signatures verified by the
//! Standard Webhooks reference library (Python, tests/webhooks-python), retries after a failed answer, the
//! delivery log, redelivery, disabling after persistent failure, and row-level security between tenants.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error, python_venv};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Value,
    body: String,
}

/// A webhook receiver on 127.0.0.1 (which the tests' outbound policy allows): it records every request and
/// answers the statuses it was given in turn, then `then` for ever.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
    then: u16,
    url: String,
}

impl Receiver {
    async fn start(answers: &[u16]) -> Self {
        Self::answering(answers, 200).await
    }

    async fn answering(answers: &[u16], then: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let receiver = Self {
            received: Arc::default(),
            answers: Arc::new(Mutex::new(answers.iter().rev().copied().collect())),
            then,
            url,
        };
        let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (a generous bound, no timing asserted) until it has received `count` requests.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..600 {
            let seen = self.received();
            if seen.len() >= count {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver got {:?}, not {count} requests", self.received());
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("webhook-") || name.as_str() == "content-type")
        .map(|(name, value)| (name.as_str().to_owned(), Value::String(value.to_str().unwrap().to_owned())))
        .collect();
    receiver.received.lock().unwrap().push(Received { headers: Value::Object(headers), body });
    let status = receiver.answers.lock().unwrap().pop().unwrap_or(receiver.then);
    StatusCode::from_u16(status).unwrap()
}

/// Verifies every delivery with the Standard Webhooks reference library; returns the verified payloads.
async fn verified_by_the_reference_library(secret: &str, deliveries: &[Received]) -> Vec<Value> {
    let folder = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks-python");
    let python = python_venv("webhooks-python-venv", &[folder.join("requirements.txt")]).await;
    let input: Vec<Value> =
        deliveries.iter().map(|delivery| json!({ "headers": delivery.headers, "body": delivery.body })).collect();
    let mut child = tokio::process::Command::new(python)
        .arg(folder.join("verify.py"))
        .env("WEBHOOK_SECRET", secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, Value::Array(input).to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "a signature did not verify: {printed}");
    printed.lines().map(|line| serde_json::from_str::<Value>(line).unwrap()["verified"].clone()).collect()
}

/// Creates a destination; returns its id and secret.
async fn create_webhook(app: &TestApp, tenant: &TestTenant, url: &str, events: &[&str]) -> (String, String) {
    let body = json!({ "url": url, "events": events, "description": "orders system" });
    let response = app.post("/api/v1/webhooks", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let created: Value = response.json().await.unwrap();
    (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

async fn add_document(app: &TestApp, tenant: &TestTenant, path: &str) -> String {
    let document = json!({ "source_path": path, "content": "# Hives\n\nA hive holds one queen and many workers." });
    let response = app.post("/api/v1/documents", &tenant.admin_key, &document).send().await.unwrap();
    assert!(matches!(response.status().as_u16(), 200 | 201), "{}", response.status());
    let added: Value = response.json().await.unwrap();
    added["document"]["id"].as_str().unwrap().to_owned()
}

async fn deliveries(app: &TestApp, tenant: &TestTenant, webhook: &str) -> Vec<Value> {
    let listed = app.get_json(&format!("/api/v1/webhooks/{webhook}/deliveries"), &tenant.admin_key).await;
    listed["deliveries"].as_array().unwrap_or_else(|| panic!("{listed}")).clone()
}

/// Polls the delivery log (a generous bound) until `done` holds for it; returns it.
async fn wait_for_log(
    app: &TestApp,
    tenant: &TestTenant,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..600 {
        let log = deliveries(app, tenant, webhook).await;
        if done(&log) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery log never got there: {:#}", Value::Array(deliveries(app, tenant, webhook).await));
}

fn statuses(delivery: &Value) -> Vec<Value> {
    delivery["attempts"].as_array().unwrap().iter().map(|attempt| attempt["status_code"].clone()).collect()
}

#[tokio::test]
async fn a_chat_turn_and_an_upload_are_delivered_signed_as_the_reference_library_verifies() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let receiver = Receiver::start(&[]).await;
    let (webhook, secret) = create_webhook(&app, &tenant, &receiver.url, &["run.completed", "document.ingested"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");

    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "How many queens does a hive hold?").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let run_id = events[0].data["run_id"].as_str().unwrap().to_owned();
    let answer = crate::helpers::streamed_text(&events);
    let document_id = add_document(&app, &tenant, "hives.md").await;

    let seen = receiver.wait_for(2).await;
    let payloads = verified_by_the_reference_library(&secret, &seen).await;
    let completed = payloads.iter().find(|payload| payload["type"] == "run.completed").expect("run.completed");
    assert_eq!(completed["data"]["run_id"], run_id.as_str());
    assert_eq!(completed["data"]["session_id"], session.as_str());
    assert!(completed["timestamp"].is_string() && completed["data"]["message_id"].is_string(), "{completed}");
    let ingested = payloads.iter().find(|payload| payload["type"] == "document.ingested").expect("document.ingested");
    assert_eq!(ingested["data"]["document_id"], document_id.as_str());
    assert_eq!(
        (ingested["data"]["source_path"].as_str(), ingested["data"]["outcome"].as_str()),
        (Some("hives.md"), Some("created"))
    );
    // Ids and a few fields: never the answer's or the document's text.
    for delivery in &seen {
        assert!(!answer.is_empty() && !delivery.body.contains(&answer), "{}", delivery.body);
        assert!(!delivery.body.contains("many workers"), "{}", delivery.body);
        assert_eq!(delivery.headers["content-type"], "application/json");
    }

    // The log: both delivered at the first attempt, under the webhook-id the receiver saw.
    let log = wait_for_log(&app, &tenant, &webhook, |log| {
        log.len() == 2 && log.iter().all(|delivery| delivery["status"] == "delivered")
    })
    .await;
    for delivery in &log {
        assert_eq!(statuses(delivery), [json!(200)], "{delivery}");
        assert!(delivery["attempts"][0]["latency_ms"].as_i64().unwrap() >= 0);
        assert!(seen.iter().any(|request| request.headers["webhook-id"] == delivery["message_id"]), "{delivery}");
    }
    // A document stored again unchanged is no new fact; a turn under no subscribed type sends nothing more.
    add_document(&app, &tenant, "hives.md").await;
    assert_eq!(deliveries(&app, &tenant, &webhook).await.len(), 2);
}

#[tokio::test]
async fn a_receiver_that_answers_500_gets_the_delivery_again_and_both_attempts_are_logged() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let receiver = Receiver::start(&[500]).await;
    let (webhook, secret) = create_webhook(&app, &tenant, &receiver.url, &["document.ingested"]).await;
    add_document(&app, &tenant, "hives.md").await;

    let log =
        wait_for_log(&app, &tenant, &webhook, |log| log.first().is_some_and(|first| first["status"] == "delivered"))
            .await;
    assert_eq!(log.len(), 1);
    assert_eq!(statuses(&log[0]), [json!(500), json!(200)], "{}", log[0]);
    assert!(log[0]["delivered_at"].is_string() && log[0]["next_attempt_at"].is_null(), "{}", log[0]);

    // The same message both times (so the receiver can drop a duplicate), each signed afresh.
    let seen = receiver.wait_for(2).await;
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers["webhook-id"], seen[1].headers["webhook-id"]);
    assert_eq!(seen[0].headers["webhook-id"], log[0]["message_id"]);
    assert_eq!(seen[0].body, seen[1].body);
    verified_by_the_reference_library(&secret, &seen).await;

    // The destination is healthy: the failure was cleared by the delivered attempt.
    let shown = app.get_json(&format!("/api/v1/webhooks/{webhook}"), &tenant.admin_key).await;
    assert_eq!((shown["enabled"].as_bool(), shown["consecutive_failures"].as_i64()), (Some(true), Some(0)), "{shown}");
}

#[tokio::test]
async fn a_delivery_is_redelivered_on_request_with_the_same_message_id() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let receiver = Receiver::start(&[]).await;
    let (webhook, secret) = create_webhook(&app, &tenant, &receiver.url, &["document.ingested"]).await;
    add_document(&app, &tenant, "hives.md").await;
    let log =
        wait_for_log(&app, &tenant, &webhook, |log| log.first().is_some_and(|first| first["status"] == "delivered"))
            .await;
    let delivery = log[0]["id"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/webhooks/{webhook}/deliveries/{delivery}/redeliver");
    let response = app.post(&path, &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let queued: Value = response.json().await.unwrap();
    assert_eq!((queued["id"].as_str(), queued["status"].as_str()), (Some(delivery.as_str()), Some("pending")));

    let log = wait_for_log(&app, &tenant, &webhook, |log| {
        log.first().is_some_and(|first| first["status"] == "delivered" && statuses(first).len() == 2)
    })
    .await;
    assert_eq!(statuses(&log[0]), [json!(200), json!(200)]);
    let seen = receiver.wait_for(2).await;
    assert_eq!(seen[0].headers["webhook-id"], seen[1].headers["webhook-id"]);
    verified_by_the_reference_library(&secret, &seen).await;

    // Another destination's delivery, or none, is not found.
    let (other, _) = create_webhook(&app, &tenant, &receiver.url, &["run.failed"]).await;
    let elsewhere = format!("/api/v1/webhooks/{other}/deliveries/{delivery}/redeliver");
    assert_error(app.post(&elsewhere, &tenant.admin_key, &json!({})).send().await.unwrap(), 404, "not_found").await;
    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await.to_string();
    assert!(audit.contains("webhook.redelivered"), "{audit}");
}

#[tokio::test]
async fn the_secret_is_in_the_answer_that_creates_the_destination_only() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let receiver = Receiver::start(&[]).await;
    let (webhook, secret) = create_webhook(&app, &tenant, &receiver.url, &["document.ingested", "run.failed"]).await;
    let encoded = secret.strip_prefix("whsec_").unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap().len(), 32);
    add_document(&app, &tenant, "hives.md").await;
    wait_for_log(&app, &tenant, &webhook, |log| log.first().is_some_and(|first| first["status"] == "delivered")).await;

    let patched = app
        .patch(&format!("/api/v1/webhooks/{webhook}"), &tenant.admin_key, &json!({ "description": "renamed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let shown = [
        app.get_json("/api/v1/webhooks", &tenant.admin_key).await,
        app.get_json(&format!("/api/v1/webhooks/{webhook}"), &tenant.admin_key).await,
        patched.json().await.unwrap(),
        Value::Array(deliveries(&app, &tenant, &webhook).await),
        app.get_json("/api/v1/audit-events", &tenant.admin_key).await,
        Value::String(app.get("/api/v1/tenant/export", &tenant.admin_key).send().await.unwrap().text().await.unwrap()),
    ];
    for answer in &shown {
        let text = answer.to_string();
        assert!(!text.contains(encoded), "the secret was shown again: {text}");
        assert!(!text.contains("secret_ciphertext"), "{text}");
    }
    assert_eq!(shown[0]["webhooks"][0]["events"], json!(["run.failed", "document.ingested"]));
    assert_eq!(shown[1]["description"], "renamed");
    let export = shown[5].as_str().unwrap();
    let line: Value = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|line| line["type"] == "webhook")
        .expect("a webhook line");
    assert_eq!((line["id"].as_str(), line["url"].as_str()), (Some(webhook.as_str()), Some(receiver.url.as_str())));
    // Sealed at rest: the stored bytes are not the secret.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_ciphertext FROM webhook_endpoints WHERE id = $1::uuid")
        .bind(&webhook)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert!(!stored.windows(encoded.len()).any(|window| window == encoded.as_bytes()));

    // Rotating the master key seals it again under the new key.
    let rotated = switchboard::crypto::MasterKeys::new(
        &secrecy::SecretString::from("another-master-key"),
        &[secrecy::SecretString::from(crate::helpers::MASTER_KEY)],
    );
    assert!(switchboard::tenants::secrets::reseal_all(&app.app_db, &rotated).await.unwrap() >= 1);
    let key_id: String = sqlx::query_scalar("SELECT secret_key_id FROM webhook_endpoints WHERE id = $1::uuid")
        .bind(&webhook)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert_eq!(key_id, rotated.current_id());

    // Deleted with its deliveries and their log.
    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{webhook}"), &tenant.admin_key).send().await.unwrap().status(),
        204
    );
    for table in ["webhook_endpoints", "webhook_deliveries", "webhook_attempts"] {
        let left: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table} WHERE tenant_id = $1")))
                .bind(tenant.id)
                .fetch_one(&app.owner_db)
                .await
                .unwrap();
        assert_eq!(left, 0, "{table}");
    }
}

#[tokio::test]
async fn another_tenants_destinations_are_invisible() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let receiver = Receiver::start(&[]).await;
    let (webhook, _) = create_webhook(&app, &acme, &receiver.url, &["document.ingested"]).await;
    add_document(&app, &acme, "hives.md").await;
    let log = wait_for_log(&app, &acme, &webhook, |log| !log.is_empty()).await;
    let delivery = log[0]["id"].as_str().unwrap();

    let listed = app.get_json("/api/v1/webhooks", &globex.admin_key).await;
    assert_eq!(listed["webhooks"], json!([]));
    let path = format!("/api/v1/webhooks/{webhook}");
    assert_error(app.get(&path, &globex.admin_key).send().await.unwrap(), 404, "not_found").await;
    let disabling = app.patch(&path, &globex.admin_key, &json!({ "enabled": false })).send().await.unwrap();
    assert_error(disabling, 404, "not_found").await;
    assert_error(app.get(&format!("{path}/deliveries"), &globex.admin_key).send().await.unwrap(), 404, "not_found")
        .await;
    let redeliver = app.post(&format!("{path}/deliveries/{delivery}/redeliver"), &globex.admin_key, &json!({}));
    assert_error(redeliver.send().await.unwrap(), 404, "not_found").await;
    assert_error(app.delete(&path, &globex.admin_key).send().await.unwrap(), 404, "not_found").await;
    // Globex's facts go to no destination of acme's.
    add_document(&app, &globex, "globex.md").await;
    assert_eq!(app.get_json(&path, &acme.admin_key).await["enabled"], true);
    // Without a tenant, the application role sees no row of these tables.
    for table in ["webhook_endpoints", "webhook_deliveries", "webhook_attempts"] {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&app.app_db)
            .await
            .unwrap();
        assert_eq!(count, 0, "{table} is visible without a tenant");
    }
    // A chat key is not an admin key.
    let (_, chat_key) = app.create_key(&acme, &["chat"]).await;
    assert_error(app.get("/api/v1/webhooks", &chat_key).send().await.unwrap(), 403, "forbidden").await;
    let only_acme = wait_for_log(&app, &acme, &webhook, |log| !log.is_empty()).await;
    assert_eq!(only_acme.len(), 1, "{only_acme:?}");
}

#[tokio::test]
async fn internal_urls_other_schemes_credentials_and_unknown_events_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let create = |url: &str, events: Value| {
        app.post("/api/v1/webhooks", &tenant.admin_key, &json!({ "url": url, "events": events })).send()
    };
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.1/hooks",
        "ftp://example.com/hooks",
        "file:///etc/passwd",
        "not a url",
        "http://user:pw@example.com/hooks",
        "https://example.com/hooks?token=abc",
    ] {
        let refused = assert_error(create(url, json!(["run.completed"])).await.unwrap(), 422, "invalid_request").await;
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains("url"), "{url}: {message}");
        assert!(!message.contains("pw@") && !message.contains("abc"), "{message}");
    }
    let unknown = assert_error(
        create("http://127.0.0.1:9/hooks", json!(["run.exploded"])).await.unwrap(),
        400,
        "unknown_webhook_event",
    )
    .await;
    assert!(unknown["error"]["message"].as_str().unwrap().contains("run.exploded"), "{unknown}");
    assert_error(create("http://127.0.0.1:9/hooks", json!([])).await.unwrap(), 422, "invalid_request").await;
    assert_eq!(app.get_json("/api/v1/webhooks", &tenant.admin_key).await["webhooks"], json!([]));

    // The same rules for a change.
    let (webhook, _) = create_webhook(&app, &tenant, "http://127.0.0.1:9/hooks", &["run.completed"]).await;
    let path = format!("/api/v1/webhooks/{webhook}");
    let change = |body: Value| app.patch(&path, &tenant.admin_key, &body).send();
    assert_error(change(json!({ "url": "http://169.254.169.254/" })).await.unwrap(), 422, "invalid_request").await;
    assert_error(change(json!({ "events": ["nope"] })).await.unwrap(), 400, "unknown_webhook_event").await;
    assert_error(change(json!({ "secret": "mine" })).await.unwrap(), 422, "invalid_request").await;
    let shown = app.get_json(&path, &tenant.admin_key).await;
    assert_eq!(
        (shown["url"].as_str(), shown["events"].clone()),
        (Some("http://127.0.0.1:9/hooks"), json!(["run.completed"]))
    );
}

#[tokio::test]
async fn a_destination_that_fails_for_the_whole_retry_window_is_disabled_and_audited() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let receiver = Receiver::answering(&[], 503).await;
    let (webhook, _) = create_webhook(&app, &tenant, &receiver.url, &["document.ingested"]).await;
    add_document(&app, &tenant, "hives.md").await;
    wait_for_log(&app, &tenant, &webhook, |log| log.first().is_some_and(|first| statuses(first).len() >= 2)).await;
    let shown = app.get_json(&format!("/api/v1/webhooks/{webhook}"), &tenant.admin_key).await;
    assert!(shown["consecutive_failures"].as_i64().unwrap() >= 2 && shown["failing_since"].is_string(), "{shown}");
    assert_eq!(shown["enabled"], true, "a few failures do not disable it");

    // A day of failures, without waiting a day: the round and the failures began 25 hours ago (one
    // transaction, so one `now()` for both).
    let mut moved = app.owner_db.begin().await.unwrap();
    for statement in [
        "UPDATE webhook_deliveries SET first_attempt_at = now() - interval '25 hours' WHERE endpoint_id = $1::uuid",
        "UPDATE webhook_endpoints SET failing_since = now() - interval '25 hours' WHERE id = $1::uuid",
    ] {
        sqlx::query(statement).bind(&webhook).execute(&mut *moved).await.unwrap();
    }
    moved.commit().await.unwrap();
    let log =
        wait_for_log(&app, &tenant, &webhook, |log| log.first().is_some_and(|first| first["status"] == "failed")).await;
    assert!(statuses(&log[0]).iter().all(|status| *status == json!(503)), "{}", log[0]);
    let shown = app.get_json(&format!("/api/v1/webhooks/{webhook}"), &tenant.admin_key).await;
    assert_eq!(
        (shown["enabled"].as_bool(), shown["disabled_reason"].as_str()),
        (Some(false), Some("failing")),
        "{shown}"
    );
    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    let disabled = audit["audit_events"].as_array().unwrap().iter().find(|event| event["action"] == "webhook.disabled");
    let disabled = disabled.unwrap_or_else(|| panic!("no webhook.disabled event: {audit}"));
    assert_eq!(
        (disabled["actor_type"].as_str(), disabled["target_id"].as_str()),
        (Some("system"), Some(webhook.as_str()))
    );

    // Off: new facts queue nothing for it, and nothing is redelivered. Enabled again, it starts afresh.
    add_document(&app, &tenant, "other.md").await;
    assert_eq!(deliveries(&app, &tenant, &webhook).await.len(), 1);
    let delivery = log[0]["id"].as_str().unwrap();
    let again =
        app.post(&format!("/api/v1/webhooks/{webhook}/deliveries/{delivery}/redeliver"), &tenant.admin_key, &json!({}));
    assert_error(again.send().await.unwrap(), 409, "webhook_disabled").await;
    let enabled = app.patch(&format!("/api/v1/webhooks/{webhook}"), &tenant.admin_key, &json!({ "enabled": true }));
    let enabled: Value = enabled.send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (enabled["enabled"].as_bool(), enabled["consecutive_failures"].as_i64()),
        (Some(true), Some(0)),
        "{enabled}"
    );
    assert!(enabled["disabled_reason"].is_null() && enabled["failing_since"].is_null(), "{enabled}");
    add_document(&app, &tenant, "third.md").await;
    assert_eq!(deliveries(&app, &tenant, &webhook).await.len(), 2);
}

#[tokio::test]
async fn a_call_waiting_for_approval_is_announced_and_so_is_the_end_of_its_run() {
    use mock_upstream::Reply;
    let app = TestApp::spawn().await;
    let server = crate::mcp_server::McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
    let tenant = crate::tools::tenant_with_tools(&app, "acme", &server, profile).await;
    let receiver = Receiver::start(&[]).await;
    let events = ["tool_call.awaiting_approval", "run.completed", "run.failed"];
    let (_, secret) = create_webhook(&app, &tenant, &receiver.url, &events).await;
    app.mock.push(Reply {
        tool_calls: vec![crate::tools::call("crm__delete_customer", json!({ "id": 7 }))],
        ..Reply::default()
    });
    app.mock.push(Reply { text: "I did not delete it.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let streamed = app.stream_turn(&tenant.admin_key, &session, "Delete customer 7").await;
    assert_eq!(streamed.last().unwrap().event, "run.awaiting_approval", "{streamed:#?}");

    // The receiver learns of the call, and decides it with what the delivery carries.
    let seen = receiver.wait_for(1).await;
    let payloads = verified_by_the_reference_library(&secret, &seen).await;
    assert_eq!(payloads[0]["type"], "tool_call.awaiting_approval");
    let data = &payloads[0]["data"];
    assert_eq!(
        (data["name"].as_str(), data["session_id"].as_str()),
        (Some("crm.delete_customer"), Some(session.as_str()))
    );
    assert!(!seen[0].body.contains("\"id\":7"), "no tool arguments: {}", seen[0].body);
    let call_id = data["tool_call_id"].as_str().unwrap();
    let response =
        app.post(&format!("/api/v1/tool-calls/{call_id}/deny"), &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let seen = receiver.wait_for(2).await;
    let payloads = verified_by_the_reference_library(&secret, &seen).await;
    assert_eq!(payloads[1]["type"], "run.completed", "{payloads:?}");
    assert_eq!(payloads[1]["data"]["run_id"], data["run_id"]);
    assert!(!seen[1].body.contains("I did not delete it"), "{}", seen[1].body);
}
