//! The shared documentation (`docs_corpus/`, which the assistant answers from) shows tokens as the service
//! really issues them, and documents the `/v1` routes the service serves (OpenAI's and Anthropic's).

use std::path::PathBuf;

use serde_json::json;

use crate::helpers::TestApp;

/// Every `.md` file of `docs_corpus/`, by name.
fn corpus() -> Vec<(String, String)> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs_corpus");
    let mut files: Vec<(String, String)> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "md"))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap()))
        .collect();
    files.sort();
    files
}

/// The token prefixes a text shows: `sb` and letters then `_`, at the start of a word (`sb_…`, `sbw_…`).
fn token_prefixes(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut previous = ' ';
    for (at, character) in text.char_indices() {
        if character == 's' && !(previous.is_alphanumeric() || previous == '_') && text[at..].starts_with("sb") {
            let letters: String = text[at + 2..].chars().take_while(char::is_ascii_lowercase).collect();
            if text[at + 2 + letters.len()..].starts_with('_') {
                found.push(format!("sb{letters}_"));
            }
        }
        previous = character;
    }
    found
}

/// What a token looks like up to its first `_`: `sb_` for `sb_ABC…_…`.
fn prefix_of(token: &str) -> String {
    let (prefix, _) = token.split_once('_').expect("a token with a prefix");
    format!("{prefix}_")
}

#[tokio::test]
async fn tokens_in_the_docs_look_like_the_ones_the_service_issues() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (_, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let widget = app
        .post("/api/v1/widget-tokens", &tenant.admin_key, &json!({ "external_user_id": "cust-42", "ttl_seconds": 60 }))
        .send()
        .await
        .unwrap();
    assert_eq!(widget.status(), 201);
    let widget: serde_json::Value = widget.json().await.unwrap();
    // The operator token is generated at first start (`config.rs`), never issued through the API: its
    // prefix is the one thing taken as written.
    let issued = [
        prefix_of(&tenant.admin_key),
        prefix_of(&chat_key),
        prefix_of(widget["token"].as_str().unwrap()),
        "sbo_".to_owned(),
    ];

    let mut wrong = Vec::new();
    for (name, text) in corpus() {
        for prefix in token_prefixes(&text) {
            if !issued.contains(&prefix) {
                wrong.push(format!("{name}: {prefix}…"));
            }
        }
    }
    assert!(wrong.is_empty(), "the service issues {issued:?}; the docs show {wrong:?}");
}

#[tokio::test]
async fn the_docs_name_every_route_of_the_openai_and_anthropic_doors() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let text: String = corpus().into_iter().map(|(_, text)| text).collect();
    for (method, path, served) in [
        ("POST", "/v1/chat/completions", "/v1/chat/completions"),
        ("GET", "/v1/models", "/v1/models"),
        ("GET", "/v1/models/{id}", "/v1/models/switchboard-assistant"),
        ("POST", "/v1/messages", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens", "/v1/messages/count_tokens"),
        ("POST", "/v1/embeddings", "/v1/embeddings"),
        ("POST", "/v1/responses", "/v1/responses"),
    ] {
        let request = app.client.request(method.parse().unwrap(), app.url(served)).bearer_auth(&tenant.admin_key);
        let status = request.json(&json!({})).send().await.unwrap().status();
        assert_ne!(status, 404, "{method} {path} is served");
        assert_ne!(status, 405, "{method} {path} is served");
        assert!(text.contains(&format!("{method} {path}")), "the docs mention `{method} {path}`");
    }
}
