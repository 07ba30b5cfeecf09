//! `planex workload`: writes the workloads shipped in `workloads/` (and the savings-curve tasks)
//! as JSONL with pinned plans over the default tool catalog, usable by `planex sim --workload` and
//! `planex compare --workload`.
//!
//! Key decision: the generator uses its own 20-line SplitMix64 instead of the `rand` crate, so a
//! seed produces the same file forever, whatever `rand` version the workspace moves to; a test
//! checks the shipped files against it.

use crate::CompareError;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Which workload to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadKind {
    /// The reference 10-step research task.
    Reference,
    /// 8 parallel lookups and a summary (one task of 9 steps).
    Fanout,
    /// `--tasks` tasks of 2–16 steps with random widths (the profiling set).
    Mixed,
    /// One task of `--steps` steps over `--width` parallel lanes (the savings curves).
    Lanes,
}

/// Arguments of `planex workload` (flatten into a clap subcommand).
#[derive(clap::Args, Clone, Debug)]
pub struct WorkloadArgs {
    /// Which workload to print as JSONL on stdout.
    #[arg(value_enum)]
    pub kind: WorkloadKind,
    /// mixed: number of tasks.
    #[arg(long, default_value_t = 200)]
    pub tasks: usize,
    /// mixed: seed of the generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// lanes: steps per task, the final summary included (2 or more).
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// lanes: parallel lanes (1 = a chain; steps - 1 = pure fan-out).
    #[arg(long, default_value_t = 2)]
    pub width: usize,
}

/// The workload `args` asks for, as JSONL text (a `#` comment line, then one task per line).
///
/// # Errors
/// `--tasks 0`, or a lanes shape that cannot be built.
pub fn generate_workload(args: &WorkloadArgs) -> Result<String, CompareError> {
    Ok(match args.kind {
        WorkloadKind::Reference => reference(),
        WorkloadKind::Fanout => fanout(),
        WorkloadKind::Mixed => {
            if args.tasks == 0 {
                return Err(CompareError::InvalidArgument(
                    "--tasks must be at least 1".into(),
                ));
            }
            mixed(args.tasks, args.seed)
        }
        WorkloadKind::Lanes => {
            if args.steps < 2 || args.width == 0 || args.width > args.steps - 1 {
                return Err(CompareError::InvalidArgument(format!(
                    "lanes need --steps >= 2 and 1 <= --width <= steps - 1 (got --steps {} --width {})",
                    args.steps, args.width
                )));
            }
            line(
                &format!("lanes-{}x{}", args.steps, args.width),
                &lanes_task(args.steps, args.width),
                &lanes(
                    "GPU serving costs",
                    args.steps - 1,
                    args.width,
                    &mut cycle_tools(),
                ),
            )
        }
    })
}

/// `planex workload`: prints the generated workload ([`generate_workload`]) on stdout.
///
/// # Errors
/// As [`generate_workload`].
pub fn workload(args: &WorkloadArgs) -> Result<(), CompareError> {
    print!("{}", generate_workload(args)?);
    Ok(())
}

/// SplitMix64: tiny, fast, and stable forever.
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo + 1) as u64;
        lo + usize::try_from(self.next_u64() % span).unwrap_or(0)
    }
}

const FACETS: &[&str] = &[
    "current prices",
    "benchmarks",
    "availability by region",
    "recent news",
    "customer reviews",
    "power and cooling",
    "software support",
    "contract terms",
];

/// The tools a lane step after the first may use.
const TRANSFORMS: &[&str] = &["extract", "summarize", "classify", "compare"];

fn transform(tool: &str, input: &str) -> Value {
    match tool {
        "extract" => json!({"text": input, "fields": "names, prices, dates"}),
        "classify" => json!({"text": input, "labels": "relevant, background, outdated"}),
        "compare" => json!({"items": input, "criteria": "cost and speed"}),
        _ => json!({"text": input}),
    }
}

/// Transform tools in a fixed cycle (the curves: no randomness between points).
pub fn cycle_tools() -> impl FnMut(usize) -> usize {
    |i| i % TRANSFORMS.len()
}

