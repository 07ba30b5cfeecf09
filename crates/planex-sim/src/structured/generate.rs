//! Draws one instance of a compiled schema from a seeded RNG.
//!
//! Key decision: generation is generous (every declared property, 1–3 array items, any
//! alternative) until [`MAX_DEPTH`] levels of nesting or [`MAX_VALUES`] values are spent; from
//! then on it is minimal (required properties only, `minItems` items, the lowest alternative by
//! [`finite::heights`]), which bounds the answer for recursive and wide schemas alike.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use super::finite;
use super::ir::{Alt, ArraySpec, Graph, NodeId, ObjectSpec};
use super::strings;
use crate::executor::LABEL;
use crate::text;

/// Nesting after which generation turns minimal.
const MAX_DEPTH: usize = 6;
/// Values generated after which generation turns minimal.
const MAX_VALUES: usize = 300;
/// Extra items drawn above `minItems` (when `maxItems` allows).
const EXTRA_ITEMS: u64 = 2;
/// How often `null` is picked when other alternatives exist.
const NULL_ODDS: f64 = 0.2;

/// One generation run over `graph`.
pub struct Generator<'a> {
    graph: &'a Graph,
    heights: &'a [Option<u32>],
    rng: ChaCha8Rng,
    budget: usize,
}

impl<'a> Generator<'a> {
    /// A run drawing from `rng`; `heights` are [`finite::heights`] of `graph`.
    pub fn new(graph: &'a Graph, heights: &'a [Option<u32>], rng: ChaCha8Rng) -> Self {
        Generator {
            graph,
            heights,
            rng,
            budget: MAX_VALUES,
        }
    }

    /// An instance of the root.
    pub fn root(mut self) -> Value {
        self.node(self.graph.root, 0)
    }

    fn height(&self, alt: &Alt) -> Option<u32> {
        finite::alt_height(alt, self.heights)
    }

    fn finite(&self, id: NodeId) -> bool {
        self.heights.get(id).copied().flatten().is_some()
    }

    fn node(&mut self, id: NodeId, depth: usize) -> Value {
        self.budget = self.budget.saturating_sub(1);
        let minimal = depth >= MAX_DEPTH || self.budget == 0;
        let graph = self.graph;
        let Some(node) = graph.nodes.get(id) else {
            return Value::Null;
        };
        let finite: Vec<&Alt> = node
            .alts
            .iter()
            .filter(|a| self.height(a).is_some())
            .collect();
        let alt = if minimal {
            finite.iter().copied().min_by_key(|a| self.height(a))
        } else {
            let (nulls, others): (Vec<&Alt>, Vec<&Alt>) =
                finite.iter().partition(|a| matches!(a, Alt::Null));
            let pick_null =
                others.is_empty() || (!nulls.is_empty() && self.rng.random_bool(NULL_ODDS));
            let pool = if pick_null { nulls } else { others };
            pool.choose(&mut self.rng).copied()
        };
        match alt {
            Some(alt) => self.alt(alt, depth, minimal),
            // Compilation refuses a root without a finite instance, and no other node is
            // reached unless finite; null is the harmless answer should that ever change.
            None => Value::Null,
        }
    }

    fn alt(&mut self, alt: &Alt, depth: usize, minimal: bool) -> Value {
        match alt {
            Alt::Literal(values) => {
                let pick = if minimal {
                    values.first()
                } else {
                    values.choose(&mut self.rng)
                };
                pick.cloned().unwrap_or(Value::Null)
            }
            Alt::Null => Value::Null,
            Alt::Boolean => Value::Bool(minimal || self.rng.random_bool(0.5)),
            Alt::Integer(bounds) | Alt::Number(bounds) => bounds.draw(&mut self.rng, minimal),
            Alt::String(spec) => Value::String(strings::draw(spec, &mut self.rng, minimal)),
            Alt::Array(spec) => self.array(spec, depth, minimal),
            Alt::Object(spec) => self.object(spec, depth, minimal),
            Alt::Node(id) => self.node(*id, depth),
            Alt::Any if depth == 0 => {
                json!({"simulated": true, "summary": format!("{LABEL}{}", text::sentence(&mut self.rng))})
            }
            Alt::Any => Value::String(format!("{LABEL}{}", text::sentence(&mut self.rng))),
        }
    }

    fn array(&mut self, spec: &ArraySpec, depth: usize, minimal: bool) -> Value {
        let usable = spec.items.is_none_or(|id| self.finite(id));
        let count = if minimal || !usable {
            spec.min
        } else {
            let lo = spec.min.max(1);
            let hi = spec
                .max
                .map_or(lo + EXTRA_ITEMS, |max| max.min(lo + EXTRA_ITEMS));
            if hi < lo {
                spec.min
            } else {
                self.rng.random_range(lo..=hi)
            }
        };
        let items = (0..count)
            .map(|_| match spec.items {
                Some(id) => self.node(id, depth + 1),
                None => Value::String(format!("{LABEL}{}", text::sentence(&mut self.rng))),
            })
            .collect();
        Value::Array(items)
    }

    fn object(&mut self, spec: &ObjectSpec, depth: usize, minimal: bool) -> Value {
        let mut map = Map::new();
        for property in &spec.properties {
            let wanted = property.required || (!minimal && self.finite(property.node));
            if wanted {
                let value = self.node(property.node, depth + 1);
                map.insert(property.name.clone(), value);
            }
        }
        Value::Object(map)
    }
}
