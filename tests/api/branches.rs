//! Edit and regenerate (`POST /api/v1/messages/{id}/edit`, `/regenerate`): each makes a branch of the
//! conversation's tree of messages; a turn's history is its own branch (checked in what the mock model
//! received); the listing shows the active branch with each message's versions, and
//! `POST /api/v1/sessions/{id}/active-leaf` switches to another.

use mock_upstream::Reply;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error, read_sse};

/// A tenant whose model is the mock's OpenAI.
async fn mock_tenant(app: &TestApp, slug: &str) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    tenant
}

fn reply(text: &str) -> Reply {
    Reply { text: text.to_owned(), ..Reply::default() }
}

/// The conversation the model was last given, as `(role, content)`, without the system prompt.
fn last_history(app: &TestApp) -> Vec<(String, String)> {
    let request = app.mock.requests().into_iter().rev().find(|r| r.path.ends_with("/chat/completions")).unwrap();
    request.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["role"] != "system")
        .map(|message| (message["role"].as_str().unwrap().to_owned(), message["content"].as_str().unwrap().to_owned()))
        .collect()
}

fn turns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(role, content)| ((*role).to_owned(), (*content).to_owned())).collect()
}

/// Asks `question` (answered with `answer`) and checks the turn completed.
async fn ask(app: &TestApp, key: &str, session: &str, question: &str, answer: &str) {
    app.mock.push(reply(answer));
    let events = app.stream_turn(key, session, question).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
}

/// The active branch as `(role, content)`.
async fn shown(app: &TestApp, key: &str, session: &str) -> Vec<(String, String)> {
    app.messages(key, session)
        .await
        .iter()
        .map(|message| (message["role"].as_str().unwrap().to_owned(), message["content"].as_str().unwrap().to_owned()))
        .collect()
}

fn regenerate(app: &TestApp, key: &str, message: &Value) -> reqwest::RequestBuilder {
    app.post(&format!("/api/v1/messages/{}/regenerate", message["id"].as_str().unwrap()), key, &json!({}))
}

fn edit(app: &TestApp, key: &str, message: &Value, content: &str) -> reqwest::RequestBuilder {
    app.post(&format!("/api/v1/messages/{}/edit", message["id"].as_str().unwrap()), key, &json!({ "content": content }))
}

fn choose(app: &TestApp, key: &str, session: &str, message: &Value) -> reqwest::RequestBuilder {
    app.post(&format!("/api/v1/sessions/{session}/active-leaf"), key, &json!({ "message_id": message["id"] }))
}

/// A conversation of two answered questions: its id and its messages (q1, a1, q2, a2).
async fn two_turns(app: &TestApp, key: &str) -> (String, Vec<Value>) {
    let session = app.create_session(key).await;
    ask(app, key, &session, "What is a hive?", "A home for bees.").await;
    ask(app, key, &session, "Who lives in it?", "One queen and her workers.").await;
    let messages = app.messages(key, &session).await;
    assert_eq!(messages.len(), 4);
    (session, messages)
}

