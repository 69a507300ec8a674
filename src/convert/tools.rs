//! Responses tools → Chat functions, and the catalogue that maps function names back.
//!
//! - `function` tools pass through (without `strict` where the provider rejects it).
//! - `namespace` tools are flattened into functions named `{namespace}__{name}`, made safe
//!   for every provider (`[a-zA-Z0-9_-]`, at most 64 characters, unique).
//! - `custom` (freeform) tools become a function with one string parameter `input` whose
//!   description carries the grammar.
//!   Custom tools inside a namespace (code mode's `functions.exec`) are flattened the same way.
//! - a client-executed `tool_search` becomes a function `tool_search`; tools with
//!   `defer_loading: true` wait for it (offered once a `tool_search_output` loaded them), or
//!   are offered at once when there is no such search.
//! - hosted tools (`web_search`, `image_generation`, ...) are left out, and counted by the
//!   dialect guard.
//! - the tools come from the top-level `tools`, the conversation's `additional_tools` item
//!   (Codex's responses lite) and the tools `tool_search_output` items loaded; the same tool
//!   is offered once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::providers::{NativeSearch, Quirks};
use crate::types::chat::{ChatFunction, ChatTool, FunctionChatTool};
use crate::types::responses::{CustomTool, FunctionTool, Tool, ToolSearchTool, Tools};

/// Where a Chat function name came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOrigin {
    Function {
        name: String,
    },
    Namespaced {
        namespace: String,
        name: String,
    },
    Custom {
        name: String,
        namespace: Option<String>,
    },
    /// The client-executed `tool_search`.
    ToolSearch,
    /// The provider's own search called as a function (Kimi's `$web_search`): answered by the
    /// proxy, shown to the client as a `web_search_call`.
    WebSearch,
}

/// The Chat name of the client-executed `tool_search`.
pub const TOOL_SEARCH_NAME: &str = "tool_search";

#[derive(Debug, Clone, Default)]
pub struct ToolCatalog {
    by_chat_name: HashMap<String, ToolOrigin>,
    /// (namespace, name) → chat name.
    namespaced: HashMap<(String, String), String>,
    /// The provider's own web search, when the request's `web_search` was offered as it.
    pub native_search: NativeSearch,
}

pub const MAX_NAME: usize = 64;

impl ToolCatalog {
    /// The origin of a function name the model called. Unknown names are plain functions.
    pub fn origin(&self, chat_name: &str) -> ToolOrigin {
        self.by_chat_name
            .get(chat_name)
            .cloned()
            .unwrap_or_else(|| ToolOrigin::Function {
                name: chat_name.to_owned(),
            })
    }

    pub fn is_custom(&self, name: &str) -> bool {
        matches!(self.by_chat_name.get(name), Some(ToolOrigin::Custom { .. }))
    }

    /// A call of this name streams no argument events (a `tool_search_call`, or the
    /// provider's search shown as a `web_search_call`).
    pub fn has_no_argument_events(&self, name: &str) -> bool {
        matches!(
            self.by_chat_name.get(name),
            Some(ToolOrigin::ToolSearch | ToolOrigin::WebSearch)
        )
    }

    /// The provider's search, called as a function (Kimi's `$web_search`).
    pub fn is_web_search(&self, name: &str) -> bool {
        matches!(self.by_chat_name.get(name), Some(ToolOrigin::WebSearch))
    }

    /// The Chat name for a namespaced function (also for history items whose namespace is no
    /// longer offered).
    pub fn chat_name_for(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            None => name.to_owned(),
            Some(ns) => self
                .namespaced
                .get(&(ns.to_owned(), name.to_owned()))
                .cloned()
                .unwrap_or_else(|| flatten_name(ns, name)),
        }
    }

    fn insert_unique(&mut self, wanted: String, origin: ToolOrigin) -> String {
        let mut name = wanted.clone();
        let mut n = 2u32;
        while self.by_chat_name.contains_key(&name) {
            let suffix = format!("_{n}");
            let keep = MAX_NAME.saturating_sub(suffix.len()).min(wanted.len());
            name = format!("{}{}", &wanted[..keep], suffix);
            n += 1;
        }
        self.by_chat_name.insert(name.clone(), origin);
        name
    }
}

