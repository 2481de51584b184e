# Shared set-up steps of scripts/test.sh and scripts/bench.sh. Sourced, not run.
# Each step does nothing when what it provides is already there.

step() { printf '\n==> %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }

# Debian packages the tests use; installed only when a command is missing.
ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  # The swarm tests' nodes: network namespaces, veths and a bridge (tests/common/swarm.rs).
  command -v ip >/dev/null || missing+=(iproute2)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  [ -x /usr/lib/postgresql/15/bin/initdb ] || command -v initdb >/dev/null || missing+=(postgresql-15)
  if [ ${#missing[@]} -eq 0 ]; then echo "all present"; return; fi
  if ! is_root || ! command -v apt-get >/dev/null; then
    echo "missing: ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A Docker engine that answers; started by hand when we are root and none runs.
ensure_docker() {
  if docker info >/dev/null 2>&1; then echo "engine answers"; return; fi
  if ! is_root || ! command -v dockerd >/dev/null; then
    echo "no Docker engine answers: install docker.io and start it (or run as root), then run again" >&2
    exit 1
  fi
  echo "starting dockerd (log: /var/log/pglab-dockerd.log)"
  nohup dockerd --host unix:///var/run/docker.sock --data-root /var/lib/docker \
    >/var/log/pglab-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then echo "engine answers"; return; fi
    sleep 1
  done
  echo "dockerd did not come up; see /var/log/pglab-dockerd.log" >&2
  tail -20 /var/log/pglab-dockerd.log >&2 || true
  exit 1
}

ensure_sandbox_image() {
  if [ -x scripts/build-sandbox-image.sh ]; then
    scripts/build-sandbox-image.sh
  else
    echo "no sandbox image script yet"
  fi
}

ensure_npm_packages() {
  if [ -f package.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
    # The SQL editor's CodeMirror bundle (static/js/codemirror.js, git-ignored).
    npm run --silent build
  else
    echo "no front-end packages"
  fi
}

# Builds are shared between runs on one machine (CI included) through a target
# dir outside the clone; a fresh machine simply builds everything.
use_shared_target_dir() {
  if [ -z "${CARGO_TARGET_DIR:-}" ] && mkdir -p /var/cache/pglab/target 2>/dev/null && [ -w /var/cache/pglab/target ]; then
    export CARGO_TARGET_DIR=/var/cache/pglab/target
  fi
  echo "cargo target dir: ${CARGO_TARGET_DIR:-target}"
  prune_target_dir "${CARGO_TARGET_DIR:-target}"
}

# A shared target dir grows with every build (old test binaries, incremental
# state); when its disk runs low, keep only the newest build of each binary.
prune_target_dir() {
  local dir=$1/debug avail
  [ -d "$dir/deps" ] || return 0
  avail=$(df --output=avail -k "$dir" | tail -1)
  [ "$avail" -lt $((20 * 1024 * 1024)) ] || return 0
  echo "less than 20 GiB free: pruning old builds in $dir"
  rm -rf "$dir/incremental"
  (cd "$dir/deps" && ls -t | grep -E -- '-[0-9a-f]{16}(\.d)?$' |
    awk '{ n = $0; sub(/-[0-9a-f]{16}(\.d)?$/, "", n); k = n ($0 ~ /\.d$/ ? ".d" : "");
           if (seen[k]++) print }' | xargs -r rm -f)
}
