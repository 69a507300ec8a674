//! Responses request → Chat Completions request: a pure function of the request and the
//! provider's quirks.

use serde_json::{json, Map, Value};

use super::ids::{decode_compaction_token, decode_reasoning_token, new_response_id, random_u64};
use std::borrow::Cow;
use std::sync::Arc;

use super::freeform::arguments_for_custom_input;
use super::think;
use super::tools::{ConvertedTools, ToolCatalog, ToolSources, ToolsCache};
use super::{now_secs, ResponseContext, Unconverted, UnconvertedKind};
use crate::providers::{EffortStyle, Passback, Quirks};
use crate::types::chat::{
    ChatContent, ChatFunctionCall, ChatMessage, ChatPart, ChatRequest, ChatToolCall, ImageUrl,
};
use crate::types::responses::{
    CompactionItem, ContentPart, CustomToolCallItem, ExtraItem, ExtraKind, FunctionCallItem, Input,
    InputItem, ItemReferenceItem, MessageContent, MessageItem, ReasoningItem, ResponsesRequest,
    Text, ToolOutput, ToolOutputItem,
};

/// A request the client got wrong: becomes a 400 `invalid_request_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl InvalidRequest {
    fn new(message: impl Into<String>, param: Option<&str>) -> Self {
        InvalidRequest {
            message: message.into(),
            param: param.map(str::to_owned),
            code: None,
        }
    }
}

impl std::fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

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
    if stream {
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

/// How a compaction item's summary is given to the provider, in the item's place.
pub fn compaction_summary_text(summary: &str) -> String {
    format!(
        "Summary of the conversation so far (the earlier messages were compacted into it):\n\n{summary}"
    )
}

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

/// What the builder has made so far (`'static` when a chain keeps it between turns).
#[derive(Debug, Clone, Default)]
struct BuilderState<'r> {
    /// System texts from the conversation's leading system/developer items.
    system: Vec<Text<'r>>,
    /// Completed messages not yet paired and settled.
    messages: Vec<ChatMessage<'r>>,
    /// Reasoning of the assistant turn being built.
    reasoning: Vec<String>,
    assistant: Option<ChatMessage<'r>>,
    /// Images from tool outputs, sent as one user message after the run of tool messages.
    deferred_images: Vec<ChatPart<'r>>,
    started: bool,
}

impl BuilderState<'_> {
    /// The same state, owning its texts.
    fn into_owned(self) -> BuilderState<'static> {
        BuilderState {
            system: self.system.into_iter().map(Text::into_owned).collect(),
            messages: self
                .messages
                .into_iter()
                .map(ChatMessage::into_owned)
                .collect(),
            reasoning: self.reasoning,
            assistant: self.assistant.map(ChatMessage::into_owned),
            deferred_images: self
                .deferred_images
                .into_iter()
                .map(ChatPart::into_owned)
                .collect(),
            started: self.started,
        }
    }
}

/// Builds Chat messages from Responses items, merging an assistant turn's text, reasoning
/// and tool calls into one assistant message. `'r`: the request's texts.
struct MessageBuilder<'a, 'r> {
    quirks: &'a Quirks,
    catalog: &'a ToolCatalog,
    state: BuilderState<'r>,
    /// Item and part types met that are not converted (the dialect guard).
    unconverted: Vec<Unconverted>,
}

impl<'a, 'r> MessageBuilder<'a, 'r> {
    fn new(quirks: &'a Quirks, catalog: &'a ToolCatalog, state: BuilderState<'r>) -> Self {
        MessageBuilder {
            quirks,
            catalog,
            state,
            unconverted: Vec::new(),
        }
    }

