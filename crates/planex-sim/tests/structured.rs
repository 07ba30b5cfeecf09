//! Structured output: every `json_schema` in the strict subset gets JSON valid against it (checked
//! with the `jsonschema` crate, formats included), deterministic per request and the same when
//! streamed; lenient requests get valid JSON for open schemas; plan-shaped schemas get plans.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{chat, client, content_of, schema_body, schema_errors, validate_plan};
use planex_sim::{SimConfig, SimServer};
use planex_testkit::sim::start;
use serde_json::{Value, json};

/// A strict object: closed, with `required` as given.
fn obj(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "additionalProperties": false,
        "properties": properties, "required": required})
}

/// The answer to `schema` (asserting a 200) parsed as JSON.
async fn answer(server: &SimServer, schema: &Value, strict: bool, prompt: &str) -> Value {
    let (status, body) = chat(server, &schema_body("answer", schema, strict, prompt)).await;
    assert_eq!(status, 200, "{body}\nschema: {schema}");
    serde_json::from_str(content_of(&body))
        .unwrap_or_else(|e| panic!("content is not JSON ({e}): {body}"))
}

async fn assert_valid(server: &SimServer, label: &str, schema: &Value, strict: bool) -> Value {
    let value = answer(server, schema, strict, &format!("Fill in {label}")).await;
    let errors = schema_errors(schema, &value);
    assert!(
        errors.is_empty(),
        "{label}: {errors:?}\nschema: {schema}\nvalue: {value}"
    );
    value
}

