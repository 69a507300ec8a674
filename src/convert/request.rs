//! Responses request → Chat Completions request: a pure function of the request and the
//! provider's quirks.

use serde_json::{json, Map, Value};

use super::ids::{new_response_id, random_u64};
use std::borrow::Cow;
use std::sync::Arc;

use super::messages::{BuilderState, MessageBuilder, Pairer};
use super::tools::{ConvertedTools, ToolCatalog, ToolSources, ToolsCache};
use super::{now_secs, ResponseContext, Unconverted, UnconvertedKind};
use crate::providers::{EffortStyle, Quirks};
use crate::types::chat::{ChatContent, ChatMessage, ChatRequest};
use crate::types::responses::{ContentPart, ExtraKind, Input, InputItem, ResponsesRequest, Text};

pub use super::error::InvalidRequest;

/// The Chat request's JSON body. `size_hint`: the client's body length (the Chat body is
/// about as long), so the buffer is allocated once instead of grown and copied.
pub fn chat_body(chat: &ChatRequest<'_>, size_hint: usize) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(size_hint + size_hint / 8 + 256);
    serde_json::to_writer(&mut out, chat)?;
    Ok(out)
}

/// Parse the client's body. The request borrows from it: the texts that go upstream
/// unchanged stay as the JSON the client wrote (see [`Text`]).
pub fn parse_request(body: &[u8]) -> Result<ResponsesRequest<'_>, InvalidRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(InvalidRequest::new(
            "The request body is empty: expected a JSON Responses request.",
            None,
        ));
    }
    let text = match simdutf8::basic::from_utf8(body) {
        Ok(t) => t,
        // The fast check says only that it failed; std's says where.
        Err(_) => std::str::from_utf8(body).map_err(|e| {
            InvalidRequest::new(format!("The request body is not valid UTF-8: {e}"), None)
        })?,
    };
    serde_json::from_str(text).map_err(|e| {
        let param = field_of_serde_error(&e.to_string());
        let mut err = InvalidRequest::new(
            format!("We could not parse the JSON body of your request: {e}"),
            param.as_deref(),
        );
        err.code = Some("invalid_json");
        err
    })
}

fn field_of_serde_error(msg: &str) -> Option<String> {
    // serde says e.g. "invalid type: string \"x\", expected u64 at line 1 column 30"; the
    // field name is not in the message for nested errors, so only flag known top-level keys.
    for key in [
        "model",
        "input",
        "tools",
        "stream",
        "max_output_tokens",
        "temperature",
        "top_p",
        "instructions",
    ] {
        if msg.contains(&format!("`{key}`")) {
            return Some(key.to_owned());
        }
    }
    None
}

pub struct RequestOptions<'a> {
    pub quirks: &'a Quirks,
    /// Tools already converted for the requests that send the same (`None`: converted here).
    pub tools: Option<&'a ToolsCache>,
    /// The backend's `model`, replacing the request's.
    pub model_override: Option<&'a str>,
    /// Fixed id seed (tests); random otherwise.
    pub id_seed: Option<u64>,
    /// `previous_response_id` was resolved into `input` already (a WebSocket chain): it is
    /// only echoed.
    pub chain_resolved: bool,
}

#[derive(Debug)]
pub struct Converted<'a> {
    pub chat: ChatRequest<'a>,
    pub ctx: ResponseContext,
    /// Hosted tools and item types that were left out (for a debug log line).
    pub skipped: Vec<String>,
    /// What the proxy does not convert (the dialect guard).
    pub unconverted: Vec<Unconverted>,
}

/// What a conversation's items set for the turns after them (Codex's responses lite): a
/// WebSocket chain keeps it with its converted prefix, so a turn that sends only new items
/// still offers the tools and keeps the effort.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The tools of the last `additional_tools` item (a JSON array).
    pub additional_tools: Option<Arc<str>>,
    /// The tools `tool_search_output` items loaded since (JSON arrays).
    pub loaded_tools: Vec<Arc<str>>,
    /// The reasoning effort of the last `configuration_update` that set one.
    pub effort: Option<String>,
}

