//! Feedback on answers (`POST /api/v1/messages/{id}/feedback`, `GET /api/v1/feedback/export`): one per
//! answer per giver, kept with what made the answer, exported as JSON lines, reachable only where its
//! giver may see the conversation, and gone with the conversation (erasure, retention).

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error};

const HIVES: &str = "# Hives\n\nA hive holds one queen and many thousands of worker bees.";

fn feedback(app: &TestApp, token: &str, message: &str, body: &Value) -> reqwest::RequestBuilder {
    app.post(&format!("/api/v1/messages/{message}/feedback"), token, body)
}

async fn add_hives(app: &TestApp, tenant: &TestTenant) {
    let document = json!({ "source_path": "hives.md", "content": HIVES });
    assert_eq!(app.post("/api/v1/documents", &tenant.admin_key, &document).send().await.unwrap().status(), 201);
}

/// A conversation of `token` with one answered question: its id, the question and the answer (as listed).
async fn answered(app: &TestApp, token: &str, question: &str) -> (String, Value, Value) {
    let session = app.create_session(token).await;
    let events = app.stream_turn(token, &session, question).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let messages = app.messages(token, &session).await;
    assert_eq!((messages[0]["role"].as_str(), messages[1]["role"].as_str()), (Some("user"), Some("assistant")));
    (session, messages[0].clone(), messages[1].clone())
}

