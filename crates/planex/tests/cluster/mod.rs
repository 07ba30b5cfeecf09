//! A planex deployment made of real processes for the distributed tests: a private
//! `redis-server`, a `planex sim` standing in for both model pools, one `planex serve` and any
//! number of `planex worker` processes, all on 127.0.0.1.
//!
//! Readiness is read from each process's own stdout line (never a sleep); every process is killed
//! when its handle drops, so a failing test leaves nothing running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use futures::StreamExt;
use planex_core::TaskId;
use planex_store::{EventKind, EventStream, RedisStore};
use planex_testkit::process::{OutputLines, first_url};
use planex_testkit::redis::RedisServer;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const START: Duration = Duration::from_secs(60);

/// How long a test waits for its tasks (and their events) to finish.
pub const DONE: Duration = Duration::from_secs(120);

/// Reads events until one matches, within `DONE`.
pub async fn until(
    events: &mut EventStream,
    what: &str,
    matches: impl Fn(&EventKind) -> bool,
) -> EventKind {
    loop {
        let event = tokio::time::timeout(DONE, events.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {DONE:?}"))
            .unwrap_or_else(|| panic!("the event stream ended before {what}"));
        if matches(&event.kind) {
            return event.kind;
        }
    }
}

/// A child process whose stdout lines arrive on a channel; stderr goes to `DIR/NAME.log`.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: OutputLines,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str], dir: &Path) -> Proc {
        Proc::spawn_with_env(name, args, dir, &[])
    }

    /// `spawn` with more environment variables.
    pub fn spawn_with_env(name: &str, args: &[&str], dir: &Path, env: &[(String, String)]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_planex"));
        // The machine's own OpenTelemetry settings stay out: only `env` turns export on.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("OTEL_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(args)
            .env_remove("PLANEX_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let lines = OutputLines::read(child.stdout.take().unwrap());
        Proc {
            name: name.to_owned(),
            child,
            lines,
            log,
        }
    }

    /// The next stdout line containing `needle`, within `timeout`.
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> String {
        self.lines.wait_for(needle, timeout).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; its log: {}\n{}",
                self.name,
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        })
    }

    /// SIGKILL: the process dies at once, holding whatever it held.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: a graceful stop.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (after it said so on stdout) and returns whether it succeeded.
    pub fn exit_success(&mut self) -> bool {
        self.child.wait().unwrap().success()
    }

    /// Waits for the process to exit and returns its exit code (`None`: killed by a signal).
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }

    /// What the process wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// How to start a cluster.
pub struct Options {
    /// Redis writes every command to an append-only file (so a restart keeps the data).
    pub appendonly: bool,
    /// The simulator's time to first token: how long every model call takes.
    pub ttft_ms: u64,
    /// The simulator's output rate (tokens per second; `None`: unpaced, each answer in one
    /// write).
    pub tps: Option<f64>,
    /// JSONL pinning the planner's answers per task text.
    pub workload: String,
    /// Deliveries before a step is dead-lettered as poison.
    pub max_deliveries: u32,
    /// More environment variables for `planex serve` and the workers (not the simulator).
    /// `{name}` in a value becomes the process's name (`serve`, or the worker's id).
    pub env: Vec<(String, String)>,
    /// The simulator keeps its call ledger (`--record-calls`, `GET /sim/calls`).
    pub record_calls: bool,
    /// Rewrites the generated `planex.toml` (API keys, tier keys): identity by default.
    pub config_edit: fn(String) -> String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            appendonly: false,
            ttft_ms: 50,
            tps: None,
            workload: String::new(),
            max_deliveries: 5,
            env: Vec::new(),
            record_calls: false,
            config_edit: |config| config,
        }
    }
}

/// Redis, simulator, `planex serve` and the workers started so far.
pub struct Cluster {
    pub dir: PathBuf,
    pub redis: RedisServer,
    pub store_url: String,
    pub api: String,
    pub config: PathBuf,
    pub http: reqwest::Client,
    /// The simulator's OpenAI base URL (`…/v1`; its counters are at `…/sim/stats`).
    pub sim_url: String,
    env: Vec<(String, String)>,
    sim: Proc,
    serve: Proc,
}

/// `env` with `{name}` in its values replaced by `name`.
fn env_for(env: &[(String, String)], name: &str) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.clone(), v.replace("{name}", name)))
        .collect()
}

fn config(sim: &str, store_url: &str) -> String {
    planex_testkit::cluster_config::ClusterConfig {
        sim_url: sim,
        store_url,
        timeout_secs: 120,
        max_retries: 1,
        max_backoff_ms: 50,
        engine: "",
        tables: "",
    }
    .toml()
}