impl Settings {
    /// The settings after `items`.
    fn after(&self, items: &[InputItem<'_>], skipped: &mut Vec<String>) -> Settings {
        let mut next = self.clone();
        for item in items {
            match item {
                InputItem::AdditionalTools(t) => {
                    next.additional_tools = Some(Arc::from(t.raw.get()));
                    next.loaded_tools.clear();
                }
                InputItem::ConfigurationUpdate(u) => {
                    if let Some(e) = &u.effort {
                        next.effort = Some(e.clone());
                    }
                    for field in &u.ignored {
                        skipped.push(format!("configuration_update.{field} (not mapped)"));
                    }
                }
                InputItem::Extra(e) if e.kind == ExtraKind::ToolSearchOutput => {
                    if let Some(tools @ Value::Array(_)) = e.members.get("tools") {
                        next.loaded_tools.push(Arc::from(tools.to_string()));
                    }
                }
                _ => {}
            }
        }
        next
    }

    fn sources(&self) -> ToolSources<'_> {
        ToolSources {
            lists: self
                .additional_tools
                .iter()
                .chain(self.loaded_tools.iter())
                .map(|t| Cow::Borrowed(&**t))
                .collect(),
            loaded_from: usize::from(self.additional_tools.is_some()),
        }
    }
}

/// Everything of a converted request but its messages, and the input still to convert.
struct Plan<'a> {
    chat: ChatRequest<'a>,
    ctx: ResponseContext,
    skipped: Vec<String>,
    unconverted: Vec<Unconverted>,
    /// The settings after this request's input.
    settings: Settings,
    instructions: Option<Text<'a>>,
    /// System-prompt additions of the request (a JSON schema hint), after the items' own.
    hints: Vec<String>,
    input: Input<'a>,
}

