//! The pool's state machine with explicit time: choice, cooldown, half-open recovery, refusal.

use super::*;

fn pool(n: usize, allowed_fails: u32, cooldown_ms: u64) -> EndpointPool {
    let endpoints: Vec<Endpoint> = (0..n)
        .map(|i| Endpoint::new(format!("http://127.0.0.1:{}/v1", 9000 + i)))
        .collect();
    let policy = HealthPolicy {
        allowed_fails,
        cooldown: Duration::from_millis(cooldown_ms),
        ..HealthPolicy::default()
    };
    EndpointPool::new("small", &endpoints, policy)
}

fn boom() -> LlmError {
    LlmError::Status {
        endpoint: "e".into(),
        status: 503,
        body: String::new(),
    }
}

#[test]
fn least_outstanding_wins_and_ties_rotate() {
    let pool = pool(3, 3, 1000);
    let now = Instant::now();
    let a = pool.pick(&[], now).unwrap();
    let b = pool.pick(&[], now).unwrap();
    let c = pool.pick(&[], now).unwrap();
    let mut firsts = vec![a.index(), b.index(), c.index()];
    firsts.sort_unstable();
    assert_eq!(firsts, vec![0, 1, 2], "three idle endpoints get one each");
    let busy = b.index();
    drop(a);
    drop(c);
    // Two endpoints are idle and one is busy: the next two calls avoid the busy one.
    let d = pool.pick(&[], now).unwrap();
    let e = pool.pick(&[], now).unwrap();
    assert_ne!(d.index(), busy);
    assert_ne!(e.index(), busy);
    assert_ne!(d.index(), e.index());
    drop((b, d, e));
    assert!(pool.statuses(now).iter().all(|s| s.outstanding == 0));
    assert_eq!(
        pool.statuses(now).iter().map(|s| s.requests).sum::<u64>(),
        5
    );
}

#[test]
fn a_retry_prefers_an_untried_endpoint() {
    let pool = pool(2, 3, 1000);
    let now = Instant::now();
    for _ in 0..4 {
        let first = pool.pick(&[], now).unwrap().index();
        let second = pool.pick(&[first], now).unwrap().index();
        assert_ne!(first, second);
        // Every endpoint tried: any may be used again.
        assert!(pool.pick(&[0, 1], now).is_ok());
    }
}

#[test]
fn consecutive_failures_cool_an_endpoint_down_and_it_recovers_half_open() {
    let pool = pool(2, 2, 1000);
    let mut events = pool.subscribe();
    let t0 = Instant::now();
    let error = boom();
    pool.record(0, Verdict::Failure(&error), t0);
    assert!(pool.statuses(t0)[0].is_healthy(), "one failure is allowed");
    pool.record(0, Verdict::Failure(&error), t0);
    let status = &pool.statuses(t0)[0];
    assert_eq!(
        status.state,
        EndpointState::CoolingDown { remaining_ms: 1000 }
    );
    assert!(status.detail.as_deref().unwrap().contains("503"));
    assert!(matches!(
        events.try_recv().unwrap().kind,
        HealthEventKind::CooledDown {
            consecutive_failures: 2,
            cooldown_ms: 1000
        }
    ));
    // While it cools down, every call goes to the other endpoint.
    for _ in 0..5 {
        assert_eq!(
            pool.pick(&[], t0 + Duration::from_millis(500))
                .unwrap()
                .index(),
            1
        );
    }
    // After the cooldown it is back (half-open) and announced.
    let t1 = t0 + Duration::from_millis(1001);
    let picks: Vec<usize> = (0..4)
        .map(|_| pool.pick(&[], t1).unwrap().index())
        .collect();
    assert!(picks.contains(&0), "{picks:?}");
    assert_eq!(events.try_recv().unwrap().kind, HealthEventKind::Recovered);
    // Half-open: a single failure sends it straight back.
    pool.record(0, Verdict::Failure(&error), t1);
    assert!(matches!(
        pool.statuses(t1)[0].state,
        EndpointState::CoolingDown { .. }
    ));
    // A success resets the count for good.
    let t2 = t1 + Duration::from_millis(1001);
    pool.expire_cooldowns(t2);
    pool.record(0, Verdict::Success, t2);
    pool.record(0, Verdict::Failure(&error), t2);
    assert!(pool.statuses(t2)[0].is_healthy());
}

#[test]
fn client_errors_do_not_count_against_an_endpoint() {
    let pool = pool(1, 1, 1000);
    let now = Instant::now();
    let bad_request = LlmError::Status {
        endpoint: "e".into(),
        status: 400,
        body: String::new(),
    };
    pool.record(0, Verdict::of_error(&bad_request), now);
    assert!(pool.statuses(now)[0].is_healthy());
    pool.record(0, Verdict::of_error(&boom()), now);
    assert!(!pool.statuses(now)[0].is_healthy());
}

#[test]
fn a_fully_tripped_pool_still_tries_the_endpoint_back_soonest() {
    let pool = pool(2, 1, 1000);
    let t0 = Instant::now();
    let error = boom();
    pool.record(1, Verdict::Failure(&error), t0);
    pool.record(0, Verdict::Failure(&error), t0 + Duration::from_millis(100));
    let pick = pool.pick(&[], t0 + Duration::from_millis(200)).unwrap();
    assert_eq!(pick.index(), 1, "endpoint 1's cooldown ends first");
}

#[test]
fn refused_endpoints_are_never_used_and_readmitted_by_a_good_check() {
    let pool = pool(2, 3, 1000);
    let mut events = pool.subscribe();
    let now = Instant::now();
    pool.record_check(0, None, Some("serves other-model".into()));
    assert!(matches!(
        events.try_recv().unwrap().kind,
        HealthEventKind::Refused { .. }
    ));
    for _ in 0..4 {
        assert_eq!(pool.pick(&[], now).unwrap().index(), 1);
    }
    // Even when the only other endpoint is down, the refused one is not used.
    pool.record_check(1, None, Some("serves other-model".into()));
    let err = pool.pick(&[], now).unwrap_err();
    assert!(matches!(err, LlmError::NoUsableEndpoint { .. }), "{err}");
    assert!(err.to_string().contains("serves other-model"), "{err}");
    // An unreachable endpoint keeps its refusal (its model is unknown) ...
    pool.record_check(0, Some("connection refused".into()), None);
    assert_eq!(pool.statuses(now)[0].state, EndpointState::Refused);
    // ... until a check sees the right model again.
    pool.record_check(0, None, None);
    assert!(pool.statuses(now)[0].is_healthy());
    let kinds: Vec<HealthEventKind> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&HealthEventKind::Readmitted), "{kinds:?}");
    assert!(kinds.contains(&HealthEventKind::Reachable), "{kinds:?}");
}

#[test]
fn unreachable_endpoints_are_skipped_until_a_check_reaches_them() {
    let pool = pool(2, 3, 1000);
    let now = Instant::now();
    pool.record_check(1, Some("connection refused".into()), None);
    assert_eq!(pool.statuses(now)[1].state, EndpointState::Unreachable);
    for _ in 0..3 {
        assert_eq!(pool.pick(&[], now).unwrap().index(), 0);
    }
    pool.record_check(1, None, None);
    assert!(pool.statuses(now)[1].is_healthy());
}
