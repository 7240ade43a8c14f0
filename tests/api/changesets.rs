//! Changesets of the IDE door: opened with patches against known versions, shown as one unified diff that
//! real `git apply` accepts, reviewed whole or patch by patch, applied in one transaction (a file that
//! moved on is a conflict naming it, or a clean three-way merge), over a state machine with no other
//! transition; audited; another tenant's are not found.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error};

async fn setup(app: &TestApp, slug: &str) -> (TestTenant, String) {
    let tenant = app.create_tenant(slug).await;
    let workspace = app.create_workspace(&tenant.admin_key, "shop").await;
    (tenant, workspace)
}

/// Writes a file; returns its version (the `ETag`, unquoted).
async fn put_file(app: &TestApp, key: &str, workspace: &str, path: &str, content: &str) -> String {
    let url = app.url(&format!("/api/v1/workspaces/{workspace}/files/{path}"));
    let response = app.client.put(url).bearer_auth(key).json(&json!({ "content": content })).send().await.unwrap();
    assert_eq!(response.status(), 204);
    response.headers()["etag"].to_str().unwrap().trim_matches('"').to_owned()
}

/// A file's content, `None` when there is none.
async fn read_file(app: &TestApp, key: &str, workspace: &str, path: &str) -> Option<String> {
    let response = app.get(&format!("/api/v1/workspaces/{workspace}/files/{path}"), key).send().await.unwrap();
    if response.status() == 404 {
        return None;
    }
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    Some(body["content"].as_str().unwrap().to_owned())
}

fn changesets(workspace: &str) -> String {
    format!("/api/v1/workspaces/{workspace}/changesets")
}

