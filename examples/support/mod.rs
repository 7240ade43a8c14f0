//! What the latency examples share: a Switchboard on a throwaway embedded PostgreSQL with the mock
//! upstream as its OpenAI, timing of streamed requests, and percentiles.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use mock_upstream::{Defaults, MockUpstream};
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard::auth::OperatorToken;
use switchboard::crypto::MasterKeys;
use switchboard::db::{self, embedded};
use switchboard::embeddings::{EmbedderFactory, EmbeddingModel};
use switchboard::engine::{Engine, ProviderSetup};
use switchboard::outbound::OutboundPolicy;
use switchboard::prompts::Prompts;
use switchboard::providers::ProviderKind;
use switchboard::providers::credentials::{PlatformCredentials, PlatformProviders};
use switchboard::providers::http::{HttpClient, UpstreamSettings};
use switchboard::retrieval::backfill;
use switchboard::tools::Toolbox;
use switchboard::tools::settings::ToolSettings;

pub const OPERATOR: &str = "bench-operator";

/// The nearest-rank percentile, `per_mille` of 500 being the median.
pub fn percentile(samples: &[Duration], per_mille: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (sorted.len() * per_mille).div_ceil(1000).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Streams one request and returns (time to the first content event, time to the end).
pub async fn timed(request: reqwest::RequestBuilder, is_content: impl Fn(&str) -> bool) -> (Duration, Duration) {
    let started = Instant::now();
    let response = request.send().await.expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut first = None;
    while let Some(event) = events.next().await {
        let event = event.expect("event");
        if first.is_none() && is_content(&event.data) {
            first = Some(started.elapsed());
        }
    }
    (first.expect("some content"), started.elapsed())
}

/// A running Switchboard on a throwaway database, its mock upstream and an admin key of a tenant whose
/// default provider is OpenAI (served by the mock).
pub struct Setup {
    pub base: String,
    pub key: String,
    pub mock: MockUpstream,
    pub server: embedded::EmbeddedPostgres,
}

/// `outbound_allow`: what tenant-supplied URLs (MCP servers) may reach although private.
pub async fn set_up(client: &reqwest::Client, outbound_allow: &[String]) -> Setup {
    let data_dir = std::path::PathBuf::from("target/bench-data");
    let cluster_dir = data_dir.clone();
    let server = tokio::task::spawn_blocking(move || {
        let layout = embedded::Layout::throwaway(&cluster_dir, &format!("{}-bench", std::process::id())).unwrap();
        embedded::EmbeddedPostgres::start(&layout, embedded::Durability::Throwaway).unwrap()
    })
    .await
    .unwrap();
    let app_password = SecretString::from("bench-app-password");
    db::create_database_if_missing(&server.maintenance_options(), "bench").await.unwrap();
    let owner = server.maintenance_options().database("bench");
    db::prepare(&owner, &app_password).await.unwrap();
    let pool = db::connect_app_pool(&owner, &app_password).await.unwrap();

    let mock =
        MockUpstream::start_with("127.0.0.1:0".parse().unwrap(), Defaults { tokens: 50, chunk_delay: Duration::ZERO })
            .await
            .unwrap();
    let keys = Arc::new(MasterKeys::new(&SecretString::from("bench-master"), &[]));
    let platform = PlatformProviders::from([(
        ProviderKind::OpenAi,
        PlatformCredentials { api_key: SecretString::from("bench-key"), base_url: mock.openai_base() },
    )]);
    let providers = ProviderSetup {
        http: HttpClient::new(UpstreamSettings::default()),
        tenant_http: HttpClient::guarded(UpstreamSettings::default(), &OutboundPolicy::new(outbound_allow)),
        platform,
        keys: Arc::clone(&keys),
        catalog: switchboard::catalog::Catalog::built_in(),
    };
    // The default retriever: every turn embeds its question with the local model, as the service does.
    let factory = EmbedderFactory::new(
        HashMap::new(),
        HttpClient::new(UpstreamSettings::default()),
        &data_dir,
        switchboard::catalog::Catalog::built_in(),
    );
    let retriever = backfill::prepare(&owner, &pool, &factory, EmbeddingModel::local()).await;
    let toolbox = Toolbox::new(ToolSettings::default(), Arc::clone(&keys), OutboundPolicy::new(outbound_allow));
    let engine = Engine::new(pool.clone(), Prompts::load().unwrap(), providers, retriever.clone(), toolbox.clone())
        .await
        .expect("the engine starts");
    let state = switchboard::http::AppState {
        db: pool,
        engine,
        retriever,
        operator_token: Arc::new(OperatorToken::new(&SecretString::from(OPERATOR))),
        keys,
        outbound: OutboundPolicy::new(outbound_allow),
        tools: toolbox,
        web: switchboard::http::WebSettings { demo: switchboard::demo::DemoMode::Off, assets_dir: None },
        exports: switchboard::tenants::export::Exports::default(),
        metrics: switchboard::metrics::Metrics::install(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(switchboard::http::serve(listener, switchboard::http::router(state, 1 << 20), std::future::pending()));

    let created: Value = client
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(OPERATOR)
        .json(&json!({"name": "Bench", "slug": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"]["key"].as_str().unwrap().to_owned();
    client
        .patch(format!("{base}/api/v1/tenant/config"))
        .bearer_auth(&key)
        .json(&json!({"default_provider": "openai", "default_model": "bench-model"}))
        .send()
        .await
        .unwrap();
    Setup { base, key, mock, server }
}
