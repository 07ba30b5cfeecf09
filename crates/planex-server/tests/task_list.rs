//! `GET /v1/tasks` through the router: a tenant lists only its own tasks, newest first, by status,
//! following `next_cursor` page by page; bad statuses, limits, cursors and unknown parameters are
//! 400s naming the parameter; `GET /v1/tasks/events` streams a tenant its own tasks' status changes
//! live, over a real socket. Model calls go over real HTTP to simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options, two_tenants};
use serde_json::{Value, json};

const ACME: [(&str, &str); 1] = [("authorization", "Bearer key-acme")];
const GLOBEX: [(&str, &str); 1] = [("authorization", "Bearer key-globex")];

async fn submit(h: &Harness, key: &[(&str, &str)], task: &str) -> String {
    let (status, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": task, "max_subtasks": 2})),
            key,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view["task_id"].as_str().unwrap().to_owned()
}

/// Every task id of a listing, following `next_cursor` from `query` (which ends with `&` or `?`).
async fn follow(h: &Harness, key: &[(&str, &str)], query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut uri = query.to_owned();
    for _ in 0..50 {
        let (status, _, page) = h.call(Method::GET, &uri, None, key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for task in page["tasks"].as_array().unwrap() {
            ids.push(task["task_id"].as_str().unwrap().to_owned());
        }
        match &page["next_cursor"] {
            Value::Null => return ids,
            Value::String(cursor) => uri = format!("{query}cursor={cursor}"),
            other => panic!("next_cursor is {other}"),
        }
    }
    panic!("the listing never ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_lists_its_own_tasks_newest_first_page_by_page() {
    let h = Harness::start(Options {
        keys: two_tenants(),
        ..Options::default()
    })
    .await;
    let mut acme = Vec::new();
    for i in 0..5 {
        acme.push(submit(&h, &ACME, &format!("Compare GPU clouds, variant {i}")).await);
    }
    let theirs = submit(&h, &GLOBEX, "Summarize the GPU market").await;

    let (status, _, page) = h.call(Method::GET, "/v1/tasks", None, &ACME).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page["next_cursor"].is_null(), "{page}");
    let listed: Vec<&str> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    let mut newest_first: Vec<&str> = acme.iter().map(String::as_str).collect();
    newest_first.reverse();
    assert_eq!(listed, newest_first, "acme's own tasks, newest first");
    let top = &page["tasks"][0];
    assert_eq!(top["task"], "Compare GPU clouds, variant 4");
    assert_eq!(top["status"], "complete");
    assert_eq!(top["cost_center"], "research");
    assert!(top["finished_at_ms"].as_u64().unwrap() >= top["created_at_ms"].as_u64().unwrap());

    let paged = follow(&h, &ACME, "/v1/tasks?limit=2&").await;
    assert_eq!(paged, newest_first, "pages of 2 cover the same tasks once");
    assert_eq!(follow(&h, &GLOBEX, "/v1/tasks?").await, vec![theirs]);
    assert_eq!(
        follow(&h, &ACME, "/v1/tasks?status=complete&limit=3&")
            .await
            .len(),
        5
    );
    assert!(
        follow(&h, &ACME, "/v1/tasks?status=running&")
            .await
            .is_empty()
    );

    for (query, param) in [
        ("/v1/tasks?status=done", None),
        ("/v1/tasks?limit=0", Some("limit")),
        ("/v1/tasks?limit=101", Some("limit")),
        ("/v1/tasks?cursor=not-a-cursor", Some("cursor")),
        ("/v1/tasks?page=2", None),
    ] {
        let (status, _, body) = h.call(Method::GET, query, None, &ACME).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request", "{body}");
        if let Some(param) = param {
            assert_eq!(body["error"]["param"], param, "{body}");
        }
    }
    let (status, _, body) = h
        .call(Method::GET, "/v1/tasks?status=done", None, &ACME)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("status"),
        "{body}"
    );
    assert_eq!(
        h.call(Method::GET, "/v1/tasks", None, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    h.stop().await;
}

/// One tenant's `GET /v1/tasks/events`, read over a real socket.
struct Changes {
    response: reqwest::Response,
    buffer: String,
}

impl Changes {
    async fn open(base: &str, key: &str) -> Changes {
        let response = reqwest::Client::new()
            .get(format!("{base}/v1/tasks/events"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{:?}",
            response.headers()
        );
        Changes {
            response,
            buffer: String::new(),
        }
    }

    /// The next event: its name and data.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_owned())
                };
                // Keep-alive comments have neither.
                if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                    return (event, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk =
                tokio::time::timeout(std::time::Duration::from_secs(30), self.response.chunk())
                    .await
                    .expect("an event within 30 s")
                    .unwrap()
                    .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The statuses of `task_id` until it is `last`, failing on a task of `foreign`.
    async fn until(&mut self, task_id: &str, last: &str, foreign: &[&str]) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let (event, data) = self.next().await;
            if event != "task" {
                assert_eq!(event, "resync", "{data}");
                continue;
            }
            let id = data["task_id"].as_str().unwrap();
            assert!(
                !foreign.contains(&id),
                "another tenant's task {id} in the stream"
            );
            if id == task_id {
                let status = data["status"].as_str().unwrap().to_owned();
                let done = status == last;
                seen.push(status);
                if done {
                    return seen;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_follows_its_own_task_changes_live() {
    let h = Harness::start(Options {
        keys: two_tenants(),
        ..Options::default()
    })
    .await;
    let served = h.serve_http().await;
    let base = format!("http://{}", served.addr);
    let mut acme = Changes::open(&base, "key-acme").await;
    let mut globex = Changes::open(&base, "key-globex").await;
    // Each stream opens with a resync: the moment to load the list.
    assert_eq!(acme.next().await.0, "resync");
    assert_eq!(globex.next().await.0, "resync");

    let ours = submit(&h, &ACME, "Compare GPU clouds").await;
    let theirs = submit(&h, &GLOBEX, "Summarize the GPU market").await;
    assert_eq!(
        acme.until(&ours, "complete", &[&theirs]).await,
        ["planning", "running", "complete"]
    );
    assert_eq!(
        globex.until(&theirs, "complete", &[&ours]).await,
        ["planning", "running", "complete"]
    );
    // A task acme submits later still reaches only acme's stream.
    let later = submit(&h, &ACME, "Compare GPU clouds again").await;
    assert_eq!(
        acme.until(&later, "complete", &[&theirs]).await,
        ["planning", "running", "complete"]
    );

    let anonymous = reqwest::get(format!("{base}/v1/tasks/events"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    drop((acme, globex));
    drop(served);
    h.stop().await;
}
