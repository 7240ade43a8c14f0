//! Standard Webhooks signatures: a destination's secret is `whsec_` and the base64 of 32 random bytes; each
//! attempt is signed as `v1,` and the base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`
//! with the secret's bytes (https://www.standardwebhooks.com).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// A stored secret that is not one of ours (it cannot happen unless the row was tampered with).
#[derive(Debug, thiserror::Error)]
#[error("the destination's signing secret is malformed")]
pub struct MalformedSecret;

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
}

/// The `webhook-id` of a delivery: the same on every attempt, so a receiver can drop duplicates.
pub fn message_id(delivery_id: uuid::Uuid) -> String {
    format!("msg_{}", delivery_id.simple())
}

/// The `webhook-signature` header's value for one attempt.
pub fn signature(
    secret: &SecretString,
    message_id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String, MalformedSecret> {
    let encoded = secret.expose_secret().strip_prefix(SECRET_PREFIX).ok_or(MalformedSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| MalformedSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| MalformedSecret)?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_specifications_test_vector() {
        // The example of the Standard Webhooks reference libraries.
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signed = signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, r#"{"test": 2432232314}"#);
        assert_eq!(signed.unwrap(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn new_secrets_are_32_random_bytes_behind_the_prefix() {
        let (one, two) = (new_secret(), new_secret());
        assert_ne!(one.expose_secret(), two.expose_secret());
        let encoded = one.expose_secret().strip_prefix(SECRET_PREFIX).unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), 32);
        assert!(signature(&one, "msg_1", 1, "{}").unwrap().starts_with("v1,"));
        assert!(signature(&SecretString::from("no prefix"), "msg_1", 1, "{}").is_err());
    }

    #[test]
    fn message_ids_are_stable_for_a_delivery() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(message_id(id), message_id(id));
        assert!(message_id(id).starts_with("msg_") && !message_id(id).contains('-'));
    }
}
