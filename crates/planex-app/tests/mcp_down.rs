//! An MCP server that dies and cannot be restarted makes its tools unavailable: a client plan
//! that needs one is refused at submission with the reason (`EngineError::ToolUnavailable`, HTTP
//! 503), and the planner is not offered them, so a planned task runs with the other tools. The
//! server is a real one written with the official Python SDK, over stdio; the tiers are the
//! built-in simulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_app::{App, Config, Workers};
use planex_engine::{EngineError, TaskRequest};
use planex_store::{StepState, TaskStatus};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn plan(tool: &str, args: serde_json::Value) -> serde_json::Value {
    json!({"steps": [{"step_id": 1, "tool_name": tool, "args": args, "depends_on": []}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_of_a_server_that_is_down_are_refused_or_not_offered() {
    let dir = planex_testkit::temp_dir::fresh("planex-mcp-down").unwrap();
    let refuse = dir.join("refuse");
    let python = planex_testkit::python::mcp_server_tools().unwrap();
    let script = planex_testkit::python::script("mcp_server.py");
    let config = format!(
        "{}\n[[mcp_servers]]\nname = \"py\"\ncommand = {}\nargs = {}\nenv = {{ PLANEX_TEST_MCP_REFUSE_FILE = {} }}\ntimeout_secs = 20\n",
        planex_app::DEFAULT_CONFIG,
        json!(python.display().to_string()),
        json!([script.display().to_string(), "stdio"]),
        json!(refuse.display().to_string()),
    );
    let app = App::from_config(Config::from_toml(&config).unwrap(), Workers::EveryTier)
        .await
        .unwrap();
    let engine = app.engine().clone();
    let up = engine
        .run(
            TaskRequest {
                plan: Some(plan("py__lookup", json!({"topic": "H200"}))),
                ..TaskRequest::default()
            },
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(up.status, TaskStatus::Complete, "{:?}", up.error);

    // From now on the server exits as soon as it starts; this call kills the running one.
    std::fs::write(&refuse, "no").unwrap();
    let crashed = engine
        .run(
            TaskRequest {
                plan: Some(plan("py__crash", json!({"note": "now"}))),
                ..TaskRequest::default()
            },
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        crashed.steps.values().next().unwrap().state,
        StepState::Failed
    );

    let refused = engine
        .submit(TaskRequest {
            plan: Some(plan("py__lookup", json!({"topic": "L40S"}))),
            ..TaskRequest::default()
        })
        .await
        .unwrap_err();
    let EngineError::ToolUnavailable { tool, server, .. } = &refused else {
        panic!("{refused}");
    };
    assert_eq!((tool.as_str(), server.as_str()), ("py__lookup", "py"));
    assert!(refused.to_string().contains("retry later"), "{refused}");

    let planned = engine
        .run(
            TaskRequest {
                task: "Compare H200 and L40S GPU clouds".into(),
                ..TaskRequest::default()
            },
            WAIT,
        )
        .await
        .unwrap();
    assert!(
        planned.status == TaskStatus::Complete || planned.status == TaskStatus::Partial,
        "{:?}",
        planned.error
    );
    assert!(
        planned
            .steps
            .values()
            .all(|s| !s.spec.step.tool_name.starts_with("py__")),
        "the planner was not offered the down server's tools"
    );
    app.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
