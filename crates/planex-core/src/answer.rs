//! How a task's final answer is written: the OpenAI parameters of the agent endpoint that apply to
//! the synthesis call (length, sampling, stop sequences, response format), and the check that an
//! answer honours its response format.
//!
//! Key decision: the options travel with the task as the synthesis step's `answer` argument, so the
//! worker that runs the synthesis (any process) applies them without another lookup.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// The argument of the synthesis step that carries its [`AnswerOptions`].
pub const ANSWER_ARG: &str = "answer";
/// At most this many stop sequences, as OpenAI allows.
const MAX_STOP: usize = 4;

/// OpenAI parameters of the final answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerOptions {
    /// Most tokens of the answer (`max_tokens` / `max_completion_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Up to 4 sequences that end the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// The OpenAI `response_format`: `{type: "text"}`, `{type: "json_object"}` or
    /// `{type: "json_schema", json_schema: {name, schema, strict?}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// Someone follows the answer as it is written (the agent endpoint's `stream: true`): the
    /// synthesis call passes its text on as it arrives (the task's transient `answer_delta`
    /// events). It shapes nothing else, so alone it does not ask for a synthesis step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// A parameter of [`AnswerOptions`] that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{param}: {message}")]
pub struct AnswerOptionError {
    /// The request parameter at fault (`temperature`, `response_format.json_schema.schema`, …).
    pub param: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

fn invalid(param: &str, message: impl Into<String>) -> AnswerOptionError {
    AnswerOptionError {
        param: param.to_owned(),
        message: message.into(),
    }
}

/// What the answer must be, from `response_format`.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON valid against this schema.
    JsonSchema(Value),
}

impl AnswerOptions {
    /// True when no option shapes the answer (the synthesis runs as configured); `stream` alone
    /// shapes nothing.
    pub fn is_empty(&self) -> bool {
        self == &AnswerOptions {
            stream: self.stream,
            ..AnswerOptions::default()
        }
    }

    /// Checks every option; the error names the parameter.
    pub fn check(&self) -> Result<AnswerFormat, AnswerOptionError> {
        if self.max_tokens == Some(0) {
            return Err(invalid("max_tokens", "must be at least 1"));
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(invalid(
                "temperature",
                format!("must be between 0 and 2, got {t}"),
            ));
        }
        if let Some(p) = self.top_p
            && !(0.0..=1.0).contains(&p)
        {
            return Err(invalid(
                "top_p",
                format!("must be between 0 and 1, got {p}"),
            ));
        }
        if let Some(stop) = &self.stop
            && (stop.len() > MAX_STOP || stop.iter().any(String::is_empty))
        {
            return Err(invalid(
                "stop",
                format!("at most {MAX_STOP} non-empty sequences, got {stop:?}"),
            ));
        }
        self.format()
    }

    /// The answer format `response_format` asks for.
    pub fn format(&self) -> Result<AnswerFormat, AnswerOptionError> {
        let Some(format) = &self.response_format else {
            return Ok(AnswerFormat::Text);
        };
        match format.get("type").and_then(Value::as_str) {
            Some("text") => Ok(AnswerFormat::Text),
            Some("json_object") => Ok(AnswerFormat::JsonObject),
            Some("json_schema") => {
                let schema = format
                    .get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .filter(|s| s.is_object())
                    .ok_or_else(|| {
                        invalid(
                            "response_format.json_schema.schema",
                            "a json_schema response format needs json_schema.schema, a JSON Schema object",
                        )
                    })?;
                jsonschema::validator_for(schema).map_err(|e| {
                    invalid(
                        "response_format.json_schema.schema",
                        format!("is not a valid JSON Schema: {e}"),
                    )
                })?;
                Ok(AnswerFormat::JsonSchema(schema.clone()))
            }
            other => Err(invalid(
                "response_format.type",
                format!(
                    "must be \"text\", \"json_object\" or \"json_schema\", got {}",
                    other.map_or_else(|| "none".to_owned(), |t| format!("{t:?}"))
                ),
            )),
        }
    }
}

impl AnswerFormat {
    /// Checks an answer against the format: `Err` says why it does not match.
    pub fn validate(&self, answer: &str) -> Result<(), String> {
        let parse = || {
            serde_json::from_str::<Value>(answer.trim())
                .map_err(|e| format!("the answer is not JSON: {e}"))
        };
        match self {
            AnswerFormat::Text => Ok(()),
            AnswerFormat::JsonObject => match parse()? {
                Value::Object(_) => Ok(()),
                _ => Err("the answer is JSON but not an object".to_owned()),
            },
            AnswerFormat::JsonSchema(schema) => {
                let value = parse()?;
                let validator = jsonschema::validator_for(schema)
                    .map_err(|e| format!("the response format's schema is invalid: {e}"))?;
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .take(5)
                    .map(|e| {
                        let at = e.instance_path().as_str();
                        format!("{}: {e}", if at.is_empty() { "(root)" } else { at })
                    })
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "the answer does not match the response format's schema: {}",
                        errors.join("; ")
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn with_format(format: Value) -> AnswerOptions {
        AnswerOptions {
            response_format: Some(format),
            ..AnswerOptions::default()
        }
    }

    #[test]
    fn parameters_out_of_range_name_themselves() {
        let bad = |o: AnswerOptions| o.check().unwrap_err().param;
        let base = AnswerOptions::default();
        assert_eq!(
            bad(AnswerOptions {
                temperature: Some(3.0),
                ..base.clone()
            }),
            "temperature"
        );
        assert_eq!(
            bad(AnswerOptions {
                top_p: Some(-0.1),
                ..base.clone()
            }),
            "top_p"
        );
        assert_eq!(
            bad(AnswerOptions {
                max_tokens: Some(0),
                ..base.clone()
            }),
            "max_tokens"
        );
        assert_eq!(
            bad(AnswerOptions {
                stop: Some(vec![String::new()]),
                ..base.clone()
            }),
            "stop"
        );
        assert_eq!(
            bad(with_format(json!({"type": "xml"}))),
            "response_format.type"
        );
        assert_eq!(
            bad(with_format(
                json!({"type": "json_schema", "json_schema": {"name": "x"}})
            )),
            "response_format.json_schema.schema"
        );
        assert_eq!(
            bad(with_format(
                json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}})
            )),
            "response_format.json_schema.schema"
        );
        assert!(base.is_empty() && base.check().unwrap() == AnswerFormat::Text);
    }

    #[test]
    fn answers_are_checked_against_their_format() {
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
            "required": ["city"], "additionalProperties": false});
        let format = with_format(
            json!({"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}),
        )
        .check()
        .unwrap();
        assert!(format.validate(r#"{"city": "Oslo"}"#).is_ok());
        assert!(
            format
                .validate(r#"{"town": "Oslo"}"#)
                .unwrap_err()
                .contains("schema")
        );
        assert!(format.validate("Oslo").unwrap_err().contains("not JSON"));
        let object = with_format(json!({"type": "json_object"})).check().unwrap();
        assert!(object.validate("{}").is_ok());
        assert!(object.validate("[1]").is_err());
        assert!(AnswerFormat::Text.validate("anything").is_ok());
    }
}
