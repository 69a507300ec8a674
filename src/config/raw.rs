//! The raw (serde) form of the configuration file: every key optional, unknown keys
//! rejected, and only objects where a struct is expected. Validation ([`super::validate`])
//! turns it into [`super::Config`].

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::error::{schema_error, ConfigError};
use super::{LogFormat, OtlpProtocol};
use crate::providers::{EffortStyle, Passback, Sampling};

/// Deserializes the (substituted) document into the raw form. `serde_path_to_error` tracks
/// the JSON path of a schema error while deserializing, in one pass.
pub(super) fn deserialize_raw(value: &Value) -> Result<RawConfig, ConfigError> {
    serde_path_to_error::deserialize::<_, Object<RawConfig>>(value)
        .map(|raw| raw.0)
        .map_err(schema_error)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a configuration object")]
pub(super) struct RawConfig {
    pub(super) listen: Option<String>,
    pub(super) log_dir: Option<String>,
    pub(super) log_body: Option<bool>,
    pub(super) log_body_max_bytes: Option<usize>,
    pub(super) log_level: Option<String>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) threads: Option<usize>,
    pub(super) grace_period_seconds: Option<u64>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) backends: Option<Vec<Object<RawBackend>>>,
    pub(super) telemetry: Option<Object<RawTelemetry>>,
    pub(super) auth_tokens: Option<Vec<RawToken>>,
    pub(super) prices: Option<std::collections::BTreeMap<String, Object<RawPrice>>>,
    pub(super) websocket: Option<Object<RawWebSocket>>,
    pub(super) store: Option<Object<RawStore>>,
    pub(super) dashboard: Option<Object<RawDashboard>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a dashboard object")]
pub(super) struct RawDashboard {
    pub(super) enabled: Option<bool>,
    pub(super) admin_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a backend object")]
pub(super) struct RawBackend {
    // `name` and `url` are required but optional here so that a missing one
    // is reported by validation with the backend's path.
    pub(super) name: Option<String>,
    pub(super) url: Option<String>,
    pub(super) api_key: Option<String>,
    pub(super) model: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) provider: Option<String>,
    pub(super) timeouts: Option<Object<RawTimeouts>>,
    pub(super) match_rules: Option<Object<RawMatchRules>>,
    pub(super) fallback: Option<Vec<String>>,
    pub(super) retries: Option<u32>,
    pub(super) circuit: Option<Object<RawCircuit>>,
    pub(super) quirks: Option<Object<RawQuirks>>,
    pub(super) web_search: Option<WebSearchSwitch>,
    pub(super) prices: Option<std::collections::BTreeMap<String, Object<RawPrice>>>,
    // Model metadata for Codex: `models`, or the keys below for the single `model`.
    pub(super) models: Option<Vec<Object<RawModel>>>,
    pub(super) context_window: Option<i64>,
    pub(super) max_output_tokens: Option<i64>,
    pub(super) reasoning: Option<Object<RawReasoning>>,
    pub(super) input_modalities: Option<Vec<String>>,
    pub(super) parallel_tool_calls: Option<bool>,
    pub(super) apply_patch: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a circuit object")]
pub(super) struct RawCircuit {
    pub(super) failures: Option<u32>,
    pub(super) cool_down_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a timeouts object")]
pub(super) struct RawTimeouts {
    pub(super) connect_ms: Option<u64>,
    pub(super) first_byte_ms: Option<u64>,
    pub(super) idle_ms: Option<u64>,
    pub(super) total_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a match_rules object")]
pub(super) struct RawMatchRules {
    pub(super) path_prefix: Option<String>,
    pub(super) default: Option<bool>,
    pub(super) model: Option<OneOrMany>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Per-backend overrides of the provider profile's switches.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a quirks object")]
pub(super) struct RawQuirks {
    pub(super) developer_role: Option<Role>,
    pub(super) flatten_content: Option<bool>,
    pub(super) drop_tools: Option<bool>,
    pub(super) tool_choice_auto_only: Option<bool>,
    pub(super) tool_choice_required_to_auto: Option<bool>,
    pub(super) strip_strict: Option<bool>,
    pub(super) think_tags: Option<bool>,
    pub(super) max_tokens_field: Option<MaxTokensField>,
    pub(super) reasoning_passback: Option<Passback>,
    pub(super) require_reasoning_content: Option<bool>,
    pub(super) sampling: Option<Sampling>,
    pub(super) images: Option<bool>,
    pub(super) tool_stream: Option<bool>,
    pub(super) reasoning_effort: Option<EffortStyle>,
    pub(super) json_schema: Option<bool>,
    pub(super) empty_content_with_tool_calls: Option<bool>,
}

/// An `auth_tokens` entry: a token, or a named client key with its budget.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a token string or a client key object {name, token, budget}"
)]
pub(super) enum RawToken {
    Plain(String),
    Named(RawClientKey),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClientKey {
    pub(super) name: Option<String>,
    pub(super) token: Option<String>,
    pub(super) budget: Option<RawBudget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub(super) usd: Option<f64>,
    pub(super) per: Option<crate::spend::Per>,
}

/// A model's price, USD per million tokens.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a price object {input, cached_input, output, cache_write}"
)]
pub(super) struct RawPrice {
    pub(super) input: Option<f64>,
    pub(super) cached_input: Option<f64>,
    pub(super) output: Option<f64>,
    pub(super) cache_write: Option<f64>,
}

/// A backend's `web_search`: the provider's own search for the hosted `web_search` tool,
/// or none (the tool is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum WebSearchSwitch {
    Native,
    Off,
}

