//! The `planex.toml` of a multi-process test bed: a planner and an executor tier on one
//! simulator, the Redis store, and two `llm` tools (`web_search`, `summarize`). The distributed
//! end-to-end tests and the chaos soak (`planex-bench chaos`) start real `planex serve` and
//! `planex worker` processes from it.

/// How the tiers treat their calls, and what else the file says.
#[derive(Debug, Clone)]
pub struct ClusterConfig<'a> {
    /// The simulator's OpenAI base URL (`http://127.0.0.1:PORT/v1`), for both tiers.
    pub sim_url: &'a str,
    /// The Redis store's URL.
    pub store_url: &'a str,
    /// Each tier's call timeout, in seconds.
    pub timeout_secs: u64,
    /// Each tier's retries of a failed call (the first backoff is 20 ms).
    pub max_retries: u32,
    /// The longest backoff between two retries, in ms.
    pub max_backoff_ms: u64,
    /// More `[engine]` lines (e.g. `planning_deadline_secs = 20`), each ending in a newline.
    pub engine: &'a str,
    /// More tables after the tools (e.g. a `[budget]` table).
    pub tables: &'a str,
}

impl ClusterConfig<'_> {
    /// The file's text.
    pub fn toml(&self) -> String {
        let tier = |price: &str| {
            format!(
                "model = \"sim-model\"\nendpoints = [\"{}\"]\n{price}\ntimeout_secs = {}\nmax_concurrency = 64\nretry = {{ max_retries = {}, initial_backoff_ms = 20, max_backoff_ms = {} }}\n",
                self.sim_url, self.timeout_secs, self.max_retries, self.max_backoff_ms
            )
        };
        format!(
            r#"[engine]
planner_tier = "planner"
max_subtasks = 6
synthesis = true
worker_concurrency = 8
{engine}
[store]
backend = "redis"
url = "{store_url}"

[tiers.planner]
{planner}
[tiers.executor]
{executor}
[[tools]]
name = "web_search"
description = "Find current facts about a topic"
tier = "executor"
input_schema = {{ type = "object", properties = {{ query = {{ type = "string", minLength = 1 }} }}, required = ["query"], additionalProperties = false }}
kind = {{ type = "llm", prompt = "Find facts about: {{query}}", max_tokens = 64 }}

[[tools]]
name = "summarize"
description = "Summarize a text in a few sentences"
tier = "executor"
input_schema = {{ type = "object", properties = {{ text = {{ type = "string", minLength = 1 }} }}, required = ["text"], additionalProperties = false }}
kind = {{ type = "llm", prompt = "Summarize:\n\n{{text}}", max_tokens = 64 }}
{tables}"#,
            engine = self.engine,
            store_url = self.store_url,
            planner = tier("usd_per_hour = 4.54\ntokens_per_second = 2500"),
            executor = tier("usd_per_hour = 0.96\ntokens_per_second = 6000"),
            tables = self.tables,
        )
    }
}
