//! MCP elicitation: a tool's server asking the person for input in the middle of a call. Under the
//! 2026-07-28 revision the server answers the call with `input_required` (its question, and an opaque
//! `requestState`); the call waits, durably, like an approval, until a person answers through the API,
//! then is made again with the answer and the state, in whichever process and however much later. The
//! answer is checked against the question's schema, which MCP restricts to a flat object of strings,
//! numbers, integers and booleans (with enums and bounds), so the check is written here rather than
//! taken from a general JSON Schema validator.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The client side of every MCP session. It declares form elicitation, so that a server of the
/// 2026-07-28 revision may ask the person through an `input_required` result, which waits durably. A
/// server of an earlier revision asks in the middle of the call instead, over the live connection, which
/// would have to stay open until a person answers, and be lost with the process: those requests are
/// declined (the tool goes on without the input, as the protocol provides), and the log says so.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Asker;

impl rmcp::ClientHandler for Asker {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut config = rmcp::model::ClientConfig::default();
        config.capabilities.elicitation =
            Some(rmcp::model::ElicitationCapability::new().with_form(rmcp::model::FormElicitationCapability::new()));
        config
    }

    async fn create_elicitation(
        &self,
        _request: rmcp::model::ElicitRequestParams,
        _context: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        tracing::info!("declined an MCP elicitation made mid-call by a server of a revision before 2026-07-28");
        Ok(rmcp::model::ElicitResult::new(rmcp::model::ElicitationAction::Decline))
    }
}

/// What the server asked, as the call keeps it while it waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputNeeded {
    /// The server's key for the question, echoed with the answer.
    pub key: String,
    pub message: String,
    /// The JSON Schema of the answer (`type: object`, primitive properties).
    pub requested_schema: Value,
    /// Opaque state the server wants back with the answer.
    pub request_state: Option<String>,
}

/// A person's answer, as the call is made again with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputGiven {
    pub key: String,
    /// MCP's `ElicitResult`: `{"action": "accept" | "decline" | "cancel", "content"?: {…}}`.
    pub result: Value,
    pub request_state: Option<String>,
}

/// What a person may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputAction {
    /// Answers the question with `content`.
    Accept,
    /// Declines to answer; the tool goes on without it.
    Decline,
    /// Cancels the operation the tool asked for.
    Cancel,
}

impl InputNeeded {
    /// The answer to send, once `content` is checked against the schema (accepted answers only).
    pub fn answer(&self, action: InputAction, content: Option<Map<String, Value>>) -> Result<InputGiven, String> {
        let result = match action {
            InputAction::Accept => {
                let content = content.ok_or("an accepted answer needs `content`")?;
                check(&self.requested_schema, &content)?;
                serde_json::json!({ "action": "accept", "content": content })
            }
            InputAction::Decline | InputAction::Cancel if content.is_some() => {
                return Err("only an accepted answer has `content`".to_owned());
            }
            InputAction::Decline => serde_json::json!({ "action": "decline" }),
            InputAction::Cancel => serde_json::json!({ "action": "cancel" }),
        };
        Ok(InputGiven { key: self.key.clone(), result, request_state: self.request_state.clone() })
    }
}

/// Whether `content` answers `schema`: no unknown field, every required one, each of its type, within
/// its enum and bounds.
fn check(schema: &Value, content: &Map<String, Value>) -> Result<(), String> {
    let empty = Map::new();
    let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    if let Some(unknown) = content.keys().find(|name| !properties.contains_key(*name)) {
        return Err(format!("`{unknown}` is not a field of the question"));
    }
    let required = schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
    if let Some(missing) = required.into_iter().find(|name| !content.contains_key(*name)) {
        return Err(format!("`{missing}` is required"));
    }
    for (name, value) in content {
        let property = &properties[name];
        let kind = property.get("type").and_then(Value::as_str).unwrap_or("string");
        let fits = match kind {
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            _ => false,
        };
        if !fits {
            return Err(format!("`{name}` must be of type {kind}"));
        }
        if let Some(allowed) = property.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            return Err(format!("`{name}` must be one of {}", Value::Array(allowed.clone())));
        }
        if let Some(number) = value.as_f64() {
            let below = property.get("minimum").and_then(Value::as_f64).is_some_and(|minimum| number < minimum);
            let above = property.get("maximum").and_then(Value::as_f64).is_some_and(|maximum| number > maximum);
            if below || above {
                return Err(format!("`{name}` is out of its bounds"));
            }
        }
        if let Some(text) = value.as_str() {
            let length = text.chars().count() as u64;
            let short = property.get("minLength").and_then(Value::as_u64).is_some_and(|minimum| length < minimum);
            let long = property.get("maxLength").and_then(Value::as_u64).is_some_and(|maximum| length > maximum);
            if short || long {
                return Err(format!("`{name}` has the wrong length"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn question() -> InputNeeded {
        InputNeeded {
            key: "confirm".to_owned(),
            message: "Which plan?".to_owned(),
            requested_schema: json!({
                "type": "object",
                "properties": {
                    "plan": { "type": "string", "enum": ["basic", "gold"] },
                    "seats": { "type": "integer", "minimum": 1, "maximum": 50 },
                    "note": { "type": "string", "maxLength": 5 },
                },
                "required": ["plan"],
            }),
            request_state: Some("opaque".to_owned()),
        }
    }

    fn object(value: &Value) -> Option<Map<String, Value>> {
        value.as_object().cloned()
    }

    #[test]
    fn an_answer_that_fits_the_schema_is_sent_with_the_state() {
        let given = question().answer(InputAction::Accept, object(&json!({ "plan": "gold", "seats": 3 }))).unwrap();
        assert_eq!(given.result, json!({ "action": "accept", "content": { "plan": "gold", "seats": 3 } }));
        assert_eq!((given.key.as_str(), given.request_state.as_deref()), ("confirm", Some("opaque")));
        assert_eq!(question().answer(InputAction::Decline, None).unwrap().result, json!({ "action": "decline" }));
    }

    #[test]
    fn answers_that_do_not_fit_are_refused_with_the_reason() {
        for (answer, reason) in [
            (json!({ "seats": 3 }), "`plan` is required"),
            (json!({ "plan": "platinum" }), "`plan` must be one of"),
            (json!({ "plan": "gold", "seats": 2.5 }), "`seats` must be of type integer"),
            (json!({ "plan": "gold", "seats": 51 }), "out of its bounds"),
            (json!({ "plan": "gold", "note": "too long" }), "wrong length"),
            (json!({ "plan": "gold", "colour": "red" }), "`colour` is not a field"),
        ] {
            let refused = question().answer(InputAction::Accept, object(&answer)).unwrap_err();
            assert!(refused.contains(reason), "{refused}");
        }
        assert!(question().answer(InputAction::Accept, None).is_err());
        assert!(question().answer(InputAction::Cancel, object(&json!({ "plan": "gold" }))).is_err());
    }
}
