//! Reads a request's JSON schema into a [`Graph`], checking it against the subset on the way.
//!
//! Key decision: nodes are keyed by their JSON pointer inside the schema, and a node is registered
//! before its children are read, so a `$ref` back to an ancestor (a recursive schema) becomes an
//! edge to an existing node instead of endless recursion; only local refs (`#`, `#/…`) exist here.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::SchemaError;
use super::ir::{Alt, ArraySpec, Format, Graph, Node, NodeId, ObjectSpec, Property, StringSpec};
use super::keywords;
use super::numbers::Bounds;
use super::pattern::Pattern;

/// Nesting (counting `$ref` hops) beyond which a schema is refused, so reading it cannot
/// exhaust the stack.
const MAX_NESTING: usize = 200;
/// The most array items a schema may demand (`minItems`).
const MAX_ITEMS: u64 = 1_000;
/// The longest string a schema may demand (`minLength`).
const MAX_LENGTH: u64 = 10_000;

/// Reads `root` into a graph; `strict` applies OpenAI's strict-mode rules.
pub fn compile(root: &Value, strict: bool) -> Result<Graph, SchemaError> {
    let mut compiler = Compiler {
        root,
        strict,
        graph: Graph::default(),
        seen: HashMap::new(),
        nesting: 0,
    };
    compiler.graph.root = compiler.node("")?;
    if strict {
        // Definitions nobody references are still part of what the client sent.
        for key in ["$defs", "definitions"] {
            let names: Vec<String> = root
                .get(key)
                .and_then(Value::as_object)
                .map(|defs| defs.keys().cloned().collect())
                .unwrap_or_default();
            for name in names {
                compiler.node(&format!("/{key}/{}", escape(&name)))?;
            }
        }
    }
    Ok(compiler.graph)
}

/// A JSON pointer segment for `name` (`~` and `/` escaped).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// `#/…` as written in messages (the root is `#`).
pub fn display(pointer: &str) -> String {
    format!("#{pointer}")
}

struct Compiler<'a> {
    root: &'a Value,
    strict: bool,
    graph: Graph,
    seen: HashMap<String, NodeId>,
    nesting: usize,
}

