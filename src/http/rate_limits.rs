//! `/api/v1/rate-limits` and `/api/v1/api-keys/{id}/rate-limits` (admin): the tenant's own limits, its end
//! users' and one key's. Also the doors' side of rate limiting: [`admit`] before a run starts, and for
//! `/v1` OpenAI's `x-ratelimit-*` headers and its 429, or Anthropic's `anthropic-ratelimit-*` headers.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use crate::auth::context::{Scope, TenantContext};
use crate::ids::ApiKeyId;
use crate::rate_limits::{
    self, Admission, Demand, LimitKind, LimitScope, Limits, RateLimitError, Refusal, Standing, Standings,
};

/// Requests and tokens per minute; null is no limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsView {
    requests_per_minute: Option<u64>,
    tokens_per_minute: Option<u64>,
}

impl From<Limits> for LimitsView {
    fn from(limits: Limits) -> Self {
        Self { requests_per_minute: limits.requests_per_minute, tokens_per_minute: limits.tokens_per_minute }
    }
}

/// The operator's defaults: what applies wherever the tenant set nothing.
#[derive(Debug, Serialize, ToSchema)]
pub struct DefaultsView {
    api_key: LimitsView,
    tenant: LimitsView,
    end_user: LimitsView,
}

/// The limits the tenant set for itself and for each of its end users, and the operator's defaults.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantLimitsView {
    tenant: LimitsView,
    end_user: LimitsView,
    defaults: DefaultsView,
    /// Set by the operator only.
    max_concurrent_runs: u64,
}

/// The limits the tenant set for one API key, and the operator's defaults for keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyLimitsView {
    #[schema(value_type = uuid::Uuid)]
    api_key_id: ApiKeyId,
    requests_per_minute: Option<u64>,
    tokens_per_minute: Option<u64>,
    defaults: LimitsView,
}

/// What `PUT /api/v1/api-keys/{id}/rate-limits` takes, and each part of `PUT /api/v1/rate-limits`: a
/// missing or null value is no limit.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // A schema: the handlers read the object with `rate_limits::settings`.
pub struct LimitsChange {
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    requests_per_minute: Option<u64>,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    tokens_per_minute: Option<u64>,
}

/// What `PUT /api/v1/rate-limits` takes: a missing or null part is no limit of the tenant's own.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // A schema: the handler reads the object with `rate_limits::settings`.
pub struct TenantLimitsChange {
    /// The tenant's own limits, for all its requests together.
    tenant: Option<LimitsChange>,
    /// The limits of each end user, each apart.
    end_user: Option<LimitsChange>,
}

fn tenant_view(limits: rate_limits::settings::TenantLimits) -> TenantLimitsView {
    let operator = rate_limits::operator_limits();
    TenantLimitsView {
        tenant: limits.tenant.into(),
        end_user: limits.end_user.into(),
        defaults: DefaultsView {
            api_key: operator.api_key.into(),
            tenant: operator.tenant.into(),
            end_user: operator.end_user.into(),
        },
        max_concurrent_runs: operator.max_concurrent_runs_per_tenant,
    }
}

fn key_view(api_key_id: ApiKeyId, limits: Limits) -> KeyLimitsView {
    KeyLimitsView {
        api_key_id,
        requests_per_minute: limits.requests_per_minute,
        tokens_per_minute: limits.tokens_per_minute,
        defaults: rate_limits::operator_limits().api_key.into(),
    }
}

/// The tenant's rate limits, its end users', and the operator's defaults.
#[utoipa::path(
    get, path = "/rate-limits", tag = "tenant",
    responses((status = 200, description = "The limits.", body = TenantLimitsView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<TenantLimitsView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(tenant_view(rate_limits::settings::tenant_limits(&state.db, &context).await?)))
}

