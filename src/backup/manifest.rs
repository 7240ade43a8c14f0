//! `manifest.json`: what a backup holds and what restoring it needs (the master key's fingerprint, the
//! schema version, the dump's checksum), written last, read first.

use std::io::Read as _;
use std::path::Path;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::BackupError;

/// The layout of a backup directory this Switchboard writes and reads; a later layout gets a new number.
pub const FORMAT: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";
pub const DUMP_FILE: &str = "switchboard.dump";

/// Where the dumped database ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The bundled server of a data directory.
    Embedded,
    /// The operator's server (`DATABASE_URL`).
    External,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub switchboard_version: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub source: Source,
    /// `server_version` of the dumped server.
    pub postgres_version: String,
    /// The last migration applied to the dumped database: a restore needs a Switchboard that knows it.
    pub schema_version: i64,
    /// [`fingerprint`] of the master key the database was running under; never the key.
    pub master_key_fingerprint: String,
    pub dump: DumpFile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpFile {
    pub file: String,
    /// How it was made, for a person reading the manifest: `pg_dump --format=custom --compress=gzip:1`.
    pub made_by: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A one-way mark of a master key: HMAC-SHA256 under the key of a fixed label. It tells whether two keys
/// are the same without telling anything of either, so it can sit in a backup that never holds the key.
pub fn fingerprint(master_key: &SecretString) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(master_key.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"switchboard backup: master key fingerprint");
    hex::encode(mac.finalize().into_bytes())
}

/// The first characters of a fingerprint, enough to tell keys apart in a message.
pub fn short(fingerprint: &str) -> &str {
    fingerprint.get(..16).unwrap_or(fingerprint)
}

/// The SHA-256 (hex) and size of a file, read in pieces.
pub fn digest_file(path: &Path) -> Result<(String, u64), BackupError> {
    let io_error = |source| BackupError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(io_error)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

impl Manifest {
    /// Reads and checks `DIR/manifest.json`: a format this Switchboard knows, a dump file name without a path.
    pub fn read(backup_dir: &Path) -> Result<Self, BackupError> {
        let path = backup_dir.join(MANIFEST_FILE);
        let invalid = |reason: String| BackupError::Manifest { path: path.clone(), reason };
        let text = std::fs::read_to_string(&path).map_err(|error| invalid(error.to_string()))?;
        let manifest: Self = serde_json::from_str(&text).map_err(|error| invalid(error.to_string()))?;
        if manifest.format != FORMAT {
            return Err(BackupError::UnsupportedFormat(manifest.format));
        }
        if manifest.dump.file.is_empty() || manifest.dump.file.contains('/') || manifest.dump.file.starts_with('.') {
            return Err(invalid(format!("the dump file name {:?} is not a plain file name", manifest.dump.file)));
        }
        Ok(manifest)
    }

    /// The dump's path inside the backup directory.
    pub fn dump_path(&self, backup_dir: &Path) -> std::path::PathBuf {
        backup_dir.join(&self.dump.file)
    }

    /// Checks the dump against the recorded size and checksum.
    pub fn verify_dump(&self, backup_dir: &Path) -> Result<(), BackupError> {
        let path = self.dump_path(backup_dir);
        let (sha256, bytes) = digest_file(&path)?;
        if sha256 != self.dump.sha256 || bytes != self.dump.bytes {
            return Err(BackupError::Checksum { path, expected: self.dump.sha256.clone(), found: sha256 });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_keys_apart_without_showing_them() {
        let key = SecretString::from("a-master-key".to_owned());
        let same = SecretString::from("a-master-key".to_owned());
        let other = SecretString::from("another-master-key".to_owned());
        assert_eq!(fingerprint(&key), fingerprint(&same));
        assert_ne!(fingerprint(&key), fingerprint(&other));
        assert_eq!(fingerprint(&key).len(), 64);
        assert!(!fingerprint(&key).contains("a-master-key"));
        assert_eq!(short(&fingerprint(&key)).len(), 16);
    }

    #[test]
    fn a_manifest_reads_back_and_refuses_other_formats_and_paths() {
        let dir = std::env::temp_dir().join(format!("switchboard-manifest-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = Manifest {
            format: FORMAT,
            switchboard_version: "0.1.0".to_owned(),
            created_at: chrono::Utc::now(),
            source: Source::Embedded,
            postgres_version: "18.3".to_owned(),
            schema_version: 23,
            master_key_fingerprint: "ab".repeat(32),
            dump: DumpFile {
                file: DUMP_FILE.to_owned(),
                made_by: "pg_dump --format=custom".to_owned(),
                bytes: 3,
                sha256: "x".to_owned(),
            },
        };
        let write = |manifest: &Manifest| {
            std::fs::write(dir.join(MANIFEST_FILE), serde_json::to_string(manifest).unwrap()).unwrap();
        };
        write(&manifest);
        assert_eq!(Manifest::read(&dir).unwrap(), manifest);
        write(&Manifest { format: FORMAT + 1, ..manifest.clone() });
        assert!(matches!(Manifest::read(&dir), Err(BackupError::UnsupportedFormat(2))));
        let mut escaping = manifest.clone();
        escaping.dump.file = "../elsewhere".to_owned();
        write(&escaping);
        assert!(matches!(Manifest::read(&dir), Err(BackupError::Manifest { .. })));
        std::fs::write(dir.join(DUMP_FILE), "abc").unwrap();
        assert!(matches!(manifest.verify_dump(&dir), Err(BackupError::Checksum { .. })));
        let (sha256, bytes) = digest_file(&dir.join(DUMP_FILE)).unwrap();
        let matching = Manifest { dump: DumpFile { bytes, sha256, ..manifest.dump.clone() }, ..manifest };
        matching.verify_dump(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
