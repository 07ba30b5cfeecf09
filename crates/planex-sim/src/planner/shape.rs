//! The DAG shape of a generated plan: a level of independent gathering steps, an optional
//! middle level that fans in from them, and one final step depending on the previous level.
//!
//! Key decision: tools are chosen by name hints (source-like names gather, combining names
//! depend) with fallbacks to any tool, so every catalog yields a valid, realistic plan.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// One step of the plan skeleton.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepShape {
    /// 1-based step id.
    pub step_id: usize,
    /// Index of the tool in the catalog.
    pub tool: usize,
    /// Ids of earlier steps this step depends on (sorted).
    pub depends_on: Vec<usize>,
}

/// Per-tool facts the shape needs.
#[derive(Clone, Debug)]
pub struct ToolHint {
    /// Tool name.
    pub name: String,
    /// Whether the tool has a free string property that can hold placeholders.
    pub has_text: bool,
}

const SOURCE: &[&str] = &[
    "search", "fetch", "lookup", "get", "query", "retriev", "read", "scrape", "crawl", "browse",
    "find", "list", "load", "download",
];
const COMBINE: &[&str] = &[
    "summar",
    "synth",
    "compare",
    "combine",
    "analy",
    "report",
    "format",
    "extract",
    "classify",
    "aggregat",
    "merge",
    "review",
    "write",
    "draft",
    "rank",
    "translate",
];

fn matches(name: &str, hints: &[&str]) -> bool {
    let lower = name.to_ascii_lowercase();
    hints.iter().any(|h| lower.contains(h))
}

/// Number of steps: 3–10, capped by `max` (a `max` below 3 is used as is, at least 1).
pub fn step_count(rng: &mut ChaCha8Rng, max: Option<usize>) -> usize {
    let n: usize = rng.random_range(3..=10);
    max.map_or(n, |max| n.min(max)).max(1)
}

fn choose(rng: &mut ChaCha8Rng, tiers: &[Vec<usize>]) -> usize {
    tiers
        .iter()
        .find(|tier| !tier.is_empty())
        .and_then(|tier| tier.choose(rng).copied())
        .unwrap_or(0)
}

/// Builds the skeleton of `n` steps over `tools` (which must not be empty).
pub fn build(rng: &mut ChaCha8Rng, tools: &[ToolHint], n: usize) -> Vec<StepShape> {
    let all: Vec<usize> = (0..tools.len()).collect();
    let filter = |pred: &dyn Fn(&ToolHint) -> bool| -> Vec<usize> {
        all.iter()
            .copied()
            .filter(|&i| tools.get(i).is_some_and(pred))
            .collect()
    };
    let gather_tiers = [
        filter(&|t| matches(&t.name, SOURCE) && !matches(&t.name, COMBINE)),
        filter(&|t| matches(&t.name, SOURCE)),
        filter(&|t| !matches(&t.name, COMBINE)),
        all.clone(),
    ];
    let combine_tiers = [
        filter(&|t| matches(&t.name, COMBINE) && t.has_text),
        filter(&|t| t.has_text && !matches(&t.name, SOURCE)),
        filter(&|t| t.has_text),
        filter(&|t| matches(&t.name, COMBINE)),
        all.clone(),
    ];
    let middle = match n {
        0..=3 => 0,
        4 => rng.random_range(0..=1),
        _ => rng.random_range(1..=(n - 3).min(3)),
    };
    let gather = if n <= 2 { 1 } else { n - 1 - middle };
    let mut steps: Vec<StepShape> = (1..=gather.min(n))
        .map(|id| StepShape {
            step_id: id,
            tool: choose(rng, &gather_tiers),
            depends_on: Vec::new(),
        })
        .collect();
    for j in 0..middle {
        let mut deps: Vec<usize> = (1..=gather)
            .filter(|i| i % middle == j || rng.random_bool(0.25))
            .collect();
        if deps.is_empty() {
            deps.push(1);
        }
        steps.push(StepShape {
            step_id: gather + j + 1,
            tool: choose(rng, &combine_tiers),
            depends_on: deps,
        });
    }
    if n >= 2 {
        let depends_on = if middle > 0 {
            (gather + 1..=gather + middle).collect()
        } else {
            (1..=gather).collect()
        };
        steps.push(StepShape {
            step_id: n,
            tool: choose(rng, &combine_tiers),
            depends_on,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rand::SeedableRng;

    fn hint(name: &str, has_text: bool) -> ToolHint {
        ToolHint {
            name: name.into(),
            has_text,
        }
    }

    #[test]
    fn shapes_are_valid_dags() {
        let tools = [
            hint("web_search", false),
            hint("summarize", true),
            hint("echo", true),
        ];
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = step_count(&mut rng, if seed % 5 == 0 { Some(2) } else { None });
            let steps = build(&mut rng, &tools, n);
            assert_eq!(steps.len(), n);
            for (i, s) in steps.iter().enumerate() {
                assert_eq!(s.step_id, i + 1);
                assert!(s.depends_on.iter().all(|d| *d < s.step_id));
                if s.depends_on.is_empty() {
                    assert_eq!(tools[s.tool].name, "web_search");
                } else {
                    assert_eq!(tools[s.tool].name, "summarize");
                }
            }
        }
    }
}
