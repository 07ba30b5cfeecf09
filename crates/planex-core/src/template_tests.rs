use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("test args must be an object"),
    }
}

fn results(pairs: &[(u32, Value)]) -> BTreeMap<StepId, Value> {
    pairs.iter().map(|(k, v)| (StepId(*k), v.clone())).collect()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn finds_placeholders_and_paths() {
    let found = placeholders("a {step_1_result} b {step_12_result.items.0.title} {step_1_result}");
    assert_eq!(
        found,
        vec![
            Placeholder {
                step: StepId(1),
                path: vec![]
            },
            Placeholder {
                step: StepId(12),
                path: vec!["items".into(), "0".into(), "title".into()]
            },
            Placeholder {
                step: StepId(1),
                path: vec![]
            },
        ]
    );
    assert_eq!(found[1].to_string(), "{step_12_result.items.0.title}");
}

#[test]
fn lookalikes_are_not_placeholders() {
    let text = "{step_x_result} {other} {step_1_results} {step_1_result.} {step__result} {\"a\": 1} {step_1_result";
    assert!(placeholders(text).is_empty());
    let args = obj(json!({"t": text}));
    assert_eq!(substitute_args(&args, &BTreeMap::new()), Ok(args.clone()));
}

#[test]
fn referenced_steps_walks_nested_values() {
    let args = obj(json!({"a": "{step_3_result}", "b": [{"c": "x {step_1_result.k}"}], "n": 5}));
    assert_eq!(
        referenced_steps(&args),
        BTreeSet::from([StepId(1), StepId(3)])
    );
}

#[test]
fn string_result_is_inserted_as_text() {
    let args = obj(json!({"text": "Summarise: {step_1_result}!"}));
    let out = substitute_args(&args, &results(&[(1, json!("GPU \"prices\""))]));
    assert_eq!(out, Ok(obj(json!({"text": "Summarise: GPU \"prices\"!"}))));
}

#[test]
fn json_result_is_inserted_as_compact_json() {
    let args = obj(json!({"text": "{step_2_result}", "list": ["{step_2_result}"]}));
    let out = substitute_args(&args, &results(&[(2, json!({"a": [1, 2]}))]));
    assert_eq!(
        out,
        Ok(obj(
            json!({"text": "{\"a\":[1,2]}", "list": ["{\"a\":[1,2]}"]})
        ))
    );
}

#[test]
fn field_path_navigates_objects_and_arrays() {
    let args = obj(json!({"q": "{step_1_result.items.1.title} / {step_1_result.count}"}));
    let r = results(&[(
        1,
        json!({"items": [{"title": "a"}, {"title": "b"}], "count": 2}),
    )]);
    assert_eq!(substitute_args(&args, &r), Ok(obj(json!({"q": "b / 2"}))));
}

#[test]
fn field_path_navigates_string_encoded_json() {
    let args = obj(json!({"q": "{step_4_result.data.price}"}));
    let r = results(&[(
        4,
        json!("{\"data\": {\"price\": 3.5, \"nested\": \"{\\\"x\\\": 1}\"}}"),
    )]);
    assert_eq!(substitute_args(&args, &r), Ok(obj(json!({"q": "3.5"}))));
    let args = obj(json!({"q": "{step_4_result.data.nested.x}"}));
    assert_eq!(substitute_args(&args, &r), Ok(obj(json!({"q": "1"}))));
}

#[test]
fn missing_field_names_step_and_path() {
    let args = obj(json!({"q": "{step_1_result.data.price}"}));
    let err = substitute_args(&args, &results(&[(1, json!({"data": {}}))]));
    let Err(err) = err else {
        panic!("missing field must fail")
    };
    assert!(
        matches!(&err, TemplateError::MissingField { step: StepId(1), path, .. } if path == "data.price")
    );
    let msg = err.to_string();
    assert!(
        msg.contains("step 1") && msg.contains("data.price") && msg.contains("\"price\""),
        "{msg}"
    );

    let err = substitute_args(&args, &results(&[(1, json!("plain text"))]));
    assert!(matches!(err, Err(TemplateError::MissingField { .. })));
}

#[test]
fn missing_result_names_the_step() {
    let args = obj(json!({"q": "{step_7_result}"}));
    let err = substitute_args(&args, &results(&[(1, json!("x"))]));
    let Err(err) = err else {
        panic!("missing result must fail")
    };
    assert_eq!(
        err,
        TemplateError::MissingResult {
            step: StepId(7),
            placeholder: "{step_7_result}".into()
        }
    );
    assert!(err.to_string().contains("step 7"));
}

#[test]
fn inserted_results_are_not_rescanned() {
    let args = obj(json!({"q": "{step_1_result}"}));
    let out = substitute_args(&args, &results(&[(1, json!("{step_2_result}"))]));
    assert_eq!(out, Ok(obj(json!({"q": "{step_2_result}"}))));
}

#[test]
fn render_url_encodes_values() {
    let args = obj(json!({"query": "gpu prices & co/2026", "limit": 5}));
    let out = render("/search?q={query}&n={limit}", &args, url_encode);
    assert_eq!(
        out,
        Ok("/search?q=gpu%20prices%20%26%20co%2F2026&n=5".to_owned())
    );
}

#[test]
fn render_optional_escapes_and_lookalikes() {
    let args = obj(json!({"text": "hello", "none": null}));
    let out = render(
        "{{literal}} {text}{lang?}{none?} {\"json\": 1} { text } }",
        &args,
        str::to_owned,
    );
    assert_eq!(
        out,
        Ok("{literal} hello {\"json\": 1} { text } }".to_owned())
    );
}

#[test]
fn render_missing_arg_is_an_error() {
    let args = obj(json!({"text": "hello"}));
    let err = render("{text} in {language}", &args, str::to_owned);
    let Err(err) = err else {
        panic!("missing arg must fail")
    };
    assert!(matches!(&err, TemplateError::MissingArg { name, .. } if name == "language"));
    let msg = err.to_string();
    assert!(msg.contains("{language}") && msg.contains("text"), "{msg}");
}
