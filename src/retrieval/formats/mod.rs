//! Files as Markdown: an uploaded (or ingested) PDF, DOCX, HTML, CSV, plain text or Markdown file becomes
//! the Markdown text a document holds, keeping what the chunker and citations use (headings, lists,
//! tables), before it takes the same road as any document (`NewDocument`, `add_document`).
//!
//! The type is told from the content first (`%PDF-`, a zip holding `word/document.xml`), then from the
//! declared media type and the file name; every converter is bounded (the file's size per type, what a
//! compressed part may inflate to, the Markdown it may produce), and runs off the async workers
//! ([`convert_in_background`]). Nothing here knows HTTP.

mod csv;
mod docx;
mod html;
mod pdf;
mod text;

use super::MAX_DOCUMENT_BYTES;
use crate::background;

/// The largest file of any format (a PDF's limit); a reader that does not know the type yet stops here.
pub const MAX_FILE_BYTES: usize = Format::Pdf.max_file_bytes();

/// What the Markdown of one file may reach: a document's own limit.
const MAX_MARKDOWN_BYTES: usize = MAX_DOCUMENT_BYTES;

/// Formats known by their first bytes that we do not read, whatever the file's name says.
const OTHER_FORMATS: [(&[u8], &str); 7] = [
    (b"\x89PNG", "a PNG image"),
    (b"\xFF\xD8\xFF", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1F\x8B", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
    (b"%!PS", "a PostScript file"),
    (b"\x7FELF", "a program"),
];

/// The formats a document may be uploaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
    Html,
    Csv,
    Markdown,
    Text,
}

impl Format {
    /// The media type recorded for the original file.
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Html => "text/html",
            Self::Csv => "text/csv",
            Self::Markdown => "text/markdown",
            Self::Text => "text/plain",
        }
    }

    /// The largest file of this format. Text formats are stored nearly as they come, so their limit is a
    /// document's; HTML carries markup around its text; PDF and DOCX carry fonts, images and layout,
    /// often tens of times their text.
    pub const fn max_file_bytes(self) -> usize {
        match self {
            Self::Pdf => 32 * 1024 * 1024,
            Self::Docx => 16 * 1024 * 1024,
            Self::Html => 4 * MAX_DOCUMENT_BYTES,
            Self::Csv | Self::Markdown | Self::Text => MAX_DOCUMENT_BYTES,
        }
    }

    /// What people call it, for messages.
    const fn name(self) -> &'static str {
        match self {
            Self::Pdf => "PDF",
            Self::Docx => "DOCX",
            Self::Html => "HTML",
            Self::Csv => "CSV",
            Self::Markdown => "Markdown",
            Self::Text => "text",
        }
    }

    /// The format a declared media type names (parameters such as `charset` ignored), if one of ours.
    fn from_media_type(media_type: &str) -> Option<Self> {
        let essence = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        Some(match essence.as_str() {
            "application/pdf" | "application/x-pdf" => Self::Pdf,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Self::Docx,
            "text/html" | "application/xhtml+xml" => Self::Html,
            "text/csv" | "application/csv" => Self::Csv,
            "text/markdown" | "text/x-markdown" => Self::Markdown,
            "text/plain" => Self::Text,
            _ => return None,
        })
    }

    /// The format a file name's extension names, if one of ours.
    fn from_file_name(file_name: &str) -> Option<Self> {
        let (_, extension) = file_name.rsplit_once('.')?;
        Some(match extension.to_ascii_lowercase().as_str() {
            "pdf" => Self::Pdf,
            "docx" => Self::Docx,
            "html" | "htm" | "xhtml" => Self::Html,
            "csv" => Self::Csv,
            "md" | "markdown" => Self::Markdown,
            "txt" | "text" => Self::Text,
            _ => return None,
        })
    }

    /// Whether `file_name` has an extension of a format we read (what `switchboard ingest` picks up).
    pub fn is_known_file_name(file_name: &str) -> bool {
        Self::from_file_name(file_name).is_some()
    }
}

/// What the uploader said about the file; the content has the last word.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub file_name: Option<String>,
    pub media_type: Option<String>,
}

impl Hints {
    /// The format the hints name: the declared media type first (a generic one, such as
    /// `application/octet-stream`, names none), then the file name's extension.
    fn format(&self) -> Option<Format> {
        self.media_type
            .as_deref()
            .and_then(Format::from_media_type)
            .or_else(|| self.file_name.as_deref().and_then(Format::from_file_name))
    }

