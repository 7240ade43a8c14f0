//! Encryption at rest of tenants' secrets (provider keys, connector tokens) with AES-256-GCM under the
//! master key. Each ciphertext records which master key sealed it, so the master key can be rotated: the
//! new key seals, previous keys still open until `switchboard rotate-master-key` has re-sealed every row.
//! The associated data binds a ciphertext to its row, so a ciphertext copied to another tenant's row
//! does not open.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("no configured master key has id {0}; set SWITCHBOARD_PREVIOUS_MASTER_KEYS to the key that sealed it")]
    UnknownKey(String),
    #[error("a stored secret did not decrypt: wrong master key or tampered data")]
    Undecryptable,
}

/// One master key and its public id.
struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

impl MasterKey {
    fn derive(secret: &SecretString) -> Self {
        // Any string works as a master key; it is stretched to 256 bits. Operators should use 32 random bytes.
        let bytes: [u8; 32] = Sha256::digest(secret.expose_secret().as_bytes()).into();
        let id = hex::encode(&Sha256::digest([b"switchboard master key id:".as_slice(), &bytes].concat())[..4]);
        Self { id, cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(bytes)) }
    }
}

/// The current master key and any previous ones still needed to open old ciphertexts.
pub struct MasterKeys {
    current: MasterKey,
    previous: Vec<MasterKey>,
    /// Signs widget tokens; derived from the current master key, so rotating it ends every token.
    widget_signing_key: [u8; 32],
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("MasterKeys").field("current", &self.current.id).finish_non_exhaustive()
    }
}

/// A sealed secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl MasterKeys {
    pub fn new(current: &SecretString, previous: &[SecretString]) -> Self {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(current.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"switchboard widget tokens");
        Self {
            current: MasterKey::derive(current),
            previous: previous.iter().map(MasterKey::derive).collect(),
            widget_signing_key: mac.finalize().into_bytes().into(),
        }
    }

    pub fn widget_signing_key(&self) -> &[u8; 32] {
        &self.widget_signing_key
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    pub fn seal(&self, plaintext: &SecretString, associated_data: &str) -> Sealed {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload { msg: plaintext.expose_secret().as_bytes(), aad: associated_data.as_bytes() };
        let ciphertext = self
            .current
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .expect("AES-GCM encrypts any message under 64 GiB");
        Sealed { key_id: self.current.id.clone(), nonce: nonce.to_vec(), ciphertext }
    }

    pub fn open(&self, sealed: &Sealed, associated_data: &str) -> Result<SecretString, CryptoError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == sealed.key_id)
            .ok_or_else(|| CryptoError::UnknownKey(sealed.key_id.clone()))?;
        let nonce: [u8; 12] = sealed.nonce.as_slice().try_into().map_err(|_| CryptoError::Undecryptable)?;
        let payload = Payload { msg: &sealed.ciphertext, aad: associated_data.as_bytes() };
        let plaintext = key.cipher.decrypt(&Nonce::from(nonce), payload).map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(plaintext).map(SecretString::from).map_err(|_| CryptoError::Undecryptable)
    }

    /// The secret sealed again under the current key, or `None` when the current key sealed it already.
    /// Provider keys and connector credentials are both re-sealed here when the master key rotates, so a
    /// row is sealed again with exactly the associated data it was opened with.
    pub fn reseal(&self, sealed: &Sealed, associated_data: &str) -> Result<Option<Sealed>, CryptoError> {
        if sealed.key_id == self.current.id {
            return Ok(None);
        }
        let secret = self.open(sealed, associated_data)?;
        Ok(Some(self.seal(&secret, associated_data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> SecretString {
        SecretString::from(value.to_owned())
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_their_row() {
        let keys = MasterKeys::new(&secret("master-one"), &[]);
        let sealed = keys.seal(&secret("sk-canary"), "tenant-a/openai");
        assert!(!sealed.ciphertext.windows(9).any(|window| window == b"sk-canary"));
        assert_eq!(keys.open(&sealed, "tenant-a/openai").unwrap().expose_secret(), "sk-canary");
        assert!(matches!(keys.open(&sealed, "tenant-b/openai"), Err(CryptoError::Undecryptable)));

        let other = MasterKeys::new(&secret("master-two"), &[]);
        assert!(matches!(other.open(&sealed, "tenant-a/openai"), Err(CryptoError::UnknownKey(_))));
        let rotated = MasterKeys::new(&secret("master-two"), &[secret("master-one")]);
        assert_eq!(rotated.open(&sealed, "tenant-a/openai").unwrap().expose_secret(), "sk-canary");
        assert_ne!(rotated.current_id(), sealed.key_id);
    }

    #[test]
    fn resealing_moves_a_secret_to_the_current_key_once() {
        let old = MasterKeys::new(&secret("master-one"), &[]);
        let sealed = old.seal(&secret("sk-canary"), "tenant-a/openai");
        assert!(old.reseal(&sealed, "tenant-a/openai").unwrap().is_none(), "already under the current key");

        let rotated = MasterKeys::new(&secret("master-two"), &[secret("master-one")]);
        let resealed = rotated.reseal(&sealed, "tenant-a/openai").unwrap().expect("sealed by a previous key");
        assert_eq!(resealed.key_id, rotated.current_id());
        let new_only = MasterKeys::new(&secret("master-two"), &[]);
        assert_eq!(new_only.open(&resealed, "tenant-a/openai").unwrap().expose_secret(), "sk-canary");
        assert!(rotated.reseal(&resealed, "tenant-a/openai").unwrap().is_none());
        assert!(matches!(rotated.reseal(&sealed, "tenant-b/openai"), Err(CryptoError::Undecryptable)));
    }

    #[test]
    fn a_tampered_ciphertext_does_not_open() {
        let keys = MasterKeys::new(&secret("master"), &[]);
        let mut sealed = keys.seal(&secret("value"), "row");
        sealed.ciphertext[0] ^= 1;
        assert!(matches!(keys.open(&sealed, "row"), Err(CryptoError::Undecryptable)));
    }
}
