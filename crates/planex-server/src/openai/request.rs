//! The OpenAI chat completion request the agent endpoint reads, and what it becomes: the task
//! text, the final answer's options and the parameters it refuses.
//!
//! Key decision: every parameter OpenAI defines is named here, so none is silently ignored: those
//! planex honours are applied (to the synthesis call that writes the answer), those it cannot honour
//! are a 400 naming them unless they have their default value (a client library that always sends
//! `presence_penalty: 0` still works), and unknown fields are a 400.

use crate::error::ApiError;
use planex_core::AnswerOptions;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One message of the conversation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatMessageIn {
    /// `system`, `developer`, `user`, `assistant`, …
    pub role: String,
    /// Text, or an array of content parts (`{type: "text", text}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub content: Value,
    /// A participant name (accepted; planex does not use it).
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for OpenAI compatibility, not used")]
    pub name: Option<String>,
}

/// `stop`: one sequence or several.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Stop {
    /// One sequence.
    One(String),
    /// Up to 4 sequences.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// Send one last chunk, with `choices: []`, carrying the usage of the whole task.
    #[serde(default)]
    pub include_usage: bool,
}

/// The OpenAI chat completion request. Unknown fields are a 400; parameters planex cannot honour
/// are a 400 unless they have their default value.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatCompletionRequest {
    /// The agent's model name (`planex` by default, `[server] agent_name`).
    pub model: String,
    /// The conversation; the last user message is the task.
    pub messages: Vec<ChatMessageIn>,
    /// Stream progress and the answer as Server-Sent Events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Most tokens of the final answer (legacy name of `max_completion_tokens`).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Most tokens of the final answer.
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature of the final answer, 0 to 2.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling of the final answer, 0 to 1.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Answers wanted; only 1 is supported.
    #[serde(default)]
    pub n: Option<u32>,
    /// Sequences that end the final answer.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// `text`, `json_object` or `json_schema`: the final answer is written and checked in it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub response_format: Option<Value>,
    /// The end user, recorded on the task for attribution.
    #[serde(default)]
    pub user: Option<String>,
    /// String values; planex reads `task_type` (drift statistics and guards).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Not supported (planex runs its own tools); refused when non-empty.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// Not supported; only `"none"` is accepted.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// Not supported (no tools); accepted with any value.
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for OpenAI compatibility, not used")]
    pub parallel_tool_calls: Option<bool>,
    /// Deprecated function calling; refused.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub functions: Option<Vec<Value>>,
    /// Deprecated function calling; only `"none"` is accepted.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub function_call: Option<Value>,
    /// Not supported; only `false`.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// Not supported; only 0.
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    /// Not supported; only 0.
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    /// Not supported; only 0.
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    /// Not supported; only empty.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub logit_bias: Option<Map<String, Value>>,
    /// Not supported (answers are not reproducible across plans); refused.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Only `["text"]`.
    #[serde(default)]
    pub modalities: Option<Vec<String>>,
    /// Accepted (OpenAI's stored completions; planex keeps every task anyway).
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for OpenAI compatibility, not used")]
    pub store: Option<bool>,
    /// Accepted and ignored (`auto`, `default`, `flex`, …: planex schedules by tier).
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for OpenAI compatibility, not used")]
    pub service_tier: Option<String>,
    /// planex extension: most steps of the plan.
    #[serde(default)]
    pub max_subtasks: Option<usize>,
    /// planex extension: the task's budget in USD.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub budget_usd: Option<planex_core::Decimal>,
}

/// A 400 naming `param`.
fn unsupported(param: &str, what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{param} is not supported by the planex agent endpoint: {what}"
    ))
    .with_param(param)
    .with_code("unsupported_parameter")
}