/// Replace characters providers reject and cap the length (with a hash suffix when cut).
pub fn sanitize_name(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() <= MAX_NAME && clean == raw {
        return clean;
    }
    if clean.len() <= MAX_NAME {
        return clean;
    }
    // 64 = 55 chars + '_' + 8 hex digits of a stable hash of the raw name.
    let hash = fnv1a(raw.as_bytes()) as u32;
    format!("{}_{hash:08x}", &clean[..MAX_NAME - 9])
}

pub fn flatten_name(namespace: &str, name: &str) -> String {
    sanitize_name(&format!("{namespace}__{name}"))
}

/// FNV-1a, 64 bits: a stable hash (the same in every build and process).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The request's tools converted: what the Chat request offers, the catalogue, what was left
/// out (`skipped`, for a debug line) and the tool types not converted (the dialect guard).
#[derive(Debug, Default)]
pub struct ToolSet {
    pub chat: Vec<ChatTool>,
    pub catalog: ToolCatalog,
    pub skipped: Vec<String>,
    pub unconverted: Vec<String>,
}

/// Convert the request's tools (every source in order; the same tool is offered once).
pub fn convert_tools(tools: &[Tool], quirks: &Quirks) -> ToolSet {
    let mut set = ToolSet::default();
    let searchable = tools.iter().any(|t| matches!(t, Tool::ToolSearch(_)));
    let mut seen: std::collections::HashSet<(Option<&str>, &str)> = Default::default();
    for tool in tools {
        match tool {
            Tool::Function(f) => {
                if f.defer_loading && searchable {
                    set.skipped.push(format!("{} (deferred)", f.name));
                    continue;
                }
                if !seen.insert((None, &f.name)) {
                    continue;
                }
                let chat_name = set.catalog.insert_unique(
                    sanitize_name(&f.name),
                    ToolOrigin::Function {
                        name: f.name.clone(),
                    },
                );
                set.chat.push(function_json(&chat_name, f, quirks));
            }
            Tool::Namespace(ns) => {
                for inner in &ns.tools {
                    let (name, deferred) = match inner {
                        Tool::Function(f) => (&f.name, f.defer_loading),
                        Tool::Custom(c) => (&c.name, c.defer_loading),
                        other => {
                            let ty = tool_type(other);
                            set.skipped.push(format!("{}.{ty}", ns.name));
                            set.unconverted.push(ty);
                            continue;
                        }
                    };
                    if deferred && searchable {
                        set.skipped.push(format!("{}.{name} (deferred)", ns.name));
                        continue;
                    }
                    if !seen.insert((Some(&ns.name), name)) {
                        continue;
                    }
                    let origin = match inner {
                        Tool::Custom(_) => ToolOrigin::Custom {
                            name: name.clone(),
                            namespace: Some(ns.name.clone()),
                        },
                        _ => ToolOrigin::Namespaced {
                            namespace: ns.name.clone(),
                            name: name.clone(),
                        },
                    };
                    let chat_name = set
                        .catalog
                        .insert_unique(flatten_name(&ns.name, name), origin);
                    set.catalog
                        .namespaced
                        .insert((ns.name.clone(), name.clone()), chat_name.clone());
                    let described = |own: &Option<String>| match &ns.description {
                        None => own.clone(),
                        Some(desc) => Some(match own.as_deref() {
                            None | Some("") => desc.clone(),
                            Some(own) => format!("{own}\n\n(Part of {}: {desc})", ns.name),
                        }),
                    };
                    match inner {
                        Tool::Custom(c) => {
                            let c = CustomTool {
                                description: described(&c.description),
                                ..c.clone()
                            };
                            set.chat.push(custom_json(&chat_name, &c));
                        }
                        Tool::Function(f) => {
                            let f = FunctionTool {
                                description: described(&f.description),
                                ..f.clone()
                            };
                            set.chat.push(function_json(&chat_name, &f, quirks));
                        }
                        _ => {}
                    }
                }
            }
            Tool::Custom(c) => {
                if c.defer_loading && searchable {
                    set.skipped.push(format!("{} (deferred)", c.name));
                    continue;
                }
                if !seen.insert((None, &c.name)) {
                    continue;
                }
                let chat_name = set.catalog.insert_unique(
                    sanitize_name(&c.name),
                    ToolOrigin::Custom {
                        name: c.name.clone(),
                        namespace: None,
                    },
                );
                set.chat.push(custom_json(&chat_name, c));
            }
            Tool::ToolSearch(t) => {
                if !seen.insert((None, TOOL_SEARCH_NAME)) {
                    continue;
                }
                let chat_name = set
                    .catalog
                    .insert_unique(TOOL_SEARCH_NAME.to_owned(), ToolOrigin::ToolSearch);
                set.chat.push(tool_search_json(&chat_name, t));
            }
            Tool::WebSearch(w) => {
                if set.catalog.native_search != NativeSearch::None {
                    continue; // offered once
                }
                match quirks.web_search.tool(&w.allowed_domains) {
                    Some(native) => {
                        set.catalog.native_search = quirks.web_search;
                        if quirks.web_search == NativeSearch::Kimi {
                            set.catalog.by_chat_name.insert(
                                crate::providers::kimi::WEB_SEARCH.to_owned(),
                                ToolOrigin::WebSearch,
                            );
                        }
                        set.chat.push(ChatTool::Native(native));
                    }
                    None => {
                        // Counted and warned by the dialect guard.
                        set.skipped.push("web_search".to_owned());
                        set.unconverted.push("web_search".to_owned());
                    }
                }
            }
            Tool::Other(v) => {
                let ty = tool_type_of(v);
                set.skipped.push(ty.clone());
                set.unconverted.push(ty);
            }
        }
    }
    set
}

