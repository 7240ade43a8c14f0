//! Agent runs that edit a workspace, end to end against real PostgreSQL and the mock upstream scripting the
//! model's tool calls: search/replace edits and a new file end in a `pending_review` changeset whose diff
//! real `git apply --check` takes on the workspace's exported tar; an ambiguous edit is a tool error the
//! model corrects; applying writes every file, or (a file edited meanwhile) nothing with a 409; checks on an
//! MCP server written with the official Python SDK leave artifacts, and a check the policy denies leaves a
//! `denied` one.

use mock_upstream::{Fault, Reply, ToolCall};
use serde_json::{Value, json};

use crate::helpers::{SseEvent, TestApp, TestTenant, read_sse};
use crate::python_mcp::PythonMcpServer;

const APP: &str = "def greet():\n    return 'helo'\n\n\ndef main():\n    print(greet())\n";
const CONFIG: &str = "[cache]\nenabled = false\n\n[search]\nenabled = false\n";

fn call(name: &str, arguments: Value) -> ToolCall {
    ToolCall { id: String::new(), name: name.to_owned(), arguments }
}

async fn tenant_with_workspace(app: &TestApp, slug: &str) -> (TestTenant, String) {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    let workspace = app.create_workspace(&tenant.admin_key, "shop").await;
    (tenant, workspace)
}

async fn put_file(app: &TestApp, key: &str, workspace: &str, path: &str, content: &str) {
    let url = app.url(&format!("/api/v1/workspaces/{workspace}/files/{path}"));
    let response = app.client.put(url).bearer_auth(key).json(&json!({ "content": content })).send().await.unwrap();
    assert!(response.status().is_success(), "PUT {path}: {}", response.status());
}

async fn file(app: &TestApp, key: &str, workspace: &str, path: &str) -> Option<String> {
    let response = app.get(&format!("/api/v1/workspaces/{workspace}/files/{path}"), key).send().await.unwrap();
    if response.status() == 404 {
        return None;
    }
    assert_eq!(response.status(), 200);
    let file: Value = response.json().await.unwrap();
    Some(file["content"].as_str().unwrap().to_owned())
}

/// Starts an agent run and answers its events once it has ended.
async fn run_to_end(app: &TestApp, key: &str, workspace: &str, instruction: &str) -> (String, Vec<SseEvent>) {
    let path = format!("/api/v1/workspaces/{workspace}/runs");
    let response = app.post(&path, key, &json!({ "instruction": instruction })).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let run_id = body["run"]["id"].as_str().unwrap().to_owned();
    let events = read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), key).send().await.unwrap()).await;
    (run_id, events)
}

fn named<'a>(events: &'a [SseEvent], name: &str) -> Vec<&'a SseEvent> {
    events.iter().filter(|event| event.event == name).collect()
}

/// The run's changeset, found by its `changeset.pending_review` event, which comes before the terminal one.
fn submitted_changeset(events: &[SseEvent]) -> String {
    let names: Vec<&str> = events.iter().map(|event| event.event.as_str()).collect();
    let submitted =
        names.iter().position(|name| *name == "changeset.pending_review").expect("changeset.pending_review");
    assert_eq!(names.last(), Some(&"run.completed"), "{names:?}");
    assert!(submitted < names.len() - 1, "{names:?}");
    assert!(names[submitted..].iter().all(|name| *name != "changeset.patch"), "{names:?}");
    events[submitted].data["changeset_id"].as_str().unwrap().to_owned()
}

