//! Endpoint pools against real simulators: least-outstanding spreading, passive cooldown and
//! recovery, active checks, model pinning and rolling TTFT.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{MODEL, ask};
use planex_core::Price;
use planex_llm::{
    CallContext, ChatModel, Endpoint, EndpointState, HealthEvent, HealthEventKind, HealthPolicy,
    LlmError, Tier, TierConfig, TierSet, TierSetError,
};
use planex_sim::{SimConfig, SimServer};
use planex_testkit::llm::fast_retry;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(10);

async fn sim_on(port: u16, model: &str, ttft_ms: u64, error_rate: f64) -> SimServer {
    SimServer::start(SimConfig {
        host: "127.0.0.1".into(),
        port,
        model: model.into(),
        ttft_ms,
        error_rate,
        output_tokens: 8,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// A loopback port with nothing listening (yet).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/v1")
}

fn tier_config(name: &str, model: &str, urls: &[String], health: HealthPolicy) -> TierConfig {
    let mut config = TierConfig::new(
        name,
        model,
        urls.iter().map(Endpoint::new).collect(),
        Price::free(),
    );
    config.retry = fast_retry(3);
    config.timeout = Duration::from_secs(10);
    config.health = health;
    config
}

fn tier(urls: &[String], health: HealthPolicy) -> Arc<Tier> {
    Arc::new(
        Tier::new(
            tier_config("small", MODEL, urls, health),
            planex_llm::default_client().unwrap(),
        )
        .unwrap(),
    )
}

/// Waits (event driven, bounded) for an event of `endpoint` matching `wanted`.
async fn wait_for(
    events: &mut broadcast::Receiver<HealthEvent>,
    endpoint: &str,
    wanted: impl Fn(&HealthEventKind) -> bool,
) -> HealthEventKind {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.unwrap();
            if event.endpoint == endpoint && wanted(&event.kind) {
                return event.kind;
            }
        }
    })
    .await
    .expect("the health event did not come")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_endpoint_gets_more_calls_than_the_slow_one() {
    let slow = sim_on(0, MODEL, 250, 0.0).await;
    let fast = sim_on(0, MODEL, 0, 0.0).await;
    let tier = tier(&[slow.base_url(), fast.base_url()], HealthPolicy::default());
    // Four clients, ten sequential calls each: a client whose call finished picks again, and the
    // slow endpoint still has calls outstanding, so the fast one wins those picks.
    let clients = (0..4).map(|c| {
        let tier = tier.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                tier.chat(
                    &ask(&format!("client {c} call {i}")),
                    &CallContext::default(),
                )
                .await
                .unwrap();
            }
        })
    });
    for client in futures::future::join_all(clients).await {
        client.unwrap();
    }
    let (s, f) = (slow.stats().requests_total, fast.stats().requests_total);
    assert_eq!(s + f, 40);
    assert!(
        f > 2 * s,
        "least outstanding should favour the fast endpoint: fast {f}, slow {s} (round robin gives 20/20)"
    );
    assert!(tier.endpoint_statuses().iter().all(|e| e.outstanding == 0));
    slow.shutdown().await;
    fast.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_cools_down_and_comes_back_when_its_server_does() {
    let down_port = free_port();
    let down = url(down_port);
    let good = sim_on(0, MODEL, 0, 0.0).await;
    let policy = HealthPolicy {
        allowed_fails: 2,
        cooldown: Duration::from_millis(300),
        interval: Duration::from_millis(50),
        ..HealthPolicy::default()
    };
    let tier = tier(&[down.clone(), good.base_url()], policy);
    let mut events = tier.health_events();
    // Each call tries the dead endpoint at most once, then succeeds on the good one.
    for i in 0..2 {
        let outcome = tier
            .chat(&ask(&format!("call {i}")), &CallContext::default())
            .await
            .unwrap();
        assert_eq!(outcome.endpoint, good.base_url());
    }
    let tripped = wait_for(&mut events, &down, |k| {
        matches!(k, HealthEventKind::CooledDown { .. })
    })
    .await;
    assert_eq!(
        tripped,
        HealthEventKind::CooledDown {
            consecutive_failures: 2,
            cooldown_ms: 300
        }
    );
    let status = &tier.endpoint_statuses()[0];
    assert!(matches!(status.state, EndpointState::CoolingDown { .. }));
    assert!(status.detail.as_deref().unwrap().contains("request failed"));
    // While it cools down no call even tries it: each takes exactly one attempt.
    for i in 0..5 {
        let outcome = tier
            .chat(&ask(&format!("cool {i}")), &CallContext::default())
            .await
            .unwrap();
        assert_eq!(outcome.attempts, 1);
    }
    // The server comes back; the periodic checker ends the cooldown and says so.
    let revived = sim_on(down_port, MODEL, 0, 0.0).await;
    let checks = TierSet::from_tiers([tier.clone()]).spawn_health_checks();
    wait_for(&mut events, &down, |k| *k == HealthEventKind::Recovered).await;
    for i in 0..6 {
        tier.chat(&ask(&format!("after {i}")), &CallContext::default())
            .await
            .unwrap();
    }
    assert!(
        revived.stats().requests_total >= 2,
        "the recovered endpoint takes calls again"
    );
    assert!(tier.endpoint_statuses()[0].state == EndpointState::Healthy);
    drop(checks);
    revived.shutdown().await;
    good.shutdown().await;
}

