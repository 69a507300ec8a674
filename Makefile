.PHONY: build release run test lint codex sdk-venv

build:
	cargo build

release:
	cargo build --release

run:
	cargo run --release -- --config config.json

test: codex sdk-venv
	cargo test --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

codex:
	./scripts/install-codex.sh

# The OpenAI Python SDK for the strict client check (tests/sdk_strict.rs).
sdk-venv:
	./scripts/sdk-venv.sh
