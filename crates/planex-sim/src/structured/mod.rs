//! Structured output for any JSON schema: a `response_format` `json_schema` that is not a plan
//! or ReAct turn is answered with JSON valid against the schema.
//!
//! The schema is read once ([`compile`]) into a graph and checked: with `strict: true` against
//! OpenAI's strict structured-output subset (see `keywords.rs`: every object closed with
//! `additionalProperties: false`, every schema typed, only honoured keywords), so out-of-subset
//! schemas get the 400 a strict-mode server gives; without it leniently (unknown keywords
//! ignored, a missing `type` inferred, open objects allowed). Either way a schema nothing can
//! satisfy (no finite instance, empty ranges, dangling `$ref`) is refused. Then one instance is
//! drawn ([`Schema::generate`]).
//!
//! Key decision: the instance is a pure function of the schema and the seed, and the seed comes
//! from the request's messages, so the same request always gets the same JSON; free-text strings
//! are the sim's synthetic prose labelled `[simulated]`, like every other synthetic answer.

mod compile;
mod error;
mod finite;
mod generate;
mod ir;
mod keywords;
mod numbers;
mod pattern;
mod strings;

pub use error::SchemaError;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// A checked schema, ready to generate instances.
#[derive(Clone, Debug)]
pub struct Schema {
    graph: ir::Graph,
    heights: Vec<Option<u32>>,
}

impl Schema {
    /// Reads and checks `schema` (`strict`: OpenAI strict-mode rules).
    pub fn compile(schema: &Value, strict: bool) -> Result<Schema, SchemaError> {
        let graph = compile::compile(schema, strict)?;
        let heights = finite::heights(&graph);
        if heights.get(graph.root).copied().flatten().is_none() {
            return Err(SchemaError::new(
                "#",
                "schema",
                "has no finite instance (every path recurses through a required `$ref` or reaches `false`); make a recursive property optional, nullable or an array",
            ));
        }
        Ok(Schema { graph, heights })
    }

    /// One instance, drawn from `rng`.
    pub fn generate(&self, rng: ChaCha8Rng) -> Value {
        generate::Generator::new(&self.graph, &self.heights, rng).root()
    }
}
