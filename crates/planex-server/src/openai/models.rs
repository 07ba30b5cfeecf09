//! `GET /v1/models` and `GET /v1/models/{model}`: the agent model, as OpenAI clients list it
//! (`client.models.list()`).

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

fn model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "planex"})
}

/// The models this server answers: the agent (`[server] agent_name`).
#[utoipa::path(get, path = "/v1/models", tag = "openai",
    responses(
        (status = 200, description = "An OpenAI model list: `{object: \"list\", data: [{id, object: \"model\", created, owned_by}]}` with the agent model", body = Object),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_models(
    State(state): State<AppState>,
    _caller: crate::auth::Caller,
) -> Json<Value> {
    let agent = &state.server_settings().agent_name;
    Json(json!({"object": "list", "data": [model(agent)]}))
}

/// One model by id: the agent, else 404.
#[utoipa::path(get, path = "/v1/models/{model}", tag = "openai",
    params(("model" = String, Path, description = "Model id")),
    responses(
        (status = 200, description = "An OpenAI model object", body = Object),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Not a model of this server (`code: model_not_found`)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn retrieve_model(
    State(state): State<AppState>,
    _caller: crate::auth::Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let agent = &state.server_settings().agent_name;
    if &id == agent {
        Ok(Json(model(agent)))
    } else {
        Err(ApiError::not_found(format!(
            "model {id:?} is not served here; this server serves {agent:?}"
        ))
        .with_param("model")
        .with_code("model_not_found"))
    }
}