async fn open(app: &TestApp, key: &str, workspace: &str, body: &Value) -> Value {
    let response = app.post(&changesets(workspace), key, body).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn act(
    app: &TestApp,
    key: &str,
    workspace: &str,
    id: &str,
    action: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let url = app.url(&format!("{}/{id}/{action}", changesets(workspace)));
    let request = app.client.post(url).bearer_auth(key);
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    request.send().await.unwrap()
}

async fn act_ok(app: &TestApp, key: &str, workspace: &str, id: &str, action: &str, body: Option<&Value>) -> Value {
    let response = act(app, key, workspace, id, action, body).await;
    assert_eq!(response.status(), 200, "{action}: {}", response.text().await.unwrap());
    response.json().await.unwrap()
}

fn git(folder: &Path, args: &[&str], input: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(folder)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("git");
    child.stdin.take().unwrap().write_all(input.unwrap_or_default().as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn an_ide_changeset_is_one_git_diff_reviewed_and_applied_in_one_transaction() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = setup(&app, "acme").await;
    let key = &tenant.admin_key;
    let files = [
        ("src/main.rs", "fn main() {\n    println!(\"helo\");\n}\n"),
        ("src/lib.rs", "pub fn one() -> u32 {\n    1\n}\n\npub fn two() -> u32 {\n    3\n}\n"),
        ("old.txt", "to be deleted\n"),
        ("docs/readme.md", "# Shop\n\nA shop.\n"),
    ];
    let mut hashes = std::collections::HashMap::new();
    for (path, content) in files {
        hashes.insert(path, put_file(&app, key, &workspace, path, content).await);
    }
    let lib_diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -5,3 +5,3 @@\n pub fn two() -> u32 {\n-    3\n+    2\n }\n";
    let body = json!({
        "title": "Fix the greeting and two()",
        "submit": true,
        "patches": [
            { "path": "src/main.rs", "operation": "modify", "base_hash": hashes["src/main.rs"],
              "content": "fn main() {\n    println!(\"hello\");\n}\n" },
            { "path": "src/lib.rs", "operation": "modify", "base_hash": hashes["src/lib.rs"], "diff": lib_diff },
            { "path": "new.txt", "operation": "create", "content": "brand new\n" },
            { "path": "old.txt", "operation": "delete", "base_hash": hashes["old.txt"] },
            { "path": "docs/readme.md", "operation": "rename", "base_hash": hashes["docs/readme.md"],
              "new_path": "docs/README.md", "content": "# Shop\n\nA fine shop.\n" },
        ],
    });
    let opened = open(&app, key, &workspace, &body).await;
    assert_eq!(opened["status"], "pending_review");
    assert!(opened["run_id"].is_null());
    assert!(opened["created_by"].as_str().unwrap().starts_with("api_key:"), "{opened}");
    let patches = opened["patches"].as_array().unwrap();
    let operations: Vec<&str> = patches.iter().map(|patch| patch["operation"].as_str().unwrap()).collect();
    assert_eq!(operations, ["modify", "modify", "create", "delete", "rename"]);
    assert!(patches[0]["diff"].as_str().unwrap().contains("+    println!(\"hello\");"), "{}", patches[0]);
    assert_eq!(patches[1]["base_hash"], hashes["src/lib.rs"].as_str());
    assert!(opened["artifacts"].as_array().unwrap().is_empty());
    let id = opened["id"].as_str().unwrap();

    // One unified diff, by suffix or by `Accept`, that real git applies to the workspace's files.
    let response = app.get(&format!("{}/{id}.diff", changesets(&workspace)), key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/x-diff"));
    let diff = response.text().await.unwrap();
    let accepted = app
        .get(&format!("{}/{id}", changesets(&workspace)), key)
        .header("accept", "text/x-diff")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(accepted, diff);
    let folder = std::env::temp_dir().join(format!("switchboard-changeset-{}", uuid::Uuid::new_v4()));
    for (path, content) in files {
        std::fs::create_dir_all(folder.join(path).parent().unwrap()).unwrap();
        std::fs::write(folder.join(path), content).unwrap();
    }
    let check = git(&folder, &["apply", "--check", "-"], Some(&diff));
    assert!(check.status.success(), "git apply --check: {}\n{diff}", String::from_utf8_lossy(&check.stderr));
    let applied_by_git = git(&folder, &["apply", "-"], Some(&diff));
    assert!(applied_by_git.status.success(), "{}", String::from_utf8_lossy(&applied_by_git.stderr));

    // Not applied before it is approved.
    assert_error(act(&app, key, &workspace, id, "apply", None).await, 409, "invalid_transition").await;
    let approved = act_ok(&app, key, &workspace, id, "approve", Some(&json!({ "comment": "Looks right" }))).await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["review_comment"], "Looks right");
    assert!(approved["reviewed_by"].as_str().unwrap().starts_with("api_key:"));
    let applied = act_ok(&app, key, &workspace, id, "apply", None).await;
    assert_eq!(applied["changeset"]["status"], "applied");
    assert!(applied["changeset"]["applied_at"].is_string());
    assert_eq!(applied["written"], json!(["src/main.rs", "src/lib.rs", "new.txt", "old.txt", "docs/README.md"]));
    assert_eq!(applied["merged"], json!([]));

    // The service's files are git's.
    for path in ["src/main.rs", "src/lib.rs", "new.txt", "docs/README.md"] {
        let expected = std::fs::read_to_string(folder.join(path)).unwrap();
        assert_eq!(read_file(&app, key, &workspace, path).await.as_deref(), Some(expected.as_str()), "{path}");
    }
    for gone in ["old.txt", "docs/readme.md"] {
        assert_eq!(read_file(&app, key, &workspace, gone).await, None, "{gone}");
    }
    std::fs::remove_dir_all(&folder).unwrap();

    // Once applied, it is over.
    let again = assert_error(act(&app, key, &workspace, id, "apply", None).await, 409, "invalid_transition").await;
    let message = again["error"]["message"].as_str().unwrap();
    assert!(message.contains("applied") && message.contains("applied"), "{message}");
    let listed = app.get_json(&format!("{}?status=applied", changesets(&workspace)), key).await;
    assert_eq!(listed["changesets"][0]["id"], id);

    // The audit trail has every move, with paths and never contents.
    let trail: Vec<(String, Value)> = sqlx::query_as(
        "SELECT action, details FROM audit_events WHERE target_type = 'changeset' AND target_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    let actions: Vec<&str> = trail.iter().map(|(action, _)| action.as_str()).collect();
    assert_eq!(actions, ["changeset.created", "changeset.submitted", "changeset.approved", "changeset.applied"]);
    let trail_text = serde_json::to_string(&trail).unwrap();
    assert!(!trail_text.contains("hello") && trail_text.contains("docs/README.md"), "{trail_text}");
}

#[tokio::test]
async fn a_file_changed_since_the_patch_is_a_conflict_unless_the_edits_merge() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = setup(&app, "acme").await;
    let key = &tenant.admin_key;
    let text = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n";
    let conflicting = put_file(&app, key, &workspace, "conflict.txt", text).await;
    let merging = put_file(&app, key, &workspace, "merge.txt", text).await;
    let edit_line_two = text.replace("two", "TWO");
    let first = open(
        &app,
        key,
        &workspace,
        &json!({ "title": "overlapping", "submit": true, "patches": [
            { "path": "conflict.txt", "operation": "modify", "base_hash": conflicting, "content": edit_line_two },
            { "path": "created.txt", "operation": "create", "content": "new\n" },
        ]}),
    )
    .await;
    let second = open(
        &app,
        key,
        &workspace,
        &json!({ "title": "apart", "submit": true, "patches": [
            { "path": "merge.txt", "operation": "modify", "base_hash": merging, "content": edit_line_two },
        ]}),
    )
    .await;
    let (first, second) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    for id in [first, second] {
        act_ok(&app, key, &workspace, id, "approve", Some(&json!({}))).await;
    }
    // People edit both files after the changesets were made: one on the same line, one far from it.
    let now_conflicting = put_file(&app, key, &workspace, "conflict.txt", &text.replace("two", "deux")).await;
    put_file(&app, key, &workspace, "merge.txt", &text.replace("eight", "EIGHT")).await;

    let refused = assert_error(act(&app, key, &workspace, first, "apply", None).await, 409, "changeset_conflict").await;
    assert_eq!(
        refused["error"]["details"]["conflicts"],
        json!([{ "path": "conflict.txt", "base_hash": conflicting, "current_hash": now_conflicting }])
    );
    assert!(refused["error"]["message"].as_str().unwrap().contains("conflict.txt"));
    // Nothing written: not the file created alongside, not the conflicting one; still approved.
    assert_eq!(read_file(&app, key, &workspace, "created.txt").await, None);
    assert_eq!(read_file(&app, key, &workspace, "conflict.txt").await.unwrap(), text.replace("two", "deux"));
    let detail = app.get_json(&format!("{}/{first}", changesets(&workspace)), key).await;
    assert_eq!(detail["status"], "approved");

    let merged = act_ok(&app, key, &workspace, second, "apply", None).await;
    assert_eq!(merged["merged"], json!(["merge.txt"]));
    assert_eq!(
        read_file(&app, key, &workspace, "merge.txt").await.unwrap(),
        "one\nTWO\nthree\nfour\nfive\nsix\nseven\nEIGHT\n"
    );
}

#[tokio::test]
async fn a_changeset_with_a_stale_or_invalid_patch_is_refused_whole() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = setup(&app, "acme").await;
    let key = &tenant.admin_key;
    let conflicting = put_file(&app, key, &workspace, "conflict.txt", "one\ntwo\n").await;
    let now_conflicting = put_file(&app, key, &workspace, "conflict.txt", "one\ndeux\n").await;
    put_file(&app, key, &workspace, "merge.txt", "merge\n").await;
    // Opening a changeset against a version that is not the file's: 409 naming it, nothing stored.
    let before = app.get_json(&changesets(&workspace), key).await["changesets"].as_array().unwrap().len();
    let stale = app
        .post(
            &changesets(&workspace),
            key,
            &json!({ "title": "stale", "patches": [
                { "path": "new-one.txt", "operation": "create", "content": "x" },
                { "path": "conflict.txt", "operation": "modify", "base_hash": conflicting, "content": "x" },
            ]}),
        )
        .send()
        .await
        .unwrap();
    let stale = assert_error(stale, 409, "changeset_conflict").await;
    assert_eq!(stale["error"]["details"]["conflicts"][0]["path"], "conflict.txt");
    // A diff that does not apply to its base, and a create over an existing file.
    let bad_diff = "--- a/conflict.txt\n+++ b/conflict.txt\n@@ -1,2 +1,2 @@\n one\n-zwei\n+2\n";
    let response = app
        .post(
            &changesets(&workspace),
            key,
            &json!({ "title": "bad", "patches": [
                { "path": "conflict.txt", "operation": "modify", "base_hash": now_conflicting, "diff": bad_diff },
            ]}),
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 422, "invalid_diff").await;
    let response = app
        .post(
            &changesets(&workspace),
            key,
            &json!({ "title": "exists", "patches": [{ "path": "merge.txt", "operation": "create", "content": "x" }]}),
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "changeset_conflict").await;
    let response = app
        .post(
            &changesets(&workspace),
            key,
            &json!({ "title": "outside", "patches": [{ "path": "../etc/passwd", "operation": "create", "content": "x" }]}),
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 422, "invalid_request").await;
    // Patches that change nothing make no changeset.
    let merged_text = read_file(&app, key, &workspace, "merge.txt").await.unwrap();
    let noop = json!({ "title": "noop", "patches": [{ "path": "merge.txt", "operation": "modify",
        "base_hash": switchboard::workspaces::content_hash(&merged_text), "content": merged_text }]});
    let response = app.post(&changesets(&workspace), key, &noop).send().await.unwrap();
    assert_error(response, 422, "invalid_request").await;
    let after = app.get_json(&changesets(&workspace), key).await["changesets"].as_array().unwrap().len();
    assert_eq!(after, before, "a refused changeset was stored");
    assert_eq!(read_file(&app, key, &workspace, "new-one.txt").await, None);
}

/// The actions of the API and the status each leads to.
const ACTIONS: [(&str, &str); 5] = [
    ("submit", "pending_review"),
    ("approve", "approved"),
    ("reject", "rejected"),
    ("apply", "applied"),
    ("supersede", "superseded"),
];

/// The path of actions from a new draft to each status.
fn path_to(status: &str) -> &'static [&'static str] {
    match status {
        "draft" => &[],
        "pending_review" => &["submit"],
        "approved" => &["submit", "approve"],
        "rejected" => &["reject"],
        "applied" => &["submit", "approve", "apply"],
        "superseded" => &["supersede"],
        other => panic!("{other}"),
    }
}

