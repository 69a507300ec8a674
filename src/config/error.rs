//! Configuration errors ([`ConfigError`]) and the display of JSON paths
//! (`backends[0].timeouts.idle_ms`, `<root>` for the document itself).

use std::path::PathBuf;

/// Display name used for the document root in error paths.
const ROOT_PATH: &str = "<root>";

/// A configuration error. The `Display` form always starts with the JSON path
/// of the offending value (or, for I/O and syntax errors, the file / the
/// line and column).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("{}: cannot read config file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A `${VAR}` reference names an unset environment variable.
    #[error("{path}: environment variable {var} is not set")]
    EnvVarNotSet { path: String, var: String },
    /// The JSON does not match the schema (unknown key, wrong type, ...).
    #[error("{path}: {message}")]
    Schema { path: String, message: String },
    /// A value is well-typed but invalid (bad URL, duplicate name, ...).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl ConfigError {
    /// The JSON path the error refers to, if any (`None` for I/O and syntax
    /// errors).
    pub fn json_path(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } | ConfigError::Syntax { .. } => None,
            ConfigError::EnvVarNotSet { path, .. }
            | ConfigError::Schema { path, .. }
            | ConfigError::Invalid { path, .. } => Some(path),
        }
    }

    pub(super) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: display_path(path.into()),
            message: message.into(),
        }
    }
}

/// `<root>` for the empty path (the document itself).
pub(super) fn display_path(path: String) -> String {
    if path.is_empty() {
        ROOT_PATH.to_string()
    } else {
        path
    }
}

/// `path.key`, or `key` at the root.
pub(super) fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn syntax_error(err: serde_json::Error) -> ConfigError {
    let (line, column) = (err.line(), err.column());
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    ConfigError::Syntax {
        line,
        column,
        message,
    }
}

/// serde quotes names with backticks; use double quotes in our messages.
fn tidy_serde_message(message: &str) -> String {
    message.replace('`', "\"")
}

/// A schema error at its path, e.g. `backends[0].timeouts.idle_ms: invalid type: …`.
pub(super) fn schema_error(err: serde_path_to_error::Error<serde_json::Error>) -> ConfigError {
    use serde_path_to_error::Segment;
    let message = tidy_serde_message(&err.inner().to_string());
    let mut segments: Vec<&Segment> = err.path().iter().collect();
    // The path of an unknown key ends with the key; name the object that has it.
    if message.starts_with("unknown field") && matches!(segments.last(), Some(Segment::Map { .. }))
    {
        segments.pop();
    }
    let mut path = String::new();
    for segment in segments {
        path = match segment {
            Segment::Seq { index } => format!("{path}[{index}]"),
            Segment::Map { key } => join_key(&path, key),
            Segment::Enum { variant } => join_key(&path, variant),
            Segment::Unknown => join_key(&path, "?"),
        };
    }
    ConfigError::Schema {
        path: display_path(path),
        message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::testing::*;
    use super::*;

    #[test]
    fn invalid_json_reports_line_and_column() {
        let e = err("{\n  \"listen\": ,\n}", &["invalid JSON at line 2, column"]);
        match e {
            ConfigError::Syntax { line, column, .. } => {
                assert_eq!(line, 2);
                assert!(column > 0);
            }
            other => panic!("unexpected {other:?}"),
        }
        err("", &["invalid JSON", "EOF"]);
    }
}
