//! Workspace trees as archives: a tar, tar.gz or zip upload read into files (every path checked, every
//! size bounded while reading, so a zip bomb stops at its cap), and a workspace written out as a tar.
//! Pure and synchronous: callers run it on the blocking pool.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::rc::Rc;

use super::{MAX_FILE_BYTES, check_path};

/// The most entries (files, directories and the rest) an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;
/// The most bytes its files may hold together, uncompressed.
pub const MAX_TOTAL_BYTES: usize = 64 * 1024 * 1024;
/// What a compressed tar may inflate to at most: its files and, per entry, a header and padding to spare.
const MAX_INFLATED_TAR_BYTES: usize = MAX_TOTAL_BYTES + MAX_ENTRIES * 2048;

/// Why an archive is refused; nothing of it is written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    /// Not a tar, tar.gz or zip, or one that is damaged or encrypted.
    #[error("{0}")]
    Invalid(String),
    /// An entry whose path would leave the workspace (`..`, absolute, a backslash, NUL) or is not a valid
    /// workspace path.
    #[error(
        "the archive entry `{0}` is not a relative path inside the workspace (no `..`, absolute paths or backslashes)"
    )]
    UnsafePath(String),
    /// A symbolic or hard link, a device or a FIFO: only files and directories are taken.
    #[error("the archive entry `{0}` is a link or a special file; only regular files and directories are taken")]
    Link(String),
    /// A file that is not UTF-8 text (NUL bytes or invalid UTF-8).
    #[error("the archive entry `{0}` is a binary file; only UTF-8 text without NUL bytes is taken")]
    Binary(String),
    #[error("the archive holds more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("the archive entry `{0}` is larger than {MAX_FILE_BYTES} bytes, the most a file may hold")]
    EntryTooLarge(String),
    #[error("the archive's files hold more than {MAX_TOTAL_BYTES} bytes uncompressed")]
    TooLarge,
}

/// The kind of archive a body is, told from its first bytes, else from its declared media type (an old
/// tar has no magic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    TarGz,
    Zip,
}

impl ArchiveKind {
    pub fn detect(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ArchiveError> {
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            return Ok(Self::Zip);
        }
        if bytes.starts_with(b"\x1F\x8B") {
            return Ok(Self::TarGz);
        }
        if bytes.get(257..262) == Some(b"ustar".as_slice()) {
            return Ok(Self::Tar);
        }
        let essence = content_type.and_then(|value| value.split(';').next()).unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/x-tar") && bytes.len() >= 512 && bytes.len().is_multiple_of(512) {
            return Ok(Self::Tar);
        }
        Err(ArchiveError::Invalid("the body is not a tar, tar.gz or zip archive".to_owned()))
    }
}

/// The files of an archive, by path (a path given twice: the later entry wins, as tar extracts it).
/// Directories are skipped; a leading `./` is dropped.
pub fn read(bytes: &[u8], kind: ArchiveKind) -> Result<BTreeMap<String, String>, ArchiveError> {
    match kind {
        ArchiveKind::Tar => read_tar(bytes, None),
        ArchiveKind::TarGz => {
            let reached = Rc::new(Cell::new(false));
            let inflated = Capped {
                inner: flate2::read::GzDecoder::new(bytes),
                left: MAX_INFLATED_TAR_BYTES,
                reached: Rc::clone(&reached),
            };
            read_tar(inflated, Some(&reached))
        }
        ArchiveKind::Zip => read_zip(bytes),
    }
}

/// Running totals of what has been taken.
#[derive(Default)]
struct Taken {
    files: BTreeMap<String, String>,
    entries: usize,
    bytes: usize,
}

