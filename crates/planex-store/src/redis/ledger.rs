//! The spend ledger and the plan cache on Redis (`SpendLedger`, `PlanCache` for `RedisStore`).
//!
//! Key decisions: every ledger operation is one call of `lua/ledger.lua`, so "check every limit,
//! then book" is atomic across all API replicas; amounts are integer nano-dollars (`HINCRBY`,
//! exact), matching the memory ledger's rounding (`ledger_usd`). Plans are `px:plan:{KEY}`
//! strings with a `PX` time to live, so Redis expires them by itself; cache calls are never
//! retried (a miss is cheaper than a wait: the engine plans without the cache).

use super::RedisStore;
use super::errors::failed;
use super::shared::Retry;
use crate::ledger::{
    Account, Balance, Booking, Denial, Draw, LedgerError, Reservation, SpendLedger, ledger_usd,
};
use crate::plan_cache::{PlanCache, PlanCacheError};
use async_trait::async_trait;
use planex_core::cause::SharedSource;
use planex_core::{Decimal, Usage};
use std::collections::BTreeMap;
use std::time::Duration;

const NANOS: i64 = 1_000_000_000;

fn nanos(amount: Decimal) -> Result<i64, LedgerError> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(LedgerError::NegativeAmount(amount));
    }
    let scaled = ledger_usd(amount) * Decimal::from(NANOS);
    i64::try_from(scaled.trunc()).map_err(|e| LedgerError::Unavailable {
        what: format!(
            "amount {amount} USD is too large for the Redis ledger (at most about 9.2e9 USD)"
        ),
        source: Some(SharedSource::new(e)),
    })
}

/// A settled draw's usage as `settle_draw` stores it: `PROMPT COMPLETION CACHED [RESPONSE_ID]`
/// (draws settled before the id was kept have none).
fn parse_usage(text: &str) -> Option<(Usage, Option<String>)> {
    let mut parts = text.split(' ');
    let mut number = || parts.next()?.parse::<u64>().ok();
    let usage = Usage {
        prompt_tokens: number()?,
        completion_tokens: number()?,
        cached_tokens: number()?,
    };
    let response_id = parts.next().map(str::to_owned);
    parts.next().is_none().then_some((usage, response_id))
}

/// The usage text `settle_draw` stores; a response id with a space or none is left out.
fn usage_text(usage: &Usage, response_id: Option<&str>) -> String {
    let mut text = format!(
        "{} {} {}",
        usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens
    );
    if let Some(id) = response_id.filter(|id| !id.is_empty() && !id.contains(char::is_whitespace)) {
        text.push(' ');
        text.push_str(id);
    }
    text
}

fn usd(text: &str) -> Result<Decimal, LedgerError> {
    let n: i64 = text.parse().map_err(|e| LedgerError::Unavailable {
        what: format!("ledger stored a non-integer amount {text:?}"),
        source: Some(SharedSource::new(e)),
    })?;
    Ok(Decimal::new(n, 9).normalize())
}

fn ledger_error(e: redis::RedisError) -> LedgerError {
    LedgerError::Unavailable {
        what: failed("spend ledger"),
        source: Some(SharedSource::new(e)),
    }
}

fn unexpected_reply(reply: &[String], to: &str) -> LedgerError {
    LedgerError::Unavailable {
        what: format!("unexpected ledger reply {reply:?} to {to}"),
        source: None,
    }
}

fn booking(reply: &[String]) -> Result<Option<Booking>, LedgerError> {
    match reply.first().map(String::as_str) {
        Some("granted") => Ok(Some(Booking::Granted)),
        Some("closed") => Ok(Some(Booking::Closed)),
        Some("denied") if reply.len() == 8 => Ok(Some(Booking::Denied(Denial {
            account: Account::new(reply[1].clone(), reply[2].clone()),
            limit_usd: usd(&reply[3])?,
            spent_usd: usd(&reply[4])?,
            reserved_usd: usd(&reply[5])?,
            requested_usd: usd(&reply[6])?,
            over_by_usd: usd(&reply[7])?,
        }))),
        _ => Ok(None),
    }
}

