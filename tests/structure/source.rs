//! The files of `src/` as modules: each file's module path, its text without comments, strings and
//! `#[cfg(test)]` modules (what the service is made of, not what tests it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct SourceFile {
    /// Relative to the repository, `/`-separated: `src/engine/turn.rs`.
    pub path: String,
    /// `["engine", "turn"]`; empty for `src/lib.rs`.
    pub module: Vec<String>,
    pub text: String,
    /// The text with comments and string literals blanked and test modules removed.
    pub code: String,
}

/// The checkout to read: this one, or `STRUCTURE_ROOT` (another checkout, to compare its graph with this one's).
pub fn repository() -> PathBuf {
    std::env::var_os("STRUCTURE_ROOT").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// Every `.rs` file under `src/`, by module path.
pub fn read_sources() -> BTreeMap<Vec<String>, SourceFile> {
    let root = repository();
    let mut files = Vec::new();
    collect(&root.join("src"), &mut files);
    let mut sources = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("under the repository");
        let path = relative.to_string_lossy().replace('\\', "/");
        let Some(module) = module_path(&path) else { continue };
        let text = std::fs::read_to_string(&file).expect("a source file reads as UTF-8");
        let code = without_tests(&blank_comments_and_strings(&text));
        sources.insert(module.clone(), SourceFile { path, module, text, code });
    }
    assert!(sources.len() > 20, "found the sources under {}", root.join("src").display());
    sources
}

fn collect(folder: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).expect("src/ reads") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// `src/engine/mod.rs` → `["engine"]`; `src/main.rs` (a binary, not a module of the library) → `None`.
fn module_path(path: &str) -> Option<Vec<String>> {
    let inner = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    if inner == "main" {
        return None;
    }
    let mut segments: Vec<String> = inner.split('/').map(str::to_owned).collect();
    if segments.last().is_some_and(|last| last == "mod" || last == "lib") {
        segments.pop();
    }
    Some(segments)
}

/// Replaces comments and the insides of string and char literals with spaces (lines are kept).
pub fn blank_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !is_ident(chars.get(i.wrapping_sub(1))) {
            // A raw string: r"…", r#"…"#.
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push('"');
            i = j + 1;
            while i < chars.len() {
                if chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
                    out.push('"');
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            out.push('\'');
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                out.push(' ');
                i += 1;
            }
            out.push('\'');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// `'a'`, `'\n'`, `'\u{1F600}'` are literals; `'a` (a lifetime) is not.
fn is_char_literal(chars: &[char], at: usize) -> bool {
    match chars.get(at + 1) {
        Some('\\') => true,
        Some(_) => chars.get(at + 2) == Some(&'\''),
        None => false,
    }
}

/// Removes `#[cfg(test)]` items (the test module of a file) from code already free of comments.
fn without_tests(code: &str) -> String {
    let mut out = code.to_owned();
    while let Some(start) = out.find("#[cfg(test)]") {
        let Some(open) = out[start..].find(['{', ';']).map(|offset| start + offset) else { break };
        let end = if out.as_bytes()[open] == b';' {
            open + 1
        } else {
            let mut depth = 0;
            let mut end = out.len();
            for (offset, byte) in out.as_bytes()[open..].iter().enumerate() {
                match byte {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + offset + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            end
        };
        let lines = out[start..end].matches('\n').count();
        out.replace_range(start..end, &"\n".repeat(lines));
    }
    out
}
