.PHONY: build release run test lint codex

build:
	cargo build

release:
	cargo build --release

run:
	cargo run --release -- --config config.json

test: codex
	cargo test --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

codex:
	./scripts/install-codex.sh
