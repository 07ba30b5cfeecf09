//! Plan validation: turning the planner's JSON into a [`Plan`], whole or one step at a time.
//!
//! Key decision: the per-step rules (shape, tool, args, dependencies, placeholders) are small functions
//! shared by [`Plan::from_value`] (a whole plan, rules applied in the order of docs/ARCHITECTURE.md §3 across all
//! steps, so the first rule that fails is reported) and [`PlanBuilder`] (a streamed plan, where a step
//! may depend only on steps already accepted, which makes it acyclic by construction).

use crate::catalog::json_kind;
use crate::template::referenced_steps;
use crate::{Catalog, Plan, PlanError, PlanLimits, PlanSource, Step, StepId, dag};
use serde_json::Value;
use std::collections::BTreeSet;

const STEP_FIELDS: [&str; 4] = ["step_id", "tool_name", "args", "depends_on"];

impl Plan {
    /// Parses and validates the planner's text: JSON, optionally surrounded by whitespace and a
    /// Markdown code fence (```` ```json … ``` ````).
    ///
    /// ```
    /// use planex_core::{Catalog, Plan, PlanError, PlanLimits, StepId, ToolSpec};
    ///
    /// let catalog = Catalog::new(vec![
    ///     ToolSpec::one_arg_llm("search", "query", "executor", 256),
    ///     ToolSpec::one_arg_llm("summarize", "text", "executor", 256),
    /// ])?;
    /// let text = r#"{"steps": [
    ///   {"step_id": 1, "tool_name": "search", "args": {"query": "H200 prices"}, "depends_on": []},
    ///   {"step_id": 2, "tool_name": "summarize", "args": {"text": "{step_1_result}"}, "depends_on": [1]}
    /// ]}"#;
    /// let plan = Plan::parse(text, &catalog, PlanLimits { max_steps: 8 })?;
    /// assert_eq!(planex_core::dag::levels(&plan.steps), vec![vec![StepId(1)], vec![StepId(2)]]);
    ///
    /// // A placeholder must name a step listed in `depends_on`: refused, naming the culprit.
    /// let bad = text.replace("\"depends_on\": [1]", "\"depends_on\": []");
    /// let refused = Plan::parse(&bad, &catalog, PlanLimits { max_steps: 8 });
    /// assert!(matches!(refused, Err(PlanError::PlaceholderNotInDependsOn { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The first rule that fails, as a [`PlanError`] naming the culprit.
    pub fn parse(text: &str, catalog: &Catalog, limits: PlanLimits) -> Result<Plan, PlanError> {
        let json = strip_fence(text);
        let value: Value =
            serde_json::from_str(json).map_err(|e| shape(format!("not valid JSON: {e}")))?;
        Plan::from_value(value, catalog, limits)
    }

    /// Validates a plan given as JSON: `{"task"?: string, "steps": [...]}`. `task` is `""` when absent.
    ///
    /// Rules, in order: shape, empty, too many steps, duplicate ids, unknown tool, args against the
    /// tool's schema, unknown dependency, self dependency (a cycle), placeholder not in `depends_on`,
    /// cycle. Repeated `depends_on` entries are merged silently.
    ///
    /// # Errors
    /// The first rule that fails, as a [`PlanError`] naming the culprit.
    pub fn from_value(
        value: Value,
        catalog: &Catalog,
        limits: PlanLimits,
    ) -> Result<Plan, PlanError> {
        let (task, raw_steps) = plan_shape(value)?;
        let steps = raw_steps
            .into_iter()
            .enumerate()
            .map(|(index, raw)| step_shape(raw, At(Some(index))))
            .collect::<Result<Vec<Step>, PlanError>>()?;
        if steps.is_empty() {
            return Err(PlanError::Empty);
        }
        check_count(steps.len(), limits)?;
        if let Some(step_id) = dag::duplicate_id(&steps) {
            return Err(PlanError::DuplicateStepId { step_id });
        }
        let ids: BTreeSet<StepId> = steps.iter().map(|s| s.step_id).collect();
        for step in &steps {
            check_tool(step, catalog)?;
        }
        for step in &steps {
            check_args(step, catalog)?;
        }
        for step in &steps {
            check_dependencies_exist(step, &ids, |step_id, missing| {
                PlanError::UnknownDependency { step_id, missing }
            })?;
        }
        for step in &steps {
            check_self_dependency(step)?;
        }
        for step in &steps {
            check_placeholders(step)?;
        }
        if let Some(cycle) = dag::find_cycle(&steps) {
            return Err(PlanError::Cycle { cycle });
        }
        Ok(Plan {
            task,
            steps,
            source: PlanSource::Planner,
        })
    }
}

