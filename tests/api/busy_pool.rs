//! A run under way waits for a busy connection pool instead of failing with it (a request may be refused
//! with 503 and asked again; half an answer cannot), and still fails at once when the database is gone.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use switchboard::db;
use switchboard::ids::TenantId;

use crate::helpers::TestApp;

/// The pools' own time-out here: short, so that waiting past it shows.
const TIME_OUT: Duration = Duration::from_millis(200);

#[tokio::test]
async fn accepted_work_waits_out_a_busy_pool_that_a_request_would_be_refused_by() {
    let app = TestApp::spawn().await;
    let tenant = TenantId(app.create_tenant("acme").await.id);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(TIME_OUT)
        .connect_with(app.owner_options.clone())
        .await
        .unwrap();

    // The pool's one connection is lent out: a request's transaction times out.
    let held = pool.begin().await.unwrap();
    assert!(matches!(db::begin_tenant(&pool, tenant).await, Err(sqlx::Error::PoolTimedOut)));

    // Accepted work waits through several time-outs, and begins once the connection comes back.
    let patient = tokio::spawn({
        let pool = pool.clone();
        async move { db::begin_tenant_patiently(&pool, tenant).await.map(drop) }
    });
    tokio::time::sleep(TIME_OUT * 4).await;
    assert!(!patient.is_finished(), "it waits while the pool is busy");
    held.rollback().await.unwrap();
    patient.await.unwrap().expect("it begins once a connection is free");
}

#[tokio::test]
async fn accepted_work_does_not_wait_for_a_database_that_is_gone() {
    let app = TestApp::spawn().await;
    let tenant = TenantId(app.create_tenant("acme").await.id);
    // A pool whose server refuses connections: nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = app.owner_options.clone().port(port);
    let pool = PgPoolOptions::new().max_connections(1).acquire_timeout(TIME_OUT).connect_lazy_with(gone);
    // Bounds a hang: the patience meant for a busy pool (30 s) is not spent on a dead one.
    let failed = tokio::time::timeout(Duration::from_secs(15), db::begin_tenant_patiently(&pool, tenant)).await;
    let error = failed.expect("it fails at the pool's time-out").map(drop).unwrap_err();
    assert!(db::is_unavailable(&error), "{error}");
}
