//! Cutting text for display: error texts, task previews and tool messages are shown at most so
//! many characters long, cut on a character boundary and marked with `…`.

/// `text` cut to at most `max_chars` characters, with `…` appended when anything was cut.
pub fn clip_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary_and_marked() {
        assert_eq!(clip_chars("short", 10), "short");
        assert_eq!(clip_chars("ééééé", 3), "ééé…");
        assert_eq!(clip_chars("abc", 3), "abc");
    }
}