/// The request's parameters, tools and response context; the messages are made by the
/// caller (whole, or on top of a chain's converted prefix).
fn plan_request<'a>(
    mut req: ResponsesRequest<'a>,
    base: &Settings,
    opts: &RequestOptions<'_>,
) -> Result<Plan<'a>, InvalidRequest> {
    let quirks = opts.quirks;
    // Required as OpenAI and Open Responses require it, whether or not the backend sets
    // the model that goes upstream.
    let Some(client_model) = req.model.clone().filter(|m| !m.is_empty()) else {
        let mut err = InvalidRequest::new("Missing required parameter: 'model'.", Some("model"));
        err.code = Some("missing_required_parameter");
        return Err(err);
    };
    let model = opts
        .model_override
        .map_or_else(|| client_model.clone(), str::to_owned);
    if req.previous_response_id.is_some() && !opts.chain_resolved {
        return Err(InvalidRequest::new(
            "previous_response_id is not supported by this stateless proxy: send the whole \
             conversation in `input` (Codex does this over HTTP).",
            Some("previous_response_id"),
        ));
    }
    // Taken, not copied: the history is the bulk of a request.
    let input = match req.input.take() {
        Some(i) => i,
        None => {
            return Err(InvalidRequest::new(
                "Missing required parameter: 'input'.",
                Some("input"),
            ))
        }
    };
    let stream = req.stream.unwrap_or(false);
    // Remote compaction (v2): the input ends with `compaction_trigger`. The provider is asked
    // for a summary instead of a turn, without tools, and the reply becomes one `compaction`
    // item (see `StreamConverter`).
    let compaction = matches!(&input, Input::Items(items) if matches!(items.last(), Some(InputItem::CompactionTrigger)));

    let mut skipped = Vec::new();
    let mut unconverted: Vec<Unconverted> = req
        .unknown_members
        .iter()
        .map(|m| Unconverted::new(UnconvertedKind::Member, m.clone()))
        .collect();
    let settings = match &input {
        Input::Items(items) => base.after(items, &mut skipped),
        Input::Text(_) => base.clone(),
    };
    let sources = settings.sources();
    let converted = if req.tools.is_some() || !sources.is_empty() {
        let made = match opts.tools {
            Some(cache) => cache.get(req.tools.as_ref(), &sources, quirks),
            None => ConvertedTools::new(req.tools.as_ref(), &sources, quirks).map(Arc::new),
        };
        Some(made.map_err(|e| {
            let param = if req.tools.is_some() {
                "tools"
            } else {
                "input"
            };
            let mut err = InvalidRequest::new(
                format!("We could not parse the JSON body of your request: {e}"),
                Some(param),
            );
            err.code = Some("invalid_json");
            err
        })?)
    } else {
        None
    };
    let (tools, catalog) = match &converted {
        Some(c) => {
            skipped.extend(c.skipped.iter().cloned());
            unconverted.extend(
                c.unconverted
                    .iter()
                    .map(|t| Unconverted::new(UnconvertedKind::Tool, t.clone())),
            );
            (c.chat.clone(), c.catalog.clone())
        }
        None => (None, Arc::new(ToolCatalog::default())),
    };

    let mut chat = ChatRequest {
        model: model.clone(),
        ..ChatRequest::default()
    };
    // response_format may add a schema hint to the system prompt.
    let mut hints = Vec::new();
    if let Some(format) = req.text.as_ref().and_then(|t| t.format.as_ref()) {
        chat.response_format = response_format(format, quirks, &mut hints);
    }
    // Kimi's search is a call the proxy answers before the turn goes on: the replies are
    // read as streams, whatever the client asked for.
    if stream || catalog.native_search.loops() {
        chat.stream = Some(true);
        chat.stream_options = Some(json!({"include_usage": true}));
    }
    if let (Some(tools), false) = (tools, compaction) {
        let choice = tool_choice(req.tool_choice.as_ref(), &catalog, quirks);
        if choice.as_ref().and_then(Value::as_str) == Some("none") && quirks.tool_choice_auto_only {
            // The provider cannot be told "none": leave the tools out instead.
        } else {
            chat.tools = Some(tools);
            if quirks.tool_choice_auto_only {
                chat.tool_choice = Some(Value::String("auto".into()));
            } else {
                chat.tool_choice = choice;
                chat.parallel_tool_calls = req.parallel_tool_calls;
            }
            if stream && quirks.tool_stream {
                chat.extra.insert("tool_stream".into(), Value::Bool(true));
            }
        }
    }
    if let Some(max) = req.max_output_tokens {
        chat.extra
            .insert(quirks.max_tokens_field.to_owned(), Value::from(max));
    }
    chat.temperature = quirks.sampling.apply(req.temperature);
    chat.top_p = quirks.sampling.apply(req.top_p);
    // A `configuration_update` in the conversation changes the effort from its place on.
    let effort = settings
        .effort
        .as_deref()
        .or_else(|| req.reasoning.as_ref().and_then(|r| r.effort.as_deref()));
    if let Some(effort) = effort {
        apply_effort(effort, quirks.effort, &mut chat.extra);
    }

    let include_reasoning_text = req
        .include
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("reasoning.text")));
    let ctx = ResponseContext {
        response_id: new_response_id(),
        created_at: now_secs(),
        model: client_model,
        stream,
        catalog,
        quirks: quirks.clone(),
        include_reasoning_text,
        echo: std::sync::Arc::from(super::response::echo_members(
            &req,
            converted.as_ref().and_then(|c| c.echo.as_deref()),
        )),
        id_seed: opts.id_seed.unwrap_or_else(random_u64),
        fixed_now: None,
        compaction,
        previous_response_id: req.previous_response_id.clone(),
    };
    let instructions = req.instructions.take().filter(|s| !s.is_empty());
    Ok(Plan {
        chat,
        ctx,
        skipped,
        unconverted,
        settings,
        instructions,
        hints,
        input,
    })
}

/// Feed `input` into the builder; `offset`: the index of its first item in the whole
/// conversation (for error messages).
fn feed<'r>(
    b: &mut MessageBuilder<'_, 'r>,
    input: Input<'r>,
    offset: usize,
    skipped: &mut Vec<String>,
) -> Result<usize, InvalidRequest> {
    match input {
        Input::Text(t) => {
            b.user(vec![ContentPart::Text {
                kind: "input_text",
                text: Text::Plain(t),
            }]);
            Ok(1)
        }
        Input::Items(items) => {
            let n = items.len();
            for (i, item) in items.into_iter().enumerate() {
                b.item(offset + i, item, skipped)?;
            }
            Ok(n)
        }
    }
}

