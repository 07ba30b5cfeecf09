//! Function calling over real HTTP against the simulator: offered `tools`, the model's
//! `tool_calls` come back the same whether the tier streams or not (assembled from the stream's
//! pieces), a conversation carrying the calls and their results is accepted, and
//! `tool_choice: "none"` gets text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start_sim, tier};
use planex_llm::{CallContext, ChatMessage, ChatModel, ChatRequest};
use serde_json::json;

fn tools() -> Vec<serde_json::Value> {
    vec![
        json!({"type": "function", "function": {"name": "read_file", "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}),
    ]
}

#[tokio::test]
async fn tool_calls_round_trip_streamed_and_whole() {
    let sim = start_sim().await;
    let prompt = r#"Read both #sim:call=read_file{"path":"a.txt"}|read_file{"path":"b.txt"}"#;
    let request = ChatRequest::new(vec![ChatMessage::user(prompt)]).with_tools(tools(), None);
    let mut answers = Vec::new();
    for stream in [true, false] {
        let outcome = tier(&[sim.base_url()], stream, 0)
            .chat(&request, &CallContext::default())
            .await
            .unwrap();
        assert!(outcome.usage.completion_tokens > 0, "stream={stream}");
        answers.push(outcome);
    }
    let (streamed, whole) = (&answers[0], &answers[1]);
    assert_eq!(streamed.tool_calls.len(), 2, "{streamed:?}");
    let arguments: Vec<&str> = streamed
        .tool_calls
        .iter()
        .map(|c| c.arguments.as_str())
        .collect();
    assert_eq!(arguments, [r#"{"path":"a.txt"}"#, r#"{"path":"b.txt"}"#]);
    assert!(streamed.tool_calls.iter().all(|c| c.name == "read_file"));
    let names_args = |o: &planex_llm::ChatOutcome| -> Vec<(String, String)> {
        o.tool_calls
            .iter()
            .map(|c| (c.name.clone(), c.arguments.clone()))
            .collect()
    };
    assert_eq!(names_args(streamed), names_args(whole));
    assert_eq!(streamed.usage, whole.usage);

    // The calls and their results sent back: the script is used up, so the answer is text.
    let mut messages = request.messages.clone();
    messages.push(ChatMessage::assistant_calls("", whole.tool_calls.clone()));
    for call in &whole.tool_calls {
        messages.push(ChatMessage::tool_result(&call.id, "file text"));
    }
    let follow_up = ChatRequest::new(messages).with_tools(tools(), None);
    for stream in [true, false] {
        let outcome = tier(&[sim.base_url()], stream, 0)
            .chat(&follow_up, &CallContext::default())
            .await
            .unwrap();
        assert!(outcome.tool_calls.is_empty(), "{outcome:?}");
        assert!(
            outcome.content.starts_with("[simulated]"),
            "{}",
            outcome.content
        );
    }
    let refused = request.with_tools(tools(), Some(json!("none")));
    let outcome = tier(&[sim.base_url()], true, 0)
        .chat(&refused, &CallContext::default())
        .await
        .unwrap();
    assert!(outcome.tool_calls.is_empty());
    sim.shutdown().await;
}
