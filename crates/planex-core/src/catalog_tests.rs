use super::*;
use crate::test_support::{catalog, specs, tool};
use serde_json::json;

fn catalog_error(specs: Vec<ToolSpec>) -> CatalogError {
    match Catalog::new(specs) {
        Ok(_) => panic!("catalog should have been refused"),
        Err(e) => e,
    }
}

#[test]
fn names_sorted_and_lookup() {
    let c = catalog();
    assert_eq!(c.names(), vec!["extract", "summarize", "web_search"]);
    assert_eq!(c.len(), 3);
    assert!(!c.is_empty());
    assert!(c.get("summarize").is_some());
    assert!(c.get("nope").is_none());
    assert_eq!(
        c.specs().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        c.names()
    );
}

#[test]
fn catalog_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Catalog>();
}

#[test]
fn plan_schema_shape() {
    let schema = catalog().plan_schema(7);
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], json!(["steps"]));
    let steps = &schema["properties"]["steps"];
    assert_eq!(steps["maxItems"], 7);
    assert_eq!(steps["minItems"], 1);
    let any_of = steps["items"]["anyOf"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let enums: Vec<Value> = any_of
        .iter()
        .map(|t| t["properties"]["tool_name"]["enum"].clone())
        .collect();
    assert_eq!(
        enums,
        vec![
            json!(["extract"]),
            json!(["summarize"]),
            json!(["web_search"])
        ]
    );
    let first = &any_of[0];
    assert_eq!(
        first["required"],
        json!(["step_id", "tool_name", "args", "depends_on"])
    );
    assert_eq!(first["additionalProperties"], false);
    assert_eq!(
        first["properties"]["step_id"],
        json!({"type": "integer", "minimum": 1, "maximum": u32::MAX - 1})
    );
    assert_eq!(
        first["properties"]["depends_on"],
        json!({"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": u32::MAX - 1}})
    );
    assert_eq!(first["properties"]["args"], specs()[2].input_schema);
    // The plan schema is itself a valid JSON Schema that accepts a real plan.
    let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string());
    let plan = json!({"steps": [{"step_id": 1, "tool_name": "web_search", "args": {"query": "x"}, "depends_on": []}]});
    assert_eq!(validator.map(|v| v.is_valid(&plan)), Ok(true));
}

#[test]
fn hash_is_stable_and_changes_with_a_spec() {
    let a = catalog().hash();
    assert_eq!(a.len(), 64);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    // Order of the input list does not matter.
    let mut reversed = specs();
    reversed.reverse();
    assert_eq!(Catalog::new(reversed).map(|c| c.hash()), Ok(a.clone()));
    let mut changed = specs();
    changed[1].description.push('!');
    assert_ne!(Catalog::new(changed).map(|c| c.hash()), Ok(a.clone()));
    let mut changed = specs();
    changed[0].tier = "medium".into();
    assert_ne!(Catalog::new(changed).map(|c| c.hash()), Ok(a));
}

#[test]
fn prompt_listing_content() {
    let listing = catalog().prompt_listing();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(
        lines,
        vec![
            "- extract(text: string, fields: string[]): The extract tool.",
            "- summarize(text: string, style?: \"short\"|\"long\"): The summarize tool.",
            "- web_search(query: string, limit?: integer): The web_search tool.",
        ]
    );
}

#[test]
fn subset_keeps_named_tools_and_rejects_unknown_ones() {
    let c = catalog();
    let sub = c.subset(&["web_search".into(), "summarize".into()]);
    assert_eq!(
        sub.map(|s| s.names()),
        Ok(vec!["summarize".to_owned(), "web_search".to_owned()])
    );
    let err = c.subset(&["web_search".into(), "translate".into()]);
    let Err(err) = err else {
        panic!("unknown tool must be refused")
    };
    assert!(
        matches!(&err, CatalogError::UnknownTools { unknown, .. } if unknown == &["translate"])
    );
    let msg = err.to_string();
    assert!(
        msg.contains("translate") && msg.contains("extract, summarize, web_search"),
        "{msg}"
    );
}

#[test]
fn duplicate_tool_is_refused() {
    let mut s = specs();
    s.push(tool("summarize", json!({"type": "object"})));
    let err = catalog_error(s);
    assert_eq!(
        err,
        CatalogError::DuplicateName {
            name: "summarize".into()
        }
    );
    assert!(err.to_string().contains("\"summarize\""));
}

#[test]
fn empty_name_is_refused() {
    let err = catalog_error(vec![tool(" ", json!({"type": "object"}))]);
    assert!(matches!(err, CatalogError::EmptyName { index: 0, .. }));
}

