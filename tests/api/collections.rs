//! Collections: a tenant keeps its internal handbook away from its public widget. Keys, widget tokens,
//! integration conversations and single requests are limited to collections, a request can narrow its
//! scope but never widen it, and PostgreSQL itself hides what is outside it (tested like tenant isolation).

use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use switchboard::ids::TenantId;
use switchboard::retrieval::corpus;

use crate::helpers::{TestApp, TestTenant, assert_error};

/// The internal handbook's secret: no answer, citation or hit of a `public`-only caller may carry it.
const SECRET: &str = "wombat-4711";

async fn add(app: &TestApp, tenant: &TestTenant, path: &str, content: &str, collections: Value) -> reqwest::Response {
    let body = json!({ "source_path": path, "content": content, "collections": collections });
    app.post("/api/v1/documents", &tenant.admin_key, &body).send().await.unwrap()
}

async fn create_collection(app: &TestApp, tenant: &TestTenant, name: &str) -> Value {
    let response = app.post("/api/v1/collections", &tenant.admin_key, &json!({ "name": name })).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// A tenant with a `public` help centre and an `internal` handbook, both about the parking garage.
async fn handbook_and_help_centre(app: &TestApp) -> TestTenant {
    let tenant = app.create_tenant("acme").await;
    create_collection(app, &tenant, "public").await;
    create_collection(app, &tenant, "internal").await;
    let internal = format!(
        "# Staff parking\n\nStaff enter the parking garage with the door code {SECRET}. The parking garage \
         opens at six for staff."
    );
    assert_eq!(add(app, &tenant, "handbook/parking.md", &internal, json!(["internal"])).await.status(), 201);
    let public = "# Visitor parking\n\nVisitors park in the parking garage on level two; the parking garage \
                  opens at eight for visitors.";
    assert_eq!(add(app, &tenant, "help/parking.md", public, json!(["public"])).await.status(), 201);
    tenant
}

async fn key_for(app: &TestApp, tenant: &TestTenant, scopes: &[&str], collections: Value) -> (String, String) {
    let body = json!({ "name": "scoped", "scopes": scopes, "collections": collections });
    let response = app.post("/api/v1/api-keys", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["collections"], collections);
    (created["id"].as_str().unwrap().to_owned(), created["key"].as_str().unwrap().to_owned())
}

async fn search(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.post("/api/v1/search", key, &body).send().await.unwrap()
}

async fn hits(app: &TestApp, key: &str, query: &str, mode: &str) -> Value {
    let response = search(app, key, json!({ "query": query, "k": 10, "mode": mode })).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["results"].clone()
}

#[tokio::test]
async fn collections_are_created_listed_renamed_and_only_deleted_when_empty() {
    let app = TestApp::spawn().await;
    let tenant = handbook_and_help_centre(&app).await;
    let listed = app.get_json("/api/v1/collections", &tenant.admin_key).await;
    let names: Vec<&str> =
        listed["collections"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["internal", "public"]);
    assert!(listed["collections"].as_array().unwrap().iter().all(|c| c["document_count"] == 1 && c["shared"] == false));

    let duplicate = app.post("/api/v1/collections", &tenant.admin_key, &json!({ "name": "public" })).send().await;
    assert_error(duplicate.unwrap(), 409, "collection_exists").await;
    for bad in ["Public", "", "a b", "-x"] {
        let response = app.post("/api/v1/collections", &tenant.admin_key, &json!({ "name": bad })).send().await;
        assert_error(response.unwrap(), 422, "invalid_collection").await;
    }
    let (_, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let response = app.get("/api/v1/collections", &chat_key).send().await.unwrap();
    assert_error(response, 403, "forbidden").await;

    // A document naming a collection that does not exist is refused, and nothing is stored.
    let refused = add(&app, &tenant, "typo.md", "# Typo\n\nText.", json!(["pubic"])).await;
    assert_error(refused, 422, "unknown_collection").await;
    let documents = app.get_json("/api/v1/documents", &tenant.admin_key).await;
    assert_eq!(documents["documents"].as_array().unwrap().len(), 2);
    // Without collections a document joins `default`, made on first use.
    assert_eq!(add(&app, &tenant, "misc.md", "# Misc\n\nOther text.", Value::Null).await.status(), 201);
    let documents = app.get_json("/api/v1/documents", &tenant.admin_key).await;
    let misc = documents["documents"].as_array().unwrap().iter().find(|d| d["source_path"] == "misc.md").unwrap();
    assert_eq!(misc["collections"], json!(["default"]));

    let internal = listed["collections"][0]["id"].as_str().unwrap();
    let busy = app.delete(&format!("/api/v1/collections/{internal}"), &tenant.admin_key).send().await.unwrap();
    assert_error(busy, 409, "collection_not_empty").await;
    let renamed = app
        .patch(&format!("/api/v1/collections/{internal}"), &tenant.admin_key, &json!({ "name": "staff" }))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.json::<Value>().await.unwrap()["name"], "staff");
    let documents = app.get_json("/api/v1/documents", &tenant.admin_key).await;
    let handbook =
        documents["documents"].as_array().unwrap().iter().find(|d| d["source_path"] == "handbook/parking.md").unwrap();
    assert_eq!(handbook["collections"], json!(["staff"]));
    let empty = create_collection(&app, &tenant, "archive").await;
    let gone = app.delete(&format!("/api/v1/collections/{}", empty["id"].as_str().unwrap()), &tenant.admin_key);
    assert_eq!(gone.send().await.unwrap().status(), 204);
    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    let actions: Vec<&str> =
        audit["audit_events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["collection.created", "collection.updated", "collection.deleted"] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn a_key_limited_to_public_never_gets_an_internal_hit_whatever_it_asks() {
    let app = TestApp::spawn().await;
    let tenant = handbook_and_help_centre(&app).await;
    let (public_id, public_key) = key_for(&app, &tenant, &["chat"], json!(["public"])).await;

    for mode in ["hybrid", "vector", "full_text"] {
        let everything = hits(&app, &tenant.admin_key, "staff parking garage door code", mode).await;
        assert!(everything.to_string().contains(SECRET), "an unlimited key sees both ({mode})");
        let limited = hits(&app, &public_key, "staff parking garage door code", mode).await;
        assert!(!limited.to_string().contains(SECRET), "{mode}: {limited}");
        assert!(limited.as_array().unwrap().iter().all(|hit| hit["source_path"] == "help/parking.md"), "{limited}");
    }
    // Narrowing is allowed; widening is refused by name, and an unknown name is an error too.
    let narrowed =
        search(&app, &tenant.admin_key, json!({ "query": "parking garage", "collections": ["public"] })).await;
    let narrowed = narrowed.json::<Value>().await.unwrap()["results"].clone();
    assert!(!narrowed.to_string().contains(SECRET) && !narrowed.as_array().unwrap().is_empty(), "{narrowed}");
    let widened = search(&app, &public_key, json!({ "query": "door code", "collections": ["internal"] })).await;
    assert_error(widened, 403, "collection_forbidden").await;
    let unknown = search(&app, &public_key, json!({ "query": "door code", "collections": ["nope"] })).await;
    assert_error(unknown, 422, "unknown_collection").await;

    // The key cannot make a key or a widget token that reaches further than itself.
    let (_, scoped_admin) = key_for(&app, &tenant, &["admin", "chat"], json!(["public"])).await;
    let body = json!({ "name": "wider", "scopes": ["chat"], "collections": ["internal"] });
    let wider = app.post("/api/v1/api-keys", &scoped_admin, &body).send().await.unwrap();
    assert_error(wider, 403, "collection_forbidden").await;
    let body = json!({ "name": "same", "scopes": ["chat"] });
    let inherited: Value =
        app.post("/api/v1/api-keys", &scoped_admin, &body).send().await.unwrap().json().await.unwrap();
    assert_eq!(inherited["collections"], json!(["public"]), "a key made by a limited key is limited as much");
    let token = app.post("/api/v1/widget-tokens", &scoped_admin, &json!({ "external_user_id": "eve" })).send().await;
    let token: Value = token.unwrap().json().await.unwrap();
    let token = token["token"].as_str().unwrap();
    let session = app.create_session(token).await;
    let events = app.stream_turn(token, &session, "What is the staff door code of the parking garage?").await;
    let streamed: String = events.iter().map(|event| event.data.to_string()).collect();
    assert!(!streamed.contains(SECRET) && !streamed.contains("handbook/"), "{streamed}");

    // Moving the handbook into `public` makes it visible to the key; widening the key does too.
    let listed = app.get_json("/api/v1/api-keys", &tenant.admin_key).await;
    let listed_key = listed["api_keys"].as_array().unwrap().iter().find(|key| key["id"] == public_id.as_str()).unwrap();
    assert_eq!(listed_key["collections"], json!(["public"]));
    let patch = json!({ "collections": ["public", "internal"] });
    let widened = app.patch(&format!("/api/v1/api-keys/{public_id}"), &tenant.admin_key, &patch).send().await.unwrap();
    assert_eq!(widened.json::<Value>().await.unwrap()["collections"], json!(["internal", "public"]));
    assert!(hits(&app, &public_key, "door code", "full_text").await.to_string().contains(SECRET));
    let patch = json!({ "collections": ["public"] });
    app.patch(&format!("/api/v1/api-keys/{public_id}"), &tenant.admin_key, &patch).send().await.unwrap();
    assert!(!hits(&app, &public_key, "door code", "full_text").await.to_string().contains(SECRET));
    let internal = format!(
        "# Staff parking\n\nStaff enter the parking garage with the door code {SECRET}. The parking garage \
         opens at six for staff."
    );
    let moved = add(&app, &tenant, "handbook/parking.md", &internal, json!(["internal", "public"])).await;
    assert_eq!(moved.json::<Value>().await.unwrap()["outcome"], "updated");
    for mode in ["full_text", "vector"] {
        assert!(hits(&app, &public_key, "staff door code", mode).await.to_string().contains(SECRET), "{mode}");
    }
}

#[tokio::test]
async fn widget_tokens_integration_conversations_v1_and_mcp_answer_only_from_their_collections() {
    let app = TestApp::spawn().await;
    let tenant = handbook_and_help_centre(&app).await;
    let question = "What is the door code of the staff parking garage?";

    // A widget token limited to `public`: its turns retrieve nothing internal.
    let minted = app
        .post(
            "/api/v1/widget-tokens",
            &tenant.admin_key,
            &json!({ "external_user_id": "visitor", "collections": ["public"] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 201);
    let token = minted.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let session = app.create_session(&token).await;
    let events = app.stream_turn(&token, &session, question).await;
    assert_eq!(events.last().unwrap().event, "run.completed");
    let streamed: String = events.iter().map(|event| event.data.to_string()).collect();
    assert!(!streamed.contains(SECRET) && !streamed.contains("handbook/"), "{streamed}");
    let stored = Value::Array(app.messages(&token, &session).await).to_string();
    assert!(!stored.contains(SECRET) && !stored.contains("handbook/"), "{stored}");
    // An unlimited admin asking the same is answered from the handbook: the scope, not the question, decided.
    let admin_session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &admin_session, question).await;
    let streamed: String = events.iter().map(|event| event.data.to_string()).collect();
    assert!(streamed.contains("handbook/parking.md"), "{streamed}");

    // A chat conversation limited to `public`, and a single message narrowed to it.
    let body = json!({ "collections": ["public"] });
    let limited: Value =
        app.post("/api/v1/sessions", &tenant.admin_key, &body).send().await.unwrap().json().await.unwrap();
    assert_eq!(limited["collections"], json!(["public"]));
    let events = app.stream_turn(&tenant.admin_key, limited["id"].as_str().unwrap(), question).await;
    let streamed: String = events.iter().map(|event| event.data.to_string()).collect();
    assert!(!streamed.contains(SECRET) && !streamed.contains("handbook/"), "{streamed}");
    let narrowed = app
        .post(
            &format!("/api/v1/sessions/{admin_session}/messages"),
            &tenant.admin_key,
            &json!({ "content": question, "collections": ["public"] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(narrowed.status(), 200);
    let narrowed = narrowed.text().await.unwrap();
    assert!(!narrowed.contains(SECRET) && !narrowed.contains("handbook/"), "{narrowed}");
    let widened = app
        .post(
            &format!("/api/v1/sessions/{}/messages", limited["id"].as_str().unwrap()),
            &tenant.admin_key,
            &json!({ "content": question, "collections": ["internal"] }),
        )
        .send()
        .await
        .unwrap();
    assert_error(widened, 403, "collection_forbidden").await;

    // An integration conversation started for `public` keeps that scope for its later messages.
    let body = json!({ "message": question, "external_user_id": "crm-7", "collections": ["public"] });
    let first = app.post("/api/v1/integration/chat", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert!(!first.to_string().contains(SECRET), "{first}");
    let body = json!({ "message": "And the staff door code, please?", "session_id": first["session_id"] });
    let second: Value =
        app.post("/api/v1/integration/chat", &tenant.admin_key, &body).send().await.unwrap().json().await.unwrap();
    assert!(!second.to_string().contains(SECRET) && !second.to_string().contains("handbook/"), "{second}");
    let widen = json!({ "message": question, "session_id": first["session_id"], "collections": ["internal"] });
    let refused = app.post("/api/v1/integration/chat", &tenant.admin_key, &widen).send().await.unwrap();
    assert_error(refused, 403, "collection_forbidden").await;

    // /v1 and /mcp with a key limited to `public`.
    let (_, public_key) = key_for(&app, &tenant, &["chat"], json!(["public"])).await;
    let body = json!({ "model": "switchboard-assistant", "messages": [{ "role": "user", "content": question }] });
    let completion = app.post("/v1/chat/completions", &public_key, &body).send().await.unwrap();
    assert_eq!(completion.status(), 200);
    let completion = completion.text().await.unwrap();
    assert!(!completion.contains(SECRET) && !completion.contains("handbook/"), "{completion}");

    let config = StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header(public_key.clone());
    let client = ().serve(StreamableHttpClientTransport::from_config(config)).await.unwrap();
    let arguments = json!({ "query": "staff parking garage door code", "limit": 10 });
    let params = CallToolRequestParams::new("search_docs").with_arguments(arguments.as_object().unwrap().clone());
    let result = client.peer().call_tool(params).await.unwrap();
    let text = result.structured_content.unwrap().to_string();
    assert!(text.contains("help/parking.md") && !text.contains(SECRET), "{text}");
}

#[tokio::test]
async fn postgres_hides_chunks_outside_the_transactions_collections_whatever_the_sql() {
    let app = TestApp::spawn().await;
    let tenant = handbook_and_help_centre(&app).await;
    let listed = app.get_json("/api/v1/collections", &tenant.admin_key).await;
    let public = listed["collections"].as_array().unwrap().iter().find(|c| c["name"] == "public").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut transaction = switchboard::db::begin_tenant(&app.app_db, TenantId(tenant.id)).await.unwrap();
    sqlx::query("SELECT set_config('app.collections', $1, true)")
        .bind(format!("{{{public}}}"))
        .execute(&mut *transaction)
        .await
        .unwrap();
    let visible: Vec<String> =
        sqlx::query_scalar("SELECT content FROM doc_chunks").fetch_all(&mut *transaction).await.unwrap();
    assert!(!visible.is_empty() && visible.iter().all(|content| !content.contains(SECRET)), "{visible:?}");
    let vectors: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chunk_embeddings AS e WHERE NOT EXISTS (SELECT 1 FROM doc_chunks AS c WHERE c.id = e.chunk_id)",
    )
    .fetch_one(&mut *transaction)
    .await
    .unwrap();
    assert_eq!(vectors, 0, "no vector of a hidden chunk is visible either");
    let paths: Vec<String> =
        sqlx::query_scalar("SELECT source_path FROM documents").fetch_all(&mut *transaction).await.unwrap();
    assert_eq!(paths, ["help/parking.md"]);
    // An empty scope sees nothing at all.
    sqlx::query("SELECT set_config('app.collections', '{}', true)").execute(&mut *transaction).await.unwrap();
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM doc_chunks").fetch_one(&mut *transaction).await.unwrap();
    assert_eq!(none, 0);
    transaction.rollback().await.unwrap();
}

#[tokio::test]
async fn a_new_tenants_turns_never_cite_the_shared_corpus_until_it_opts_in() {
    let app = TestApp::spawn().await;
    let folder = std::env::temp_dir().join(format!("shared-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("operators.md"),
        "# Operator settings\n\nSet SWITCHBOARD_EMBEDDING_DIMENSIONS before the first start of the platform.",
    )
    .unwrap();
    let embedder = app.retriever.document_embedder();
    corpus::sync(&app.app_db, TenantId::SYSTEM, &folder, embedder.as_ref(), true, |_, _, _| {}).await.unwrap();
    let _ = std::fs::remove_dir_all(&folder);
    let tenant = app.create_tenant("newcomer").await;
    let question = "Which embedding dimensions setting must be set before the first start?";

    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, question).await;
    let streamed: String = events.iter().map(|event| event.data.to_string()).collect();
    assert!(!streamed.contains("operators.md") && !streamed.contains("SWITCHBOARD_EMBEDDING"), "{streamed}");
    let listed = app.get_json("/api/v1/collections", &tenant.admin_key).await;
    assert_eq!(listed["collections"], json!([]), "the shared collection is not even listed");

    app.configure(&tenant, json!({ "shared_corpus": true })).await;
    let events = app.stream_turn(&tenant.admin_key, &session, question).await;
    let streamed: String = events.iter().map(|event| event.data.to_string()).collect();
    assert!(streamed.contains("operators.md"), "{streamed}");
    let listed = app.get_json("/api/v1/collections", &tenant.admin_key).await;
    assert_eq!(listed["collections"][0]["name"], "switchboard-docs");
    assert_eq!(listed["collections"][0]["shared"], true);
    // A key limited to the tenant's own collections still does not reach it.
    create_collection(&app, &tenant, "public").await;
    let (_, public_key) = key_for(&app, &tenant, &["chat"], json!(["public"])).await;
    let found = hits(&app, &public_key, "embedding dimensions setting", "full_text").await;
    assert!(!found.to_string().contains("operators.md"), "{found}");
    let shared_id = listed["collections"][0]["id"].as_str().unwrap();
    let change = app.delete(&format!("/api/v1/collections/{shared_id}"), &tenant.admin_key).send().await.unwrap();
    assert_error(change, 409, "shared_collection").await;
}