impl Step {
    /// Validates one step on its own (`POST /v1/execute`'s sub-task body): shape, an id in range,
    /// a known tool, args valid against its schema, no dependency on itself, and every
    /// `{step_N_result}` placeholder naming a step in `depends_on`. Its dependencies are not
    /// looked up: they belong to a plan the caller keeps.
    ///
    /// ```
    /// use planex_core::{Catalog, PlanError, Step, ToolSpec};
    /// use serde_json::json;
    ///
    /// let catalog = Catalog::new(vec![ToolSpec::one_arg_llm("summarize", "text", "executor", 256)])?;
    /// let step = json!({"step_id": 2, "tool_name": "summarize",
    ///                   "args": {"text": "{step_1_result}"}, "depends_on": [1]});
    /// assert_eq!(Step::validate(step, &catalog)?.depends_on, vec![planex_core::StepId(1)]);
    /// let stray = json!({"step_id": 2, "tool_name": "summarize",
    ///                    "args": {"text": "{step_1_result}"}, "depends_on": []});
    /// let refused = Step::validate(stray, &catalog);
    /// assert!(matches!(refused, Err(PlanError::PlaceholderNotInDependsOn { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The first rule that fails, as a [`PlanError`] naming the culprit.
    pub fn validate(value: Value, catalog: &Catalog) -> Result<Step, PlanError> {
        let step = step_shape(value, At(None))?;
        check_tool(&step, catalog)?;
        check_args(&step, catalog)?;
        check_self_dependency(&step)?;
        check_placeholders(&step)?;
        Ok(step)
    }
}

/// Accepts a streamed plan one step at a time (steps may depend only on steps already accepted).
#[derive(Debug, Clone)]
pub struct PlanBuilder<'c> {
    task: String,
    catalog: &'c Catalog,
    limits: PlanLimits,
    steps: Vec<Step>,
    ids: BTreeSet<StepId>,
}

impl<'c> PlanBuilder<'c> {
    /// An empty streamed plan for `task`.
    pub fn new(task: impl Into<String>, catalog: &'c Catalog, limits: PlanLimits) -> Self {
        PlanBuilder {
            task: task.into(),
            catalog,
            limits,
            steps: Vec::new(),
            ids: BTreeSet::new(),
        }
    }

    /// Validates one step (a JSON object as in a plan's `steps` array) and accepts it.
    ///
    /// # Errors
    /// Shape, too many steps, duplicate id, unknown tool, invalid args, self dependency (cycle),
    /// [`PlanError::ForwardDependency`] for a dependency not yet accepted, placeholder not in
    /// `depends_on`. A refused step leaves the builder unchanged.
    pub fn push(&mut self, step_value: Value) -> Result<&Step, PlanError> {
        let step = step_shape(step_value, At(Some(self.steps.len())))?;
        check_count(self.steps.len() + 1, self.limits)?;
        if self.ids.contains(&step.step_id) {
            return Err(PlanError::DuplicateStepId {
                step_id: step.step_id,
            });
        }
        check_tool(&step, self.catalog)?;
        check_args(&step, self.catalog)?;
        check_self_dependency(&step)?;
        check_dependencies_exist(&step, &self.ids, |step_id, dependency| {
            PlanError::ForwardDependency {
                step_id,
                dependency,
            }
        })?;
        check_placeholders(&step)?;
        self.ids.insert(step.step_id);
        self.steps.push(step);
        // cannot fail because a step was pushed on the line above
        self.steps.last().ok_or(PlanError::Empty)
    }

