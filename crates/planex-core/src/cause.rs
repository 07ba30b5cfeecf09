//! Keeping an error's cause: a shareable holder for a source error, and the text of a whole chain.
//!
//! Key decision: error enums keep the error that caused them as `#[source]` instead of formatting
//! it into their message, so `{:#}` (how the CLI prints errors) shows the chain down to the I/O,
//! Redis or serde error. Enums that must stay `Clone` and `PartialEq` (store, ledger and model-call
//! errors are handed to several waiters and compared in tests) keep their source in a
//! [`SharedSource`]: the original error behind an `Arc`, which is transparent in the chain (same
//! message, same sources) and compares equal to another when their messages are equal. Where an
//! error becomes a string (a step's recorded error, an HTTP answer, a log line), [`ErrorChain`]
//! renders every cause once.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// An underlying error kept as the `#[source]` of a `Clone`/`PartialEq` error enum.
///
/// It displays as the original error and reports the original error's own source, so a chain
/// reads as if the original were there; [`SharedSource::downcast_ref`] reaches the original.
/// Two sources are equal when their messages are equal (the errors they hold, such as
/// `redis::RedisError` or `reqwest::Error`, cannot be compared themselves).
#[derive(Clone)]
pub struct SharedSource(Arc<dyn Error + Send + Sync + 'static>);

impl SharedSource {
    /// Keeps `error`.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        SharedSource(Arc::new(error))
    }

    /// The kept error.
    pub fn get(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The kept error as a `T`, if it is one.
    pub fn downcast_ref<T: Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl fmt::Debug for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Error for SharedSource {
    /// The kept error's source, skipping causes that only repeat its message word for word (a
    /// Redis I/O error displays as, and has as its source, the same `std::io::Error`).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        let message = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            if cause.to_string() != message {
                break;
            }
            source = cause.source();
        }
        source
    }
}

impl PartialEq for SharedSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for SharedSource {}

/// Displays an error followed by each of its sources, joined by `: `, skipping a source whose
/// message the text already contains (some errors repeat their cause in their own message).
///
/// For strings that outlive the error: a step's recorded error, an HTTP answer, a log field
/// (`tracing::warn!(error = %ErrorChain(&error), …)`).
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let part = cause.to_string();
            if !part.is_empty() && !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            source = cause.source();
        }
        f.write_str(&text)
    }
}

/// [`ErrorChain`] as a `String`.
pub fn chain_text(error: &(dyn Error + 'static)) -> String {
    ErrorChain(error).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("opening the thing")]
    struct Outer {
        #[source]
        source: SharedSource,
    }

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")
    }

    #[test]
    fn shared_source_is_transparent_in_the_chain() {
        let outer = Outer {
            source: SharedSource::new(io()),
        };
        let source = outer.source().unwrap();
        assert_eq!(source.to_string(), "connection refused");
        let shared = source.downcast_ref::<SharedSource>().unwrap();
        assert_eq!(
            shared.downcast_ref::<std::io::Error>().unwrap().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        assert_eq!(
            chain_text(&outer),
            "opening the thing: connection refused".to_owned()
        );
    }

    #[test]
    fn sources_with_the_same_message_are_equal() {
        let a = SharedSource::new(io());
        assert_eq!(a, a.clone());
        assert_eq!(a, SharedSource::new(io()));
        assert_ne!(a, SharedSource::new(std::fmt::Error));
    }

    #[test]
    fn a_cause_repeating_the_kept_error_word_for_word_is_skipped() {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct SameText(#[source] std::io::Error);
        let shared = SharedSource::new(SameText(io()));
        assert!(shared.source().is_none());
        assert_eq!(shared.to_string(), "connection refused");
    }

    #[test]
    fn chain_skips_a_cause_already_in_the_text() {
        #[derive(Debug, thiserror::Error)]
        #[error("failed: connection refused")]
        struct Repeats(#[source] std::io::Error);
        assert_eq!(chain_text(&Repeats(io())), "failed: connection refused");
    }
}
