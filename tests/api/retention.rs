//! Retention: the settings (checked against each other), and the sweep that deletes, in batches and
//! tenant by tenant, conversations with their runs' text, usage records and audit events past them.

use serde_json::json;
use switchboard::retention::{self, Swept};

use crate::helpers::{OPERATOR_TOKEN, TestApp, TestTenant, assert_error};

async fn patch_config(app: &TestApp, tenant: &TestTenant, settings: serde_json::Value) -> reqwest::Response {
    app.client
        .patch(app.url("/api/v1/tenant/config"))
        .bearer_auth(&tenant.admin_key)
        .json(&settings)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn retention_settings_are_checked_against_each_other() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    for (settings, says) in [
        (json!({ "conversation_retention_days": 0 }), "conversation_retention_days must be null"),
        (json!({ "conversation_retention_days": "30" }), "conversation_retention_days must be null"),
        (json!({ "usage_retention_days": 60 }), "while conversation_retention_days is null"),
        (json!({ "conversation_retention_days": 7, "audit_retention_days": 30 }), "a budget period"),
        (
            json!({ "conversation_retention_days": 90, "usage_retention_days": 60 }),
            "at least conversation_retention_days",
        ),
    ] {
        let body = assert_error(patch_config(&app, &tenant, settings.clone()).await, 422, "invalid_request").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{settings}: {message}");
    }
    let config = app.get_json("/api/v1/tenant/config", &tenant.admin_key).await;
    assert_eq!(config["conversation_retention_days"], json!(null), "nothing refused was saved: {config}");

    let settings = json!({ "conversation_retention_days": 7, "usage_retention_days": 60, "audit_retention_days": 400 });
    assert_eq!(patch_config(&app, &tenant, settings).await.status(), 200);
    let config = app.get_json("/api/v1/tenant/config", &tenant.admin_key).await;
    assert_eq!(
        (&config["conversation_retention_days"], &config["usage_retention_days"], &config["audit_retention_days"]),
        (&json!(7), &json!(60), &json!(400))
    );
    // Keeping conversations forever again needs usage and audit kept forever too, in the same change.
    let refused = patch_config(&app, &tenant, json!({ "conversation_retention_days": null })).await;
    assert_error(refused, 422, "invalid_request").await;
    let forever =
        json!({ "conversation_retention_days": null, "usage_retention_days": null, "audit_retention_days": null });
    assert_eq!(patch_config(&app, &tenant, forever).await.status(), 200);
}

/// A tenant with conversations, usage and audit events, some of them made to look old.
struct Arranged {
    old_sessions: Vec<uuid::Uuid>,
    old_runs: Vec<uuid::Uuid>,
    kept_sessions: Vec<uuid::Uuid>,
}

async fn arrange(app: &TestApp, tenant: &TestTenant) -> Arranged {
    let mut sessions = Vec::new();
    for question in ["Ancient one", "Ancient two", "Ancient three", "Ancient four", "Ancient but busy", "Fresh"] {
        let session = app.create_session(&tenant.admin_key).await;
        let events = app.stream_turn(&tenant.admin_key, &session, question).await;
        assert_eq!(events.last().unwrap().event, "run.completed");
        sessions.push(session.parse::<uuid::Uuid>().unwrap());
    }
    let old_sessions = sessions[..4].to_vec();
    let (busy, fresh) = (sessions[4], sessions[5]);
    // Ten days without activity, for five of them; one of those has a run that has not ended.
    sqlx::query("UPDATE chat_sessions SET updated_at = now() - interval '10 days' WHERE id = ANY($1)")
        .bind(&sessions[..5])
        .execute(&app.owner_db)
        .await
        .unwrap();
    let old_runs: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE runs SET created_at = now() - interval '100 days' WHERE session_id = ANY($1) RETURNING id",
    )
    .bind(&old_sessions)
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    assert_eq!(old_runs.len(), 4);
    sqlx::query("UPDATE runs SET status = 'awaiting_approval' WHERE session_id = $1")
        .bind(busy)
        .execute(&app.owner_db)
        .await
        .unwrap();
    // Seven usage records and five audit events from a hundred days ago, one of each from today.
    for (count, days) in [(7, 100), (1, 0)] {
        for _ in 0..count {
            sqlx::query(
                "INSERT INTO usage_records (id, tenant_id, provider, model, input_tokens, output_tokens, token_source, \
                 is_byok, created_at) \
                 VALUES (gen_random_uuid(), $1, 'local', 'old-model', 10, 20, 'estimated', false, \
                         now() - make_interval(days => $2))",
            )
            .bind(tenant.id)
            .bind(days)
            .execute(&app.owner_db)
            .await
            .unwrap();
        }
    }
    for (count, days) in [(5, 100), (1, 0)] {
        for _ in 0..count {
            sqlx::query(
                "INSERT INTO audit_events (id, tenant_id, actor_type, action, created_at) \
                 VALUES (gen_random_uuid(), $1, 'system', 'test.arranged', now() - make_interval(days => $2))",
            )
            .bind(tenant.id)
            .bind(days)
            .execute(&app.owner_db)
            .await
            .unwrap();
        }
    }
    Arranged { old_sessions, old_runs, kept_sessions: vec![busy, fresh] }
}