pub fn convert_request<'a>(
    req: ResponsesRequest<'a>,
    opts: &RequestOptions<'_>,
) -> Result<Converted<'a>, InvalidRequest> {
    let mut plan = plan_request(req, &Settings::default(), opts)?;
    let catalog = plan.ctx.catalog.clone();
    let mut b = MessageBuilder::new(opts.quirks, &catalog, BuilderState::default());
    let input = std::mem::replace(&mut plan.input, Input::Items(Vec::new()));
    feed(&mut b, input, 0, &mut plan.skipped)?;
    if plan.ctx.compaction {
        b.user(compaction_prompt());
    }
    plan.unconverted.append(&mut b.unconverted);
    plan.chat.messages = b.finish(plan.instructions.take(), &plan.hints);
    Ok(Converted {
        chat: plan.chat,
        ctx: plan.ctx,
        skipped: plan.skipped,
        unconverted: plan.unconverted,
    })
}

fn compaction_prompt() -> Vec<ContentPart<'static>> {
    vec![ContentPart::Text {
        kind: "input_text",
        text: Text::from(COMPACTION_PROMPT),
    }]
}

/// A chain's conversation already converted (a WebSocket connection keeps one per response
/// it produced): the builder's state after the chain's last item, and the Chat messages that
/// can no longer change, as the JSON bytes that go upstream. A turn on top of it converts
/// and serialises only its new items.
#[derive(Debug, Clone, Default)]
pub struct ChatPrefix {
    /// What the conversion depended on (backend and tools): a prefix made for other ones is
    /// not used.
    pub key: u64,
    state: BuilderState<'static>,
    pairer: Pairer,
    /// Serialised settled messages, comma-separated within each chunk (shared between the
    /// responses of a chain).
    settled: Vec<std::sync::Arc<[u8]>>,
    /// Items converted so far.
    items: usize,
    /// What the items so far set for later turns (tools, effort).
    settings: Settings,
}

impl ChatPrefix {
    /// Bytes this prefix's settled messages hold.
    pub fn settled_bytes(&self) -> usize {
        self.settled.iter().map(|c| c.len()).sum()
    }

    /// Its chunks (to count shared memory once).
    pub fn chunks(&self) -> &[std::sync::Arc<[u8]>] {
        &self.settled
    }

    /// The prefix after `items` (a response's output, as the next request would send it).
    pub fn absorb(
        &self,
        items: Vec<InputItem<'_>>,
        quirks: &Quirks,
        catalog: &ToolCatalog,
    ) -> Result<ChatPrefix, InvalidRequest> {
        let mut next = self.clone();
        let mut b = MessageBuilder::new(quirks, catalog, std::mem::take(&mut next.state));
        let mut skipped = Vec::new();
        next.settings = next.settings.after(&items, &mut skipped);
        next.items += feed(&mut b, Input::Items(items), next.items, &mut skipped)?;
        next.settle(&mut b);
        next.state = b.state.into_owned();
        Ok(next)
    }

    /// Move the builder's completed messages through the pairer into a new settled chunk.
    fn settle(&mut self, b: &mut MessageBuilder<'_, '_>) {
        let done = std::mem::take(&mut b.state.messages);
        if done.is_empty() {
            return;
        }
        let mut chunk = Vec::new();
        for m in done {
            self.pairer.push(m, &mut |m| write_message(&mut chunk, &m));
        }
        if !chunk.is_empty() {
            self.settled.push(std::sync::Arc::from(chunk));
        }
    }
}

fn write_message(out: &mut Vec<u8>, m: &ChatMessage<'_>) {
    if !out.is_empty() {
        out.push(b',');
    }
    // Writing to memory cannot fail; a failing Serialize impl is not ours.
    let _ = serde_json::to_writer(&mut *out, m);
}

/// A turn converted on top of a prefix.
#[derive(Debug)]
pub struct Turn {
    /// The Chat body, byte for byte what [`chat_body`] makes of the whole conversation.
    pub body: Vec<u8>,
    pub ctx: ResponseContext,
    /// The prefix after this turn's input (the response's output is added with
    /// [`ChatPrefix::absorb`]).
    pub next: ChatPrefix,
    pub skipped: Vec<String>,
    /// What the proxy does not convert of this turn's request (the dialect guard).
    pub unconverted: Vec<Unconverted>,
}

