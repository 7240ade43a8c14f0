//! The built-in tools of an agent run: list, read (by line range when a file is large), search, and the
//! edits (write, search/replace, delete, rename) that go into the run's one changeset for a person to
//! review. Every read sees the run's own pending changes, so edits stack. An error is told to the model,
//! not raised, and nothing of a refused edit is recorded. `run_checks` is offered here but run by the
//! engine (it calls the tenant's MCP tools).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use super::changesets::stack::Change;
use super::changesets::{self, Changeset, ChangesetError, Operation, Patch};
use super::{MAX_FILE_BYTES, check_path, store};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{RunId, TenantId, WorkspaceId};
use crate::providers::ToolSpec;
use crate::runs::events::EventKind;

/// A file larger than this (in lines or bytes) is read in parts: the model's context is not a disk.
pub const READ_MAX_LINES: usize = 2_000;
pub const READ_MAX_BYTES: usize = 64 * 1024;
/// The most files `list_files` answers.
const LIST_MAX_FILES: usize = 1_000;
/// The most lines `search_files` answers, and the characters kept of each.
const SEARCH_MAX_MATCHES: usize = 100;
const SEARCH_LINE_CHARS: usize = 300;
/// The title of a run's changeset: the first line of its instruction, this long at most.
const TITLE_CHARS: usize = 500;
const SUMMARY_CHARS: usize = 500;

/// The tool the engine runs itself: the workspace's checks on the run's changeset.
pub const RUN_CHECKS: &str = "run_checks";

/// The built-in tools of an agent run, as the model sees them (qualified `workspace.<name>`);
/// `run_checks` only when the workspace has checks.
pub fn tool_specs(has_checks: bool) -> Vec<(&'static str, ToolSpec)> {
    let spec = |name: &str, description: &str, parameters: Value| ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    };
    let summary = json!({ "type": "string", "description": "One line saying why, for the reviewer." });
    let mut specs = vec![
        (
            "list_files",
            spec(
                "list_files",
                "List the workspace's files (with the changes you made so far) and their sizes.",
                json!({ "type": "object", "properties": {
                    "prefix": { "type": "string", "description": "Only paths starting with this." } } }),
            ),
        ),
        (
            "read_file",
            spec(
                "read_file",
                "Read a file of the workspace as your changes left it. A file over 2000 lines or 64 KiB is \
                 answered in part, with `total_lines`: read the rest by line range.",
                json!({ "type": "object", "properties": {
                    "path": { "type": "string" },
                    "start_line": { "type": "integer", "minimum": 1, "description": "First line, from 1." },
                    "end_line": { "type": "integer", "minimum": 1, "description": "Last line, included." } },
                    "required": ["path"] }),
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
            "write_file",
            spec(
                "write_file",
                "Create a file or replace its whole content. Changes are proposed for a person to review, \
                 not applied.",
                json!({ "type": "object", "properties": {
                    "path": { "type": "string" }, "content": { "type": "string" }, "summary": summary },
                    "required": ["path", "content"] }),
            ),
        ),
        (
            "edit_file",
            spec(
                "edit_file",
                "Replace one exact piece of a file: `search` must match exactly once (whitespace included); \
                 add surrounding lines to make it unique. Proposed for review, not applied.",
                json!({ "type": "object", "properties": {
                    "path": { "type": "string" }, "search": { "type": "string" }, "replace": { "type": "string" },
                    "summary": summary },
                    "required": ["path", "search", "replace"] }),
            ),
        ),
        (
            "delete_file",
            spec(
                "delete_file",
                "Delete a file. Proposed for review, not applied.",
                json!({ "type": "object", "properties": { "path": { "type": "string" }, "summary": summary },
                    "required": ["path"] }),
            ),
        ),
        (
            "rename_file",
            spec(
                "rename_file",
                "Move a file to a new path. Proposed for review, not applied.",
                json!({ "type": "object", "properties": {
                    "from": { "type": "string" }, "to": { "type": "string" }, "summary": summary },
                    "required": ["from", "to"] }),
            ),
        ),
    ];
    if has_checks {
        specs.push((
            RUN_CHECKS,
            spec(
                RUN_CHECKS,
                "Run the workspace's checks (validators, tests) on the files as your changes leave them; \
                 answers each check's status and output.",
                json!({ "type": "object", "properties": {} }),
            ),
        ));
    }
    specs
}