impl Compiler<'_> {
    fn error(&self, pointer: &str, keyword: &str, problem: impl Into<String>) -> SchemaError {
        SchemaError::new(&display(pointer), keyword, problem)
    }

    /// The node of the schema at `pointer` (read once; later calls reuse it).
    fn node(&mut self, pointer: &str) -> Result<NodeId, SchemaError> {
        if let Some(id) = self.seen.get(pointer) {
            return Ok(*id);
        }
        let root = self.root;
        let Some(schema) = root.pointer(pointer) else {
            return Err(self.error(pointer, "$ref", "points at nothing"));
        };
        if self.nesting >= MAX_NESTING {
            return Err(self.error(
                pointer,
                "$ref",
                format!("nests deeper than {MAX_NESTING} levels"),
            ));
        }
        let id = self.graph.nodes.len();
        self.graph.nodes.push(Node::default());
        self.seen.insert(pointer.to_owned(), id);
        self.nesting += 1;
        let alts = self.alts(schema, pointer);
        self.nesting -= 1;
        let alts = alts?;
        if let Some(node) = self.graph.nodes.get_mut(id) {
            node.alts = alts;
        }
        Ok(id)
    }

    /// A node that accepts anything (an undeclared required property of an open object).
    fn any(&mut self) -> NodeId {
        self.graph.nodes.push(Node {
            alts: vec![Alt::Any],
        });
        self.graph.nodes.len() - 1
    }

    fn alts(&mut self, schema: &Value, pointer: &str) -> Result<Vec<Alt>, SchemaError> {
        let map = match schema {
            Value::Object(map) => map,
            Value::Bool(false) => return Ok(Vec::new()),
            Value::Bool(true) if !self.strict => return Ok(vec![Alt::Any]),
            Value::Bool(true) => {
                return Err(self.error(
                    pointer,
                    "true",
                    "a boolean schema is not allowed in strict mode; give a `type`",
                ));
            }
            _ => return Err(self.error(pointer, "schema", "must be a JSON object")),
        };
        keywords::check(map, &display(pointer), self.strict)?;
        if let Some(target) = map.get("$ref") {
            self.alone(map, pointer, "$ref")?;
            let target = match target.as_str() {
                Some(r) if r.starts_with('#') => r.get(1..).unwrap_or_default().to_owned(),
                _ => {
                    return Err(self.error(
                        pointer,
                        "$ref",
                        "must be a local reference (`#` or `#/$defs/…`)",
                    ));
                }
            };
            return Ok(vec![Alt::Node(self.node(&target)?)]);
        }
        if let Some(branches) = map.get("anyOf") {
            self.alone(map, pointer, "anyOf")?;
            let count = match branches.as_array() {
                Some(list) if !list.is_empty() => list.len(),
                _ => return Err(self.error(pointer, "anyOf", "must be a non-empty array")),
            };
            return (0..count)
                .map(|i| Ok(Alt::Node(self.node(&format!("{pointer}/anyOf/{i}"))?)))
                .collect();
        }
        let types = self.types(map, pointer)?;
        if let Some(values) = self.literals(map, pointer, &types)? {
            return Ok(vec![Alt::Literal(values)]);
        }
        let Some(types) = types else {
            return Ok(vec![Alt::Any]);
        };
        types.iter().map(|t| self.typed(map, pointer, t)).collect()
    }

    /// In strict mode a `$ref` or `anyOf` stands alone (annotations aside).
    fn alone(&self, map: &Map<String, Value>, pointer: &str, key: &str) -> Result<(), SchemaError> {
        match keywords::constraints_beside(map, key) {
            Some(other) if self.strict => Err(self.error(
                pointer,
                other,
                format!("is not supported beside `{key}` in strict mode; move it into the referenced or alternative schemas"),
            )),
            _ => Ok(()),
        }
    }

    /// `type` as a list; `None` when absent and nothing implies one (lenient mode only).
    fn types(
        &self,
        map: &Map<String, Value>,
        pointer: &str,
    ) -> Result<Option<Vec<&'static str>>, SchemaError> {
        let names: Vec<&str> = match map.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(list)) if !list.is_empty() => {
                let names: Option<Vec<&str>> = list.iter().map(Value::as_str).collect();
                names.ok_or_else(|| self.error(pointer, "type", "must list type names"))?
            }
            Some(_) => {
                return Err(self.error(
                    pointer,
                    "type",
                    "must be a type name or a non-empty list of them",
                ));
            }
            None if map.contains_key("enum") || map.contains_key("const") => return Ok(None),
            None if self.strict => {
                return Err(self.error(
                    pointer,
                    "type",
                    "is missing; strict mode needs `type`, `enum`, `const`, `anyOf` or `$ref` on every schema",
                ));
            }
            None => return Ok(keywords::inferred_type(map).map(|t| vec![t])),
        };
        let mut types = Vec::new();
        for name in names {
            let Some(known) = keywords::TYPES.iter().find(|t| **t == name) else {
                return Err(self.error(
                    pointer,
                    "type",
                    format!(
                        "`{name}` is not a JSON Schema type (one of {})",
                        keywords::TYPES.join(", ")
                    ),
                ));
            };
            if !types.contains(known) {
                types.push(*known);
            }
        }
        Ok(Some(types))
    }

    /// `const` or `enum` values (of the schema's types, when it names any).
    fn literals(
        &self,
        map: &Map<String, Value>,
        pointer: &str,
        types: &Option<Vec<&'static str>>,
    ) -> Result<Option<Vec<Value>>, SchemaError> {
        let (key, values) = match (map.get("const"), map.get("enum")) {
            (Some(value), _) => ("const", vec![value.clone()]),
            (None, Some(Value::Array(list))) if !list.is_empty() => ("enum", list.clone()),
            (None, Some(_)) => {
                return Err(self.error(pointer, "enum", "must be a non-empty array"));
            }
            (None, None) => return Ok(None),
        };
        let Some(types) = types else {
            return Ok(Some(values));
        };
        let kept: Vec<Value> = values
            .into_iter()
            .filter(|v| types.iter().any(|t| keywords::is_of_type(v, t)))
            .collect();
        if kept.is_empty() {
            return Err(self.error(
                pointer,
                key,
                format!("has no value of type {}", types.join(" or ")),
            ));
        }
        Ok(Some(kept))
    }

    fn typed(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        name: &str,
    ) -> Result<Alt, SchemaError> {
        Ok(match name {
            "null" => Alt::Null,
            "boolean" => Alt::Boolean,
            "integer" => Alt::Integer(Bounds::read(map, &display(pointer), true)?),
            "number" => Alt::Number(Bounds::read(map, &display(pointer), false)?),
            "string" => Alt::String(self.string(map, pointer)?),
            "array" => Alt::Array(self.array(map, pointer)?),
            _ => Alt::Object(self.object(map, pointer)?),
        })
    }

    fn count(
        &self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Result<Option<u64>, SchemaError> {
        match map.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.error(pointer, key, "must be a non-negative integer")),
        }
    }

    fn string(&self, map: &Map<String, Value>, pointer: &str) -> Result<StringSpec, SchemaError> {
        let min = self.count(map, pointer, "minLength")?.unwrap_or(0);
        let max = self.count(map, pointer, "maxLength")?;
        if max.is_some_and(|max| min > max) {
            return Err(self.error(pointer, "minLength", "is above `maxLength`"));
        }
        if min > MAX_LENGTH {
            return Err(self.error(
                pointer,
                "minLength",
                format!("is above the simulator's limit of {MAX_LENGTH}"),
            ));
        }
        let format = match map.get("format") {
            None => None,
            Some(Value::String(name)) => match Format::from_name(name) {
                Some(format) => Some(format),
                None if self.strict => {
                    return Err(self.error(
                        pointer,
                        "format",
                        format!("`{name}` is not supported (date-time, date, time, duration, email, hostname, ipv4, ipv6, uuid, uri)"),
                    ));
                }
                None => None,
            },
            Some(_) => return Err(self.error(pointer, "format", "must be a string")),
        };
        let pattern = match map.get("pattern") {
            None => None,
            Some(Value::String(source)) => match Pattern::parse(source) {
                Ok(pattern) => Some(pattern),
                Err(why) if self.strict => {
                    return Err(self.error(
                        pointer,
                        "pattern",
                        format!("uses {why}, which the simulator cannot generate; simplify the pattern or send strict: false"),
                    ));
                }
                Err(_) => None,
            },
            Some(_) => return Err(self.error(pointer, "pattern", "must be a string")),
        };
        Ok(StringSpec {
            min,
            max,
            format,
            pattern,
        })
    }

    fn array(&mut self, map: &Map<String, Value>, pointer: &str) -> Result<ArraySpec, SchemaError> {
        let min = self.count(map, pointer, "minItems")?.unwrap_or(0);
        let max = self.count(map, pointer, "maxItems")?;
        if max.is_some_and(|max| min > max) {
            return Err(self.error(pointer, "minItems", "is above `maxItems`"));
        }
        if min > MAX_ITEMS {
            return Err(self.error(
                pointer,
                "minItems",
                format!("is above the simulator's limit of {MAX_ITEMS}"),
            ));
        }
        let items = match map.get("items") {
            Some(Value::Object(_) | Value::Bool(_)) => {
                Some(self.node(&format!("{pointer}/items"))?)
            }
            Some(_) => {
                return Err(self.error(
                    pointer,
                    "items",
                    "must be one schema (tuple forms are not supported)",
                ));
            }
            None if self.strict => {
                return Err(self.error(
                    pointer,
                    "items",
                    "is missing; strict mode needs the item schema of every array",
                ));
            }
            None => None,
        };
        Ok(ArraySpec { items, min, max })
    }

    fn object(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
    ) -> Result<ObjectSpec, SchemaError> {
        let declared: Vec<String> = match map.get("properties") {
            None => Vec::new(),
            Some(Value::Object(props)) => props.keys().cloned().collect(),
            Some(_) => {
                return Err(self.error(pointer, "properties", "must be an object of schemas"));
            }
        };
        let required: Vec<&str> = match map.get("required") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<&str>>>()
                .ok_or_else(|| {
                    self.error(pointer, "required", "must be a list of property names")
                })?,
            Some(_) => {
                return Err(self.error(pointer, "required", "must be a list of property names"));
            }
        };
        let extra = map.get("additionalProperties");
        if self.strict && extra != Some(&Value::Bool(false)) {
            return Err(self.error(
                pointer,
                "additionalProperties",
                "must be false on every object in strict mode; add \"additionalProperties\": false or send strict: false",
            ));
        }
        let mut names = declared;
        names.sort_unstable();
        let mut properties = Vec::new();
        for name in names {
            let node = self.node(&format!("{pointer}/properties/{}", escape(&name)))?;
            properties.push(Property {
                required: required.contains(&name.as_str()),
                name,
                node,
            });
        }
        for name in required {
            if properties.iter().any(|p| p.name == name) {
                continue;
            }
            let node = match extra {
                _ if self.strict => None,
                Some(Value::Bool(false)) => None,
                Some(Value::Object(_)) => {
                    Some(self.node(&format!("{pointer}/additionalProperties"))?)
                }
                _ => Some(self.any()),
            };
            let Some(node) = node else {
                return Err(self.error(
                    pointer,
                    "required",
                    format!("names `{name}`, which is not in `properties`"),
                ));
            };
            properties.push(Property {
                name: name.to_owned(),
                node,
                required: true,
            });
        }
        Ok(ObjectSpec { properties })
    }
}
