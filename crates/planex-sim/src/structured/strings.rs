//! String values: free text is the sim's synthetic prose labelled `[simulated]` (unless
//! `maxLength` is under 24, where the label would be all there is), `format`s get a fixed-shape
//! value (dates in 2026, addresses in documentation ranges), `pattern`s a match.
//!
//! Key decision: lengths are honoured by padding with more synthetic words and cutting at a
//! character boundary, so `minLength`/`maxLength` hold for free text; for a pattern, up to
//! [`PATTERN_TRIES`] matches are drawn to find one of a valid length (best effort).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ir::{Format, StringSpec};
use crate::executor::LABEL;
use crate::text;

/// The smallest `maxLength` whose free text starts with the label.
const LABELLED_MIN: u64 = 24;
/// Draws of a pattern tried to meet the length bounds.
const PATTERN_TRIES: usize = 16;

/// A string for `spec` (free text starts with the `[simulated]` label when it fits).
pub fn draw(spec: &StringSpec, rng: &mut ChaCha8Rng, minimal: bool) -> String {
    if let Some(format) = spec.format {
        return formatted(format, rng);
    }
    if let Some(pattern) = &spec.pattern {
        let mut last = String::new();
        for _ in 0..PATTERN_TRIES {
            last = pattern.generate(rng);
            if fits(spec, &last) {
                break;
            }
        }
        return last;
    }
    // A short string would be all label: it gets synthetic words alone.
    let labelled = spec.max.is_none_or(|max| max >= LABELLED_MIN);
    let text = match (minimal, labelled) {
        (true, true) => LABEL.trim_end().to_owned(),
        (false, true) => format!("{LABEL}{}", text::sentence(rng)),
        (_, false) => text::sentence(rng),
    };
    fit(text, spec, rng)
}

fn fits(spec: &StringSpec, s: &str) -> bool {
    let n = s.chars().count() as u64;
    n >= spec.min && spec.max.is_none_or(|max| n <= max)
}

/// Pads `text` with synthetic words up to `minLength` and cuts it at `maxLength`.
fn fit(mut text: String, spec: &StringSpec, rng: &mut ChaCha8Rng) -> String {
    let min = usize::try_from(spec.min).unwrap_or(usize::MAX);
    while text.chars().count() < min {
        text.push(' ');
        text.push_str(&text::sentence(rng));
    }
    let max = spec.max.and_then(|m| usize::try_from(m).ok());
    if let Some(max) = max.filter(|max| text.chars().count() > *max) {
        text = text.chars().take(max).collect();
        let trimmed = text.trim_end();
        if trimmed.chars().count() >= min {
            text = trimmed.to_owned();
        }
    }
    text
}

/// Lower-case letters for host and mailbox names.
fn word(rng: &mut ChaCha8Rng) -> String {
    (0..rng.random_range(4..=8))
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

fn formatted(format: Format, rng: &mut ChaCha8Rng) -> String {
    let (month, day) = (rng.random_range(1..=12u8), rng.random_range(1..=28u8));
    let (h, m, s) = (
        rng.random_range(0..24u8),
        rng.random_range(0..60u8),
        rng.random_range(0..60u8),
    );
    match format {
        Format::DateTime => format!("2026-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
        Format::Date => format!("2026-{month:02}-{day:02}"),
        Format::Time => format!("{h:02}:{m:02}:{s:02}Z"),
        Format::Duration => format!("P{day}DT{h}H{m}M"),
        Format::Email => format!("{}@example.invalid", word(rng)),
        Format::Hostname => format!("{}.example.invalid", word(rng)),
        Format::Ipv4 => format!("192.0.2.{}", rng.random_range(1..=254u8)),
        Format::Ipv6 => format!("2001:db8::{:x}", rng.random_range(1..=0xffffu32)),
        Format::Uuid => {
            let hex: String = (0..32)
                .map(|i| match i {
                    12 => '4',
                    16 => ['8', '9', 'a', 'b'][rng.random_range(0..4)],
                    _ => char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'),
                })
                .collect();
            format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            )
        }
        Format::Uri => format!("https://example.invalid/sim/{}", word(rng)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn free_text_is_labelled_and_fits_its_lengths() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let spec = |min, max| StringSpec {
            min,
            max,
            ..StringSpec::default()
        };
        let plain = draw(&spec(0, None), &mut rng, false);
        assert!(plain.starts_with(LABEL), "{plain}");
        for (min, max) in [(200, None), (0, Some(5)), (30, Some(30)), (0, Some(0))] {
            let s = draw(&spec(min, max), &mut rng, false);
            let n = s.chars().count() as u64;
            assert!(
                n >= min && max.is_none_or(|m| n <= m),
                "{min} {max:?}: {s:?}"
            );
        }
        let uuid = formatted(Format::Uuid, &mut rng);
        assert_eq!(uuid.len(), 36, "{uuid}");
        assert_eq!(uuid.as_bytes()[14], b'4');
    }
}
