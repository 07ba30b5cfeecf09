//! Conformance cases for a reservation used as a meter (`draw`, `settle_draw`, `draws`,
//! `hold`, `close`): each model call books its worst case before it is made, and a task's cap is
//! never passed, however many calls draw at once. Run through `ledger_conformance_tests!`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use super::ledger::{balance, reservation, tenant, usd};
use planex_core::Usage;
use planex_store::{Booking, Draw, SpendLedger};
use std::sync::Arc;

/// A draw over the cap is refused with what is used; a settled draw counts its real cost once;
/// reconciling never charges less than the draws used.
pub async fn draws_respect_the_cap_and_settle_to_actual(ledger: Arc<dyn SpendLedger>) {
    let mut task = reservation("t", "0", Some("10"));
    task.cap_usd = Some(usd("1"));
    assert_eq!(ledger.reserve(task).await.unwrap(), Booking::Granted);
    assert_eq!(
        ledger.draw("t", "1/1/0", usd("0.6")).await.unwrap(),
        Booking::Granted
    );
    // The hold grew to cover the call in flight; drawing the same call again (a retry after a
    // lost reply) books nothing more.
    assert_eq!(
        balance(ledger.as_ref(), &tenant()).await.reserved_usd,
        usd("0.6")
    );
    assert_eq!(
        ledger.draw("t", "1/1/0", usd("0.6")).await.unwrap(),
        Booking::Granted
    );
    assert_eq!(
        balance(ledger.as_ref(), &tenant()).await.reserved_usd,
        usd("0.6")
    );
    let Booking::Denied(denial) = ledger.draw("t", "2/1/0", usd("0.5")).await.unwrap() else {
        panic!("a draw past the cap must be denied");
    };
    assert_eq!(denial.account.scope, "reservation");
    assert_eq!(denial.account.name, "t");
    assert_eq!(denial.spent_usd, usd("0.6"));
    assert_eq!(denial.limit_usd, usd("1"));
    assert!(
        ledger
            .settle_draw("t", "1/1/0", usd("0.2"), &usage(10, 5), None)
            .await
            .unwrap()
    );
    assert!(
        !ledger
            .settle_draw("t", "1/1/0", usd("0.2"), &usage(10, 5), None)
            .await
            .unwrap()
    );
    assert_eq!(
        ledger.draw("t", "2/1/0", usd("0.5")).await.unwrap(),
        Booking::Granted
    );
    // Used: 0.2 settled + 0.5 open. A lower actual is not believed.
    assert!(ledger.reconcile("t", usd("0.1")).await.unwrap());
    let after = balance(ledger.as_ref(), &tenant()).await;
    assert_eq!(after.spent_usd, usd("0.7"));
    assert_eq!(after.reserved_usd, usd("0"));
}

/// Growing the hold for a draw is checked against the accounts' limits.
pub async fn draws_grow_the_hold_within_account_limits(ledger: Arc<dyn SpendLedger>) {
    let task = reservation("a", "0.2", Some("1"));
    assert_eq!(ledger.reserve(task).await.unwrap(), Booking::Granted);
    assert_eq!(
        ledger.draw("a", "1/1/0", usd("0.9")).await.unwrap(),
        Booking::Granted
    );
    assert_eq!(
        balance(ledger.as_ref(), &tenant()).await.reserved_usd,
        usd("0.9")
    );
    let Booking::Denied(denial) = ledger.draw("a", "2/1/0", usd("0.2")).await.unwrap() else {
        panic!("a draw past the tenant's limit must be denied");
    };
    assert_eq!(denial.account, tenant());
    assert_eq!(
        balance(ledger.as_ref(), &tenant()).await.reserved_usd,
        usd("0.9")
    );
    assert!(ledger.release("a").await.unwrap());
}

fn usage(prompt_tokens: u64, completion_tokens: u64) -> Usage {
    Usage {
        prompt_tokens,
        completion_tokens,
        cached_tokens: 1,
    }
}

