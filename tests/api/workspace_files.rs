//! A workspace's files as an IDE uses them: listed by prefix, read with an `ETag` (304 when unchanged),
//! written under `If-Match` (412 with nothing written), deleted, renamed; trees imported from tar and zip
//! uploads (all or nothing: hostile entries, binary files and zip bombs refused by code) and exported as a
//! tar `git apply` works in; the tenant's quotas; and nothing of it visible to another tenant.

use std::collections::BTreeMap;
use std::io::{Cursor, Read as _, Write as _};

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error};

async fn tenant_with_workspace(app: &TestApp, slug: &str) -> (TestTenant, String) {
    let tenant = app.create_tenant(slug).await;
    let workspace = app.create_workspace(&tenant.admin_key, "shop").await;
    (tenant, workspace)
}

fn file_url(app: &TestApp, workspace: &str, path: &str) -> String {
    app.url(&format!("/api/v1/workspaces/{workspace}/files/{path}"))
}

/// Writes a file; returns the answer (204 and the new `ETag`, or the refusal).
async fn put(app: &TestApp, key: &str, workspace: &str, path: &str, content: &str) -> reqwest::Response {
    let request = app.client.put(file_url(app, workspace, path)).bearer_auth(key);
    request.json(&json!({ "content": content })).send().await.unwrap()
}

fn quoted(hash: &str) -> String {
    format!("\"{hash}\"")
}

fn etag_of(response: &reqwest::Response) -> String {
    response.headers().get("etag").expect("an ETag").to_str().unwrap().to_owned()
}

/// Every file of the workspace, path to content, as the API reads them back.
async fn contents(app: &TestApp, key: &str, workspace: &str) -> BTreeMap<String, String> {
    let list = app.get_json(&format!("/api/v1/workspaces/{workspace}/files"), key).await;
    let mut files = BTreeMap::new();
    for file in list["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        let read = app.get_json(&format!("/api/v1/workspaces/{workspace}/files/{path}"), key).await;
        files.insert(path.to_owned(), read["content"].as_str().unwrap().to_owned());
    }
    files
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files.iter().map(|(path, content)| ((*path).to_owned(), (*content).to_owned())).collect()
}

async fn import(app: &TestApp, key: &str, workspace: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    let url = app.url(&format!("/api/v1/workspaces/{workspace}/import"));
    let request = app.client.post(url).bearer_auth(key).header("content-type", content_type);
    request.body(body).send().await.unwrap()
}

