//! `codex-convert-proxy codex-setup`: the generated Codex files, merging into a user's
//! existing Codex home, config errors, and the real Codex CLI (0.169 and 0.171, offline)
//! using the generated set-up through the proxy against the mock upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::codex::{codex_bin, codex_bin_0171, CodexRun, CODEX_TIMEOUT};
use common::mock_upstream::{self, MockUpstream, RecordedRequest};
use common::*;
use serde_json::{json, Value};

/// Upper bound of one `codex-setup` run.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The client token the proxy checks and Codex sends from `CODEX_PROXY_TOKEN`.
const CLIENT_TOKEN: &str = "client-token-e2e";
/// Upstream API keys: must never appear in Codex's files.
const UPSTREAM_SECRET: &str = "sk-upstream-secret-never-in-codex";
/// Start of Codex's own base prompt.
const CODEX_PROMPT_START: &str = "You are a coding agent running in the Codex CLI";

/// Runs the proxy binary with these arguments (bounded); stdout and stderr captured.
fn run_proxy_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = Command::new(proxy_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .env_remove("CODEX_HOME")
        .env_remove("CODEX_PROXY_AUTH_TOKENS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn the proxy binary");
    let status = wait_bounded(child, SETUP_TIMEOUT, "codex-convert-proxy");
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `codex-setup --config CONFIG --codex-home HOME [extra]`; asserts success, returns stdout.
fn setup(config: &Path, home: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "codex-setup",
        "--config",
        config.to_str().unwrap(),
        "--codex-home",
        home.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run_proxy_cli(&args, &[]);
    assert!(
        out.status.success(),
        "codex-setup failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Every file under `dir`, with its bytes, sorted by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// A proxy config with three backends (glm default with a prefix, kimi, a generic one).
fn three_backends(listen: &str) -> Value {
    json!({
        "listen": listen,
        "backends": [
            {"name": "glm", "url": "https://open.bigmodel.cn/api/paas/v4", "api_key": UPSTREAM_SECRET,
             "model": "glm-5", "match_rules": {"path_prefix": "/glm", "default": true}},
            {"name": "kimi", "url": "https://api.moonshot.cn/v1", "api_key": "${KIMI_KEY_FOR_TEST_UNSET:-sk-kimi-default}",
             "model": "kimi-k2.6", "context_window": 262144, "match_rules": {"path_prefix": "/kimi"}},
            {"name": "local", "url": "http://127.0.0.1:11434/v1", "api_key": "${SETUP_TEST_UNSET_KEY}",
             "models": [{"name": "qwen3-coder", "context_window": 65536, "input_modalities": ["text"],
                         "reasoning": {"default_effort": "low"}},
                        {"name": "qwen3-vl", "input_modalities": ["text", "image"], "apply_patch": "function"}],
             "match_rules": {"path_prefix": "/local"}}
        ]
    })
}

/// A realistic `~/.codex/config.toml` of a user with other providers, profiles, MCP servers.
const USER_CONFIG_TOML: &str = r#"# ~/.codex/config.toml — hand-written, please keep my comments!
model = "gpt-5.1-codex"          # my default
model_reasoning_effort = "high"
approval_policy = "on-request"
sandbox_mode   = "workspace-write"
notify = ["notify-send", "Codex"]

[tui]
notifications = true   # desktop notifications

# My own hand-written proxy entry (the README's alternative).
[model_providers.proxy]
name = "codex-convert-proxy"
base_url = "http://127.0.0.1:8280/v1"
env_key = "PROXY_API_KEY"
wire_api = "responses"

[model_providers.azure]
name = "Azure"
base_url = "https://example.openai.azure.com/openai"
env_key = "AZURE_OPENAI_API_KEY"
query_params = { api-version = "2025-04-01-preview" }
wire_api = "responses"

[mcp_servers.docs]
command = "npx"
args = ["-y", "@example/docs-mcp"]
env = { "DOCS_TOKEN" = "literal-token" }

[mcp_servers.github]
url = "https://mcp.example.com/github"
bearer_token_env_var = "GITHUB_PAT"
startup_timeout_sec = 20

[projects."/home/me/src/project"]
trust_level = "trusted"

[shell_environment_policy]
inherit = "core"
exclude = ["AWS_*", "AZURE_*"]

# [mcp_servers.old]
# command = "disabled-for-now"
"#;

/// The user's own profile file that happens to share a backend's name.
const USER_KIMI_PROFILE: &str =
    "# my kimi profile\napproval_policy = \"never\"   # trust it\n\n[tui]\nnotifications = false\n";

#[test]
fn write_merges_into_a_realistic_codex_home_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("config.toml"), USER_CONFIG_TOML).unwrap();
    std::fs::write(home.join("kimi.config.toml"), USER_KIMI_PROFILE).unwrap();
    std::fs::write(home.join("auth.json"), "{\"OPENAI_API_KEY\": null}").unwrap();
    let config = dir.path().join("config.json");
    write_json(&config, &three_backends("127.0.0.1:8280"));

    let first = setup(&config, &home, &["--write"]);

    // config.toml: the user's text is a byte-for-byte prefix; the provider tables follow.
    let merged = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(
        merged.starts_with(USER_CONFIG_TOML),
        "the user's config.toml was not kept byte for byte:\n{merged}"
    );
    let added = &merged[USER_CONFIG_TOML.len()..];
    for (id, url) in [
        ("proxy-glm", "http://127.0.0.1:8280/glm/v1"),
        ("proxy-kimi", "http://127.0.0.1:8280/kimi/v1"),
        ("proxy-local", "http://127.0.0.1:8280/local/v1"),
    ] {
        assert!(
            added.contains(&format!(
                "[model_providers.{id}]\nname = \"codex-convert-proxy: {}\"\nbase_url = \"{url}\"\nwire_api = \"responses\"\nsupports_websockets = true\n",
                id.trim_start_matches("proxy-")
            )),
            "{id} missing or different in:\n{added}"
        );
    }
    assert!(
        !added.contains("env_key"),
        "no client tokens: no env_key\n{added}"
    );
    let doc: toml_edit::DocumentMut = merged.parse().expect("merged config.toml parses");
    assert_eq!(
        doc["model_providers"]["proxy"]["base_url"].as_str(),
        Some("http://127.0.0.1:8280/v1")
    );
    assert_eq!(
        doc["mcp_servers"]["github"]["startup_timeout_sec"].as_integer(),
        Some(20)
    );
    assert_eq!(
        doc["model"].as_str(),
        Some("gpt-5.1-codex"),
        "the default model is the user's"
    );
    assert!(doc.get("model_catalog_json").is_none());

    // Profiles: one file per backend; the user's kimi profile keeps its settings.
    let catalog = home.join("codex-models.json").canonicalize().unwrap();
    let glm = std::fs::read_to_string(home.join("glm.config.toml")).unwrap();
    assert!(
        glm.contains("model_provider = \"proxy-glm\"\nmodel = \"glm-5\"\n"),
        "{glm}"
    );
    assert!(
        glm.contains(&format!("model_catalog_json = \"{}\"", catalog.display())),
        "{glm}"
    );
    let local = std::fs::read_to_string(home.join("local.config.toml")).unwrap();
    assert!(local.contains("model = \"qwen3-coder\"\n"), "{local}");
    let kimi = std::fs::read_to_string(home.join("kimi.config.toml")).unwrap();
    assert!(
        kimi.starts_with("# my kimi profile\napproval_policy = \"never\"   # trust it\nmodel_provider = \"proxy-kimi\"\nmodel = \"kimi-k2.6\"\nmodel_catalog_json = "),
        "{kimi}"
    );
    assert!(
        kimi.ends_with("\n\n[tui]\nnotifications = false\n"),
        "{kimi}"
    );
    assert_eq!(
        std::fs::read_to_string(home.join("auth.json")).unwrap(),
        "{\"OPENAI_API_KEY\": null}"
    );

    // The catalog: every model, Codex's full schema.
    let cat: Value = serde_json::from_slice(&std::fs::read(&catalog).unwrap()).unwrap();
    let slugs: Vec<&str> = cat["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["glm-5", "kimi-k2.6", "qwen3-coder", "qwen3-vl"]);
    let example = fixture("model-catalog-example.json");
    let example = example["models"][0].as_object().unwrap();
    for m in cat["models"].as_array().unwrap() {
        for key in example.keys() {
            assert!(
                m.get(key).is_some(),
                "{key} missing in the catalog entry {}",
                m["slug"]
            );
        }
    }

    // Never an upstream key in Codex's files nor on stdout.
    for (name, bytes) in snapshot(&home) {
        let s = text(&bytes);
        for secret in [UPSTREAM_SECRET, "sk-kimi-default"] {
            assert!(!s.contains(secret), "{secret} written into {name}");
        }
    }
    assert!(!first.contains(UPSTREAM_SECRET));

    // A second run changes nothing, byte for byte.
    let before = snapshot(&home);
    let second = setup(&config, &home, &["--write"]);
    assert_eq!(snapshot(&home), before, "a second run changed files");
    assert!(
        !second.contains("(created)") && !second.contains("(updated)"),
        "{second}"
    );
    assert!(second.contains("config.toml (unchanged)"), "{second}");

    // A new listen port: only the owned base_url lines change, in place.
    let old_config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    write_json(&config, &three_backends("127.0.0.1:9999"));
    let third = setup(&config, &home, &["--write"]);
    assert!(
        third.contains("replaced model_providers.proxy-glm"),
        "{third}"
    );
    let new_config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert_eq!(
        new_config,
        old_config
            .replace("http://127.0.0.1:8280/glm/", "http://127.0.0.1:9999/glm/")
            .replace("http://127.0.0.1:8280/kimi/", "http://127.0.0.1:9999/kimi/")
            .replace(
                "http://127.0.0.1:8280/local/",
                "http://127.0.0.1:9999/local/"
            )
    );
    assert!(new_config.starts_with(USER_CONFIG_TOML));
}

#[test]
fn without_write_only_the_catalog_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out_dir = dir.path().join("out");
    let config = dir.path().join("config.json");
    let mut cfg = three_backends("0.0.0.0:8280");
    cfg["auth_tokens"] = json!(["tok-1"]);
    write_json(&config, &cfg);

    let out = run_proxy_cli(
        &[
            "codex-setup",
            "--config",
            config.to_str().unwrap(),
            "--codex-home",
            home.to_str().unwrap(),
            "--out-dir",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The unset `${SETUP_TEST_UNSET_KEY}` of an api_key is only a note here.
    assert!(
        stderr.contains("SETUP_TEST_UNSET_KEY is not set"),
        "{stderr}"
    );

    assert!(out_dir.join("codex-models.json").is_file());
    let home_files = std::fs::read_dir(&home).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        home_files, 0,
        "nothing may be written into the Codex home without --write"
    );

    // Printed: the tables and profiles, at the loopback address, with the token's env_key.
    assert!(stdout.contains(
        "[model_providers.proxy-glm]\nname = \"codex-convert-proxy: glm\"\nbase_url = \"http://127.0.0.1:8280/glm/v1\"\nwire_api = \"responses\"\nsupports_websockets = true\nenv_key = \"CODEX_PROXY_TOKEN\"\n"
    ), "{stdout}");
    assert!(
        stdout.contains("model_provider = \"proxy-local\"\nmodel = \"qwen3-coder\"\n"),
        "{stdout}"
    );
    assert!(stdout.contains("codex --profile kimi"), "{stdout}");
    assert!(stdout.contains("export CODEX_PROXY_TOKEN="), "{stdout}");
    assert!(
        !stdout.contains("tok-1"),
        "the client token itself is never printed"
    );
    assert!(!stdout.contains(UPSTREAM_SECRET));
    // Every printed block (config.toml, then one per profile file) is valid TOML.
    let printed = stdout
        .split_once("# ---- add to ")
        .and_then(|(_, rest)| rest.split_once("\nNothing but"))
        .map(|(blocks, _)| blocks)
        .unwrap_or_else(|| panic!("no printed blocks in:\n{stdout}"));
    let blocks: Vec<&str> = printed.split("\n# ---- ").collect();
    assert_eq!(blocks.len(), 4, "config.toml + 3 profiles:\n{printed}");
    for block in blocks {
        let (header, body) = block.split_once('\n').unwrap();
        assert!(header.ends_with(".toml ----"), "{header}");
        body.parse::<toml_edit::DocumentMut>()
            .unwrap_or_else(|e| panic!("printed {header} is not TOML: {e}\n{body}"));
    }
}

#[test]
fn bad_metadata_is_a_config_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let cases = [
        (
            json!({"name": "glm", "url": "http://h", "model": "glm-5", "context_window": -128000}),
            "backends[0].context_window: must be a positive number of tokens, got -128000",
        ),
        (
            json!({"name": "kimi", "url": "http://h",
                   "models": [{"name": "a"}, {"name": "b", "input_modalities": ["text", "video"]}]}),
            "backends[0].models[1].input_modalities[1]: unknown input modality \"video\"",
        ),
        (
            json!({"name": "x", "url": "http://h", "model": "m", "reasoning": {"default_effort": "maximum"}}),
            "backends[0].reasoning.default_effort: unknown reasoning effort \"maximum\"",
        ),
        (
            json!({"name": "x", "url": "http://h", "models": [{"name": "m", "context_window": 0}]}),
            "backends[0].models[0].context_window: must be a positive number of tokens, got 0",
        ),
        (
            json!({"name": "x", "url": "http://h", "model": "m", "apply_patch": "unified-diff"}),
            "backends[0].apply_patch: unknown apply_patch kind \"unified-diff\"",
        ),
    ];
    for (backend, needle) in cases {
        let config = dir.path().join("config.json");
        write_json(&config, &json!({ "backends": [backend] }));
        let cfg = config.to_str().unwrap();
        for args in [
            vec!["--config", cfg, "--check"],
            vec![
                "codex-setup",
                "--config",
                cfg,
                "--write",
                "--codex-home",
                home.to_str().unwrap(),
            ],
        ] {
            let out = run_proxy_cli(&args, &[]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains("invalid configuration") && stderr.contains(needle),
                "{args:?}: {stderr:?} does not contain {needle:?}"
            );
        }
        assert!(
            !home.exists(),
            "nothing may be written for an invalid config"
        );
    }
}

#[test]
fn an_unmergeable_config_toml_leaves_everything_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let user = "model_providers = { mine = { name = \"x\", base_url = \"http://h\" } }\n";
    std::fs::write(home.join("config.toml"), user).unwrap();
    let config = dir.path().join("config.json");
    write_json(&config, &three_backends("127.0.0.1:8280"));
    let out = run_proxy_cli(
        &[
            "codex-setup",
            "--config",
            config.to_str().unwrap(),
            "--codex-home",
            home.to_str().unwrap(),
            "--write",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("config.toml: ") && stderr.contains("left unchanged"),
        "{stderr}"
    );
    assert_eq!(
        snapshot(&home),
        [("config.toml".to_string(), user.as_bytes().to_vec())]
    );
}

#[test]
fn top_level_flags_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    write_json(&config, &three_backends("127.0.0.1:8280"));
    let out = run_proxy_cli(
        &["--config", config.to_str().unwrap(), "--check"],
        &[("SETUP_TEST_UNSET_KEY", "k")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("OK — listen 127.0.0.1:8280, 3 backend(s): glm, kimi, local")
    );
    // `--check` still needs every variable.
    let out = run_proxy_cli(&["--config", config.to_str().unwrap(), "--check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr)
        .contains("backends[2].api_key: environment variable SETUP_TEST_UNSET_KEY is not set"));
    // Top-level flags and the subcommand do not mix.
    let out = run_proxy_cli(&["--check", "codex-setup"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// The shipped `config.json`: valid, only current model names (no retirement warning), and
/// `codex-setup` on it gives each model its provider's documented context window.
#[test]
fn shipped_config_names_current_models_with_documented_windows() {
    let shipped = repo_root().join("config.json");
    let shipped = shipped.to_str().unwrap();
    let keys = [
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
        ("DEEPSEEK_API_KEY", "k"),
        ("MINIMAX_API_KEY", "k"),
    ];
    let out = run_proxy_cli(&["--config", shipped, "--check"], &keys);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("4 backend(s): glm, kimi, deepseek, minimax"));

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out_dir = dir.path().join("out");
    let out = run_proxy_cli(
        &[
            "codex-setup",
            "--config",
            shipped,
            "--codex-home",
            home.to_str().unwrap(),
            "--out-dir",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("warning"));
    let catalog: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("codex-models.json")).unwrap()).unwrap();
    let got: Vec<(String, u64, Value)> = catalog["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["slug"].as_str().unwrap().to_string(),
                m["context_window"].as_u64().unwrap(),
                m["input_modalities"].clone(),
            )
        })
        .collect();
    let want = [
        // GLM-5: 200K (BigModel); Kimi K2.6: 262,144; DeepSeek V4.1-Flash: 1M with images;
        // MiniMax-M3: 1,000,000 with images (README, Sources).
        ("glm-5", 200_000, json!(["text"])),
        ("kimi-k2.6", 262_144, json!(["text", "image"])),
        ("deepseek-flash", 1_000_000, json!(["text", "image"])),
        ("MiniMax-M3", 1_000_000, json!(["text", "image"])),
    ];
    let want: Vec<(String, u64, Value)> = want
        .into_iter()
        .map(|(s, cw, m)| (s.to_string(), cw, m))
        .collect();
    assert_eq!(got, want);
}

/// `--check` warns about a model the provider retired, and still succeeds.
#[test]
fn check_warns_about_a_retired_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    write_json(
        &config,
        &json!({"backends": [
            {"name": "deepseek", "url": "https://api.deepseek.com", "model": "deepseek-chat",
             "models": [{"name": "deepseek-reasoner"}], "match_rules": {"default": true}},
            {"name": "local", "url": "http://127.0.0.1:1/v1", "model": "deepseek-chat",
             "match_rules": {"path_prefix": "/local"}}
        ]}),
    );
    let out = run_proxy_cli(&["--config", config.to_str().unwrap(), "--check"], &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(text(&out.stdout).contains("OK"));
    assert!(stderr.contains(
        "warning: backends[0].model: deepseek model \"deepseek-chat\" is retired (requests fail) since 2026-07-24; use deepseek-flash"
    ), "{stderr}");
    assert!(
        stderr.contains(
            "warning: backends[0].models[0].name: deepseek model \"deepseek-reasoner\" is retired"
        ),
        "{stderr}"
    );
    // The generic profile knows no retirements.
    assert_eq!(stderr.matches("warning").count(), 2, "{stderr}");
}

// ---------------------------------------------------------------------------
// The real Codex CLI with the generated set-up
// ---------------------------------------------------------------------------

/// `codex exec --json --profile PROFILE` with the offline flags of PROTOCOL.md §1 and the
/// given Codex home, bounded by [`CODEX_TIMEOUT`]. No `-c model_provider/model/...`: the
/// generated files must do that.
fn run_codex_profile(home: &Path, profile: &str, workdir: &Path, prompt: &str) -> CodexRun {
    run_codex_bin_profile(&codex_bin(), home, profile, workdir, prompt)
}

/// [`run_codex_profile`] with this Codex binary.
fn run_codex_bin_profile(
    bin: &Path,
    home: &Path,
    profile: &str,
    workdir: &Path,
    prompt: &str,
) -> CodexRun {
    let out_dir = tempfile::tempdir().unwrap();
    let stdout_path = out_dir.path().join("codex.stdout");
    let stderr_path = out_dir.path().join("codex.stderr");
    let mut cmd = Command::new(bin);
    cmd.arg("exec")
        .arg("--json")
        .args(["--skip-git-repo-check", "--ephemeral", "--color", "never"])
        .args(["--profile", profile])
        .arg("-C")
        .arg(workdir)
        .args(["-c", "approval_policy=never"])
        .args(["-c", "sandbox_mode=danger-full-access"])
        .args(["-c", "check_for_update_on_startup=false"])
        .args(["-c", "analytics.enabled=false"])
        .args(["-c", "feedback.enabled=false"])
        .args(["--disable", "plugins"])
        .args(["--disable", "remote_plugin"])
        .args(["--disable", "apps"])
        .args(["--disable", "goals"])
        .args(["--disable", "multi_agent"])
        .args(["-c", "web_search=\"disabled\""])
        .arg(prompt)
        .env("CODEX_HOME", home)
        .env("CODEX_PROXY_TOKEN", CLIENT_TOKEN)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap());
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn codex");
    let status = wait_bounded(child, CODEX_TIMEOUT, "codex");
    let elapsed = started.elapsed();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let events = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    CodexRun {
        status,
        stdout,
        stderr,
        events,
        elapsed,
    }
}

