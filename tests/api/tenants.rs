//! Tenants: created by the operator, then listed, renamed, suspended and resumed, exported and deleted.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchboard::runs;

use crate::helpers::{OPERATOR_TOKEN, TestApp, TestTenant, assert_error, read_sse};

#[tokio::test]
async fn the_operator_creates_a_tenant_with_a_working_admin_key() {
    let app = TestApp::spawn().await;
    let response =
        app.post("/api/v1/tenants", OPERATOR_TOKEN, &json!({"name": "Acme", "slug": "acme"})).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tenant"]["name"], "Acme");
    assert_eq!(body["tenant"]["slug"], "acme");
    let key = body["api_key"]["key"].as_str().unwrap();
    assert!(key.starts_with("sb_"));
    let mut scopes: Vec<&str> =
        body["api_key"]["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["admin", "chat", "runs"]);

    let listed = app.get("/api/v1/api-keys", key).send().await.unwrap();
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn tenant_creation_needs_the_operator_token() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Acme", "slug": "acme"});
    let response = app.post("/api/v1/tenants", "not-the-token", &body).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;
    let response = app.client.post(app.url("/api/v1/tenants")).json(&body).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;

    let tenant = app.create_tenant("first").await;
    let response = app.post("/api/v1/tenants", &tenant.admin_key, &body).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn slugs_are_unique_and_validated() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let again = app.post("/api/v1/tenants", OPERATOR_TOKEN, &json!({"name": "Other", "slug": "acme"}));
    assert_error(again.send().await.unwrap(), 409, "slug_taken").await;
    let system = app.post("/api/v1/tenants", OPERATOR_TOKEN, &json!({"name": "Sys", "slug": "system"}));
    assert_error(system.send().await.unwrap(), 409, "slug_taken").await;
    let bad = app.post("/api/v1/tenants", OPERATOR_TOKEN, &json!({"name": "Bad", "slug": "Not A Slug"}));
    assert_error(bad.send().await.unwrap(), 422, "invalid_request").await;
}

// ---- Tenants over their life: listing, renaming, suspension, export and deletion (issue 27). ----

/// Every table with a `tenant_id` column, found in the catalog (as the RLS test finds them), with how
/// many rows `tenant` has in it. Read as the owner, a superuser in the test cluster: RLS hides nothing.
async fn rows_by_table(app: &TestApp, tenant: uuid::Uuid) -> BTreeMap<String, i64> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped \
         WHERE c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    assert!(tables.len() >= 25, "expected every tenant table, found {tables:?}");
    let mut counts = BTreeMap::new();
    for table in tables {
        let count: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM \"{table}\" WHERE tenant_id = $1")))
                .bind(tenant)
                .fetch_one(&app.owner_db)
                .await
                .unwrap();
        counts.insert(table, count);
    }
    counts
}

/// Canaries: secrets the tenant stored, which no export may contain.
fn provider_canary(slug: &str) -> String {
    format!("sk-provider-canary-{slug}-91ce")
}

fn connector_canary(slug: &str) -> String {
    format!("connector-canary-{slug}-77aa")
}

