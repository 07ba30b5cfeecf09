//! What can be wrong with a config: it cannot be read or parsed, or a value is invalid.

use std::path::PathBuf;

/// A config that cannot be read or is invalid; every message names the file or the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file named on the command line cannot be read (it does not exist, or is not
    /// readable).
    #[error("cannot read config file {}; pass an existing, readable file or omit --config for the embedded default", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error of opening it.
        #[source]
        source: std::io::Error,
    },
    /// The file or a `PLANEX_*` environment variable could not be parsed, names an unknown field,
    /// or gives a value outside a field's accepted set.
    #[error(
        "the config is not valid; fix what the cause names (in the file, or in the PLANEX_* variable that sets it)"
    )]
    Parse(#[source] Box<figment::Error>),
    /// TOML text (not a file) could not be parsed.
    #[error("the config text is not valid TOML")]
    Toml(#[source] toml::de::Error),
    /// A value is out of range or inconsistent with another.
    #[error("config error in {field}: {message}")]
    Invalid {
        /// The field, as a dotted path (`tiers.executor.usd_per_hour`).
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
}

/// A [`ConfigError::Invalid`] for `field`.
pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}