/// A tar as a hostile client may write one: names written raw into the header, so `..` and absolute paths
/// get through; links to `target`.
fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        if kind.is_symlink() || kind.is_hard_link() {
            header.set_size(0);
            builder.append_link(&mut header, path, "target").unwrap();
        } else {
            header.set_size(content.len() as u64);
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *content).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = zip::ZipWriter::new(Cursor::new(&mut bytes));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (path, content) in entries {
        writer.start_file(*path, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap();
    bytes
}

/// A zip of `entries` files of `mebibytes` MiB of `fill` bytes each, deflated, built a MiB at a time: a
/// bomb about a thousandth of its inflated size.
fn zip_bomb(entries: usize, mebibytes: usize, fill: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = zip::ZipWriter::new(Cursor::new(&mut bytes));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .large_file(mebibytes >= 4096);
    let mebibyte = vec![fill; 1024 * 1024];
    for entry in 0..entries {
        writer.start_file(format!("bomb-{entry}.txt"), options).unwrap();
        for _ in 0..mebibytes {
            writer.write_all(&mebibyte).unwrap();
        }
    }
    writer.finish().unwrap();
    bytes
}

#[tokio::test]
async fn files_are_listed_read_with_etags_and_written_and_deleted_under_conditions() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = tenant_with_workspace(&app, "acme").await;
    let key = &tenant.admin_key;
    for (path, content) in
        [("src/main.rs", "fn main() {}\n"), ("src/lib.rs", "pub fn a() {}\n"), ("README.md", "# Shop\n")]
    {
        let response = put(&app, key, &workspace, path, content).await;
        assert_eq!(response.status(), 204);
        assert_eq!(etag_of(&response), quoted(&switchboard::workspaces::content_hash(content)));
    }

    // The workspace, with its checks and what it holds.
    let detail = app.get_json(&format!("/api/v1/workspaces/{workspace}"), key).await;
    assert_eq!(detail["checks"], json!([]));
    assert_eq!(detail["usage"]["files"], 3);
    assert_eq!(detail["usage"]["bytes"], 13 + 14 + 7);
    assert_eq!(detail["usage"]["max_files"], 5000);

    // Listed by prefix, by path, a page at a time.
    let listed = app.get_json(&format!("/api/v1/workspaces/{workspace}/files?prefix=src/"), key).await;
    let paths: Vec<&str> = listed["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["src/lib.rs", "src/main.rs"]);
    assert_eq!(listed["files"][1]["bytes"], 13);
    assert_eq!(listed["files"][1]["content_hash"], switchboard::workspaces::content_hash("fn main() {}\n"));
    let first = app.get_json(&format!("/api/v1/workspaces/{workspace}/files?limit=2"), key).await;
    assert_eq!(first["files"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_after"], "src/lib.rs");
    let rest = app.get_json(&format!("/api/v1/workspaces/{workspace}/files?limit=2&after=src/lib.rs"), key).await;
    assert_eq!(rest["files"][0]["path"], "src/main.rs");
    assert_eq!(rest["next_after"], Value::Null);

    // Read with its version; 304 while the client holds it.
    let read = app.get(&format!("/api/v1/workspaces/{workspace}/files/src/main.rs"), key).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let version = etag_of(&read);
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["content"], "fn main() {}\n");
    assert_eq!(body["path"], "src/main.rs");
    assert_eq!(body["bytes"], 13);
    assert_eq!(quoted(body["content_hash"].as_str().unwrap()), version);
    let cached = app.get(&format!("/api/v1/workspaces/{workspace}/files/src/main.rs"), key);
    let cached = cached.header("if-none-match", &version).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(etag_of(&cached), version);
    assert!(cached.bytes().await.unwrap().is_empty());
    let stale = app.get(&format!("/api/v1/workspaces/{workspace}/files/src/main.rs"), key);
    assert_eq!(stale.header("if-none-match", "\"0000\"").send().await.unwrap().status(), 200);

    // A write made on a version that is no longer the file's: 412, and the file as it was.
    let edited = put(&app, key, &workspace, "src/main.rs", "fn main() { edited() }\n").await;
    let edited_version = etag_of(&edited);
    let late = app.client.put(file_url(&app, &workspace, "src/main.rs")).bearer_auth(key).header("if-match", &version);
    let late = late.json(&json!({ "content": "fn main() { mine() }\n" })).send().await.unwrap();
    assert_error(late, 412, "precondition_failed").await;
    let now = app.get_json(&format!("/api/v1/workspaces/{workspace}/files/src/main.rs"), key).await;
    assert_eq!(now["content"], "fn main() { edited() }\n");
    // On the current version it lands, with a new one.
    let current = app.client.put(file_url(&app, &workspace, "src/main.rs")).bearer_auth(key);
    let current = current.header("if-match", &edited_version).json(&json!({ "content": "fn main() { mine() }\n" }));
    let current = current.send().await.unwrap();
    assert_eq!(current.status(), 204);
    assert_ne!(etag_of(&current), edited_version);
    // `If-Match` on a file that does not exist, and `If-None-Match: *` on one that does: 412.
    let missing = app.client.put(file_url(&app, &workspace, "new.rs")).bearer_auth(key).header("if-match", &version);
    assert_error(missing.json(&json!({ "content": "x" })).send().await.unwrap(), 412, "precondition_failed").await;
    let create_only =
        |path: &str| app.client.put(file_url(&app, &workspace, path)).bearer_auth(key).header("if-none-match", "*");
    let exists = create_only("README.md").json(&json!({ "content": "overwritten" })).send().await.unwrap();
    assert_error(exists, 412, "precondition_failed").await;
    assert_eq!(create_only("new.rs").json(&json!({ "content": "x" })).send().await.unwrap().status(), 204);

    // Delete: under `If-Match` too; a file that is not there is 404 `file_not_found`.
    let delete = |path: &str| app.client.delete(file_url(&app, &workspace, path)).bearer_auth(key);
    assert_error(delete("new.rs").header("if-match", "\"0000\"").send().await.unwrap(), 412, "precondition_failed")
        .await;
    assert_eq!(delete("new.rs").send().await.unwrap().status(), 204);
    assert_error(delete("new.rs").send().await.unwrap(), 404, "file_not_found").await;
    let gone = app.get(&format!("/api/v1/workspaces/{workspace}/files/new.rs"), key).send().await.unwrap();
    assert_error(gone, 404, "file_not_found").await;
}

#[tokio::test]
async fn files_are_renamed_under_conditions_and_every_write_is_audited() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = tenant_with_workspace(&app, "acme").await;
    let key = &tenant.admin_key;
    for (path, content) in
        [("src/main.rs", "fn main() { mine() }\n"), ("src/lib.rs", "pub fn a() {}\n"), ("README.md", "# Shop\n")]
    {
        assert_eq!(put(&app, key, &workspace, path, content).await.status(), 204);
    }
    let version = quoted(&switchboard::workspaces::content_hash("fn main() { mine() }\n"));
    let delete = app.client.delete(file_url(&app, &workspace, "README.md")).bearer_auth(key).send().await.unwrap();
    assert_eq!(delete.status(), 204);
    assert_eq!(put(&app, key, &workspace, "README.md", "# Shop\n").await.status(), 204);

    // Rename: not over another file, not from a stale version; the content and version move with it.
    let rename = |body: Value| app.post(&format!("/api/v1/workspaces/{workspace}/rename"), key, &body).send();
    let taken = rename(json!({ "from": "src/lib.rs", "to": "README.md" })).await.unwrap();
    assert_error(taken, 409, "file_exists").await;
    let stale = rename(json!({ "from": "src/lib.rs", "to": "src/util.rs", "if_match": version })).await.unwrap();
    assert_error(stale, 412, "precondition_failed").await;
    let lib_hash = switchboard::workspaces::content_hash("pub fn a() {}\n");
    let moved = rename(json!({ "from": "src/lib.rs", "to": "src/util.rs", "if_match": quoted(&lib_hash) })).await;
    let moved = moved.unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(etag_of(&moved), quoted(&lib_hash));
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(moved["path"], "src/util.rs");
    let missing = rename(json!({ "from": "src/lib.rs", "to": "src/other.rs" })).await.unwrap();
    assert_error(missing, 404, "file_not_found").await;
    assert_eq!(
        contents(&app, key, &workspace).await,
        tree(&[
            ("README.md", "# Shop\n"),
            ("src/main.rs", "fn main() { mine() }\n"),
            ("src/util.rs", "pub fn a() {}\n")
        ])
    );

    // Paths that leave the workspace are refused, whatever the route.
    for path in ["a/..%2Fb.rs", "a%5Cb.rs", "a//b.rs"] {
        let response = put(&app, key, &workspace, path, "x").await;
        assert_error(response, 422, "invalid_request").await;
    }
    let outside = rename(json!({ "from": "README.md", "to": "../README.md" })).await.unwrap();
    assert_error(outside, 422, "invalid_request").await;

    // Every write is in the tenant's audit trail.
    let audit = app.get_json("/api/v1/audit-events?limit=100", key).await;
    let actions: Vec<&str> =
        audit["audit_events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["workspace_file.saved", "workspace_file.deleted", "workspace_file.renamed"] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
}

#[tokio::test]
async fn trees_are_imported_from_tar_and_zip_and_exported_as_a_tar_git_applies_to() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = tenant_with_workspace(&app, "acme").await;
    let key = &tenant.admin_key;
    assert_eq!(put(&app, key, &workspace, "keep.txt", "kept\n").await.status(), 204);

    let tar = tar_of(&[
        ("./", tar::EntryType::Directory, b""),
        ("./src/", tar::EntryType::Directory, b""),
        ("./src/main.rs", tar::EntryType::Regular, b"fn main() {\n    println!(\"helo\");\n}\n"),
        ("./README.md", tar::EntryType::Regular, b"# Shop\n"),
    ]);
    let response = import(&app, key, &workspace, "application/x-tar", tar).await;
    assert_eq!(response.status(), 200);
    let imported: Value = response.json().await.unwrap();
    assert_eq!(imported["created"], 2);
    assert_eq!(imported["replaced"], 0);
    assert_eq!(imported["files"][0]["path"], "README.md");
    assert_eq!(imported["files"][0]["content_hash"], switchboard::workspaces::content_hash("# Shop\n"));

    // A zip merges in: one file replaced, one created, the rest kept. Told by its bytes, not its type.
    let zip = zip_of(&[("README.md", b"# Shop\n\nThe shop.\n"), ("docs/guide.md", b"Read me.\n")]);
    let response = import(&app, key, &workspace, "application/octet-stream", zip).await;
    assert_eq!(response.status(), 200);
    let imported: Value = response.json().await.unwrap();
    assert_eq!((imported["created"].as_u64(), imported["replaced"].as_u64()), (Some(1), Some(1)));

    // A tar.gz too.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_of(&[("docs/faq.md", tar::EntryType::Regular, b"Q?\n")])).unwrap();
    let response = import(&app, key, &workspace, "application/gzip", gz.finish().unwrap()).await;
    assert_eq!(response.status(), 200);

    let expected = tree(&[
        ("README.md", "# Shop\n\nThe shop.\n"),
        ("docs/faq.md", "Q?\n"),
        ("docs/guide.md", "Read me.\n"),
        ("keep.txt", "kept\n"),
        ("src/main.rs", "fn main() {\n    println!(\"helo\");\n}\n"),
    ]);
    assert_eq!(contents(&app, key, &workspace).await, expected);

    // The export holds the same files at their paths.
    let export = app.get(&format!("/api/v1/workspaces/{workspace}/export"), key).send().await.unwrap();
    assert_eq!(export.status(), 200);
    assert_eq!(export.headers()["content-type"], "application/x-tar");
    let bytes = export.bytes().await.unwrap();
    let mut archive = tar::Archive::new(Cursor::new(bytes.to_vec()));
    let mut exported = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        exported.insert(path, content);
    }
    assert_eq!(exported, expected);

    // Extracted, it is a tree where `git apply` takes a patch of its files.
    let directory = std::env::temp_dir().join(format!("workspace-export-{}", uuid::Uuid::new_v4()));
    tar::Archive::new(Cursor::new(bytes.to_vec())).unpack(&directory).unwrap();
    let patch = "--- a/src/main.rs\n+++ b/src/main.rs\n@@ -1,3 +1,3 @@\n fn main() {\n-    println!(\"helo\");\n+    \
                 println!(\"hello\");\n }\n";
    let mut git = std::process::Command::new("git")
        .args(["apply", "--check", "-"])
        .current_dir(&directory)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git runs");
    git.stdin.take().unwrap().write_all(patch.as_bytes()).unwrap();
    let status = git.wait().unwrap();
    std::fs::remove_dir_all(&directory).unwrap();
    assert!(status.success(), "git apply --check refused the patch on the exported tree");
}

