//! A megabyte without a space (the shape that once held an async worker for minutes while it was chunked,
//! and every tenant with it) is ingested through the API while `/healthz` and another tenant's search are
//! answered, and is then searchable.

use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard::auth::OperatorToken;
use switchboard::demo::DemoMode;
use switchboard::http::{AppState, WebSettings};
use switchboard::outbound::OutboundPolicy;
use switchboard::tools::Toolbox;
use switchboard::tools::settings::ToolSettings;

use crate::helpers::{OPERATOR_TOKEN, TestApp};

/// The service's default request body limit (`SWITCHBOARD_MAX_BODY_BYTES`); the harness's router allows
/// only 64 KiB.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The app's router once more, with the default body limit, embedding documents with the mock's model (the
/// local one would spend minutes of CPU on a thousand chunks).
async fn serve_with_default_body_limit(app: &TestApp) -> String {
    let outbound = OutboundPolicy::new(&["127.0.0.1".to_owned()]);
    let state = AppState {
        db: app.app_db.clone(),
        engine: app.engine.clone(),
        retriever: app.retriever_for("openai/text-embedding-3-small", Some(256)).await,
        operator_token: Arc::new(OperatorToken::new(&SecretString::from(OPERATOR_TOKEN))),
        keys: Arc::clone(&app.keys),
        tools: Toolbox::new(ToolSettings::default(), Arc::clone(&app.keys), outbound.clone()),
        outbound,
        web: WebSettings { demo: DemoMode::Off, assets_dir: None },
        exports: switchboard::tenants::export::Exports::default(),
        metrics: switchboard::metrics::Metrics::install(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let router = switchboard::http::router(state, MAX_BODY_BYTES);
    tokio::spawn(switchboard::http::serve(listener, router, std::future::pending()));
    format!("http://{address}")
}

fn source_paths(results: &Value) -> Vec<&str> {
    results["results"].as_array().unwrap().iter().map(|hit| hit["source_path"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_megabyte_without_spaces_is_ingested_while_other_tenants_are_served() {
    let app = TestApp::spawn().await;
    let base = serve_with_default_body_limit(&app).await;
    let writer = app.create_tenant("writer").await;
    let reader = app.create_tenant("reader").await;
    let client = reqwest::Client::new();
    let post = |key: &str, path: &str, body: &Value| client.post(format!("{base}{path}")).bearer_auth(key).json(body);
    let backups = json!({"source_path": "backups.md", "content": "# Backups\n\nBackups of the cluster run nightly."});
    assert_eq!(post(&reader.admin_key, "/api/v1/documents", &backups).send().await.unwrap().status(), 201);

    // Underscores join words for the splitter too: one word of a million characters.
    let content: String = "quasar_calibration_".chars().cycle().take(1_000_000).collect();
    let large = json!({"source_path": "telemetry.md", "content": content});
    // The large document's rows wait for this lock, so its ingestion is still in flight, whatever the
    // timing, when the other requests are answered (searches only read, which the lock allows).
    let mut lock = app.owner_db.begin().await.unwrap();
    sqlx::query("LOCK TABLE documents IN EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let ingestion = tokio::spawn(post(&writer.admin_key, "/api/v1/documents", &large).send());

    let question = json!({"query": "when do backups of the cluster run", "k": 5});
    let (health, search) = tokio::join!(
        client.get(format!("{base}/healthz")).send(),
        post(&reader.admin_key, "/api/v1/search", &question).send(),
    );
    assert_eq!(health.unwrap().status(), 200);
    let search = search.unwrap();
    assert_eq!(search.status(), 200);
    assert_eq!(source_paths(&search.json().await.unwrap()), ["backups.md"], "the reader finds its own document");
    assert!(!ingestion.is_finished(), "the ingestion was in flight while they were answered");

    lock.commit().await.unwrap();
    let added = ingestion.await.unwrap().unwrap();
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    assert!(added["document"]["chunk_count"].as_i64().unwrap() > 500, "{}", added["document"]);

    let question = json!({"query": "quasar calibration", "k": 3, "mode": "full_text"});
    let found = post(&writer.admin_key, "/api/v1/search", &question).send().await.unwrap();
    assert_eq!(found.status(), 200);
    let found: Value = found.json().await.unwrap();
    assert_eq!(source_paths(&found), ["telemetry.md"; 3]);
    let hit = found["results"][0]["content"].as_str().unwrap();
    assert!(hit.len() > 500 && !hit.contains(char::is_whitespace), "a chunk of the run: {hit}");
    let other = post(&reader.admin_key, "/api/v1/search", &question).send().await.unwrap();
    assert!(source_paths(&other.json().await.unwrap()).is_empty(), "another tenant's document stays its own");
}
