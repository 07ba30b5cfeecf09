//! Function calling: a request that offers `tools` (and does not set `tool_choice: "none"`) is
//! answered with tool calls, deterministically, so a client's tool loop is testable without a GPU.
//!
//! What is called, round by round (a round is one assistant message with `tool_calls` already in
//! the conversation):
//! - `#sim:call=NAME{ARGS}` markers in the system and user messages script the rounds: the k-th
//!   marker is round k's calls. One marker may hold several calls separated by `|`
//!   (`#sim:call=read{"path":"a"}|read{"path":"b"}`: two calls in one round). `{ARGS}` is a JSON
//!   object without spaces; without it the arguments are generated from the tool's `parameters`
//!   schema. Names are called as written, offered or not, so a client's refusals are testable.
//!   Once the script is used up, the answer is text.
//! - Without markers, round 1 calls the first offered tool with generated arguments; later
//!   rounds answer in text.
//!
//! Key decision: the script lives in the prompt (like every other `#sim:` marker), so a plan's
//! args or a workload file decide the calls; tool results are never scanned for the script, so a
//! tool cannot make the model call it again.

use serde_json::{Map, Value, json};

use crate::openai::{ApiError, ChatRequest};
use crate::structured::Schema;
use crate::text;

/// The marker that scripts a round of calls.
const CALL: &str = "#sim:call=";

/// One call the model makes.
#[derive(Clone, Debug, PartialEq)]
pub struct SimCall {
    /// `call_…`, unique per response.
    pub id: String,
    /// The function called.
    pub name: String,
    /// Its arguments as JSON text.
    pub arguments: String,
}

