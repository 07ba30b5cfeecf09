//! Shared helpers for the planex-sim integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use planex_sim::SimServer;
use serde_json::{Value, json};

thread_local! {
    // One client per test thread: building a native-tls client is slow, and each
    // #[tokio::test] runs on its own thread with its own runtime.
    static CLIENT: reqwest::Client = reqwest::Client::new();
}

pub fn client() -> reqwest::Client {
    CLIENT.with(Clone::clone)
}

/// A plain executor request.
pub fn executor_body(content: &str) -> Value {
    json!({"model": "sim-model", "messages": [
        {"role": "system", "content": "You are a helpful executor."},
        {"role": "user", "content": content}]})
}

/// POSTs `body` to chat completions; returns (status, json-or-null, headers).
pub async fn chat(server: &SimServer, body: &Value) -> (u16, Value) {
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let value = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, value)
}

/// A tool as the engine describes it: (name, args schema).
pub fn catalog() -> Vec<(&'static str, Value)> {
    vec![
        (
            "web_search",
            json!({"type":"object","additionalProperties":false,"required":["query"],
            "properties":{"query":{"type":"string","minLength":3,"maxLength":200},
                          "limit":{"type":"integer","minimum":1,"maximum":10}}}),
        ),
        (
            "fetch_page",
            json!({"type":"object","additionalProperties":false,"required":["url"],
            "properties":{"url":{"type":"string"},"raw":{"type":"boolean"}}}),
        ),
        (
            "summarize",
            json!({"type":"object","additionalProperties":false,"required":["text"],
            "properties":{"text":{"type":"string"},
                          "style":{"type":"string","enum":["brief","detailed"]},
                          "max_words":{"type":"integer","minimum":20,"maximum":400}}}),
        ),
        (
            "compare",
            json!({"type":"object","additionalProperties":false,"required":["items","criteria"],
            "properties":{"items":{"type":"string"},
                          "criteria":{"type":"array","items":{"type":"string"}},
                          "weight":{"type":"number","minimum":0,"maximum":1}}}),
        ),
    ]
}

/// The plan schema the engine sends.
pub fn plan_schema(max: usize) -> Value {
    let alternatives: Vec<Value> = catalog()
        .into_iter()
        .map(|(name, args)| {
            json!({"type":"object","additionalProperties":false,
            "required":["step_id","tool_name","args","depends_on"],
            "properties":{"step_id":{"type":"integer","minimum":1},
                "tool_name":{"type":"string","enum":[name]},
                "args": args,
                "depends_on":{"type":"array","items":{"type":"integer","minimum":1}}}})
        })
        .collect();
    json!({"type":"object","additionalProperties":false,"required":["steps"],
        "properties":{"steps":{"type":"array","minItems":1,"maxItems":max,
            "items":{"anyOf": alternatives}}}})
}

/// A planner request for `task`.
pub fn planner_body(task: &str, max: usize) -> Value {
    json!({"model": "sim-model",
        "messages": [{"role": "system", "content": "You are a planner. Tools: ..."},
                     {"role": "user", "content": task}],
        "response_format": {"type": "json_schema",
            "json_schema": {"name": "plan", "strict": true, "schema": plan_schema(max)}}})
}

fn check_value(name: &str, schema: &Value, value: &Value) {
    if let Some(options) = schema.get("enum") {
        assert!(
            options.as_array().unwrap().contains(value),
            "{name}: {value} not in enum"
        );
        return;
    }
    match schema["type"].as_str().unwrap() {
        "string" => {
            let s = value
                .as_str()
                .unwrap_or_else(|| panic!("{name} not a string"));
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength") {
                assert!(
                    len >= min.as_u64().unwrap() || s.contains("{step_"),
                    "{name} too short"
                );
            }
            if let Some(max) = schema.get("maxLength") {
                assert!(
                    len <= max.as_u64().unwrap() || s.contains("{step_"),
                    "{name} too long"
                );
            }
        }
        "integer" | "number" => {
            let n = value
                .as_f64()
                .unwrap_or_else(|| panic!("{name} not a number"));
            if schema["type"] == "integer" {
                assert!(value.is_i64() || value.is_u64(), "{name} not an integer");
            }
            if let Some(min) = schema.get("minimum") {
                assert!(n >= min.as_f64().unwrap());
            }
            if let Some(max) = schema.get("maximum") {
                assert!(n <= max.as_f64().unwrap());
            }
        }
        "boolean" => assert!(value.is_boolean()),
        "array" => {
            let items = value.as_array().unwrap();
            assert!(!items.is_empty());
            for item in items {
                check_value(name, &schema["items"], item);
            }
        }
        other => panic!("unexpected type {other}"),
    }
}

