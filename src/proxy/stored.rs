//! The store's part of the HTTP path: a continuation's chain put in front of its input
//! before conversion, the finished response kept (in the background: a failed write is
//! logged and counted, never turned into a failed response), and `GET`/`DELETE
//! /v1/responses/{id}` and `/input_items`.

use pingora::http::RequestHeader;

use crate::convert::error::ClientError;
use crate::store::{rebuild_chain, ChainError, Store};
use crate::turn::chain::previous_not_found;
use crate::turn::stored::{
    input_items_page, not_found, own_input, prepend_chain, record_of, store_unavailable, Pending,
    StoredPath,
};
use crate::types::responses::ResponsesRequest;

use super::ConvertProxy;

/// Links walked to rebuild a chain at most.
const MAX_CHAIN: usize = 100_000;

impl ConvertProxy {
    /// The owner a stored response gets: the client token's hash when tokens are checked.
    pub(crate) fn owner_of(&self, req: &RequestHeader) -> Option<String> {
        (!self.config.auth_tokens.is_empty())
            .then(|| crate::store::owner_of(super::client_token(req)))
    }

    /// Before conversion: resolve `previous_response_id` from the store (the chain's items in
    /// front of the input) and decide what is kept afterwards. Returns what to keep and
    /// whether a chain was resolved.
    pub(crate) async fn store_prelude(
        &self,
        store: &dyn Store,
        raw: &[u8],
        req: &mut ResponsesRequest,
        owner: Option<String>,
    ) -> Result<(Option<Pending>, bool), ClientError> {
        let previous = req.previous_response_id.clone();
        if let Some(id) = &previous {
            let chain = self
                .stored_chain(store, id, owner.as_deref())
                .await?
                .ok_or_else(|| previous_not_found(id))?;
            prepend_chain(req, chain)?;
        }
        if req.store.is_none() {
            // Stored by default, as OpenAI's API: the Response object says so.
            req.store = Some(true);
        }
        let pending = (req.store != Some(false)).then(|| Pending {
            owner,
            previous: previous.clone(),
            input: own_input(raw),
        });
        Ok((pending, previous.is_some()))
    }

    /// The conversation of stored response `id` (its predecessors' and its own input and
    /// output), `None` when it is unknown, gone, another token's, or its chain is broken.
    pub(crate) async fn stored_chain(
        &self,
        store: &dyn Store,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<Vec<Box<serde_json::value::RawValue>>>, ClientError> {
        let last = match store.get(id).await {
            Ok(Some(r)) if r.owner.as_deref() == owner => r,
            Ok(_) => return Ok(None),
            Err(e) => return Err(store_unavailable(&e)),
        };
        match rebuild_chain(store, &last, MAX_CHAIN).await {
            Ok(items) => Ok(Some(items)),
            Err(ChainError::Missing(_)) => Ok(None),
            Err(ChainError::TooLong(n)) => Err(ClientError::new(
                400,
                "invalid_request_error",
                None,
                format!("The conversation of previous_response_id is longer than {n} responses."),
            )),
            Err(ChainError::Store(e)) => Err(store_unavailable(&e)),
        }
    }

    /// Keep a finished response (in the background).
    pub(crate) fn keep(&self, id: &str, response_json: &[u8], pending: Pending) {
        let (Some(store), Some(rec)) = (self.store.clone(), record_of(id, response_json, pending))
        else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = store.put(rec).await {
                tracing::warn!("could not store a response: {e}");
            }
        });
    }

    /// `GET`/`DELETE …/responses/{id}`, `GET …/{id}/input_items`: (status, JSON body).
    pub(crate) async fn serve_stored(
        &self,
        method: &http::Method,
        path: StoredPath<'_>,
        query: Option<&str>,
        owner: Option<&str>,
    ) -> (u16, Vec<u8>) {
        let render = |e: ClientError| (e.status, e.body_bytes());
        let Some(store) = self.store.as_deref() else {
            return render(ClientError::new(
                404,
                "invalid_request_error",
                Some("not_found"),
                "This proxy keeps no responses (store.type is \"none\").",
            ));
        };
        let id = match path {
            StoredPath::Response(id) | StoredPath::InputItems(id) => id,
        };
        let allowed = match path {
            StoredPath::Response(_) => {
                matches!(*method, http::Method::GET | http::Method::DELETE)
            }
            StoredPath::InputItems(_) => *method == http::Method::GET,
        };
        if !allowed {
            return render(ClientError::new(
                405,
                "invalid_request_error",
                Some("method_not_allowed"),
                format!("Method {method} is not allowed here."),
            ));
        }
        if query.is_some_and(|q| q.split('&').any(|kv| kv == "stream=true")) {
            return render(ClientError::new(
                400,
                "invalid_request_error",
                None,
                "Streaming a stored response (stream=true) is not supported: retrieve it without `stream`.",
            ));
        }
        let rec = match store.get(id).await {
            Ok(Some(r)) if r.owner.as_deref() == owner => r,
            Ok(_) => return render(not_found(id)),
            Err(e) => return render(store_unavailable(&e)),
        };
        match (path, method) {
            (StoredPath::InputItems(_), _) => match input_items_page(&rec, query) {
                Ok(b) => (200, b),
                Err(e) => render(e),
            },
            (_, &http::Method::DELETE) => match store.delete(id).await {
                Ok(_) => (
                    200,
                    serde_json::json!({"id": id, "object": "response", "deleted": true})
                        .to_string()
                        .into_bytes(),
                ),
                Err(e) => render(store_unavailable(&e)),
            },
            _ => (200, rec.response.get().as_bytes().to_vec()),
        }
    }
}
