//! No import cycles between the modules of `src/`. Each file is a module; a file depends on another when
//! it names an item of it (`use crate::…`, `super::…`, `self::…`, a child module's path, inline or in a
//! `use` tree). A child naming its own ancestors (`super::AppState`) is how Rust modules share their
//! parent's context and does not count; every other dependency must point one way only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::source::{SourceFile, read_sources};

/// Cycles that are allowed, each with the reason it cannot be broken. Keep this short.
const ALLOWED_CYCLES: &[(&[&str], &str)] = &[];

type Module = Vec<String>;

#[test]
fn modules_import_each_other_in_one_direction_only() {
    let sources = read_sources();
    let graph = dependencies(&sources);
    let mut failures = Vec::new();
    for component in strongly_connected(&graph) {
        if component.len() < 2 {
            continue;
        }
        let mut files: Vec<&str> = component.iter().map(|module| sources[module].path.as_str()).collect();
        files.sort_unstable();
        if ALLOWED_CYCLES.iter().any(|(allowed, _)| allowed.iter().copied().eq(files.iter().copied())) {
            continue;
        }
        let mut description = format!("a cycle of {} files:\n", files.len());
        for from in &component {
            for (to, names) in &graph[from] {
                if component.contains(to) {
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    writeln!(description, "  {} -> {}: {}", sources[from].path, sources[to].path, names.join(", "))
                        .expect("writing to a String");
                }
            }
        }
        failures.push(description);
    }
    assert!(
        failures.is_empty(),
        "modules import each other in circles; move the shared items down into a module both can use:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_reader_sees_use_trees_inline_paths_and_child_modules() {
    let file = |path: &str, module: &[&str], code: &str| SourceFile {
        path: path.to_owned(),
        module: module.iter().map(|segment| (*segment).to_owned()).collect(),
        text: code.to_owned(),
        code: code.to_owned(),
    };
    let mut sources = BTreeMap::new();
    for source in [
        file("src/lib.rs", &[], "pub mod a; pub mod b;"),
        file("src/a/mod.rs", &["a"], "mod child; use child::Thing; fn f() { crate::b::helper(); }"),
        file("src/a/child.rs", &["a", "child"], "use super::Parent; use crate::{b::{self, Other}, c};"),
        file("src/b.rs", &["b"], "use crate::a::child::Thing as _;"),
        file("src/c.rs", &["c"], ""),
    ] {
        sources.insert(source.module.clone(), source);
    }
    let graph = dependencies(&sources);
    let edges = |from: &[&str]| -> Vec<String> {
        let from: Module = from.iter().map(|segment| (*segment).to_owned()).collect();
        graph[&from].keys().map(|to| sources[to].path.clone()).collect()
    };
    assert_eq!(edges(&["a"]), ["src/a/child.rs", "src/b.rs"]);
    // `super::Parent` names an ancestor and does not count.
    assert_eq!(edges(&["a", "child"]), ["src/b.rs", "src/c.rs"]);
    assert_eq!(edges(&["b"]), ["src/a/child.rs"]);
    let cycles: Vec<_> = strongly_connected(&graph).into_iter().filter(|component| component.len() > 1).collect();
    assert_eq!(cycles.len(), 1, "a/child.rs and b.rs name each other");
}

/// For every module, the modules it depends on and the names it takes from each.
fn dependencies(sources: &BTreeMap<Module, SourceFile>) -> BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>> {
    let mut graph = BTreeMap::new();
    for (module, source) in sources {
        let mut targets: BTreeMap<Module, BTreeSet<String>> = BTreeMap::new();
        for path in paths_in(source) {
            let Some(target) = owning_file(sources, &path) else { continue };
            let is_ancestor = target.len() < module.len() && module.starts_with(&target);
            if target == *module || is_ancestor {
                continue;
            }
            let name = path.get(target.len()).cloned().unwrap_or_else(|| target.last().cloned().unwrap_or_default());
            targets.entry(target).or_default().insert(name);
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// The file a path's item lives in: the longest prefix of the path that is a module with a file.
fn owning_file(sources: &BTreeMap<Module, SourceFile>, path: &[String]) -> Option<Module> {
    (0..=path.len()).rev().map(|length| path[..length].to_vec()).find(|prefix| sources.contains_key(prefix))
}

/// Every absolute path the file names through `crate`, `super`, `self` or a child module it declares.
fn paths_in(source: &SourceFile) -> Vec<Module> {
    let code: Vec<char> = source.code.chars().collect();
    let children = declared_children(&source.code);
    let mut paths = Vec::new();
    let mut at = 0;
    while at < code.len() {
        let starts_word = is_ident_start(code[at]) && (at == 0 || !is_ident_char(code[at - 1]));
        let after_path = at >= 2 && code[at - 1] == ':' && code[at - 2] == ':';
        if !starts_word || after_path {
            at += 1;
            continue;
        }
        let (word, end) = read_ident(&code, at);
        let base = match word.as_str() {
            "crate" => Some(Vec::new()),
            "self" => Some(source.module.clone()),
            "super" => Some(parent(&source.module)),
            child if children.contains(child) => {
                let mut module = source.module.clone();
                module.push(child.to_owned());
                Some(module)
            }
            _ => None,
        };
        match base {
            Some(base) if starts_with_separator(&code, end) => {
                let (found, next) = read_tree(&code, skip_separator(&code, end), &base);
                paths.extend(found);
                at = next;
            }
            _ => at = end,
        }
    }
    paths
}

fn declared_children(code: &str) -> BTreeSet<String> {
    let words: Vec<&str> = code.split(|c: char| !is_ident_char(c) && c != ';').filter(|w| !w.is_empty()).collect();
    words
        .windows(2)
        .filter(|pair| pair[0] == "mod" && pair[1].ends_with(';'))
        .map(|pair| pair[1].trim_end_matches(';').to_owned())
        .collect()
}

fn parent(module: &[String]) -> Module {
    module[..module.len().saturating_sub(1)].to_vec()
}

/// Reads a path or a `use` tree after `prefix::`: `a::b`, `{a, b::c}`, `self`, `*`, `super::x`.
fn read_tree(code: &[char], mut at: usize, prefix: &Module) -> (Vec<Module>, usize) {
    let mut path = prefix.clone();
    loop {
        at = skip_space(code, at);
        match code.get(at) {
            Some('{') => {
                let mut found = Vec::new();
                at += 1;
                loop {
                    at = skip_space(code, at);
                    match code.get(at) {
                        Some('}') => return (found, at + 1),
                        Some(',') => at += 1,
                        None => return (found, at),
                        Some(_) => {
                            let (inner, next) = read_tree(code, at, &path);
                            found.extend(inner);
                            at = if next == at { at + 1 } else { next };
                        }
                    }
                }
            }
            Some('*') => return (vec![path], at + 1),
            Some(&c) if is_ident_start(c) => {
                let (word, end) = read_ident(code, at);
                match word.as_str() {
                    "self" => {}
                    "super" => path = parent(&path),
                    _ => path.push(word),
                }
                if starts_with_separator(code, end) {
                    at = skip_separator(code, end);
                } else {
                    return (vec![path], end);
                }
            }
            _ => return (vec![path], at),
        }
    }
}

fn read_ident(code: &[char], start: usize) -> (String, usize) {
    let mut end = start;
    while end < code.len() && is_ident_char(code[end]) {
        end += 1;
    }
    (code[start..end].iter().collect(), end)
}

fn skip_space(code: &[char], mut at: usize) -> usize {
    while code.get(at).is_some_and(|c| c.is_whitespace()) {
        at += 1;
    }
    at
}

fn starts_with_separator(code: &[char], at: usize) -> bool {
    let at = skip_space(code, at);
    code.get(at) == Some(&':') && code.get(at + 1) == Some(&':')
}

fn skip_separator(code: &[char], at: usize) -> usize {
    skip_space(code, at) + 2
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Tarjan's strongly connected components.
fn strongly_connected(graph: &BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        graph: &'a BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        components: Vec<Vec<Module>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a Module) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        state.on_stack.insert(node);
        for target in state.graph[node].keys() {
            let Some((target, _)) = state.graph.get_key_value(target) else { continue };
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.clone());
                if member == node {
                    break;
                }
            }
            state.components.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.components
}