/// Validates `plan` against the catalog and engine rules; returns the steps.
pub fn validate_plan(plan: &Value, max: usize) -> Vec<Value> {
    let obj = plan.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["steps"]);
    let steps = plan["steps"].as_array().unwrap().clone();
    assert!(steps.len() <= max, "more steps than maxItems");
    assert!(
        steps.len() >= 3.min(max) && steps.len() <= 10,
        "{} steps",
        steps.len()
    );
    let catalog = catalog();
    let mut seen = HashSet::new();
    for (i, step) in steps.iter().enumerate() {
        let mut keys: Vec<_> = step.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["args", "depends_on", "step_id", "tool_name"]);
        let id = step["step_id"].as_u64().unwrap();
        assert_eq!(id, i as u64 + 1);
        let deps: Vec<u64> = step["depends_on"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert!(deps.iter().all(|d| *d >= 1 && *d < id && seen.contains(d)));
        seen.insert(id);
        let name = step["tool_name"].as_str().unwrap();
        let (_, schema) = catalog
            .iter()
            .find(|(n, _)| *n == name)
            .expect("tool in enum");
        let args = step["args"].as_object().unwrap();
        let props = schema["properties"].as_object().unwrap();
        for req in schema["required"].as_array().unwrap() {
            assert!(
                args.contains_key(req.as_str().unwrap()),
                "{name}: missing {req}"
            );
        }
        let mut placeholders_found = HashSet::new();
        for (key, value) in args {
            let prop = props
                .get(key)
                .unwrap_or_else(|| panic!("{name}: extra arg {key}"));
            check_value(key, prop, value);
            let text = value.to_string();
            for part in text.split("{step_").skip(1) {
                let n: u64 = part.split('_').next().unwrap().parse().unwrap();
                assert!(part.starts_with(&format!("{n}_result}}")));
                assert!(
                    deps.contains(&n),
                    "placeholder for step {n} not in depends_on"
                );
                placeholders_found.insert(n);
            }
        }
        if !deps.is_empty() && name != "fetch_page" && name != "web_search" {
            assert_eq!(placeholders_found.len(), deps.len(), "step {id}: {step}");
        }
    }
    steps
}

/// A chat request asking for JSON matching `schema` (`json_schema` named `name`).
pub fn schema_body(name: &str, schema: &Value, strict: bool, prompt: &str) -> Value {
    json!({"model": "sim-model",
        "messages": [{"role": "system", "content": "Answer in JSON."},
                     {"role": "user", "content": prompt}],
        "response_format": {"type": "json_schema",
            "json_schema": {"name": name, "strict": strict, "schema": schema}}})
}

/// The assistant message content of a chat completion.
pub fn content_of(answer: &Value) -> &str {
    answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content in {answer}"))
}

/// Why `instance` does not validate against `schema` (formats checked too); empty when it does.
pub fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("the test schema itself is invalid: {e}\n{schema}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Asserts that `body` is an OpenAI error body: `error.{message,type,param,code}`, nothing else.
pub fn assert_openai_error(body: &Value) -> &Value {
    let error = &body["error"];
    let mut keys: Vec<&str> = error
        .as_object()
        .unwrap_or_else(|| panic!("not an OpenAI error body: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["type"].is_string(), "{body}");
    error
}
