//! Writing a response the proxy makes itself (a page, a stored response, an error).

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use crate::turn::pages::LocalResponse;

pub async fn write_body(session: &mut Session, resp: &LocalResponse) -> Result<()> {
    let mut h = ResponseHeader::build(resp.status, Some(4 + resp.headers.len()))?;
    h.insert_header(http::header::CONTENT_TYPE, resp.content_type)?;
    h.insert_header(http::header::CONTENT_LENGTH, resp.body.len().to_string())?;
    for (name, value) in resp.headers {
        h.insert_header(*name, *value)?;
    }
    session.write_response_header(Box::new(h), false).await?;
    session
        .write_response_body(Some(Bytes::copy_from_slice(&resp.body)), true)
        .await
}

pub async fn write_json(
    session: &mut Session,
    status: u16,
    body: &[u8],
    allow: Option<&str>,
) -> Result<()> {
    write(session, status, body, "application/json", allow, false).await
}

/// An error body; `close`: with `Connection: close` (the connection cannot be reused).
pub async fn write_error(
    session: &mut Session,
    status: u16,
    body: &[u8],
    close: bool,
) -> Result<()> {
    if close {
        session.set_keepalive(None);
    }
    write(session, status, body, "application/json", None, close).await
}

async fn write(
    session: &mut Session,
    status: u16,
    body: &[u8],
    content_type: &str,
    allow: Option<&str>,
    close: bool,
) -> Result<()> {
    let mut h = ResponseHeader::build(status, Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, content_type)?;
    if close {
        h.insert_header(http::header::CONNECTION, "close")?;
    }
    h.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    if let Some(a) = allow {
        h.insert_header(http::header::ALLOW, a)?;
    }
    session.write_response_header(Box::new(h), false).await?;
    session
        .write_response_body(Some(Bytes::copy_from_slice(body)), true)
        .await
}