/// A tenant with rows in as many tables as the API reaches: settings and budgets, keys, a BYOK key, a
/// declared model, rate limits, documents, chats (API, integration with an idempotency key, widget),
/// a policy profile, a connector with its discovered tools, a workspace with a file, a changeset and a queued
/// run.
async fn populated_tenant(app: &TestApp, slug: &str, tools_url: &str) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    let key = tenant.admin_key.clone();
    app.configure(
        &tenant,
        json!({ "default_provider": "openai", "default_model": "gpt-4o-mini", "monthly_budget_usd": "100" }),
    )
    .await;
    let limits = json!({ "tenant": { "requests_per_minute": 10_000 } });
    let response = app.client.put(app.url("/api/v1/rate-limits")).bearer_auth(&key).json(&limits).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    app.put_provider_key(
        &tenant,
        "anthropic",
        json!({ "api_key": provider_canary(slug), "base_url": app.mock_base("anthropic") }),
    )
    .await;
    let declaration = json!({ "context_window": 1024, "max_output_tokens": 256,
                              "input_usd_per_million": "2", "output_usd_per_million": 4 });
    let path = app.url("/api/v1/providers/openai_compatible/models/house-7b");
    let response = app.client.put(path).bearer_auth(&key).json(&declaration).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    app.create_key(&tenant, &["chat"]).await;
    // A webhook destination (nobody listens on port 9: its deliveries fail and are retried until it is
    // disabled, below).
    let webhook = json!({ "url": "http://127.0.0.1:9/hooks", "events": ["run.completed", "document.ingested"] });
    let webhook: Value = app.post("/api/v1/webhooks", &key, &webhook).send().await.unwrap().json().await.unwrap();
    let webhook = format!("/api/v1/webhooks/{}", webhook["id"].as_str().unwrap());

    let document =
        json!({ "source_path": "hives.md", "content": "# Hives\n\nA hive holds one queen and many workers." });
    assert_eq!(app.post("/api/v1/documents", &key, &document).send().await.unwrap().status(), 201);

    let session = app.create_session(&key).await;
    let events = app.stream_turn(&key, &session, "How many queens does a hive hold?").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let answer = app.messages(&key, &session).await[1]["id"].as_str().unwrap().to_owned();
    let rated = app.post(&format!("/api/v1/messages/{answer}/feedback"), &key, &json!({ "rating": "up" }));
    assert_eq!(rated.send().await.unwrap().status(), 201);
    let profile = json!({ "industry": "Beekeeping", "glossary": [{ "term": "Nuc", "meaning": "a small colony" }] });
    let response = app.client.put(app.url("/api/v1/tenant/profile")).bearer_auth(&key).json(&profile).send().await;
    assert_eq!(response.unwrap().status(), 200);
    let template = json!({ "body": "You answer for {{ tenant_name }}.", "note": "short" });
    assert_eq!(app.post("/api/v1/prompt-templates", &key, &template).send().await.unwrap().status(), 201);
    let chat = json!({ "message": "hello", "external_user_id": "customer-1" });
    let response = app.post("/api/v1/integration/chat", &key, &chat).header("idempotency-key", "first").send().await;
    assert_eq!(response.unwrap().status(), 200);
    let token = app
        .post("/api/v1/widget-tokens", &key, &json!({ "external_user_id": "visitor-1", "ttl_seconds": 600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 201);

    let connector = json!({ "name": "crm", "transport": "streamable_http", "url": tools_url,
                            "auth": { "kind": "bearer", "token": connector_canary(slug) } });
    assert_eq!(app.post("/api/v1/mcp-connectors", &key, &connector).send().await.unwrap().status(), 201);
    let profile = json!({ "name": "default", "tool_allowlist": ["crm.*"] });
    let profile: Value =
        app.post("/api/v1/policy-profiles", &key, &profile).send().await.unwrap().json().await.unwrap();
    app.configure(&tenant, json!({ "active_policy_profile_id": profile["id"] })).await;

    let workspace = app.create_workspace(&key, "shop").await;
    let url = app.url(&format!("/api/v1/workspaces/{workspace}/files/src/main.rs"));
    let response = app.client.put(url).bearer_auth(&key).json(&json!({ "content": "fn main() {}\n" })).send().await;
    assert_eq!(response.unwrap().status(), 204);
    let changeset = json!({ "title": "Say hello", "patches": [
        { "path": "src/hello.rs", "operation": "create", "content": "// hello\n" },
    ]});
    let response = app.post(&format!("/api/v1/workspaces/{workspace}/changesets"), &key, &changeset).send().await;
    assert_eq!(response.unwrap().status(), 201);
    let run = app.post(&format!("/api/v1/workspaces/{workspace}/runs"), &key, &json!({ "instruction": "Tidy up" }));
    assert_eq!(run.send().await.unwrap().status(), 202);

    // The webhook's deliveries given up once it is disabled, so that its rows stop changing.
    let disabled = app.patch(&webhook, &key, &json!({ "enabled": false })).send().await.unwrap();
    assert_eq!(disabled.status(), 200);
    for _ in 0..600 {
        let log = app.get_json(&format!("{webhook}/deliveries"), &key).await;
        let deliveries = log["deliveries"].as_array().unwrap();
        if !deliveries.is_empty() && deliveries.iter().all(|delivery| delivery["status"] != "pending") {
            return tenant;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the disabled webhook's deliveries were never given up");
}

pub async fn patch_tenant(app: &TestApp, id: uuid::Uuid, body: &Value) -> reqwest::Response {
    let url = app.url(&format!("/api/v1/tenants/{id}"));
    app.client.patch(url).bearer_auth(OPERATOR_TOKEN).json(body).send().await.unwrap()
}

#[tokio::test]
async fn the_operator_lists_renames_suspends_and_resumes_tenants() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;

    let listed = app.get_json("/api/v1/tenants", OPERATOR_TOKEN).await;
    let slugs: Vec<&str> = listed["tenants"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["globex", "acme", "system"], "newest first");
    let first = &listed["tenants"][0];
    assert_eq!(first["status"], "active");
    assert_eq!(first["suspended_at"], Value::Null);
    assert_eq!(first["month_to_date"]["cost_usd"], "0");
    assert_eq!(first["month_to_date"]["input_tokens"], 0);
    assert_eq!(listed["next_before"], Value::Null);
    // A page at a time.
    let page = app.get_json("/api/v1/tenants?limit=2", OPERATOR_TOKEN).await;
    assert_eq!(page["tenants"].as_array().unwrap().len(), 2);
    let next = page["next_before"].as_str().unwrap();
    let rest = app.get_json(&format!("/api/v1/tenants?limit=2&before={next}"), OPERATOR_TOKEN).await;
    assert_eq!(rest["tenants"][0]["slug"], "system");
    assert_error(app.get("/api/v1/tenants?limit=0", OPERATOR_TOKEN).send().await.unwrap(), 422, "invalid_request")
        .await;

    // Usage this month, exact: a turn on the platform's OpenAI key (priced by the catalog).
    app.configure(&acme, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    let session = app.create_session(&acme.admin_key).await;
    app.stream_turn(&acme.admin_key, &session, "Hello").await;
    let one = app.get_json(&format!("/api/v1/tenants/{}", acme.id), OPERATOR_TOKEN).await;
    assert!(one["month_to_date"]["input_tokens"].as_i64().unwrap() > 0, "{one}");
    let cost = one["month_to_date"]["cost_usd"].as_str().unwrap();
    assert!(cost.parse::<f64>().unwrap() > 0.0, "{cost}");

    // Rename and suspend, in one change; both are audited.
    let changed = patch_tenant(&app, acme.id, &json!({ "name": "  Acme Corp ", "status": "suspended" })).await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!((changed["name"].as_str(), changed["status"].as_str()), (Some("Acme Corp"), Some("suspended")));
    assert!(changed["suspended_at"].is_string());
    assert_error(app.get("/api/v1/api-keys", &acme.admin_key).send().await.unwrap(), 403, "tenant_suspended").await;
    assert_eq!(app.get("/api/v1/api-keys", &globex.admin_key).send().await.unwrap().status(), 200);

    // Bad input: nothing changes.
    for body in [
        json!({ "status": "paused" }),
        json!({ "name": "" }),
        json!({ "slug": "other" }),
        json!(["Acme", "active"]),
        json!([null, null]),
    ] {
        assert_error(patch_tenant(&app, acme.id, &body).await, 422, "invalid_request").await;
    }
    // The document describes the object the route reads.
    let document: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let update = &document["components"]["schemas"]["UpdateTenant"];
    assert_eq!((update["type"].as_str(), update["additionalProperties"].as_bool()), (Some("object"), Some(false)));
    assert!(update["properties"]["name"].is_object() && update["properties"]["status"].is_object(), "{update}");
    let missing = uuid::Uuid::now_v7();
    assert_error(patch_tenant(&app, missing, &json!({ "status": "suspended" })).await, 404, "not_found").await;
    assert_error(
        app.get(&format!("/api/v1/tenants/{missing}"), OPERATOR_TOKEN).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    let system = uuid::Uuid::nil();
    assert_error(patch_tenant(&app, system, &json!({ "status": "suspended" })).await, 409, "system_tenant").await;
    // Tenant keys are not the operator's.
    let by_tenant = app.client.patch(app.url(&format!("/api/v1/tenants/{}", globex.id))).bearer_auth(&globex.admin_key);
    assert_error(by_tenant.json(&json!({ "status": "suspended" })).send().await.unwrap(), 401, "unauthorized").await;
    assert_error(app.get("/api/v1/tenants", &globex.admin_key).send().await.unwrap(), 401, "unauthorized").await;

    let resumed = patch_tenant(&app, acme.id, &json!({ "status": "active" })).await;
    assert_eq!(resumed.status(), 200);
    let resumed: Value = resumed.json().await.unwrap();
    assert_eq!((resumed["status"].as_str(), &resumed["suspended_at"]), (Some("active"), &Value::Null));
    let trail = app.get_json("/api/v1/audit-events", &acme.admin_key).await;
    let actions: Vec<(&str, &str)> = trail["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"].as_str().unwrap().starts_with("tenant."))
        .map(|event| (event["action"].as_str().unwrap(), event["actor_type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("tenant.resumed", "operator"),
            ("tenant.suspended", "operator"),
            ("tenant.renamed", "operator"),
            ("tenant.created", "operator")
        ]
    );
    let operator_trail: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, target_tenant_slug FROM operator_audit_events WHERE target_tenant_id = $1 ORDER BY id",
    )
    .bind(acme.id)
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    let operator_actions: Vec<&str> = operator_trail.iter().map(|(action, _)| action.as_str()).collect();
    assert_eq!(operator_actions, ["tenant.created", "tenant.renamed", "tenant.suspended", "tenant.resumed"]);
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_at_every_door_in_its_shape_and_works_again_once_resumed() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let token = app
        .post("/api/v1/widget-tokens", &acme.admin_key, &json!({ "external_user_id": "visitor", "ttl_seconds": 600 }))
        .send()
        .await
        .unwrap();
    let token: Value = token.json().await.unwrap();
    let widget = token["token"].as_str().unwrap().to_owned();
    assert_eq!(patch_tenant(&app, acme.id, &json!({ "status": "suspended" })).await.status(), 200);

    // The chat API and the integration API, with a key and with a widget token: our shape.
    assert_error(app.get("/api/v1/sessions", &acme.admin_key).send().await.unwrap(), 403, "tenant_suspended").await;
    assert_error(app.get("/api/v1/sessions", &widget).send().await.unwrap(), 403, "tenant_suspended").await;
    let chat = app.post("/api/v1/integration/chat", &acme.admin_key, &json!({ "message": "hi" }));
    assert_error(chat.send().await.unwrap(), 403, "tenant_suspended").await;
    // OpenAI's door: its shape, our code.
    let completion = json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] });
    let response = app.post("/v1/chat/completions", &acme.admin_key, &completion).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"]["type"].as_str(), body["error"]["code"].as_str()),
        (Some("permission_error"), Some("tenant_suspended"))
    );
    // Anthropic's door: its shape.
    let message = json!({ "model": "claude-x", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
    let response = app
        .client
        .post(app.url("/v1/messages"))
        .header("x-api-key", &acme.admin_key)
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["type"].as_str(), body["error"]["type"].as_str()), (Some("error"), Some("permission_error")));
    assert!(body["error"]["message"].as_str().unwrap().contains("suspended"), "{body}");
    // `/mcp`: a JSON-RPC error, the code in its data, no scope challenge.
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let response = app
        .post("/mcp", &acme.admin_key, &initialize)
        .header("accept", "application/json, text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(!response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["data"]["code"], "tenant_suspended", "{body}");

    // The operator's routes still work; once resumed, the same key and token do too.
    assert_eq!(app.get(&format!("/api/v1/tenants/{}", acme.id), OPERATOR_TOKEN).send().await.unwrap().status(), 200);
    assert_eq!(patch_tenant(&app, acme.id, &json!({ "status": "active" })).await.status(), 200);
    assert_eq!(app.get("/api/v1/sessions", &acme.admin_key).send().await.unwrap().status(), 200);
    assert_eq!(app.get("/api/v1/sessions", &widget).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_suspended_tenants_queued_run_waits_and_runs_once_it_is_resumed() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    app.configure(&acme, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    let workspace = app.create_workspace(&acme.admin_key, "shop").await;
    let run = app
        .post(&format!("/api/v1/workspaces/{workspace}/runs"), &acme.admin_key, &json!({ "instruction": "Tidy up" }))
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), 202);
    let run: Value = run.json().await.unwrap();
    let run_id = run["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(patch_tenant(&app, acme.id, &json!({ "status": "suspended" })).await.status(), 200);

    // A worker looking for work passes it over: it stays queued.
    let mut transaction = app.app_db.begin().await.unwrap();
    let claimed = runs::store::claim_queued(&mut transaction, "a-worker", runs::ExecutorId::random()).await.unwrap();
    transaction.rollback().await.unwrap();
    assert!(claimed.is_none(), "a suspended tenant's run was claimed: {claimed:?}");
    let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1::uuid")
        .bind(&run_id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert_eq!(status, "queued");

    // Resumed, the run is claimed and runs to its end.
    assert_eq!(patch_tenant(&app, acme.id, &json!({ "status": "active" })).await.status(), 200);
    app.engine.start_workers(1);
    let events =
        read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), &acme.admin_key).send().await.unwrap()).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
}