async fn widget_token(app: &TestApp, tenant: &TestTenant, user: &str) -> String {
    let body = json!({ "external_user_id": user, "ttl_seconds": 600 });
    let response = app.post("/api/v1/widget-tokens", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_linear_conversation_is_one_branch_of_single_versions() {
    let app = TestApp::spawn().await;
    let tenant = mock_tenant(&app, "linear").await;
    let (_, messages) = two_turns(&app, &tenant.admin_key).await;
    assert_eq!(messages[0]["parent_message_id"], Value::Null);
    for pair in messages.windows(2) {
        assert_eq!(pair[1]["parent_message_id"], pair[0]["id"], "{messages:#?}");
    }
    for message in &messages {
        assert_eq!(message["siblings"], json!({ "index": 1, "count": 1 }), "{message}");
    }
    assert_eq!(
        last_history(&app),
        turns(&[("user", "What is a hive?"), ("assistant", "A home for bees."), ("user", "Who lives in it?"),])
    );
}

#[tokio::test]
async fn regenerating_an_answer_makes_a_sibling_answered_from_the_same_history() {
    let app = TestApp::spawn().await;
    let tenant = mock_tenant(&app, "regen").await;
    let key = &tenant.admin_key;
    let (session, messages) = two_turns(&app, key).await;
    let first_history = last_history(&app);

    // Streamed, like a posted message.
    app.mock.push(reply("A queen, workers and drones."));
    let response = regenerate(&app, key, &messages[3]).header("accept", "text/event-stream").send().await.unwrap();
    let events = read_sse(response).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    assert_eq!(last_history(&app), first_history, "the model is given the same history again");

    let listed = app.messages(key, &session).await;
    assert_eq!(listed.len(), 4, "{listed:#?}");
    assert_eq!(listed[2]["id"], messages[2]["id"], "the question is the same message");
    assert_eq!(listed[3]["content"], "A queen, workers and drones.");
    assert_eq!(listed[3]["parent_message_id"], messages[2]["id"]);
    assert_eq!(listed[3]["siblings"], json!({ "index": 2, "count": 2 }));
    assert_eq!(listed[2]["siblings"], json!({ "index": 1, "count": 1 }));

    // As JSON: the answer, and the question it answers again.
    app.mock.push(reply("Bees."));
    let response = regenerate(&app, key, &listed[3]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_message"]["id"], messages[2]["id"]);
    assert_eq!(body["message"]["content"], "Bees.");
    assert_eq!(body["message"]["parent_message_id"], messages[2]["id"]);
    assert_eq!(last_history(&app), first_history);
    let listed = app.get_json(&format!("/api/v1/sessions/{session}/messages?include=siblings"), key).await;
    let last = &listed["messages"][3];
    assert_eq!(last["siblings"]["index"], 3);
    assert_eq!(last["siblings"]["count"], 3);
    assert_eq!(last["siblings"]["ids"][0], messages[3]["id"], "the first answer is the first version");
    assert_eq!(last["siblings"]["ids"][2], body["message"]["id"]);

    // The next question follows the answer shown.
    ask(&app, key, &session, "And the drones?", "They mate.").await;
    assert_eq!(
        last_history(&app),
        turns(&[
            ("user", "What is a hive?"),
            ("assistant", "A home for bees."),
            ("user", "Who lives in it?"),
            ("assistant", "Bees."),
            ("user", "And the drones?"),
        ])
    );
}

#[tokio::test]
async fn editing_a_question_makes_a_branch_whose_history_leaves_out_the_old_one() {
    let app = TestApp::spawn().await;
    let tenant = mock_tenant(&app, "edits").await;
    let key = &tenant.admin_key;
    let (session, messages) = two_turns(&app, key).await;

    app.mock.push(reply("Sixty thousand bees."));
    let response = edit(&app, key, &messages[2], "How many bees live in it?").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_message"]["content"], "How many bees live in it?");
    assert_eq!(body["user_message"]["parent_message_id"], messages[1]["id"], "a sibling of the edited question");
    assert_eq!(
        last_history(&app),
        turns(
            &[("user", "What is a hive?"), ("assistant", "A home for bees."), ("user", "How many bees live in it?"),]
        )
    );
    assert_eq!(
        shown(&app, key, &session).await,
        turns(&[
            ("user", "What is a hive?"),
            ("assistant", "A home for bees."),
            ("user", "How many bees live in it?"),
            ("assistant", "Sixty thousand bees."),
        ])
    );
    let listed = app.messages(key, &session).await;
    assert_eq!(listed[2]["siblings"], json!({ "index": 2, "count": 2 }));
    assert_eq!(listed[3]["siblings"], json!({ "index": 1, "count": 1 }));

    // The first question edited, streamed: a history of one message.
    app.mock.push(reply("A wasp nest is paper."));
    let response = edit(&app, key, &messages[0], "What is a wasp nest?")
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let events = read_sse(response).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    assert_eq!(last_history(&app), turns(&[("user", "What is a wasp nest?")]));
    let listed = app.messages(key, &session).await;
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert_eq!(listed[0]["parent_message_id"], Value::Null);
    assert_eq!(listed[0]["siblings"], json!({ "index": 2, "count": 2 }));

    // A follow-up continues the edited branch only.
    ask(&app, key, &session, "Is it strong?", "Quite.").await;
    assert_eq!(
        last_history(&app),
        turns(&[("user", "What is a wasp nest?"), ("assistant", "A wasp nest is paper."), ("user", "Is it strong?"),])
    );
}

#[tokio::test]
async fn choosing_a_version_switches_the_branch_and_the_next_turn_follows_it() {
    let app = TestApp::spawn().await;
    let tenant = mock_tenant(&app, "switches").await;
    let key = &tenant.admin_key;
    let (session, messages) = two_turns(&app, key).await;
    app.mock.push(reply("Sixty thousand bees."));
    assert_eq!(edit(&app, key, &messages[2], "How many bees?").send().await.unwrap().status(), 200);

    // Back to the first version of the second question: its branch, down to its answer.
    let response = choose(&app, key, &session, &messages[2]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let branch: Value = response.json().await.unwrap();
    let branch = branch["messages"].as_array().unwrap();
    let ids: Vec<&Value> = branch.iter().map(|message| &message["id"]).collect();
    assert_eq!(ids, messages.iter().map(|message| &message["id"]).collect::<Vec<_>>());
    assert_eq!(branch[2]["siblings"]["index"], 1);
    assert_eq!(branch[2]["siblings"]["count"], 2);
    assert_eq!(branch[2]["siblings"]["ids"][0], messages[2]["id"]);
    let edited_id = branch[2]["siblings"]["ids"][1].clone();
    assert_eq!(
        shown(&app, key, &session).await,
        turns(&[
            ("user", "What is a hive?"),
            ("assistant", "A home for bees."),
            ("user", "Who lives in it?"),
            ("assistant", "One queen and her workers."),
        ])
    );
    let plain = app.messages(key, &session).await;
    assert!(plain[2]["siblings"].get("ids").is_none(), "ids only on request: {}", plain[2]);

    ask(&app, key, &session, "And drones?", "Some.").await;
    assert_eq!(
        last_history(&app),
        turns(&[
            ("user", "What is a hive?"),
            ("assistant", "A home for bees."),
            ("user", "Who lives in it?"),
            ("assistant", "One queen and her workers."),
            ("user", "And drones?"),
        ])
    );

    // And to the edited version again: its branch, down to its most recent message.
    let response = choose(&app, key, &session, &json!({ "id": edited_id })).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        shown(&app, key, &session).await,
        turns(&[
            ("user", "What is a hive?"),
            ("assistant", "A home for bees."),
            ("user", "How many bees?"),
            ("assistant", "Sixty thousand bees."),
        ])
    );

    // A message of another conversation is not one of this one's.
    let (_, others) = two_turns(&app, key).await;
    assert_error(choose(&app, key, &session, &others[0]).send().await.unwrap(), 404, "not_found").await;
    let unknown = json!({ "id": uuid::Uuid::now_v7() });
    assert_error(choose(&app, key, &session, &unknown).send().await.unwrap(), 404, "not_found").await;
}

#[tokio::test]
async fn only_a_user_message_is_edited_and_only_an_answer_regenerated() {
    let app = TestApp::spawn().await;
    let tenant = mock_tenant(&app, "refusals").await;
    let key = &tenant.admin_key;
    let (session, messages) = two_turns(&app, key).await;
    let requests = app.mock.requests().len();
    assert_error(regenerate(&app, key, &messages[2]).send().await.unwrap(), 422, "not_an_answer").await;
    assert_error(edit(&app, key, &messages[3], "Changed").send().await.unwrap(), 422, "not_a_user_message").await;
    assert_error(edit(&app, key, &messages[2], "  ").send().await.unwrap(), 422, "invalid_request").await;
    let unknown = json!({ "id": uuid::Uuid::now_v7() });
    assert_error(regenerate(&app, key, &unknown).send().await.unwrap(), 404, "not_found").await;
    assert_eq!(app.mock.requests().len(), requests, "no model was called");
    assert_eq!(app.messages(key, &session).await.len(), 4, "nothing was recorded");
}

#[tokio::test]
async fn a_widget_user_branches_only_their_own_conversation_and_another_tenant_sees_none() {
    let app = TestApp::spawn().await;
    let tenant = mock_tenant(&app, "owners").await;
    let alice = widget_token(&app, &tenant, "alice").await;
    let bob = widget_token(&app, &tenant, "bob").await;
    let (session, messages) = two_turns(&app, &alice).await;

    let other = mock_tenant(&app, "strangers").await;
    for token in [&bob, &other.admin_key] {
        assert_error(regenerate(&app, token, &messages[3]).send().await.unwrap(), 404, "not_found").await;
        assert_error(edit(&app, token, &messages[2], "Mine now").send().await.unwrap(), 404, "not_found").await;
        assert_error(choose(&app, token, &session, &messages[2]).send().await.unwrap(), 404, "not_found").await;
        let response = app.get(&format!("/api/v1/sessions/{session}/messages"), token).send().await.unwrap();
        assert_error(response, 404, "not_found").await;
    }
    assert_eq!(app.messages(&alice, &session).await.len(), 4, "nothing changed");

    // Alice herself may.
    app.mock.push(reply("Bees, in short."));
    assert_eq!(regenerate(&app, &alice, &messages[3]).send().await.unwrap().status(), 200);
    app.mock.push(reply("Paper."));
    assert_eq!(edit(&app, &alice, &messages[0], "What is a nest?").send().await.unwrap().status(), 200);
    assert_eq!(choose(&app, &alice, &session, &messages[3]).send().await.unwrap().status(), 200);
    assert_eq!(shown(&app, &alice, &session).await[3].1, "One queen and her workers.");
}
