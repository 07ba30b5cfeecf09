//! Scaling decisions on synthetic metric series: queue growth, TTFT, scale-in after an empty
//! period, the floor and the ceiling.

use super::*;

const MIN: Duration = Duration::from_secs(60);

fn sample(at: Instant, queue_depth: u64, in_flight: u64, healthy: u32) -> TierSample {
    TierSample {
        at,
        queue_depth,
        in_flight,
        ttft_p95: None,
        healthy_endpoints: healthy,
    }
}

fn ttft(at: Instant, p95_ms: Option<u64>, healthy: u32) -> TierSample {
    TierSample {
        ttft_p95: p95_ms.map(Duration::from_millis),
        in_flight: 1,
        ..sample(at, 0, 1, healthy)
    }
}

#[test]
fn a_growing_queue_scales_the_executor_tier_out() {
    let mut scaler = Scaler::new(ScalingSettings::default());
    let t0 = Instant::now();
    let series = [
        (0, 0),
        (20, 2),
        (60, 2),
        (100, 2),
        (101, 2),
        (250, 3),
        (40, 3),
    ];
    let decisions: Vec<TierDecision> = series
        .iter()
        .enumerate()
        .map(|(i, &(depth, healthy))| {
            scaler.decide(
                "small",
                "planner",
                sample(t0 + MIN * i as u32, depth, 4, healthy),
            )
        })
        .collect();
    let actions: Vec<ScalingAction> = decisions.iter().map(|d| d.action).collect();
    use ScalingAction::*;
    assert_eq!(
        actions,
        [ScaleOut, Hold, Hold, Hold, ScaleOut, ScaleOut, Hold]
    );
    let desired: Vec<u32> = decisions.iter().map(|d| d.desired_replicas).collect();
    assert_eq!(desired, [1, 2, 2, 2, 3, 4, 3]);
    assert_eq!(
        decisions[0].reason,
        "queue depth 0 <= 100: hold; raised to the floor of 1"
    );
    assert_eq!(decisions[3].reason, "queue depth 100 <= 100: hold");
    assert_eq!(decisions[4].reason, "queue depth 101 > 100: add a node");
    assert_eq!(decisions[4].rule, ScalingRule::QueueDepth);
}

#[test]
fn a_tier_empty_for_ten_minutes_scales_in_to_the_floor() {
    let mut scaler = Scaler::new(ScalingSettings::default());
    let t0 = Instant::now();
    scaler.decide("small", "planner", sample(t0, 30, 5, 4));
    for minute in 1..=10u32 {
        let d = scaler.decide("small", "planner", sample(t0 + MIN * minute, 0, 0, 4));
        assert_eq!(
            d.action,
            ScalingAction::Hold,
            "minute {minute}: {}",
            d.reason
        );
        assert_eq!(d.desired_replicas, 4);
        if minute == 9 {
            assert_eq!(
                d.reason,
                "queue depth 0 <= 100: hold (empty for 8 min; scales in after 10 min)"
            );
        }
    }
    // Empty since minute 1: at minute 11 it has been empty for ten minutes.
    let d = scaler.decide("small", "planner", sample(t0 + MIN * 11, 0, 0, 4));
    assert_eq!(d.action, ScalingAction::ScaleIn);
    assert_eq!(d.desired_replicas, 1);
    assert_eq!(d.empty_for_seconds, 600);
    assert_eq!(
        d.reason,
        "queue empty and nothing in flight for 10 min (>= 10 min): scale in to the floor of 1"
    );
}

#[test]
fn any_activity_restarts_the_empty_clock() {
    let mut scaler = Scaler::new(ScalingSettings::default());
    let t0 = Instant::now();
    for minute in 0..8u32 {
        scaler.decide("small", "planner", sample(t0 + MIN * minute, 0, 0, 3));
    }
    // One step in flight at minute 8, then empty again: ten more minutes are needed.
    scaler.decide("small", "planner", sample(t0 + MIN * 8, 0, 1, 3));
    for minute in 9..18u32 {
        let d = scaler.decide("small", "planner", sample(t0 + MIN * minute, 0, 0, 3));
        assert_eq!(d.action, ScalingAction::Hold, "minute {minute}");
    }
    let d = scaler.decide("small", "planner", sample(t0 + MIN * 19, 0, 0, 3));
    assert_eq!(d.action, ScalingAction::ScaleIn);
}

