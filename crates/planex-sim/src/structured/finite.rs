//! The height of the smallest instance of every node, or `None` when a node has no finite
//! instance (a `$ref` cycle with no way out, `false`, an array demanding such items).
//!
//! Key decision: heights count `$ref`/`anyOf` hops as well as nesting, so every alternative is
//! strictly higher than what it contains; the generator then always terminates by following the
//! lowest alternative once its depth or size budget is spent, however recursive the schema.

use super::ir::{Alt, Graph};

/// Heights per node (least fixed point, computed by relaxation).
pub fn heights(graph: &Graph) -> Vec<Option<u32>> {
    let mut heights: Vec<Option<u32>> = vec![None; graph.nodes.len()];
    // Each round fixes at least one more node's final height, so `len + 1` rounds suffice.
    for _ in 0..=graph.nodes.len() {
        let mut changed = false;
        for (id, node) in graph.nodes.iter().enumerate() {
            let best = node
                .alts
                .iter()
                .filter_map(|a| alt_height(a, &heights))
                .min();
            if let Some(slot) = heights
                .get_mut(id)
                .filter(|slot| best.is_some() && **slot != best)
            {
                *slot = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    heights
}

/// The height of the smallest instance of `alt`, given the current node heights.
pub fn alt_height(alt: &Alt, heights: &[Option<u32>]) -> Option<u32> {
    let of = |id: usize| heights.get(id).copied().flatten();
    match alt {
        Alt::Node(id) => of(*id).map(|h| h + 1),
        Alt::Array(spec) if spec.min > 0 => match spec.items {
            Some(items) => of(items).map(|h| h + 1),
            None => Some(1),
        },
        Alt::Object(spec) => spec
            .properties
            .iter()
            .filter(|p| p.required)
            .map(|p| of(p.node))
            .try_fold(0, |top, h| h.map(|h| top.max(h)))
            .map(|h| h + 1),
        _ => Some(1),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::super::compile::compile;
    use super::*;
    use serde_json::json;

    #[test]
    fn recursion_with_an_exit_is_finite_and_without_one_is_not() {
        let tree = json!({"type":"object","additionalProperties":false,"required":["children"],
            "properties":{"children":{"type":"array","items":{"$ref":"#"}}}});
        let graph = compile(&tree, true).unwrap();
        assert!(heights(&graph)[graph.root].is_some());
        let endless = json!({"type":"object","additionalProperties":false,"required":["next"],
            "properties":{"next":{"$ref":"#"}}});
        let graph = compile(&endless, true).unwrap();
        assert_eq!(heights(&graph)[graph.root], None);
        let maybe = json!({"type":"object","additionalProperties":false,"required":["next"],
            "properties":{"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}}});
        let graph = compile(&maybe, true).unwrap();
        assert!(heights(&graph)[graph.root].is_some());
    }
}