/// A plan of `work` steps spread round-robin over `width` lanes (each lane a chain that starts with
/// a `web_search`), then one `summarize` step joining the last step of every lane. `pick(i)` chooses
/// the transform tool of the i-th non-search step.
pub fn lanes(
    topic: &str,
    work: usize,
    width: usize,
    pick: &mut dyn FnMut(usize) -> usize,
) -> Value {
    let width = width.clamp(1, work.max(1));
    let lane_len = |lane: usize| work / width + usize::from(lane < work % width);
    let mut steps = Vec::new();
    let mut last: Vec<Option<usize>> = vec![None; width];
    let mut transforms = 0;
    for level in 0..lane_len(0) {
        for (lane, previous) in last.iter_mut().enumerate() {
            if level >= lane_len(lane) {
                continue;
            }
            let id = steps.len() + 1;
            let step = match *previous {
                None => json!({"step_id": id, "tool_name": "web_search", "depends_on": [],
                    "args": {"query": format!("{topic}: {}", FACETS[lane % FACETS.len()])}}),
                Some(prev) => {
                    let tool = TRANSFORMS[pick(transforms) % TRANSFORMS.len()];
                    transforms += 1;
                    json!({"step_id": id, "tool_name": tool, "depends_on": [prev],
                        "args": transform(tool, &format!("{{step_{prev}_result}}"))})
                }
            };
            steps.push(step);
            *previous = Some(id);
        }
    }
    let ends: Vec<usize> = last.iter().flatten().copied().collect();
    let mut text = format!("Write the answer about {topic} from these findings:");
    for end in &ends {
        let _ = write!(text, "\n{{step_{end}_result}}");
    }
    steps.push(json!({"step_id": steps.len() + 1, "tool_name": "summarize",
        "depends_on": ends, "args": {"text": text}}));
    json!({ "steps": steps })
}

/// The task text of a lanes task.
pub fn lanes_task(steps: usize, width: usize) -> String {
    format!(
        "Research GPU serving costs in {steps} steps over {width} parallel lanes and summarize the findings"
    )
}

/// A comment line saying how the file was made (`#` lines are skipped by every reader).
fn header(command: &str, what: &str) -> String {
    format!("# {what}; pinned plans over the default tool catalog. Generated by `{command}`.\n")
}

fn line(id: &str, task: &str, plan: &Value) -> String {
    format!("{}\n", json!({"id": id, "task": task, "plan": plan}))
}

/// The reference 10-step research task.
pub fn reference() -> String {
    let plan = json!({"steps": [
        {"step_id": 1, "tool_name": "web_search", "depends_on": [], "args": {"query": "H200 SXM5 cloud price per hour 2026"}},
        {"step_id": 2, "tool_name": "web_search", "depends_on": [], "args": {"query": "L40S cloud price per hour 2026"}},
        {"step_id": 3, "tool_name": "web_search", "depends_on": [], "args": {"query": "Llama 3.3 70B vLLM throughput on H200"}},
        {"step_id": 4, "tool_name": "web_search", "depends_on": [], "args": {"query": "Qwen2.5 7B SGLang throughput on L40S"}},
        {"step_id": 5, "tool_name": "extract", "depends_on": [1, 2], "args": {"text": "{step_1_result}\n{step_2_result}", "fields": "provider, GPU, price per hour"}},
        {"step_id": 6, "tool_name": "extract", "depends_on": [3, 4], "args": {"text": "{step_3_result}\n{step_4_result}", "fields": "model, GPU, tokens per second"}},
        {"step_id": 7, "tool_name": "compare", "depends_on": [5, 6], "args": {"items": "{step_5_result}\n{step_6_result}", "criteria": "cost per million tokens"}},
        {"step_id": 8, "tool_name": "classify", "depends_on": [7], "args": {"text": "{step_7_result}", "labels": "planner tier, executor tier"}},
        {"step_id": 9, "tool_name": "summarize", "depends_on": [7], "args": {"text": "{step_7_result}"}},
        {"step_id": 10, "tool_name": "summarize", "depends_on": [8, 9], "args": {"text": "Recommendation for serving a 70B planner and 7B executors:\n{step_8_result}\n{step_9_result}"}},
    ]});
    header(
        "planex workload reference",
        "the reference 10-step research task",
    ) + &line(
        "reference-10",
        "Compare H200 and L40S GPU clouds for serving a 70B planner and 7B executors",
        &plan,
    )
}