fn assert_codex_ok(run: &CodexRun, context: &str) {
    assert!(run.status.success(), "{context}");
    let errors: Vec<&Value> = run
        .events
        .iter()
        .filter(|e| {
            e["type"] == "error" || e["type"] == "turn.failed" || (e["item"]["type"] == "error")
        })
        .collect();
    assert!(
        errors.is_empty(),
        "codex reported errors: {errors:?}\n{context}"
    );
    assert!(
        run.events.iter().any(|e| e["type"] == "turn.completed"),
        "no turn.completed\n{context}"
    );
    // The catalog was accepted: no fallback metadata.
    let all = format!("{}\n{}", run.stdout, run.stderr);
    let warned = all
        .lines()
        .any(|l| l.contains("Model metadata") && l.contains("not found"));
    assert!(
        !warned,
        "Codex warned about missing model metadata\n{context}"
    );
    assert!(
        run.events.iter().any(|e| e["type"] == "item.completed"
            && e["item"]["type"] == "agent_message"
            && e["item"]["text"]
                .as_str()
                .is_some_and(|t| t.contains(mock_upstream::DEFAULT_TEXT))),
        "Codex did not print the mock's reply\n{context}"
    );
}

/// The upstream `apply_patch` tool: a function with one string parameter `input` (the
/// proxy's form of Codex's `custom` freeform tool).
fn assert_apply_patch_function(req: &RecordedRequest) {
    let tools = req.json()["tools"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap_or("?").to_owned())
        .collect();
    let tool = tools
        .iter()
        .find(|t| t["function"]["name"] == "apply_patch")
        .unwrap_or_else(|| panic!("no apply_patch tool upstream; tools: {names:?}"));
    assert_eq!(tool["type"], "function", "{tool}");
    let params = &tool["function"]["parameters"];
    assert_eq!(params["type"], "object", "{tool}");
    assert_eq!(params["properties"]["input"]["type"], "string", "{tool}");
    assert_eq!(params["required"], json!(["input"]), "{tool}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_runs_with_the_generated_setup() {
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(move |port, log_dir| {
        let mut c = test_config(
            port,
            log_dir,
            json!([
                {
                    "name": "main",
                    "url": format!("http://127.0.0.1:{mock_port}/v1"),
                    "api_key": MAIN_KEY,
                    "model": "e2e-model",
                    "context_window": 64000,
                    "max_output_tokens": 8000,
                    "reasoning": {"default_effort": "high"},
                    "match_rules": {"default": true},
                },
                {
                    "name": "kimi",
                    "url": format!("http://127.0.0.1:{mock_port}/kimi-base/v1"),
                    "api_key": KIMI_KEY,
                    "model": "kimi-e2e",
                    "match_rules": {"path_prefix": "/kimi"},
                },
            ]),
        );
        c["auth_tokens"] = json!([CLIENT_TOKEN]);
        c
    })
    .await;

    // The set-up, written into a fresh Codex home.
    let home = tempfile::tempdir().unwrap();
    let config_path = proxy.config_path.clone();
    let home_path = home.path().to_path_buf();
    let stdout = tokio::task::spawn_blocking(move || setup(&config_path, &home_path, &["--write"]))
        .await
        .unwrap();
    assert!(stdout.contains("codex --profile main"), "{stdout}");
    let config_toml = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    assert!(
        config_toml.contains("env_key = \"CODEX_PROXY_TOKEN\""),
        "{config_toml}"
    );
    for (name, bytes) in snapshot(home.path()) {
        let s = text(&bytes);
        for secret in [MAIN_KEY, KIMI_KEY, CLIENT_TOKEN] {
            assert!(!s.contains(secret), "{secret} written into {name}");
        }
    }

    // `codex --profile main`: the default backend, generic profile.
    let workdir = tempfile::tempdir().unwrap();
    let (h, w) = (home.path().to_path_buf(), workdir.path().to_path_buf());
    let run = tokio::task::spawn_blocking(move || {
        run_codex_profile(&h, "main", &w, "Say hello to the setup test")
    })
    .await
    .unwrap();
    let context = context_of(&run, &proxy);
    assert_codex_ok(&run, &context);

    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1, "{context}");
    let up = &reqs[0];
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(
        up.header("authorization"),
        Some(format!("Bearer {MAIN_KEY}").as_str())
    );
    assert_eq!(up.json()["model"], "e2e-model");
    // apply_patch: Codex sent its `custom` tool, the proxy a function with `input`.
    assert_apply_patch_function(up);
    // The configured effort, as the generic profile sends it.
    assert_eq!(up.json()["reasoning_effort"], "high", "{}", up.body_raw);
    // The catalog kept Codex's own base prompt.
    assert!(
        up.messages().iter().any(|m| m["role"] == "system"
            && mock_upstream::message_text(m).starts_with(CODEX_PROMPT_START)),
        "Codex's base prompt is missing upstream"
    );

    // `codex --profile kimi`: the prefixed backend; kimi's profile forwards no effort.
    let (h, w) = (home.path().to_path_buf(), workdir.path().to_path_buf());
    let run =
        tokio::task::spawn_blocking(move || run_codex_profile(&h, "kimi", &w, "Say hello to kimi"))
            .await
            .unwrap();
    let context = context_of(&run, &proxy);
    assert_codex_ok(&run, &context);
    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "{context}");
    let up = &reqs[1];
    assert_eq!(up.path, "/kimi-base/v1/chat/completions");
    assert_eq!(
        up.header("authorization"),
        Some(format!("Bearer {KIMI_KEY}").as_str())
    );
    assert_eq!(up.json()["model"], "kimi-e2e");
    assert_apply_patch_function(up);
    // The generated providers set `supports_websockets`: both sessions ran over a socket
    // (the access log has the upgrades and the WebSocket turns, no HTTP turn).
    let access: Vec<String> = proxy
        .logs()
        .lines()
        .filter(|l| l.contains("access"))
        .map(str::to_owned)
        .collect();
    assert!(
        access.iter().filter(|l| l.contains("status=101")).count() >= 2,
        "{access:#?}"
    );
    assert!(
        access.iter().filter(|l| l.contains("method=WS")).count() >= 2,
        "{access:#?}"
    );
    assert!(!access.iter().any(|l| l.contains("POST")), "{access:#?}");
    assert!(
        up.json().get("reasoning_effort").is_none(),
        "{}",
        up.body_raw
    );
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;
}