#[tokio::test]
async fn a_hostile_or_oversized_archive_is_refused_by_code_with_nothing_written() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = tenant_with_workspace(&app, "acme").await;
    let key = &tenant.admin_key;
    assert_eq!(put(&app, key, &workspace, "README.md", "# Shop\n").await.status(), 204);
    let before = contents(&app, key, &workspace).await;

    let good: &[u8] = b"fine\n";
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a `..` entry",
            tar_of(&[("ok.txt", tar::EntryType::Regular, good), ("../escape.txt", tar::EntryType::Regular, good)]),
            422,
            "archive_unsafe_path",
        ),
        ("an absolute path", tar_of(&[("/etc/cron.d/x", tar::EntryType::Regular, good)]), 422, "archive_unsafe_path"),
        (
            "a symlink",
            tar_of(&[("ok.txt", tar::EntryType::Regular, good), ("link", tar::EntryType::Symlink, b"")]),
            422,
            "archive_link",
        ),
        ("a hard link", tar_of(&[("hard", tar::EntryType::Link, b"")]), 422, "archive_link"),
        ("a zip `..` entry", zip_of(&[("a/../../b.txt", good)]), 422, "archive_unsafe_path"),
        (
            "a binary file",
            zip_of(&[("ok.txt", good), ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")]),
            422,
            "binary_file",
        ),
        ("invalid UTF-8", zip_of(&[("latin1.txt", b"caf\xe9\n")]), 422, "binary_file"),
        ("not an archive", b"just some text, not an archive".to_vec(), 422, "invalid_archive"),
        ("a cut-off zip", zip_of(&[("ok.txt", good)])[..30].to_vec(), 422, "invalid_archive"),
        // 200 MiB of zeros in one entry, about 200 KiB deflated: stopped at the file limit (1 MiB).
        ("a zip bomb", zip_bomb(1, 200, 0), 413, "file_too_large"),
        // 65 entries of 1 MiB of text each: past the 64 MiB of files an archive may inflate to.
        ("a zip bomb of many files", zip_bomb(65, 1, b'a'), 413, "archive_too_large"),
    ];
    for (case, body, status, code) in cases {
        let response = import(&app, key, &workspace, "application/zip", body).await;
        let refused = assert_error(response, status, code).await;
        if code == "binary_file" {
            let message = refused["error"]["message"].as_str().unwrap();
            assert!(message.contains("logo.png") || message.contains("latin1.txt"), "{case}: {message}");
        }
        assert_eq!(contents(&app, key, &workspace).await, before, "{case} wrote something");
    }
}

