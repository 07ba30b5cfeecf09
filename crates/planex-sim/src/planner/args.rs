//! Fills a tool's args from its input JSON schema with short, task-related values.
//!
//! Key decision: every declared property is filled (required and optional) in sorted key order,
//! so the result does not depend on serde_json's map ordering feature; the placeholder property
//! of a dependent step is the first non-enum string property in `required` order (then sorted).

use serde_json::{Map, Number, Value, json};

use super::schema::resolve;

/// Text sources for one step's args.
#[derive(Clone, Debug)]
pub struct ArgText<'a> {
    /// Short task-related text (markers stripped).
    pub topic: &'a str,
    /// A facet that varies per step ("pricing", "benchmarks", …).
    pub facet: &'a str,
    /// For a dependent step: the text holding `{step_N_result}` placeholders.
    pub placeholders: Option<String>,
}

const MAX_DEPTH: usize = 4;

/// The property that should carry a dependent step's placeholders, if the schema has one.
pub fn placeholder_property(root: &Value, schema: &Value) -> Option<String> {
    let schema = resolve(root, schema);
    let props = schema.get("properties")?.as_object()?;
    let is_free_string = |name: &str| {
        props.get(name).is_some_and(|p| {
            let p = resolve(root, p);
            first_type(p).as_deref() == Some("string")
                && p.get("enum").is_none()
                && p.get("const").is_none()
                && p.get("format").is_none()
        })
    };
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let mut sorted: Vec<&str> = props.keys().map(String::as_str).collect();
    sorted.sort_unstable();
    required
        .chain(sorted)
        .find(|name| is_free_string(name))
        .map(str::to_owned)
}

/// Args object for `schema`.
pub fn fill_args(root: &Value, schema: &Value, text: &ArgText<'_>) -> Value {
    let schema = resolve(root, schema);
    let target = text
        .placeholders
        .as_ref()
        .and_then(|_| placeholder_property(root, schema));
    let mut object = fill_object(root, schema, text, 0);
    if let (Some(name), Some(value), Value::Object(map)) =
        (target, text.placeholders.as_ref(), &mut object)
    {
        map.insert(name, Value::String(value.clone()));
    }
    object
}

fn first_type(schema: &Value) -> Option<String> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.clone()),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .map(str::to_owned),
        _ if schema.get("properties").is_some() => Some("object".to_owned()),
        _ if schema.get("items").is_some() => Some("array".to_owned()),
        _ => None,
    }
}

fn fill_object(root: &Value, schema: &Value, text: &ArgText<'_>, depth: usize) -> Value {
    let mut map = Map::new();
    let props = schema.get("properties").and_then(Value::as_object);
    if let Some(props) = props {
        let mut names: Vec<&String> = props.keys().collect();
        names.sort_unstable();
        for name in names {
            if let Some(prop) = props.get(name) {
                map.insert(name.clone(), fill_value(root, name, prop, text, depth + 1));
            }
        }
    }
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(name) {
            map.insert(name.to_owned(), Value::String(text.topic.to_owned()));
        }
    }
    Value::Object(map)
}

fn fill_value(root: &Value, name: &str, schema: &Value, text: &ArgText<'_>, depth: usize) -> Value {
    let schema = resolve(root, schema);
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
    {
        return first.clone();
    }
    let alternative = ["anyOf", "oneOf", "allOf"].iter().find_map(|key| {
        schema.get(*key).and_then(Value::as_array).and_then(|list| {
            list.iter()
                .map(|alt| resolve(root, alt))
                .find(|alt| first_type(alt).as_deref() != Some("null"))
        })
    });
    if let Some(alt) = alternative {
        return fill_value(root, name, alt, text, depth);
    }
    match first_type(schema).as_deref() {
        Some("integer") => fill_integer(schema),
        Some("number") => fill_number(schema),
        Some("boolean") => Value::Bool(true),
        Some("null") => Value::Null,
        Some("object") if depth < MAX_DEPTH => fill_object(root, schema, text, depth),
        Some("object") => json!({}),
        Some("array") => fill_array(root, name, schema, text, depth),
        _ => Value::String(fill_string(name, schema, text)),
    }
}

