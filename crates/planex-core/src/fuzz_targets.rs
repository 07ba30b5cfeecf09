//! Fuzz targets of the parsers that read untrusted input (bolero): each runs as a plain test
//! (random inputs plus the seed corpus under `src/__fuzz__/`), and as a coverage-guided fuzzer
//! with `cargo bolero test` (docs/ARCHITECTURE.md §9). Each asserts what must hold for any input:
//! no panic, and the invariants named in its comment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{Catalog, Plan, PlanLimits, StepStream, StreamedStep, ToolSpec};

/// The tools of the embedded default config (the example plans use them).
fn catalog() -> Catalog {
    #[derive(serde::Deserialize)]
    struct Tools {
        tools: Vec<ToolSpec>,
    }
    let text = include_str!("../../planex-app/src/default.toml");
    Catalog::new(toml::from_str::<Tools>(text).unwrap().tools).unwrap()
}

/// The seed corpus: every plan of `examples/plans.jsonl` and `examples/hostile-plans.jsonl`
/// (the client-plan tests' inputs), as text, each also cut in half and with a fence.
fn seeds() -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/");
    let mut seeds = Vec::new();
    for file in ["plans.jsonl", "hostile-plans.jsonl"] {
        let text = std::fs::read_to_string(format!("{root}{file}")).unwrap();
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let plan = value.get("plan").unwrap_or(&value).to_string();
            let half: String = plan.chars().take(plan.chars().count() / 2).collect();
            seeds.push(format!("```json\n{plan}\n```"));
            seeds.push(half);
            seeds.push(plan);
        }
    }
    assert!(seeds.len() > 60, "the example plans are the seed corpus");
    seeds
}

fn check_plan(catalog: &Catalog, text: &str) {
    if let Ok(plan) = Plan::parse(text, catalog, PlanLimits { max_steps: 64 }) {
        let levels = crate::dag::levels(&plan.steps);
        assert_eq!(levels.iter().map(Vec::len).sum::<usize>(), plan.steps.len());
    }
}

/// Plan parsing and validation from raw bytes: never panics; an accepted plan's DAG has levels
/// covering every step exactly once.
#[test]
fn plan_parse() {
    let catalog = catalog();
    let mut accepted = 0;
    for seed in seeds() {
        check_plan(&catalog, &seed);
        accepted += usize::from(Plan::parse(&seed, &catalog, PlanLimits { max_steps: 64 }).is_ok());
    }
    assert!(accepted >= 8, "the example plans parse: {accepted}");
    // The compiled schemas are never mutated by a parse.
    let catalog = std::panic::AssertUnwindSafe(catalog);
    bolero::check!().for_each(move |bytes: &[u8]| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            check_plan(&catalog, text);
        }
    });
}

/// A streamed plan cut at any point: never panics, keeps the whole text, and hands on the same
/// step objects whatever the cut; a valid plan's steps all come out.
#[test]
fn step_stream() {
    let catalog = catalog();
    for seed in seeds() {
        for cut in [1, 7, seed.len() / 3] {
            check_stream(&seed, cut);
        }
        if let Ok(plan) = Plan::parse(&seed, &catalog, PlanLimits { max_steps: 64 }) {
            assert_eq!(
                StepStream::new().push(&seed).len(),
                plan.steps.len(),
                "{seed}"
            );
        }
    }
    bolero::check!().for_each(|bytes: &[u8]| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            check_stream(text, usize::from(bytes.first().copied().unwrap_or(0)));
        }
    });
}

fn check_stream(text: &str, cut: usize) {
    {
        let whole = StepStream::new().push(text);
        let cut = cut % (text.len() + 1);
        let cut = (0..=cut)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        let mut stream = StepStream::new();
        let mut pieces = stream.push(&text[..cut]);
        pieces.extend(stream.push(&text[cut..]));
        assert_eq!(stream.text(), text);
        assert_eq!(pieces, whole);
        for (i, step) in whole.iter().enumerate() {
            let index = match step {
                StreamedStep::Step { index, .. } | StreamedStep::Malformed { index, .. } => *index,
            };
            assert_eq!(index, i);
        }
    }
}

/// Placeholder templating: rendering a template of any text with any args never panics.
#[test]
fn template() {
    bolero::check!().for_each(|bytes: &[u8]| {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        let (template, value) = text.split_at(text.find('\u{0}').unwrap_or(text.len()));
        let mut args = serde_json::Map::new();
        args.insert("text".into(), serde_json::Value::String(value.to_owned()));
        args.insert("step_1_result".into(), serde_json::json!({"a": value}));
        let _ = crate::render(template, &args, str::to_owned);
        let results = std::collections::BTreeMap::from([(
            crate::StepId(1),
            serde_json::json!({"summary": value}),
        )]);
        let mut step_args = serde_json::Map::new();
        step_args.insert(
            "text".into(),
            serde_json::Value::String(template.to_owned()),
        );
        let _ = crate::substitute_args(&step_args, &results);
    });
}