/// Draws, open and settled (with their usage), can be read by prefix as often as wanted until
/// the reservation is settled; a call that cost nothing is not kept; all stay charged.
pub async fn draws_are_kept_until_the_reservation_settles(ledger: Arc<dyn SpendLedger>) {
    let task = reservation("t", "0", Some("10"));
    assert_eq!(ledger.reserve(task).await.unwrap(), Booking::Granted);
    for (call, amount) in [
        ("3/1-a/0", "0.1"),
        ("3/1-a/1", "0.2"),
        ("3/1-a/2", "0.2"),
        ("4/1-b/0", "0.3"),
    ] {
        assert_eq!(
            ledger.draw("t", call, usd(amount)).await.unwrap(),
            Booking::Granted
        );
    }
    assert!(
        ledger
            .settle_draw(
                "t",
                "3/1-a/1",
                usd("0.05"),
                &usage(40, 7),
                Some("chatcmpl-41"),
            )
            .await
            .unwrap()
    );
    // A failed call settles to nothing and is not kept.
    assert!(
        ledger
            .settle_draw("t", "3/1-a/2", usd("0"), &usage(0, 0), None)
            .await
            .unwrap()
    );
    let expected = [
        Draw {
            call: "3/1-a/0".into(),
            amount_usd: usd("0.1"),
            usage: None,
            response_id: None,
        },
        Draw {
            call: "3/1-a/1".into(),
            amount_usd: usd("0.05"),
            usage: Some(usage(40, 7)),
            // The answer's id is kept with the settled draw, for the record made of it later.
            response_id: Some("chatcmpl-41".into()),
        },
    ];
    assert_eq!(ledger.draws("t", "3/").await.unwrap(), expected);
    // Reading changes nothing: a second execution that dies leaves them for a third.
    assert_eq!(ledger.draws("t", "3/").await.unwrap(), expected);
    assert_eq!(ledger.draws("t", "").await.unwrap().len(), 3);
    assert!(
        !ledger
            .settle_draw("t", "3/1-a/1", usd("0"), &usage(0, 0), None)
            .await
            .unwrap()
    );
    assert!(ledger.draws("nope", "").await.unwrap().is_empty());
    assert!(ledger.reconcile("t", usd("0")).await.unwrap());
    assert_eq!(
        balance(ledger.as_ref(), &tenant()).await.spent_usd,
        usd("0.45")
    );
    assert!(ledger.draws("t", "").await.unwrap().is_empty());
}

/// `hold` gives back what the meter does not use, never less than it uses, and grows only
/// within the limits.
pub async fn hold_shrinks_to_what_is_used(ledger: Arc<dyn SpendLedger>) {
    let task = reservation("t", "0.5", Some("1"));
    assert_eq!(ledger.reserve(task).await.unwrap(), Booking::Granted);
    assert_eq!(
        ledger.hold("t", usd("0.1")).await.unwrap(),
        Booking::Granted
    );
    assert_eq!(
        balance(ledger.as_ref(), &tenant()).await.reserved_usd,
        usd("0.1")
    );
    assert_eq!(
        ledger.draw("t", "1/1/0", usd("0.3")).await.unwrap(),
        Booking::Granted
    );
    assert_eq!(ledger.hold("t", usd("0")).await.unwrap(), Booking::Granted);
    assert_eq!(
        balance(ledger.as_ref(), &tenant()).await.reserved_usd,
        usd("0.3")
    );
    assert!(matches!(
        ledger.hold("t", usd("2")).await.unwrap(),
        Booking::Denied(_)
    ));
    assert!(matches!(
        ledger.hold("nope", usd("1")).await,
        Err(planex_store::LedgerError::UnknownReservation(_))
    ));
}

/// A closed reservation (a cancelled task) refuses every later draw.
pub async fn closed_reservations_refuse_draws(ledger: Arc<dyn SpendLedger>) {
    let task = reservation("t", "0", None);
    assert_eq!(ledger.reserve(task).await.unwrap(), Booking::Granted);
    assert!(ledger.close("t").await.unwrap());
    assert_eq!(
        ledger.draw("t", "1/1/0", usd("0.01")).await.unwrap(),
        Booking::Closed
    );
    assert!(!ledger.close("nope").await.unwrap());
    assert!(matches!(
        ledger.draw("nope", "1/1/0", usd("0.01")).await,
        Err(planex_store::LedgerError::UnknownReservation(_))
    ));
}

/// 50 draws at once against a cap that fits 10: exactly 10 are granted.
pub async fn concurrent_draws_never_pass_the_cap(ledger: Arc<dyn SpendLedger>) {
    let mut task = reservation("t", "0", None);
    task.cap_usd = Some(usd("1"));
    assert_eq!(ledger.reserve(task).await.unwrap(), Booking::Granted);
    let draws: Vec<_> = (0..50)
        .map(|i| {
            let ledger = ledger.clone();
            tokio::spawn(async move { ledger.draw("t", &format!("{i}/1/0"), usd("0.1")).await })
        })
        .collect();
    let mut granted = 0;
    for draw in draws {
        if draw.await.unwrap().unwrap() == Booking::Granted {
            granted += 1;
        }
    }
    assert_eq!(granted, 10);
}
