//! Extractors whose rejections use the API's error shape, and the authentication extractors that turn a
//! bearer token into a [`TenantContext`] or the operator.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use super::limits;
use super::request_id::RequestId;
use crate::auth::context::TenantContext;
use crate::auth::{self, AuthError};
use crate::idempotency::IdempotencyError;

/// JSON body; malformed JSON is 400 `malformed_json`, a wrong shape or type is 422 `invalid_request`,
/// and text holding a NUL character (which PostgreSQL cannot store) is 422 `invalid_text`, for every
/// route at once.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else if limits::is_body_timeout(&rejection) {
                body_timed_out()
            } else {
                ApiError::bad_request("bad_request", rejection.body_text())
            }
        })?;
        if holds_nul(&bytes) {
            return Err(nul_refused());
        }
        if is_json_but_not_an_object(&bytes) {
            // serde fills a struct from an array by position: `[null, null]` would pass as `{}`.
            return Err(ApiError::invalid("the request body must be a JSON object"));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

/// 408 `request_timeout` for a body that stopped arriving (`SWITCHBOARD_BODY_TIMEOUT_SECS`); hyper then
/// closes the connection, whose body was left unfinished.
fn body_timed_out() -> ApiError {
    ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request body stopped arriving")
}

/// `application/json`, or a `+json` type, as axum's own extractor accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// True when any string (or key) of the JSON holds U+0000. Raw NUL bytes are not valid JSON, so only the
/// escape can carry one; the text is parsed only when the escape appears at all.
fn holds_nul(body: &[u8]) -> bool {
    fn walk(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => text.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(walk),
            serde_json::Value::Object(fields) => fields.iter().any(|(key, value)| key.contains('\0') || walk(value)),
            _ => false,
        }
    }
    let escaped = body.windows(6).any(|window| window.eq_ignore_ascii_case(b"\\u0000"));
    escaped && serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|value| walk(&value))
}

/// Well-formed JSON whose top level is an array, a string, a number, a boolean or null. Malformed JSON is
/// left to the parser, which says where it broke.
fn is_json_but_not_an_object(body: &[u8]) -> bool {
    let starts_an_object = body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    !starts_an_object && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

fn nul_refused() -> ApiError {
    ApiError::invalid_code("invalid_text", "text must not contain NUL characters (\\u0000)")
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(error) => Self::invalid(error.body_text()),
            JsonRejection::JsonSyntaxError(error) => Self::bad_request("malformed_json", error.body_text()),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::from_status(StatusCode::PAYLOAD_TOO_LARGE)
            }
            other => Self::bad_request("bad_request", other.body_text()),
        }
    }
}

/// Path parameters; one that does not parse (a malformed id) is 400 `invalid_path`, one holding a NUL
/// 422 `invalid_text`.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if query_or_path_holds_nul(parts.uri.path()) {
            return Err(nul_refused());
        }
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A path or query string with an encoded NUL (`%00`): refused before any extractor decodes it.
fn query_or_path_holds_nul(text: &str) -> bool {
    text.as_bytes().windows(3).any(|window| window.eq_ignore_ascii_case(b"%00"))
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid_path", rejection.body_text())
    }
}

/// Query-string parameters; one of the wrong type is 400 `invalid_query`, one holding a NUL 422
/// `invalid_text`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(query_or_path_holds_nul) {
            return Err(nul_refused());
        }
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}

/// A page size from the query string: `default` when absent, 422 outside `1..=max`.
pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid(format!("limit must be between 1 and {max}")))
    }
}

/// The keyset cursor for the next page: the last item's id when the page is full, else none.
pub fn next_before<T, Id>(page: &[T], limit: i64, id: impl Fn(&T) -> Id) -> Option<Id> {
    let full = usize::try_from(limit).is_ok_and(|limit| page.len() == limit);
    page.last().filter(|_| full).map(id)
}