/// A tool a search loaded: offered from now on.
fn undefer(t: &mut Tool) {
    match t {
        Tool::Function(f) => f.defer_loading = false,
        Tool::Custom(c) => c.defer_loading = false,
        Tool::Namespace(ns) => ns.tools.iter_mut().for_each(undefer),
        Tool::ToolSearch(_) | Tool::WebSearch(_) | Tool::Other(_) => {}
    }
}

/// Where a request's tools come from besides its top-level `tools`: the conversation's
/// active `additional_tools` item and the tools `tool_search_output` items loaded, each
/// as JSON (an array of tools).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSources<'a> {
    pub lists: Vec<std::borrow::Cow<'a, str>>,
    /// The lists from this index on were loaded by a tool search: offered even when they
    /// say `defer_loading`.
    pub loaded_from: usize,
}

impl ToolSources<'_> {
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }
}

/// A request's tools converted for one provider profile: what the Chat request offers
/// (as its JSON), the catalogue, what was left out, and what the Response object echoes.
#[derive(Debug)]
pub struct ConvertedTools {
    /// The client's `tools` JSON, the other sources and the quirks this was made for (the
    /// cache's key).
    raw: Box<str>,
    sources: Vec<Box<str>>,
    loaded_from: usize,
    quirks: Quirks,
    /// The Chat `tools` array as JSON; `None` when there is no function to offer.
    pub chat: Option<Arc<RawValue>>,
    pub catalog: Arc<ToolCatalog>,
    pub skipped: Vec<String>,
    /// Tool types not converted (the dialect guard).
    pub unconverted: Vec<String>,
    /// The echoed `tools` when the client's lack members (`None`: the client's JSON as is).
    pub echo: Option<Arc<RawValue>>,
}

