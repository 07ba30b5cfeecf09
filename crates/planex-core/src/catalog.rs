//! The tool catalog: the tools a planner may use, with their JSON Schemas compiled once.
//!
//! Key decision: every input (and output) schema is compiled with `jsonschema` exactly once, in
//! [`Catalog::new`]; validation afterwards only runs the compiled validators, so a `Catalog` shared in
//! an `Arc` across tasks costs nothing per plan. Tools are kept sorted by name, which makes the prompt
//! listing, the plan schema and the catalog hash deterministic.

use crate::ToolSpec;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Longest schema-violation message kept per error (the offending value can be a whole document).
const MAX_ERROR_CHARS: usize = 300;

/// Why a catalog could not be built or narrowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    /// A tool has an empty (or blank) name.
    #[error(
        "tool #{index} (description {description:?}) has an empty name; every tool needs a unique non-empty name"
    )]
    EmptyName {
        /// Position of the tool in the list given to [`Catalog::new`].
        index: usize,
        /// Its description, to help find it.
        description: String,
    },
    /// Two tools share a name.
    #[error("tool name {name:?} is used by more than one tool; tool names must be unique")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A tool's input schema does not describe a JSON object.
    #[error(
        "tool {tool:?} has an input schema that is not an object schema ({detail}); it must be a JSON object with \"type\": \"object\""
    )]
    NotObjectSchema {
        /// The tool.
        tool: String,
        /// What the schema is instead.
        detail: String,
    },
    /// A tool's schema is not a valid JSON Schema (or references something that cannot be resolved).
    #[error(
        "tool {tool:?} has an invalid {which} schema: {detail}; fix it so that it is a valid JSON Schema without external references"
    )]
    InvalidSchema {
        /// The tool.
        tool: String,
        /// `"input"` or `"output"`.
        which: &'static str,
        /// The compiler's message.
        detail: String,
    },
    /// An `llm` tool's `uses` or `max_tool_rounds` cannot work.
    #[error("tool {tool:?} cannot use tools as configured: {detail}")]
    BadUses {
        /// The `llm` tool.
        tool: String,
        /// What is wrong and what it may use instead.
        detail: String,
    },
    /// [`Catalog::subset`] named tools the catalog does not have.
    #[error("unknown tools {}; known tools: {}", .unknown.join(", "), .known.join(", "))]
    UnknownTools {
        /// The names that are not in the catalog.
        unknown: Vec<String>,
        /// Every tool the catalog has.
        known: Vec<String>,
    },
    /// A tool spec could not be serialised for hashing (should not happen for specs built from JSON/TOML).
    #[error("tool {tool:?} could not be serialised: {detail}")]
    Serialize {
        /// The tool.
        tool: String,
        /// The serialiser's message.
        detail: String,
    },
}

/// One tool with its compiled validators.
#[derive(Debug, Clone)]
struct Compiled {
    spec: ToolSpec,
    input: jsonschema::Validator,
    output: Option<jsonschema::Validator>,
}

/// The set of tools a plan may use, with compiled schemas. Cheap to share (`Send + Sync`), cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Sorted by name.
    tools: Vec<Compiled>,
    /// Name → position in `tools`.
    index: BTreeMap<String, usize>,
    /// Hex sha256 of the canonical serialisation, computed once.
    hash: String,
}

impl Catalog {
    /// Builds a catalog, compiling each tool's schemas once.
    ///
    /// # Errors
    /// Empty or duplicate names, input schemas that are not object schemas, and schemas that do not
    /// compile; each error names the tool.
    pub fn new(specs: Vec<ToolSpec>) -> Result<Catalog, CatalogError> {
        let mut tools = Vec::with_capacity(specs.len());
        let mut seen = BTreeMap::new();
        for (index, spec) in specs.into_iter().enumerate() {
            if spec.name.trim().is_empty() {
                return Err(CatalogError::EmptyName {
                    index,
                    description: spec.description,
                });
            }
            if seen.insert(spec.name.clone(), ()).is_some() {
                return Err(CatalogError::DuplicateName { name: spec.name });
            }
            check_object_schema(&spec)?;
            let input = compile(&spec.name, "input", &spec.input_schema)?;
            let output = match &spec.output_schema {
                Some(schema) => Some(compile(&spec.name, "output", schema)?),
                None => None,
            };
            tools.push(Compiled {
                spec,
                input,
                output,
            });
        }
        crate::catalog_uses::check_uses(tools.iter().map(|t| &t.spec)).map_err(|e| {
            CatalogError::BadUses {
                tool: e.tool,
                detail: e.detail,
            }
        })?;
        Self::from_compiled(tools)
    }