impl RedisStore {
    async fn ledger_call(&self, args: Vec<String>) -> Result<Vec<String>, LedgerError> {
        // Bookings are not idempotent: resent only when the first try never reached Redis.
        self.ledger_call_with(Retry::OnlyIfUnsent, args).await
    }

    async fn ledger_call_with(
        &self,
        retry: Retry,
        args: Vec<String>,
    ) -> Result<Vec<String>, LedgerError> {
        let mut invocation = self.ledger.prepare_invoke();
        invocation.arg(&self.core.options.prefix).arg(args);
        self.core
            .invoke(retry, &invocation)
            .await
            .map_err(ledger_error)
    }
}

#[async_trait]
impl SpendLedger for RedisStore {
    async fn reserve(&self, reservation: Reservation) -> Result<Booking, LedgerError> {
        let mut args = vec![
            "reserve".to_owned(),
            reservation.id.clone(),
            nanos(reservation.amount_usd)?.to_string(),
            match reservation.cap_usd {
                Some(cap) => nanos(cap)?.to_string(),
                None => String::new(),
            },
            reservation.accounts.len().to_string(),
        ];
        for limited in &reservation.accounts {
            args.push(limited.account.scope.clone());
            args.push(limited.account.name.clone());
            args.push(match limited.limit_usd {
                Some(limit) => nanos(limit)?.to_string(),
                None => String::new(),
            });
        }
        let reply = self.ledger_call(args).await?;
        if reply.first().map(String::as_str) == Some("dup") {
            return Err(LedgerError::DuplicateReservation(reservation.id));
        }
        booking(&reply)?.ok_or_else(|| unexpected_reply(&reply, "reserve"))
    }

    async fn extend(&self, id: &str, amount_usd: Decimal) -> Result<Booking, LedgerError> {
        let args = vec!["extend".into(), id.into(), nanos(amount_usd)?.to_string()];
        let reply = self.ledger_call(args).await?;
        if reply.first().map(String::as_str) == Some("unknown") {
            return Err(LedgerError::UnknownReservation(id.to_owned()));
        }
        booking(&reply)?.ok_or_else(|| unexpected_reply(&reply, "extend"))
    }

    async fn reconcile(&self, id: &str, actual_usd: Decimal) -> Result<bool, LedgerError> {
        let args = vec![
            "reconcile".into(),
            id.into(),
            nanos(actual_usd)?.to_string(),
        ];
        let reply = self.ledger_call(args).await?;
        Ok(reply.first().map(String::as_str) == Some("settled"))
    }

    async fn release(&self, id: &str) -> Result<bool, LedgerError> {
        let reply = self.ledger_call(vec!["release".into(), id.into()]).await?;
        Ok(reply.first().map(String::as_str) == Some("settled"))
    }

    async fn hold(&self, id: &str, amount_usd: Decimal) -> Result<Booking, LedgerError> {
        let args = vec!["hold".into(), id.into(), nanos(amount_usd)?.to_string()];
        let reply = self.ledger_call(args).await?;
        if reply.first().map(String::as_str) == Some("unknown") {
            return Err(LedgerError::UnknownReservation(id.to_owned()));
        }
        booking(&reply)?.ok_or_else(|| unexpected_reply(&reply, "hold"))
    }

    async fn draw(
        &self,
        id: &str,
        call: &str,
        amount_usd: Decimal,
    ) -> Result<Booking, LedgerError> {
        let args = vec![
            "draw".into(),
            id.into(),
            call.into(),
            nanos(amount_usd)?.to_string(),
        ];
        // A draw is keyed by its call id, so sending it again books nothing twice.
        let reply = self.ledger_call_with(Retry::Idempotent, args).await?;
        if reply.first().map(String::as_str) == Some("unknown") {
            return Err(LedgerError::UnknownReservation(id.to_owned()));
        }
        booking(&reply)?.ok_or_else(|| unexpected_reply(&reply, "draw"))
    }