#[tokio::test]
async fn a_half_open_endpoint_that_fails_again_goes_straight_back_to_cooldown() {
    let bad = sim_on(0, MODEL, 0, 1.0).await;
    let good = sim_on(0, MODEL, 0, 0.0).await;
    let policy = HealthPolicy {
        allowed_fails: 3,
        cooldown: Duration::from_millis(100),
        interval: Duration::from_millis(20),
        ..HealthPolicy::default()
    };
    let tier = tier(&[bad.base_url(), good.base_url()], policy);
    let mut events = tier.health_events();
    for i in 0..3 {
        tier.chat(&ask(&format!("trip {i}")), &CallContext::default())
            .await
            .unwrap();
    }
    wait_for(&mut events, &bad.base_url(), |k| {
        matches!(k, HealthEventKind::CooledDown { .. })
    })
    .await;
    let failed_before = bad.stats().requests_total;
    assert_eq!(failed_before, 3);
    let checks = TierSet::from_tiers([tier.clone()]).spawn_health_checks();
    wait_for(&mut events, &bad.base_url(), |k| {
        *k == HealthEventKind::Recovered
    })
    .await;
    // Rotation means one of two calls tries the half-open endpoint; one failure re-trips it.
    for i in 0..2 {
        tier.chat(&ask(&format!("probe {i}")), &CallContext::default())
            .await
            .unwrap();
    }
    let again = wait_for(&mut events, &bad.base_url(), |k| {
        matches!(k, HealthEventKind::CooledDown { .. })
    })
    .await;
    assert!(matches!(
        again,
        HealthEventKind::CooledDown {
            consecutive_failures: 3,
            ..
        }
    ));
    assert_eq!(bad.stats().requests_total, failed_before + 1);
    drop(checks);
    bad.shutdown().await;
    good.shutdown().await;
}

#[tokio::test]
async fn active_checks_mark_unreachable_endpoints_and_see_them_return() {
    let port = free_port();
    let good = sim_on(0, MODEL, 0, 0.0).await;
    let tier = tier(&[url(port), good.base_url()], HealthPolicy::default());
    let statuses = tier.check_health().await;
    assert_eq!(statuses[0].state, EndpointState::Unreachable);
    assert_eq!(statuses[1].state, EndpointState::Healthy);
    for i in 0..3 {
        let outcome = tier
            .chat(&ask(&format!("q {i}")), &CallContext::default())
            .await
            .unwrap();
        assert_eq!(outcome.attempts, 1, "the unreachable endpoint is skipped");
    }
    let back = sim_on(port, MODEL, 0, 0.0).await;
    assert_eq!(tier.check_health().await[0].state, EndpointState::Healthy);
    back.shutdown().await;
    good.shutdown().await;
}