    /// Steps accepted so far, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Number of steps accepted so far.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether no step has been accepted yet.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Closes the plan.
    ///
    /// # Errors
    /// [`PlanError::Empty`] when no step was accepted.
    pub fn finish(self) -> Result<Plan, PlanError> {
        if self.steps.is_empty() {
            return Err(PlanError::Empty);
        }
        Ok(Plan {
            task: self.task,
            steps: self.steps,
            source: PlanSource::Planner,
        })
    }
}

fn shape(detail: String) -> PlanError {
    PlanError::Shape {
        detail,
        step_index: None,
    }
}

/// Where a step sits: its position in a plan's `steps` array, or a lone step (`/v1/execute`).
#[derive(Clone, Copy)]
struct At(Option<usize>);

impl At {
    /// The JSON path of the step: `steps[3]`, or `step` for a lone one.
    fn path(self) -> String {
        match self.0 {
            Some(index) => format!("steps[{index}]"),
            None => "step".to_owned(),
        }
    }

    /// A shape error inside this step.
    fn shape(self, detail: String) -> PlanError {
        PlanError::Shape {
            detail,
            step_index: self.0,
        }
    }
}

/// The JSON inside an optional Markdown code fence (```` ```json … ``` ````, any language tag or
/// none), trimmed: how every model answer meant as JSON is read (plans, the joiner's decision).
pub fn strip_fence(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// Checks the top level and returns the task text and the raw steps.
fn plan_shape(value: Value) -> Result<(String, Vec<Value>), PlanError> {
    let Value::Object(mut map) = value else {
        return Err(shape(format!(
            "(root): expected an object {{\"steps\": [...]}}, got {}",
            json_kind(&value)
        )));
    };
    if let Some(key) = map.keys().find(|k| *k != "task" && *k != "steps") {
        return Err(shape(format!(
            "(root): unknown field {key:?}; a plan has only \"steps\" and optionally \"task\""
        )));
    }
    let task = match map.remove("task") {
        None => String::new(),
        Some(Value::String(task)) => task,
        Some(other) => {
            return Err(shape(format!(
                "task: expected a string, got {}",
                json_kind(&other)
            )));
        }
    };
    match map.remove("steps") {
        Some(Value::Array(steps)) => Ok((task, steps)),
        Some(other) => Err(shape(format!(
            "steps: expected an array of steps, got {}",
            json_kind(&other)
        ))),
        None => Err(shape(
            "steps: missing; a plan needs a \"steps\" array".to_owned(),
        )),
    }
}

/// Checks one step's shape; `at` is its position in the `steps` array (for the error path).
/// Repeated `depends_on` entries are merged, keeping the first occurrence.
fn step_shape(value: Value, at: At) -> Result<Step, PlanError> {
    let path = at.path();
    let Value::Object(mut map) = value else {
        return Err(at.shape(format!(
            "{path}: expected an object with step_id, tool_name, args and depends_on, got {}",
            json_kind(&value)
        )));
    };
    if let Some(key) = map.keys().find(|k| !STEP_FIELDS.contains(&k.as_str())) {
        return Err(at.shape(format!(
            "{path}: unknown field {key:?}; a step has exactly step_id, tool_name, args and depends_on"
        )));
    }
    let step_id = read_step_id(map.get("step_id"), &format!("{path}.step_id"), at)?;
    let tool_name = match map.remove("tool_name") {
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(at.shape(format!(
                "{path}.tool_name: expected a string, got {}",
                json_kind(&other)
            )));
        }
        None => {
            return Err(at.shape(format!("{path}.tool_name: missing; expected a tool name")));
        }
    };
    let args = match map.remove("args") {
        Some(Value::Object(args)) => args,
        Some(other) => {
            return Err(at.shape(format!(
                "{path}.args: expected an object, got {}",
                json_kind(&other)
            )));
        }
        None => {
            return Err(at.shape(format!(
                "{path}.args: missing; expected an object (use {{}} for a tool without args)"
            )));
        }
    };
    let mut depends_on = Vec::new();
    match map.get("depends_on") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let id = read_step_id(Some(item), &format!("{path}.depends_on[{i}]"), at)?;
                if !depends_on.contains(&id) {
                    depends_on.push(id);
                }
            }
        }
        Some(other) => {
            return Err(at.shape(format!(
                "{path}.depends_on: expected an array of step ids, got {}",
                json_kind(other)
            )));
        }
    }
    Ok(Step {
        step_id,
        tool_name,
        args,
        depends_on,
    })
}

