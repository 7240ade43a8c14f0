//! MCP elicitation, end to end: a booking server written with the MCP Python SDK v2
//! (tests/mcp-python2/booking_server.py) asks the person which room and how many nights in the middle of
//! a call (an `input_required` result, the 2026-07-28 revision). The run pauses like an approval, with
//! `tool_call.awaiting_input` and the question's schema; the answer, given after a restart of the
//! service, is checked against the schema, and the call is made again with it.

use mock_upstream::{Reply, ToolCall};
use serde_json::{Value, json};

use crate::helpers::{SseEvent, TestApp, TestTenant, assert_error, read_sse};
use crate::python_mcp::{PythonMcpServer, Sdk};
use crate::tools::tenant_with_connector;

async fn tenant_with_booking(app: &TestApp, url: &str) -> TestTenant {
    let connector = json!({ "name": "booking", "transport": "streamable_http", "url": url });
    let profile = json!({ "tool_allowlist": ["booking.*"] });
    tenant_with_connector(app, "acme", ("openai", "gpt-4o-mini"), connector, profile).await.0
}

fn named<'a>(events: &'a [SseEvent], name: &str) -> Vec<&'a SseEvent> {
    events.iter().filter(|event| event.event == name).collect()
}

/// A turn whose model books a room for Ada: it pauses for the server's question. Returns the pause's
/// events, the run's id and the call's id.
async fn paused_booking(app: &TestApp, tenant: &TestTenant, answer: &str) -> (Vec<SseEvent>, String, String) {
    let call = ToolCall { id: String::new(), name: "booking__book_room".into(), arguments: json!({ "guest": "Ada" }) };
    app.mock.push(Reply { tool_calls: vec![call], ..Reply::default() });
    app.mock.push(Reply { text: answer.into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Book a room for Ada").await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "run.awaiting_approval", "{events:#?}");
    let run_id = last.data["run_id"].as_str().unwrap().to_owned();
    let asked = named(&events, "tool_call.awaiting_input");
    assert_eq!(asked.len(), 1, "{events:#?}");
    let call_id = asked[0].data["tool_call_id"].as_str().unwrap().to_owned();
    (events, run_id, call_id)
}

async fn rest_of(app: &TestApp, key: &str, run_id: &str, after: &str) -> Vec<SseEvent> {
    let response =
        app.get(&format!("/api/v1/runs/{run_id}/events"), key).header("last-event-id", after).send().await.unwrap();
    read_sse(response).await
}

#[tokio::test]
async fn a_question_from_the_tool_pauses_the_run_and_the_answer_given_after_a_restart_completes_it() {
    let first = TestApp::spawn().await;
    let server = PythonMcpServer::start_with(Sdk::V2, "booking_server.py").await;
    let tenant = tenant_with_booking(&first, &server.url).await;
    let key = tenant.admin_key.as_str();
    let (events, run_id, call_id) = paused_booking(&first, &tenant, "Ada has a double room for 3 nights.").await;
    let asked = &named(&events, "tool_call.awaiting_input")[0].data;
    assert_eq!(asked["name"], "booking.book_room");
    assert_eq!(asked["message"], "Which room, and for how many nights, for Ada?");
    assert_eq!(asked["requested_schema"]["properties"]["room"]["enum"], json!(["single", "double"]), "{asked}");
    let run = first.get_json(&format!("/api/v1/runs/{run_id}"), key).await;
    assert_eq!(run["status"], "awaiting_approval");

    // The answer reaches a service restarted meanwhile: all it has is the database.
    let restarted = first.restarted().await;
    let app = &restarted;
    let input = |body: Value| app.post(&format!("/api/v1/tool-calls/{call_id}/input"), key, &body).send();
    // Answers that do not fit the question are refused, and the call still waits.
    for wrong in [
        json!({ "action": "accept", "content": { "room": "suite", "nights": 3 } }),
        json!({ "action": "accept", "content": { "room": "double" } }),
        json!({ "action": "accept", "content": { "room": "double", "nights": 30 } }),
        json!({ "action": "accept" }),
        json!({ "action": "maybe" }),
    ] {
        let status = input(wrong.clone()).await.unwrap().status();
        assert_eq!(status, 422, "{wrong}");
    }
    // Approving is not answering.
    let response = app.post(&format!("/api/v1/tool-calls/{call_id}/approve"), key, &json!({})).send().await.unwrap();
    assert_error(response, 409, "tool_call_decided").await;

    let response = input(json!({ "action": "accept", "content": { "room": "double", "nights": 3 } })).await.unwrap();
    assert_eq!(response.status(), 200);
    let answered: Value = response.json().await.unwrap();
    assert_eq!(answered["input_response"], json!({ "action": "accept", "content": { "room": "double", "nights": 3 } }));
    assert_eq!(answered["input_request"]["message"], "Which room, and for how many nights, for Ada?");
    assert!(answered["input_request"].get("request_state").is_none(), "{answered}");

    let rest = rest_of(app, key, &run_id, &events.last().unwrap().id).await;
    assert_eq!(rest.last().unwrap().event, "run.completed", "{rest:#?}");
    assert_eq!(named(&rest, "tool_call.completed").len(), 1, "{rest:#?}");
    assert_eq!(
        app.tool_results_sent(),
        [json!({ "booked": true, "guest": "Ada", "room": "double", "nights": 3 })],
        "the server got the answer"
    );
    let response = input(json!({ "action": "decline" })).await.unwrap();
    assert_error(response, 409, "tool_call_decided").await;
}

#[tokio::test]
async fn a_declined_question_lets_the_tool_go_on_without_the_input_and_other_tenants_cannot_answer() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start_with(Sdk::V2, "booking_server.py").await;
    let tenant = tenant_with_booking(&app, &server.url).await;
    let key = tenant.admin_key.as_str();
    let (events, run_id, call_id) = paused_booking(&app, &tenant, "Nothing was booked.").await;

    let other = app.create_tenant("globex").await;
    let response = app
        .post(&format!("/api/v1/tool-calls/{call_id}/input"), &other.admin_key, &json!({ "action": "decline" }))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "not_found").await;

    let response = app
        .post(&format!("/api/v1/tool-calls/{call_id}/input"), key, &json!({ "action": "decline" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rest = rest_of(&app, key, &run_id, &events.last().unwrap().id).await;
    assert_eq!(rest.last().unwrap().event, "run.completed", "{rest:#?}");
    assert_eq!(app.tool_results_sent(), [json!({ "booked": false, "guest": "Ada", "reason": "decline" })]);
}