#[tokio::test]
async fn deleting_a_tenant_leaves_no_row_of_it_in_any_table_and_every_other_tenants_untouched() {
    let app = TestApp::spawn().await;
    let tools = crate::mcp_server::McpTestServer::start().await;
    let acme = populated_tenant(&app, "acme", &tools.url).await;
    let globex = populated_tenant(&app, "globex", &tools.url).await;
    let before = rows_by_table(&app, acme.id).await;
    let globex_before = rows_by_table(&app, globex.id).await;
    let empty: Vec<&String> = before.iter().filter(|(_, count)| **count == 0).map(|(table, _)| table).collect();
    for table in [
        "active_prompt_templates",
        "api_keys",
        "audit_events",
        "budget_spend",
        "changeset_patches",
        "changesets",
        "chat_messages",
        "chat_sessions",
        "chunk_embeddings",
        "corpus_stats",
        "discovered_tools",
        "doc_chunks",
        "documents",
        "idempotency_keys",
        "mcp_connectors",
        "message_feedback",
        "policy_profile_versions",
        "policy_profiles",
        "prompt_templates",
        "provider_credentials",
        "rate_limit_buckets",
        "rate_limits",
        "run_events",
        "runs",
        "tenant_configs",
        "tenant_models",
        "tenant_profiles",
        "term_stats",
        "usage_records",
        "users",
        "webhook_deliveries",
        "webhook_endpoints",
        "workspace_files",
        "workspaces",
    ] {
        assert!(before.get(table).is_some_and(|count| *count > 0), "no {table} row to delete; empty: {empty:?}");
    }

    // The confirmation step: the slug typed again, and the tenant suspended first.
    let delete = |query: &str| app.delete(&format!("/api/v1/tenants/{}{query}", acme.id), OPERATOR_TOKEN).send();
    assert_error(delete("").await.unwrap(), 422, "confirmation_required").await;
    assert_error(delete("?confirm=globex").await.unwrap(), 422, "confirmation_required").await;
    assert_error(delete("?confirm=acme").await.unwrap(), 409, "tenant_not_suspended").await;
    let by_tenant = app.delete(&format!("/api/v1/tenants/{}?confirm=acme", acme.id), &acme.admin_key).send();
    assert_error(by_tenant.await.unwrap(), 401, "unauthorized").await;
    let system = app.delete(&format!("/api/v1/tenants/{}?confirm=system", uuid::Uuid::nil()), OPERATOR_TOKEN);
    assert_error(system.send().await.unwrap(), 409, "system_tenant").await;
    assert_eq!(rows_by_table(&app, acme.id).await, before, "a refused deletion deleted something");

    assert_eq!(patch_tenant(&app, acme.id, &json!({ "status": "suspended" })).await.status(), 200);
    assert_eq!(delete("?confirm=acme").await.unwrap().status(), 204);

    let left: Vec<(String, i64)> =
        rows_by_table(&app, acme.id).await.into_iter().filter(|(_, count)| *count > 0).collect();
    assert!(left.is_empty(), "rows of the deleted tenant are left: {left:?}");
    let tenant_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE id = $1")
        .bind(acme.id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert_eq!(tenant_rows, 0);
    assert_eq!(rows_by_table(&app, globex.id).await, globex_before, "another tenant's rows changed");
    assert_eq!(app.get("/api/v1/api-keys", &globex.admin_key).send().await.unwrap().status(), 200);

    // Its keys are gone; the operator's trail keeps what happened; a second deletion finds nothing.
    assert_error(app.get("/api/v1/api-keys", &acme.admin_key).send().await.unwrap(), 401, "unauthorized").await;
    let deleted: (String, Value) = sqlx::query_as(
        "SELECT target_tenant_slug, details FROM operator_audit_events \
         WHERE target_tenant_id = $1 AND action = 'tenant.deleted'",
    )
    .bind(acme.id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap();
    assert_eq!(deleted.0, "acme");
    assert_eq!(deleted.1["name"], "Tenant acme");
    assert_error(delete("?confirm=acme").await.unwrap(), 404, "not_found").await;
    // The operator's trail is append-only, for the service and the owner alike.
    for statement in ["UPDATE operator_audit_events SET action = 'forged'", "DELETE FROM operator_audit_events"] {
        assert!(sqlx::query(statement).execute(&app.app_db).await.is_err(), "{statement}");
        let error = sqlx::query(statement).execute(&app.owner_db).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{statement}: {error}");
    }
}

#[tokio::test]
async fn the_export_holds_every_kind_of_the_tenants_data_and_no_secret() {
    let app = TestApp::spawn().await;
    let tools = crate::mcp_server::McpTestServer::start().await;
    let acme = populated_tenant(&app, "acme", &tools.url).await;
    populated_tenant(&app, "globex", &tools.url).await;
    // More keys than one page holds, so the export pages through them.
    for _ in 0..205 {
        app.create_key(&acme, &["chat"]).await;
    }

    let response = app.get("/api/v1/tenant/export", &acme.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let manifest = &lines[0];
    assert_eq!(
        (manifest["type"].as_str(), manifest["format"].as_str(), manifest["version"].as_u64()),
        (Some("manifest"), Some("switchboard.tenant-export"), Some(1))
    );
    assert_eq!(manifest["tenant"]["slug"], "acme");
    assert!(manifest["exported_at"].is_string());
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for line in &lines[1..lines.len() - 1] {
        *counts.entry(line["type"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for (kind, count) in &counts {
        assert_eq!(end["counts"][kind].as_u64(), Some(*count), "{kind}");
    }
    for kind in [
        "settings",
        "profile",
        "user",
        "api_key",
        "provider",
        "policy_profile",
        "prompt_template",
        "connector",
        "webhook",
        "document",
        "workspace",
        "workspace_file",
        "changeset",
        "conversation",
        "feedback",
        "usage",
        "audit_event",
    ] {
        assert!(counts.get(kind).is_some_and(|count| *count > 0), "no {kind} line: {counts:?}");
    }
    assert_eq!(counts["api_key"], 2 + 205, "every key, over two pages");
    let of = |kind: &'static str| lines.iter().filter(move |line| line["type"] == kind);

    // Only this tenant's: globex's document has the same path, but no line of globex is here.
    assert!(!text.contains("globex"), "another tenant's data is in the export");
    let conversation = of("conversation").find(|line| line["messages"].as_array().unwrap().len() >= 2).unwrap();
    let answer = conversation["messages"].as_array().unwrap().iter().find(|m| m["role"] == "assistant").unwrap();
    assert!(answer["citations"].is_array() && answer["content"].is_string(), "{answer}");
    let document = of("document").next().unwrap();
    assert_eq!(document["source_path"], "hives.md");
    assert!(document["chunks"][0]["content"].as_str().unwrap().contains("queen"));
    let profile = of("policy_profile").next().unwrap();
    assert!(!profile["versions"].as_array().unwrap().is_empty());
    let template = of("prompt_template").next().unwrap();
    assert_eq!(
        (template["version"].as_i64(), template["body"].as_str(), template["active"].as_bool()),
        (Some(1), Some("You answer for {{ tenant_name }}."), Some(true))
    );
    let connector = of("connector").next().unwrap();
    assert_eq!((connector["auth_kind"].as_str(), connector["has_secret"].as_bool()), (Some("bearer"), Some(true)));
    let about = of("profile").next().unwrap();
    assert_eq!((about["industry"].as_str(), about["glossary"][0]["term"].as_str()), (Some("Beekeeping"), Some("Nuc")));
    let feedback = of("feedback").next().unwrap();
    assert_eq!(feedback["rating"], "up");
    let rated = of("conversation")
        .flat_map(|line| line["messages"].as_array().unwrap())
        .find(|message| message["id"] == feedback["message_id"])
        .expect("the rated answer is in its conversation's line");
    assert_eq!(rated["role"], "assistant");
    let usage = of("usage").next().unwrap();
    assert!(usage["cost_usd"].is_string(), "an exact decimal string: {usage}");

    // No secret: not the provider key, nor the connector's token, nor any key's token or digest.
    let digests: Vec<Vec<u8>> = sqlx::query_scalar("SELECT secret_hash FROM api_keys WHERE tenant_id = $1")
        .bind(acme.id)
        .fetch_all(&app.owner_db)
        .await
        .unwrap();
    let token_secret = acme.admin_key.rsplit('_').next().unwrap();
    assert!(!text.contains(&provider_canary("acme")), "the provider key is in the export");
    assert!(!text.contains(&connector_canary("acme")), "the connector's token is in the export");
    assert!(!text.contains(token_secret), "an API key's secret is in the export");
    for digest in digests {
        assert!(!text.contains(&hex::encode(&digest)), "an API key's digest is in the export");
    }
    for column in ["secret_hash", "key_ciphertext", "secret_ciphertext", "key_nonce"] {
        assert!(!text.contains(column), "{column} is in the export");
    }

    // Admin only; the export itself is audited.
    let (_, chat_key) = app.create_key(&acme, &["chat"]).await;
    assert_error(app.get("/api/v1/tenant/export", &chat_key).send().await.unwrap(), 403, "forbidden").await;
    let trail = app.get_json("/api/v1/audit-events?limit=5", &acme.admin_key).await;
    assert!(trail["audit_events"].as_array().unwrap().iter().any(|event| event["action"] == "tenant.exported"));
}

/// Each export being read holds a database connection: a few stalled downloads must not drain the pool
/// every tenant shares. Two are read at once; a third is refused (429 `too_many_exports` at the door) until
/// one of them ends. An archive small enough for the sockets' buffers is sent whole at once, so the
/// stalled readers are archives opened and not read.
#[tokio::test]
async fn exports_read_at_once_are_capped_and_an_ended_one_frees_its_place() {
    use switchboard::tenants::{TenantError, export};
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let context = switchboard::auth::authenticate_api_key(&app.app_db, &acme.admin_key, None).await.unwrap();
    let exports = export::Exports::default();
    let first = export::open(&app.app_db, &exports, &context).await.unwrap();
    let _second = export::open(&app.app_db, &exports, &context).await.unwrap();
    let refused = export::open(&app.app_db, &exports, &context).await;
    assert!(matches!(refused, Err(TenantError::ExportsBusy)), "{refused:?}");
    drop(first);
    assert!(export::open(&app.app_db, &exports, &context).await.is_ok());
}