/// Convert a request whose `input` holds only the items after `prefix` (or, without a
/// usable prefix, the whole conversation). `key`: what the conversion depends on besides the
/// request (the backend); a prefix with another key is not used and `req` must then hold the
/// whole conversation.
pub fn convert_turn(
    req: ResponsesRequest<'_>,
    prefix: Option<&ChatPrefix>,
    key: u64,
    opts: &RequestOptions<'_>,
) -> Result<Turn, InvalidRequest> {
    let prefix = prefix.filter(|p| p.key == key);
    let base = prefix.map(|p| p.settings.clone()).unwrap_or_default();
    let mut plan = plan_request(req, &base, opts)?;
    let catalog = plan.ctx.catalog.clone();
    let mut next = match prefix {
        Some(p) => p.clone(),
        None => ChatPrefix {
            key,
            ..ChatPrefix::default()
        },
    };
    next.settings = plan.settings.clone();
    let mut b = MessageBuilder::new(opts.quirks, &catalog, std::mem::take(&mut next.state));
    let input = std::mem::replace(&mut plan.input, Input::Items(Vec::new()));
    next.items += feed(&mut b, input, next.items, &mut plan.skipped)?;
    plan.unconverted.append(&mut b.unconverted);
    next.settle(&mut b);
    next.state = b.state.clone().into_owned();
    // The rest as `finish` would make it, on the builder's copy.
    if plan.ctx.compaction {
        b.user(compaction_prompt());
    }
    b.flush();
    b.push_deferred_images();
    let mut pairer = next.pairer.clone();
    let mut tail = Vec::new();
    for m in std::mem::take(&mut b.state.messages) {
        pairer.push(m, &mut |m| write_message(&mut tail, &m));
    }
    pairer.close(&mut |m| write_message(&mut tail, &m));
    let system = b.system_message(plan.instructions.take(), &plan.hints);
    let mut messages: Vec<&[u8]> = next.settled.iter().map(|c| &c[..]).collect();
    if !tail.is_empty() {
        messages.push(&tail);
    }
    let mut head = Vec::new();
    if let Some(sys) = &system {
        write_message(&mut head, sys);
    }
    let empty_user;
    if messages.is_empty() {
        // Chat providers reject a conversation without a user turn.
        let mut u = Vec::new();
        write_message(
            &mut u,
            &ChatMessage {
                role: "user".into(),
                content: Some(ChatContent::Text(Text::default())),
                ..ChatMessage::default()
            },
        );
        empty_user = u;
        messages.push(&empty_user);
    }
    let body = splice_messages(&plan.chat, &head, &messages).map_err(|e| {
        InvalidRequest::new(format!("The request could not be serialised: {e}"), None)
    })?;
    Ok(Turn {
        body,
        ctx: plan.ctx,
        next,
        skipped: plan.skipped,
        unconverted: plan.unconverted,
    })
}

/// `chat` serialised with `head` and then each of `parts` (comma-separated message JSON) as
/// its `messages`: the same bytes serde writes for the whole list.
fn splice_messages(
    chat: &ChatRequest<'_>,
    head: &[u8],
    parts: &[&[u8]],
) -> Result<Vec<u8>, serde_json::Error> {
    let shell = serde_json::to_vec(chat)?;
    let mut open = b"{\"model\":".to_vec();
    serde_json::to_writer(&mut open, &chat.model)?;
    open.extend_from_slice(b",\"messages\":[");
    if !shell.starts_with(&open) || shell.get(open.len()) != Some(&b']') {
        return Err(serde::ser::Error::custom("unexpected Chat request layout"));
    }
    let size = shell.len() + head.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(size + 1);
    out.extend_from_slice(&open);
    let mut first = true;
    for p in std::iter::once(head).chain(parts.iter().copied()) {
        if p.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&shell[open.len()..]);
    Ok(out)
}

/// The Chat body `chat` with `messages` appended to its `messages` (the bytes before them
/// unchanged, so the provider's prefix cache still holds): how a turn answers the
/// provider's own search call and calls again. `None` when `chat` is not a Chat body.
pub fn append_messages(chat: &[u8], messages: &[Value]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        messages: &'a serde_json::value::RawValue,
    }
    let text = std::str::from_utf8(chat).ok()?;
    let body: Body<'_> = serde_json::from_str(text).ok()?;
    let raw = body.messages.get();
    // `raw` is a slice of `text`: its place in the body.
    let start = (raw.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let close = start + raw.len() - 1;
    if !raw.starts_with('[') || chat.get(close) != Some(&b']') {
        return None;
    }
    let mut out = Vec::with_capacity(chat.len() + 256 * messages.len());
    out.extend_from_slice(&chat[..close]);
    let mut empty = raw[1..raw.len() - 1].trim().is_empty();
    for m in messages {
        if !empty {
            out.push(b',');
        }
        empty = false;
        serde_json::to_writer(&mut out, m).ok()?;
    }
    out.extend_from_slice(&chat[close..]);
    Some(out)
}

