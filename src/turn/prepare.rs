//! Prepare: the client's create body → the provider's Chat body and the response context.
//! One function for both transports (an HTTP body, or a WebSocket message resolved against
//! its chain into the same body).

use crate::config::Backend;
use crate::convert::error::ClientError;
use crate::convert::request::{
    chat_body, convert_request, parse_request, InvalidRequest, RequestOptions,
};
use crate::convert::ResponseContext;

use super::intern::Interner;

/// A converted request, ready for the provider.
#[derive(Debug)]
pub struct Prepared {
    /// The Chat Completions body.
    pub chat: Vec<u8>,
    pub rctx: ResponseContext,
    /// The model the client asked for (for the access log).
    pub model: Option<String>,
}

/// Parse and convert `raw` for `backend`. `echoes`: shares identical echoed request fields
/// between open requests. `log_body`: the size limit when bodies are logged.
/// `chain_resolved`: `input` already holds the conversation `previous_response_id` names
/// (a WebSocket chain), which is then only echoed.
pub fn prepare(
    raw: &[u8],
    backend: &Backend,
    echoes: &Interner,
    log_body: Option<usize>,
    chain_resolved: bool,
) -> Result<Prepared, ClientError> {
    let req = parse_request(raw).map_err(invalid)?;
    let model = req.model.clone();
    let opts = RequestOptions {
        quirks: &backend.quirks,
        model_override: backend.model.as_deref(),
        id_seed: None,
        chain_resolved,
    };
    let mut converted = convert_request(req, &opts).map_err(invalid)?;
    if !converted.skipped.is_empty() {
        tracing::debug!(backend = %backend.name, skipped = ?converted.skipped, "left out what the provider cannot take");
    }
    let chat = chat_body(&converted.chat, raw.len()).map_err(|e| {
        ClientError::new(
            500,
            "server_error",
            Some("server_error"),
            format!("Internal proxy error: serialising the chat request failed ({e})."),
        )
    })?;
    if let Some(max) = log_body {
        crate::logger::log_body("request", &backend.name, &chat, max);
    }
    converted.ctx.echo = echoes.intern(converted.ctx.echo);
    Ok(Prepared {
        chat,
        rctx: converted.ctx,
        model,
    })
}

/// A request the client got wrong → 400 in OpenAI's shape.
pub fn invalid(e: InvalidRequest) -> ClientError {
    let mut err = ClientError::new(400, "invalid_request_error", e.code, e.message);
    err.param = e.param;
    err
}
