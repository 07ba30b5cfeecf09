//! Traces end to end, with real processes: `planex serve` and `planex worker`s (one per tier) on a
//! private Redis, a `planex sim` that records each call's `traceparent`, and a real OTLP/HTTP
//! receiver in the test (protobuf decoded with `opentelemetry-proto`; planex-testkit's `otlp`).
//! Export is on only through the standard `OTEL_*` variables. One task is one trace: the caller's
//! `traceparent` is the parent of the API's request span, the task's steps (run by other
//! processes, which read the task's context from the store) are children of its `invoke_agent`
//! span, every model call is a `chat` span whose context went to the model server as the
//! `traceparent` header; and nothing secret is in any exported byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, DONE, Options};
use planex_core::TaskId;
use planex_store::TaskStatus;
use planex_testkit::otlp::{OtlpReceiver, ReceivedSpan};
use sha2::Digest;
use std::collections::BTreeSet;

const API_KEY: &str = "sk-trace-test-5e1f0a9c-secret";
const UPSTREAM_TOKEN: &str = "upstream-trace-token-2c7b-secret";
const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";
const TASK_TEXT: &str = "Compare the trace-test-3f9 GPU clouds";

/// Both tiers send `UPSTREAM_TOKEN` to the model server; one API key for tenant `acme`.
fn with_keys(config: String) -> String {
    let mut config = config;
    for tier in ["[tiers.planner]\n", "[tiers.executor]\n"] {
        config = config.replace(
            tier,
            &format!("{tier}api_key_env = \"TRACE_TEST_UPSTREAM_TOKEN\"\n"),
        );
    }
    let digest = sha2::Sha256::digest(API_KEY.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    config.push_str(&format!(
        "\n[[api_keys]]\nkey_sha256 = \"{hex}\"\ntenant = \"acme\"\n"
    ));
    config
}

fn options(receiver: &OtlpReceiver) -> Options {
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url()),
        ("OTEL_SERVICE_NAME", "planex-{name}"),
        // Exported every 100 ms instead of every 5 s, so the test waits less.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("TRACE_TEST_UPSTREAM_TOKEN", UPSTREAM_TOKEN),
    ];
    Options {
        env: env
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        record_calls: true,
        config_edit: with_keys,
        ..Options::default()
    }
}

async fn submit(cluster: &Cluster, task: &str, traceparent: Option<&str>) -> TaskId {
    let mut request = cluster
        .http
        .post(format!("{}/v1/tasks", cluster.api))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({ "task": task }));
    if let Some(parent) = traceparent {
        request = request.header("traceparent", parent);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    TaskId(body["task_id"].as_str().unwrap().to_owned())
}

