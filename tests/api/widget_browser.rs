//! The chat widget in a real browser: Debian's headless Chromium, driven by Playwright (`playwright-core`,
//! pinned in `tests/widget-e2e`), loads the demo page `GET /` of a running service whose model is the
//! mock and whose tools (their prompts and questions too) are a real MCP server. Each scenario is a script in `tests/widget-e2e/scenarios.mjs`;
//! this side scripts the model and checks what was recorded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mock_upstream::Reply;
use serde_json::{Value, json};
use tokio::sync::{Mutex, OnceCell};

use crate::helpers::{TestApp, TestTenant};
use crate::mcp_server::McpTestServer;
use crate::python_mcp::{PythonMcpServer, Sdk};
use crate::tools::{call, tenant_with_connector, tenant_with_tools};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The document the answers cite.
const SOURCE_PATH: &str = "guides/widget-setup.md";

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/widget-e2e")
}

/// Screenshots land here for a person to look at; they are not committed.
fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/widget-screenshots")
}

/// Installs Debian's Chromium (with apt-get) and the pinned Playwright (with `npm ci`) unless they are there;
/// once per test binary.
async fn playwright_installed() {
    static INSTALL: OnceCell<()> = OnceCell::const_new();
    INSTALL
        .get_or_init(|| async {
            let why = format!("Debian's Chromium at {CHROMIUM}, for the widget's browser tests");
            crate::helpers::debian_package(|| Path::new(CHROMIUM).exists(), "chromium", &why).await;
            crate::helpers::npm_ci_unless(&package_dir(), &package_dir().join("node_modules/playwright-core")).await;
        })
        .await;
}

