//! Function calling in the executor against real processes' protocols: the simulator over
//! loopback HTTP scripts the model's tool calls (`#sim:call=` markers), an `http` tool answers
//! from a tiny server on 127.0.0.1. Wrong calls (a tool the step may not use, arguments that break
//! the tool's schema) are answered with the error and the loop goes on; `max_tool_rounds` caps the
//! rounds; tool results reach the model (a `#sim:` marker in a result changes its next answer);
//! a step whose tools ran is not escalated when its model then fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::{CallRecord, Catalog, HttpTool, LlmTool, Stage, StepId, ToolKind, ToolSpec};
use planex_engine::Executor;
use planex_engine::mcp::McpServers;
use planex_llm::{CallContext, RetryPolicy};
use planex_testkit::sim_pair::{SimPair, SimPairOptions};
use serde_json::json;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A server on 127.0.0.1 answering `/lookup?q=Q` with `facts about Q` plus, for `q=short`, a
/// `#sim:tokens=3` marker and, for `q=boom`, a `#sim:fail=500` marker. Every path it is asked for
/// is sent on the channel.
async fn lookup_server() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 4096];
                let n = socket.read(&mut head).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&head[..n]).into_owned();
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let query = path.split("q=").nth(1).unwrap_or_default().to_owned();
                let _ = tx.send(path);
                let marker = match query.as_str() {
                    "short" => " #sim:tokens=3",
                    "boom" => " #sim:fail=500",
                    _ => "",
                };
                let body = format!("facts about {query}{marker}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, rx)
}

fn tools(port: u16, max_tool_rounds: u32) -> Vec<ToolSpec> {
    let mut llm = LlmTool::new("{question}", 64);
    llm.uses = vec!["lookup".into()];
    llm.max_tool_rounds = max_tool_rounds;
    vec![
        ToolSpec {
            name: "lookup".into(),
            description: "Look a topic up".into(),
            input_schema: json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}),
            output_schema: None,
            tier: "tools".into(),
            kind: ToolKind::Http(HttpTool {
                method: "GET".into(),
                base_url: format!("http://127.0.0.1:{port}"),
                path: "/lookup?q={q}".into(),
                headers: Default::default(),
                body: None,
                timeout_ms: 2_000,
                max_response_bytes: 4096,
                allow_internal: true,
            }),
        },
        ToolSpec {
            name: "research".into(),
            description: "Answer using lookups".into(),
            input_schema: json!({"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}),
            output_schema: None,
            tier: "executor".into(),
            kind: ToolKind::Llm(llm),
        },
    ]
}

fn executor(pair: &SimPair, tools: Vec<ToolSpec>) -> Executor {
    Executor {
        catalog: Catalog::new(tools).unwrap().into(),
        models: pair.models(),
        http: planex_engine::http_guard::HttpClients::new().unwrap(),
        http_retry: RetryPolicy::default(),
        synthesis_input_chars: 4096,
        budget: None,
        mcp: Arc::new(McpServers::none()),
    }
}

async fn research(executor: &Executor, question: &str) -> planex_engine::ToolCallOutcome {
    let args = json!({"question": question});
    executor
        .call_tool(
            "research",
            args.as_object().unwrap(),
            StepId(1),
            &CallContext::default(),
        )
        .await
}

/// (stage, tool, round) of each record.
fn shape(calls: &[CallRecord]) -> Vec<(Stage, String, u32)> {
    calls
        .iter()
        .map(|c| {
            (
                c.stage,
                c.tool.clone().unwrap_or_default(),
                c.round.unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_calls_are_answered_with_their_error_and_results_reach_the_model() {
    let pair = SimPair::start(SimPairOptions::default()).await;
    let (port, mut asked) = lookup_server().await;
    let executor = executor(&pair, tools(port, 3));
    let outcome = research(
        &executor,
        r#"Find out #sim:call=nosuch{} #sim:call=lookup{"q":7} #sim:call=lookup{"q":"short"}"#,
    )
    .await;
    let answer = outcome.result.unwrap();
    let step = |round| (Stage::Step, "research".to_owned(), round);
    assert_eq!(
        shape(&outcome.calls),
        [
            step(1),
            step(2),
            step(3),
            (Stage::ToolCall, "lookup".to_owned(), 3),
            step(4),
        ],
        "the unknown tool and the bad arguments ran nothing: {:?}",
        outcome.calls
    );
    assert_eq!(asked.recv().await.unwrap(), "/lookup?q=short");
    assert!(asked.try_recv().is_err(), "the lookup ran once");
    // The result's marker reached the model's last round: a 3-token answer instead of 64.
    let last = outcome.calls.last().unwrap();
    assert!(last.usage.completion_tokens < 10, "{last:?}: {answer}");
    let tool_call = &outcome.calls[3];
    assert_eq!(tool_call.cost_usd, planex_core::Decimal::ZERO);
    assert_eq!(tool_call.tier, "tools");
    assert!(outcome.calls.iter().all(|c| c.latency_ms.is_some()));
    // Each round's prompt carries the conversation so far.
    let prompts: Vec<u64> = outcome
        .calls
        .iter()
        .filter(|c| c.stage == Stage::Step)
        .map(|c| c.usage.prompt_tokens)
        .collect();
    assert!(prompts.windows(2).all(|w| w[0] < w[1]), "{prompts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tool_rounds_makes_the_model_answer() {
    let pair = SimPair::start(SimPairOptions::default()).await;
    let (port, mut asked) = lookup_server().await;
    let executor = executor(&pair, tools(port, 1));
    let outcome = research(
        &executor,
        r#"Find out #sim:call=lookup{"q":"a"} #sim:call=lookup{"q":"b"}"#,
    )
    .await;
    let answer = outcome.result.unwrap();
    assert!(
        answer.as_str().unwrap().starts_with("[simulated]"),
        "{answer}"
    );
    assert_eq!(
        shape(&outcome.calls),
        [
            (Stage::Step, "research".to_owned(), 1),
            (Stage::ToolCall, "lookup".to_owned(), 1),
            (Stage::Step, "research".to_owned(), 2),
        ]
    );
    assert_eq!(asked.recv().await.unwrap(), "/lookup?q=a");
    assert!(
        asked.try_recv().is_err(),
        "the second round of calls was never made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_tools_ran_is_not_escalated() {
    let pair = SimPair::start(SimPairOptions {
        executor_escalates: true,
        retries: 0,
        ..SimPairOptions::default()
    })
    .await;
    let (port, _asked) = lookup_server().await;
    let executor = executor(&pair, tools(port, 3));
    // The lookup's result makes the simulator fail the next round with a 500.
    let outcome = research(&executor, r#"Find out #sim:call=lookup{"q":"boom"}"#).await;
    let error = outcome.result.unwrap_err();
    assert!(
        error.contains("not escalated") && error.contains("would run them again"),
        "{error}"
    );
    assert_eq!(
        pair.planner_sim.stats().requests_total,
        0,
        "nothing went to the escalation tier"
    );
}