impl ChatCompletionRequest {
    /// Refuses the parameters planex cannot honour (unless at their default value).
    pub fn check_supported(&self) -> Result<(), ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(unsupported("n", "one answer per request (n = 1)"));
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(unsupported(
                "tools",
                "the agent plans with its own tool catalog; send the task as a user message",
            ));
        }
        let none = |v: &Option<Value>| v.as_ref().is_none_or(|v| v == "none");
        if !none(&self.tool_choice) {
            return Err(unsupported(
                "tool_choice",
                "only \"none\" (no client tools)",
            ));
        }
        if self.functions.as_ref().is_some_and(|f| !f.is_empty()) || !none(&self.function_call) {
            return Err(unsupported(
                "functions",
                "function calling (no client tools)",
            ));
        }
        if self.logprobs == Some(true) || self.top_logprobs.is_some_and(|n| n > 0) {
            return Err(unsupported(
                "logprobs",
                "the answer is written from many model calls",
            ));
        }
        for (param, value) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            if value.is_some_and(|v| v != 0.0) {
                return Err(unsupported(param, "only 0"));
            }
        }
        if self.logit_bias.as_ref().is_some_and(|b| !b.is_empty()) {
            return Err(unsupported("logit_bias", "only an empty map"));
        }
        if self.seed.is_some() {
            return Err(unsupported(
                "seed",
                "answers come from a plan of many calls and are not reproducible by seed",
            ));
        }
        if self
            .modalities
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m != "text"))
        {
            return Err(unsupported("modalities", "only [\"text\"]"));
        }
        if self.max_tokens.is_some() && self.max_completion_tokens.is_some() {
            return Err(ApiError::bad_request(
                "give max_completion_tokens or max_tokens (its legacy name), not both",
            )
            .with_param("max_tokens"));
        }
        Ok(())
    }

    /// The final answer's options; an out-of-range value is a 400 naming its parameter.
    pub fn answer_options(&self) -> Result<AnswerOptions, ApiError> {
        let options = AnswerOptions {
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            temperature: self.temperature,
            top_p: self.top_p,
            stop: self.stop.clone().map(|stop| match stop {
                Stop::One(s) => vec![s],
                Stop::Many(many) => many,
            }),
            response_format: self
                .response_format
                .clone()
                .filter(|f| f.get("type").and_then(Value::as_str) != Some("text")),
            stream: self.stream,
        };
        options.check().map_err(|e| {
            ApiError::bad_request(e.to_string())
                .with_param(e.param.clone())
                .with_code("invalid_value")
        })?;
        Ok(options)
    }

    /// The task: the last user message's text.
    pub fn task(&self) -> Result<String, ApiError> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| text_of(&m.content))
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("messages has no non-empty user message to run as the task")
                    .with_param("messages")
            })
    }

    /// `metadata.task_type`; a non-string value is a 400.
    pub fn task_type(&self) -> Result<Option<String>, ApiError> {
        match self.metadata.as_ref().and_then(|m| m.get("task_type")) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(name)) => Ok(Some(name.clone())),
            Some(other) => Err(ApiError::bad_request(format!(
                "metadata.task_type must be a string, got {other}"
            ))
            .with_param("metadata.task_type")),
        }
    }

    /// Whether the stream ends with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn request(extra: Value) -> Result<ChatCompletionRequest, serde_json::Error> {
        let mut body = json!({"model": "planex", "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), extra) {
            map.extend(extra);
        }
        serde_json::from_value(body)
    }

    #[test]
    fn defaults_of_unsupported_parameters_are_accepted_other_values_refused() {
        let ok = request(
            json!({"n": 1, "presence_penalty": 0, "frequency_penalty": 0,
            "logprobs": false, "tool_choice": "none", "tools": [], "logit_bias": {}}),
        )
        .unwrap();
        assert!(ok.check_supported().is_ok());
        for (body, param) in [
            (json!({"n": 2}), "n"),
            (json!({"tools": [{"type": "function"}]}), "tools"),
            (json!({"logprobs": true}), "logprobs"),
            (json!({"presence_penalty": 0.5}), "presence_penalty"),
            (json!({"seed": 7}), "seed"),
            (
                json!({"max_tokens": 5, "max_completion_tokens": 5}),
                "max_tokens",
            ),
        ] {
            let error = request(body).unwrap().check_supported().unwrap_err();
            assert_eq!(error.param(), Some(param));
        }
        assert!(
            request(json!({"frobnicate": true})).is_err(),
            "unknown fields are refused"
        );
    }

    #[test]
    fn answer_options_come_from_the_openai_parameters() {
        let options = request(json!({"max_completion_tokens": 5, "temperature": 0.2,
            "stop": "END", "response_format": {"type": "text"}}))
        .unwrap()
        .answer_options()
        .unwrap();
        assert_eq!(options.max_tokens, Some(5));
        assert_eq!(options.stop, Some(vec!["END".to_owned()]));
        assert_eq!(options.response_format, None, "text is the default format");
        let bad = request(json!({"temperature": 5})).unwrap().answer_options();
        assert_eq!(bad.unwrap_err().param(), Some("temperature"));
    }
}