    /// Count the parts no Chat message can carry (`input_file`, a `file_id` image, ...).
    fn note_parts(&mut self, parts: &[ContentPart<'_>]) {
        for p in parts {
            if let ContentPart::Other(v) = p {
                let ty = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                self.unconverted
                    .push(Unconverted::new(UnconvertedKind::Part, ty));
            }
        }
    }

    /// One input item, by kind.
    fn item(
        &mut self,
        index: usize,
        item: InputItem<'r>,
        skipped: &mut Vec<String>,
    ) -> Result<(), InvalidRequest> {
        match item {
            InputItem::Message(m) => self.message(index, m)?,
            InputItem::Reasoning(r) => self.reasoning(r),
            InputItem::FunctionCall(fc) => self.function_call(fc),
            InputItem::CustomToolCall(c) => self.custom_tool_call(c),
            InputItem::FunctionCallOutput(o) | InputItem::CustomToolCallOutput(o) => {
                self.call_output(o)
            }
            InputItem::Compaction(c) => self.compaction(index, &c, skipped)?,
            InputItem::CompactionTrigger => {}
            // Hoisted into the request's tools and settings (see [`Settings`]).
            InputItem::AdditionalTools(_) | InputItem::ConfigurationUpdate(_) => {}
            InputItem::Extra(e) => self.extra(index, e, skipped)?,
            InputItem::ItemReference(r) => return Err(unresolved_reference(index, &r)),
            other @ InputItem::Other(_) => {
                let ty = other.type_name();
                skipped.push(format!("input[{index}]: {ty}"));
                self.unconverted
                    .push(Unconverted::new(UnconvertedKind::Item, ty));
            }
        }
        Ok(())
    }

    /// A message: leading system/developer texts join the system message, later ones go
    /// in the provider's developer role; user and assistant texts as they are.
    fn message(&mut self, index: usize, m: MessageItem<'r>) -> Result<(), InvalidRequest> {
        let parts = match m.content {
            MessageContent::Text(t) => vec![ContentPart::Text {
                kind: "input_text",
                text: Text::Plain(t),
            }],
            MessageContent::Parts(p) => p,
        };
        self.note_parts(&parts);
        match &*m.role {
            "system" | "developer" => {
                let text = join_text_owned(parts);
                if !self.state.started {
                    self.state.system.push(text);
                } else {
                    self.flush();
                    self.push(ChatMessage {
                        role: self.quirks.developer_role.to_owned(),
                        content: Some(ChatContent::Text(text)),
                        ..ChatMessage::default()
                    });
                }
            }
            "user" => self.user(parts),
            "assistant" => self.assistant_text(join_text_owned(parts)),
            other => {
                return Err(InvalidRequest::new(
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'system', \
                         'developer', 'user' and 'assistant'."
                    ),
                    Some(&format!("input[{index}].role")),
                ))
            }
        }
        Ok(())
    }

