//! Faults as the real Codex CLI sees them through the proxy: a context-length error is shown
//! as "out of room" and never retried; a stream cut mid-way is retried by Codex and the retry
//! completes the turn.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::codex::{run_codex, CodexOptions};
use common::mock_upstream::{self, MockReply, MockUpstream};
use common::*;

fn retries(request: u32, stream: u32) -> CodexOptions {
    CodexOptions {
        config: vec![
            format!("model_providers.proxy.request_max_retries={request}"),
            format!("model_providers.proxy.stream_max_retries={stream}"),
        ],
        ..CodexOptions::default()
    }
}

fn error_text(run: &common::codex::CodexRun) -> String {
    run.errors()
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_length_is_out_of_room_and_not_retried() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    let work = tempfile::tempdir().unwrap();
    // before the stream: HTTP 400 with the provider's wording
    mock.push(MockReply::error(
        400,
        "This model's maximum context length is 131072 tokens. However, your messages resulted in 140000 tokens.",
        "invalid_request_error",
        None,
    ));
    let run = run_codex(&proxy.url("/v1"), work.path(), "hello", &retries(3, 3)).await;
    let errors = error_text(&run);
    assert!(
        errors.to_lowercase().contains("context window"),
        "{}",
        run.describe()
    );
    assert_eq!(mock.requests().len(), 1, "not retried\n{}", run.describe());

    // during the stream: an error object after some text
    let mut chunks = mock_upstream::sse_text("partial answer");
    chunks.truncate(2);
    chunks.push("data: {\"error\":{\"message\":\"Input is too long: context length exceeded\",\"code\":\"context_length_exceeded\"}}\n\n".into());
    mock.push(MockReply::sse(chunks));
    let run = run_codex(
        &proxy.url("/v1"),
        work.path(),
        "hello again",
        &retries(3, 3),
    )
    .await;
    let errors = error_text(&run);
    assert!(
        errors.to_lowercase().contains("context window"),
        "{}",
        run.describe()
    );
    assert_eq!(mock.requests().len(), 2, "not retried\n{}", run.describe());
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_is_retried_by_codex_and_completes() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    let work = tempfile::tempdir().unwrap();
    mock.push(MockReply::Sse {
        chunks: mock_upstream::sse_text("this attempt dies half way through"),
        delay_ms: 10,
        cut_after: Some(3),
    });
    mock.push(MockReply::text("Second attempt made it."));
    let run = run_codex(&proxy.url("/v1"), work.path(), "hello", &retries(0, 2)).await;
    assert!(run.status.success(), "{}", run.describe());
    assert!(
        run.events.iter().any(|e| e["type"] == "turn.completed"),
        "{}",
        run.describe()
    );
    // the only error is Codex's own notice that it reconnects
    for e in run.errors() {
        assert!(
            e["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("Reconnecting"),
            "{}",
            run.describe()
        );
    }
    // the cut attempt's fragment never became a message: only the retry's answer
    assert_eq!(
        run.agent_messages(),
        vec!["Second attempt made it.".to_owned()],
        "{}",
        run.describe()
    );
    assert_eq!(mock.requests().len(), 2, "{}", run.describe());
    // with no retries left, the cut is reported and the turn fails (never hangs)
    mock.push(MockReply::Sse {
        chunks: mock_upstream::sse_text("dies again"),
        delay_ms: 10,
        cut_after: Some(2),
    });
    let run = run_codex(&proxy.url("/v1"), work.path(), "hello", &retries(0, 0)).await;
    assert!(!run.errors().is_empty(), "{}", run.describe());
    assert!(run.elapsed < std::time::Duration::from_secs(60));
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;
}
