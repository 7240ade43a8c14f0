//! The Responses door: `POST /v1/responses` and the stored responses under `/v1/responses/{id}`, in
//! OpenAI's formats exactly, over the same engine as `/v1/chat/completions`. A response is a run: a
//! pass-through turn of its own integration conversation (the client's model, conversation and function
//! tools, whose calls come back to the client), with the request kept on the run so that it can be shown
//! again and continued (`previous_response_id`).

mod reply;
mod stream;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{Json, Path, Query, Tenant};
use super::super::rate_limits;
use super::super::sse;
use super::super::streams::{self, OpenStreams};
use super::reply::UsageCounts;
use super::schema::constant;
use crate::auth::context::{MissingScope, Scope, TenantContext};
use crate::engine::{Answer, EngineError, GivenConversation};
use crate::ids::RunId;
use crate::integration::IntegrationError;
use crate::integration::responses::{self, StoredResponse};
use crate::integration::whole::WholeConversation;
use crate::rate_limits::{Demand, Standings};
use reply::{Head, Outcome, ResponseEventStream, ResponseObject};
use stream::Opened;
use wire::{Checked, CreateRequest, FieldError, Item, StoredRequest};

/// `POST /v1/responses`. Every answer to a request the rate limits admitted carries OpenAI's
/// `x-ratelimit-*` headers (a refused one carries them already).
#[utoipa::path(
    post, path = "/responses", tag = "openai", operation_id = "create_response",
    summary = "Makes a response, in OpenAI's Responses format",
    description = "A pass-through turn of its own `integration` conversation: the model named is given the \
                   conversation (with `previous_response_id`'s before it) and the caller's function tools, whose \
                   calls come back to the caller. A run that fails before its first text is an error with its \
                   status, even when streamed; a run waiting for a person to approve a tool call is 409 \
                   `awaiting_approval`.",
    request_body = CreateRequest,
    responses(
        (status = 200, description = "The response, ended (`completed`, `incomplete`, `failed`); with \
                                      `background`, as it starts (`queued` or `in_progress`); with `stream`, its \
                                      events.",
            content(
                (ResponseObject = "application/json"),
                (ResponseEventStream = "text/event-stream"),
            )),
    ),
    security(("tenant_key" = ["chat"])),
)]
pub async fn create(
    state: State<AppState>,
    tenant: Tenant,
    open_streams: OpenStreams,
    body: Json<CreateRequest>,
) -> Response {
    let mut standings = None;
    let mut response = create_response(state, tenant, open_streams, body, &mut standings).await.into_response();
    if let Some(standings) = standings {
        response.headers_mut().extend(rate_limits::openai_headers(&standings));
    }
    response
}

/// The response; `standings` receives the rate limits' standing once the request is admitted.
async fn create_response(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    open_streams: OpenStreams,
    Json(body): Json<CreateRequest>,
    standings: &mut Option<Standings>,
) -> Result<Response, DoorError> {
    context.require(Scope::Chat)?;
    let Checked { mut stored, tools, options, stream } = body.check().map_err(DoorError::invalid)?;
    if let Some(previous) = stored.previous_response_id.clone() {
        let mut items = previous_items(&state, &context, &previous).await?;
        items.append(&mut stored.input);
        stored.input = items;
    }
    let conversation = wire::conversation(stored.instructions.as_deref(), &stored.input).map_err(DoorError::invalid)?;
    let given = GivenConversation {
        system: conversation.system,
        messages: conversation.messages,
        tools,
        max_output_tokens: stored.max_output_tokens,
        options,
    };
    let slot = open_streams.reserve_if(stream, &context)?;
    let prompt = prompt_of(&given);
    let demand = Demand { prompt: &prompt, max_output_tokens: stored.max_output_tokens, end_user: None };
    let reservation = match rate_limits::admit_openai(&state, &context, &demand).await {
        Ok(admission) => {
            *standings = Some(admission.standings);
            admission.reservation
        }
        Err(refused) => return Ok(refused),
    };
    // A response that is not stored cannot be shown or continued: its conversation is not kept twice.
    let kept = if stored.store { stored.clone() } else { StoredRequest { input: Vec::new(), ..stored.clone() } };
    let kept = serde_json::to_value(&kept).map_err(|error| ApiError::internal(&error))?;
    let whole = WholeConversation::PassThrough {
        model: stored.model.clone(),
        question: conversation.question,
        given: Box::new(given),
    };
    let started = responses::start(&state.engine, &context, whole, reservation, kept).await?;
    let run_id = started.run.id;
    let head = Head::of(&started.run);
    let request = Arc::new(stored);
    if request.background && !stream {
        // The run goes on by itself; the client polls `GET /v1/responses/{id}` for its end.
        let response = reply::response(&head, &request, &Outcome::of_run(&started.run, None), Vec::new(), None);
        return Ok(axum::Json(response).into_response());
    }
    match state.engine.answer(&context, run_id, streams::delivery(slot.as_ref())).await? {
        Answer::Stream(events, ended) => {
            let slot = streams::required(slot)?;
            let opened = Opened { state, context, head, request, run_id, ended };
            Ok(stream::live(opened, events, slot).await?)
        }
        Answer::Failed(failure) => Err(ApiError::from(failure).into()),
        Answer::AwaitingApproval(outcome) => Err(awaiting_approval(outcome.run.id).into()),
        Answer::Finished(outcome) => {
            let output = outcome.message.as_ref().map(|answer| reply::output_items(&head, answer)).unwrap_or_default();
            let result = Outcome::of_run(&outcome.run, outcome.message.as_ref());
            let response = reply::response(&head, &request, &result, output, Some(&UsageCounts::from(&outcome.totals)));
            Ok(axum::Json(response).into_response())
        }
    }
}

