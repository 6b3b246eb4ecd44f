#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh) and runs the whole test suite: formatting, lints, unit and
# integration tests against the local PostgreSQL and RabbitMQ.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "[test] offline query data (.sqlx/) matches the statements and the migrated schema"
bash scripts/sqlx-prepare.sh --check
echo "[test] cargo test"
cargo test --all-targets