fn table() -> Vec<(&'static str, Value)> {
    let person = obj(
        json!({"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0, "maximum": 130},
               "score": {"type": "number"}, "active": {"type": "boolean"},
               "role": {"type": "string", "enum": ["admin", "user", "guest"]}}),
        &["name", "age", "score", "active", "role"],
    );
    vec![
        ("flat object", person.clone()),
        (
            "nested objects",
            obj(
                json!({"owner": person.clone(), "meta": obj(json!({"created": {"type": "string", "format": "date-time"},
                    "tags": {"type": "array", "items": {"type": "string"}}}), &["created", "tags"])}),
                &["owner", "meta"],
            ),
        ),
        (
            "array of objects with bounds",
            obj(
                json!({"people": {"type": "array", "items": person, "minItems": 2, "maxItems": 4},
                       "empty": {"type": "array", "items": {"type": "integer"}, "maxItems": 0}}),
                &["people", "empty"],
            ),
        ),
        (
            "enum and const",
            obj(
                json!({"level": {"enum": ["low", "mid", 3, null]}, "kind": {"const": "fixed"},
                       "flag": {"type": "boolean", "const": false}}),
                &["level", "kind", "flag"],
            ),
        ),
        (
            "anyOf with null",
            obj(
                json!({"note": {"anyOf": [{"type": "string", "maxLength": 20}, {"type": "null"}]},
                       "value": {"anyOf": [{"type": "integer", "minimum": 5}, {"type": "number", "maximum": -5}, {"type": "null"}]}}),
                &["note", "value"],
            ),
        ),
        (
            "type arrays",
            obj(
                json!({"maybe_text": {"type": ["string", "null"], "minLength": 3},
                       "maybe_count": {"type": ["integer", "null"], "maximum": 3},
                       "either": {"type": ["boolean", "number"]}}),
                &["maybe_text", "maybe_count", "either"],
            ),
        ),
        (
            "$defs and $ref",
            json!({"type": "object", "additionalProperties": false, "required": ["home", "work"],
                "properties": {"home": {"$ref": "#/$defs/address"}, "work": {"$ref": "#/$defs/address", "description": "office"}},
                "$defs": {"address": obj(json!({"street": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}), &["street", "zip"])}}),
        ),
        (
            "recursive tree",
            json!({"$defs": {"node": obj(json!({"label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}), &["label", "children"])},
                "$ref": "#/$defs/node"}),
        ),
        (
            "recursive list through the root",
            obj(
                json!({"value": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}),
                &["value", "next"],
            ),
        ),
        (
            "mutual recursion",
            json!({"$defs": {
                    "a": obj(json!({"b": {"type": "array", "items": {"$ref": "#/$defs/b"}, "minItems": 1}}), &["b"]),
                    "b": obj(json!({"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}), &["a"])},
                "$ref": "#/$defs/a"}),
        ),
        (
            "number bounds",
            obj(
                json!({"pct": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                       "tenth": {"type": "number", "minimum": 0.2, "maximum": 0.9, "multipleOf": 0.1},
                       "even": {"type": "integer", "minimum": -9, "maximum": 9, "multipleOf": 2},
                       "big": {"type": "integer", "exclusiveMinimum": 1000000},
                       "neg": {"type": "number", "maximum": -1000.5}}),
                &["pct", "tenth", "even", "big", "neg"],
            ),
        ),
        (
            "string formats",
            obj(
                json!({"when": {"type": "string", "format": "date-time"}, "day": {"type": "string", "format": "date"},
                       "at": {"type": "string", "format": "time"}, "for": {"type": "string", "format": "duration"},
                       "mail": {"type": "string", "format": "email"}, "host": {"type": "string", "format": "hostname"},
                       "v4": {"type": "string", "format": "ipv4"}, "v6": {"type": "string", "format": "ipv6"},
                       "id": {"type": "string", "format": "uuid"}, "link": {"type": "string", "format": "uri"}}),
                &[
                    "when", "day", "at", "for", "mail", "host", "v4", "v6", "id", "link",
                ],
            ),
        ),
        (
            "string patterns and lengths",
            obj(
                json!({"phone": {"type": "string", "pattern": r"^\d{3}-\d{4}$"},
                       "currency": {"type": "string", "pattern": "^(EUR|USD|JPY)$"},
                       "code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2,3}(-[a-z]+)?$"},
                       "short": {"type": "string", "maxLength": 5},
                       "long": {"type": "string", "minLength": 300},
                       "exact": {"type": "string", "minLength": 12, "maxLength": 12}}),
                &["phone", "currency", "code", "short", "long", "exact"],
            ),
        ),
        (
            "root array",
            json!({"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "string", "enum": ["x", "y"]}}),
        ),
        (
            "root scalar",
            json!({"type": "integer", "minimum": 7, "maximum": 7}),
        ),
        (
            "property names that need pointer escapes",
            json!({"type": "object", "additionalProperties": false, "required": ["a/b", "x~y"],
                "properties": {"a/b": {"type": "string", "maxLength": 8}, "x~y": {"$ref": "#/$defs/odd~1name~0"}},
                "$defs": {"odd/name~": {"type": "array", "items": {"type": "boolean"}, "minItems": 1}}}),
        ),
        ("deep nesting", deep(9)),
        ("wide and large", wide()),
    ]
}

/// Required objects nested `levels` deep (deeper than the generator's generous depth).
fn deep(levels: usize) -> Value {
    (0..levels).fold(
        obj(json!({"leaf": {"type": "string"}}), &["leaf"]),
        |inner, _| {
            obj(
                json!({"child": inner, "extra": {"type": "integer"}}),
                &["child"],
            )
        },
    )
}

/// Many properties, each an array of objects: more values than the generator's budget.
fn wide() -> Value {
    let item = obj(
        json!({"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "number"}, "minItems": 2}}),
        &["a", "b"],
    );
    let props: serde_json::Map<String, Value> = (0..40)
        .map(|i| {
            (
                format!("p{i:02}"),
                json!({"type": "array", "items": item, "minItems": 2}),
            )
        })
        .collect();
    let names: Vec<String> = props.keys().cloned().collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    obj(Value::Object(props), &names)
}

#[tokio::test]
async fn every_schema_in_the_table_gets_valid_deterministic_json() {
    let server = start(SimConfig::default()).await;
    for (label, schema) in table() {
        let value = assert_valid(&server, label, &schema, true).await;
        let again = answer(&server, &schema, true, &format!("Fill in {label}")).await;
        assert_eq!(again, value, "{label}: the same request gets the same JSON");
    }
    // Free text is the sim's labelled synthetic prose; other prompts draw other values.
    let person = &table()[0].1;
    let one = answer(&server, person, true, "first prompt").await;
    assert!(
        one["name"].as_str().unwrap().starts_with("[simulated] "),
        "{one}"
    );
    let mut distinct = std::collections::HashSet::new();
    for i in 0..8 {
        distinct.insert(
            answer(&server, person, true, &format!("prompt {i}"))
                .await
                .to_string(),
        );
    }
    assert!(distinct.len() > 1, "answers vary with the prompt");
    // Structured answers are executor requests in the stats.
    let stats = server.stats();
    assert_eq!(stats.planner_requests, 0);
    assert_eq!(stats.executor_requests, stats.requests_total);
    server.shutdown().await;
}

#[tokio::test]
async fn recursion_is_bounded_and_still_recurses() {
    let server = start(SimConfig::default()).await;
    let tree = &table()
        .into_iter()
        .find(|(l, _)| *l == "recursive tree")
        .unwrap()
        .1;
    fn depth(v: &Value) -> usize {
        1 + v["children"]
            .as_array()
            .map_or(0, |c| c.iter().map(depth).max().unwrap_or(0))
    }
    let mut deepest = 0;
    for i in 0..10 {
        let value = answer(&server, tree, true, &format!("tree {i}")).await;
        assert!(schema_errors(tree, &value).is_empty());
        deepest = deepest.max(depth(&value));
    }
    assert!(deepest >= 2, "the tree has children");
    assert!(deepest <= 12, "recursion is bounded: {deepest}");
    server.shutdown().await;
}

mod random_schemas {
    //! A seeded generator of strict-subset schemas.
    use rand::seq::IndexedRandom;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::{Map, Value, json};

    pub struct Gen {
        rng: ChaCha8Rng,
        defs: Map<String, Value>,
    }

    impl Gen {
        pub fn new(seed: u64) -> Self {
            Gen {
                rng: ChaCha8Rng::seed_from_u64(seed),
                defs: Map::new(),
            }
        }

        /// A root schema (an object, as OpenAI wants), with `$defs` when any were made.
        pub fn root(mut self) -> Value {
            let mut root = self.object(0);
            if !self.defs.is_empty() {
                root["$defs"] = Value::Object(std::mem::take(&mut self.defs));
            }
            root
        }

        fn object(&mut self, depth: usize) -> Value {
            let n = self.rng.random_range(1..=5);
            let mut props = Map::new();
            let mut required = Vec::new();
            for i in 0..n {
                let name = format!("f{depth}_{i}");
                props.insert(name.clone(), self.schema(depth + 1));
                if self.rng.random_bool(0.7) {
                    required.push(name);
                }
            }
            json!({"type": "object", "additionalProperties": false, "properties": props, "required": required})
        }

        fn scalar(&mut self) -> Value {
            match self.rng.random_range(0..9) {
                0 => json!({"type": "string"}),
                1 => {
                    let min = self.rng.random_range(0..20);
                    json!({"type": "string", "minLength": min, "maxLength": min + self.rng.random_range(0..40)})
                }
                2 => {
                    json!({"type": "string", "format": *["date-time", "date", "email", "uuid", "ipv4", "uri"].choose(&mut self.rng).unwrap()})
                }
                3 => {
                    json!({"type": "string", "pattern": *[r"^[a-z]{3,6}$", r"^\d+(\.\d{2})?$", "^(on|off)$", r"^[A-F0-9]{8}$"].choose(&mut self.rng).unwrap()})
                }
                4 => {
                    let lo = self.rng.random_range(-50..50);
                    json!({"type": "integer", "minimum": lo, "maximum": lo + self.rng.random_range(0..100)})
                }
                5 => json!({"type": "number", "exclusiveMinimum": -1.5, "multipleOf": 0.25}),
                6 => json!({"type": "boolean"}),
                7 => json!({"enum": ["red", "green", 7, true]}),
                _ => json!({"type": ["string", "null"]}),
            }
        }

        fn schema(&mut self, depth: usize) -> Value {
            if depth >= 4 {
                return self.scalar();
            }
            match self.rng.random_range(0..10) {
                0..=3 => self.scalar(),
                4 => self.object(depth),
                5 => {
                    let min = self.rng.random_range(0..3);
                    json!({"type": "array", "items": self.schema(depth + 1), "minItems": min, "maxItems": min + self.rng.random_range(0..3)})
                }
                6 => {
                    json!({"anyOf": [self.schema(depth + 1), self.schema(depth + 1), {"type": "null"}]})
                }
                7 => json!({"const": self.rng.random_range(0..100)}),
                8 => {
                    // Reserve the name first, so refs inside the body name other (new) defs.
                    let name = format!("d{}", self.defs.len());
                    self.defs.insert(name.clone(), Value::Null);
                    let def = self.object(depth);
                    self.defs.insert(name.clone(), def);
                    json!({"$ref": format!("#/$defs/{name}")})
                }
                _ => json!({"type": "array", "items": {"$ref": "#"}, "maxItems": 2}),
            }
        }
    }
}

#[tokio::test]
async fn seeded_random_schemas_get_valid_json() {
    let server = start(SimConfig::default()).await;
    for seed in 0..60 {
        let schema = random_schemas::Gen::new(seed).root();
        assert_valid(&server, &format!("random schema {seed}"), &schema, true).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn lenient_requests_get_valid_json_for_open_schemas() {
    let server = start(SimConfig::default()).await;
    let open = [
        json!({"properties": {"a": {"type": "string"}, "b": {"minimum": 3, "maximum": 4}}, "required": ["a", "b", "c"]}),
        json!({"type": "object", "additionalProperties": {"type": "integer"}, "required": ["n"], "x-vendor": 1,
               "properties": {"list": {"items": {"type": "boolean"}, "minItems": 1}}}),
        json!({"type": "object", "properties": {"id": {"type": "string", "format": "ulid-ish", "$comment": "ignored"}}}),
        json!({"type": "array", "items": true, "minItems": 2}),
        json!({}),
    ];
    for (i, schema) in open.iter().enumerate() {
        assert_valid(&server, &format!("open schema {i}"), schema, false).await;
    }
    // An empty schema means any JSON: the executor's small labelled object.
    let any = answer(&server, &json!({}), false, "anything").await;
    assert_eq!(any["simulated"], true);
    // Keywords outside the subset are ignored without strict: the answer is still JSON.
    let loose = json!({"type": "object", "properties": {"a": {"type": "string"}}, "not": {"required": ["a"]}});
    let value = answer(&server, &loose, false, "loose").await;
    assert!(value.is_object());
    server.shutdown().await;
}

#[tokio::test]
async fn streaming_a_schema_answer_gives_the_same_json_in_chunks() {
    let server = start(SimConfig::default()).await;
    let schema = &table()[1].1;
    let body = schema_body("nested", schema, true, "stream it");
    let (_, whole) = chat(&server, &body).await;
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let text = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&streamed)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let pieces: Vec<String> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| {
            let chunk: Value = serde_json::from_str(d).unwrap();
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .filter(|p| !p.is_empty())
        .collect();
    assert!(
        pieces.len() > 3,
        "the JSON comes in several chunks: {pieces:?}"
    );
    let joined = pieces.concat();
    assert_eq!(joined, content_of(&whole));
    let value: Value = serde_json::from_str(&joined).unwrap();
    assert!(schema_errors(schema, &value).is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn plans_are_chosen_by_shape_not_by_name() {
    let server = start(SimConfig::default()).await;
    // A schema named `plan` without a tool enum is answered like any other schema.
    let not_a_plan = obj(
        json!({"steps": {"type": "array", "items": obj(json!({"tool_name": {"type": "string"},
            "why": {"type": "string"}}), &["tool_name", "why"]), "minItems": 1}}),
        &["steps"],
    );
    let (status, body) = chat(
        &server,
        &schema_body("plan", &not_a_plan, true, "Plan a trip"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let value: Value = serde_json::from_str(content_of(&body)).unwrap();
    assert!(schema_errors(&not_a_plan, &value).is_empty(), "{value}");
    // A plan-shaped schema under another name still gets a plan.
    let mut planner = common::planner_body("Compare GPU prices", 6);
    planner["response_format"]["json_schema"]["name"] = json!("my_plan");
    let (status, body) = chat(&server, &planner).await;
    assert_eq!(status, 200, "{body}");
    validate_plan(&serde_json::from_str(content_of(&body)).unwrap(), 6);
    let stats = server.stats();
    assert_eq!((stats.planner_requests, stats.executor_requests), (1, 1));
    server.shutdown().await;
}