/// `store.type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StoreType {
    #[default]
    Embedded,
    Redis,
    Memory,
    None,
}

impl StoreType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            StoreType::Embedded => "embedded",
            StoreType::Redis => "redis",
            StoreType::Memory => "memory",
            StoreType::None => "none",
        }
    }
}

/// `quirks.developer_role`: the role late `developer`/`system` messages get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Role {
    System,
    User,
    Developer,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Developer => "developer",
        }
    }
}

/// `quirks.max_tokens_field`: the name of the output-token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum MaxTokensField {
    MaxTokens,
    MaxCompletionTokens,
}

impl MaxTokensField {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a store object")]
pub(super) struct RawStore {
    #[serde(rename = "type")]
    pub(super) kind: Option<StoreType>,
    pub(super) path: Option<String>,
    pub(super) ttl_days: Option<f64>,
    pub(super) max_bytes: Option<u64>,
    pub(super) url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a websocket object")]
pub(super) struct RawWebSocket {
    pub(super) enabled: Option<bool>,
    pub(super) max_connection_minutes: Option<f64>,
    pub(super) max_connection_bytes: Option<usize>,
    pub(super) max_message_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a telemetry object")]
pub(super) struct RawTelemetry {
    pub(super) enabled: Option<bool>,
    pub(super) service_name: Option<String>,
    pub(super) otlp_endpoint: Option<String>,
    pub(super) protocol: Option<OtlpProtocol>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a model object")]
pub(super) struct RawModel {
    pub(super) name: Option<String>,
    pub(super) context_window: Option<i64>,
    pub(super) max_output_tokens: Option<i64>,
    pub(super) reasoning: Option<Object<RawReasoning>>,
    pub(super) input_modalities: Option<Vec<String>>,
    pub(super) parallel_tool_calls: Option<bool>,
    pub(super) apply_patch: Option<String>,
}

impl RawModel {
    pub(super) fn first_metadata_key(&self) -> Option<&'static str> {
        [
            ("context_window", self.context_window.is_some()),
            ("max_output_tokens", self.max_output_tokens.is_some()),
            ("reasoning", self.reasoning.is_some()),
            ("input_modalities", self.input_modalities.is_some()),
            ("parallel_tool_calls", self.parallel_tool_calls.is_some()),
            ("apply_patch", self.apply_patch.is_some()),
        ]
        .into_iter()
        .find(|(_, set)| *set)
        .map(|(key, _)| key)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a reasoning object")]
pub(super) struct RawReasoning {
    pub(super) supported: Option<bool>,
    pub(super) default_effort: Option<String>,
}

/// A raw struct that only a JSON object deserializes into: serde's derived structs also
/// accept an array (the fields by position), which the configuration format does not. Other
/// wrong types get the struct's own message (`invalid type: integer `5`, expected a
/// timeouts object`).
#[derive(Debug, Default)]
pub(super) struct Object<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(deserializer)).map(Object)
    }
}

/// A deserializer that hands a struct's visitor only maps (see [`Object`]).
struct MapOnly<D>(D);

impl<'de, D: serde::Deserializer<'de>> serde::Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, MapOnly(visitor))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The struct's visitor, for maps only: anything else is an invalid type, with the struct's
/// `expecting`.
impl<'de, V: Visitor<'de>> Visitor<'de> for MapOnly<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::testing::*;
    use crate::providers::{EffortStyle, Passback, Sampling};