    /// Reasoning: its text (from our token, else the summary, else the content) goes with
    /// the assistant message that follows it.
    fn reasoning(&mut self, r: ReasoningItem<'r>) {
        self.state.started = true;
        let text = r
            .encrypted_content
            .as_deref()
            .and_then(decode_reasoning_token)
            .or_else(|| {
                let s = join_text(&r.summary);
                (!s.is_empty()).then_some(s)
            })
            .or_else(|| r.content.as_ref().map(|c| join_text(c)));
        if self
            .state
            .assistant
            .as_ref()
            .is_some_and(|a| a.tool_calls.is_some() || a.content.is_some())
        {
            self.flush();
        }
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            self.state.reasoning.push(t);
        }
    }

    fn function_call(&mut self, fc: FunctionCallItem<'r>) {
        self.state.started = true;
        let name = self
            .catalog
            .chat_name_for(fc.namespace.as_deref(), &fc.name);
        self.tool_call(fc.call_id.into_owned(), name, fc.arguments);
    }

    /// A custom tool call: a function call whose arguments carry the raw input.
    fn custom_tool_call(&mut self, c: CustomToolCallItem<'r>) {
        self.state.started = true;
        let name = self.catalog.chat_name_for(c.namespace.as_deref(), &c.name);
        let arguments = arguments_for_custom_input(&c.input.as_str());
        self.tool_call(c.call_id.into_owned(), name, Text::from(arguments));
    }

    /// A function or custom tool call's output: a tool message; its images, where the model
    /// takes them, wait for the end of the run of tool messages.
    fn call_output(&mut self, o: ToolOutputItem<'r>) {
        self.state.started = true;
        self.flush();
        let takes_images = self.takes_images();
        if let ToolOutput::Parts(parts) = &o.output {
            self.note_parts(parts);
        }
        let (text, images) = tool_output(o.output, takes_images);
        if !images.is_empty() && takes_images {
            self.state.deferred_images.push(ChatPart::Text {
                text: Text::from(format!("Image(s) returned by tool call {}:", o.call_id)),
            });
            self.state.deferred_images.extend(images);
        }
        self.state.messages.push(ChatMessage {
            role: "tool".into(),
            content: Some(ChatContent::Text(text)),
            tool_call_id: Some(o.call_id.into_owned()),
            ..ChatMessage::default()
        });
    }

    /// A compaction item: its summary as a user message.
    fn compaction(
        &mut self,
        index: usize,
        c: &CompactionItem<'_>,
        skipped: &mut Vec<String>,
    ) -> Result<(), InvalidRequest> {
        match decode_compaction_token(&c.encrypted_content) {
            Ok(summary) => self.user(vec![ContentPart::Text {
                kind: "input_text",
                text: Text::from(compaction_summary_text(&summary)),
            }]),
            // Another server's compaction (e.g. OpenAI's own, from before the switch to this
            // proxy): nothing to expand, and rejecting it would fail every later turn.
            Err(super::ids::CompactionTokenError::Foreign) => {
                skipped.push(format!("input[{index}]: compaction (foreign token)"));
            }
            Err(e) => {
                let mut err = InvalidRequest::new(
                    format!("The compaction item input[{index}] cannot be used: {e}."),
                    Some(&format!("input[{index}].encrypted_content")),
                );
                err.code = Some("invalid_encrypted_content");
                return Err(err);
            }
        }
        Ok(())
    }

    /// Text the assistant said (merged into the assistant message being built).
    fn assistant_text(&mut self, text: Text<'r>) {
        self.state.started = true;
        if self
            .state
            .assistant
            .as_ref()
            .is_some_and(|a| a.tool_calls.is_some())
        {
            self.flush();
        }
        let msg = self.assistant_mut();
        match &mut msg.content {
            Some(ChatContent::Text(existing)) if !existing.is_empty() => {
                *existing = Text::join([&*existing, &text], "\n\n");
            }
            _ => msg.content = Some(ChatContent::Text(text)),
        }
    }

    /// A tool's answer: a tool message for `call_id`.
    fn tool_message(&mut self, call_id: String, text: Text<'r>) {
        self.state.started = true;
        self.flush();
        self.state.messages.push(ChatMessage {
            role: "tool".into(),
            content: Some(ChatContent::Text(text)),
            tool_call_id: Some(call_id),
            ..ChatMessage::default()
        });
    }

    /// The rarer items, each as what it means to a Chat model: a call and its answer, or a
    /// short note in the assistant's words.
    fn extra(
        &mut self,
        index: usize,
        e: ExtraItem,
        skipped: &mut Vec<String>,
    ) -> Result<(), InvalidRequest> {
        let call_id = e.str("call_id").map(str::to_owned);
        match e.kind {
            ExtraKind::WebSearchCall => {
                let action = e.members.get("action");
                let what = action
                    .and_then(|a| a.get("query").or_else(|| a.get("url")))
                    .and_then(Value::as_str)
                    .or_else(|| {
                        action
                            .and_then(|a| a.get("queries"))
                            .and_then(|q| q.get(0))
                            .and_then(Value::as_str)
                    })
                    .unwrap_or("");
                self.assistant_text(Text::from(format!("[web search: {what}]")));
            }
            ExtraKind::ImageGenerationCall => {
                let prompt = e.str("revised_prompt").unwrap_or("");
                self.assistant_text(Text::from(if prompt.is_empty() {
                    "[generated an image]".to_owned()
                } else {
                    format!("[generated an image: {prompt}]")
                }));
            }
            ExtraKind::LocalShellCall => {
                let id = call_id.or_else(|| e.str("id").map(str::to_owned));
                let args = e
                    .members
                    .get("action")
                    .map_or_else(|| "{}".to_owned(), Value::to_string);
                match id {
                    Some(id) => {
                        self.state.started = true;
                        let name = self.catalog.chat_name_for(None, "local_shell");
                        self.tool_call(id, name, Text::from(args));
                    }
                    None => self.assistant_text(Text::from(format!("[shell: {args}]"))),
                }
            }
            ExtraKind::LocalShellCallOutput => {
                let output = e.members.get("output");
                let text = match output {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                match call_id.or_else(|| e.str("id").map(str::to_owned)) {
                    Some(id) => self.tool_message(id, Text::from(text)),
                    None => self.assistant_text(Text::from(format!("[shell output: {text}]"))),
                }
            }
            ExtraKind::ToolSearchCall => {
                let args = e.members.get("arguments").map_or_else(
                    || "{}".to_owned(),
                    |a| match a {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                );
                match call_id {
                    Some(id) if e.str("execution") != Some("server") => {
                        self.state.started = true;
                        self.tool_call(
                            id,
                            super::tools::TOOL_SEARCH_NAME.to_owned(),
                            Text::from(args),
                        );
                    }
                    _ => self.assistant_text(Text::from(format!("[tool search: {args}]"))),
                }
            }
            ExtraKind::ToolSearchOutput => {
                let names = loaded_tool_names(e.members.get("tools"));
                let text = if names.is_empty() {
                    "No tools found.".to_owned()
                } else {
                    format!("Tools found and now available: {}.", names.join(", "))
                };
                match call_id {
                    Some(id) if e.str("execution") != Some("server") => {
                        self.tool_message(id, Text::from(text))
                    }
                    _ => self.assistant_text(Text::from(format!("[tool search: {text}]"))),
                }
            }
            ExtraKind::AgentMessage => {
                let text = agent_message_text(&e);
                match text {
                    Some(t) if !t.is_empty() => self.assistant_text(Text::from(t)),
                    _ => {
                        skipped.push(format!("input[{index}]: agent_message (no plain text)"));
                        self.unconverted
                            .push(Unconverted::new(UnconvertedKind::Item, "agent_message"));
                    }
                }
            }
            ExtraKind::ContextCompaction => {
                let token = e.str("encrypted_content").unwrap_or("");
                match decode_compaction_token(token) {
                    Ok(summary) => self.user(vec![ContentPart::Text {
                        kind: "input_text",
                        text: Text::from(compaction_summary_text(&summary)),
                    }]),
                    Err(_) => {
                        skipped.push(format!("input[{index}]: context_compaction (foreign)"));
                    }
                }
            }
        }
        Ok(())
    }

    fn user(&mut self, parts: Vec<ContentPart<'r>>) {
        self.state.started = true;
        self.flush();
        let content = self.content_of(parts);
        self.push(ChatMessage {
            role: "user".into(),
            content: Some(content),
            ..ChatMessage::default()
        });
    }

    /// Image parts go only to providers that take images and accept array content (a
    /// provider whose content must be a string gets a text note instead).
    fn takes_images(&self) -> bool {
        self.quirks.images && !self.quirks.flatten_content
    }

    /// User content: a plain string when possible (or required), else text and image parts.
    fn content_of(&self, parts: Vec<ContentPart<'r>>) -> ChatContent<'r> {
        let has_image = parts.iter().any(|p| matches!(p, ContentPart::Image { .. }));
        if has_image && !self.takes_images() {
            let mut text = join_text(&parts);
            text.push_str("\n[image omitted: this provider does not accept images]");
            return ChatContent::Text(Text::from(text));
        }
        if !has_image && (self.quirks.flatten_content || parts.len() <= 1) {
            return ChatContent::Text(join_text_owned(parts));
        }
        let mut out = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                ContentPart::Text { text, .. } => out.push(ChatPart::Text { text }),
                ContentPart::Image { image_url, detail } => out.push(ChatPart::ImageUrl {
                    image_url: ImageUrl {
                        url: image_url,
                        detail: detail.filter(|d| d != "auto" && d != "original"),
                    },
                }),
                ContentPart::Other(_) => {}
            }
        }
        ChatContent::Parts(out)
    }

    fn assistant_mut(&mut self) -> &mut ChatMessage<'r> {
        self.state.assistant.get_or_insert_with(|| ChatMessage {
            role: "assistant".into(),
            ..ChatMessage::default()
        })
    }

    fn tool_call(&mut self, id: String, name: String, arguments: Text<'r>) {
        let arguments = if arguments.is_blank() {
            Text::from("{}")
        } else {
            arguments
        };
        self.assistant_mut()
            .tool_calls
            .get_or_insert_with(Vec::new)
            .push(ChatToolCall {
                id,
                kind: "function",
                function: ChatFunctionCall { name, arguments },
            });
    }

    /// A non-tool message: first the deferred tool images.
    fn push(&mut self, msg: ChatMessage<'r>) {
        self.push_deferred_images();
        self.state.messages.push(msg);
    }

    fn push_deferred_images(&mut self) {
        if !self.state.deferred_images.is_empty() {
            let parts = std::mem::take(&mut self.state.deferred_images);
            self.state.messages.push(ChatMessage {
                role: "user".into(),
                content: Some(ChatContent::Parts(parts)),
                ..ChatMessage::default()
            });
        }
    }

    /// Close the assistant message under construction, with its reasoning.
    fn flush(&mut self) {
        let reasoning = std::mem::take(&mut self.state.reasoning);
        let Some(mut msg) = self.state.assistant.take() else {
            return; // reasoning without an assistant message is dropped
        };
        if !reasoning.is_empty() {
            let rc = reasoning.join("\n\n");
            match self.quirks.passback {
                Passback::None => {}
                Passback::ReasoningContent => msg.reasoning_content = Some(rc),
                Passback::ThinkTags => {
                    let text = match msg.content.take() {
                        Some(ChatContent::Text(t)) => t.into_string(),
                        _ => String::new(),
                    };
                    msg.content = Some(ChatContent::Text(Text::from(think::write(&rc, &text))));
                }
            }
        }
        if msg.tool_calls.is_some()
            && msg.reasoning_content.is_none()
            && self.quirks.require_reasoning_content
            && self.quirks.passback == Passback::ReasoningContent
        {
            msg.reasoning_content = Some(String::new());
        }
        if msg.content.is_none() && self.quirks.empty_content_with_tool_calls {
            msg.content = Some(ChatContent::Text(Text::default()));
        }
        self.push(msg);
    }

    /// The system message: the request's instructions, the conversation's leading
    /// system texts, the request's hints. The instructions alone go as the client wrote
    /// them.
    fn system_message(
        &self,
        instructions: Option<Text<'r>>,
        hints: &[String],
    ) -> Option<ChatMessage<'r>> {
        let hints: Vec<Text<'r>> = hints.iter().map(|h| Text::from(h.clone())).collect();
        let texts: Vec<&Text<'r>> = instructions
            .iter()
            .chain(self.state.system.iter())
            .chain(hints.iter())
            .filter(|t| !t.is_empty())
            .collect();
        let text = match texts.as_slice() {
            [] => return None,
            // The instructions alone (Codex's case): as the client wrote them.
            [one] => (*one).clone(),
            _ => Text::join(texts, "\n\n"),
        };
        Some(ChatMessage {
            role: "system".into(),
            content: Some(ChatContent::Text(text)),
            ..ChatMessage::default()
        })
    }

    fn finish(mut self, instructions: Option<Text<'r>>, hints: &[String]) -> Vec<ChatMessage<'r>> {
        self.flush();
        self.push_deferred_images();
        let mut out = Vec::with_capacity(self.state.messages.len() + 1);
        if let Some(sys) = self.system_message(instructions, hints) {
            out.push(sys);
        }
        out.extend(pair_tool_messages(std::mem::take(&mut self.state.messages)));
        if out.iter().all(|m| m.role == "system") {
            // Chat providers reject a conversation without a user turn.
            out.push(ChatMessage {
                role: "user".into(),
                content: Some(ChatContent::Text(Text::default())),
                ..ChatMessage::default()
            });
        }
        out
    }
}