/// The calls that answer `request`, or `None` when it is answered in text.
pub fn decide(request: &ChatRequest, response_id: &str) -> Result<Option<Vec<SimCall>>, ApiError> {
    if request.tools.is_empty()
        || request.tool_choice.as_ref().and_then(Value::as_str) == Some("none")
    {
        return Ok(None);
    }
    let round = request
        .messages
        .iter()
        .filter(|m| m.role == "assistant" && m.has_tool_calls())
        .count();
    let script: Vec<String> = request
        .messages
        .iter()
        .filter(|m| m.role == "system" || m.role == "user")
        .flat_map(|m| scripted_rounds(&m.text()))
        .collect();
    let planned: Vec<(String, Option<Value>)> = if script.is_empty() {
        if round > 0 {
            return Ok(None);
        }
        let Some(first) = request.tools.first().and_then(function_name) else {
            return Err(ApiError::bad_request(
                "`tools[0]` must be {\"type\": \"function\", \"function\": {\"name\": …}}",
            ));
        };
        vec![(first.to_owned(), None)]
    } else {
        match script.get(round) {
            Some(spec) => parse_round(spec)?,
            None => return Ok(None),
        }
    };
    planned
        .into_iter()
        .enumerate()
        .map(|(index, (name, args))| {
            let arguments = match args {
                Some(args) => args,
                None => generated_args(request, &name, round)?,
            };
            Ok(SimCall {
                id: format!(
                    "call_{}_{round}_{index}",
                    response_id.trim_start_matches("chatcmpl-")
                ),
                name,
                arguments: arguments.to_string(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()
        .map(Some)
}

/// The `name` of an OpenAI tool definition.
fn function_name(tool: &Value) -> Option<&str> {
    tool.get("function")?.get("name")?.as_str()
}

/// The text after each `#sim:call=` marker of `text`, up to the next whitespace.
fn scripted_rounds(text: &str) -> Vec<String> {
    text.match_indices(CALL)
        .map(|(start, _)| {
            let rest = &text[start + CALL.len()..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .collect()
}

/// `NAME{ARGS}|NAME|…` as (name, args) pairs.
fn parse_round(spec: &str) -> Result<Vec<(String, Option<Value>)>, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("`{CALL}{spec}`: {why}"));
    let mut calls = Vec::new();
    let mut rest = spec;
    while !rest.is_empty() {
        let end = rest.find(['{', '|']).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() {
            return Err(bad("a call needs a function name"));
        }
        rest = &rest[end..];
        let mut args = None;
        if rest.starts_with('{') {
            let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            let value = match values.next() {
                Some(Ok(value @ Value::Object(_))) => value,
                _ => return Err(bad("the arguments must be a JSON object without spaces")),
            };
            rest = &rest[values.byte_offset()..];
            args = Some(value);
        }
        calls.push((name.to_owned(), args));
        match rest.strip_prefix('|') {
            Some("") => return Err(bad("a `|` must be followed by another call")),
            Some(next) => rest = next,
            None if rest.is_empty() => {}
            None => return Err(bad("calls are separated by `|`")),
        }
    }
    if calls.is_empty() {
        return Err(bad("a round needs at least one call: NAME or NAME{ARGS}"));
    }
    Ok(calls)
}

/// Arguments valid against the offered tool's `parameters` (seeded by its name and the round);
/// `{}` for a tool that is not offered or has no parameters.
fn generated_args(request: &ChatRequest, name: &str, round: usize) -> Result<Value, ApiError> {
    let parameters = request
        .tools
        .iter()
        .find(|tool| function_name(tool) == Some(name))
        .and_then(|tool| tool.get("function")?.get("parameters"));
    let Some(parameters) = parameters else {
        return Ok(Value::Object(Map::new()));
    };
    let schema =
        Schema::compile(parameters, false).map_err(|e| ApiError::invalid_schema(name, &e))?;
    let round = round.to_string();
    Ok(schema.generate(text::rng_from(&["planex-sim tool call", name, &round])))
}

/// The assistant message of a tool-calling answer (non-streaming).
pub fn message(calls: &[SimCall]) -> Value {
    json!({
        "role": "assistant",
        "content": null,
        "tool_calls": calls.iter().map(|c| json!({
            "id": c.id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        })).collect::<Vec<_>>(),
    })
}

/// The text the calls count as for usage (names and arguments).
pub fn counted_text(calls: &[SimCall]) -> String {
    calls
        .iter()
        .map(|c| format!("{} {}", c.name, c.arguments))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arguments` cut in half (a `#sim:malformed` answer: never parses as JSON).
pub fn malformed(mut calls: Vec<SimCall>) -> Vec<SimCall> {
    for call in &mut calls {
        let mut end = (call.arguments.len() / 2).max(1).min(call.arguments.len());
        while !call.arguments.is_char_boundary(end) {
            end += 1;
        }
        call.arguments.truncate(end);
    }
    calls
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    fn tools() -> Value {
        json!([
            {"type": "function", "function": {"name": "list", "parameters": {
                "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}},
            {"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}
        ])
    }

    #[test]
    fn scripted_rounds_are_called_in_order_then_text() {
        let user = r#"do it #sim:call=list{"path":"/d"} then #sim:call=read{"path":"/d/a"}|read{"path":"/d/b"}"#;
        let first =
            request(json!({"messages": [{"role": "user", "content": user}], "tools": tools()}));
        let calls = decide(&first, "chatcmpl-1").unwrap().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].name.as_str(), calls[0].arguments.as_str()),
            ("list", r#"{"path":"/d"}"#)
        );
        let called = json!({"role": "assistant", "content": null, "tool_calls": [{"id": "x", "type": "function", "function": {"name": "list", "arguments": "{}"}}]});
        let second = request(
            json!({"messages": [{"role": "user", "content": user}, called,
            {"role": "tool", "tool_call_id": "x", "content": "#sim:call=evil"}], "tools": tools()}),
        );
        let calls = decide(&second, "chatcmpl-2").unwrap().unwrap();
        let names: Vec<_> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["read", "read"]);
        assert_ne!(calls[0].id, calls[1].id);
        let third = request(
            json!({"messages": [{"role": "user", "content": user}, called.clone(), called], "tools": tools()}),
        );
        assert_eq!(decide(&third, "chatcmpl-3").unwrap(), None);
    }

    #[test]
    fn unscripted_requests_call_the_first_tool_once_with_valid_args() {
        let first =
            request(json!({"messages": [{"role": "user", "content": "hi"}], "tools": tools()}));
        let calls = decide(&first, "chatcmpl-1").unwrap().unwrap();
        assert_eq!(calls[0].name, "list");
        let args: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert!(args["path"].is_string(), "{args}");
        assert_eq!(
            decide(&first, "chatcmpl-9").unwrap().unwrap()[0].arguments,
            calls[0].arguments
        );
        let none = request(
            json!({"messages": [{"role": "user", "content": "hi"}], "tools": tools(), "tool_choice": "none"}),
        );
        assert_eq!(decide(&none, "c").unwrap(), None);
        let plain = request(json!({"messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(decide(&plain, "c").unwrap(), None);
    }

    #[test]
    fn bad_scripts_are_400s() {
        for script in [
            "#sim:call={\"a\":1}",
            "#sim:call=read{oops",
            "#sim:call=read{}x",
            "#sim:call=",
            "#sim:call=read|",
        ] {
            let r = request(
                json!({"messages": [{"role": "user", "content": script}], "tools": tools()}),
            );
            assert!(decide(&r, "c").is_err(), "{script}");
        }
        let calls = malformed(vec![SimCall {
            id: "a".into(),
            name: "read".into(),
            arguments: r#"{"path":"x"}"#.into(),
        }]);
        assert!(serde_json::from_str::<Value>(&calls[0].arguments).is_err());
    }
}
