//! The harness's API served on a real loopback socket, driven with reqwest: for tests that must
//! go over HTTP end to end (the router, the extractors, the server's own error mapping).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use super::{Harness, Options};
use axum::http::StatusCode;
use serde_json::Value;

/// The harness's API served on a loopback port.
pub struct Served {
    /// The harness behind the socket.
    pub h: Harness,
    base: String,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    pub async fn start(options: Options) -> Served {
        let h = Harness::start(options).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(planex_server::serve(
            listener,
            h.state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Served {
            h,
            base,
            client: reqwest::Client::new(),
            stop,
            server,
        }
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        serde_json::from_str(&self.get_text(path).await).unwrap()
    }

    /// The body of `GET path` as text.
    pub async fn get_text(&self, path: &str) -> String {
        let url = format!("{}{path}", self.base);
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The planner simulator's `/sim/stats`, read over HTTP.
    pub async fn planner_stats(&self) -> Value {
        let url = format!(
            "{}/sim/stats",
            self.h.planner_sim.base_url().trim_end_matches("/v1")
        );
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Nothing recorded or booked: no task left planning, no reservation held, no spend.
    pub async fn assert_nothing_recorded_or_billed(&self, what: &str) {
        let planning = self
            .h
            .engine
            .store()
            .planning_tasks(u64::MAX, 100)
            .await
            .unwrap();
        assert!(planning.is_empty(), "{what}: tasks recorded: {planning:?}");
        let guard = self.h.engine.budget().unwrap();
        let held = guard.ledger().held().await.unwrap();
        assert!(held.is_empty(), "{what}: reservations held: {held:?}");
        let spend = self.get("/v1/spend").await;
        assert_eq!(spend["total"]["spent_usd"], "0", "{what}: {spend}");
        assert_eq!(spend["total"]["reserved_usd"], "0", "{what}: {spend}");
    }

    /// The `HOST:PORT` the API listens on.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
        self.h.stop().await;
    }
}