/// 8 parallel lookups and a summary.
pub fn fanout() -> String {
    let providers = [
        "AWS",
        "Azure",
        "Google Cloud",
        "Oracle",
        "CoreWeave",
        "Lambda",
        "RunPod",
        "Nebius",
    ];
    let mut steps: Vec<Value> = providers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"step_id": i + 1, "tool_name": "web_search", "depends_on": [],
            "args": {"query": format!("{p} H200 on-demand price per hour")}})
        })
        .collect();
    let refs: Vec<String> = (1..=8).map(|i| format!("{{step_{i}_result}}")).collect();
    steps.push(
        json!({"step_id": 9, "tool_name": "summarize", "depends_on": (1..=8).collect::<Vec<_>>(),
        "args": {"text": format!("H200 prices by provider:\n{}", refs.join("\n"))}}),
    );
    header("planex workload fanout", "8 parallel lookups and a summary")
        + &line(
            "fanout-8",
            "Look up the H200 on-demand price at eight GPU clouds and summarize them",
            &json!({ "steps": steps }),
        )
}

const SUBJECTS: &[&str] = &[
    "GPU cloud pricing",
    "speculative decoding",
    "vector databases",
    "open-weight LLMs",
    "inference servers",
    "KV-cache offloading",
    "LLM evaluation suites",
    "agent frameworks",
    "quantization formats",
    "edge inference chips",
];
const VERBS: &[&str] = &["Research", "Compare", "Summarize", "Assess", "Survey"];

/// `tasks` tasks of 2–16 steps (the final summary included) over 1–8 lanes.
pub fn mixed(tasks: usize, seed: u64) -> String {
    let mut rng = SplitMix::new(seed);
    let mut out = header(
        &format!("planex workload mixed --tasks {tasks} --seed {seed}"),
        "tasks of 2-16 steps over 1-8 parallel lanes",
    );
    for i in 0..tasks {
        let steps = rng.range(2, 16);
        let work = steps - 1;
        let width = rng.range(1, work.min(8));
        let subject = SUBJECTS[rng.range(0, SUBJECTS.len() - 1)];
        let verb = VERBS[rng.range(0, VERBS.len() - 1)];
        let topic = format!("{subject} (case {})", i + 1);
        let mut pick = |_: usize| rng.range(0, TRANSFORMS.len() - 1);
        let plan = lanes(&topic, work, width, &mut pick);
        let task = format!("{verb} {topic} in {steps} steps");
        out.push_str(&line(&format!("mixed-{:03}", i + 1), &task, &plan));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use planex_core::{Plan, PlanLimits};

    fn catalog() -> planex_core::Catalog {
        planex_app::Config::load(None).unwrap().catalog().unwrap()
    }

    fn plans(text: &str) -> Vec<Value> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["plan"].clone())
            .collect()
    }

    #[test]
    fn every_generated_plan_is_valid_for_the_default_catalog() {
        let catalog = catalog();
        let limits = PlanLimits { max_steps: 64 };
        let mut all = plans(&reference());
        all.extend(plans(&fanout()));
        all.extend(plans(&mixed(200, 7)));
        for (steps, width) in [(2, 1), (9, 8), (17, 1), (17, 16), (32, 4)] {
            all.push(lanes("x", steps - 1, width, &mut cycle_tools()));
        }
        for plan in &all {
            Plan::parse(&plan.to_string(), &catalog, limits).unwrap();
        }
    }

    #[test]
    fn shapes_match_their_names() {
        let plan = lanes("x", 16, 16, &mut cycle_tools());
        let steps = plan["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 17);
        assert_eq!(steps[16]["depends_on"].as_array().unwrap().len(), 16);
        let chain = lanes("x", 16, 1, &mut cycle_tools());
        let steps = chain["steps"].as_array().unwrap();
        assert!((1..17).all(|i| steps[i]["depends_on"] == json!([i])));
        let counts: Vec<usize> = plans(&mixed(200, 7))
            .iter()
            .map(|p| p["steps"].as_array().unwrap().len())
            .collect();
        assert!(counts.iter().all(|n| (2..=16).contains(n)));
        assert!(counts.contains(&2) && counts.contains(&16));
        assert_eq!(
            plans(&reference())[0]["steps"].as_array().unwrap().len(),
            10
        );
        assert_eq!(plans(&fanout())[0]["steps"].as_array().unwrap().len(), 9);
    }

    #[test]
    fn shipped_workloads_are_the_generator_output() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("reference-10-step.jsonl"), reference());
        assert_eq!(read("fanout-8.jsonl"), fanout());
        assert_eq!(read("mixed-200.jsonl"), mixed(200, 7));
    }
}
