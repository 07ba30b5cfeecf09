//! Per-request fault markers (`#sim:fail=CODE[xN]`, `#sim:hang`, `#sim:malformed`, `#sim:truncate`,
//! `#sim:tokens=N`, `#sim:json`, `#sim:invalid_at=K`, `#sim:replan`) found anywhere in message contents or a
//! search query.
//!
//! Key decision: markers are plain text so any client (the engine, curl, a workload file) can
//! trigger a fault deterministically; unknown `#sim:` words are ignored, the first `fail`
//! marker wins.

/// A `#sim:fail=CODE` or `#sim:fail=CODExN` marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailMarker {
    /// The marker text exactly as written (used as part of the counter key).
    pub raw: String,
    /// HTTP status to answer.
    pub status: u16,
    /// `Some(n)`: only the first `n` matching requests fail; `None`: every request fails.
    pub times: Option<u32>,
}

/// All markers found in a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Markers {
    /// The first `#sim:fail=…` marker.
    pub fail: Option<FailMarker>,
    /// `#sim:hang` was present.
    pub hang: bool,
    /// `#sim:malformed` was present.
    pub malformed: bool,
    /// `#sim:truncate` was present: the answer breaks off part-way.
    pub truncate: bool,
    /// `#sim:tokens=N`: the executor answer length in tokens.
    pub tokens: Option<u32>,
    /// `#sim:json`: the executor answers a JSON object (`{"simulated": true, "summary": …}`)
    /// even without a JSON `response_format`, so a plan can use `{step_N_result.summary}`.
    pub json: bool,
    /// `#sim:invalid_at=K`: the plan's K-th step (1-based) names a tool that does not exist, so
    /// the plan is valid up to step K-1 and turns invalid there (a streamed plan's mid-stream
    /// failure). Only the first plan of a conversation: the re-plan that follows is valid.
    pub invalid_at: Option<usize>,
    /// `#sim:replan`: the joiner answers `replan` (once, in round 1) instead of `finish`.
    pub replan: bool,
}

const PREFIX: &str = "#sim:";

impl Markers {
    /// Scans all `texts` for markers.
    pub fn scan<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut markers = Self::default();
        for text in texts {
            for word in marker_words(text) {
                markers.apply(word);
            }
        }
        markers
    }

    fn apply(&mut self, word: &str) {
        if word == "hang" {
            self.hang = true;
        } else if word == "malformed" {
            self.malformed = true;
        } else if word == "truncate" {
            self.truncate = true;
        } else if word == "json" {
            self.json = true;
        } else if word == "replan" {
            self.replan = true;
        } else if let Some(k) = word.strip_prefix("invalid_at=") {
            if let Ok(k) = k.parse::<usize>() {
                self.invalid_at.get_or_insert(k.max(1));
            }
        } else if let Some(n) = word.strip_prefix("tokens=") {
            if let Ok(n) = n.parse::<u32>() {
                self.tokens.get_or_insert(n);
            }
        } else if let Some(spec) = word.strip_prefix("fail=").filter(|_| self.fail.is_none()) {
            self.fail = parse_fail(spec).map(|(status, times)| FailMarker {
                raw: format!("{PREFIX}{word}"),
                status,
                times,
            });
        }
    }
}

/// The words right after each `#sim:` (up to the first character that cannot be part of one).
fn marker_words(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices(PREFIX).map(move |(start, _)| {
        let rest = &text[start + PREFIX.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '=' || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    })
}

fn parse_fail(spec: &str) -> Option<(u16, Option<u32>)> {
    let (code, times) = match spec.split_once('x') {
        Some((code, n)) => (code, Some(n.parse::<u32>().ok()?)),
        None => (spec, None),
    };
    let status = code.parse::<u16>().ok()?;
    (400..=599).contains(&status).then_some((status, times))
}

/// `text` with every `#sim:…` marker removed (used so generated plan args do not carry the
/// planner's markers into executor requests).
pub fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(PREFIX) {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + PREFIX.len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '=' || c == '_'))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn scans_markers() {
        let m = Markers::scan(["do it #sim:fail=500x2, then", "#sim:hang #sim:tokens=7"]);
        let fail = m.fail.unwrap();
        assert_eq!((fail.status, fail.times), (500, Some(2)));
        assert_eq!(fail.raw, "#sim:fail=500x2");
        assert!(m.hang && !m.malformed);
        assert_eq!(m.tokens, Some(7));
        let m = Markers::scan(["#sim:fail=429 #sim:malformed #sim:fail=abc #sim:other"]);
        assert_eq!(m.fail.unwrap().times, None);
        assert!(m.malformed);
        assert_eq!(Markers::scan(["#sim:fail=200"]).fail, None);
        assert!(Markers::scan(["facts #sim:json"]).json && !m.json);
        assert_eq!(
            Markers::scan(["plan #sim:invalid_at=3"]).invalid_at,
            Some(3)
        );
    }

    #[test]
    fn strips_markers() {
        assert_eq!(
            strip("GPU prices #sim:fail=500x2 in 2026"),
            "GPU prices in 2026"
        );
    }
}
