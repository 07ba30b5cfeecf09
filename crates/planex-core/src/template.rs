//! Placeholders and templates: `{step_N_result}` references between steps, and `{arg}` tool templates.
//!
//! Key decisions: substitution is a single pass over the original text (inserted results are never
//! re-scanned, so a result containing `{step_2_result}` or `{arg}` cannot inject anything); text that
//! only looks like a placeholder (`{step_x_result}`, `{other}`, a JSON snippet) is left untouched rather
//! than rejected, because args and prompts legitimately contain braces.
//!
//! Placeholder grammar: `{step_N_result}` or `{step_N_result.PATH}` where `N` is decimal digits and
//! `PATH` is dot-separated non-empty segments of ASCII letters, digits, `_` and `-` (object keys or array
//! indexes, e.g. `items.0.title`).

use crate::StepId;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A reference to another step's result found in a string arg.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Placeholder {
    /// The step whose result is referenced.
    pub step: StepId,
    /// Field path into the (JSON) result; empty for the whole result.
    pub path: Vec<String>,
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{step_{}_result", self.step)?;
        for segment in &self.path {
            write!(f, ".{segment}")?;
        }
        f.write_str("}")
    }
}

/// Why a placeholder or template could not be filled in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// A placeholder names a step with no stored result.
    #[error(
        "placeholder {placeholder} refers to step {step}, which has no result; only completed steps listed in depends_on can be referenced"
    )]
    MissingResult {
        /// The referenced step.
        step: StepId,
        /// The placeholder as written.
        placeholder: String,
    },
    /// A `{step_N_result.path}` placeholder names a field the result does not have.
    #[error(
        "placeholder {placeholder}: the result of step {step} has no field {path:?} ({reason})"
    )]
    MissingField {
        /// The referenced step.
        step: StepId,
        /// The placeholder as written.
        placeholder: String,
        /// The dotted path that could not be followed.
        path: String,
        /// Where and why navigation stopped.
        reason: String,
    },
    /// A template names an arg that is absent.
    #[error(
        "template uses {{{name}}} but there is no arg {name:?} (args present: {}); write {{{name}?}} if it is optional",
        .known.join(", ")
    )]
    MissingArg {
        /// The arg name.
        name: String,
        /// The args that are present.
        known: Vec<String>,
    },
}

impl TemplateError {
    /// A stable machine-readable name of what could not be filled in (API error `details`):
    /// `missing_result`, `missing_field` or `missing_arg`.
    pub fn rule(&self) -> &'static str {
        match self {
            TemplateError::MissingResult { .. } => "missing_result",
            TemplateError::MissingField { .. } => "missing_field",
            TemplateError::MissingArg { .. } => "missing_arg",
        }
    }

    /// The step whose result a placeholder needed, for the two placeholder errors.
    pub fn step(&self) -> Option<StepId> {
        match self {
            TemplateError::MissingResult { step, .. }
            | TemplateError::MissingField { step, .. } => Some(*step),
            TemplateError::MissingArg { .. } => None,
        }
    }
}

/// Every placeholder in `text`, in order of appearance (repeats included).
pub fn placeholders(text: &str) -> Vec<Placeholder> {
    scan(text).into_iter().map(|(_, _, p)| p).collect()
}

/// Every step referenced by a placeholder in any string inside `args` (nested arrays and objects too).
pub fn referenced_steps(args: &Map<String, Value>) -> BTreeSet<StepId> {
    let mut out = BTreeSet::new();
    for value in args.values() {
        visit_strings(value, &mut |s| {
            out.extend(scan(s).into_iter().map(|(_, _, p)| p.step))
        });
    }
    out
}

/// Replaces every placeholder in every string leaf of `args` with the referenced result: a JSON string
/// result is inserted as its text, any other value as compact JSON. For `.path` placeholders a string
/// result that parses as JSON is navigated (objects by key, arrays by index).
///
/// # Errors
/// [`TemplateError::MissingResult`] or [`TemplateError::MissingField`], naming the step and path.
pub fn substitute_args(
    args: &Map<String, Value>,
    results: &BTreeMap<StepId, Value>,
) -> Result<Map<String, Value>, TemplateError> {
    args.iter()
        .map(|(k, v)| Ok((k.clone(), substitute_value(v, results)?)))
        .collect()
}

/// `args` with every `{step_N_result…}` placeholder renamed by `rename` (its field path kept),
/// and nothing else touched: how a re-plan's steps move to ids after the steps already in the
/// task (`Step::renumbered`).
pub fn rename_placeholders(
    args: &Map<String, Value>,
    rename: &impl Fn(StepId) -> StepId,
) -> Map<String, Value> {
    args.iter()
        .map(|(k, v)| (k.clone(), rename_value(v, rename)))
        .collect()
}

fn rename_value(value: &Value, rename: &impl Fn(StepId) -> StepId) -> Value {
    match value {
        Value::String(s) => {
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for (start, end, mut placeholder) in scan(s) {
                out.push_str(s.get(last..start).unwrap_or_default());
                placeholder.step = rename(placeholder.step);
                out.push_str(&placeholder.to_string());
                last = end;
            }
            out.push_str(s.get(last..).unwrap_or_default());
            Value::String(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| rename_value(v, rename)).collect())
        }
        Value::Object(map) => Value::Object(rename_placeholders(map, rename)),
        other => other.clone(),
    }
}

