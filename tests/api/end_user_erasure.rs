//! Erasing an end user (`DELETE /api/v1/end-users/{external_user_id}`): afterwards no row of any table
//! holds their id or anything they said, other people's data is all there, and usage totals are what
//! they were, now under a pseudonym.

use serde_json::{Value, json};
use sqlx::AssertSqlSafe;

use crate::helpers::{TestApp, TestTenant, assert_error};

const ERASED: &str = "zq-erasable-person-7731";
const ERASED_WORDS: &str = "quixotic marmalade xylophone";
const KEPT: &str = "kept-customer-5519";
const KEPT_WORDS: &str = "perpendicular lighthouse keeper";

/// Every row of every table in the database (every tenant's, and the tables of none), each as JSON text,
/// read as the owner, past row-level security.
async fn every_row(app: &TestApp) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' \
         WHERE c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    assert!(tables.len() > 20, "{tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        let texts: Vec<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT row_to_json(t)::text FROM {table} t")))
                .fetch_all(&app.owner_db)
                .await
                .unwrap();
        rows.extend(texts.into_iter().map(|text| (table.clone(), text)));
    }
    rows
}

/// The rows that hold `needle` (case-insensitively), as `table: row`.
fn holding(rows: &[(String, String)], needle: &str) -> Vec<String> {
    let needle = needle.to_lowercase();
    rows.iter()
        .filter(|(_, row)| row.to_lowercase().contains(&needle))
        .map(|(table, row)| format!("{table}: {row}"))
        .collect()
}

async fn integration_turn(app: &TestApp, key: &str, user: &str, words: &str) {
    let chat = json!({ "message": format!("Tell me about the {words}"), "external_user_id": user });
    let response = app.post("/api/v1/integration/chat", key, &chat).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn widget_token(app: &TestApp, tenant: &TestTenant, user: &str) -> Value {
    let body = json!({ "external_user_id": user, "ttl_seconds": 600 });
    let response = app.post("/api/v1/widget-tokens", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn usage(app: &TestApp, tenant: &TestTenant, group_by: &str) -> Value {
    app.get_json(&format!("/api/v1/usage?group_by={group_by}"), &tenant.admin_key).await
}

fn group<'a>(report: &'a Value, key: &str) -> Option<&'a Value> {
    report["groups"].as_array().unwrap().iter().find(|group| group["group"] == key)
}

fn erase(app: &TestApp, key: &str, user: &str) -> reqwest::RequestBuilder {
    app.delete(&format!("/api/v1/end-users/{user}"), key)
}

/// Two end users of one tenant, each with two integration turns (priced usage, their own budget rows and
/// rate-limit buckets, as in production), the one to be erased with a widget conversation too, and audit
/// events naming each of them (a widget user acting, a per-user budget line, a tenant's own notes).
struct People {
    tenant: TestTenant,
    crm_key: String,
    /// The erased user's widget token, and the user id it names.
    widget_token: String,
    old_user_id: String,
    kept_user_id: String,
}

async fn two_end_users(app: &TestApp) -> People {
    let tenant = app.create_tenant("acme").await;
    app.configure(
        &tenant,
        json!({ "default_provider": "openai", "default_model": "metered-test-model", "end_user_monthly_budget_usd": "100" }),
    )
    .await;
    let limits = json!({ "end_user": { "requests_per_minute": 1000 } });
    let response = app
        .client
        .put(app.url("/api/v1/rate-limits"))
        .bearer_auth(&tenant.admin_key)
        .json(&limits)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let (_, crm_key) = app.create_key(&tenant, &["chat"]).await;

    // Both end users talk through the integration API; the one to be erased through the widget too.
    for (user, words) in [(ERASED, ERASED_WORDS), (KEPT, KEPT_WORDS)] {
        integration_turn(app, &crm_key, user, words).await;
        integration_turn(app, &crm_key, user, &format!("{words}, again")).await;
    }
    let widget = widget_token(app, &tenant, ERASED).await;
    let (token, old_user_id) = (widget["token"].as_str().unwrap(), widget["user_id"].as_str().unwrap().to_owned());
    let session = app.create_session(token).await;
    let events = app.stream_turn(token, &session, &format!("And the {ERASED_WORDS} in the widget?")).await;
    assert_eq!(events.last().unwrap().event, "run.completed");
    // Their feedback on the answer, in their own words, goes with them too.
    let answer = app.messages(token, &session).await[1]["id"].as_str().unwrap().to_owned();
    let said = json!({ "rating": "down", "comment": format!("Nothing about the {ERASED_WORDS}") });
    let rated = app.post(&format!("/api/v1/messages/{answer}/feedback"), token, &said).send().await.unwrap();
    assert_eq!(rated.status(), 201);
    let kept_user_id: String = sqlx::query_scalar("SELECT id::text FROM users WHERE external_id = $1")
        .bind(KEPT)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    for (actor, target, details) in [
        (
            old_user_id.clone(),
            format!("end_user:{old_user_id}"),
            json!({ "external_user_id": ERASED, "ids": [ERASED] }),
        ),
        (kept_user_id.clone(), format!("end_user:{kept_user_id}"), json!({ "external_user_id": KEPT })),
    ] {
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, details) \
             VALUES (gen_random_uuid(), $1, 'user', $2, 'budget.threshold_crossed', 'budget', $3, $4)",
        )
        .bind(tenant.id)
        .bind(&actor)
        .bind(&target)
        .bind(&details)
        .execute(&app.owner_db)
        .await
        .unwrap();
    }

    People { tenant, crm_key, widget_token: token.to_owned(), old_user_id, kept_user_id }
}

