//! Token counting with the real `cl100k_base` tokenizer.
//!
//! Key decisions: the tokenizer is built once per process in a `LazyLock` and never panics: if
//! it could not be built, counts fall back to a rough 4-bytes-per-token estimate. Prompt tokens
//! follow the OpenAI chat accounting: Σ(tokens(content) + 4) + 3. Counts and an answer's streamed
//! pieces are memoised per text (`memo.rs`): the same prompts and answers come again and again,
//! and the tokenizer was the simulator's largest cost (docs/BENCHMARKS.md, benchmark 2).

use std::sync::{Arc, LazyLock};

use tiktoken_rs::CoreBPE;

use crate::memo::Memo;

static BPE: LazyLock<Option<CoreBPE>> = LazyLock::new(|| tiktoken_rs::cl100k_base().ok());

/// Tokens per content chunk of a streamed answer (the piece size [`pieces`] memoises).
pub const STREAM_PIECE_TOKENS: usize = 4;

/// Texts whose counts are memoised.
const COUNTS_KEPT: usize = 16_384;
/// Texts whose streamed pieces are memoised.
const PIECES_KEPT: usize = 2_048;

static COUNTS: LazyLock<Memo<u32>> = LazyLock::new(|| Memo::new(COUNTS_KEPT));
/// A text's streamed pieces, each with the tokens it carries.
pub type Pieces = Arc<[(String, u32)]>;

static PIECES: LazyLock<Memo<Pieces>> = LazyLock::new(|| Memo::new(PIECES_KEPT));

/// Number of tokens in `text`.
pub fn count(text: &str) -> u32 {
    COUNTS.get_or(text, || {
        let n = match BPE.as_ref() {
            Some(bpe) => bpe.encode_ordinary(text).len(),
            None => text.len().div_ceil(4),
        };
        u32::try_from(n).unwrap_or(u32::MAX)
    })
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

/// Splits `text` into consecutive pieces of about `per_piece` tokens each, with the tokens of
/// `text` each piece carries (they add up to `count(text)`); the pieces concatenate back to
/// `text` exactly (a piece never splits a UTF-8 character). Memoised for the piece size the
/// stream uses.
pub fn pieces(text: &str, per_piece: usize) -> Pieces {
    let per_piece = per_piece.max(1);
    if per_piece == STREAM_PIECE_TOKENS {
        PIECES.get_or(text, || split(text, per_piece).into())
    } else {
        split(text, per_piece).into()
    }
}

fn split(text: &str, per_piece: usize) -> Vec<(String, u32)> {
    let Some(bpe) = BPE.as_ref() else {
        return text
            .split_inclusive(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .chunks(per_piece)
            .map(|c| {
                let piece = c.concat();
                let tokens = u32::try_from(piece.len().div_ceil(4)).unwrap_or(u32::MAX);
                (piece, tokens)
            })
            .collect();
    };
    let ids = bpe.encode_ordinary(text);
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_tokens = 0u32;
    for chunk in ids.chunks(per_piece) {
        pending.extend(bpe.decode_bytes(chunk).unwrap_or_default());
        pending_tokens =
            pending_tokens.saturating_add(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
        let valid = match std::str::from_utf8(&pending) {
            Ok(_) => pending.len(),
            Err(e) => e.valid_up_to(),
        };
        if valid > 0 {
            let rest = pending.split_off(valid);
            out.push((
                String::from_utf8_lossy(&pending).into_owned(),
                pending_tokens,
            ));
            pending = rest;
            pending_tokens = 0;
        }
    }
    if !pending.is_empty() {
        // The bytes left over belong to tokens already counted above.
        out.push((
            String::from_utf8_lossy(&pending).into_owned(),
            pending_tokens,
        ));
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
        let split = pieces(text, 3);
        let joined: String = split.iter().map(|(piece, _)| piece.as_str()).collect();
        assert_eq!(joined, text);
        let carried: u32 = split.iter().map(|(_, n)| n).sum();
        assert_eq!(carried, count(text), "the pieces carry every token once");
        assert_eq!(
            pieces(text, 4),
            pieces(text, 4),
            "memoised pieces are the same"
        );
        assert!(count(&truncate("one two three four five", 2)) <= 2);
    }
}