    /// The most a file with these hints may be before its content is seen: its format's limit when the
    /// hints name one, else the largest. (The content decides in the end: [`convert`] checks again.)
    pub fn max_file_bytes(&self) -> usize {
        self.format().map_or(MAX_FILE_BYTES, Format::max_file_bytes)
    }
}

/// A file as Markdown.
#[derive(Debug, Clone)]
pub struct Converted {
    pub format: Format,
    pub markdown: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A format we do not read (an image, a spreadsheet, an old `.doc`, a zip of something else).
    #[error("{0}")]
    Unsupported(String),
    /// A format we read, but this file is damaged, or holds no text we can read.
    #[error("{0}")]
    Unreadable(String),
    /// Protected by a password we do not have.
    #[error("{0}")]
    Encrypted(String),
    /// Larger than its format's limit.
    #[error("a {} file may be at most {limit} bytes", format.name())]
    TooLarge { format: Format, limit: usize },
    /// Its text, as Markdown, is more than a document may hold.
    #[error("the file's text is more than the {MAX_MARKDOWN_BYTES} bytes a document may hold")]
    TooMuchText,
}

/// Tells the file's format and converts it to Markdown. CPU-bound and linear in the file (a large PDF
/// takes seconds): call [`convert_in_background`] from async code.
pub fn convert(bytes: &[u8], hints: &Hints) -> Result<Converted, FormatError> {
    let format = detect(bytes, hints)?;
    if bytes.len() > format.max_file_bytes() {
        return Err(FormatError::TooLarge { format, limit: format.max_file_bytes() });
    }
    let markdown = match format {
        Format::Pdf => pdf::to_markdown(bytes)?,
        Format::Docx => docx::to_markdown(bytes)?,
        Format::Html => html::to_markdown(&text::decode(bytes)?)?,
        Format::Csv => csv::to_markdown(&text::decode(bytes)?)?,
        Format::Markdown | Format::Text => text::decode(bytes)?,
    };
    if markdown.len() > MAX_MARKDOWN_BYTES {
        return Err(FormatError::TooMuchText);
    }
    if markdown.trim().is_empty() {
        return Err(FormatError::Unreadable(format!("the {} file holds no text", format.name())));
    }
    Ok(Converted { format, markdown })
}

/// [`convert`] on the blocking pool, within the process-wide bound on CPU work
/// ([`background::cpu_bound`]), so that one tenant's large PDF holds no async worker. A converter that
/// panics (a parser meeting input it did not foresee) refuses the file rather than the request.
pub async fn convert_in_background(bytes: Vec<u8>, hints: Hints) -> Result<Converted, FormatError> {
    match background::cpu_bound(move || convert(&bytes, &hints)).await {
        Ok(converted) => converted,
        Err(error) if error.is_panic() => {
            tracing::warn!(%error, "a document converter panicked; the file is refused as unreadable");
            Err(FormatError::Unreadable("the file could not be read".to_owned()))
        }
        Err(error) => panic!("the conversion never ran: {error}"),
    }
}

