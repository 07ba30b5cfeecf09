//! Backend-neutral conformance cases for `SpendLedger`.
//!
//! A backend's test file calls `planex_testkit::ledger_conformance_tests!(ledger_factory)`, where
//! the factory is an async fn returning a fresh, empty `Arc<dyn SpendLedger>`. The concurrency case
//! is the one that matters most: 50 bookings at once against a limit that fits 10 book exactly 10.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use planex_core::Decimal;
use planex_store::{
    Account, AccountLimit, Balance, Booking, LedgerError, Reservation, SpendLedger,
};
use std::str::FromStr;
use std::sync::Arc;

pub use super::meter::*;

pub(crate) fn usd(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub(crate) fn tenant() -> Account {
    Account::new("acme/2026-05", "tenant")
}

fn center() -> Account {
    Account::new("acme/2026-05", "cost_center:research")
}

pub(crate) fn reservation(id: &str, amount: &str, tenant_limit: Option<&str>) -> Reservation {
    Reservation {
        id: id.into(),
        amount_usd: usd(amount),
        cap_usd: None,
        accounts: vec![
            AccountLimit {
                account: tenant(),
                limit_usd: tenant_limit.map(usd),
            },
            AccountLimit {
                account: center(),
                limit_usd: None,
            },
        ],
    }
}

pub(crate) async fn balance(ledger: &dyn SpendLedger, account: &Account) -> Balance {
    ledger
        .balances(&account.scope)
        .await
        .unwrap()
        .get(&account.name)
        .copied()
        .unwrap_or_default()
}

/// A granted reservation is booked as reserved on every account; reusing its id is refused.
pub async fn reserve_books_on_every_account(ledger: Arc<dyn SpendLedger>) {
    let granted = ledger
        .reserve(reservation("t1", "0.25", Some("1")))
        .await
        .unwrap();
    assert_eq!(granted, Booking::Granted);
    for account in [tenant(), center()] {
        let b = balance(&*ledger, &account).await;
        assert_eq!(b.reserved_usd, usd("0.25"), "{account:?}");
        assert_eq!(b.spent_usd, Decimal::ZERO);
    }
    let err = ledger
        .reserve(reservation("t1", "0.1", None))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::DuplicateReservation(_)));
}

/// A reservation over a limit is denied, naming the account and the figures, and books nothing;
/// exactly reaching the limit fits.
pub async fn over_limit_is_denied_naming_the_account_and_books_nothing(
    ledger: Arc<dyn SpendLedger>,
) {
    ledger.charge(&[tenant()], usd("0.7")).await.unwrap();
    ledger
        .reserve(reservation("a", "0.2", Some("1")))
        .await
        .unwrap();
    let denied = ledger
        .reserve(reservation("b", "0.15", Some("1")))
        .await
        .unwrap();
    let Booking::Denied(denial) = denied else {
        panic!("0.7 spent + 0.2 reserved + 0.15 must not fit 1.0");
    };
    assert_eq!(denial.account, tenant());
    assert_eq!(denial.limit_usd, usd("1"));
    assert_eq!(denial.spent_usd, usd("0.7"));
    assert_eq!(denial.reserved_usd, usd("0.2"));
    assert_eq!(denial.requested_usd, usd("0.15"));
    assert_eq!(denial.over_by_usd, usd("0.05"));
    assert_eq!(balance(&*ledger, &center()).await.reserved_usd, usd("0.2"));
    assert_eq!(
        ledger
            .reserve(reservation("c", "0.1", Some("1")))
            .await
            .unwrap(),
        Booking::Granted,
        "exactly reaching the limit fits"
    );
}

/// Reconciling replaces the reservation by the spend, once; amounts are rounded up to nano-dollars.
pub async fn reconcile_replaces_the_reservation_once(ledger: Arc<dyn SpendLedger>) {
    ledger
        .reserve(reservation("t", "0.5", Some("1")))
        .await
        .unwrap();
    assert!(ledger.reconcile("t", usd("0.123456789")).await.unwrap());
    assert!(!ledger.reconcile("t", usd("0.5")).await.unwrap());
    let b = balance(&*ledger, &tenant()).await;
    assert_eq!(b.reserved_usd, Decimal::ZERO);
    assert_eq!(b.spent_usd, usd("0.123456789"));
    assert_eq!(balance(&*ledger, &center()).await.spent_usd, b.spent_usd);
    // Amounts are rounded up to nano-dollars.
    ledger
        .charge(&[tenant()], usd("0.0000000001"))
        .await
        .unwrap();
    assert_eq!(
        balance(&*ledger, &tenant()).await.spent_usd,
        usd("0.123456790")
    );
}

/// Releasing frees the reservation, once, without any spend.
pub async fn release_frees_without_spend(ledger: Arc<dyn SpendLedger>) {
    ledger
        .reserve(reservation("t", "0.9", Some("1")))
        .await
        .unwrap();
    assert!(matches!(
        ledger
            .reserve(reservation("u", "0.2", Some("1")))
            .await
            .unwrap(),
        Booking::Denied(_)
    ));
    assert!(ledger.release("t").await.unwrap());
    assert!(!ledger.release("t").await.unwrap());
    assert_eq!(balance(&*ledger, &tenant()).await, Balance::default());
    assert_eq!(
        ledger
            .reserve(reservation("u", "0.2", Some("1")))
            .await
            .unwrap(),
        Booking::Granted
    );
}

