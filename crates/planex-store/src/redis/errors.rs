//! Redis failures as store errors: what failed, with the Redis, codec or parse error kept as the
//! source so `{:#}` prints the whole chain.

use crate::error::StoreError;
use planex_core::cause::SharedSource;

/// What failed, for error messages of every trait the store implements (the Redis error itself
/// is kept as the error's source).
pub(crate) fn failed(what: &str) -> String {
    format!("redis {what} failed")
}

/// A Redis error as a store error naming the operation; the Redis error stays its source.
pub(crate) fn unavailable(what: &str, error: redis::RedisError) -> StoreError {
    StoreError::Unavailable {
        what: failed(what),
        source: Some(SharedSource::new(error)),
    }
}

/// A store error for a backend that cannot serve, with no underlying error to keep.
pub(crate) fn unavailable_because(what: impl Into<String>) -> StoreError {
    StoreError::Unavailable {
        what: what.into(),
        source: None,
    }
}

/// A store error for data that could not be encoded or decoded, keeping the codec's error.
pub(crate) fn corrupt_by(
    what: impl Into<String>,
    error: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        source: Some(SharedSource::new(error)),
    }
}

/// A store error for stored data of the wrong shape, with no underlying error to keep.
pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        source: None,
    }
}