/// The prompt as the caller sent it, for the rate limits' token estimate.
fn prompt_of(given: &GivenConversation) -> Vec<&str> {
    [given.system.as_str()]
        .into_iter()
        .filter(|system| !system.is_empty())
        .chain(given.messages.iter().map(|message| message.content.as_str()))
        .collect()
}

fn awaiting_approval(run_id: RunId) -> ApiError {
    let message = format!("run {run_id} waits for a person to approve a tool call; follow it on /api/v1/runs/{run_id}");
    ApiError::conflict("awaiting_approval", message)
}

/// The conversation `previous_response_id` continues: the earlier response's whole input, then its
/// output. Its instructions and tools are not carried over, as in OpenAI's API.
async fn previous_items(state: &AppState, context: &TenantContext, id: &str) -> Result<Vec<Item>, DoorError> {
    let not_found = || {
        let message = format!("Previous response with id '{id}' not found.");
        DoorError::field(StatusCode::NOT_FOUND, "previous_response_not_found", "previous_response_id", message)
    };
    let previous = stored_response(state, context, id).await?.ok_or_else(not_found)?;
    if !previous.response.run.status.is_terminal() {
        let message =
            format!("Previous response with id '{id}' is still in progress: continue from it once it has ended.");
        return Err(DoorError::field(StatusCode::BAD_REQUEST, "invalid_request", "previous_response_id", message));
    }
    let head = Head::of(&previous.response.run);
    let mut items = previous.request.input;
    if let Some(answer) = &previous.response.answer {
        items.extend(reply::output_items(&head, answer));
    }
    Ok(items)
}

/// A stored response and its request read back.
struct Found {
    response: StoredResponse,
    request: StoredRequest,
}

/// The response `id` names, if it is this tenant's and was stored (`store: false` keeps nothing to show).
async fn stored_response(state: &AppState, context: &TenantContext, id: &str) -> Result<Option<Found>, DoorError> {
    let Some(run_id) = run_id_of(id) else {
        return Ok(None);
    };
    let Some(response) = responses::find(&state.db, context, run_id).await? else {
        return Ok(None);
    };
    let request: StoredRequest =
        serde_json::from_value(response.request.clone()).map_err(|error| ApiError::internal(&error))?;
    Ok(request.store.then_some(Found { response, request }))
}

/// `resp_` and a run's id in hex, as [`Head`] makes them.
fn run_id_of(id: &str) -> Option<RunId> {
    let hex =
        id.strip_prefix("resp_").filter(|hex| hex.len() == 32 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))?;
    uuid::Uuid::try_parse(hex).ok().map(RunId)
}

