//! Responses input items → Chat messages: the builder that merges an assistant turn's
//! text, reasoning and tool calls into one assistant message, gives each tool output its
//! tool message, and pairs every tool call with an answer ([`Pairer`]).

use serde_json::Value;

use super::error::InvalidRequest;
use super::freeform::arguments_for_custom_input;
use super::ids::{decode_compaction_token, decode_reasoning_token};
use super::think;
use super::tools::ToolCatalog;
use super::{Unconverted, UnconvertedKind};
use crate::providers::{Passback, Quirks};
use crate::types::chat::{
    ChatContent, ChatFunctionCall, ChatMessage, ChatPart, ChatToolCall, ImageUrl,
};
use crate::types::responses::{
    ContentPart, CustomToolCallItem, ExtraItem, ExtraKind, FunctionCallItem, InputItem,
    ItemReferenceItem, MessageContent, MessageItem, ReasoningItem, Text, ToolOutput,
    ToolOutputItem,
};

/// What the builder has made so far (`'static` when a chain keeps it between turns).
#[derive(Debug, Clone, Default)]
pub(super) struct BuilderState<'r> {
    /// System texts from the conversation's leading system/developer items.
    system: Vec<Text<'r>>,
    /// Completed messages not yet paired and settled.
    pub(super) messages: Vec<ChatMessage<'r>>,
    /// Reasoning of the assistant turn being built.
    reasoning: Vec<String>,
    assistant: Option<ChatMessage<'r>>,
    /// Images from tool outputs, sent as one user message after the run of tool messages.
    deferred_images: Vec<ChatPart<'r>>,
    started: bool,
}

impl BuilderState<'_> {
    /// The same state, owning its texts.
    pub(super) fn into_owned(self) -> BuilderState<'static> {
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
pub(super) struct MessageBuilder<'a, 'r> {
    quirks: &'a Quirks,
    catalog: &'a ToolCatalog,
    pub(super) state: BuilderState<'r>,
    /// Item and part types met that are not converted (the dialect guard).
    pub(super) unconverted: Vec<Unconverted>,
}

impl<'a, 'r> MessageBuilder<'a, 'r> {
    pub(super) fn new(
        quirks: &'a Quirks,
        catalog: &'a ToolCatalog,
        state: BuilderState<'r>,
    ) -> Self {
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
    pub(super) fn item(
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
            InputItem::Compaction(c) => self.compaction(index, &c.encrypted_content, skipped)?,
            InputItem::CompactionTrigger => {}
            // Hoisted into the request's tools and settings (see `request::Settings`).
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

    /// A compaction (`compaction`, or `context_compaction` by its older name): the summary
    /// its token carries, as a user message.
    fn compaction(
        &mut self,
        index: usize,
        token: &str,
        skipped: &mut Vec<String>,
    ) -> Result<(), InvalidRequest> {
        match decode_compaction_token(token) {
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
                self.assistant_text(Text::from(web_search_note(what, action)));
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
                self.compaction(index, token, skipped)?;
            }
        }
        Ok(())
    }

    pub(super) fn user(&mut self, parts: Vec<ContentPart<'r>>) {
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

    pub(super) fn push_deferred_images(&mut self) {
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
    pub(super) fn flush(&mut self) {
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
    pub(super) fn system_message(
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

    pub(super) fn finish(
        mut self,
        instructions: Option<Text<'r>>,
        hints: &[String],
    ) -> Vec<ChatMessage<'r>> {
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
pub(super) struct Pairer {
    /// Call ids awaiting a tool message.
    open: Vec<String>,
}

impl Pairer {
    pub(super) fn push<'r>(&mut self, msg: ChatMessage<'r>, out: &mut dyn FnMut(ChatMessage<'r>)) {
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

    pub(super) fn close<'r>(&mut self, out: &mut dyn FnMut(ChatMessage<'r>)) {
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

/// How a compaction item's summary is given to the provider, in the item's place.
pub fn compaction_summary_text(summary: &str) -> String {
    format!(
        "Summary of the conversation so far (the earlier messages were compacted into it):\n\n{summary}"
    )
}

/// A `web_search_call` in the model's words: what was searched for (the provider's own
/// search may not say: then only that it searched) and the pages it found.
fn web_search_note(what: &str, action: Option<&Value>) -> String {
    let mut note = if what.is_empty() {
        "[web search".to_owned()
    } else {
        format!("[web search: {what}")
    };
    let sources: Vec<&str> = action
        .and_then(|a| a.get("sources"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|s| s.get("url").and_then(Value::as_str))
                .take(MAX_NOTED_SOURCES)
                .collect()
        })
        .unwrap_or_default();
    if !sources.is_empty() {
        note.push_str("; sources: ");
        note.push_str(&sources.join(", "));
    }
    note.push(']');
    note
}

/// Sources named in a `web_search_call`'s note, at most.
const MAX_NOTED_SOURCES: usize = 8;

#[cfg(test)]
mod web_search_note_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_search_is_noted_with_its_query_and_sources() {
        let a = json!({"type": "search", "query": "rust 2027",
            "sources": [{"type": "url", "url": "https://a.test"}, {"type": "url", "url": "https://b.test"}]});
        assert_eq!(
            web_search_note("rust 2027", Some(&a)),
            "[web search: rust 2027; sources: https://a.test, https://b.test]"
        );
        // The provider's own search reports no query (GLM, Kimi).
        let a = json!({"type": "search", "query": "", "sources": [{"type": "url", "url": "https://a.test"}]});
        assert_eq!(
            web_search_note("", Some(&a)),
            "[web search; sources: https://a.test]"
        );
        assert_eq!(web_search_note("", None), "[web search]");
    }
}
