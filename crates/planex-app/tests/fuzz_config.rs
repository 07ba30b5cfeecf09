//! Fuzz target of config parsing (bolero; a plain test with random inputs and seeds,
//! coverage-guided with `cargo bolero test`): `Config::from_toml` never panics, whatever the
//! text; the embedded default and its fields cut or swapped are the seeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_app::{Config, DEFAULT_CONFIG};

fn check(text: &str) {
    let _ = Config::from_toml(text);
}

#[test]
fn config_parsing() {
    assert!(Config::from_toml(DEFAULT_CONFIG).is_ok());
    let lines: Vec<&str> = DEFAULT_CONFIG.lines().collect();
    for i in 0..lines.len() {
        // Each line dropped, and each line's value replaced by the wrong type.
        let mut dropped = lines.clone();
        dropped.remove(i);
        check(&dropped.join("\n"));
        if let Some((key, _)) = lines[i].split_once('=') {
            let mut wrong = lines.clone();
            let swapped = format!("{key}= [\"x\", 1]");
            wrong[i] = &swapped;
            check(&wrong.join("\n"));
        }
    }
    bolero::check!().for_each(|bytes: &[u8]| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            check(text);
            check(&format!("{DEFAULT_CONFIG}\n{text}"));
        }
    });
}