/// A step id: a positive integer up to [`StepId::MAX`]. An integer above it (`4294967295`
/// included, which would leave the synthesis step no id) is its own rule, not a shape error.
fn read_step_id(value: Option<&Value>, path: &str, at: At) -> Result<StepId, PlanError> {
    let Some(value) = value else {
        return Err(at.shape(format!("{path}: missing; expected a positive integer")));
    };
    match value.as_u64() {
        Some(id) if id >= 1 && id <= u64::from(StepId::MAX.0) => {
            // In range, so it fits a u32: the bound is below u32::MAX.
            Ok(StepId(u32::try_from(id).unwrap_or(StepId::MAX.0)))
        }
        Some(id) if id > u64::from(StepId::MAX.0) => Err(PlanError::StepIdOutOfRange {
            path: path.to_owned(),
            value: id.to_string(),
            step_index: at.0,
        }),
        _ => Err(at.shape(format!(
            "{path}: expected a positive integer (1 to {}), got {value}",
            StepId::MAX
        ))),
    }
}

fn check_count(count: usize, limits: PlanLimits) -> Result<(), PlanError> {
    if count > limits.max_steps {
        return Err(PlanError::TooManySteps {
            count,
            max: limits.max_steps,
        });
    }
    Ok(())
}

fn check_tool(step: &Step, catalog: &Catalog) -> Result<(), PlanError> {
    if catalog.contains(&step.tool_name) {
        return Ok(());
    }
    Err(PlanError::UnknownTool {
        step_id: step.step_id,
        tool: step.tool_name.clone(),
        known: catalog.names(),
    })
}

/// Placeholders are plain strings here: the schema sees the args exactly as the planner wrote them.
fn check_args(step: &Step, catalog: &Catalog) -> Result<(), PlanError> {
    catalog
        .validate_args(&step.tool_name, &step.args)
        .map_err(|errors| PlanError::InvalidArgs {
            step_id: step.step_id,
            tool: step.tool_name.clone(),
            errors,
        })
}

fn check_dependencies_exist(
    step: &Step,
    known: &BTreeSet<StepId>,
    error: impl Fn(StepId, StepId) -> PlanError,
) -> Result<(), PlanError> {
    match dag::missing_dependency(step, known) {
        Some(missing) => Err(error(step.step_id, missing)),
        None => Ok(()),
    }
}

fn check_self_dependency(step: &Step) -> Result<(), PlanError> {
    if step.depends_on.contains(&step.step_id) {
        return Err(PlanError::Cycle {
            cycle: vec![step.step_id, step.step_id],
        });
    }
    Ok(())
}

fn check_placeholders(step: &Step) -> Result<(), PlanError> {
    match referenced_steps(&step.args)
        .into_iter()
        .find(|r| !step.depends_on.contains(r))
    {
        Some(referenced) => Err(PlanError::PlaceholderNotInDependsOn {
            step_id: step.step_id,
            referenced,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
