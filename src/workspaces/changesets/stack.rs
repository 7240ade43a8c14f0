//! How one more change of a changeset folds into its patches: a changeset holds one patch per path, the
//! file's state after the changeset against the content it was first made on, so that edits within one
//! run stack (a run reads its own pending changes) and the diff a person reviews is the net change.
//! Pure: the caller reads the patches and the workspace's files first and writes the outcome.

use super::Operation;

/// A patch as this module sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub path: String,
    pub operation: Operation,
    pub new_path: Option<String>,
    /// The workspace file it was made against (hash and content); `None` for a create.
    pub base: Option<(String, String)>,
    /// The content it leaves; `None` for a delete.
    pub content: Option<String>,
}

/// One change, in terms of the files as the changeset sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Creates or replaces a file.
    Write {
        path: String,
        content: String,
    },
    Delete {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
}

impl Change {
    /// The paths it reads: the workspace's files at these paths must be known to [`fold`].
    pub fn paths(&self) -> Vec<&str> {
        match self {
            Self::Write { path, .. } | Self::Delete { path } => vec![path],
            Self::Rename { from, to } => vec![from, to],
        }
    }
}

/// What the changeset sees at a path: the content, and where it comes from.
enum Seen {
    /// A patch of the changeset leaves this content (the patch's index).
    Patched(usize, String),
    /// A patch deletes the file or renames it away (the patch's index).
    Gone(usize),
    /// No patch touches it: the workspace's file, if any.
    Workspace(Option<(String, String)>),
}

/// The content the changeset shows at `path`, given the workspace's file there (hash, content).
pub fn view(drafts: &[Draft], path: &str, workspace: Option<(String, String)>) -> Option<String> {
    match seen(drafts, path, workspace) {
        Seen::Patched(_, content) => Some(content),
        Seen::Gone(_) => None,
        Seen::Workspace(file) => file.map(|(_, content)| content),
    }
}

fn seen(drafts: &[Draft], path: &str, workspace: Option<(String, String)>) -> Seen {
    for (index, draft) in drafts.iter().enumerate() {
        match draft.operation {
            Operation::Rename if draft.new_path.as_deref() == Some(path) => {
                return Seen::Patched(index, draft.content.clone().unwrap_or_default());
            }
            Operation::Rename | Operation::Delete if draft.path == path => return Seen::Gone(index),
            Operation::Create | Operation::Modify if draft.path == path => {
                return Seen::Patched(index, draft.content.clone().unwrap_or_default());
            }
            _ => {}
        }
    }
    Seen::Workspace(workspace)
}

/// Folds `change` into `drafts`. `workspace` gives the workspace's file (hash, content) at each path the
/// change names. An error is for the one who made the change (a model corrects it).
pub fn fold(
    drafts: &mut Vec<Draft>,
    change: Change,
    workspace: &dyn Fn(&str) -> Option<(String, String)>,
) -> Result<(), String> {
    match change {
        Change::Write { path, content } => write(drafts, path, content, workspace),
        Change::Delete { path } => match seen(drafts, &path, workspace(&path)) {
            Seen::Gone(_) | Seen::Workspace(None) => Err(format!("no file `{path}`")),
            Seen::Workspace(Some(base)) => {
                drafts.push(Draft {
                    path,
                    operation: Operation::Delete,
                    new_path: None,
                    base: Some(base),
                    content: None,
                });
                Ok(())
            }
            Seen::Patched(index, _) => {
                let draft = &mut drafts[index];
                match draft.operation {
                    Operation::Create => {
                        drafts.remove(index);
                    }
                    // Renamed, then deleted: the original goes.
                    Operation::Modify | Operation::Rename => {
                        draft.operation = Operation::Delete;
                        draft.new_path = None;
                        draft.content = None;
                    }
                    Operation::Delete => unreachable!("a deleted file is not seen"),
                }
                Ok(())
            }
        },
        Change::Rename { from, to } => {
            if from == to {
                return Err("`from` and `to` are the same path".to_owned());
            }
            if !matches!(seen(drafts, &to, workspace(&to)), Seen::Gone(_) | Seen::Workspace(None)) {
                return Err(format!("`{to}` already exists"));
            }
            // A path deleted or renamed away in this changeset is written, not renamed to (but a file
            // renamed back where it came from is fine: below).
            let renamed_back =
                |draft: &Draft| draft.operation == Operation::Rename && draft.new_path.as_ref() == Some(&from);
            if drafts.iter().any(|draft| draft.path == to && !renamed_back(draft)) {
                return Err(format!("`{to}` was deleted or renamed away in this changeset; write it instead"));
            }
            match seen(drafts, &from, workspace(&from)) {
                Seen::Gone(_) | Seen::Workspace(None) => Err(format!("no file `{from}`")),
                Seen::Workspace(Some(base)) => {
                    let content = base.1.clone();
                    drafts.push(Draft {
                        path: from,
                        operation: Operation::Rename,
                        new_path: Some(to),
                        base: Some(base),
                        content: Some(content),
                    });
                    Ok(())
                }
                Seen::Patched(index, _) => {
                    let draft = &mut drafts[index];
                    match draft.operation {
                        Operation::Create => draft.path = to,
                        Operation::Modify => {
                            draft.operation = Operation::Rename;
                            draft.new_path = Some(to);
                        }
                        // Renamed back where it came from: a modification, or nothing at all.
                        Operation::Rename if draft.path == to => {
                            draft.operation = Operation::Modify;
                            draft.new_path = None;
                            drop_if_unchanged(drafts, index);
                        }
                        Operation::Rename => draft.new_path = Some(to),
                        Operation::Delete => unreachable!("a deleted file is not seen"),
                    }
                    Ok(())
                }
            }
        }
    }
}

