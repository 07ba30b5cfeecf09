//! Which JSON Schema keywords the simulator answers: OpenAI's strict structured-output subset,
//! and what lenient (non-strict) requests may leave out.
//!
//! Key decision: one allow-list, not a deny-list, so a misspelt or new keyword in a strict request
//! is named in a 400 instead of being silently ignored; lenient requests ignore what is not listed.

use serde_json::{Map, Value};

use super::error::SchemaError;

/// Keywords that only describe (ignored in both modes).
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "$schema",
    "$id",
    "$comment",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$defs",
    "definitions",
];

/// Keywords that constrain an instance and are honoured.
const CONSTRAINTS: &[&str] = &[
    "type",
    "enum",
    "const",
    "anyOf",
    "$ref",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];

/// The seven JSON Schema instance types.
pub const TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "null", "array", "object",
];

/// A hint for a keyword outside the subset: what to write instead.
fn hint(keyword: &str) -> &'static str {
    match keyword {
        "oneOf" | "allOf" => "; use `anyOf`",
        "prefixItems" | "additionalItems" => "; use one `items` schema",
        "patternProperties" | "propertyNames" | "unevaluatedProperties" => {
            "; declare each property under `properties`"
        }
        _ => "",
    }
}

/// Checks that `map` (the schema at `path`) uses only honoured keywords. Strict requests get an
/// error naming the first other keyword (in sorted order); lenient requests ignore them.
pub fn check(map: &Map<String, Value>, path: &str, strict: bool) -> Result<(), SchemaError> {
    if !strict {
        return Ok(());
    }
    let mut unknown: Vec<&String> = map
        .keys()
        .filter(|k| !ANNOTATIONS.contains(&k.as_str()) && !CONSTRAINTS.contains(&k.as_str()))
        .collect();
    unknown.sort_unstable();
    match unknown.first() {
        Some(keyword) => Err(SchemaError::new(
            path,
            keyword,
            format!(
                "is not supported in strict mode{} (supported: {})",
                hint(keyword),
                CONSTRAINTS.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// The constraining keywords of `map` other than `except` (what a `$ref` or `anyOf` may not sit
/// beside in strict mode).
pub fn constraints_beside<'a>(map: &'a Map<String, Value>, except: &str) -> Option<&'a str> {
    let mut others: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| *k != except && CONSTRAINTS.contains(k))
        .collect();
    others.sort_unstable();
    others.first().copied()
}

/// The type a lenient schema without `type` is read as, from the keywords it uses.
pub fn inferred_type(map: &Map<String, Value>) -> Option<&'static str> {
    let has = |keys: &[&str]| keys.iter().any(|k| map.contains_key(*k));
    if has(&["properties", "required", "additionalProperties"]) {
        Some("object")
    } else if has(&["items", "minItems", "maxItems"]) {
        Some("array")
    } else if has(&["minLength", "maxLength", "pattern", "format"]) {
        Some("string")
    } else if has(&[
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    ]) {
        Some("number")
    } else {
        None
    }
}

/// Whether `value` is an instance of the JSON Schema type `name`.
pub fn is_of_type(value: &Value, name: &str) -> bool {
    match name {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}