fn body_of(action: &str) -> Option<Value> {
    matches!(action, "approve" | "reject" | "supersede").then(|| json!({}))
}

#[tokio::test]
async fn the_state_machine_allows_its_transitions_and_no_other() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = setup(&app, "acme").await;
    let key = &tenant.admin_key;
    let allowed = [
        ("draft", "submit"),
        ("draft", "reject"),
        ("draft", "supersede"),
        ("pending_review", "approve"),
        ("pending_review", "reject"),
        ("pending_review", "supersede"),
        ("approved", "reject"),
        ("approved", "apply"),
        ("approved", "supersede"),
    ];
    let mut file = 0;
    for from in ["draft", "pending_review", "approved", "rejected", "applied", "superseded"] {
        for (action, to) in ACTIONS {
            file += 1;
            let opened = open(
                &app,
                key,
                &workspace,
                &json!({ "title": format!("{from} then {action}"), "patches": [
                    { "path": format!("f{file}.txt"), "operation": "create", "content": "x\n" },
                ]}),
            )
            .await;
            let id = opened["id"].as_str().unwrap();
            for step in path_to(from) {
                act_ok(&app, key, &workspace, id, step, body_of(step).as_ref()).await;
            }
            let response = act(&app, key, &workspace, id, action, body_of(action).as_ref()).await;
            if allowed.contains(&(from, action)) {
                assert_eq!(response.status(), 200, "{from} → {action}");
                let body: Value = response.json().await.unwrap();
                let status = if action == "apply" { &body["changeset"]["status"] } else { &body["status"] };
                assert_eq!(status, to, "{from} → {action}");
            } else {
                let error = assert_error(response, 409, "invalid_transition").await;
                let message = error["error"]["message"].as_str().unwrap();
                assert!(message.contains(from) && message.contains(to), "{from} → {action}: {message}");
                let detail = app.get_json(&format!("{}/{id}", changesets(&workspace)), key).await;
                assert_eq!(detail["status"], from, "a refused transition moved it");
            }
        }
    }
    // More patches go only into a draft.
    let opened = open(
        &app,
        key,
        &workspace,
        &json!({ "title": "t", "submit": true, "patches": [
            { "path": "g.txt", "operation": "create", "content": "x" },
        ]}),
    )
    .await;
    let more = json!({ "patches": [{ "path": "h.txt", "operation": "create", "content": "y" }] });
    let id = opened["id"].as_str().unwrap();
    assert_error(act(&app, key, &workspace, id, "patches", Some(&more)).await, 409, "invalid_transition").await;
    // `supersedes` replaces an open one in the same request.
    let replacing = open(
        &app,
        key,
        &workspace,
        &json!({ "title": "t2", "supersedes": id, "patches": [
            { "path": "g.txt", "operation": "create", "content": "x2" },
        ]}),
    )
    .await;
    assert_eq!(replacing["status"], "draft");
    let replaced = app.get_json(&format!("{}/{id}", changesets(&workspace)), key).await;
    assert_eq!(replaced["status"], "superseded");
    let stacked = act_ok(&app, key, &workspace, replacing["id"].as_str().unwrap(), "patches", Some(&more)).await;
    assert_eq!(stacked["patches"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn patches_are_reviewed_one_by_one_and_rejected_ones_are_left_out() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = setup(&app, "acme").await;
    let key = &tenant.admin_key;
    let create = |path: &str| json!({ "path": path, "operation": "create", "content": format!("{path}\n") });
    let opened = open(
        &app,
        key,
        &workspace,
        &json!({ "title": "three", "patches": [create("a.txt"), create("b.txt"), create("c.txt")] }),
    )
    .await;
    let id = opened["id"].as_str().unwrap();
    let approve_a = json!({ "paths": ["a.txt"], "comment": "fine" });
    // Single patches are decided only while it awaits review.
    assert_error(act(&app, key, &workspace, id, "approve", Some(&approve_a)).await, 409, "invalid_transition").await;
    act_ok(&app, key, &workspace, id, "submit", None).await;
    let unknown = json!({ "paths": ["nope.txt"] });
    assert_error(act(&app, key, &workspace, id, "approve", Some(&unknown)).await, 422, "invalid_request").await;

    let after_a = act_ok(&app, key, &workspace, id, "approve", Some(&approve_a)).await;
    assert_eq!(after_a["status"], "pending_review");
    let after_b =
        act_ok(&app, key, &workspace, id, "reject", Some(&json!({ "paths": ["b.txt"], "comment": "no" }))).await;
    assert_eq!(after_b["status"], "pending_review");
    let after_c = act_ok(&app, key, &workspace, id, "approve", Some(&json!({ "paths": ["c.txt"] }))).await;
    assert_eq!(after_c["status"], "approved", "every patch decided, some approved");
    let detail = app.get_json(&format!("{}/{id}", changesets(&workspace)), key).await;
    let reviews: Vec<(&str, &str)> = detail["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|patch| (patch["path"].as_str().unwrap(), patch["review"].as_str().unwrap()))
        .collect();
    assert_eq!(reviews, [("a.txt", "approved"), ("b.txt", "rejected"), ("c.txt", "approved")]);
    assert_eq!(detail["patches"][1]["review_comment"], "no");
    let diff =
        app.get(&format!("{}/{id}.diff", changesets(&workspace)), key).send().await.unwrap().text().await.unwrap();
    assert!(diff.contains("a.txt") && !diff.contains("b.txt"), "{diff}");

    let applied = act_ok(&app, key, &workspace, id, "apply", None).await;
    assert_eq!(applied["written"], json!(["a.txt", "c.txt"]));
    assert_eq!(applied["skipped"], json!(["b.txt"]));
    assert_eq!(read_file(&app, key, &workspace, "b.txt").await, None);
    assert_eq!(read_file(&app, key, &workspace, "c.txt").await.as_deref(), Some("c.txt\n"));

    // Every patch rejected one by one: the changeset is rejected.
    let opened = open(
        &app,
        key,
        &workspace,
        &json!({ "title": "two", "submit": true, "patches": [create("d.txt"), create("e.txt")] }),
    )
    .await;
    let id = opened["id"].as_str().unwrap();
    let rejected = act_ok(&app, key, &workspace, id, "reject", Some(&json!({ "paths": ["d.txt", "e.txt"] }))).await;
    assert_eq!(rejected["status"], "rejected");
}

#[tokio::test]
async fn another_tenants_or_workspaces_changeset_is_not_found() {
    let app = TestApp::spawn().await;
    let (acme, workspace) = setup(&app, "acme").await;
    let (globex, globex_workspace) = setup(&app, "globex").await;
    let other_workspace = app.create_workspace(&acme.admin_key, "other").await;
    let opened = open(
        &app,
        &acme.admin_key,
        &workspace,
        &json!({ "title": "mine", "submit": true, "patches": [
            { "path": "a.txt", "operation": "create", "content": "a" },
        ]}),
    )
    .await;
    let id = opened["id"].as_str().unwrap();
    for (key, in_workspace) in
        [(&globex.admin_key, &workspace), (&globex.admin_key, &globex_workspace), (&acme.admin_key, &other_workspace)]
    {
        let response = app.get(&format!("{}/{id}", changesets(in_workspace)), key).send().await.unwrap();
        assert_error(response, 404, "changeset_not_found").await;
        let response = app.get(&format!("{}/{id}.diff", changesets(in_workspace)), key).send().await.unwrap();
        assert_error(response, 404, "changeset_not_found").await;
        for action in ["approve", "reject", "supersede"] {
            let response = act(&app, key, in_workspace, id, action, Some(&json!({}))).await;
            assert_error(response, 404, "changeset_not_found").await;
        }
        assert_error(act(&app, key, in_workspace, id, "submit", None).await, 404, "changeset_not_found").await;
    }
    let response = app.get(&changesets(&workspace), &globex.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    let detail = app.get_json(&format!("{}/{id}", changesets(&workspace)), &acme.admin_key).await;
    assert_eq!(detail["status"], "pending_review");
    let response = app.get(&format!("{}/not-an-id", changesets(&workspace)), &acme.admin_key).send().await.unwrap();
    assert_error(response, 404, "changeset_not_found").await;
}

#[tokio::test]
async fn a_review_of_an_ended_runs_changeset_is_appended_to_the_runs_events() {
    use switchboard::ids::{RunId, TenantId, WorkspaceId};
    use switchboard::workspaces::changesets::{self, Status, stack::Change, store};

    let app = TestApp::spawn().await;
    app.engine.start_workers(1);
    let (tenant, workspace) = setup(&app, "acme").await;
    let key = &tenant.admin_key;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    app.mock.push(mock_upstream::Reply { text: "Nothing to change.".into(), ..mock_upstream::Reply::default() });
    let response = app.post(&format!("/api/v1/workspaces/{workspace}/runs"), key, &json!({ "instruction": "Look" }));
    let run: Value = response.send().await.unwrap().json().await.unwrap();
    let run_id = run["run"]["id"].as_str().unwrap().to_owned();
    let events =
        crate::helpers::read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), key).send().await.unwrap()).await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");

    // The run's changeset, as its tools leave it when the run ends: pending review.
    let tenant_id = TenantId(tenant.id);
    let mut transaction = switchboard::db::begin_tenant(&app.app_db, tenant_id).await.unwrap();
    let run_uuid: uuid::Uuid = run_id.parse().unwrap();
    let workspace_id = WorkspaceId(workspace.parse().unwrap());
    let changeset =
        store::insert(&mut transaction, tenant_id, workspace_id, Some(RunId(run_uuid)), "Look", "agent run")
            .await
            .unwrap();
    let change = Change::Write { path: "notes.txt".to_owned(), content: "noted\n".to_owned() };
    changesets::record(&mut transaction, tenant_id, changeset.id, change, "a note").await.unwrap();
    store::set_status(&mut transaction, changeset.id, Status::PendingReview, None).await.unwrap();
    transaction.commit().await.unwrap();
    let id = changeset.id.to_string();

    let last_before: i64 = sqlx::query_scalar("SELECT max(seq) FROM run_events WHERE run_id = $1")
        .bind(run_uuid)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    // Its review goes on its run's stream, after the run's end.
    act_ok(&app, key, &workspace, &id, "approve", Some(&json!({ "comment": "good" }))).await;
    act_ok(&app, key, &workspace, &id, "apply", None).await;
    let appended: Vec<(i64, String, Value)> =
        sqlx::query_as("SELECT seq, event_type, data FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq")
            .bind(run_uuid)
            .bind(last_before)
            .fetch_all(&app.owner_db)
            .await
            .unwrap();
    let kinds: Vec<(i64, &str)> = appended.iter().map(|(seq, kind, _)| (*seq, kind.as_str())).collect();
    assert_eq!(kinds, [(last_before + 1, "changeset.approved"), (last_before + 2, "changeset.applied")]);
    assert_eq!(appended[0].2["changeset_id"], id.as_str());
    assert_eq!(appended[0].2["comment"], "good");
    assert_eq!(appended[1].2["paths"], json!(["notes.txt"]));
    assert_eq!(read_file(&app, key, &workspace, "notes.txt").await.as_deref(), Some("noted\n"));
}
