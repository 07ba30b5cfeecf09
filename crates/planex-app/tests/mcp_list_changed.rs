//! A server's tool list changes while planex runs: the server (a real one written with the
//! official Python SDK, over stdio) adds a tool and sends `notifications/tools/list_changed`; the
//! running app lists the server again and makes the new catalog current, so a client plan with
//! the new tool is accepted and runs, and `GET /v1/tools`' source (the executor's catalog) shows
//! it. Before the change the same plan is refused as naming an unknown tool. The tiers are the
//! built-in simulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_app::{App, Config, Workers};
use planex_engine::{EngineError, TaskRequest};
use planex_store::TaskStatus;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn plan(tool: &str, args: serde_json::Value) -> TaskRequest {
    TaskRequest {
        plan: Some(
            json!({"steps": [{"step_id": 1, "tool_name": tool, "args": args, "depends_on": []}]}),
        ),
        ..TaskRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_a_server_adds_while_planex_runs_can_be_planned_and_run() {
    let python = planex_testkit::python::mcp_server_tools().unwrap();
    let script = planex_testkit::python::script("mcp_server.py");
    let config = format!(
        "{}\n[[mcp_servers]]\nname = \"py\"\ncommand = {}\nargs = {}\ntimeout_secs = 20\n",
        planex_app::DEFAULT_CONFIG,
        json!(python.display().to_string()),
        json!([script.display().to_string(), "stdio"]),
    );
    let app = App::from_config(Config::from_toml(&config).unwrap(), Workers::EveryTier)
        .await
        .unwrap();
    let engine = app.engine().clone();
    let mut updates = app.tool_updates().expect("MCP servers are configured");
    assert!(!engine.executor().catalog.current().contains("py__extra"));
    let unknown = engine
        .submit(plan("py__extra", json!({"text": "hi"})))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, EngineError::InvalidPlan(_)),
        "an unknown tool is refused: {unknown}"
    );

    let grown = engine
        .run(plan("py__grow", json!({"note": "now"})), WAIT)
        .await
        .unwrap();
    assert_eq!(grown.status, TaskStatus::Complete, "{:?}", grown.error);
    tokio::time::timeout(WAIT, updates.wait_for(|n| *n >= 1))
        .await
        .expect("the new tool list was applied")
        .unwrap();
    let catalog = engine.executor().catalog.current();
    let extra = catalog
        .get("py__extra")
        .expect("the new tool is in the catalog");
    assert!(extra.description.contains("added at run time"), "{extra:?}");
    assert!(catalog.contains("summarize"), "[[tools]] stay");

    let ran = engine
        .run(plan("py__extra", json!({"text": "hi"})), WAIT)
        .await
        .unwrap();
    assert_eq!(ran.status, TaskStatus::Complete, "{:?}", ran.error);
    let result = ran.steps.values().next().unwrap().result.clone().unwrap();
    assert!(result.to_string().contains("extra: hi"), "{result}");
    app.stop().await;
}

/// One server that is down does not hold back another's tool-list change: the catalog keeps the
/// down server's tools as it listed them last (they are refused at submission while it is down)
/// and takes the live server's new tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_does_not_hold_back_another_servers_new_tools() {
    let dir = planex_testkit::temp_dir::fresh("planex-mcp-one-down").unwrap();
    let refuse = dir.join("refuse");
    let python = planex_testkit::python::mcp_server_tools().unwrap();
    let script = planex_testkit::python::script("mcp_server.py");
    let server = |name: &str, env: &str| {
        format!(
            "\n[[mcp_servers]]\nname = \"{name}\"\ncommand = {}\nargs = {}\n{env}timeout_secs = 20\n",
            json!(python.display().to_string()),
            json!([script.display().to_string(), "stdio"]),
        )
    };
    let config = format!(
        "{}{}{}",
        planex_app::DEFAULT_CONFIG,
        server("py", ""),
        server(
            "gone",
            &format!(
                "env = {{ PLANEX_TEST_MCP_REFUSE_FILE = {} }}\n",
                json!(refuse.display().to_string())
            )
        ),
    );
    let app = App::from_config(Config::from_toml(&config).unwrap(), Workers::EveryTier)
        .await
        .unwrap();
    let engine = app.engine().clone();
    let mut updates = app.tool_updates().expect("MCP servers are configured");
    // From now on "gone" exits as soon as it starts; this call kills the running one.
    std::fs::write(&refuse, "no").unwrap();
    let crashed = engine
        .run(plan("gone__crash", json!({"note": "now"})), WAIT)
        .await
        .unwrap();
    assert_ne!(crashed.status, TaskStatus::Complete);

    let grown = engine
        .run(plan("py__grow", json!({"note": "now"})), WAIT)
        .await
        .unwrap();
    assert_eq!(grown.status, TaskStatus::Complete, "{:?}", grown.error);
    tokio::time::timeout(WAIT, updates.wait_for(|n| *n >= 1))
        .await
        .expect("py's new tool list was applied although gone is down")
        .unwrap();
    let catalog = engine.executor().catalog.current();
    assert!(catalog.contains("py__extra"), "{:?}", catalog.names());
    assert!(
        catalog.contains("gone__lookup"),
        "the down server's tools stay, as listed last: {:?}",
        catalog.names()
    );
    app.stop().await;
}
