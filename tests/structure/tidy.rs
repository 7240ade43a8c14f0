//! The tidy invariants of ARCHITECTURE.md, held for every file of `src/`.

use crate::source::read_sources;

#[test]
fn every_file_opens_with_a_line_saying_what_it_is_for() {
    let mut root = crate::source::repository();
    root.push("src/main.rs");
    let main = std::fs::read_to_string(root).expect("src/main.rs reads");
    let mut missing: Vec<String> = read_sources()
        .into_values()
        .filter(|source| !source.text.starts_with("//!"))
        .map(|source| source.path)
        .collect();
    if !main.starts_with("//!") {
        missing.push("src/main.rs".to_owned());
    }
    assert!(missing.is_empty(), "files without a `//!` line at the top: {missing:?}");
}

#[test]
fn only_http_knows_axum() {
    let outside: Vec<String> = read_sources()
        .into_values()
        .filter(|source| !source.path.starts_with("src/http/") && source.code.contains("axum"))
        .map(|source| source.path)
        .collect();
    assert!(outside.is_empty(), "axum used outside src/http: {outside:?}");
}

#[test]
fn background_work_goes_through_the_task_tracker() {
    let bare = ["tokio::spawn(", "tokio::task::spawn(", "task::spawn("];
    let offenders: Vec<String> = read_sources()
        .into_values()
        .filter(|source| source.path != "src/background.rs")
        .filter(|source| bare.iter().any(|spawn| source.code.contains(spawn)))
        .map(|source| source.path)
        .collect();
    assert!(
        offenders.is_empty(),
        "tasks spawned outside `background::Background` (shutdown would neither wait for nor stop them): {offenders:?}"
    );
}

#[test]
fn sql_stays_in_stores() {
    // A query outside a store hides which tables a domain touches; `store.rs` files (and the `db`
    // module, which owns connections and migrations) hold them.
    let offenders: Vec<String> = read_sources()
        .into_values()
        .filter(|source| !is_store(&source.path))
        .filter(|source| source.code.contains("sqlx::query"))
        .map(|source| source.path)
        .collect();
    let unexpected: Vec<&String> =
        offenders.iter().filter(|path| !SQL_OUTSIDE_STORES.iter().any(|(allowed, _)| allowed == path)).collect();
    assert!(unexpected.is_empty(), "SQL outside a store file: {unexpected:?}");
}

fn is_store(path: &str) -> bool {
    path.ends_with("/store.rs") || path.starts_with("src/db/")
}

/// Files whose SQL is their substance rather than storage, each with its reason.
const SQL_OUTSIDE_STORES: &[(&str, &str)] = &[
    (
        "src/retrieval/search.rs",
        "search's queries are the ranking itself (candidates chosen by the GIN index under score bounds), not storage",
    ),
    (
        "src/retrieval/vectors.rs",
        "pgvector's per-model partial HNSW indexes and nearest-neighbour scans are the module",
    ),
];

#[test]
fn every_route_is_in_the_openapi_document() {
    // Routes enter the table through `utoipa_axum::routes!`, which reads each handler's `#[utoipa::path]`:
    // a plain `.route(` would serve a path that `/openapi.json` never shows. The operator's metrics address
    // is its own router, and `/mcp` (rmcp's service) is described by hand in `openapi.rs`.
    const OWN_ROUTERS: [&str; 1] = ["src/http/metrics.rs"];
    let offenders: Vec<String> = read_sources()
        .into_values()
        .filter(|source| source.path.starts_with("src/http/") && !OWN_ROUTERS.contains(&source.path.as_str()))
        .filter(|source| [".route(", ".route_service(", ".nest_service("].iter().any(|call| source.code.contains(call)))
        .map(|source| source.path)
        .collect();
    assert!(offenders.is_empty(), "routes added outside `routes!`, missing from the OpenAPI document: {offenders:?}");
}