async fn found(state: &AppState, context: &TenantContext, id: &str) -> Result<Found, DoorError> {
    context.require(Scope::Chat)?;
    stored_response(state, context, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Response with id '{id}' not found.")).into())
}

/// The response object of a stored response, as it stands now.
async fn shown(state: &AppState, context: &TenantContext, found: &Found) -> Result<reply::ResponseObject, DoorError> {
    let Found { response: StoredResponse { run, answer, .. }, request } = found;
    let head = Head::of(run);
    let output = answer.as_ref().map(|answer| reply::output_items(&head, answer)).unwrap_or_default();
    let usage = if run.status.is_terminal() {
        Some(UsageCounts::from(&crate::usage::of_run(&state.db, context, run.id).await?))
    } else {
        None
    };
    Ok(reply::response(&head, request, &Outcome::of_run(run, answer.as_ref()), output, usage.as_ref()))
}

#[derive(Debug, Deserialize)]
pub struct RetrieveQuery {
    stream: Option<bool>,
    starting_after: Option<u64>,
    /// Every other parameter: refused by name.
    #[serde(flatten)]
    others: HashMap<String, String>,
}

/// `GET /v1/responses/{id}`: the response as it stands; with `stream=true`, its events from the first
/// (or after `Last-Event-ID`, else `starting_after`), live until it ends.
#[utoipa::path(
    get, path = "/responses/{id}", tag = "openai", operation_id = "retrieve_response",
    params(
        ("id" = String, Path, description = "The response's id (`resp_…`); one made with `store` false is not kept."),
        ("stream" = Option<bool>, Query, description = "Its events instead, from the first, live until it ends."),
        ("starting_after" = Option<u64>, Query,
            description = "With `stream`: only the events numbered after this one."),
        ("Last-Event-ID" = Option<u64>, Header, nullable = false,
            description = "With `stream`: a reconnecting client's last event; wins over `starting_after`."),
    ),
    responses(
        (status = 200, description = "The response as it stands, or with `stream`, its events.",
            content(
                (ResponseObject = "application/json"),
                (ResponseEventStream = "text/event-stream"),
            )),
    ),
    security(("tenant_key" = ["chat"])),
)]
pub async fn retrieve(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    open_streams: OpenStreams,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<RetrieveQuery>,
) -> Result<Response, DoorError> {
    refuse_others(&query.others)?;
    // A reconnecting client says where it was; sequence numbers are never negative. A malformed one is
    // refused whether or not the answer is a stream, as every malformed part of a request is.
    let last_event_id = match sse::last_event_id(&headers) {
        Some(Ok(seq)) => Some(seq.unsigned_abs()),
        Some(Err(())) => {
            let message = "Last-Event-ID must be a sequence number";
            return Err(ApiError::bad_request("invalid_last_event_id", message).into());
        }
        None => None,
    };
    let found = found(&state, &context, &id).await?;
    if query.stream != Some(true) {
        if query.starting_after.is_some() {
            let message = "`starting_after` applies to a stream (`stream=true`)";
            return Err(DoorError::invalid(field("starting_after", message)));
        }
        return Ok(axum::Json(shown(&state, &context, &found).await?).into_response());
    }
    let starting_after = last_event_id.or(query.starting_after);
    let slot = open_streams.reserve(&context)?;
    let run_id = found.response.run.id;
    let ended = state.engine.ended(&context, run_id);
    let events = state.engine.follow(&context, run_id, 0).await?;
    let head = Head::of(&found.response.run);
    let opened = Opened { state, context, head, request: Arc::new(found.request), run_id, ended };
    Ok(stream::replay(opened, events, starting_after, slot))
}

#[derive(Debug, Deserialize)]
pub struct ItemsQuery {
    limit: Option<i64>,
    order: Option<String>,
    after: Option<String>,
    #[serde(flatten)]
    others: HashMap<String, String>,
}

constant!(ListObject = "list");
constant!(ResponseObjectType = "response");

/// A page of a response's input items.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema: the body is built with `json!`.
pub struct ResponseItemList {
    #[schema(inline)]
    object: ListObject,
    data: Vec<Item>,
    /// Null when the page is empty.
    #[schema(required = true)]
    first_id: Option<String>,
    #[schema(required = true)]
    last_id: Option<String>,
    has_more: bool,
}

/// `GET /v1/responses/{id}/input_items`: the conversation the response answered, the inherited items
/// too, newest first unless `order=asc`, paged by item id.
#[utoipa::path(
    get, path = "/responses/{id}/input_items", tag = "openai", operation_id = "list_response_input_items",
    params(
        ("id" = String, Path, description = "The response's id (`resp_…`)."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Items per page (default 20)."),
        ("order" = inline(Option<ItemsOrder>), Query, description = "`desc` (the default): newest first."),
        ("after" = Option<String>, Query, description = "The id of the item the page starts after."),
    ),
    responses((status = 200, description = "The items, the inherited ones too.", body = ResponseItemList)),
    security(("tenant_key" = ["chat"])),
)]
pub async fn input_items(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<String>,
    Query(query): Query<ItemsQuery>,
) -> Result<Response, DoorError> {
    refuse_others(&query.others)?;
    let limit = match query.limit {
        None => 20,
        Some(limit @ 1..=100) => usize::try_from(limit).unwrap_or(20),
        Some(_) => return Err(DoorError::invalid(field("limit", "`limit` must be between 1 and 100"))),
    };
    let newest_first = match query.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(DoorError::invalid(field("order", "`order` must be `asc` or `desc`"))),
    };
    let found = found(&state, &context, &id).await?;
    let mut items = found.request.input;
    if newest_first {
        items.reverse();
    }
    let start = match &query.after {
        None => 0,
        Some(after) => match items.iter().position(|item| item.id() == after) {
            Some(position) => position + 1,
            None => {
                return Err(DoorError::invalid(field("after", &format!("no input item {after:?} in this response"))));
            }
        },
    };
    let page: Vec<Item> = items.iter().skip(start).take(limit).cloned().collect();
    let has_more = start + page.len() < items.len();
    let list = json!({
        "object": "list",
        "data": page,
        "first_id": page.first().map(Item::id),
        "last_id": page.last().map(Item::id),
        "has_more": has_more,
    });
    Ok(axum::Json(list).into_response())
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ItemsOrder {
    Asc,
    Desc,
}