/// Extending a reservation stops at its cap and at the accounts' limits; an unknown one is an error.
pub async fn extend_respects_cap_and_limits(ledger: Arc<dyn SpendLedger>) {
    let mut capped = reservation("t", "0.3", Some("1"));
    capped.cap_usd = Some(usd("0.5"));
    ledger.reserve(capped).await.unwrap();
    assert_eq!(
        ledger.extend("t", usd("0.2")).await.unwrap(),
        Booking::Granted
    );
    let Booking::Denied(denial) = ledger.extend("t", usd("0.01")).await.unwrap() else {
        panic!("the cap of 0.5 is reached");
    };
    assert_eq!(denial.account, Account::new("reservation", "t"));
    assert_eq!(denial.over_by_usd, usd("0.01"));
    assert_eq!(balance(&*ledger, &tenant()).await.reserved_usd, usd("0.5"));
    ledger
        .reserve(reservation("v", "0.5", Some("1")))
        .await
        .unwrap();
    let mut uncapped = reservation("w", "0", Some("1"));
    uncapped.cap_usd = None;
    ledger.reserve(uncapped).await.unwrap();
    let Booking::Denied(denial) = ledger.extend("w", usd("0.1")).await.unwrap() else {
        panic!("the tenant limit of 1.0 is reached");
    };
    assert_eq!(denial.account, tenant());
    assert!(matches!(
        ledger.extend("nope", usd("0.1")).await.unwrap_err(),
        LedgerError::UnknownReservation(_)
    ));
    assert!(ledger.reconcile("t", usd("0.4")).await.unwrap());
    assert_eq!(balance(&*ledger, &tenant()).await.spent_usd, usd("0.4"));
    assert_eq!(balance(&*ledger, &tenant()).await.reserved_usd, usd("0.5"));
}

/// Negative reservations and charges are refused.
pub async fn negative_amounts_are_refused(ledger: Arc<dyn SpendLedger>) {
    let err = ledger
        .reserve(reservation("t", "-1", None))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::NegativeAmount(_)));
    assert!(ledger.charge(&[tenant()], usd("-0.1")).await.is_err());
}

/// Balances are listed per scope.
pub async fn scopes_are_listed_separately(ledger: Arc<dyn SpendLedger>) {
    ledger.charge(&[tenant()], usd("1")).await.unwrap();
    let other = Account::new("globex/2026-05", "tenant");
    ledger
        .charge(std::slice::from_ref(&other), usd("2"))
        .await
        .unwrap();
    let acme = ledger.balances("acme/2026-05").await.unwrap();
    assert_eq!(acme.len(), 1);
    assert_eq!(acme["tenant"].spent_usd, usd("1"));
    assert_eq!(balance(&*ledger, &other).await.spent_usd, usd("2"));
    assert!(ledger.balances("nobody/2026-05").await.unwrap().is_empty());
}

/// 50 concurrent bookings of 0.1 against a limit of 1.0 book exactly 10.
pub async fn concurrent_reservations_never_exceed_the_limit(ledger: Arc<dyn SpendLedger>) {
    let mut handles = Vec::new();
    for i in 0..50 {
        let ledger = ledger.clone();
        handles.push(tokio::spawn(async move {
            ledger
                .reserve(reservation(&format!("r{i}"), "0.1", Some("1")))
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for handle in handles {
        if handle.await.unwrap() == Booking::Granted {
            granted += 1;
        }
    }
    assert_eq!(
        granted, 10,
        "a limit of 1.0 fits exactly ten bookings of 0.1"
    );
    assert_eq!(balance(&*ledger, &tenant()).await.reserved_usd, usd("1"));
}

/// `held` lists the open reservations, sorted, until they are reconciled or released.
pub async fn held_lists_open_reservations_until_settled(ledger: Arc<dyn SpendLedger>) {
    assert!(ledger.held().await.unwrap().is_empty());
    for id in ["b", "a", "c"] {
        ledger
            .reserve(reservation(id, "0.1", Some("10")))
            .await
            .unwrap();
    }
    assert_eq!(ledger.held().await.unwrap(), ["a", "b", "c"]);
    assert!(ledger.reconcile("a", usd("0.05")).await.unwrap());
    assert!(ledger.release("c").await.unwrap());
    assert_eq!(ledger.held().await.unwrap(), ["b"]);
}

/// Generates one `#[tokio::test]` per `SpendLedger` conformance case for a backend, from an async
/// factory of fresh, empty `Arc<dyn SpendLedger>`s.
#[macro_export]
macro_rules! ledger_conformance_tests {
    ($factory:path) => {
        $crate::ledger_conformance_tests!(@cases $factory;
            reserve_books_on_every_account, over_limit_is_denied_naming_the_account_and_books_nothing,
            reconcile_replaces_the_reservation_once, release_frees_without_spend,
            extend_respects_cap_and_limits, negative_amounts_are_refused, scopes_are_listed_separately,
            concurrent_reservations_never_exceed_the_limit, held_lists_open_reservations_until_settled,
            draws_respect_the_cap_and_settle_to_actual, draws_grow_the_hold_within_account_limits,
            draws_are_kept_until_the_reservation_settles, hold_shrinks_to_what_is_used, closed_reservations_refuse_draws,
            concurrent_draws_never_pass_the_cap);
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::ledger::$case($factory().await).await;
            }
        )*
    };
}
