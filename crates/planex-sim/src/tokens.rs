//! Token counting with the real `cl100k_base` tokenizer.
//!
//! Key decision: the tokenizer is built once per process in a `LazyLock` and never panics: if
//! it could not be built, counts fall back to a rough 4-bytes-per-token estimate. Prompt tokens
//! follow the OpenAI chat accounting: Σ(tokens(content) + 4) + 3.

use std::sync::LazyLock;

use tiktoken_rs::CoreBPE;

static BPE: LazyLock<Option<CoreBPE>> = LazyLock::new(|| tiktoken_rs::cl100k_base().ok());

/// Number of tokens in `text`.
pub fn count(text: &str) -> u32 {
    let n = match BPE.as_ref() {
        Some(bpe) => bpe.encode_ordinary(text).len(),
        None => text.len().div_ceil(4),
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Prompt tokens of a chat request: Σ over messages (tokens(content) + 4) + 3.
pub fn prompt_tokens<'a>(contents: impl IntoIterator<Item = &'a str>) -> u32 {
    contents.into_iter().fold(3u32, |acc, c| {
        acc.saturating_add(count(c).saturating_add(4))
    })
}

/// The longest prefix of `text` with at most `max` tokens (cut at a token boundary).
pub fn truncate(text: &str, max: u32) -> String {
    let Some(bpe) = BPE.as_ref() else {
        let mut end = (max as usize).saturating_mul(4).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        return text[..end].to_owned();
    };
    let ids = bpe.encode_ordinary(text);
    if ids.len() <= max as usize {
        return text.to_owned();
    }
    let bytes = bpe.decode_bytes(&ids[..max as usize]).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Splits `text` into consecutive pieces of about `per_piece` tokens each; the pieces
/// concatenate back to `text` exactly (a piece never splits a UTF-8 character).
pub fn pieces(text: &str, per_piece: usize) -> Vec<String> {
    let per_piece = per_piece.max(1);
    let Some(bpe) = BPE.as_ref() else {
        return text
            .split_inclusive(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .chunks(per_piece)
            .map(|c| c.concat())
            .collect();
    };
    let ids = bpe.encode_ordinary(text);
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for chunk in ids.chunks(per_piece) {
        pending.extend(bpe.decode_bytes(chunk).unwrap_or_default());
        let valid = match std::str::from_utf8(&pending) {
            Ok(_) => pending.len(),
            Err(e) => e.valid_up_to(),
        };
        if valid > 0 {
            let rest = pending.split_off(valid);
            out.push(String::from_utf8_lossy(&pending).into_owned());
            pending = rest;
        }
    }
    if !pending.is_empty() {
        out.push(String::from_utf8_lossy(&pending).into_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn counts_and_splits() {
        assert_eq!(count("hello world"), 2);
        assert_eq!(prompt_tokens(["hello world", ""]), 3 + 6 + 4);
        let text = "Prix de l'énergie — 2026 ✓ résumé, 漢字 too";
        assert_eq!(pieces(text, 3).concat(), text);
        assert!(count(&truncate("one two three four five", 2)) <= 2);
    }
}