#[test]
fn invalid_schema_is_refused_naming_the_tool() {
    let err = catalog_error(vec![tool(
        "broken",
        json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": "one"}}}),
    )]);
    assert!(
        matches!(&err, CatalogError::InvalidSchema { tool, which: "input", .. } if tool == "broken"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("\"broken\"") && err.to_string().contains("/properties/n/minimum"),
        "{err}"
    );

    let mut bad_output = tool("out", json!({"type": "object"}));
    bad_output.output_schema = Some(json!({"type": "not-a-type"}));
    let err = catalog_error(vec![bad_output]);
    assert!(
        matches!(&err, CatalogError::InvalidSchema { tool, which: "output", .. } if tool == "out"),
        "{err:?}"
    );
}

#[test]
fn non_object_input_schema_is_refused() {
    let err = catalog_error(vec![tool("s", json!({"type": "string"}))]);
    assert!(matches!(&err, CatalogError::NotObjectSchema { tool, .. } if tool == "s"));
    assert!(err.to_string().contains("\"type\": \"object\""), "{err}");
    let err = catalog_error(vec![tool("t", json!(true))]);
    assert!(matches!(err, CatalogError::NotObjectSchema { .. }));
}

#[test]
fn validate_args_reports_paths() {
    let c = catalog();
    let ok = json!({"query": "gpu prices", "limit": 3});
    assert_eq!(
        c.validate_args("web_search", ok.as_object().unwrap_or(&Map::new())),
        Ok(())
    );
    let bad = json!({"query": 5, "limit": 0});
    let errors = c
        .validate_args("web_search", bad.as_object().unwrap_or(&Map::new()))
        .err()
        .unwrap_or_default();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().any(|e| e.starts_with("/query: ")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with("/limit: ")),
        "{errors:?}"
    );
    let missing = c
        .validate_args("web_search", &Map::new())
        .err()
        .unwrap_or_default();
    assert!(
        missing[0].starts_with("(root): ") && missing[0].contains("query"),
        "{missing:?}"
    );
    let unknown = c
        .validate_args("nope", &Map::new())
        .err()
        .unwrap_or_default();
    assert!(unknown[0].contains("nope") && unknown[0].contains("web_search"));
}

#[test]
fn validate_output_uses_output_schema_when_present() {
    let mut with_output = tool("classify", json!({"type": "object"}));
    with_output.output_schema = Some(json!({"type": "object", "required": ["label"]}));
    let c = Catalog::new(vec![with_output, tool("free", json!({"type": "object"}))])
        .map_err(|e| e.to_string());
    let Ok(c) = c else {
        panic!("catalog must build")
    };
    assert_eq!(c.validate_output("free", &json!("anything")), Ok(()));
    assert_eq!(
        c.validate_output("classify", &json!({"label": "a"})),
        Ok(())
    );
    let errors = c
        .validate_output("classify", &json!({}))
        .err()
        .unwrap_or_default();
    assert!(errors[0].contains("label"), "{errors:?}");
}

#[test]
fn uses_must_name_http_or_mcp_tools_and_rounds_must_be_bounded() {
    let mut reader = ToolSpec::one_arg_llm("reader", "q", "small", 64);
    let mcp = ToolSpec {
        name: "files__read".into(),
        description: "read".into(),
        input_schema: json!({"type": "object"}),
        output_schema: None,
        tier: "tools".into(),
        kind: crate::ToolKind::Mcp(crate::McpTool {
            server: "files".into(),
            tool: "read".into(),
        }),
    };
    let other = ToolSpec::one_arg_llm("other", "q", "small", 64);
    let with = |reader: &ToolSpec| vec![reader.clone(), mcp.clone(), other.clone()];
    let crate::ToolKind::Llm(llm) = &mut reader.kind else {
        panic!()
    };
    llm.uses = vec!["files__read".into()];
    assert!(Catalog::new(with(&reader)).is_ok());
    for (uses, rounds, says) in [
        ("nope", 3, "is not in the catalog"),
        ("other", 3, "is an llm tool"),
        ("files__read", 0, "max_tool_rounds is 0"),
        ("files__read", 11, "max_tool_rounds is 11"),
    ] {
        let mut bad = reader.clone();
        let crate::ToolKind::Llm(llm) = &mut bad.kind else {
            panic!()
        };
        llm.uses = vec![uses.into()];
        llm.max_tool_rounds = rounds;
        let error = catalog_error(with(&bad));
        assert!(
            matches!(&error, CatalogError::BadUses { tool, .. } if tool == "reader"),
            "{error}"
        );
        let text = error.to_string();
        assert!(text.contains(says), "{text}");
        if rounds == 3 {
            assert!(
                text.contains("it may use http and mcp tools (files__read)"),
                "{text}"
            );
        }
    }
}
