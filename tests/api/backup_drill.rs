//! The restore drill: the real binary under load, `switchboard backup` taken mid-load, `switchboard restore`
//! into a fresh data directory, and a service started there that has everything acknowledged before the
//! backup began (conversations, documents, keys, a sealed provider key that still opens, a pending
//! approval, an agent run) and searches as before. And the refusals: an existing backup path, a data
//! directory that is not empty, the wrong master key, a damaged dump, each leaving nothing half-done.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mock_upstream::{Fault, MockUpstream, Reply};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{read_sse, streamed_text};
use crate::mcp_server::McpTestServer;
use crate::service_process::{Service, call, create_tenant, fresh_data_dir, start_ready_with, wait_for};

const MASTER_KEY: &str = "drill-master-key-0123456789abcdef";
const TENANT_PROVIDER_KEY: &str = "tenant-sealed-openai-key";

/// The documents whose search results must survive, and a question aimed at each.
const DOCUMENTS: [(&str, &str, &str); 3] = [
    (
        "lighthouse.md",
        "# The lighthouse\n\nThe keeper logs the tides twice a day and trims the lamp's wick at dusk.",
        "when does the keeper log the tides",
    ),
    (
        "sourdough.md",
        "# Sourdough\n\nFeed the starter with equal weights of flour and water every morning; it doubles in six hours.",
        "how often is the sourdough starter fed",
    ),
    (
        "glaciers.md",
        "# Glaciers\n\nA glacier advances when winter snowfall exceeds summer melt; crevasses open where it bends.",
        "why do glaciers advance",
    ),
];