#[tokio::test]
async fn the_tenants_quotas_per_workspace_hold_on_every_write() {
    let app = TestApp::spawn().await;
    let (tenant, workspace) = tenant_with_workspace(&app, "acme").await;
    let key = &tenant.admin_key;

    // Settable and readable like every setting, and validated.
    let refused = app.patch("/api/v1/tenant/config", key, &json!({ "workspace_max_files": 0 })).send().await.unwrap();
    assert_error(refused, 422, "invalid_request").await;
    let refused = app.patch("/api/v1/tenant/config", key, &json!({ "workspace_max_bytes": null })).send().await;
    assert_error(refused.unwrap(), 422, "invalid_request").await;
    app.configure(&tenant, json!({ "workspace_max_files": 2, "workspace_max_bytes": 100 })).await;
    let config = app.get_json("/api/v1/tenant/config", key).await;
    assert_eq!((config["workspace_max_files"].as_i64(), config["workspace_max_bytes"].as_i64()), (Some(2), Some(100)));

    assert_eq!(put(&app, key, &workspace, "a.txt", "a").await.status(), 204);
    assert_eq!(put(&app, key, &workspace, "b.txt", "b").await.status(), 204);
    let third = assert_error(put(&app, key, &workspace, "c.txt", "c").await, 409, "workspace_quota_exceeded").await;
    assert!(third["error"]["message"].as_str().unwrap().contains("workspace_max_files"), "{third}");
    let large = "x".repeat(100);
    let bytes = assert_error(put(&app, key, &workspace, "a.txt", &large).await, 409, "workspace_quota_exceeded").await;
    assert!(bytes["error"]["message"].as_str().unwrap().contains("workspace_max_bytes"), "{bytes}");
    // Replacing within the quota is fine; a rename changes neither count.
    assert_eq!(put(&app, key, &workspace, "a.txt", "aa").await.status(), 204);
    let rename = json!({ "from": "a.txt", "to": "renamed.txt" });
    let renamed = app.post(&format!("/api/v1/workspaces/{workspace}/rename"), key, &rename).send().await.unwrap();
    assert_eq!(renamed.status(), 200);

    // An import past the quota writes none of its files.
    let zip = zip_of(&[("b.txt", b"replaced"), ("c.txt", b"new")]);
    assert_error(import(&app, key, &workspace, "application/zip", zip).await, 409, "workspace_quota_exceeded").await;
    assert_eq!(contents(&app, key, &workspace).await, tree(&[("b.txt", "b"), ("renamed.txt", "aa")]));

    // One file over 1 MiB is refused whatever the quotas.
    app.configure(&tenant, json!({ "workspace_max_bytes": 10_485_760 })).await;
    let huge = zip_of(&[("huge.txt", "x".repeat(1024 * 1024 + 1).as_bytes())]);
    assert_error(import(&app, key, &workspace, "application/zip", huge).await, 413, "file_too_large").await;
}