/// The run a tool works for.
#[derive(Debug, Clone, Copy)]
pub struct RunScope {
    pub tenant_id: TenantId,
    pub run_id: RunId,
    pub workspace_id: WorkspaceId,
}

/// What a tool answered, and the `changeset.patch` events of the patches it touched.
#[derive(Debug, Default)]
pub struct Outcome {
    pub value: Value,
    pub events: Vec<EventKind>,
}

impl From<Value> for Outcome {
    fn from(value: Value) -> Self {
        Self { value, events: Vec::new() }
    }
}

/// Runs a built-in tool for an agent run; an error is told to the model (the caller rolls the
/// transaction back then: nothing of it is recorded).
pub async fn run_tool(
    connection: &mut PgConnection,
    scope: RunScope,
    tool: &str,
    arguments: &Value,
) -> Result<Outcome, String> {
    let changeset = changesets::store::for_run(connection, scope.run_id).await.map_err(|error| database(&error))?;
    match tool {
        "list_files" => {
            let prefix = optional_text(arguments, "prefix")?.unwrap_or_default();
            Ok(list_files(connection, scope.workspace_id, changeset.as_ref(), &prefix).await?.into())
        }
        "read_file" => {
            let path = text(arguments, "path")?;
            let content = read(connection, scope.workspace_id, changeset.as_ref(), &path).await?;
            let content = content.ok_or_else(|| format!("no file `{path}`"))?;
            let start = line_number(arguments, "start_line")?;
            let end = line_number(arguments, "end_line")?;
            read_range(&path, &content, start, end).map(Outcome::from)
        }
        "search_files" => {
            let query = text(arguments, "query")?;
            if query.trim().is_empty() {
                return Err("`query` must not be empty".to_owned());
            }
            Ok(search(connection, scope.workspace_id, changeset.as_ref(), &query).await?.into())
        }
        "write_file" => {
            let (path, content) = (text(arguments, "path")?, text(arguments, "content")?);
            checked_path(&path)?;
            let change = Change::Write { path, content };
            propose(connection, scope, changeset, change, &summary(arguments)?).await
        }
        "edit_file" => {
            let (path, search, replace) =
                (text(arguments, "path")?, text(arguments, "search")?, text(arguments, "replace")?);
            checked_path(&path)?;
            let content = read(connection, scope.workspace_id, changeset.as_ref(), &path).await?;
            let content = content.ok_or_else(|| format!("no file `{path}`; create it with write_file"))?;
            let edited = edit(&path, &content, &search, &replace)?;
            let change = Change::Write { path, content: edited };
            propose(connection, scope, changeset, change, &summary(arguments)?).await
        }
        "delete_file" => {
            let path = text(arguments, "path")?;
            checked_path(&path)?;
            propose(connection, scope, changeset, Change::Delete { path }, &summary(arguments)?).await
        }
        "rename_file" => {
            let (from, to) = (text(arguments, "from")?, text(arguments, "to")?);
            checked_path(&from)?;
            checked_path(&to)?;
            propose(connection, scope, changeset, Change::Rename { from, to }, &summary(arguments)?).await
        }
        other => Err(format!("no workspace tool `{other}`")),
    }
}

fn database(error: &sqlx::Error) -> String {
    tracing::error!(%error, "a workspace tool failed");
    "the workspace could not be read".to_owned()
}

fn text(arguments: &Value, field: &str) -> Result<String, String> {
    arguments[field].as_str().map(str::to_owned).ok_or_else(|| format!("`{field}` is required, as a string"))
}

fn optional_text(arguments: &Value, field: &str) -> Result<Option<String>, String> {
    match &arguments[field] {
        Value::Null => Ok(None),
        Value::String(value) => Ok(Some(value.clone())),
        _ => Err(format!("`{field}` must be a string")),
    }
}

fn line_number(arguments: &Value, field: &str) -> Result<Option<usize>, String> {
    match &arguments[field] {
        Value::Null => Ok(None),
        value => value
            .as_u64()
            .filter(|number| *number >= 1)
            .and_then(|number| usize::try_from(number).ok())
            .map(Some)
            .ok_or_else(|| format!("`{field}` must be a line number, from 1")),
    }
}