impl Cluster {
    pub fn start(options: Options) -> Cluster {
        let dir = planex_testkit::temp_dir::fresh("planex-distributed").unwrap();
        let redis =
            RedisServer::start_with(options.appendonly).expect("start a private redis-server");
        let store_url = format!(
            "{}/0?max_deliveries={}",
            redis.url(),
            options.max_deliveries
        );
        let workload = dir.join("workload.jsonl");
        std::fs::write(&workload, &options.workload).unwrap();
        let ttft = options.ttft_ms.to_string();
        let mut sim_args = vec![
            "sim",
            "--port",
            "0",
            "--model",
            "sim-model",
            "--ttft-ms",
            &ttft,
            "--max-concurrency",
            "256",
            "--hang-ms",
            "120000",
            "--workload",
            workload.to_str().unwrap(),
        ];
        if options.record_calls {
            sim_args.push("--record-calls");
        }
        let tps = options.tps.map(|tps| tps.to_string());
        if let Some(tps) = &tps {
            sim_args.extend(["--tokens-per-second", tps.as_str()]);
        }
        let sim = Proc::spawn("sim", &sim_args, &dir);
        let line = sim.wait_line("listening on", START);
        let sim_url = first_url(&line).unwrap().to_owned();
        let config = dir.join("planex.toml");
        std::fs::write(
            &config,
            (options.config_edit)(self::config(&sim_url, &store_url)),
        )
        .unwrap();
        let serve = Proc::spawn_with_env(
            "serve",
            &[
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            &dir,
            &env_for(&options.env, "serve"),
        );
        let line = serve.wait_line("listening on", START);
        assert!(line.contains("workers: none"), "{line}");
        let api = first_url(&line).unwrap().to_owned();
        Cluster {
            dir,
            redis,
            store_url,
            api,
            config,
            http: reqwest::Client::new(),
            sim_url,
            env: options.env,
            sim,
            serve,
        }
    }

    /// Starts `planex worker --tier TIER --id ID` and waits until it serves.
    pub fn worker(&self, tier: &str, id: &str, lease_secs: f64, drain_secs: f64) -> Proc {
        self.worker_with(tier, id, lease_secs, drain_secs, &[]).0
    }

    /// `worker` with extra arguments; also returns its readiness line.
    pub fn worker_with(
        &self,
        tier: &str,
        id: &str,
        lease_secs: f64,
        drain_secs: f64,
        extra: &[&str],
    ) -> (Proc, String) {
        let lease = lease_secs.to_string();
        let drain = drain_secs.to_string();
        let mut args = vec![
            "worker",
            "--tier",
            tier,
            "--id",
            id,
            "--concurrency",
            "8",
            "--config",
            self.config.to_str().unwrap(),
            "--lease-secs",
            &lease,
            "--drain-secs",
            &drain,
        ];
        args.extend_from_slice(extra);
        let worker = Proc::spawn_with_env(id, &args, &self.dir, &env_for(&self.env, id));
        let line = worker.wait_line("serving tier", START);
        (worker, line)
    }

    /// SIGTERMs `planex serve` (a graceful stop, as a rolling deploy sends it) and waits for it
    /// to exit; whether it exited 0.
    pub fn stop_api(&mut self) -> bool {
        self.serve.sigterm();
        self.serve.exit_success()
    }

    /// `POST /v1/tasks` without waiting: the task is accepted (202) and runs on the workers.
    pub async fn submit(&self, task: &str) -> TaskId {
        let response = self
            .http
            .post(format!("{}/v1/tasks", self.api))
            .json(&serde_json::json!({ "task": task }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 202, "{body}");
        TaskId(body["task_id"].as_str().unwrap().to_owned())
    }

    /// `GET {API}{path}` (no key), its body as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `submit` for an owned task text (for `join_all`).
    pub async fn submit_owned(&self, task: String) -> TaskId {
        self.submit(&task).await
    }

    /// The stderr logs of every process started so far, each under its name (for a failure's
    /// message: what the processes saw when a task did not finish).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut paths: Vec<_> = std::fs::read_dir(&self.dir)
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.retain(|p| p.extension().is_some_and(|e| e == "log"));
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.push_str(&format!("--- {} ---\n{text}\n", path.display()));
        }
        out
    }

    /// A store client of the test's own, on the same Redis.
    pub async fn store(&self) -> RedisStore {
        RedisStore::connect(&self.store_url).await.unwrap()
    }

    /// Returns once task `task`'s budget reservation holds an open draw of a plan step (a step's
    /// model call is in flight), within `timeout`. Woken by Redis keyspace notifications on the
    /// reservation (enabled on this test's private server), never by polling on a timer.
    pub async fn until_a_step_call_is_in_flight(
        &self,
        store: &RedisStore,
        task: &TaskId,
        timeout: Duration,
    ) {
        use futures::StreamExt;
        use planex_store::SpendLedger;
        let client = redis::Client::open(self.store_url.as_str()).unwrap();
        let mut admin = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg("Kh")
            .query_async(&mut admin)
            .await
            .unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub
            .psubscribe(format!("__keyspace@*__:*resv:{{{}}}", task.0))
            .await
            .unwrap();
        let mut changes = pubsub.on_message();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Checked once after subscribing (the draw may be older) and after every change.
            let draws = store.draws(&task.0, "").await.unwrap();
            if draws
                .iter()
                .any(|d| d.usage.is_none() && !d.call.starts_with("plan/"))
            {
                return;
            }
            tokio::time::timeout_at(deadline, changes.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("no step call of task {task} in flight within {timeout:?}: {draws:?}")
                })
                .expect("the keyspace subscription ended");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.serve.kill9();
        self.sim.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The counters of the simulator whose OpenAI base URL is `sim_url` (`…/v1`), from `…/sim/stats`.
pub async fn sim_stats(http: &reqwest::Client, sim_url: &str) -> serde_json::Value {
    let base = sim_url.trim_end_matches("/v1");
    http.get(format!("{base}/sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
