//! Priced calls outside a run's model calls reserve their cost before the provider is asked, as model
//! calls do: concurrent `/v1/embeddings` calls never spend past a budget together, a failed call gives its
//! reservation back, and a reservation whose process died is released once a budget needs the room.

use std::str::FromStr as _;

use mock_upstream::Fault;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant};
use crate::service_process::wait_for;

const MODEL: &str = "text-embedding-3-small";
const BUDGET: &str = "0.0001";

/// What the service expects one embedding of `text` to cost (the catalog's price, its own token count).
fn estimated_cost(text: &str) -> Decimal {
    let price = switchboard::catalog::Catalog::built_in().embedding_price("openai", MODEL).expect("a priced model");
    Decimal::from(switchboard::tokens::count(text)) * price / Decimal::from(1_000_000)
}

/// The tenant's budget: spent and reserved.
async fn tenant_budget(app: &TestApp, tenant: &TestTenant) -> (Decimal, Decimal) {
    let line = crate::budgets::tenant_budget(app, tenant).await;
    (crate::budgets::usd(&line["spent_usd"]), crate::budgets::usd(&line["reserved_usd"]))
}

fn embedding_requests(app: &TestApp) -> usize {
    app.mock.requests().iter().filter(|request| request.path.ends_with("/embeddings")).count()
}

/// OpenAI's error shape, with the budget's code and what remains of it.
async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), 402);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exhausted", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("the tenant's monthly budget"), "{body}");
}

async fn embed(app: &TestApp, key: &str, text: &str) -> reqwest::Response {
    app.post("/v1/embeddings", key, &json!({ "model": MODEL, "input": [text], "dimensions": 256 }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn concurrent_embedding_calls_reserve_their_cost_and_only_those_the_budget_has_room_for_are_made() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "monthly_budget_usd": BUDGET })).await;
    let text = "Rotate the master key before the audit, then check every sealed provider key. ".repeat(90);
    let budget = Decimal::from_str(BUDGET).unwrap();
    let room = (budget / estimated_cost(&text)).floor();
    let room = usize::try_from(room.mantissa()).unwrap();
    assert!((2..10).contains(&room), "the budget has room for a few calls: {room}");

    // The provider holds its answers: every call that was let through is waiting there at once.
    app.mock.hold_embeddings();
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let request = app.post(
                "/v1/embeddings",
                &tenant.admin_key,
                &json!({ "model": MODEL, "input": [&text], "dimensions": 256 }),
            );
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    wait_for("every call to be refused or to reach the provider", async || {
        embedding_requests(&app) + calls.iter().filter(|call| call.is_finished()).count() == calls.len()
    })
    .await;
    assert_eq!(embedding_requests(&app), room, "only the calls the budget has room for reach the provider");
    let (_, reserved) = tenant_budget(&app, &tenant).await;
    assert_eq!(reserved, estimated_cost(&text) * Decimal::from(room), "their cost is reserved meanwhile");

    app.mock.release_embeddings();
    let mut answered = 0;
    for call in calls {
        let response = call.await.unwrap();
        if response.status() == 200 {
            answered += 1;
        } else {
            assert_refused(response).await;
        }
    }
    assert_eq!(answered, room);
    let (spent, reserved) = tenant_budget(&app, &tenant).await;
    assert_eq!(reserved, Decimal::ZERO, "every reservation is settled");
    let one_call = spent / Decimal::from(room);
    assert!(spent > Decimal::ZERO && spent <= budget + one_call, "spent {spent} of {budget}");
}

#[tokio::test]
async fn a_failed_embedding_call_gives_back_what_it_reserved() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "monthly_budget_usd": BUDGET })).await;
    app.mock.fail_embeddings(Fault::Status { status: 400, retry_after: None });
    let response = embed(&app, &tenant.admin_key, "rotate the master key").await;
    assert!(response.status().is_server_error(), "the provider's refusal fails the call: {}", response.status());
    assert_eq!(embedding_requests(&app), 1, "the provider was asked");
    assert_eq!(tenant_budget(&app, &tenant).await, (Decimal::ZERO, Decimal::ZERO), "nothing spent or held");
}

#[tokio::test]
async fn a_reservation_left_by_a_dead_process_is_released_once_the_budget_needs_the_room() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "monthly_budget_usd": BUDGET })).await;
    let budget = Decimal::from_str(BUDGET).unwrap();
    // A process reserved `amount` for a call `age` ago and died before settling it.
    let left_behind = async |amount: Decimal, age: &str| {
        sqlx::query(
            "WITH reserved AS ( \
                 INSERT INTO budget_reservations (id, tenant_id, run_id, subjects, period, amount_usd, created_at) \
                 VALUES (gen_random_uuid(), $1, gen_random_uuid(), ARRAY['tenant'], \
                         date_trunc('month', now())::date, $2, now() - $3::interval)) \
             INSERT INTO budget_spend (tenant_id, subject, period, reserved_usd) \
             VALUES ($1, 'tenant', date_trunc('month', now())::date, $2) \
             ON CONFLICT (tenant_id, subject, period) DO UPDATE SET reserved_usd = budget_spend.reserved_usd + $2",
        )
        .bind(tenant.id)
        .bind(amount)
        .bind(age)
        .execute(&app.owner_db)
        .await
        .unwrap();
    };
    left_behind(budget, "1 minute").await;

    // It may still be settled: it holds the budget.
    let refused = embed(&app, &tenant.admin_key, "rotate the master key").await;
    assert_refused(refused).await;
    assert_eq!(embedding_requests(&app), 0, "no provider was asked");

    // Once it is older than any call lasts, the call that needs its room releases it.
    sqlx::query("UPDATE budget_reservations SET created_at = now() - interval '1 hour' WHERE tenant_id = $1")
        .bind(tenant.id)
        .execute(&app.owner_db)
        .await
        .unwrap();
    let answered = embed(&app, &tenant.admin_key, "rotate the master key").await;
    assert_eq!(answered.status(), 200, "{}", answered.text().await.unwrap());
    let (spent, reserved) = tenant_budget(&app, &tenant).await;
    assert!(spent > Decimal::ZERO, "the call is spent");
    assert_eq!(reserved, Decimal::ZERO, "the dead process's reservation is gone, and the call's settled");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM budget_reservations WHERE tenant_id = $1")
        .bind(tenant.id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert_eq!(left, 0);

    // A stale one holding all but a sliver: the budget does not read as used up, but the call does not
    // fit until the reservation is released.
    left_behind(budget - spent - Decimal::new(1, 10), "1 hour").await;
    let answered = embed(&app, &tenant.admin_key, "rotate the master key").await;
    assert_eq!(answered.status(), 200, "{}", answered.text().await.unwrap());
    assert_eq!(tenant_budget(&app, &tenant).await.1, Decimal::ZERO, "released, and the call's settled");
}
