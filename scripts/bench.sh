#!/usr/bin/env bash
# Every benchmark, with the same set-up as the tests (Docker engine, sandbox
# image). Each benches/*.rs prints its own table of medians and ratios.
# Usage: scripts/bench.sh [bench name, e.g. sandbox]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh

step "system packages"
ensure_packages
step "docker engine"
ensure_docker
step "sandbox image"
ensure_sandbox_image
use_shared_target_dir

step "cargo bench"
if [ $# -gt 0 ]; then
  cargo bench --locked --bench "$1"
else
  cargo bench --locked
fi
