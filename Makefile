.PHONY: build release run test lint codex sdk-venv fuzz check-config

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

# Bounded fuzzing of the pure core (FUZZ_SECONDS per target, default 30).
fuzz:
	./scripts/fuzz.sh

# Validate config.json (needs the variables it references, e.g. GLM_API_KEY).
check-config:
	cargo run --bin codex-convert-proxy -- --check --config config.json

.PHONY: bench loadtest

# Criterion benchmarks of the pure conversion core (benches/convert.rs); the summary goes
# to bench/results/ (bench.json, summary.md).
bench:
	cargo bench --bench convert
	python3 bench/report.py --criterion target/criterion --out bench/results

# Side-by-side load test on 127.0.0.1 (bench/loadtest.sh): direct, Pingora pass-through,
# nginx pass-through, codex-convert-proxy; installs wrk, nginx and oha when missing.
loadtest:
	bash bench/loadtest.sh
