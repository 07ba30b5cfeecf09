//! What a model call may cost at most: an upper bound of its prompt tokens, and exact prices at
//! the ledger's precision. Pure functions, shared by the budget guard's estimates and the meter.

use planex_core::{Decimal, Price};
use planex_llm::ChatRequest;
use planex_store::ledger_usd;

/// Prompt bytes assumed per token in a call's worst case.
pub const PROMPT_BYTES_PER_TOKEN: u64 = 2;
/// Bytes per token of typical English text and JSON under the BPE tokenizers above (about 4): how
/// estimates turn tokens into the bytes the prompt bound counts.
pub const TEXT_BYTES_PER_TOKEN: u64 = 4;
/// Tokens of chat-template overhead assumed per message.
const TOKENS_PER_MESSAGE: u64 = 8;
/// An upper bound of a request's prompt tokens: its messages. A `response_format` schema is not
/// counted: vLLM and SGLang constrain decoding with it and do not bill it as prompt tokens (a
/// server that does could pass the bound by the schema's size; docs/ARCHITECTURE.md §5).
pub fn prompt_bound(request: &ChatRequest) -> u64 {
    request
        .messages
        .iter()
        .map(|m| (m.content.len() as u64).div_ceil(PROMPT_BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE)
        .sum()
}

/// The cost of `prompt` input and `completion` output tokens under `price`, at ledger precision.
pub fn tokens_cost(price: &Price, prompt: u64, completion: u64) -> Decimal {
    let (input, output) = price.per_million();
    ledger_usd(
        (input * Decimal::from(prompt) + output * Decimal::from(completion))
            / Decimal::from(1_000_000u32),
    )
}

/// Rounds an amount *down* to the ledger's precision (what a booking of it, rounded up, still fits).
pub fn floor_usd(amount: Decimal) -> Decimal {
    amount.trunc_with_scale(9)
}