impl Taken {
    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES { Err(ArchiveError::TooManyEntries) } else { Ok(()) }
    }

    /// Reads one file through a cap of one byte past the limit, so that what is larger is known without
    /// inflating more of it.
    fn take_file(&mut self, path: String, content: &mut dyn Read) -> Result<(), ArchiveError> {
        let mut data = Vec::new();
        let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
        content
            .take(limit)
            .read_to_end(&mut data)
            .map_err(|error| ArchiveError::Invalid(format!("the archive entry `{path}` could not be read: {error}")))?;
        if data.len() > MAX_FILE_BYTES {
            return Err(ArchiveError::EntryTooLarge(path));
        }
        self.bytes += data.len();
        if self.bytes > MAX_TOTAL_BYTES {
            return Err(ArchiveError::TooLarge);
        }
        if data.contains(&0) {
            return Err(ArchiveError::Binary(path));
        }
        let text = String::from_utf8(data).map_err(|_| ArchiveError::Binary(path.clone()))?;
        if let Some(previous) = self.files.insert(path, text) {
            self.bytes -= previous.len();
        }
        Ok(())
    }
}

/// An entry's name as a workspace path: `./` prefixes dropped, a trailing `/` (a directory) kept off.
fn entry_path(raw: &[u8]) -> Result<String, ArchiveError> {
    let name = String::from_utf8_lossy(raw).into_owned();
    let mut path = name.as_str();
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let path = path.trim_end_matches('/');
    if path.contains('\0') || check_path(path).is_err() {
        return Err(ArchiveError::UnsafePath(name));
    }
    Ok(path.to_owned())
}

/// True for the entries that name only the archive's root (`./`, `.`).
fn is_root(raw: &[u8]) -> bool {
    let name = raw.strip_prefix(b".").unwrap_or(raw);
    name.iter().all(|byte| *byte == b'/')
}

fn read_tar(reader: impl Read, capped: Option<&Rc<Cell<bool>>>) -> Result<BTreeMap<String, String>, ArchiveError> {
    let over_cap = |error: ArchiveError| match &capped {
        Some(reached) if reached.get() => ArchiveError::TooLarge,
        _ => error,
    };
    let invalid = |error: std::io::Error| ArchiveError::Invalid(format!("the tar archive could not be read: {error}"));
    let mut archive = tar::Archive::new(reader);
    let mut taken = Taken::default();
    for entry in archive.entries().map_err(|error| over_cap(invalid(error)))? {
        let mut entry = entry.map_err(|error| over_cap(invalid(error)))?;
        taken.count_entry()?;
        let kind = entry.header().entry_type();
        // A pax global header (as `git archive` writes one) describes the archive, not a file.
        if kind.is_pax_global_extensions() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        if kind.is_dir() && is_root(&raw) {
            continue;
        }
        let path = entry_path(&raw)?;
        if kind.is_dir() {
            continue;
        }
        if kind.is_symlink()
            || kind.is_hard_link()
            || kind.is_character_special()
            || kind.is_block_special()
            || kind.is_fifo()
        {
            return Err(ArchiveError::Link(path));
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(ArchiveError::Invalid(format!("the archive entry `{path}` is of a kind that is not taken")));
        }
        taken.take_file(path, &mut entry).map_err(over_cap)?;
    }
    Ok(taken.files)
}

fn read_zip(bytes: &[u8]) -> Result<BTreeMap<String, String>, ArchiveError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| ArchiveError::Invalid(format!("the zip archive could not be read: {error}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(ArchiveError::TooManyEntries);
    }
    let mut taken = Taken::default();
    for index in 0..archive.len() {
        taken.count_entry()?;
        let mut entry = archive.by_index(index).map_err(|error| match error {
            zip::result::ZipError::UnsupportedArchive(zip::result::ZipError::PASSWORD_REQUIRED) => {
                ArchiveError::Invalid("the zip archive is encrypted".to_owned())
            }
            error => ArchiveError::Invalid(format!("the zip archive could not be read: {error}")),
        })?;
        let raw = entry.name_raw().to_vec();
        // macOS adds its resource forks beside the files; they are not part of the tree.
        if raw.starts_with(b"__MACOSX/") {
            continue;
        }
        if entry.is_dir() && is_root(&raw) {
            continue;
        }
        let path = entry_path(&raw)?;
        if entry.is_dir() {
            continue;
        }
        if entry.is_symlink()
            || entry.unix_mode().is_some_and(|mode| mode & 0o170_000 != 0o100_000 && mode & 0o170_000 != 0)
        {
            return Err(ArchiveError::Link(path));
        }
        // The declared size may refuse early; it is never trusted to accept (the read below is capped).
        if entry.size() > u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) {
            return Err(ArchiveError::EntryTooLarge(path));
        }
        taken.take_file(path, &mut entry)?;
    }
    Ok(taken.files)
}

