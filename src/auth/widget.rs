//! Widget tokens: short-lived, signed, for one end user of one tenant. `sbw_<payload>.<signature>`, both
//! hex; the payload is JSON `{tenant_id, user_id, expires_at}` and the signature HMAC-SHA256 under a key
//! derived from the master key. Nothing is stored: a token is valid while its signature holds and it
//! has not expired.

use chrono::{DateTime, Utc};
use hmac::Mac as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::auth::context::CollectionScope;
use crate::crypto::MasterKeys;
use crate::db;
use crate::ids::{TenantId, UserId};

const PREFIX: &str = "sbw_";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    /// The collections the token may search; absent: every collection of the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<uuid::Uuid>>,
}

impl Claims {
    pub fn collections(&self) -> CollectionScope {
        CollectionScope::from_stored(self.collections.clone())
    }
}

fn signature(keys: &MasterKeys, payload: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(keys.widget_signing_key()).expect("a 32-byte key");
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

pub fn is_widget_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

pub fn sign(keys: &MasterKeys, claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialise");
    format!("{PREFIX}{}.{}", hex::encode(&payload), hex::encode(signature(keys, &payload)))
}

/// A token just issued, for the tenant's backend (or the demo page) to hand to the widget.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user_id: UserId,
}

/// Issues a token for the tenant's end user known by `external_user_id`, created on first use.
pub async fn issue(
    pool: &sqlx::PgPool,
    keys: &MasterKeys,
    tenant_id: TenantId,
    external_user_id: &str,
    ttl: chrono::Duration,
    collections: &CollectionScope,
) -> Result<IssuedToken, sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    let user_id = crate::users::store::end_user(&mut transaction, tenant_id, external_user_id).await?;
    transaction.commit().await?;
    let expires_at = Utc::now() + ttl;
    let token = sign(keys, &Claims { tenant_id, user_id, expires_at, collections: collections.to_stored() });
    Ok(IssuedToken { token, expires_at, user_id })
}

/// The token's claims, if its signature holds and it has not expired at `now`.
pub fn verify(keys: &MasterKeys, token: &str, now: DateTime<Utc>) -> Option<Claims> {
    let (payload, presented) = token.strip_prefix(PREFIX)?.split_once('.')?;
    // Only the lower-case hex `sign` writes (`hex::decode` reads either case): a token is one string, so a
    // token with any byte changed is refused.
    let lower_hex = |part: &str| part.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
    if !lower_hex(payload) || !lower_hex(presented) {
        return None;
    }
    let payload = hex::decode(payload).ok()?;
    let presented = hex::decode(presented).ok()?;
    if !bool::from(signature(keys, &payload).as_slice().ct_eq(presented.as_slice())) {
        return None;
    }
    let claims: Claims = serde_json::from_slice(&payload).ok()?;
    (claims.expires_at > now).then_some(claims)
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn tokens_hold_only_with_their_signature_and_until_they_expire() {
        let keys = MasterKeys::new(&SecretString::from("master"), &[]);
        let now = Utc::now();
        let claims = Claims {
            tenant_id: TenantId::new(),
            user_id: UserId::new(),
            expires_at: now + chrono::Duration::minutes(5),
            collections: None,
        };
        let token = sign(&keys, &claims);
        assert_eq!(verify(&keys, &token, now).unwrap().user_id, claims.user_id);
        assert!(verify(&keys, &token, now + chrono::Duration::minutes(6)).is_none(), "expired");
        let other = MasterKeys::new(&SecretString::from("another master"), &[]);
        assert!(verify(&other, &token, now).is_none(), "another key");
        // A payload naming another user, with the old signature, does not hold.
        let forged = Claims { user_id: UserId::new(), ..claims };
        let forged_payload = hex::encode(serde_json::to_vec(&forged).unwrap());
        let signature = token.rsplit_once('.').unwrap().1;
        assert!(verify(&keys, &format!("sbw_{forged_payload}.{signature}"), now).is_none());
        assert!(verify(&keys, "sbw_zz.zz", now).is_none());
    }

    #[test]
    fn a_token_with_a_hex_letter_in_the_other_case_is_refused() {
        // Found by the property below: hex::decode reads upper case too, so `2D` for `2d` held.
        let keys = MasterKeys::new(&SecretString::from("master"), &[]);
        let now = Utc::now();
        let claims = Claims {
            tenant_id: TenantId::new(),
            user_id: UserId::new(),
            expires_at: now + chrono::Duration::minutes(5),
            collections: None,
        };
        let token = sign(&keys, &claims);
        let (payload, signature) = token.rsplit_once('.').unwrap();
        assert!(
            verify(&keys, &format!("{}.{signature}", payload.to_uppercase().replace("SBW_", "sbw_")), now).is_none()
        );
        assert!(verify(&keys, &format!("{payload}.{}", signature.to_uppercase()), now).is_none());
        assert!(verify(&keys, &token, now).is_some());
    }

    mod properties {
        use proptest::prelude::*;
        use proptest::sample::Index;

        use super::*;

        fn keys() -> MasterKeys {
            MasterKeys::new(&SecretString::from("master"), &[])
        }

        /// Claims for any tenant and user, and a moment before they expire.
        fn claims() -> impl Strategy<Value = (Claims, DateTime<Utc>)> {
            (any::<u128>(), any::<u128>(), 1_600_000_000..2_000_000_000i64, 1..100_000_000i64, 0..1_000_000_000u32)
                .prop_map(|(tenant, user, now, ttl, nanos)| {
                    let now = DateTime::from_timestamp(now, 0).expect("in range");
                    let expires_at = now + chrono::Duration::seconds(ttl) + chrono::Duration::nanoseconds(nanos.into());
                    let claims = Claims {
                        tenant_id: TenantId(uuid::Uuid::from_u128(tenant)),
                        user_id: UserId(uuid::Uuid::from_u128(user)),
                        expires_at,
                        collections: None,
                    };
                    (claims, now)
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

            /// Any text, shaped like a token or not, is refused.
            #[test]
            fn any_text_is_refused(
                token in prop_oneof![
                    "(?s).{0,64}",
                    "sbw_[0-9a-fA-F]{0,96}\\.[0-9a-fA-F]{0,64}",
                    "sbw_(?s).{0,48}",
                    "sbw_\\.",
                ],
            ) {
                prop_assert!(verify(&keys(), &token, Utc::now()).is_none());
            }

            /// A token holds, with its claims, until it expires; with any one byte changed it is refused.
            #[test]
            fn a_token_with_any_byte_changed_is_refused(
                (claims, now) in claims(),
                position in any::<Index>(),
                // Each bit pattern to flip; 0x20 turns a hex letter into its other case.
                flip in prop_oneof![3 => 1..=255u8, 1 => Just(0x20u8)],
            ) {
                let keys = keys();
                let token = sign(&keys, &claims);
                let held = verify(&keys, &token, now).expect("a fresh token holds");
                prop_assert_eq!(
                    (held.tenant_id, held.user_id, held.expires_at),
                    (claims.tenant_id, claims.user_id, claims.expires_at)
                );
                prop_assert!(verify(&keys, &token, claims.expires_at).is_none(), "held at its expiry");
                let mut bytes = token.into_bytes();
                let at = position.index(bytes.len());
                bytes[at] ^= flip;
                if let Ok(changed) = String::from_utf8(bytes) {
                    prop_assert!(verify(&keys, &changed, now).is_none(), "{} held with byte {} changed", changed, at);
                }
            }
        }
    }
}