#[tokio::test]
async fn an_erased_end_user_leaves_nothing_but_a_pseudonym_and_others_keep_everything() {
    let app = TestApp::spawn().await;
    let People { tenant, crm_key, widget_token, old_user_id, kept_user_id } = two_end_users(&app).await;
    let token = widget_token.as_str();

    let before = every_row(&app).await;
    for needle in [ERASED, ERASED_WORDS, &old_user_id, KEPT, KEPT_WORDS] {
        assert!(!holding(&before, needle).is_empty(), "the dump should find {needle} before the erasure");
    }
    let totals_before = usage(&app, &tenant, "model").await["total"].clone();
    let by_user_before = usage(&app, &tenant, "end_user").await;
    let erased_usage = group(&by_user_before, ERASED).expect("the erased user's usage").clone();
    let kept_usage = group(&by_user_before, KEPT).expect("the kept user's usage").clone();
    let kept_messages_before = holding(&before, KEPT_WORDS).len();

    // Only an admin erases; bad ids are refused before anything is looked at.
    assert_error(erase(&app, &crm_key, ERASED).send().await.unwrap(), 403, "forbidden").await;
    assert_error(erase(&app, &tenant.admin_key, &"x".repeat(201)).send().await.unwrap(), 422, "invalid_request").await;
    assert_error(erase(&app, &tenant.admin_key, "nobody-here").send().await.unwrap(), 404, "end_user_not_found").await;

    let response = erase(&app, &tenant.admin_key, ERASED).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let erasure: Value = response.json().await.unwrap();
    let pseudonym = erasure["pseudonym"].as_str().unwrap().to_owned();
    assert!(
        pseudonym.len() == 39
            && pseudonym.starts_with("erased-")
            && pseudonym[7..].bytes().all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase()),
        "{erasure}"
    );
    assert_eq!(erasure["conversations"], 2, "the integration conversation and the widget's: {erasure}");
    assert_eq!(erasure["runs"], 3, "{erasure}");
    assert!(erasure["usage_records"].as_u64().unwrap() >= 3, "a record per model call at least: {erasure}");
    assert!(erasure["audit_events"].as_u64().unwrap() >= 1, "{erasure}");

    // Nothing anywhere holds their id, their user id or their words; the other user's all stay.
    let after = every_row(&app).await;
    for needle in [ERASED, ERASED_WORDS, "quixotic", "xylophone", &old_user_id] {
        let found = holding(&after, needle);
        assert!(found.is_empty(), "{needle} is still in:\n{}", found.join("\n"));
    }
    for needle in [KEPT, KEPT_WORDS, &kept_user_id] {
        assert!(!holding(&after, needle).is_empty(), "{needle} is gone");
    }
    assert_eq!(holding(&after, KEPT_WORDS).len(), kept_messages_before, "the kept user's rows are all there");
    assert_eq!(
        holding(&before, &format!("end_user:{kept_user_id}")),
        holding(&after, &format!("end_user:{kept_user_id}")),
        "the kept user's budget rows and audit events are unchanged"
    );

    // Counts and costs are as they were, the erased user's under the pseudonym.
    assert_eq!(usage(&app, &tenant, "model").await["total"], totals_before);
    let by_user_after = usage(&app, &tenant, "end_user").await;
    assert!(group(&by_user_after, ERASED).is_none(), "{by_user_after}");
    assert_eq!(group(&by_user_after, KEPT), Some(&kept_usage));
    let mut renamed = erased_usage.clone();
    renamed["group"] = json!(pseudonym);
    assert_eq!(group(&by_user_after, &pseudonym), Some(&renamed), "{by_user_after}");

    // The trail says it happened, naming only the pseudonym.
    let trail = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    let events = trail["audit_events"].as_array().unwrap();
    let erased = events.iter().find(|event| event["action"] == "end_user.erased").expect("end_user.erased");
    assert_eq!(erased["target_id"], json!(pseudonym));
    assert_eq!(erased["details"]["conversations"], 2);
    let rewritten =
        events.iter().find(|event| event["action"] == "audit_events.pseudonymised").expect("the rewrite is recorded");
    assert_eq!(rewritten["target_id"], json!(pseudonym));
    let renamed_event = events
        .iter()
        .find(|event| event["details"]["ids"].is_array())
        .expect("the event that named them stays, with the pseudonym");
    assert_eq!(renamed_event["details"], json!({ "external_user_id": pseudonym, "ids": [pseudonym] }));
    assert_ne!(renamed_event["actor_id"], json!(old_user_id));
    assert!(renamed_event["target_id"].as_str().unwrap().starts_with("end_user:"));

    // Their old widget token stands for nobody now (it cannot start a conversation for a user that is
    // gone); the other user's conversation goes on.
    assert_error(app.get("/api/v1/sessions", token).send().await.unwrap(), 401, "unauthorized").await;
    assert_error(app.post("/api/v1/sessions", token, &json!({})).send().await.unwrap(), 401, "unauthorized").await;
    integration_turn(&app, &crm_key, KEPT, "third time").await;

    // Erasing again (or the pseudonym) is a clear 404, and changes nothing.
    let audit_count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_events").fetch_one(&app.owner_db).await.unwrap()
    };
    let events_before = audit_count().await;
    assert_error(erase(&app, &tenant.admin_key, ERASED).send().await.unwrap(), 404, "end_user_not_found").await;
    assert_error(erase(&app, &tenant.admin_key, &pseudonym).send().await.unwrap(), 404, "end_user_not_found").await;
    // Nor can the pseudonym become a live end user, whose conversations no erasure would reach.
    let as_pseudonym = json!({ "external_user_id": pseudonym });
    let minted = app.post("/api/v1/widget-tokens", &tenant.admin_key, &as_pseudonym).send().await.unwrap();
    assert_error(minted, 422, "invalid_request").await;
    assert_eq!(audit_count().await, events_before);
}