/// A reader that ends with an error past `left` bytes, and says so in `reached`: the cap on what a
/// compressed archive may inflate to.
struct Capped<R> {
    inner: R,
    left: usize,
    reached: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a stream that ends exactly at the cap from one that goes past it.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.reached.set(true);
            return Err(std::io::Error::other("the archive inflates past its limit"));
        }
        let most = buffer.len().min(self.left);
        let read = self.inner.read(&mut buffer[..most])?;
        self.left -= read;
        Ok(read)
    }
}

/// A file written into an exported tar.
#[derive(Debug)]
pub struct TarFile<'a> {
    pub path: &'a str,
    pub content: &'a str,
    /// Seconds since the epoch.
    pub modified: u64,
}

/// The files as a tar (GNU format, so paths of any length), each at its path with mode 0644: extracted,
/// it is the workspace's tree, where `git apply` can run.
pub fn write_tar(files: &[TarFile<'_>]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_mtime(file.modified);
        header.set_size(u64::try_from(file.content.len()).unwrap_or(u64::MAX));
        builder.append_data(&mut header, file.path, file.content.as_bytes())?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            if kind.is_symlink() || kind.is_hard_link() {
                header.set_size(0);
                builder.append_link(&mut header, path, "target").unwrap();
            } else {
                // `set_path` would refuse `..`; the raw name field takes anything, as a hostile archive has it.
                let name = &mut header.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
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

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn kinds_are_told_by_their_magic_then_by_their_media_type() {
        let tar = tar_of(&[("a.txt", tar::EntryType::Regular, b"a")]);
        assert_eq!(ArchiveKind::detect(&tar, None), Ok(ArchiveKind::Tar));
        assert_eq!(ArchiveKind::detect(&gz(&tar), Some("application/octet-stream")), Ok(ArchiveKind::TarGz));
        assert_eq!(ArchiveKind::detect(&zip_of(&[]), None), Ok(ArchiveKind::Zip));
        assert_eq!(ArchiveKind::detect(&[0u8; 1024], Some("application/x-tar")), Ok(ArchiveKind::Tar));
        assert!(matches!(ArchiveKind::detect(b"{\"a\": 1}", Some("application/x-tar")), Err(ArchiveError::Invalid(_))));
    }

    #[test]
    fn files_are_read_from_each_kind_with_directories_and_dot_prefixes_dropped() {
        let tar = tar_of(&[
            ("./", tar::EntryType::Directory, b""),
            ("./src/", tar::EntryType::Directory, b""),
            ("./src/main.rs", tar::EntryType::Regular, b"fn main() {}\n"),
            ("README.md", tar::EntryType::Regular, b"# Hi\n"),
        ]);
        let expected: BTreeMap<String, String> =
            [("README.md", "# Hi\n"), ("src/main.rs", "fn main() {}\n")].map(|(p, c)| (p.into(), c.into())).into();
        assert_eq!(read(&tar, ArchiveKind::Tar).unwrap(), expected);
        assert_eq!(read(&gz(&tar), ArchiveKind::TarGz).unwrap(), expected);
        let zip = zip_of(&[("src/main.rs", b"fn main() {}\n"), ("README.md", b"# Hi\n")]);
        assert_eq!(read(&zip, ArchiveKind::Zip).unwrap(), expected);
    }

    #[test]
    fn hostile_entries_are_refused_by_kind() {
        let cases: Vec<(Vec<u8>, ArchiveKind, ArchiveError)> = vec![
            (
                tar_of(&[("../escape.txt", tar::EntryType::Regular, b"x")]),
                ArchiveKind::Tar,
                ArchiveError::UnsafePath("../escape.txt".into()),
            ),
            (
                tar_of(&[("/etc/passwd", tar::EntryType::Regular, b"x")]),
                ArchiveKind::Tar,
                ArchiveError::UnsafePath("/etc/passwd".into()),
            ),
            (tar_of(&[("link", tar::EntryType::Symlink, b"")]), ArchiveKind::Tar, ArchiveError::Link("link".into())),
            (tar_of(&[("hard", tar::EntryType::Link, b"")]), ArchiveKind::Tar, ArchiveError::Link("hard".into())),
            (tar_of(&[("dev", tar::EntryType::Char, b"")]), ArchiveKind::Tar, ArchiveError::Link("dev".into())),
            (
                tar_of(&[("logo.png", tar::EntryType::Regular, b"\x89PNG\r\n\x1a\n\0\0")]),
                ArchiveKind::Tar,
                ArchiveError::Binary("logo.png".into()),
            ),
            (zip_of(&[("a/../../b", b"x")]), ArchiveKind::Zip, ArchiveError::UnsafePath("a/../../b".into())),
            (zip_of(&[("bad.txt", b"\xff\xfe")]), ArchiveKind::Zip, ArchiveError::Binary("bad.txt".into())),
            (zip_of(&[("win\\path.txt", b"x")]), ArchiveKind::Zip, ArchiveError::UnsafePath("win\\path.txt".into())),
        ];
        for (bytes, kind, expected) in cases {
            assert_eq!(read(&bytes, kind), Err(expected));
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap_and_too_many_entries_are_refused() {
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let bomb = zip_of(&[("zeros.txt", &zeros)]);
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        assert_eq!(read(&bomb, ArchiveKind::Zip), Err(ArchiveError::EntryTooLarge("zeros.txt".into())));
        let text = vec![b'a'; MAX_FILE_BYTES + 1];
        let tar = tar_of(&[("big.txt", tar::EntryType::Regular, &text)]);
        assert_eq!(read(&gz(&tar), ArchiveKind::TarGz), Err(ArchiveError::EntryTooLarge("big.txt".into())));

        let names: Vec<String> = (0..=MAX_ENTRIES).map(|n| format!("f{n}")).collect();
        let many: Vec<(&str, &[u8])> = names.iter().map(|name| (name.as_str(), b"".as_slice())).collect();
        assert_eq!(read(&zip_of(&many), ArchiveKind::Zip), Err(ArchiveError::TooManyEntries));
    }

    #[test]
    fn garbage_is_an_invalid_archive() {
        for kind in [ArchiveKind::Tar, ArchiveKind::TarGz, ArchiveKind::Zip] {
            assert!(matches!(read(b"\x1f\x8bnot really", kind), Err(ArchiveError::Invalid(_))), "{kind:?}");
        }
    }

    #[test]
    fn an_exported_tar_reads_back_as_the_same_files() {
        let long = format!("{}/deep.txt", "d".repeat(150));
        let files = [
            TarFile { path: "src/main.rs", content: "fn main() {}\n", modified: 1_700_000_000 },
            TarFile { path: &long, content: "deep\n", modified: 0 },
        ];
        let tar = write_tar(&files).unwrap();
        let read_back = read(&tar, ArchiveKind::Tar).unwrap();
        assert_eq!(read_back.get("src/main.rs").map(String::as_str), Some("fn main() {}\n"));
        assert_eq!(read_back.get(&long).map(String::as_str), Some("deep\n"));
    }
}
