//! Tenant isolation is enforced by PostgreSQL itself, under the application role, even for queries that
//! forget the tenant.

use sqlx::Row as _;
use switchboard::db;
use switchboard::ids::TenantId;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_application_role_is_neither_superuser_nor_bypasses_rls() {
    let app = TestApp::spawn().await;
    let row = sqlx::query(
        "SELECT current_user::text AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&app.app_db)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("name"), db::APP_ROLE);
    assert!(!row.get::<bool, _>("rolsuper"));
    assert!(!row.get::<bool, _>("rolbypassrls"));
}

#[tokio::test]
async fn a_query_without_a_tenant_clause_sees_and_changes_only_its_tenant() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    app.create_key(&globex, &["chat"]).await;

    let mut transaction = db::begin_tenant(&app.app_db, TenantId(acme.id)).await.unwrap();
    let tenants: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT DISTINCT tenant_id FROM api_keys").fetch_all(&mut *transaction).await.unwrap();
    assert_eq!(tenants, [acme.id]);
    let audit_tenants: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit_events").fetch_all(&mut *transaction).await.unwrap();
    assert_eq!(audit_tenants, [acme.id]);

    let renamed = sqlx::query("UPDATE api_keys SET name = 'renamed'").execute(&mut *transaction).await.unwrap();
    assert_eq!(renamed.rows_affected(), 1, "only acme's one key");
    let deleted = sqlx::query("DELETE FROM tenant_configs").execute(&mut *transaction).await.unwrap();
    assert_eq!(deleted.rows_affected(), 1, "only acme's settings");
    transaction.rollback().await.unwrap();

    let globex_keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND name <> 'renamed'")
            .bind(globex.id)
            .fetch_one(&app.owner_db)
            .await
            .unwrap();
    assert_eq!(globex_keys, 2);
}

#[tokio::test]
async fn a_tenant_cannot_write_rows_for_another_tenant() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let mut transaction = db::begin_tenant(&app.app_db, TenantId(acme.id)).await.unwrap();
    let error = sqlx::query(
        "INSERT INTO users (id, tenant_id, actor_type, external_id) VALUES (gen_random_uuid(), $1, 'user', 'x')",
    )
    .bind(globex.id)
    .execute(&mut *transaction)
    .await
    .unwrap_err();
    assert!(error.to_string().contains("row-level security"), "{error}");
}

#[tokio::test]
async fn without_a_tenant_no_tenant_row_is_visible() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    for table in ["api_keys", "users", "tenant_configs", "audit_events"] {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&app.app_db)
            .await
            .unwrap();
        assert_eq!(count, 0, "{table} is visible without a tenant");
    }
}

/// Walks the catalog, so every table added later is held to the same rule.
#[tokio::test]
async fn every_table_with_a_tenant_id_has_forced_rls_a_policy_and_an_index() {
    let app = TestApp::spawn().await;
    let rows = sqlx::query(
        "SELECT c.relname::text AS name, c.relrowsecurity, c.relforcerowsecurity, \
                EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy, \
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum) AS indexed \
         FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped \
         WHERE c.relkind IN ('r', 'p')",
    )
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    assert!(rows.len() >= 4, "expected the tenancy tables, found {}", rows.len());
    for row in rows {
        let name: String = row.get("name");
        assert!(row.get::<bool, _>("relrowsecurity"), "{name}: RLS not enabled");
        assert!(row.get::<bool, _>("relforcerowsecurity"), "{name}: RLS not forced");
        assert!(row.get::<bool, _>("has_policy"), "{name}: no policy");
        assert!(row.get::<bool, _>("indexed"), "{name}: no index led by tenant_id");
    }
}

#[tokio::test]
async fn audit_events_cannot_be_updated_or_deleted_even_by_the_owner() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let mut transaction = db::begin_tenant(&app.app_db, TenantId(acme.id)).await.unwrap();
    let update = sqlx::query("UPDATE audit_events SET action = 'forged'").execute(&mut *transaction).await;
    assert!(update.is_err(), "the application role updated the audit trail");
    transaction.rollback().await.unwrap();

    for statement in ["UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events", "TRUNCATE audit_events"]
    {
        let error = sqlx::query(statement).execute(&app.owner_db).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{statement}: {error}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(acme.id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert_eq!(count, 2);
}
