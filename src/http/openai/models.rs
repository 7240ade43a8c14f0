//! `GET /v1/models` and `GET /v1/models/{id}`: the models a tenant's key may name in `/v1` (Switchboard's
//! assistant, and every model the engine can route for this tenant), as OpenAI's `model` objects with
//! `owned_by` the provider that serves them.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::schema::constant;
use super::wire::ASSISTANT_MODEL;
use crate::auth::context::{Scope, TenantContext};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Path, Tenant};

/// Models have no creation date of their own here; OpenAI's field is required, so it is Switchboard's epoch.
const CREATED: i64 = 1_767_225_600;

constant!(ListObject = "list");
constant!(ModelObject = "model");

/// `GET /v1/models`: `switchboard-assistant` first, then every model the tenant may name.
#[derive(ToSchema)]
#[schema(as = OpenAiModelList)]
#[allow(dead_code)] // A schema: the body is built with `json!`.
pub struct ModelList {
    #[schema(inline)]
    object: ListObject,
    data: Vec<Model>,
}

/// A model a tenant's key may name in `/v1`.
#[derive(ToSchema)]
#[schema(as = OpenAiModel)]
#[allow(dead_code)]
pub struct Model {
    /// As listed, or as retrieved (`provider/model` when asked so).
    id: String,
    #[schema(inline)]
    object: ModelObject,
    /// Switchboard's epoch (2026-01-01): models have no creation date of their own here.
    created: i64,
    /// The provider that serves it (`openai`, `anthropic`, `local`…), or `switchboard` for the assistant.
    owned_by: String,
}

/// The models a tenant's key may name.
#[utoipa::path(
    get, path = "/models", tag = "openai", operation_id = "list_models",
    responses((status = 200, description = "`switchboard-assistant`, then the models the engine can route for \
                                            this tenant.", body = ModelList)),
    security(("tenant_key" = ["chat"])),
)]
pub async fn list_models(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<Value>, ApiError> {
    let data = models(&state, &context).await?;
    Ok(axum::Json(json!({ "object": "list", "data": data })))
}

/// One model the list shows, by its listed id or as `provider/model`. The id is everything after
/// `/models/`: a `provider/model` name has a slash.
#[utoipa::path(
    get, path = "/models/{*id}", tag = "openai", operation_id = "retrieve_model",
    params((
        "id" = String, Path,
        description = "The model's id as listed, or `provider/model`: everything after `/v1/models/`, slashes \
                       included (sent as they are or percent-encoded as `%2F`).",
        example = "anthropic/claude-sonnet-4-5",
    )),
    responses(
        (status = 200, description = "The model, with `id` as asked. Any other id is 404 `model_not_found`.",
            body = Model),
    ),
    security(("tenant_key" = ["chat"])),
)]
pub async fn retrieve_model(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let model = models(&state, &context).await?.into_iter().find_map(|mut model| {
        let qualified =
            format!("{}/{}", model["owned_by"].as_str().unwrap_or_default(), model["id"].as_str().unwrap_or_default());
        let matches = model["id"] == id.as_str() || qualified == id;
        model["id"] = Value::from(id.as_str());
        matches.then_some(model)
    });
    // OpenAI's own words and code, which the SDKs raise as `NotFoundError` (`param` is set from the code).
    let message = format!("The model `{id}` does not exist or you do not have access to it.");
    model.map(axum::Json).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "model_not_found", message))
}

async fn models(state: &AppState, context: &TenantContext) -> Result<Vec<Value>, ApiError> {
    context.require(Scope::Chat)?;
    let usable = state.engine.models(context).await?;
    let assistant = model(ASSISTANT_MODEL, "switchboard");
    Ok(std::iter::once(assistant)
        .chain(usable.iter().map(|usable| model(&usable.id, usable.provider.as_str())))
        .collect())
}

fn model(id: &str, owned_by: &str) -> Value {
    json!({ "id": id, "object": "model", "created": CREATED, "owned_by": owned_by })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::openai::schema::conformance::assert_conforms;

    #[test]
    fn what_is_sent_is_what_the_document_says() {
        let data = vec![model(ASSISTANT_MODEL, "switchboard"), model("anthropic/claude-sonnet-4-5", "anthropic")];
        assert_conforms::<Model>(&data[1]);
        assert_conforms::<ModelList>(&json!({ "object": "list", "data": data }));
    }
}
