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

/// The fields of JSON bodies and events that carry error text (and so may name an endpoint);
/// `errors` (a list of such texts) is redacted too.
const ERROR_FIELDS: [&str; 4] = ["error", "reason", "cause", "message"];

/// `value` with [`urls`] applied to every string under an error-text field (`error`, `reason`,
/// `cause`, `message`) at any depth; other strings (results, arguments) are kept as they are.
pub fn error_fields(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match field {
                    serde_json::Value::String(text) if ERROR_FIELDS.contains(&key.as_str()) => {
                        *text = urls(text);
                    }
                    // A list of error texts (`/readyz`'s `errors`).
                    serde_json::Value::Array(items) if key == "errors" => {
                        for item in items.iter_mut() {
                            match item {
                                serde_json::Value::String(text) => *text = urls(text),
                                other => error_fields(other),
                            }
                        }
                    }
                    other => error_fields(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(error_fields),
        _ => {}
    }
}

fn find_url(text: &str) -> Option<usize> {
    // ASCII lowercasing keeps byte offsets, so `HTTP://` is found at the same place.
    let text = text.to_ascii_lowercase();
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
        assert_eq!(urls("HTTP://10.0.0.7/v1 down"), "<internal endpoint> down");
    }

    #[test]
    fn only_error_fields_are_redacted_at_any_depth() {
        let mut value = serde_json::json!({
            "error": "GET http://10.0.0.7/x failed",
            "result": "see http://example.com",
            "steps": [{"reason": "https://tool.internal/run: 502", "args": {"url": "http://a"}}],
            "errors": ["http://10.0.0.7:8000: no answer"],
        });
        error_fields(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "error": "GET <internal endpoint> failed",
                "result": "see http://example.com",
                "steps": [{"reason": "<internal endpoint>: 502", "args": {"url": "http://a"}}],
                "errors": ["<internal endpoint>: no answer"],
            })
        );
    }
}