/// What the tenant holds, counted as the owner: sessions, messages, runs, run events, old usage records,
/// all usage records, old audit events, all audit events.
async fn counts(app: &TestApp, tenant: &TestTenant) -> [i64; 8] {
    sqlx::query_as::<_, (i64, i64, i64, i64, i64, i64, i64, i64)>(
        "SELECT (SELECT count(*) FROM chat_sessions WHERE tenant_id = $1), \
                (SELECT count(*) FROM chat_messages WHERE tenant_id = $1), \
                (SELECT count(*) FROM runs WHERE tenant_id = $1), \
                (SELECT count(*) FROM run_events WHERE tenant_id = $1), \
                (SELECT count(*) FROM usage_records WHERE tenant_id = $1 AND created_at < now() - interval '60 days'), \
                (SELECT count(*) FROM usage_records WHERE tenant_id = $1), \
                (SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND created_at < now() - interval '60 days'), \
                (SELECT count(*) FROM audit_events WHERE tenant_id = $1)",
    )
    .bind(tenant.id)
    .fetch_one(&app.owner_db)
    .await
    .map(|(a, b, c, d, e, f, g, h)| [a, b, c, d, e, f, g, h])
    .unwrap()
}

#[tokio::test]
async fn the_sweep_deletes_what_each_tenant_no_longer_keeps_in_batches_and_nothing_else() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let initech = app.create_tenant("initech").await;
    let kept_by_acme = arrange(&app, &acme).await;
    arrange(&app, &globex).await;
    arrange(&app, &initech).await;
    let settings = json!({ "conversation_retention_days": 7, "usage_retention_days": 60, "audit_retention_days": 60 });
    assert_eq!(patch_config(&app, &acme, settings.clone()).await.status(), 200);
    // A suspended tenant keeps what it has (it may be about to be deleted, or resumed), whatever its settings.
    assert_eq!(patch_config(&app, &initech, settings).await.status(), 200);
    let suspend = json!({ "status": "suspended" });
    let suspended = app.client.patch(app.url(&format!("/api/v1/tenants/{}", initech.id))).bearer_auth(OPERATOR_TOKEN);
    assert_eq!(suspended.json(&suspend).send().await.unwrap().status(), 200);
    let initech_before = counts(&app, &initech).await;
    let acme_before = counts(&app, &acme).await;
    let globex_before = counts(&app, &globex).await;
    assert_eq!(acme_before[4], 7);
    assert_eq!(acme_before[6], 5);

    // Batches of three: four conversations, seven usage records and five audit events take several.
    let swept = retention::sweep(&app.app_db, 3).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            conversations: 4,
            runs_stripped: 4,
            usage_records: 7,
            runs_deleted: 4,
            audit_events: 5,
            webhook_deliveries: 0,
        },
        "{swept:?}"
    );

    let acme_after = counts(&app, &acme).await;
    assert_eq!(acme_after[0], 2, "the busy and the fresh conversations stay");
    assert_eq!(acme_after[2], acme_before[2] - 4, "the old conversations' runs went after their usage retention");
    assert_eq!(acme_after[4], 0, "no old usage record");
    assert_eq!(acme_after[5], acme_before[5] - 7, "the recent usage records stay");
    assert_eq!(acme_after[6], 0, "no old audit event");
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM chat_sessions WHERE id = ANY($1)) + (SELECT count(*) FROM chat_messages WHERE session_id = ANY($1)) \
              + (SELECT count(*) FROM runs WHERE id = ANY($2)) + (SELECT count(*) FROM run_events WHERE run_id = ANY($2)) \
              + (SELECT count(*) FROM chat_messages WHERE tenant_id = $3 AND content LIKE 'Ancient%' AND content NOT LIKE '%busy%')",
    )
    .bind(&kept_by_acme.old_sessions)
    .bind(&kept_by_acme.old_runs)
    .bind(acme.id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap();
    assert_eq!(left, 0, "nothing of the expired conversations is left");
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE session_id = ANY($1)")
        .bind(&kept_by_acme.kept_sessions)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert!(kept >= 3, "the kept conversations keep their messages: {kept}");
    // The trail says what retention removed: two batches, five events.
    let expired: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE tenant_id = $1 AND action = 'audit_events.expired' ORDER BY id",
    )
    .bind(acme.id)
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    assert_eq!(expired.iter().map(|details| details["events"].as_i64().unwrap()).collect::<Vec<_>>(), [3, 2]);

    // Another tenant, with no retention set, keeps everything; so does the suspended one.
    assert_eq!(counts(&app, &globex).await, globex_before);
    assert_eq!(counts(&app, &initech).await, initech_before);
    // A second sweep finds nothing more.
    assert_eq!(retention::sweep(&app.app_db, 3).await.unwrap(), Swept::default());
    // The trail is still append-only outside the sweep.
    let mut transaction =
        switchboard::db::begin_tenant(&app.app_db, switchboard::ids::TenantId(acme.id)).await.unwrap();
    assert!(sqlx::query("DELETE FROM audit_events").execute(&mut *transaction).await.is_err());
}