fn fill_array(root: &Value, name: &str, schema: &Value, text: &ArgText<'_>, depth: usize) -> Value {
    let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1);
    let max = schema
        .get("maxItems")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let count = min.max(1).min(max).min(16);
    let Some(items) = schema.get("items") else {
        return Value::Array((0..count).map(|_| json!(text.topic)).collect());
    };
    let items = resolve(root, items);
    if depth >= MAX_DEPTH {
        return json!([]);
    }
    let values = (0..count)
        .map(|i| match fill_value(root, name, items, text, depth + 1) {
            Value::String(s) if i > 0 => Value::String(format!("{s} {}", i + 1)),
            other => other,
        })
        .collect();
    Value::Array(values)
}

fn bound(schema: &Value, inclusive: &str, exclusive: &str, step: f64) -> Option<f64> {
    let inc = schema.get(inclusive).and_then(Value::as_f64);
    let exc = schema
        .get(exclusive)
        .and_then(Value::as_f64)
        .map(|x| x + step);
    match (inc, exc) {
        (Some(a), Some(b)) if step > 0.0 => Some(a.max(b)),
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn pick(lo: Option<f64>, hi: Option<f64>) -> f64 {
    let mut value: f64 = 5.0;
    if let Some(hi) = hi {
        value = value.min(hi);
    }
    if let Some(lo) = lo {
        value = value.max(lo);
    }
    value
}

fn fill_integer(schema: &Value) -> Value {
    let lo = bound(schema, "minimum", "exclusiveMinimum", 1.0).map(f64::ceil);
    let hi = bound(schema, "maximum", "exclusiveMaximum", -1.0).map(f64::floor);
    let mut value = pick(lo, hi).floor();
    if let Some(lo) = lo {
        value = value.max(lo);
    }
    Value::Number(Number::from(value as i64))
}

fn fill_number(schema: &Value) -> Value {
    let lo = bound(schema, "minimum", "exclusiveMinimum", 0.5);
    let hi = bound(schema, "maximum", "exclusiveMaximum", -0.5);
    Number::from_f64(pick(lo, hi)).map_or(json!(0), Value::Number)
}

fn slug(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() {
        "task".to_owned()
    } else {
        words.join("-")
    }
}

fn fill_string(name: &str, schema: &Value, text: &ArgText<'_>) -> String {
    let lower = name.to_ascii_lowercase();
    let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
    let mut value = match format {
        "date" => "2026-01-01".to_owned(),
        "date-time" => "2026-01-01T00:00:00Z".to_owned(),
        "email" => "sim@example.invalid".to_owned(),
        "uri" | "url" => format!(
            "https://example.invalid/{}/{}",
            slug(text.topic),
            slug(text.facet)
        ),
        _ if lower.contains("url") => format!(
            "https://example.invalid/{}/{}",
            slug(text.topic),
            slug(text.facet)
        ),
        _ if lower.contains("lang") => "en".to_owned(),
        _ if text.placeholders.is_some() => text.topic.to_owned(),
        _ => format!("{} {}", text.topic, text.facet),
    };
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    while value.chars().count() < min {
        value.push_str(" details");
    }
    if let Some(max) = max.filter(|max| value.chars().count() > *max) {
        value = value.chars().take(max).collect::<String>();
        if value.trim_end().chars().count() >= min {
            value = value.trim_end().to_owned();
        }
    }
    value
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn fills_every_kind_within_bounds() {
        let schema = json!({"type":"object","required":["text","style"],"properties":{
            "style":{"type":"string","enum":["brief","long"]},
            "text":{"type":"string","minLength":3},
            "title":{"type":"string","maxLength":4},
            "limit":{"type":"integer","minimum":10,"maximum":20},
            "ratio":{"type":"number","maximum":1},
            "strict":{"type":"boolean"},
            "tags":{"type":"array","items":{"type":"string"}}}});
        let text = ArgText {
            topic: "gpu prices",
            facet: "overview",
            placeholders: None,
        };
        let args = fill_args(&schema, &schema, &text);
        assert_eq!(args["style"], "brief");
        assert_eq!(args["title"], "gpu");
        assert_eq!(args["limit"], 10);
        assert!(args["ratio"].as_f64().unwrap() <= 1.0);
        assert_eq!(args["strict"], true);
        assert_eq!(args["tags"].as_array().unwrap().len(), 1);
        assert_eq!(
            placeholder_property(&schema, &schema).as_deref(),
            Some("text")
        );
        let text = ArgText {
            placeholders: Some("{step_1_result}".into()),
            ..text
        };
        assert_eq!(
            fill_args(&schema, &schema, &text)["text"],
            "{step_1_result}"
        );
    }
}