fn write(
    drafts: &mut Vec<Draft>,
    path: String,
    content: String,
    workspace: &dyn Fn(&str) -> Option<(String, String)>,
) -> Result<(), String> {
    match seen(drafts, &path, workspace(&path)) {
        Seen::Workspace(None) => {
            drafts.push(Draft {
                path,
                operation: Operation::Create,
                new_path: None,
                base: None,
                content: Some(content),
            });
        }
        Seen::Workspace(Some(base)) => {
            if base.1 != content {
                let draft = Draft {
                    path,
                    operation: Operation::Modify,
                    new_path: None,
                    base: Some(base),
                    content: Some(content),
                };
                drafts.push(draft);
            }
        }
        Seen::Patched(index, _) => {
            drafts[index].content = Some(content);
            drop_if_unchanged(drafts, index);
        }
        Seen::Gone(index) => {
            let draft = &mut drafts[index];
            if draft.operation == Operation::Rename {
                return Err(format!(
                    "`{path}` was renamed to `{}` in this changeset; choose another path",
                    draft.new_path.as_deref().unwrap_or_default()
                ));
            }
            // Deleted, then written again: a modification of the original.
            draft.operation = Operation::Modify;
            draft.content = Some(content);
            drop_if_unchanged(drafts, index);
        }
    }
    Ok(())
}

/// A modification that leaves the file as it was is no patch.
fn drop_if_unchanged(drafts: &mut Vec<Draft>, index: usize) {
    let draft = &drafts[index];
    if draft.operation == Operation::Modify && draft.base.as_ref().map(|(_, content)| content) == draft.content.as_ref()
    {
        drafts.remove(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(path: &str) -> Option<(String, String)> {
        match path {
            "a.txt" => Some(("hash-a".to_owned(), "A\n".to_owned())),
            "b.txt" => Some(("hash-b".to_owned(), "B\n".to_owned())),
            _ => None,
        }
    }

    fn run(changes: Vec<Change>) -> Result<Vec<Draft>, String> {
        let mut drafts = Vec::new();
        for change in changes {
            fold(&mut drafts, change, &workspace)?;
        }
        Ok(drafts)
    }

    fn write(path: &str, content: &str) -> Change {
        Change::Write { path: path.to_owned(), content: content.to_owned() }
    }

    fn rename(from: &str, to: &str) -> Change {
        Change::Rename { from: from.to_owned(), to: to.to_owned() }
    }

    fn delete(path: &str) -> Change {
        Change::Delete { path: path.to_owned() }
    }

    #[test]
    fn edits_of_one_file_stack_against_the_first_base() {
        let drafts = run(vec![write("a.txt", "A1\n"), write("a.txt", "A2\n")]).unwrap();
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].operation, Operation::Modify);
        assert_eq!(drafts[0].base.as_ref().unwrap().0, "hash-a");
        assert_eq!(drafts[0].content.as_deref(), Some("A2\n"));
    }

    #[test]
    fn an_edit_undone_leaves_no_patch() {
        assert!(run(vec![write("a.txt", "A1\n"), write("a.txt", "A\n")]).unwrap().is_empty());
        assert!(run(vec![write("a.txt", "A\n")]).unwrap().is_empty());
        assert!(run(vec![write("new.txt", "x"), delete("new.txt")]).unwrap().is_empty());
        assert!(run(vec![rename("a.txt", "c.txt"), rename("c.txt", "a.txt")]).unwrap().is_empty());
    }

    #[test]
    fn a_created_file_renamed_is_created_at_its_new_path() {
        let drafts = run(vec![write("new.txt", "x"), rename("new.txt", "dir/new.txt")]).unwrap();
        assert_eq!(drafts.len(), 1);
        assert_eq!((drafts[0].operation, drafts[0].path.as_str()), (Operation::Create, "dir/new.txt"));
    }

    #[test]
    fn a_renamed_file_is_read_and_written_at_its_new_path() {
        let mut drafts = run(vec![rename("a.txt", "c.txt"), write("c.txt", "C\n")]).unwrap();
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].operation, Operation::Rename);
        assert_eq!(view(&drafts, "c.txt", None).as_deref(), Some("C\n"));
        assert_eq!(view(&drafts, "a.txt", workspace("a.txt")), None);
        fold(&mut drafts, delete("c.txt"), &workspace).unwrap();
        assert_eq!((drafts[0].operation, drafts[0].path.as_str()), (Operation::Delete, "a.txt"));
    }

    #[test]
    fn a_deleted_file_written_again_is_a_modification() {
        let drafts = run(vec![delete("b.txt"), write("b.txt", "B2\n")]).unwrap();
        assert_eq!(drafts[0].operation, Operation::Modify);
        assert_eq!(drafts[0].content.as_deref(), Some("B2\n"));
    }

    #[test]
    fn impossible_changes_are_told() {
        assert_eq!(run(vec![delete("missing")]).unwrap_err(), "no file `missing`");
        assert_eq!(run(vec![rename("a.txt", "b.txt")]).unwrap_err(), "`b.txt` already exists");
        assert_eq!(run(vec![delete("a.txt"), delete("a.txt")]).unwrap_err(), "no file `a.txt`");
        assert!(run(vec![rename("a.txt", "c.txt"), write("a.txt", "again")]).unwrap_err().contains("renamed"));
    }
}