impl ConvertedTools {
    /// Read and convert a request's `tools` (and the other sources) for `quirks`.
    pub fn new(
        tools: Option<&Tools<'_>>,
        sources: &ToolSources<'_>,
        quirks: &Quirks,
    ) -> Result<Self, serde_json::Error> {
        let (mut list, echo) = match tools {
            Some(t) => t.parse()?,
            None => (Vec::new(), None),
        };
        for (i, raw) in sources.lists.iter().enumerate() {
            let mut tools = serde_json::from_str::<Vec<Tool>>(raw)?;
            if i >= sources.loaded_from {
                tools.iter_mut().for_each(undefer);
            }
            list.extend(tools);
        }
        let ToolSet {
            chat,
            catalog,
            mut skipped,
            unconverted,
        } = convert_tools(&list, quirks);
        let chat = if quirks.drop_tools {
            skipped = vec!["all tools (drop_tools)".to_owned()];
            None
        } else if chat.is_empty() {
            None
        } else {
            Some(Arc::from(serde_json::value::to_raw_value(&chat)?))
        };
        Ok(ConvertedTools {
            raw: tools.map_or("", |t| t.raw.get()).into(),
            sources: sources.lists.iter().map(|s| s.as_ref().into()).collect(),
            loaded_from: sources.loaded_from,
            quirks: quirks.clone(),
            chat,
            catalog: Arc::new(catalog),
            skipped,
            unconverted,
            echo: echo.map(Arc::from),
        })
    }

    fn is_for(
        &self,
        tools: Option<&Tools<'_>>,
        sources: &ToolSources<'_>,
        quirks: &Quirks,
    ) -> bool {
        *self.raw == *tools.map_or("", |t| t.raw.get())
            && self.loaded_from == sources.loaded_from
            && self.sources.len() == sources.lists.len()
            && self
                .sources
                .iter()
                .zip(&sources.lists)
                .all(|(a, b)| **a == **b)
            && self.quirks == *quirks
    }
}

/// Tools converted once per distinct `tools` JSON and provider profile, for the requests
/// that send the same (Codex repeats its ~20 KB of tools on every request). A lookup
/// compares the JSON byte for byte; the conversion is the same function either way.
#[derive(Debug, Default)]
pub struct ToolsCache {
    entries: Mutex<Vec<Arc<ConvertedTools>>>,
}

/// Distinct tool sets remembered at once (Codex versions × set-ups × profiles in use); the
/// oldest goes first.
const MAX_TOOL_SETS: usize = 32;

impl ToolsCache {
    pub fn get(
        &self,
        tools: Option<&Tools<'_>>,
        sources: &ToolSources<'_>,
        quirks: &Quirks,
    ) -> Result<Arc<ConvertedTools>, serde_json::Error> {
        if let Some(found) = Self::lookup(&self.lock(), tools, sources, quirks) {
            return Ok(found);
        }
        // Converted outside the lock; another request may have done the same meanwhile.
        let made = Arc::new(ConvertedTools::new(tools, sources, quirks)?);
        let mut entries = self.lock();
        if let Some(found) = Self::lookup(&entries, tools, sources, quirks) {
            return Ok(found);
        }
        if entries.len() >= MAX_TOOL_SETS {
            entries.remove(0);
        }
        entries.push(made.clone());
        Ok(made)
    }