/// The task's `invoke_agent` span and `execute_tool` spans, once all `steps` of them arrived.
fn task_spans<'a>(
    spans: &'a [ReceivedSpan],
    task: &TaskId,
) -> (Option<&'a ReceivedSpan>, Vec<&'a ReceivedSpan>) {
    let of_task = |s: &&ReceivedSpan| s.attr("planex.task_id") == Some(task.0.as_str());
    let agent = spans
        .iter()
        .filter(of_task)
        .find(|s| s.name == "invoke_agent planex");
    let steps = spans
        .iter()
        .filter(of_task)
        .filter(|s| s.name.starts_with("execute_tool "))
        .collect();
    (agent, steps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_is_one_trace_from_the_caller_through_the_workers_to_the_model_server() {
    let receiver = OtlpReceiver::start().await;
    let cluster = tokio::task::block_in_place(|| Cluster::start(options(&receiver)));
    let _executor = tokio::task::block_in_place(|| cluster.worker("executor", "exec-1", 5.0, 2.0));
    let _planner = tokio::task::block_in_place(|| cluster.worker("planner", "plan-1", 5.0, 2.0));
    let store = cluster.store().await;

    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let task = submit(&cluster, TASK_TEXT, Some(&caller)).await;
    let record = planex_store::wait_for_task(&store, &task, DONE)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("task {task} did not finish; logs:\n{}", cluster.logs()));
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    // A second task, with no caller context, gets a trace of its own.
    let other = submit(&cluster, "Survey the vector databases", None).await;
    let other_record = planex_store::wait_for_task(&store, &other, DONE)
        .await
        .unwrap()
        .unwrap();

    let steps = record.steps.len();
    let calls = record.calls.len();
    let chats_in = |spans: &[ReceivedSpan], trace: &str| {
        spans
            .iter()
            .filter(|s| s.trace_id == trace && s.name == "chat sim-model")
            .count()
    };
    let spans = receiver
        .wait_until(DONE, "span of every step and call", |spans| {
            let (agent, task_steps) = task_spans(spans, &task);
            let (other_agent, other_steps) = task_spans(spans, &other);
            agent.is_some()
                && task_steps.len() >= steps
                && chats_in(spans, CALLER_TRACE) >= calls
                && other_agent.is_some()
                && other_steps.len() >= other_record.steps.len()
        })
        .await;

    // The caller's trace: its span is the parent of the API's request span.
    let request = spans
        .iter()
        .find(|s| s.name == "http_request" && s.parent_span_id == CALLER_SPAN)
        .expect("the API's request span is a child of the caller's span");
    assert_eq!(request.trace_id, CALLER_TRACE);
    assert_eq!(request.service, "planex-serve");
    let (agent, task_steps) = task_spans(&spans, &task);
    let agent = agent.unwrap();
    assert_eq!(agent.trace_id, CALLER_TRACE);
    assert_eq!(agent.parent_span_id, request.span_id);
    assert_eq!(agent.attr("gen_ai.operation.name"), Some("invoke_agent"));
    // Every step ran in a worker process, as a child of the task's span.
    let mut ran: BTreeSet<&str> = BTreeSet::new();
    for step in &task_steps {
        assert_eq!(step.trace_id, CALLER_TRACE, "{step:?}");
        assert_eq!(step.parent_span_id, agent.span_id, "{step:?}");
        assert!(step.service.starts_with("planex-"), "{step:?}");
        assert_ne!(step.service, "planex-serve", "{step:?}");
        assert_eq!(step.attr("gen_ai.operation.name"), Some("execute_tool"));
        ran.insert(step.attr("planex.step_id").unwrap());
    }
    assert_eq!(ran.len(), steps, "one execute_tool span per step");
    assert!(task_steps.iter().any(|s| s.service == "planex-exec-1"));
    assert!(
        task_steps.iter().any(|s| s.service == "planex-plan-1"),
        "synthesis"
    );
    // Every model call is a chat span of the trace, with GenAI attributes.
    let chats: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == CALLER_TRACE && s.name == "chat sim-model")
        .collect();
    assert_eq!(chats.len(), calls, "one chat span per priced call");
    for chat in &chats {
        assert_eq!(chat.attr("gen_ai.operation.name"), Some("chat"));
        assert_eq!(chat.attr("gen_ai.request.model"), Some("sim-model"));
        assert!(
            chat.attr("gen_ai.usage.input_tokens")
                .is_some_and(|t| t.parse::<u64>().unwrap() > 0)
        );
    }
    // The model server was sent each call's context: same trace, the chat span as parent.
    let chat_ids: BTreeSet<&str> = chats.iter().map(|c| c.span_id.as_str()).collect();
    let ledger: serde_json::Value = cluster
        .http
        .get(format!(
            "{}/sim/calls",
            cluster.sim_url.trim_end_matches("/v1")
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent: Vec<&str> = ledger["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["traceparent"].as_str())
        .filter(|t| t.contains(CALLER_TRACE))
        .collect();
    assert_eq!(sent.len(), calls, "{ledger}");
    for header in sent {
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4, "{header}");
        assert!(chat_ids.contains(parts[2]), "{header}: not a chat span");
    }
    // The other task is one trace too, and not the caller's.
    let (other_agent, other_steps) = task_spans(&spans, &other);
    let other_trace = &other_agent.unwrap().trace_id;
    assert_ne!(other_trace, CALLER_TRACE);
    assert!(other_steps.iter().all(|s| &s.trace_id == other_trace));

    // Nothing secret left any process: no API key, no model-server token, no prompt text.
    let raw = receiver.raw();
    let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
    for secret in [API_KEY, UPSTREAM_TOKEN, TASK_TEXT] {
        assert!(!contains(secret), "{secret:?} was exported");
    }
}
