//! What the OpenAPI document says of the doors' bodies (this one's and Anthropic's) that their Rust types
//! cannot say by themselves: a field that only `null` may fill, a string that is always the same, a value of
//! one of several shapes, and an event stream's events; and, for the unit tests, a check that what the doors
//! send is what the document says.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A field the request does not list: taken as not sent when `null`; any other value is refused by name (400).
/// As `additionalProperties`, it says so of every field but the listed ones.
#[derive(serde::Deserialize)]
pub struct UnlistedField;

impl PartialSchema for UnlistedField {
    fn schema() -> RefOr<Schema> {
        let description = "A field this door does not take: `null` counts as not sent, any other value is refused \
                           by name (400).";
        ObjectBuilder::new().schema_type(Type::Null).description(Some(description)).into()
    }
}

impl ToSchema for UnlistedField {}

/// A field that is always `null` (OpenAI's and Anthropic's objects have fields that Switchboard never fills).
pub struct AlwaysNull;

impl PartialSchema for AlwaysNull {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

impl ToSchema for AlwaysNull {}

/// A string field that always holds `$value` (`{"type": "string", "enum": [$value]}`); use it `inline`.
macro_rules! constant {
    ($(#[$meta:meta])* $name:ident = $value:literal) => {
        $(#[$meta])*
        #[derive(serde::Deserialize)]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$value]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// A value of exactly one of the shapes `$variant` (`oneOf`, each inline), described by the doc comment.
macro_rules! one_of {
    ($(#[doc = $doc:literal])+ $name:ident = $($variant:ty)|+) => {
        $(#[doc = $doc])+
        #[derive(serde::Deserialize)]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let description = [$($doc),+].map(str::trim).join(" ");
                let mut one_of = utoipa::openapi::schema::OneOfBuilder::new().description(Some(description));
                $( one_of = one_of.item(<$variant as utoipa::PartialSchema>::schema()); )+
                one_of.into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn schemas(
                schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
            ) {
                $( <$variant as utoipa::ToSchema>::schemas(schemas); )+
            }
        }
    };
}

pub(crate) use {constant, one_of};

/// One server-sent event of a streamed answer, as clients parse it (and as OpenAPI 3.2's `itemSchema` and
/// schemathesis read a `text/event-stream` schema): its `event` (`message` when the stream names none), its
/// `id` when the stream numbers its events, and its `data`.
pub fn sse_event(description: &str, numbered: bool, data: impl Into<RefOr<Schema>>) -> RefOr<Schema> {
    let event = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .property("event", ObjectBuilder::new().schema_type(Type::String))
        .required("event")
        .property("data", data)
        .required("data");
    let event = if numbered {
        event.property("id", ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9]+$"))).required("id")
    } else {
        event
    };
    event.into()
}

/// An event's `data`: JSON, of `schema`.
pub fn json_data(schema: impl Into<RefOr<Schema>>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .content_media_type("application/json")
        .content_schema(Some(schema))
        .into()
}

/// A reference to the component `T`.
pub fn reference<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

/// `T` among the components, with every schema it refers to.
pub fn register<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// A check that what the doors send is what the document says, for the unit tests of the modules that build
/// it: a small JSON Schema validator, for the keywords the document uses.
#[cfg(test)]
pub mod conformance {
    use serde_json::{Map, Value};
    use utoipa::ToSchema;

    use crate::conversations::{Message, MessageStatus, Role};
    use crate::providers::FinishReason;

    /// Panics, naming the place, unless `value` is valid by `T`'s schema.
    pub fn assert_conforms<T: ToSchema>(value: &impl serde::Serialize) {
        let mut schemas = Vec::new();
        super::register::<T>(&mut schemas);
        let defs: Map<String, Value> =
            schemas.into_iter().map(|(name, schema)| (name, serde_json::to_value(schema).expect("a schema"))).collect();
        let value = serde_json::to_value(value).expect("JSON");
        if let Err(error) = check(&defs[T::name().as_ref()], &value, &defs, "") {
            panic!("{value} is not a {}: {error}", T::name());
        }
    }

    fn check(schema: &Value, value: &Value, defs: &Map<String, Value>, at: &str) -> Result<(), String> {
        let fail = |why: String| Err(format!("at `{at}`: {why}"));
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.rsplit('/').next().unwrap_or_default();
            return check(&defs[name], value, defs, at);
        }
        for part in schema["allOf"].as_array().into_iter().flatten() {
            check(part, value, defs, at)?;
        }
        if let Some(options) = schema["oneOf"].as_array() {
            let results: Vec<_> = options.iter().map(|option| check(option, value, defs, at)).collect();
            if results.iter().filter(|result| result.is_ok()).count() != 1 {
                return fail(format!("not exactly one of {} options: {results:?}", options.len()));
            }
        }
        if let Some(allowed) = schema["enum"].as_array().filter(|allowed| !allowed.contains(value)) {
            return fail(format!("{value} is none of {allowed:?}"));
        }
        if let Some(kinds) = schema.get("type") {
            let kinds: Vec<&str> = kinds.as_array().map_or_else(
                || kinds.as_str().into_iter().collect(),
                |kinds| kinds.iter().filter_map(Value::as_str).collect(),
            );
            let kind_of = match value {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Number(number) if number.is_f64() => "number",
                Value::Number(_) => "integer",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            if !kinds.iter().any(|kind| *kind == kind_of || (*kind == "number" && kind_of == "integer")) {
                return fail(format!("{value} is not of type {kinds:?}"));
            }
        }
        if let Value::Object(fields) = value {
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !fields.contains_key(required) {
                    return fail(format!("`{required}` is missing"));
                }
            }
            let properties = schema["properties"].as_object();
            for (name, field) in fields {
                let at = format!("{at}.{name}");
                match (properties.and_then(|properties| properties.get(name)), schema.get("additionalProperties")) {
                    (Some(property), _) => check(property, field, defs, &at)?,
                    (None, Some(Value::Bool(false))) => return fail(format!("`{name}` is not allowed")),
                    (None, Some(extra @ Value::Object(_))) => check(extra, field, defs, &at)?,
                    (None, _) => {}
                }
            }
        }
        if let Value::Array(items) = value {
            if schema["maxItems"].as_u64().is_some_and(|max| items.len() as u64 > max) {
                return fail(format!("more than {} items", schema["maxItems"]));
            }
            for (index, item) in items.iter().enumerate() {
                check(&schema["items"], item, defs, &format!("{at}[{index}]"))?;
            }
        }
        Ok(())
    }

    /// An assistant's message as stored, with these calls (`[{id, name, arguments}]`).
    pub fn stored_message(content: &str, tool_calls: Value, finish_reason: Option<FinishReason>) -> Message {
        Message {
            id: crate::ids::MessageId::new(),
            session_id: crate::ids::SessionId::new(),
            parent_message_id: None,
            run_id: None,
            role: Role::Assistant,
            content: content.to_owned(),
            status: MessageStatus::Complete,
            finish_reason,
            tool_calls: sqlx::types::Json(tool_calls),
            citations: sqlx::types::Json(Value::Array(Vec::new())),
            retrieved: sqlx::types::Json(Value::Array(Vec::new())),
            input_tokens: None,
            output_tokens: None,
            total_tokens: None,
            model_used: None,
            provider_used: None,
            is_byok: None,
            metadata: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_checker_refuses_what_breaks_a_schema() {
        let defs = Map::new();
        let schema = serde_json::json!({
            "type": "object", "required": ["a"], "additionalProperties": { "type": "null" },
            "properties": { "a": { "oneOf": [
                { "type": "string", "enum": ["x"] },
                { "type": "array", "items": { "type": "integer" }, "maxItems": 1 },
            ] } },
        });
        for good in [serde_json::json!({ "a": "x" }), serde_json::json!({ "a": [1], "b": null })] {
            assert_eq!(check(&schema, &good, &defs, ""), Ok(()), "{good}");
        }
        for bad in [
            serde_json::json!({}),
            serde_json::json!({ "a": "y" }),
            serde_json::json!({ "a": [1, 2] }),
            serde_json::json!({ "a": [1.5] }),
            serde_json::json!({ "a": "x", "b": 1 }),
        ] {
            assert!(check(&schema, &bad, &defs, "").is_err(), "{bad}");
        }
    }
}
