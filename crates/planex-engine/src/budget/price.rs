//! Exact prices at the ledger's precision, and the byte/token ratios the estimates start from.
//! Pure functions, shared by the budget guard's estimates and the meter.

use planex_core::{Decimal, Price};
use planex_store::ledger_usd;

/// Prompt bytes assumed per token in a call's worst case until the tier's real density is learned
/// (`density.rs`).
pub const PROMPT_BYTES_PER_TOKEN: u64 = 2;
/// Bytes per token of typical English text and JSON under the BPE tokenizers of Llama 3, Qwen2.5
/// and cl100k (about 4): how estimates turn tokens into the bytes the prompt bound counts.
pub const TEXT_BYTES_PER_TOKEN: u64 = 4;

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
