//! Extractors whose rejections use the API's error shape, and the authentication extractors that turn a
//! bearer token into a [`TenantContext`] or the operator.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use super::AppState;
use super::error::ApiError;
use super::request_id::RequestId;
use crate::auth::{self, AuthError, TenantContext};

/// JSON body; malformed JSON is 400 `malformed_json`, a wrong shape or type is 422 `invalid_request`.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

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

/// Path parameters; one that does not parse (a malformed id) is 400 `invalid_path`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid_path", rejection.body_text())
    }
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
        let context = auth::authenticate_api_key(&state.db, token, request_id(parts)).await?;
        tracing::Span::current().record("tenant_id", tracing::field::display(context.tenant_id()));
        Ok(Self(context))
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