/// Chat providers require every assistant tool call to be answered by a tool message right
/// after it, and reject tool messages that answer nothing. Codex history can break both
/// (an interrupted turn, a compacted history): repair instead of failing.
fn pair_tool_messages(messages: Vec<ChatMessage<'_>>) -> Vec<ChatMessage<'_>> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len());
    let mut pairer = Pairer::default();
    for m in messages {
        pairer.push(m, &mut |m| out.push(m));
    }
    pairer.close(&mut |m| out.push(m));
    out
}

/// The pairing as a stream: each message goes out as soon as it is known to be right; the
/// calls still open at the end get their "interrupted" tool messages from `close`.
#[derive(Debug, Clone, Default)]
struct Pairer {
    /// Call ids awaiting a tool message.
    open: Vec<String>,
}

impl Pairer {
    fn push<'r>(&mut self, msg: ChatMessage<'r>, out: &mut dyn FnMut(ChatMessage<'r>)) {
        if msg.role == "tool" {
            let id = msg.tool_call_id.clone().unwrap_or_default();
            if let Some(pos) = self.open.iter().position(|o| *o == id) {
                self.open.remove(pos);
                out(msg);
            } else {
                let text = match &msg.content {
                    Some(ChatContent::Text(t)) => t.as_str(),
                    _ => std::borrow::Cow::Borrowed(""),
                };
                out(ChatMessage {
                    role: "user".into(),
                    content: Some(ChatContent::Text(Text::from(format!(
                        "Output of tool call {id}:\n{text}"
                    )))),
                    ..ChatMessage::default()
                });
            }
        } else {
            self.close(out);
            if let Some(calls) = &msg.tool_calls {
                self.open = calls.iter().map(|c| c.id.clone()).collect();
            }
            out(msg);
        }
    }