#[tokio::test]
async fn a_health_check_kind_probes_slash_health() {
    let sim = sim_on(0, MODEL, 0, 0.0).await;
    let policy = HealthPolicy {
        check: planex_llm::HealthCheckKind::Health,
        ..HealthPolicy::default()
    };
    let statuses = tier(&[sim.base_url()], policy).check_health().await;
    assert_eq!(statuses[0].state, EndpointState::Healthy);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_tier_whose_only_endpoint_serves_another_model_is_refused_at_start_up() {
    let sim = sim_on(0, "sim-model-2025-03", 0, 0.0).await;
    let client = planex_llm::default_client().unwrap();
    let set = TierSet::from_configs(
        vec![tier_config(
            "planner",
            "sim-model-2025-01",
            &[sim.base_url()],
            HealthPolicy::default(),
        )],
        &client,
    )
    .unwrap();
    let err = set.verify_endpoints().await.unwrap_err();
    let TierSetError::Tier(LlmError::NoUsableEndpoint { tier, detail }) = &err else {
        panic!("expected a refused tier, got {err}");
    };
    assert_eq!(tier, "planner");
    assert!(detail.contains("serves sim-model-2025-03"), "{detail}");
    assert!(
        detail.contains("pinned to model \"sim-model-2025-01\""),
        "{detail}"
    );
    // Calls are refused too, without reaching the server.
    let failure = set
        .get("planner")
        .unwrap()
        .chat(&ask("plan this"), &CallContext::default())
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error, LlmError::NoUsableEndpoint { .. }),
        "{failure}"
    );
    assert_eq!(sim.stats().requests_total, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_server_that_changes_its_model_is_refused_at_the_next_check() {
    let port = free_port();
    let right = sim_on(port, MODEL, 0, 0.0).await;
    let other = sim_on(0, MODEL, 0, 0.0).await;
    let tier = tier(&[url(port), other.base_url()], HealthPolicy::default());
    let mut events = tier.health_events();
    assert!(tier.check_health().await.iter().all(|s| s.is_healthy()));
    // The server is restarted with different weights under a different id.
    right.shutdown().await;
    let changed = sim_on(port, "sim-model-v2", 0, 0.0).await;
    // A pooled connection to the old server may fail one check first; bounded retries.
    let mut state = EndpointState::Healthy;
    for _ in 0..3 {
        state = tier.check_health().await[0].state.clone();
        if state == EndpointState::Refused {
            break;
        }
    }
    assert_eq!(state, EndpointState::Refused);
    let kind = wait_for(&mut events, &url(port), |k| {
        matches!(k, HealthEventKind::Refused { .. })
    })
    .await;
    let HealthEventKind::Refused { detail } = kind else {
        unreachable!()
    };
    assert!(detail.contains("serves sim-model-v2"), "{detail}");
    for i in 0..4 {
        tier.chat(&ask(&format!("after {i}")), &CallContext::default())
            .await
            .unwrap();
    }
    assert_eq!(changed.stats().requests_total, 0, "never sent a call");
    changed.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn streamed_calls_feed_the_rolling_ttft() {
    let sim = sim_on(0, MODEL, 40, 0.0).await;
    let tier = tier(&[sim.base_url()], HealthPolicy::default());
    for i in 0..5 {
        tier.chat(&ask(&format!("t {i}")), &CallContext::default())
            .await
            .unwrap();
    }
    let status = tier.status().unwrap();
    assert_eq!(status.ttft.samples, 5);
    // The simulator waits 40 ms before the first token, so no TTFT can be shorter.
    assert!(status.ttft.p50.unwrap() >= Duration::from_millis(40));
    assert!(status.ttft.p95.unwrap() >= status.ttft.p50.unwrap());
    assert_eq!(status.healthy_endpoints, 1);
    assert_eq!(status.in_flight, 0);
    sim.shutdown().await;
}
