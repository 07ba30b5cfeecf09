//! [`EngineSettings`]: the engine-wide settings (planner tier, plan size, synthesis, planner call,
//! routing and scaling).

use crate::scaling;
use crate::{PlannerSettings, RoutingSettings};

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The tier that plans (and synthesises).
    pub planner_tier: String,
    /// Default `max_subtasks` when a request gives none.
    pub max_subtasks: usize,
    /// Hard ceiling on `max_subtasks` a request may ask for.
    pub max_subtasks_limit: usize,
    /// Most steps a client-supplied plan may have (`[engine] max_client_plan_steps`); separate
    /// from `max_subtasks`, which bounds the plans the planner writes.
    pub max_client_plan_steps: usize,
    /// Longest task text a request may carry, in characters (`[engine] max_task_chars`).
    pub max_task_chars: usize,
    /// Append a synthesis step by default.
    pub synthesis: bool,
    /// Planner call settings.
    pub planner: PlannerSettings,
    /// Routing rules and planner tier hints (`routing.rs`).
    pub routing: RoutingSettings,
    /// Autoscaling thresholds (`scaling.rs`).
    pub scaling: scaling::ScalingSettings,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            planner_tier: "planner".into(),
            max_subtasks: 8,
            max_subtasks_limit: 64,
            max_client_plan_steps: 64,
            max_task_chars: 32_768,
            synthesis: true,
            planner: PlannerSettings::default(),
            routing: RoutingSettings::default(),
            scaling: scaling::ScalingSettings::default(),
        }
    }
}