    fn close<'r>(&mut self, out: &mut dyn FnMut(ChatMessage<'r>)) {
        for id in self.open.drain(..) {
            out(ChatMessage {
                role: "tool".into(),
                content: Some(ChatContent::Text(Text::from(
                    "(no output: this tool call was interrupted)",
                ))),
                tool_call_id: Some(id),
                ..ChatMessage::default()
            });
        }
    }
}

/// An `item_reference` still here: resolved before conversion wherever the proxy can (the
/// store, the socket's chain), it names nothing the proxy has.
fn unresolved_reference(index: usize, r: &ItemReferenceItem<'_>) -> InvalidRequest {
    let mut err = InvalidRequest::new(
        format!("Item with id '{}' not found.", r.id),
        Some(&format!("input[{index}]")),
    );
    err.code = Some("item_not_found");
    err
}

/// The names of the tools a `tool_search_output` loaded (`ns.name` inside namespaces).
fn loaded_tool_names(tools: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for t in tools.and_then(Value::as_array).into_iter().flatten() {
        let name = t.get("name").and_then(Value::as_str).unwrap_or("");
        match t.get("tools").and_then(Value::as_array) {
            Some(inner) => {
                for i in inner {
                    if let Some(n) = i.get("name").and_then(Value::as_str) {
                        out.push(format!("{name}.{n}"));
                    }
                }
            }
            None if !name.is_empty() => out.push(name.to_owned()),
            None => {}
        }
    }
    out
}