async fn widget_token(app: &TestApp, tenant: &TestTenant, user: &str) -> String {
    let body = json!({ "external_user_id": user, "ttl_seconds": 600 });
    let response = app.post("/api/v1/widget-tokens", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

/// The export's lines, parsed, after checking it is JSON lines.
async fn export(app: &TestApp, key: &str) -> Vec<Value> {
    let response = app.get("/api/v1/feedback/export", key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "every line ends: {text:?}");
    text.lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect()
}

async fn feedback_rows(app: &TestApp, tenant: &TestTenant) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM message_feedback WHERE tenant_id = $1")
        .bind(tenant.id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap()
}

#[tokio::test]
async fn feedback_keeps_what_made_the_answer_a_second_one_replaces_it_and_the_export_streams_it() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("hivewise").await;
    add_hives(&app, &tenant).await;
    let (_, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let (session, question, answer) = answered(&app, &chat_key, "How many queens does a hive hold?").await;
    let answer_id = answer["id"].as_str().unwrap();
    let cited: Vec<Value> = answer["citations"].as_array().unwrap().iter().map(|c| c["chunk_id"].clone()).collect();
    assert!(!cited.is_empty(), "the answer cites the hives document: {answer}");

    let body = json!({ "rating": "down", "comment": "  It forgot the drones. ", "tags": ["incomplete", "drones"] });
    let response = feedback(&app, &chat_key, answer_id, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["message_id"], answer["id"]);
    assert_eq!(first["run_id"], answer["run_id"]);
    assert_eq!(first["rating"], "down");
    assert_eq!(first["comment"], "It forgot the drones.");
    assert_eq!(first["tags"], json!(["incomplete", "drones"]));
    assert_eq!((&first["model"], &first["provider"]), (&answer["model_used"], &answer["provider_used"]));
    assert!(first["model"].is_string(), "{first}");
    // The template the answer's run recorded: the built-in one (the tenant saved none), without a version.
    let run = app.get_json(&format!("/api/v1/runs/{}", answer["run_id"].as_str().unwrap()), &chat_key).await;
    assert!(first["prompt_template"].as_str().unwrap().starts_with("system.md.j2@"), "{first}");
    assert_eq!((&first["prompt_template"], &first["prompt_version"]), (&run["prompt_template"], &Value::Null));
    assert_eq!(first["cited_chunk_ids"], json!(cited));

    // The same giver again: the same feedback, replaced (200), not a second one.
    let response = feedback(&app, &chat_key, answer_id, &json!({ "rating": "up" })).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["id"], first["id"]);
    assert_eq!(
        (&replaced["rating"], &replaced["comment"], &replaced["tags"]),
        (&json!("up"), &Value::Null, &json!([]))
    );
    assert_eq!(replaced["created_at"], first["created_at"]);
    // Another giver (the admin key) has feedback of its own on the same answer.
    let response = feedback(&app, &tenant.admin_key, answer_id, &json!({ "rating": "down", "tags": ["tone"] }));
    let admins: Value = response.send().await.unwrap().json().await.unwrap();
    assert_ne!(admins["id"], first["id"]);

    let lines = export(&app, &tenant.admin_key).await;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let line = lines.iter().find(|line| line["id"] == first["id"]).unwrap();
    assert_eq!(line["message_id"], answer["id"]);
    assert_eq!(line["conversation_id"], json!(session));
    assert_eq!(line["question"], question["content"]);
    assert_eq!(line["answer"], answer["content"]);
    assert_eq!((&line["rating"], &line["comment"], &line["tags"]), (&json!("up"), &Value::Null, &json!([])));
    assert_eq!(line["model"], answer["model_used"]);
    assert_eq!(line["cited_chunk_ids"], json!(cited));
    assert_eq!(line["cited_chunks"][0]["source_path"], "hives.md");
    assert_eq!(line["cited_chunks"][0]["chunk_id"], cited[0]);
    assert!(line["created_at"].is_string() && line["updated_at"].is_string());
    let other = lines.iter().find(|line| line["id"] == admins["id"]).unwrap();
    assert_eq!((&other["rating"], &other["tags"]), (&json!("down"), &json!(["tone"])));

    // Admin only, and the export is in the trail.
    assert_error(app.get("/api/v1/feedback/export", &chat_key).send().await.unwrap(), 403, "forbidden").await;
    let trail = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    assert!(trail["audit_events"].as_array().unwrap().iter().any(|event| event["action"] == "feedback.exported"));
}

#[tokio::test]
async fn the_export_reads_more_feedback_than_one_page_holds() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("hivewise").await;
    let (_, _, answer) = answered(&app, &tenant.admin_key, "Hello?").await;
    let answer_id: uuid::Uuid = answer["id"].as_str().unwrap().parse().unwrap();
    // 450 givers' feedback on one answer, more than two pages of the export's 200, made as the owner.
    sqlx::query(
        "INSERT INTO message_feedback (id, tenant_id, message_id, giver_type, giver_id, rating) \
         SELECT gen_random_uuid(), $1, $2, 'api_key', gen_random_uuid(), 'up' FROM generate_series(1, 450)",
    )
    .bind(tenant.id)
    .bind(answer_id)
    .execute(&app.owner_db)
    .await
    .unwrap();
    let lines = export(&app, &tenant.admin_key).await;
    assert_eq!(lines.len(), 450);
    let ids: std::collections::BTreeSet<&str> = lines.iter().map(|line| line["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 450, "each feedback once");
}

#[tokio::test]
async fn feedback_is_refused_on_questions_and_on_conversations_the_giver_cannot_see() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("hivewise").await;
    let (_, question, answer) = answered(&app, &tenant.admin_key, "How many queens does a hive hold?").await;
    let answer_id = answer["id"].as_str().unwrap();
    let up = json!({ "rating": "up" });

    // Only answers; a message that does not exist is a 404.
    let on_question = feedback(&app, &tenant.admin_key, question["id"].as_str().unwrap(), &up).send().await.unwrap();
    assert_error(on_question, 422, "not_an_answer").await;
    let nowhere = feedback(&app, &tenant.admin_key, &uuid::Uuid::new_v4().to_string(), &up).send().await.unwrap();
    assert_error(nowhere, 404, "not_found").await;
    assert_error(feedback(&app, &tenant.admin_key, "not-an-id", &up).send().await.unwrap(), 400, "invalid_path").await;

    // The body is checked: the rating by name, the tags and comment within their limits, no unknown field.
    for (body, code) in [
        (json!({ "rating": "meh" }), "invalid_request"),
        (json!({}), "invalid_request"),
        (json!({ "rating": "up", "stars": 5 }), "invalid_request"),
        (json!({ "rating": "up", "tags": vec!["t"; 11] }), "invalid_feedback"),
        (json!({ "rating": "up", "tags": ["same", "same"] }), "invalid_feedback"),
        (json!({ "rating": "up", "tags": [""] }), "invalid_feedback"),
        (json!({ "rating": "up", "comment": "c".repeat(2001) }), "invalid_feedback"),
    ] {
        assert_error(feedback(&app, &tenant.admin_key, answer_id, &body).send().await.unwrap(), 422, code).await;
    }
    // The scope: `chat` (or a widget token), not `admin` alone.
    let (_, admin_only) = app.create_key(&tenant, &["admin"]).await;
    assert_error(feedback(&app, &admin_only, answer_id, &up).send().await.unwrap(), 403, "forbidden").await;

    // A widget token reaches only its own user's conversations: another user's answer, or one of an API
    // key's conversations, is not found.
    let alice = widget_token(&app, &tenant, "alice").await;
    let bob = widget_token(&app, &tenant, "bob").await;
    let (_, _, alices_answer) = answered(&app, &alice, "Do bees sleep?").await;
    let alices_answer = alices_answer["id"].as_str().unwrap();
    assert_error(feedback(&app, &bob, alices_answer, &up).send().await.unwrap(), 404, "not_found").await;
    assert_error(feedback(&app, &alice, answer_id, &up).send().await.unwrap(), 404, "not_found").await;
    let response = feedback(&app, &alice, alices_answer, &json!({ "rating": "down", "comment": "Too vague" }));
    assert_eq!(response.send().await.unwrap().status(), 201);
    // Alice and the tenant's key are two givers on her answer.
    assert_eq!(feedback(&app, &tenant.admin_key, alices_answer, &up).send().await.unwrap().status(), 201);

    // Another tenant can neither give feedback on these answers nor see any of it.
    let other = app.create_tenant("other").await;
    assert_error(feedback(&app, &other.admin_key, answer_id, &up).send().await.unwrap(), 404, "not_found").await;
    assert_error(feedback(&app, &other.admin_key, alices_answer, &up).send().await.unwrap(), 404, "not_found").await;
    assert!(export(&app, &other.admin_key).await.is_empty());
    let lines = export(&app, &tenant.admin_key).await;
    assert_eq!(lines.len(), 2);
    let alices = lines.iter().find(|line| line["giver_type"] == "user").unwrap();
    assert_eq!((&alices["rating"], &alices["comment"]), (&json!("down"), &json!("Too vague")));
    // Even a query without a tenant clause, as the service's role, sees only its own tenant's rows.
    let mut transaction =
        switchboard::db::begin_tenant(&app.app_db, switchboard::ids::TenantId(other.id)).await.unwrap();
    let visible: i64 =
        sqlx::query_scalar("SELECT count(*) FROM message_feedback").fetch_one(&mut *transaction).await.unwrap();
    assert_eq!(visible, 0);
    transaction.rollback().await.unwrap();
}

#[tokio::test]
async fn feedback_goes_with_its_conversation_on_erasure_and_retention() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("hivewise").await;

    // An end user's feedback, and the tenant's key's on the same answer, go when the end user is erased.
    let erased = widget_token(&app, &tenant, "erase-me").await;
    let (_, _, theirs) = answered(&app, &erased, "What do drones do?").await;
    let theirs = theirs["id"].as_str().unwrap();
    let said = json!({ "rating": "down", "comment": "My neighbour's quarrelsome marmalade bees" });
    assert_eq!(feedback(&app, &erased, theirs, &said).send().await.unwrap().status(), 201);
    assert_eq!(
        feedback(&app, &tenant.admin_key, theirs, &json!({ "rating": "up" })).send().await.unwrap().status(),
        201
    );
    let (kept_session, _, kept) = answered(&app, &tenant.admin_key, "How many queens does a hive hold?").await;
    let kept = kept["id"].as_str().unwrap();
    assert_eq!(feedback(&app, &tenant.admin_key, kept, &json!({ "rating": "up" })).send().await.unwrap().status(), 201);
    assert_eq!(feedback_rows(&app, &tenant).await, 3);

    let response = app.delete("/api/v1/end-users/erase-me", &tenant.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(feedback_rows(&app, &tenant).await, 1, "only the feedback on another conversation is left");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM message_feedback WHERE comment LIKE '%marmalade%'")
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let lines = export(&app, &tenant.admin_key).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message_id"], json!(kept));

    // Retention: a conversation past the tenant's setting goes with its feedback; a fresh one stays.
    let (old_session, _, old) = answered(&app, &tenant.admin_key, "Do bees sleep?").await;
    let old = old["id"].as_str().unwrap();
    assert_eq!(
        feedback(&app, &tenant.admin_key, old, &json!({ "rating": "down" })).send().await.unwrap().status(),
        201
    );
    let settings = json!({ "conversation_retention_days": 7 });
    let response = app.patch("/api/v1/tenant/config", &tenant.admin_key, &settings).send().await.unwrap();
    assert_eq!(response.status(), 200);
    sqlx::query("UPDATE chat_sessions SET updated_at = now() - interval '10 days' WHERE id = $1")
        .bind(old_session.parse::<uuid::Uuid>().unwrap())
        .execute(&app.owner_db)
        .await
        .unwrap();
    let swept =
        switchboard::retention::sweep_tenant(&app.app_db, switchboard::ids::TenantId(tenant.id), 500).await.unwrap();
    assert_eq!(swept.conversations, 1);
    let lines = export(&app, &tenant.admin_key).await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["conversation_id"], json!(kept_session));
}