fn summary(arguments: &Value) -> Result<String, String> {
    Ok(optional_text(arguments, "summary")?.unwrap_or_default().chars().take(SUMMARY_CHARS).collect())
}

fn checked_path(path: &str) -> Result<(), String> {
    check_path(path).map_err(|error| format!("`{path}`: {error}"))
}

/// The content at `path` as the run's changeset sees it.
async fn read(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    changeset: Option<&Changeset>,
    path: &str,
) -> Result<Option<String>, String> {
    match changeset {
        Some(changeset) => changesets::read(connection, changeset, path).await.map_err(|error| database(&error)),
        None => store::file_content(connection, workspace_id, path).await.map_err(|error| database(&error)),
    }
}

/// The paths the changeset shows differently from the workspace: `Some(content)` written there, `None`
/// gone from there.
fn changed_paths(patches: &[Patch]) -> BTreeMap<String, Option<String>> {
    let mut changed = BTreeMap::new();
    for patch in patches {
        match patch.operation {
            Operation::Create | Operation::Modify => {
                changed.insert(patch.path.clone(), patch.content.clone());
            }
            Operation::Delete => {
                changed.insert(patch.path.clone(), None);
            }
            Operation::Rename => {
                changed.insert(patch.path.clone(), None);
                if let Some(to) = &patch.new_path {
                    changed.insert(to.clone(), patch.content.clone());
                }
            }
        }
    }
    changed
}

async fn changes(
    connection: &mut PgConnection,
    changeset: Option<&Changeset>,
) -> Result<BTreeMap<String, Option<String>>, String> {
    match changeset {
        Some(changeset) => Ok(changed_paths(
            &changesets::store::patches(connection, changeset.id).await.map_err(|error| database(&error))?,
        )),
        None => Ok(BTreeMap::new()),
    }
}

async fn list_files(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    changeset: Option<&Changeset>,
    prefix: &str,
) -> Result<Value, String> {
    let limit = i64::try_from(LIST_MAX_FILES + 1).unwrap_or(i64::MAX);
    let stored =
        store::list_files(connection, workspace_id, prefix, None, limit).await.map_err(|error| database(&error))?;
    let mut files: BTreeMap<String, usize> =
        stored.into_iter().map(|file| (file.path, usize::try_from(file.bytes).unwrap_or(0))).collect();
    for (path, content) in changes(connection, changeset).await? {
        match content {
            Some(content) if path.starts_with(prefix) => {
                files.insert(path, content.len());
            }
            _ => {
                files.remove(&path);
            }
        }
    }
    let more = files.len() > LIST_MAX_FILES;
    let listed: Vec<Value> =
        files.into_iter().take(LIST_MAX_FILES).map(|(path, bytes)| json!({ "path": path, "bytes": bytes })).collect();
    let mut answer = json!({ "files": listed });
    if more {
        answer["note"] = json!(format!("only the first {LIST_MAX_FILES} files are listed; narrow with `prefix`"));
    }
    Ok(answer)
}

async fn search(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    changeset: Option<&Changeset>,
    query: &str,
) -> Result<Value, String> {
    let changed = changes(connection, changeset).await?;
    let needle = query.to_lowercase();
    let stored = store::files_containing(connection, workspace_id, query).await.map_err(|error| database(&error))?;
    let mut files: BTreeMap<String, String> =
        stored.into_iter().filter(|(path, _)| !changed.contains_key(path)).collect();
    for (path, content) in changed {
        if let Some(content) = content.filter(|content| content.to_lowercase().contains(&needle)) {
            files.insert(path, content);
        }
    }
    let matches: Vec<Value> = files
        .iter()
        .flat_map(|(path, content)| {
            let needle = needle.clone();
            content.lines().enumerate().filter(move |(_, line)| line.to_lowercase().contains(&needle)).map(
                move |(number, line)| {
                    let excerpt: String = line.chars().take(SEARCH_LINE_CHARS).collect();
                    json!({ "path": path, "line": number + 1, "text": excerpt })
                },
            )
        })
        .take(SEARCH_MAX_MATCHES)
        .collect();
    Ok(json!({ "matches": matches }))
}