/// The plain text of an `agent_message` (a string, or its text parts); `None` when it has
/// none (an encrypted message).
fn agent_message_text(e: &ExtraItem) -> Option<String> {
    match e.members.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// The text parts joined by newlines; a single text part is moved, not copied.
fn join_text_owned(mut parts: Vec<ContentPart<'_>>) -> Text<'_> {
    if parts.len() == 1 {
        if let Some(ContentPart::Text { text, .. }) = parts.pop() {
            return text;
        }
        return Text::default();
    }
    // As `join_text`: no newline before the first non-empty text.
    let texts = parts
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text { text, .. } => Some(text),
            _ => None,
        })
        .skip_while(|t| t.is_empty());
    Text::join(texts, "\n")
}

fn join_text(parts: &[ContentPart<'_>]) -> String {
    let mut out = String::new();
    for p in parts {
        if let ContentPart::Text { text, .. } = p {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&text.as_str());
        }
    }
    out
}

/// What stands for an image in a tool message's text.
const IMAGE_PLACEHOLDER: &str = "[image]";
const IMAGE_OMITTED: &str = "[image omitted: this provider does not accept images]";

/// A tool output as text plus image parts (`takes_images`: the parts follow in a user
/// message; otherwise the text says the image was left out).
fn tool_output(output: ToolOutput<'_>, takes_images: bool) -> (Text<'_>, Vec<ChatPart<'_>>) {
    match output {
        ToolOutput::Text(t) => (t, Vec::new()),
        ToolOutput::Parts(parts) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for p in parts {
                match p {
                    ContentPart::Text { text: t, .. } => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(&t.as_str());
                    }
                    ContentPart::Image { image_url, detail } => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(if takes_images {
                            IMAGE_PLACEHOLDER
                        } else {
                            IMAGE_OMITTED
                        });
                        images.push(ChatPart::ImageUrl {
                            image_url: ImageUrl {
                                url: image_url,
                                detail: detail.filter(|d| d != "auto" && d != "original"),
                            },
                        });
                    }
                    ContentPart::Other(_) => {}
                }
            }
            (Text::from(text), images)
        }
        ToolOutput::Other(v) => (Text::from(v.to_string()), Vec::new()),
    }
}
