//! Tenant-facing text without internal addresses: model-server and tool URLs in error messages
//! are replaced before they reach a client (the full text is logged with the task id instead).

/// What an internal URL is replaced with.
pub const REDACTED: &str = "<internal endpoint>";

/// `text` with every `http://…` and `https://…` URL replaced by [`REDACTED`].
pub fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_url(rest) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ',' | ';' | '>'))
            .unwrap_or(tail.len());
        // A URL that ends a sentence keeps the sentence's full stop or colon outside.
        // (`tail` starts with "http", so the trimmed URL is never empty.)
        let end = tail[..end].trim_end_matches(['.', ':']).len();
        out.push_str(REDACTED);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn find_url(text: &str) -> Option<usize> {
    match (text.find("http://"), text.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_replaced_and_the_rest_kept() {
        assert_eq!(
            urls("endpoint http://10.0.0.7:8000/v1: HTTP 500: boom"),
            "endpoint <internal endpoint>: HTTP 500: boom"
        );
        assert_eq!(
            urls("(https://a.internal/x) and http://b:1."),
            "(<internal endpoint>) and <internal endpoint>."
        );
        assert_eq!(urls("no address here"), "no address here");
    }
}