/// Replaces the tenant's limits and its end users': `{"tenant": {…}, "end_user": {…}}`.
#[utoipa::path(
    put, path = "/rate-limits", tag = "tenant",
    request_body = TenantLimitsChange,
    responses((status = 200, description = "The limits as they now are.", body = TenantLimitsView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn put(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<TenantLimitsView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(tenant_view(rate_limits::settings::set_tenant_limits(&state.db, &context, &fields).await?)))
}

/// One API key's rate limits, and the operator's defaults for keys.
#[utoipa::path(
    get, path = "/api-keys/{id}/rate-limits", tag = "tenant",
    params(("id" = uuid::Uuid, Path, description = "The API key's id.")),
    responses((status = 200, description = "The key's limits.", body = KeyLimitsView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get_key(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ApiKeyId>,
) -> Result<axum::Json<KeyLimitsView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(key_view(id, rate_limits::settings::key_limits(&state.db, &context, id).await?)))
}

/// Replaces one key's limits: `{"requests_per_minute": …, "tokens_per_minute": …}`.
#[utoipa::path(
    put, path = "/api-keys/{id}/rate-limits", tag = "tenant",
    params(("id" = uuid::Uuid, Path, description = "The API key's id.")),
    request_body = LimitsChange,
    responses((status = 200, description = "The key's limits as they now are.", body = KeyLimitsView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn put_key(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<ApiKeyId>,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<KeyLimitsView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(key_view(id, rate_limits::settings::set_key_limits(&state.db, &context, id, &fields).await?)))
}

/// What a door calls before it starts a run: a refusal is the API's 429, and nothing has been started.
pub async fn admit(state: &AppState, context: &TenantContext, demand: &Demand<'_>) -> Result<Admission, ApiError> {
    Ok(counted(rate_limits::admit(&state.db, context, demand).await)?)
}

/// The admission, its refusals counted in the metrics.
fn counted(admission: Result<Admission, RateLimitError>) -> Result<Admission, RateLimitError> {
    match &admission {
        Err(RateLimitError::Limited(_)) => crate::metrics::refused("rate_limit"),
        Err(RateLimitError::TooManyRuns(_)) => crate::metrics::refused("too_many_runs"),
        _ => {}
    }
    admission
}

/// [`admit`] for the `/v1` door: a refusal is the response to send, in OpenAI's shape and with its
/// `x-ratelimit-*` headers.
pub async fn admit_openai(
    state: &AppState,
    context: &TenantContext,
    demand: &Demand<'_>,
) -> Result<Admission, Response> {
    match counted(rate_limits::admit(&state.db, context, demand).await) {
        Ok(admission) => Ok(admission),
        Err(RateLimitError::Limited(refusal)) => Err(openai_refusal(&refusal)),
        Err(error) => Err(refusal_with(error, openai_headers)),
    }
}

/// [`admit`] for the Anthropic-compatible door: a refusal is the response to send, the API's 429 (which
/// that door's errors layer puts in Anthropic's shape) with `Retry-After` and the `anthropic-ratelimit-*`
/// headers.
pub async fn admit_anthropic(
    state: &AppState,
    context: &TenantContext,
    demand: &Demand<'_>,
) -> Result<Admission, Response> {
    counted(rate_limits::admit(&state.db, context, demand).await)
        .map_err(|error| refusal_with(error, anthropic_headers))
}

/// The API's answer to a refused admission, with a door's own rate-limit headers when limits decided it.
fn refusal_with(error: RateLimitError, headers: fn(&Standings) -> HeaderMap) -> Response {
    let standings = match &error {
        RateLimitError::Limited(refusal) => Some(refusal.standings),
        RateLimitError::TooManyRuns(refusal) => Some(refusal.standings),
        _ => None,
    };
    let mut response = ApiError::from(error).into_response();
    if let Some(standings) = standings {
        response.headers_mut().extend(headers(&standings));
    }
    response
}

/// Anthropic's rate-limit headers: for requests and for tokens, the tightest limit's size, what is left
/// of it, and when it is whole again (`anthropic-ratelimit-*-reset`, an RFC 3339 time to the second, as
/// Anthropic writes it, rounded up so that it is never early). A kind no limit applies to gets no headers.
pub fn anthropic_headers(standings: &Standings) -> HeaderMap {
    use chrono::DurationRound as _;
    let now = chrono::Utc::now();
    let mut headers = HeaderMap::new();
    for (kind, standing) in [("requests", standings.requests), ("tokens", standings.tokens)] {
        let Some(Standing { limit, remaining, reset, .. }) = standing else { continue };
        let reset_at = chrono::TimeDelta::from_std(reset)
            .ok()
            .and_then(|wait| now.checked_add_signed(wait))
            .and_then(|at| at.duration_round_up(chrono::TimeDelta::seconds(1)).ok())
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for (name, value) in [("limit", limit.to_string()), ("remaining", remaining.to_string()), ("reset", reset_at)] {
            let name = HeaderName::try_from(format!("anthropic-ratelimit-{kind}-{name}")).expect("a valid header name");
            headers.insert(name, HeaderValue::try_from(value).expect("a valid header value"));
        }
    }
    headers
}

/// OpenAI's rate-limit headers: for requests and for tokens, the tightest limit's size, what is left of
/// it, and the time until it is whole again (`x-ratelimit-reset-*`, written as OpenAI writes it: `1s`,
/// `6m0s`, `20ms`). A kind no limit applies to gets no headers.
pub fn openai_headers(standings: &Standings) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (kind, standing) in [("requests", standings.requests), ("tokens", standings.tokens)] {
        let Some(Standing { limit, remaining, reset, .. }) = standing else { continue };
        for (name, value) in
            [("limit", limit.to_string()), ("remaining", remaining.to_string()), ("reset", reset_text(reset))]
        {
            let name = HeaderName::try_from(format!("x-ratelimit-{name}-{kind}")).expect("a valid header name");
            headers.insert(name, HeaderValue::try_from(value).expect("a valid header value"));
        }
    }
    headers
}

/// OpenAI's 429: `type` says which kind of limit (`requests`, `tokens`), `code` is `rate_limit_exceeded`,
/// and the message reads like OpenAI's; with `Retry-After` and the `x-ratelimit-*` headers.
fn openai_refusal(refusal: &Refusal) -> Response {
    let (kind, short) = match refusal.kind {
        LimitKind::Requests => ("requests", "RPM"),
        LimitKind::Tokens => ("tokens", "TPM"),
    };
    let owner = match refusal.scope {
        LimitScope::ApiKey => "this API key",
        LimitScope::Tenant => "the tenant",
        LimitScope::EndUser => "this end user",
    };
    let then = match refusal.retry_after {
        Some(wait) => format!("Please try again in {}.", reset_text(wait)),
        None => "The request alone is more than the limit allows in a minute.".to_owned(),
    };
    let message = format!(
        "Rate limit reached for {kind} per min ({short}) of {owner}: Limit {}, Requested {}. {then}",
        refusal.limit, refusal.requested
    );
    let body = json!({ "error": { "message": message, "type": kind, "param": null, "code": "rate_limit_exceeded" } });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response.headers_mut().extend(openai_headers(&refusal.standings));
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(refusal.retry_after_seconds()));
    response
}

