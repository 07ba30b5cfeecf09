//! Catalog names of MCP tools: `server__tool`, made to fit `^[a-zA-Z0-9_-]{1,64}$` (what OpenAI
//! function names, and so planner tool enums, allow).

use sha2::{Digest, Sha256};

/// The longest catalog name.
const MAX_NAME: usize = 64;

/// The catalog name of `tool` on `server`: characters outside `[a-zA-Z0-9_-]` become `_`; a name
/// over 64 characters keeps its first 55 and ends with `_` and 8 hex digits of the full name's
/// sha256, so two long names stay apart.
pub fn catalog_name(server: &str, tool: &str) -> String {
    let full = format!("{server}__{tool}");
    let safe: String = full
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.len() <= MAX_NAME {
        return safe;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{}_{hex}", &safe[..MAX_NAME - 9])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        (1..=MAX_NAME).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn names_are_server_and_tool_made_safe_and_short() {
        assert_eq!(catalog_name("files", "read_file"), "files__read_file");
        assert_eq!(catalog_name("my.db", "run query"), "my_db__run_query");
        let long = catalog_name("server", &"t".repeat(100));
        let other = catalog_name("server", &format!("{}x", "t".repeat(99)));
        assert!(valid(&long) && valid(&other), "{long} {other}");
        assert_ne!(long, other, "long names keep a digest of the whole");
    }
}