    async fn settle_draw(
        &self,
        id: &str,
        call: &str,
        actual_usd: Decimal,
        usage: &Usage,
        response_id: Option<&str>,
    ) -> Result<bool, LedgerError> {
        let args = vec![
            "settle_draw".into(),
            id.into(),
            call.into(),
            nanos(actual_usd)?.to_string(),
            usage_text(usage, response_id),
        ];
        // A settled draw is no longer open, so settling it again changes nothing.
        let reply = self.ledger_call_with(Retry::Idempotent, args).await?;
        Ok(reply.first().map(String::as_str) == Some("settled"))
    }

    async fn draws(&self, id: &str, prefix: &str) -> Result<Vec<Draw>, LedgerError> {
        let args = vec!["draws".into(), id.into(), prefix.into()];
        // A read: resending it is harmless.
        let reply = self.ledger_call_with(Retry::Idempotent, args).await?;
        let mut draws = reply
            .chunks(3)
            .map(|triple| match triple {
                [call, amount, usage] => {
                    let (usage, response_id) = if usage.is_empty() {
                        (None, None)
                    } else {
                        let (usage, id) =
                            parse_usage(usage).ok_or_else(|| unexpected_reply(&reply, "draws"))?;
                        (Some(usage), id)
                    };
                    Ok(Draw {
                        call: call.clone(),
                        amount_usd: usd(amount)?,
                        usage,
                        response_id,
                    })
                }
                _ => Err(unexpected_reply(&reply, "draws")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        draws.sort_by(|a, b| a.call.cmp(&b.call));
        Ok(draws)
    }

    async fn close(&self, id: &str) -> Result<bool, LedgerError> {
        let reply = self.ledger_call(vec!["close".into(), id.into()]).await?;
        Ok(reply.first().map(String::as_str) == Some("closed"))
    }

    async fn held(&self) -> Result<Vec<String>, LedgerError> {
        let mut ids = self.ledger_call(vec!["held".into()]).await?;
        ids.sort();
        Ok(ids)
    }

    async fn charge(&self, accounts: &[Account], amount_usd: Decimal) -> Result<(), LedgerError> {
        let mut args = vec![
            "charge".to_owned(),
            nanos(amount_usd)?.to_string(),
            accounts.len().to_string(),
        ];
        for account in accounts {
            args.push(account.scope.clone());
            args.push(account.name.clone());
        }
        self.ledger_call(args).await?;
        Ok(())
    }

    async fn balances(&self, scope: &str) -> Result<BTreeMap<String, Balance>, LedgerError> {
        let key = format!("{}:spend:{{{scope}}}", self.core.options.prefix);
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(key);
        let fields: Vec<(String, String)> = self
            .core
            .query(Retry::Idempotent, &cmd)
            .await
            .map_err(ledger_error)?;
        let mut out: BTreeMap<String, Balance> = BTreeMap::new();
        for (field, value) in fields {
            let Some((name, kind)) = field.rsplit_once(':') else {
                continue;
            };
            let amount = usd(&value)?;
            let balance = out.entry(name.to_owned()).or_default();
            match kind {
                "spent" => balance.spent_usd = amount,
                "reserved" => balance.reserved_usd = amount,
                _ => {}
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl PlanCache for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<serde_json::Value>, PlanCacheError> {
        let text: Option<String> = redis::cmd("GET")
            .arg(self.core.keys.plan(key))
            .query_async(&mut self.core.conn())
            .await
            .map_err(|e| PlanCacheError::Unavailable {
                what: failed("read plan cache"),
                source: SharedSource::new(e),
            })?;
        // An undecodable entry is a miss: the engine plans afresh and overwrites it.
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    async fn put(
        &self,
        key: &str,
        plan: serde_json::Value,
        ttl: Duration,
    ) -> Result<(), PlanCacheError> {
        if ttl.is_zero() {
            return Ok(());
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let () = redis::cmd("SET")
            .arg(self.core.keys.plan(key))
            .arg(plan.to_string())
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut self.core.conn())
            .await
            .map_err(|e| PlanCacheError::Unavailable {
                what: failed("write plan cache"),
                source: SharedSource::new(e),
            })?;
        Ok(())
    }
}
