//! A probe `ChatModel`: wraps a tier and records when each of its calls started and returned.
//!
//! Key decision: steps are timed with `Instant` at the model seam, because store events carry
//! millisecond timestamps, too coarse for microsecond overheads.

use planex_core::Price;
use planex_llm::{CallContext, ChatFailure, ChatModel, ChatOutcome, ChatRequest};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

type ChatFuture<'t> = Pin<Box<dyn Future<Output = Result<ChatOutcome, ChatFailure>> + Send + 't>>;

// `ChatModel` is an `async_trait`; the probe's impl spells out the boxed future it expands to.

/// One timed model call.
pub(crate) struct Span {
    /// The call's request id (`"<task>-<step>"` for step calls).
    pub(crate) request_id: Option<String>,
    /// When the call started.
    pub(crate) start: Instant,
    /// When the call returned.
    pub(crate) end: Instant,
    /// Attempts the tier made (retries included).
    pub(crate) attempts: u32,
}

/// Wraps a tier and records when each call started and returned.
pub(crate) struct Probe {
    inner: Arc<dyn ChatModel>,
    spans: Mutex<Vec<Span>>,
}

impl Probe {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Arc<dyn ChatModel>) -> Arc<Probe> {
        Arc::new(Probe {
            inner,
            spans: Mutex::new(Vec::with_capacity(64)),
        })
    }

    /// The calls recorded since the last `take`, oldest first.
    pub(crate) fn take(&self) -> Vec<Span> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ChatModel for Probe {
    fn chat<'a, 'b, 'c, 't>(
        &'a self,
        request: &'b ChatRequest,
        ctx: &'c CallContext,
    ) -> ChatFuture<'t>
    where
        'a: 't,
        'b: 't,
        'c: 't,
        Self: 't,
    {
        Box::pin(async move {
            let start = Instant::now();
            let outcome = self.inner.chat(request, ctx).await;
            let end = Instant::now();
            let attempts = match &outcome {
                Ok(o) => o.attempts,
                Err(f) => f.attempts,
            };
            let span = Span {
                request_id: ctx.request_id.clone(),
                start,
                end,
                attempts,
            };
            self.spans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(span);
            outcome
        })
    }
    fn tier_name(&self) -> &str {
        self.inner.tier_name()
    }
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }
    fn price(&self) -> &Price {
        self.inner.price()
    }
    fn escalate_to(&self) -> Option<&str> {
        self.inner.escalate_to()
    }
}
