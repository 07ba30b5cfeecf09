//! Identifier newtypes. Step ids are the planner's integers; task ids are UUIDs rendered as strings so
//! that every store backend can use them as keys unchanged.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of one step inside a plan, as written by the planner (`"step_id": 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub u32);

impl StepId {
    /// The highest id a plan step may have: one below `u32::MAX`, so the synthesis step the
    /// engine appends (one past the plan's highest id) always has an id of its own and never
    /// wraps around to 0.
    pub const MAX: StepId = StepId(u32::MAX - 1);
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id of one task (one user request, planned once and executed as a DAG).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub String);

impl TaskId {
    /// A fresh random task id.
    pub fn new_random() -> Self {
        TaskId(uuid::Uuid::new_v4().to_string())
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TaskId {
    fn from(s: &str) -> Self {
        TaskId(s.to_owned())
    }
}