/// Runs one browser scenario against the app's demo page; panics with the script's report if it fails.
/// One browser at a time: the machine has two cores, and a starved browser only makes the tests slow.
async fn run_scenario(app: &TestApp, scenario: &str, expectations: &[(&str, &str)]) {
    static ONE_BROWSER: Mutex<()> = Mutex::const_new(());
    playwright_installed().await;
    let _turn = ONE_BROWSER.lock().await;
    std::fs::create_dir_all(screenshot_dir()).expect("screenshot folder");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(package_dir().join("scenarios.mjs"))
        .arg(scenario)
        .env("SWITCHBOARD_URL", format!("http://{}", app.address))
        .env("SCREENSHOT_DIR", screenshot_dir())
        .kill_on_drop(true);
    for (name, value) in expectations {
        command.env(name, value);
    }
    // The script bounds each of its own waits; this only keeps a wedged browser from hanging the suite.
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the browser scenario ended")
        .expect("node runs the scenario");
    let report = format!(
        "scenario {scenario}:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
}

/// The demo tenant (`GET /` embeds the widget for it), answering with the mock, with one document to cite
/// and a `crm` connector whose deletions need approval.
async fn demo_tenant(app: &TestApp, server: &McpTestServer) -> TestTenant {
    let profile = json!({ "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
    let tenant = tenant_with_tools(app, "demo", server, profile).await;
    let document = json!({
        "source_path": SOURCE_PATH,
        "title": "Setting up the widget",
        "content": "# Setting up the widget\n\nThe widget needs a widget token minted for the signed-in user. \
                    Embed the script tag with the token and the widget opens a chat panel.",
    });
    let response = app.post("/api/v1/documents", &tenant.admin_key, &document).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    tenant
}

/// The demo tenant with a `records` connector whose server offers the prompt
/// `summarize_customer(customer_id, tone = "neutral")`.
async fn demo_tenant_with_prompts(app: &TestApp, server: &PythonMcpServer) -> TestTenant {
    let connector = json!({ "name": "records", "transport": "streamable_http", "url": server.url });
    let profile = json!({ "prompt_allowlist": ["records.*"] });
    tenant_with_connector(app, "demo", ("openai", "gpt-4o-mini"), connector, profile).await.0
}

/// The demo tenant with a `booking` connector, allowed by its active policy profile, whose server asks which
/// room and how many nights before it books (MCP elicitation).
async fn demo_tenant_with_booking(app: &TestApp, server: &PythonMcpServer) -> TestTenant {
    let connector = json!({ "name": "booking", "transport": "streamable_http", "url": server.url });
    let profile = json!({ "tool_allowlist": ["booking.*"] });
    tenant_with_connector(app, "demo", ("openai", "gpt-4o-mini"), connector, profile).await.0
}

fn slow_reply(text: &str, per_piece: Duration) -> Reply {
    Reply { text: text.to_owned(), chunk_delay: per_piece, ..Reply::default() }
}

/// The assistant messages stored for the demo tenant's conversations, newest last.
async fn stored_answers(app: &TestApp, tenant: &TestTenant) -> Vec<String> {
    let sessions = app.get_json("/api/v1/sessions", &tenant.admin_key).await;
    let mut answers = Vec::new();
    for session in sessions["sessions"].as_array().unwrap() {
        let id = session["id"].as_str().unwrap();
        for message in app.messages(&tenant.admin_key, id).await {
            if message["role"] == "assistant" {
                answers.push(message["content"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    answers
}

fn words(count: usize, stem: &str) -> String {
    (1..=count).map(|i| format!("{stem}{i}")).collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn a_question_streams_its_answer_token_by_token_with_citations() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let tenant = demo_tenant(&app, &server).await;
    let answer = format!(
        "To set up the widget, mint a widget token for the user and embed the script [1]. {}",
        words(30, "detail")
    );
    app.mock.push(slow_reply(&answer, Duration::from_millis(50)));
    let question = "How do I set up the widget with a widget token?";
    let expectations = [("QUESTION", question), ("EXPECT_ANSWER", &answer), ("EXPECT_SOURCE", SOURCE_PATH)];
    run_scenario(&app, "stream", &expectations).await;
    assert_eq!(stored_answers(&app, &tenant).await, vec![answer]);
}

#[tokio::test]
async fn markup_in_an_answer_is_shown_as_text() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    demo_tenant(&app, &server).await;
    let answer = "Careful: <script>window.__pwned = 1</script> and <img src=x onerror=\"window.__pwned=2\"> \
                  and <a href=\"javascript:window.__pwned=3\">click</a> are just text here.";
    app.mock.push(slow_reply(answer, Duration::from_millis(5)));
    run_scenario(&app, "xss", &[("EXPECT_ANSWER", answer)]).await;
}

#[tokio::test]
async fn a_call_needing_approval_shows_the_buttons_and_approving_completes_the_answer() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let tenant = demo_tenant(&app, &server).await;
    app.mock.push(Reply { tool_calls: vec![call("crm__delete_customer", json!({ "id": 7 }))], ..Reply::default() });
    let answer = "Customer 7 is deleted, as you approved.";
    app.mock.push(slow_reply(answer, Duration::from_millis(20)));
    run_scenario(&app, "approval", &[("EXPECT_TOOL", "crm.delete_customer"), ("EXPECT_ANSWER", answer)]).await;
    assert_eq!(server.calls(), 1, "the approved call ran once");
    assert_eq!(stored_answers(&app, &tenant).await.last().map(String::as_str), Some(answer));
}

#[tokio::test]
async fn a_dropped_connection_resumes_without_lost_or_doubled_text() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let tenant = demo_tenant(&app, &server).await;
    let answer = words(60, "w");
    app.mock.push(slow_reply(&answer, Duration::from_millis(60)));
    run_scenario(&app, "resume", &[("EXPECT_ANSWER", &answer)]).await;
    assert_eq!(stored_answers(&app, &tenant).await, vec![answer]);
}

#[tokio::test]
async fn a_thumbs_down_in_the_widget_is_stored_as_feedback_on_the_answer() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let tenant = demo_tenant(&app, &server).await;
    let answer = "Embed the script tag with a widget token [1].";
    app.mock.push(slow_reply(answer, Duration::from_millis(5)));
    run_scenario(&app, "feedback", &[("EXPECT_ANSWER", answer)]).await;
    let export = app.get("/api/v1/feedback/export", &tenant.admin_key).send().await.unwrap().text().await.unwrap();
    let lines: Vec<Value> = export.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{export}");
    assert_eq!(
        (lines[0]["rating"].as_str(), lines[0]["answer"].as_str(), lines[0]["giver_type"].as_str()),
        (Some("down"), Some(answer), Some("user"))
    );
}

#[tokio::test]
async fn an_answer_regenerated_and_a_question_edited_in_the_widget_are_versions_to_switch_between() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let tenant = demo_tenant(&app, &server).await;
    let (first, regenerated, edited) =
        ("Embed the script tag.", "Add the script tag with a widget token.", "Mint a token for each user.");
    for answer in [first, regenerated, edited] {
        app.mock.push(slow_reply(answer, Duration::from_millis(5)));
    }
    let edited_question = "How do I mint a widget token?";
    let expectations = [
        ("EXPECT_ANSWER", first),
        ("EXPECT_REGENERATED", regenerated),
        ("EDITED_QUESTION", edited_question),
        ("EXPECT_EDITED_ANSWER", edited),
    ];
    run_scenario(&app, "branches", &expectations).await;

    // The model answered the edited question alone: the first branch is not its history.
    let chats: Vec<Value> = app
        .mock
        .requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/chat/completions"))
        .map(|request| request.body)
        .collect();
    assert_eq!(chats.len(), 3);
    let asked = |body: &Value| -> Vec<String> {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] != "system")
            .map(|m| m["content"].to_string())
            .collect()
    };
    assert_eq!(asked(&chats[1]), asked(&chats[0]), "regenerating gives the model the same history");
    assert_eq!(asked(&chats[2]), vec![json!(edited_question).to_string()]);
    // The conversation shows the branch the person switched back to: the first question, its latest answer.
    assert_eq!(stored_answers(&app, &tenant).await, vec![regenerated.to_owned()]);
}

#[tokio::test]
async fn a_prompt_picked_in_the_widget_is_filled_into_the_message_box_and_sent_by_the_person() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start("records_server.py").await;
    let tenant = demo_tenant_with_prompts(&app, &server).await;
    // `tone` is left empty in the form: the server's default fills it.
    let filled = "Summarize customer 42 in a neutral tone.";
    let answer = "Customer 42 is a steady account with two open orders.";
    app.mock.push(slow_reply(answer, Duration::from_millis(5)));
    let expectations = [
        ("PROMPT", "records.summarize_customer"),
        ("PROMPT_ARGUMENTS", r#"{"customer_id": "42"}"#),
        ("EXPECT_PROMPT_TEXT", filled),
        ("EXPECT_ANSWER", answer),
    ];
    run_scenario(&app, "prompts", &expectations).await;

    // The model was asked once, the filled-in prompt as the person's own message.
    let questions: Vec<Vec<String>> = app
        .mock
        .requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/chat/completions"))
        .map(|request| {
            request.body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["role"] == "user")
                .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(questions, vec![vec![filled.to_owned()]]);
    assert_eq!(stored_answers(&app, &tenant).await, vec![answer.to_owned()]);
}

#[tokio::test]
async fn a_question_from_a_tool_is_answered_in_a_form_in_the_widget_even_after_a_reload() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start_with(Sdk::V2, "booking_server.py").await;
    let tenant = demo_tenant_with_booking(&app, &server).await;
    let book = call("booking__book_room", json!({ "guest": "Ada" }));
    app.mock.push(Reply { tool_calls: vec![book], ..Reply::default() });
    let answer = "Ada has a double room for 3 nights.";
    app.mock.push(slow_reply(answer, Duration::from_millis(5)));
    let expectations = [
        ("EXPECT_QUESTION", "Which room, and for how many nights, for Ada?"),
        ("INPUT_ANSWER", r#"{"room": "double", "nights": "3"}"#),
        ("EXPECT_ANSWER", answer),
    ];
    run_scenario(&app, "input", &expectations).await;

    // The server got the typed answer (nights a number), and the model its result.
    assert_eq!(app.tool_results_sent(), [json!({ "booked": true, "guest": "Ada", "room": "double", "nights": 3 })]);
    assert_eq!(stored_answers(&app, &tenant).await, vec![answer.to_owned()]);
}
