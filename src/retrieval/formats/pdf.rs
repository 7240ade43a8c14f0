//! PDF files' text, page by page, by lopdf. A PDF holds positioned glyphs, not structure: its text comes
//! out as lines and paragraphs (no headings or tables can be told apart reliably), pages apart. A scan
//! without a text layer has no text and is refused; OCR is not done here.

use lopdf::{Document, LoadOptions};

use super::{FormatError, MAX_MARKDOWN_BYTES};

/// The most one stream (a page's content, an object stream, a font's map) may inflate to: a page's
/// text never needs this much, and a compression bomb stops here instead of filling memory.
const MAX_DECOMPRESSED_BYTES: usize = 16 * 1024 * 1024;

pub fn to_markdown(bytes: &[u8]) -> Result<String, FormatError> {
    let encrypted = || {
        FormatError::Encrypted("the PDF is protected by a password; remove the password and upload it again".to_owned())
    };
    let document =
        match Document::load_mem_with_options(bytes, LoadOptions::with_max_decompressed_size(MAX_DECOMPRESSED_BYTES)) {
            Ok(document) => document,
            Err(lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword) => return Err(encrypted()),
            Err(error) => return Err(FormatError::Unreadable(format!("the PDF could not be read: {error}"))),
        };
    // Loading opens a document encrypted with an empty user password (one that only restricts printing
    // or copying) by itself; any other stays encrypted.
    if document.trailer.has(b"Encrypt") && !document.was_encrypted() {
        return Err(encrypted());
    }
    let mut markdown = String::new();
    let mut unread_pages = 0;
    let pages = document.get_pages();
    for &number in pages.keys() {
        let text = match document.extract_text_with_limit(&[number], MAX_DECOMPRESSED_BYTES) {
            Ok(text) => text,
            Err(lopdf::Error::Decompress(error)) => {
                return Err(FormatError::Unreadable(format!(
                    "page {number} of the PDF could not be inflated: {error}"
                )));
            }
            // A page in a font encoding lopdf cannot map: the other pages still hold text.
            Err(error) => {
                tracing::debug!(%error, page = number, "a PDF page's text could not be extracted");
                unread_pages += 1;
                continue;
            }
        };
        push_page(&mut markdown, &text);
        if markdown.len() > MAX_MARKDOWN_BYTES {
            return Err(FormatError::TooMuchText);
        }
    }
    if markdown.trim().is_empty() {
        let why = if pages.is_empty() {
            "the PDF has no pages"
        } else if unread_pages > 0 {
            "the PDF's text is in fonts that could not be read"
        } else {
            "the PDF has no text layer (a scan?); run it through OCR first"
        };
        return Err(FormatError::Unreadable(why.to_owned()));
    }
    Ok(markdown)
}

/// Appends a page's text as paragraphs, pages apart: lines kept, runs of blank lines made one, control
/// characters (which some fonts map glyphs to) dropped.
fn push_page(markdown: &mut String, text: &str) {
    let mut page = String::new();
    let mut after_blank = false;
    for line in text.lines() {
        let line: String = line.chars().filter(|character| !character.is_control() || *character == '\t').collect();
        let line = line.trim_end();
        if line.trim().is_empty() {
            after_blank = !page.is_empty();
            continue;
        }
        if !page.is_empty() {
            page.push_str(if after_blank { "\n\n" } else { "\n" });
        }
        page.push_str(line);
        after_blank = false;
    }
    if page.is_empty() {
        return;
    }
    if !markdown.is_empty() {
        markdown.push_str("\n\n");
    }
    markdown.push_str(&page);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_become_paragraphs_without_control_characters() {
        let mut markdown = String::new();
        push_page(&mut markdown, "Title\n\n\n\nFirst line\u{2}\nsecond line  \n");
        push_page(&mut markdown, "\n \n");
        push_page(&mut markdown, "Next page\n");
        assert_eq!(markdown, "Title\n\nFirst line\nsecond line\n\nNext page");
    }

    #[test]
    fn what_is_not_a_pdf_is_unreadable() {
        assert!(matches!(to_markdown(b"%PDF-1.7\nnothing else"), Err(FormatError::Unreadable(_))));
    }
}
