//! Environment substitution: `${VAR}` and `${VAR:-default}` in the string values of the
//! parsed document, before it is deserialized.

use serde_json::Value;

use super::error::{display_path, join_key, ConfigError};

/// Replaces `${VAR}` and `${VAR:-default}` in every string value (not in
/// object keys) of `value`, in place.
pub(super) fn substitute_env(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        Value::String(s) => {
            if s.contains("${") {
                *s = substitute_str(s, path, env)?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_env(item, &format!("{path}[{i}]"), env)?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                substitute_env(item, &join_key(path, key), env)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

fn substitute_str(
    input: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(ConfigError::invalid(
                path,
                format!("unterminated \"${{\" in {input:?}"),
            ));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::invalid(
                path,
                format!(
                    "invalid environment reference \"${{{inner}}}\" \
                     (expected ${{NAME}} or ${{NAME:-default}})"
                ),
            ));
        }
        let found = env(name);
        match default {
            None => match found {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(ConfigError::EnvVarNotSet {
                        path: display_path(path.to_string()),
                        var: name.to_string(),
                    })
                }
            },
            Some(default) => match found {
                Some(v) if !v.is_empty() => out.push_str(&v),
                _ => out.push_str(default),
            },
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::testing::*;
    use super::super::{Config, ConfigError};
    use std::path::PathBuf;

    #[test]
    fn env_var_is_substituted() {
        let env = env_of(&[("GLM_API_KEY", "secret-1"), ("HOST", "example.org")]);
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"glm","url":"https://${HOST}/v4","api_key":"Bearer-${GLM_API_KEY}-x"}]}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.backends[0].api_key, "Bearer-secret-1-x");
        assert_eq!(c.backends[0].base_url, "https://example.org/v4");
    }

    #[test]
    fn unset_env_var_is_an_error_naming_the_path() {
        let env = env_of(&[("GLM_API_KEY", "k")]);
        let e = Config::from_json_str(
            r#"{"backends":[
                {"name":"glm","url":"http://a","api_key":"${GLM_API_KEY}","match_rules":{"default":true}},
                {"name":"kimi","url":"http://b","api_key":"${KIMI_API_KEY}","match_rules":{"path_prefix":"/kimi"}}
            ]}"#,
            &env,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "backends[1].api_key: environment variable KIMI_API_KEY is not set"
        );
        assert!(matches!(e, ConfigError::EnvVarNotSet { ref var, .. } if var == "KIMI_API_KEY"));
        assert_eq!(e.json_path(), Some("backends[1].api_key"));
    }

    #[test]
    fn set_but_empty_env_var_is_used_as_is() {
        let env = env_of(&[("EMPTY", "")]);
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"a","url":"http://h","api_key":"${EMPTY}"}]}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.backends[0].api_key, "");
    }

    #[test]
    fn default_syntax() {
        let env = env_of(&[("SET", "value"), ("EMPTY", "")]);
        let c = Config::from_json_str(
            r#"{"log_dir":"${UNSET:-/tmp/logs}","log_level":"${SET:-warn}",
                "backends":[{"name":"a","url":"http://h","api_key":"${EMPTY:-fallback}","model":"${UNSET:-}"}],
                "telemetry":{"service_name":"${UNSET:-a:-b}"}}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.log_dir, PathBuf::from("/tmp/logs"));
        assert_eq!(c.log_level, "value");
        assert_eq!(c.backends[0].api_key, "fallback");
        assert_eq!(c.backends[0].model, None);
        assert_eq!(c.telemetry.service_name, "a:-b");
    }

    #[test]
    fn dollar_without_brace_is_literal() {
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"a","url":"http://h","api_key":"a$$b$c$"}]}"#,
            &no_env,
        )
        .unwrap();
        assert_eq!(c.backends[0].api_key, "a$$b$c$");
    }

    #[test]
    fn substituted_values_are_not_rescanned() {
        let env = env_of(&[("A", "${B}")]);
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"a","url":"http://h","api_key":"${A}"}]}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.backends[0].api_key, "${B}");
    }

    #[test]
    fn bad_env_reference_syntax() {
        err(
            r#"{"log_dir":"${UNTERMINATED","backends":[]}"#,
            &["log_dir:", "unterminated"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","api_key":"${}"}"#),
            &["backends[0].api_key:", "invalid environment reference"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","api_key":"${A-b}"}"#),
            &["backends[0].api_key:", "${A-b}"],
        );
    }

    #[test]
    fn env_in_arrays_and_keys() {
        // Keys are never substituted (an unknown key stays unknown).
        err(
            r#"{"${X}":1,"backends":[]}"#,
            &["<root>", "unknown field \"${X}\""],
        );
    }
}
