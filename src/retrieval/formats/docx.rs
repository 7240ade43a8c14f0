//! Word documents (DOCX: a zip of XML parts) as Markdown. `word/document.xml` is read as a stream of
//! events: paragraphs in a heading style (or with an outline level) become headings, numbered
//! paragraphs list items (ordered or not, as `word/numbering.xml` says, nested by level), tables Markdown
//! tables. Deleted text (tracked changes), field codes and the fallback copies of text boxes are left
//! out; formatting within a line is not kept.
//!
//! Every part is read through a cap, whatever its entry declares: a small file that inflates without
//! end (a zip bomb) stops there.

use std::collections::HashMap;
use std::io::{Cursor, Read as _};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{FormatError, MAX_MARKDOWN_BYTES};

/// The most one XML part may inflate to. Word's XML is verbose (runs, properties, revision ids): ten
/// times or more the text it holds, and a document's text may be 1 MiB.
const MAX_PART_BYTES: u64 = 32 * 1024 * 1024;

/// Heading levels beyond this are Markdown's last.
const DEEPEST_HEADING: u8 = 6;

pub fn to_markdown(bytes: &[u8]) -> Result<String, FormatError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| FormatError::Unreadable(format!("the DOCX's zip container could not be read: {error}")))?;
    if archive.index_for_name("word/document.xml").is_none() {
        return Err(FormatError::Unsupported(
            "the zip file is not a Word document (DOCX); spreadsheets, presentations and archives are not supported"
                .to_owned(),
        ));
    }
    let styles = read_part(&mut archive, "word/styles.xml")?.map(|xml| heading_styles(&xml)).transpose()?;
    let numbering = read_part(&mut archive, "word/numbering.xml")?.map(|xml| ordered_lists(&xml)).transpose()?;
    let document = read_part(&mut archive, "word/document.xml")?.unwrap_or_default();
    Body::new(styles.unwrap_or_default(), numbering.unwrap_or_default()).convert(&document)
}

/// A part of the archive, at most [`MAX_PART_BYTES`] of it inflated; `None` when the archive lacks it.
fn read_part(archive: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Option<Vec<u8>>, FormatError> {
    let encrypted = || {
        FormatError::Encrypted(
            "the DOCX is protected by a password; remove the password and upload it again".to_owned(),
        )
    };
    let part = match archive.by_name(name) {
        Ok(part) => part,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(zip::result::ZipError::UnsupportedArchive(zip::result::ZipError::PASSWORD_REQUIRED)) => {
            return Err(encrypted());
        }
        Err(error) => return Err(FormatError::Unreadable(format!("{name} in the DOCX could not be read: {error}"))),
    };
    if part.encrypted() {
        return Err(encrypted());
    }
    let too_large =
        || FormatError::Unreadable(format!("{name} in the DOCX inflates to more than {MAX_PART_BYTES} bytes"));
    if part.size() > MAX_PART_BYTES {
        return Err(too_large());
    }
    let mut content = Vec::new();
    part.take(MAX_PART_BYTES + 1)
        .read_to_end(&mut content)
        .map_err(|error| FormatError::Unreadable(format!("{name} in the DOCX could not be inflated: {error}")))?;
    if content.len() as u64 > MAX_PART_BYTES {
        return Err(too_large());
    }
    Ok(Some(content))
}

fn malformed(error: &impl std::fmt::Display) -> FormatError {
    FormatError::Unreadable(format!("the DOCX's XML is malformed: {error}"))
}

/// An attribute's value by its local name (Word writes `w:val`; the prefix is the file's choice).
fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element.attributes().flatten().find(|attribute| attribute.key.local_name().as_ref() == name).and_then(|attribute| {
        attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(std::borrow::Cow::into_owned)
    })
}

