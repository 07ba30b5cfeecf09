//! The fields of an agent answer that both the whole answer (`mod.rs`) and the streamed one
//! (`stream.rs`) carry: `created`, `usage` and the `planex` extension.

use crate::views::CostView;
use planex_store::TaskRecord;
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch (OpenAI's `created`).
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A task's token usage in OpenAI's `usage` shape.
pub(super) fn usage_of(record: &TaskRecord) -> Value {
    let total = record.cost().total.usage;
    json!({
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "total_tokens": total.total(),
        "prompt_tokens_details": {"cached_tokens": total.cached_tokens},
    })
}

/// The `planex` extension of an answer: task id, status, cost breakdown and missing steps.
pub(super) fn planex_extra(record: &TaskRecord, failed_steps: &[Value]) -> Value {
    json!({
        "task_id": record.task_id,
        "status": record.status,
        "cost": CostView::new(&record.cost(), record.cost_center.as_deref().unwrap_or("default")),
        "failed_steps": failed_steps,
    })
}
