//! Remote compaction v1: `POST /v1/responses/compact` `{model, input, instructions?}` →
//! `{"id", "object": "response.compaction", "created_at", "output": [...], "usage"}`.
//!
//! It is the same conversion as v2 (a create whose input ends with `compaction_trigger`):
//! the request is rewritten into that create, and the Response it produces into the
//! compaction object. As OpenAI's endpoint does, the output keeps the user's messages and
//! replaces everything else (assistant messages, calls, outputs, reasoning) by one
//! `compaction` item.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::convert::error::ClientError;

/// The user messages of the request, kept in the compacted output.
#[derive(Debug, Default, Clone)]
pub struct Kept(pub Vec<String>);

/// The compact request → a non-streamed create that compacts, and what the output keeps.
pub fn compact_request(body: &[u8]) -> Result<(Vec<u8>, Kept), ClientError> {
    let members: BTreeMap<String, &RawValue> = serde_json::from_slice(body).map_err(|e| {
        let mut err = ClientError::new(
            400,
            "invalid_request_error",
            Some("invalid_json"),
            format!("We could not parse the JSON body of your request: {e}"),
        );
        err.param = None;
        err
    })?;
    let items: Vec<&RawValue> = match members.get("input") {
        None => Vec::new(),
        Some(raw) if raw.get().starts_with('"') => Vec::new(),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| {
            let mut err = ClientError::new(
                400,
                "invalid_request_error",
                None,
                "Invalid type for 'input': expected a string or an array of input items.",
            );
            err.param = Some("input".to_owned());
            err
        })?,
    };
    // A string input is one user message.
    let text_item = members
        .get("input")
        .filter(|r| r.get().starts_with('"'))
        .map(|raw| {
            format!(
                "{{\"type\":\"message\",\"role\":\"user\",\"content\":{}}}",
                raw.get()
            )
        });
    let mut kept: Vec<String> = text_item.iter().cloned().collect();
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        role: Option<String>,
    }
    for it in &items {
        if let Ok(h) = serde_json::from_str::<Head>(it.get()) {
            let is_message = h.kind.as_deref().is_none_or(|k| k == "message");
            if is_message && h.role.as_deref() == Some("user") {
                kept.push(it.get().to_owned());
            }
        }
    }
    let mut out = Vec::with_capacity(body.len() + 64);
    out.push(b'{');
    for (k, v) in &members {
        if matches!(k.as_str(), "input" | "stream" | "tools" | "tool_choice") {
            continue;
        }
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(b"\"stream\":false,\"input\":[");
    if let Some(t) = &text_item {
        out.extend_from_slice(t.as_bytes());
        out.push(b',');
    }
    for it in &items {
        out.extend_from_slice(it.get().as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(b"{\"type\":\"compaction_trigger\"}]}");
    Ok((out, Kept(kept)))
}

/// A kept user message in the shape of an output item: `id`, `status`, and its content as
/// parts (a string becomes one `input_text` part).
fn as_output_message(raw: &str, n: usize, response_id: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(raw) else {
        return raw.to_owned();
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), "message".into());
        if !o.get("id").is_some_and(serde_json::Value::is_string) {
            let tail = response_id.strip_prefix("resp_").unwrap_or(response_id);
            o.insert("id".into(), format!("msg_{tail}_{n}").into());
        }
        o.insert("status".into(), "completed".into());
        if let Some(text) = o.get("content").and_then(|c| c.as_str()).map(str::to_owned) {
            o.insert(
                "content".into(),
                serde_json::json!([{"type": "input_text", "text": text}]),
            );
        }
    }
    v.to_string()
}