#[tokio::test]
async fn another_tenant_sees_none_of_a_workspace() {
    let app = TestApp::spawn().await;
    let (owner, workspace) = tenant_with_workspace(&app, "acme").await;
    assert_eq!(put(&app, &owner.admin_key, &workspace, "secret.md", "mine\n").await.status(), 204);
    let other = app.create_tenant("globex").await;
    let key = &other.admin_key;

    let base = format!("/api/v1/workspaces/{workspace}");
    for path in [base.clone(), format!("{base}/files"), format!("{base}/export")] {
        assert_error(app.get(&path, key).send().await.unwrap(), 404, "not_found").await;
    }
    let read = app.get(&format!("{base}/files/secret.md"), key).send().await.unwrap();
    assert_error(read, 404, "not_found").await;
    assert_error(put(&app, key, &workspace, "secret.md", "theirs").await, 404, "not_found").await;
    let delete = app.delete(&format!("{base}/files/secret.md"), key).send().await.unwrap();
    assert_error(delete, 404, "not_found").await;
    let rename = json!({ "from": "secret.md", "to": "stolen.md" });
    assert_error(app.post(&format!("{base}/rename"), key, &rename).send().await.unwrap(), 404, "not_found").await;
    let zip = zip_of(&[("secret.md", b"theirs")]);
    assert_error(import(&app, key, &workspace, "application/zip", zip).await, 404, "not_found").await;

    assert_eq!(contents(&app, &owner.admin_key, &workspace).await, tree(&[("secret.md", "mine\n")]));
}