/// Lines `start..=end` (from 1) of a file; without a range, the whole file when it is small, else its
/// first part with a note to read on by range. A range is cut to the same bounds.
fn read_range(path: &str, content: &str, start: Option<usize>, end: Option<usize>) -> Result<Value, String> {
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    let total = lines.len();
    if start.is_none() && end.is_none() && total <= READ_MAX_LINES && content.len() <= READ_MAX_BYTES {
        return Ok(json!({ "path": path, "content": content, "total_lines": total }));
    }
    let start = start.unwrap_or(1);
    if start > total.max(1) {
        return Err(format!("`{path}` has {total} lines; `start_line` {start} is past its end"));
    }
    let wanted_end = end.unwrap_or(total).min(total);
    if wanted_end < start && total > 0 {
        return Err("`end_line` must not be before `start_line`".to_owned());
    }
    let mut part = String::new();
    let mut last = start - 1;
    for line in lines.iter().take(wanted_end).skip(start - 1) {
        if last - (start - 1) >= READ_MAX_LINES || part.len() + line.len() > READ_MAX_BYTES {
            break;
        }
        part.push_str(line);
        last += 1;
    }
    let mut answer =
        json!({ "path": path, "content": part, "start_line": start, "end_line": last, "total_lines": total });
    if last < total {
        answer["note"] = json!(format!(
            "lines {start} to {last} of {total}; read on with `start_line` {} (at most {READ_MAX_LINES} lines or \
             {} KiB at once)",
            last + 1,
            READ_MAX_BYTES / 1024
        ));
    }
    Ok(answer)
}

/// `content` with the one occurrence of `search` replaced; zero or several occurrences are an error
/// saying how many and on which lines, for the model to correct.
fn edit(path: &str, content: &str, search: &str, replace: &str) -> Result<String, String> {
    if search.is_empty() {
        return Err("`search` must not be empty; use write_file to replace a whole file".to_owned());
    }
    let found: Vec<usize> = content.match_indices(search).map(|(at, _)| at).collect();
    match found.as_slice() {
        [at] => Ok(format!("{}{replace}{}", &content[..*at], &content[at + search.len()..])),
        [] => Err(format!(
            "the search text was not found in `{path}` (0 matches); read the file again and copy the text exactly, \
             whitespace included"
        )),
        many => {
            let lines: Vec<String> =
                many.iter().map(|at| (content[..*at].matches('\n').count() + 1).to_string()).collect();
            Err(format!(
                "the search text matches {} times in `{path}` (at lines {}); it must match exactly once: include \
                 more of the surrounding lines",
                many.len(),
                lines.join(", ")
            ))
        }
    }
}

/// Folds a change into the run's changeset (made on the first change) and answers the touched patches.
async fn propose(
    connection: &mut PgConnection,
    scope: RunScope,
    changeset: Option<Changeset>,
    change: Change,
    summary: &str,
) -> Result<Outcome, String> {
    if let Change::Write { content, .. } = &change
        && content.len() > MAX_FILE_BYTES
    {
        return Err(format!("a file may hold at most {MAX_FILE_BYTES} bytes"));
    }
    let changeset = match changeset {
        Some(changeset) => changeset,
        None => open_changeset(connection, scope).await?,
    };
    let paths: Vec<String> = change.paths().into_iter().map(str::to_owned).collect();
    let touched =
        changesets::record(connection, scope.tenant_id, changeset.id, change, summary).await.map_err(|error| {
            match error {
                ChangesetError::Refused(message) | ChangesetError::Invalid(message) => message,
                ChangesetError::InvalidTransition { from, .. } => {
                    format!("the run's changes are {} already; nothing more can be proposed", from.as_str())
                }
                ChangesetError::Database(error) => database(&error),
                other => other.to_string(),
            }
        })?;
    let mut events: Vec<EventKind> = touched
        .iter()
        .map(|patch| EventKind::ChangesetPatch {
            changeset_id: changeset.id,
            path: patch.path.clone(),
            operation: Some(patch.operation.as_str().to_owned()),
            new_path: patch.new_path.clone(),
            diff: patch.diff.clone(),
        })
        .collect();
    if touched.is_empty() {
        // The change undid what the changeset held for these paths (or changed nothing).
        events.extend(paths.iter().map(|path| EventKind::ChangesetPatch {
            changeset_id: changeset.id,
            path: path.clone(),
            operation: None,
            new_path: None,
            diff: String::new(),
        }));
    }
    let patches: Vec<Value> = touched
        .iter()
        .map(|patch| {
            json!({ "path": patch.path, "operation": patch.operation.as_str(), "new_path": patch.new_path,
                    "diff": patch.diff })
        })
        .collect();
    let value = json!({ "recorded": true, "changeset_id": changeset.id, "patches": patches });
    Ok(Outcome { value, events })
}