/// A response deleted.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeletedResponse {
    id: String,
    #[schema(inline)]
    object: ResponseObjectType,
    /// Always true.
    deleted: bool,
}

/// `DELETE /v1/responses/{id}`: the response and its conversation are gone; the usage it was billed
/// stays.
#[utoipa::path(
    delete, path = "/responses/{id}", tag = "openai", operation_id = "delete_response",
    params(("id" = String, Path, description = "The response's id (`resp_…`).")),
    responses((status = 200, description = "Deleted; the usage it was billed stays.", body = DeletedResponse)),
    security(("tenant_key" = ["chat"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<String>,
) -> Result<Response, DoorError> {
    let found = found(&state, &context, &id).await?;
    if !responses::delete(&state.db, &state.engine, &context, found.response.run.id).await? {
        return Err(ApiError::not_found(format!("Response with id '{id}' not found.")).into());
    }
    Ok(axum::Json(json!({ "id": id, "object": "response", "deleted": true })).into_response())
}

/// `POST /v1/responses/{id}/cancel`: stops a response still in progress and answers it as it stands
/// (`cancelled`, with what it wrote so far).
#[utoipa::path(
    post, path = "/responses/{id}/cancel", tag = "openai", operation_id = "cancel_response",
    params(("id" = String, Path, description = "The response's id (`resp_…`).")),
    responses(
        (status = 200, description = "The response as it stands: `cancelled` with what it wrote so far, or as it \
                                      ended when it already had.", body = ResponseObject),
    ),
    security(("tenant_key" = ["chat"])),
)]
pub async fn cancel(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<String>,
) -> Result<Response, DoorError> {
    let found = found(&state, &context, &id).await?;
    if !found.response.run.status.is_terminal() {
        match state.engine.cancel(&context, found.response.run.id).await {
            Ok(_) | Err(EngineError::RunEnded) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let found = self::found(&state, &context, &id).await?;
    Ok(axum::Json(shown(&state, &context, &found).await?).into_response())
}

fn field(param: &str, message: &str) -> FieldError {
    FieldError { param: param.to_owned(), message: message.to_owned() }
}

fn refuse_others(others: &HashMap<String, String>) -> Result<(), DoorError> {
    match others.keys().min() {
        Some(name) => Err(DoorError::invalid(field(name, &format!("`{name}` is not supported")))),
        None => Ok(()),
    }
}

/// An error of this door: the API's own (put in OpenAI's shape on the way out), or one naming the request
/// field at fault, as OpenAI's `param` does.
#[derive(Debug)]
pub enum DoorError {
    Api(ApiError),
    Field { status: StatusCode, code: &'static str, param: String, message: String },
}

impl DoorError {
    fn invalid(error: FieldError) -> Self {
        Self::Field {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            param: error.param,
            message: error.message,
        }
    }

    fn field(status: StatusCode, code: &'static str, param: &str, message: String) -> Self {
        Self::Field { status, code, param: param.to_owned(), message }
    }
}

impl IntoResponse for DoorError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(error) => error.into_response(),
            Self::Field { status, code, param, message } => {
                let kind = "invalid_request_error";
                let error = json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
                (status, [(header::CONTENT_TYPE, "application/json")], Body::from(error.to_string())).into_response()
            }
        }
    }
}

impl From<ApiError> for DoorError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<IntegrationError> for DoorError {
    fn from(error: IntegrationError) -> Self {
        Self::Api(error.into())
    }
}

impl From<EngineError> for DoorError {
    fn from(error: EngineError) -> Self {
        Self::Api(error.into())
    }
}

impl From<MissingScope> for DoorError {
    fn from(error: MissingScope) -> Self {
        Self::Api(error.into())
    }
}

impl From<sqlx::Error> for DoorError {
    fn from(error: sqlx::Error) -> Self {
        Self::Api(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_response_id_names_a_run() {
        let run = RunId::new();
        assert_eq!(run_id_of(&format!("resp_{}", run.0.simple())), Some(run));
        for id in ["", "resp_", "resp_xyz", &format!("resp_{}", run.0), &format!("msg_{}", run.0.simple())] {
            assert_eq!(run_id_of(id), None, "{id}");
        }
    }
}
