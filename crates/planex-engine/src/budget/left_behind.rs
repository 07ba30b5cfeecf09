//! What an earlier execution of a step spent and never recorded (docs/ARCHITECTURE.md §5): a
//! worker that dies, or is stopped, before recording a step's outcome leaves its model calls in
//! the task's reservation only. The next execution of the step reads them (`SpendLedger::draws`)
//! and records them with its own calls, so the task's cost is what its tenant was charged. The
//! planner calls of a task whose API replica stopped while planning it are recorded the same way
//! when orphan recovery fails the task.
//!
//! Key decisions: a step's calls are named `STEP/CLAIM/N/TIER/K`, where `CLAIM` is the delivery
//! and a tag of the lease token, unique per claim (a step released at shutdown is claimed again
//! with the same delivery number, and its calls must not collide with the earlier claim's). The
//! draws are read, not removed: if this execution dies too, the next one reads them again, and
//! only one execution's outcome is ever applied (a later one is a duplicate, dropped whole), so
//! no call is recorded twice.

use crate::synthesis::SYNTHESIS_TOOL;
use crate::{BudgetGuard, Models};
use planex_core::{CallMark, CallRecord, Decimal, Stage, StepId, TaskId, Usage};
use planex_store::{Draw, StepLease};

/// The `CLAIM` part of a step's call ids: its delivery and a hash of the lease token (FNV-1a), so
/// two claims of one step never share call ids.
pub fn claim_tag(lease: &StepLease) -> String {
    let hash = lease.token.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{}-{hash:08x}", lease.delivery)
}

impl BudgetGuard {
    /// The calls earlier claims of `lease`'s step left in its task's reservation, as call records:
    /// an open draw (a call cut off by a crash) is `interrupted`, billed at its worst case, whose
    /// usage is the tokens that worst case pays for; a settled one (a call that completed) is
    /// `abandoned`, billed at its real usage. Empty for a step no earlier claim started.
    pub async fn calls_left_behind(&self, lease: &StepLease, models: &Models) -> Vec<CallRecord> {
        if !lease.resumed {
            return Vec::new();
        }
        let step = lease.spec.step.step_id;
        let own = format!("{step}/{}/", claim_tag(lease));
        let draws = match self
            .ledger()
            .draws(&lease.task_id.0, &format!("{step}/"))
            .await
        {
            Ok(draws) => draws,
            Err(error) => {
                tracing::error!(task = %lease.task_id, %step, error = %planex_core::cause::ErrorChain(&error),
                    "could not read the calls an earlier execution of this step left; they stay charged in the ledger but are not in the task's cost");
                return Vec::new();
            }
        };
        let stage = if lease.spec.step.tool_name == SYNTHESIS_TOOL {
            Stage::Synthesis
        } else {
            Stage::Step
        };
        draws
            .into_iter()
            .filter(|draw| !draw.call.starts_with(&own))
            .map(|draw| {
                let step_id = Some(lease.spec.step.step_id);
                let tool = (stage == Stage::Step).then(|| lease.spec.step.tool_name.clone());
                let record = left_behind(&draw, models, stage, tool, step_id);
                tracing::warn!(task = %lease.task_id, %step, call = %draw.call, cost = %draw.amount_usd,
                    mark = ?record.mark, "a call of an execution that recorded no outcome is billed with this one");
                record
            })
            .collect()
    }
}

impl BudgetGuard {
    /// The planner calls (`plan/…` draws) of a task whose API replica stopped while planning it,
    /// as call records (`abandoned` when the call completed, `interrupted` at its worst case when
    /// it was cut off), so the task's cost keeps what its tenant was charged. Empty when the
    /// ledger cannot say (logged).
    pub async fn planner_calls_left_behind(
        &self,
        task_id: &TaskId,
        models: &Models,
    ) -> Vec<CallRecord> {
        match self.ledger().draws(&task_id.0, "plan/").await {
            Ok(draws) => draws
                .iter()
                .map(|draw| left_behind(draw, models, Stage::Plan, None, None))
                .collect(),
            Err(error) => {
                tracing::error!(task = %task_id, error = %planex_core::cause::ErrorChain(&error),
                    "could not read the planner calls of an abandoned task; they stay charged in the ledger but are not in the task's cost");
                Vec::new()
            }
        }
    }
}

/// One draw an earlier execution left, as a call record of `stage` (with the step's tool and id
/// for a step's calls).
fn left_behind(
    draw: &Draw,
    models: &Models,
    stage: Stage,
    tool: Option<String>,
    step_id: Option<StepId>,
) -> CallRecord {
    let tier = draw.call.split('/').nth(3).unwrap_or_default().to_owned();
    let model = models.get(&tier).ok();
    let (usage, mark) = match &draw.usage {
        Some(usage) => (*usage, CallMark::Abandoned),
        None => {
            let completion_tokens = model.map_or(0, |m| {
                let (_, output) = m.price().per_million();
                if output <= Decimal::ZERO {
                    return 0;
                }
                (draw.amount_usd * Decimal::from(1_000_000u32) / output)
                    .ceil()
                    .try_into()
                    .unwrap_or(0)
            });
            let usage = Usage {
                prompt_tokens: 0,
                completion_tokens,
                cached_tokens: 0,
            };
            (usage, CallMark::Interrupted)
        }
    };
    CallRecord {
        stage,
        model: model.map(|m| m.model_name().to_owned()).unwrap_or_default(),
        tier,
        tool,
        step_id,
        usage,
        cost_usd: draw.amount_usd,
        mark: Some(mark),
        round: None,
        latency_ms: None,
        response_id: draw.response_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lease(token: &str, delivery: u32) -> StepLease {
        StepLease {
            task_id: planex_core::TaskId("t".into()),
            task_text: String::new(),
            spec: serde_json::from_value(serde_json::json!({
                "step_id": 1, "tool_name": "summarize", "args": {}, "depends_on": [],
                "tier": "executor", "stage": "step"
            }))
            .unwrap(),
            dep_results: Default::default(),
            token: token.into(),
            delivery,
            resumed: delivery > 1,
            trace_parent: None,
        }
    }

    #[test]
    fn claim_tags_differ_per_claim_and_hold_no_separator() {
        let first = claim_tag(&lease("1:1700-0:1:t", 1));
        let released_again = claim_tag(&lease("1:1700-1:1:t", 1));
        assert_ne!(first, released_again);
        assert!(first.starts_with("1-") && !first.contains('/'), "{first}");
        assert_eq!(first, claim_tag(&lease("1:1700-0:1:t", 1)));
    }
}