/// The patches of a run's changeset as they stand (none before its first change).
pub async fn proposed(pool: &PgPool, context: &TenantContext, run_id: RunId) -> Result<Vec<Patch>, sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let patches = match changesets::store::for_run(&mut transaction, run_id).await? {
        Some(changeset) => changesets::store::patches(&mut transaction, changeset.id).await?,
        None => Vec::new(),
    };
    transaction.commit().await?;
    Ok(patches)
}

/// The run's changeset, opened on its first change; titled by the first line of its instruction. Two
/// calls of one step may race to open it: the loser finds the winner's.
async fn open_changeset(connection: &mut PgConnection, scope: RunScope) -> Result<Changeset, String> {
    let instruction =
        crate::runs::store::agent_work(connection, scope.run_id).await.map_err(|error| database(&error))?;
    let title = title_of(instruction.map(|(_, instruction)| instruction).as_deref().unwrap_or_default());
    let mut savepoint = sqlx::Connection::begin(&mut *connection).await.map_err(|error| database(&error))?;
    let inserted = changesets::store::insert(
        &mut savepoint,
        scope.tenant_id,
        scope.workspace_id,
        Some(scope.run_id),
        &title,
        "agent run",
    )
    .await;
    match crate::db::none_if_unique_violation(inserted).map_err(|error| database(&error))? {
        Some(changeset) => {
            savepoint.commit().await.map_err(|error| database(&error))?;
            Ok(changeset)
        }
        None => {
            savepoint.rollback().await.map_err(|error| database(&error))?;
            let found = changesets::store::for_run(connection, scope.run_id).await.map_err(|error| database(&error))?;
            found.ok_or_else(|| "the run's changeset could not be opened".to_owned())
        }
    }
}

fn title_of(instruction: &str) -> String {
    let first = instruction.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("Proposed changes");
    first.chars().take(TITLE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_must_match_exactly_once() {
        assert_eq!(edit("a", "one\ntwo\n", "two", "2").unwrap(), "one\n2\n");
        let twice = edit("a", "x = 1\ny\nx = 1\n", "x = 1", "x = 2").unwrap_err();
        assert!(twice.contains("matches 2 times") && twice.contains("lines 1, 3"), "{twice}");
        assert!(edit("a", "one\n", "three", "3").unwrap_err().contains("0 matches"));
        assert!(edit("a", "one\n", "", "3").is_err());
    }

    #[test]
    fn a_large_file_is_read_in_parts() {
        let content: String = (1..=2500).map(|n| format!("line {n}")).collect::<Vec<_>>().join("\n") + "\n";
        let first = read_range("big", &content, None, None).unwrap();
        assert_eq!((first["start_line"].as_u64(), first["end_line"].as_u64()), (Some(1), Some(2000)));
        assert_eq!(first["total_lines"], 2500);
        assert!(first["note"].as_str().unwrap().contains("2001"));
        let rest = read_range("big", &content, Some(2001), None).unwrap();
        assert_eq!(rest["end_line"], 2500);
        assert!(rest.get("note").is_none());
        assert!(rest["content"].as_str().unwrap().starts_with("line 2001\n"));
        let small = read_range("small", "a\nb\n", None, None).unwrap();
        assert_eq!(small["content"], "a\nb\n");
        let range = read_range("small", "a\nb\nc", Some(2), Some(3)).unwrap();
        assert_eq!(range["content"], "b\nc");
        assert!(read_range("small", "a\n", Some(5), None).is_err());
    }

    #[test]
    fn a_title_is_the_first_line() {
        assert_eq!(title_of("\n  Fix the typo  \nin main"), "Fix the typo");
        assert_eq!(title_of(""), "Proposed changes");
        assert_eq!(title_of(&"x".repeat(600)).len(), 500);
    }
}
