//! Helpers of the configuration tests.
#![allow(clippy::expect_used)]

use super::{Config, ConfigError};

pub(super) fn no_env(_: &str) -> Option<String> {
    None
}

pub(super) fn env_of(
    pairs: &'static [(&'static str, &'static str)],
) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

pub(super) fn parse(json: &str) -> Result<Config, ConfigError> {
    Config::from_json_str(json, &no_env)
}

pub(super) fn ok(json: &str) -> Config {
    match parse(json) {
        Ok(c) => c,
        Err(e) => panic!("expected valid config, got error: {e}"),
    }
}

/// Asserts the config is rejected and the message contains every needle.
pub(super) fn err(json: &str, needles: &[&str]) -> ConfigError {
    match parse(json) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => {
            let msg = e.to_string();
            for needle in needles {
                assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
            }
            e
        }
    }
}

pub(super) const ONE: &str =
    r#"{"backends":[{"name":"glm","url":"https://open.bigmodel.cn/api/paas/v4/"}]}"#;

pub(super) fn with_backends(backends: &str) -> String {
    format!(r#"{{"backends":[{backends}]}}"#)
}
