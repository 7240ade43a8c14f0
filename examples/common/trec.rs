//! The TREC files of a test collection (documents, queries, relevance judgments), read the same way by
//! every evaluation example (`#[path]`-included: examples share no library of their own).

use std::collections::{HashMap, HashSet};

/// `<DOC><DOCNO>id</DOCNO> text </DOC>` records (queries use the same shape with `<TOP><NUM>`).
pub fn trec_records(text: &str, record: &str, id_tag: &str) -> Vec<(String, String)> {
    let open = format!("<{record}>");
    let close = format!("</{record}>");
    let (id_open, id_close) = (format!("<{id_tag}>"), format!("</{id_tag}>"));
    text.split(&open)
        .filter_map(|chunk| chunk.split(&close).next())
        .filter_map(|body| {
            let start = body.find(&id_open)? + id_open.len();
            let end = body.find(&id_close)?;
            let id = body[start..end].trim().to_owned();
            let rest = body[end + id_close.len()..].replace("<title>", " ").replace("</title>", " ");
            Some((id, rest.trim().to_owned()))
        })
        .collect()
}

pub fn qrels(text: &str) -> HashMap<String, HashSet<String>> {
    let mut relevant: HashMap<String, HashSet<String>> = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [query, _, document, grade] = fields[..]
            && grade != "0"
        {
            relevant.entry(query.to_owned()).or_default().insert(document.to_owned());
        }
    }
    relevant
}