/// The service's settings: the key everyone shares, the mock and MCP server on loopback allowed, no shared
/// corpus (so a documentation edit meanwhile cannot change what search finds), a short shutdown grace.
fn settings(corpus_dir: &Path) -> Vec<(String, String)> {
    [
        ("SWITCHBOARD_MASTER_KEY", MASTER_KEY.to_owned()),
        ("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.1".to_owned()),
        ("SWITCHBOARD_CORPUS_DIR", corpus_dir.display().to_string()),
        ("SWITCHBOARD_SHUTDOWN_GRACE_SECS", "1".to_owned()),
        ("SWITCHBOARD_DEMO", "off".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

async fn start(data_dir: &Path, settings: &[(String, String)]) -> (Service, String) {
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    start_ready_with(data_dir, &pairs).await
}

/// Stops the service politely and waits for it.
async fn stop(mut service: Service) {
    service.stop().await;
}

/// `switchboard ARGS` with the data directory and master key given; its output.
async fn switchboard(args: &[&str], data_dir: &Path, master_key: &str) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_MASTER_KEY", master_key)
        .env("RUST_BACKTRACE", "0")
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD_PREVIOUS_MASTER_KEYS")
        .output()
        .await
        .expect("the switchboard binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A turn streamed to its end; its closing event's name and the whole text.
async fn turn(base: &str, key: &str, session: &str, content: &str) -> (String, Vec<crate::helpers::SseEvent>) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/sessions/{session}/messages"))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .json(&json!({ "content": content }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_sse(response).await;
    (events.last().expect("a closing event").event.clone(), events)
}

async fn new_session(base: &str, key: &str) -> String {
    call(base, Method::POST, "/api/v1/sessions", key, Some(json!({}))).await["id"].as_str().unwrap().to_owned()
}

async fn messages(base: &str, key: &str, session: &str) -> Value {
    call(base, Method::GET, &format!("/api/v1/sessions/{session}/messages"), key, None).await["messages"].clone()
}

async fn document_ids(base: &str, key: &str) -> BTreeSet<String> {
    let listed = call(base, Method::GET, "/api/v1/documents", key, None).await;
    listed["documents"].as_array().unwrap().iter().map(|document| document["id"].as_str().unwrap().to_owned()).collect()
}

/// The chunks a search returns, best first.
async fn search(base: &str, key: &str, query: &str) -> Vec<String> {
    let found = call(base, Method::POST, "/api/v1/search", key, Some(json!({ "query": query, "k": 5 }))).await;
    found["results"].as_array().unwrap().iter().map(|hit| hit["chunk_id"].as_str().unwrap().to_owned()).collect()
}

/// A tenant answering with OpenAI's model through its own (sealed) key, pointed at the mock, with a
/// connector whose deletions need approval.
async fn drill_tenant(base: &str, data_dir: &Path, mock: &MockUpstream, crm: &McpTestServer) -> String {
    let key = create_tenant(base, data_dir, "drill").await;
    let credential = json!({ "api_key": TENANT_PROVIDER_KEY, "base_url": mock.openai_base() });
    call(base, Method::PUT, "/api/v1/providers/openai", &key, Some(credential)).await;
    let config = json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" });
    call(base, Method::PATCH, "/api/v1/tenant/config", &key, Some(config)).await;
    let connector = json!({ "name": "crm", "transport": "streamable_http", "url": crm.url });
    call(base, Method::POST, "/api/v1/mcp-connectors", &key, Some(connector)).await;
    let profile = json!({ "name": "default", "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
    let profile = call(base, Method::POST, "/api/v1/policy-profiles", &key, Some(profile)).await;
    let active = json!({ "active_policy_profile_id": profile["id"] });
    call(base, Method::PATCH, "/api/v1/tenant/config", &key, Some(active)).await;
    key
}

/// What the first service acknowledged before the backup began.
#[derive(Debug, Default, Clone)]
struct Acknowledged {
    /// Session id → its messages as listed then.
    sessions: Vec<(String, Value)>,
    documents: BTreeSet<String>,
    /// Documents added by the load (another tenant's), each acknowledged with 201.
    load_documents: BTreeSet<String>,
    /// Sessions whose turn the load saw completed.
    load_sessions: Vec<String>,
}

/// Turns and documents, back to back, until told to stop; each acknowledged one is recorded as it is.
fn start_load(
    base: String,
    chat_key: String,
    load_key: String,
    acknowledged: Arc<Mutex<Acknowledged>>,
    stop: Arc<AtomicBool>,
) -> (tokio::task::JoinHandle<usize>, tokio::sync::oneshot::Receiver<()>) {
    let (first, first_done) = tokio::sync::oneshot::channel();
    let load = tokio::spawn(async move {
        let mut first = Some(first);
        let mut rounds = 0;
        while !stop.load(Ordering::Acquire) {
            let session = new_session(&base, &chat_key).await;
            let (closing, _) = turn(&base, &chat_key, &session, &format!("Load turn {rounds}")).await;
            assert_eq!(closing, "run.completed");
            acknowledged.lock().unwrap().load_sessions.push(session);
            let document = json!({
                "source_path": format!("load/{rounds}.md"),
                "content": format!("# Load {rounds}\n\nA page written while the backup ran, number {rounds}."),
            });
            let added = call(&base, Method::POST, "/api/v1/documents", &load_key, Some(document)).await;
            acknowledged.lock().unwrap().load_documents.insert(added["document"]["id"].as_str().unwrap().to_owned());
            rounds += 1;
            if let Some(first) = first.take() {
                let _ = first.send(());
            }
        }
        rounds
    });
    (load, first_done)
}

/// What the drill set up in the first service, before the load.
struct Drill {
    /// The drill tenant's admin key, and a second key with the `chat` scope only.
    key: String,
    chat_key: String,
    /// The load tenant's admin key: its documents do not move the drill tenant's search statistics.
    load_key: String,
    held_run: String,
    held_call: String,
    agent_run: String,
    acknowledged: Acknowledged,
    /// Each question's chunks, best first.
    searched: Vec<(&'static str, Vec<String>)>,
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_everything_acknowledged_before_it() {
    let mock = MockUpstream::start().await;
    let crm = McpTestServer::start().await;
    let source_dir = fresh_data_dir("backup-source");
    let settings = settings(&source_dir.join("no-corpus"));
    let (service, base) = start(&source_dir, &settings).await;
    let drill = arrange(&base, &source_dir, &mock, &crm).await;

    // The load runs; once it has acknowledged something, the backup starts.
    let shared = Arc::new(Mutex::new(Acknowledged::default()));
    let stop_load = Arc::new(AtomicBool::new(false));
    let (load, first_round) = start_load(
        base.clone(),
        drill.key.clone(),
        drill.load_key.clone(),
        Arc::clone(&shared),
        Arc::clone(&stop_load),
    );
    first_round.await.expect("the load acknowledges a first round");
    let during = shared.lock().unwrap().clone();
    let backup_dir = source_dir.parent().unwrap().join(format!("drill-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&backup_dir);
    let backup = switchboard(&["backup", backup_dir.to_str().unwrap()], &source_dir, MASTER_KEY).await;
    stop_load.store(true, Ordering::Release);
    let rounds = load.await.unwrap();
    assert!(backup.status.success(), "{}", stderr(&backup));
    assert!(String::from_utf8_lossy(&backup.stdout).contains("backup written to"), "{backup:?}");
    assert!(backup_dir.join("manifest.json").is_file() && backup_dir.join("switchboard.dump").is_file());
    assert!(rounds >= 1);
    stop(service).await;

    // A fresh data directory (sharing only the PostgreSQL install and the embedding model) restored.
    let restored_dir = fresh_data_dir("backup-restored");
    let restore = switchboard(&["restore", backup_dir.to_str().unwrap()], &restored_dir, MASTER_KEY).await;
    assert!(restore.status.success(), "{}", stderr(&restore));
    let (service, base) = start(&restored_dir, &settings).await;
    assert_restored(&base, &drill, &during).await;
    assert_runs_go_on(&base, &drill, &mock, &crm).await;
    stop(service).await;

    for dir in [&source_dir, &restored_dir, &backup_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A tenant with documents, completed turns, a turn held for approval and an agent run stalled in its
/// model call; what it acknowledged, and what its searches found.
async fn arrange(base: &str, data_dir: &Path, mock: &MockUpstream, crm: &McpTestServer) -> Drill {
    let key = drill_tenant(base, data_dir, mock, crm).await;
    let load_key = create_tenant(base, data_dir, "load").await;
    let chat_key = json!({ "name": "chat", "scopes": ["chat"] });
    let chat_key =
        call(base, Method::POST, "/api/v1/api-keys", &key, Some(chat_key)).await["key"].as_str().unwrap().to_owned();
    for (path, content, _) in DOCUMENTS {
        let document = json!({ "source_path": path, "content": content });
        call(base, Method::POST, "/api/v1/documents", &key, Some(document)).await;
    }
    let mut sessions = Vec::new();
    for question in ["What does the keeper log?", "When is the starter fed?"] {
        let session = new_session(base, &key).await;
        let (closing, events) = turn(base, &key, &session, question).await;
        assert_eq!(closing, "run.completed", "{events:#?}");
        assert!(!streamed_text(&events).is_empty());
        sessions.push(session);
    }
    // A turn held for approval: the model deletes a customer, which the policy holds.
    let delete = crate::tools::call("crm__delete_customer", json!({ "id": 7 }));
    mock.push(Reply { tool_calls: vec![delete], ..Reply::default() });
    let held_session = new_session(base, &key).await;
    let (closing, events) = turn(base, &key, &held_session, "Delete customer 7").await;
    assert_eq!(closing, "run.awaiting_approval", "{events:#?}");
    let held_run = events.last().unwrap().data["run_id"].as_str().unwrap().to_owned();
    let waiting = events.iter().find(|event| event.event == "tool_call.awaiting_approval").unwrap();
    let held_call = waiting.data["tool_call_id"].as_str().unwrap().to_owned();
    sessions.push(held_session);
    // An agent run under way: its model call stalls after a first piece.
    let workspace = call(base, Method::POST, "/api/v1/workspaces", &key, Some(json!({ "name": "shop" }))).await;
    let runs = format!("/api/v1/workspaces/{}/runs", workspace["id"].as_str().unwrap());
    mock.push(Reply { text: "Looking".into(), fault: Some(Fault::StallAfter(1)), ..Reply::default() });
    let requests_before = mock.requests().len();
    let started = call(base, Method::POST, &runs, &key, Some(json!({ "instruction": "Tidy the shop" }))).await;
    let agent_run = started["run"]["id"].as_str().unwrap().to_owned();
    wait_for("the agent run to call the model", async || mock.requests().len() > requests_before).await;
    let running = call(base, Method::GET, &format!("/api/v1/runs/{agent_run}"), &key, None).await;
    assert_eq!(running["status"], "running", "{running}");

    let mut acknowledged = Acknowledged::default();
    for session in &sessions {
        acknowledged.sessions.push((session.clone(), messages(base, &key, session).await));
    }
    acknowledged.documents = document_ids(base, &key).await;
    assert_eq!(acknowledged.documents.len(), DOCUMENTS.len());
    let mut searched = Vec::new();
    for (_, _, question) in DOCUMENTS {
        let found = search(base, &key, question).await;
        assert!(!found.is_empty(), "{question}");
        searched.push((question, found));
    }
    Drill { key, chat_key, load_key, held_run, held_call, agent_run, acknowledged, searched }
}

/// Everything acknowledged before the backup began is in the restored service, and search finds the same.
async fn assert_restored(base: &str, drill: &Drill, during: &Acknowledged) {
    let key = &drill.key;
    for (session, listed) in &drill.acknowledged.sessions {
        assert_eq!(&messages(base, key, session).await, listed, "session {session}");
    }
    assert_eq!(document_ids(base, key).await, drill.acknowledged.documents);
    for (question, found) in &drill.searched {
        assert_eq!(&search(base, &drill.chat_key, question).await, found, "{question}");
    }
    let restored_load_documents = document_ids(base, &drill.load_key).await;
    assert!(
        during.load_documents.is_subset(&restored_load_documents),
        "{:?} not all in {restored_load_documents:?}",
        during.load_documents
    );
    for session in &during.load_sessions {
        let listed = messages(base, key, session).await;
        assert_eq!(listed.as_array().unwrap().len(), 2, "{session}: {listed}");
    }
}

/// The runs go on: the agent run cut off by the backup's end is closed, the held call is still waiting
/// and its approval resumes the run, and turns answer through the tenant's sealed provider key, which
/// opens under the restored master key.
async fn assert_runs_go_on(base: &str, drill: &Drill, mock: &MockUpstream, crm: &McpTestServer) {
    let (key, held_run) = (&drill.key, &drill.held_run);
    let run = call(base, Method::GET, &format!("/api/v1/runs/{}", drill.agent_run), key, None).await;
    assert_eq!((&run["kind"], &run["status"]), (&json!("agent"), &json!("failed")), "{run}");
    let held = call(base, Method::GET, &format!("/api/v1/runs/{held_run}"), key, None).await;
    assert_eq!(held["status"], "awaiting_approval", "{held}");
    let approve = format!("/api/v1/tool-calls/{}/approve", drill.held_call);
    call(base, Method::POST, &approve, key, Some(json!({}))).await;
    wait_for("the approved run to finish", async || {
        let run = call(base, Method::GET, &format!("/api/v1/runs/{held_run}"), key, None).await;
        ["succeeded", "failed", "cancelled"].iter().any(|status| run["status"] == *status)
    })
    .await;
    let finished = call(base, Method::GET, &format!("/api/v1/runs/{held_run}"), key, None).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(crm.calls(), 1, "the approved deletion ran once");
    let provider = call(base, Method::GET, "/api/v1/providers/openai", key, None).await;
    assert_eq!(provider["base_url"], mock.openai_base().as_str(), "{provider}");
    let session = new_session(base, &drill.chat_key).await;
    let (closing, events) = turn(base, &drill.chat_key, &session, "Still there?").await;
    assert_eq!(closing, "run.completed", "{events:#?}");
    let last = mock.requests().into_iter().rev().find(|request| request.path.ends_with("/chat/completions")).unwrap();
    assert_eq!(last.api_key.as_deref(), Some(TENANT_PROVIDER_KEY));
}

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_backup_and_restore_input_is_refused_with_clear_errors_and_leaves_nothing_half_done() {
    let data_dir = fresh_data_dir("backup-refusals");
    let settings = settings(&data_dir.join("no-corpus"));
    let (service, base) = start(&data_dir, &settings).await;
    create_tenant(&base, &data_dir, "refusals").await;
    // A directory of this test's own: the drill beside it stages its backups in the shared one meanwhile.
    let parent = data_dir.parent().unwrap().join(format!("refusals-backups-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&parent);
    std::fs::create_dir_all(&parent).unwrap();
    let backup_dir = parent.join("backup");
    let made = switchboard(&["backup", backup_dir.to_str().unwrap()], &data_dir, MASTER_KEY).await;
    assert!(made.status.success(), "{}", stderr(&made));

    // A path that exists is never written over, nor is anything left beside it.
    let before = entries(&backup_dir);
    let again = switchboard(&["backup", backup_dir.to_str().unwrap()], &data_dir, MASTER_KEY).await;
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    assert_eq!(entries(&backup_dir), before);
    assert!(!entries(&parent).iter().any(|name| name.contains(".partial-")), "{:?}", entries(&parent));
    // A backup under a key that is not the database's is refused: it could never be restored.
    let other_path = parent.join("other");
    let wrong = switchboard(&["backup", other_path.to_str().unwrap()], &data_dir, "not-the-key").await;
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("not this database's"), "{}", stderr(&wrong));
    assert!(!other_path.exists());
    stop(service).await;

    let target = fresh_data_dir("backup-refusals-target");
    let untouched = entries(&target);
    let restore = |dir: PathBuf, key: &'static str, backup: PathBuf| async move {
        switchboard(&["restore", backup.to_str().unwrap()], &dir, key).await
    };
    // The wrong master key: refused by fingerprint before anything is touched.
    let wrong_key = restore(target.clone(), "another-master-key", backup_dir.clone()).await;
    assert!(!wrong_key.status.success());
    assert!(stderr(&wrong_key).contains("fingerprint"), "{}", stderr(&wrong_key));
    assert_eq!(entries(&target), untouched);
    // A data directory that holds something.
    std::fs::write(target.join("notes.txt"), "mine").unwrap();
    let not_empty = restore(target.clone(), MASTER_KEY, backup_dir.clone()).await;
    assert!(!not_empty.status.success());
    assert!(stderr(&not_empty).contains("not empty (notes.txt)"), "{}", stderr(&not_empty));
    std::fs::remove_file(target.join("notes.txt")).unwrap();
    assert_eq!(entries(&target), untouched);
    // A damaged dump.
    let damaged = parent.join("damaged");
    let _ = std::fs::remove_dir_all(&damaged);
    std::fs::create_dir(&damaged).unwrap();
    for name in ["manifest.json", "switchboard.dump"] {
        std::fs::copy(backup_dir.join(name), damaged.join(name)).unwrap();
    }
    let mut dump = std::fs::read(damaged.join("switchboard.dump")).unwrap();
    let middle = dump.len() / 2;
    dump[middle] ^= 0xff;
    std::fs::write(damaged.join("switchboard.dump"), dump).unwrap();
    let corrupted = restore(target.clone(), MASTER_KEY, damaged.clone()).await;
    assert!(!corrupted.status.success());
    assert!(stderr(&corrupted).contains("is damaged"), "{}", stderr(&corrupted));
    assert_eq!(entries(&target), untouched);
    assert!(!switchboard::db::embedded::Layout::for_data_dir(&target).unwrap().has_cluster());
    // The intact backup restores into the same directory, which the refusals left as they found it.
    let restored = restore(target.clone(), MASTER_KEY, backup_dir.clone()).await;
    assert!(restored.status.success(), "{}", stderr(&restored));

    for dir in [&data_dir, &target, &parent] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