fn substitute_value(
    value: &Value,
    results: &BTreeMap<StepId, Value>,
) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(s) => Value::String(substitute_str(s, results)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute_value(v, results))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(substitute_args(map, results)?),
        other => other.clone(),
    })
}

fn substitute_str(text: &str, results: &BTreeMap<StepId, Value>) -> Result<String, TemplateError> {
    let found = scan(text);
    if found.is_empty() {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, placeholder) in found {
        out.push_str(text.get(last..start).unwrap_or_default());
        out.push_str(&resolve(&placeholder, results)?);
        last = end;
    }
    out.push_str(text.get(last..).unwrap_or_default());
    Ok(out)
}

fn resolve(
    placeholder: &Placeholder,
    results: &BTreeMap<StepId, Value>,
) -> Result<String, TemplateError> {
    let step = placeholder.step;
    let Some(mut current) = results.get(&step).map(Cow::Borrowed) else {
        return Err(TemplateError::MissingResult {
            step,
            placeholder: placeholder.to_string(),
        });
    };
    for (depth, segment) in placeholder.path.iter().enumerate() {
        let missing = |reason: String| TemplateError::MissingField {
            step,
            placeholder: placeholder.to_string(),
            path: placeholder.path.join("."),
            reason,
        };
        let at = if depth == 0 {
            "the result".to_owned()
        } else {
            format!("field {:?}", placeholder.path[..depth].join("."))
        };
        if let Value::String(text) = current.as_ref() {
            match serde_json::from_str::<Value>(text) {
                Ok(parsed @ (Value::Object(_) | Value::Array(_))) => current = Cow::Owned(parsed),
                _ => return Err(missing(format!("{at} is text, not a JSON object or array"))),
            }
        }
        let next = match current.as_ref() {
            Value::Object(map) => map.get(segment).cloned(),
            Value::Array(items) => segment
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .cloned(),
            _ => None,
        };
        match next {
            Some(value) => current = Cow::Owned(value),
            None => return Err(missing(format!("{at} has no key or index {segment:?}"))),
        }
    }
    Ok(value_text(&current))
}

/// A JSON value as text: a string as-is (no quotes), anything else as compact JSON. This is how a
/// step result fills a `{step_N_result}` placeholder, a prompt, or an answer shown to people.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn visit_strings(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit_strings(v, f)),
        _ => {}
    }
}

/// Byte ranges `(start, end)` and parsed placeholders, in order, non-overlapping.
fn scan(text: &str) -> Vec<(usize, usize, Placeholder)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(offset) = text.get(from..).and_then(|rest| rest.find('{')) {
        let start = from + offset;
        match text.get(start..).and_then(parse_placeholder) {
            Some((len, placeholder)) => {
                out.push((start, start + len, placeholder));
                from = start + len;
            }
            None => from = start + 1,
        }
    }
    out
}

/// Parses a placeholder at the start of `text`, returning its byte length.
fn parse_placeholder(text: &str) -> Option<(usize, Placeholder)> {
    let body = text.strip_prefix("{step_")?;
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let step = body.get(..digits)?.parse::<u32>().ok()?;
    let after = body.get(digits..)?.strip_prefix("_result")?;
    let close = after.find('}')?;
    let inner = after.get(..close)?;
    let path = if inner.is_empty() {
        Vec::new()
    } else {
        let segments: Vec<String> = inner
            .strip_prefix('.')?
            .split('.')
            .map(str::to_owned)
            .collect();
        let valid = |s: &String| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !segments.iter().all(valid) {
            return None;
        }
        segments
    };
    let len = text.len() - after.len() + close + 1;
    Some((
        len,
        Placeholder {
            step: StepId(step),
            path,
        },
    ))
}

/// Renders a tool template: `{name}` is replaced by the arg `name` (strings as-is, other values as
/// compact JSON), passed through `encode` (URL-encoding for HTTP paths, identity for prompts).
/// `{name?}` marks an optional arg that renders empty when absent or null. `{{` and `}}` are literal
/// braces. Braces around anything that is not an identifier (`{"a": 1}`, `{ x }`) are left as written.
///
/// # Errors
/// [`TemplateError::MissingArg`] when a `{name}` (without `?`) names an absent arg.
pub fn render(
    template: &str,
    values: &Map<String, Value>,
    encode: impl Fn(&str) -> String,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if let Some(tail) = rest.strip_prefix("{{") {
            out.push('{');
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("}}") {
            out.push('}');
            rest = tail;
        } else if let Some((len, name, optional)) =
            (c == '{').then(|| parse_arg_ref(rest)).flatten()
        {
            match values.get(name) {
                Some(Value::Null) | None if optional => {}
                Some(value) => out.push_str(&encode(&value_text(value))),
                None => {
                    return Err(TemplateError::MissingArg {
                        name: name.to_owned(),
                        known: values.keys().cloned().collect(),
                    });
                }
            }
            rest = rest.get(len..).unwrap_or_default();
        } else {
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
    }
    Ok(out)
}

/// Parses `{ident}` or `{ident?}` at the start of `text`: (byte length, name, optional).
fn parse_arg_ref(text: &str) -> Option<(usize, &str, bool)> {
    let body = text.strip_prefix('{')?;
    let close = body.find('}')?;
    let inner = body.get(..close)?;
    let (name, optional) = match inner.strip_suffix('?') {
        Some(name) => (name, true),
        None => (inner, false),
    };
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((close + 2, name, optional))
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