/// The file's format: what its content shows, else what the hints name, else text by its look.
fn detect(bytes: &[u8], hints: &Hints) -> Result<Format, FormatError> {
    let hinted = hints.format();
    // At the start (after white space or a byte order mark, which some tools leave): a text that only
    // mentions `%PDF-` further on is no PDF.
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if start.trim_ascii_start().starts_with(b"%PDF-") {
        return Ok(Format::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        // Which zip it is (DOCX, or a spreadsheet, or an archive) the DOCX reader tells.
        return Ok(Format::Docx);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        // An OLE compound file: a password-protected Office file keeps its content in an `EncryptedPackage`
        // stream (named in UTF-16); otherwise it is an old binary format (`.doc`, `.xls`).
        let encrypted_package: Vec<u8> = "EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes).collect();
        if bytes.windows(encrypted_package.len()).any(|window| window == encrypted_package) {
            return Err(FormatError::Encrypted(
                "the Office file is protected by a password; remove the password and upload it again".to_owned(),
            ));
        }
        return Err(FormatError::Unsupported(
            "old binary Office formats (.doc, .xls) are not supported; save the file as .docx".to_owned(),
        ));
    }
    if let Some((_, what)) = OTHER_FORMATS.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Err(FormatError::Unsupported(format!(
            "the file is {what}; the supported formats are PDF, DOCX, HTML, CSV, Markdown and plain text"
        )));
    }
    match hinted {
        Some(format @ (Format::Pdf | Format::Docx)) => Err(FormatError::Unreadable(format!(
            "the file is said to be {} but is not: it may be damaged",
            format.name()
        ))),
        Some(format) => Ok(format),
        None if text::looks_like_text(bytes) => {
            Ok(if html::looks_like_html(bytes) { Format::Html } else { Format::Text })
        }
        None => Err(FormatError::Unsupported(
            "the file is not one of the supported formats: PDF, DOCX, HTML, CSV, Markdown or plain text".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(file_name: &str, media_type: Option<&str>) -> Hints {
        Hints { file_name: Some(file_name.to_owned()), media_type: media_type.map(str::to_owned) }
    }

    #[test]
    fn content_decides_then_the_declared_type_then_the_name() {
        let pdf = b"%PDF-1.7\n...";
        assert_eq!(detect(pdf, &hints("notes.txt", Some("text/plain"))).unwrap(), Format::Pdf);
        assert_eq!(detect(b"# Magic\n\nA PDF starts with %PDF-.", &hints("magic.md", None)).unwrap(), Format::Markdown);
        assert_eq!(detect(b"PK\x03\x04rest", &hints("a.bin", None)).unwrap(), Format::Docx);
        assert_eq!(detect(b"a,b\n1,2\n", &hints("a.txt", Some("text/csv; charset=utf-8"))).unwrap(), Format::Csv);
        assert_eq!(detect(b"a,b\n1,2\n", &hints("a.csv", Some("application/octet-stream"))).unwrap(), Format::Csv);
        assert_eq!(detect(b"# Title\n", &hints("README", None)).unwrap(), Format::Text);
        assert_eq!(detect(b"<!DOCTYPE html><p>x</p>", &hints("page", None)).unwrap(), Format::Html);
        assert!(matches!(detect(b"plain words", &hints("a.pdf", None)), Err(FormatError::Unreadable(_))));
        assert!(matches!(detect(b"\x89PNG\r\n\x1a\n\0\0\0", &hints("a.png", None)), Err(FormatError::Unsupported(_))));
        assert!(matches!(detect(b"\x89PNG\r\n\x1a\n\0\0\0", &hints("a.md", None)), Err(FormatError::Unsupported(_))));
        assert!(matches!(detect(b"{\\rtf1\\ansi", &hints("a.txt", None)), Err(FormatError::Unsupported(_))));
        let ole = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0];
        assert!(matches!(detect(&ole, &hints("a.doc", None)), Err(FormatError::Unsupported(_))));
        let mut protected = ole.to_vec();
        protected.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
        assert!(matches!(detect(&protected, &hints("a.docx", None)), Err(FormatError::Encrypted(_))));
    }

    #[test]
    fn each_format_has_its_own_size_limit_and_the_hints_choose_it_before_the_content_is_seen() {
        assert!(Format::Pdf.max_file_bytes() > Format::Docx.max_file_bytes());
        assert!(Format::Docx.max_file_bytes() > Format::Html.max_file_bytes());
        assert!(Format::Html.max_file_bytes() > Format::Text.max_file_bytes());
        assert_eq!(hints("a.md", None).max_file_bytes(), MAX_DOCUMENT_BYTES);
        assert_eq!(hints("a.bin", Some("application/pdf")).max_file_bytes(), Format::Pdf.max_file_bytes());
        assert_eq!(Hints::default().max_file_bytes(), MAX_FILE_BYTES);
        let big_text = "word ".repeat(MAX_DOCUMENT_BYTES / 5 + 1);
        assert!(matches!(
            convert(big_text.as_bytes(), &hints("a.txt", None)),
            Err(FormatError::TooLarge { format: Format::Text, .. })
        ));
    }

    #[test]
    fn blank_files_are_unreadable() {
        assert!(matches!(convert(b"  \n", &hints("a.md", None)), Err(FormatError::Unreadable(_))));
        assert!(matches!(convert(b"", &hints("a.csv", None)), Err(FormatError::Unreadable(_))));
    }
}
