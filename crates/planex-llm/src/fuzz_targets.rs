//! Fuzz targets of what a model server sends back (bolero; plain tests with random inputs and
//! seeds, coverage-guided with `cargo bolero test`, docs/ARCHITECTURE.md §9): the event-stream
//! decoder and the chat-completion decoder never panic on any bytes, however they are cut.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::sse::{LineSplitter, StreamAccumulator};
use crate::wire::{WireChunk, WireResponse};

/// Streams and bodies the decoders must read: text, tool calls, usage, errors, truncation.
const SEEDS: &[&str] = &[
    "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hé\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"read\",\"arguments\":\"{\\\"pa\"}}]}}]}\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"th\\\":1}\"}}]}}]}\ndata: [DONE]\n",
    "data: {\"error\":{\"message\":\"boom\"}}\n",
    ": keep-alive\r\nevent: x\r\ndata: {\"choices\":[{\"delta\":{\"content\":null,\"tool_calls\":null}}]}\r\n",
    "{\"model\":\"m\",\"choices\":[{\"message\":{\"content\":\"hi\",\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1}}}]}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":1}}}",
];

fn check(bytes: &[u8], cut: usize) {
    let cut = cut % (bytes.len() + 1);
    let mut splitter = LineSplitter::default();
    let mut acc = StreamAccumulator::default();
    let mut lines = splitter.push(&bytes[..cut]);
    lines.extend(splitter.push(&bytes[cut..]));
    lines.extend(splitter.finish());
    for line in &lines {
        if acc.on_line(line).is_err() {
            break;
        }
    }
    let _ = acc.tool_calls();
    let _ = serde_json::from_slice::<WireResponse>(bytes);
    let _ = serde_json::from_slice::<WireChunk>(bytes);
}

#[test]
fn model_responses() {
    for seed in SEEDS {
        for cut in [0, 1, 5, seed.len() / 2] {
            check(seed.as_bytes(), cut);
        }
    }
    bolero::check!().for_each(|bytes: &[u8]| {
        check(bytes, usize::from(bytes.first().copied().unwrap_or(0)));
    });
}