/// Codex 0.171 (whose own models speak "responses lite") with a generated profile: the
/// catalog entry's `use_responses_lite = false` keeps the classic dialect. What Codex sends
/// (recorded by a tap between Codex and the proxy) has the tools at the top level and no
/// `additional_tools` item; upstream, `apply_patch` is a function and there is no code mode
/// `exec` tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_0171_gets_the_classic_dialect_from_a_generated_profile() {
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(move |port, log_dir| {
        test_config(
            port,
            log_dir,
            json!([{
                "name": "main",
                "url": format!("http://127.0.0.1:{mock_port}/v1"),
                "api_key": MAIN_KEY,
                "model": "e2e-model",
                "reasoning": {"default_effort": "high"},
                "match_rules": {"default": true},
            }]),
        )
    })
    .await;
    let tap = common::codex::ResponsesTap::start(&proxy.base_url()).await;

    // The set-up generated for a proxy listening where the tap is.
    let dir = tempfile::tempdir().unwrap();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&proxy.config_path).unwrap()).unwrap();
    config["listen"] = json!(tap.url("").trim_start_matches("http://"));
    let config_path = dir.path().join("config.json");
    write_json(&config_path, &config);
    let home = dir.path().join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let (c, h) = (config_path.clone(), home.clone());
    tokio::task::spawn_blocking(move || setup(&c, &h, &["--write"]))
        .await
        .unwrap();
    let catalog: Value =
        serde_json::from_slice(&std::fs::read(home.join("codex-models.json")).unwrap()).unwrap();
    assert_eq!(catalog["models"][0]["use_responses_lite"], false);

    let workdir = tempfile::tempdir().unwrap();
    let (h, w) = (home.clone(), workdir.path().to_path_buf());
    let bin = codex_bin_0171();
    let run = tokio::task::spawn_blocking(move || {
        run_codex_bin_profile(&bin, &h, "main", &w, "Say hello to the 0.171 setup test")
    })
    .await
    .unwrap();
    let context = context_of(&run, &proxy);
    assert_codex_ok(&run, &context);

    let tapped: Vec<_> = tap
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/responses")
        .collect();
    assert!(!tapped.is_empty(), "no Responses request\n{context}");
    for req in &tapped {
        let body = &req.body;
        let tools = body["tools"].as_array().cloned().unwrap_or_default();
        assert!(!tools.is_empty(), "no top-level tools: {}", req.raw);
        assert!(
            tools.iter().any(|t| t["name"] == "apply_patch"),
            "no top-level apply_patch: {}",
            req.raw
        );
        let input = body["input"].as_array().cloned().unwrap_or_default();
        assert!(!input.is_empty(), "{}", req.raw);
        for item in &input {
            assert!(
                !matches!(
                    item["type"].as_str(),
                    Some("additional_tools" | "configuration_update")
                ),
                "a responses lite item: {item}"
            );
        }
    }

    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1, "{context}");
    let up = &reqs[0];
    assert_apply_patch_function(up);
    let names: Vec<&str> = up.json()["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"exec"),
        "code mode's exec upstream: {names:?}"
    );
    assert_eq!(up.json()["reasoning_effort"], "high", "{}", up.body_raw);
}