    /// Every struct position takes objects only, `store` and `websocket` included.
    #[test]
    fn sequences_are_not_structs() {
        for key in ["store", "websocket", "telemetry", "dashboard"] {
            err(
                &format!(r#"{{"backends":[{{"name":"a","url":"http://h"}}],"{key}":[true]}}"#),
                &[&format!(
                    "{key}: invalid type: sequence, expected a {key} object"
                )],
            );
        }
        err(
            &with_backends(r#"{"name":"a","url":"http://h","quirks":[true]}"#),
            &["backends[0].quirks: invalid type: sequence, expected a quirks object"],
        );
    }

    /// The profile switches' values are the enums' names (snake_case).
    #[test]
    fn quirk_values_by_name() {
        let c = ok(&with_backends(
            r#"{"name":"a","url":"http://h","quirks":{"reasoning_effort":"deepseek",
                "sampling":"unit_interval","reasoning_passback":"think_tags"}}"#,
        ));
        let q = &c.backends[0].quirks;
        assert_eq!(
            (q.effort, q.sampling, q.passback),
            (
                EffortStyle::DeepSeek,
                Sampling::UnitInterval,
                Passback::ThinkTags
            )
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","quirks":{"sampling":"clamp"}}"#),
            &["backends[0].quirks.sampling: unknown variant \"clamp\", \
               expected one of \"keep\", \"drop\", \"unit_interval\""],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","quirks":{"reasoning_effort":"max"}}"#),
            &["backends[0].quirks.reasoning_effort: unknown variant \"max\""],
        );
    }

    #[test]
    fn unknown_top_level_key() {
        err(
            r#"{"listen":"127.0.0.1:1","lisen":"x","backends":[]}"#,
            &["<root>: unknown field \"lisen\""],
        );
    }

    #[test]
    fn unknown_backend_key() {
        err(
            &with_backends(
                r#"{"name":"a","url":"http://h","match_rules":{"default":true}},{"name":"b","url":"http://h","apikey":"x"}"#,
            ),
            &["backends[1]: unknown field \"apikey\""],
        );
    }

    #[test]
    fn unknown_nested_keys() {
        err(
            &with_backends(r#"{"name":"a","url":"http://h","match_rules":{"prefix":"/a"}}"#),
            &[
                "backends[0].match_rules: unknown field \"prefix\"",
                "path_prefix",
            ],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","timeouts":{"connect":1}}"#),
            &["backends[0].timeouts: unknown field \"connect\""],
        );
        err(
            r#"{"backends":[],"telemetry":{"endpoint":"x"}}"#,
            &["telemetry: unknown field \"endpoint\""],
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        err(r#"{"threads":"two"}"#, &["threads: invalid type"]);
        err(r#"{"threads":-1}"#, &["threads: invalid value"]);
        err(r#"{"log_body":"yes"}"#, &["log_body: invalid type"]);
        err(r#"{"listen":{"a":1}}"#, &["listen: invalid type: map"]);
        err(r#"{"backends":{}}"#, &["backends: invalid type: map"]);
        err(
            r#"{"backends":[1]}"#,
            &["backends[0]: invalid type: integer"],
        );
        err(
            &with_backends(
                r#"{"name":"a","url":"http://h"},{"name":"b","url":"http://h","timeouts":{"idle_ms":"x"}}"#,
            ),
            &["backends[1].timeouts.idle_ms: invalid type: string \"x\""],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","timeouts":5}"#),
            &["backends[0].timeouts: invalid type: integer"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","match_rules":{"default":"yes"}}"#),
            &["backends[0].match_rules.default: invalid type"],
        );
        err("[]", &["<root>: invalid type: sequence"]);
        err(
            r#"{"backends":[["a","http://h"]]}"#,
            &["backends[0]: invalid type: sequence"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","timeouts":[1,2,3,4]}"#),
            &["backends[0].timeouts: invalid type: sequence"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","match_rules":["/a",true]}"#),
            &["backends[0].match_rules: invalid type: sequence"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"telemetry":[true]}"#,
            &["telemetry: invalid type: sequence"],
        );
        err("42", &["<root>: invalid type"]);
    }
}
