//! The error of a schema the simulator cannot answer (what a strict-mode server's 400 names).

/// A schema the simulator cannot answer: the keyword, where it is, and what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{keyword}` at {path} {problem}")]
pub struct SchemaError {
    /// Where in the schema, as `#/json/pointer` (`#` is the root).
    pub path: String,
    /// The keyword at fault.
    pub keyword: String,
    /// What is wrong and what to do.
    pub problem: String,
}

impl SchemaError {
    /// An error about `keyword` in the schema at `path` (already in `#/…` form).
    pub fn new(path: &str, keyword: &str, problem: impl Into<String>) -> Self {
        SchemaError {
            path: path.to_owned(),
            keyword: keyword.to_owned(),
            problem: problem.into(),
        }
    }
}
