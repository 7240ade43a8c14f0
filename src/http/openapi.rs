//! The OpenAPI 3.1 document (`GET /openapi.json`) and its browsable reference (`GET /docs`). The paths come
//! from the route table itself (each handler's `#[utoipa::path]`, collected by `utoipa_axum::routes!`);
//! this module adds what is common to them: the security schemes, and each door's error shape as the
//! answer to every status an operation does not list.

use axum::Router;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;

/// The document's fixed parts; `paths` are merged in by the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "Self-hosted AI assistant and RAG orchestration: chat with streamed answers grounded in \
                       the tenant's documents, tools over MCP under policy, and OpenAI- and Anthropic-compatible \
                       doors. Every error of `/api/v1` has the shape `ApiErrorBody`, with a stable `code`.",
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ApiErrorBody, ApiErrorDetail, OpenAiErrorBody, OpenAiErrorDetail, AnthropicErrorBody, AnthropicErrorDetail, McpErrorBody, McpErrorDetail, McpErrorData)),
    tags(
        (name = "operator", description = "The operator's routes (the operator token)."),
        (name = "tenant", description = "A tenant's keys, settings, limits and records."),
        (name = "documents", description = "Documents and search."),
        (name = "chat", description = "Sessions, messages, runs and their event streams."),
        (name = "tools", description = "MCP connectors, policy profiles and tool-call approvals."),
        (name = "integration", description = "The integration API for external systems."),
        (name = "workspaces", description = "The IDE door: workspaces, agent runs and their patches."),
        (name = "openai", description = "The OpenAI-compatible door (`/v1`)."),
        (name = "anthropic", description = "The Anthropic-compatible door (`/v1/messages`)."),
        (name = "webhooks", description = "Webhook destinations, their deliveries and redelivery."),
        (name = "service", description = "Health, metrics and the service's own pages."),
    ),
)]
pub struct ApiDoc;

/// The error of every route under `/api/v1` (and of the service's own routes).
#[derive(ToSchema)]
#[allow(dead_code)] // A schema: the body is built by `ApiError`'s `IntoResponse`.
pub struct ApiErrorBody {
    error: ApiErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ApiErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `not_found`, `invalid_request`, `budget_exceeded`, …
    code: String,
    /// For people; may change.
    message: String,
    /// The request's `x-request-id`, for support.
    request_id: Option<String>,
}

/// OpenAI's error shape, which every answer under `/v1` but `/v1/messages` has.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OpenAiErrorBody {
    error: OpenAiErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OpenAiErrorDetail {
    message: String,
    /// `invalid_request_error`, `permission_error`, `rate_limit_error`, `server_error`, …
    r#type: String,
    param: Option<String>,
    code: Option<String>,
}

/// Anthropic's error shape, which every answer under `/v1/messages` has.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AnthropicErrorBody {
    /// Always `error`.
    r#type: String,
    error: AnthropicErrorDetail,
    request_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AnthropicErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, `overloaded_error`, …
    r#type: String,
    message: String,
}

/// `/mcp`'s refusals: a JSON-RPC error, which MCP clients show (our own shape would be an unexplained
/// failure to them). The transport's own refusals (a wrong `Accept`, a malformed message) are plain text.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct McpErrorBody {
    /// Always `2.0`.
    jsonrpc: String,
    /// The request's id, when it could be read.
    id: Option<serde_json::Value>,
    error: McpErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct McpErrorDetail {
    /// -32001 refused (no key, not of scope `chat`, or its tenant suspended), -32603 internal.
    code: i32,
    message: String,
    /// On a refusal at the door, the API's stable error code (`unauthorized`, `forbidden`,
    /// `tenant_suspended`, …), so a client can tell why.
    data: Option<McpErrorData>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct McpErrorData {
    code: String,
}

/// The names the operations' `security(…)` use.
pub const TENANT_KEY: &str = "tenant_key";
pub const OPERATOR_TOKEN: &str = "operator_token";
pub const WIDGET_TOKEN: &str = "widget_token";
pub const ANTHROPIC_KEY: &str = "anthropic_key";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description)).build(),
            )
        };
        components.add_security_scheme(
            TENANT_KEY,
            bearer("A tenant API key (`sk_…`), whose scope (`chat`, `admin`) the operation names."),
        );
        components.add_security_scheme(OPERATOR_TOKEN, bearer("The operator token (`SWITCHBOARD_OPERATOR_TOKEN`)."));
        components.add_security_scheme(
            WIDGET_TOKEN,
            bearer("A short-lived widget token minted by `POST /api/v1/widget-tokens`, for one end user."),
        );
        components.add_security_scheme(
            ANTHROPIC_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "A tenant API key, where Anthropic's SDKs send it.",
            ))),
        );
    }
}

/// Every operation answers its door's error shape to any status it does not list (`default`), so the
/// document is true of every refusal: 400, 401, 403, 404, 408, 413, 415, 422, 429, 431, 5xx.
fn add_default_errors(openapi: &mut OpenApi) {
    for_each_operation(openapi, |_, path, operation| {
        let schema = if path.starts_with("/v1/messages") {
            "AnthropicErrorBody"
        } else if path.starts_with("/v1/") {
            "OpenAiErrorBody"
        } else {
            "ApiErrorBody"
        };
        let response = ResponseBuilder::new()
            .description("An error, in this door's shape.")
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build())
            .build();
        operation.responses.responses.entry("default".to_owned()).or_insert(RefOr::T(response));
    });
}