/// What the model was told of its calls, in its last request.
fn tool_results_sent(app: &TestApp) -> Vec<String> {
    let requests = app.mock.requests();
    let last = requests.iter().rev().find(|request| request.path.ends_with("/chat/completions")).unwrap();
    last.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["role"] == "tool")
        .map(|message| message["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `git apply --check` of `diff` in a directory where the workspace's exported tar was extracted.
async fn git_apply_check(app: &TestApp, key: &str, workspace: &str, diff: &str) {
    let response = app.get(&format!("/api/v1/workspaces/{workspace}/export"), key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let tar = response.bytes().await.unwrap();
    let directory = std::env::temp_dir().join(format!("switchboard-agent-edits-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&directory).unwrap();
    std::fs::write(directory.join("export.tar"), &tar).unwrap();
    std::fs::write(directory.join("change.diff"), diff).unwrap();
    let tree = directory.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let extracted = tokio::process::Command::new("tar")
        .arg("-xf")
        .arg(directory.join("export.tar"))
        .current_dir(&tree)
        .status()
        .await
        .unwrap();
    assert!(extracted.success(), "tar -xf");
    let checked = tokio::process::Command::new("git")
        .args(["apply", "--check", "--verbose"])
        .arg(directory.join("change.diff"))
        .current_dir(&tree)
        .output()
        .await
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    std::fs::remove_dir_all(&directory).unwrap();
    assert!(checked.status.success(), "git apply --check refused the changeset's diff:\n{said}\n{diff}");
}

#[tokio::test]
async fn an_agents_edits_become_a_changeset_that_git_applies_and_that_applies_whole_or_not_at_all() {
    let app = TestApp::spawn().await;
    app.engine.start_workers(1);
    let (tenant, workspace) = tenant_with_workspace(&app, "acme").await;
    let key = tenant.admin_key.as_str();
    put_file(&app, key, &workspace, "src/app.py", APP).await;
    put_file(&app, key, &workspace, "config.toml", CONFIG).await;

    app.mock.push(Reply {
        tool_calls: vec![call("workspace__read_file", json!({ "path": "config.toml" }))],
        ..Reply::default()
    });
    app.mock.push(Reply {
        tool_calls: vec![
            call(
                "workspace__edit_file",
                json!({ "path": "src/app.py", "search": "'helo'", "replace": "'hello'",
                "summary": "Fix the greeting" }),
            ),
            // Matches twice: a tool error, nothing recorded.
            call(
                "workspace__edit_file",
                json!({ "path": "config.toml", "search": "enabled = false",
                "replace": "enabled = true" }),
            ),
            call("workspace__write_file", json!({ "path": "NOTES.md", "content": "# Notes\n\nGreeting fixed.\n" })),
        ],
        ..Reply::default()
    });
    app.mock.push(Reply {
        tool_calls: vec![call(
            "workspace__edit_file",
            json!({ "path": "config.toml",
            "search": "[search]\nenabled = false", "replace": "[search]\nenabled = true" }),
        )],
        ..Reply::default()
    });
    // The run reads its own pending change.
    app.mock.push(Reply {
        tool_calls: vec![call("workspace__read_file", json!({ "path": "src/app.py" }))],
        ..Reply::default()
    });
    app.mock.push(Reply { text: "Fixed the greeting and turned search on.".into(), ..Reply::default() });

    let (run_id, events) = run_to_end(&app, key, &workspace, "Fix the greeting\nand turn search on").await;
    let changeset = submitted_changeset(&events);

    // The ambiguous edit was told to the model, with how many matches and where; the corrected one landed.
    let failed = named(&events, "tool_call.failed");
    assert_eq!(failed.len(), 1, "{events:#?}");
    let told = tool_results_sent(&app);
    assert!(told.iter().any(|result| result.contains("matches 2 times") && result.contains("lines 2, 5")), "{told:?}");
    assert!(told.iter().any(|result| result.contains("return 'hello'")), "the run reads its own changes: {told:?}");

    // Each proposed patch streamed with its diff as it happened.
    let patches = named(&events, "changeset.patch");
    let paths: Vec<&str> = patches.iter().map(|event| event.data["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["src/app.py", "NOTES.md", "config.toml"], "{events:#?}");
    assert!(patches.iter().all(|event| event.data["changeset_id"] == changeset.as_str()));
    assert!(patches[0].data["diff"].as_str().unwrap().contains("+    return 'hello'"), "{:?}", patches[0].data);
    assert_eq!(patches[1].data["operation"], "create");
    assert!(patches[2].data["diff"].as_str().unwrap().contains("-enabled = false\n+enabled = true"));

    // The changeset awaits review; its one diff is what git applies on the exported workspace.
    let detail = app.get_json(&format!("/api/v1/workspaces/{workspace}/changesets/{changeset}"), key).await;
    assert_eq!(detail["status"], "pending_review", "{detail}");
    assert_eq!(detail["run_id"], run_id.as_str());
    assert_eq!(detail["title"], "Fix the greeting");
    let response =
        app.get(&format!("/api/v1/workspaces/{workspace}/changesets/{changeset}.diff"), key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let diff = response.text().await.unwrap();
    git_apply_check(&app, key, &workspace, &diff).await;
    let proposed = app.get_json(&format!("/api/v1/runs/{run_id}/patches"), key).await;
    assert_eq!(proposed["patches"].as_array().unwrap().len(), 3, "{proposed}");

    // Nothing is written before it is applied; approved and applied, all three files are.
    assert_eq!(file(&app, key, &workspace, "src/app.py").await.as_deref(), Some(APP));
    assert_eq!(file(&app, key, &workspace, "NOTES.md").await, None);
    let base = format!("/api/v1/workspaces/{workspace}/changesets/{changeset}");
    let response = app.post(&format!("{base}/approve"), key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let response = app.post(&format!("{base}/apply"), key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(file(&app, key, &workspace, "src/app.py").await.unwrap(), APP.replace("'helo'", "'hello'"));
    assert_eq!(file(&app, key, &workspace, "NOTES.md").await.unwrap(), "# Notes\n\nGreeting fixed.\n");
    assert_eq!(
        file(&app, key, &workspace, "config.toml").await.unwrap(),
        "[cache]\nenabled = false\n\n[search]\nenabled = true\n"
    );

    // A second run's proposal, then a person edits the same line: applying it is a conflict, nothing written.
    app.mock.push(Reply {
        tool_calls: vec![
            call("workspace__edit_file", json!({ "path": "src/app.py", "search": "'hello'", "replace": "'Hello!'" })),
            call("workspace__write_file", json!({ "path": "CHANGELOG.md", "content": "- louder greeting\n" })),
        ],
        ..Reply::default()
    });
    app.mock.push(Reply { text: "Done.".into(), ..Reply::default() });
    let (_, events) = run_to_end(&app, key, &workspace, "Make the greeting louder").await;
    let second = submitted_changeset(&events);
    let edited = APP.replace("'helo'", "'Hi there'");
    put_file(&app, key, &workspace, "src/app.py", &edited).await;
    let base = format!("/api/v1/workspaces/{workspace}/changesets/{second}");
    let response = app.post(&format!("{base}/approve"), key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let response = app.post(&format!("{base}/apply"), key, &json!({})).send().await.unwrap();
    let refused = crate::helpers::assert_error(response, 409, "changeset_conflict").await;
    assert!(refused.to_string().contains("src/app.py"), "{refused}");
    assert_eq!(file(&app, key, &workspace, "src/app.py").await.unwrap(), edited);
    assert_eq!(file(&app, key, &workspace, "CHANGELOG.md").await, None);
}

#[tokio::test]
async fn a_run_that_fails_leaves_its_changes_for_review_announced_before_its_end() {
    let app = TestApp::spawn().await;
    app.engine.start_workers(1);
    let (tenant, workspace) = tenant_with_workspace(&app, "acme").await;
    let key = tenant.admin_key.as_str();
    app.mock.push(Reply {
        tool_calls: vec![call("workspace__write_file", json!({ "path": "draft.md", "content": "half done\n" }))],
        ..Reply::default()
    });
    app.mock.push(Reply { fault: Some(Fault::Status { status: 400, retry_after: None }), ..Reply::default() });
    let (_, events) = run_to_end(&app, key, &workspace, "Write a draft").await;
    let names: Vec<&str> = events.iter().map(|event| event.event.as_str()).collect();
    let submitted = names.iter().position(|name| *name == "changeset.pending_review").expect("pending_review");
    assert_eq!(names.last(), Some(&"run.failed"), "{names:?}");
    assert!(submitted < names.len() - 1, "{names:?}");
    let changeset = events[submitted].data["changeset_id"].as_str().unwrap();
    let detail = app.get_json(&format!("/api/v1/workspaces/{workspace}/changesets/{changeset}"), key).await;
    assert_eq!(detail["status"], "pending_review", "{detail}");
}

#[tokio::test]
async fn a_paused_run_cancelled_leaves_its_changes_for_review_announced_before_its_end() {
    let app = TestApp::spawn().await;
    app.engine.start_workers(1);
    let server = crate::mcp_server::McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_customer"] });
    let tenant = crate::tools::tenant_with_tools(&app, "acme", &server, profile).await;
    let key = tenant.admin_key.as_str();
    let workspace = app.create_workspace(key, "shop").await;
    app.mock.push(Reply {
        tool_calls: vec![call(
            "workspace__write_file",
            json!({ "path": "gone.md", "content": "customer 1 deleted\n" }),
        )],
        ..Reply::default()
    });
    app.mock.push(Reply { tool_calls: vec![call("crm__delete_customer", json!({ "id": 1 }))], ..Reply::default() });
    // Paused for the approval: the run is closed by the one who cancels it, not by its (finished) task.
    let (run_id, events) = run_to_end(&app, key, &workspace, "Delete customer 1").await;
    assert_eq!(events.last().unwrap().event, "run.awaiting_approval", "{events:#?}");
    assert!(named(&events, "changeset.pending_review").is_empty());
    let response = app.post(&format!("/api/v1/runs/{run_id}/cancel"), key, &json!({})).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let events = read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), key).send().await.unwrap()).await;
    let names: Vec<&str> = events.iter().map(|event| event.event.as_str()).collect();
    assert_eq!(names[names.len() - 2..], ["changeset.pending_review", "run.cancelled"], "{names:?}");
}

#[tokio::test]
async fn checks_on_a_python_mcp_server_leave_artifacts_and_a_denied_check_leaves_a_denied_one() {
    let app = TestApp::spawn().await;
    app.engine.start_workers(1);
    let server = PythonMcpServer::start("check_server.py").await;
    let (tenant, workspace) = tenant_with_workspace(&app, "acme").await;
    let key = tenant.admin_key.as_str();
    let response = app
        .post(
            "/api/v1/mcp-connectors",
            key,
            &json!({ "name": "ci", "transport": "streamable_http", "url": server.url }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let connector: Value = response.json().await.unwrap();
    assert_eq!(connector["status"], "active", "{connector}");
    // Only `no_todos` is allowed: `run_tests` is denied by the policy, as a model's call would be.
    let profile = json!({ "name": "default", "tool_allowlist": ["ci.no_todos"] });
    let response = app.post("/api/v1/policy-profiles", key, &profile).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let profile: Value = response.json().await.unwrap();
    app.configure(&tenant, json!({ "active_policy_profile_id": profile["id"] })).await;
    sqlx::query("UPDATE workspaces SET checks = $1 WHERE id = $2::uuid")
        .bind(vec!["ci.no_todos", "ci.run_tests"])
        .bind(&workspace)
        .execute(&app.owner_db)
        .await
        .unwrap();
    put_file(&app, key, &workspace, "src/lib.py", "def add(a, b):\n    return a + b\n").await;

    app.mock.push(Reply {
        tool_calls: vec![call(
            "workspace__write_file",
            json!({ "path": "src/todo.py", "content": "# TODO: subtract\n" }),
        )],
        ..Reply::default()
    });
    app.mock.push(Reply { tool_calls: vec![call("workspace__run_checks", json!({}))], ..Reply::default() });
    app.mock.push(Reply { text: "A check failed on the TODO.".into(), ..Reply::default() });
    let (run_id, events) = run_to_end(&app, key, &workspace, "Plan subtraction").await;
    let changeset = submitted_changeset(&events);

    // The model was told each check's outcome.
    let told = tool_results_sent(&app);
    let summary: Value = told
        .iter()
        .find_map(|result| serde_json::from_str::<Value>(result).ok().filter(|value| value.get("checks").is_some()))
        .unwrap_or_else(|| panic!("{told:?}"));
    assert_eq!(summary["passed"], false, "{summary}");
    assert_eq!(summary["checks"][0]["status"], "failed", "{summary}");
    assert!(summary["checks"][0]["stdout"].as_str().unwrap().contains("src/todo.py:1: TODO"), "{summary}");
    assert_eq!(summary["checks"][1]["status"], "denied", "{summary}");

    // The artifacts are the changeset's, readable by GET.
    let base = format!("/api/v1/workspaces/{workspace}/changesets/{changeset}");
    let listed = app.get_json(&format!("{base}/artifacts"), key).await;
    let artifacts = listed["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 2, "{listed}");
    let failed = artifacts.iter().find(|artifact| artifact["check_name"] == "ci.no_todos").unwrap();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["run_id"], run_id.as_str());
    let one = app.get_json(&format!("{base}/artifacts/{}", failed["id"].as_str().unwrap()), key).await;
    assert_eq!(one["content_type"], "application/json", "{one}");
    let report: Value = serde_json::from_str(one["report"].as_str().unwrap()).unwrap();
    assert_eq!(report["todos"][0]["path"], "src/todo.py", "{report}");
    assert_eq!(report["files_checked"], 2, "the workspace's file and the changeset's: {report}");
    assert_eq!(one["truncated"], false);
    let denied = artifacts.iter().find(|artifact| artifact["check_name"] == "ci.run_tests").unwrap();
    assert_eq!(denied["status"], "denied", "{denied}");
    assert!(!denied["stderr"].as_str().unwrap().is_empty(), "the policy's reason: {denied}");

    // An IDE runs them too, on the same changeset: two more artifacts, with no run.
    let response = app.post(&format!("{base}/checks"), key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let ran: Value = response.json().await.unwrap();
    let statuses: Vec<&str> =
        ran["artifacts"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "denied"], "{ran}");
    assert!(ran["artifacts"][0]["run_id"].is_null());
    let listed = app.get_json(&format!("{base}/artifacts"), key).await;
    assert_eq!(listed["artifacts"].as_array().unwrap().len(), 4);

    // Another tenant sees none of it.
    let other = app.create_tenant("other").await;
    let response = app.get(&format!("{base}/artifacts"), &other.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response = app.post(&format!("{base}/checks"), &other.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
