//! Store errors keep what caused them: a Redis store that cannot connect reports the Redis error
//! as its source, and stored data that does not decode reports the serde error, so `{:#}` (how the
//! CLI prints errors) shows the chain down to the root cause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::TaskId;
use planex_core::cause::{SharedSource, chain_text};
use planex_store::{RedisStore, Store, StoreError};
use planex_testkit::redis::RedisServer;
use std::error::Error;

/// Every error of `error`'s source chain, outermost first (`error` itself excluded).
fn sources<'a>(error: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut out = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        out.push(cause);
        next = cause.source();
    }
    out
}

/// The first error in the chain that is a `T` (kept directly or in a [`SharedSource`]).
fn find<'a, T: Error + 'static>(chain: &[&'a (dyn Error + 'static)]) -> Option<&'a T> {
    chain.iter().find_map(|e| {
        e.downcast_ref::<T>().or_else(|| {
            e.downcast_ref::<SharedSource>()
                .and_then(|s| s.downcast_ref::<T>())
        })
    })
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn connecting_to_a_closed_port_keeps_the_redis_error() {
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let Err(error) = RedisStore::connect(&url).await else {
        panic!("nothing listens on {url}, yet the store connected");
    };
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    let chain = sources(&error);
    let redis_error = find::<redis::RedisError>(&chain)
        .unwrap_or_else(|| panic!("no redis error in the chain of {error:?}"));
    assert!(
        redis_error.is_connection_refusal() || redis_error.is_io_error(),
        "{redis_error:?}"
    );
    // The message says what failed, the chain adds why; the cause is not repeated on top.
    let top = error.to_string();
    assert!(top.contains(&url), "{top}");
    assert!(!top.contains(&redis_error.to_string()), "{top}");
    let text = chain_text(&error);
    assert!(text.starts_with(&top), "{text}");
    assert!(text.contains(&redis_error.to_string()), "{text}");
}

#[tokio::test]
async fn undecodable_stored_data_keeps_the_serde_error() {
    let server = RedisServer::start().expect("start a private redis-server");
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // A task hash whose status is not a status.
    let () = redis::cmd("HSET")
        .arg("px:task:{broken}")
        .arg("status")
        .arg("exploded")
        .arg("task")
        .arg("t")
        .query_async(&mut conn)
        .await
        .unwrap();
    let error = store.get_task(&TaskId::from("broken")).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    let chain = sources(&error);
    let serde_error = find::<serde_json::Error>(&chain)
        .unwrap_or_else(|| panic!("no serde error in the chain of {error:?}"));
    assert!(
        chain_text(&error).contains(&serde_error.to_string()),
        "{}",
        chain_text(&error)
    );
}
