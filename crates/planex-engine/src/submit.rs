//! Task submission: validate the request, plan (with one re-plan), and hand the steps to the store.
//!
//! Key decision: `submit` returns once the task is running (or has failed planning); the outcome is
//! read from the store by id, so the API can answer `202 Accepted` and any replica can serve the task.

use crate::{Engine, EngineError, TaskRequest, plan_task};
use planex_core::{PlanLimits, TaskId};
use planex_llm::CallContext;
use planex_store::{NewTask, TaskRecord, TaskStatus};
use std::sync::Arc;
use std::time::Duration;

impl Engine {
    /// Records the task, plans it and hands its steps to the store. Returns once the task is
    /// running (or has failed planning); the outcome is read from the store.
    pub async fn submit(&self, request: TaskRequest) -> Result<TaskId, EngineError> {
        let task = request.task.trim();
        if task.is_empty() {
            return Err(EngineError::InvalidRequest("the task text is empty".into()));
        }
        let max_steps = request.max_subtasks.unwrap_or(self.settings.max_subtasks);
        if max_steps == 0 || max_steps > self.settings.max_subtasks_limit {
            return Err(EngineError::InvalidRequest(format!(
                "max_subtasks must be between 1 and {}, got {max_steps}",
                self.settings.max_subtasks_limit
            )));
        }
        let catalog = match &request.tools {
            Some(names) => Arc::new(self.executor.catalog.subset(names)?),
            None => self.executor.catalog.clone(),
        };
        let task_id = request.task_id.clone().unwrap_or_else(TaskId::new_random);
        self.store
            .create_task(NewTask {
                task_id: task_id.clone(),
                task: task.to_owned(),
                tenant: request.tenant.clone(),
                cost_center: request.cost_center.clone(),
            })
            .await?;
        let ctx = CallContext {
            request_id: request.request_id.clone(),
        };
        let planner = self.executor.models.get(&self.settings.planner_tier)?;
        let limits = PlanLimits { max_steps };
        match plan_task(
            planner.as_ref(),
            &catalog,
            task,
            limits,
            &self.settings.planner,
            &ctx,
        )
        .await
        {
            Ok(planned) => {
                metrics::histogram!("plan_replans").record(f64::from(planned.replans));
                let synthesis = request.synthesis.unwrap_or(self.settings.synthesis);
                let specs = self.step_specs(&planned.plan, synthesis);
                let plan_json = serde_json::to_value(&planned.plan).unwrap_or_default();
                self.store
                    .start_task(&task_id, plan_json, specs, planned.calls)
                    .await?;
            }
            Err(failed) => {
                tracing::warn!(task = %task_id, reason = %failed.reason, "planning failed");
                self.store
                    .finish_unplanned(&task_id, TaskStatus::Failed, failed.reason, failed.calls)
                    .await?;
            }
        }
        Ok(task_id)
    }

    /// Submits a task and waits for its final record (event driven) up to `timeout`.
    pub async fn run(
        &self,
        request: TaskRequest,
        timeout: Duration,
    ) -> Result<TaskRecord, EngineError> {
        let task_id = self.submit(request).await?;
        planex_store::wait_for_task(self.store.as_ref(), &task_id, timeout)
            .await?
            .ok_or(EngineError::Timeout(task_id))
    }
}