/// What the provider is asked when a client compacts remotely. The proxy owns this prompt:
/// the summary it produces replaces the conversation for every later turn.
pub const COMPACTION_PROMPT: &str = "The conversation above is about to be compacted: it \
will be replaced by the summary you write now, and the work continues from that summary \
alone. Write the summary for the one who continues (possibly another model). Include: the \
user's goal and every explicit requirement or constraint; what has been done so far (commands \
run, files created or changed with their paths, decisions made and why); the current state, \
including errors still open; what remains to be done, as concrete next steps; and any exact \
values (names, paths, numbers, code words, identifiers) that later steps need, verbatim. Do \
not call tools. Do not address the user. Answer with the summary only.";

fn apply_effort(effort: &str, style: EffortStyle, extra: &mut Map<String, Value>) {
    for (k, v) in style.encode(effort) {
        extra.insert(k.to_owned(), v);
    }
}

fn tool_choice(choice: Option<&Value>, catalog: &ToolCatalog, quirks: &Quirks) -> Option<Value> {
    let choice = choice?;
    let out = match choice {
        Value::String(s) => match s.as_str() {
            "auto" | "none" | "required" => Value::String(s.clone()),
            _ => Value::String("auto".into()),
        },
        Value::Object(o) => {
            let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .or_else(|| o.get("function")?.get("name")?.as_str());
            match (ty, name) {
                ("function" | "custom", Some(name)) => {
                    let ns = o.get("namespace").and_then(Value::as_str);
                    let chat_name = catalog.chat_name_for(ns, &super::tools::sanitize_name(name));
                    let chat_name = if ns.is_some() {
                        catalog.chat_name_for(ns, name)
                    } else {
                        chat_name
                    };
                    json!({"type": "function", "function": {"name": chat_name}})
                }
                _ => Value::String("auto".into()),
            }
        }
        _ => return None,
    };
    if quirks.tool_choice_auto_only
        || (quirks.tool_choice_required_to_auto && out.as_str() != Some("none"))
    {
        return Some(Value::String("auto".into()));
    }
    Some(out)
}

fn response_format(format: &Value, quirks: &Quirks, system: &mut Vec<String>) -> Option<Value> {
    match format.get("type").and_then(Value::as_str)? {
        "json_schema" => {
            let schema = format.get("schema").cloned().unwrap_or(json!({}));
            if quirks.json_schema {
                let mut js = Map::new();
                js.insert(
                    "name".into(),
                    format
                        .get("name")
                        .cloned()
                        .unwrap_or_else(|| Value::String("response".into())),
                );
                js.insert("schema".into(), schema);
                for k in ["strict", "description"] {
                    if let Some(v) = format.get(k) {
                        js.insert(k.into(), v.clone());
                    }
                }
                Some(json!({"type": "json_schema", "json_schema": js}))
            } else {
                system.push(format!(
                    "Respond only with a JSON object that matches this JSON schema:\n{schema}"
                ));
                Some(json!({"type": "json_object"}))
            }
        }
        "json_object" => Some(json!({"type": "json_object"})),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The messages go at the end of `messages`, every other byte unchanged.
    #[test]
    fn messages_are_appended_in_place() {
        let body =
            br#"{"model":"m","messages":[{"role":"user","content":"a]"}],"tools":[{"x":[1]}]}"#;
        let out = append_messages(body, &[json!({"role": "tool"}), json!({"k": 1})]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"m","messages":[{"role":"user","content":"a]"},{"role":"tool"},{"k":1}],"tools":[{"x":[1]}]}"#
        );
        let empty = append_messages(br#"{"messages":[ ]}"#, &[json!(1)]).unwrap();
        assert_eq!(empty, br#"{"messages":[ 1]}"#);
        assert!(append_messages(b"not json", &[json!(1)]).is_none());
        assert!(append_messages(br#"{"messages":{}}"#, &[json!(1)]).is_none());
    }
}