    fn from_compiled(mut tools: Vec<Compiled>) -> Result<Catalog, CatalogError> {
        tools.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        let index = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.spec.name.clone(), i))
            .collect();
        let mut canonical = String::from("[");
        for (i, tool) in tools.iter().enumerate() {
            let value = serde_json::to_value(&tool.spec).map_err(|e| CatalogError::Serialize {
                tool: tool.spec.name.clone(),
                detail: e.to_string(),
            })?;
            if i > 0 {
                canonical.push(',');
            }
            write_canonical(&value, &mut canonical);
        }
        canonical.push(']');
        let hash = Sha256::digest(canonical.as_bytes()).iter().fold(
            String::with_capacity(64),
            |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            },
        );
        Ok(Catalog { tools, index, hash })
    }

    /// The tool with this name.
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.compiled(name).map(|t| &t.spec)
    }

    fn compiled(&self, name: &str) -> Option<&Compiled> {
        self.index.get(name).and_then(|&i| self.tools.get(i))
    }

    /// Whether the catalog has a tool with this name.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Every tool name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.spec.name.clone()).collect()
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether the catalog has no tools.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Every tool spec, sorted by name.
    pub fn specs(&self) -> impl ExactSizeIterator<Item = &ToolSpec> + '_ {
        self.tools.iter().map(|t| &t.spec)
    }

    /// Validates a step's args against the tool's input schema.
    ///
    /// # Errors
    /// One message per violation, each starting with the JSON pointer of the offending value
    /// (`/query: 5 is not of type "string"`, `(root)` for the args object itself). An unknown tool
    /// gives a single message naming it.
    pub fn validate_args(&self, tool: &str, args: &Map<String, Value>) -> Result<(), Vec<String>> {
        let compiled = self
            .compiled(tool)
            .ok_or_else(|| vec![self.unknown_message(tool)])?;
        // The validator takes a `&Value`; the args map is cloned once into one (args are small).
        run_validator(&compiled.input, &Value::Object(args.clone()))
    }

    /// Validates a tool's output against its output schema; `Ok` when the tool has none.
    ///
    /// # Errors
    /// As [`Catalog::validate_args`].
    pub fn validate_output(&self, tool: &str, output: &Value) -> Result<(), Vec<String>> {
        let compiled = self
            .compiled(tool)
            .ok_or_else(|| vec![self.unknown_message(tool)])?;
        match &compiled.output {
            Some(validator) => run_validator(validator, output),
            None => Ok(()),
        }
    }

    fn unknown_message(&self, tool: &str) -> String {
        format!(
            "unknown tool {tool:?}; known tools: {}",
            self.names().join(", ")
        )
    }

    /// A catalog with only the named tools (duplicates in `names` are ignored). No schema is recompiled.
    ///
    /// # Errors
    /// [`CatalogError::UnknownTools`] listing the unknown names and every known one.
    pub fn subset(&self, names: &[String]) -> Result<Catalog, CatalogError> {
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| !self.contains(n))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(CatalogError::UnknownTools {
                unknown,
                known: self.names(),
            });
        }
        let tools = self
            .tools
            .iter()
            .filter(|t| names.contains(&t.spec.name))
            .cloned()
            .collect();
        Self::from_compiled(tools)
    }

    /// Hex sha256 of a canonical JSON serialisation (sorted keys, tools sorted by name) of every spec:
    /// stable across runs and processes, different as soon as any field of any spec differs.
    pub fn hash(&self) -> String {
        self.hash.clone()
    }

    /// The compact tool listing for the planner's system prompt, one line per tool:
    /// `- name(arg: type, arg?: type): description`. Required args come first; optional ones are
    /// marked `?`; enums are shown as `"a"|"b"`.
    pub fn prompt_listing(&self) -> String {
        let mut out = String::new();
        for tool in &self.tools {
            let spec = &tool.spec;
            let _ = write!(
                out,
                "- {}({})",
                spec.name,
                args_signature(&spec.input_schema)
            );
            let description = spec.description.lines().next().unwrap_or("").trim();
            if !description.is_empty() {
                let _ = write!(out, ": {description}");
            }
            out.push('\n');
        }
        out
    }

    /// The JSON Schema of a plan over this catalog, for the planner's structured output
    /// (`response_format: {type: "json_schema"}`): each step is one of the tools, with its args schema.
    pub fn plan_schema(&self, max_steps: usize) -> Value {
        let step_id = json!({"type": "integer", "minimum": 1, "maximum": crate::StepId::MAX.0});
        let per_tool: Vec<Value> = self
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["step_id", "tool_name", "args", "depends_on"],
                    "properties": {
                        "step_id": step_id,
                        "tool_name": {"type": "string", "enum": [t.spec.name]},
                        "args": t.spec.input_schema,
                        "depends_on": {"type": "array", "items": step_id},
                    }
                })
            })
            .collect();
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["steps"],
            "properties": {
                "steps": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_steps,
                    "items": {"anyOf": per_tool},
                }
            }
        })
    }
}

