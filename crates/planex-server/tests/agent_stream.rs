//! The agent endpoint streams the answer as the synthesis call writes it: with `stream: true`
//! the synthesis step's text arrives as several `content` chunks while the step runs (before its
//! completion is reported), and they add up to exactly the task's answer. Model calls go over
//! real HTTP to simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_streams_as_the_synthesis_writes_it() {
    let h = Harness::start(Options {
        synthesis: true,
        // Paced, so the answer is written as it is generated (unpaced it is one write).
        planner_tps: Some(5_000.0),
        ..Options::default()
    })
    .await;
    let body = json!({"model": "planex", "stream": true, "messages": [
        {"role": "user", "content": "Compare two GPU clouds for a 70B model"}]});
    let (status, _, events) = h
        .call(Method::POST, "/v1/chat/completions", Some(body), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let chunks: Vec<Value> = events
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content_at: Vec<usize> = chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .map(|(i, _)| i)
        .collect();
    assert!(
        content_at.len() > 1,
        "the answer came in several chunks: {chunks:?}"
    );
    let synthesis_done = chunks
        .iter()
        .rposition(|c| c["planex"]["event"]["type"] == "step_completed")
        .expect("the synthesis step's completion is reported");
    assert!(
        content_at[0] < synthesis_done,
        "text arrived while the synthesis ran"
    );
    let streamed: String = content_at
        .iter()
        .map(|&i| {
            chunks[i]["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
        })
        .collect();
    let id = chunks
        .iter()
        .find_map(|c| c["planex"]["task_id"].as_str())
        .expect("the finish chunk names the task");
    let (_, _, task) = h
        .call(Method::GET, &format!("/v1/tasks/{id}"), None, &[])
        .await;
    assert_eq!(task["status"], "complete", "{task}");
    assert_eq!(streamed, task["answer"].as_str().unwrap());
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    h.stop().await;
}
