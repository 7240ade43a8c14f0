//! The built-in tools of an agent run (list, read, search, propose a change): their specs as the model
//! sees them, and running one on the run's workspace. An error is told to the model, not raised.

use serde_json::{Value, json};
use sqlx::PgConnection;

use super::{MAX_FILE_BYTES, check_path, store};
use crate::ids::{RunId, TenantId, WorkspaceId};
use crate::providers::ToolSpec;

/// The built-in tools of an agent run, as the model sees them (qualified `workspace.<name>`).
pub fn tool_specs() -> Vec<(&'static str, ToolSpec)> {
    let spec = |name: &str, description: &str, parameters: Value| ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    };
    vec![
        (
            "list_files",
            spec(
                "list_files",
                "List the workspace's files with their sizes.",
                json!({ "type": "object", "properties": {} }),
            ),
        ),
        (
            "read_file",
            spec(
                "read_file",
                "Read one file of the workspace.",
                json!({ "type": "object", "properties": { "path": { "type": "string" } }, "required": ["path"] }),
            ),
        ),
        (
            "search_files",
            spec(
                "search_files",
                "Find the lines of the workspace's files that contain a text (case-insensitive).",
                json!({ "type": "object", "properties": { "query": { "type": "string" } }, "required": ["query"] }),
            ),
        ),
        (
            "propose_change",
            spec(
                "propose_change",
                "Propose new content for a file (created if missing). The change is recorded for a person to review; \
                 it is not applied.",
                json!({ "type": "object", "properties": {
                    "path": { "type": "string" }, "content": { "type": "string" }, "summary": { "type": "string" } },
                    "required": ["path", "content", "summary"] }),
            ),
        ),
    ]
}

/// Runs a built-in tool for an agent run; an error is told to the model.
pub async fn run_tool(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    run_id: RunId,
    workspace_id: WorkspaceId,
    tool: &str,
    arguments: &Value,
) -> Result<Value, String> {
    let text = |field: &str| arguments[field].as_str().map(str::to_owned).ok_or(format!("`{field}` is required"));
    let database = |error: sqlx::Error| {
        tracing::error!(%error, "a workspace tool failed");
        "the workspace could not be read".to_owned()
    };
    match tool {
        "list_files" => {
            let files = store::file_sizes(connection, workspace_id).await.map_err(database)?;
            let files: Vec<Value> =
                files.into_iter().map(|(path, bytes)| json!({ "path": path, "bytes": bytes })).collect();
            Ok(json!({ "files": files }))
        }
        "read_file" => {
            let path = text("path")?;
            let content = store::file_content(connection, workspace_id, &path).await.map_err(database)?;
            content.map(|content| json!({ "path": path, "content": content })).ok_or(format!("no file `{path}`"))
        }
        "search_files" => {
            let query = text("query")?;
            if query.trim().is_empty() {
                return Err("`query` must not be empty".to_owned());
            }
            let files = store::files_containing(connection, workspace_id, &query).await.map_err(database)?;
            let needle = query.to_lowercase();
            let matches: Vec<Value> = files
                .iter()
                .flat_map(|(path, content)| {
                    let needle = needle.clone();
                    content.lines().enumerate().filter(move |(_, line)| line.to_lowercase().contains(&needle)).map(
                        move |(number, line)| {
                            let excerpt: String = line.chars().take(300).collect();
                            json!({ "path": path, "line": number + 1, "text": excerpt })
                        },
                    )
                })
                .take(100)
                .collect();
            Ok(json!({ "matches": matches }))
        }
        "propose_change" => {
            let (path, content, summary) = (text("path")?, text("content")?, text("summary")?);
            check_path(&path).map_err(|error| error.to_string())?;
            if content.len() > MAX_FILE_BYTES {
                return Err(format!("a file may hold at most {MAX_FILE_BYTES} bytes"));
            }
            let summary: String = summary.chars().take(500).collect();
            store::insert_patch(connection, tenant_id, run_id, &path, &summary, &content).await.map_err(database)?;
            Ok(json!({ "recorded": true, "path": path }))
        }
        other => Err(format!("no workspace tool `{other}`")),
    }
}