/// Paragraph style ids that are headings, with their level: styles named `heading N` or `Title`, or
/// with an outline level, and the styles based on them.
fn heading_styles(xml: &[u8]) -> Result<HashMap<String, u8>, FormatError> {
    let mut reader = Reader::from_reader(xml);
    let mut buffer = Vec::new();
    let mut own_level: HashMap<String, u8> = HashMap::new();
    let mut based_on: HashMap<String, String> = HashMap::new();
    let mut current: Option<String> = None;
    loop {
        let event = reader.read_event_into(&mut buffer).map_err(|error| malformed(&error))?;
        match &event {
            Event::Start(element) | Event::Empty(element) => match element.local_name().as_ref() {
                "style" => current = attribute(element, "styleId"),
                "name" => {
                    if let (Some(style), Some(name)) = (&current, attribute(element, "val")) {
                        let name = name.to_ascii_lowercase();
                        let level = if name == "title" {
                            Some(1)
                        } else {
                            name.strip_prefix("heading ").and_then(|level| level.trim().parse::<u8>().ok())
                        };
                        if let Some(level) = level.filter(|level| *level >= 1) {
                            own_level.insert(style.clone(), level.min(DEEPEST_HEADING));
                        }
                    }
                }
                "outlineLvl" => {
                    let level = attribute(element, "val").and_then(|level| level.parse::<u8>().ok());
                    if let (Some(style), Some(level)) = (&current, level.filter(|level| *level < 9)) {
                        own_level.entry(style.clone()).or_insert((level + 1).min(DEEPEST_HEADING));
                    }
                }
                "basedOn" => {
                    if let (Some(style), Some(parent)) = (&current, attribute(element, "val")) {
                        based_on.insert(style.clone(), parent);
                    }
                }
                _ => {}
            },
            Event::End(element) if element.local_name().as_ref() == "style" => current = None,
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    // A style based on a heading is a heading of its level (a few steps up at most: chains are short,
    // and a cycle must not loop).
    let mut levels = own_level.clone();
    for style in based_on.keys() {
        let mut ancestor = style;
        for _ in 0..10 {
            if let Some(level) = own_level.get(ancestor) {
                levels.entry(style.clone()).or_insert(*level);
                break;
            }
            let Some(parent) = based_on.get(ancestor) else { break };
            ancestor = parent;
        }
    }
    Ok(levels)
}

/// Which (list, level) pairs are numbered rather than bulleted.
fn ordered_lists(xml: &[u8]) -> Result<HashMap<(String, u8), bool>, FormatError> {
    let mut reader = Reader::from_reader(xml);
    let mut buffer = Vec::new();
    // abstractNumId → level → ordered; numId → abstractNumId.
    let mut abstract_levels: HashMap<String, HashMap<u8, bool>> = HashMap::new();
    let mut lists: HashMap<String, String> = HashMap::new();
    let (mut abstract_id, mut level, mut list_id): (Option<String>, Option<u8>, Option<String>) = (None, None, None);
    loop {
        let event = reader.read_event_into(&mut buffer).map_err(|error| malformed(&error))?;
        match &event {
            Event::Start(element) | Event::Empty(element) => match element.local_name().as_ref() {
                "abstractNum" => abstract_id = attribute(element, "abstractNumId"),
                "lvl" => level = attribute(element, "ilvl").and_then(|level| level.parse().ok()),
                "numFmt" => {
                    if let (Some(id), Some(level), Some(format)) = (&abstract_id, level, attribute(element, "val")) {
                        let ordered = !matches!(format.as_str(), "bullet" | "none");
                        abstract_levels.entry(id.clone()).or_default().insert(level, ordered);
                    }
                }
                "num" => list_id = attribute(element, "numId"),
                "abstractNumId" => {
                    if let (Some(list), Some(id)) = (&list_id, attribute(element, "val")) {
                        lists.insert(list.clone(), id);
                    }
                }
                _ => {}
            },
            Event::End(element) => match element.local_name().as_ref() {
                "abstractNum" => abstract_id = None,
                "lvl" => level = None,
                "num" => list_id = None,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    let mut ordered = HashMap::new();
    for (list, abstract_id) in lists {
        for (level, is_ordered) in abstract_levels.get(&abstract_id).into_iter().flatten() {
            ordered.insert((list.clone(), *level), *is_ordered);
        }
    }
    Ok(ordered)
}

/// A paragraph being read.
#[derive(Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    outline_level: Option<u8>,
    list_id: Option<String>,
    list_level: u8,
}

/// The outermost table being read (a table inside a cell becomes text of that cell).
#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    cell: String,
    span: usize,
}

/// The body's reader: the document's Markdown, block by block, and where in the XML it is.
#[derive(Default)]
struct Body {
    headings: HashMap<String, u8>,
    ordered: HashMap<(String, u8), bool>,
    markdown: String,
    /// Whether the last block was a list item (items follow each other without a blank line).
    in_list: bool,
    /// Paragraphs nest (a text box's inside its anchor's): the innermost is written to.
    paragraphs: Vec<Paragraph>,
    table: Option<Table>,
    table_depth: usize,
    in_text: bool,
    in_run: usize,
}

impl Body {
    fn new(headings: HashMap<String, u8>, ordered: HashMap<(String, u8), bool>) -> Self {
        Self { headings, ordered, ..Self::default() }
    }

    fn convert(mut self, xml: &[u8]) -> Result<String, FormatError> {
        let mut reader = Reader::from_reader(xml);
        let mut buffer = Vec::new();
        loop {
            let event = reader.read_event_into(&mut buffer).map_err(|error| malformed(&error))?;
            match &event {
                // Another copy of what a text box's `Choice` already holds.
                Event::Start(element) if element.local_name().as_ref() == "Fallback" => {
                    reader.read_to_end_into(element.name(), &mut Vec::new()).map_err(|error| malformed(&error))?;
                }
                Event::Start(element) => self.start(element, false),
                Event::Empty(element) => self.start(element, true),
                Event::Text(text) if self.in_text => self.push_text(&text.xml10_content()),
                Event::CData(text) if self.in_text => self.push_text(&text.xml10_content()),
                Event::GeneralRef(reference) if self.in_text => {
                    let character = match reference.resolve_char_ref().map_err(|error| malformed(&error))? {
                        Some(character) => character,
                        None => match &**reference {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            other => return Err(malformed(&format!("unknown entity &{other};"))),
                        },
                    };
                    self.push_text(character.encode_utf8(&mut [0; 4]));
                }
                Event::End(element) => self.end(element.local_name().as_ref()),
                Event::Eof => break,
                _ => {}
            }
            if self.markdown.len() > MAX_MARKDOWN_BYTES {
                return Err(FormatError::TooMuchText);
            }
            buffer.clear();
        }
        Ok(self.markdown)
    }

    /// An element's start (`empty`: one without content, `<w:tab/>`).
    fn start(&mut self, element: &BytesStart<'_>, empty: bool) {
        let value = |name| attribute(element, name);
        match element.local_name().as_ref() {
            "p" if !empty => self.paragraphs.push(Paragraph::default()),
            "r" if !empty => self.in_run += 1,
            "t" if !empty => self.in_text = true,
            "tab" if self.in_run > 0 => self.push_text(" "),
            "br" | "cr" if self.in_run > 0 => self.push_text("\n"),
            "pStyle" => self.paragraph(|paragraph| paragraph.style = value("val")),
            "outlineLvl" => {
                self.paragraph(|paragraph| paragraph.outline_level = value("val").and_then(|level| level.parse().ok()));
            }
            "ilvl" => {
                let level = value("val").and_then(|level| level.parse().ok()).unwrap_or(0);
                self.paragraph(|paragraph| paragraph.list_level = level);
            }
            // `0` removes the numbering a style would give.
            "numId" => self.paragraph(|paragraph| paragraph.list_id = value("val").filter(|id| id != "0")),
            "tbl" if !empty => {
                self.table_depth += 1;
                if self.table_depth == 1 {
                    self.table = Some(Table::default());
                }
            }
            "tc" if !empty && self.table_depth == 1 => {
                if let Some(table) = &mut self.table {
                    table.cell.clear();
                    table.span = 1;
                }
            }
            "gridSpan" if self.table_depth == 1 => {
                if let Some(table) = &mut self.table {
                    table.span = value("val").and_then(|span| span.parse().ok()).unwrap_or(1).clamp(1, 64);
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "t" => self.in_text = false,
            "r" => self.in_run = self.in_run.saturating_sub(1),
            "p" => {
                if let Some(paragraph) = self.paragraphs.pop() {
                    match &mut self.table {
                        Some(table) if self.table_depth > 0 => push_to_cell(table, &paragraph.text),
                        _ => self.push_paragraph(&paragraph),
                    }
                }
            }
            "tc" if self.table_depth == 1 => {
                if let Some(table) = &mut self.table {
                    let cell = std::mem::take(&mut table.cell);
                    table.row.push(cell);
                    for _ in 1..table.span {
                        table.row.push(String::new());
                    }
                }
            }
            "tr" if self.table_depth == 1 => {
                if let Some(table) = &mut self.table {
                    let row = std::mem::take(&mut table.row);
                    table.rows.push(row);
                }
            }
            "tbl" => {
                self.table_depth = self.table_depth.saturating_sub(1);
                if self.table_depth == 0
                    && let Some(table) = self.table.take()
                {
                    self.push_table(&table.rows);
                }
            }
            _ => {}
        }
    }

    /// Changes the paragraph being read, if any.
    fn paragraph(&mut self, change: impl FnOnce(&mut Paragraph)) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            change(paragraph);
        }
    }

    fn push_text(&mut self, text: &str) {
        self.paragraph(|paragraph| paragraph.text.push_str(text));
    }

    fn heading_level(&self, paragraph: &Paragraph) -> Option<u8> {
        let by_style = paragraph
            .style
            .as_ref()
            .and_then(|style| self.headings.get(style).copied().or_else(|| built_in_heading(style)));
        by_style.or_else(|| {
            paragraph.outline_level.filter(|level| *level < 9).map(|level| (level + 1).min(DEEPEST_HEADING))
        })
    }

    fn push_paragraph(&mut self, paragraph: &Paragraph) {
        let text = paragraph.text.trim();
        if text.is_empty() {
            return;
        }
        if let Some(level) = self.heading_level(paragraph) {
            self.start_block(false);
            self.markdown.push_str(&"#".repeat(usize::from(level)));
            self.markdown.push(' ');
            self.markdown.push_str(&one_line(text));
        } else if let Some(list) = &paragraph.list_id {
            self.start_block(true);
            let ordered = self.ordered.get(&(list.clone(), paragraph.list_level)).copied().unwrap_or(false);
            self.markdown.push_str(&"   ".repeat(usize::from(paragraph.list_level.min(8))));
            self.markdown.push_str(if ordered { "1. " } else { "- " });
            self.markdown.push_str(&one_line(text));
        } else {
            self.start_block(false);
            self.markdown.push_str(text);
        }
    }

    fn push_table(&mut self, rows: &[Vec<String>]) {
        let Some(width) = rows.iter().map(Vec::len).max().filter(|width| *width > 0) else {
            return;
        };
        self.start_block(false);
        for (index, row) in rows.iter().enumerate() {
            self.markdown.push('|');
            for column in 0..width {
                let cell = row.get(column).map_or(String::new(), |cell| one_line(cell).replace('|', "\\|"));
                self.markdown.push(' ');
                self.markdown.push_str(&cell);
                self.markdown.push_str(" |");
            }
            self.markdown.push('\n');
            if index == 0 {
                self.markdown.push('|');
                self.markdown.push_str(&" --- |".repeat(width));
                self.markdown.push('\n');
            }
        }
        // The table's last line break stands for the block's end.
        self.markdown.pop();
    }

    /// Separates the next block from the last: a blank line, or one line break between list items.
    fn start_block(&mut self, list_item: bool) {
        if !self.markdown.is_empty() {
            self.markdown.push_str(if list_item && self.in_list { "\n" } else { "\n\n" });
        }
        self.in_list = list_item;
    }
}

/// Word's own style ids for headings, for a file without `styles.xml`.
fn built_in_heading(style: &str) -> Option<u8> {
    let lower = style.to_ascii_lowercase();
    if lower == "title" {
        return Some(1);
    }
    let level: u8 = lower.strip_prefix("heading")?.parse().ok()?;
    (level >= 1).then_some(level.min(DEEPEST_HEADING))
}

fn push_to_cell(table: &mut Table, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if !table.cell.is_empty() {
        table.cell.push(' ');
    }
    table.cell.push_str(text);
}

/// Text on one line: breaks and runs of white space made one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const NS: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    fn docx(document: &str, styles: Option<&str>, numbering: Option<&str>) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer = zip::ZipWriter::new(Cursor::new(&mut bytes));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let mut part = |name: &str, xml: &str| {
            writer.start_file(name, options).unwrap();
            writer.write_all(xml.as_bytes()).unwrap();
        };
        part(
            "word/document.xml",
            &format!(r#"<?xml version="1.0"?><w:document {NS}><w:body>{document}</w:body></w:document>"#),
        );
        if let Some(styles) = styles {
            part("word/styles.xml", &format!("<w:styles {NS}>{styles}</w:styles>"));
        }
        if let Some(numbering) = numbering {
            part("word/numbering.xml", &format!("<w:numbering {NS}>{numbering}</w:numbering>"));
        }
        writer.finish().unwrap();
        bytes
    }

    fn paragraph(properties: &str, text: &str) -> String {
        format!("<w:p><w:pPr>{properties}</w:pPr><w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>")
    }

    #[test]
    fn headings_lists_and_tables_become_markdown() {
        let styles = r#"<w:style w:type="paragraph" w:styleId="Kop1"><w:name w:val="heading 1"/></w:style>
            <w:style w:type="paragraph" w:styleId="Mine"><w:name w:val="Mine"/><w:basedOn w:val="Kop1"/></w:style>"#;
        let numbering = r#"<w:abstractNum w:abstractNumId="3"><w:lvl w:ilvl="0"><w:numFmt w:val="decimal"/></w:lvl>
            <w:lvl w:ilvl="1"><w:numFmt w:val="bullet"/></w:lvl></w:abstractNum>
            <w:num w:numId="7"><w:abstractNumId w:val="3"/></w:num>"#;
        let body = [
            paragraph(r#"<w:pStyle w:val="Kop1"/>"#, "Hive inspection"),
            paragraph("", "Check the queen excluder &amp; frames every Tuesday."),
            paragraph(r#"<w:numPr><w:ilvl w:val="0"/><w:numId w:val="7"/></w:numPr>"#, "Open the hive"),
            paragraph(r#"<w:numPr><w:ilvl w:val="1"/><w:numId w:val="7"/></w:numPr>"#, "Smoke first"),
            paragraph(r#"<w:pStyle w:val="Heading2"/>"#, "Yields"),
            "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Frame</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Honey kg</w:t></w:r></w:p></w:tc></w:tr>\
             <w:tr><w:tc><w:p><w:r><w:t>7</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>2.5</w:t></w:r><w:r><w:t>|x</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
                .to_owned(),
            paragraph(r#"<w:pStyle w:val="Mine"/>"#, "Notes"),
            "<w:p><w:r><w:delText>removed</w:delText><w:t>kept</w:t><w:tab/><w:t>after tab</w:t></w:r></w:p>".to_owned(),
        ]
        .concat();
        let markdown = to_markdown(&docx(&body, Some(styles), Some(numbering))).unwrap();
        assert_eq!(
            markdown,
            "# Hive inspection\n\nCheck the queen excluder & frames every Tuesday.\n\n1. Open the hive\n   - Smoke first\n\n\
             ## Yields\n\n| Frame | Honey kg |\n| --- | --- |\n| 7 | 2.5\\|x |\n\n# Notes\n\nkept after tab"
        );
    }

    #[test]
    fn a_zip_that_is_not_a_word_document_is_unsupported_and_a_bomb_stops_at_the_cap() {
        let mut bytes = Vec::new();
        let mut writer = zip::ZipWriter::new(Cursor::new(&mut bytes));
        writer.start_file("xl/workbook.xml", zip::write::SimpleFileOptions::default()).unwrap();
        writer.write_all(b"<workbook/>").unwrap();
        writer.finish().unwrap();
        assert!(matches!(to_markdown(&bytes), Err(FormatError::Unsupported(_))));

        let mut bomb = Vec::new();
        let mut writer = zip::ZipWriter::new(Cursor::new(&mut bomb));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        writer.start_file("word/document.xml", options).unwrap();
        let spaces = vec![b' '; 1024 * 1024];
        for _ in 0..=MAX_PART_BYTES / (1024 * 1024) {
            writer.write_all(&spaces).unwrap();
        }
        writer.finish().unwrap();
        assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
        assert!(matches!(to_markdown(&bomb), Err(FormatError::Unreadable(message)) if message.contains("inflates")));
        assert!(matches!(to_markdown(b"PK\x03\x04 truncated"), Err(FormatError::Unreadable(_))));
    }
}
