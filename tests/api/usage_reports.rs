//! Usage reports: tokens and cost over a period, grouped, as JSON and as the same figures in CSV.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

#[tokio::test]
async fn usage_is_reported_by_group_and_the_csv_says_what_the_json_says() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "metered-test-model" })).await;
    let (_, crm_key) = app.create_key(&tenant, &["chat"]).await;
    for (key, question) in [(&tenant.admin_key, "First"), (&tenant.admin_key, "Second"), (&crm_key, "Third")] {
        let session = app.create_session(key).await;
        let events = app.stream_turn(key, &session, question).await;
        assert_eq!(events.last().unwrap().event, "run.completed");
    }
    // One more, for an end user of the integration door.
    let chat = json!({ "message": "Fourth", "external_user_id": "cust-42" });
    assert_eq!(app.post("/api/v1/integration/chat", &crm_key, &chat).send().await.unwrap().status(), 200);

    let by_key = app.get_json("/api/v1/usage?group_by=api_key", &tenant.admin_key).await;
    let groups = by_key["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{by_key}");
    let runs: Vec<i64> = groups.iter().map(|group| group["runs"].as_i64().unwrap()).collect();
    assert_eq!(runs.iter().sum::<i64>(), 4);
    assert!(runs.contains(&2), "two runs per key: {by_key}");
    let cost: rust_decimal::Decimal = by_key["total"]["cost_usd"].as_str().unwrap().parse().unwrap();
    assert!(cost > rust_decimal::Decimal::ZERO, "{by_key}");

    let by_user = app.get_json("/api/v1/usage?group_by=end_user", &tenant.admin_key).await;
    let keys: Vec<&str> =
        by_user["groups"].as_array().unwrap().iter().map(|group| group["group"].as_str().unwrap()).collect();
    assert_eq!(keys, ["", "cust-42"], "{by_user}");

    // The CSV has the JSON's groups and figures, line for line.
    let response =
        app.get("/api/v1/usage?group_by=api_key", &tenant.admin_key).header("accept", "text/csv").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "group",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "reasoning_tokens",
            "cost_usd",
            "unpriced_records",
            "runs"
        ]
    );
    let rows: Vec<Vec<String>> = lines.map(|line| line.split(',').map(str::to_owned).collect()).collect();
    assert_eq!(rows.len(), groups.len());
    for (row, group) in rows.iter().zip(groups) {
        for (column, value) in header.iter().zip(row) {
            let expected = match &group[*column] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            assert_eq!(value, &expected, "{column}");
        }
    }

    // Bad periods and groupings are refused.
    assert_error(app.get("/api/v1/usage?group_by=week", &tenant.admin_key).send().await.unwrap(), 400, "invalid_query")
        .await;
    let backwards = app.get("/api/v1/usage?from=2026-05-02&to=2026-05-01", &tenant.admin_key).send().await.unwrap();
    assert_error(backwards, 422, "invalid_request").await;
    let chat_key = app.get("/api/v1/usage", &crm_key).send().await.unwrap();
    assert_error(chat_key, 403, "forbidden").await;
}
