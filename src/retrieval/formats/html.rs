//! HTML pages as Markdown, by htmd (turndown's rules over html5ever's parser): headings, lists, tables,
//! links, code blocks. Scripts, styles, images and embedded frames carry no text a search could use and
//! are left out.

use std::rc::Rc;

use super::FormatError;

/// The deepest element nesting read. The converter walks the tree recursively, so a hostile page of
/// nested elements would exhaust a blocking thread's stack; real pages stay far below this.
const MAX_DEPTH: usize = 100;

/// The deepest nesting [`estimated_depth`] lets through to the parser, whose work per tag grows with the
/// depth (it searches the open elements): 100,000 nested `<div>`s took it a minute.
const MAX_ESTIMATED_DEPTH: usize = 256;

/// Elements that never hold others, and those whose start closes an open one of their kind (`<li>` after
/// `<li>`), so that they do not nest by themselves.
const NOT_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr", "p",
    "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "rb", "rt", "rp",
];

/// Elements whose content is text up to their end tag.
const RAW_TEXT: &[&str] =
    &["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"];

pub fn to_markdown(html: &str) -> Result<String, FormatError> {
    let converter = htmd::HtmlToMarkdown::builder()
        .skip_tags(vec![
            "head", "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas", "img",
        ])
        .options(htmd::options::Options {
            bullet_list_marker: htmd::options::BulletListMarker::Dash,
            ul_bullet_spacing: 1,
            ol_number_spacing: 1,
            ..htmd::options::Options::default()
        })
        .build();
    let unreadable = |error: std::io::Error| FormatError::Unreadable(format!("the HTML could not be read: {error}"));
    let too_deep = || FormatError::Unreadable(format!("the HTML nests elements more than {MAX_DEPTH} deep"));
    if estimated_depth(html, MAX_ESTIMATED_DEPTH).is_none() {
        return Err(too_deep());
    }
    let tree = converter.html_to_tree(html).map_err(unreadable)?;
    if depth(&tree) > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(converter.tree_to_markdown(&tree))
}

/// How deep the tree goes, walked without recursion (the parser builds any depth).
fn depth(root: &Rc<htmd::Node>) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(Rc::clone(root), 0)];
    while let Some((node, level)) = pending.pop() {
        deepest = deepest.max(level);
        pending.extend(node.children.borrow().iter().map(|child| (Rc::clone(child), level + 1)));
    }
    deepest
}

/// How deep the page's elements nest, told from its tags in one pass (end tags close what they name and
/// all inside it; end tags naming nothing open are ignored, as the parser does), or `None` past `limit`.
/// An estimate: it over-counts elements the parser closes by other rules, which only makes it stricter.
fn estimated_depth(html: &str, limit: usize) -> Option<usize> {
    let mut open: Vec<String> = Vec::new();
    let mut deepest = 0;
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let closing = rest.starts_with('/');
        let name_start = usize::from(closing);
        let name: String = rest[name_start..]
            .chars()
            .take_while(|character| character.is_ascii_alphanumeric() || *character == '-')
            .map(|character| character.to_ascii_lowercase())
            .collect();
        if name.is_empty() || !name.starts_with(|character: char| character.is_ascii_alphabetic()) {
            continue;
        }
        // The tag ends at its `>`, looked for only up to the next `<`: a page of `<` without `>` stays linear.
        let next_tag = rest.find('<').unwrap_or(rest.len());
        let tag_end = rest[..next_tag].find('>').map_or(next_tag, |end| end + 1);
        let self_closing = rest[..tag_end].trim_end_matches('>').ends_with('/');
        rest = &rest[tag_end..];
        if closing {
            if let Some(position) = open.iter().rposition(|element| *element == name) {
                open.truncate(position);
            }
            continue;
        }
        if RAW_TEXT.contains(&name.as_str()) {
            rest = end_tag(rest, &name).map_or("", |at| &rest[at..]);
            continue;
        }
        if self_closing || NOT_NESTING.contains(&name.as_str()) {
            continue;
        }
        open.push(name);
        deepest = deepest.max(open.len());
        if deepest > limit {
            return None;
        }
    }
    Some(deepest)
}

/// Where the end tag of `name` (any case) starts in `text`.
fn end_tag(text: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find("</") {
        let start = from + at;
        let candidate = &text.as_bytes()[start + 2..];
        if candidate.len() >= name.len() && candidate[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            return Some(start);
        }
        from = start + 2;
    }
    None
}

/// Whether text that came without a name or type is an HTML page.
pub fn looks_like_html(bytes: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)])
        .trim_start_matches('\u{FEFF}')
        .trim_start()
        .to_ascii_lowercase();
    start.starts_with("<!doctype html") || start.starts_with("<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_lists_and_tables_survive_and_scripts_do_not() {
        let page = "<!doctype html><html><head><title>T</title><style>p{}</style></head><body>\
            <h1>Swarm season</h1><script>alert(1)</script><h2>Signs</h2><ul><li>queen cells</li><li>crowding</li></ul>\
            <table><tr><th>Month</th><th>Swarms</th></tr><tr><td>May</td><td>12</td></tr></table></body></html>";
        let markdown = to_markdown(page).unwrap();
        assert!(markdown.starts_with("# Swarm season\n"), "{markdown}");
        assert!(markdown.contains("## Signs"), "{markdown}");
        assert!(markdown.contains("- queen cells"), "{markdown}");
        assert!(markdown.contains("| May"), "{markdown}");
        assert!(!markdown.contains("alert") && !markdown.contains("p{}"), "{markdown}");
        assert!(looks_like_html(page.as_bytes()));
        assert!(!looks_like_html(b"# Markdown <b>bold</b>"));
    }

    #[test]
    fn a_page_nested_too_deep_is_refused_without_overflowing_the_stack() {
        let nested = |levels: usize| format!("{}deep text{}", "<div>".repeat(levels), "</div>".repeat(levels));
        // On a thread with the blocking pool's stack (2 MiB).
        let converted = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || (to_markdown(&nested(MAX_DEPTH - 5)), to_markdown(&nested(100_000))))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(converted.0.unwrap(), "deep text");
        assert!(matches!(converted.1, Err(FormatError::Unreadable(_))));
    }

    #[test]
    fn the_depth_is_estimated_from_the_tags_alone() {
        assert_eq!(estimated_depth("<html><body><div><p>a<p>b<ul><li>c<li>d</ul></div></body></html>", 10), Some(4));
        assert_eq!(estimated_depth("<div><span></b></div><div><br/><img src=x></div>", 10), Some(2));
        assert_eq!(estimated_depth("<script>if (a<b) { x = '<div><div><div>'; }</script><div></div>", 2), Some(1));
        assert_eq!(estimated_depth("<!-- <div><div><div> --><div>", 2), Some(1));
        assert_eq!(estimated_depth(&"<div></span>".repeat(20), 10), None, "end tags naming nothing open close nothing");
        assert_eq!(estimated_depth("<SCRIPT>'<div>'</Script><div a='1'>", 5), Some(1));
        assert_eq!(estimated_depth(&"<a<b".repeat(1000), 5000), Some(2000), "a tag without `>` ends at the next");
    }
}