/// The Response a compaction produced → the compaction object. A failed Response stays an
/// error body (`{"error": ...}`), never an empty compaction.
pub fn compaction_object(response_json: &[u8], kept: &Kept) -> Vec<u8> {
    #[derive(Deserialize)]
    struct Resp<'a> {
        id: String,
        created_at: u64,
        #[serde(default)]
        status: Option<String>,
        #[serde(borrow, default)]
        output: Vec<&'a RawValue>,
        #[serde(borrow, default)]
        usage: Option<&'a RawValue>,
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
    }
    let Ok(r) = serde_json::from_slice::<Resp<'_>>(response_json) else {
        return response_json.to_vec();
    };
    if r.status.as_deref() != Some("completed") {
        let error = r
            .error
            .filter(|e| e.get() != "null")
            .map(|e| e.get().to_owned())
            .unwrap_or_else(|| {
                r#"{"message":"The compaction did not complete.","type":"server_error","param":null,"code":"server_error"}"#.to_owned()
            });
        return format!("{{\"error\":{error}}}").into_bytes();
    }
    let mut out = Vec::with_capacity(response_json.len() / 2 + 256);
    out.extend_from_slice(b"{\"id\":");
    let _ = serde_json::to_writer(&mut out, &r.id);
    out.extend_from_slice(b",\"object\":\"response.compaction\",\"created_at\":");
    out.extend_from_slice(r.created_at.to_string().as_bytes());
    out.extend_from_slice(b",\"output\":[");
    let kept_items = kept
        .0
        .iter()
        .enumerate()
        .map(|(n, k)| as_output_message(k, n, &r.id));
    let produced = r.output.iter().map(|o| o.get().to_owned());
    for (i, it) in kept_items.chain(produced).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(it.as_bytes());
    }
    out.extend_from_slice(b"],\"usage\":");
    out.extend_from_slice(
        r.usage
            .map(RawValue::get)
            .unwrap_or(r#"{"input_tokens":0,"input_tokens_details":{"cached_tokens":0},"output_tokens":0,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":0}"#)
            .as_bytes(),
    );
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn the_compact_request_becomes_a_compacting_create() {
        let body = json!({"model": "m", "instructions": "be brief", "stream": true,
            "input": [{"type": "message", "role": "user", "content": "launch on Tuesday"},
                      {"type": "message", "role": "assistant", "content": "ok"},
                      {"role": "user", "content": "and notify support"}]});
        let (create, kept) = compact_request(body.to_string().as_bytes()).unwrap();
        let v: Value = serde_json::from_slice(&create).unwrap();
        assert_eq!(v["stream"], false);
        assert_eq!(v["instructions"], "be brief");
        let input = v["input"].as_array().unwrap();
        assert_eq!(input.len(), 4);
        assert_eq!(input[3], json!({"type": "compaction_trigger"}));
        assert_eq!(kept.0.len(), 2);

        let (create, kept) = compact_request(br#"{"model":"m","input":"just this"}"#).unwrap();
        let v: Value = serde_json::from_slice(&create).unwrap();
        assert_eq!(v["input"][0]["content"], "just this");
        assert_eq!(v["input"][1]["type"], "compaction_trigger");
        assert_eq!(kept.0.len(), 1);
        assert!(compact_request(b"nope").is_err());
        assert!(compact_request(br#"{"model":"m","input":5}"#).is_err());
    }

    #[test]
    fn the_response_becomes_the_compaction_object() {
        let resp = json!({"id": "resp_1", "object": "response", "created_at": 7, "status": "completed",
            "output": [{"id": "cmp_1", "type": "compaction", "encrypted_content": "ccpc1.x"}],
            "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}});
        let kept = Kept(vec![
            r#"{"type":"message","role":"user","content":"hi"}"#.into()
        ]);
        let obj: Value =
            serde_json::from_slice(&compaction_object(resp.to_string().as_bytes(), &kept)).unwrap();
        assert_eq!(obj["object"], "response.compaction");
        assert_eq!(obj["id"], "resp_1");
        assert_eq!(obj["created_at"], 7);
        assert_eq!(obj["output"][0]["role"], "user");
        assert_eq!(obj["output"][0]["status"], "completed");
        assert!(obj["output"][0]["id"].is_string());
        assert_eq!(
            obj["output"][0]["content"],
            json!([{"type": "input_text", "text": "hi"}])
        );
        assert_eq!(obj["output"][1]["type"], "compaction");
        assert_eq!(obj["usage"]["total_tokens"], 7);

        let failed = json!({"id": "resp_2", "created_at": 7, "status": "failed", "output": [],
            "error": {"code": "context_length_exceeded", "message": "too long"}});
        let obj: Value =
            serde_json::from_slice(&compaction_object(failed.to_string().as_bytes(), &kept))
                .unwrap();
        assert_eq!(obj["error"]["code"], "context_length_exceeded");
    }
}