    fn lookup(
        entries: &[Arc<ConvertedTools>],
        tools: Option<&Tools<'_>>,
        sources: &ToolSources<'_>,
        quirks: &Quirks,
    ) -> Option<Arc<ConvertedTools>> {
        entries
            .iter()
            .find(|e| e.is_for(tools, sources, quirks))
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConvertedTools>>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn tool_type(t: &Tool) -> String {
    match t {
        Tool::Function(_) => "function".into(),
        Tool::Namespace(_) => "namespace".into(),
        Tool::Custom(_) => "custom".into(),
        Tool::ToolSearch(_) => "tool_search".into(),
        Tool::WebSearch(_) => "web_search".into(),
        Tool::Other(v) => tool_type_of(v),
    }
}

fn tool_type_of(v: &Value) -> String {
    v.get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned()
}

fn function_json(chat_name: &str, f: &FunctionTool, quirks: &Quirks) -> ChatTool {
    function_tool(ChatFunction {
        name: chat_name.to_owned(),
        description: f.description.clone(),
        parameters: f.parameters.clone().unwrap_or_else(empty_schema),
        strict: f.strict.filter(|_| !quirks.strip_strict),
    })
}

fn function_tool(function: ChatFunction) -> ChatTool {
    ChatTool::Function(FunctionChatTool {
        kind: "function",
        function,
    })
}

fn empty_schema() -> Box<RawValue> {
    raw_json(&json!({"type": "object", "properties": {}}))
}

fn raw_json(v: &Value) -> Box<RawValue> {
    // A `Value` always serialises; the fallback is never taken.
    serde_json::value::to_raw_value(v).unwrap_or_default()
}

fn custom_json(chat_name: &str, c: &CustomTool) -> ChatTool {
    let mut desc = c.description.clone().unwrap_or_default();
    let mut param_desc =
        String::from("The raw input of this freeform tool, as plain text (not JSON).");
    if let Some(format) = &c.format {
        let syntax = format.get("syntax").and_then(Value::as_str);
        let definition = format.get("definition").and_then(Value::as_str);
        if let Some(def) = definition {
            param_desc.push_str(&format!(
                " It must follow this {} grammar:\n{def}",
                syntax.unwrap_or("")
            ));
        }
    }
    if desc.is_empty() {
        desc = format!("Freeform tool {}.", c.name);
    }
    desc.push_str("\n\nPut the whole raw input in the `input` string argument.");
    function_tool(ChatFunction {
        name: chat_name.to_owned(),
        description: Some(desc),
        parameters: raw_json(&json!({
            "type": "object",
            "properties": {"input": {"type": "string", "description": param_desc}},
            "required": ["input"],
            "additionalProperties": false
        })),
        strict: None,
    })
}

fn tool_search_json(chat_name: &str, t: &ToolSearchTool) -> ChatTool {
    let description = t.description.clone().unwrap_or_else(|| {
        "Search the deferred tools by what they do; the tools found are offered from the next \
         step on."
            .to_owned()
    });
    function_tool(ChatFunction {
            name: chat_name.to_owned(),
            description: Some(description),
            parameters: t.parameters.clone().unwrap_or_else(|| {
                raw_json(&json!({
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "What the tool should do."}},
                    "required": ["query"]
                }))
            }),
            strict: None,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tools(v: Value) -> Vec<Tool> {
        serde_json::from_str(&v.to_string()).unwrap()
    }

    /// A `tools` member as a parsed request holds it.
    fn raw_tools(v: &Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    #[test]
    fn tools_converted_once_per_json_and_profile() {
        let cache = ToolsCache::default();
        let (openai, kimi) = (
            Quirks::openai(),
            crate::providers::quirks_for("kimi").unwrap(),
        );
        let a = raw_tools(&json!([{"type": "function", "name": "f", "parameters": {}}]));
        let b = raw_tools(&json!([{"type": "function", "name": "g", "parameters": {}}]));
        let (ta, tb) = (Tools { raw: &a }, Tools { raw: &b });
        let first = cache
            .get(Some(&ta), &ToolSources::default(), &openai)
            .unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &cache
                .get(Some(&ta), &ToolSources::default(), &openai)
                .unwrap()
        ));
        // Another JSON, another profile: converted again, each for its own.
        let other = cache
            .get(Some(&tb), &ToolSources::default(), &openai)
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(other.chat.as_ref().unwrap().get().contains("\"g\""));
        assert!(!Arc::ptr_eq(
            &first,
            &cache
                .get(Some(&ta), &ToolSources::default(), &kimi)
                .unwrap()
        ));
        // The same as converting without the cache.
        let direct = ConvertedTools::new(Some(&ta), &ToolSources::default(), &openai).unwrap();
        assert_eq!(
            first.chat.as_ref().map(|c| c.get()),
            direct.chat.as_ref().map(|c| c.get())
        );
        // A malformed list is an error every time, and not remembered.
        let bad = raw_tools(&json!([{"type": "function"}]));
        assert!(cache
            .get(Some(&Tools { raw: &bad }), &ToolSources::default(), &openai)
            .is_err());
        assert_eq!(cache.lock().len(), 3);
        // Bounded: the oldest goes first.
        let many: Vec<Box<RawValue>> = (0..MAX_TOOL_SETS)
            .map(|i| raw_tools(&json!([{"type": "function", "name": format!("t{i}")}])))
            .collect();
        for raw in &many {
            cache
                .get(Some(&Tools { raw }), &ToolSources::default(), &openai)
                .unwrap();
        }
        assert_eq!(cache.lock().len(), MAX_TOOL_SETS);
        assert!(!Arc::ptr_eq(
            &first,
            &cache
                .get(Some(&ta), &ToolSources::default(), &openai)
                .unwrap()
        ));
    }

    #[test]
    fn namespace_custom_and_hosted() {
        let t = tools(json!([
            {"type": "function", "name": "exec_command", "strict": false, "parameters": {"type": "object"}},
            {"type": "namespace", "name": "multi_agent_v1", "description": "agents", "tools": [
                {"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}}]},
            {"type": "custom", "name": "apply_patch", "description": "patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
            {"type": "web_search", "external_web_access": true}
        ]));
        let ToolSet {
            chat: out,
            catalog: cat,
            skipped,
            unconverted,
        } = convert_tools(&t, &Quirks::openai());
        assert_eq!(unconverted, vec!["web_search"]);
        let out = serde_json::to_value(&out).unwrap();
        assert_eq!(out.as_array().unwrap().len(), 3);
        assert_eq!(out[0]["function"]["strict"], json!(false));
        assert_eq!(out[1]["function"]["name"], "multi_agent_v1__spawn_agent");
        assert_eq!(
            cat.origin("multi_agent_v1__spawn_agent"),
            ToolOrigin::Namespaced {
                namespace: "multi_agent_v1".into(),
                name: "spawn_agent".into()
            }
        );
        assert!(cat.is_custom("apply_patch"));
        let desc = out[2]["function"]["parameters"]["properties"]["input"]["description"]
            .as_str()
            .unwrap();
        assert!(desc.contains("lark") && desc.contains("start: x"));
        assert_eq!(skipped, vec!["web_search"]);
        let glm = crate::providers::glm::quirks();
        let out = convert_tools(&t, &glm).chat;
        let out = serde_json::to_value(&out).unwrap();
        assert!(out[0]["function"].get("strict").is_none());
    }

    #[test]
    fn names_are_safe_and_unique() {
        let long = "x".repeat(100);
        let n = flatten_name("mcp.server/with spaces", &long);
        assert!(n.len() <= MAX_NAME);
        assert!(n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        assert_eq!(n, flatten_name("mcp.server/with spaces", &long), "stable");
        let t = tools(json!([
            {"type": "namespace", "name": "a", "tools": [{"type": "function", "name": "b__c"}]},
            {"type": "namespace", "name": "a__b", "tools": [{"type": "function", "name": "c"}]}
        ]));
        let ToolSet {
            chat: out,
            catalog: cat,
            ..
        } = convert_tools(&t, &Quirks::openai());
        let name = |t: &ChatTool| match t {
            ChatTool::Function(f) => f.function.name.clone(),
            ChatTool::Native(v) => v.to_string(),
        };
        let (n0, n1) = (name(&out[0]), name(&out[1]));
        let (n0, n1) = (n0.as_str(), n1.as_str());
        assert_ne!(n0, n1);
        assert_eq!(
            cat.origin(n1),
            ToolOrigin::Namespaced {
                namespace: "a__b".into(),
                name: "c".into()
            }
        );
        assert_eq!(cat.chat_name_for(Some("a__b"), "c"), n1);
    }
}