#[tokio::test]
async fn an_end_user_with_a_run_still_going_is_not_erased_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    integration_turn(&app, &tenant.admin_key, ERASED, ERASED_WORDS).await;
    // A turn of theirs that has not ended (as a run waiting for an approval would be).
    let run_id: uuid::Uuid = sqlx::query_scalar(
        "UPDATE runs SET status = 'awaiting_approval' WHERE tenant_id = $1 AND session_id IS NOT NULL RETURNING id",
    )
    .bind(tenant.id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap();
    let before = every_row(&app).await;
    assert_error(erase(&app, &tenant.admin_key, ERASED).send().await.unwrap(), 409, "end_user_busy").await;
    let after = every_row(&app).await;
    assert_eq!(holding(&before, ERASED_WORDS), holding(&after, ERASED_WORDS), "nothing was half-done");
    assert_eq!(holding(&before, ERASED), holding(&after, ERASED));

    // Once it has ended, the erasure goes through.
    sqlx::query("UPDATE runs SET status = 'cancelled' WHERE id = $1")
        .bind(run_id)
        .execute(&app.owner_db)
        .await
        .unwrap();
    let response = erase(&app, &tenant.admin_key, ERASED).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(holding(&every_row(&app).await, ERASED_WORDS).is_empty());
}