fn check_object_schema(spec: &ToolSpec) -> Result<(), CatalogError> {
    let detail = match &spec.input_schema {
        Value::Object(map) => match map.get("type") {
            Some(Value::String(t)) if t == "object" => return Ok(()),
            Some(other) => format!("its \"type\" is {other}"),
            None => "it has no \"type\"".to_owned(),
        },
        other => format!("it is {}", json_kind(other)),
    };
    Err(CatalogError::NotObjectSchema {
        tool: spec.name.clone(),
        detail,
    })
}

fn compile(
    tool: &str,
    which: &'static str,
    schema: &Value,
) -> Result<jsonschema::Validator, CatalogError> {
    jsonschema::validator_for(schema).map_err(|e| {
        // For a schema that fails the meta-schema, the "instance" path is the location in the schema.
        let at = e.instance_path().as_str();
        let detail = if at.is_empty() {
            e.to_string()
        } else {
            format!("at {at}: {e}")
        };
        CatalogError::InvalidSchema {
            tool: tool.to_owned(),
            which,
            detail,
        }
    })
}

fn run_validator(validator: &jsonschema::Validator, instance: &Value) -> Result<(), Vec<String>> {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| {
            let path = e.instance_path().as_str();
            let path = if path.is_empty() { "(root)" } else { path };
            crate::clip_chars(&format!("{path}: {e}"), MAX_ERROR_CHARS)
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `arg: type, opt?: type` for an object schema: required args in `required` order, then the rest.
fn args_signature(schema: &Value) -> String {
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut parts = Vec::with_capacity(properties.len());
    for name in &required {
        let ty = properties
            .get(*name)
            .map_or_else(|| "any".to_owned(), type_label);
        parts.push(format!("{name}: {ty}"));
    }
    for (name, prop) in properties {
        if !required.contains(&name.as_str()) {
            parts.push(format!("{name}?: {}", type_label(prop)));
        }
    }
    parts.join(", ")
}

/// A short type label for one property schema: `string`, `integer[]`, `"a"|"b"`, `string|null`.
fn type_label(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("|");
    }
    if let Some(value) = schema.get("const") {
        return value.to_string();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            return alternatives
                .iter()
                .map(type_label)
                .collect::<Vec<_>>()
                .join("|");
        }
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let item = schema
                .get("items")
                .map_or_else(|| "any".to_owned(), type_label);
            if item.contains('|') {
                format!("({item})[]")
            } else {
                format!("{item}[]")
            }
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ => "any".to_owned(),
    }
}

/// Compact JSON with object keys sorted, independent of serde_json's `preserve_order` feature.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
