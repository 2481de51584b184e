#!/usr/bin/env bash
# The whole test suite, with all of its own set-up:
#   1. system packages the tests need (Docker engine, debootstrap, Chromium);
#   2. a running Docker engine (started here when none answers and we are root);
#   3. the offline course sandbox image (built when missing);
#   4. front-end packages from npm (lockfile);
#   5. formatting, clippy and every test.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh

step "system packages"
ensure_packages
step "docker engine"
ensure_docker
step "sandbox image"
ensure_sandbox_image
step "front-end packages"
ensure_npm_packages
use_shared_target_dir

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
step "cargo test"
# Test binaries run one after another; within one, at most two tests at once
# on these 2-core machines (tests that start containers bound themselves too).
cargo test --locked --no-fail-fast "$@" -- --test-threads="${PGLAB_TEST_THREADS:-2}"
