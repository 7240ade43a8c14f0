//! A patch as a unified diff in git's format (`diff --git` headers, `/dev/null` for a created or deleted
//! file, `rename from`/`rename to`), so that `git apply` accepts a changeset's diff on the workspace's
//! exported tree. The hunks are diffy's.

use super::Operation;

/// The diff of one patch: `before` is the content it was made against (empty for a create), `after` the
/// content it leaves (empty for a delete).
pub fn render(operation: Operation, path: &str, new_path: Option<&str>, before: &str, after: &str) -> String {
    let target = new_path.unwrap_or(path);
    let mut header = format!("diff --git a/{path} b/{target}\n");
    let (from, to) = match operation {
        Operation::Create => {
            header.push_str("new file mode 100644\n");
            ("/dev/null".to_owned(), format!("b/{target}"))
        }
        Operation::Delete => {
            header.push_str("deleted file mode 100644\n");
            (format!("a/{path}"), "/dev/null".to_owned())
        }
        Operation::Modify => (format!("a/{path}"), format!("b/{target}")),
        Operation::Rename => {
            header.push_str("rename from ");
            header.push_str(path);
            header.push_str("\nrename to ");
            header.push_str(target);
            header.push('\n');
            (format!("a/{path}"), format!("b/{target}"))
        }
    };
    if before == after {
        // A rename that keeps the content, or an empty file created or deleted: the header says it all.
        return header;
    }
    let mut options = diffy::DiffOptions::new();
    options.set_original_filename(from).set_modified_filename(to);
    header.push_str(&options.create_patch(before, after).to_string());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modification_has_git_headers_and_hunks() {
        let diff = render(Operation::Modify, "src/a.rs", None, "one\ntwo\n", "one\n2\n");
        assert_eq!(
            diff,
            "diff --git a/src/a.rs b/src/a.rs\n--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n"
        );
    }

    #[test]
    fn a_created_file_comes_from_dev_null() {
        let diff = render(Operation::Create, "new.txt", None, "", "hello\n");
        assert!(
            diff.starts_with("diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n")
        );
        assert!(diff.ends_with("@@ -0,0 +1 @@\n+hello\n"), "{diff}");
    }

    #[test]
    fn a_pure_rename_is_headers_only() {
        let diff = render(Operation::Rename, "a.txt", Some("b.txt"), "x\n", "x\n");
        assert_eq!(diff, "diff --git a/a.txt b/b.txt\nrename from a.txt\nrename to b.txt\n");
    }

    #[test]
    fn a_missing_final_newline_is_marked() {
        let diff = render(Operation::Modify, "a", None, "x\n", "x\ny");
        assert!(diff.contains("+y\n\\ No newline at end of file\n"), "{diff}");
    }
}
