//! How many prompt tokens a tier's server counts per byte of prompt, learned from the usage it
//! reports, so that a call's drawn worst case is not twice what it turns out to cost.
//!
//! Key decisions: until a tier has reported on a prompt of at least [`MIN_OBSERVED_BYTES`], its
//! prompts are bounded at one token per [`PROMPT_BYTES_PER_TOKEN`] bytes (about twice the count of
//! the BPE tokenizers of Llama 3, Qwen2.5 and cl100k on English text and JSON). After that the bound
//! is the *densest* prompt seen on the tier (tokens per byte, template overhead included) times
//! [`MARGIN`], never above the default. A densest-seen bound follows the server's real tokenizer
//! and chat template, and what it bills (a server that counts the `response_format` schema as prompt
//! raises its own density); the margin covers prompts denser than any seen so far (other scripts,
//! more digits). Learning is per process: each replica and worker learns from its own calls.

use super::price::PROMPT_BYTES_PER_TOKEN;
use planex_llm::ChatRequest;
use std::collections::HashMap;
use std::sync::Mutex;

/// Prompts shorter than this (bytes) teach nothing: template overhead dominates their count.
pub const MIN_OBSERVED_BYTES: u64 = 512;
/// How much denser than the densest prompt seen a new prompt is assumed to be at most.
pub const MARGIN: f64 = 1.25;
/// Tokens of chat-template overhead assumed per message.
const TOKENS_PER_MESSAGE: u64 = 8;

/// The bytes of one message as the model reads it: its text and the calls it made.
fn message_bytes(message: &planex_llm::ChatMessage) -> u64 {
    let calls: usize = message
        .tool_calls
        .iter()
        .map(|c| c.name.len() + c.arguments.len())
        .sum();
    (message.content.len() + calls) as u64
}

/// The bytes of the tools offered (function calling): chat templates put their schemas in the
/// prompt.
fn tools_bytes(request: &ChatRequest) -> u64 {
    request
        .tools
        .iter()
        .map(|t| t.to_string().len() as u64)
        .sum()
}

/// The bytes of a request's messages and offered tools.
pub fn prompt_bytes(request: &ChatRequest) -> u64 {
    request.messages.iter().map(message_bytes).sum::<u64>() + tools_bytes(request)
}

/// Learned prompt densities of the tiers this process calls.
#[derive(Debug, Default)]
pub struct PromptDensity {
    /// Tier → the densest prompt seen (prompt tokens per byte).
    densest: Mutex<HashMap<String, f64>>,
}

impl PromptDensity {
    /// Learns from a call to `tier` whose `bytes` of prompt were counted as `prompt_tokens`.
    pub fn observe(&self, tier: &str, bytes: u64, prompt_tokens: u64) {
        if bytes < MIN_OBSERVED_BYTES || prompt_tokens == 0 {
            return;
        }
        let density = prompt_tokens as f64 / bytes as f64;
        let mut densest = self.lock();
        let seen = densest.entry(tier.to_owned()).or_insert(density);
        if density > *seen {
            *seen = density;
        }
    }

    /// The tokens per byte a prompt to `tier` is bounded at.
    pub fn tokens_per_byte(&self, tier: &str) -> f64 {
        let default = 1.0 / PROMPT_BYTES_PER_TOKEN as f64;
        self.lock()
            .get(tier)
            .map_or(default, |d| (d * MARGIN).min(default))
    }

    /// An upper bound of the prompt tokens of `bytes` bytes in `messages` messages to `tier`.
    pub fn bound_bytes(&self, tier: &str, bytes: u64, messages: u64) -> u64 {
        // At most one token per 2 bytes of a u64 byte count: far inside f64's exact integers.
        let tokens = (bytes as f64 * self.tokens_per_byte(tier)).ceil() as u64;
        tokens + TOKENS_PER_MESSAGE * messages
    }

    /// An upper bound of a request's prompt tokens on `tier`: its messages (with the tool calls
    /// they carry) and the tools offered. A `response_format`
    /// schema is not counted: vLLM and SGLang constrain decoding with it and do not bill it as
    /// prompt tokens (a server that does is learned as a denser tier; docs/ARCHITECTURE.md §5).
    pub fn bound(&self, tier: &str, request: &ChatRequest) -> u64 {
        let messages: u64 = request
            .messages
            .iter()
            .map(|m| self.bound_bytes(tier, message_bytes(m), 1))
            .sum();
        let tools = match tools_bytes(request) {
            0 => 0,
            bytes => self.bound_bytes(tier, bytes, 0),
        };
        messages + tools
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, f64>> {
        // A panic while holding this lock leaves a valid map (each update is one store).
        self.densest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use planex_llm::ChatMessage;

    #[test]
    fn unobserved_tiers_use_the_default_and_counts_add_template_overhead() {
        let density = PromptDensity::default();
        let request = ChatRequest::new(vec![ChatMessage::system("abcd"), ChatMessage::user("abc")]);
        assert_eq!(density.bound("t", &request), 2 + 8 + 2 + 8);
    }

    #[test]
    fn the_densest_prompt_seen_times_the_margin_bounds_the_next() {
        let density = PromptDensity::default();
        // 4,000 bytes counted as 1,000 tokens: 0.25 a byte, bounded at 0.3125.
        density.observe("small", 4000, 1000);
        density.observe("small", 4000, 800);
        assert_eq!(density.bound_bytes("small", 4000, 1), 1250 + 8);
        // Short prompts teach nothing; other tiers keep the default.
        density.observe("small", 100, 100);
        assert_eq!(density.bound_bytes("small", 4000, 0), 1250);
        assert_eq!(density.bound_bytes("other", 4000, 0), 2000);
        // A denser prompt raises the bound, never above the default.
        density.observe("small", 1000, 900);
        assert_eq!(density.bound_bytes("small", 4000, 0), 2000);
    }
}