/// `/mcp` is rmcp's service, not a handler of ours: its operations are described here. The bodies are
/// JSON-RPC messages of the Model Context Protocol (streamable HTTP transport), whose schema is MCP's own;
/// both revisions are answered: 2026-07-28 (each request on its own) and 2025-11-25 (sessions).
fn add_mcp(openapi: &mut OpenApi) {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{Object, Type};

    let json_rpc = || ContentBuilder::new().schema(Some(Object::with_type(Type::Object))).build();
    let answered = ResponseBuilder::new()
        .description("A JSON-RPC response, as JSON or as an event stream (per the request's `Accept`).")
        .content("application/json", json_rpc())
        .content("text/event-stream", ContentBuilder::new().schema(Some(Object::with_type(Type::String))).build())
        .build();
    let refused = ResponseBuilder::new()
        .description(
            "A refusal: a JSON-RPC error for a missing or wrong key, the API's error shape for what the \
             transport refuses (a wrong `Accept`, a malformed message).",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(
                    utoipa::openapi::schema::OneOfBuilder::new()
                        .item(Ref::from_schema_name("McpErrorBody"))
                        .item(Ref::from_schema_name("ApiErrorBody")),
                ))
                .build(),
        )
        .build();
    let operation = |summary: &str| {
        OperationBuilder::new()
            .tag("tools")
            .summary(Some(summary))
            .security(SecurityRequirement::new(TENANT_KEY, ["chat"]))
            .response("default", refused.clone())
    };
    let post = operation(
        "Sends an MCP message (JSON-RPC) to Switchboard's MCP server: its tool searches the tenant's documents.",
    )
    .description(Some(
        "Both MCP revisions are answered. 2026-07-28: every request stands alone, with the \
         `MCP-Protocol-Version`, `Mcp-Method` (and `Mcp-Name`) headers and no session; `server/discover` \
         says what the server offers. 2025-11-25: `initialize` opens a session (`Mcp-Session-Id`) that \
         later messages name.",
    ))
    .request_body(Some(
        RequestBodyBuilder::new()
            .content("application/json", json_rpc())
            .required(Some(utoipa::openapi::Required::True))
            .build(),
    ))
    .response("200", answered)
    .response("202", ResponseBuilder::new().description("A notification or response, accepted.").build())
    .build();
    let get = operation("Opens the session's stream of server messages (revision 2025-11-25 only).")
        .response(
            "200",
            ResponseBuilder::new()
                .description("Server-sent events.")
                .content(
                    "text/event-stream",
                    ContentBuilder::new().schema(Some(Object::with_type(Type::String))).build(),
                )
                .build(),
        )
        .build();
    let delete = operation("Ends an MCP session (`Mcp-Session-Id`; revision 2025-11-25 only).")
        .response("200", ResponseBuilder::new().description("Ended.").build())
        .build();
    let mut item = PathItem::new(HttpMethod::Post, post);
    item.get = Some(get);
    item.delete = Some(delete);
    openapi.paths.paths.insert("/mcp".to_owned(), item);
}

/// axum's wildcard (`{*path}`) takes the rest of the URL, slashes and all; OpenAPI has no wildcard, so the
/// document names the parameter `{path}`: a value that may hold `/`.
fn name_wildcards(openapi: &mut OpenApi) {
    let paths = std::mem::take(&mut openapi.paths.paths);
    openapi.paths.paths = paths.into_iter().map(|(path, item)| (path.replace("{*", "{"), item)).collect();
}

/// Operation ids are unique, as OpenAPI requires and client generators need: a handler named only for its
/// module (`list`, `get`) is named for its method and path instead (`get_api_v1_documents`).
fn unique_operation_ids(openapi: &mut OpenApi) {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for_each_operation(openapi, |_, _, operation| {
        if let Some(id) = &operation.operation_id {
            *seen.entry(id.clone()).or_default() += 1;
        }
    });
    for_each_operation(openapi, |method, path, operation| {
        if operation.operation_id.as_ref().is_none_or(|id| seen[id] > 1) {
            let slug: String =
                path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect::<String>();
            let words: Vec<&str> = slug.split('_').filter(|word| !word.is_empty()).collect();
            operation.operation_id = Some(format!("{method}_{}", words.join("_")));
        }
    });
}

fn for_each_operation(openapi: &mut OpenApi, mut visit: impl FnMut(&str, &str, &mut Operation)) {
    for (path, item) in &mut openapi.paths.paths {
        let operations = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                visit(method, path, operation);
            }
        }
    }
}

/// The router's document, finished: merged with [`ApiDoc`], `/mcp` described, errors added.
pub fn finish(paths: OpenApi) -> OpenApi {
    use utoipa::OpenApi as _;
    let mut openapi = ApiDoc::openapi().merge_from(paths);
    name_wildcards(&mut openapi);
    add_mcp(&mut openapi);
    unique_operation_ids(&mut openapi);
    add_default_errors(&mut openapi);
    openapi
}

/// `GET /openapi.json` and `GET /docs` (Swagger UI, its files vendored into the binary).
pub fn routes(openapi: OpenApi) -> Router<AppState> {
    SwaggerUi::new("/docs").url("/openapi.json", openapi).into()
}