fn bearer_token(parts: &Parts) -> Result<&str, AuthError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or(AuthError::MissingToken)?;
    let value = value.to_str().map_err(|_| AuthError::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::InvalidToken);
    }
    Ok(token.trim())
}

fn request_id(parts: &Parts) -> Option<String> {
    parts.extensions.get::<RequestId>().map(|id| id.0.clone())
}

/// A request authenticated with a tenant API key; handlers then `require` the scope they need.
#[derive(Debug)]
pub struct Tenant(pub TenantContext);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        Ok(Self(tenant_of(token, parts, state).await?))
    }
}

/// The tenant a token (an API key or a widget token) stands for.
async fn tenant_of(token: &str, parts: &Parts, state: &AppState) -> Result<TenantContext, ApiError> {
    let context = auth::authenticate(&state.db, &state.keys, token, request_id(parts)).await?;
    tracing::Span::current().record("tenant_id", tracing::field::display(context.tenant_id()));
    Ok(context)
}

/// [`Tenant`], with the token in `x-api-key` (as Anthropic's clients send it) or else as a bearer token.
#[derive(Debug)]
pub struct KeyHeaderTenant(pub TenantContext);

impl FromRequestParts<AppState> for KeyHeaderTenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = match parts.headers.get("x-api-key") {
            Some(value) => value.to_str().map_err(|_| AuthError::InvalidToken)?.trim(),
            None => bearer_token(parts).map_err(|error| match error {
                AuthError::MissingToken => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "an x-api-key header (or an Authorization: Bearer token) is required",
                ),
                other => other.into(),
            })?,
        };
        Ok(Self(tenant_of(token, parts, state).await?))
    }
}

/// A request authenticated with the operator token.
#[derive(Debug)]
pub struct Operator {
    pub request_id: Option<String>,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        state.operator_token.verify(bearer_token(parts)?)?;
        Ok(Self { request_id: request_id(parts) })
    }
}

/// True when the `Accept` header names `media_type` (parameters and the other types aside).
pub fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.split(',').any(|part| part.trim().starts_with(media_type)))
}

/// The `Idempotency-Key` header as sent; a value that is not visible ASCII is refused, never ignored.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map_err(|_| ApiError::from(IdempotencyError::InvalidKey))?;
    Ok(Some(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;
    use crate::idempotency::IdempotencyKey;

    /// The key a door starts a run with: the header as sent, then parsed.
    fn key_of(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
        Ok(idempotency_key(headers)?.as_deref().map(IdempotencyKey::parse).transpose()?)
    }

    #[test]
    fn without_the_header_there_is_no_key() {
        assert!(matches!(key_of(&HeaderMap::new()), Ok(None)));
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

        /// Any `Idempotency-Key` a client can send is the key exactly as sent (1 to 200 visible ASCII
        /// characters) or a 400 `invalid_request`: never ignored.
        #[test]
        fn any_idempotency_key_header_is_the_key_as_sent_or_refused(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..32),
                "[!-~]{1,210}".prop_map(String::into_bytes),
                "[ -~\t]{0,24}".prop_map(String::into_bytes),
            ],
        ) {
            // Bytes no header value can hold (controls, DEL) never reach a handler.
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
            let mut headers = HeaderMap::new();
            headers.insert("idempotency-key", value);
            let visible = (1..=200).contains(&bytes.len()) && bytes.iter().all(|byte| (0x21..=0x7e).contains(byte));
            match key_of(&headers) {
                Ok(Some(key)) => {
                    prop_assert!(visible, "{:?} was taken", bytes);
                    prop_assert_eq!(key.as_str().as_bytes(), &bytes[..]);
                }
                Ok(None) => return Err(TestCaseError::fail("a key that was sent was ignored")),
                Err(error) => {
                    prop_assert!(!visible, "{:?} was refused", bytes);
                    prop_assert_eq!(error.status, StatusCode::BAD_REQUEST);
                    prop_assert_eq!(error.code, "invalid_request");
                }
            }
        }
    }
}
