#!/usr/bin/env bash
# The classroom-scale load and fault test (tests/classroom_load.rs) in its
# full form: N simulated learners on loopback against the real pglab (release
# build) with the Docker backend on a private Docker engine, faults during the
# run (a killed sandbox, the engine stopped and started, pglab restarted),
# then a check that nothing acknowledged was lost. Prints the report tables
# (also written to --report FILE). CI runs the reduced form (20 learners, cap
# 8) as part of scripts/test.sh.
# Needs root (the private dockerd) and the shared engine with the sandbox
# image (copied into the private engine); the shared engine is never stopped.
# With --swarm N the sandboxes run on a swarm of N private engines in network
# namespaces (the swarm backend; the `engine` fault stops the last node's).
# Usage: scripts/load.sh [--learners 200] [--cap 50] [--rounds 2] [--swarm N]
#          [--active N (at work at once; default the cap, 0 = everyone)]
#          [--concurrency 16] [--faults kill,engine,restart|none]
#          [--arrival-ms 300 (learner i arrives i × this into the run)]
#          [--limit-secs 2400] [--report FILE] [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh

learners=200 cap=50 rounds=2 concurrency=16 faults=kill,engine,restart
arrival=300 limit=2400 report="" profile=(--release) active= swarm=0
while [ $# -gt 0 ]; do
  case "$1" in
    --learners) learners="$2"; shift 2 ;;
    --cap) cap="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --swarm) swarm="$2"; shift 2 ;;
    --active) active="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --faults) faults="$2"; shift 2 ;;
    --arrival-ms) arrival="$2"; shift 2 ;;
    --limit-secs) limit="$2"; shift 2 ;;
    --report) report="$2"; shift 2 ;;
    --debug) profile=(); shift ;;
    *) echo "unknown option $1 (see the usage line in $0)" >&2; exit 2 ;;
  esac
done

step "system packages"
ensure_packages
step "docker engine"
ensure_docker
step "sandbox image"
ensure_sandbox_image
use_shared_target_dir

step "classroom load: $learners learners, cap $cap, faults $faults, swarm nodes $swarm"
PGLAB_LOAD_SWARM="$swarm" PGLAB_LOAD_LEARNERS="$learners" PGLAB_LOAD_CAP="$cap" PGLAB_LOAD_ROUNDS="$rounds" \
PGLAB_LOAD_ACTIVE="${active:-$cap}" PGLAB_LOAD_CONCURRENCY="$concurrency" PGLAB_LOAD_FAULTS="$faults" PGLAB_LOAD_ARRIVAL_MS="$arrival" \
PGLAB_LOAD_LIMIT_S="$limit" PGLAB_LOAD_REPORT="$report" \
  cargo test --locked "${profile[@]}" --test classroom_load -- --nocapture --test-threads=1