#[test]
fn never_below_one_warm_node() {
    let settings = ScalingSettings {
        min_replicas: 0,
        ..ScalingSettings::default()
    };
    let mut scaler = Scaler::new(settings);
    let t0 = Instant::now();
    // Empty for an hour with one node: stays at one.
    for minute in 0..=60u32 {
        let d = scaler.decide("small", "planner", sample(t0 + MIN * minute, 0, 0, 1));
        assert_eq!(d.desired_replicas, 1, "minute {minute}: {}", d.reason);
        assert_ne!(d.action, ScalingAction::ScaleIn);
    }
    // No healthy endpoint at all: ask for the floor.
    let d = scaler.decide("planner", "planner", ttft(t0, None, 0));
    assert_eq!(d.desired_replicas, 1);
    assert_eq!(d.action, ScalingAction::ScaleOut);
    assert!(
        d.reason.ends_with("raised to the floor of 1"),
        "{}",
        d.reason
    );
}

#[test]
fn the_planner_tier_scales_on_p95_ttft() {
    let mut scaler = Scaler::new(ScalingSettings::default());
    let t0 = Instant::now();
    let d = scaler.decide("planner", "planner", ttft(t0, Some(2500), 2));
    assert_eq!(d.rule, ScalingRule::Ttft);
    assert_eq!(d.action, ScalingAction::ScaleOut);
    assert_eq!(d.desired_replicas, 3);
    assert_eq!(d.reason, "p95 TTFT 2.5 s > 2 s: add a node");
    assert_eq!(d.ttft_p95_seconds, Some(2.5));
    let d = scaler.decide("planner", "planner", ttft(t0, Some(1800), 3));
    assert_eq!(d.action, ScalingAction::Hold);
    assert_eq!(d.reason, "p95 TTFT 1.8 s <= 2 s: hold");
    let d = scaler.decide("planner", "planner", ttft(t0, None, 3));
    assert_eq!(d.reason, "no TTFT samples in the window: hold");
    // A deep queue does not scale the planner tier: it is latency-bound.
    let deep = TierSample {
        queue_depth: 500,
        ..ttft(t0, Some(900), 3)
    };
    assert_eq!(
        scaler.decide("planner", "planner", deep).action,
        ScalingAction::Hold
    );
}

#[test]
fn the_ceiling_caps_scale_out_and_overrides_change_the_rule() {
    let mut settings = ScalingSettings {
        max_replicas: 4,
        ..ScalingSettings::default()
    };
    settings.tiers.insert(
        "medium".into(),
        TierScaling {
            rule: ScalingRule::Ttft,
            min_replicas: 2,
            max_replicas: 8,
        },
    );
    let mut scaler = Scaler::new(settings);
    let t0 = Instant::now();
    let d = scaler.decide("small", "planner", sample(t0, 1000, 32, 4));
    assert_eq!(d.desired_replicas, 4);
    assert_eq!(d.action, ScalingAction::Hold);
    assert!(
        d.reason.ends_with("capped at max_replicas 4"),
        "{}",
        d.reason
    );
    let d = scaler.decide("medium", "planner", ttft(t0, Some(3000), 7));
    assert_eq!((d.rule, d.desired_replicas), (ScalingRule::Ttft, 8));
    let d = scaler.decide("medium", "planner", ttft(t0, Some(100), 1));
    assert_eq!(d.desired_replicas, 2, "{}", d.reason);
}

#[test]
fn durations_read_like_an_operator_writes_them() {
    assert_eq!(secs(Duration::from_secs(600)), "10 min");
    assert_eq!(secs(Duration::from_secs(7200)), "2 h");
    assert_eq!(secs(Duration::from_millis(2500)), "2.5 s");
    assert_eq!(secs(Duration::from_secs(90)), "90 s");
}
