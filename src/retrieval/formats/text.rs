//! Plain text and Markdown files: stored as they are, once decoded (UTF-8, or UTF-16 with its byte order
//! mark, as Windows editors save it).

use super::FormatError;

/// The file's text: UTF-8 without its byte order mark, or UTF-16 with one.
pub fn decode(bytes: &[u8]) -> Result<String, FormatError> {
    let not_text =
        || FormatError::Unreadable("the file is not text: use UTF-8 (or UTF-16 with a byte order mark)".to_owned());
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8(rest.to_vec()).map_err(|_| not_text());
    }
    let utf16 = |rest: &[u8], from: fn([u8; 2]) -> u16| {
        if !rest.len().is_multiple_of(2) {
            return Err(not_text());
        }
        let units: Vec<u16> = rest.chunks_exact(2).map(|pair| from([pair[0], pair[1]])).collect();
        String::from_utf16(&units).map_err(|_| not_text())
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| not_text())
}

/// Whether the file's start reads as text: UTF-8 (a character cut at the end of the sample aside) or
/// UTF-16 with a byte order mark, and no NUL byte in UTF-8.
pub fn looks_like_text(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return true;
    }
    let sample = &bytes[..bytes.len().min(8192)];
    let valid = match std::str::from_utf8(sample) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none(),
    };
    valid && !sample.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_and_utf16_with_a_byte_order_mark_are_text_and_latin1_is_not() {
        assert_eq!(decode("\u{FEFF}# Ünïcode".as_bytes()).unwrap(), "# Ünïcode");
        let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain("hé".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(decode(&utf16).unwrap(), "hé");
        assert!(looks_like_text(&utf16));
        assert!(matches!(decode(b"caf\xE9"), Err(FormatError::Unreadable(_))));
        assert!(!looks_like_text(b"caf\xE9 au lait"));
        assert!(!looks_like_text(b"nul\0byte"));
        // A character cut at the end of the sample is still text.
        let mut long = "a".repeat(8191).into_bytes();
        long.extend("é".as_bytes());
        assert!(looks_like_text(&long));
    }
}
