//! Workspaces of the IDE door: named sets of files, and the built-in tools an agent run uses on them
//! (list, read, search, propose a change). A run never writes a file: it records the change it proposes
//! (`run_patches`), for a person to apply.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use crate::auth::TenantContext;
use crate::db;
use crate::ids::{RunId, TenantId, WorkspaceId};
use crate::providers::ToolSpec;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such workspace")]
    NotFound,
    #[error("a workspace named `{0}` already exists")]
    NameTaken(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

const MAX_FILE_BYTES: usize = 1024 * 1024;

/// A file path inside a workspace: relative, `/`-separated, no `.` or `..` segments.
pub fn check_path(path: &str) -> Result<(), WorkspaceError> {
    let valid = (1..=500).contains(&path.len())
        && !path.starts_with('/')
        && !path.contains('\0')
        && !path.contains('\\')
        && path.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if valid {
        Ok(())
    } else {
        Err(WorkspaceError::Invalid("path must be a relative path without . or .. segments".into()))
    }
}

pub async fn create(pool: &PgPool, context: &TenantContext, name: &str) -> Result<Workspace, WorkspaceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(WorkspaceError::Invalid("name must be 1 to 200 characters".to_owned()));
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let created = sqlx::query_as(
        "INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, name) DO NOTHING \
         RETURNING id, name, created_at",
    )
    .bind(WorkspaceId::new())
    .bind(context.tenant_id())
    .bind(name)
    .fetch_optional(&mut *transaction)
    .await?
    .ok_or_else(|| WorkspaceError::NameTaken(name.to_owned()))?;
    transaction.commit().await?;
    Ok(created)
}

pub async fn list(pool: &PgPool, context: &TenantContext) -> Result<Vec<Workspace>, WorkspaceError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let workspaces = sqlx::query_as("SELECT id, name, created_at FROM workspaces ORDER BY name")
        .fetch_all(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(workspaces)
}

pub async fn exists(connection: &mut PgConnection, id: WorkspaceId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM workspaces WHERE id = $1)").bind(id).fetch_one(connection).await
}

/// Creates or replaces a file.
pub async fn put_file(
    pool: &PgPool,
    context: &TenantContext,
    id: WorkspaceId,
    path: &str,
    text: &str,
) -> Result<(), WorkspaceError> {
    check_path(path)?;
    if text.len() > MAX_FILE_BYTES {
        return Err(WorkspaceError::Invalid(format!("a file may hold at most {MAX_FILE_BYTES} bytes")));
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !exists(&mut transaction, id).await? {
        return Err(WorkspaceError::NotFound);
    }
    sqlx::query(
        "INSERT INTO workspace_files (tenant_id, workspace_id, path, content) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, workspace_id, path) DO UPDATE SET content = $4, updated_at = now()",
    )
    .bind(context.tenant_id())
    .bind(id)
    .bind(path)
    .bind(text)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// The changes a run proposed.
pub async fn patches(pool: &PgPool, context: &TenantContext, run_id: RunId) -> Result<Vec<Value>, WorkspaceError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let rows: Vec<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT path, summary, content, created_at FROM run_patches WHERE run_id = $1 ORDER BY created_at",
    )
    .bind(run_id)
    .fetch_all(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(path, summary, content, created_at)| json!({ "path": path, "summary": summary, "content": content, "created_at": created_at }))
        .collect())
}

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
                "Propose new content for a file (created if missing). The change is recorded for a person to review; it is not applied.",
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
            let files: Vec<(String, i32)> = sqlx::query_as(
                "SELECT path, octet_length(content) FROM workspace_files WHERE workspace_id = $1 ORDER BY path LIMIT 1000",
            )
            .bind(workspace_id)
            .fetch_all(&mut *connection)
            .await
            .map_err(database)?;
            Ok(
                json!({ "files": files.into_iter().map(|(path, bytes)| json!({ "path": path, "bytes": bytes })).collect::<Vec<_>>() }),
            )
        }
        "read_file" => {
            let path = text("path")?;
            let content: Option<String> =
                sqlx::query_scalar("SELECT content FROM workspace_files WHERE workspace_id = $1 AND path = $2")
                    .bind(workspace_id)
                    .bind(&path)
                    .fetch_optional(&mut *connection)
                    .await
                    .map_err(database)?;
            content.map(|content| json!({ "path": path, "content": content })).ok_or(format!("no file `{path}`"))
        }
        "search_files" => {
            let query = text("query")?;
            if query.trim().is_empty() {
                return Err("`query` must not be empty".to_owned());
            }
            let files: Vec<(String, String)> = sqlx::query_as(
                "SELECT path, content FROM workspace_files WHERE workspace_id = $1 AND strpos(lower(content), lower($2)) > 0 \
                 ORDER BY path LIMIT 200",
            )
            .bind(workspace_id)
            .bind(&query)
            .fetch_all(&mut *connection)
            .await
            .map_err(database)?;
            let needle = query.to_lowercase();
            let matches: Vec<Value> = files
                .iter()
                .flat_map(|(path, content)| {
                    let needle = needle.clone();
                    content.lines().enumerate().filter(move |(_, line)| line.to_lowercase().contains(&needle)).map(
                        move |(number, line)| json!({ "path": path, "line": number + 1, "text": line.chars().take(300).collect::<String>() }),
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
            sqlx::query("INSERT INTO run_patches (id, tenant_id, run_id, path, summary, content) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(uuid::Uuid::now_v7())
                .bind(tenant_id)
                .bind(run_id)
                .bind(&path)
                .bind(summary.chars().take(500).collect::<String>())
                .bind(&content)
                .execute(&mut *connection)
                .await
                .map_err(database)?;
            Ok(json!({ "recorded": true, "path": path }))
        }
        other => Err(format!("no workspace tool `{other}`")),
    }
}

/// Queues an agent run on a workspace; with an idempotency key, a retry returns the run the first
/// request queued.
pub async fn start_run(
    pool: &PgPool,
    engine: &crate::engine::Engine,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    instruction: String,
    idempotency_key: Option<&str>,
) -> Result<crate::runs::Run, StartRunError> {
    use crate::idempotency::{self, Claim};
    use sha2::Digest as _;
    const SCOPE: &str = "workspace_run";
    let Some(key) = idempotency_key else {
        return Ok(engine.enqueue_agent_run(context, workspace_id, instruction).await?);
    };
    let fingerprint = sha2::Sha256::digest(format!("{workspace_id}\n{instruction}").as_bytes()).to_vec();
    match idempotency::claim(pool, context, SCOPE, key, &fingerprint, std::time::Duration::from_secs(5)).await? {
        Claim::Replay { run_id, .. } => Ok(engine.run(context, run_id).await?),
        Claim::Mine => match engine.enqueue_agent_run(context, workspace_id, instruction).await {
            Ok(run) => {
                let session_id = run.session_id.expect("an agent run has its conversation");
                idempotency::record(pool, context, SCOPE, key, session_id, run.id).await?;
                Ok(run)
            }
            Err(error) => {
                idempotency::release(pool, context, SCOPE, key).await?;
                Err(error.into())
            }
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartRunError {
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Idempotency(#[from] crate::idempotency::IdempotencyError),
}