/// A duration as OpenAI's headers write it (Go's notation, to the millisecond, rounded up): `20ms`, `1s`,
/// `1.5s`, `6m0s`, `1h0m0s`; nothing left is `0s`.
fn reset_text(duration: std::time::Duration) -> String {
    let millis = duration.as_micros().div_ceil(1000);
    if millis == 0 {
        return "0s".to_owned();
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let (hours, minutes, seconds_millis) = (millis / 3_600_000, millis / 60_000 % 60, millis % 60_000);
    let mut seconds = format!("{}.{:03}", seconds_millis / 1000, seconds_millis % 1000);
    seconds.truncate(seconds.trim_end_matches('0').trim_end_matches('.').len());
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, minutes) => format!("{minutes}m{seconds}s"),
        (hours, minutes) => format!("{hours}h{minutes}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn resets_are_written_as_openai_writes_them() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_micros(1), "1ms"),
            (Duration::from_millis(20), "20ms"),
            (Duration::from_millis(999), "999ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(30_250), "30.25s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(360), "6m0s"),
            (Duration::from_millis(4 * 3_600_000 + 36 * 60_000 + 54_720), "4h36m54.72s"),
        ] {
            assert_eq!(reset_text(duration), text, "{duration:?}");
        }
    }

    #[test]
    fn anthropics_headers_tell_a_reset_time_never_early() {
        let standing =
            Standing { scope: LimitScope::Tenant, limit: 5, remaining: 4, reset: Duration::from_millis(1500) };
        let before = chrono::Utc::now();
        let headers = anthropic_headers(&Standings { requests: None, tokens: Some(standing) });
        assert_eq!(headers.len(), 3);
        assert_eq!(headers["anthropic-ratelimit-tokens-limit"], "5");
        assert_eq!(headers["anthropic-ratelimit-tokens-remaining"], "4");
        let reset = headers["anthropic-ratelimit-tokens-reset"].to_str().unwrap();
        let reset = chrono::DateTime::parse_from_rfc3339(reset).unwrap();
        assert!(reset >= before + chrono::TimeDelta::milliseconds(1500), "{reset}");
        assert!(reset <= chrono::Utc::now() + chrono::TimeDelta::milliseconds(2500), "{reset}");
    }

    #[test]
    fn the_headers_name_each_kind_that_is_limited() {
        let standing = |limit, remaining, seconds| Standing {
            scope: LimitScope::Tenant,
            limit,
            remaining,
            reset: Duration::from_secs(seconds),
        };
        let headers = openai_headers(&Standings { requests: Some(standing(2, 1, 30)), tokens: None });
        assert_eq!(headers["x-ratelimit-limit-requests"], "2");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "1");
        assert_eq!(headers["x-ratelimit-reset-requests"], "30s");
        assert!(!headers.contains_key("x-ratelimit-limit-tokens"));
        let both = openai_headers(&Standings { requests: Some(standing(2, 1, 30)), tokens: Some(standing(9, 0, 360)) });
        assert_eq!(both.len(), 6);
        assert_eq!(both["x-ratelimit-reset-tokens"], "6m0s");
    }
}
