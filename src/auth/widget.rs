//! Widget tokens: short-lived, signed, for one end user of one tenant. `sbw_<payload>.<signature>`, both
//! hex; the payload is JSON `{tenant_id, user_id, expires_at}` and the signature HMAC-SHA256 under a key
//! derived from the master key. Nothing is stored: a token is valid while its signature holds and it
//! has not expired.

use chrono::{DateTime, Utc};
use hmac::Mac as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::crypto::MasterKeys;
use crate::db;
use crate::ids::{TenantId, UserId};

const PREFIX: &str = "sbw_";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
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
) -> Result<IssuedToken, sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    let user_id = crate::users::store::end_user(&mut transaction, tenant_id, external_user_id).await?;
    transaction.commit().await?;
    let expires_at = Utc::now() + ttl;
    let token = sign(keys, &Claims { tenant_id, user_id, expires_at });
    Ok(IssuedToken { token, expires_at, user_id })
}

/// The token's claims, if its signature holds and it has not expired at `now`.
pub fn verify(keys: &MasterKeys, token: &str, now: DateTime<Utc>) -> Option<Claims> {
    let (payload, presented) = token.strip_prefix(PREFIX)?.split_once('.')?;
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
}
