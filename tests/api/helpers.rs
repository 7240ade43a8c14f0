//! The test harness: one throwaway PostgreSQL per test binary, a migrated template database, and a
//! [`TestApp`] per test: a fresh database cloned from the template and the real router on port 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection, PgPool};
use switchboard::auth::OperatorToken;
use switchboard::db::{self, embedded};
use tokio::sync::OnceCell;

const TEMPLATE: &str = "switchboard_template";
pub const OPERATOR_TOKEN: &str = "test-operator-token";

struct Cluster {
    _server: embedded::EmbeddedPostgres,
    maintenance: PgConnectOptions,
    app_password: SecretString,
}

static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();

/// Where test binaries keep the shared PostgreSQL install (and the service test's data directory).
pub fn test_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("switchboard-data")
}

async fn cluster() -> &'static Cluster {
    CLUSTER
        .get_or_init(|| async {
            let server = tokio::task::spawn_blocking(|| {
                let layout = embedded::Layout::throwaway(&test_data_dir(), &format!("{}-api", std::process::id()))
                    .expect("test cluster layout");
                embedded::EmbeddedPostgres::start(&layout, embedded::Durability::Throwaway)
                    .expect("the embedded PostgreSQL starts")
            })
            .await
            .expect("start task");
            let maintenance = server.maintenance_options();
            let app_password = SecretString::from("test-app-password");
            db::create_database_if_missing(&maintenance, TEMPLATE).await.expect("template database");
            db::prepare(&maintenance.clone().database(TEMPLATE), &app_password).await.expect("migrations");
            Cluster { _server: server, maintenance, app_password }
        })
        .await
}

pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    /// The application role's pool: row-level security applies.
    pub app_db: PgPool,
    /// The owner (a superuser in the embedded cluster): for arranging and inspecting what the API cannot.
    pub owner_db: PgPool,
}

/// A tenant made through the API, with its first (admin, chat, runs) key.
pub struct TestTenant {
    pub id: uuid::Uuid,
    pub admin_key: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        let cluster = cluster().await;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut maintenance = PgConnection::connect_with(&cluster.maintenance).await.expect("maintenance connection");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")))
            .execute(&mut maintenance)
            .await
            .expect("clone the template");
        maintenance.close().await.expect("close");

        let owner = cluster.maintenance.clone().database(&name);
        let app_db = db::connect_app_pool(&owner, &cluster.app_password).await.expect("app pool");
        let owner_db = PgPoolOptions::new().max_connections(2).connect_with(owner).await.expect("owner pool");
        let state = switchboard::http::AppState {
            db: app_db.clone(),
            operator_token: Arc::new(OperatorToken::new(&SecretString::from(OPERATOR_TOKEN))),
        };
        let router = switchboard::http::router(state, 64 * 1024);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(switchboard::http::serve(listener, router, std::future::pending()));
        Self { address, client: reqwest::Client::new(), app_db, owner_db }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(token).json(body)
    }

    pub fn delete(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(token)
    }

    pub async fn create_tenant(&self, slug: &str) -> TestTenant {
        let response = self
            .post("/api/v1/tenants", OPERATOR_TOKEN, &json!({ "name": format!("Tenant {slug}"), "slug": slug }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        TestTenant {
            id: body["tenant"]["id"].as_str().expect("tenant id").parse().expect("uuid"),
            admin_key: body["api_key"]["key"].as_str().expect("key").to_owned(),
        }
    }

    /// Creates a key with `scopes` for the tenant; returns its id and token.
    pub async fn create_key(&self, tenant: &TestTenant, scopes: &[&str]) -> (String, String) {
        let response = self
            .post("/api/v1/api-keys", &tenant.admin_key, &json!({ "name": "test key", "scopes": scopes }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        (body["id"].as_str().expect("id").to_owned(), body["key"].as_str().expect("key").to_owned())
    }
}

/// Asserts the API's error shape and returns the body.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let header_id = response.headers().get("x-request-id").expect("x-request-id").to_str().expect("ascii").to_owned();
    let content_type = response.headers().get("content-type").expect("content type").to_str().expect("ascii");
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let body: Value = response.json().await.expect("json error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
    assert_eq!(body["error"]["request_id"], header_id.as_str(), "{body}");
    body
}
